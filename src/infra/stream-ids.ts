/**
 * Stream entry ids as Redis gives them, "<ms>-<seq>": how two compare, and how the in-process
 * streams (the order pipe, the tick log) make them, so both implementations of each interface
 * hand out and order ids the same way.
 */

/** Compares two "<ms>-<seq>" ids by their two numbers (BigInt: a seq may pass 2^53 in principle). */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map((x) => BigInt(x));
  const [bm = 0n, bs = 0n] = b.split('-').map((x) => BigInt(x));
  return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0;
}

/** Makes increasing "<ms>-<seq>" ids, as XADD '*' does, even when the clock stands still or steps back. */
export class StreamIdSource {
  private lastMs = 0;
  private seq = 0;

  next(nowMs: number): string {
    const ms = Math.max(nowMs, this.lastMs);
    this.seq = ms === this.lastMs ? this.seq + 1 : 0;
    this.lastMs = ms;
    return `${ms}-${this.seq}`;
  }
}
