/**
 * POST /orders/batch: many orders in one request, each answered exactly as POST /orders would
 * answer it alone (accepted, replayed, or refused with its own status and error), in request
 * order, and accepted through the set-based statements. Against a real PostgreSQL and Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createEngine } from '../src/app.js';
import { parsePrice } from '../src/core/money.js';
import { ORDER_BATCH_MAX } from '../src/services/orders/orders.service.js';
import { createTestContext, eventually, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;

beforeAll(async () => {
  ctx = await createTestContext({ ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '3600000' });
  api = await startTestServer(ctx);
  await ctx.quotes.setMany(['AAPL', 'MSFT', 'NVDA'].map((ticker) => ({ ticker, price: parsePrice('100'), asOfMs: Date.now() })));
});
afterAll(async () => {
  await api.server.close();
  await ctx.close();
});

let seq = 0;
async function user(cash: string) {
  const res = await api.request('POST', '/users', { body: { name: 'B', email: `batch${++seq}@example.com`, initial_cash: cash } });
  return res.body as { id: string; api_key: string };
}

type Result = { status: number; order?: { id: string; status: string; ticker: string; client_order_id: string | null }; error?: { code: string; message: string } };

/** Batched accept statements run so far (the count of the accept-batch histogram). */
async function acceptStatements(): Promise<number> {
  const metric = await ctx.metrics.getSingleMetric('papertrade_oms_accept_batch_orders')?.get();
  const values = (metric?.values ?? []) as { metricName?: string; value: number }[];
  return values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
}

async function batch(token: string | undefined, orders: unknown[]) {
  return api.request('POST', '/orders/batch', { token, body: { orders } });
}

