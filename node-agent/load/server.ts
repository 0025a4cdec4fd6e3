/**
 * The far end of the tcp-rr, tcp-stream and udp-rr scenarios (protocol.ts), bound in a pod's
 * netns for the length of a run, as netperf's netserver is. (The http scenario talks to the
 * agnhost netexec the pod already runs.)
 */
import type { LoadScenario } from "../../cluster/types.ts";
import type { Ipv4Addr } from "../../overlay/wire/common.ts";
import type { TcpApi, TcpSocket } from "../tcp/api.ts";
import { RrServerReader, patternedAnswer, udpAnswer } from "./protocol.ts";

export interface LoadServerNet {
  tcp: TcpApi;
  udp: {
    bindUdp(port: number, handler: (payload: Uint8Array, meta: { src: Ipv4Addr; srcPort: number }) => void): { kind: "bound"; port: number } | { kind: "inUse" };
    sendUdp(dst: Ipv4Addr, dstPort: number, srcPort: number, payload: Uint8Array): unknown;
    unbindUdp(port: number): void;
  };
}

export type LoadServerResult = { kind: "serving"; stop: () => void } | { kind: "inUse" } | { kind: "invalid"; message: string };

export function startLoadServer(net: LoadServerNet, scenario: LoadScenario, port: number): LoadServerResult {
  if (scenario === "udp-rr") {
    const bound = net.udp.bindUdp(port, (payload, meta) => {
      const answer = udpAnswer(payload);
      if (answer) net.udp.sendUdp(meta.src, meta.srcPort, port, answer);
    });
    if (bound.kind === "inUse") return { kind: "inUse" };
    return { kind: "serving", stop: () => net.udp.unbindUdp(port) };
  }
  if (scenario !== "tcp-rr" && scenario !== "tcp-stream") return { kind: "invalid", message: `no load server for scenario ${scenario} (http goes to the pod's own server)` };
  const listening = net.tcp.listen(port, { backlog: 1024 });
  if (listening.kind === "inUse") return { kind: "inUse" };
  const { listener } = listening;
  const open = new Set<TcpSocket>();
  void (async () => {
    for await (const sock of listener) {
      open.add(sock);
      void (scenario === "tcp-rr" ? answerRequests(sock) : drain(sock)).finally(() => open.delete(sock)).catch(() => {});
    }
  })().catch(() => {});
  return {
    kind: "serving",
    stop: () => {
      listener.close();
      for (const s of open) s.abort();
      open.clear();
    },
  };
}

/** Answers by length, filled with the pattern the client checks (protocol.ts answerByte): most runs ask for one size. */
const answers = new Map<number, Uint8Array>();
function answerOf(n: number): Uint8Array {
  let a = answers.get(n);
  if (!a) {
    if (answers.size > 64) answers.clear();
    answers.set(n, (a = patternedAnswer(n)));
  }
  return a;
}

async function answerRequests(sock: TcpSocket): Promise<void> {
  sock.setNoDelay?.(true);
  const reader = new RrServerReader();
  for await (const chunk of sock) {
    const due = reader.push(chunk);
    if (due === "bad") {
      sock.abort();
      return;
    }
    for (const n of due) if (!(await sock.write(answerOf(n)))) return;
  }
  sock.end();
}

async function drain(sock: TcpSocket): Promise<void> {
  for await (const _ of sock) {
    // dropped, as netserver's TCP_STREAM receiver does
  }
  sock.end();
}
