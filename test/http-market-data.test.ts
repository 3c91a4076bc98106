import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrice } from '../src/core/money.js';
import { createFeedRunner } from '../src/app.js';
import { simulatorFactory } from '../src/services/market-data/feeds.js';
import { createTestContext, eventually, newUser, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;
beforeAll(async () => {
  ctx = await createTestContext({ PRICE_AGE_MS_MAX: '5000', FEED_TICK_MS: '50', FEED_LEADER_TTL_MS: '600' });
  api = await startTestServer(ctx);
});
afterAll(async () => {
  await api.server.close();
  await ctx.close();
});

const T0 = Date.UTC(2024, 0, 2, 14, 30);
const PRICE = /^\d+\.\d{4}$/;

describe('market data over HTTP', () => {
  it('lists the instruments to any authenticated caller, and to nobody else', async () => {
    const user = await newUser(ctx);
    for (const token of [undefined, user.apiKey]) {
      const res = await api.request('GET', '/instruments', { token });
      expect(res.status).toBe(200);
      expect(res.body.instruments.length).toBeGreaterThanOrEqual(30);
      expect(res.body.instruments).toContainEqual({ ticker: 'AAPL', name: 'Apple Inc.', reference_price: '230.0000' });
    }
    expect((await api.request('GET', '/instruments', { token: null })).status).toBe(401);
    expect((await api.request('GET', '/prices/AAPL', { token: 'not-a-key' })).status).toBe(401);
  });

  it('answers 503 PRICE_UNAVAILABLE before the first tick and for a stale price, 200 for a fresh one', async () => {
    const none = await api.request('GET', '/prices/GOOGL');
    expect(none.status).toBe(503);
    expect(none.body.error).toMatchObject({ code: 'PRICE_UNAVAILABLE', service: 'market-data' });
    expect(none.body.error.request_id).toEqual(expect.any(String));

    await ctx.quotes.setMany([{ ticker: 'GOOGL', price: parsePrice('175.5'), asOfMs: Date.now() - 60_000 }]);
    const stale = await api.request('GET', '/prices/GOOGL');
    expect(stale.status).toBe(503);
    expect(stale.body.error.code).toBe('PRICE_UNAVAILABLE');

    const asOfMs = Date.now();
    await ctx.quotes.setMany([{ ticker: 'GOOGL', price: parsePrice('175.5'), asOfMs }]);
    const fresh = await api.request('GET', '/prices/GOOGL');
    expect(fresh.status).toBe(200);
    // Stored without a touch: bid = ask = last, the tier's least displayed size.
    expect(fresh.body).toEqual({ ticker: 'GOOGL', price: '175.5000', bid: '175.5000', ask: '175.5000', bid_size: '5000', ask_size: '5000', as_of: new Date(asOfMs).toISOString() });
  });

  it('answers 404 UNKNOWN_TICKER for any ticker that is not listed', async () => {
    for (const ticker of ['NOPE', 'nope', 'DOESNOTEXIST', 'BAD%21', '1234']) {
      for (const url of [`/prices/${ticker}`, `/prices/${ticker}/bars`]) {
        const res = await api.request('GET', url);
        expect(res.status, url).toBe(404);
        expect(res.body.error).toMatchObject({ code: 'UNKNOWN_TICKER', service: 'market-data' });
      }
    }
  });

  it('reads a ticker in any case and answers its listed form', async () => {
    await ctx.quotes.setMany([{ ticker: 'BRK.B', price: parsePrice('460.5'), asOfMs: Date.now() }]);
    for (const ticker of ['brk.b', 'Brk.B', 'BRK.B']) {
      const res = await api.request('GET', `/prices/${ticker}`);
      expect(res.status, ticker).toBe(200);
      expect(res.body).toMatchObject({ ticker: 'BRK.B', price: '460.5000' });
      expect((await api.request('GET', `/prices/${ticker}/bars`)).status).toBe(200);
    }
  });

  it('lists cached prices with 4-decimal prices and ISO timestamps', async () => {
    const asOfMs = Date.now();
    await ctx.quotes.setMany([{ ticker: 'JPM', price: parsePrice('220.01'), asOfMs }]);
    const res = await api.request('GET', '/prices');
    expect(res.status).toBe(200);
    await ctx.quotes.setMany([{ ticker: 'JPM', price: parsePrice('220.01'), asOfMs, bid: parsePrice('220'), ask: parsePrice('220.02'), bidSize: 100_000_000n, askSize: 200_000_000n }]);
    const quoted = await api.request('GET', '/prices');
    expect(quoted.body.prices).toContainEqual({ ticker: 'JPM', price: '220.0100', bid: '220.0000', ask: '220.0200', bid_size: '100', ask_size: '200', as_of: new Date(asOfMs).toISOString() });
    for (const p of res.body.prices) expect(p.price).toMatch(PRICE);
  });

  it('serves 1-minute bars newest first, bounded by limit, and validates the query', async () => {
    const bar = (m: number, close: string) => {
      const c = parsePrice(close);
      return { ticker: 'CAT', bucketMs: T0 + m * 60_000, open: c, high: c, low: c, close: c, tickCount: 1 };
    };
    await ctx.market.saveBars([bar(0, '370'), bar(1, '371.5'), bar(2, '369.25')]);
    const res = await api.request('GET', '/prices/CAT/bars?interval=1m&limit=2');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      bars: [
        { t: '2024-01-02T14:32:00.000Z', open: '369.2500', high: '369.2500', low: '369.2500', close: '369.2500' },
        { t: '2024-01-02T14:31:00.000Z', open: '371.5000', high: '371.5000', low: '371.5000', close: '371.5000' },
      ],
    });
    expect((await api.request('GET', '/prices/CAT/bars')).body.bars).toHaveLength(3);
    expect((await api.request('GET', '/prices/KO/bars')).body).toEqual({ bars: [] });
    for (const query of ['interval=5m', 'interval=', 'limit=0', 'limit=501', 'limit=ten', 'from=1']) {
      const bad = await api.request('GET', `/prices/CAT/bars?${query}`);
      expect(bad.status, query).toBe(400);
      expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('serves moving prices while the feed runs', async () => {
    const runner = createFeedRunner(ctx, simulatorFactory(ctx.config), { token: 'http-feed' });
    try {
      runner.start();
      const first = await eventually(async () => {
        const res = await api.request('GET', '/prices/AAPL');
        return res.status === 200 ? (res.body as { price: string; as_of: string }) : undefined;
      });
      expect(first.price).toMatch(PRICE);
      const later = await eventually(async () => {
        const res = await api.request('GET', '/prices/AAPL');
        return res.status === 200 && res.body.as_of > first.as_of ? res.body : undefined;
      });
      expect(later.price).toMatch(PRICE);
      const all = await api.request('GET', '/prices');
      expect(all.body.prices.length).toBeGreaterThanOrEqual(30);
    } finally {
      await runner.stop();
    }
  });

  it('documents the routes under the market-data tag', async () => {
    const doc = await api.request('GET', '/openapi.json', { token: null });
    for (const route of ['/instruments', '/prices', '/prices/{ticker}', '/prices/{ticker}/bars']) {
      expect(doc.body.paths[route]?.get?.tags, route).toEqual(['market-data']);
    }
  });
});
