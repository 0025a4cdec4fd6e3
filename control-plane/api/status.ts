/** Kubernetes Status objects for every failure the API returns (k8s.io/apimachinery/pkg/api/errors). */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message: string;
  reason: string;
  details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; retryAfterSeconds?: number };
  code: number;
}

/** A failed request: thrown anywhere in a handler, answered with its Status. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(readonly status: Status) {
    super(status.message);
  }
}

function status(code: number, reason: string, message: string, details?: Status["details"]): ApiError {
  return new ApiError({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code });
}

function qualified(plural: string, group: string): string {
  return group ? `${plural}.${group}` : plural;
}

export const Errors = {
  notFound: (plural: string, group: string, name: string) =>
    status(404, "NotFound", `${qualified(plural, group)} "${name}" not found`, { name, group, kind: plural }),
  alreadyExists: (plural: string, group: string, name: string) =>
    status(409, "AlreadyExists", `${qualified(plural, group)} "${name}" already exists`, { name, group, kind: plural }),
  conflict: (plural: string, group: string, name: string, message: string) =>
    status(409, "Conflict", message, { name, group, kind: plural }),
  badRequest: (message: string) => status(400, "BadRequest", message),
  unauthorized: () => status(401, "Unauthorized", "Unauthorized"),
  methodNotAllowed: (message: string) => status(405, "MethodNotAllowed", message),
  notAcceptable: (message: string) => status(406, "NotAcceptable", message),
  unsupportedMediaType: (message: string) => status(415, "UnsupportedMediaType", message),
  requestEntityTooLarge: (message: string) => status(413, "RequestEntityTooLarge", message),
  gone: (message: string) => status(410, "Expired", message),
  invalid: (kind: string, group: string, name: string, causes: StatusCause[], message: string) =>
    status(422, "Invalid", message, { name, group, kind, causes }),
  internal: (message: string) => status(500, "InternalError", `Internal error occurred: ${message}`),
  pathNotFound: () => status(404, "NotFound", "the server could not find the requested resource"),
  forbidden: (message: string) => status(403, "Forbidden", message),
};

export function success(details?: Status["details"]): Status {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", message: "", reason: "", ...(details ? { details } : {}), code: 200 };
}
