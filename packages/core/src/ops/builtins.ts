import type { OpSchema } from './schema';
import { dense } from './dense';
import { relu } from './relu';
import { add } from './add';

/** Every built-in op, in the order they are registered. */
export const builtinOps: OpSchema<any>[] = [dense, relu, add];
