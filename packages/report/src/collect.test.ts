import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, isRsError, lenet300100, createOpRegistry, saveToBuffer, loadFromBuffer, type GraphDef, type Tensor } from '@rs/core';
import { leakedTensors } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { pruneUnits, pruneWeights } from '@rs/prune';
import { widen, deepen } from '@rs/grow';
import { addExit, earlyExitPredict, exitOrder, setExitPolicy, register as registerDynamic } from '@rs/dynamic';
import { registerMoe, upcycle } from '@rs/moe';
import { defineSpace, search, anytimeCurve, memoryCheckpoint } from '@rs/nas';
import { collectReport, type GraphSnapshot, type ReportData } from './index';

beforeAll(async () => {
  await install();
});

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isRsError(e, code as never), String(e)).toBe(true);
    if (message) expect(String((e as Error).message)).toMatch(message);
    return;
  }
  throw new Error(`expected an RsError ${code}`);
}

/** The structure of an unedited model, as the report draws it (the answer a reconstruction must give). */
function structureOf(graph: GraphDef): Pick<GraphSnapshot, 'nodes' | 'outputs'> {
  const model = Model.create(graph, { registry: registerMoe(createOpRegistry()) });
  const data = collectReport(model);
  model.dispose();
  const [only] = data.graphs.snapshots;
  return { nodes: only.nodes, outputs: only.outputs };
}

const randomRows = (n: number, features: number, seed: number): Tensor => tf.randomNormal([n, features], 0, 1, 'float32', seed);

describe('collectReport: pruning', () => {
  it('per-parameter sparsity equals the zero fraction of each mask counted here; journal, counts and the reconstructed graph before the edits are exact', async () => {
    const graph = lenet300100({ hidden: [32, 16] });
    const model = Model.create(graph, { seed: 1, registry: registerDynamic(registerMoe(createOpRegistry())) });
    pruneWeights(model, { sparsity: 0.7, scope: 'layer' });
    pruneUnits(model, { fraction: 0.25, groups: ['fc1'] });
    let data!: ReportData;
    expect(await leakedTensors(() => (data = collectReport(model)))).toBe(0);
    // Sparsity: count the zeros of every mask independently.
    for (const key of model.paramKeys()) {
      const entry = model.param(key);
      const row = data.sparsity.rows.find((r) => r.param === key);
      if (entry.role !== 'weight') {
        expect(row).toBeUndefined();
        continue;
      }
      const values = entry.mask ? entry.mask.dataSync() : new Float32Array(entry.value.size).fill(1);
      const zeros = Array.from(values).filter((v) => v === 0).length;
      expect(row?.zeros).toBe(zeros);
      expect(row?.size).toBe(entry.value.size);
      expect(row?.sparsity).toBeCloseTo(zeros / entry.value.size, 12);
      expect(row?.masked).toBe(entry.mask !== undefined);
    }
    // layer scope at 0.7 (pruneWeights' own contract), on the masks as they are after unit removal.
    expect(data.sparsity.rows.find((r) => r.param === 'fc2/kernel')?.sparsity).toBeCloseTo(0.7, 1);
    // Journal: the model's own entries; counts: the model's.
    expect(data.journal.map((e) => [e.seq, e.technique])).toEqual(model.journal.map((e) => [e.seq, e.technique]));
    expect(data.journal[1].params).toEqual(model.journal[1].params);
    expect(data.model.params).toBe(model.counts().params);
    expect(data.model.nonzeroParams).toBe(model.counts().nonzeroParams);
    // Step 0 (reconstructed backwards from the pruned graph) is the original graph, node for node.
    expect(data.graphs.snapshots).toHaveLength(3);
    const original = structureOf(graph);
    expect(data.graphs.snapshots[0].nodes).toEqual(original.nodes);
    expect(data.graphs.snapshots[0].exact).toBe(false);
    expect(data.graphs.snapshots[2].exact).toBe(true);
    expect(data.graphs.snapshots[2].nodes.find((n) => n.id === 'fc1')?.width).toBe(24);
    expect(data.graphs.notes).toEqual([]);
    // Plain JSON: survives a round trip unchanged.
    expect(JSON.parse(JSON.stringify(data))).toEqual(data);
    // Nothing measured without data.
    expect(data.exits).toEqual({ reason: 'the model has a single output (no early exit)' });
    expect(data.expertLoad.layers).toEqual([]);
    model.dispose();
  });
});

