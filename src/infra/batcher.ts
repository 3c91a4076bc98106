/**
 * Smart batching without timers: the first item starts a batch at once (no added latency when
 * idle); items that arrive while `concurrencyMax` batches are running wait and go together in
 * the next one (up to `sizeMax`). Under load a batch grows to what arrived during one round
 * trip, so the per-batch costs — a statement, a commit, a socket write — are paid once for many
 * items. `run` answers one result per item, in order; if it throws, every item of the batch
 * gets the error. The queue is bounded: past `queueMax` waiting items, `submit` refuses at once
 * (BatcherFullError) instead of letting latency and memory grow without limit.
 */
export class BatcherFullError extends Error {
  constructor(readonly queueMax: number) {
    super(`more than ${queueMax} items are waiting for a batch`);
    this.name = 'BatcherFullError';
  }
}

export class Batcher<I, O> {
  private readonly queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly options: { sizeMax: number; concurrencyMax: number; queueMax: number },
  ) {
    if (!(options.sizeMax >= 1 && options.concurrencyMax >= 1 && options.queueMax >= 1)) {
      throw new RangeError('sizeMax, concurrencyMax and queueMax are at least 1');
    }
  }

  submit(item: I): Promise<O> {
    if (this.queue.length >= this.options.queueMax) return Promise.reject(new BatcherFullError(this.options.queueMax));
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Items waiting for a batch (not counting the running ones). */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.options.concurrencyMax || this.queue.length === 0) return;
    // setImmediate: requests parsed in the same event-loop turn join the same batch.
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.start();
    });
  }

  private start(): void {
    while (this.running < this.options.concurrencyMax && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.sizeMax);
      this.running++;
      void this.run(batch.map((b) => b.item))
        .then(
          (results) => {
            if (results.length !== batch.length) throw new Error(`batch of ${batch.length} answered ${results.length} results`);
            batch.forEach((b, i) => b.resolve(results[i]!));
          },
          (err: unknown) => batch.forEach((b) => b.reject(err)),
        )
        .catch((err: unknown) => batch.forEach((b) => b.reject(err)))
        .finally(() => {
          this.running--;
          this.schedule();
        });
    }
  }
}
