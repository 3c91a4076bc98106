/**
 * Market data as the rest of papertrade sees it: the listed instruments, the latest price of a
 * ticker (fresh, or refused), and the 1-minute price history.
 *
 * `getPrice` is on the order hot path and costs one Redis round trip (one HGET): tickers are
 * checked against an in-memory copy of `instruments`, loaded on first use and refreshed in the
 * background every INSTRUMENTS_REFRESH_MS, never by a query per call.
 *
 * Ticker rule: clients may write a ticker in any case; the HTTP edges bring it to the listed
 * (uppercase) form with `normalizeTicker` (instruments.ts) and answer that form. Lookups here
 * are exact: a ticker that is not a listed instrument, whatever its shape, is UNKNOWN_TICKER.
 */
import { assert } from '../../core/errors.js';
import { priceFromDb, priceToSql } from '../../core/money.js';
import type { Db } from '../../infra/postgres.js';
import type { Logger } from '../../infra/logger.js';
import { BAR_INTERVAL_MS, type Bar } from './bars.js';
import { TICK_BATCH_SIZE_MAX } from './feed.js';
import type { Instrument } from './instruments.js';
import { PriceUnavailableError, UnknownTickerError } from './market-data.errors.js';
import * as repo from './market-data.repository.js';
import type { Quote, QuoteStore } from './quote-store.js';
import { DEFAULT_TOUCH, withTouch, type TouchSettings } from './touch.js';
import { touchOrDefault, type LiquidityTier, type Touch } from '../../core/liquidity.js';
import { quoteFreshness } from '../../core/market.js';

/** How long the in-memory instrument list is used before a background reload. */
export const INSTRUMENTS_REFRESH_MS = 60_000;
/** Most instruments listed: every tick batch carries them all (see TICK_BATCH_SIZE_MAX). */
export const INSTRUMENTS_MAX = TICK_BATCH_SIZE_MAX;
export const BARS_LIMIT_DEFAULT = 50;
export const BARS_LIMIT_MAX = 500;
/** Most bars written by one statement. */
export const BAR_UPSERT_ROWS_MAX = 1_000;

/** Most 1-minute bars one range read returns (listBarRange). */
export const BAR_RANGE_ROWS_MAX = 10_000;
/** Longest range one aggregate reads (aggregateBarRange): a day and a bit, at most ~1,500 bars. */
export const BAR_AGGREGATE_RANGE_MS_MAX = 26 * 3_600_000;
export const BAR_INTERVALS = ['1m'] as const;
export type BarInterval = (typeof BAR_INTERVALS)[number];

export interface MarketDataOptions {
  /** A quote older than this is refused (PRICE_UNAVAILABLE). */
  priceAgeMsMax: number;
  instrumentsRefreshMs?: number;
  logger?: Logger;
  /** How a price without a bid and ask gets them (FEED_SPREAD_BPS, the feed seed). */
  touch?: TouchSettings;
}

interface InstrumentSet {
  list: Instrument[];
  byTicker: Map<string, Instrument>;
  loadedAtMs: number;
}

/**
 * The freshness rule (core/market.ts quoteFreshness) as a refusal: PRICE_UNAVAILABLE says why
 * the quote is not usable (none, stale, or dated in the future).
 */
export function requireFresh(ticker: string, quote: Quote | undefined, priceAgeMsMax: number, nowMs: number): Quote {
  const freshness = quoteFreshness(quote?.asOfMs, nowMs, priceAgeMsMax);
  if (freshness === 'fresh') return quote!;
  if (freshness === 'missing') throw new PriceUnavailableError(ticker, 'no_price');
  throw new PriceUnavailableError(ticker, freshness, nowMs - quote!.asOfMs);
}

/**
 * A quote with both sides: one stored without a touch (before quotes had sides) reads as
 * bid = ask = last with the tier's least size, as the fill models read it.
 */
function withSides(q: Quote, tier: LiquidityTier): Quote & Touch {
  return { ...q, ...touchOrDefault(q, tier) };
}

export function toInstrument(row: repo.InstrumentRow): Instrument {
  return {
    ticker: row.ticker,
    name: row.name,
    referencePrice: priceFromDb(row.reference_price),
    // A model parameter, not money: a float is what the simulator needs.
    annualVolatility: Number(row.annual_volatility),
    // The column's CHECK allows only the three tiers.
    liquidityTier: row.liquidity_tier as LiquidityTier,
  };
}

function toBar(row: repo.BarRow): Bar {
  return {
    ticker: row.ticker,
    bucketMs: row.bucket.getTime(),
    open: priceFromDb(row.open),
    high: priceFromDb(row.high),
    low: priceFromDb(row.low),
    close: priceFromDb(row.close),
    tickCount: row.tick_count,
  };
}

export class MarketDataService {
  private instruments: InstrumentSet | undefined;
  private loading: Promise<InstrumentSet> | undefined;
  private readonly refreshMs: number;

