import { JsonPlusSerializer, type SerializerProtocol } from '@langchain/langgraph-checkpoint';
import type { Json } from '../../events/envelope.js';
import { copyPlain } from './channel-values.js';
import type { StoredValue } from './events.js';
import type { LoadedValue } from './thread-index.js';

// How the saver's values become JSON-safe event data and come back: plain
// JSON as itself (smallest, and readable in the log), anything else through
// the saver's serde, as base64.

export const decoder = new TextDecoder();

/** Values some of which may still be on their way: plain JSON, the common case, costs no promise. */
export function settled<T>(values: (T | Promise<T>)[]): T[] | Promise<T[]> {
  return values.some((v) => v instanceof Promise) ? Promise.all(values) : (values as T[]);
}

export class ValueCodec {
  readonly serde: SerializerProtocol;
  /** JsonPlusSerializer only rebuilds objects carrying an `lc` key; JSON without one loads as plain JSON. */
  readonly plainJson: boolean;

  constructor(serde: SerializerProtocol) {
    this.serde = serde;
    this.plainJson = Object.getPrototypeOf(serde) === JsonPlusSerializer.prototype;
  }

  /** Captures `value` synchronously: plain JSON as our copy; otherwise the serde's work starts before the first await. */
  encode(value: unknown): StoredValue | Promise<StoredValue> {
    const copy = this.plainJson ? copyPlain(value) : undefined;
    return copy !== undefined ? { j: copy } : this.#serialize(value);
  }

  async #serialize(value: unknown): Promise<StoredValue> {
    const [type, bytes] = await this.serde.dumpsTyped(value);
    if (type === 'json') return { j: JSON.parse(decoder.decode(bytes)) as Json };
    return { t: type, b: Buffer.from(bytes).toString('base64') };
  }

  /** The value as LangGraph put it. */
  async decode(value: LoadedValue): Promise<unknown> {
    if ('text' in value) return this.plainJson && !value.lc ? JSON.parse(value.text) : this.serde.loadsTyped('json', value.text);
    return this.serde.loadsTyped(value.t, new Uint8Array(Buffer.from(value.b, 'base64')));
  }

  /** The value as JSON, to look into (a checkpoint's `ts`, metadata to filter on): stored JSON is parsed, not revived. */
  async inspect(value: LoadedValue): Promise<unknown> {
    return 'text' in value ? JSON.parse(value.text) : this.decode(value);
  }
}
