import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { formatPrice, parsePrice } from '../src/core/money.js';
import { createContext } from '../src/app.js';
import { MarketDataService } from '../src/services/market-data/market-data.service.js';
import { PRICE_CLOCK_SKEW_MS_MAX } from '../src/core/market.js';
import { normalizeTicker } from '../src/services/market-data/instruments.js';
import { PriceUnavailableError, UnknownTickerError } from '../src/services/market-data/market-data.errors.js';
import { decodeTickMessage } from '../src/services/market-data/quote-store.redis.js';
import type { Quote, QuoteStore, TickBatch } from '../src/services/market-data/quote-store.js';
import { createTestContext, eventually, redisOnly, type TestContext } from './harness.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ PRICE_AGE_MS_MAX: '5000' });
});
afterAll(async () => {
  await ctx.close();
});

const price = (s: string) => parsePrice(s);
const T0 = Date.UTC(2024, 0, 2, 14, 30);

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('instruments', () => {
  it('are seeded with 40 large caps and three smaller ones, each with a positive reference price, volatility and a liquidity tier', async () => {
    const instruments = await ctx.market.listInstruments();
    expect(instruments).toHaveLength(43);
    expect(instruments.filter((i) => i.liquidityTier === 'large')).toHaveLength(40);
    expect(Object.fromEntries(instruments.filter((i) => i.liquidityTier !== 'large').map((i) => [i.ticker, i.liquidityTier]))).toEqual({ CROX: 'mid', ETSY: 'mid', SFIX: 'small' });
    const tickers = instruments.map((i) => i.ticker);
    for (const t of ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'JPM']) expect(tickers).toContain(t);
    expect(tickers).toEqual([...tickers].sort());
    for (const i of instruments) {
      expect(i.referencePrice).toBeGreaterThan(0n);
      expect(i.annualVolatility).toBeGreaterThan(0);
      expect(i.annualVolatility).toBeLessThan(1);
    }
    expect((await ctx.market.getInstrument('AAPL')).name).toBe('Apple Inc.');
  });

  it('know which tickers are listed: exact, case-sensitive', async () => {
    expect(await ctx.market.isKnownTicker('AAPL')).toBe(true);
    expect(await ctx.market.isKnownTicker('BRK.B')).toBe(true);
    expect(await ctx.market.isKnownTicker('aapl')).toBe(false);
    expect(await ctx.market.isKnownTicker('NOPE')).toBe(false);
    await expect(ctx.market.requireTicker('AAPL')).resolves.toBeUndefined();
    await expect(ctx.market.requireTicker('NOPE')).rejects.toBeInstanceOf(UnknownTickerError);
    expect(normalizeTicker(' aapl ')).toBe('AAPL');
    expect(normalizeTicker('brk.b')).toBe('BRK.B');
    expect(normalizeTicker('1ABC')).toBeUndefined();
    expect(normalizeTicker('TOOLONGTICKER')).toBeUndefined();
  });
});

