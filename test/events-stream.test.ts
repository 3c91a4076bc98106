/**
 * The live stream (`GET /ws`) end to end on the real server: resuming with the last seq after
 * a disconnect, a whole history followed by an order's events, events written during a
 * replay, the bus losing messages (the sweep), and the authentication and subscription rules.
 * Tests that need shortened timeouts or small limits run a stream-only server with those
 * options beside the API server (test/events-stream-client.ts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import type { EventBus } from '../src/services/events/event-log.js';
import { ADMIN_TOKEN, createTestContext, eventually, startTestServer, type TestContext, type TestServer } from './harness.js';
import { startStreamServer, StreamClient, type StreamServer } from './events-stream-client.js';

let ctx: TestContext;
let api: TestServer;
let engine: ReturnType<typeof createEngine>;
const clients: StreamClient[] = [];
const servers: StreamServer[] = [];

beforeAll(async () => {
  ctx = await createTestContext({ ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '3600000', ENGINE_RESTING_LEASE_TTL_MS: '1000' });
  api = await startTestServer(ctx);
  engine = createEngine(ctx);
  await engine.start();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await engine?.stop();
  await api?.server.close();
  await ctx?.close();
});

async function connect(url: string, options: Parameters<typeof StreamClient.connect>[1] = {}) {
  const client = await StreamClient.connect(url, options);
  clients.push(client);
  return client;
}

async function subscribed(url: string, token: string, subscription: Record<string, unknown>) {
  const client = await StreamClient.subscribed(url, token, subscription);
  clients.push(client);
  return client;
}

async function streamServer(...args: Parameters<typeof startStreamServer> extends [unknown, ...infer Rest] ? Rest : never) {
  const s = await startStreamServer(ctx, ...args);
  servers.push(s);
  return s;
}

let seq = 0;
async function user(cash = '100000.00') {
  const res = await api.request('POST', '/users', { body: { name: 'S', email: `stream${++seq}-${Date.now()}@example.com`, initial_cash: cash } });
  expect(res.status).toBe(201);
  return res.body as { id: string; api_key: string };
}

async function deposit(userId: string, amount = '1.00') {
  const res = await api.request('POST', `/users/${userId}/deposits`, { body: { amount } });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

async function lastSeq(userId: string) {
  return ctx.events.lastSeq(userId);
}

/** Every stored event of the user as GET /users/{id}/events lists them, oldest first. */
async function history(userId: string) {
  const out: { seq: number; type: string; data: unknown }[] = [];
  for (let after = 0; ; ) {
    const res = await api.request('GET', `/users/${userId}/events?after_seq=${after}&limit=1000`);
    expect(res.status).toBe(200);
    out.push(...res.body.events);
    if (res.body.next_after_seq === after) return out;
    after = res.body.next_after_seq;
  }
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe('resuming', () => {
  it('after a disconnect, a reconnect with the last seq gets exactly the missed events, in order, then live ones', async () => {
    const u = await user();
    const c1 = await subscribed(api.url, u.api_key, { events: true });
    for (let i = 0; i < 3; i++) await deposit(u.id, `${i + 1}.00`);
    const base = (await lastSeq(u.id)) - 3;
    expect(await c1.untilSeq(base + 3)).toEqual(range(base + 1, base + 3));
    expect(c1.events().map((e) => e.type)).toEqual(['cash.deposit', 'cash.deposit', 'cash.deposit']);
    expect(c1.events()[0]).toMatchObject({ channel: 'events', user_id: u.id, data: expect.any(Object), at: expect.stringMatching(/Z$/) });
    await c1.close();

    for (let i = 0; i < 4; i++) await deposit(u.id);
    const c2 = await subscribed(api.url, u.api_key, { events: true, since_seq: c1.lastSeq() });
    expect(await c2.untilSeq(base + 7)).toEqual(range(base + 4, base + 7));
    await deposit(u.id);
    expect(await c2.untilSeq(base + 8)).toEqual(range(base + 4, base + 8));
    // The events on the wire are the stored ones, field for field.
    const stored = await history(u.id);
    expect(c2.events().map(({ channel, ...rest }) => (expect(channel).toBe('events'), rest))).toEqual(stored.slice(base + 3));
  });

  it('answers subscribed with the last seq and where the events follow from', async () => {
    const u = await user();
    await deposit(u.id);
    const last = await lastSeq(u.id);
    const c = await connect(api.url, { token: u.api_key });
    const reply = await c.subscribe({ events: true });
    expect(reply).toMatchObject({ type: 'subscribed', events: true, user_id: u.id, last_seq: last, from_seq: last, tickers: [] });
    const replayed = await c.subscribe({ events: true, since_seq: 0 });
    expect(replayed).toMatchObject({ last_seq: last, from_seq: 0 });
    expect(await c.untilSeq(last)).toEqual(range(1, last));
  });

  it('a subscribe again for the same user without since_seq goes on without a gap or a repeat', async () => {
    const u = await user();
    const c = await subscribed(api.url, u.api_key, { events: true });
    const base = await lastSeq(u.id);
    await deposit(u.id);
    await c.untilSeq(base + 1);
    await c.subscribe({ events: true, tickers: ['AAPL'] });
    await deposit(u.id);
    expect(await c.untilSeq(base + 2)).toEqual([base + 1, base + 2]);
  });

  it('refuses a since_seq beyond the last event (EVENTS_SEQ_AHEAD) and keeps the previous subscription', async () => {
    const u = await user();
    const c = await subscribed(api.url, u.api_key, { events: true });
    const base = await lastSeq(u.id);
    c.send({ action: 'subscribe', id: 'ahead', events: true, since_seq: base + 100 });
    const refusal = await c.waitFor((m) => m.id === 'ahead');
    expect(refusal).toMatchObject({ type: 'error', error: { code: 'EVENTS_SEQ_AHEAD', service: 'events', details: { last_seq: base } } });
    await deposit(u.id);
    expect(await c.untilSeq(base + 1)).toEqual([base + 1]);
  });
});

describe('a whole history, then an order', () => {
  it('since_seq 0 replays every stored event, then a buy brings order.new and order.fill', async () => {
    const u = await user('50000.00');
    for (let i = 0; i < 5; i++) await deposit(u.id);
    const stored = await history(u.id);
    const c = await subscribed(api.url, u.api_key, { events: true, since_seq: 0 });
    expect(await c.untilSeq(stored.length)).toEqual(range(1, stored.length));

    const price = await api.request('PUT', '/admin/prices/AAPL', { body: { price: '150' } });
    expect(price.status).toBe(200);
    const placed = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AAPL', quantity: 2, type: 'market' } });
    expect(placed.status).toBe(201);
    const fill = await c.waitFor((m) => m.channel === 'events' && m.type === 'order.fill');
    const types = c.events().slice(stored.length).map((e) => e.type);
    expect(types).toEqual(['order.new', 'order.fill']);
    expect(c.seqs()).toEqual(range(1, stored.length + 2));
    expect(fill.data).toMatchObject({ id: placed.body.id, status: 'FILLED', ticker: 'AAPL' });
    expect(c.events().at(-2)!.data).toMatchObject({ id: placed.body.id, ticker: 'AAPL' });
  });
});

describe('events written while a replay runs', () => {
  it('come after the replay in seq order, none missing and none twice, across many small pages', async () => {
    const u = await user();
    // Deposits in parallel: a history of about a hundred events.
    await Promise.all(range(1, 100).map(() => deposit(u.id)));
    // Small pages and a tiny hold bound: the replay takes many reads, and live events
    // overflow what a connection holds, so it reads them from the log as well.
    const s = await streamServer({ replayPageSize: 7, heldEventsMax: 3 });
    const c = await subscribed(s.url, u.api_key, { events: true, since_seq: 0 });
    const writing = Promise.all(range(1, 60).map(() => deposit(u.id)));
    await writing;
    const last = await lastSeq(u.id);
    expect(await c.untilSeq(last)).toEqual(range(1, last));
  });

  it('several clients of one user, subscribed at different positions, each get every event once', async () => {
    const u = await user();
    await Promise.all(range(1, 20).map(() => deposit(u.id)));
    const s = await streamServer({ replayPageSize: 5 });
    const positions = [0, 3, 11];
    const cs = await Promise.all(positions.map((since) => subscribed(s.url, u.api_key, { events: true, since_seq: since })));
    await Promise.all(range(1, 20).map(() => deposit(u.id)));
    const last = await lastSeq(u.id);
    for (const [i, c] of cs.entries()) expect(await c.untilSeq(last)).toEqual(range(positions[i]! + 1, last));
  });
});

describe('a bus that loses messages', () => {
  /** The context's bus, but every other message it carries is lost (and some arrive twice). */
  function lossyBus(bus: EventBus): EventBus {
    let n = 0;
    return {
      publish: (events) => bus.publish(events),
      subscribe: (onEvents) =>
        bus.subscribe((events) => {
          n += 1;
          if (n % 2 === 0) return;
          onEvents(events);
          if (n % 3 === 0) onEvents(events);
        }),
    };
  }

  it('still delivers every event, in order, once: the sweep finds what the bus lost', async () => {
    const u = await user();
    const s = await streamServer({ sweepIntervalMs: 50 }, { bus: lossyBus(ctx.infra.eventBus) });
    const c = await subscribed(s.url, u.api_key, { events: true, since_seq: 0 });
    for (let i = 0; i < 15; i++) await deposit(u.id);
    const last = await lastSeq(u.id);
    expect(await c.untilSeq(last)).toEqual(range(1, last));
    expect(s.stream.stats().sweeps).toBeGreaterThan(0);
  });

  it('delivers events the bus never carried at all', async () => {
    const silent: EventBus = { publish: async () => undefined, subscribe: async () => async () => undefined };
    const u = await user();
    const s = await streamServer({ sweepIntervalMs: 50 }, { bus: silent });
    const c = await subscribed(s.url, u.api_key, { events: true });
    const base = await lastSeq(u.id);
    await deposit(u.id);
    await deposit(u.id);
    expect(await c.untilSeq(base + 2)).toEqual([base + 1, base + 2]);
  });
});

describe('authentication', () => {
  it('takes the Authorization header of the upgrade', async () => {
    const u = await user();
    const c = await connect(api.url, { token: u.api_key });
    const reply = await c.subscribe({ events: true });
    expect(reply.user_id).toBe(u.id);
  });

  it('takes an auth message and answers authenticated', async () => {
    const u = await user();
    const c = await connect(api.url);
    c.send({ action: 'auth', token: u.api_key, id: 1 });
    expect(await c.waitFor((m) => m.id === 1)).toEqual({ type: 'authenticated', id: 1, user_id: u.id });
    c.send({ action: 'auth', token: ADMIN_TOKEN, id: 'admin' });
    const admin = await connect(api.url);
    admin.send({ action: 'auth', token: ADMIN_TOKEN, id: 'a' });
    expect(await admin.waitFor((m) => m.id === 'a')).toEqual({ type: 'authenticated', id: 'a', admin: true });
    // A second auth on an authenticated connection is refused; the connection stays.
    expect(await c.waitFor((m) => m.id === 'admin')).toMatchObject({ type: 'error', error: { code: 'VALIDATION_FAILED' } });
    expect((await c.subscribe({ events: true })).user_id).toBe(u.id);
  });

  it('closes with 4003 on a bad token, by header or by message', async () => {
    const byHeader = await connect(api.url, { token: 'ptk_nope_nope' });
    expect((await byHeader.waitClosed()).code).toBe(4003);
    const malformed = await connect(api.url, { authorization: 'Basic dXNlcjpwYXNz' });
    expect((await malformed.waitClosed()).code).toBe(4003);
    const byMessage = await connect(api.url);
    byMessage.send({ action: 'auth', token: 'not-a-key' });
    expect((await byMessage.waitClosed()).code).toBe(4003);
  });

  it('closes with 4001 when no authentication comes within the timeout', async () => {
    const s = await streamServer({ authTimeoutMs: 150 });
    const c = await connect(s.url);
    c.send({ action: 'ping', id: 'p' });
    expect(await c.waitFor((m) => m.id === 'p')).toEqual({ type: 'pong', id: 'p' });
    c.send({ action: 'subscribe', id: 'early', events: true });
    expect(await c.waitFor((m) => m.id === 'early')).toMatchObject({ type: 'error', error: { code: 'UNAUTHENTICATED' } });
    expect(await c.waitClosed()).toEqual({ code: 4001, reason: 'authentication timed out' });
  });

  it('a connection that authenticated in time is not closed by the timeout', async () => {
    const u = await user();
    const s = await streamServer({ authTimeoutMs: 100 });
    const c = await connect(s.url);
    c.send({ action: 'auth', token: u.api_key, id: 1 });
    await c.waitFor((m) => m.type === 'authenticated');
    await c.subscribe({ events: true });
    await deposit(u.id);
    await c.waitFor((m) => m.channel === 'events');
    expect(c.closed).toBeUndefined();
  });
});

describe('authorization', () => {
  it("a user's key follows its own events only: another user_id is FORBIDDEN and the connection stays", async () => {
    const [a, b] = [await user(), await user()];
    const c = await connect(api.url, { token: a.api_key });
    c.send({ action: 'subscribe', id: 'x', events: true, user_id: b.id });
    expect(await c.waitFor((m) => m.id === 'x')).toMatchObject({ type: 'error', error: { code: 'FORBIDDEN', service: 'events' } });
    const own = await c.subscribe({ events: true, user_id: a.id.toUpperCase() });
    expect(own.user_id).toBe(a.id);
    await deposit(b.id);
    await deposit(a.id);
    const e = await c.waitFor((m) => m.channel === 'events');
    expect(e.user_id).toBe(a.id);
    expect(c.events().every((m) => m.user_id === a.id)).toBe(true);
  });

  it('the admin follows any user it names, must name one for events, and an unknown one is USER_NOT_FOUND', async () => {
    const u = await user();
    const c = await connect(api.url, { token: ADMIN_TOKEN });
    c.send({ action: 'subscribe', id: 'none', events: true });
    expect(await c.waitFor((m) => m.id === 'none')).toMatchObject({ error: { code: 'VALIDATION_FAILED', details: { field: 'user_id' } } });
    c.send({ action: 'subscribe', id: 'ghost', events: true, user_id: '00000000-0000-7000-8000-000000000000' });
    expect(await c.waitFor((m) => m.id === 'ghost')).toMatchObject({ error: { code: 'USER_NOT_FOUND' } });
    await c.subscribe({ events: true, user_id: u.id, since_seq: 0 });
    await deposit(u.id);
    const last = await lastSeq(u.id);
    expect(await c.untilSeq(last)).toEqual(range(1, last));
    // Prices need no user.
    expect(await c.subscribe({ tickers: ['MSFT'] })).toMatchObject({ events: false, tickers: ['MSFT'] });
  });
});

describe('prices', () => {
  it('sends the prices of the subscribed tickers only, as decimal strings with an ISO as_of', async () => {
    const u = await user();
    const c = await subscribed(api.url, u.api_key, { tickers: ['aapl', ' Msft '] });
    expect(c.messages.find((m) => m.type === 'subscribed').tickers).toEqual(['AAPL', 'MSFT']);
    const from = c.messages.length;
    for (const [ticker, price] of [['GOOGL', '99'], ['AAPL', '151.25'], ['NVDA', '10'], ['MSFT', '300.5']] as const) {
      expect((await api.request('PUT', `/admin/prices/${ticker}`, { body: { price } })).status).toBe(200);
    }
    const msft = await c.waitFor((m) => m.channel === 'prices' && m.ticker === 'MSFT' && m.price === '300.5000', { from });
    const aapl = await c.waitFor((m) => m.channel === 'prices' && m.ticker === 'AAPL' && m.price === '151.2500', { from });
    // The touch the feed runner gave it: AAPL is a large cap, 2 bps wide.
    expect(aapl).toEqual({
      channel: 'prices',
      ticker: 'AAPL',
      price: '151.2500',
      bid: '151.2348',
      ask: '151.2651',
      bid_size: expect.stringMatching(/^\d+$/),
      ask_size: expect.stringMatching(/^\d+$/),
      as_of: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
    });
    expect(new Date(msft.as_of).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(c.messages.filter((m) => m.channel === 'prices').map((m) => m.ticker).every((t) => t === 'AAPL' || t === 'MSFT')).toBe(true);
  });

  it('sends the latest stored price of each ticker at once on subscribing', async () => {
    expect((await api.request('PUT', '/admin/prices/AMZN', { body: { price: '123.45' } })).status).toBe(200);
    const u = await user();
    const c = await subscribed(api.url, u.api_key, { tickers: ['AMZN'] });
    expect(await c.waitFor((m) => m.channel === 'prices')).toMatchObject({ ticker: 'AMZN', price: '123.4500' });
  });

  it('an unknown ticker is UNKNOWN_TICKER, and too many tickers VALIDATION_FAILED', async () => {
    const u = await user();
    const c = await connect(api.url, { token: u.api_key });
    c.send({ action: 'subscribe', id: 1, tickers: ['AAPL', 'NOPE'] });
    expect(await c.waitFor((m) => m.id === 1)).toMatchObject({ type: 'error', error: { code: 'UNKNOWN_TICKER', details: { ticker: 'NOPE' } } });
    c.send({ action: 'subscribe', id: 2, tickers: range(1, 101).map(() => 'AAPL') });
    expect(await c.waitFor((m) => m.id === 2)).toMatchObject({ type: 'error', error: { code: 'VALIDATION_FAILED' } });
  });

  it('unsubscribe stops events and prices', async () => {
    const u = await user();
    const c = await subscribed(api.url, u.api_key, { events: true, tickers: ['AAPL'] });
    c.send({ action: 'unsubscribe', id: 'u' });
    await c.waitFor((m) => m.id === 'u' && m.type === 'unsubscribed');
    const from = c.messages.length;
    await deposit(u.id);
    expect((await api.request('PUT', '/admin/prices/AAPL', { body: { price: '149' } })).status).toBe(200);
    // A second client sees both arrive; the first, after it, has nothing new.
    const probe = await subscribed(api.url, u.api_key, { events: true, since_seq: 0, tickers: ['AAPL'] });
    await probe.waitFor((m) => m.channel === 'prices' && m.price === '149.0000');
    await probe.untilSeq(await lastSeq(u.id));
    c.send({ action: 'ping', id: 'after' });
    await c.waitFor((m) => m.id === 'after');
    expect(c.messages.slice(from).filter((m) => m.channel)).toEqual([]);
  });
});

describe('bad messages', () => {
  it('answer an error in the HTTP error envelope and leave the connection open', async () => {
    const u = await user();
    const c = await connect(api.url, { token: u.api_key });
    const cases: [unknown, string][] = [
      ['not json', 'VALIDATION_FAILED'],
      ['[1,2]', 'VALIDATION_FAILED'],
      [{ action: 'dance', id: 'a' }, 'VALIDATION_FAILED'],
      [{ action: 'subscribe', id: 'b', events: 'yes' }, 'VALIDATION_FAILED'],
      [{ action: 'subscribe', id: 'c', events: true, since_seq: -1 }, 'VALIDATION_FAILED'],
      [{ action: 'subscribe', id: 'd', events: true, since_seq: 1.5 }, 'VALIDATION_FAILED'],
      [{ action: 'subscribe', id: 'e', since_seq: 3 }, 'VALIDATION_FAILED'],
      [{ action: 'subscribe', id: 'f', user_id: 'nope' }, 'VALIDATION_FAILED'],
      [{ action: 'subscribe', id: 'g', tickers: 'AAPL' }, 'VALIDATION_FAILED'],
      [{ action: 'subscribe', id: 'h', extra: 1 }, 'VALIDATION_FAILED'],
    ];
    for (const [message] of cases) c.send(message);
    await eventually(async () => (c.messages.filter((m) => m.type === 'error').length >= cases.length ? true : undefined));
    const errors = c.messages.filter((m) => m.type === 'error');
    expect(errors.map((e) => e.error.code)).toEqual(cases.map(([, code]) => code));
    for (const e of errors) expect(Object.keys(e.error).sort()).toEqual(expect.arrayContaining(['code', 'message', 'service']));
    // Replies carry the id of the message they answer, when it had a usable one.
    expect(errors.slice(2).map((e) => e.id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await c.waitFor((m) => m.type === 'error' && /binary/.test(m.error.message))).toBeDefined();
    expect((await c.subscribe({ events: true })).type).toBe('subscribed');
  });
});

describe('limits', () => {
  it('closes a connection that sends a message above the size limit (1009)', async () => {
    const s = await streamServer({ messageBytesMax: 1024 });
    const c = await connect(s.url);
    c.send({ action: 'auth', token: 'x'.repeat(2_000) });
    expect((await c.waitClosed()).code).toBe(1009);
  });

  it('refuses messages past the rate limit with RATE_LIMITED, once a second, and reads again after', async () => {
    const s = await streamServer({ clientMessagesPerSecondMax: 5 });
    const c = await connect(s.url);
    for (let i = 0; i < 12; i++) c.send({ action: 'ping', id: i });
    await c.waitFor((m) => m.type === 'error' && m.error.code === 'RATE_LIMITED');
    await c.waitFor((m) => m.id === 4);
    expect(c.messages.filter((m) => m.type === 'error')).toHaveLength(1);
    expect(c.messages.filter((m) => m.type === 'pong').length).toBeLessThanOrEqual(5);
    await eventually(async () => {
      c.send({ action: 'ping', id: 'later' });
      return c.messages.some((m) => m.id === 'later') ? true : undefined;
    }, 5_000, 300);
  });

  it('refuses an upgrade beyond the connection limit with 503, and takes one again when a connection goes', async () => {
    const s = await streamServer({ connectionsMax: 2 });
    const first = await connect(s.url);
    await connect(s.url);
    await expect(StreamClient.connect(s.url)).rejects.toThrow(/503/);
    await first.close();
    await eventually(async () => (s.stream.stats().connections === 1 ? true : undefined));
    await connect(s.url);
  });

  it('a plain GET /ws without an upgrade is refused in the error envelope', async () => {
    const res = await api.request('GET', '/ws');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});

describe('slow consumers', () => {
  it('cuts a client that stops reading with 4008; it resumes with since_seq and gets everything', async () => {
    const u = await user();
    // A Unix socket and a 32 KiB limit: the server's own queue grows after ~100 KiB unread.
    const s = await streamServer({ sendBufferBytesMax: 32 * 1024 }, { unixSocket: true });
    const c = await subscribed(s.url, u.api_key, { events: true });
    const base = await lastSeq(u.id);
    c.pause();
    // One deposit at a time, so the bus brings them in order and each is sent live at once.
    await eventually(
      async () => {
        for (let i = 0; i < 10; i++) await deposit(u.id);
        return s.stream.stats().closedBy.slow_consumer === 1 ? true : undefined;
      },
      25_000,
      0,
    );
    c.resume();
    expect((await c.waitClosed()).code).toBe(4008);
    const got = c.seqs();
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(range(base + 1, c.lastSeq()));
    const last = await lastSeq(u.id);
    expect(c.lastSeq()).toBeLessThan(last);

    const again = await subscribed(s.url, u.api_key, { events: true, since_seq: c.lastSeq() });
    expect(await again.untilSeq(last)).toEqual(range(c.lastSeq() + 1, last));
  });

  it('cuts a client that stops draining while a replay waits for it (4008), and it resumes', async () => {
    const u = await user();
    await Promise.all(range(1, 600).map(() => deposit(u.id)));
    const last = await lastSeq(u.id);
    const s = await streamServer({ sendBufferBytesMax: 32 * 1024, drainWaitMsMax: 300 }, { unixSocket: true });
    const c = await connect(s.url, { token: u.api_key });
    c.pause();
    c.send({ action: 'subscribe', events: true, since_seq: 0 });
    await eventually(async () => (s.stream.stats().closedBy.slow_consumer === 1 ? true : undefined), 10_000);
    c.resume();
    expect((await c.waitClosed()).code).toBe(4008);
    expect(c.seqs()).toEqual(range(1, c.lastSeq()));
    const again = await subscribed(s.url, u.api_key, { events: true, since_seq: c.lastSeq() });
    expect(await again.untilSeq(last)).toEqual(range(c.lastSeq() + 1, last));
  });

  it('paces a replay to a client that reads slowly instead of cutting it', async () => {
    const u = await user();
    await Promise.all(range(1, 400).map(() => deposit(u.id)));
    const last = await lastSeq(u.id);
    const s = await streamServer({ sendBufferBytesMax: 32 * 1024 }, { unixSocket: true });
    const c = await subscribed(s.url, u.api_key, { events: true, since_seq: 0 });
    // Reads in spurts (the history is several times what the kernel and the 32 KiB limit
    // hold): the replay waits whenever the client's queue passes the pause mark.
    for (let i = 0; i < 3; i++) {
      c.pause();
      await new Promise((r) => setTimeout(r, 300));
      c.resume();
    }
    expect(await c.untilSeq(last, 30_000)).toEqual(range(1, last));
    expect(c.closed).toBeUndefined();
    expect(s.stream.stats().closedBy.slow_consumer).toBeUndefined();
  });

  it('gives a slow client the latest price of each ticker, not a backlog', async () => {
    const u = await user();
    await ctx.quotes.setMany([{ ticker: 'TSLA', price: 1_000_000n, asOfMs: Date.now() }]);
    const s = await streamServer({ priceHoldBytes: 1 }, { unixSocket: true });
    const c = await subscribed(s.url, u.api_key, { tickers: ['TSLA'] });
    await c.waitFor((m) => m.channel === 'prices' && m.price === '100.0000');
    c.pause();
    const t0 = Date.now();
    for (let i = 1; i <= 5_000; i++) await ctx.quotes.publish([{ ticker: 'TSLA', price: BigInt(1_000_000 + i), asOfMs: t0 + i }], { feed: 'test', feedId: 'test' });
    c.resume();
    await c.waitFor((m) => m.channel === 'prices' && m.price === '100.5000', { timeoutMs: 20_000 });
    const prices = c.messages.filter((m) => m.channel === 'prices').map((m) => m.price);
    // Far fewer than the 5,000 ticks published (what the kernel took before the server held
    // them back), in order, and the last one the latest.
    expect(prices.length).toBeLessThan(2_500);
    expect(prices).toEqual([...prices].sort());
    expect(prices.at(-1)).toBe('100.5000');
  });
});

describe('liveness', () => {
  it('terminates a connection that does not answer pings, and keeps one that does', async () => {
    const s = await streamServer({ pingIntervalMs: 50 });
    const silent = await connect(s.url, { token: ADMIN_TOKEN, autoPong: false });
    const answering = await connect(s.url, { token: ADMIN_TOKEN });
    expect((await silent.waitClosed()).code).toBe(1006);
    // It outlived several pings.
    await eventually(async () => (s.stream.stats().connections === 1 ? true : undefined));
    answering.send({ action: 'ping', id: 'still' });
    await answering.waitFor((m) => m.id === 'still');
    expect(answering.closed).toBeUndefined();
  });

  it('closes every connection with 1001 when the server shuts down', async () => {
    const s = await startStreamServer(ctx, {});
    const c = await connect(s.url, { token: ADMIN_TOKEN });
    await s.close();
    expect((await c.waitClosed()).code).toBe(1001);
  });
});
