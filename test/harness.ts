/**
 * Test context against the real PostgreSQL and Redis: a fresh database per test file (copied
 * from the migrated template) and a unique Redis key prefix, torn down afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { closeContext, createContext, type AppContext } from '../src/app.js';
import { loadConfig, type Config } from '../src/infra/config.js';
import { quoteIdent } from '../src/infra/postgres.js';
import { buildServer, type RouteInfo, type Server } from '../src/http/server.js';
import { createLogger } from '../src/infra/logger.js';
import { parseCash } from '../src/core/money.js';
import { createUser } from '../src/services/users/users.service.js';
import { adminUrl, redisUrl, templateDb, testDatabaseName, urlFor } from './db-names.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestContext extends AppContext {
  dbName: string;
  close(): Promise<void>;
}

async function createDatabaseFromTemplate(name: string): Promise<void> {
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
  return loadConfig({
    DATABASE_URL: urlFor(dbName),
    REDIS_URL: redisUrl(),
    PAPERTRADE_REDIS_PREFIX: prefix,
    PAPERTRADE_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PG_POOL_MAX: '20',
    ...env,
  });
}

export async function createTestContext(env: Record<string, string> = {}): Promise<TestContext> {
  const id = randomBytes(6).toString('hex');
  const dbName = testDatabaseName(id);
  await createDatabaseFromTemplate(dbName);
  const config = testConfig(dbName, `test:${id}:`, env);
  const ctx = createContext(config, 'test', createLogger(config.logLevel, 'test'));
  return {
    ...ctx,
    dbName,
    async close() {
      const keys = await ctx.redis.keys(`${config.redisPrefix}*`);
      if (keys.length) await ctx.redis.del(...keys);
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
