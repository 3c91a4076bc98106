/**
 * The quote store in memory, for every role in one process: a map of the latest quote per
 * ticker, and subscribers called on the next turn of the event loop after a batch is stored
 * (never inside publish, like a message that travels), each batch once, in order.
 */
import { copyQuote, TICK_LOG_LENGTH_MAX, TICK_LOG_START, type Quote, type QuoteStore, type TickBatch, type TickLog, type TickLogEntry, type TickSource, type Unsubscribe } from './quote-store.js';
import { compareStreamIds, StreamIdSource } from '../../infra/stream-ids.js';

export class MemoryQuoteStore implements QuoteStore, TickLog {
  private readonly quotes = new Map<string, Quote>();
  private readonly subscribers = new Set<(batch: TickBatch) => void>();
  private log: TickLogEntry[] = [];
  private readonly cursors = new Map<string, string>();
  private readonly waiters = new Set<() => void>();
  private readonly ids = new StreamIdSource();

  constructor(private readonly logLengthMax = TICK_LOG_LENGTH_MAX) {}

  async get(ticker: string): Promise<Quote | undefined> {
    const q = this.quotes.get(ticker);
    return q ? { ...q } : undefined;
  }

  async getMany(tickers: readonly string[]): Promise<Map<string, Quote>> {
    const out = new Map<string, Quote>();
    for (const t of tickers) {
      const q = this.quotes.get(t);
      if (q) out.set(t, { ...q });
    }
    return out;
  }

  async getAll(): Promise<Quote[]> {
    return [...this.quotes.values()].map((q) => ({ ...q })).sort((a, b) => (a.ticker < b.ticker ? -1 : 1));
  }

  async setMany(quotes: readonly Quote[]): Promise<void> {
    // The store keeps copies: a caller that reuses its objects cannot change a stored price.
    for (const q of quotes) this.quotes.set(q.ticker, copyQuote(q));
  }

  async publish(quotes: readonly Quote[], source: TickSource): Promise<void> {
    if (quotes.length === 0) return;
    await this.setMany(quotes);
    const batch: TickBatch = { source: { ...source }, quotes: quotes.map(copyQuote) };
    this.log.push({ cursor: this.ids.next(Date.now()), batch });
    if (this.log.length > this.logLengthMax) this.log = this.log.slice(-this.logLengthMax);
    for (const wake of [...this.waiters]) wake();
    this.announce(batch);
  }

  /** Calls the subscribers on the next turn of the event loop, as a message that travels. */
  private announce(batch: TickBatch): void {
    if (this.subscribers.size === 0) return;
    const subscribers = [...this.subscribers];
    setImmediate(() => {
      for (const s of subscribers) if (this.subscribers.has(s)) s(batch);
    });
  }

  async subscribe(onBatch: (batch: TickBatch) => void): Promise<Unsubscribe> {
    const subscriber = (batch: TickBatch) => onBatch(batch);
    this.subscribers.add(subscriber);
    return async () => {
      this.subscribers.delete(subscriber);
    };
  }

  async refresh(tickers: readonly string[], asOfMs: number, source: TickSource): Promise<void> {
    const refreshed: Quote[] = [];
    for (const t of tickers) {
      const q = this.quotes.get(t);
      if (q && asOfMs > q.asOfMs) {
        this.quotes.set(t, { ...q, asOfMs });
        refreshed.push({ ...q, asOfMs });
      }
    }
    if (refreshed.length > 0) this.announce({ source: { ...source }, quotes: refreshed });
  }

  async readTicks(cursor: string | undefined, countMax: number, blockMs: number) {
    const start = cursor ?? this.log.at(-1)?.cursor ?? '0-0';
    const deadline = Date.now() + blockMs;
    const generation = this.closeGeneration;
    for (;;) {
      const first = this.log[0];
      // The oldest entry kept is past the position: what lay between was trimmed.
      const gap = cursor !== undefined && cursor !== TICK_LOG_START && first !== undefined && compareStreamIds(first.cursor, cursor) > 0;
      const entries = this.log.filter((e) => compareStreamIds(e.cursor, start) > 0).slice(0, countMax);
      if (entries.length > 0 || Date.now() >= deadline || generation !== this.closeGeneration) {
        return { cursor: entries.at(-1)?.cursor ?? (cursor === undefined ? start : cursor), entries, gap };
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        this.waiters.add(done);
      });
    }
  }

  /** Bumped by closeReader: reads that were waiting return, later reads work as before. */
  private closeGeneration = 0;

  async closeReader(): Promise<void> {
    this.closeGeneration += 1;
    for (const wake of [...this.waiters]) wake();
  }

  async saveCursor(reader: string, cursor: string): Promise<void> {
    this.cursors.set(reader, cursor);
  }

  async loadCursor(reader: string): Promise<string | undefined> {
    return this.cursors.get(reader);
  }
}
