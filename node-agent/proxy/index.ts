/** kube-proxy of one node: the mode's backend by name. */
import type { BackendOptions, ProxyBackend } from "./backend.ts";
import { IptablesBackend } from "./iptables.ts";
import { IpvsBackend } from "./ipvs.ts";
import type { ProxyMode } from "./model.ts";
import { NftablesBackend } from "./nftables.ts";

export function createBackend(mode: ProxyMode, opts: BackendOptions): ProxyBackend {
  switch (mode) {
    case "iptables":
      return new IptablesBackend(opts);
    case "ipvs":
      return new IpvsBackend(opts);
    case "nftables":
      return new NftablesBackend(opts);
  }
}
