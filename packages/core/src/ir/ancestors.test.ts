import { describe, it, expect } from 'vitest';
import { ancestors } from './ancestors';
import type { GraphDef } from './types';

const graph: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }],
  nodes: [
    { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
    { id: 'b', op: 'relu', inputs: ['a'], attrs: {} },
    { id: 'head', op: 'dense', inputs: ['a'], attrs: { units: 2 } },
    { id: 'c', op: 'dense', inputs: ['b'], attrs: { units: 4 } },
    { id: 'sum', op: 'add', inputs: ['c', 'b'], attrs: {} },
    { id: 'out', op: 'dense', inputs: ['sum'], attrs: { units: 2 } },
  ],
  outputs: ['head', 'out'],
};

describe('ancestors', () => {
  it('collects the nodes a target needs (not graph inputs, not unknown ids)', () => {
    expect(ancestors(graph, ['head'])).toEqual(new Set(['head', 'a']));
    expect(ancestors(graph, ['out'])).toEqual(new Set(['out', 'sum', 'c', 'b', 'a']));
    expect(ancestors(graph, ['head', 'c'])).toEqual(new Set(['head', 'a', 'c', 'b']));
    expect(ancestors(graph, ['x', 'nope'])).toEqual(new Set());
  });

  it('follows an alias instead of the aliased node inputs', () => {
    // 'c' skipped: its value is read from 'a', so 'b' is reached only through 'sum'.
    expect(ancestors(graph, ['c'], new Map([['c', 'a']]))).toEqual(new Set(['c', 'a']));
    expect(ancestors(graph, ['out'], new Map([['sum', 'a']]))).toEqual(new Set(['out', 'sum', 'a']));
  });

  it('stops at known values (a shared cache of computed nodes)', () => {
    expect(ancestors(graph, ['out'], new Map(), new Set(['b']))).toEqual(new Set(['out', 'sum', 'c', 'b']));
    expect(ancestors(graph, ['out'], new Map(), new Set(['sum']))).toEqual(new Set(['out', 'sum']));
  });
});
