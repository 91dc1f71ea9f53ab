import type { ReactionStatus } from '../../runtime/model/reaction.js';

/** Prometheus text exposition (format 0.0.4), kept by hand: a handful of series does not need a client library. */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export class Metrics {
  eventsAppended = 0;
  eventsRead = 0;
  subscribers = 0;
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();

  /** `route` is the route pattern, never the raw path, so ids cannot blow up the number of series. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const key = labels({ method, route, status: String(status) });
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    const latencyKey = labels({ method, route });
    let histogram = this.#latency.get(latencyKey);
    if (!histogram) {
      histogram = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(latencyKey, histogram);
    }
    BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) (histogram.counts[i] as number)++;
    });
    histogram.sum += seconds;
    histogram.count++;
  }

  /** `reactions`: what the log says of each reaction (status.ts), read per scrape. */
  render(headPosition: number | undefined, reactions: readonly ReactionStatus[] = []): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    family('rewind_http_requests_total', 'counter', 'HTTP requests answered, by method, route and status.');
    for (const [key, n] of this.#requests) out.push(`rewind_http_requests_total{${key}} ${n}`);

    family('rewind_http_request_duration_seconds', 'histogram', 'Time to answer an HTTP request (until the headers of a stream).');
    for (const [key, h] of this.#latency) {
      BUCKETS.forEach((bound, i) => {
        out.push(`rewind_http_request_duration_seconds_bucket{${key},le="${bound}"} ${h.counts[i]}`);
      });
      out.push(`rewind_http_request_duration_seconds_bucket{${key},le="+Inf"} ${h.count}`);
      out.push(`rewind_http_request_duration_seconds_sum{${key}} ${h.sum}`);
      out.push(`rewind_http_request_duration_seconds_count{${key}} ${h.count}`);
    }

    family('rewind_http_events_appended_total', 'counter', 'Events appended through the API.');
    out.push(`rewind_http_events_appended_total ${this.eventsAppended}`);
    family('rewind_http_events_read_total', 'counter', 'Events returned by the API, live feeds included.');
    out.push(`rewind_http_events_read_total ${this.eventsRead}`);
    family('rewind_http_live_subscribers', 'gauge', 'Live event feeds (server-sent events) connected now.');
    out.push(`rewind_http_live_subscribers ${this.subscribers}`);
    if (headPosition !== undefined) {
      family('rewind_store_head_position', 'gauge', 'The highest global position a reader can see.');
      out.push(`rewind_store_head_position ${headPosition}`);
    }
    if (reactions.length > 0) {
      family('rewind_reaction_lag_events', 'gauge', 'Positions between a reaction and the head of the log.');
      for (const r of reactions) out.push(`rewind_reaction_lag_events{${labels({ reaction: r.name })}} ${r.lagEvents}`);
      family('rewind_reaction_parked', 'gauge', '1 while a reaction is parked on an event its act could not handle (alert on it).');
      for (const r of reactions) out.push(`rewind_reaction_parked{${labels({ reaction: r.name })}} ${r.state === 'parked' ? 1 : 0}`);
    }
    return `${out.join('\n')}\n`;
  }
}

function labels(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}
