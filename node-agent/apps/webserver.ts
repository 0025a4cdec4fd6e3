/**
 * The stock nginx and httpd images: a static welcome page on port 80 and 404 for anything
 * else (none of netexec's endpoints). nginx also writes its access log line per request to
 * stdout ("combined" format), which is what `kubectl logs` on a real nginx pod shows.
 *
 * With the pod's filesystem (`env.fs`), files under the image's docroot are served too (GET
 * and HEAD, Content-Length, a type from the extension), streamed in 64 KiB writes that wait
 * for 'drain', so a 256 MiB file never sits twice in the send path. index.html stays the
 * welcome page until a file replaces it.
 */
import type { ServerResponse } from "node:http";
import type { PodFs } from "../tools/fs.ts";
import { normalizePath } from "../tools/fs.ts";
import type { ServeResult } from "./http.ts";
import { reply, serveHttp } from "./http.ts";
import type { AppEnv } from "./index.ts";

export const NGINX_VERSION = "1.27.3";

/** /usr/share/nginx/html/index.html of the official image (615 bytes). */
export const NGINX_WELCOME = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`;

/** htdocs/index.html of the official httpd image. */
export const HTTPD_WELCOME = "<html><body><h1>It works!</h1></body></html>\n";

export type WebFlavor = "nginx" | "httpd";

export const DOCROOT: Record<WebFlavor, string> = { nginx: "/usr/share/nginx/html", httpd: "/usr/local/apache2/htdocs" };

const STREAM_CHUNK = 64 * 1024;

/** A few of nginx's mime.types; anything else is its default_type. */
const MIME: Record<string, string> = {
  html: "text/html",
  htm: "text/html",
  txt: "text/plain",
  css: "text/css",
  js: "application/javascript",
  json: "application/json",
  png: "image/png",
  jpg: "image/jpeg",
};

/** The file a request path names under the docroot, or undefined when it escapes it or is malformed. */
export function docPath(docroot: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (!decoded.startsWith("/") || decoded.includes("\0")) return undefined;
  const full = normalizePath(`${docroot}${decoded.endsWith("/") ? `${decoded}index.html` : decoded}`);
  return full.startsWith(`${docroot}/`) ? full : undefined;
}

/** Writes `data` in chunks, waiting for 'drain' when the socket is backed up; stops if the client goes. */
export async function streamBody(res: ServerResponse, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length; off += STREAM_CHUNK) {
    if (res.destroyed) return;
    if (!res.write(data.subarray(off, off + STREAM_CHUNK))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
  }
  if (!res.destroyed) res.end();
}

function fileFrom(fs: PodFs | undefined, docroot: string, urlPath: string): { data: Uint8Array; mtime: Date; path: string } | undefined {
  if (!fs) return undefined;
  const path = docPath(docroot, urlPath);
  if (path === undefined) return undefined;
  const st = fs.stat(path);
  if (st?.kind !== "file") return undefined;
  return { data: fs.read(path), mtime: st.mtime, path };
}

export function startWebServer(env: AppEnv, flavor: WebFlavor, port: number, log: (line: string) => void): ServeResult {
  const server = flavor === "nginx" ? `nginx/${NGINX_VERSION}` : "Apache/2.4.62 (Unix)";
  const page = flavor === "nginx" ? NGINX_WELCOME : HTTPD_WELCOME;
  const docroot = DOCROOT[flavor];
  env.fs?.mkdir(docroot);
  const served = serveHttp(env.tcp, port, (req, res, socket) => {
    const path = new URL(req.url ?? "/", "http://web").pathname;
    const method = req.method ?? "GET";
    const file = fileFrom(env.fs, docroot, path);
    if (file && (method === "GET" || method === "HEAD")) {
      const ext = /\.([A-Za-z0-9]+)$/.exec(file.path)?.[1]?.toLowerCase();
      res.writeHead(200, {
        Server: server,
        "Content-Type": (ext && MIME[ext]) ?? "application/octet-stream",
        "Content-Length": String(file.data.length),
        "Last-Modified": file.mtime.toUTCString(),
        ETag: `"${Math.floor(file.mtime.getTime() / 1000).toString(16)}-${file.data.length.toString(16)}"`,
        "Accept-Ranges": "bytes",
      });
      req.resume();
      req.on("end", () => {
        if (method === "HEAD") res.end();
        else void streamBody(res, file.data).catch(() => res.destroy());
      });
      const sent = method === "HEAD" ? 0 : file.data.length;
      const line = `${socket.remoteAddress} - - [${nginxTime(env.now())}] "${method} ${req.url} HTTP/${req.httpVersion}" 200 ${sent}`;
      log(flavor === "nginx" ? `${line} "-" "${req.headers["user-agent"] ?? "-"}" "-"` : line);
      return;
    }
    // A file of the docroot with another method: 405, as for the welcome page.
    const isPage = path === "/" || path === "/index.html" || file !== undefined;
    let status = 200;
    let body: string = page;
    const headers: Record<string, string> = { Server: server, "Content-Type": "text/html" };
    if (!isPage) {
      status = 404;
      body = errorPage(flavor, 404, "Not Found", path);
    } else if (method !== "GET" && method !== "HEAD") {
      status = 405;
      body = errorPage(flavor, 405, "Not Allowed", path);
    } else {
      headers["Last-Modified"] = "Tue, 26 Nov 2024 15:55:00 GMT";
      headers["Accept-Ranges"] = "bytes";
    }
    // Drain any request body first so keep-alive stays in sync.
    req.resume();
    req.on("end", () => reply(res, status, body, headers));
    if (flavor === "nginx") {
      log(`${socket.remoteAddress} - - [${nginxTime(env.now())}] "${method} ${req.url} HTTP/${req.httpVersion}" ${status} ${Buffer.byteLength(body)} "-" "${req.headers["user-agent"] ?? "-"}" "-"`);
    } else {
      log(`${socket.remoteAddress} - - [${nginxTime(env.now())}] "${method} ${req.url} HTTP/${req.httpVersion}" ${status} ${Buffer.byteLength(body)}`);
    }
  }, env.schedule);
  if (served.kind === "inUse") {
    log(
      flavor === "nginx"
        ? `${nginxErrorTime(env.now())} [emerg] 1#1: bind() to 0.0.0.0:${port} failed (98: Address already in use)`
        : `(98)Address already in use: AH00072: make_sock: could not bind to address 0.0.0.0:${port}`,
    );
  } else if (flavor === "nginx") {
    log(`${nginxErrorTime(env.now())} [notice] 1#1: nginx/${NGINX_VERSION}`);
    log(`${nginxErrorTime(env.now())} [notice] 1#1: start worker processes`);
  } else {
    log(`[mpm_event:notice] [pid 1:tid 1] AH00489: Apache/2.4.62 (Unix) configured -- resuming normal operations`);
  }
  return served;
}

function errorPage(flavor: WebFlavor, code: number, text: string, path: string): string {
  if (flavor === "httpd") {
    const why = code === 404 ? "The requested URL was not found on this server." : `The requested method is not allowed for ${path}.`;
    return `<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>${code} ${text}</title>\n</head><body>\n<h1>${text}</h1>\n<p>${why}</p>\n</body></html>\n`;
  }
  // nginx's built-in error pages use CRLF line ends.
  return `<html>\r\n<head><title>${code} ${text}</title></head>\r\n<body>\r\n<center><h1>${code} ${text}</h1></center>\r\n<hr><center>nginx/${NGINX_VERSION}</center>\r\n</body>\r\n</html>\r\n`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const p2 = (n: number) => String(n).padStart(2, "0");

/** "$time_local": 10/Oct/2024:13:55:36 +0000. */
function nginxTime(d: Date): string {
  return `${p2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

/** error.log time: 2024/10/10 13:55:36. */
function nginxErrorTime(d: Date): string {
  return `${d.getUTCFullYear()}/${p2(d.getUTCMonth() + 1)}/${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
}
