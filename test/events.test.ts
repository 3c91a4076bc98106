/**
 * The event log's write side and its REST endpoint, against a real PostgreSQL with an engine
 * running: each transition's event carries the order exactly as the API shows it (the events
 * rendered in SQL, by the accept and cash statements, included), seqs run 1, 2, 3 ... without a
 * gap under concurrency and aborted statements, events are immutable, and retention removes a
 * prefix and says so.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { EventRetention, EventsService } from '../src/services/events/events.service.js';
import { firstKeptSeq } from '../src/services/events/events.repository.js';
import { LeaseLock } from '../src/infra/lease.js';
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

async function place(token: string, body: Record<string, unknown>) {
  const res = await api.request('POST', '/orders', { token, body: { quantity: 10, ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Record<string, unknown> & { id: string };
}

async function get(token: string, id: string) {
  return (await api.request('GET', `/orders/${id}`, { token })).body;
}

async function until(token: string, id: string, status: string) {
  return eventually(async () => {
    const o = await get(token, id);
    return o.status === status ? o : undefined;
  });
}

interface ApiEvent {
  seq: number;
  type: string;
  at: string;
  user_id: string;
  data: Record<string, unknown> & { id: string };
}

async function events(u: { id: string; api_key: string }, afterSeq = 0): Promise<ApiEvent[]> {
  const res = await api.request('GET', `/users/${u.id}/events?after_seq=${afterSeq}&limit=1000`, { token: u.api_key });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.events;
}

/** The user's events once `count` of them are written. */
async function eventsOnce(u: { id: string; api_key: string }, count: number): Promise<ApiEvent[]> {
  return eventually(async () => {
    const list = await events(u);
    return list.length >= count ? list : undefined;
  });
}

const byOrder = (list: ApiEvent[], id: string) => list.filter((e) => e.data.id === id);

