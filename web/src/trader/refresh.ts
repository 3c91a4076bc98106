/**
 * Re-fetching what events affect, debounced and bounded. A burst of events (an order placed,
 * opened and filled within milliseconds) asks for the same snapshots many times; they are
 * gathered for `delayMs` and each snapshot is then loaded once. At most one request per snapshot
 * is in flight: a request asked for meanwhile runs once more when it ends (so the last answer
 * always reflects the last event), never in parallel and never more than once more.
 */
export class Refresher<K extends string> {
  private readonly pending = new Set<K>();
  private readonly running = new Map<K, Promise<void>>();
  private readonly again = new Set<K>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;

  constructor(
    private readonly loaders: Record<K, () => Promise<void>>,
    private readonly delayMs = 100,
  ) {}

  /** Loads `keys` after the debounce delay, together with whatever else is asked meanwhile. */
  schedule(...keys: K[]): void {
    if (this.disposed) return;
    for (const key of keys) this.pending.add(key);
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const keys = [...this.pending];
      this.pending.clear();
      for (const key of keys) void this.run(key);
    }, this.delayMs);
  }

  /** Loads `keys` now (the first load, a button), resolving when each has answered. */
  async now(...keys: K[]): Promise<void> {
    await Promise.all(keys.map((key) => this.run(key)));
  }

  get all(): K[] {
    return Object.keys(this.loaders) as K[];
  }

  private run(key: K): Promise<void> {
    if (this.disposed) return Promise.resolve();
    const current = this.running.get(key);
    if (current) {
      this.again.add(key);
      return current;
    }
    // Loaders show their own errors in their section; one failing never stops the others.
    const promise = this.loaders[key]()
      .catch(() => undefined)
      .finally(() => {
        this.running.delete(key);
        if (this.again.delete(key)) void this.run(key);
      });
    this.running.set(key, promise);
    return promise;
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    this.pending.clear();
    this.again.clear();
  }
}
