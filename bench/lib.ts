/** The bench helpers live in src/bench/lib.ts (they ship with `rewind bench`); sections under bench/ import them from here. */
export * from '../src/bench/lib.js';