  constructor(
    private readonly db: Db,
    private readonly cache: QuoteStore,
    private readonly options: MarketDataOptions,
  ) {
    this.refreshMs = options.instrumentsRefreshMs ?? INSTRUMENTS_REFRESH_MS;
  }

  /**
   * The latest price of a listed ticker, refused when missing or older than the maximum age.
   * One HGET. Throws UnknownTickerError or PriceUnavailableError.
   */
  async getPrice(ticker: string): Promise<Quote & Touch> {
    const set = await this.instrumentSet();
    const instrument = set.byTicker.get(ticker);
    if (!instrument) throw new UnknownTickerError(ticker);
    return withSides(requireFresh(ticker, await this.cache.get(ticker), this.options.priceAgeMsMax, Date.now()), instrument.liquidityTier);
  }

  /**
   * The cached prices of every listed instrument that has one, in ticker order, fresh or not:
   * `asOfMs` tells their age (GET /prices shows them; only getPrice enforces the maximum age).
   * One HMGET.
   */
  async getPrices(): Promise<(Quote & Touch)[]> {
    const set = await this.instrumentSet();
    const quotes = await this.cache.getMany(set.list.map((i) => i.ticker));
    const out: (Quote & Touch)[] = [];
    for (const i of set.list) {
      const q = quotes.get(i.ticker);
      if (q) out.push(withSides(q, i.liquidityTier));
    }
    return out;
  }

  /** The quote with both sides (its own touch, else bid = ask = last with the tier's least size). */
  async sided(q: Quote): Promise<Quote & Touch> {
    const instrument = (await this.instrumentSet()).byTicker.get(q.ticker);
    return withSides(q, instrument?.liquidityTier ?? 'large');
  }

  /** Throws UnknownTickerError unless `ticker` is a listed instrument (no I/O once loaded). */
  async requireTicker(ticker: string): Promise<void> {
    if (!(await this.isKnownTicker(ticker))) throw new UnknownTickerError(ticker);
  }

  async isKnownTicker(ticker: string): Promise<boolean> {
    return (await this.instrumentSet()).byTicker.has(ticker);
  }

  async getInstrument(ticker: string): Promise<Instrument> {
    const instrument = (await this.instrumentSet()).byTicker.get(ticker);
    if (!instrument) throw new UnknownTickerError(ticker);
    return instrument;
  }

  /** Every listed instrument, in ticker order. */
  async listInstruments(): Promise<Instrument[]> {
    return (await this.instrumentSet()).list;
  }

  /** Reloads the instrument list now (the feed does this when it becomes leader). */
  async refreshInstruments(): Promise<Instrument[]> {
    return (await this.loadInstruments()).list;
  }

  /** The latest `limit` bars of a listed ticker, newest first. */
  async listBars(ticker: string, interval: BarInterval = '1m', limit: number = BARS_LIMIT_DEFAULT): Promise<Bar[]> {
    assert(interval === '1m', `bar interval ${interval} is supported`);
    assert(Number.isInteger(limit) && limit >= 1 && limit <= BARS_LIMIT_MAX, `bars limit within bounds, got ${limit}`);
    await this.requireTicker(ticker);
    return (await repo.listBars(this.db, ticker, limit)).map(toBar);
  }

  /**
   * Up to `limit` (at most BAR_RANGE_ROWS_MAX) 1-minute bars of a listed ticker starting in
   * [fromMs, untilMs), oldest first, or newest first when `descending`.
   */
  async listBarRange(ticker: string, fromMs: number, untilMs: number, options: { descending: boolean; limit: number }): Promise<Bar[]> {
    const { descending, limit } = options;
    assert(Number.isInteger(limit) && limit >= 1 && limit <= BAR_RANGE_ROWS_MAX, `bar range limit within bounds, got ${limit}`);
    assert(Number.isSafeInteger(fromMs) && Number.isSafeInteger(untilMs), 'bar range bounds are instants in ms');
    await this.requireTicker(ticker);
    return (await repo.listBarRange(this.db, ticker, new Date(fromMs), new Date(untilMs), descending, limit)).map(toBar);
  }

  /**
   * The 1-minute bars of a listed ticker starting in [fromMs, untilMs) merged into one (first
   * open, highest high, lowest low, last close, ticks added up), with `bucketMs` = fromMs;
   * undefined when there is none. The range is at most BAR_AGGREGATE_RANGE_MS_MAX long, so the
   * database reads a bounded number of bars.
   */
  async aggregateBarRange(ticker: string, fromMs: number, untilMs: number): Promise<Bar | undefined> {
    assert(Number.isSafeInteger(fromMs) && Number.isSafeInteger(untilMs) && fromMs <= untilMs, 'an aggregate covers an ordered range of instants');
    assert(untilMs - fromMs <= BAR_AGGREGATE_RANGE_MS_MAX, `an aggregate covers at most ${BAR_AGGREGATE_RANGE_MS_MAX} ms`);
    await this.requireTicker(ticker);
    const row = await repo.aggregateBarRange(this.db, ticker, new Date(fromMs), new Date(untilMs));
    if (row === undefined) return undefined;
    return {
      ticker,
      bucketMs: fromMs,
      open: priceFromDb(row.open),
      high: priceFromDb(row.high),
      low: priceFromDb(row.low),
      close: priceFromDb(row.close),
      tickCount: Number(row.tick_count),
    };
  }

