/**
 * Standard 5-field cron schedules (robfig/cron v3 ParseStandard, as the CronJob controller
 * uses): minute hour day-of-month month day-of-week; `*`, lists `a,b`, ranges `a-b`, steps
 * `* /n` and `a-b/n`, month and weekday names (JAN, MON), 7 for Sunday, the descriptors
 * @yearly @annually @monthly @weekly @daily @midnight @hourly. When both day-of-month and
 * day-of-week are restricted, a day matching either runs (Vixie cron). Times in UTC.
 */
export interface CronSchedule {
  readonly minute: ReadonlySet<number>;
  readonly hour: ReadonlySet<number>;
  readonly dom: ReadonlySet<number>;
  readonly month: ReadonlySet<number>;
  readonly dow: ReadonlySet<number>;
  readonly domStar: boolean;
  readonly dowStar: boolean;
}

export type CronParse = { kind: "ok"; value: CronSchedule } | { kind: "error"; message: string };

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DESCRIPTORS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  namesBase?: number;
}

const FIELDS: readonly FieldSpec[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS, namesBase: 1 },
  { name: "day-of-week", min: 0, max: 7, names: DAYS, namesBase: 0 },
];

function parseValue(text: string, f: FieldSpec): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const i = f.names?.indexOf(text.toLowerCase()) ?? -1;
  return i >= 0 ? i + (f.namesBase ?? 0) : undefined;
}

function parseField(text: string, f: FieldSpec): { values: Set<number>; star: boolean } | string {
  const values = new Set<number>();
  let star = false;
  for (const part of text.split(",")) {
    const [rangeText, stepText, ...rest] = part.split("/");
    if (rest.length > 0 || rangeText === undefined || rangeText === "") return `bad ${f.name} field "${text}"`;
    let lo: number;
    let hi: number;
    if (rangeText === "*" || rangeText === "?") {
      lo = f.min;
      hi = f.name === "day-of-week" ? 6 : f.max;
      if (stepText === undefined) star = true;
    } else {
      const [a, b, ...more] = rangeText.split("-");
      if (more.length > 0) return `bad range "${rangeText}" in ${f.name}`;
      const va = parseValue(a!, f);
      const vb = b === undefined ? va : parseValue(b, f);
      if (va === undefined || vb === undefined) return `bad value "${rangeText}" in ${f.name}`;
      lo = va;
      hi = b === undefined && stepText !== undefined ? f.max : vb;
    }
    if (lo < f.min || hi > f.max || lo > hi) return `${f.name} value out of range (${f.min}-${f.max}): "${rangeText}"`;
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) return `bad step "${stepText}" in ${f.name}`;
      step = Number(stepText);
    }
    for (let v = lo; v <= hi; v += step) values.add(f.name === "day-of-week" && v === 7 ? 0 : v);
  }
  return { values, star };
}

export function parseCron(expr: string): CronParse {
  const trimmed = expr.trim();
  const text = DESCRIPTORS[trimmed.toLowerCase()] ?? trimmed;
  const parts = text.split(/\s+/).filter((p) => p !== "");
  if (parts.length !== 5) return { kind: "error", message: `expected exactly 5 fields, found ${parts.length}: ${JSON.stringify(expr)}` };
  const parsed = [];
  for (let i = 0; i < 5; i++) {
    const r = parseField(parts[i]!, FIELDS[i]!);
    if (typeof r === "string") return { kind: "error", message: r };
    parsed.push(r);
  }
  const [minute, hour, dom, month, dow] = parsed as [ReturnType<typeof parseField> & object, ReturnType<typeof parseField> & object, ReturnType<typeof parseField> & object, ReturnType<typeof parseField> & object, ReturnType<typeof parseField> & object];
  return { kind: "ok", value: { minute: minute.values, hour: hour.values, dom: dom.values, month: month.values, dow: dow.values, domStar: dom.star, dowStar: dow.star } };
}

function dayMatches(s: CronSchedule, d: Date): boolean {
  const domOk = s.dom.has(d.getUTCDate());
  const dowOk = s.dow.has(d.getUTCDay());
  if (s.domStar || s.dowStar) return domOk && dowOk;
  return domOk || dowOk;
}

export function matches(s: CronSchedule, d: Date): boolean {
  return s.minute.has(d.getUTCMinutes()) && s.hour.has(d.getUTCHours()) && s.month.has(d.getUTCMonth() + 1) && dayMatches(s, d);
}

const MINUTE = 60_000;
/** Far enough for any satisfiable schedule (Feb 29 on a given weekday: 28 years). */
const SEARCH_LIMIT_MINUTES = 60 * 24 * 366 * 30;

/** The first scheduled time strictly after `after`, or undefined when there is none. */
export function nextAfter(s: CronSchedule, after: Date): Date | undefined {
  let t = Math.floor(after.getTime() / MINUTE) * MINUTE + MINUTE;
  for (let i = 0; i < SEARCH_LIMIT_MINUTES; i++, t += MINUTE) {
    const d = new Date(t);
    if (!s.month.has(d.getUTCMonth() + 1)) {
      // Jump to the first day of the next month.
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - MINUTE;
      continue;
    }
    if (!dayMatches(s, d)) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) - MINUTE;
      continue;
    }
    if (!s.hour.has(d.getUTCHours())) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1) - MINUTE;
      continue;
    }
    if (s.minute.has(d.getUTCMinutes())) return d;
  }
  return undefined;
}

/**
 * cronjob utils.go mostRecentScheduleTime: the latest scheduled time in (earliest, now], and how
 * many were missed (more than one means runs were skipped). Bounded: at most `limit` are walked.
 */
export function mostRecentScheduleTime(s: CronSchedule, earliest: Date, now: Date, limit = 1000): { time?: Date; missed: number } {
  let time: Date | undefined;
  let missed = 0;
  for (let t = nextAfter(s, earliest); t && t.getTime() <= now.getTime(); t = nextAfter(s, t)) {
    time = t;
    if (++missed >= limit) break;
  }
  return { ...(time ? { time } : {}), missed };
}
