/**
 * The quote store in Redis: one hash, ticker -> "<price>|<as_of epoch ms>". Pricing an order is
 * one HGET (one round trip); a valuation of many tickers is one HMGET. A tick batch is written
 * and PUBLISHed on the ticks channel in one MULTI. Nothing here decides whether a quote is
 * fresh enough.
 */
import type { Redis } from 'ioredis';
import { formatPrice, fromDb, PRICE_SCALE, type Price } from '../../core/money.js';
import type { Keys } from '../../infra/keys.js';
import type { Quote, QuoteStore, TickBatch, TickSource, Unsubscribe } from './quote-store.js';

/**
 * The JSON published on the ticks channel, one message per tick batch:
 * `{ "feed": "simulator", "feed_id": "...", "ticks": [ { "ticker", "price", "as_of" } ] }`,
 * prices as 4-decimal strings and `as_of` ISO-8601, as in the HTTP API.
 */
export interface TickMessage {
  feed: string;
  feed_id: string;
  ticks: { ticker: string; price: string; as_of: string }[];
}

export function encodeTickMessage(quotes: readonly Quote[], source: TickSource): string {
  const message: TickMessage = {
    feed: source.feed,
    feed_id: source.feedId,
    ticks: quotes.map((q) => ({ ticker: q.ticker, price: formatPrice(q.price), as_of: new Date(q.asOfMs).toISOString() })),
  };
  return JSON.stringify(message);
}

/** Reads a ticks-channel message back into quotes (for subscribers); undefined if malformed. */
export function decodeTickMessage(text: string): TickBatch | undefined {
  let message: TickMessage;
  try {
    message = JSON.parse(text) as TickMessage;
  } catch {
    return undefined;
  }
  if (!message || typeof message !== 'object' || !Array.isArray(message.ticks)) return undefined;
  const quotes: Quote[] = [];
  for (const t of message.ticks) {
    const asOfMs = Date.parse(t?.as_of);
    if (typeof t?.ticker !== 'string' || typeof t.price !== 'string' || !/^\d+\.\d{4}$/.test(t.price) || Number.isNaN(asOfMs)) {
      return undefined;
    }
    quotes.push({ ticker: t.ticker, price: fromDb(t.price, PRICE_SCALE), asOfMs });
  }
  return { source: { feed: String(message.feed), feedId: String(message.feed_id) }, quotes };
}

export function encodeQuote(price: Price, asOfMs: number): string {
  return `${formatPrice(price)}|${asOfMs}`;
}

export function decodeQuote(ticker: string, raw: string | null | undefined): Quote | undefined {
  if (!raw) return undefined;
  const bar = raw.indexOf('|');
  if (bar < 0) return undefined;
  const asOfMs = Number(raw.slice(bar + 1));
  const price = raw.slice(0, bar);
  // Redis is not trusted like PostgreSQL: a value we cannot read is no price (PRICE_UNAVAILABLE
  // for readers), not a crash.
  if (!Number.isSafeInteger(asOfMs) || !/^\d{1,16}(\.\d{1,4})?$/.test(price)) return undefined;
  return { ticker, price: fromDb(price, PRICE_SCALE), asOfMs };
}

export class RedisQuoteStore implements QuoteStore {
  /**
   * @param redis the shared command connection
   * @param subscriberFor a new connection for a subscription (pub/sub takes a connection over)
   */
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly subscriberFor: () => Redis = () => redis.duplicate(),
  ) {}

  async get(ticker: string): Promise<Quote | undefined> {
    return decodeQuote(ticker, await this.redis.hget(this.keys.prices(), ticker));
  }

  async getMany(tickers: readonly string[]): Promise<Map<string, Quote>> {
    const out = new Map<string, Quote>();
    if (tickers.length === 0) return out;
    const raws = await this.redis.hmget(this.keys.prices(), ...tickers);
    tickers.forEach((ticker, i) => {
      const quote = decodeQuote(ticker, raws[i]);
      if (quote) out.set(ticker, quote);
    });
    return out;
  }

  async getAll(): Promise<Quote[]> {
    const all = await this.redis.hgetall(this.keys.prices());
    return Object.entries(all)
      .map(([ticker, raw]) => decodeQuote(ticker, raw))
      .filter((q): q is Quote => q !== undefined)
      .sort((a, b) => (a.ticker < b.ticker ? -1 : 1));
  }

  /**
   * Writes a batch of quotes and publishes it on the ticks channel in one MULTI: one round trip,
   * and a subscriber never hears of a price the store does not hold yet.
   */
  async publish(quotes: readonly Quote[], source: TickSource): Promise<void> {
    if (quotes.length === 0) return;
    const fields: string[] = [];
    for (const q of quotes) fields.push(q.ticker, encodeQuote(q.price, q.asOfMs));
    const results = await this.redis
      .multi()
      .hset(this.keys.prices(), ...fields)
      .publish(this.keys.ticksChannel(), encodeTickMessage(quotes, source))
      .exec();
    // exec() reports a failed command inside the transaction as [error, result] instead of throwing.
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  /** Writes many quotes in one round trip. */
  async setMany(quotes: readonly Quote[]): Promise<void> {
    if (quotes.length === 0) return;
    const fields: string[] = [];
    for (const q of quotes) fields.push(q.ticker, encodeQuote(q.price, q.asOfMs));
    await this.redis.hset(this.keys.prices(), ...fields);
  }

  async subscribe(onBatch: (batch: TickBatch) => void): Promise<Unsubscribe> {
    const subscriber = this.subscriberFor();
    // A lost connection is reconnected by ioredis; what was published meanwhile is missed
    // (pub/sub is best effort by contract).
    subscriber.on('error', () => {});
    const channel = this.keys.ticksChannel();
    subscriber.on('message', (from: string, text: string) => {
      if (from !== channel) return;
      const batch = decodeTickMessage(text);
      if (batch) onBatch(batch);
    });
    await subscriber.subscribe(channel);
    return async () => {
      await subscriber.unsubscribe(channel).catch(() => undefined);
      subscriber.disconnect();
    };
  }
}
