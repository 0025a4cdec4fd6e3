/**
 * FNV-1a, 32 bits (Fowler/Noll/Vo, draft-eastlake-fnv; Go's hash/fnv New32a): the one
 * non-cryptographic hash of the cluster code. Kubernetes hashes pod templates with it
 * (pkg/controller/controller_utils.go ComputeHash); the datapath uses it for flow hashing.
 */

export const FNV1A32_OFFSET_BASIS = 0x811c9dc5;
const FNV1A32_PRIME = 0x01000193;

/**
 * FNV-1a over `bytes`, continuing from `seed` (a previous result, to hash data in pieces as
 * hash.Hash32.Write does). Returns an unsigned 32-bit integer. Hash a range of a frame with
 * `fnv1a32(frame.subarray(start, end))`: a view, no copy.
 */
export function fnv1a32(bytes: Uint8Array, seed: number = FNV1A32_OFFSET_BASIS): number {
  let h = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, FNV1A32_PRIME);
  return h >>> 0;
}

const utf8 = new TextEncoder();

/** FNV-1a over the UTF-8 bytes of a string (Go hashes a string's bytes, not UTF-16 units). */
export function fnv1a32String(text: string, seed: number = FNV1A32_OFFSET_BASIS): number {
  return fnv1a32(utf8.encode(text), seed);
}
