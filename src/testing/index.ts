export { type ConformanceOptions, describeEventStoreConformance } from './conformance.js';
