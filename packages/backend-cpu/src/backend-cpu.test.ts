import { describe, it, expect } from 'vitest';
import { backends, tf, useBackend, isRsError } from '@rs/core';
import { install } from './index';

describe('@rs/backend-cpu', () => {
  it('installs, registers with core and becomes active', async () => {
    const info = await install();
    expect(info.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(backends().map((b) => b.name)).toContain('cpu');
    await useBackend('cpu');
  });

  it('useBackend of an uninstalled backend is a typed error', async () => {
    await expect(useBackend('nope')).rejects.toSatisfy((e: unknown) => isRsError(e, 'NO_BACKEND'));
  });
});
