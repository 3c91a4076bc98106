/**
 * Alpaca's Market Data API v2 for stocks (`/v2/stocks/...`), served on papertrade's own host:
 * latest trades, quotes and bars, historical bars and snapshots, one symbol or many. Every
 * answer comes from the native market data: the last price in the quote store (`ctx.quotes`)
 * and the 1-minute bars of `price_bars`.
 *
 * What papertrade does not have is said where it shows:
 * - one price per ticker, no order book: a quote's bid and ask are both the last price, with
 *   sizes of one round lot (issue 18 adds spreads);
 * - no volumes: a bar's `v` is 0, its `n` counts the price updates it merged, and `vw` (there
 *   being no volume to weigh by) is the bar's average price (o + h + l + c) / 4, exact;
 * - one feed, no corporate actions, USD only: `feed`, `adjustment` and `asof` are accepted and
 *   change nothing; `currency` must be USD.
 *
 * Prices are JSON numbers written digit for digit from the exact decimals (`num`, `jsonText`),
 * timestamps RFC 3339 in UTC, as Alpaca's data API writes them. Multi-symbol routes leave out
 * the symbols they have nothing for (not listed, or no price or bar yet), as Alpaca does.
 */
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../app.js';
import { addDays, calendarTimeZone, localDateAt, zonedTimeToEpochMs } from '../core/calendar.js';
import { PRICE_SCALE, QTY_SCALE } from '../core/money.js';
import type { Touch } from '../core/liquidity.js';
import type { Server } from '../http/server.js';
import { BAR_INTERVAL_MS, type Bar } from '../services/market-data/bars.js';
import { normalizeTicker, TICKER_INPUT_LENGTH_MAX } from '../services/market-data/instruments.js';
import { PriceUnavailableError } from '../services/market-data/market-data.errors.js';
import { BAR_RANGE_ROWS_MAX } from '../services/market-data/market-data.service.js';
import type { Quote } from '../services/market-data/quote-store.js';
import { AlpacaError } from './alpaca.errors.js';
import { instantParam, INSTANT_MS_MIN } from './alpaca.params.js';
import { jsonText, num } from './alpaca.views.js';

const TAGS = ['alpaca'];
/** Any user's key (the admin token passes too): market data belongs to no account. */
const ANY_USER = { auth: 'user' as const };

/** Symbols one multi-symbol request takes at most. */
export const ALPACA_DATA_SYMBOLS_MAX = 100;
/** Bars one page holds by default and at most, across all its symbols (Alpaca's limits). */
export const ALPACA_BARS_LIMIT_DEFAULT = 1_000;
export const ALPACA_BARS_LIMIT_MAX = BAR_RANGE_ROWS_MAX;
/**
 * 1-minute bars one bars request reads at most. A page that reaches it ends early with a
 * next_page_token, as Alpaca's pages may; it exceeds the bars of any one frame (a day has at
 * most 1,500 minutes), so every page makes progress.
 */
export const ALPACA_BARS_SCAN_ROWS_MAX = 50_000;
/** 1-minute bars read per query while aggregating. */
const FOLD_CHUNK_ROWS = 5_000;
/** Snapshots computed at once for a multi-symbol request (each costs a few small queries). */
const SNAPSHOT_CONCURRENCY = 4;
/** The size of a trade and of each side of a quote: papertrade's prices have none, one round lot is shown. */
const ROUND_LOT = 100;
/** IEX's exchange code, and tape C (Nasdaq-listed, as the assets show): fixed, papertrade has one venue. */
const EXCHANGE = 'V';
const TAPE = 'C';

