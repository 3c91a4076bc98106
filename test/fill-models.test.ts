/**
 * Fill models end to end, through the HTTP API with a real engine, on scripted quote paths set
 * as the admin sets them (PUT /admin/prices/{ticker} with a bid, an ask and their sizes):
 *
 * - realistic: a 50,000-share buy of a mid cap fills in parts, each no larger than the ask's
 *   displayed size, at rising prices, each part explained; the same path gives the same fills;
 * - ioc keeps what filled and cancels the rest; fok fills only when the whole is displayed;
 * - a cancel of a partially filled order releases what is still held;
 * - a class's fill_model and commission rules take the deployment's place;
 * - the audit runs clean at the end (the context's close).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { apiUser, eventually, startTradingStack, type TestContext, type TestServer } from './harness.js';
import { formatAuditReport, runAudit } from '../src/services/audit/audit.service.js';

let ctx: TestContext;
let api: TestServer;
let engine: ReturnType<typeof createEngine>;

beforeAll(async () => {
  ({ ctx, api, engine } = await startTradingStack({ FILL_MODEL: 'realistic', FILL_SEED: '7', FILL_LATENCY_MS: '0', FILL_LATENCY_JITTER_MS: '0' }));
});
afterAll(async () => {
  await engine?.stop();
  await api?.server.close();
  await ctx?.close();
});

type Body = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Publishes a quote as the admin does: last, bid and ask with the shares displayed at each. */
async function quote(ticker: string, last: string, bid: string, ask: string, bidSize: string, askSize: string) {
  const res = await api.request('PUT', `/admin/prices/${ticker}`, { body: { price: last, bid, ask, bid_size: bidSize, ask_size: askSize } });
  if (res.status !== 200) throw new Error(`PUT /admin/prices/${ticker} answered ${res.status}: ${JSON.stringify(res.body)}`);
}

const order = (token: string, body: Record<string, unknown>) => api.request('POST', '/orders', { token, body });
const get = async (token: string, id: string): Promise<Body> => (await api.request('GET', `/orders/${id}`, { token })).body;
const fillsOf = async (token: string, id: string): Promise<Body> => (await api.request('GET', `/orders/${id}/fills`, { token })).body;
const account = async (u: { id: string; api_key: string }): Promise<Body> => (await api.request('GET', `/users/${u.id}/account`, { token: u.api_key })).body;

/** Polls until `done` holds for the order (deadline 10 s). */
const until = (token: string, id: string, done: (o: Body) => boolean) =>
  eventually(async () => {
    const o = await get(token, id);
    return done(o) ? o : undefined;
  });

// Exact decimal arithmetic for the assertions, independent of the code under test.
const scaled = (s: string, scale: number) => {
  const [i, f = ''] = s.split('.');
  return BigInt(i! + f.padEnd(scale, '0').slice(0, scale));
};
const cents = (s: string) => scaled(s, 2);

/**
 * The scripted path: ETSY last 60.00, bid 59.97, ask 60.03, 10,000 shares displayed each side,
 * published again after each part fills, until the order is done (at most 12 quotes).
 */