describe('events of each transition', () => {
  it('order.new (rendered in SQL) equals the order the POST answered, for every type and shape of field', async () => {
    const u = await user();
    await price('AAPL', '150');
    // Fractional and whole quantities, every price field, a trailing percent, a client id.
    const placed = [
      await place(u.api_key, { ticker: 'AAPL', type: 'limit', limit_price: '100.5', quantity: '0.5', client_order_id: 'ev-1' }),
      await place(u.api_key, { ticker: 'AAPL', type: 'stop_limit', stop_price: '200', limit_price: '201.25', time_in_force: 'gtc' }),
      await place(u.api_key, { ticker: 'AAPL', type: 'trailing_stop', trail_percent: '2.5', side: 'buy' }),
      await place(u.api_key, { ticker: 'AAPL', type: 'trailing_stop', trail_price: '3', side: 'buy', quantity: '1.000001' }),
    ];
    const list = await eventsOnce(u, 4);
    for (const order of placed) expect(byOrder(list, order.id)[0]).toMatchObject({ type: 'order.new', user_id: u.id, data: order });
    for (const order of placed) await api.request('DELETE', `/orders/${order.id}`, { token: u.api_key });
  });

  it('records a market buy as order.new then order.fill, with the fill and the position it leaves', async () => {
    const u = await user();
    await price('MSFT', '300');
    const buy = await place(u.api_key, { ticker: 'MSFT', type: 'market', quantity: '2' });
    const filled = await until(u.api_key, buy.id, 'FILLED');
    const list = await eventsOnce(u, 2);
    expect(list.map((e) => [e.seq, e.type])).toEqual([
      [1, 'order.new'],
      [2, 'order.fill'],
    ]);
    expect(list[0]!.data).toEqual(buy);
    expect(list[1]!.data).toEqual({ ...filled, fill: {
        price: '300.0000',
        quantity: '2',
        amount: '600.00',
        commission: '0.00',
        model: 'ideal',
        slippage_bps: '0.00',
        reason: expect.stringContaining('last price'),
      },
      position_quantity: '2',
    });
    // `at` is when the event was written: ISO 8601 UTC, and not before the order changed.
    expect(Date.parse(list[1]!.at)).toBeGreaterThanOrEqual(Date.parse(filled.updated_at));
  });

  it('records each fill\'s event as GET shows the order, with the position it leaves: fractional, and none after a sell of all', async () => {
    const u = await user();
    await price('NVDA', '120.5');
    const buy = await place(u.api_key, { ticker: 'NVDA', type: 'market', quantity: '2.5' });
    await until(u.api_key, buy.id, 'FILLED');
    const part = await place(u.api_key, { ticker: 'NVDA', type: 'market', side: 'sell', quantity: '1.25' });
    const partFilled = await until(u.api_key, part.id, 'FILLED');
    const rest = await place(u.api_key, { ticker: 'NVDA', type: 'market', side: 'sell', quantity: '1.25' });
    const restFilled = await until(u.api_key, rest.id, 'FILLED');
    const list = await eventsOnce(u, 6);
    const fillOf = (id: string) => byOrder(list, id).find((e) => e.type === 'order.fill')!;
    // The event's fill is the order's one fill as GET /orders/{id}/fills shows it.
    const fill = async (id: string) => {
      const [f] = (await api.request('GET', `/orders/${id}/fills`, { token: u.api_key })).body.fills;
      return { price: f.price, quantity: f.quantity, amount: f.amount, commission: f.commission, model: f.explanation.model, slippage_bps: f.explanation.slippage_bps, reason: f.explanation.reason };
    };
    expect(fillOf(buy.id).data).toEqual({ ...(await get(u.api_key, buy.id)), fill: await fill(buy.id), position_quantity: '2.5' });
    expect(fillOf(part.id).data).toEqual({ ...partFilled, fill: await fill(part.id), position_quantity: '1.25' });
    expect(fillOf(rest.id).data).toEqual({ ...restFilled, fill: await fill(rest.id), position_quantity: '0' });
    expect(fillOf(part.id).data.fill).toMatchObject({ price: '120.5000', quantity: '1.25' });
    expect(list.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('records resting, replace, cancel, trigger, rejection and expiry with the order as GET shows it then', async () => {
    const u = await user();
    await price('KO', '60');
    // Shares to sell: a filled buy.
    const bought = await place(u.api_key, { ticker: 'KO', type: 'market', quantity: '20' });
    await until(u.api_key, bought.id, 'FILLED');

    const limit = await place(u.api_key, { ticker: 'KO', type: 'limit', limit_price: '50' });
    const resting = await until(u.api_key, limit.id, 'OPEN');
    const patched = await api.request('PATCH', `/orders/${limit.id}`, { token: u.api_key, body: { limit_price: '51' } });
    expect(patched.status).toBe(200);
    const fresh = patched.body as { id: string };
    const replaced = await get(u.api_key, limit.id);
    const freshResting = await until(u.api_key, fresh.id, 'OPEN');
    const canceled = await api.request('DELETE', `/orders/${fresh.id}`, { token: u.api_key });
    expect(canceled.status).toBe(200);

    // A stop_limit sell that triggers at 59 and rests as a limit at 59.50.
    const stopLimit = await place(u.api_key, { ticker: 'KO', type: 'stop_limit', side: 'sell', stop_price: '59.5', limit_price: '59.5' });
    await until(u.api_key, stopLimit.id, 'OPEN');
    await price('KO', '59');
    const triggered = await eventually(async () => {
      const o = await get(u.api_key, stopLimit.id);
      return o.triggered_at !== null ? o : undefined;
    });
    await api.request('DELETE', `/orders/${stopLimit.id}`, { token: u.api_key });

    // A buy stop whose trigger comes at a price its hold cannot pay: rejected at the trigger.
    await price('KO', '60');
    const stop = await place(u.api_key, { ticker: 'KO', type: 'stop', stop_price: '61' });
    await until(u.api_key, stop.id, 'OPEN');
    await price('KO', '100');
    const rejected = await until(u.api_key, stop.id, 'REJECTED');

    // A day order expires at the (forced) close.
    await price('KO', '60');
    const day = await place(u.api_key, { ticker: 'KO', type: 'limit', limit_price: '40' });
    await until(u.api_key, day.id, 'OPEN');
    await api.request('POST', '/admin/market', { body: { state: 'closed' } });
    const expired = await until(u.api_key, day.id, 'EXPIRED');
    await api.request('POST', '/admin/market', { body: { state: 'auto' } });

    const list = await eventsOnce(u, 18);
    const types = (id: string) => byOrder(list, id).map((e) => e.type);
    expect(types(limit.id)).toEqual(['order.new', 'order.open', 'order.replaced']);
    expect(types(fresh.id)).toEqual(['order.new', 'order.open', 'order.canceled']);
    expect(types(stopLimit.id)).toEqual(['order.new', 'order.open', 'order.triggered', 'order.canceled']);
    expect(types(stop.id)).toEqual(['order.new', 'order.open', 'order.rejected']);
    expect(types(day.id)).toEqual(['order.new', 'order.open', 'order.expired']);
    const data = (id: string, type: string) => byOrder(list, id).find((e) => e.type === type)!.data;
    expect(data(limit.id, 'order.open')).toEqual(resting);
    expect(data(limit.id, 'order.replaced')).toEqual(replaced);
    expect(data(fresh.id, 'order.new')).toEqual(fresh);
    expect(data(fresh.id, 'order.open')).toEqual(freshResting);
    expect(data(fresh.id, 'order.canceled')).toEqual(canceled.body);
    expect(data(stopLimit.id, 'order.triggered')).toEqual(triggered);
    expect(data(stop.id, 'order.rejected')).toEqual(rejected);
    expect(data(day.id, 'order.expired')).toEqual(expired);
    // The replace is one transaction: the old order's order.replaced, then the new one's order.new.
    const replacedAt = list.findIndex((e) => e.type === 'order.replaced');
    expect(list[replacedAt + 1]).toMatchObject({ type: 'order.new', data: { id: fresh.id } });
    expect(list.map((e) => e.seq)).toEqual(list.map((_, i) => i + 1));
  });

  it('records deposits and withdrawals (rendered in SQL) as the activity GET /users/{id}/activities shows', async () => {
    const u = await user('100.00');
    expect((await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '25.50' } })).status).toBe(201);
    expect((await api.request('POST', `/users/${u.id}/withdrawals`, { token: u.api_key, body: { amount: '0.01' } })).status).toBe(201);
    // A replayed deposit moved nothing and records nothing.
    const keyed = { headers: { 'idempotency-key': 'dep-ev' }, body: { amount: '1.00' } };
    expect((await api.request('POST', `/users/${u.id}/deposits`, keyed)).status).toBe(201);
    expect((await api.request('POST', `/users/${u.id}/deposits`, keyed)).status).toBe(200);
    const activities = (await api.request('GET', `/users/${u.id}/activities`, { token: u.api_key })).body.activities as Record<string, unknown>[];
    const list = await events(u);
    expect(list.map((e) => [e.seq, e.type, e.data])).toEqual([
      [1, 'cash.deposit', activities[2]],
      [2, 'cash.withdrawal', activities[1]],
      [3, 'cash.deposit', activities[0]],
    ]);
  });
});

