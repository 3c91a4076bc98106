/**
 * The one place where papertrade is wired: configuration, PostgreSQL, the infrastructure the
 * services need (Redis, or memory when every role runs in one process), the logger and the
 * metrics are built here and handed to services and roles as plain parameters. Nothing else
 * knows which implementation of a port it got.
 */
import type pg from 'pg';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { assert } from './core/errors.js';
import type { Config, EngineConfig } from './infra/config.js';
import { MemoryChannel, RedisChannel, type Channel } from './infra/channel.js';
import { createKeys, type Keys } from './infra/keys.js';
import { LeaseLock, MemoryLeaseStore, RedisLeaseStore, type LeaseStore } from './infra/lease.js';
import { createLogger, type Logger } from './infra/logger.js';
import { createDb, type Db } from './infra/postgres.js';
import { createRedis } from './infra/redis.js';
import { MemoryRateCounter, RedisRateCounter, type RateCounter } from './http/rate-limit.js';
import { MarketDataService } from './services/market-data/market-data.service.js';
import type { QuoteStore, TickLog } from './services/market-data/quote-store.js';
import { MarketClock } from './services/clock/clock.service.js';
import { RestingWatcher, type SessionClock } from './services/trading/resting-watcher.js';
import { MemoryQuoteStore } from './services/market-data/quote-store.memory.js';
import { RedisQuoteStore } from './services/market-data/quote-store.redis.js';
import type { OrderPipe } from './services/orders/order-pipe.js';
import { MemoryOrderPipe } from './services/orders/order-pipe.memory.js';
import { RedisOrderPipe } from './services/orders/order-pipe.redis.js';
import { OrdersService } from './services/orders/orders.service.js';
import { ClassMembership } from './services/classes/class-membership.js';
import { ResetsService } from './services/resets/resets.service.js';
import { calendarTimeZone } from './core/calendar.js';
import { channelEventBus, type EventBus, type EventRecord } from './services/events/event-log.js';
import { EventRetention, EventsService, publishEvents } from './services/events/events.service.js';
import { ApiKeyCache } from './services/users/api-key-cache.js';
import { BatchExecutor } from './services/trading/batch-executor.js';
import { DeliveryLoop } from './services/trading/delivery-loop.js';
import { Reconciler } from './services/trading/reconciler.js';
import { HistorySnapshotter } from './services/history/history.service.js';
import { FeedRunner, type FeedRunnerOptions } from './services/market-data/feed.runner.js';
import type { FeedFactory } from './services/market-data/feeds.js';
import type { LiquidityTier } from './core/liquidity.js';
import type { TouchSettings } from './services/market-data/touch.js';

