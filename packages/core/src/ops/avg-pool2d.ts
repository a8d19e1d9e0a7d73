import { tf } from '../tf';
import { pool2dSchema, type Pool2dAttrs } from './pool2d';

export type AvgPool2dAttrs = Pool2dAttrs;

/**
 * Mean over `poolSize` windows of an NHWC input, per channel. Units pass through unchanged.
 *
 * @example
 * { id: 'p1', op: 'avgPool2d', inputs: ['c1'], attrs: { poolSize: 2 } }
 */
export const avgPool2d = pool2dSchema('avgPool2d', tf.avgPool as typeof tf.maxPool);
