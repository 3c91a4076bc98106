/**
 * Before a command does anything, it checks that the servers it needs answer, and says in one
 * line which one does not, at which address, and what to do — instead of a stack trace from
 * deep inside a driver. A database that does not exist yet is fine (start and migrate create it).
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import type { Config } from '../infra/config.js';

/** How long each server gets to answer the start-up check. */
export const PREFLIGHT_TIMEOUT_MS = 5_000;

export class UnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

/** host:port of a URL, with the protocol's default port when none is given. */
export function addressOf(url: string, defaultPort: number): string {
  try {
    const u = new URL(url);
    const host = u.hostname.startsWith('[') ? u.hostname : u.hostname || '127.0.0.1';
    return `${host}:${u.port || defaultPort}`;
  } catch {
    return url;
  }
}

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.code && /^[A-Z]/.test(e.code) && !/^\d/.test(e.code)) return e.code;
  if (e?.code) return `${e.code} ${e.message ?? ''}`.trim();
  return e?.message ?? String(err);
}

/** Throws UnreachableError when PostgreSQL does not accept a connection with DATABASE_URL. */
export async function checkPostgres(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: PREFLIGHT_TIMEOUT_MS });
  client.on('error', () => {});
  const address = addressOf(databaseUrl, 5432);
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: string }).code;
    // 3D000: the server answered, the database does not exist yet (start and migrate create it).
    if (code === '3D000') return;
    if (code === '28P01' || code === '28000') {
      throw new UnreachableError(
        `PostgreSQL at ${address} refused the credentials in DATABASE_URL (${reason(err)}); fix the user or password in DATABASE_URL`,
      );
    }
    throw new UnreachableError(
      `cannot reach PostgreSQL at ${address} (${reason(err)}); set DATABASE_URL to a PostgreSQL server that is running, or start one`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Throws UnreachableError when Redis does not answer PING at REDIS_URL. */
export async function checkRedis(redisUrl: string): Promise<void> {
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: PREFLIGHT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The socket's own error (ECONNREFUSED) comes as an event; connect() only says it closed.
  let socketError: unknown;
  redis.on('error', (err: unknown) => {
    socketError ??= err;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new UnreachableError(
      `cannot reach Redis at ${addressOf(redisUrl, 6379)} (${reason(socketError ?? err)}); set REDIS_URL to a Redis server that is running, or start one`,
    );
  } finally {
    redis.disconnect();
  }
}

/** Checks the configured servers a command needs, both at once. */
export async function preflight(config: Config, needs: { postgres: boolean; redis: boolean }): Promise<void> {
  const checks: Promise<void>[] = [];
  if (needs.postgres && config.databaseUrl !== undefined) checks.push(checkPostgres(config.databaseUrl));
  if (needs.redis && config.redisUrl !== undefined) checks.push(checkRedis(config.redisUrl));
  const results = await Promise.allSettled(checks);
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (failed.length > 0) throw new UnreachableError(failed.map((e) => e.message).join('\npapertrade: '));
}
