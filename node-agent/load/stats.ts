/**
 * A load client's results, kept as the HdrHistogram project prescribes: latencies recorded into
 * histograms (microseconds, 3 significant digits) and shipped encoded (the compressed base64
 * form every HdrHistogram implementation reads), so whoever gathers the clients' results adds
 * their histograms exactly instead of averaging percentiles. Pure: no clock, no I/O.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from "hdr-histogram-js";
import type { LoadEndpointStats } from "../../cluster/types.ts";

/** An hour in microseconds: far beyond any timeout; values above are clamped (auto-resize stays off). */
const HIGHEST_US = 3_600_000_000;

export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, bitBucketSize: 32 });
}

/** Milliseconds -> the microseconds recorded (at least 1: HdrHistogram's lowest value). */
export function toMicros(ms: number): number {
  return Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000)));
}

export function encodeHistogram(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

/** A histogram from its encoded form; undefined when the text is not one (a bad message). */
export function decodeHistogram(text: string): Histogram | undefined {
  try {
    return decodeFromCompressedBase64(text, 32);
  } catch {
    return undefined;
  }
}

/** The exact sum of encoded histograms (the ones that do not decode are counted in `bad`). */
export function mergeEncoded(texts: Iterable<string>): { histogram: Histogram; bad: number } {
  const out = newHistogram();
  let bad = 0;
  for (const t of texts) {
    const h = decodeHistogram(t);
    if (h) out.add(h);
    else bad++;
  }
  return { histogram: out, bad };
}

/** Why a request (or the connection it needed) failed. */
export const ERROR_KINDS = ["timeout", "refused", "reset", "unreachable", "eof", "connect_timeout", "send_failed", "bad_response", "corrupt", "http_4xx", "http_5xx"] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

class EndpointRecorder {
  readonly latency = newHistogram();
  readonly connectLatency = newHistogram();
  requests = 0;
  readonly errors = new Map<ErrorKind, number>();
  bytesSent = 0;
  bytesReceived = 0;
  connects = 0;
  constructor(readonly endpoint: string) {}
}

/** Totals of one interval (the progress line) and of the whole run, by server endpoint. */
export class LoadRecorder {
  private readonly endpoints = new Map<string, EndpointRecorder>();
  private interval = { requests: 0, errors: 0, bytesSent: 0, bytesReceived: 0, latency: newHistogram() };

  private of(endpoint: string): EndpointRecorder {
    let e = this.endpoints.get(endpoint);
    if (!e) this.endpoints.set(endpoint, (e = new EndpointRecorder(endpoint)));
    return e;
  }

  /** A request answered in `latencyMs` (see schedule.ts requestLatency). */
  ok(endpoint: string, latencyMs: number, bytesSent: number, bytesReceived: number): void {
    const e = this.of(endpoint);
    const us = toMicros(latencyMs);
    e.requests++;
    e.latency.recordValue(us);
    e.bytesSent += bytesSent;
    e.bytesReceived += bytesReceived;
    this.interval.requests++;
    this.interval.latency.recordValue(us);
    this.interval.bytesSent += bytesSent;
    this.interval.bytesReceived += bytesReceived;
  }

  /** Bytes moved without a request being answered (a stream, or a failed request's partial bytes). */
  bytes(endpoint: string, sent: number, received: number): void {
    const e = this.of(endpoint);
    e.bytesSent += sent;
    e.bytesReceived += received;
    this.interval.bytesSent += sent;
    this.interval.bytesReceived += received;
  }

  error(endpoint: string, kind: ErrorKind): void {
    const e = this.of(endpoint);
    e.errors.set(kind, (e.errors.get(kind) ?? 0) + 1);
    this.interval.errors++;
  }

  connected(endpoint: string, ms: number): void {
    const e = this.of(endpoint);
    e.connects++;
    e.connectLatency.recordValue(toMicros(ms));
  }

  /** This interval's totals, encoded; the interval starts over. */
  takeInterval(): { requests: number; errors: number; bytesSent: number; bytesReceived: number; latency: string } {
    const i = this.interval;
    const out = { requests: i.requests, errors: i.errors, bytesSent: i.bytesSent, bytesReceived: i.bytesReceived, latency: encodeHistogram(i.latency) };
    i.requests = i.errors = i.bytesSent = i.bytesReceived = 0;
    i.latency.reset();
    return out;
  }

  /** Everything so far, by endpoint, as a client's final snapshot carries it. */
  results(): LoadEndpointStats[] {
    return [...this.endpoints.values()].map((e) => ({
      endpoint: e.endpoint,
      requests: e.requests,
      errors: Object.fromEntries(e.errors),
      bytesSent: e.bytesSent,
      bytesReceived: e.bytesReceived,
      connects: e.connects,
      latency: encodeHistogram(e.latency),
      connectLatency: encodeHistogram(e.connectLatency),
    }));
  }
}
