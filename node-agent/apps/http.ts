/**
 * Node's `http` server over the emulated TCP: one listener, every accepted `TcpSocket` handed
 * to the server as a Duplex (`server.emit("connection", ...)`), so request parsing, keep-alive
 * (5 s idle timeout, Node's default) and pipelining are Node's own.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { TcpApi } from "../tcp/api.ts";
import { toDuplex, type TcpDuplex } from "../tcp/duplex.ts";
import type { Schedule } from "../tcp/memory.ts";

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, socket: TcpDuplex) => void;

export type ServeResult = { kind: "serving"; stop: () => void } | { kind: "inUse" };

/** `schedule` drives the keep-alive idle timeout (real timers unless a test injects virtual ones). */
export function serveHttp(tcp: TcpApi, port: number, handler: HttpHandler, schedule?: Schedule): ServeResult {
  const bound = tcp.listen(port);
  if (bound.kind === "inUse") return { kind: "inUse" };
  const { listener } = bound;
  const open = new Set<TcpDuplex>();
  // Every socket this server sees was handed to it below, so it is a TcpDuplex.
  const server = createServer((req, res) => handler(req, res, req.socket as unknown as TcpDuplex));
  // A bad request or a reset connection is the client's problem: answer 400 if we still can and
  // drop the connection, as Node does by default, without an unhandled "error".
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });
  void (async () => {
    for await (const sock of listener) {
      const duplex = toDuplex(sock, schedule ? { schedule } : {});
      // The server handles socket errors itself; this keeps a late one from being unhandled.
      duplex.on("error", () => {});
      open.add(duplex);
      duplex.on("close", () => open.delete(duplex));
      server.emit("connection", duplex);
    }
  })().catch(() => {});
  return {
    kind: "serving",
    stop: () => {
      listener.close();
      for (const d of open) d.destroy();
      open.clear();
    },
  };
}

/** Sends a complete response with an explicit Content-Length (Go's net/http does for small bodies). */
export function reply(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, "Content-Length": String(bytes.length) });
  res.end(bytes);
}