describe('collectReport: growth', () => {
  it('growth series follow the journal sizes; deepened nodes are listed; the graph before growth is reconstructed exactly', () => {
    const graph = lenet300100({ hidden: [12, 8] });
    const model = Model.create(graph, { seed: 2 });
    widen(model, 'fc1', 4, { seed: 1 });
    deepen(model, 'relu2');
    widen(model, 'fc1', 2, { seed: 2 });
    const data = collectReport(model);
    // fc1: 12 before the first entry, 16 after it, unchanged by deepen (step 2), 18 after the third.
    expect(data.growth.series).toEqual([{ group: 'fc1', points: [{ step: 0, size: 12 }, { step: 1, size: 16 }, { step: 2, size: 16 }, { step: 3, size: 18 }] }]);
    expect(data.growth.insertedNodes.map((n) => [n.seq, n.node])).toEqual([
      [2, 'relu2.deep'],
      [2, 'relu2.deep.relu'],
    ]);
    expect(data.graphs.snapshots[0].nodes).toEqual(structureOf(graph).nodes);
    expect(data.graphs.snapshots[1].nodes.find((n) => n.id === 'fc1')?.width).toBe(16);
    expect(data.graphs.snapshots[1].nodes.some((n) => n.id === 'relu2.deep')).toBe(false);
    expect(data.graphs.snapshots[2].nodes.find((n) => n.id === 'relu2.deep')?.width).toBe(8);
    model.dispose();
  });
});

describe('collectReport: early exit', () => {
  it('exit rates and accuracies equal those of earlyExitPredict (@rs/dynamic) on the same rows, with options or the stored policy; no leaked tensors', async () => {
    const graph = lenet300100({ inputs: 20, hidden: [24, 16], classes: 4 });
    // @rs/dynamic provides the exit-rate section through the model's registry.
    const model = Model.create(graph, { seed: 3, registry: registerDynamic(createOpRegistry()) });
    const exitId = addExit(model, { at: 'relu1', classes: 4 });
    const x = randomRows(300, 20, 7);
    const y = Int32Array.from({ length: 300 }, (_, i) => (i * 7) % 4);
    const policy = { rule: 'entropy' as const, thresholds: 1.3 };
    let data!: ReportData;
    // batchSize 128: the measurement runs in three batches and must still match the whole-batch answer.
    expect(await leakedTensors(() => (data = collectReport(model, { data: { x, y }, exitPolicy: policy, batchSize: 128 })))).toBe(0);
    const reference = earlyExitPredict(model, x, policy);
    const predicted = tf.tidy(() => tf.argMax(reference.logits, -1)).dataSync();
    const finalLogits = model.run(x).outputs;
    const finalPredicted = tf.tidy(() => tf.argMax(finalLogits[1], -1)).dataSync();
    tf.dispose([reference.logits, ...finalLogits]);
    const rates = data.exits.rates;
    expect(rates?.exits.map((e) => e.id)).toEqual(exitOrder(model));
    expect(rates?.exits.map((e) => e.id)).toEqual([exitId, 'fc3']);
    exitOrder(model).forEach((id, e) => {
      const rows = [...reference.exitIndex.keys()].filter((i) => reference.exitIndex[i] === e);
      expect(rates?.exits[e].count).toBe(rows.length);
      expect(rates?.exits[e].fraction).toBeCloseTo(rows.length / 300, 12);
      if (rows.length > 0) expect(rates?.exits[e].accuracy).toBeCloseTo(rows.filter((i) => predicted[i] === y[i]).length / rows.length, 12);
    });
    // The threshold splits the rows: both exits are used (else this test would not test much).
    expect(rates?.exits[0].count).toBeGreaterThan(10);
    expect(rates?.exits[1].count).toBeGreaterThan(10);
    expect(rates?.accuracy).toBeCloseTo([...predicted].filter((p, i) => p === y[i]).length / 300, 12);
    expect(rates?.finalAccuracy).toBeCloseTo([...finalPredicted].filter((p, i) => p === y[i]).length / 300, 12);
    expect(rates?.policySource).toBe('options');
    expect(rates?.thresholds).toEqual([1.3]);

    // Without a policy: a reason, no numbers. With the policy stored in the model: the same rates.
    expect(collectReport(model, { data: { x } }).exits.reason).toMatch(/no exit policy/);
    setExitPolicy(model, policy);
    const stored = collectReport(model, { data: { x, y } }).exits.rates;
    expect(stored?.policySource).toBe('model');
    expect(stored?.exits).toEqual(rates?.exits);
    // The policy entry only annotates: the structure after it is the one before it.
    const history = collectReport(model).graphs.snapshots;
    expect(history[2]).toEqual({ ...history[1], step: 2, exact: true });
    expect(history[0].nodes).toEqual(structureOf(graph).nodes);
    expect(history[0].outputs).toEqual(['fc3']);
    expect(history[1].outputs).toEqual([exitId, 'fc3']);

    // Typed errors for bad input; the model is untouched.
    expectCode(() => collectReport(model, { data: { x }, exitPolicy: { rule: 'entropy', thresholds: [0.1, 0.2] } }), 'INVALID_ARGUMENT', /1 early exit/);
    expectCode(() => collectReport(model, { data: { x }, exitPolicy: { rule: 'entropy', thresholds: 5 } }), 'INVALID_ARGUMENT', /out of range/);
    expectCode(() => collectReport(model, { data: { x }, exitPolicy: { rule: 'nope' as never, thresholds: 0.1 } }), 'INVALID_ARGUMENT', /rule/);
    expectCode(() => collectReport(model, { data: { x, y: [1, 2] } }), 'INVALID_ARGUMENT', /2 labels for 300 rows/);
    expectCode(() => collectReport(model, { data: { x: [1, 2] as never } }), 'INVALID_ARGUMENT', /tensor/);
    expectCode(() => collectReport(model, { batchSize: 0 }), 'INVALID_ARGUMENT', /batchSize/);

    // The report knows no exit rule: without @rs/dynamic's section it only says so; the same
    // section given through options.registry measures the same rates.
    const plain = loadFromBuffer(saveToBuffer(model), { registry: createOpRegistry() });
    expect(collectReport(plain, { data: { x, y } }).exits).toEqual({ reason: expect.stringMatching(/no registered package provides the 'exits' section/) });
    expect(collectReport(plain, { data: { x, y }, registry: registerDynamic(createOpRegistry()) }).exits.rates?.exits).toEqual(rates?.exits);
    plain.dispose();
    x.dispose();
    model.dispose();
  });
});

