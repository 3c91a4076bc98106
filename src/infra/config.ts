/**
 * Configuration is read from the environment once, at start-up, into a typed object. Every bad
 * variable is reported together so an operator fixes them in one pass, not one per restart.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseCash, parseDecimal } from '../core/money.js';
import { chargesAnything, parseCommissionSchedule, type CommissionSchedule } from '../core/commissions.js';
import { FILL_MODELS, type FillModelName } from '../core/fill-models.js';
import { TIER_PARAMS, type LiquidityTier } from '../core/liquidity.js';
import { DEFAULT_MARKET_TIMEZONE, isValidTimeZone } from '../core/calendar.js';
import { ORDER_STREAM_PARTITIONS_MAX } from './keys.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type FeedKind = 'simulator' | 'replay' | 'manual';

export interface Config {
  /** Unset: papertrade runs its own PostgreSQL (embedded) in the data directory. */
  databaseUrl: string | undefined;
  /** Unset: the parts Redis serves live in memory, and every role must run in one process. */
  redisUrl: string | undefined;
  /** Prefix for every Redis key, so several deployments (or test files) can share one Redis. */
  redisPrefix: string;
  /**
   * REDIS_URL names one node of a Redis Cluster (REDIS_CLUSTER=true): the client finds the
   * others from it and sends each key to the node of its slot (src/infra/keys.ts tags the keys
   * used together).
   */
  redisCluster: boolean;
  /** How many streams the order pipe is split into, by user (ORDER_STREAM_PARTITIONS, 1-64). */
  orderStreamPartitions: number;
  /**
   * Where `start` runs the engine (START_ENGINE): `child` a process of its own (a second core;
   * needs Redis), `in-process` with the api, `auto` a child when Redis is set and the machine
   * has two cores or more.
   */
  startEngine: 'auto' | 'child' | 'in-process';
  host: string;
  port: number;
  adminToken: string;
  /**
   * Where the admin token came from: the environment, or the token file in the data directory
   * (read, or generated and written there on first start). See resolveAdminToken.
   */
  adminTokenSource: 'env' | 'file';
  logLevel: LogLevel;
  pgPoolMax: number;
  /** Money kept above the quoted price when a market buy is reserved, in basis points (500 = 5 %). */
  reservationBufferBps: bigint;
  /**
   * The least an order may be worth at the quote (quantity × price), in cents. Smaller orders
   * would only probe rounding; a sell of a whole position is the one exception.
   */
  orderNotionalMin: bigint;
  /** Where papertrade keeps its own files (the admin token; the embedded database later). */
  dataDir: string;
  /** Browser origins allowed to call the API (CORS); empty: no cross-origin access. */
  corsOrigins: string[];
  /** `always` (a session per calendar day, always open) or `nyse` (regular hours, holidays). */
  marketCalendar: 'always' | 'nyse';
  /** The time zone of `always` sessions (nyse is always New York time). */
  marketTimeZone: string;
  /** A cached price older than this is refused: an order is never priced from a stale quote. */
  priceAgeMsMax: number;
  feed: FeedKind;
  feedTickMs: number;
  feedSeed: number;
  feedReplayFile: string | undefined;
  feedReplaySpeed: number;
  feedReplayLoop: boolean;
  /** Pairwise correlation of simulated tickers' returns (0 independent, 1 lockstep). */
  feedCorrelation: number;
  /** The full bid-ask spread feeds quote around the last price, per liquidity tier (FEED_SPREAD_BPS). */
  feedSpreadBps: Record<LiquidityTier, bigint>;
  /** TTL of the feed leader lock: a standby takes over this long after the leader dies. */
  feedLeaderTtlMs: number;
  /** Requests per minute per API key; 0 turns rate limiting off. */
  rateLimitPerMinute: number;
  /** Orders the OMS accepts in one statement at most when requests queue up (1: one by one). */
  acceptBatchMax: number;
  /** Days an event stays in the log (GET /users/{id}/events, the live stream's replay). */
  eventsRetentionDays: number;
  /**
   * The annual risk-free rate the leaderboard's Sharpe ratio subtracts, in percent with 4
   * decimals as an integer (LEADERBOARD_RISK_FREE_RATE_PCT=4.25 is 42500n).
   */
  leaderboardRiskFreeRatePct: bigint;
  /** The live stream (GET /ws) of each api process. */
  liveStream: {
    /** Connections one api process takes at most; past it an upgrade gets 503. */
    connectionsMax: number;
    /** A client whose unsent data passes this is closed with 4008 (it resumes with since_seq). */
    sendBufferBytesMax: number;
    /** How often the counters are read to repair what the bus lost. */
    sweepIntervalMs: number;
  };
  /**
   * The deployment's fill model and its seeded randomness (a class's rule takes the model's
   * place for its members): FILL_MODEL, FILL_SEED, and the latency realistic orders wait
   * between acceptance and execution, FILL_LATENCY_MS plus a seeded jitter up to
   * FILL_LATENCY_JITTER_MS.
   */
  fills: { model: FillModelName; seed: number; latencyMs: number; latencyJitterMs: number };
  /** The deployment's commission schedule (COMMISSION_*); null: none. A class's rule takes its place. */
  commission: CommissionSchedule | null;
  engine: EngineConfig;
}

