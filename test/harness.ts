/**
 * Test context against a real PostgreSQL — the machine's, or one embedded server for the run
 * (test/global-setup.ts) — with a fresh database per test file copied from the migrated
 * template. The infrastructure behind the services' ports is Redis when a Redis answers (a
 * unique key prefix per file, deleted afterwards), else the in-process implementations; a
 * file can ask for one of them (`infra`). Tests of Redis itself use `redisOnly`.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { closeContext, createContext, createEngine, createMemoryInfra, createRedisInfra, type AppContext } from '../src/app.js';
import { createKeys, type Keys } from '../src/infra/keys.js';
import { createRedis } from '../src/infra/redis.js';
import { loadConfig, type Config } from '../src/infra/config.js';
import { quoteIdent } from '../src/infra/postgres.js';
import { buildServer, type RouteInfo, type Server } from '../src/http/server.js';
import { createLogger } from '../src/infra/logger.js';
import { parseCash, parsePrice, parseQty } from '../src/core/money.js';
import { buyReservation, executeBuy } from '../src/core/orders.js';
import * as accounts from '../src/services/accounts/accounts.service.js';
import { applyDecisions, NO_DECISIONS, wholeFillAt } from '../src/services/trading/trading.service.js';
import { parseTerms } from '../src/core/order-terms.js';
import type { PlaceOrder } from '../src/services/orders/orders.service.js';
import { createUser } from '../src/services/users/users.service.js';
import { formatAuditReport, runAudit } from '../src/services/audit/audit.service.js';
import { adminUrl, templateDb, testDatabaseName, testRedisUrl, urlFor } from './db-names.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestContext extends AppContext {
  dbName: string;
  /** The key space of this file (what a Redis implementation would use). */
  keys: Keys;
  /** A plain Redis connection to inspect what the Redis implementations wrote; undefined in memory. */
  redis: Redis | undefined;
  close(): Promise<void>;
}

/** True when the run has a Redis to test against (global-setup found one). */
export function hasRedis(): boolean {
  return testRedisUrl() !== undefined;
}

/**
 * For tests of Redis itself (its stream, its scripts, a flush): they run where a Redis answers
 * and are reported as skipped elsewhere (global-setup prints why). Under CI=true a missing
 * Redis fails the run instead, so CI never passes by skipping them.
 */
export const redisOnly = { skip: !hasRedis() };

export async function createDatabaseFromTemplate(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    // Two files copying the template at the same instant can collide ("source database is
    // being accessed"); a few bounded retries settle it.
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(templateDb())}`);
        return;
      } catch (err) {
        if (attempt >= 20 || (err as { code?: string }).code !== '55006') throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  } finally {
    await admin.end();
  }
}

export async function dropDatabase(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export function testConfig(dbName: string, prefix: string, env: Record<string, string> = {}): Config {
  const redis = testRedisUrl();
  return loadConfig({
    DATABASE_URL: urlFor(dbName),
    ...(redis ? { REDIS_URL: redis } : {}),
    PAPERTRADE_REDIS_PREFIX: prefix,
    PAPERTRADE_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PG_POOL_MAX: '20',
    ...env,
  });
}

export interface TestContextOptions {
  /**
   * Every test database is audited when its file closes it: whatever the tests did through the
   * services must leave every invariant of DESIGN.md holding, so the normal suite doubles as a
   * check of the audit's claims. A file that moves money or shares below the order flow on
   * purpose (a service test that holds cash without an order) opts out and says why.
   */
  auditOnClose?: true | { skip: string };
  /**
   * What stands behind the services' ports: 'redis' (fails without one), 'memory', or 'auto'
   * (Redis when the run has one, else memory; the default).
   */
  infra?: 'auto' | 'redis' | 'memory';
  /** Another Redis than the run's (a Redis Cluster a test started: its seed URL). */
  redisTarget?: { url: string; cluster: boolean };
}

/** Stuck-PENDING (invariant 6) is about time; a test file is too short for it to mean anything. */
const CLOSE_AUDIT_PENDING_MAX_AGE_MS = 3_600_000;

export async function createTestContext(
  env: Record<string, string> = {},
  options: TestContextOptions = {},
): Promise<TestContext> {
  const auditOnClose = options.auditOnClose ?? true;
  const id = randomBytes(6).toString('hex');
  const dbName = testDatabaseName(id);
  await createDatabaseFromTemplate(dbName);
  const config = testConfig(dbName, `test:${id}:`, env);
  const logger = createLogger(config.logLevel, 'test');
  const choice = options.infra ?? 'auto';
  const target = options.redisTarget;
  const url = target?.url ?? testRedisUrl();
  const cluster = target?.cluster ?? false;
  if (choice === 'redis' && url === undefined) throw new Error('this test needs Redis, and the run has none (see global-setup)');
  const useRedis = choice === 'redis' || (choice === 'auto' && url !== undefined);
  const infra = useRedis
    ? createRedisInfra(url!, config.redisPrefix, 'test', logger, { cluster, orderStreamPartitions: config.orderStreamPartitions })
    : createMemoryInfra(config.redisPrefix);
  const ctx = createContext(useRedis ? { ...config, redisUrl: url, redisCluster: cluster } : { ...config, redisUrl: undefined }, 'test', logger, infra);
  const redis = useRedis ? createRedis(url!, { name: 'test-inspector', cluster }) : undefined;
  redis?.on('error', () => {});
  return {
    ...ctx,
    dbName,
    keys: createKeys(config.redisPrefix),
    redis,
    async close() {
      if (auditOnClose === true) {
        const report = await runAudit(ctx.db, { pendingMaxAgeMs: CLOSE_AUDIT_PENDING_MAX_AGE_MS });
        if (!report.ok) {
          await closeContext(ctx);
          throw new Error(`the audit of ${dbName} found violations at close:\n${formatAuditReport(report)}`);
        }
      }
      // KEYS asks one node only: a cluster's keys go with the cluster, which its test removes.
      if (redis && !cluster) {
        const keys = await redis.keys(`${config.redisPrefix}*`);
        if (keys.length) await redis.del(...keys);
      }
      redis?.disconnect();
      await closeContext(ctx);
      await dropDatabase(dbName);
    },
  };
}

export interface TestServer {
  server: Server;
  routes: RouteInfo[];
  url: string;
  request(method: string, path: string, options?: { token?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<{
    status: number;
    body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
    headers: Headers;
  }>;
}

/** The real server on an ephemeral port, spoken to over real HTTP. */
export async function startTestServer(ctx: AppContext): Promise<TestServer> {
  const { server, routes } = await buildServer(ctx);
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    server,
    routes,
    url,
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      const token = options.token === undefined ? ADMIN_TOKEN : options.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (options.body !== undefined) {
        body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}

/**
 * A context, its API server and an engine whose resting-order watcher leads, for tests that
 * script prices through PUT /admin/prices (prices an hour old still count).
 */
export async function startTradingStack(env: Record<string, string> = {}) {
  const ctx = await createTestContext({ ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '3600000', ENGINE_RESTING_LEASE_TTL_MS: '1000', ...env });
  const api = await startTestServer(ctx);
  const engine = createEngine(ctx);
  await engine.start();
  await eventually(async () => (engine.watcher.isLeader() ? true : undefined));
  return { ctx, api, engine };
}

let apiUserSeq = 0;
/** A user created through POST /users (as the admin), with its API key. */
export async function apiUser(api: TestServer, cash = '100000.00'): Promise<{ id: string; api_key: string }> {
  const res = await api.request('POST', '/users', { body: { name: 'API user', email: `api-user${++apiUserSeq}-${randomBytes(4).toString('hex')}@example.com`, initial_cash: cash } });
  if (res.status !== 201) throw new Error(`POST /users answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Sets a price as the admin does (the quote store, its tick log, the bars). */
