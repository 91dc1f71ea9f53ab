import {
  type Attributes,
  type BatchObservableCallback,
  createNoopMeter,
  type Meter,
  type Observable,
  type ObservableCallback,
  type ObservableResult,
} from '@opentelemetry/api';

export interface Recorded {
  instrument: string;
  value: number;
  attributes: Attributes;
}

/** A Meter implementing the API by hand (@opentelemetry/sdk-metrics is not installed): synchronous recordings are kept, observables are read on collect(). */
export class FakeMeter {
  readonly recorded: Recorded[] = [];
  readonly #callbacks: Array<{ name: string; callback: ObservableCallback }> = [];
  readonly #batches: Array<{ callback: BatchObservableCallback; observables: Observable[] }> = [];
  readonly #names = new WeakMap<Observable, string>();
  readonly meter: Meter;

  constructor() {
    const noop = createNoopMeter();
    const sync = (instrument: string) => {
      const record = (value: number, attributes: Attributes = {}) => this.recorded.push({ instrument, value, attributes });
      return { add: record, record };
    };
    const observable = (name: string) => {
      const o = {
        addCallback: (callback: ObservableCallback) => this.#callbacks.push({ name, callback }),
        removeCallback: () => {},
      };
      this.#names.set(o, name);
      return o;
    };
    this.meter = Object.assign(Object.create(noop) as Meter, {
      createHistogram: sync,
      createCounter: sync,
      createUpDownCounter: sync,
      createGauge: sync,
      createObservableGauge: observable,
      createObservableCounter: observable,
      createObservableUpDownCounter: observable,
      addBatchObservableCallback: (callback: BatchObservableCallback, observables: Observable[]) =>
        this.#batches.push({ callback, observables }),
      removeBatchObservableCallback: () => {},
    }) as Meter;
  }

  sum(instrument: string, match: Attributes = {}): number {
    return this.of(instrument, match).reduce((n, r) => n + r.value, 0);
  }

  of(instrument: string, match: Attributes = {}): Recorded[] {
    return this.recorded.filter((r) => r.instrument === instrument && Object.entries(match).every(([k, v]) => r.attributes[k] === v));
  }

  /** What the observable instruments report now. */
  async collect(): Promise<Recorded[]> {
    const out: Recorded[] = [];
    for (const { name, callback } of this.#callbacks) {
      const result: ObservableResult = { observe: (value, attributes = {}) => out.push({ instrument: name, value, attributes }) };
      await callback(result);
    }
    for (const { callback } of this.#batches) {
      await callback({ observe: (o, value, attributes = {}) => out.push({ instrument: this.#names.get(o) ?? '?', value, attributes }) });
    }
    return out;
  }
}
