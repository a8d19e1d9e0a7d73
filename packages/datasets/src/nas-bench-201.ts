import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DatasetError } from './errors.js';

/** One cell of NAS-Bench-201 with its published CIFAR-10 accuracies. */
export interface NasBench201Row {
  /** The benchmark's index (0..15624). */
  index: number;
  /** Architecture string, e.g. `|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|`. */
  arch: string;
  /** CIFAR-10 validation accuracy (%), 200 epochs on the train split: the search signal. */
  validAccuracy: number;
  /** CIFAR-10 test accuracy (%) of the same (train-split) run. */
  validSplitTestAccuracy: number;
  /** CIFAR-10 test accuracy (%), 200 epochs on the full train set: what a search reports. */
  testAccuracy: number;
  /** Parameters in millions. */
  paramsM: number;
}

/** The NAS-Bench-201 CIFAR-10 table returned by {@link loadNasBench201}. */
export interface NasBench201 {
  rows: NasBench201Row[];
  /** Where the numbers come from. */
  source: string;
}

const FILE = 'nb201-cifar10-valid-test.csv';
const HEADER = 'index,arch_str,c10valid_xvalid_acc,c10valid_oritest_acc,c10_oritest_acc,params_M';

/**
 * The 15,625 cells of NAS-Bench-201 (Dong & Yang, ICLR 2020) with their CIFAR-10 accuracies,
 * read from the CSV shipped in this package (`data/`, converted from the MIT-licensed table of
 * Mellor et al.'s "NAS without training"; see `data/NAS-BENCH-201.md`). Search on
 * `validAccuracy`, report `testAccuracy`.
 *
 * @example
 * const { rows } = loadNasBench201();
 * rows.length; // 15625
 */
export function loadNasBench201(): NasBench201 {
  // src/ and dist/ are both one level below the package root.
  const path = fileURLToPath(new URL(`../data/${FILE}`, import.meta.url));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new DatasetError('DATA_NOT_FOUND', `Cannot read ${FILE} at ${path}; reinstall @rs/datasets.`, { path, cause: String(cause) });
  }
  const lines = text.split('\n').filter((line) => line.length > 0);
  if (lines[0].trim() !== HEADER) {
    throw new DatasetError('DATA_CORRUPT', `${FILE} does not start with the expected header '${HEADER}'.`, { path, header: lines[0] });
  }
  const rows: NasBench201Row[] = [];
  for (let i = 1; i < lines.length; i++) {
    const cells = lines[i].trim().split(',');
    const numbers = [cells[0], cells[2], cells[3], cells[4], cells[5]].map(Number);
    if (cells.length !== 6 || numbers.some((n) => !Number.isFinite(n)) || !cells[1].startsWith('|')) {
      throw new DatasetError('DATA_CORRUPT', `${FILE} line ${i + 1} is not a valid row: '${lines[i]}'.`, { path, line: i + 1 });
    }
    rows.push({
      index: numbers[0],
      arch: cells[1],
      validAccuracy: numbers[1],
      validSplitTestAccuracy: numbers[2],
      testAccuracy: numbers[3],
      paramsM: numbers[4],
    });
  }
  if (rows.length !== 15625) {
    throw new DatasetError('DATA_CORRUPT', `${FILE} has ${rows.length} rows, expected 15625.`, { path, rows: rows.length });
  }
  return { rows, source: 'NAS-Bench-201 (Dong & Yang 2020), CIFAR-10, 200 epochs; table of Mellor et al. (MIT)' };
}
