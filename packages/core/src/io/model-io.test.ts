import '@tensorflow/tfjs-backend-cpu';
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../tf';
import { Model } from '../model';
import { lenet300100, lenet5 } from '../models/builders';
import { isRsError, type RsError, type RsErrorCode } from '../errors';
import { fit } from '../train/fit';
import { saveToBuffer, loadFromBuffer, save, load } from './model-io';
import { crc32, decodeSafetensors, encodeSafetensors, type RawTensor, type SafetensorsContent } from './safetensors';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Values and exact bit patterns (distinguishes -0 from 0 and NaN payloads). */
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const bits = (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(t.dataSync()).buffer));

function expectCode(f: () => unknown, code: RsErrorCode): RsError {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(isRsError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error as RsError;
}

/** lenet300100 (784-12-6-10) after an edit: two fc1 units removed, a mask on fc2, fc3 frozen. */
function edited(): Model {
  const model = Model.create(lenet300100({ hidden: [12, 6] }), { seed: 4 });
  model.edit(
    (tx) => {
      tx.removeUnits('fc1', [0, 5]);
      const mask = tf.tidy(() => tf.where(tf.greater(tf.randomUniform([10, 6], 0, 1, 'float32', 1), 0.3), tf.ones([10, 6]), tf.zeros([10, 6])));
      tx.setMask('fc2/kernel', mask);
      mask.dispose();
      tx.setTrainable('fc3', false);
    },
    { technique: 'test', reason: 'round trip' },
  );
  return model;
}

function expectSameModel(copy: Model, model: Model): void {
  expect(copy.graph).toEqual(model.graph);
  expect(copy.journal).toEqual(model.journal);
  expect(copy.paramKeys()).toEqual(model.paramKeys());
  for (const key of model.paramKeys()) {
    const [a, b] = [copy.param(key), model.param(key)];
    expect(a.trainable, key).toBe(b.trainable);
    expect(a.role, key).toBe(b.role);
    expect(a.value.shape, key).toEqual(b.value.shape);
    expect(bits(a.value), key).toEqual(bits(b.value));
    expect(a.mask === undefined, key).toBe(b.mask === undefined);
    if (a.mask && b.mask) expect(bits(a.mask), key).toEqual(bits(b.mask));
  }
}

/** Decodes a saved model, lets `change` edit it, and re-encodes it with a correct checksum (unless `change` set one). */
function reencode(buffer: ArrayBuffer, change: (content: SafetensorsContent) => void): Uint8Array {
  const content = decodeSafetensors(buffer);
  const stored = content.metadata.checksum;
  change(content);
  if (content.metadata.checksum === stored) {
    let checksum = 0;
    for (const t of content.tensors.values()) checksum = crc32(t.data, checksum);
    content.metadata.checksum = checksum.toString(16).padStart(8, '0');
  }
  return encodeSafetensors(content);
}

function editGraph(buffer: ArrayBuffer, change: (graph: { nodes: { id: string; op: string; inputs: string[]; attrs: Record<string, unknown> }[] }) => void): Uint8Array {
  return reencode(buffer, ({ metadata }) => {
    const graph = JSON.parse(metadata.graph);
    change(graph);
    metadata.graph = JSON.stringify(graph);
  });
}

const f32 = (shape: number[], fill = 0): RawTensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, data: new Uint8Array(new Float32Array(n).fill(fill).buffer) };
};