  /** The latest 1-minute bar of each listed ticker given that has one (unlisted ones are skipped). */
  async latestBars(tickers: readonly string[]): Promise<Map<string, Bar>> {
    assert(tickers.length <= INSTRUMENTS_MAX, `at most ${INSTRUMENTS_MAX} tickers`);
    const set = await this.instrumentSet();
    const listed = [...new Set(tickers)].filter((t) => set.byTicker.has(t));
    return new Map((await repo.listLatestBars(this.db, listed)).map((row) => [row.ticker, toBar(row)]));
  }

  /**
   * Publishes a price set by the admin exactly as a feed tick is published — into the quote
   * store, its tick log (the resting orders see it) and announcements — and records it in the
   * minute's bar. Without a bid and an ask it gets the tier's touch, as a feed tick does.
   */
  async setPrice(ticker: string, price: bigint, touch: Partial<Touch> = {}): Promise<Quote & Touch> {
    const instrument = await this.getInstrument(ticker);
    const quote = withSides(withTouch<Quote>({ ticker, price, asOfMs: Date.now(), ...touch }, instrument.liquidityTier, this.options.touch ?? DEFAULT_TOUCH), instrument.liquidityTier);
    await this.cache.publish([quote], { feed: 'admin', feedId: 'admin' });
    const bucketMs = Math.floor(quote.asOfMs / BAR_INTERVAL_MS) * BAR_INTERVAL_MS;
    await this.saveBars([{ ticker, bucketMs, open: price, high: price, low: price, close: price, tickCount: 1 }]);
    return quote;
  }

  /** Writes bars, merging with stored ones (see bars.ts), at most BAR_UPSERT_ROWS_MAX per statement. */
  async saveBars(bars: readonly Bar[]): Promise<void> {
    for (let start = 0; start < bars.length; start += BAR_UPSERT_ROWS_MAX) {
      const rows = bars.slice(start, start + BAR_UPSERT_ROWS_MAX).map((b) => {
        assert(b.bucketMs % BAR_INTERVAL_MS === 0, 'a bar starts on a minute');
        return {
          ticker: b.ticker,
          bucket: new Date(b.bucketMs),
          open: priceToSql(b.open),
          high: priceToSql(b.high),
          low: priceToSql(b.low),
          close: priceToSql(b.close),
          tick_count: b.tickCount,
        };
      });
      await repo.upsertBars(this.db, rows);
    }
  }

  /** The close of each instrument's latest stored bar (where a restarted feed resumes from). */
  async lastCloses(): Promise<Map<string, bigint>> {
    const rows = await repo.getLastCloses(this.db);
    return new Map(rows.map((r) => [r.ticker, priceFromDb(r.close)]));
  }

  private instrumentSet(): Promise<InstrumentSet> | InstrumentSet {
    const set = this.instruments;
    if (set === undefined) return this.loadInstruments();
    if (Date.now() - set.loadedAtMs > this.refreshMs && this.loading === undefined) {
      // Stale-while-revalidate: callers keep the current list while it reloads; a failed
      // reload keeps it too (and is retried by a later call).
      this.loadInstruments().catch((err: unknown) => this.options.logger?.warn({ err }, 'instrument reload failed'));
    }
    return set;
  }

  private loadInstruments(): Promise<InstrumentSet> {
    if (this.loading !== undefined) return this.loading;
    // Concurrent callers share one query; the slot frees once it settles, whatever the outcome.
    const loading = this.fetchInstruments().finally(() => {
      if (this.loading === loading) this.loading = undefined;
    });
    this.loading = loading;
    return loading;
  }

  private async fetchInstruments(): Promise<InstrumentSet> {
    const rows = await repo.listInstruments(this.db, INSTRUMENTS_MAX + 1);
    if (rows.length > INSTRUMENTS_MAX) {
      throw new Error(`more than ${INSTRUMENTS_MAX} instruments are listed; raise INSTRUMENTS_MAX and TICK_BATCH_SIZE_MAX together`);
    }
    const list = rows.map(toInstrument);
    const set: InstrumentSet = { list, byTicker: new Map(list.map((i) => [i.ticker, i])), loadedAtMs: Date.now() };
    this.instruments = set;
    return set;
  }
}
