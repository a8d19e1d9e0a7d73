/**
 * @rs/grow: function-preserving and gradient-guided growth of @rs/core models.
 */
export { widen, deepen, SPLITS as NET2NET_SPLITS } from './net2net';
export { growGradMax } from './gradmax';
export type { GradMaxOptions } from './gradmax';
export { growOnPlateau, checkBudget } from './plateau';
export type { PlateauOptions, GrowthBudget } from './plateau';
export { cascadeCorrelation } from './cascor';
export type { CascorData, CascorOptions, CascorResult, CascorUnit, CascorNetwork } from './cascor';