describe('safetensors layout', () => {
  it('writes an 8-byte little-endian header length, a space-padded JSON header and contiguous data', () => {
    const a: RawTensor = { dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([1.5, -2]).buffer) };
    const b: RawTensor = { dtype: 'I32', shape: [1, 3], data: new Uint8Array(new Int32Array([7, -1, 65536]).buffer) };
    const bytes = encodeSafetensors({ tensors: new Map([['z/a', a], ['0', b]]), metadata: { note: 'hi' } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(headerText.slice(headerText.trimEnd().length))).toBe(true);
    const header = JSON.parse(headerText);
    expect(header['z/a']).toEqual({ dtype: 'F32', shape: [2], data_offsets: [0, 8] });
    expect(header['0']).toEqual({ dtype: 'I32', shape: [1, 3], data_offsets: [8, 20] });
    expect(header.__metadata__).toEqual({ note: 'hi' });
    // Header order is data order, even for integer-like names.
    expect(headerText.indexOf('"z/a"')).toBeLessThan(headerText.indexOf('"0"'));
    expect(bytes.byteLength).toBe(8 + n + 20);
    const data = new DataView(bytes.buffer, 8 + n);
    expect(data.getFloat32(0, true)).toBe(1.5);
    expect(data.getFloat32(4, true)).toBe(-2);
    expect(data.getInt32(16, true)).toBe(65536);

    const decoded = decodeSafetensors(bytes);
    expect([...decoded.tensors.keys()]).toEqual(['z/a', '0']);
    expect(decoded.metadata).toEqual({ note: 'hi' });
    expect(Array.from(new Float32Array(decoded.tensors.get('z/a')?.data.slice().buffer as ArrayBuffer))).toEqual([1.5, -2]);
    expect(decoded.tensors.get('0')?.shape).toEqual([1, 3]);
  });

  it('computes the standard CRC-32, also piece by piece', () => {
    const text = new TextEncoder().encode('123456789');
    expect(crc32(text)).toBe(0xcbf43926);
    expect(crc32(text.subarray(4), crc32(text.subarray(0, 4)))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('rejects malformed files with IO_CORRUPT or IO_TRUNCATED', () => {
    const header = (h: unknown, dataBytes: number) => {
      const json = new TextEncoder().encode(JSON.stringify(h));
      const out = new Uint8Array(8 + json.length + dataBytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      return out;
    };
    const t = (offsets: [number, number], dtype = 'F32', shape = [2]) => ({ dtype, shape, data_offsets: offsets });
    expect(decodeSafetensors(header({ a: t([0, 8]), b: t([8, 16]) }, 16)).tensors.size).toBe(2);
    expectCode(() => decodeSafetensors(header({ a: t([0, 8]), b: t([4, 12]) }, 12)), 'IO_CORRUPT'); // overlap
    expectCode(() => decodeSafetensors(header({ a: t([0, 8]), b: t([12, 20]) }, 20)), 'IO_CORRUPT'); // hole
    expectCode(() => decodeSafetensors(header({ a: t([0, 8]), b: t([1000, 1008]) }, 16)), 'IO_CORRUPT'); // out of range
    expectCode(() => decodeSafetensors(header({ a: t([0, 8], 'F16', [4]) }, 8)), 'IO_CORRUPT'); // dtype
    expectCode(() => decodeSafetensors(header({ a: t([0, 12]) }, 12)), 'IO_CORRUPT'); // size vs shape
    expectCode(() => decodeSafetensors(header({ a: t([0, 8]) }, 12)), 'IO_CORRUPT'); // trailing bytes
    expectCode(() => decodeSafetensors(header({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, 0)), 'IO_CORRUPT');
    expectCode(() => decodeSafetensors(header({ __metadata__: { a: 1 } }, 0)), 'IO_CORRUPT');
    expectCode(() => decodeSafetensors(header([1, 2], 0)), 'IO_CORRUPT');
    expectCode(() => decodeSafetensors(header({ a: t([0, 8]), b: t([8, 16]) }, 12)), 'IO_TRUNCATED');
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 0xffffffffffffn, true);
    expectCode(() => decodeSafetensors(huge), 'IO_CORRUPT');
    const invalidUtf8 = header({}, 0);
    invalidUtf8[9] = 0xff;
    expectCode(() => decodeSafetensors(invalidUtf8), 'IO_CORRUPT');
  });
});

describe('save and load', () => {
  it('reproduces outputs bit for bit, with graph, journal, masks and trainable flags', () => {
    const model = edited();
    expect(model.journal).toHaveLength(1);
    const buffer = saveToBuffer(model);
    expect(buffer).toBeInstanceOf(ArrayBuffer);
    const copy = loadFromBuffer(buffer);
    expectSameModel(copy, model);
    expect(copy.param('fc1/kernel').value.shape).toEqual([784, 10]);
    expect(copy.param('fc3/kernel').trainable).toBe(false);
    expect(copy.param('fc2/kernel').mask).toBeDefined();
    const x = tf.randomNormal([5, 784], 0, 1, 'float32', 2);
    const [a, b] = [copy.apply(x), model.apply(x)];
    expect(values(a)).toEqual(values(b));
    expect(bits(a)).toEqual(bits(b));
    // The loaded model edits and journals on.
    copy.edit((tx) => tx.removeUnits('fc2', [1]), { technique: 'test', reason: 'after load' });
    expect(copy.journal.map((e) => e.reason)).toEqual(['round trip', 'after load']);
    tf.dispose([x, a, b]);
    model.dispose();
    copy.dispose();
  });

  it('copies special float values exactly (-0, NaN payloads, infinities, subnormals)', () => {
    const model = Model.create(lenet300100({ hidden: [12, 6] }), { seed: 3 });
    const special = new Float32Array(10);
    new Uint32Array(special.buffer).set([0x80000000, 0x7fc00001, 0xffc12345, 0x7f800000, 0xff800000, 0x00000001, 0x807fffff, 0x3f800000, 0x00000000, 0x7f7fffff]);
    const value = tf.tensor1d(special, 'float32');
    model.edit((tx) => tx.setParam('fc3/bias', value), { technique: 'test', reason: 'special values' });
    value.dispose();
    const copy = loadFromBuffer(saveToBuffer(model));
    expect(bits(copy.param('fc3/bias').value)).toEqual(Array.from(new Uint32Array(special.buffer)));
    expectSameModel(copy, model);
    model.dispose();
    copy.dispose();
  });

  it('loads from any Uint8Array view (unaligned offset, Node Buffer) and inside tf.tidy', () => {
    const model = edited();
    const buffer = new Uint8Array(saveToBuffer(model));
    const padded = new Uint8Array(buffer.length + 3);
    padded.set(buffer, 3);
    const fromView = loadFromBuffer(padded.subarray(3));
    expectSameModel(fromView, model);
    const fromNodeBuffer = loadFromBuffer(Buffer.from(buffer));
    expectSameModel(fromNodeBuffer, model);
    let inTidy: Model | undefined;
    tf.tidy(() => {
      inTidy = loadFromBuffer(buffer);
    });
    if (!inTidy) throw new Error('unreachable');
    expect(inTidy.param('fc1/kernel').value.isDisposed).toBe(false);
    expectSameModel(inTidy, model);
    for (const m of [model, fromView, fromNodeBuffer, inTidy]) m.dispose();
  });

  it('round-trips a trained conv model through a file, with optimizer state only when asked', async () => {
    const model = Model.create(lenet5({ filters: [2, 3], hidden: [8, 8] }), { seed: 1 });
    const data = { x: tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 3), y: tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32') };
    await fit(model, data, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 4 });
    expect(model.internalState.slots.size).toBeGreaterThan(0);
    const dir = mkdtempSync(join(tmpdir(), 'rs-io-'));
    try {
      const path = join(dir, 'model.rsm');
      await save(model, path, { includeOptimizerState: true });
      expect(readdirSync(dir)).toEqual(['model.rsm']); // no temporary file left behind
      const copy = await load(path);
      expectSameModel(copy, model);
      const [a, b] = [copy.apply(data.x), model.apply(data.x)];
      expect(values(a)).toEqual(values(b));
      tf.dispose([a, b]);
      const slots = model.internalState.slots;
      expect([...copy.internalState.slots.keys()].sort()).toEqual([...slots.keys()].sort());
      for (const [key, map] of slots) {
        for (const [name, t] of map) expect(bits(copy.internalState.slots.get(key)?.get(name) as tf.Tensor), `${key} ${name}`).toEqual(bits(t));
      }
      copy.dispose();

      await save(model, path); // overwrite, without optimizer state
      const light = await load(path, { seed: 7 });
      expect(light.internalState.slots.size).toBe(0);
      expectSameModel(light, model);
      light.dispose();

      writeFileSync(join(dir, 'broken.rsm'), new Uint8Array(saveToBuffer(model)).subarray(0, 100));
      await expect(load(join(dir, 'broken.rsm'))).rejects.toMatchObject({ code: 'IO_TRUNCATED' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('corrupt, truncated, mismatched and foreign files give typed errors and leak nothing', () => {
    const model = edited();
    const good = saveToBuffer(model);
    const goodBytes = new Uint8Array(good);
    const tensors = tf.memory().numTensors;

    // A flipped byte in the data section (the CRC32 catches it).
    const flipped = goodBytes.slice();
    flipped[flipped.length - 10] ^= 0x01;
    expectCode(() => loadFromBuffer(flipped), 'IO_CORRUPT');
    const flippedFirst = goodBytes.slice();
    flippedFirst[decodeSafetensors(good).dataStart] ^= 0x80;
    expectCode(() => loadFromBuffer(flippedFirst), 'IO_CORRUPT');

    // A garbage header.
    const garbage = goodBytes.slice();
    garbage[9] = 0x7b; // '{' inside the header JSON
    garbage[10] = 0x7b;
    expectCode(() => loadFromBuffer(garbage), 'IO_CORRUPT');
    const random = goodBytes.slice();
    for (let i = 8; i < 200; i++) random[i] = (i * 37) & 0xff;
    expectCode(() => loadFromBuffer(random), 'IO_CORRUPT');

    // Truncated anywhere.
    for (const length of [0, 5, 8, 40, goodBytes.length - 1000, goodBytes.length - 1]) {
      expectCode(() => loadFromBuffer(goodBytes.slice(0, length)), 'IO_TRUNCATED');
    }

    // Weights that do not fit the graph.
    const units = expectCode(() => loadFromBuffer(editGraph(good, (g) => (g.nodes[0].attrs.units = 11))), 'IO_MISMATCH');
    expect(units.message).toContain("'fc1/kernel'");
    expect(units.message).toContain('[784, 10]');
    expect(units.message).toContain('[784, 11]');
    const mask = expectCode(
      () => loadFromBuffer(reencode(good, (c) => c.tensors.set('fc2/kernel::mask', f32([10, 5], 1)))),
      'IO_MISMATCH',
    );
    expect(mask.message).toContain("'fc2/kernel'");
    expect(mask.message).toContain('[10, 5]');
    expect(mask.message).toContain('[10, 6]');
    expectCode(() => loadFromBuffer(reencode(good, (c) => c.tensors.delete('fc3/bias'))), 'IO_MISMATCH');
    expectCode(() => loadFromBuffer(reencode(good, (c) => c.tensors.set('fc9/bias', f32([3])))), 'IO_MISMATCH');
    expectCode(() => loadFromBuffer(reencode(good, (c) => c.tensors.set('fc1/kernel::slot::m', f32([784, 3])))), 'IO_MISMATCH');
    expectCode(() => loadFromBuffer(reencode(good, (c) => c.tensors.delete('fc2/kernel::mask'))), 'IO_MISMATCH');
    expectCode(() => loadFromBuffer(reencode(good, (c) => c.tensors.set('fc3/kernel::mask', f32([6, 10], 1)))), 'IO_MISMATCH');
    // A graph this registry rejects: unknown ops keep their code, others are IO_MISMATCH.
    expectCode(() => loadFromBuffer(editGraph(good, (g) => (g.nodes[1].op = 'notAnOp'))), 'UNKNOWN_OP');
    expectCode(() => loadFromBuffer(editGraph(good, (g) => (g.nodes[0].inputs = ['relu2']))), 'IO_MISMATCH');

    // Malformed metadata.
    expectCode(() => loadFromBuffer(reencode(good, ({ metadata }) => (metadata.graph = '{not json'))), 'IO_CORRUPT');
    expectCode(() => loadFromBuffer(reencode(good, ({ metadata }) => (metadata.graph = '{"inputs": [], "nodes": [null], "outputs": ["x"]}'))), 'IO_CORRUPT');
    expectCode(() => loadFromBuffer(reencode(good, ({ metadata }) => (metadata.params = '{"fc1/kernel": 1}'))), 'IO_CORRUPT');
    expectCode(() => loadFromBuffer(reencode(good, ({ metadata }) => (metadata.journal = '{}'))), 'IO_CORRUPT');
    expectCode(() => loadFromBuffer(reencode(good, ({ metadata }) => delete metadata.checksum)), 'IO_CORRUPT');

    // Not a model, or another version.
    expectCode(() => loadFromBuffer(reencode(good, ({ metadata }) => (metadata.format = 'something-else'))), 'IO_NOT_A_MODEL');
    expectCode(() => loadFromBuffer(encodeSafetensors({ tensors: new Map([['w', f32([2])]]), metadata: {} })), 'IO_NOT_A_MODEL');
    expectCode(() => loadFromBuffer(reencode(good, ({ metadata }) => (metadata.version = '99'))), 'IO_UNSUPPORTED_VERSION');
    expectCode(() => loadFromBuffer(reencode(good, ({ metadata }) => delete metadata.version)), 'IO_UNSUPPORTED_VERSION');

    expect(tf.memory().numTensors).toBe(tensors);
    // The re-encoder itself is faithful: an unchanged re-encode loads.
    const same = loadFromBuffer(reencode(good, () => undefined));
    expectSameModel(same, model);
    same.dispose();
    model.dispose();
  });
});
