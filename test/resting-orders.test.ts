/**
 * Resting orders through the HTTP API on scripted price paths: prices are set as the admin sets
 * them (PUT /admin/prices/{ticker}: the quote store, its tick log, bars), an engine with its
 * resting-order watcher runs, and every trigger and fill price is exact. Also times in force,
 * the session events of a forced open and close, replace, cancel-all, and an engine restart.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { adminPrice, ADMIN_TOKEN, apiUser, eventually, startTradingStack, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;
let engine: ReturnType<typeof createEngine>;

beforeAll(async () => {
  ({ ctx, api, engine } = await startTradingStack());
});
afterAll(async () => {
  await engine?.stop();
  await api?.server.close();
  await ctx?.close();
});

const user = (cash?: string) => apiUser(api, cash);

const price = (ticker: string, value: string) => adminPrice(api, ticker, value);

async function order(token: string, body: Record<string, unknown>) {
  return api.request('POST', '/orders', { token, body: { quantity: 10, ...body } });
}

async function get(token: string, id: string) {
  return (await api.request('GET', `/orders/${id}`, { token })).body;
}

/** Polls the order until `done` holds (deadline 10 s). */
async function until(token: string, id: string, done: (o: any) => boolean) { // eslint-disable-line @typescript-eslint/no-explicit-any
  return eventually(async () => {
    const o = await get(token, id);
    return done(o) ? o : undefined;
  });
}

const terminal = (o: { status: string }) => !['PENDING', 'OPEN'].includes(o.status);
const resting = (o: { status: string }) => o.status === 'OPEN';

async function account(u: { id: string; api_key: string }) {
  return (await api.request('GET', `/users/${u.id}/account`, { token: u.api_key })).body;
}

describe('limit orders', () => {
  it('rests a buy limit at 140 while the price is 150, and fills it at 139.50 when the price gets there', async () => {
    const u = await user('10000.00');
    await price('AAPL', '150');
    const placed = await order(u.api_key, { ticker: 'AAPL', type: 'limit', limit_price: '140' });
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ type: 'limit', time_in_force: 'day', limit_price: '140.0000', reserved_amount: '1400.00' });
    const open = await until(u.api_key, placed.body.id, resting);
    expect(open.status).toBe('OPEN');
    expect((await account(u)).available_cash).toBe('8600.00');
    await price('AAPL', '140.0001');
    await price('AAPL', '139.50');
    const filled = await until(u.api_key, placed.body.id, terminal);
    expect(filled).toMatchObject({ status: 'FILLED', fill_price: '139.5000', filled_quantity: '10' });
    expect(await account(u)).toMatchObject({ cash_balance: '8605.00', available_cash: '8605.00' });
  });

  it('fills at the gap price when the price jumps through the limit', async () => {
    const u = await user();
    await price('MSFT', '400');
    const buy = await order(u.api_key, { ticker: 'MSFT', type: 'limit', limit_price: '390' });
    await until(u.api_key, buy.body.id, resting);
    await price('MSFT', '380.25');
    expect(await until(u.api_key, buy.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '380.2500' });
    const sell = await order(u.api_key, { ticker: 'MSFT', type: 'limit', side: 'sell', limit_price: '395' });
    await until(u.api_key, sell.body.id, resting);
    await price('MSFT', '401');
    expect(await until(u.api_key, sell.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '401.0000' });
  });

  it('executes a marketable limit at once, at the quote', async () => {
    const u = await user();
    await price('NVDA', '100');
    const buy = await order(u.api_key, { ticker: 'NVDA', type: 'limit', limit_price: '105' });
    expect(await until(u.api_key, buy.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '100.0000' });
  });
});

