/** node-agent process: one emulated node, until SIGTERM/SIGINT. */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { loadNodeAgentConfig, withMachineIdentity } from "../cluster/config.ts";
import { createLogger } from "../cluster/log.ts";
import { NodeAgent } from "./agent.ts";
import { BootstrapError, connectAsNode } from "./bootstrap.ts";

// Unnamed, a node takes its machine's hostname and address (each replica of a compose service).
const cfg = loadNodeAgentConfig(withMachineIdentity(process.env, { hostname: hostname(), hostsText: readHosts() }));
const log = createLogger("node-agent", cfg.logLevel, { node: cfg.nodeName });
// Its NATS identity first: kept credentials, or new ones from joining with the bootstrap token.
const nc = await connectAsNode(cfg, log).catch((err: Error) => {
  if (!(err instanceof BootstrapError)) throw err;
  log.fatal({ err: err.message }, "cannot join the cluster");
  process.exit(1);
});
const agent = await NodeAgent.start(nc, cfg, log);

async function shutdown(signal: string): Promise<void> {
  // With NATS gone, draining would wait for it forever: a stop takes at most 5 s.
  setTimeout(() => process.exit(0), 5000).unref();
  log.info({ signal }, "node-agent stopping");
  await agent.stop();
  await nc.drain();
  process.exit(0);
}
process.once("SIGTERM", () => void shutdown("SIGTERM"));
process.once("SIGINT", () => void shutdown("SIGINT"));

function readHosts(): string {
  try {
    return readFileSync("/etc/hosts", "utf8");
  } catch {
    return ""; // no /etc/hosts: the default host address (127.0.0.1)
  }
}
