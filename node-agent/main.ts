/** node-agent process: one emulated node, until SIGTERM/SIGINT. */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { CLUSTER_SETTINGS_CONFIGMAP, ConfigError, loadNodeAgentConfig, withClusterSettings, withMachineIdentity, type NodeAgentConfig } from "../cluster/config.ts";
import { resourceByKind } from "../cluster/resources.ts";
import { ObjectStore } from "../cluster/store.ts";
import { createLogger } from "../cluster/log.ts";
import { NodeAgent } from "./agent.ts";
import { BootstrapError, connectAsNode } from "./bootstrap.ts";

// Unnamed, a node takes its machine's hostname and address (each replica of a compose service).
const env = withMachineIdentity(process.env, { hostname: hostname(), hostsText: readHosts() });
const cfg = loadNodeAgentConfig(env);
const log = createLogger("node-agent", cfg.logLevel, { node: cfg.nodeName });
// Its NATS identity first: kept credentials, or new ones from joining with the bootstrap token.
const nc = await connectAsNode(cfg, log).catch((err: Error) => {
  if (!(err instanceof BootstrapError)) throw err;
  log.fatal({ err: err.message }, "cannot join the cluster");
  process.exit(1);
});
const agent = await NodeAgent.start(nc, await withClusterConfig(cfg), log);

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

/**
 * The config with the cluster's published settings for those this node was not given (a node
 * joined from elsewhere with no flags takes the cluster's proxy mode and CIDRs). A setting given
 * otherwise ends the process, naming both values. No published settings (a control plane that has
 * not written them yet): the environment's.
 */
async function withClusterConfig(given: NodeAgentConfig): Promise<NodeAgentConfig> {
  let data: unknown;
  try {
    const store = await ObjectStore.open(nc, log, { bindOnly: true });
    data = (await store.get(resourceByKind("ConfigMap"), CLUSTER_SETTINGS_CONFIGMAP.namespace, CLUSTER_SETTINGS_CONFIGMAP.name))?.data;
  } catch (err) {
    log.info({ err: (err as Error).message }, "no cluster settings to read yet; using this node's environment");
    return given;
  }
  try {
    return loadNodeAgentConfig(withClusterSettings(env, data));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.fatal({ err: err.message }, "this node's settings disagree with the cluster's");
    process.exit(1);
  }
}

function readHosts(): string {
  try {
    return readFileSync("/etc/hosts", "utf8");
  } catch {
    return ""; // no /etc/hosts: the default host address (127.0.0.1)
  }
}