describe('getPrice', () => {
  it('returns a fresh cached quote with its touch', async () => {
    const now = Date.now();
    const touch = { bid: price('231.4900'), ask: price('231.5100'), bidSize: 700_000_000n, askSize: 900_000_000n };
    await ctx.quotes.setMany([{ ticker: 'AAPL', price: price('231.5000'), asOfMs: now, ...touch }]);
    expect(await ctx.market.getPrice('AAPL')).toEqual({ ticker: 'AAPL', price: price('231.5000'), asOfMs: now, ...touch });
  });

  it('reads a quote stored without a touch as bid = ask = last with the tier\'s least displayed size', async () => {
    const now = Date.now();
    await ctx.quotes.setMany([{ ticker: 'AAPL', price: price('231.5000'), asOfMs: now }]);
    expect(await ctx.market.getPrice('AAPL')).toEqual({ ticker: 'AAPL', price: price('231.5000'), asOfMs: now, bid: price('231.5000'), ask: price('231.5000'), bidSize: 5_000_000_000n, askSize: 5_000_000_000n });
  });

  it('refuses a ticker that is not listed with UNKNOWN_TICKER, whatever its shape', async () => {
    for (const ticker of ['NOPE', 'aapl', '', 'NOT A TICKER!', 'X'.repeat(100)]) {
      const err = await errorOf(ctx.market.getPrice(ticker));
      expect(err).toBeInstanceOf(UnknownTickerError);
      expect((err as UnknownTickerError).code).toBe('UNKNOWN_TICKER');
      expect((err as UnknownTickerError).service).toBe('market-data');
    }
  });

  it('refuses with PRICE_UNAVAILABLE when there is no price, a stale one or one from the future', async () => {
    const none = await errorOf(ctx.market.getPrice('MSFT'));
    expect(none).toBeInstanceOf(PriceUnavailableError);
    expect((none as PriceUnavailableError).details).toMatchObject({ ticker: 'MSFT', reason: 'no_price' });

    await ctx.quotes.setMany([{ ticker: 'MSFT', price: price('400.0000'), asOfMs: Date.now() - 5_001 }]);
    const stale = await errorOf(ctx.market.getPrice('MSFT'));
    expect((stale as PriceUnavailableError).code).toBe('PRICE_UNAVAILABLE');
    expect((stale as PriceUnavailableError).details).toMatchObject({ reason: 'stale' });

    await ctx.quotes.setMany([{ ticker: 'MSFT', price: price('400.0000'), asOfMs: Date.now() + PRICE_CLOCK_SKEW_MS_MAX + 10_000 }]);
    const future = await errorOf(ctx.market.getPrice('MSFT'));
    expect((future as PriceUnavailableError).details).toMatchObject({ reason: 'future' });

    await ctx.quotes.setMany([{ ticker: 'MSFT', price: price('400.0000'), asOfMs: Date.now() - 4_000 }]);
    expect((await ctx.market.getPrice('MSFT')).price).toBe(price('400.0000'));
  });

  it('costs exactly one read of the quote store and no database query once instruments are loaded', async () => {
    // A service of its own, whose database handle is closed after the first load (any query per
    // call would fail), over a quote store that counts what it is asked.
    const other = createContext(ctx.config, 'test-hot-path', ctx.logger, ctx.infra);
    const calls: string[] = [];
    const counting: QuoteStore = new Proxy(ctx.quotes, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(prop));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const market = new MarketDataService(other.db, counting, { priceAgeMsMax: 5_000 });
    await market.listInstruments();
    await other.db.destroy();
    await ctx.quotes.setMany([{ ticker: 'NVDA', price: price('135.0000'), asOfMs: Date.now() }]);
    expect((await market.getPrice('NVDA')).price).toBe(price('135.0000'));
    expect(calls).toEqual(['get']);
    calls.length = 0;
    await expect(market.getPrice('NOPE')).rejects.toBeInstanceOf(UnknownTickerError);
    expect(calls).toEqual([]);
  });
});

describe('getPrices', () => {
  it('lists the cached quotes of listed instruments in ticker order, with their age', async () => {
    const fresh = await createTestContext();
    try {
      const now = Date.now();
      await fresh.quotes.setMany([
        { ticker: 'TSLA', price: price('250.1000'), asOfMs: now },
        { ticker: 'AAPL', price: price('230.0000'), asOfMs: now - 60_000 },
        { ticker: 'ZZZZ', price: price('1.0000'), asOfMs: now }, // not listed: never shown
      ]);
      const quotes = await fresh.market.getPrices();
      expect(quotes.map((q) => [q.ticker, formatPrice(q.price), q.asOfMs])).toEqual([
        ['AAPL', '230.0000', now - 60_000],
        ['TSLA', '250.1000', now],
      ]);
    } finally {
      await fresh.close();
    }
  });
});

