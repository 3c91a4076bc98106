/**
 * Once per test run: find the servers, then migrate a template database.
 *
 * - PostgreSQL: TEST_DATABASE_URL, else the local server at the default address, else — on a
 *   machine with nothing but Node — one embedded PostgreSQL for the whole run (a temporary data
 *   directory, stopped and removed at the end).
 * - Redis: TEST_REDIS_URL, else the local default. Without one, the tests of the Redis
 *   implementations are skipped (said here, once) and everything else runs on the in-process
 *   implementations. With CI=true a missing server fails the run instead: CI must test both.
 *
 * Each test file then gets its own database copied from the template (`CREATE DATABASE …
 * TEMPLATE …`, milliseconds), so files never see each other's rows and nothing needs cleaning
 * between them. Names carry their creation time, so several runs can share a server and
 * leftovers of a killed run are recognised and dropped.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { Kysely, PostgresDialect } from 'kysely';
import { migrateToLatest, quoteIdent } from '../src/infra/postgres.js';
import type { EmbeddedServer } from '../src/infra/embedded-postgres.js';
import { adminUrl, isStaleTestDatabase, redisUrl, urlFor } from './db-names.js';

/** How long each server gets to answer the probe. */
const PROBE_TIMEOUT_MS = 2_000;

let templateDb: string | undefined;
let embedded: EmbeddedServer | undefined;
let embeddedDir: string | undefined;

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: PROBE_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

const ci = process.env.CI === 'true';

export async function setup(): Promise<void> {
  // The browser tests serve dist/web and the command-line tests run dist/: build them when a
  // source changed (milliseconds when nothing did).
  const build = spawnSync(process.execPath, [path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'build-if-stale.mjs')], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed: the tests need dist/ and dist/web/');
  if (process.env.TEST_DATABASE_URL === undefined && !(await postgresAnswers(adminUrl()))) {
    if (ci) throw new Error(`CI=true and no PostgreSQL answers at ${adminUrl()}: start it (scripts/ensure-services.sh) or set TEST_DATABASE_URL`);
    embeddedDir = await mkdtemp(path.join(tmpdir(), 'papertrade-test-pg-'));
    // Loaded only when needed: a machine with a PostgreSQL never touches the embedded one.
    const { startEmbeddedPostgres } = await import('../src/infra/embedded-postgres.js');
    embedded = await startEmbeddedPostgres({ dataDir: embeddedDir, mode: 'own' });
    const url = new URL(embedded.url);
    url.pathname = '/postgres';
    process.env.TEST_DATABASE_URL = url.toString();
    process.stdout.write(`tests: no PostgreSQL at the default address; using an embedded one on port ${embedded.port}\n`);
  }

  const redis = redisUrl();
  if (await redisAnswers(redis)) {
    process.env.PT_TEST_REDIS_URL = redis;
  } else {
    if (ci) throw new Error(`CI=true and no Redis answers at ${redis}: start it (scripts/ensure-services.sh) or set TEST_REDIS_URL`);
    process.env.PT_TEST_REDIS_URL = '';
    process.stdout.write(
      `tests: no Redis at ${redis}; the tests of the Redis implementations are skipped, everything else runs in memory\n`,
    );
  }

  templateDb = `pt_tpl_${Date.now()}_${randomBytes(3).toString('hex')}`;
  process.env.PT_TEMPLATE_DB = templateDb;
  await withAdmin(async (admin) => {
    const all = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'pt\\_%'");
    for (const { datname } of all.rows) {
      if (isStaleTestDatabase(datname)) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`);
    }
    await admin.query(`CREATE DATABASE ${quoteIdent(templateDb!)}`);
  });
  const pool = new pg.Pool({ connectionString: urlFor(templateDb), max: 1 });
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  await migrateToLatest(db);
  await db.destroy();
}

export async function teardown(): Promise<void> {
  if (templateDb) await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(templateDb!)} WITH (FORCE)`));
  await embedded?.stop();
  if (embeddedDir) await rm(embeddedDir, { recursive: true, force: true });
}
