// Fuzzes loadFromBuffer (`pnpm fuzz`; not run in CI). Mutates valid saved models (a small MLP, a
// conv net, an edited MLP with masks and optimizer slots, a random graph with adds, concats and
// layerNorms): bit flips, truncation, splices, header-length and JSON-header rewrites (shapes,
// dtypes, offsets, graph, parameter table, journal, training state, checksum), most of them with
// the CRC32 recomputed so that the load reaches graph and parameter-table validation.
//
// Every input must load (then apply a batch and dispose without leaking) or be refused with an
// RsError whose code is IO_* (or UNKNOWN_OP); anything else, or an input taking over 1 s, is a
// crash. Crashers are written to packages/core/src/io/fuzz-corpus/<hash>.bin; exit 1 if any.
//
// Runs on the build (`pnpm --filter @rs/core build` first). FUZZ_SECONDS (default 600) bounds
// the run; FUZZ_SEED seeds it (default: time).
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const core = join(root, 'packages/core');
const requireFromCore = createRequire(join(core, 'package.json'));
await import(pathToFileURL(requireFromCore.resolve('@tensorflow/tfjs-backend-cpu')).href);
const { tf } = await import(pathToFileURL(join(core, 'dist/index.js')).href);
const { choicesFrom, drawMutationPlan, applyMutationPlan, fuzzSeedFiles, tryLoad, MAX_APPLY_ELEMENTS } = await import(pathToFileURL(join(core, 'dist/testing.js')).href);

await tf.setBackend('cpu');
tf.env().set('IS_TEST', true); // no "hi there" console banner from the cpu backend

const seconds = Number(process.env.FUZZ_SECONDS ?? 600);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const HANG_MS = 1000;
const corpusDir = join(core, 'src/io/fuzz-corpus');

const corpus = fuzzSeedFiles();
const tried = { total: 0, loaded: 0, notApplied: 0, crashes: 0 };
const refused = new Map();
const crashers = new Map();
let slowest = { ms: 0, plan: undefined };

const describe = (error) => (error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error));

/** Runs one input; returns the crash description (or undefined). */
function run(bytes) {
  const start = performance.now();
  const result = tryLoad(bytes);
  const ms = performance.now() - start;
  if (result.outcome === 'crash') return `${result.stage}: ${describe(result.error)}`;
  if (ms > HANG_MS) return `hang: ${ms.toFixed(0)} ms`;
  return undefined;
}

/** One crasher per kind of crash (stage and message without numbers): the first one found, shrunk. */
const signature = (crash) => crash.replace(/\d+(\.\d+)?/g, 'N');

function record(plan, bytes, choices) {
  tried.total++;
  const start = performance.now();
  const result = tryLoad(bytes);
  const ms = performance.now() - start;
  if (ms > slowest.ms) slowest = { ms, plan };
  let crash;
  if (result.outcome === 'crash') crash = `${result.stage}: ${describe(result.error)}`;
  else if (ms > HANG_MS) crash = `hang: ${ms.toFixed(0)} ms`;
  else if (result.outcome === 'loaded') {
    tried.loaded++;
    if (!result.applied) tried.notApplied++;
  } else refused.set(result.code, (refused.get(result.code) ?? 0) + 1);
  if (!crash) return;
  tried.crashes++;
  const kind = signature(crash);
  if (crashers.has(kind)) return;
  // A slow input is timed again: only one that is slow twice is a hang.
  const again = crash.startsWith('hang') ? run(bytes) : crash;
  if (again === undefined) return;
  const shrunk = shrink(choices) ?? { plan, bytes };
  const hash = createHash('sha256').update(shrunk.bytes).digest('hex').slice(0, 16);
  crashers.set(kind, hash);
  mkdirSync(corpusDir, { recursive: true });
  writeFileSync(join(corpusDir, `${hash}.bin`), shrunk.bytes);
  console.log(`CRASH ${hash}.bin ${crash}\n  plan: ${JSON.stringify(plan)}\n  shrunk: ${JSON.stringify(shrunk.plan)}`);
}

/** Shrinks a crashing choice list with fast-check; returns the smallest plan that still crashes (and its bytes). */
function shrink(choices) {
  const details = fc.check(
    fc.property(fc.array(fc.nat(), { maxLength: 80 }), (list) => run(applyMutationPlan(corpus, drawMutationPlan(choicesFrom(list)))) === undefined),
    { examples: [[choices]], numRuns: 1, seed },
  );
  if (!details.failed || !details.counterexample) return undefined;
  const plan = drawMutationPlan(choicesFrom(details.counterexample[0]));
  return { plan, bytes: applyMutationPlan(corpus, plan) };
}

console.log(`fuzz-load: seed ${seed}, ${seconds} s, ${corpus.length} seed files (${corpus.map((f) => f.length).join(', ')} bytes)`);
// The unmutated seed files must load.
for (const [i, bytes] of corpus.entries()) {
  const result = tryLoad(bytes);
  if (result.outcome !== 'loaded') throw new Error(`seed file ${i} does not load: ${JSON.stringify(result)}`);
}

const deadline = Date.now() + seconds * 1000;
const choices = fc.array(fc.nat(), { minLength: 8, maxLength: 80 });
let round = 0;
while (Date.now() < deadline) {
  for (const list of fc.sample(choices, { seed: seed + round++, numRuns: 200 })) {
    if (Date.now() >= deadline) break;
    const plan = drawMutationPlan(choicesFrom(list));
    record(plan, applyMutationPlan(corpus, plan), list);
  }
}

const byCode = [...refused].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', ');
console.log(
  `fuzz-load summary: ${tried.total} inputs, ${tried.loaded} loaded (${tried.notApplied} not applied: inputs over ${MAX_APPLY_ELEMENTS} elements), refused by code {${byCode}}, ${tried.crashes} crashes (${crashers.size} kinds), slowest ${slowest.ms.toFixed(1)} ms, seed ${seed}`,
);
if (slowest.plan) console.log(`slowest plan: ${JSON.stringify(slowest.plan)}`);
process.exit(crashers.size > 0 ? 1 : 0);