describe('stops', () => {
  it('triggers a sell stop at or below its price and fills at the triggering tick; a buy stop above', async () => {
    const u = await user();
    await price('AMZN', '200');
    const buy = await order(u.api_key, { ticker: 'AMZN', type: 'market' });
    await until(u.api_key, buy.body.id, terminal);
    const stop = await order(u.api_key, { ticker: 'AMZN', type: 'stop', side: 'sell', stop_price: '190' });
    await until(u.api_key, stop.body.id, resting);
    await price('AMZN', '190.0001');
    await price('AMZN', '188');
    const sold = await until(u.api_key, stop.body.id, terminal);
    expect(sold).toMatchObject({ status: 'FILLED', fill_price: '188.0000' });
    expect(sold.triggered_at).not.toBeNull();
    const buyStop = await order(u.api_key, { ticker: 'AMZN', type: 'stop', stop_price: '195' });
    await until(u.api_key, buyStop.body.id, resting);
    await price('AMZN', '196');
    expect(await until(u.api_key, buyStop.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '196.0000' });
  });

  it('a stop_limit that gaps past its limit rests triggered, then fills when the price comes back', async () => {
    const u = await user();
    await price('GOOGL', '170');
    const sl = await order(u.api_key, { ticker: 'GOOGL', type: 'stop_limit', stop_price: '175', limit_price: '176' });
    await until(u.api_key, sl.body.id, resting);
    await price('GOOGL', '180');
    const triggered = await until(u.api_key, sl.body.id, (o) => o.triggered_at !== null);
    expect(triggered.status).toBe('OPEN');
    await price('GOOGL', '175.5');
    expect(await until(u.api_key, sl.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '175.5000' });
  });

  it('rejects a buy stop whose triggering price is past its hold (the final check), releasing the hold', async () => {
    const u = await user('10000.00');
    await price('META', '500');
    const stop = await order(u.api_key, { ticker: 'META', type: 'stop', stop_price: '510', quantity: 1 }); // holds 535.50
    await until(u.api_key, stop.body.id, resting);
    await price('META', '540');
    const rejected = await until(u.api_key, stop.body.id, terminal);
    expect(rejected).toMatchObject({ status: 'REJECTED', reject_reason: 'PRICE_MOVED_BEYOND_RESERVATION' });
    // It did trigger: the stop was reached, the final check refused the fill.
    expect(rejected.triggered_at).not.toBeNull();
    expect((await account(u)).available_cash).toBe('10000.00');
  });
});

describe('trailing stops', () => {
  it('a trailing sell of 5% over 100 -> 110 -> 104.50 triggers at 104.50, with hwm and stop_level after each tick', async () => {
    const u = await user();
    await price('TSLA', '100');
    await until(u.api_key, (await order(u.api_key, { ticker: 'TSLA', type: 'market' })).body.id, terminal);
    const trail = await order(u.api_key, { ticker: 'TSLA', type: 'trailing_stop', side: 'sell', trail_percent: 5 });
    expect(trail.status).toBe(201);
    const first = await until(u.api_key, trail.body.id, resting);
    expect([first.hwm, first.stop_level, first.trail_percent]).toEqual(['100.0000', '95.0000', '5.00']);
    await price('TSLA', '110');
    expect(await until(u.api_key, trail.body.id, (o) => o.hwm === '110.0000')).toMatchObject({ stop_level: '104.5000' });
    await price('TSLA', '104.5001');
    await price('TSLA', '104.50');
    expect(await until(u.api_key, trail.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '104.5000' });
  });

  it('a trailing buy by price follows the low', async () => {
    const u = await user();
    await price('JPM', '220');
    const trail = await order(u.api_key, { ticker: 'JPM', type: 'trailing_stop', trail_price: '5' });
    expect(trail.body.reserved_amount).toBe('2362.50'); // 10 x (220 + 5) x 1.05
    await until(u.api_key, trail.body.id, resting);
    await price('JPM', '210');
    expect(await until(u.api_key, trail.body.id, (o) => o.hwm === '210.0000')).toMatchObject({ stop_level: '215.0000' });
    await price('JPM', '215');
    expect(await until(u.api_key, trail.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '215.0000' });
  });
});

