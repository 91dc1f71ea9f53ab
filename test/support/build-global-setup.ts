import { buildIfStale } from '../../scripts/build-if-stale.js';

/**
 * Some tests run what a user runs: the compiled package (bin/rewind.js, the packed tarball, README snippets
 * importing `rewind-runtime`) and the prebuilt debugger. Whichever is older than its sources is rebuilt, once,
 * before any test starts, so a test never meets a stale (or, in a fresh clone, missing) dist/.
 */
export default function setup(): Promise<void> {
  return buildIfStale();
}
