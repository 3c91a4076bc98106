/**
 * A class's rules as the OMS enforces them, through the HTTP API with a real engine: tickers,
 * order types, orders per day, the position limit (also when one member's orders race), the
 * window, and commissions — held with the order, charged as a ledger row of their own on the
 * fill, released on a cancel. The audit runs clean at the end (the context's close).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { adminPrice, apiUser, eventually, startTradingStack, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;
let engine: ReturnType<typeof createEngine>;

beforeAll(async () => {
  ({ ctx, api, engine } = await startTradingStack());
  await adminPrice(api, 'AAPL', '150');
  await adminPrice(api, 'MSFT', '400');
});
afterAll(async () => {
  await engine?.stop();
  await api?.server.close();
  await ctx?.close();
});

interface ClassSpec {
  rules?: Record<string, unknown>;
  startsAt?: Date | null;
  endsAt?: Date | null;
  startingCash?: string;
}

/**
 * A member of a new class, made with SQL (the class routes are tested in classes.test.ts):
 * membership is written before the user's first order, as the class routes create members.
 */
async function member(spec: ClassSpec = {}) {
  const classId = randomUUID();
  await sql`INSERT INTO classes (id, name, starting_cash, starts_at, ends_at, rules)
            VALUES (${classId}, 'Rules class', ${spec.startingCash ?? '10000.00'}, ${spec.startsAt ?? null}, ${spec.endsAt ?? null},
                    ${JSON.stringify(spec.rules ?? {})}::jsonb)`.execute(ctx.db);
  const u = await apiUser(api, spec.startingCash ?? '10000.00');
  await sql`INSERT INTO class_members (user_id, class_id) VALUES (${u.id}, ${classId})`.execute(ctx.db);
  return { ...u, classId };
}

const order = (token: string, body: Record<string, unknown>) => api.request('POST', '/orders', { token, body: { ticker: 'AAPL', side: 'buy', type: 'market', quantity: 1, ...body } });

async function settled(token: string, id: string) {
  return eventually(async () => {
    const o = (await api.request('GET', `/orders/${id}`, { token })).body;
    return ['PENDING'].includes(o.status) ? undefined : o;
  });
}

function expectRule(res: { status: number; body: any }, code: 'CLASS_RULE_VIOLATED' | 'CLASS_CLOSED', words: string) { // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(res.status).toBe(422);
  expect(res.body.error).toMatchObject({ code: 'ORDER_REJECTED', service: 'orders', cause: { code, service: 'classes' } });
  expect(res.body.error.cause.message).toContain(words);
}

