import type { UnitMapping } from '../units/builder';

/** Positions along an axis occupied by unit `u` under `mapping`, in increasing order. */
export function unitPositions(mapping: UnitMapping, u: number): number[] {
  return blockStarts(mapping).flatMap((start) => {
    const out: number[] = [];
    for (let i = 0; i < mapping.inner; i++) out.push(start + u * mapping.inner + i);
    return out;
  });
}

/** Start of each outer block (the position of unit 0 for every outer index tuple), in order. */
export function blockStarts(mapping: UnitMapping): number[] {
  let bases = [mapping.offset];
  for (let k = mapping.outer.length - 1; k >= 0; k--) {
    const [count, stride] = mapping.outer[k];
    const next: number[] = [];
    for (let o = 0; o < count; o++) for (const b of bases) next.push(b + o * stride);
    bases = next;
  }
  return bases;
}