describe('times in force', () => {
  it('ioc and fok execute when marketable and are canceled when not', async () => {
    const u = await user();
    await price('KO', '60');
    for (const tif of ['ioc', 'fok']) {
      const no = await order(u.api_key, { ticker: 'KO', type: 'limit', limit_price: '59', time_in_force: tif });
      expect(await until(u.api_key, no.body.id, terminal)).toMatchObject({ status: 'CANCELED', cancel_reason: 'NOT_MARKETABLE' });
      const yes = await order(u.api_key, { ticker: 'KO', type: 'limit', limit_price: '61', time_in_force: tif });
      expect(await until(u.api_key, yes.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '60.0000' });
    }
    expect((await account(u)).available_cash).toBe((await account(u)).cash_balance);
  });

  it('a forced close executes cls orders, then expires day orders; a forced open executes opg and waiting market orders', async () => {
    const u = await user();
    await price('PEP', '160');
    const day = await order(u.api_key, { ticker: 'PEP', type: 'limit', limit_price: '100' });
    const gtc = await order(u.api_key, { ticker: 'PEP', type: 'limit', limit_price: '100', time_in_force: 'gtc' });
    const cls = await order(u.api_key, { ticker: 'PEP', type: 'market', time_in_force: 'cls' });
    for (const o of [day, gtc, cls]) await until(u.api_key, o.body.id, resting);
    const closed = await api.request('POST', '/admin/market', { body: { state: 'closed' } });
    expect(closed.body).toMatchObject({ is_open: false, forced: 'closed' });
    expect(await until(u.api_key, cls.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '160.0000' });
    expect(await until(u.api_key, day.body.id, terminal)).toMatchObject({ status: 'EXPIRED' });
    expect((await get(u.api_key, gtc.body.id)).status).toBe('OPEN');

    // While closed: market orders wait for the open, opg orders too; ioc is canceled.
    const waiting = await order(u.api_key, { ticker: 'PEP', type: 'market' });
    const opg = await order(u.api_key, { ticker: 'PEP', type: 'limit', limit_price: '170', time_in_force: 'opg' });
    const ioc = await order(u.api_key, { ticker: 'PEP', type: 'market', time_in_force: 'ioc' });
    expect(await until(u.api_key, ioc.body.id, terminal)).toMatchObject({ status: 'CANCELED', cancel_reason: 'MARKET_CLOSED' });
    await until(u.api_key, waiting.body.id, resting);
    await until(u.api_key, opg.body.id, resting);
    await price('PEP', '165');
    const opened = await api.request('POST', '/admin/market', { body: { state: 'open' } });
    expect(opened.body).toMatchObject({ is_open: true, forced: 'open' });
    expect(await until(u.api_key, waiting.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '165.0000' });
    expect(await until(u.api_key, opg.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '165.0000' });
    await api.request('POST', '/admin/market', { body: { state: 'auto' } });
    await api.request('DELETE', `/orders/${gtc.body.id}`, { token: u.api_key });
  });

  it('refuses fields that do not belong to the type, naming them', async () => {
    const u = await user();
    const res = await order(u.api_key, { ticker: 'AAPL', type: 'market', limit_price: '1' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED', details: { field: 'limit_price' } });
    const cls = await order(u.api_key, { ticker: 'AAPL', type: 'stop', stop_price: '1', time_in_force: 'cls' });
    expect(cls.body.error.details.field).toBe('time_in_force');
  });
});

describe('replace and cancel-all', () => {
  it('replaces an OPEN limit in one step: the old REPLACED, the new one resting with the hold adjusted', async () => {
    const u = await user('10000.00');
    await price('CAT', '370');
    const placed = await order(u.api_key, { ticker: 'CAT', type: 'limit', limit_price: '300' });
    await until(u.api_key, placed.body.id, resting);
    expect((await account(u)).available_cash).toBe('7000.00');
    const replaced = await api.request('PATCH', `/orders/${placed.body.id}`, { token: u.api_key, body: { limit_price: '350', quantity: 5 } });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ replaces: placed.body.id, limit_price: '350.0000', quantity: '5', reserved_amount: '1750.00' });
    expect(await get(u.api_key, placed.body.id)).toMatchObject({ status: 'REPLACED', replaced_by: replaced.body.id });
    await until(u.api_key, replaced.body.id, resting);
    expect((await account(u)).available_cash).toBe('8250.00');
    const tooBig = await api.request('PATCH', `/orders/${replaced.body.id}`, { token: u.api_key, body: { quantity: 1000 } });
    expect(tooBig.status).toBe(422);
    expect(tooBig.body.error.cause.code).toBe('INSUFFICIENT_FUNDS');
    // The refusal speaks of the whole new hold, against what is available with the old one back.
    expect(tooBig.body.error.cause.message).toBe('available cash 10000.00 below the 350000.00 required');
    expect((await get(u.api_key, replaced.body.id)).status).toBe('OPEN');
    const market = await order(u.api_key, { ticker: 'CAT', type: 'market', quantity: 1 });
    await until(u.api_key, market.body.id, terminal);
    const notReplaceable = await api.request('PATCH', `/orders/${market.body.id}`, { token: u.api_key, body: { quantity: 2 } });
    expect(notReplaceable.status).toBe(409);
    expect(notReplaceable.body.error.code).toBe('ORDER_NOT_REPLACEABLE');
    await api.request('DELETE', `/orders/${replaced.body.id}`, { token: u.api_key });
  });

  it("a replaced trailing stop keeps the best price seen, and a replaced triggered stop_limit stays triggered", async () => {
    const u = await user('100000.00');
    await price('ADBE', '300');
    const trailing = await order(u.api_key, { ticker: 'ADBE', type: 'trailing_stop', trail_price: '10', quantity: 1 });
    await until(u.api_key, trailing.body.id, resting);
    await price('ADBE', '280');
    await price('ADBE', '285');
    await until(u.api_key, trailing.body.id, (o) => o.hwm === '280.0000');
    const t2 = await api.request('PATCH', `/orders/${trailing.body.id}`, { token: u.api_key, body: { quantity: 3 } });
    expect(t2.status).toBe(200);
    expect(t2.body).toMatchObject({ hwm: '280.0000', stop_level: '290.0000' });
    const t2Resting = await until(u.api_key, t2.body.id, resting);
    expect(t2Resting).toMatchObject({ hwm: '280.0000', stop_level: '290.0000' });
    await price('ADBE', '290');
    expect(await until(u.api_key, t2.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '290.0000' });

    await price('ADBE', '110');
    const stopLimit = await order(u.api_key, { ticker: 'ADBE', type: 'stop_limit', stop_price: '105', limit_price: '100', quantity: 1 });
    // 110 is at or above the stop: triggered at once, resting on its limit.
    const triggered = await until(u.api_key, stopLimit.body.id, (o) => o.status === 'OPEN' && o.triggered_at !== null);
    await price('ADBE', '103');
    const sl2 = await api.request('PATCH', `/orders/${stopLimit.body.id}`, { token: u.api_key, body: { quantity: 2 } });
    expect(sl2.status).toBe(200);
    expect(sl2.body.triggered_at).toBe(triggered.triggered_at);
    await until(u.api_key, sl2.body.id, resting);
    await price('ADBE', '99');
    expect(await until(u.api_key, sl2.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '99.0000' });
  });

  it('a buy stop placed under the market executes at the quote: its hold covers the quote', async () => {
    const u = await user('10000.00');
    await price('KO', '60');
    const placed = await order(u.api_key, { ticker: 'KO', type: 'stop', stop_price: '50' });
    expect(placed.body.reserved_amount).toBe('630.00'); // 10 x 60 x 1.05, not 10 x 50 x 1.05
    expect(await until(u.api_key, placed.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '60.0000' });
  });

  it('has exactly one winner when a replace races the fill of the same order', async () => {
    for (let i = 0; i < 5; i++) {
      const u = await user('10000.00');
      await price('IBM', '220');
      const placed = await order(u.api_key, { ticker: 'IBM', type: 'limit', limit_price: '210' });
      await until(u.api_key, placed.body.id, resting);
      const [, replaced] = await Promise.all([
        price('IBM', '205'),
        api.request('PATCH', `/orders/${placed.body.id}`, { token: u.api_key, body: { limit_price: '200' } }),
      ]);
      const old = await until(u.api_key, placed.body.id, terminal);
      if (old.status === 'FILLED') {
        expect(replaced.status).toBe(409);
      } else {
        expect(old.status).toBe('REPLACED');
        expect(replaced.status).toBe(200);
        await api.request('DELETE', `/orders/${replaced.body.id}`, { token: u.api_key });
      }
      const fills = await ctx.db.selectFrom('fills').select('order_id').where('order_id', '=', placed.body.id).execute();
      expect(fills).toHaveLength(old.status === 'FILLED' ? 1 : 0);
    }
  });

  it('cancels every live order of a user, releasing every hold', async () => {
    const u = await user('10000.00');
    await price('WMT', '80');
    const ids = [];
    for (const limit of ['70', '71', '72']) ids.push((await order(u.api_key, { ticker: 'WMT', type: 'limit', limit_price: limit })).body.id);
    for (const id of ids) await until(u.api_key, id, resting);
    const res = await api.request('DELETE', '/orders', { token: u.api_key });
    expect(res.status).toBe(200);
    expect(res.body.results.map((r: { status: number }) => r.status)).toEqual([200, 200, 200]);
    expect(res.body.results.map((r: { order: { status: string } }) => r.order.status)).toEqual(['CANCELED', 'CANCELED', 'CANCELED']);
    expect((await account(u)).available_cash).toBe('10000.00');
    const admin = await api.request('DELETE', '/orders', { token: ADMIN_TOKEN });
    expect(admin.status).toBe(400);
  });
});