describe('numbering', () => {
  it('numbers a user’s events 1, 2, 3 ... without a gap under concurrent batched accepts, fills and deposits', async () => {
    const u = await user('1000000.00');
    await price('NVDA', '100');
    const results = await Promise.all([
      ...Array.from({ length: 60 }, () => api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'NVDA', side: 'buy', type: 'market', quantity: 1 } })),
      ...Array.from({ length: 20 }, () => api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' } })),
    ]);
    expect(results.map((r) => r.status)).toEqual(results.map(() => 201));
    // 60 order.new + 60 order.fill + 20 cash.deposit.
    const list = await eventsOnce(u, 140);
    expect(list).toHaveLength(140);
    expect(list.map((e) => e.seq)).toEqual(list.map((_, i) => i + 1));
    expect(list.filter((e) => e.type === 'order.fill')).toHaveLength(60);
    // Within an order, new comes before fill.
    for (const fill of list.filter((e) => e.type === 'order.fill')) {
      expect(list.find((e) => e.type === 'order.new' && e.data.id === fill.data.id)!.seq).toBeLessThan(fill.seq);
    }
  });

  it('gives an aborted statement’s numbers back: racing requests with one client_order_id leave no hole', async () => {
    const u = await user();
    await price('AMZN', '100');
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AMZN', type: 'limit', limit_price: String(50 + i), quantity: 1, client_order_id: 'same' } }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409).map((r) => r.body.error.code)).toEqual(Array(9).fill('IDEMPOTENCY_KEY_REUSED'));
    const winner = results.find((r) => r.status === 201)!.body as { id: string };
    await until(u.api_key, winner.id, 'OPEN');
    await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' } });
    const list = await eventsOnce(u, 3);
    expect(list.map((e) => [e.seq, e.type])).toEqual([
      [1, 'order.new'],
      [2, 'order.open'],
      [3, 'cash.deposit'],
    ]);
    await api.request('DELETE', `/orders/${winner.id}`, { token: u.api_key });
  });

  it('keeps events immutable', async () => {
    const u = await user();
    await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' } });
    await expect(sql`UPDATE events SET type = 'cash.withdrawal' WHERE user_id = ${u.id}`.execute(ctx.db)).rejects.toThrow(/events are immutable/);
  });
});

