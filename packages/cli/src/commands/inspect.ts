import { statSync } from 'node:fs';
import { Command } from 'commander';
import { nonFiniteTensors, type JournalEntry, type Model } from '@rs/core';
import { common, type Runner } from '../command';
import { change, int, percent, shape, table } from '../format';
import { loadModel, resolvePath, setupBackend } from '../runtime';

/** Everything `rs inspect` shows, as data (the --json document). */
export function describeModel(model: Model) {
  const graph = model.graph;
  const infos = model.validated.infos;
  const counts = model.counts();
  const perNode = new Map(counts.perNode.map((n) => [n.node, n]));
  const nodes = graph.nodes.map((node) => {
    const count = perNode.get(node.id);
    return {
      id: node.id,
      op: node.op,
      inputs: node.inputs,
      shape: infos.get(node.id)?.shape ?? null,
      params: count?.params ?? 0,
      nonzeroParams: count?.nonzeroParams ?? 0,
      flops: count?.flops ?? 0,
      trainable: model.paramKeys().filter((k) => k.startsWith(`${node.id}/`)).some((k) => model.param(k).trainable),
    };
  });
  const groups = model.groups().map((g) => ({ id: g.id, size: g.size, sources: g.sources, editable: !g.frozen, ...(g.frozen ? { frozen: g.frozen } : {}) }));
  return {
    inputs: graph.inputs,
    outputs: graph.outputs.map((id) => ({ id, shape: infos.get(id)?.shape ?? null })),
    nodes,
    groups,
    totals: {
      nodes: graph.nodes.length,
      params: counts.params,
      nonzeroParams: counts.nonzeroParams,
      sparsity: counts.params === 0 ? 0 : 1 - counts.nonzeroParams / counts.params,
      flops: counts.flops,
    },
    /** Parameters, masks and optimizer slots holding NaN or Infinity (empty for a healthy model). */
    nonFinite: nonFiniteTensors(model),
    meta: graph.meta ?? {},
    journal: model.journal.map((e: JournalEntry) => ({
      seq: e.seq,
      time: e.time,
      technique: e.technique,
      reason: e.reason,
      params: e.params,
      nonzeroParams: e.nonzeroParams,
      flops: e.flops,
      changes: e.changes,
    })),
  };
}

export function inspectCommand(run: Runner): Command {
  const command = new Command('inspect')
    .description('show inputs/outputs, parameters and FLOPs per node, unit groups, meta and the journal')
    .argument('<model.rsm>', 'a saved model')
    .option('--changes', 'list every change of each journal entry');
  common(command);
  return command.action(
    run(async (context, [path], options) => {
      await setupBackend('cpu');
      const model = await loadModel(context.cwd, path, options.plugin);
      try {
        const d = describeModel(model);
        const bytes = statSync(resolvePath(context.cwd, path)).size;
        if (d.nonFinite.length > 0) context.note(`rs inspect: warning: ${d.nonFinite.length} tensor(s) hold NaN or Infinity: ${d.nonFinite.slice(0, 5).join(', ')}${d.nonFinite.length > 5 ? ', ...' : ''}`);
        context.emitJson({ command: 'inspect', file: path, bytes, ...d });
        if (context.json) return;
        const out = context.out;
        out(`${path}  (${int(bytes)} bytes)`);
        out(`inputs:  ${d.inputs.map((i) => `${i.id} ${shape(i.shape)} ${i.dtype}`).join(', ')}`);
        out(`outputs: ${d.outputs.map((o) => `${o.id} ${shape(o.shape)}`).join(', ')}`);
        out();
        const rows = d.nodes.map((n) => [
          n.id,
          n.op,
          shape(n.shape),
          n.params ? int(n.params) : '-',
          n.params ? int(n.nonzeroParams) : '-',
          n.flops ? int(n.flops) : '-',
          n.params ? (n.trainable ? 'trainable' : 'frozen') : '',
        ]);
        rows.push(['total', `${d.totals.nodes} nodes`, '', int(d.totals.params), int(d.totals.nonzeroParams), int(d.totals.flops), '']);
        for (const line of table(['node', 'op', 'output', 'params', 'non-zero', 'FLOPs', 'status'], rows, [3, 4, 5])) out(line);
        out(`sparsity: ${percent(d.totals.sparsity, 1)} of parameters are zero (masked); FLOPs are per sample`);
        if (d.nonFinite.length > 0) out(`non-finite: ${d.nonFinite.length} tensor(s) hold NaN or Infinity: ${d.nonFinite.join(', ')}`);
        out();
        out('unit groups:');
        for (const line of table(
          ['group', 'units', 'sources', 'editable'],
          d.groups.map((g) => [g.id, int(g.size), g.sources.join(', '), g.editable ? 'yes' : `no: ${(g.frozen ?? []).join('; ')}`]),
          [1],
        ))
          out(`  ${line}`);
        const metaKeys = Object.keys(d.meta);
        if (metaKeys.length > 0) {
          out();
          out('meta:');
          for (const key of metaKeys) out(`  ${key}: ${JSON.stringify(d.meta[key])}`);
        }
        out();
        if (d.journal.length === 0) {
          out('journal: empty (no structural edit since the model was created)');
          return;
        }
        out(`journal (${d.journal.length} entries):`);
        for (const line of table(
          ['#', 'technique', 'reason', 'params', 'non-zero', 'FLOPs'],
          d.journal.map((e) => [String(e.seq), e.technique, e.reason, change(e.params.before, e.params.after), change(e.nonzeroParams.before, e.nonzeroParams.after), change(e.flops.before, e.flops.after)]),
          [0],
        ))
          out(`  ${line}`);
        if (options.changes) {
          for (const e of d.journal) {
            out(`  #${e.seq}:`);
            for (const c of e.changes) out(`    ${c.kind} ${c.target}: ${c.summary}`);
          }
        }
      } finally {
        model.dispose();
      }
    }),
  );
}