describe('the watcher', () => {
  it('fills resting orders after an engine restart when the next tick crosses them', async () => {
    const u = await user();
    await price('BAC', '42');
    const placed = await order(u.api_key, { ticker: 'BAC', type: 'limit', limit_price: '40' });
    await until(u.api_key, placed.body.id, resting);
    await engine.stop();
    engine = createEngine(ctx);
    await engine.start();
    await eventually(async () => (engine.watcher.isLeader() ? true : undefined));
    await price('BAC', '39.99');
    expect(await until(u.api_key, placed.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '39.9900' });
  });

  it('puts back an order whose execution failed (its connection cut) and fills it at the tick that made it executable', async () => {
    const u = await user();
    await price('INTC', '30');
    const placed = await order(u.api_key, { ticker: 'INTC', type: 'limit', limit_price: '25', time_in_force: 'gtc' });
    await until(u.api_key, placed.body.id, resting);
    // An order resting for a while: the catch-up (orders changed in the last seconds) does not see it.
    await sql`UPDATE orders SET updated_at = now() - interval '1 hour' WHERE id = ${placed.body.id}`.execute(ctx.db);
    await ctx.db.transaction().execute(async (trx) => {
      // Hold the order's row: the engine's fill waits on it; then cut the waiting connection.
      await sql`SELECT id FROM orders WHERE id = ${placed.body.id} FOR UPDATE`.execute(trx);
      await price('INTC', '24');
      await eventually(async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT pg_terminate_backend(pid)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`.execute(ctx.db);
        return rows.length > 0 ? true : undefined;
      });
    });
    // No new tick: the watcher replays the one that made it executable.
    expect(await until(u.api_key, placed.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '24.0000' });
  });

  it('finds an OPEN order it was never told of (a lost notification) and fills it at the next crossing tick', async () => {
    const u = await user('1000.00');
    await price('NKE', '60');
    const before = engine.watcher.watched;
    const id = '01900000-0000-7000-8000-00000000e0e1';
    // Written behind the OMS's back: OPEN, its hold taken, and no notification.
    await ctx.db.transaction().execute(async (trx) => {
      await sql`INSERT INTO orders (id, user_id, request_hash, ticker, side, type, time_in_force, quantity, limit_price, status, reserved_amount)
                VALUES (${id}, ${u.id}, decode('00', 'hex'), 'NKE', 'buy', 'limit', 'gtc', 1, 50, 'OPEN', 50.00)`.execute(trx);
      await sql`UPDATE cash_balances SET available_cash = available_cash - 50 WHERE user_id = ${u.id}`.execute(trx);
    });
    await eventually(async () => (engine.watcher.watched > before ? true : undefined));
    await price('NKE', '49');
    expect(await until(u.api_key, id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '49.0000' });
  });

  it('fills at a crossing tick published while no engine ran: the tick log is replayed from the saved position', async () => {
    const u = await user();
    await price('CVX', '150');
    const placed = await order(u.api_key, { ticker: 'CVX', type: 'limit', limit_price: '145', time_in_force: 'gtc' });
    await until(u.api_key, placed.body.id, resting);
    await engine.stop();
    // Down through the limit and back up again, with nobody watching: only the log remembers.
    await price('CVX', '144.25');
    await price('CVX', '151');
    engine = createEngine(ctx);
    await engine.start();
    expect(await until(u.api_key, placed.body.id, terminal)).toMatchObject({ status: 'FILLED', fill_price: '144.2500' });
  });

  it('with two engines, fills each of 1,000 resting orders crossed by one tick exactly once', { timeout: 60_000 }, async () => {
    const second = createEngine(ctx, { consumerName: 'second-engine' });
    await second.start();
    try {
      const users = await Promise.all(Array.from({ length: 20 }, () => user('100000.00')));
      await price('XOM', '115');
      const placed: { token: string; id: string }[] = [];
      for (let i = 0; i < 1_000; i++) {
        const u = users[i % users.length]!;
        const res = await order(u.api_key, { ticker: 'XOM', type: 'limit', limit_price: '110', quantity: 1 });
        placed.push({ token: u.api_key, id: res.body.id });
      }
      await eventually(async () => {
        const { rows } = await ctx.db
          .selectFrom('orders')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('ticker', '=', 'XOM')
          .where('status', '=', 'OPEN')
          .execute()
          .then((r) => ({ rows: r }));
        return Number(rows[0]!.n) === 1_000 ? true : undefined;
      }, 30_000);
      const started = Date.now();
      await price('XOM', '109');
      await eventually(async () => {
        const rows = await ctx.db.selectFrom('orders').select('status').where('ticker', '=', 'XOM').where('status', '=', 'FILLED').execute();
        return rows.length === 1_000 ? true : undefined;
      }, 30_000);
      const tookMs = Date.now() - started;
      const fills = await ctx.db
        .selectFrom('fills')
        .innerJoin('orders', 'orders.id', 'fills.order_id')
        .select(['fills.order_id', 'fills.price'])
        .where('orders.ticker', '=', 'XOM')
        .execute();
      expect(fills).toHaveLength(1_000);
      expect(new Set(fills.map((f) => f.order_id)).size).toBe(1_000);
      expect(new Set(fills.map((f) => f.price))).toEqual(new Set(['109.0000']));
      console.log(`1,000 resting orders crossed by one tick: all FILLED ${tookMs} ms after the tick`);
    } finally {
      await second.stop();
    }
  });
});
