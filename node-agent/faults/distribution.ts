/**
 * Delay distributions as netem draws them (net/sched/sch_netem.c tabledist): delay = mu + sigma * t,
 * where t is an entry of a table iproute2 generates (netem/normal.c, pareto.c, paretonormal.c),
 * picked at a uniform random index. Each table is the distribution's quantile function sampled
 * at evenly spaced points and scaled by NETEM_DIST_SCALE (8192), clipped to an s16 (so
 * |t| <= 32767 / 8192, about 4). Here the same quantile functions are evaluated by formula at the
 * uniform value instead of read from a table; without a distribution netem's jitter is uniform.
 */

export const DISTRIBUTIONS = ["uniform", "normal", "pareto", "paretonormal"] as const;
export type Distribution = (typeof DISTRIBUTIONS)[number];

/** The largest |t| a netem table holds: an s16 entry over NETEM_DIST_SCALE. */
export const TABLE_MAX = 32767 / 8192;

/** pareto.c's shape parameter (a = 3): mean 1.5, shifted by -1.5 and scaled by 4/3. */
const PARETO_A = 3;

/**
 * The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9):
 * what normal.c tabulates by inverting 0.5 + 0.5 * erf(x / sqrt 2).
 */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** pareto.c at v in (0, 1]: (v^(-1/a) - 1.5) * 4/3, clipped as its table is. */
function paretoValue(v: number): number {
  const x = (Math.pow(Math.max(v, 1e-12), -1 / PARETO_A) - 1.5) * (4 / 3);
  return Math.min(x, TABLE_MAX);
}

const clip = (x: number) => Math.max(-TABLE_MAX, Math.min(TABLE_MAX, x));

/**
 * The table value t for a uniform u in [0, 1): netem's `table[rnd % size]`, in units of sigma.
 * - uniform: 2u - 1 (netem without a table: `(rnd % (2 * sigma)) + mu - sigma`);
 * - normal: the normal quantile at u (normal.c);
 * - pareto: pareto.c walks i from 65536 down, so table entry u holds the pareto value at 1 - u;
 * - paretonormal: paretonormal.c's (normal + 3 * pareto) / 4, both read at the same index
 *   (the normal at u, the pareto at 1 - u), so large values of the two coincide.
 */
export function tableValue(dist: Distribution, u: number): number {
  switch (dist) {
    case "uniform":
      return 2 * u - 1;
    case "normal":
      return clip(normalQuantile(u));
    case "pareto":
      return paretoValue(1 - u);
    case "paretonormal":
      return clip((clip(normalQuantile(u)) + 3 * paretoValue(1 - u)) / 4);
  }
}

/** netem's tabledist: mu when there is no jitter, else mu + sigma * t(u). */
export function tabledist(mu: number, sigma: number, u: number, dist: Distribution): number {
  if (sigma === 0) return mu;
  return mu + sigma * tableValue(dist, u);
}
