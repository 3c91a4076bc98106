/**
 * A seeded pseudo-random generator (mulberry32) for benchmarks and property-style tests: the same
 * seed gives the same sequence, so a run that found something can be run again. Uniform in
 * [0, 1). Not for anything secret (ids and keys use node:crypto).
 */
export function seededRandom(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}
