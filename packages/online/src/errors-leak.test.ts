// Every public function of @rs/online that makes tensors leaves the live-tensor count unchanged
// when it throws or refuses, with a typed error, and leaves the store as it was.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { install } from '@rs/backend-cpu';
import { Model, isRsError, lenet300100, saveToBuffer, tf } from '@rs/core';
import { leakOnThrow } from '@rs/core/testing';
import { OnlineServer, VersionStore, prepareChange, resolvePolicy, type PrepareRequest } from './index';
import { emptyTelemetry } from '../test/telemetry';

let dir: string;
let bytes: Uint8Array;

const telemetry = emptyTelemetry;

function request(overrides: Partial<PrepareRequest>): PrepareRequest {
  const rows = { x: new Float32Array(4 * 8).fill(0.5), y: new Int32Array([0, 1, 2, 0]), rows: 4 };
  return { type: 'prepare', id: 1, model: bytes, policies: ['refresh'], telemetry, inputShape: [8], replay: rows, canary: rows, fineTune: { steps: 2, batchSize: 4, learningRate: 1e-3, seed: 0 }, ...overrides };
}

beforeAll(async () => {
  await install();
  dir = mkdtempSync(join(tmpdir(), 'rs-online-errors-'));
  const model = Model.create(lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), { seed: 0 });
  bytes = new Uint8Array(saveToBuffer(model));
  model.dispose();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('errors leak nothing and are typed', () => {
  it('prepareChange: corrupt model bytes', async () => {
    const { error, leaked } = await leakOnThrow(() => prepareChange(request({ model: bytes.slice(0, 20) }), undefined));
    expect(leaked).toBe(0);
    expect(isRsError(error) && error.code.startsWith('IO_')).toBe(true);
  });

  it('prepareChange: replay rows that do not match the input shape', async () => {
    const { error, leaked } = await leakOnThrow(() => prepareChange(request({ replay: { x: new Float32Array(5), y: new Int32Array(1), rows: 1 } }), undefined));
    expect(leaked).toBe(0);
    expect(isRsError(error, 'DATA_MISMATCH')).toBe(true);
  });

  it('prepareChange: an unknown policy is INVALID_ARGUMENT', async () => {
    const { error, leaked } = await leakOnThrow(() => prepareChange(request({ policies: ['noSuchPolicy'] }), undefined));
    expect(leaked).toBe(0);
    expect(isRsError(error, 'INVALID_ARGUMENT')).toBe(true);
    await expect(resolvePolicy({ name: 'alsoMissing' })).rejects.toThrow(/Unknown policy/);
  });

  it('prepareChange: a policy whose edit core refuses is a refusal, nothing leaked', async () => {
    const before = tf.memory().numTensors;
    const module = `data:text/javascript,export const refusing = ${encodeURIComponent(`{ name: 'refusing', propose: () => ({ reason: 'bad index', edit: (tx) => tx.removeUnits('fc1', [99]) }) }`)};`;
    const reply = await prepareChange(request({ policies: [{ module, export: 'refusing' }] }), undefined);
    expect(reply).toMatchObject({ type: 'refused', policy: 'refusing', error: { code: 'UNIT_INDEX_OUT_OF_RANGE' } });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('OnlineServer.open: bad options and an empty store without a model', async () => {
    const empty = join(dir, 'empty');
    for (const call of [
      () => OnlineServer.open(undefined, { dir: empty, worker: { setup: '/nowhere.mjs' } }),
      () => OnlineServer.open(undefined, { dir: empty } as never),
      () => OnlineServer.open(undefined, { dir: empty, worker: { setup: '/nowhere.mjs' }, policies: ['noSuchPolicy'] }),
    ]) {
      const { error, leaked } = await leakOnThrow(call);
      expect(leaked).toBe(0);
      expect(isRsError(error, 'INVALID_ARGUMENT')).toBe(true);
    }
    expect(new VersionStore(empty).current()).toBeUndefined();
  });

  it('VersionStore: an empty path and a missing version', () => {
    expect(() => new VersionStore('')).toThrow(/non-empty path/);
    expect(() => new VersionStore(join(dir, 'store')).readVersion(7)).toThrow(/Version 7 has no file/);
  });
});
