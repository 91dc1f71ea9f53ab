import { hash } from 'node:crypto';
import { scratch, writeHash } from './bytes.js';

/**
 * The Merkle tree of Certificate Transparency (RFC 9162 §2.1) with SHA-256:
 * a leaf is H(0x00 ‖ data), an inner node H(0x01 ‖ left ‖ right), and the
 * left subtree of n leaves holds the largest power of two below n. The same
 * tree lets anyone check that one leaf is in it (an inclusion proof of
 * log₂ n hashes) without seeing the others. Hashes travel as hex.
 */

/** The root of a tree without leaves: SHA-256 of nothing. */
export const EMPTY_ROOT = hash('sha256', '', 'hex');

export function nodeHash(left: string, right: string): string {
  const node = scratch(65);
  node[0] = 1;
  writeHash(node, left, 1);
  writeHash(node, right, 33);
  return hash('sha256', node.subarray(0, 65), 'hex');
}

/** The sizes of the perfect subtrees a tree of `size` leaves is made of, left to right: its binary digits, highest first. */
export function peakSizes(size: number): number[] {
  const sizes: number[] = [];
  for (let bit = 2 ** Math.floor(Math.log2(Math.max(size, 1))); bit >= 1; bit /= 2) if (Math.floor(size / bit) % 2 === 1) sizes.push(bit);
  return sizes;
}

/** The root from the perfect subtrees' roots, folded right to left: what RFC 9162 defines for any size. */
export function rootOfPeaks(peaks: readonly string[]): string {
  if (peaks.length === 0) return EMPTY_ROOT;
  let root = peaks[peaks.length - 1] as string;
  for (let i = peaks.length - 2; i >= 0; i--) root = nodeHash(peaks[i] as string, root);
  return root;
}

/**
 * Builds the tree one leaf at a time, keeping only the roots of its perfect
 * subtrees (the peaks): O(log n) memory, one inner hash per leaf on average.
 * The peaks are also what a later accumulator continues from.
 */
export class MerkleAccumulator {
  #peaks: string[];
  #size: number;

  constructor(size = 0, peaks: readonly string[] = []) {
    if (peakSizes(size).length !== peaks.length || (size === 0 && peaks.length > 0)) {
      throw new RangeError(`a tree of ${size} leaves has ${size === 0 ? 0 : peakSizes(size).length} peaks, not ${peaks.length}`);
    }
    this.#size = size;
    this.#peaks = [...peaks];
  }

  get size(): number {
    return this.#size;
  }

  /** The roots of the perfect subtrees, left to right (a copy). */
  get peaks(): string[] {
    return [...this.#peaks];
  }

  /** The root of the newest perfect subtree: after push(), the subtree the leaf just completed. */
  get lastPeak(): string | undefined {
    return this.#peaks[this.#peaks.length - 1];
  }

  push(leaf: string): void {
    let merged = leaf;
    // Each trailing 1 bit of the old size is a peak of the same size as what we carry: merge them.
    for (let s = this.#size; s % 2 === 1; s = (s - 1) / 2) merged = nodeHash(this.#peaks.pop() as string, merged);
    this.#peaks.push(merged);
    this.#size++;
  }

  root(): string {
    return rootOfPeaks(this.#peaks);
  }
}

/** The root of leaves[from, to), as RFC 9162 defines it (recursively, largest power of two on the left). */
function subtreeRoot(leaf: (i: number) => string, from: number, to: number): string {
  const n = to - from;
  if (n === 1) return leaf(from);
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(subtreeRoot(leaf, from, from + k), subtreeRoot(leaf, from + k, to));
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The audit path of leaf `index` in the tree of the first `size` leaves
 * (RFC 9162 §2.1.3.1): the sibling subtree roots from the leaf up. Reads
 * every leaf once.
 */
export function inclusionPath(leaf: (i: number) => string, index: number, size: number): string[] {
  if (!(Number.isInteger(index) && Number.isInteger(size) && index >= 0 && index < size)) {
    throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  }
  const path: string[] = [];
  let from = 0;
  let to = size;
  let m = index;
  // Top-down, then reversed: the path lists the siblings from the leaf upwards.
  while (to - from > 1) {
    const k = largestPowerOfTwoBelow(to - from);
    if (m < k) {
      path.push(subtreeRoot(leaf, from + k, to));
      to = from + k;
    } else {
      path.push(subtreeRoot(leaf, from, from + k));
      from += k;
      m -= k;
    }
  }
  return path.reverse();
}

/** Does `path` lead from the leaf at `index` to `root` in a tree of `size` leaves? (RFC 9162 §2.1.3.2) */
export function verifyInclusion(leaf: string, index: number, size: number, path: readonly string[], root: string): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r === root;
}
