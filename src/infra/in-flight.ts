/**
 * Shared reads: calls for one key while a call for it is in flight get that call's promise
 * instead of reading again, so requests that miss a cache together cost one read. A failed
 * read is shared with those waiting for it, then forgotten: the next call reads again. At most
 * `sharedMax` reads are shared at once; past that a call reads on its own (nothing grows
 * without a bound).
 */
export class InFlight<V> {
  private readonly running = new Map<string, Promise<V>>();

  constructor(private readonly sharedMax: number) {
    if (!(sharedMax >= 1)) throw new RangeError('sharedMax is at least 1');
  }

  run(key: string, read: () => Promise<V>): Promise<V> {
    const running = this.running.get(key);
    if (running) return running;
    const call = read();
    if (this.running.size >= this.sharedMax) return call;
    this.running.set(key, call);
    return call.finally(() => this.running.delete(key));
  }

  /** Reads in flight that later calls would share. */
  get size(): number {
    return this.running.size;
  }
}
