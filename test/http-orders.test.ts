import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { parsePrice } from '../src/core/money.js';
import { createTestContext, eventually, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;
let engine: ReturnType<typeof createEngine> | undefined;

beforeAll(async () => {
  ctx = await createTestContext({ ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '60000' });
  api = await startTestServer(ctx);
});
afterAll(async () => {
  await engine?.stop();
  await api.server.close();
  await ctx.close();
});

async function setPrice(ticker: string, price: string, asOfMs = Date.now()) {
  await ctx.quotes.setMany([{ ticker, price: parsePrice(price), asOfMs }]);
}

let seq = 0;
async function user(cash: string) {
  const res = await api.request('POST', '/users', { body: { name: 'T', email: `t${++seq}@example.com`, initial_cash: cash } });
  return res.body as { id: string; api_key: string };
}

async function waitTerminal(id: string, token: string) {
  return eventually(async () => {
    const res = await api.request('GET', `/orders/${id}`, { token });
    return res.body.status === 'PENDING' ? undefined : res.body;
  });
}

describe('orders over HTTP', () => {
  it('buys 10 AAPL (side defaults to buy), fills, and sells, with account and portfolio to the cent', async () => {
    const u = await user('10000.00');
    await setPrice('AAPL', '150');
    const placed = await api.request('POST', '/orders', {
      token: u.api_key,
      body: { user_id: u.id, ticker: 'AAPL', quantity: 10, type: 'market' },
    });
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ status: 'PENDING', side: 'buy', quantity: '10', reserved_amount: '1575.00', fill_price: null });

    await setPrice('AAPL', '152');
    engine = createEngine(ctx);
    await engine.start();
    const filled = await waitTerminal(placed.body.id, u.api_key);
    expect(filled).toMatchObject({ status: 'FILLED', fill_price: '152.0000' });
    expect(filled.filled_at).toMatch(/^\d{4}-\d\d-\d\dT/);

    const account = await api.request('GET', `/users/${u.id}/account`, { token: u.api_key });
    expect(account.body).toMatchObject({ cash_balance: '8480.00', available_cash: '8480.00', positions_value: '1520.00', equity: '10000.00' });
    const portfolio = await api.request('GET', `/users/${u.id}/portfolio`, { token: u.api_key });
    expect(portfolio.body.positions).toEqual([
      { ticker: 'AAPL', quantity: '10', available_quantity: '10', avg_cost: '152.0000', market_price: '152.0000', market_value: '1520.00', unrealized_pl: '0.00' },
    ]);

    const sold = await api.request('POST', '/orders', {
      token: u.api_key,
      body: { user_id: u.id, ticker: 'aapl', quantity: '5', type: 'market', side: 'sell' },
    });
    expect(sold.status).toBe(201);
    expect((await waitTerminal(sold.body.id, u.api_key)).status).toBe('FILLED');
    const after = await api.request('GET', `/users/${u.id}/account`, { token: u.api_key });
    expect(after.body).toMatchObject({ cash_balance: '9240.00', available_cash: '9240.00' });
    const activities = await api.request('GET', `/users/${u.id}/activities`, { token: u.api_key });
    expect(activities.body.activities.map((a: { kind: string; amount: string }) => [a.kind, a.amount])).toEqual([
      ['sell', '760.00'],
      ['buy', '-1520.00'],
      ['initial', '10000.00'],
    ]);
  });

  it('refuses with the layered error envelope', async () => {
    const u = await user('100.00');
    await setPrice('MSFT', '400');
    const poor = await api.request('POST', '/orders', { token: u.api_key, body: { user_id: u.id, ticker: 'MSFT', quantity: 1, type: 'market' } });
    expect(poor.status).toBe(422);
    expect(poor.body.error).toMatchObject({ code: 'ORDER_REJECTED', service: 'orders', cause: { code: 'INSUFFICIENT_FUNDS', service: 'accounts' } });
    const noShares = await api.request('POST', '/orders', {
      token: u.api_key,
      body: { user_id: u.id, ticker: 'MSFT', quantity: 1, type: 'market', side: 'sell' },
    });
    expect([noShares.status, noShares.body.error.cause.code]).toEqual([422, 'INSUFFICIENT_HOLDINGS']);
    const unknown = await api.request('POST', '/orders', { token: u.api_key, body: { user_id: u.id, ticker: 'ZZZZ', quantity: 1, type: 'market' } });
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'UNKNOWN_TICKER']);
    await setPrice('NVDA', '100', Date.now() - 3_600_000);
    const stale = await api.request('POST', '/orders', { token: u.api_key, body: { user_id: u.id, ticker: 'NVDA', quantity: 1, type: 'market' } });
    expect([stale.status, stale.body.error.code]).toEqual([503, 'PRICE_UNAVAILABLE']);
    for (const body of [
      { user_id: u.id, ticker: 'MSFT', quantity: '1e3', type: 'market' },
      { user_id: u.id, ticker: 'MSFT', quantity: 0, type: 'market' },
      { user_id: u.id, ticker: 'MSFT', quantity: -1, type: 'market' },
      { user_id: u.id, ticker: 'MSFT', quantity: '0.0000001', type: 'market' },
      { user_id: u.id, ticker: 'MSFT', quantity: 1, type: 'limit' },
      { user_id: u.id, ticker: 'MSFT', quantity: 1, type: 'market', side: 'short' },
      { user_id: u.id, ticker: 'MSFT', quantity: 1 },
    ]) {
      const res = await api.request('POST', '/orders', { token: u.api_key, body });
      expect([res.status, res.body.error.code], JSON.stringify(body)).toEqual([400, 'VALIDATION_FAILED']);
    }
  });

  it('replays by Idempotency-Key or client_order_id: 200 same order, 409 for a different body', async () => {
    const u = await user('100000.00');
    await setPrice('META', '500');
    const body = { user_id: u.id, ticker: 'META', quantity: 1, type: 'market' };
    const first = await api.request('POST', '/orders', { token: u.api_key, body, headers: { 'idempotency-key': 'k-1' } });
    const again = await api.request('POST', '/orders', { token: u.api_key, body, headers: { 'idempotency-key': 'k-1' } });
    expect([first.status, again.status, again.body.id]).toEqual([201, 200, first.body.id]);
    expect(again.body.client_order_id).toBe('k-1');
    const viaBody = await api.request('POST', '/orders', { token: u.api_key, body: { ...body, client_order_id: 'k-1' } });
    expect([viaBody.status, viaBody.body.id]).toEqual([200, first.body.id]);
    const different = await api.request('POST', '/orders', { token: u.api_key, body: { ...body, quantity: 2 }, headers: { 'idempotency-key': 'k-1' } });
    expect([different.status, different.body.error.code]).toEqual([409, 'IDEMPOTENCY_KEY_REUSED']);
    const mismatch = await api.request('POST', '/orders', { token: u.api_key, body: { ...body, client_order_id: 'a' }, headers: { 'idempotency-key': 'b' } });
    expect(mismatch.status).toBe(400);
  });

  it('keeps users apart: 403 for another user_id, 404 for another user\'s order', async () => {
    const a = await user('10000.00');
    const b = await user('10000.00');
    await setPrice('TSLA', '200');
    const forB = await api.request('POST', '/orders', { token: a.api_key, body: { user_id: b.id, ticker: 'TSLA', quantity: 1, type: 'market' } });
    expect(forB.status).toBe(403);
    const mine = await api.request('POST', '/orders', { token: a.api_key, body: { user_id: a.id, ticker: 'TSLA', quantity: 1, type: 'market' } });
    expect((await api.request('GET', `/orders/${mine.body.id}`, { token: b.api_key })).status).toBe(404);
    expect((await api.request('DELETE', `/orders/${mine.body.id}`, { token: b.api_key })).status).toBe(404);
    expect((await api.request('GET', `/orders?user_id=${a.id}`, { token: b.api_key })).status).toBe(403);
    expect((await api.request('GET', `/orders/${mine.body.id}`)).status).toBe(200); // the admin sees all
    const listB = await api.request('GET', '/orders', { token: b.api_key });
    expect(listB.body.orders).toEqual([]);
  });

  it('lists newest first with filters and a cursor, and cancels only pending orders', async () => {
    await engine?.stop();
    engine = undefined;
    const u = await user('100000.00');
    await setPrice('KO', '60');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await api.request('POST', '/orders', { token: u.api_key, body: { user_id: u.id, ticker: 'KO', quantity: 1, type: 'market' } })).body.id);
    }
    const page1 = await api.request('GET', '/orders?limit=3&ticker=KO', { token: u.api_key });
    expect(page1.body.orders.map((o: { id: string }) => o.id)).toEqual(ids.slice(2).reverse());
    const page2 = await api.request('GET', `/orders?limit=3&before=${page1.body.next}`, { token: u.api_key });
    expect(page2.body.orders.map((o: { id: string }) => o.id)).toEqual(ids.slice(0, 2).reverse());
    expect(page2.body.next).toBeNull();

    const canceled = await api.request('DELETE', `/orders/${ids[0]}`, { token: u.api_key });
    expect([canceled.status, canceled.body.status]).toEqual([200, 'CANCELED']);
    const again = await api.request('DELETE', `/orders/${ids[0]}`, { token: u.api_key });
    expect([again.status, again.body.error.code]).toEqual([409, 'ORDER_NOT_CANCELABLE']);
    const pendingOnly = await api.request('GET', '/orders?status=PENDING', { token: u.api_key });
    expect(pendingOnly.body.orders).toHaveLength(4);
    expect((await api.request('GET', '/orders?status=WHATEVER', { token: u.api_key })).status).toBe(400);
    expect((await api.request('GET', '/orders?limit=501', { token: u.api_key })).status).toBe(400);
  });
});
