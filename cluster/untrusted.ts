/**
 * Reading fields of objects nobody vouches for (the store's values, API bodies, RPC requests):
 * each reader returns the value when it has the expected type and a neutral value otherwise,
 * so a reader of garbage never throws. The field checks of a proxy, the DNS records and the
 * cloud controller all go through these.
 */

/** A plain object (not null, not an array), or undefined. */
export function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** A plain object, or an empty one. */
export function asRecord(v: unknown): Record<string, unknown> {
  return asObject(v) ?? {};
}

/** An array, or an empty one. */
export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function asString(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** A TCP/UDP port 1-65535, or 0. */
export function asPort(v: unknown): number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : 0;
}