function moeModelGraph(): GraphDef {
  return {
    inputs: [{ id: 'x', shape: [null, 6, 8], dtype: 'float32' }],
    nodes: [
      { id: 'proj', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
      { id: 'moe', op: 'moe', inputs: ['proj'], attrs: { experts: 4, hidden: 16, routing: 'top2' } },
      { id: 'add', op: 'add', inputs: ['proj', 'moe'], attrs: {} },
    ],
    outputs: ['add'],
  };
}

describe('collectReport: sections provided through the registry', () => {
  it("runs every provided 'report' section: the page's sections by key, any other under sections; a section no package provides says so", () => {
    const registry = createOpRegistry().provide('report', 'custom', {
      section: 'custom',
      collect: (ctx) => ({ nodes: ctx.model.graph.nodes.length, caller: ctx.caller, batchSize: ctx.batchSize }),
    });
    const model = Model.create(lenet300100({ inputs: 8, hidden: [4, 4], classes: 3 }), { seed: 1, registry });
    const data = collectReport(model, { batchSize: 7 });
    expect(data.sections).toEqual({ custom: { nodes: model.graph.nodes.length, caller: 'collectReport', batchSize: 7 } });
    expect(data.expertLoad).toEqual({ layers: [], reason: expect.stringMatching(/no registered package provides the 'expertLoad' section/) });
    model.dispose();
  });
});

describe('collectReport: mixture of experts', () => {
  it('expert load is the fraction of tokens whose first router choice is each expert, recomputed here from the router weights; no leaks', async () => {
    const registry = registerMoe(createOpRegistry());
    const model = Model.create(moeModelGraph(), { seed: 4, registry });
    // A router with a clear preference, so that the loads differ.
    model.edit((tx) => tx.setParam('moe/router', tf.randomNormal([8, 4], 0, 2, 'float32', 9)), { technique: 'test', reason: 'spread the router' });
    const x = tf.randomNormal([50, 6, 8], 0, 1, 'float32', 11);
    let data!: ReportData;
    expect(await leakedTensors(() => (data = collectReport(model, { data: { x }, batchSize: 16 })))).toBe(0);
    // Independent answer: argmax of proj(x) @ router + routerBias per token.
    const run = model.run(x, { taps: { activations: ['proj'] } });
    const logits = tf.tidy(() => tf.add(tf.matMul(tf.reshape(run.activations.get('proj') as Tensor, [-1, 8]), model.param('moe/router').value), model.param('moe/routerBias').value));
    const choice = tf.tidy(() => tf.argMax(logits, -1)).dataSync();
    tf.dispose([logits, ...run.outputs, ...run.activations.values(), ...run.metrics.values(), ...run.losses.values()]);
    const counts = [0, 0, 0, 0];
    for (const e of choice) counts[e]++;
    const [layer] = data.expertLoad.layers;
    expect(layer.node).toBe('moe');
    expect(layer.tokens).toBe(300);
    expect(layer.experts).toBe(4);
    layer.load.forEach((l, e) => expect(l).toBeCloseTo(counts[e] / 300, 12));
    expect(layer.imbalance).toBeCloseTo((Math.max(...counts) / 300) * 4, 12);
    expect(Math.max(...counts)).toBeLessThan(300); // the loads are not trivially all on one expert
    expect(collectReport(model).expertLoad.reason).toMatch(/pass held-out data/);
    x.dispose();
    model.dispose();
  });

  it('sparse upcycling (insertNode + removeNode) is undone exactly from the journal records; a journal without them (older files) is undone as far as the summaries allow, and the page says what is approximate', () => {
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 8], dtype: 'float32' }],
      nodes: [
        { id: 'ffn1', op: 'dense', inputs: ['x'], attrs: { units: 16 } },
        { id: 'act', op: 'relu', inputs: ['ffn1'], attrs: {} },
        { id: 'ffn2', op: 'dense', inputs: ['act'], attrs: { units: 8 } },
        { id: 'add', op: 'add', inputs: ['x', 'ffn2'], attrs: {} },
      ],
      outputs: ['add'],
    };
    const registry = registerMoe(createOpRegistry());
    const model = Model.create(graph, { seed: 5, registry });
    upcycle(model, { experts: 2, ffns: ['ffn1'] });
    const original = structureOf(graph);
    const { graphs } = collectReport(model);
    expect(graphs.snapshots[0].nodes).toEqual(original.nodes);
    expect(graphs.snapshots[0].outputs).toEqual(original.outputs);
    expect(graphs.notes).toEqual([]);

    // The same model as a file written before journal entries carried structure records.
    const legacy = loadFromBuffer(saveToBuffer(model), { registry });
    for (const entry of legacy.journal) for (const change of entry.changes) delete (change as { before?: unknown }).before;
    const before = collectReport(legacy).graphs.snapshots[0];
    // Same nodes, ops and edges as the original; widths of the removed dense layers are not in the summaries.
    expect(before.nodes.map((n) => [n.id, n.op, n.inputs])).toEqual(expect.arrayContaining(original.nodes.map((n) => [n.id, n.op, n.inputs])));
    expect(before.nodes).toHaveLength(original.nodes.length);
    expect(before.nodes.find((n) => n.id === 'ffn1')).toMatchObject({ width: null, approximate: true });
    expect(before.nodes.find((n) => n.id === 'add')?.width).toBe(8);
    expect(collectReport(legacy).graphs.notes.join('\n')).toMatch(/removed dense 'ffn2' is restored reading only 'act'/);
    legacy.dispose();
    model.dispose();
  });

  it('replaceNode with a new id, removeNode with several readers and setOutputs are undone exactly, node order included', () => {
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
      nodes: [
        { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 5 } },
        { id: 'r', op: 'relu', inputs: ['a'], attrs: {} },
        { id: 'b', op: 'dense', inputs: ['r'], attrs: { units: 5 } },
        { id: 'sum', op: 'add', inputs: ['r', 'b'], attrs: {} },
        { id: 'head', op: 'dense', inputs: ['sum'], attrs: { units: 3 } },
      ],
      outputs: ['head'],
    };
    const model = Model.create(graph, { seed: 6 });
    model.edit((tx) => tx.replaceNode('r', { id: 'g', op: 'gelu', inputs: ['a'], attrs: {} }), { technique: 'test', reason: 'swap the activation' });
    model.edit((tx) => tx.removeNode('g').setOutputs(['head', 'sum']), { technique: 'test', reason: 'drop it, expose sum' });
    const { snapshots, notes } = collectReport(model).graphs;
    expect(notes).toEqual([]);
    expect(snapshots[0].nodes).toEqual(structureOf(graph).nodes);
    expect(snapshots[0].outputs).toEqual(['head']);
    expect(snapshots[1].nodes.map((n) => [n.id, n.op, n.inputs])).toEqual([
      ['x', 'input', []],
      ['a', 'dense', ['x']],
      ['g', 'gelu', ['a']],
      ['b', 'dense', ['g']],
      ['sum', 'add', ['g', 'b']],
      ['head', 'dense', ['sum']],
    ]);
    expect(snapshots[1].outputs).toEqual(['head']);
    expect(snapshots[2].outputs).toEqual(['head', 'sum']);
    model.dispose();
  });
});