describe('price bars', () => {
  const bar = (ticker: string, minute: number, o: string, h: string, l: string, c: string, ticks: number) => ({
    ticker,
    bucketMs: T0 + minute * 60_000,
    open: price(o),
    high: price(h),
    low: price(l),
    close: price(c),
    tickCount: ticks,
  });
  const show = (b: { bucketMs: number; open: bigint; high: bigint; low: bigint; close: bigint; tickCount: number }) =>
    [new Date(b.bucketMs).toISOString().slice(11, 16), ...[b.open, b.high, b.low, b.close].map(formatPrice), b.tickCount].join(' ');

  it('merge on upsert: open kept, high and low widened, close replaced, tick counts added', async () => {
    await ctx.market.saveBars([bar('META', 0, '100', '105', '99', '101', 10)]);
    await ctx.market.saveBars([bar('META', 0, '102', '103', '95', '97', 4), bar('META', 1, '97', '98', '96', '98', 2)]);
    const bars = await ctx.market.listBars('META', '1m', 10);
    expect(bars.map(show)).toEqual(['14:31 97.0000 98.0000 96.0000 98.0000 2', '14:30 100.0000 105.0000 95.0000 97.0000 14']);
  });

  it('lists the latest bars newest first, up to the limit, and refuses an unknown ticker', async () => {
    await ctx.market.saveBars(Array.from({ length: 5 }, (_, m) => bar('ORCL', m, '170', '171', '169', `170.${m}`, 1)));
    expect((await ctx.market.listBars('ORCL', '1m', 3)).map((b) => formatPrice(b.close))).toEqual(['170.4000', '170.3000', '170.2000']);
    expect(await ctx.market.listBars('KO')).toEqual([]);
    await expect(ctx.market.listBars('NOPE')).rejects.toBeInstanceOf(UnknownTickerError);
  });

  it('keep stored bars consistent: the table refuses a bar whose low is above its close', async () => {
    await expect(
      sql`INSERT INTO price_bars (ticker, bucket, open, high, low, close) VALUES ('KO', ${new Date(T0)}, 10, 12, 11, 10.5)`.execute(ctx.db),
    ).rejects.toThrow(/price_bars_ohlc_consistent/);
  });

  it('give the close of each instrument’s latest bar', async () => {
    await ctx.market.saveBars([bar('PEP', 3, '165', '166', '165', '165.5', 1), bar('PEP', 1, '160', '160', '160', '160', 1)]);
    const closes = await ctx.market.lastCloses();
    expect(closes.get('PEP')).toBe(price('165.5000'));
    expect(closes.has('KO')).toBe(false);
  });
});

describe('tick publication', () => {
  const amzn = (asOfMs: number): Quote[] => [
    { ticker: 'AMZN', price: price('200.1234'), asOfMs },
    { ticker: 'GOOGL', price: price('175.0001'), asOfMs },
  ];

  it('stores the batch and announces it to subscribers', async () => {
    const batches: TickBatch[] = [];
    const unsubscribe = await ctx.quotes.subscribe((b) => batches.push(b));
    try {
      const asOfMs = Date.now();
      await ctx.quotes.publish(amzn(asOfMs), { feed: 'simulator', feedId: 'test-feed' });
      const [batch] = await eventually(async () => (batches.length > 0 ? batches : undefined));
      expect(batch!.source).toEqual({ feed: 'simulator', feedId: 'test-feed' });
      expect(batch!.quotes.map((q) => [q.ticker, formatPrice(q.price), q.asOfMs])).toEqual([
        ['AMZN', '200.1234', asOfMs],
        ['GOOGL', '175.0001', asOfMs],
      ]);
      expect((await ctx.quotes.get('AMZN'))?.price).toBe(price('200.1234'));
    } finally {
      await unsubscribe();
    }
  });

  it('writes the Redis hash and publishes the batch as JSON on the ticks channel in one MULTI', redisOnly, async () => {
    const subscriber = ctx.redis!.duplicate();
    const messages: string[] = [];
    try {
      await subscriber.subscribe(ctx.keys.ticksChannel());
      subscriber.on('message', (_channel: string, message: string) => messages.push(message));
      const asOfMs = Date.now();
      await ctx.quotes.publish(amzn(asOfMs), { feed: 'simulator', feedId: 'test-feed' });
      const [message] = await eventually(async () => (messages.length > 0 ? messages : undefined));
      expect(decodeTickMessage(message!)?.quotes).toHaveLength(2);
      expect(JSON.parse(message!)).toEqual({
        feed: 'simulator',
        feed_id: 'test-feed',
        ticks: [
          { ticker: 'AMZN', price: '200.1234', as_of: new Date(asOfMs).toISOString() },
          { ticker: 'GOOGL', price: '175.0001', as_of: new Date(asOfMs).toISOString() },
        ],
      });
      expect(await ctx.redis!.hget(ctx.keys.prices(), 'AMZN')).toBe(`200.1234|${asOfMs}`);
    } finally {
      subscriber.disconnect();
    }
  });
});
