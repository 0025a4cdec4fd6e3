/** control-plane process: the Kubernetes API, the controllers and the node RPCs, until SIGTERM/SIGINT. */
import { loadControlPlaneConfig } from "../cluster/config.ts";
import { createLogger } from "../cluster/log.ts";
import { connectNats, readNatsAuth } from "../cluster/rpc.ts";
import { ControlPlane } from "./server.ts";

const cfg = loadControlPlaneConfig();
const log = createLogger("control-plane", cfg.logLevel);
const nc = await connectNats(cfg.natsUrl, "control-plane", readNatsAuth({ ca: cfg.natsCa, creds: cfg.natsCreds }, "control-plane"));
const cp = await ControlPlane.start(nc, cfg, log);

async function shutdown(signal: string): Promise<void> {
  // With NATS gone, draining would wait for it forever: a stop takes at most 5 s.
  setTimeout(() => process.exit(0), 5000).unref();
  log.info({ signal }, "control plane stopping");
  await cp.stop();
  await nc.drain();
  process.exit(0);
}
process.once("SIGTERM", () => void shutdown("SIGTERM"));
process.once("SIGINT", () => void shutdown("SIGINT"));