describe('rules', () => {
  it('tickers: an order for a ticker outside the list is refused, naming the rule and what is allowed', async () => {
    const m = await member({ rules: { tickers: ['MSFT'] } });
    expectRule(await order(m.api_key, { ticker: 'aapl' }), 'CLASS_RULE_VIOLATED', 'rule tickers: AAPL is not traded in this class; allowed: MSFT');
    expect((await order(m.api_key, { ticker: 'MSFT' })).status).toBe(201);
  });

  it('order_types: a limit order is refused where only market orders are allowed', async () => {
    const m = await member({ rules: { order_types: ['market'] } });
    expectRule(await order(m.api_key, { type: 'limit', limit_price: '100' }), 'CLASS_RULE_VIOLATED', 'rule order_types: limit orders are not allowed');
    expect((await order(m.api_key, {})).status).toBe(201);
  });

  it('max_orders_per_day: the fourth order of the day is refused; another member is not affected', async () => {
    const m = await member({ rules: { max_orders_per_day: 3 } });
    const other = await member({ rules: { max_orders_per_day: 3 } });
    for (let i = 0; i < 3; i++) expect((await order(m.api_key, {})).status).toBe(201);
    expectRule(await order(m.api_key, {}), 'CLASS_RULE_VIOLATED', 'rule max_orders_per_day: 3 orders placed today, the class allows 3 a day');
    expect((await order(other.api_key, {})).status).toBe(201);
  });

  it('max_orders_per_day holds when 20 orders of one member race: exactly 5 are accepted', async () => {
    const m = await member({ rules: { max_orders_per_day: 5 } });
    const results = await Promise.all(Array.from({ length: 20 }, () => order(m.api_key, {})));
    const accepted = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 422);
    expect(accepted).toHaveLength(5);
    expect(refused).toHaveLength(15);
    for (const r of refused) expect(r.body.error.cause.code).toBe('CLASS_RULE_VIOLATED');
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM orders WHERE user_id = ${m.id}`.execute(ctx.db);
    expect(rows[0]!.n).toBe(5);
  });

  it('max_position_pct: a buy that takes the position above 20% of equity is refused, counting held shares and live buys', async () => {
    const m = await member({ rules: { max_position_pct: '20' } });
    // Equity 10000.00: 20% is 2000.00. 10 shares at 150 = 1500.00 fits.
    const first = await order(m.api_key, { quantity: 10 });
    expect(first.status).toBe(201);
    expect((await settled(m.api_key, first.body.id)).status).toBe('FILLED');
    // Held 10 + a resting buy of 2 (limit far below) + 2 more = 14 × 150 = 2100.00 > 2000.00 (equity still 10000.00).
    expect((await order(m.api_key, { quantity: 2, type: 'limit', limit_price: '100', time_in_force: 'gtc' })).status).toBe(201);
    expectRule(await order(m.api_key, { quantity: 2 }), 'CLASS_RULE_VIOLATED', 'rule max_position_pct: the position in AAPL would be worth 2100.00, above 20.00% of equity 10000.00');
    // 1 more: 13 × 150 = 1950.00 fits. Sells are never refused by the position rule.
    expect((await order(m.api_key, { quantity: 1 })).status).toBe(201);
    expect((await order(m.api_key, { side: 'sell', quantity: 1 })).status).toBe(201);
  });

  it('max_position_pct holds when 10 buys of one member race: exactly the 4 that fit are accepted', async () => {
    const m = await member({ rules: { max_position_pct: '20' } });
    // Resting limits (below the market: no fill moves equity), 1.1 × 400 = 440.00 each at the
    // quote: 4 make 1760.00, a fifth would make 2200.00 > 20% of 10000.00.
    const raced = await Promise.all(
      Array.from({ length: 10 }, () => order(m.api_key, { ticker: 'MSFT', quantity: '1.1', type: 'limit', limit_price: '300', time_in_force: 'gtc' })),
    );
    expect(raced.filter((r) => r.status === 201)).toHaveLength(4);
    for (const r of raced.filter((x) => x.status !== 201)) expect(r.body.error.cause.message).toContain('rule max_position_pct');
  });

  it('replace: a replacement is checked like a new order (the old buy does not count twice)', async () => {
    const m = await member({ rules: { max_position_pct: '20' } });
    const placed = await order(m.api_key, { quantity: 10, type: 'limit', limit_price: '100', time_in_force: 'gtc' });
    expect(placed.status).toBe(201);
    await eventually(async () => ((await api.request('GET', `/orders/${placed.body.id}`, { token: m.api_key })).body.status === 'OPEN' ? true : undefined));
    // 13 × 150 = 1950.00 fits (the 10 being replaced are not counted); 14 × 150 = 2100.00 does not.
    const tooBig = await api.request('PATCH', `/orders/${placed.body.id}`, { token: m.api_key, body: { quantity: 14 } });
    expectRule(tooBig, 'CLASS_RULE_VIOLATED', 'rule max_position_pct');
    const fits = await api.request('PATCH', `/orders/${placed.body.id}`, { token: m.api_key, body: { quantity: 13 } });
    expect(fits.status).toBe(200);
  });
});

describe('the window', () => {
  it('before starts_at and from ends_at on, orders are refused with CLASS_CLOSED', async () => {
    const later = await member({ startsAt: new Date(Date.now() + 3_600_000) });
    expectRule(await order(later.api_key, {}), 'CLASS_CLOSED', 'the class has not started');
    const over = await member({ startsAt: new Date(Date.now() - 7_200_000), endsAt: new Date(Date.now() - 3_600_000) });
    expectRule(await order(over.api_key, {}), 'CLASS_CLOSED', 'the class has ended');
    const open = await member({ startsAt: new Date(Date.now() - 3_600_000), endsAt: new Date(Date.now() + 3_600_000) });
    expect((await order(open.api_key, {})).status).toBe(201);
  });
});

describe('commissions', () => {
  it('a buy holds its cost and the commission, and the fill charges the commission as a ledger row of its own', async () => {
    const m = await member({ rules: { commission_per_order: '4.95' } });
    const placed = await order(m.api_key, { quantity: 10 });
    expect(placed.status).toBe(201);
    // 10 × 150 × 1.05 = 1575.00, plus 4.95.
    expect(placed.body).toMatchObject({ reserved_amount: '1579.95', commission: '4.95' });
    expect((await settled(m.api_key, placed.body.id)).status).toBe('FILLED');
    const account = (await api.request('GET', `/users/${m.id}/account`, { token: m.api_key })).body;
    expect(account).toMatchObject({ cash_balance: '8495.05', available_cash: '8495.05', reserved_cash: '0.00' });
    const activities = (await api.request('GET', `/users/${m.id}/activities`, { token: m.api_key })).body.activities;
    expect(activities.slice(0, 2).map((a: { kind: string; amount: string; order_id: string }) => [a.kind, a.amount, a.order_id])).toEqual([
      ['commission', '-4.95', placed.body.id],
      ['buy', '-1500.00', placed.body.id],
    ]);
  });

  it('a sell holds the commission in cash, is charged on the fill, and a canceled sell releases the hold', async () => {
    const m = await member({ rules: { commission_per_order: '1.00' } });
    const buy = await order(m.api_key, { quantity: 2 });
    expect((await settled(m.api_key, buy.body.id)).status).toBe('FILLED');
    // After the buy: 10000.00 - 300.00 - 1.00 = 9699.00.
    const resting = await order(m.api_key, { side: 'sell', quantity: 1, type: 'limit', limit_price: '1000', time_in_force: 'gtc' });
    expect(resting.status).toBe(201);
    expect(resting.body).toMatchObject({ reserved_amount: '1.00', commission: '1.00' });
    expect((await api.request('GET', `/users/${m.id}/account`, { token: m.api_key })).body).toMatchObject({ cash_balance: '9699.00', available_cash: '9698.00' });
    expect((await api.request('DELETE', `/orders/${resting.body.id}`, { token: m.api_key })).status).toBe(200);
    expect((await api.request('GET', `/users/${m.id}/account`, { token: m.api_key })).body).toMatchObject({ available_cash: '9699.00' });
    const sell = await order(m.api_key, { side: 'sell', quantity: 2 });
    expect((await settled(m.api_key, sell.body.id)).status).toBe('FILLED');
    // + 300.00 - 1.00.
    expect((await api.request('GET', `/users/${m.id}/account`, { token: m.api_key })).body).toMatchObject({ cash_balance: '9998.00', available_cash: '9998.00' });
  });

  it('a limit buy holds its limit cost plus the commission, and its fill charges both exactly', async () => {
    const m = await member({ rules: { commission_per_order: '10.00' }, startingCash: '2000.00' });
    const placed = await order(m.api_key, { ticker: 'MSFT', quantity: 1, type: 'limit', limit_price: '390', time_in_force: 'gtc' });
    expect(placed.body).toMatchObject({ reserved_amount: '400.00', commission: '10.00' });
    await adminPrice(api, 'MSFT', '390');
    const done = await eventually(async () => {
      const o = (await api.request('GET', `/orders/${placed.body.id}`, { token: m.api_key })).body;
      return o.status === 'FILLED' ? o : undefined;
    });
    expect(done.fill_price).toBe('390.0000');
    expect((await api.request('GET', `/users/${m.id}/account`, { token: m.api_key })).body).toMatchObject({ cash_balance: '1600.00', available_cash: '1600.00' });
    await adminPrice(api, 'MSFT', '400');
  });
});
