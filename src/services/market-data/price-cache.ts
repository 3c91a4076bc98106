/**
 * The price cache in Redis: one hash, ticker -> "<price>|<as_of epoch ms>". Pricing an order is
 * one HGET (one round trip); a valuation of many tickers is one HMGET. Nothing here decides
 * whether a quote is fresh enough: that rule lives in the market data service.
 */
import type { Redis } from 'ioredis';
import { formatPrice, fromDb, PRICE_SCALE, type Price } from '../../core/money.js';
import type { Keys } from '../../infra/keys.js';

export interface Quote {
  ticker: string;
  price: Price;
  asOfMs: number;
}

export function encodeQuote(price: Price, asOfMs: number): string {
  return `${formatPrice(price)}|${asOfMs}`;
}

export function decodeQuote(ticker: string, raw: string | null | undefined): Quote | undefined {
  if (!raw) return undefined;
  const bar = raw.indexOf('|');
  if (bar < 0) return undefined;
  const asOfMs = Number(raw.slice(bar + 1));
  if (!Number.isSafeInteger(asOfMs)) return undefined;
  return { ticker, price: fromDb(raw.slice(0, bar), PRICE_SCALE), asOfMs };
}

export class PriceCache {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
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

  /** Writes many quotes in one round trip. */
  async setMany(quotes: readonly Quote[]): Promise<void> {
    if (quotes.length === 0) return;
    const fields: string[] = [];
    for (const q of quotes) fields.push(q.ticker, encodeQuote(q.price, q.asOfMs));
    await this.redis.hset(this.keys.prices(), ...fields);
  }
}
