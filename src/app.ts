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
import { MarketDataService } from './services/market-data/market-data.service.js';
import { OrdersService } from './services/orders/orders.service.js';
import { ApiKeyCache } from './services/users/api-key-cache.js';
import { TradingEngine } from './services/trading/trading.engine.js';
import { Reconciler } from './services/trading/reconciler.js';
import type { EngineConfig } from './infra/config.js';

export interface AppContext {
  config: Config;
  db: Db;
  pool: pg.Pool;
  redis: Redis;
  keys: Keys;
  logger: Logger;
  metrics: Registry;
  prices: PriceCache;
  market: MarketDataService;
  apiKeys: ApiKeyCache;
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
  const prices = new PriceCache(redis, keys);
  const market = new MarketDataService(db, prices, { priceAgeMsMax: config.priceAgeMsMax, logger });
  return { config, db, pool, redis, keys, logger, metrics, prices, market, apiKeys: new ApiKeyCache() };
}

export async function closeContext(ctx: AppContext): Promise<void> {
  ctx.redis.disconnect();
  await ctx.db.destroy();
}

export function createOrdersService(ctx: AppContext): OrdersService {
  return new OrdersService({
    db: ctx.db,
    redis: ctx.redis,
    keys: ctx.keys,
    logger: ctx.logger,
    market: ctx.market,
    reservationBufferBps: ctx.config.reservationBufferBps,
    orderNotionalMin: ctx.config.orderNotionalMin,
    acceptBatchMax: ctx.config.acceptBatchMax,
    // Half the pool: the other connections serve reads and the single-order fallbacks.
    acceptConcurrencyMax: Math.max(1, Math.floor(ctx.config.pgPoolMax / 2)),
    metrics: ctx.metrics,
  });
}

/** The engine role: the stream consumer and the reconciler, started and stopped together. */
export function createEngine(ctx: AppContext, overrides: Partial<EngineConfig> = {}) {
  const config = { ...ctx.config.engine, ...overrides };
  const reader = createRedis(ctx.config.redisUrl, { name: 'engine-reader', blocking: true });
  reader.on('error', (err: Error) => ctx.logger.debug({ err }, 'redis reader error'));
  const engine = new TradingEngine({
    db: ctx.db,
    redis: ctx.redis,
    reader,
    keys: ctx.keys,
    logger: ctx.logger,
    prices: ctx.prices,
    priceAgeMsMax: ctx.config.priceAgeMsMax,
    config,
    metrics: ctx.metrics,
  });
  const reconciler = new Reconciler({ db: ctx.db, redis: ctx.redis, keys: ctx.keys, logger: ctx.logger, config });
  return {
    engine,
    reconciler,
    async start() {
      await engine.start();
      reconciler.start();
    },
    async stop() {
      await reconciler.stop();
      await engine.stop();
    },
  };
}