/** What the services need of Redis, behind their own ports. */
export interface Infra {
  /** 'memory': one process only (roles in separate processes need Redis to meet). */
  readonly kind: 'redis' | 'memory';
  readonly quotes: QuoteStore;
  /** The log of published tick batches (the quote store keeps it). */
  readonly ticks: TickLog;
  readonly pipe: OrderPipe;
  readonly orderUpdates: Channel;
  /** Committed events, announced to every api process (the live stream's news). */
  readonly eventBus: EventBus;
  readonly leases: LeaseStore;
  readonly rateCounter: RateCounter;
  /** Where lease locks live, by name. */
  readonly keys: Keys;
  /** True when the infrastructure answers (GET /ready). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Redis behind every port: the roles may run in any number of processes. */
export function createRedisInfra(
  url: string,
  prefix: string,
  role: string,
  logger: Logger,
  options: { cluster?: boolean; orderStreamPartitions?: number } = {},
): Infra {
  const keys = createKeys(prefix);
  const cluster = options.cluster ?? false;
  const redis = createRedis(url, { name: role, cluster });
  // A Redis outage is logged once per reconnect attempt by ioredis' 'error' events; without a
  // listener they would be unhandled and crash the process.
  redis.on('error', (err: Error) => logger.debug({ err }, 'redis error'));
  const subscriber = () => createRedis(url, { name: `${role}-subscriber`, blocking: true, cluster });
  const quotes = new RedisQuoteStore(redis, keys, subscriber);
  return {
    kind: 'redis',
    keys,
    quotes,
    ticks: quotes,
    pipe: new RedisOrderPipe(redis, keys, () => createRedis(url, { name: `${role}-pipe-reader`, blocking: true, cluster }), options.orderStreamPartitions ?? 1, cluster),
    orderUpdates: new RedisChannel(redis, keys.orderUpdatesChannel(), subscriber),
    eventBus: channelEventBus(new RedisChannel(redis, keys.eventsChannel(), subscriber)),
    leases: new RedisLeaseStore(redis),
    rateCounter: new RedisRateCounter(redis, keys),
    ping: async () => (await redis.ping()) === 'PONG',
    close: async () => {
      redis.disconnect();
    },
  };
}

/** Memory behind every port: every role of the deployment must run in this one process. */
export function createMemoryInfra(prefix = 'pt:'): Infra {
  const quotes = new MemoryQuoteStore();
  return {
    kind: 'memory',
    keys: createKeys(prefix),
    quotes,
    ticks: quotes,
    pipe: new MemoryOrderPipe(),
    orderUpdates: new MemoryChannel(),
    eventBus: channelEventBus(new MemoryChannel()),
    leases: new MemoryLeaseStore(),
    rateCounter: new MemoryRateCounter(),
    ping: async () => true,
    close: async () => undefined,
  };
}

export interface AppContext {
  config: Config;
  db: Db;
  pool: pg.Pool;
  infra: Infra;
  /** The quote store (infra.quotes), which several parts read. */
  quotes: QuoteStore;
  logger: Logger;
  metrics: Registry;
  market: MarketDataService;
  apiKeys: ApiKeyCache;
  /** Which class a user trades in, with its rules (the OMS's view; members are fixed at creation). */
  classMembership: ClassMembership;
  /** The OMS: one per process, so its accept batching sees every request of the process. */
  orders: OrdersService;
  /** Account resets (an orchestrator: orders, cash, holdings, history and events in one transaction). */
  resets: ResetsService;
  /** The market clock (calendar and admin override); started by the roles that use it. */
  clock: MarketClock;
  /** The event log's reading side and retention. */
  events: EventsService;
  /** Announces committed events on the bus (never throws: the log already holds them). */
  publishEvents(events: readonly EventRecord[]): Promise<void>;
}

export function createContext(
  config: Config,
  role: string,
  logger = createLogger(config.logLevel, role),
  infra: Infra = config.redisUrl
      ? createRedisInfra(config.redisUrl, config.redisPrefix, role, logger, { cluster: config.redisCluster, orderStreamPartitions: config.orderStreamPartitions })
      : createMemoryInfra(config.redisPrefix),
): AppContext {
  assert(config.databaseUrl !== undefined, 'the database URL is resolved (embedded or configured) before the context is built');
  const { db, pool } = createDb(config.databaseUrl, config.pgPoolMax);
  const metrics = new Registry();
  metrics.setDefaultLabels({ role });
  collectDefaultMetrics({ register: metrics });
  const market = new MarketDataService(db, infra.quotes, { priceAgeMsMax: config.priceAgeMsMax, logger, touch: touchSettings(config) });
  const classMembership = new ClassMembership(db);
  const orders = new OrdersService({
    db,
    pipe: infra.pipe,
    orderUpdates: infra.orderUpdates,
    eventBus: infra.eventBus,
    logger,
    market,
    prices: infra.quotes,
    classes: classMembership,
    marketTimeZone: calendarTimeZone(config.marketCalendar, config.marketTimeZone),
    reservationBufferBps: config.reservationBufferBps,
    fillModel: config.fills.model,
    commissionSchedule: config.commission,
    orderNotionalMin: config.orderNotionalMin,
    acceptBatchMax: config.acceptBatchMax,
    // Half the pool: the other connections serve reads and the single-order fallbacks.
    acceptConcurrencyMax: Math.max(1, Math.floor(config.pgPoolMax / 2)),
    metrics,
  });
  const clock = new MarketClock(db, { calendar: config.marketCalendar, timeZone: config.marketTimeZone, logger });
  const events = new EventsService({ db, retentionDays: config.eventsRetentionDays, logger });
  return {
    config,
    db,
    pool,
    infra,
    quotes: infra.quotes,
    logger,
    metrics,
    market,
    apiKeys: new ApiKeyCache(),
    classMembership,
    orders,
    resets: new ResetsService({ db, orderUpdates: infra.orderUpdates, eventBus: infra.eventBus, logger, classes: classMembership }),
    clock,
    events,
    publishEvents: (batch) => publishEvents(infra.eventBus, batch, logger),
  };
}

export async function closeContext(ctx: AppContext): Promise<void> {
  ctx.clock.stop();
  await ctx.infra.close();
  await ctx.db.destroy();
}

/**
 * The engine role: the delivery loop over the batch executor, the resting-order watcher (one
 * engine of the deployment leads it) and the reconciler, started and stopped together.
 */
export function createEngine(
  ctx: AppContext,
  overrides: Partial<EngineConfig> & {
    consumerName?: string;
    /** The clock whose turns the watcher acts on (default: the context's); tests script sessions with one. */
    sessionClock?: SessionClock;
  } = {},
) {
  const { consumerName, sessionClock, ...engineOverrides } = overrides;
  const config = { ...ctx.config.engine, ...engineOverrides };
  // Each instrument's liquidity tier, for the realistic model's parameters: read at start (the
  // instruments change only by migration); a ticker not read yet is treated as a large cap.
  const tiers = new Map<string, LiquidityTier>();
  const fills = ctx.config.fills;
  const executor = new BatchExecutor({
    db: ctx.db,
    quotes: ctx.quotes,
    orderUpdates: ctx.infra.orderUpdates,
    eventBus: ctx.infra.eventBus,
    logger: ctx.logger,
    session: ctx.clock,
    limits: { priceAgeMsMax: ctx.config.priceAgeMsMax, priceWaitMsMax: config.priceWaitMsMax },
    fills: {
      tierOf: (ticker) => tiers.get(ticker) ?? 'large',
      latency: { seed: fills.seed, baseMs: fills.latencyMs, jitterMs: fills.latencyJitterMs },
    },
    metrics: ctx.metrics,
  });
  const watcher = new RestingWatcher({
    priceAgeMsMax: ctx.config.priceAgeMsMax,
    db: ctx.db,
    ticks: ctx.infra.ticks,
    quotes: ctx.quotes,
    orderUpdates: ctx.infra.orderUpdates,
    eventBus: ctx.infra.eventBus,
    executor,
    clock: sessionClock ?? ctx.clock,
    lease: new LeaseLock(ctx.infra.leases, ctx.infra.keys.restingLeader(), config.restingLeaseTtlMs),
    logger: ctx.logger,
    metrics: ctx.metrics,
  });
  // One delivery loop per partition of the pipe, each its own consumer (of that partition's
  // group) and its own batches: the partitions are read and filled side by side.
  const loops = Array.from(
    { length: ctx.infra.pipe.partitions },
    (_, partition) => new DeliveryLoop({ pipe: ctx.infra.pipe, executor, logger: ctx.logger, config, consumerName, partition }),
  );
  const loop = loops[0]!;
  const reconciler = new Reconciler({
    db: ctx.db,
    pipe: ctx.infra.pipe,
    turn: new LeaseLock(ctx.infra.leases, ctx.infra.keys.reconcilerLock(), config.reconcileIntervalMs),
    logger: ctx.logger,
    config,
  });
  const retention = new EventRetention(
    ctx.events,
    new LeaseLock(ctx.infra.leases, ctx.infra.keys.eventsPrunerLock(), config.eventsPruneIntervalMs),
    config.eventsPruneIntervalMs,
    ctx.logger,
  );
  // One engine of the deployment records every user's equity (portfolio history, leaderboards).
  const snapshotter = new HistorySnapshotter({
    db: ctx.db,
    quotes: ctx.quotes,
    clock: ctx.clock,
    lease: new LeaseLock(ctx.infra.leases, ctx.infra.keys.historySnapshotLeader(), HistorySnapshotter.leaseTtlMs(config.portfolioSnapshotIntervalMs)),
    logger: ctx.logger,
    intervalMs: config.portfolioSnapshotIntervalMs,
  });
  return {
    loop,
    loops,
    executor,
    reconciler,
    watcher,
    snapshotter,
    async start() {
      for (const i of await ctx.market.listInstruments()) tiers.set(i.ticker, i.liquidityTier);
      await ctx.clock.start();
      await Promise.all(loops.map((l) => l.start()));
      watcher.start();
      reconciler.start();
      retention.start();
      snapshotter.start();
    },
    async stop() {
      await snapshotter.stop();
      await retention.stop();
      await reconciler.stop();
      await watcher.stop();
      await Promise.all(loops.map((l) => l.stop()));
    },
  };
}

/** How quotes get a bid and an ask when their source has none: FEED_SPREAD_BPS, sizes seeded by FEED_SEED. */
function touchSettings(config: Config): TouchSettings {
  return { spreadBps: config.feedSpreadBps, seed: config.feedSeed };
}

/** The feed role's runner: the given feed under the deployment's leader lease, into the quote store. */
export function createFeedRunner(ctx: AppContext, createFeed: FeedFactory, overrides: Partial<FeedRunnerOptions> = {}): FeedRunner {
  return new FeedRunner(
    {
      leases: ctx.infra.leases,
      leaderKey: ctx.infra.keys.feedLeader(),
      logger: ctx.logger,
      market: ctx.market,
      quotes: ctx.quotes,
      session: ctx.clock,
      metrics: ctx.metrics,
    },
    { leaderTtlMs: ctx.config.feedLeaderTtlMs, createFeed, touch: touchSettings(ctx.config), ...overrides },
  );
}
