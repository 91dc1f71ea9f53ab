/**
 * How deep JSON may nest, and a look at JSON text that tells whether it nests
 * deeper without parsing it. Both are bounded: a value deeper than the call
 * stack allows must be refused before anything recursive walks it.
 */

/** Containers (arrays, objects) inside one another; deeper than this is refused. */
export const MAX_JSON_DEPTH = 1000;

const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * True when JSON text opens more than `max` containers inside one another.
 * One pass over the characters, brackets inside strings ignored, no recursion
 * and no allocation; text that is not JSON at all is left to the parser.
 */
export function jsonTextNestsDeeperThan(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}
