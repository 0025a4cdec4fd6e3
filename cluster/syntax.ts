/**
 * The syntax checks of k8s.io/apimachinery/pkg/util/validation/validation.go: DNS names,
 * qualified names (label and annotation keys, finalizers), label values, ports, percents.
 * Each returns Kubernetes' own messages, [] when the value is valid. Shared by API validation
 * (control-plane/api/validation.ts) and label selectors (cluster/selectors.ts), so a label key is
 * judged by one rule wherever it appears.
 *
 * Lengths are Go's len(): UTF-8 bytes, not UTF-16 code units.
 */

/** Go's len() of a string: its UTF-8 byte count (counted, not encoded: validation calls it per field). */
export const byteLen = (s: string): number => Buffer.byteLength(s, "utf8");

export function maxLenError(length: number): string {
  return `must be no more than ${length} characters`;
}

/** validation.RegexError, including its double space before each " or ". */
export function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  let out = `${msg} (e.g. `;
  examples.forEach((ex, i) => {
    if (i > 0) out += " or ";
    out += `'${ex}', `;
  });
  return `${out}regex used for validation is '${fmt}')`;
}

export function inclusiveRangeError(lo: number, hi: number): string {
  return `must be between ${lo} and ${hi}, inclusive`;
}

const DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1123_SUBDOMAIN_ERR = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const WILDCARD_SUBDOMAIN_FMT = `\\*\\.${DNS1123_SUBDOMAIN_FMT}`;
const WILDCARD_SUBDOMAIN_ERR = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";
const QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`;
const LABEL_VALUE_ERR = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const PERCENT_FMT = "[0-9]+%";
const PERCENT_ERR = "a valid percent string must be a numeric string followed by an ending '%'";

const anchored = (fmt: string): RegExp => new RegExp(`^${fmt}$`);
const DNS1123_LABEL_RE = anchored(DNS1123_LABEL_FMT);
const DNS1123_SUBDOMAIN_RE = anchored(DNS1123_SUBDOMAIN_FMT);
const DNS1035_LABEL_RE = anchored(DNS1035_LABEL_FMT);
const WILDCARD_SUBDOMAIN_RE = anchored(WILDCARD_SUBDOMAIN_FMT);
const QUALIFIED_NAME_RE = anchored(QUALIFIED_NAME_FMT);
const LABEL_VALUE_RE = anchored(LABEL_VALUE_FMT);
const PERCENT_RE = anchored(PERCENT_FMT);

/** validation.IsDNS1123Label: the messages for what is wrong, [] when valid. */
export function dns1123LabelErrors(value: string): string[] {
  const errs: string[] = [];
  if (byteLen(value) > 63) errs.push(maxLenError(63));
  if (!DNS1123_LABEL_RE.test(value)) {
    // A valid subdomain that is not a valid label (length already checked) has dots.
    if (DNS1123_SUBDOMAIN_RE.test(value)) errs.push("must not contain dots");
    else errs.push(regexError(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, "my-name", "123-abc"));
  }
  return errs;
}

/** validation.IsDNS1123Subdomain. */
export function dns1123SubdomainErrors(value: string): string[] {
  const errs: string[] = [];
  if (byteLen(value) > 253) errs.push(maxLenError(253));
  if (!DNS1123_SUBDOMAIN_RE.test(value)) errs.push(regexError(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, "example.com"));
  return errs;
}

/** validation.IsDNS1035Label (Service names). */
export function dns1035LabelErrors(value: string): string[] {
  const errs: string[] = [];
  if (byteLen(value) > 63) errs.push(maxLenError(63));
  if (!DNS1035_LABEL_RE.test(value)) errs.push(regexError(DNS1035_LABEL_ERR, DNS1035_LABEL_FMT, "my-name", "abc-123"));
  return errs;
}

/** validation.IsWildcardDNS1123Subdomain (Ingress hosts such as *.example.com). */
export function wildcardDns1123SubdomainErrors(value: string): string[] {
  const errs: string[] = [];
  if (byteLen(value) > 253) errs.push(maxLenError(253));
  if (!WILDCARD_SUBDOMAIN_RE.test(value)) errs.push(regexError(WILDCARD_SUBDOMAIN_ERR, WILDCARD_SUBDOMAIN_FMT, "*.example.com"));
  return errs;
}

/** validation.IsQualifiedName: label keys, annotation keys, finalizers: [prefix/]name. */
export function qualifiedNameErrors(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split("/");
  let name: string;
  if (parts.length === 1) {
    name = parts[0] ?? "";
  } else if (parts.length === 2) {
    const prefix = parts[0] ?? "";
    name = parts[1] ?? "";
    if (prefix.length === 0) errs.push("prefix part must be non-empty");
    else for (const msg of dns1123SubdomainErrors(prefix)) errs.push(`prefix part ${msg}`);
  } else {
    errs.push(
      `a qualified name ${regexError(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    );
    return errs;
  }
  if (name.length === 0) errs.push("name part must be non-empty");
  else if (byteLen(name) > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!QUALIFIED_NAME_RE.test(name)) errs.push(`name part ${regexError(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")}`);
  return errs;
}

