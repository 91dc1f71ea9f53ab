import type { EventMetadata } from '../../events/envelope.js';
import { chainLink, contentDigest, GENESIS_HASH } from '../../events/hash.js';
import { MerkleAccumulator, peakSizes } from '../../events/merkle.js';
import type { StreamHead } from '../../events/tree-head.js';
import type { RawRow } from '../types.js';
import type { Problem, ProblemKind } from './report.js';
import { checkRow, leafOfRow, leafOfUnreadable, parseContent, type StoredRow, storedDigest } from './row.js';

/** What a seal or a digest says the log held at or below a position. */
export interface Expectation {
  /** How problems name it: "the digest", "the seal at position 1234". */
  name: string;
  size: number;
  position: number;
  root: string;
  peaks: string[];
  heads: StreamHead[];
  /** It lists every stream (a digest): a stream it does not list should hold no event at or below its position. */
  complete: boolean;
}

export interface AuditorOptions {
  /** The whole log in position order, or one stream in version order (no positions, tree or counts to check). */
  scope: 'log' | 'stream';
  densePositions: boolean;
  /** In any order. */
  expectations?: Expectation[];
  maxProblems?: number;
}

interface StreamState {
  version: number;
  /** The stored link of its newest event. */
  hash: string;
  /** When that link did not hold: the link its content makes. The next event may link to either (content edited, or hash edited). */
  computed?: string;
  position: number;
}

/** Where one of an expectation's peaks ends in leaves, so the walk compares it when the tree reaches that size. */
interface PeakMark {
  size: number;
  check: PendingCheck;
  peak: number;
}

interface PendingCheck {
  x: Expectation;
  done: boolean;
  /** The position of the last leaf of the last peak that matched; 0 before any. */
  matchedTo: number;
  /** The positions of the first peak that differs, once one does. */
  differs?: { from: number; to: number };
}

/**
 * Walks stored rows and finds what is wrong with them, without I/O: the
 * chain of each stream, rows that cannot be decoded, versions and positions
 * where they must be, and what seals and a digest said the log held. Feed it
 * rows in order, then call finish(). One problem per cause where it can
 * tell: a deleted middle event is one missing version, not also a broken
 * link; a seal whose root differs because of an event already reported adds
 * nothing.
 */
export class Auditor {
  readonly #scope: 'log' | 'stream';
  readonly #dense: boolean;
  readonly #max: number;
  readonly #streams = new Map<string, StreamState>();
  readonly #tree = new MerkleAccumulator();
  readonly #checks: PendingCheck[];
  readonly #marks: PeakMark[];
  #nextCheck = 0;
  #nextMark = 0;
  #lastPosition = 0;
  #events = 0;
  readonly problems: Problem[] = [];
  #problemCount = 0;
  /** The problem count when a seal's or digest's root last matched: a root that differs after new problems is explained by them. */
  #problemsAtLastMatch = 0;
  #rootBroken = false;
  readonly #reportedHeads = new Set<string>();
  /** Leaves the log has beyond (or short of) what the last expectation said; a change of it is news, its persistence is not. */
  #countOffset = 0;

  constructor(options: AuditorOptions) {
    this.#scope = options.scope;
    this.#dense = options.densePositions && options.scope === 'log';
    this.#max = options.maxProblems ?? 1000;
    this.#checks = [...(options.expectations ?? [])].sort((a, b) => a.position - b.position).map((x) => ({ x, done: false, matchedTo: 0 }));
    this.#marks = [];
    if (this.#scope === 'log') {
      for (const check of this.#checks) {
        let end = 0;
        peakSizes(check.x.size).forEach((size, peak) => {
          end += size;
          this.#marks.push({ size: end, check, peak });
        });
      }
      this.#marks.sort((a, b) => a.size - b.size);
    }
  }

  get problemCount(): number {
    return this.#problemCount;
  }

  get events(): number {
    return this.#events;
  }

  get streams(): number {
    return this.#streams.size;
  }

  get lastPosition(): number {
    return this.#lastPosition;
  }

  /** The tree over every row fed so far. */
  get tree(): MerkleAccumulator {
    return this.#tree;
  }