export interface EngineConfig {
  /** Stream entries read (and orders executed in one transaction) at most per batch. */
  batchSizeMax: number;
  /** How long one XREADGROUP waits for new entries. */
  blockMs: number;
  /** An entry pending this long in a consumer's list is taken over (its consumer likely died). */
  claimIdleMs: number;
  /** An entry delivered this many times goes to the dead-letter stream; its order is rejected. */
  deliveriesMax: number;
  /** A pending order with no fresh price waits at most this long (from its creation) before REJECTED. */
  priceWaitMsMax: number;
  /** TTL of the resting-order watcher's lease: another engine takes over this long after one dies. */
  restingLeaseTtlMs: number;
  /** How often the reconciler looks for pending orders to re-publish. */
  reconcileIntervalMs: number;
  /** A pending order older than this is re-published by the reconciler (the stream lost it). */
  reconcileAfterMs: number;
  /** How often one engine deletes the events past retention (EVENTS_RETENTION_DAYS). */
  eventsPruneIntervalMs: number;
  /** How often the history leader records every user's equity (PORTFOLIO_SNAPSHOT_INTERVAL_MS). */
  portfolioSnapshotIntervalMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * FEED_SPREAD_BPS: "large=2,mid=10,small=40", any subset (the rest keep their defaults), each a
 * whole number of basis points from 0 to 1000.
 */
function spreadBpsFrom(r: Reader, name: string): Record<LiquidityTier, bigint> {
  const out: Record<LiquidityTier, bigint> = { large: TIER_PARAMS.large.spreadBps, mid: TIER_PARAMS.mid.spreadBps, small: TIER_PARAMS.small.spreadBps };
  const raw = r.optional(name);
  if (raw === undefined) return out;
  for (const part of raw.split(',').map((p) => p.trim())) {
    const m = /^(large|mid|small)=(\d{1,4})$/.exec(part);
    if (!m || Number(m[2]) > 1000) {
      r.problems.push(`${name}: "${part}" is not tier=bps with tier large, mid or small and bps a whole number from 0 to 1000 (e.g. large=2,mid=10,small=40)`);
      continue;
    }
    out[m[1] as LiquidityTier] = BigInt(m[2]!);
  }
  return out;
}

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  string(name: string, fallback: string, check?: (v: string) => string | undefined): string {
    const raw = this.env[name];
    const value = raw === undefined || raw === '' ? fallback : raw;
    const problem = check?.(value);
    if (problem) this.problems.push(`${name}: ${problem} (got ${JSON.stringify(value)})`);
    return value;
  }