describe('GET /users/{id}/events', () => {
  it('pages oldest first with next_after_seq, and answers an empty page at the end', async () => {
    const u = await user();
    for (let i = 0; i < 5; i++) await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' } });
    const seen: number[] = [];
    let after = 0;
    for (let page = 0; page < 10; page++) {
      const res = await api.request('GET', `/users/${u.id}/events?after_seq=${after}&limit=2`, { token: u.api_key });
      expect(res.status).toBe(200);
      if (res.body.events.length === 0) {
        expect(res.body.next_after_seq).toBe(after);
        break;
      }
      seen.push(...res.body.events.map((e: ApiEvent) => e.seq));
      expect(res.body.next_after_seq).toBe(seen[seen.length - 1]);
      after = res.body.next_after_seq;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    // Without after_seq: from the first event.
    expect((await api.request('GET', `/users/${u.id}/events`, { token: u.api_key })).body.events).toHaveLength(5);
  });

  it('refuses bad parameters, another user’s key, unknown users, and a position beyond the last event', async () => {
    const u = await user();
    const other = await user();
    await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' } });
    const status = async (path: string, token: string | null = u.api_key) => {
      const res = await api.request('GET', path, { token });
      return [res.status, res.body?.error?.code];
    };
    expect(await status(`/users/${u.id}/events?limit=1001`)).toEqual([400, 'VALIDATION_FAILED']);
    expect(await status(`/users/${u.id}/events?limit=0`)).toEqual([400, 'VALIDATION_FAILED']);
    expect(await status(`/users/${u.id}/events?after_seq=-1`)).toEqual([400, 'VALIDATION_FAILED']);
    expect(await status(`/users/${u.id}/events?after_seq=1.5`)).toEqual([400, 'VALIDATION_FAILED']);
    expect(await status(`/users/${u.id}/events?since=1`)).toEqual([400, 'VALIDATION_FAILED']);
    expect(await status(`/users/${u.id}/events`, other.api_key)).toEqual([403, 'FORBIDDEN']);
    expect(await status(`/users/${u.id}/events`, null)).toEqual([401, 'UNAUTHENTICATED']);
    expect(await status(`/users/00000000-0000-4000-8000-000000000000/events`, ADMIN_TOKEN)).toEqual([404, 'USER_NOT_FOUND']);
    const ahead = await api.request('GET', `/users/${u.id}/events?after_seq=7`, { token: u.api_key });
    expect(ahead.status).toBe(409);
    expect(ahead.body.error).toMatchObject({ code: 'EVENTS_SEQ_AHEAD', service: 'events', details: { after_seq: 7, last_seq: 1 } });
    // The admin reads anyone's.
    expect((await api.request('GET', `/users/${u.id}/events`)).body.events).toHaveLength(1);
  });
});

describe('retention', () => {
  it('removes the oldest events by age, in batches, and tells a client behind it to resynchronise (410)', async () => {
    const u = await user();
    // Three events written 40 days ago (as the log would hold them), then one now.
    await sql`INSERT INTO event_counters (user_id, last_seq) VALUES (${u.id}, 3)`.execute(ctx.db);
    await sql`
      INSERT INTO events (user_id, seq, type, at, data)
      SELECT ${u.id}, s, 'cash.deposit', now() - interval '40 days', '{}'::json FROM generate_series(1, 3) s`.execute(ctx.db);
    await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' } });

    // The engines' retention pass (one engine's turn per interval) removes them.
    const retention = new EventRetention(ctx.events, new LeaseLock(ctx.infra.leases, ctx.keys.eventsPrunerLock(), 50), 50, ctx.logger);
    retention.start();
    try {
      await eventually(async () => ((await firstKeptSeq(ctx.db, u.id)) === 4 ? true : undefined));
    } finally {
      await retention.stop();
    }
    const gone = await api.request('GET', `/users/${u.id}/events?after_seq=0`, { token: u.api_key });
    expect(gone.status).toBe(410);
    expect(gone.body.error).toMatchObject({ code: 'EVENTS_EXPIRED', details: { after_seq: 0, kept_from_seq: 4, resume_after_seq_min: 3 } });
    expect(gone.body.error.message).toMatch(/REST endpoints/);
    expect((await events(u, 3)).map((e) => [e.seq, e.type])).toEqual([[4, 'cash.deposit']]);
    expect((await events(u, 4))).toEqual([]);

    // Everything removed: the client at the last seq is up to date, one behind it is told.
    const later = new EventsService({ db: ctx.db, retentionDays: 1, logger: ctx.logger, now: () => Date.now() + 2 * 86_400_000 });
    await later.prune();
    expect(await ctx.events.readAfter(u.id, 4, 10)).toEqual([]);
    await expect(ctx.events.readAfter(u.id, 3, 10)).rejects.toMatchObject({ code: 'EVENTS_EXPIRED', details: { kept_from_seq: 5 } });
  });
});
