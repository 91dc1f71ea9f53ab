export * from './definition.js';
export * from './effective-history.js';
export * from './errors.js';
export * from './projections.js';
export type { FindQuery, FoundDoc, Scalar } from './query.js';
export type { ProjectionRecord } from './storage/types.js';
