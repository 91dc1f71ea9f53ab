import { hash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT,
  inclusionPath,
  MerkleAccumulator,
  nodeHash,
  peakSizes,
  rootOfPeaks,
  verifyInclusion,
} from '../../src/events/merkle.js';

const leafOf = (hex: string) => hash('sha256', Buffer.concat([Buffer.from([0]), Buffer.from(hex, 'hex')]), 'hex');

// The reference inputs and tree heads Certificate Transparency publishes for RFC 6962 (test data).
const INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const LEAVES = INPUTS.map(leafOf);

/** RFC 9162's definition, recursively: the reference the accumulator must agree with. */
function mth(leaves: string[]): string {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0] as string;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

function accumulate(leaves: string[]): MerkleAccumulator {
  const tree = new MerkleAccumulator();
  for (const leaf of leaves) tree.push(leaf);
  return tree;
}

describe('the Merkle tree (RFC 9162)', () => {
  it('gives the published root for every size of the reference tree', () => {
    for (let n = 0; n <= LEAVES.length; n++) expect(accumulate(LEAVES.slice(0, n)).root(), `size ${n}`).toBe(ROOTS[n]);
  });

  it('gives the published audit paths', () => {
    expect(inclusionPath((i) => LEAVES[i] as string, 0, 8)).toEqual([
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]);
    expect(inclusionPath((i) => LEAVES[i] as string, 5, 8)).toEqual([
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]);
  });

  const leaves = fc.array(
    fc.uint8Array({ minLength: 0, maxLength: 8 }).map((b) => leafOf(Buffer.from(b).toString('hex'))),
    { minLength: 1, maxLength: 70 },
  );

  it('builds the same root one leaf at a time as the recursive definition, and continues from its peaks', () => {
    fc.assert(
      fc.property(leaves, fc.nat(), (all, cut) => {
        const tree = accumulate(all);
        expect(tree.root()).toBe(mth(all));
        expect(rootOfPeaks(tree.peaks)).toBe(tree.root());
        expect(tree.peaks.length).toBe(peakSizes(all.length).length);
        // A tree restored from a prefix's peaks ends where the whole one does: what a seal continues from.
        const k = cut % (all.length + 1);
        const prefix = accumulate(all.slice(0, k));
        const resumed = new MerkleAccumulator(prefix.size, prefix.peaks);
        for (const leaf of all.slice(k)) resumed.push(leaf);
        expect(resumed.root()).toBe(tree.root());
      }),
      { numRuns: 200 },
    );
  });

  it('proves every leaf of every tree, and nothing else', () => {
    fc.assert(
      fc.property(leaves, fc.nat(), fc.nat(), (all, pick, other) => {
        const root = mth(all);
        const index = pick % all.length;
        const path = inclusionPath((i) => all[i] as string, index, all.length);
        expect(path.length).toBeLessThanOrEqual(Math.ceil(Math.log2(all.length)));
        expect(verifyInclusion(all[index] as string, index, all.length, path, root)).toBe(true);
        // Another leaf, another place or a changed path: refused. (The size is the signed tree head's, not the prover's.)
        // (fast-check may draw the byte 0xff itself: then it is the same leaf.)
        if (all[index] !== leafOf('ff')) expect(verifyInclusion(leafOf('ff'), index, all.length, path, root)).toBe(false);
        const elsewhere = other % all.length;
        if (all[elsewhere] !== all[index]) expect(verifyInclusion(all[index] as string, elsewhere, all.length, path, root)).toBe(false);
        // (Unless the path held that very hash there already: fast-check may draw the byte 0xee as a leaf.)
        if (path.length > 0 && path[other % path.length] !== leafOf('ee')) {
          const bent = [...path];
          bent[other % path.length] = leafOf('ee');
          expect(verifyInclusion(all[index] as string, index, all.length, bent, root)).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('refuses peaks that cannot belong to the size', () => {
    expect(() => new MerkleAccumulator(3, [LEAVES[0] as string])).toThrow(RangeError);
    expect(() => inclusionPath((i) => LEAVES[i] as string, 8, 8)).toThrow(RangeError);
    expect(verifyInclusion(LEAVES[0] as string, 0, 0, [], EMPTY_ROOT)).toBe(false);
  });
});
