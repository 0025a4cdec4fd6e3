/** Deterministic randomness and byte helpers for the wire tests (no Math.random: reproducible). */

/** mulberry32: a tiny 32-bit-state PRNG returning floats in [0, 1), the product's own. */
export { seededRng as mulberry32 } from "../../../node-agent/faults/random.ts";

/** An integer in [0, n). */
export function randInt(rng: () => number, n: number): number {
  return Math.floor(rng() * n);
}

export function randomBytes(rng: () => number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = randInt(rng, 256);
  return out;
}

/** Bytes from hex text; whitespace ignored ("45 00 00 73"). */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
