/**
 * 32-bit modular sequence number arithmetic (RFC 9293 §3.4; RFC 1982 serial numbers).
 * Sequence numbers are uint32 held in JS numbers; a comparison is the sign of the 32-bit
 * difference, valid while the two are less than 2^31 apart (windows are at most 2^30,
 * RFC 7323 §2.3).
 */

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** a + n modulo 2^32 (n may be any integer up to 2^53, e.g. a byte count of the stream). */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** The signed distance a - b in (-2^31, 2^31]. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}
