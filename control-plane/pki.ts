/**
 * The compose set-up's one-shot `pki` service: makes the cluster's security material for
 * KUBEWIRE_BOOTSTRAP_TOKEN and the NATS services of KUBEWIRE_NATS_SERVERS unless it exists, and
 * gives each service's volume its share (cluster/compose-pki.ts). Exits 0 when done; the other
 * services wait for that (depends_on: service_completed_successfully).
 */
import { loadPkiConfig } from "../cluster/config.ts";
import { createLogger } from "../cluster/log.ts";
import { COMPOSE_PKI, provisionComposePki } from "../cluster/compose-pki.ts";

const cfg = loadPkiConfig();
const log = createLogger("pki", cfg.logLevel);
try {
  const { created, written } = await provisionComposePki(cfg.bootstrapToken, COMPOSE_PKI, cfg.natsServers);
  log.info({ created, written, stateDir: COMPOSE_PKI.stateDir, natsServers: cfg.natsServers }, created ? "security material made" : "security material kept");
} catch (err) {
  log.error({ err: (err as Error).message }, "cannot provide the security material");
  process.exitCode = 1;
}
