// The onlineHistory report section, through @rs/report as a user runs it: a change prepared by a
// policy (in process here), loaded with the registry @rs/online registers, then collectReport.
import { beforeAll, describe, expect, it } from 'vitest';
import { install } from '@rs/backend-cpu';
import { Model, createOpRegistry, lenet300100, loadFromBuffer, saveToBuffer } from '@rs/core';
import { collectReport } from '@rs/report';
import { prepareChange, register } from './index';
import { emptyTelemetry } from '../test/telemetry';

const telemetry = emptyTelemetry;

beforeAll(async () => {
  await install();
});

describe('onlineHistory report section', () => {
  it('lists the edits online policies made, with their reasons', async () => {
    const registry = register(register(createOpRegistry())); // twice: harmless
    const initial = Model.create(lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), { seed: 0 });
    const bytes = new Uint8Array(saveToBuffer(initial));
    const plain = collectReport(initial, { registry });
    expect(plain.sections?.onlineHistory).toMatchObject({ rows: [], reason: 'no edit made by an online policy in this model' });
    initial.dispose();
    const rows = { x: new Float32Array(4 * 8).fill(0.5), y: new Int32Array([0, 1, 2, 0]), rows: 4 };
    const module = `data:text/javascript,export const widen = ${encodeURIComponent(`{ name: 'widen', propose: () => ({ reason: 'widen fc1 by 2', edit: (tx) => tx.insertUnits('fc1', 2) }), accept: () => true }`)};`;
    const reply = await prepareChange({ type: 'prepare', id: 1, model: bytes, policies: [{ module, export: 'widen' }], telemetry, inputShape: [8], replay: rows, canary: rows, fineTune: { steps: 1, batchSize: 4, learningRate: 1e-3, seed: 0 } }, undefined);
    expect(reply.type).toBe('candidate');
    if (reply.type !== 'candidate') return;
    const model = loadFromBuffer(reply.model, { registry });
    try {
      const report = collectReport(model, { registry });
      expect(report.sections?.onlineHistory).toEqual({ rows: [{ seq: model.journal.at(-1)!.seq, policy: 'widen', reason: 'widen fc1 by 2', params: model.counts().params, flops: model.counts().flops }] });
      expect(model.group('fc1').size).toBe(8);
    } finally {
      model.dispose();
    }
  });
});