export async function adminPrice(api: TestServer, ticker: string, value: string): Promise<unknown> {
  const res = await api.request('PUT', `/admin/prices/${ticker}`, { body: { price: value } });
  if (res.status !== 200) throw new Error(`PUT /admin/prices/${ticker} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

let userSeq = 0;
/** Factory: a user with an account holding `cash` (decimal string) and an API key. */
export async function newUser(ctx: AppContext, opts: { cash?: string; name?: string } = {}) {
  userSeq += 1;
  const created = await createUser(ctx.db, {
    name: opts.name ?? `User ${userSeq}`,
    email: `user${userSeq}-${randomBytes(4).toString('hex')}@example.com`,
    initialCash: parseCash(opts.cash ?? '0', 'cash', { allowZero: true }),
  });
  return { id: created.user.id, apiKey: created.apiKey, apiKeyId: created.apiKeyId };
}

/** A market order command for the OMS, as the routes build one (extra fields override). */
export function marketOrder(userId: string, ticker: string, side: 'buy' | 'sell', quantity: string, extra: Partial<PlaceOrder> = {}): PlaceOrder {
  return { userId, ticker, terms: parseTerms(side, parseQty(quantity), { type: 'market' }), clientOrderId: undefined, ...extra };
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Gives a user shares the way the system would, so the database still passes the audit: cash
 * for the hold is deposited, a market buy is placed through the OMS and filled at `price` (the
 * engine's own fill statement, run here so no engine is needed), and what the fill did not
 * spend is withdrawn again. The user's cash ends where it began; the stream entry left behind
 * is acknowledged by any engine later started, as the order is no longer PENDING.
 */
export async function seedShares(ctx: AppContext, userId: string, ticker: string, quantity: string, price: string) {
  const priceExact = parsePrice(price);
  const qty = parseQty(quantity);
  await ctx.quotes.setMany([{ ticker, price: priceExact, asOfMs: Date.now() }]);
  const hold = buyReservation(qty, priceExact, ctx.config.reservationBufferBps);
  await accounts.deposit(ctx.db, userId, hold);
  const { order } = await ctx.orders.placeOrder(marketOrder(userId, ticker, 'buy', quantity));
  const execution = executeBuy(qty, priceExact, hold);
  if (execution.outcome !== 'fill') throw new Error('seedShares: the hold does not cover the buy');
  const { outcomes: [outcome] } = await ctx.db.transaction().execute((trx) => applyDecisions(trx, { ...NO_DECISIONS, fills: [wholeFillAt(order, priceExact)] }));
  if (outcome?.order.status !== 'FILLED') throw new Error(`seedShares: the buy of ${quantity} ${ticker} was not filled`);
  await accounts.withdraw(ctx.db, userId, hold - execution.amount);
}
