/**
 * The live stream across processes, on Redis: two api "processes" (two contexts with their own
 * Redis connections and their own servers) on one database and one Redis prefix, a client on
 * each. Both see every event, whichever process wrote it; and when Redis loses what it carries
 * — its pub/sub connections killed, its keys flushed — still no event is missed (the sweep).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeContext, createContext, createEngine, createRedisInfra, type AppContext } from '../src/app.js';
import { createLogger } from '../src/infra/logger.js';
import { createTestContext, eventually, hasRedis, redisOnly, startTestServer, type TestContext, type TestServer } from './harness.js';
import { StreamClient } from './events-stream-client.js';

let ctx: TestContext;
/** Two api processes: a context (own Redis connections, own bus subscription) and a server each. */
const apis: { role: string; ctx: AppContext; server: TestServer }[] = [];
const clients: StreamClient[] = [];

beforeAll(async () => {
  if (!hasRedis()) return;
  ctx = await createTestContext({ ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '3600000', ENGINE_RESTING_LEASE_TTL_MS: '1000' }, { infra: 'redis' });
  // Roles unique to this file: the pub/sub connections killed below are this file's alone.
  const suffix = ctx.dbName.slice(-6);
  for (const role of [`ws-a-${suffix}`, `ws-b-${suffix}`]) {
    const logger = createLogger(ctx.config.logLevel, role);
    const apiCtx = createContext(ctx.config, role, logger, createRedisInfra(ctx.config.redisUrl!, ctx.config.redisPrefix, role, logger));
    apis.push({ role, ctx: apiCtx, server: await startTestServer(apiCtx) });
  }
});
afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const api of apis) {
    await api.server.server.close();
    await closeContext(api.ctx);
  }
  await ctx?.close();
});

const [a, b] = [() => apis[0]!, () => apis[1]!];

async function subscribed(api: { server: TestServer }, token: string, subscription: Record<string, unknown>) {
  const client = await StreamClient.subscribed(api.server.url, token, subscription);
  clients.push(client);
  return client;
}

let seq = 0;
async function user() {
  const res = await a().server.request('POST', '/users', { body: { name: 'R', email: `redis-stream${++seq}-${Date.now()}@example.com`, initial_cash: '100000.00' } });
  expect(res.status).toBe(201);
  return res.body as { id: string; api_key: string };
}

async function deposit(api: { server: TestServer }, userId: string) {
  const res = await api.server.request('POST', `/users/${userId}/deposits`, { body: { amount: '1.00' } });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** Kills this file's pub/sub connections (CLIENT KILL by id: other files share the Redis). */
async function killSubscribers(): Promise<number> {
  const list = (await ctx.redis!.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
  const ids = list
    .split('\n')
    .filter((line) => apis.some((api) => line.includes(` name=papertrade:${api.role}-subscriber `)))
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)![1]!);
  for (const id of ids) await ctx.redis!.call('CLIENT', 'KILL', 'ID', id);
  return ids.length;
}

/** Deletes every key of the deployment's prefix: what a FLUSHDB does to it. */
async function flushPrefix(): Promise<void> {
  const keys = await ctx.redis!.keys(`${ctx.config.redisPrefix}*`);
  if (keys.length > 0) await ctx.redis!.del(...keys);
}

describe('two api processes', () => {
  it('a client on each sees every event of the user, whichever process wrote it', redisOnly, async () => {
    const u = await user();
    const base = await ctx.events.lastSeq(u.id);
    const ca = await subscribed(a(), u.api_key, { events: true });
    const cb = await subscribed(b(), u.api_key, { events: true });
    await Promise.all(range(1, 20).map((i) => deposit(i % 2 === 0 ? a() : b(), u.id)));
    const last = await ctx.events.lastSeq(u.id);
    expect(last).toBe(base + 20);
    expect(await ca.untilSeq(last)).toEqual(range(base + 1, last));
    expect(await cb.untilSeq(last)).toEqual(range(base + 1, last));
  });

  it("an order placed on one process and filled by the engine reaches the other's client", redisOnly, async () => {
    const engine = createEngine(ctx);
    await engine.start();
    try {
      const u = await user();
      const cb = await subscribed(b(), u.api_key, { events: true });
      expect((await a().server.request('PUT', '/admin/prices/AAPL', { body: { price: '150' } })).status).toBe(200);
      const placed = await a().server.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AAPL', quantity: 1, type: 'market' } });
      expect(placed.status).toBe(201);
      await cb.waitFor((m) => m.channel === 'events' && m.type === 'order.fill', { timeoutMs: 15_000 });
      expect(cb.events().map((e) => [e.type, e.data.id])).toEqual([
        ['order.new', placed.body.id],
        ['order.fill', placed.body.id],
      ]);
    } finally {
      await engine.stop();
    }
  });
});

describe('when Redis loses what it carries', () => {
  it('pub/sub connections killed and keys flushed mid-stream: no event is missed, none repeated', redisOnly, async () => {
    const u = await user();
    const base = await ctx.events.lastSeq(u.id);
    const ca = await subscribed(a(), u.api_key, { events: true });
    const cb = await subscribed(b(), u.api_key, { events: true, since_seq: base });
    for (let i = 1; i <= 30; i++) {
      // Killed, and killed again once they have reconnected.
      if (i === 10 || i === 20) await eventually(async () => ((await killSubscribers()) > 0 ? true : undefined));
      if (i === 15) await flushPrefix();
      await deposit(i % 2 === 0 ? a() : b(), u.id);
    }
    const last = await ctx.events.lastSeq(u.id);
    expect(last).toBe(base + 30);
    expect(await ca.untilSeq(last, 20_000)).toEqual(range(base + 1, last));
    expect(await cb.untilSeq(last, 20_000)).toEqual(range(base + 1, last));
    // The subscribers are back: a new event arrives live, well before a sweep would bring it.
    await deposit(a(), u.id);
    expect(await ca.untilSeq(last + 1, 1_500)).toEqual(range(base + 1, last + 1));
  });

  it('a client that subscribes while the subscribers are down gets its replay and what follows', redisOnly, async () => {
    const u = await user();
    await deposit(a(), u.id);
    await killSubscribers();
    const c = await subscribed(b(), u.api_key, { events: true, since_seq: 0 });
    await deposit(a(), u.id);
    await deposit(b(), u.id);
    const last = await ctx.events.lastSeq(u.id);
    expect(await c.untilSeq(last, 20_000)).toEqual(range(1, last));
  });
});
