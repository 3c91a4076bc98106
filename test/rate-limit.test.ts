/**
 * Rate limiting per credential, counted by the rate counter (in Redis, so it holds across api
 * instances; in memory for one process); refused with 429 RATE_LIMITED and Retry-After; off by
 * default; failing open when the counter cannot answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeContext, createContext, type AppContext } from '../src/app.js';
import { buildServer } from '../src/http/server.js';
import { MemoryRateCounter, RATE_LIMIT_WINDOW_MS, RateLimiter, type RateCounter } from '../src/http/rate-limit.js';
import { createLogger } from '../src/infra/logger.js';
import { ADMIN_TOKEN, createTestContext, newUser, redisOnly, startTestServer, type TestContext, type TestServer } from './harness.js';

const LIMIT = 5;

let ctx: TestContext;
let api: TestServer;
const extra: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  ctx = await createTestContext({ RATE_LIMIT_PER_MINUTE: String(LIMIT) });
  api = await startTestServer(ctx);
});
afterAll(async () => {
  for (const e of extra.reverse()) await e.close();
  await api?.server.close();
  await ctx?.close();
});

/** Starts a test at least a few seconds before a window ends, so its counts share one window. */
async function awayFromWindowEdge(marginMs = 5_000): Promise<void> {
  const left = RATE_LIMIT_WINDOW_MS - (Date.now() % RATE_LIMIT_WINDOW_MS);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}

/**
 * Another api instance over the same PostgreSQL and Redis (and key prefix), with its own
 * connections; in memory, another server of the same process.
 */
async function secondInstance(overrides: Partial<AppContext['config']> = {}) {
  const config = { ...ctx.config, ...overrides };
  const logger = createLogger('silent', 'test-b');
  const other = ctx.infra.kind === 'redis' ? createContext(config, 'test-b', logger) : createContext(config, 'test-b', logger, ctx.infra);
  const started = await startTestServer(other);
  const handle = {
    ctx: other,
    api: started,
    async close() {
      await started.server.close();
      await closeContext(other);
    },
  };
  extra.push(handle);
  return handle;
}

function expectRateLimited(res: { status: number; body: any; headers: Headers }) { // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(res.status).toBe(429);
  expect(res.body.error).toMatchObject({ code: 'RATE_LIMITED', service: 'http' });
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(res.body.error.details.retry_after_s).toBe(retryAfter);
  expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
  expect(JSON.stringify(res.body)).not.toMatch(/stack|\.ts:\d/);
}

