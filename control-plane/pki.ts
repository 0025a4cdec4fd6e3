/**
 * The compose set-up's one-shot `pki` service: makes the cluster's security material for
 * KUBEWIRE_BOOTSTRAP_TOKEN unless it exists, and gives each service's volume its share
 * (cluster/compose-pki.ts). Exits 0 when done; the other services wait for that
 * (depends_on: service_completed_successfully).
 */
import { loadPkiConfig } from "../cluster/config.ts";
import { createLogger } from "../cluster/log.ts";
import { COMPOSE_PKI, provisionComposePki } from "../cluster/compose-pki.ts";

const cfg = loadPkiConfig();
const log = createLogger("pki", cfg.logLevel);
try {
  const { created, written } = await provisionComposePki(cfg.bootstrapToken);
  log.info({ created, written, stateDir: COMPOSE_PKI.stateDir }, created ? "security material made" : "security material kept");
} catch (err) {
  log.error({ err: (err as Error).message }, "cannot provide the security material");
  process.exitCode = 1;
}