  optionalUrl(name: string, protocols: string[]): string | undefined {
    const value = this.optional(name);
    const problem = value === undefined ? undefined : urlCheck(protocols)(value);
    if (problem) this.problems.push(`${name}: ${problem} (got ${JSON.stringify(value)})`);
    return problem ? undefined : value;
  }

  optional(name: string): string | undefined {
    const raw = this.env[name];
    return raw === undefined || raw === '' ? undefined : raw;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      this.problems.push(`${name}: must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return fallback;
    }
    return Number(raw);
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw) || value < min || value > max) {
      this.problems.push(`${name}: must be a number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return fallback;
    }
    return value;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
    if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
    this.problems.push(`${name}: must be true or false (got ${JSON.stringify(raw)})`);
    return fallback;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const value = this.string(name, fallback, (v) =>
      (allowed as readonly string[]).includes(v) ? undefined : `must be one of ${allowed.join(', ')}`,
    );
    return (allowed as readonly string[]).includes(value) ? (value as T) : fallback;
  }
}

/** A cash amount setting (a plain decimal, at most 2 decimals) from 0.01 to 1,000,000.00, in cents. */
/**
 * The deployment's commission schedule from COMMISSION_PER_ORDER, COMMISSION_PER_SHARE,
 * COMMISSION_BPS, COMMISSION_MIN and COMMISSION_MAX (each optional; none set: no commission),
 * read by the same rules as a class's `commission` rule.
 */
function commissionSchedule(r: Reader): CommissionSchedule | null {
  const names = { per_order: 'COMMISSION_PER_ORDER', per_share: 'COMMISSION_PER_SHARE', bps: 'COMMISSION_BPS', minimum: 'COMMISSION_MIN', maximum: 'COMMISSION_MAX' } as const;
  const raw: Record<string, string> = {};
  for (const [field, name] of Object.entries(names)) {
    const value = r.optional(name);
    if (value !== undefined) raw[field] = value;
  }
  if (Object.keys(raw).length === 0) return null;
  try {
    const schedule = parseCommissionSchedule(raw, 'commission');
    return chargesAnything(schedule) ? schedule : null;
  } catch (err) {
    const field = (err as { details?: { field?: string } }).details?.field?.replace('commission.', '') as keyof typeof names | undefined;
    r.problems.push(`${field ? names[field] : 'COMMISSION_*'}: ${(err as Error).message.replace(/commission\.\w+/, 'the value')}`);
    return null;
  }
}

function cashSetting(r: Reader, name: string, fallback: string): bigint {
  const raw = r.string(name, fallback);
  try {
    const value = parseCash(raw, name);
    if (value <= CASH_SETTING_MAX) return value;
  } catch {
    // Reported below with the allowed range.
  }
  r.problems.push(`${name}: must be an amount from 0.01 to 1000000.00 with at most 2 decimals (got ${JSON.stringify(raw)})`);
  return parseCash(fallback, name);
}

const CASH_SETTING_MAX = 100_000_000n;

/** LEADERBOARD_RISK_FREE_RATE_PCT: a plain decimal percent from 0 to 100 with at most 4 decimals. */
function riskFreeRatePct(r: Reader): bigint {
  const raw = r.string('LEADERBOARD_RISK_FREE_RATE_PCT', '0');
  try {
    return parseDecimal(raw, { scale: 4, max: 100_0000n, allowZero: true, field: 'LEADERBOARD_RISK_FREE_RATE_PCT' });
  } catch {
    r.problems.push(`LEADERBOARD_RISK_FREE_RATE_PCT: must be a percent from 0 to 100 with at most 4 decimals, such as 4.25 (got ${JSON.stringify(raw)})`);
    return 0n;
  }
}

/**
 * CORS_ORIGINS: a comma-separated list of exact origins (scheme://host[:port]) allowed to call
 * the API from a browser. No wildcard: an API that takes bearer keys should name who may call it.
 */