  /** Every stream's newest event so far, sorted by stream id. */
  heads(): StreamHead[] {
    return [...this.#streams]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([streamId, s]): StreamHead => [streamId, s.version, s.position, s.hash]);
  }

  report(problem: Problem): void {
    this.#problemCount++;
    if (this.problems.length < this.#max) this.problems.push(problem);
  }

  /** One stored row, in position order (or, for one stream, version order). */
  feed(raw: RawRow): void {
    while (this.#nextCheck < this.#checks.length && (this.#checks[this.#nextCheck] as PendingCheck).x.position < raw.position) {
      this.#evaluate(this.#checks[this.#nextCheck++] as PendingCheck);
    }
    if (this.#dense && raw.position > this.#lastPosition + 1) {
      const [from, to] = [this.#lastPosition + 1, raw.position - 1];
      this.report({
        kind: 'missing-positions',
        position: from,
        message: `${from === to ? `position ${from} holds` : `positions ${from}–${to} hold`} no event, and this backend never leaves a gap: ${from === to ? 'an event was' : 'events were'} deleted`,
      });
    }
    this.#lastPosition = raw.position;
    this.#events++;
    const checked = checkRow(raw);
    if ('why' in checked) this.#unreadable(raw, checked.why);
    else this.#link(checked.row);
    if (this.#scope === 'log') this.#pushLeaf('why' in checked ? leafOfUnreadable(raw) : leafOfRow(checked.row), raw.position);
  }

  /** Checks what remains to check once every row has been fed. */
  finish(): void {
    while (this.#nextCheck < this.#checks.length) this.#evaluate(this.#checks[this.#nextCheck++] as PendingCheck);
  }

  #unreadable(raw: RawRow, why: string): void {
    const streamId = typeof raw.streamId === 'string' ? raw.streamId : undefined;
    const version = typeof raw.version === 'number' ? raw.version : undefined;
    this.report({
      kind: 'undecodable',
      streamId,
      version,
      position: raw.position,
      eventId: typeof raw.id === 'string' ? raw.id : undefined,
      message: `the row cannot be read as an event: ${why}`,
    });
    // Carry the stream on from this row, so that its later events are checked against it, not reported again.
    if (streamId !== undefined && version !== undefined && Number.isSafeInteger(version)) {
      const hash = typeof raw.hash === 'string' ? raw.hash : (this.#streams.get(streamId)?.hash ?? GENESIS_HASH);
      this.#advance(streamId, version, hash, raw.position);
    }
  }

  #link(row: StoredRow): void {
    const { streamId, version, position } = row;
    const state = this.#streams.get(streamId);
    const expected = (state?.version ?? 0) + 1;
    const at = { streamId, version, position, eventId: row.id };
    const content = parseContent(row);
    if (version < expected) {
      const newest = state as StreamState;
      this.report(
        'why' in content
          ? { kind: 'undecodable', ...at, message: `the row cannot be read as an event: ${content.why}` }
          : {
              kind: 'out-of-order',
              ...at,
              message: `version ${version} comes after version ${newest.version} (at position ${newest.position}): events were moved`,
            },
      );
      return;
    }
    if (version > expected) {
      this.report({
        kind: 'missing-versions',
        ...at,
        version: expected,
        message: `${version - 1 === expected ? `version ${expected} is` : `versions ${expected}–${version - 1} are`} missing before version ${version} (position ${position}): deleted`,
      });
    }
    if ('why' in content) this.report({ kind: 'undecodable', ...at, message: `the row cannot be read as an event: ${content.why}` });
    else if (version === expected) {
      const checked = this.#content(row, content, state);
      if (checked.problem) this.report({ ...checked.problem, ...at });
      this.#advance(streamId, version, row.hash, position, checked.computed);
      return;
    }
    this.#advance(streamId, version, row.hash, position);
  }

  /**
   * What is wrong with a readable event that follows its predecessor, if
   * anything, and the link its content makes when the stored one does not hold.
   */
  #content(
    row: StoredRow,
    content: { data: unknown; metadata: EventMetadata },
    state: StreamState | undefined,
  ): { problem?: { kind: ProblemKind; message: string }; computed?: string } {
    const previous = [state?.hash ?? GENESIS_HASH, ...(state?.computed ? [state.computed] : [])];
    const holds = (digest: string) => previous.some((p) => chainLink(p, row.version, row.recordedAt, digest) === row.hash);
    let digest = storedDigest(row);
    if (!holds(digest)) {
      // Text reformatted without changing a value (by a tool, say) still holds: the chain covers values.
      const ofValues = contentDigest({ ...row, ...content });
      if (!holds(ofValues)) {
        return {
          computed: chainLink(previous[0] as string, row.version, row.recordedAt, digest),
          problem: {
            kind: 'hash-mismatch',
            message:
              'the stored hash is not the link of this event’s content (type, data, metadata, time) and its predecessor: the event or its hash was edited',
          },
        };
      }
      digest = ofValues;
    }
    if (row.digest !== digest) {
      return {
        problem: {
          kind: 'digest-mismatch',
          message: 'the stored content digest does not match the content: a retried append of this event would be refused as a conflict',
        },
      };
    }
    return {};
  }

  #advance(streamId: string, version: number, hash: string, position: number, computed?: string): void {
    const state = this.#streams.get(streamId);
    if (state) {
      state.version = version;
      state.hash = hash;
      state.position = position;
      state.computed = computed;
    } else this.#streams.set(streamId, { version, hash, position, computed });
  }

  #pushLeaf(leaf: string, position: number): void {
    this.#tree.push(leaf);
    const size = this.#tree.size;
    while (this.#nextMark < this.#marks.length && (this.#marks[this.#nextMark] as PeakMark).size <= size) {
      const { size: at, check, peak } = this.#marks[this.#nextMark++] as PeakMark;
      if (at !== size || check.done || check.differs) continue;
      if (this.#tree.lastPeak === check.x.peaks[peak]) check.matchedTo = position;
      else check.differs = { from: check.matchedTo + 1, to: position };
    }
  }

  #evaluate(check: PendingCheck): void {
    check.done = true;
    const { x } = check;
    const before = this.#problemCount;
    this.#compareHeads(x);
    if (this.#scope !== 'log') return;
    // The count and the root only tell something when nothing found since they last matched explains them.
    this.#compareCount(x, this.#problemCount > this.#problemsAtLastMatch);
    const matches = this.#tree.size === x.size && this.#tree.root() === x.root;
    if (matches) {
      this.#problemsAtLastMatch = this.#problemCount;
      return;
    }
    const explained = this.#problemCount > before || this.#problemCount > this.#problemsAtLastMatch || this.#rootBroken;
    this.#rootBroken = true;
    if (explained) return;
    const where = check.differs
      ? `positions ${check.differs.from}–${check.differs.to}`
      : `the events after position ${check.matchedTo} and up to position ${x.position}`;
    this.report({
      kind: 'root-mismatch',
      position: check.differs?.from ?? check.matchedTo + 1,
      message: `the log up to position ${x.position} is not the one ${x.name} covered, though every stream's chain holds: ${where} hold other events or the same in another order (replaced, inserted or moved)`,
    });
  }

  #compareCount(x: Expectation, explained: boolean): void {
    const offset = this.#tree.size - x.size;
    if (offset === this.#countOffset) return;
    this.#countOffset = offset;
    if (explained) return;
    const last = this.#lastPosition;
    if (offset < 0) {
      this.report({
        kind: 'missing-events',
        position: Math.min(last + 1, x.position),
        message: `${x.name} covers ${x.size} events up to position ${x.position}; the log holds ${this.#tree.size} there (the last at position ${last}): ${-offset} ${offset === -1 ? 'was' : 'were'} deleted`,
      });
    } else {
      this.report({
        kind: 'unexpected-events',
        position: x.position,
        message: `${x.name} covers ${x.size} events up to position ${x.position}; the log holds ${this.#tree.size} there: ${offset} more, added or moved there`,
      });
    }
  }

  #compareHeads(x: Expectation): void {
    const listed = x.complete ? new Set<string>() : undefined;
    // A later seal (or the digest) recording the same head finds the same difference: one report is enough.
    const report = (problem: Problem & { streamId: string }) => {
      const key = `${problem.kind}\u0000${problem.streamId}\u0000${problem.version}`;
      if (this.#reportedHeads.has(key)) return;
      this.#reportedHeads.add(key);
      this.report(problem);
    };
    for (const [streamId, version, position, hash] of x.heads) {
      listed?.add(streamId);
      const state = this.#streams.get(streamId);
      const recorded = `${x.name} recorded version ${version} at position ${position}`;
      if (!state || state.version < version) {
        const from = (state?.version ?? 0) + 1;
        report({
          kind: 'missing-events',
          streamId,
          version: from,
          position,
          message: `${from === version ? `version ${version} is` : `versions ${from}–${version} are`} missing at or before position ${x.position}; ${recorded}: deleted`,
        });
      } else if (state.version > version) {
        report({
          kind: 'unexpected-events',
          streamId,
          version: version + 1,
          position: state.position,
          message: `the stream holds version ${state.version} at or before position ${x.position}, but ${recorded}: events were added or moved`,
        });
      } else if (state.hash !== hash && state.computed !== hash) {
        // (When its content still makes the recorded link, the edited hash is already reported.)
        report({
          kind: 'head-mismatch',
          streamId,
          version,
          position: state.position,
          message: `version ${version} is not the event ${x.name} recorded (its hash differs): the stream was rewritten`,
        });
      } else if (state.position !== position) {
        report({
          kind: 'head-mismatch',
          streamId,
          version,
          position: state.position,
          message: `version ${version} is at position ${state.position}, but ${recorded}: it was moved`,
        });
      }
    }
    if (!listed) return;
    for (const [streamId, state] of this.#streams) {
      if (listed.has(streamId)) continue;
      this.report({
        kind: 'unexpected-events',
        streamId,
        version: 1,
        position: state.position,
        message: `the stream holds ${state.version} event${state.version === 1 ? '' : 's'} at or before position ${x.position}, but ${x.name} lists no such stream: added or moved`,
      });
    }
  }
}
