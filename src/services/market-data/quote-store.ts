/**
 * The quote store: where the latest price of every ticker lives, and how a batch of new prices
 * is announced. It is market data's port to infrastructure (Redis, or memory when everything
 * runs in one process); nothing here decides whether a quote is fresh enough — that rule is
 * core/market.ts's `isQuoteFresh`, applied by the market data service.
 *
 * Pricing an order costs one read (`get`); valuing many tickers one read (`getMany`).
 */
import type { Price } from '../../core/money.js';

export interface Quote {
  ticker: string;
  price: Price;
  /** When the price was published (epoch ms, wall clock): what the freshness rule measures. */
  asOfMs: number;
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
}