function corsOrigins(r: Reader): string[] {
  const raw = r.optional('CORS_ORIGINS');
  if (raw === undefined) return [];
  const origins = raw.split(',').map((o) => o.trim()).filter((o) => o !== '');
  for (const origin of origins) {
    let ok = false;
    try {
      const url = new URL(origin);
      ok = (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === origin;
    } catch {
      ok = false;
    }
    if (!ok) r.problems.push(`CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin such as https://app.example.com (scheme, host and port only, no path or wildcard)`);
  }
  return origins;
}

function urlCheck(protocols: string[]) {
  return (value: string): string | undefined => {
    try {
      const url = new URL(value);
      return protocols.includes(url.protocol) ? undefined : `must be a ${protocols.join(' or ')} URL`;
    } catch {
      return 'must be a URL';
    }
  };
}

/**
 * Connections per process: two per core. PostgreSQL does one statement per backend per core at
 * a time, and more backends than that only queue in the kernel instead of in the pool (on the
 * 2-core bench machine 4 beat 10 by about 10 % in throughput and halved accept -> fill latency).
 */
export const PG_POOL_MAX_DEFAULT = Math.min(20, Math.max(4, 2 * availableParallelism()));


/** Whether `start` runs the engine in a child process (START_ENGINE, see Config.startEngine). */
export function engineInChild(config: Config, cores = availableParallelism()): boolean {
  if (config.startEngine === 'in-process' || !config.redisUrl) return false;
  return config.startEngine === 'child' || cores >= 2;
}

export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const configuredToken = r.optional('PAPERTRADE_ADMIN_TOKEN');
  if (configuredToken !== undefined && configuredToken.length < 16) {
    r.problems.push('PAPERTRADE_ADMIN_TOKEN: must be at least 16 characters');
  }
  const bufferBps = r.int('PAPERTRADE_RESERVATION_BUFFER_BPS', 500, 0, 10_000);
  const config: Config = {
    databaseUrl: r.optionalUrl('DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl: r.optionalUrl('REDIS_URL', ['redis:', 'rediss:']),
    redisPrefix: r.string('PAPERTRADE_REDIS_PREFIX', 'pt:', (v) =>
      /^[A-Za-z0-9:_.-]{1,64}$/.test(v) ? undefined : 'must be 1-64 characters of A-Z a-z 0-9 : _ . -',
    ),
    redisCluster: r.bool('REDIS_CLUSTER', false),
    orderStreamPartitions: r.int('ORDER_STREAM_PARTITIONS', 1, 1, ORDER_STREAM_PARTITIONS_MAX),
    startEngine: r.oneOf('START_ENGINE', 'auto', ['auto', 'child', 'in-process']),
    host: r.string('HOST', '127.0.0.1'),
    port: r.int('PORT', 3000, 0, 65_535),
    // Without PAPERTRADE_ADMIN_TOKEN the token lives in the data directory; roles that need it
    // (the api) read or create it there at start-up (resolveAdminToken in cli/admin-token.ts).
    adminToken: configuredToken ?? '',
    adminTokenSource: configuredToken === undefined ? 'file' : 'env',
    orderNotionalMin: cashSetting(r, 'MIN_ORDER_NOTIONAL', '1.00'),
    dataDir: path.resolve(r.string('PAPERTRADE_DATA_DIR', '.papertrade')),
    corsOrigins: corsOrigins(r),
    logLevel: r.oneOf<LogLevel>('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    pgPoolMax: r.int('PG_POOL_MAX', PG_POOL_MAX_DEFAULT, 1, 200),
    reservationBufferBps: BigInt(bufferBps),
    priceAgeMsMax: r.int('PRICE_AGE_MS_MAX', 5_000, 100, 86_400_000),
    feed: r.oneOf<FeedKind>('FEED', 'simulator', ['simulator', 'replay', 'manual']),
    marketCalendar: r.oneOf<'always' | 'nyse'>('MARKET_CALENDAR', 'always', ['always', 'nyse']),
    marketTimeZone: r.string('MARKET_TIMEZONE', DEFAULT_MARKET_TIMEZONE, (v) =>
      isValidTimeZone(v) ? undefined : 'must be an IANA time zone such as America/New_York or Europe/London',
    ),
    feedTickMs: r.int('FEED_TICK_MS', 250, 10, 60_000),
    feedSeed: r.int('FEED_SEED', 42, 0, 2 ** 31 - 1),
    feedReplayFile: r.optional('FEED_REPLAY_FILE'),
    feedReplaySpeed: r.number('FEED_REPLAY_SPEED', 1, 0.001, 1_000_000),
    feedReplayLoop: r.bool('FEED_REPLAY_LOOP', true),
    feedCorrelation: r.number('FEED_CORRELATION', 0.5, 0, 1),
    feedSpreadBps: spreadBpsFrom(r, 'FEED_SPREAD_BPS'),
    feedLeaderTtlMs: r.int('FEED_LEADER_TTL_MS', 3_000, 100, 60_000),
    rateLimitPerMinute: r.int('RATE_LIMIT_PER_MINUTE', 0, 0, 10_000_000),
    acceptBatchMax: r.int('OMS_ACCEPT_BATCH_MAX', 100, 1, 1_000),
    eventsRetentionDays: r.int('EVENTS_RETENTION_DAYS', 30, 1, 3_650),
    leaderboardRiskFreeRatePct: riskFreeRatePct(r),
    liveStream: {
      connectionsMax: r.int('WS_CONNECTIONS_MAX', 10_000, 1, 1_000_000),
      sendBufferBytesMax: r.int('WS_SEND_BUFFER_BYTES_MAX', 1_048_576, 65_536, 268_435_456),
      sweepIntervalMs: r.int('WS_SWEEP_INTERVAL_MS', 2_000, 100, 600_000),
    },
    fills: {
      model: r.oneOf<FillModelName>('FILL_MODEL', 'ideal', [...FILL_MODELS]),
      seed: r.int('FILL_SEED', 42, 0, 2 ** 31 - 1),
      latencyMs: r.int('FILL_LATENCY_MS', 0, 0, 10_000),
      latencyJitterMs: r.int('FILL_LATENCY_JITTER_MS', 0, 0, 10_000),
    },
    commission: commissionSchedule(r),
    engine: {
      batchSizeMax: r.int('ENGINE_BATCH_SIZE_MAX', 200, 1, 5_000),
      blockMs: r.int('ENGINE_BLOCK_MS', 1_000, 10, 60_000),
      claimIdleMs: r.int('ENGINE_CLAIM_IDLE_MS', 15_000, 100, 3_600_000),
      deliveriesMax: r.int('ENGINE_DELIVERIES_MAX', 5, 1, 1_000),
      priceWaitMsMax: r.int('ENGINE_PRICE_WAIT_MS_MAX', 60_000, 0, 86_400_000),
      restingLeaseTtlMs: r.int('ENGINE_RESTING_LEASE_TTL_MS', 3_000, 100, 60_000),
      reconcileIntervalMs: r.int('RECONCILE_INTERVAL_MS', 2_000, 50, 3_600_000),
      reconcileAfterMs: r.int('RECONCILE_AFTER_MS', 5_000, 0, 86_400_000),
      eventsPruneIntervalMs: r.int('EVENTS_PRUNE_INTERVAL_MS', 600_000, 1_000, 86_400_000),
      // At least a second: a round reads every user; at most a day, the coarsest history kept.
      portfolioSnapshotIntervalMs: r.int('PORTFOLIO_SNAPSHOT_INTERVAL_MS', 60_000, 1_000, 86_400_000),
    },
  };
  if (config.feed === 'replay' && !config.feedReplayFile) {
    r.problems.push('FEED_REPLAY_FILE: required when FEED=replay');
  }
  if (config.startEngine === 'child' && !config.redisUrl) {
    r.problems.push('START_ENGINE: child needs REDIS_URL (a child engine shares the order pipe and the prices through Redis)');
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}
