/**
 * The quote store: where the latest price of every ticker lives, and how a batch of new prices
 * is announced. It is market data's port to infrastructure (Redis, or memory when everything
 * runs in one process); nothing here decides whether a quote is fresh enough — that rule is
 * core/market.ts's `quoteFreshness`, applied by the market data service and the engine.
 *
 * Pricing an order costs one read (`get`); valuing many tickers one read (`getMany`).
 */
import type { Price, Qty } from '../../core/money.js';

export interface Quote {
  ticker: string;
  /** The last price. */
  price: Price;
  /** When the price was published (epoch ms, wall clock): what the freshness rule measures. */
  asOfMs: number;
  /**
   * The touch, when the feed publishes one: best bid and ask, with the shares displayed at
   * each. A quote without them (an older stored value, a feed that has only prices) is read as
   * bid = ask = price by the fill models (core/liquidity.ts: touchOrDefault).
   */
  bid?: Price;
  ask?: Price;
  bidSize?: Qty;
  askSize?: Qty;
}

/**
 * A copy of the quote's own fields (a caller's object may carry more): the price, its time and
 * the touch when it has all of it (a store keeps a whole touch or none).
 */
export function copyQuote(q: Quote): Quote {
  const base: Quote = { ticker: q.ticker, price: q.price, asOfMs: q.asOfMs };
  if (q.bid === undefined || q.ask === undefined || q.bidSize === undefined || q.askSize === undefined) return base;
  return { ...base, bid: q.bid, ask: q.ask, bidSize: q.bidSize, askSize: q.askSize };
}

/** Who published a tick batch: the feed kind and the instance (its leader token). */
export interface TickSource {
  feed: string;
  feedId: string;
}

export interface TickBatch {
  source: TickSource;
  quotes: Quote[];
}

/** Stops a subscription; resolves once no more batches will be delivered to it. */
export type Unsubscribe = () => Promise<void>;

export interface QuoteStore {
  get(ticker: string): Promise<Quote | undefined>;
  /** The quotes of those tickers that have one. */
  getMany(tickers: readonly string[]): Promise<Map<string, Quote>>;
  /** Every stored quote, in ticker order. */
  getAll(): Promise<Quote[]>;
  /** Stores quotes without announcing them (seeding, tests). */
  setMany(quotes: readonly Quote[]): Promise<void>;
  /**
   * Stores a tick batch and announces it to subscribers, so that a subscriber never hears of a
   * price the store does not hold yet. Announcements are best effort: a subscriber that is
   * slow or reconnecting may miss a batch, never see one twice.
   */
  publish(quotes: readonly Quote[], source: TickSource): Promise<void>;
  /** Hears every batch published from now on, until unsubscribed. */
  subscribe(onBatch: (batch: TickBatch) => void): Promise<Unsubscribe>;
  /**
   * Marks the tickers' stored prices as current without changing them (`asOfMs`), atomically
   * per ticker, so a price set meanwhile is never overwritten by an older one: how a feed keeps
   * prices fresh while they stand still (a closed market, the manual feed, a gap in a replay).
   * The refreshed quotes are announced to subscribers (so a listener sees prices stay fresh) but
   * not appended to the tick log: a price that did not move triggers nothing.
   */
  refresh(tickers: readonly string[], asOfMs: number, source: TickSource): Promise<void>;
}

/** One published tick batch in the tick log, with its position. */
export interface TickLogEntry {
  cursor: string;
  batch: TickBatch;
}

/**
 * The tick log: every published batch, in order, kept for a bounded number of batches (so a
 * reader that was away briefly misses nothing) — what the resting-order watcher reads, since
 * the announcements of `subscribe` may be missed. Readers keep their position (a cursor) in the
 * log itself, by name, so a watcher that takes over resumes where the last one stopped.
 */
export interface TickLog {
  /**
   * The batches after `cursor` (undefined: only batches published from now on; TICK_LOG_START:
   * all the log holds), at most `countMax`, waiting up to `blockMs` for the first; `cursor` of
   * the result is where to read on. `gap` is true when the log no longer holds everything after
   * the given cursor.
   */
  readTicks(cursor: string | undefined, countMax: number, blockMs: number): Promise<{ cursor: string | undefined; entries: TickLogEntry[]; gap: boolean }>;
  saveCursor(reader: string, cursor: string): Promise<void>;
  loadCursor(reader: string): Promise<string | undefined>;
  /** Ends a waiting read and releases what reading holds. */
  closeReader(): Promise<void>;
}

/** Batches the tick log keeps (40 tickers every 250 ms: about ten minutes). */
export const TICK_LOG_LENGTH_MAX = 2_400;

/** The position before every entry: reading from it returns everything the log holds, without a gap. */
export const TICK_LOG_START = '0-0';