describe('collectReport: search curves', () => {
  const space = defineSpace({ name: 'tiny', choices: [{ name: 'width', options: ['8', '16', '32'] }, { name: 'depth', options: ['1', '2'] }] });
  // A deterministic, made-up-free evaluator: the score is a fixed function of the architecture.
  const evaluator = { evaluate: (arch: number[]) => ({ validation: 50 + 10 * arch[0] - 3 * arch[1], test: 49 + 10 * arch[0] - 2 * arch[1], cost: 1 + arch[0] }) };

  it('anytime curves equal anytimeCurve of @rs/nas for a result and for a checkpoint', async () => {
    const checkpoint = memoryCheckpoint();
    const result = await search({ space, strategy: 'random', evaluator, budget: { evaluations: 12 }, seed: 3, checkpoint });
    const model = Model.create(lenet300100({ hidden: [4, 4] }));
    const data = collectReport(model, { search: [result, checkpoint.current] });
    const [fromResult, fromCheckpoint] = data.search.curves;
    expect(fromResult.anytime).toEqual(result.anytime);
    expect(fromResult.anytime).toEqual(anytimeCurve(result.trials));
    expect(fromCheckpoint.anytime).toEqual(result.anytime);
    expect(fromResult.name).toBe('random (seed 3)');
    expect(fromCheckpoint.name).toBe('random (seed 3) #2');
    expect(fromResult.best).toMatchObject({ validation: result.best.validation, test: result.best.test, encoded: result.best.encoded });
    expect(fromResult.trials.map((t) => t.validation)).toEqual(result.trials.map((t) => t.validation));
    expect(collectReport(model).search).toEqual({ curves: [], reason: 'no search result given' });
    model.dispose();
  });

  it('draws a search with failed trials (no point for them, their cost counts) as anytimeCurve does', async () => {
    const failing = { evaluate: (arch: number[]) => { if (arch[1] === 1) throw new Error('diverged'); return evaluator.evaluate(arch); } };
    const result = await search({ space, strategy: 'random', evaluator: failing, budget: { evaluations: 12 }, seed: 3, failures: 'record' });
    expect(result.trials.some((t) => t.error !== undefined)).toBe(true);
    const model = Model.create(lenet300100({ hidden: [4, 4] }));
    const [curve] = collectReport(model, { search: JSON.parse(JSON.stringify(result)) as unknown }).search.curves;
    expect(curve.anytime).toEqual(result.anytime);
    expect(curve.trials.length).toBe(result.trials.filter((t) => t.error === undefined).length);
    model.dispose();
  });

  it('rejects what is not a search result', () => {
    const model = Model.create(lenet300100({ hidden: [4, 4] }));
    expectCode(() => collectReport(model, { search: { best: 1 } }), 'INVALID_ARGUMENT', /trials array/);
    expectCode(() => collectReport(model, { search: { trials: [{ validation: 'high', cost: 1 }] } }), 'INVALID_ARGUMENT', /trial 0/);
    expectCode(() => collectReport(model, { search: { trials: [] } }), 'INVALID_ARGUMENT', /no trials/);
    model.dispose();
  });
});