describe('POST /orders/batch', () => {
  it('answers every order on its own, in request order, as POST /orders would', async () => {
    const u = await user('1050.00'); // holds exactly ten shares at 100 × 1.05
    const other = await user('1000.00');
    const res = await batch(u.api_key, [
      { ticker: 'AAPL', quantity: 4, type: 'market' },
      { ticker: 'NOPE', quantity: 1, type: 'market' },
      { ticker: 'MSFT', quantity: 5, type: 'market', client_order_id: 'b-1' },
      { ticker: 'AAPL', quantity: 5, type: 'market' }, // 4 + 5 + 5 > 10: the cash runs out here
      { ticker: 'NVDA', quantity: 'lots', type: 'market' },
      { ticker: 'NVDA', quantity: 1, type: 'market', user_id: other.id },
      { ticker: 'NVDA', quantity: 1, type: 'market', colour: 'red' },
      { ticker: 'NVDA', quantity: 1, type: 'market' },
    ]);
    expect(res.status).toBe(200);
    const results = res.body.results as Result[];
    expect(results.map((r) => [r.status, r.order?.status ?? r.error?.code])).toEqual([
      [201, 'PENDING'],
      [404, 'UNKNOWN_TICKER'],
      [201, 'PENDING'],
      [422, 'ORDER_REJECTED'],
      [400, 'VALIDATION_FAILED'],
      [403, 'FORBIDDEN'],
      [400, 'VALIDATION_FAILED'],
      [201, 'PENDING'],
    ]);
    // Each refusal is the one the order alone gets, with where it was in the batch.
    const alone = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AAPL', quantity: 5, type: 'market' } });
    expect(alone.status).toBe(results[3]!.status);
    expect(alone.body.error).toEqual(results[3]!.error);
    expect(results[4]!.error!.message).toMatch(/^quantity must be a plain decimal/);
    expect(results[6]!.error!.message).toMatch(/^body\.orders\.6: unknown field colour/);
    expect(results[2]!.order!.client_order_id).toBe('b-1');

    // The holds are what the accepted orders need, to the cent: 4 + 5 + 1 shares at 105.
    const account = await api.request('GET', `/users/${u.id}/account`, { token: u.api_key });
    expect(account.body).toMatchObject({ cash_balance: '1050.00', available_cash: '0.00' });
  });

  it('replays a client_order_id seen before (200) and refuses one reused for another order (409)', async () => {
    const u = await user('100000.00');
    const first = await batch(u.api_key, [{ ticker: 'AAPL', quantity: 1, type: 'market', client_order_id: 'again' }]);
    expect(first.body.results[0].status).toBe(201);
    const second = await batch(u.api_key, [
      { ticker: 'AAPL', quantity: 1, type: 'market', client_order_id: 'again' },
      { ticker: 'AAPL', quantity: 2, type: 'market', client_order_id: 'again' },
      // The same key twice in one batch: one order, the second answer its replay.
      { ticker: 'MSFT', quantity: 1, type: 'market', client_order_id: 'twice' },
      { ticker: 'MSFT', quantity: 1, type: 'market', client_order_id: 'twice' },
    ]);
    const results = second.body.results as Result[];
    expect(results.map((r) => r.status)).toEqual([200, 409, 201, 200]);
    expect(results[0]!.order!.id).toBe(first.body.results[0].order.id);
    expect(results[1]!.error!.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(results[3]!.order!.id).toBe(results[2]!.order!.id);
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM orders WHERE user_id = ${u.id}`.execute(ctx.db);
    expect(rows[0]!.n).toBe('2');
  });

  it('accepts many users\' orders through the set-based statements and the engine fills them all', async () => {
    const users = await Promise.all(Array.from({ length: 20 }, () => user('10000.00')));
    const countBefore = await acceptStatements();
    // The admin names each order's user; three orders per user, in order.
    const orders = users.flatMap((u) => [1, 2, 3].map((q) => ({ user_id: u.id, ticker: 'AAPL', quantity: q, type: 'market' })));
    const res = await batch(undefined, orders);
    const results = res.body.results as Result[];
    expect(results.every((r) => r.status === 201)).toBe(true);
    // One statement per round of one order per user: three statements for 60 orders.
    expect((await acceptStatements()) - countBefore).toBe(3);

    const engine = createEngine(ctx);
    await engine.start();
    try {
      const ids = results.map((r) => r.order!.id);
      await eventually(async () => {
        const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM orders WHERE id = ANY(${ids}::uuid[]) AND status = 'FILLED'`.execute(ctx.db);
        return rows[0]!.n === String(ids.length) ? true : undefined;
      });
    } finally {
      await engine.stop();
    }
    const account = await api.request('GET', `/users/${users[0]!.id}/account`, { token: users[0]!.api_key });
    expect(account.body).toMatchObject({ cash_balance: '9400.00', available_cash: '9400.00' });
  });

  it(`refuses a request with no orders or more than ${ORDER_BATCH_MAX}, and a body that is not a batch`, async () => {
    const u = await user('100.00');
    const empty = await batch(u.api_key, []);
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toBe('body.orders must have at least 1 item(s)');
    const order = { ticker: 'AAPL', quantity: 1, type: 'market' };
    const tooMany = await batch(u.api_key, Array.from({ length: ORDER_BATCH_MAX + 1 }, () => order));
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.message).toBe(`body.orders must have at most ${ORDER_BATCH_MAX} items`);
    const notBatch = await api.request('POST', '/orders/batch', { token: u.api_key, body: order });
    expect(notBatch.status).toBe(400);
    expect(notBatch.body.error.code).toBe('VALIDATION_FAILED');
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM orders WHERE user_id = ${u.id}`.execute(ctx.db);
    expect(rows[0]!.n).toBe('0');
  });

  it('needs credentials', async () => {
    const res = await batch(undefined, [{ ticker: 'AAPL', quantity: 1, type: 'market' }]);
    // The admin must name the user of each order, and a user that exists.
    expect(res.body.results[0]).toMatchObject({ status: 400, error: { code: 'VALIDATION_FAILED' } });
    const nobody = '01900000-0000-7000-8000-000000000000';
    const alone = await api.request('POST', '/orders', { body: { user_id: nobody, ticker: 'AAPL', quantity: 1, type: 'market' } });
    const named = await batch(undefined, [{ user_id: nobody, ticker: 'AAPL', quantity: 1, type: 'market' }]);
    expect(alone.status).toBe(404);
    expect(named.body.results[0]).toEqual({ status: alone.status, error: alone.body.error });
    const anonymous = await api.request('POST', '/orders/batch', { token: null, body: { orders: [] } });
    expect(anonymous.status).toBe(401);
  });
});
