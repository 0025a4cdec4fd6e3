/** JetStream KV helpers: JSON values, file storage, one revision kept per key. */
import type { KV, NatsConnection } from "nats";

export async function openBucket(nc: NatsConnection, bucket: string): Promise<KV> {
  return nc.jetstream().views.kv(bucket, { history: 1 });
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Every live value of the bucket, keyed. */
export async function listJson<T>(kv: KV): Promise<Map<string, T>> {
  const out = new Map<string, T>();
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  for (const key of keys) {
    const entry = await kv.get(key);
    if (entry && entry.operation === "PUT") out.set(key, entry.json<T>());
  }
  return out;
}
