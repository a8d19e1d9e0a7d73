// Queue-worker evaluator for the nas-queue benchmark: NAS-Bench-201 table lookups (the evaluator
// of a local search) after an artificial delay that stands in for training: delayMs, plus up to
// varyMs that depends on the architecture (a fixed fraction per architecture string), so that
// results arrive out of proposal order as real training times would make them.
import { loadNasBench201 } from '@rs/datasets';
import { nb201Space, tableEvaluator } from '@rs/nas';

/** The delay of an architecture in ms (deterministic). */
export function delay(options, encoded) {
  let hash = 0;
  for (const c of encoded) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return (options.delayMs ?? 0) + ((options.varyMs ?? 0) * (hash % 1000)) / 1000;
}

export function createEvaluator(options = {}) {
  const table = tableEvaluator(nb201Space(), loadNasBench201().rows);
  return {
    async evaluate(arch, encoded) {
      await new Promise((resolve) => setTimeout(resolve, delay(options, encoded)));
      return table.evaluate(arch, encoded);
    },
  };
}
