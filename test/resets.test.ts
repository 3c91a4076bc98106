/**
 * Account resets through the HTTP API with a real engine: one transaction cancels every live
 * order, clears the holdings, sets the cash, writes the ledger row, the reset record, the
 * history point and the events; the API keys keep working; and the audit's invariants hold
 * across any number of resets, also while the account trades concurrently.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { runAudit, formatAuditReport } from '../src/services/audit/audit.service.js';
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

const order = (token: string, body: Record<string, unknown>) =>
  api.request('POST', '/orders', { token, body: { ticker: 'AAPL', side: 'buy', type: 'market', quantity: 1, ...body } });

async function filled(token: string, id: string) {
  return eventually(async () => {
    const o = (await api.request('GET', `/orders/${id}`, { token })).body;
    return o.status === 'FILLED' ? o : undefined;
  });
}

const account = async (u: { id: string; api_key: string }) => (await api.request('GET', `/users/${u.id}/account`, { token: u.api_key })).body;

async function auditClean() {
  const report = await runAudit(ctx.db, { pendingMaxAgeMs: 60_000 });
  expect(report.ok, formatAuditReport(report)).toBe(true);
}

describe('POST /users/{id}/reset', () => {
  it('cancels open orders, clears holdings and restores the initial cash; the same key keeps working', async () => {
    const u = await apiUser(api, '10000.00');
    const buy = await order(u.api_key, { quantity: 10 });
    await filled(u.api_key, buy.body.id);
    const resting = await order(u.api_key, { quantity: 2, type: 'limit', limit_price: '100', time_in_force: 'gtc' });
    const restingSell = await order(u.api_key, { side: 'sell', quantity: 4, type: 'limit', limit_price: '999', time_in_force: 'gtc' });
    expect([resting.status, restingSell.status]).toEqual([201, 201]);
    await eventually(async () => ((await api.request('GET', `/orders/${resting.body.id}`, { token: u.api_key })).body.status === 'OPEN' ? true : undefined));

    const res = await api.request('POST', `/users/${u.id}/reset`, { token: u.api_key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      user_id: u.id,
      cash_balance: '10000.00',
      available_cash: '10000.00',
      reserved_cash: '0.00',
      equity: '10000.00',
      reset: { cash_before: '8500.00', orders_canceled: 2, positions_removed: [{ ticker: 'AAPL', quantity: '10' }] },
    });
    // Same key: the account reads as reset, the orders as canceled for the reset.
    expect(await account(u)).toMatchObject({ cash_balance: '10000.00', available_cash: '10000.00', positions_value: '0.00' });
    expect((await api.request('GET', `/users/${u.id}/portfolio`, { token: u.api_key })).body.positions).toEqual([]);
    for (const id of [resting.body.id, restingSell.body.id]) {
      expect((await api.request('GET', `/orders/${id}`, { token: u.api_key })).body).toMatchObject({ status: 'CANCELED', cancel_reason: 'ACCOUNT_RESET' });
    }
    // The ledger: a 'reset' row of the difference; the activities still sum to the balance.
    const activities = (await api.request('GET', `/users/${u.id}/activities`, { token: u.api_key })).body.activities;
    expect(activities[0]).toMatchObject({ kind: 'reset', amount: '1500.00', balance_after: '10000.00' });
    const total = activities.reduce((s: bigint, a: { amount: string }) => s + BigInt(a.amount.replace('.', '')), 0n);
    expect(total).toBe(1_000_000n);
    // The events: the two cancels, then account.reset, in seq order.
    const events = (await api.request('GET', `/users/${u.id}/events?after_seq=0&limit=1000`, { token: u.api_key })).body.events;
    const tail = events.slice(-3).map((e: { type: string }) => e.type);
    expect(tail).toEqual(['order.canceled', 'order.canceled', 'account.reset']);
    expect(events.at(-1).data).toMatchObject({ cash_balance: '10000.00', reset: { orders_canceled: 2 } });
    // History marks it.
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM portfolio_history WHERE user_id = ${u.id} AND kind = 'reset'`.execute(ctx.db);
    expect(rows[0]!.n).toBe(1);
    // And trading goes on with the same key.
    expect((await order(u.api_key, { quantity: 1 })).status).toBe(201);
    await auditClean();
  });

  it('the admin may set another cash; a user may not reset someone else; an unknown user is 404', async () => {
    const u = await apiUser(api, '500.00');
    const other = await apiUser(api, '500.00');
    const byAdmin = await api.request('POST', `/users/${u.id}/reset`, { body: { cash: '100000.00' } });
    expect(byAdmin.status, JSON.stringify(byAdmin.body)).toBe(200);
    expect(byAdmin.body.cash_balance).toBe('100000.00');
    expect((await api.request('POST', `/users/${u.id}/reset`, { token: other.api_key })).status).toBe(403);
    expect((await api.request('POST', `/users/${randomUUID()}/reset`, {})).status).toBe(404);
    const bad = await api.request('POST', `/users/${u.id}/reset`, { body: { cash: '-1' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    // A user resets itself to any cash outside a class.
    expect((await api.request('POST', `/users/${u.id}/reset`, { token: u.api_key, body: { cash: '250.00' } })).body.cash_balance).toBe('250.00');
    await auditClean();
  });

  it("a class member resets to the class's starting cash, and may not choose its own", async () => {
    const classId = randomUUID();
    await sql`INSERT INTO classes (id, name, starting_cash) VALUES (${classId}, 'Reset class', '25000.00')`.execute(ctx.db);
    const m = await apiUser(api, '25000.00');
    await sql`INSERT INTO class_members (user_id, class_id) VALUES (${m.id}, ${classId})`.execute(ctx.db);
    await api.request('POST', `/users/${m.id}/deposits`, { body: { amount: '1000.00' } });
    const self = await api.request('POST', `/users/${m.id}/reset`, { token: m.api_key });
    expect(self.body.cash_balance).toBe('25000.00');
    const chosen = await api.request('POST', `/users/${m.id}/reset`, { token: m.api_key, body: { cash: '1000000.00' } });
    expect(chosen.status).toBe(403);
    await auditClean();
  });

  it('holds the invariants across many resets while the account trades concurrently', async () => {
    const u = await apiUser(api, '50000.00');
    let stop = false;
    const statuses = new Map<number, number>();
    // A trader: market buys and sells, and resting limits, as fast as the API answers.
    const trader = (async () => {
      // A failed request (the server gone after a failed assertion) ends the loop too.
      for (let i = 0; !stop && i < 2_000; i++) {
        const kind = i % 4;
        const body =
          kind === 0 ? { quantity: 3 } : kind === 1 ? { side: 'sell', quantity: 1 } : kind === 2 ? { ticker: 'MSFT', quantity: 1, type: 'limit', limit_price: '300', time_in_force: 'gtc' } : { ticker: 'MSFT', quantity: '0.5' };
        const r = await order(u.api_key, body).catch(() => ({ status: -1 }));
        if (r.status === -1) break;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    })();
    const resets: number[] = [];
    for (let i = 0; i < 15; i++) {
      // Let some trading happen between resets: wait for the account to hold something again.
      await eventually(async () => ((await account(u)).positions_value !== '0.00' || (await account(u)).reserved_cash !== '0.00' ? true : undefined));
      const r = await api.request('POST', `/users/${u.id}/reset`, { token: u.api_key });
      resets.push(r.status);
      expect(r.body.cash_balance, JSON.stringify(r.body)).toBe('50000.00');
    }
    stop = true;
    await trader;
    expect(resets.every((s) => s === 200)).toBe(true);
    // Orders that are refused (a sell with no shares left after a reset) are 422; nothing else fails.
    expect([...statuses.keys()].filter((s) => s !== 201 && s !== 422)).toEqual([]);
    expect(statuses.get(201)).toBeGreaterThan(15);
    // Every order ends; then the account is exactly what its ledger, fills and resets say.
    await eventually(async () => {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM orders WHERE user_id = ${u.id} AND status = 'PENDING'`.execute(ctx.db);
      return rows[0]!.n === 0 ? true : undefined;
    });
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM account_resets WHERE user_id = ${u.id}`.execute(ctx.db);
    expect(rows[0]!.n).toBe(15);
    await auditClean();
  });
});
