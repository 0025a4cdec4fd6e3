/**
 * The stock nginx and httpd images: a static welcome page on port 80 and 404 for anything
 * else (none of netexec's endpoints). nginx also writes its access log line per request to
 * stdout ("combined" format), which is what `kubectl logs` on a real nginx pod shows.
 */
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

export function startWebServer(env: AppEnv, flavor: WebFlavor, port: number, log: (line: string) => void): ServeResult {
  const server = flavor === "nginx" ? `nginx/${NGINX_VERSION}` : "Apache/2.4.62 (Unix)";
  const page = flavor === "nginx" ? NGINX_WELCOME : HTTPD_WELCOME;
  const served = serveHttp(env.tcp, port, (req, res, socket) => {
    const path = new URL(req.url ?? "/", "http://web").pathname;
    const isPage = path === "/" || path === "/index.html";
    const method = req.method ?? "GET";
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
