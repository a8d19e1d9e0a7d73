/** `266610` -> `266,610`. */
export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `0.9512` -> `95.12%`. */
export function percent(fraction: number, digits = 2): string {
  return `${(100 * fraction).toFixed(digits)}%`;
}

/** `[null, 28, 28, 1]` -> `[?, 28, 28, 1]`. */
export function shape(s: readonly (number | null)[] | null | undefined): string {
  if (!s) return '?';
  return `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** `a -> b`, or just `a` when nothing changed. */
export function change(before: number, after: number): string {
  return before === after ? int(after) : `${int(before)} -> ${int(after)}`;
}

/**
 * A plain-text table: header, a rule, rows; columns listed in `right` are right-aligned
 * (numbers). Every line is trimmed at the end.
 */
export function table(header: string[], rows: string[][], right: number[] = []): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}
