import cliProgress from 'cli-progress';
import type { Context } from './io';

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Short label at the start of the bar or line (`train`, `search`). */
  label: string;
  /** Total amount of work, in `unit`s. */
  total: number;
  /** What is counted: `steps`, `evaluations`. */
  unit: string;
}

/**
 * Progress of a long task. On a terminal (stderr is a TTY) it is a cli-progress bar with ETA,
 * redrawn in place; elsewhere (pipes, CI logs) it prints a plain line at each milestone (an
 * epoch, every N evaluations) with elapsed time and ETA. Nothing is drawn with --quiet.
 * Progress always goes to stderr, so stdout stays clean for --json.
 */
export interface Progress {
  /** Reports `value` units done; `text` describes the state (loss, best score). */
  update(value: number, text: string): void;
  /** Like `update`, and in plain mode also prints a line. */
  milestone(value: number, text: string): void;
  /** Ends the bar (leaves it drawn at its final state). */
  stop(): void;
}

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

export function createProgress(context: Context, options: ProgressOptions): Progress {
  const { label, total, unit } = options;
  const stream = context.io.stderr;
  if (context.quiet) return { update() {}, milestone() {}, stop() {} };
  if (stream.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        stream: stream as unknown as NodeJS.WritableStream,
        format: `${label} |{bar}| {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted} | {text}`,
        barsize: 24,
        hideCursor: true,
        etaBuffer: 50,
        fps: 10,
        autopadding: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { text: '' });
    let stopped = false;
    return {
      update(value, text) {
        bar.update(value, { text });
      },
      milestone(value, text) {
        bar.update(value, { text });
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }
  const started = performance.now();
  return {
    update() {},
    milestone(value, text) {
      const elapsed = (performance.now() - started) / 1000;
      const eta = value > 0 ? (elapsed / value) * (total - value) : Number.NaN;
      stream.write(`${label} ${value}/${total} ${unit}  ${text}  (${seconds(elapsed)} elapsed, ETA ${seconds(eta)})\n`);
    },
    stop() {},
  };
}
