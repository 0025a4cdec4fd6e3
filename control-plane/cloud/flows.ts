/**
 * The UDP flow table of a load-balancer listener, pure (time is a parameter): one entry per
 * client address and port, holding the node its datagrams go to, so every datagram of a flow
 * reaches the same node and the node's replies go back to that client. What a cloud L4 load
 * balancer (and conntrack for UDP, nf_conntrack_udp_timeout 30 s) keeps:
 *
 * - an entry idle for `idleMs` expires;
 * - the table is bounded: adding past `capacity` evicts the least recently used entry, so a
 *   flood of source ports costs memory in proportion to the bound, not to the flood.
 */
export class FlowTable<F> {
  /** Insertion order is recency order: a touched entry is moved to the end. */
  private readonly entries = new Map<string, { flow: F; lastSeenMs: number }>();

  constructor(
    readonly capacity: number,
    readonly idleMs: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`flow table capacity must be a positive integer, got ${capacity}`);
  }

  /** The live flow of `key`, marked as seen now; undefined when absent or idle too long. */
  get(key: string, nowMs: number): F | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (nowMs - e.lastSeenMs >= this.idleMs) return undefined;
    this.entries.delete(key);
    e.lastSeenMs = nowMs;
    this.entries.set(key, e);
    return e.flow;
  }

  /**
   * Adds (or replaces) the flow of `key`. Returns the flows that leave the table: a replaced one
   * and those evicted to stay within capacity, least recently used first. The caller closes them.
   */
  add(key: string, flow: F, nowMs: number): F[] {
    const gone: F[] = [];
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      if (old.flow !== flow) gone.push(old.flow);
    }
    while (this.entries.size >= this.capacity) {
      const [lru, e] = this.entries.entries().next().value as [string, { flow: F }];
      this.entries.delete(lru);
      gone.push(e.flow);
    }
    this.entries.set(key, { flow, lastSeenMs: nowMs });
    return gone;
  }

  /** Removes the flows idle for idleMs or more; returns them. */
  expire(nowMs: number): Array<[string, F]> {
    const gone: Array<[string, F]> = [];
    for (const [key, e] of this.entries) {
      if (nowMs - e.lastSeenMs >= this.idleMs) gone.push([key, e.flow]);
    }
    for (const [key] of gone) this.entries.delete(key);
    return gone;
  }

  /** Removes the flow of `key` (only if it is `only`, when given: a newer flow stays). */
  delete(key: string, only?: F): F | undefined {
    const e = this.entries.get(key);
    if (!e || (only !== undefined && e.flow !== only)) return undefined;
    this.entries.delete(key);
    return e.flow;
  }

  /** Empties the table; returns every flow. */
  clear(): F[] {
    const all = [...this.entries.values()].map((e) => e.flow);
    this.entries.clear();
    return all;
  }

  get size(): number {
    return this.entries.size;
  }
}