const SymbolParams = Type.Object(
  { symbol: Type.String({ minLength: 1, maxLength: TICKER_INPUT_LENGTH_MAX, description: 'a symbol such as AAPL (any case)' }) },
  { additionalProperties: false },
);
const Symbols = Type.String({ maxLength: 4_000, description: `comma-separated symbols such as AAPL,MSFT (at most ${ALPACA_DATA_SYMBOLS_MAX})` });
const Feed = Type.String({ enum: ['iex', 'sip', 'otc', 'boats', 'delayed_sip', 'overnight'], description: "accepted and ignored: papertrade's prices have one source" });
const Currency = Type.String({ maxLength: 10, description: 'USD (the only currency papertrade prices in)' });
const Time = Type.String({ maxLength: 40, description: 'an RFC 3339 timestamp such as 2026-12-01T14:30:00Z, or a date such as 2026-12-01 (its start in the market time zone)' });

const LatestFields = { feed: Type.Optional(Feed), currency: Type.Optional(Currency) };
const LatestQuery = Type.Object(LatestFields, { additionalProperties: false });
const LatestMultiQuery = Type.Object({ symbols: Type.Optional(Symbols), ...LatestFields }, { additionalProperties: false });

const BarsFields = {
  timeframe: Type.Optional(Type.String({ maxLength: 16, description: 'a timeframe such as 1Min, 5Min, 15Min, 1Hour or 1Day (the route summary lists every one)' })),
  start: Type.Optional(Time),
  end: Type.Optional(Time),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$', description: `bars per page, across all symbols: 1 to ${ALPACA_BARS_LIMIT_MAX} (default ${ALPACA_BARS_LIMIT_DEFAULT})` })),
  page_token: Type.Optional(Type.String({ maxLength: 200, description: 'the next_page_token of the previous page (with the same other parameters)' })),
  sort: Type.Optional(Type.String({ enum: ['asc', 'desc'] })),
  feed: Type.Optional(Feed),
  adjustment: Type.Optional(
    Type.String({
      maxLength: 60,
      pattern: '^(raw|split|dividend|spin-off|all)(,(raw|split|dividend|spin-off|all))*$',
      description: 'accepted: papertrade has no corporate actions, so prices are the same under every adjustment',
    }),
  ),
  asof: Type.Optional(Type.String({ maxLength: 10, pattern: '^(\\d{4}-\\d{2}-\\d{2}|-)$', description: 'accepted: papertrade has no symbol changes' })),
  currency: Type.Optional(Currency),
};
const BarsQuery = Type.Object(BarsFields, { additionalProperties: false });
const BarsMultiQuery = Type.Object({ symbols: Type.Optional(Symbols), ...BarsFields }, { additionalProperties: false });

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/** RFC 3339 in UTC, without a fraction when the instant is a whole second (as Alpaca's bars). */
function utc(ms: number): string {
  const text = new Date(ms).toISOString();
  return text.endsWith('.000Z') ? `${text.slice(0, -5)}Z` : text;
}

const price = (p: bigint) => num(p, PRICE_SCALE);

/**
 * The last price as Alpaca's latest trade. Its id is the instant of the price in ms: unique
 * per ticker among the prices the store has held, as a trade id is.
 */
function tradeJson(q: Quote) {
  return { t: utc(q.asOfMs), x: EXCHANGE, p: price(q.price), s: ROUND_LOT, c: [' '], i: q.asOfMs, z: TAPE };
}

/** Whole shares as a JSON number (a displayed size is whole shares, far below 2^53). */
const shares = (q: bigint) => Number(q / 10n ** BigInt(QTY_SCALE));

/** The quote as Alpaca's latest quote: the touch the feed published, sizes in shares. */
function quoteJson(q: Quote & Touch) {
  return { t: utc(q.asOfMs), ax: EXCHANGE, ap: price(q.ask), as: shares(q.askSize), bx: EXCHANGE, bp: price(q.bid), bs: shares(q.bidSize), c: ['R'], z: TAPE };
}

/** A bar (1-minute or aggregated; `bucketMs` its start) in Alpaca's shape; see the file's header for v, n and vw. */
function barJson(b: Bar) {
  return {
    t: utc(b.bucketMs),
    o: price(b.open),
    h: price(b.high),
    l: price(b.low),
    c: price(b.close),
    v: 0,
    n: b.tickCount,
    // (o + h + l + c) / 4 at the price scale is (o + h + l + c) * 25 at two more decimals: exact.
    vw: num((b.open + b.high + b.low + b.close) * 25n, PRICE_SCALE + 2),
  };
}

