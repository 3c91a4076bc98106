/**
 * The quote store in memory, for every role in one process: a map of the latest quote per
 * ticker, and subscribers called on the next turn of the event loop after a batch is stored
 * (never inside publish, like a message that travels), each batch once, in order.
 */
import type { Quote, QuoteStore, TickBatch, TickSource, Unsubscribe } from './quote-store.js';

export class MemoryQuoteStore implements QuoteStore {
  private readonly quotes = new Map<string, Quote>();
  private readonly subscribers = new Set<(batch: TickBatch) => void>();

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
    for (const q of quotes) this.quotes.set(q.ticker, { ticker: q.ticker, price: q.price, asOfMs: q.asOfMs });
  }

  async publish(quotes: readonly Quote[], source: TickSource): Promise<void> {
    if (quotes.length === 0) return;
    await this.setMany(quotes);
    if (this.subscribers.size === 0) return;
    const batch: TickBatch = { source: { ...source }, quotes: quotes.map((q) => ({ ...q })) };
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
}