async function buyAlongPath(u: { api_key: string }, quantity: number, extra: Record<string, unknown> = {}) {
  await quote('ETSY', '60', '59.97', '60.03', '10000', '10000');
  const placed = await order(u.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', quantity, ...extra });
  expect(placed.status).toBe(201);
  const id: string = placed.body.id;
  let o = await until(u.api_key, id, (x) => x.status !== 'PENDING');
  for (let i = 0; i < 12 && o.status !== 'FILLED'; i++) {
    const before = o.filled_quantity;
    await quote('ETSY', '60', '59.97', '60.03', '10000', '10000');
    o = await until(u.api_key, id, (x) => x.filled_quantity !== before || x.status === 'FILLED');
  }
  return { id, order: o };
}

describe('realistic', () => {
  it('fills a 50,000-share buy of a mid cap in parts of at most the displayed ask, at rising prices, each explained', async () => {
    const u = await apiUser(api, '5000000.00');
    const { id, order: o } = await buyAlongPath(u, 50_000);
    expect(o).toMatchObject({ status: 'FILLED', filled_quantity: '50000', fill_model: 'realistic' });

    const page = await fillsOf(u.api_key, id);
    expect(page.order_id).toBe(id);
    const fills: Body[] = page.fills;
    expect(fills.length).toBeGreaterThanOrEqual(5);
    let total = 0n;
    let value = 0n; // Σ quantity × price at scale 4 + 0 (quantities are whole shares here)
    for (const [i, f] of fills.entries()) {
      expect(scaled(f.quantity, 0)).toBeLessThanOrEqual(10_000n);
      // Never below the ask; each part pays more than the one before (the impact is cumulative).
      expect(scaled(f.price, 4)).toBeGreaterThan(scaled('60.03', 4));
      if (i > 0) expect(scaled(f.price, 4)).toBeGreaterThan(scaled(fills[i - 1].price, 4));
      expect(f.explanation).toMatchObject({
        model: 'realistic',
        model_version: 1,
        params: { impact_coefficient_bps: '300', daily_volume: '1000000' },
        quote: { bid: '59.9700', ask: '60.0300', last: '60.0000', bid_size: '10000', ask_size: '10000' },
      });
      expect(f.explanation.reason).toMatch(/^realistic: .*at the ask plus a square-root impact of [0-9.]+ bps/);
      expect(Number(f.explanation.slippage_bps)).toBeGreaterThan(0);
      expect(f.explanation.quote_age_ms).toBeGreaterThanOrEqual(0);
      total += scaled(f.quantity, 0);
      value += scaled(f.quantity, 0) * scaled(f.price, 4);
    }
    expect(total).toBe(50_000n);
    // The order's price is the average of its fills, half up to the tick.
    expect(scaled(o.fill_price, 4)).toBe((value + 25_000n) / 50_000n);

    // Cash: what the fills cost, nothing more; nothing left held.
    const acct = await account(u);
    const spent = fills.reduce((s: bigint, f: Body) => s + cents(f.amount) + cents(f.commission), 0n);
    expect(cents(acct.available_cash)).toBe(cents('5000000.00') - spent);
    expect(acct.reserved_cash).toBe('0.00');
  });

  it('gives the same fills for the same seed and the same quote path', async () => {
    const strip = (fills: Body[]) => fills.map((f) => ({ ...f, id: undefined, order_id: undefined, executed_at: undefined, explanation: { ...f.explanation, quote: { ...f.explanation.quote, as_of: undefined }, quote_age_ms: undefined } }));
    const a = await apiUser(api, '5000000.00');
    const b = await apiUser(api, '5000000.00');
    const first = await buyAlongPath(a, 50_000);
    const second = await buyAlongPath(b, 50_000);
    expect(second.order.fill_price).toBe(first.order.fill_price);
    expect(strip((await fillsOf(b.api_key, second.id)).fills)).toEqual(strip((await fillsOf(a.api_key, first.id)).fills));
  });

  it('ioc: keeps the part the displayed size allows and cancels the rest, releasing its hold', async () => {
    const u = await apiUser(api, '1000000.00');
    await quote('ETSY', '60', '59.97', '60.03', '4000', '4000');
    const placed = await order(u.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', time_in_force: 'ioc', quantity: 10_000 });
    expect(placed.status).toBe(201);
    const o = await until(u.api_key, placed.body.id, (x) => x.status === 'CANCELED');
    expect(o.filled_quantity).toBe('4000');
    const fills: Body[] = (await fillsOf(u.api_key, o.id)).fills;
    expect(fills).toHaveLength(1);
    const acct = await account(u);
    expect(acct.reserved_cash).toBe('0.00');
    expect(cents(acct.available_cash)).toBe(cents('1000000.00') - cents(fills[0].amount) - cents(fills[0].commission));
  });

  it('fok: does not execute when the whole quantity is not displayed at once', async () => {
    const u = await apiUser(api, '1000000.00');
    await quote('ETSY', '60', '59.97', '60.03', '4000', '4000');
    const placed = await order(u.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', time_in_force: 'fok', quantity: 5_000 });
    const o = await until(u.api_key, placed.body.id, (x) => x.status !== 'PENDING');
    expect(o).toMatchObject({ status: 'CANCELED', filled_quantity: '0' });
    expect((await fillsOf(u.api_key, o.id)).fills).toEqual([]);
    expect((await account(u)).available_cash).toBe('1000000.00');

    const whole = await order(u.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', time_in_force: 'fok', quantity: 3_000 });
    expect(await until(u.api_key, whole.body.id, (x) => x.status !== 'PENDING')).toMatchObject({ status: 'FILLED', filled_quantity: '3000' });
  });

  it('shows a partially filled order as PARTIALLY_FILLED, and a cancel releases the rest of its hold', async () => {
    const u = await apiUser(api, '1000000.00');
    await quote('ETSY', '60', '59.97', '60.03', '4000', '4000');
    const placed = await order(u.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', quantity: 10_000 });
    const partial = await until(u.api_key, placed.body.id, (x) => x.status === 'PARTIALLY_FILLED');
    expect(partial.filled_quantity).toBe('4000');
    const listed = (await api.request('GET', '/orders?status=PARTIALLY_FILLED', { token: u.api_key })).body;
    expect(listed.orders.map((x: Body) => x.id)).toEqual([partial.id]);

    const canceled = await api.request('DELETE', `/orders/${partial.id}`, { token: u.api_key });
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ status: 'CANCELED', filled_quantity: '4000' });
    const fills: Body[] = (await fillsOf(u.api_key, partial.id)).fills;
    const acct = await account(u);
    expect(acct.reserved_cash).toBe('0.00');
    expect(cents(acct.available_cash)).toBe(cents('1000000.00') - cents(fills[0].amount) - cents(fills[0].commission));
    // The shares bought stay bought.
    const pos = (await api.request('GET', `/users/${u.id}/portfolio`, { token: u.api_key })).body;
    expect(pos.positions.find((p: Body) => p.ticker === 'ETSY')).toMatchObject({ quantity: '4000' });
  });

  it('sells rest and fill in parts too, the holding reserving only what is still to sell', async () => {
    const u = await apiUser(api, '1000000.00');
    await quote('ETSY', '60', '59.97', '60.03', '10000', '10000');
    const bought = await order(u.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', quantity: 6_000 });
    await until(u.api_key, bought.body.id, (x) => x.status === 'FILLED');
    await quote('ETSY', '60', '59.97', '60.03', '2500', '2500');
    const sold = await order(u.api_key, { ticker: 'ETSY', side: 'sell', type: 'market', quantity: 6_000 });
    const partial = await until(u.api_key, sold.body.id, (x) => x.status === 'PARTIALLY_FILLED');
    expect(partial.filled_quantity).toBe('2500');
    const fill = (await fillsOf(u.api_key, sold.body.id)).fills[0];
    // A sell fills at or below the bid.
    expect(scaled(fill.price, 4)).toBeLessThan(scaled('59.97', 4));
    const pos = (await api.request('GET', `/users/${u.id}/portfolio`, { token: u.api_key })).body.positions.find((p: Body) => p.ticker === 'ETSY');
    expect(pos).toMatchObject({ quantity: '3500' });
    await api.request('DELETE', `/orders/${sold.body.id}`, { token: u.api_key });
  });
});

describe('GET /orders/{id}/fills', () => {
  it("answers ORDER_NOT_FOUND for another user's order and pages with limit and after", async () => {
    const u = await apiUser(api, '5000000.00');
    const other = await apiUser(api, '100.00');
    const { id } = await buyAlongPath(u, 30_000);
    expect((await api.request('GET', `/orders/${id}/fills`, { token: other.api_key })).status).toBe(404);
    expect((await api.request('GET', `/orders/${randomUUID()}/fills`, { token: u.api_key })).status).toBe(404);
    const all: Body[] = (await fillsOf(u.api_key, id)).fills;
    expect(all.length).toBeGreaterThanOrEqual(3);
    const first = (await api.request('GET', `/orders/${id}/fills?limit=2`, { token: u.api_key })).body;
    expect(first.fills.map((f: Body) => f.id)).toEqual(all.slice(0, 2).map((f) => f.id));
    expect(first.next).toBe(all[1].id);
    const rest = (await api.request('GET', `/orders/${id}/fills?after=${first.next}`, { token: u.api_key })).body;
    expect(rest.fills.map((f: Body) => f.id)).toEqual(all.slice(2).map((f) => f.id));
    expect(rest.next).toBeNull();
    const bad = await api.request('GET', `/orders/${id}/fills?limit=5000`, { token: u.api_key });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('limit must be an integer from 1 to 1000');
  });
});

describe('class rules', () => {
  async function member(rules: Record<string, unknown>) {
    const classId = randomUUID();
    await sql`INSERT INTO classes (id, name, starting_cash, rules) VALUES (${classId}, 'Fills class', '100000.00', ${JSON.stringify(rules)}::jsonb)`.execute(ctx.db);
    const u = await apiUser(api, '100000.00');
    await sql`INSERT INTO class_members (user_id, class_id) VALUES (${u.id}, ${classId})`.execute(ctx.db);
    return u;
  }

  it('fill_model spread: a member buys at the ask in one fill, while the deployment is realistic', async () => {
    const m = await member({ fill_model: 'spread' });
    await quote('ETSY', '60', '59.97', '60.03', '100', '100');
    const placed = await order(m.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', quantity: 1_000 });
    const o = await until(m.api_key, placed.body.id, (x) => x.status === 'FILLED');
    expect(o).toMatchObject({ fill_model: 'spread', fill_price: '60.0300', filled_quantity: '1000' });
    expect((await fillsOf(m.api_key, o.id)).fills[0].explanation).toMatchObject({ model: 'spread', slippage_bps: '0.00', reason: 'spread: the whole quantity at the ask' });
  });

  it('commission: per share with a minimum, charged as a ledger row of its own on the fill', async () => {
    const m = await member({ fill_model: 'spread', commission: { per_share: '0.005', minimum: '1.00' } });
    await quote('ETSY', '60', '59.97', '60.03', '100', '100');
    const small = await order(m.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', quantity: 10 });
    const big = await order(m.api_key, { ticker: 'ETSY', side: 'buy', type: 'market', quantity: 1_000 });
    const s = await until(m.api_key, small.body.id, (x) => x.status === 'FILLED');
    const b = await until(m.api_key, big.body.id, (x) => x.status === 'FILLED');
    // 10 × 0.005 = 0.05 is below the minimum; 1,000 × 0.005 = 5.00.
    expect(s.commission_charged).toBe('1.00');
    expect(b.commission_charged).toBe('5.00');
    expect((await fillsOf(m.api_key, s.id)).fills[0].commission).toBe('1.00');
    const activities = (await api.request('GET', `/users/${m.id}/activities`, { token: m.api_key })).body.activities;
    const commissions = activities.filter((a: Body) => a.kind === 'commission').map((a: Body) => [a.order_id, a.amount]);
    expect(commissions.sort()).toEqual([
      [b.id, '-5.00'],
      [s.id, '-1.00'],
    ].sort());
    const acct = await account(m);
    expect(cents(acct.available_cash)).toBe(cents('100000.00') - cents('600.30') - cents('60030.00') - cents('6.00'));
    expect(acct.reserved_cash).toBe('0.00');
  });
});

describe('PUT /admin/prices/{ticker} with a touch', () => {
  it('publishes the given touch, derives the tier\'s one from the price alone, and refuses what does not make a quote', async () => {
    const given = await api.request('PUT', '/admin/prices/ETSY', { body: { price: '60', bid: '59.9', ask: '60.1', bid_size: 100, ask_size: '200' } });
    expect(given.body).toMatchObject({ ticker: 'ETSY', price: '60.0000', bid: '59.9000', ask: '60.1000', bid_size: '100', ask_size: '200' });
    expect((await api.request('GET', '/prices/ETSY')).body).toMatchObject({ bid: '59.9000', ask: '60.1000', bid_size: '100', ask_size: '200' });
    // Bid and ask without sizes display the tier's least size (mid: 5,000).
    expect((await api.request('PUT', '/admin/prices/ETSY', { body: { price: '60', bid: '59.9', ask: '60.1' } })).body).toMatchObject({ bid_size: '5000', ask_size: '5000' });
    // The price alone: the mid tier's 10 bps around it, sizes within the tier's range.
    const derived = (await api.request('PUT', '/admin/prices/ETSY', { body: { price: '60' } })).body;
    expect(derived).toMatchObject({ bid: '59.9700', ask: '60.0300' });
    expect(Number(derived.bid_size)).toBeGreaterThanOrEqual(5000);
    expect(Number(derived.ask_size)).toBeLessThanOrEqual(15000);
    for (const [body, words] of [
      [{ price: '60', bid: '60.1', ask: '59.9' }, 'bid (60.1000) must not be above ask (59.9000)'],
      [{ price: '60', bid: '59.9' }, 'give bid and ask together'],
      [{ price: '60', bid_size: 10 }, 'bid_size and ask_size need a bid and an ask'],
      [{ price: '60', bid: '59.9', ask: '60.1', ask_size: '1.5' }, 'ask_size must be whole shares'],
      [{ price: '60', bid: '-1', ask: '60.1' }, 'bid'],
    ] as const) {
      const res = await api.request('PUT', '/admin/prices/ETSY', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.message).toContain(words);
    }
  });
});

describe('a seeded random realistic run', () => {
  it('keeps every invariant of the audit through partial fills, ioc and fok, cancels and an engine restart', async () => {
    // A small seeded generator (the test's own): the same run every time.
    let seed = 0x2545f491;
    const next = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const tickers = [
      { ticker: 'ETSY', last: 60, tick: 0.03 },
      { ticker: 'SFIX', last: 4.5, tick: 0.01 },
      { ticker: 'AAPL', last: 150, tick: 0.02 },
    ];
    const publish = async () => {
      for (const t of tickers) {
        t.last = Math.max(1, t.last * (1 + (next(201) - 100) / 10_000));
        const last = t.last.toFixed(4);
        await quote(t.ticker, last, (t.last - t.tick).toFixed(4), (t.last + t.tick).toFixed(4), String(500 + next(5_000)), String(500 + next(5_000)));
      }
    };
    const users = await Promise.all(Array.from({ length: 6 }, () => apiUser(api, '2000000.00')));
    await publish();
    const placed: { token: string; id: string }[] = [];
    for (let round = 0; round < 12; round++) {
      for (const u of users) {
        const t = tickers[next(tickers.length)]!;
        const side = next(3) === 0 ? 'sell' : 'buy';
        const kind = next(4);
        const tif = ['day', 'gtc', 'ioc', 'fok'][next(4)]!;
        const quantity = 100 + next(8_000);
        const body: Record<string, unknown> = { ticker: t.ticker, side, quantity, time_in_force: tif, type: kind === 0 ? 'limit' : 'market' };
        if (kind === 0) body.limit_price = (side === 'buy' ? t.last * 1.002 : t.last * 0.998).toFixed(2);
        if (tif === 'ioc' || tif === 'fok') body.type = kind === 0 ? 'limit' : 'market';
        const res = await order(u.api_key, body);
        // Sells of shares not (yet) held are refused at acceptance: that is part of the run.
        if (res.status === 201) placed.push({ token: u.api_key, id: res.body.id });
      }
      await publish();
      if (round === 5) {
        // The engine restarts mid-run: orders resting in parts are reindexed and go on filling.
        await engine.stop();
        engine = createEngine(ctx);
        await engine.start();
        await eventually(async () => (engine.watcher.isLeader() ? true : undefined));
      }
    }
    expect(placed.length).toBeGreaterThan(30);
    // Every order leaves PENDING; then what still rests is canceled.
    for (const p of placed) await until(p.token, p.id, (o) => o.status !== 'PENDING');
    for (const u of users) await api.request('DELETE', '/orders', { token: u.api_key });
    const statuses = new Set<string>();
    for (const p of placed) statuses.add((await until(p.token, p.id, (o) => !['PENDING', 'OPEN', 'PARTIALLY_FILLED'].includes(o.status))).status);
    expect(statuses).toContain('FILLED');
    const { rows } = await sql<{ parts: string }>`SELECT count(*)::text AS parts FROM fills f JOIN orders o ON o.id = f.order_id
                                                  GROUP BY f.order_id HAVING count(*) > 1 LIMIT 1`.execute(ctx.db);
    expect(rows.length, 'some order filled in several parts').toBe(1);
    const report = await runAudit(ctx.db, { pendingMaxAgeMs: 60_000 });
    expect(report.ok, formatAuditReport(report)).toBe(true);
  }, 120_000);
});