describe('rate limiting (RATE_LIMIT_PER_MINUTE)', () => {
  it('lets a key make LIMIT requests a minute, then answers 429 RATE_LIMITED with Retry-After', async () => {
    await awayFromWindowEdge();
    const u = await newUser(ctx, { cash: '100.00' });
    for (let i = 1; i <= LIMIT; i++) {
      const ok = await api.request('GET', `/users/${u.id}`, { token: u.apiKey });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-limit')).toBe(String(LIMIT));
      expect(ok.headers.get('x-ratelimit-remaining')).toBe(String(LIMIT - i));
      expect(Number(ok.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(1);
    }
    const refused = await api.request('GET', `/users/${u.id}`, { token: u.apiKey });
    expectRateLimited(refused);
    expect(refused.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('keeps the Redis count under the key named in src/infra/keys.ts, expiring with its window', redisOnly, async () => {
    await awayFromWindowEdge();
    const u = await newUser(ctx, { cash: '100.00' });
    for (let i = 0; i <= LIMIT; i++) await api.request('GET', `/users/${u.id}`, { token: u.apiKey });
    const windowStart = Math.floor(Date.now() / RATE_LIMIT_WINDOW_MS) * RATE_LIMIT_WINDOW_MS;
    const keyName = ctx.keys.rateLimit(`key:${u.apiKeyId}`, windowStart);
    expect(await ctx.redis!.get(keyName)).toBe(String(LIMIT + 1));
    const ttl = await ctx.redis!.pttl(keyName);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(RATE_LIMIT_WINDOW_MS + 5_000);
  });

  it('counts per credential: another key, and the admin token, have their own budgets', async () => {
    await awayFromWindowEdge();
    const a = await newUser(ctx);
    const b = await newUser(ctx);
    for (let i = 0; i < LIMIT; i++) expect((await api.request('GET', `/users/${a.id}`, { token: a.apiKey })).status).toBe(200);
    expectRateLimited(await api.request('GET', `/users/${a.id}`, { token: a.apiKey }));
    expect((await api.request('GET', `/users/${b.id}`, { token: b.apiKey })).status).toBe(200);
    // A second key of the same user is a separate credential.
    const second = await api.request('POST', `/users/${b.id}/api-keys`, { token: b.apiKey });
    expect(second.status).toBe(201);

    // The admin token is one subject of its own.
    const adminStatuses: number[] = [];
    for (let i = 0; i < LIMIT + 1; i++) adminStatuses.push((await api.request('GET', `/users/${a.id}`, { token: ADMIN_TOKEN })).status);
    expect(adminStatuses).toEqual([...Array(LIMIT).fill(200), 429]);
  });

  it('refuses before doing anything: a rate-limited withdrawal moves no money', async () => {
    await awayFromWindowEdge();
    const u = await newUser(ctx, { cash: '100.00' });
    for (let i = 0; i < LIMIT; i++) expect((await api.request('GET', `/users/${u.id}/account`, { token: u.apiKey })).status).toBe(200);
    const refused = await api.request('POST', `/users/${u.id}/withdrawals`, { token: u.apiKey, body: { amount: '10.00' } });
    expectRateLimited(refused);
    const row = await ctx.db.selectFrom('cash_balances').select(['cash_balance', 'available_cash']).where('user_id', '=', u.id).executeTakeFirstOrThrow();
    expect([row.cash_balance, row.available_cash]).toEqual(['100.00', '100.00']);
    const ledger = await ctx.db.selectFrom('cash_ledger').select('kind').where('user_id', '=', u.id).execute();
    expect(ledger.map((l) => l.kind)).toEqual(['initial']);
  });

  it('counts refused calls too (a user key hammering an admin route is limited like any other)', async () => {
    await awayFromWindowEdge();
    const u = await newUser(ctx);
    for (let i = 0; i < LIMIT; i++) {
      expect((await api.request('POST', '/users', { token: u.apiKey, body: { name: 'X', email: `x${i}@example.com` } })).status).toBe(403);
    }
    expectRateLimited(await api.request('POST', '/users', { token: u.apiKey, body: { name: 'X', email: 'y@example.com' } }));
  });

  it('never limits public routes or unauthenticated requests (there is no credential to count)', async () => {
    for (let i = 0; i < LIMIT * 3; i++) expect((await api.request('GET', '/health', { token: null })).status).toBe(200);
    for (let i = 0; i < LIMIT * 2; i++) expect((await api.request('GET', '/instruments', { token: 'nonsense' })).status).toBe(401);
    const res = await api.request('GET', '/health', { token: null });
    expect(res.headers.get('x-ratelimit-limit')).toBeNull();
  });

  it('holds across api instances: the count is shared through Redis', redisOnly, async () => {
    await awayFromWindowEdge();
    const b = await secondInstance();
    const u = await newUser(ctx);
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const server = i % 2 === 0 ? api : b.api; // alternate between the two instances
      statuses.push((await server.request('GET', `/users/${u.id}`, { token: u.apiKey })).status);
    }
    expect(statuses).toEqual([...Array(LIMIT).fill(200), 429, 429]);
  });

  it('is off by default (RATE_LIMIT_PER_MINUTE=0): no counting, no headers', async () => {
    expect(ctx.config.rateLimitPerMinute).toBe(LIMIT);
    const { loadConfig } = await import('../src/infra/config.js');
    expect(loadConfig({}).rateLimitPerMinute).toBe(0);
    const off = await secondInstance({ rateLimitPerMinute: 0 });
    const u = await newUser(ctx);
    for (let i = 0; i < LIMIT * 3; i++) {
      const res = await off.api.request('GET', `/users/${u.id}`, { token: u.apiKey });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBeNull();
    }
  });

  it('fails open when Redis is down: requests are served, not refused', redisOnly, async () => {
    const down = await secondInstance({ rateLimitPerMinute: 1 });
    await down.ctx.infra.close(); // its Redis connection is gone
    const u = await newUser(ctx);
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const res = await down.api.request('GET', `/users/${u.id}`, { token: u.apiKey });
      expect(res.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(2_000);
    }
  });
});

describe('RateLimiter', () => {
  const logger = createLogger('silent', 'test');

  it('uses fixed one-minute windows: a new window starts a new count', async () => {
    let now = 1_800_000_000_000; // a window boundary
    const limiter = new RateLimiter({ counter: new MemoryRateCounter(() => now), limit: 3, logger, now: () => now });
    const subject = `unit:${Date.now()}`;
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await limiter.hit(subject));
    expect(first.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    expect(first.every((d) => d.counted && d.resetS === 60)).toBe(true);
    now += 59_001; // 999 ms left in the window: Retry-After rounds up to 1 s
    expect(await limiter.hit(subject)).toMatchObject({ allowed: false, resetS: 1 });
    now += 1_000; // the next window
    expect(await limiter.hit(subject)).toMatchObject({ allowed: true, remaining: 2, resetS: 60 });
  });

  it('fails open at once when the counter is not connected, and when it does not answer in time', async () => {
    let asked = 0;
    const offline: RateCounter = { isReady: () => false, increment: async () => ++asked };
    const limiter = new RateLimiter({ counter: offline, limit: 1, logger });
    for (let i = 0; i < 3; i++) expect(await limiter.hit('s')).toMatchObject({ allowed: true, counted: false });
    expect(asked).toBe(0); // not even asked: no waiting behind a reconnect
    // A connected counter that never answers: the limiter gives up after its timeout.
    const hung: RateCounter = { isReady: () => true, increment: () => new Promise(() => {}) };
    const slow = new RateLimiter({ counter: hung, limit: 1, logger, timeoutMs: 50 });
    const started = Date.now();
    expect(await slow.hit('s')).toMatchObject({ allowed: true, counted: false });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('refuses a limit that is not a positive integer (0 means: build no limiter)', () => {
    expect(() => new RateLimiter({ counter: new MemoryRateCounter(), limit: 0, logger })).toThrow(RangeError);
  });

  it('is wired from the configuration: no limiter when RATE_LIMIT_PER_MINUTE is 0', async () => {
    const { server } = await buildServer({ ...ctx, config: { ...ctx.config, rateLimitPerMinute: 0 } });
    try {
      const res = await server.inject({ method: 'GET', url: '/instruments', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});