/** A symbol-keyed map in symbol order (Alpaca's order), whatever order the values came in. */
function bySymbol<T>(entries: Iterable<[string, T]>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function sendJson(reply: FastifyReply, value: unknown): FastifyReply {
  return reply.type('application/json').send(jsonText(value));
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

const tickerOf = (raw: string) => normalizeTicker(raw) ?? raw;

/** The symbols of a multi-symbol request, in listed form, without repeats. */
function symbolsOf(raw: string | undefined): string[] {
  const list = [
    ...new Set(
      (raw ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
        .map(tickerOf),
    ),
  ];
  if (list.length === 0) throw new AlpacaError('VALIDATION_FAILED', 'symbols is required: one or more comma-separated symbols such as AAPL,MSFT', { field: 'symbols' });
  if (list.length > ALPACA_DATA_SYMBOLS_MAX) {
    throw new AlpacaError('VALIDATION_FAILED', `symbols takes at most ${ALPACA_DATA_SYMBOLS_MAX} symbols per request (got ${list.length}): ask in parts`, { field: 'symbols' });
  }
  return list;
}

function requireUsd(currency: string | undefined): void {
  if (currency !== undefined && currency.toUpperCase() !== 'USD') {
    throw new AlpacaError('VALIDATION_FAILED', `currency ${JSON.stringify(currency)} is not available: papertrade's prices are in USD only`, { field: 'currency' });
  }
}

/** A bar timeframe: where each bar starts (`startOf` an instant) and where it ends. */
interface Frame {
  startOf(ms: number): number;
  endOf(startMs: number): number;
}

function fixedFrame(lengthMs: number): Frame {
  return { startOf: (ms) => Math.floor(ms / lengthMs) * lengthMs, endOf: (startMs) => startMs + lengthMs };
}

/** The market's days: from one local midnight of the zone to the next (23 or 25 hours on a DST change). */
function dayFrame(zone: string): Frame {
  return {
    startOf: (ms) => zonedTimeToEpochMs(localDateAt(ms, zone), '00:00', zone),
    endOf: (startMs) => zonedTimeToEpochMs(addDays(localDateAt(startMs, zone), 1), '00:00', zone),
  };
}

/**
 * The timeframes papertrade builds from its 1-minute bars: those that divide an hour or a day
 * evenly, so each bar starts at an unambiguous multiple (minutes and hours counted from UTC
 * midnight, as Alpaca's intraday bars are; days from the market's midnight, as its daily bars).
 * Aggregating is exact: first open, highest high, lowest low, last close.
 */
const MINUTE_FRAMES = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30];
const HOUR_FRAMES = [1, 2, 3, 4, 6, 8, 12];
const TIMEFRAME_RE = /^([1-9]\d?)(Min|T|Hour|H|Day|D|Week|W|Month|M)$/;
const TIMEFRAMES_TEXT = `${MINUTE_FRAMES.map((m) => `${m}Min`).join(', ')} (also written with T, as 5T), ${HOUR_FRAMES.map((h) => `${h}Hour`).join(', ')} (also written with H, as 4H) and 1Day (or 1D)`;

function frameOf(raw: string | undefined, zone: string): Frame {
  if (raw === undefined) throw new AlpacaError('VALIDATION_FAILED', `timeframe is required: one of ${TIMEFRAMES_TEXT}`, { field: 'timeframe' });
  const m = TIMEFRAME_RE.exec(raw);
  if (m) {
    const amount = Number(m[1]);
    const unit = m[2];
    if ((unit === 'Min' || unit === 'T') && MINUTE_FRAMES.includes(amount)) return fixedFrame(amount * BAR_INTERVAL_MS);
    if ((unit === 'Hour' || unit === 'H') && HOUR_FRAMES.includes(amount)) return fixedFrame(amount * 60 * BAR_INTERVAL_MS);
    if ((unit === 'Day' || unit === 'D') && amount === 1) return dayFrame(zone);
  }
  throw new AlpacaError(
    'VALIDATION_FAILED',
    `timeframe ${JSON.stringify(raw)} is not available: papertrade keeps 1-minute bars and builds ${TIMEFRAMES_TEXT} from them (no week or month bars)`,
    { field: 'timeframe' },
  );
}

function limitOf(raw: string | undefined): number {
  if (raw === undefined) return ALPACA_BARS_LIMIT_DEFAULT;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > ALPACA_BARS_LIMIT_MAX) {
    throw new AlpacaError('VALIDATION_FAILED', `limit must be a whole number from 1 to ${ALPACA_BARS_LIMIT_MAX}`, { field: 'limit' });
  }
  return limit;
}

/**
 * What a bars request covers: the bars whose start lies in [start, end] (Alpaca's inclusive
 * bounds), as the 1-minute rows they are made of, [rowFromMs, rowUntilMs).
 */
interface BarsRange {
  frame: Frame;
  rowFromMs: number;
  rowUntilMs: number;
  descending: boolean;
  limit: number;
}

/** Where a bars page resumes: the symbol, and the row position (asc: rows from it on; desc: rows before it). */
interface PageToken {
  symbol: string;
  position: number;
}

const TOKEN_TEXT_RE = /^([A-Z][A-Z0-9.]{0,9})\|(\d{1,16})$/;

function encodeToken(t: PageToken): string {
  return Buffer.from(`${t.symbol}|${t.position}`, 'utf8').toString('base64url');
}

function decodeToken(raw: string, symbols: readonly string[], range: BarsRange): PageToken {
  const m = /^[A-Za-z0-9_-]{1,200}$/.test(raw) ? TOKEN_TEXT_RE.exec(Buffer.from(raw, 'base64url').toString('utf8')) : null;
  const position = m ? Number(m[2]) : Number.NaN;
  if (!m || !symbols.includes(m[1]!) || !(position >= range.rowFromMs && position <= range.rowUntilMs)) {
    throw new AlpacaError('VALIDATION_FAILED', 'page_token is not one this request returned: pass the next_page_token of the previous page with the same symbols, timeframe, start, end and sort', { field: 'page_token' });
  }
  return { symbol: m[1]!, position };
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

export function registerAlpacaMarketDataRoutes(server: Server, ctx: AppContext): void {
  const market = ctx.market;
  // The zone of the market's days (daily bars, dates given as start or end).
  const zone = calendarTimeZone(ctx.config.marketCalendar, ctx.config.marketTimeZone);
  const days = dayFrame(zone);

  /** The symbols of the list that are listed instruments (no I/O once the list is loaded). */
  async function listed(symbols: readonly string[]): Promise<string[]> {
    const known = await Promise.all(symbols.map((s) => market.isKnownTicker(s)));
    return symbols.filter((_, i) => known[i]);
  }

  /**
   * The last price of a listed ticker, however old: Alpaca's latest trade is the last one there
   * was, and its `t` tells when. UNKNOWN_TICKER (404) or PRICE_UNAVAILABLE (503, no price yet).
   */
  async function lastQuote(ticker: string): Promise<Quote & Touch> {
    await market.requireTicker(ticker);
    const quote = await ctx.quotes.get(ticker);
    if (quote === undefined) throw new PriceUnavailableError(ticker, 'no_price');
    return market.sided(quote);
  }

  async function lastQuotes(symbols: readonly string[]): Promise<Map<string, Quote & Touch>> {
    const out = new Map<string, Quote & Touch>();
    for (const [t, q] of await ctx.quotes.getMany(await listed(symbols))) out.set(t, await market.sided(q));
    return out;
  }

  // --- Latest trades and quotes --------------------------------------------------------------

  server.get(
    '/stocks/:symbol/trades/latest',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'The latest trade of a symbol: its last price', params: SymbolParams, querystring: LatestQuery } },
    async (request, reply) => {
      requireUsd(request.query.currency);
      const ticker = tickerOf(request.params.symbol);
      return sendJson(reply, { symbol: ticker, trade: tradeJson(await lastQuote(ticker)) });
    },
  );

  server.get(
    '/stocks/trades/latest',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'The latest trade of each symbol (those with a price)', querystring: LatestMultiQuery } },
    async (request, reply) => {
      requireUsd(request.query.currency);
      const quotes = await lastQuotes(symbolsOf(request.query.symbols));
      return sendJson(reply, { trades: bySymbol([...quotes].map(([t, q]) => [t, tradeJson(q)])) });
    },
  );

  server.get(
    '/stocks/:symbol/quotes/latest',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'The latest quote of a symbol: bid = ask = its last price', params: SymbolParams, querystring: LatestQuery } },
    async (request, reply) => {
      requireUsd(request.query.currency);
      const ticker = tickerOf(request.params.symbol);
      return sendJson(reply, { symbol: ticker, quote: quoteJson(await lastQuote(ticker)) });
    },
  );

  server.get(
    '/stocks/quotes/latest',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'The latest quote of each symbol (those with a price)', querystring: LatestMultiQuery } },
    async (request, reply) => {
      requireUsd(request.query.currency);
      const quotes = await lastQuotes(symbolsOf(request.query.symbols));
      return sendJson(reply, { quotes: bySymbol([...quotes].map(([t, q]) => [t, quoteJson(q)])) });
    },
  );

  // --- Latest bars ---------------------------------------------------------------------------

  server.get(
    '/stocks/:symbol/bars/latest',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'The latest 1-minute bar of a symbol', params: SymbolParams, querystring: LatestQuery } },
    async (request, reply) => {
      requireUsd(request.query.currency);
      const ticker = tickerOf(request.params.symbol);
      await market.requireTicker(ticker);
      const bar = (await market.latestBars([ticker])).get(ticker);
      if (bar === undefined) throw new AlpacaError('NOT_FOUND', `no bar for ${ticker} yet: it has had no price`, { symbol: ticker });
      return sendJson(reply, { symbol: ticker, bar: barJson(bar) });
    },
  );

  server.get(
    '/stocks/bars/latest',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'The latest 1-minute bar of each symbol (those with one)', querystring: LatestMultiQuery } },
    async (request, reply) => {
      requireUsd(request.query.currency);
      const bars = await market.latestBars(await listed(symbolsOf(request.query.symbols)));
      return sendJson(reply, { bars: bySymbol([...bars].map(([t, b]) => [t, barJson(b)])) });
    },
  );

  // --- Historical bars -----------------------------------------------------------------------

  function rangeOf(q: { timeframe?: string; start?: string; end?: string; limit?: string; sort?: string; currency?: string }): BarsRange {
    requireUsd(q.currency);
    const frame = frameOf(q.timeframe, zone);
    const nowMs = Date.now();
    // Alpaca's defaults: from the beginning of the current (market) day until now.
    const startMs = q.start === undefined ? days.startOf(nowMs) : instantParam(q.start, 'start', zone);
    const endMs = q.end === undefined ? nowMs : instantParam(q.end, 'end', zone);
    if (endMs < startMs) throw new AlpacaError('VALIDATION_FAILED', `end (${utc(endMs)}) must not be before start (${utc(startMs)})`, { field: 'end' });
    const first = frame.startOf(startMs);
    return {
      frame,
      rowFromMs: first === startMs ? startMs : frame.endOf(first),
      rowUntilMs: frame.endOf(frame.startOf(endMs)),
      descending: q.sort === 'desc',
      limit: limitOf(q.limit),
    };
  }

  /**
   * Up to `limit` bars of one ticker from a row position on, aggregated from its 1-minute bars
   * read in chunks, reading at most `budget` rows. `next` is where the ticker's next bar starts
   * (in the page token's terms) when there is more to read; `scanned` what was read.
   */
  async function foldBars(ticker: string, range: BarsRange, position: number, limit: number, budget: number): Promise<{ bars: Bar[]; next: number | undefined; scanned: number }> {
    const { frame, descending } = range;
    const bars: Bar[] = [];
    let current: Bar | undefined;
    let currentEnd = 0;
    let cursor = position;
    let scanned = 0;
    // Resuming at a bar re-reads it whole: ascending from its start, descending from its end.
    const resumeAt = (startMs: number, endMs: number) => (descending ? endMs : startMs);
    for (;;) {
      const want = Math.min(FOLD_CHUNK_ROWS, budget - scanned);
      if (want <= 0) return { bars, next: current === undefined ? cursor : resumeAt(current.bucketMs, currentEnd), scanned };
      const rows = descending
        ? await market.listBarRange(ticker, range.rowFromMs, cursor, { descending: true, limit: want })
        : await market.listBarRange(ticker, cursor, range.rowUntilMs, { descending: false, limit: want });
      scanned += rows.length;
      for (const row of rows) {
        if (current !== undefined && row.bucketMs >= current.bucketMs && row.bucketMs < currentEnd) {
          if (row.high > current.high) current.high = row.high;
          if (row.low < current.low) current.low = row.low;
          if (descending) current.open = row.open;
          else current.close = row.close;
          current.tickCount += row.tickCount;
          continue;
        }
        const startMs = frame.startOf(row.bucketMs);
        const endMs = frame.endOf(startMs);
        if (current !== undefined) {
          bars.push(current);
          if (bars.length === limit) return { bars, next: resumeAt(startMs, endMs), scanned };
        }
        current = { ...row, bucketMs: startMs };
        currentEnd = endMs;
      }
      if (rows.length < want) {
        if (current !== undefined) bars.push(current);
        return { bars, next: undefined, scanned };
      }
      const last = rows[rows.length - 1]!;
      cursor = descending ? last.bucketMs : last.bucketMs + BAR_INTERVAL_MS;
    }
  }

  /**
   * One page of bars for the symbols (listed ones, in symbol order, as Alpaca orders them):
   * `limit` counts bars across all symbols, and the token says where the next page starts.
   */
  async function barsPage(symbols: readonly string[], range: BarsRange, rawToken: string | undefined) {
    const ordered = [...symbols].sort();
    const initial = range.descending ? range.rowUntilMs : range.rowFromMs;
    const token = rawToken === undefined ? undefined : decodeToken(rawToken, ordered, range);
    const first = token === undefined ? 0 : ordered.indexOf(token.symbol);
    const bySymbol = new Map<string, Bar[]>();
    let remaining = range.limit;
    let budget = ALPACA_BARS_SCAN_ROWS_MAX;
    let next: PageToken | undefined;
    for (let i = first; i < ordered.length; i++) {
      const symbol = ordered[i]!;
      const position = i === first && token !== undefined ? token.position : initial;
      if (remaining === 0) {
        next = { symbol, position };
        break;
      }
      const folded = await foldBars(symbol, range, position, remaining, budget);
      budget -= folded.scanned;
      remaining -= folded.bars.length;
      if (folded.bars.length > 0) bySymbol.set(symbol, folded.bars);
      if (folded.next !== undefined) {
        next = { symbol, position: folded.next };
        break;
      }
    }
    return { bySymbol, nextPageToken: next === undefined ? null : encodeToken(next) };
  }

  const barsSummary = `Bars of ${TIMEFRAMES_TEXT}, built from papertrade's 1-minute bars; start defaults to the market day's beginning, end to now`;

  server.get(
    '/stocks/:symbol/bars',
    { config: ANY_USER, schema: { tags: TAGS, summary: `${barsSummary} (one symbol)`, params: SymbolParams, querystring: BarsQuery } },
    async (request, reply) => {
      const ticker = tickerOf(request.params.symbol);
      const range = rangeOf(request.query);
      await market.requireTicker(ticker);
      const page = await barsPage([ticker], range, request.query.page_token);
      return sendJson(reply, { bars: (page.bySymbol.get(ticker) ?? []).map(barJson), symbol: ticker, next_page_token: page.nextPageToken });
    },
  );

  server.get(
    '/stocks/bars',
    { config: ANY_USER, schema: { tags: TAGS, summary: `${barsSummary} (many symbols; limit counts across them)`, querystring: BarsMultiQuery } },
    async (request, reply) => {
      const symbols = symbolsOf(request.query.symbols);
      const range = rangeOf(request.query);
      const page = await barsPage(await listed(symbols), range, request.query.page_token);
      return sendJson(reply, {
        bars: bySymbol([...page.bySymbol].map(([t, bars]) => [t, bars.map(barJson)])),
        next_page_token: page.nextPageToken,
      });
    },
  );

  // --- Snapshots -----------------------------------------------------------------------------

  /**
   * A ticker's snapshot: the last price as trade and quote, its latest 1-minute bar, the bar of
   * the market day that bar falls in, and of the latest earlier day with bars (Alpaca's daily
   * and previous daily bars). A few small queries: each day is aggregated in the database.
   */
  async function snapshotOf(ticker: string, quote: Quote & Touch, minuteBar: Bar | undefined) {
    let dailyBar: Bar | undefined;
    let prevDailyBar: Bar | undefined;
    if (minuteBar !== undefined) {
      const dayStart = days.startOf(minuteBar.bucketMs);
      dailyBar = await market.aggregateBarRange(ticker, dayStart, days.endOf(dayStart));
      const [before] = await market.listBarRange(ticker, INSTANT_MS_MIN, dayStart, { descending: true, limit: 1 });
      if (before !== undefined) {
        const prevStart = days.startOf(before.bucketMs);
        prevDailyBar = await market.aggregateBarRange(ticker, prevStart, days.endOf(prevStart));
      }
    }
    const barOrNull = (b: Bar | undefined) => (b === undefined ? null : barJson(b));
    return {
      latestTrade: tradeJson(quote),
      latestQuote: quoteJson(quote),
      minuteBar: barOrNull(minuteBar),
      dailyBar: barOrNull(dailyBar),
      prevDailyBar: barOrNull(prevDailyBar),
    };
  }

  server.get(
    '/stocks/:symbol/snapshot',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'The snapshot of a symbol: latest trade and quote, minute bar, daily and previous daily bars', params: SymbolParams, querystring: LatestQuery } },
    async (request, reply) => {
      requireUsd(request.query.currency);
      const ticker = tickerOf(request.params.symbol);
      const quote = await lastQuote(ticker);
      const minuteBar = (await market.latestBars([ticker])).get(ticker);
      return sendJson(reply, { symbol: ticker, ...(await snapshotOf(ticker, quote, minuteBar)) });
    },
  );

  server.get(
    '/stocks/snapshots',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'The snapshot of each symbol (those with a price), keyed by symbol', querystring: LatestMultiQuery } },
    async (request, reply) => {
      requireUsd(request.query.currency);
      const quotes = await lastQuotes(symbolsOf(request.query.symbols));
      const tickers = [...quotes.keys()];
      const minuteBars = await market.latestBars(tickers);
      const snapshots: [string, unknown][] = [];
      for (let i = 0; i < tickers.length; i += SNAPSHOT_CONCURRENCY) {
        const batch = tickers.slice(i, i + SNAPSHOT_CONCURRENCY);
        const done = await Promise.all(batch.map((t) => snapshotOf(t, quotes.get(t)!, minuteBars.get(t))));
        batch.forEach((t, j) => snapshots.push([t, done[j]]));
      }
      // Alpaca's multi-symbol snapshot is the map itself, symbol to snapshot.
      return sendJson(reply, bySymbol(snapshots));
    },
  );
}
