/**
 * A small seeded random generator for the price simulator, benchmarks and property-style tests:
 * xoshiro128** (period 2^128 - 1)
 * seeded through splitmix32, and standard normal variates by the Box-Muller transform. The same
 * seed gives the same sequence. The integer generator is exact everywhere; the normals go through
 * `Math.log`, `Math.sin` and `Math.cos`, which the language does not require to be correctly
 * rounded, so another JavaScript engine could differ in the last bits (one Node version does not).
 */

const TWO_POW_32 = 4_294_967_296;

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | undefined;

  constructor(seed: number) {
    const mix = splitmix32(seed);
    this.s0 = mix();
    this.s1 = mix();
    this.s2 = mix();
    this.s3 = mix();
    // xoshiro must not start from the all-zero state (splitmix32 practically never yields it).
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next 32-bit unsigned integer (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in the open interval (0, 1): never 0, so its logarithm is finite. */
  nextUniform(): number {
    return (this.nextUint32() + 0.5) / TWO_POW_32;
  }

  /** Standard normal (mean 0, variance 1); Box-Muller yields two per pair of uniforms. */
  nextNormal(): number {
    if (this.spareNormal !== undefined) {
      const spare = this.spareNormal;
      this.spareNormal = undefined;
      return spare;
    }
    const radius = Math.sqrt(-2 * Math.log(this.nextUniform()));
    const angle = 2 * Math.PI * this.nextUniform();
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Uniform draws in [0, 1) from a SeededRandom, as a plain function (benchmarks, property-style tests). */
export function uniformFrom(seed: number): () => number {
  const r = new SeededRandom(seed);
  return () => r.nextUniform();
}
