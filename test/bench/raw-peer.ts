/**
 * The baseline's far end, in its own process as a node-agent would be: counts bench.raw.<size>
 * messages (reporting first-to-last time when told the total) and echoes bench.rr requests.
 */
import { connectNats, readNatsAuth } from "../../cluster/rpc.ts";

// argv: URL [CA_FILE CREDS_FILE]: on a secured cluster, TLS and an identity like any process.
const [url, caFile, credsFile] = process.argv.slice(2);
const nc = await connectNats(url!, "bench raw peer", caFile ? readNatsAuth({ ca: caFile, creds: credsFile }, "admin") : {});
const sizes = new Map<string, { count: number; first: number; last: number }>();

nc.subscribe("bench.raw.*", {
  callback: (_err, msg) => {
    const now = performance.now();
    let s = sizes.get(msg.subject);
    if (!s) sizes.set(msg.subject, (s = { count: 0, first: now, last: now }));
    s.count++;
    s.last = now;
  },
});
nc.subscribe("bench.rr", { callback: (_err, msg) => msg.respond(msg.data) });
// Asked after the publisher is done: how many arrived, over how long (waits for the tail to drain).
nc.subscribe("bench.report", {
  callback: (_err, msg) => {
    const subject = new TextDecoder().decode(msg.data);
    let previous = -1;
    const poll = () => {
      const s = sizes.get(subject) ?? { count: 0, first: 0, last: 0 };
      if (s.count !== previous) {
        previous = s.count;
        setTimeout(poll, 500);
        return;
      }
      sizes.delete(subject);
      msg.respond(new TextEncoder().encode(JSON.stringify({ count: s.count, ms: s.last - s.first })));
    };
    poll();
  },
});
await nc.flush();
process.stdout.write("ready\n");
