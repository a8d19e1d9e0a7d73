import { tf } from '../tf';
import { pool2dSchema, type Pool2dAttrs } from './pool2d';

export type MaxPool2dAttrs = Pool2dAttrs;

/**
 * Maximum over `poolSize` windows of an NHWC input, per channel. Units pass through unchanged.
 *
 * @example
 * { id: 'p1', op: 'maxPool2d', inputs: ['c1'], attrs: { poolSize: 2 } }
 */
export const maxPool2d = pool2dSchema('maxPool2d', tf.maxPool);
