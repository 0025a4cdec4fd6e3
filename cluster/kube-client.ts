/**
 * A minimal client of kubewire's Kubernetes API for the CLI, tests and benchmarks (kubectl and
 * @kubernetes/client-node are the clients users bring; this one keeps the CLI dependency-free).
 */
import { Agent, request as httpsRequest } from "node:https";

/** No pooled connections: a restarted API server would meet stale sockets and reset them. */
const agent = new Agent({ keepAlive: false });
import { stringify } from "yaml";

export interface KubeStatus {
  kind: "Status";
  code: number;
  reason: string;
  message: string;
  details?: { causes?: Array<{ field?: string; message?: string; reason?: string }> };
}

export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
  get code(): number {
    return this.status.code;
  }
}

export interface KubeObjectLike {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; deletionTimestamp?: string; [k: string]: unknown };
  spec?: any;
  status?: any;
  [k: string]: unknown;
}

export class KubeClient {
  constructor(
    readonly server: string,
    /** Empty: send no Authorization header (to see the API refuse). */
    private readonly token: string,
    /** PEM of the CA that signed the API's certificate (the kubeconfig's certificate-authority-data). */
    private readonly ca: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpsRequest(
        `${this.server}${path}`,
        {
          method,
          agent,
          ca: this.ca,
          headers: { ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}), Accept: "application/json", ...(payload !== undefined ? { "Content-Type": contentType, "Content-Length": Buffer.byteLength(payload) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
    const json = /^\s*[{[]/.test(text);
    const parsed = text ? (json ? (JSON.parse(text) as unknown) : text) : undefined;
    if (status < 200 || status >= 300) {
      const st = parsed as KubeStatus | undefined;
      throw new KubeApiError(st?.kind === "Status" ? st : { kind: "Status", code: status, reason: String(status), message: text || String(status) });
    }
    return parsed as T;
  }

  get<T = KubeObjectLike>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  async list<T = KubeObjectLike>(path: string): Promise<T[]> {
    return (await this.request<{ items: T[] }>("GET", path)).items;
  }

  create<T = KubeObjectLike>(path: string, obj: unknown): Promise<T> {
    return this.request<T>("POST", path, obj);
  }

  delete(path: string): Promise<unknown> {
    return this.request("DELETE", path);
  }

  patch<T = KubeObjectLike>(path: string, patch: unknown, type = "application/merge-patch+json"): Promise<T> {
    return this.request<T>("PATCH", path, patch, type);
  }
}

export const paths = {
  pods: (ns?: string) => (ns ? `/api/v1/namespaces/${ns}/pods` : "/api/v1/pods"),
  pod: (ns: string, name: string) => `/api/v1/namespaces/${ns}/pods/${name}`,
  nodes: () => "/api/v1/nodes",
  node: (name: string) => `/api/v1/nodes/${name}`,
  services: (ns: string) => `/api/v1/namespaces/${ns}/services`,
  endpointSlices: (ns: string) => `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
};

/** A kubeconfig for the cluster, as `kubewire kubeconfig` prints it. */
export function renderKubeconfig(server: string, token: string, ca: string, name = "kubewire"): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { server, "certificate-authority-data": Buffer.from(ca).toString("base64") } }],
    users: [{ name: `${name}-admin`, user: { token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: "default" } }],
    "current-context": name,
    preferences: {},
  });
}
