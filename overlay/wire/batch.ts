/**
 * kubewire's batch container: several overlay frames in one NATS message, so a burst costs one
 * publish instead of one per frame.
 *
 *   byte 0      version (1)
 *   then        repeated records [u16 big-endian length][length bytes], until the end
 *
 * A zero-length record is forbidden (it would carry nothing and hides framing bugs).
 */

import { fail, ok, readU16, writeU16 } from "./common.ts";
import type { WireResult } from "./common.ts";

export const BATCH_VERSION = 1;
/** Records are length-prefixed with a u16. */
export const BATCH_MAX_FRAME_LEN = 0xffff;
const RECORD_HEADER_LEN = 2;
const DEFAULT_MAX_BYTES = 64 * 1024;

function checkFrame(frame: Uint8Array): void {
  if (frame.length === 0 || frame.length > BATCH_MAX_FRAME_LEN) {
    throw new RangeError("batch: frame length must be 1..65535");
  }
}

export function batchEncodedLen(frames: readonly Uint8Array[]): number {
  let len = 1;
  for (let i = 0; i < frames.length; i++) len += RECORD_HEADER_LEN + frames[i]!.length;
  return len;
}

/** Encodes `frames` into a new buffer. Throws RangeError on an empty or > 65535-byte frame. */
export function encodeBatch(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(batchEncodedLen(frames));
  out[0] = BATCH_VERSION;
  let off = 1;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    checkFrame(f);
    writeU16(out, off, f.length);
    out.set(f, off + RECORD_HEADER_LEN);
    off += RECORD_HEADER_LEN + f.length;
  }
  return out;
}

/** Decodes a batch into views of `b` (no copies). A batch with no records decodes to []. */
export function decodeBatch(b: Uint8Array): WireResult<Uint8Array[]> {
  if (b.length === 0) return fail("Malformed", "batch", "empty message");
  if (b[0] !== BATCH_VERSION) return fail("Malformed", "batch", "unknown version");
  const frames: Uint8Array[] = [];
  const n = b.length;
  let off = 1;
  while (off < n) {
    if (off + RECORD_HEADER_LEN > n) return fail("Truncated", "batch", "record length cut off");
    const len = readU16(b, off);
    if (len === 0) return fail("Malformed", "batch", "zero-length record");
    const start = off + RECORD_HEADER_LEN;
    if (start + len > n) return fail("Truncated", "batch", "record runs past the end");
    frames.push(b.subarray(start, start + len));
    off = start + len;
  }
  return ok(frames);
}

/**
 * Accumulates frames into one preallocated buffer. `add` returns false when the frame does not
 * fit: the caller should `finish()` (flush) and add again. If it returns false while `count`
 * is 0 the frame can never fit this builder.
 */
export class BatchBuilder {
  readonly maxBytes: number;
  private buf: Uint8Array;
  private len = 1;
  private n = 0;

  constructor(maxBytes: number = DEFAULT_MAX_BYTES) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1 + RECORD_HEADER_LEN + 1) {
      throw new RangeError("batch: maxBytes too small for one record");
    }
    this.maxBytes = maxBytes;
    this.buf = freshBuffer(maxBytes);
    this.buf[0] = BATCH_VERSION;
  }

  /** Appends a copy of `frame`. Throws RangeError on an empty or > 65535-byte frame. */
  add(frame: Uint8Array): boolean {
    checkFrame(frame);
    const end = this.len + RECORD_HEADER_LEN + frame.length;
    if (end > this.maxBytes) return false;
    writeU16(this.buf, this.len, frame.length);
    this.buf.set(frame, this.len + RECORD_HEADER_LEN);
    this.len = end;
    this.n++;
    return true;
  }

  get count(): number {
    return this.n;
  }

  /** Encoded size so far, version byte included. */
  get byteLength(): number {
    return this.len;
  }

  /**
   * Returns the encoded batch and resets the builder. A large batch is a view of the builder's
   * buffer, which is handed over: the next batch gets a fresh one (uninitialised memory, every
   * byte of it written before it is sent), so a frame is copied once on its way to NATS.
   */
  finish(): Uint8Array {
    let out: Uint8Array;
    if (this.len >= this.maxBytes / 4) {
      out = this.buf.subarray(0, this.len);
      this.buf = freshBuffer(this.maxBytes);
      this.buf[0] = BATCH_VERSION;
    } else {
      // A small batch (a lone ping, a burst of ACKs) is cheaper to copy than a fresh 64 KiB
      // buffer, and keeps the builder's buffer for the next one.
      out = this.buf.slice(0, this.len);
    }
    this.len = 1;
    this.n = 0;
    return out;
  }
}

function freshBuffer(n: number): Uint8Array {
  // Buffer.allocUnsafe is a Uint8Array that skips zero-filling; globalThis keeps the wire layer free of Node imports.
  const B = (globalThis as { Buffer?: { allocUnsafe(n: number): Uint8Array } }).Buffer;
  if (!B) return new Uint8Array(n);
  const raw = B.allocUnsafe(n);
  return new Uint8Array(raw.buffer, raw.byteOffset, n);
}
