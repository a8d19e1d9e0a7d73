import type { TensorInfo } from '../ir/types';

/**
 * Where one group's units sit on an axis. Unit `u` of the group occupies the positions
 * `offset + sum_k(o_k * outer[k].stride) + u * inner + i` for every outer index tuple `o` and
 * every `i < inner`. A plain dense output is `{offset: 0, outer: [], inner: 1}`; a conv channel
 * seen through flatten is `{outer: [[H*W, C]]}`; an attention head inside `wq` is `{inner: headDim}`.
 */
export interface UnitMapping {
  offset: number;
  outer: [count: number, stride: number][];
  inner: number;
}

/** One group's run of units on a tensor's feature axis. `group` is an internal handle. */
export interface LayoutMember extends UnitMapping {
  group: number;
  size: number;
}

/** The feature (last) axis of a tensor, described as runs of unit groups. */
export interface Layout {
  length: number;
  members: LayoutMember[];
}

/** A parameter axis indexed by units, for `UnitBuilder.source`. */
export interface ParamAxis {
  param: string;
  axis: number;
  /** Elements per unit along the axis (attention: head dimension). Default 1. */
  inner?: number;
  /**
   * `out`: the unit's own (incoming) weights, initialised by the op's initializer on insert.
   * `in`: weights that read the unit (outgoing), zero on insert so the function is preserved.
   * Default `out`.
   */
  role?: 'out' | 'in';
}

/**
 * What an op's `units` function receives: the op describes how its output's feature axis
 * relates to its inputs' and which parameter axes are indexed by units.
 *
 * @example
 * // dense: consumes the input's units with kernel rows, produces `units` new ones.
 * units: (u) => {
 *   u.consume(u.input(0), 'kernel', 0);
 *   return u.source('out', u.attrs.units, [{ param: 'kernel', axis: 1 }, { param: 'bias', axis: 0 }]);
 * }
 */
export interface UnitBuilder<A> {
  readonly nodeId: string;
  readonly attrs: A;
  readonly inputs: TensorInfo[];
  readonly output: TensorInfo;
  /** Layout of input `i`'s feature axis, or null when it has none (integer ids). */
  input(i: number): Layout | null;
  /** A new group of `size` units born at this node; `params` are the axes it indexes. */
  source(name: string, size: number, params: ParamAxis[], options?: { inner?: number }): Layout;
  /** `param`'s `axis` is indexed by the units of `layout` (weights that read those units). */
  consume(layout: Layout | null, param: string, axis: number): void;
  /** Elementwise coupling: the layouts' units are the same units. */
  merge(...layouts: (Layout | null)[]): Layout | null;
  /** Concatenation along the feature axis. */
  concat(layouts: (Layout | null)[], lengths: number[]): Layout;
  /** The layout repeated `outerCount` times (flatten of `[..., spatial, C]`). */
  expand(layout: Layout | null, outerCount: number): Layout | null;
  /** A feature axis of `length` positions whose size may not change (reason is reported). */
  fixed(length: number, reason: string): Layout;
  /** Forbid edits of every group in `layout`, with a reason users will read. */
  freeze(layout: Layout | null, reason: string): void;
  /**
   * Declares that this op normalises across the units of `layout` (layer norm, RMS norm, a
   * softmax over the feature axis): every output depends on statistics of all the units, so
   * inserting units changes the function even when the new units' outgoing weights are zero.
   * The groups stay editable, but `tx.insertUnits` refuses them with `FUNCTION_NOT_PRESERVED`
   * unless the caller passes `{ allowFunctionChange: true }`; tools read the reasons on
   * `UnitGroup.insertChangesFunction`. `reason` says what the op computes over the units
   * (`'mean and variance are taken over them'`); the node is named for you. Returns `layout`.
   *
   * @example
   * units(u) {
   *   const l = u.input(0);
   *   u.consume(l, 'gamma', 0);
   *   return u.normalizes(l, 'the root mean square is taken over them');
   * }
   */
  normalizes(layout: Layout | null, reason: string): Layout | null;
}
