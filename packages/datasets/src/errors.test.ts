import { describe, expect, it } from 'vitest';
import { DatasetError, isDatasetError } from './errors.js';

describe('DatasetError', () => {
  it('carries a stable code, details and a prefixed message', () => {
    const error = new DatasetError('INVALID_ARGUMENT', 'context must be >= 1.', { name: 'context' });
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.details).toEqual({ name: 'context' });
    expect(error.message).toBe('[INVALID_ARGUMENT] context must be >= 1.');
    expect(error.name).toBe('DatasetError');
  });

  it('is recognized by its Symbol.for marker, not by instanceof', () => {
    const foreign = Object.assign(new Error('x'), { code: 'DATA_CORRUPT', [Symbol.for('@rs/datasets.error')]: true });
    expect(isDatasetError(foreign)).toBe(true);
    expect(isDatasetError(foreign, 'DATA_CORRUPT')).toBe(true);
    expect(isDatasetError(foreign, 'INVALID_ARGUMENT')).toBe(false);
    expect(isDatasetError(Object.assign(new Error('x'), { code: 'INVALID_ARGUMENT' }))).toBe(false);
    expect(isDatasetError(null)).toBe(false);
  });
});