/** validation.IsValidLabelValue. */
export function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (byteLen(value) > 63) errs.push(maxLenError(63));
  if (!LABEL_VALUE_RE.test(value)) errs.push(regexError(LABEL_VALUE_ERR, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"));
  return errs;
}

/** validation.IsValidPortNum: 1..65535. */
export function portNumErrors(port: number): string[] {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? [] : [inclusiveRangeError(1, 65535)];
}

/** validation.IsValidPortName: an IANA_SVC_NAME (RFC 6335), lower case only. */
export function portNameErrors(port: string): string[] {
  const errs: string[] = [];
  if (byteLen(port) > 15) errs.push(maxLenError(15));
  if (!/^[-a-z0-9]+$/.test(port)) errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!/[a-z]/.test(port)) errs.push("must contain at least one letter (a-z)");
  if (port.includes("--")) errs.push("must not contain consecutive hyphens");
  if (port.length > 0 && (port.startsWith("-") || port.endsWith("-"))) errs.push("must not begin or end with a hyphen");
  return errs;
}

export function percentErrors(value: string): string[] {
  return PERCENT_RE.test(value) ? [] : [regexError(PERCENT_ERR, PERCENT_FMT, "1%", "93%")];
}

export const isDns1123Label = (value: string): boolean => dns1123LabelErrors(value).length === 0;
export const isDns1123Subdomain = (value: string): boolean => dns1123SubdomainErrors(value).length === 0;
export const isDns1035Label = (value: string): boolean => dns1035LabelErrors(value).length === 0;
export const isQualifiedName = (value: string): boolean => qualifiedNameErrors(value).length === 0;
export const isValidLabelValue = (value: string): boolean => labelValueErrors(value).length === 0;
export const isValidPortNum = (port: number): boolean => portNumErrors(port).length === 0;
export const isValidPortName = (port: string): boolean => portNameErrors(port).length === 0;

/** A Go duration (time.ParseDuration: "50ms", "1.5s", "1m30s"), as Kubernetes and Chaos Mesh fields take it. */
export const GO_DURATION_PATTERN = "^(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|ms|s|m|h))+$";
const GO_DURATION = new RegExp(GO_DURATION_PATTERN, "u");
const DURATION_UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration in milliseconds ("500ms", "30s", "1m30s"); undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (!GO_DURATION.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(/([0-9]*\.?[0-9]*)(ns|us|µs|ms|s|m|h)/gu)) ms += Number(m[1]) * DURATION_UNIT_MS[m[2]!]!;
  return ms;
}

/** A percentage as Chaos Mesh writes it ("25", "0.5"; a trailing "%" as tc takes it). */
export const PERCENT_PATTERN = "^(100(\\.0+)?|[0-9]{1,2}(\\.[0-9]+)?)%?$";
/** A tc rate (tc(8) units: bit, kbit, mbit, gbit per second; bps, kbps, mbps, gbps bytes per second). */
export const TC_RATE_PATTERN = "^[0-9]+(\\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$";
