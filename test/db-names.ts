/** Where tests find PostgreSQL and Redis: TEST_DATABASE_URL / TEST_REDIS_URL, else the local ones. */

/** Test databases older than this are leftovers of a killed run. */
export const TEST_DATABASE_AGE_MS_MAX = 3 * 60 * 60 * 1000;

export function templateDb(): string {
  const name = process.env.PT_TEMPLATE_DB;
  if (!name) throw new Error('PT_TEMPLATE_DB is not set: run tests through vitest (test/global-setup.ts)');
  return name;
}

/** A test database name: `pt_test_<epoch ms>_<random>`; the time tells leftovers apart. */
export function testDatabaseName(random: string): string {
  return `pt_test_${Date.now()}_${random}`;
}

export function isStaleTestDatabase(name: string, nowMs = Date.now()): boolean {
  const match = /^pt_(?:test|tpl)_(\d{13})_/.exec(name);
  if (match) return nowMs - Number(match[1]) > TEST_DATABASE_AGE_MS_MAX;
  // Names of the earlier scheme (no timestamp) are always leftovers.
  return /^pt_(test_[0-9a-f]+|template)$/.test(name);
}

export function adminUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function urlFor(database: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

/** Where global-setup looks for Redis: TEST_REDIS_URL, else the local default. */
export function redisUrl(): string {
  return process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** The Redis this run tests against, as global-setup found it; undefined when there is none. */
export function testRedisUrl(): string | undefined {
  const found = process.env.PT_TEST_REDIS_URL;
  return found ? found : undefined;
}
