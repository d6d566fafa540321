/**
 * Seeded randomness for everything a run draws: arrival gaps, prompt words and lengths, which
 * requests get a token re-count. `--seed` fixes all of it, so two runs with the same flags send
 * the same prompts on the same schedule (what `vllm bench serve --seed` promises too).
 */

/** A PRNG returning floats in [0, 1). */
export type Random = () => number;

/**
 * sfc32 (Chris Doty-Humphrey's small fast counting generator) seeded through splitmix32, so
 * nearby seeds (0, 1, 2) give unrelated streams. 128 bits of state: a run of millions of draws
 * never comes near its period.
 *
 * @example
 * const random = createRandom(42);
 * random(); // 0 <= x < 1, the same on every machine
 */
export function createRandom(seed: number): Random {
  let s = seed >>> 0;
  const split = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

/** A standard normal draw (Box-Muller); `1 - random()` keeps the logarithm finite. */
export function normal(random: Random): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** An exponential draw with the given mean. */
export function exponential(random: Random, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/**
 * A gamma draw with shape `k` and scale `theta` (mean k·theta), by Marsaglia and Tsang's method;
 * shapes below 1 use the boost `G(k) = G(k + 1) · U^(1/k)`. This is the distribution of
 * `--burstiness` arrival gaps: shape = burstiness, scale = 1 / (rate · burstiness), the same
 * parametrisation as numpy's `gamma(shape, scale)` in vLLM's benchmark.
 */
export function gamma(random: Random, k: number, theta: number): number {
  if (k < 1) {
    const u = 1 - random();
    return gamma(random, k + 1, theta) * u ** (1 / k);
  }
  const d = k - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v * theta;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v * theta;
  }
}
