/**
 * When each request of a load run is due, and how its latency is measured. Pure: time is a
 * parameter everywhere (milliseconds on the caller's monotonic clock).
 *
 * Design notes:
 * - Open loop (`rate` > 0) is wrk2's model (github.com/giltene/wrk2, README "constant throughput,
 *   correct latency recording"): every connection has its own fixed schedule, connection i of n
 *   sends its k-th request at `start + (i + k*n) / rate`, so the run as a whole sends one request
 *   every 1/rate, evenly spaced. A request/response connection (HTTP/1.1 without pipelining,
 *   TCP_RR) cannot send while it waits for an answer: when an answer comes late, the next request
 *   goes at once, behind schedule, and its latency is still measured from its *intended* send time.
 *   So a server that stalls for a second costs every request scheduled in that second its share
 *   of the stall, instead of being hidden by the client politely waiting: the correction for
 *   coordinated omission. HdrHistogram's recordCorrectedValue (recordValueWithExpectedInterval)
 *   reconstructs the same samples after the fact from an expected interval; knowing the intended
 *   times, we record the true ones directly, as wrk2 and k6's constant-arrival-rate executor do.
 * - Requests whose intended time falls inside the run but that were never sent (the connection
 *   was still behind when the run ended) are counted as such: achieved rate < intended.
 * - Closed loop (`rate` 0): each connection sends its next request as soon as the previous one is
 *   answered; latency is the service time (send to answer), with no correction to make.
 */

export type LoadMode = { readonly kind: "open"; readonly rate: number } | { readonly kind: "closed" };

export function loadMode(rate: number): LoadMode {
  return rate > 0 ? { kind: "open", rate } : { kind: "closed" };
}

/** One connection's open-loop schedule. */
export class ConnectionSchedule {
  /** Milliseconds between this connection's requests. */
  readonly periodMs: number;
  /** This connection's first request, after `start`. */
  readonly phaseMs: number;

  constructor(
    readonly start: number,
    index: number,
    connections: number,
    rate: number,
  ) {
    if (!(rate > 0) || !(connections >= 1) || !(index >= 0 && index < connections)) throw new RangeError(`bad schedule: connection ${index} of ${connections} at ${rate}/s`);
    this.periodMs = (1000 * connections) / rate;
    this.phaseMs = (1000 * index) / rate;
  }

  /** When request k (0-based) is due. */
  intendedAt(k: number): number {
    return this.start + this.phaseMs + k * this.periodMs;
  }

  /** How many of this connection's requests are due strictly before `t`. */
  dueBefore(t: number): number {
    const x = (t - this.start - this.phaseMs) / this.periodMs;
    return x <= 0 ? 0 : Math.ceil(x);
  }
}

/** Every connection's schedule of a run of `connections` at `rate` requests/s in total. */
export function schedules(start: number, connections: number, rate: number): ConnectionSchedule[] {
  return Array.from({ length: connections }, (_, i) => new ConnectionSchedule(start, i, connections, rate));
}

/** Requests a run of `rate` requests/s for `durationMs` intends to send (each due before the end). */
export function intendedRequests(rate: number, durationMs: number): number {
  return rate > 0 ? Math.ceil((rate * durationMs) / 1000) : 0;
}

/**
 * What a connection does next for request `k`: send now (intended time passed, possibly behind
 * schedule), wait until it is due, or stop (it is due at or after the run's end).
 */
export type NextSend = { readonly kind: "send"; readonly intended: number } | { readonly kind: "wait"; readonly ms: number; readonly intended: number } | { readonly kind: "done" };

export function nextSend(s: ConnectionSchedule, k: number, now: number, end: number): NextSend {
  const intended = s.intendedAt(k);
  if (intended >= end) return { kind: "done" };
  return intended <= now ? { kind: "send", intended } : { kind: "wait", ms: intended - now, intended };
}

/**
 * The latency of one request: from its intended send time in an open loop (corrected for
 * coordinated omission), from its actual send time in a closed loop. Never negative.
 */
export function requestLatency(mode: LoadMode, intended: number, sent: number, answered: number): number {
  return Math.max(0, answered - (mode.kind === "open" ? Math.min(intended, sent) : sent));
}
