/**
 * The statistics the reports rely on, written out so each is checkable: Student's t
 * distribution (through the regularised incomplete beta function), Welch's unequal-variance
 * t-test for `bench compare`, a least-squares slope with its standard error for the
 * over-saturation check, and the knee of a load curve (Kneedle).
 */

/** ln Γ(x) by the Lanczos approximation (g = 7, n = 9); accurate to ~1e-15 for x > 0. */
function logGamma(x: number): number {
  const c = [
    0.999_999_999_999_809_9, 676.520_368_121_885_1, -1259.139_216_722_402_8, 771.323_428_777_653_1,
    -176.615_029_162_140_6, 12.507_343_278_686_905, -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6, 1.505_632_735_149_311_6e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-14) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x),
  );
  return x < (a + 1) / (a + b + 2)
    ? (front * betaContinuedFraction(a, b, x)) / a
    : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(|T| >= |t|) for Student's t with `df` degrees of freedom (two-sided p-value). */
export function twoSidedP(t: number, df: number): number {
  if (!Number.isFinite(t)) return Number.isNaN(t) ? Number.NaN : 0;
  return incompleteBeta(df / (df + t * t), df / 2, 0.5);
}

/** The t value with P(T <= t) = `p` (one-sided quantile), by bisection on {@link twoSidedP}. */
export function tQuantile(p: number, df: number): number {
  // For p > 0.5: P(T > t) = 1 - p = twoSidedP(t) / 2.
  const target = 2 * (1 - p);
  let lo = 0;
  let hi = 1e3;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (twoSidedP(mid, df) > target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Result of {@link welchTest}. */
export interface WelchResult {
  meanA: number;
  meanB: number;
  t: number;
  df: number;
  /** Two-sided p-value of "the means are equal". */
  p: number;
}

/**
 * Welch's t-test on two samples (per-repetition values of one metric). Needs at least two
 * values on each side; returns undefined otherwise.
 *
 * @example
 * welchTest([10.1, 10.3, 9.9], [11.0, 11.2, 10.9])?.p; // ~0.002
 */
export function welchTest(a: readonly number[], b: readonly number[]): WelchResult | undefined {
  if (a.length < 2 || b.length < 2) return undefined;
  const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
  const variance = (xs: readonly number[], m: number): number =>
    xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
  const meanA = mean(a);
  const meanB = mean(b);
  const va = variance(a, meanA) / a.length;
  const vb = variance(b, meanB) / b.length;
  const se = Math.sqrt(va + vb);
  if (se === 0) {
    return {
      meanA,
      meanB,
      t: meanA === meanB ? 0 : Infinity,
      df: Infinity,
      p: meanA === meanB ? 1 : 0,
    };
  }
  const t = (meanB - meanA) / se;
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  return { meanA, meanB, t, df, p: twoSidedP(t, df) };
}

/** Least-squares fit y = a + b·x over points, with the slope's standard error. */
export interface SlopeFit {
  n: number;
  slope: number;
  standardError: number;
}

/** Fits a line; undefined with fewer than 3 points or no spread in x. */
export function fitSlope(xs: readonly number[], ys: readonly number[]): SlopeFit | undefined {
  const n = Math.min(xs.length, ys.length);
  if (n < 3) return undefined;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i] as number;
    sy += ys[i] as number;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) return undefined;
  const slope = sxy / sxx;
  const residual = Math.max(0, syy - slope * sxy);
  const standardError = Math.sqrt(residual / (n - 2) / sxx);
  return { n, slope, standardError };
}

/**
 * Whether a fitted slope is positive with 97.5% one-sided confidence (its 95% interval lies above
 * zero).
 */
export function significantlyPositive(fit: SlopeFit): boolean {
  if (fit.slope <= 0) return false;
  if (fit.standardError === 0) return true;
  return fit.slope - tQuantile(0.975, fit.n - 2) * fit.standardError > 0;
}

/**
 * The knee of an increasing, saturating curve (throughput against concurrency or offered
 * rate) by Kneedle (Satopää et al., 2011): normalise both axes to [0, 1] and take the point
 * farthest above the diagonal. Returns the index, or undefined for fewer than 3 points or a curve
 * that never bends (every point on or below the diagonal).
 *
 * @example
 * kneeIndex([1, 2, 4, 8, 16], [10, 20, 40, 42, 43]); // 2
 */
export function kneeIndex(xs: readonly number[], ys: readonly number[]): number | undefined {
  const n = Math.min(xs.length, ys.length);
  if (n < 3) return undefined;
  const minX = Math.min(...xs.slice(0, n));
  const maxX = Math.max(...xs.slice(0, n));
  const minY = Math.min(...ys.slice(0, n));
  const maxY = Math.max(...ys.slice(0, n));
  if (maxX === minX || maxY === minY) return undefined;
  let best = -Infinity;
  let index: number | undefined;
  for (let i = 0; i < n; i++) {
    const nx = ((xs[i] as number) - minX) / (maxX - minX);
    const ny = ((ys[i] as number) - minY) / (maxY - minY);
    const d = ny - nx;
    if (d > best) {
      best = d;
      index = i;
    }
  }
  return best > 0 ? index : undefined;
}
