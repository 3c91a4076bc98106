/**
 * The one place where papertrade is wired: configuration, PostgreSQL, Redis, keys, logger and
 * metrics are built here and handed to services and roles as plain parameters.
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from './infra/config.js';
import { createKeys, type Keys } from './infra/keys.js';
import { createLogger, type Logger } from './infra/logger.js';
import { createDb, type Db } from './infra/postgres.js';
import { createRedis } from './infra/redis.js';
import { PriceCache } from './services/market-data/price-cache.js';

export interface AppContext {
  config: Config;
  db: Db;
  pool: pg.Pool;
  redis: Redis;
  keys: Keys;
  logger: Logger;
  metrics: Registry;
  prices: PriceCache;
}

export function createContext(config: Config, role: string, logger = createLogger(config.logLevel, role)): AppContext {
  const { db, pool } = createDb(config.databaseUrl, config.pgPoolMax);
  const redis = createRedis(config.redisUrl, { name: role });
  // A Redis outage is logged once per reconnect attempt by ioredis' 'error' events; without a
  // listener they would be unhandled and crash the process.
  redis.on('error', (err: Error) => logger.debug({ err }, 'redis error'));
  const metrics = new Registry();
  metrics.setDefaultLabels({ role });
  collectDefaultMetrics({ register: metrics });
  const keys = createKeys(config.redisPrefix);
  return { config, db, pool, redis, keys, logger, metrics, prices: new PriceCache(redis, keys) };
}

export async function closeContext(ctx: AppContext): Promise<void> {
  ctx.redis.disconnect();
  await ctx.db.destroy();
}
