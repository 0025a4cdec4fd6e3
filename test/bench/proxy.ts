/**
 * npm run bench:proxy — the per-packet cost of kube-proxy's Service lookup in each mode, at 10,
 * 1,000 and 10,000 Services (3 endpoints each), in process: the first packets of connections
 * from a pod to Service VIPs drawn at random from all of them, through the compiled nat
 * PREROUTING rule sets of the mode (the real netfilter walk of node-agent/netfilter.ts).
 * Baseline in the same run: the same mode at 10 Services. iptables walks KUBE-SERVICES rule by
 * rule, so its cost grows with the count; IPVS and nftables look the VIP up in a hash and
 * should stay flat (aim: 10,000 at most 1.2x of 10). Two traffic mixes: packets to 10 Services
 * picked at random among all of them (the lookup's own cost as the table grows), and packets
 * spread over every Service (adds the memory hierarchy: 10,000 Services' state does not fit in
 * cache; a plain Map lookup with the same keys is printed as the floor of that effect).
 * Also the time of a full sync and of a partial one (one Service changed) at each size.
 */
import { IpProtocol } from "../../overlay/wire/index.ts";
import { Hook, Netfilter, type HookContext } from "../../node-agent/netfilter.ts";
import { CtState, type PacketView } from "../../node-agent/packet.ts";
import { createBackend } from "../../node-agent/proxy/index.ts";
import { ChangeTracker, PROXY_MODES, type ProxyMode } from "../../node-agent/proxy/model.ts";
import { testNode } from "../unit/proxy/flow.ts";
import { service, slice } from "../unit/proxy/objects.ts";
import { mulberry32 } from "../unit/wire/rng.ts";

const PACKETS = Number(process.env.BENCH_PACKETS ?? 400_000);
const SIZES = [10, 1000, 10_000];

const vip = (i: number) => `10.96.${(i >> 8) & 0xff}.${i & 0xff}`;
const vipNum = (i: number) => ((10 << 24) | (96 << 16) | (((i >> 8) & 0xff) << 8) | (i & 0xff)) >>> 0;

interface Result {
  hot: number;
  spread: number;
  fullSyncMs: number;
  partialSyncMs: number;
}

function measure(mode: ProxyMode, count: number): Result {
  const tracker = new ChangeTracker("node-1");
  for (let i = 0; i < count; i++) {
    const name = `svc-${i}`;
    tracker.service(`default/${name}`, { ...service(name, { clusterIP: vip(i + 1) }), metadata: { namespace: "default", name } });
    tracker.slice(`default/${name}`, `${name}-a`, slice(name, `${name}-a`, [{ ip: `10.244.1.${(i % 200) + 2}` }, { ip: `10.244.2.${(i % 200) + 2}`, node: "node-2" }, { ip: `10.244.3.${(i % 200) + 2}`, node: "node-3" }]));
  }
  const backend = createBackend(mode, { node: testNode(), rng: mulberry32(1) });
  let t0 = performance.now();
  const first = tracker.take();
  const sets = backend.sync(first.state, undefined);
  const fullSyncMs = performance.now() - t0;
  // One Service's endpoints change: a partial sync.
  tracker.slice("default/svc-0", "svc-0-a", slice("svc-0", "svc-0-a", [{ ip: "10.244.1.250" }]));
  t0 = performance.now();
  const next = tracker.take();
  const partialSets = backend.sync(next.state, next.changed);
  const partialSyncMs = performance.now() - t0;
  void sets;
  const nf = new Netfilter();
  nf.replace("kube-proxy", partialSets);
  const rng = mulberry32(7);
  const pkt: PacketView = { buf: new Uint8Array(0), l3: 0, l4: 20, ipLen: 40, proto: IpProtocol.TCP, src: 0x0af4_0105, dst: 0, sport: 40000, dport: 80, tcpFlags: 0x02, icmpType: -1, icmpCode: -1 };
  const ctx: HookContext = { hook: Hook.Prerouting, iif: "cni0", oif: "", ctState: CtState.New, ct: undefined, mark: 0, now: 0 };
  let dnats = 0;
  const onNat = () => {
    dnats++;
    return true;
  };
  // Destinations drawn before timing, so the loop measures the lookup only.
  const hotSet = Array.from({ length: 10 }, () => 1 + Math.floor(rng() * count));
  const hot = new Uint32Array(65_536).map(() => vipNum(hotSet[Math.floor(rng() * hotSet.length)]!));
  const spread = new Uint32Array(65_536).map(() => vipNum(1 + Math.floor(rng() * count)));
  const time = (dsts: Uint32Array): number => {
    const run = (n: number) => {
      for (let i = 0; i < n; i++) {
        pkt.dst = dsts[i & 0xffff]!;
        pkt.dport = 80;
        ctx.mark = 0;
        nf.run(Hook.Prerouting, pkt, ctx, true, onNat);
      }
    };
    run(Math.min(PACKETS, 50_000)); // warm-up: JIT
    dnats = 0;
    const t = performance.now();
    run(PACKETS);
    const ms = performance.now() - t;
    if (dnats !== PACKETS) throw new Error(`${mode} at ${count}: ${dnats} of ${PACKETS} packets DNATed`);
    return (ms * 1e6) / PACKETS;
  };
  return { hot: time(hot), spread: time(spread), fullSyncMs, partialSyncMs };
}

/** The floor of the spread mix: a Map from VIP to an object per Service, looked up the same way. */
function mapFloor(count: number): number {
  const m = new Map<number, { n: number }>();
  for (let i = 1; i <= count; i++) m.set(vipNum(i), { n: i });
  const rng = mulberry32(7);
  const dsts = new Uint32Array(65_536).map(() => vipNum(1 + Math.floor(rng() * count)));
  let sum = 0;
  const run = (n: number) => {
    for (let i = 0; i < n; i++) sum += m.get(dsts[i & 0xffff]!)!.n;
  };
  run(50_000);
  const t = performance.now();
  run(PACKETS);
  const ns = ((performance.now() - t) * 1e6) / PACKETS;
  if (sum === 0) throw new Error("unreachable");
  return ns;
}

console.log(`kube-proxy Service lookup: ${PACKETS} first packets, 3 endpoints per Service; ns per packet, ratio to 10 Services`);
console.log("mode       services   to 10 hot         to all            full sync ms  partial sync ms");
const cell = (ns: number, base: number) => `${ns.toFixed(1).padStart(8)} ${(ns / base).toFixed(2).padStart(6)}x `;
for (const mode of PROXY_MODES) {
  let base: Result | undefined;
  for (const count of SIZES) {
    const r = measure(mode, count);
    base ??= r;
    console.log(`${mode.padEnd(10)} ${String(count).padStart(8)}   ${cell(r.hot, base.hot)}  ${cell(r.spread, base.spread)}  ${r.fullSyncMs.toFixed(1).padStart(12)}  ${r.partialSyncMs.toFixed(1).padStart(15)}`);
  }
}
let floorBase = 0;
for (const count of SIZES) {
  const ns = mapFloor(count);
  if (count === SIZES[0]) floorBase = ns;
  console.log(`${"Map floor".padEnd(10)} ${String(count).padStart(8)}   ${"".padStart(16)}   ${cell(ns, floorBase)}`);
}
