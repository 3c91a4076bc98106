/**
 * `papertrade bench`: an end-to-end benchmark of papertrade as it is deployed — its roles as
 * separate OS processes (or one `start` process with --all-in-one) on a scratch database and a
 * Redis prefix of their own — driven over HTTP by a real load generator, then the SQL floor
 * (the least SQL an order needs, see floor.ts) on the same database, and a report.
 *
 * Throughput and accept → fill latency come from the database (orders created and filled inside
 * the steady window, after the warm-up); HTTP latency from the load generator; CPU per order
 * from /proc/<pid>/stat at the window's edges; peak memory from /proc sampled every 250 ms.
 * Every child runs in its own process group and is killed on exit, SIGINT or error.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Redis } from 'ioredis';
import { ADMIN_TOKEN_FILE } from '../cli/admin-token.js';
import { parsePrice } from '../core/money.js';
import { loadConfig } from '../infra/config.js';
import { DEFAULT_DATABASE, LOG_FILE, startEmbeddedPostgres, type EmbeddedServer } from '../infra/embedded-postgres.js';
import { createKeys, type Keys } from '../infra/keys.js';
import { migrateToLatest, quoteIdent, type Db } from '../infra/postgres.js';
import { createRedis } from '../infra/redis.js';
import type { Database } from '../infra/schema.js';
import { createUser } from '../services/users/users.service.js';
import { embeddedCluster, readProcs, stopCluster } from './cluster.js';
import { runFloor } from './floor.js';
import { runPgbenchFloor, type PgbenchFloorResult } from './pgbench-floor.js';
import { ORDER_BATCH_MAX } from '../services/orders/orders.service.js';
import { errorCode, runLoad, sendAll, type LoadResult, type LoadSnapshot, type OrderRequest } from './load.js';
import {
  clkTck,
  freePort,
  installCleanup,
  killAllSync,
  readMachineBusyMs,
  readReapedChildrenCpuMs,
  readStat,
  readStatusKb,
  RssSampler,
  startProcess,
  stopProcess,
  tailFile,
  type ManagedProcess,
} from './processes.js';
import { renderMarkdown, saveReport, summarize, type BenchReport, type PgbenchFloorPart, type PgSummary, type ProcessCpu } from './report.js';
import type { Percentiles } from './stats.js';
import { runStartup } from './startup.js';
import { zeroConfigEnv } from './zero-config.js';
import {
  CROSS_ORDERS_DEFAULT,
  CROSS_ORDERS_MAX,
  CROSS_REPEATS_DEFAULT,
  CROSS_REPEATS_MAX,
  orderJson,
  planRestingOrders,
  renderRestingMarkdown,
  RESTING_IDLE_S_DEFAULT,
  RESTING_ORDERS_DEFAULT,
  RESTING_ORDERS_MAX,
  restingReport,
  type CrossingResult,
  type HeapReading,
  type MarketPhase,
  type RestingOptions,
  type RestingPart,
} from './resting.js';
import {
  between,
  engineSnapshot,
  forcedGcReading,
  idleWindow,
  INDEX_WAIT_MS,
  inspectorUrl,
  logCounts,
  ordersRowUpdates,
  placementDeadlineMs,
  placeOrders,
  runCrossing,
  runMicroBench,
  waitRested,
  windowHealth,
  type EngineSnapshot,
  type LogCounts,
} from './resting-run.js';
import { lossFree, parseStreamOptions, renderStreamMarkdown, streamReport, type RawStreamOptions, type StreamOptions, type StreamPart } from './stream.js';
import { runStreamPhases, type MarketInput } from './stream-run.js';
import {
  alpacaHeaders,
  alpacaOrderBody,
  FACADE_PATH,
  FACADE_ROUNDS_DEFAULT,
  FACADE_ROUNDS_MAX,
  facadeLabel,
  facadePart,
  facadeSchedule,
  NATIVE_PATH,
  type FacadeOptions,
  type FacadePart,
  type FacadeTarget,
  type FacadeWindowInput,
} from './facade.js';

/** The server the bench creates its scratch database on when DATABASE_URL is unset. */
export const BENCH_DATABASE_URL_DEFAULT = 'postgres://postgres@127.0.0.1:5432/postgres';

/** Start-time runs of --startup when --runs is not given. */
export const DEFAULT_STARTUP_RUNS = 3;
/** How long the embedded start may take to answer /ready: initdb and the migrations come first. */
export const EMBEDDED_START_WAIT_MS = 180_000;

export const DEFAULT_TICKERS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'JPM'];
/** How long a role may take to become ready. */
export const START_WAIT_MS = 30_000;
/** How long the bench waits for every order to leave PENDING after the load. */
export const DRAIN_WAIT_MS = 60_000;
/** Open loop: requests scheduled while this many are unanswered are dropped (and counted). */
export const INFLIGHT_MAX = 20_000;
/** Cash every bench user starts with. */
export const USER_CASH_CENTS = 100_000_000_00n;
const BENCH_APP = 'papertrade-bench';
/** The one process of --embedded, and what its memory and CPU add up to with its PostgreSQL. */
const EMBEDDED_PROCESS = 'papertrade (embedded: start, nothing configured)';
const EMBEDDED_TOTAL_LABEL = 'total: papertrade + its PostgreSQL';
const MACHINE = 'whole machine';
/** The bench's own row in the CPU rows: the load generator (and --stream's WebSocket clients). */
const BENCH_LOAD_LABEL = 'bench (load generator)';
const PRICE_REFRESH_MS = 250;
/** Most processes of one role --api / --engines start (each takes its own PostgreSQL pool). */
export const ROLE_PROCESSES_MAX = 16;

/** The options as commander hands them over (strings, booleans); --stream's are in RawStreamOptions. */
export interface RawBenchOptions extends RawStreamOptions {
  duration: string;
  warmup: string;
  rate: string;
  concurrency: string;
  /** --fill-models: the run under ideal, then realistic (fill-models-bench.ts); the CLI handles it. */
  fillModels?: boolean;
  users: string;
  sellRatio: string;
  quantity: string;
  seedShares: string;
  allInOne: boolean;
  /** --embedded: one `start` with nothing configured (its own PostgreSQL, Redis parts in memory). */
  embedded?: boolean;
  /** --startup: measure start times instead (startup.ts). */
  startup?: boolean;
  /** --runs: start-time runs (with --startup). */
  runs?: string;
  /** --resting: the resting-orders scenario (resting.ts); its sizes (undefined: the defaults). */
  resting?: boolean;
  restingOrders?: string;
  restingCross?: string;
  restingIdle?: string;
  restingCrossRepeats?: string;
  /** --facade: native POST /orders and the Alpaca facade's POST /v2/orders in alternating windows (facade.ts). */
  facade?: boolean;
  /** --facade-rounds: rounds of one native and one facade window (with --facade). */
  facadeRounds?: string;
  /** false with --no-feed: the bench writes the prices instead of a feed role. */
  feed: boolean;
  floor: boolean;
  floorDuration: string;
  floorWarmup: string;
  floorConnections?: string;
  floorFillConnections?: string;
  floorBatch: string;
  /** false with --no-pgbench-floor: only the Node-driven floor. */
  pgbenchFloor?: boolean;
  /** --batch N: orders per POST /orders/batch (1: POST /orders, one order a request). */
  batch?: string;
  /** --api N / --engines M: processes of each role (separate roles only). */
  api?: string;
  engines?: string;
  dbName: string;
  jsonOnly: boolean;
}

export interface BenchOptions {
  durationS: number;
  warmupS: number;
  rate: number | 'max';
  concurrency: number;
  users: number;
  sellRatio: number;
  quantity: number;
  seedShares: number;
  allInOne: boolean;
  embedded: boolean;
  startup: boolean;
  runs: number;
  /** Null unless --resting. */
  resting: RestingOptions | null;
  /** Null unless --stream. */
  stream: StreamOptions | null;
  /** Null unless --facade. */
  facade: FacadeOptions | null;
  feed: boolean;
  floor: boolean;
  floorDurationS: number;
  floorWarmupS: number;
  floorConnections: number | undefined;
  floorFillConnections: number | undefined;
  floorBatch: number;
  /** The floor's SQL run by pgbench as well (the native client: the physical floor). */
  pgbenchFloor: boolean;
  /** Orders per request: 1 sends POST /orders, more POST /orders/batch (with the admin token). */
  batch: number;
  apiProcesses: number;
  engineProcesses: number;
  dbName: string;
  jsonOnly: boolean;
}

export class BenchUsageError extends Error {}

function intIn(name: string, raw: string | undefined, min: number, max: number): number {
  if (raw === undefined || !/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new BenchUsageError(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  }
  return Number(raw);
}

export function parseBenchOptions(raw: RawBenchOptions): BenchOptions {
  const rate = raw.rate === 'max' ? 'max' : intIn('rate', raw.rate, 1, 1_000_000);
  const sellRatio = Number(raw.sellRatio);
  if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(raw.sellRatio)) throw new BenchUsageError(`--sell-ratio must be from 0 to 1 (got ${raw.sellRatio})`);
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(raw.dbName)) throw new BenchUsageError('--db-name must be a lower-case identifier');
  const embedded = raw.embedded === true;
  const startup = raw.startup === true;
  if (embedded && raw.feed === false) {
    throw new BenchUsageError(
      '--no-feed cannot be used with --embedded: with REDIS_URL unset the price cache lives inside the `papertrade start` ' +
        'process, where the bench cannot write; the feed running in that process provides the prices',
    );
  }
  if (startup && (embedded || raw.allInOne)) {
    throw new BenchUsageError('--startup measures start times on its own (always one `papertrade start`, nothing configured): drop --embedded / --all-in-one');
  }
  if (raw.runs !== undefined && !startup) throw new BenchUsageError('--runs goes with --startup');
  const resting = raw.resting === true;
  if (!resting && [raw.restingOrders, raw.restingCross, raw.restingIdle, raw.restingCrossRepeats].some((v) => v !== undefined)) {
    throw new BenchUsageError('--resting-orders, --resting-cross, --resting-cross-repeats and --resting-idle go with --resting');
  }
  if (resting && startup) throw new BenchUsageError('--resting and --startup are separate scenarios: run one at a time');
  if (resting && !(raw.allInOne || embedded)) {
    throw new BenchUsageError(
      '--resting needs --all-in-one or --embedded: it reads the engine\'s tick-evaluation histogram, index gauge and heap from ' +
        '/metrics, and only the api serves /metrics (an engine role on its own exposes none)',
    );
  }
  if (resting && rate !== 'max') throw new BenchUsageError('--resting compares closed-loop throughput with and without resting orders: leave --rate at max');
  const stream = parseStreamOptions(raw, (m) => new BenchUsageError(m));
  if (stream && (startup || resting)) throw new BenchUsageError('--stream, --resting and --startup are separate scenarios: run one at a time');
  if (stream && raw.feed === false && !(raw.allInOne || embedded)) {
    throw new BenchUsageError('--stream measures tick → delivery: it needs the feed role (drop --no-feed)');
  }
  const facade = raw.facade === true;
  if (!facade && raw.facadeRounds !== undefined) throw new BenchUsageError('--facade-rounds goes with --facade');
  const scaled = (raw.api !== undefined && raw.api !== '1') || (raw.engines !== undefined && raw.engines !== '1');
  if (scaled && (raw.allInOne || embedded)) {
    throw new BenchUsageError('--api and --engines start separate role processes: drop --all-in-one / --embedded');
  }
  if (raw.batch !== undefined && raw.batch !== '1' && (facade || resting || stream || startup)) {
    throw new BenchUsageError('--batch measures the market-order load through POST /orders/batch: not with --facade, --resting, --stream or --startup');
  }
  if (facade && (startup || resting || stream)) {
    throw new BenchUsageError('--facade, --stream, --resting and --startup are separate scenarios: run one at a time');
  }
  const quantity = intIn('quantity', raw.quantity, 1, 1_000);
  const seedShares = intIn('seed-shares', raw.seedShares, quantity, 1_000_000);
  return {
    durationS: intIn('duration', raw.duration, 1, 3_600),
    warmupS: intIn('warmup', raw.warmup, 0, 600),
    rate,
    concurrency: intIn('concurrency', raw.concurrency, 1, 4_096),
    users: intIn('users', raw.users, 1, 100_000),
    sellRatio,
    quantity,
    seedShares,
    allInOne: raw.allInOne || embedded,
    embedded,
    startup,
    runs: raw.runs === undefined ? DEFAULT_STARTUP_RUNS : intIn('runs', raw.runs, 1, 100),
    resting: resting
      ? {
          orders: intIn('resting-orders', raw.restingOrders ?? String(RESTING_ORDERS_DEFAULT), 1, RESTING_ORDERS_MAX),
          cross: intIn('resting-cross', raw.restingCross ?? String(CROSS_ORDERS_DEFAULT), 1, CROSS_ORDERS_MAX),
          crossRepeats: intIn('resting-cross-repeats', raw.restingCrossRepeats ?? String(CROSS_REPEATS_DEFAULT), 1, CROSS_REPEATS_MAX),
          idleS: intIn('resting-idle', raw.restingIdle ?? String(RESTING_IDLE_S_DEFAULT), 1, 600),
        }
      : null,
    stream,
    facade: facade ? { rounds: intIn('facade-rounds', raw.facadeRounds ?? String(FACADE_ROUNDS_DEFAULT), 1, FACADE_ROUNDS_MAX) } : null,
    feed: raw.feed !== false,
    // The resting and stream scenarios compare papertrade with itself: the SQL floor adds nothing to them.
    floor: raw.floor && !resting && !stream,
    floorDurationS: intIn('floor-duration', raw.floorDuration, 1, 3_600),
    floorWarmupS: intIn('floor-warmup', raw.floorWarmup, 0, 600),
    floorConnections: raw.floorConnections === undefined ? undefined : intIn('floor-connections', raw.floorConnections, 2, 200),
    floorFillConnections:
      raw.floorFillConnections === undefined ? undefined : intIn('floor-fill-connections', raw.floorFillConnections, 1, 199),
    floorBatch: intIn('floor-batch', raw.floorBatch, 1, 5_000),
    pgbenchFloor: raw.floor && raw.pgbenchFloor !== false && !resting && !stream,
    batch: raw.batch === undefined ? 1 : intIn('batch', raw.batch, 1, ORDER_BATCH_MAX),
    apiProcesses: raw.api === undefined ? 1 : intIn('api', raw.api, 1, ROLE_PROCESSES_MAX),
    engineProcesses: raw.engines === undefined ? 1 : intIn('engines', raw.engines, 1, ROLE_PROCESSES_MAX),
    dbName: raw.dbName,
    jsonOnly: raw.jsonOnly,
  };
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until true; throws `what` after `timeoutMs` (or as soon as `abort` says why). */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, abort?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = abort?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

interface BenchUser {
  id: string;
  authorization: string;
  /** The same key as Alpaca's header pair, with the content type (--facade's POST /v2/orders). */
  alpacaHeaders: Readonly<Record<string, string>>;
}

async function createUsers(db: Db, count: number, tag: string, say: (s: string) => void): Promise<BenchUser[]> {
  const users: BenchUser[] = new Array<BenchUser>(count);
  let next = 0;
  let lastReport = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const created = await createUser(db, {
        name: `bench ${i}`,
        email: `bench-${tag}-${i}@bench.invalid`,
        initialCash: USER_CASH_CENTS,
      });
      users[i] = { id: created.user.id, authorization: `Bearer ${created.apiKey}`, alpacaHeaders: alpacaHeaders(created.apiKey) };
      if (performance.now() - lastReport > 1_000) {
        lastReport = performance.now();
        say(`  users: ${next}/${count}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return users;
}

async function recreateDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl, application_name: BENCH_APP });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
}

async function pendingCount(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM orders WHERE status = 'PENDING'`);
  return Number(rows[0]!.n);
}

/** Waits (bounded) until no order is PENDING; returns how long it took and what is left. */
async function drain(pool: pg.Pool, timeoutMs: number): Promise<{ ms: number; pendingLeft: number }> {
  const started = performance.now();
  for (;;) {
    const left = await pendingCount(pool);
    const ms = Math.round(performance.now() - started);
    if (left === 0 || ms > timeoutMs) return { ms, pendingLeft: left };
    await sleep(250);
  }
}

interface WindowStats {
  accepted: number;
  filled: number;
  rejected: Record<string, number>;
  acceptToFill: Percentiles;
}

/** Orders created and filled inside [start, end), from the database. */
async function windowStats(pool: pg.Pool, startMs: number, endMs: number): Promise<WindowStats> {
  const start = new Date(startMs);
  const end = new Date(endMs);
  const c = await pool.query<{ accepted: string; filled: string }>(
    `SELECT count(*) FILTER (WHERE created_at >= $1 AND created_at < $2) AS accepted,
            count(*) FILTER (WHERE status = 'FILLED' AND filled_at >= $1 AND filled_at < $2) AS filled
       FROM orders`,
    [start, end],
  );
  const r = await pool.query<{ reason: string; n: string }>(
    `SELECT reject_reason AS reason, count(*) AS n FROM orders
      WHERE status = 'REJECTED' AND created_at >= $1 AND created_at < $2 GROUP BY 1`,
    [start, end],
  );
  const l = await pool.query<{ n: string; p50: number | null; p95: number | null; p99: number | null; max: number | null }>(
    `SELECT count(*) AS n,
            percentile_cont(0.50) WITHIN GROUP (ORDER BY ms) AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
            max(ms) AS max
       FROM (SELECT extract(epoch FROM filled_at - created_at)::float8 * 1000 AS ms
               FROM orders WHERE status = 'FILLED' AND created_at >= $1 AND created_at < $2) s`,
    [start, end],
  );
  const row = l.rows[0]!;
  return {
    accepted: Number(c.rows[0]!.accepted),
    filled: Number(c.rows[0]!.filled),
    rejected: Object.fromEntries(r.rows.map((x) => [x.reason, Number(x.n)])),
    acceptToFill: { count: Number(row.n), p50: row.p50 ?? 0, p95: row.p95 ?? 0, p99: row.p99 ?? 0, max: row.max ?? 0, exact: true },
  };
}

/** One market-order measurement (runMarket in runBench). */
interface MarketRun {
  load: LoadResult;
  stats: WindowStats;
  drained: { ms: number; pendingLeft: number };
  sides: { buy: number; sell: number };
  processes: ProcessCpu[];
  postgres: PgSummary;
  checkpoints: number;
  clusterSize: number;
}

/** A measurement's figures as the report gives them. */
function marketFigures(
  run: MarketRun,
  durationS: number,
): Omit<MarketPhase, 'label' | 'restingInIndex' | 'tickEval' | 'restingExecutions' | 'ordersRowUpdatesPerOrder' | 'health'> {
  return {
    http: {
      sent: run.load.sent,
      ok: run.load.ok,
      acceptedPerS: run.load.steady.ok / durationS,
      latencyMs: summarize(run.load.steady.latency.percentiles()),
      unfinished: run.load.unfinished,
    },
    db: {
      accepted: run.stats.accepted,
      filled: run.stats.filled,
      acceptedPerS: run.stats.accepted / durationS,
      filledPerS: run.stats.filled / durationS,
      rejected: run.stats.rejected,
      acceptToFillMs: summarize(run.stats.acceptToFill),
    },
    sides: run.sides,
    processes: run.processes,
    postgres: run.postgres,
    errors: run.load.errors,
    drain: run.drained,
  };
}

/** The PostgreSQL processes that work for this run: our database's backends and the background processes. */
async function postgresPids(pool: pg.Pool, dbName: string, excludeApps = `${BENCH_APP}%`): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number; postmaster: number | null }>(
    `SELECT pid, NULL::int AS postmaster FROM pg_stat_activity
      WHERE pid <> pg_backend_pid()
        AND ((backend_type <> 'client backend' AND (datname IS NULL OR datname = $1))
          OR (backend_type = 'client backend' AND datname = $1 AND application_name NOT LIKE $2))
     UNION ALL SELECT NULL, pg_backend_pid()`,
    [dbName, excludeApps],
  );
  const pids = rows.filter((r) => r.pid !== null).map((r) => r.pid);
  const self = rows.find((r) => r.postmaster !== null)?.postmaster;
  const postmaster = self ? readStat(self)?.ppid : undefined;
  if (postmaster) pids.push(postmaster);
  return pids;
}

/** The pgbench floor's shape: the issue's "accept with 16 clients, fills in batches of 50". */
export const PGBENCH_ACCEPT_CLIENTS = 16;
export const PGBENCH_FILL_CLIENTS = 2;
export const PGBENCH_FILL_BATCH = 50;

/** The pgbench floor's result as the report shows it, with the CPU per order of each phase. */
function pgbenchPart(r: PgbenchFloorResult, cpu: Record<string, { pgbench: number; machine: number }>): PgbenchFloorPart {
  const perOrder = (ms: number | undefined, orders: number) => (ms === undefined || orders === 0 ? null : ms / orders);
  return {
    version: r.pgbenchVersion,
    users: r.users,
    accept: {
      clients: r.accept.run.clients,
      seconds: r.accept.run.elapsedS,
      perS: r.accept.perS,
      latencyAvgMs: r.accept.run.latencyAvgMs,
      accepted: r.accept.accepted,
      refused: r.accept.refusedBuys + r.accept.refusedSells,
      pgbenchMsPerOrder: perOrder(cpu.accept?.pgbench, r.accept.accepted),
      restOfMachineMsPerOrder: perOrder(cpu.accept?.machine, r.accept.accepted),
    },
    fill: {
      clients: r.fill.run.clients,
      seconds: r.fill.run.elapsedS,
      perS: r.fill.perS,
      latencyAvgMs: r.fill.run.latencyAvgMs,
      batch: r.fill.batch,
      filled: r.fill.filled,
      exhausted: r.fill.exhausted,
      pgbenchMsPerOrder: perOrder(cpu.fill?.pgbench, r.fill.filled),
      restOfMachineMsPerOrder: perOrder(cpu.fill?.machine, r.fill.filled),
    },
    combinedPerS: r.combinedPerS,
  };
}

/** The refusals among a POST /orders/batch answer's results, as "<status> <code chain>". */
export function batchRefusals(body: string): string[] {
  try {
    const { results } = JSON.parse(body) as { results: { status: number; error?: unknown }[] };
    return results.filter((r) => r.status >= 300).map((r) => `${r.status} ${errorCode(JSON.stringify({ error: r.error }))} (in a batch)`);
  } catch {
    return ['200 non-json (a batch)'];
  }
}

/** The backends of the bench's own pool (embedded: set apart from the cluster's processes). */
async function benchBackendPids(pool: pg.Pool): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [BENCH_APP]);
  return rows.map((r) => r.pid);
}

const fmtMs = (v: number) => Math.round(v).toLocaleString('en-US');

/** Cluster-wide PostgreSQL counters: WAL position (bytes), checkpoints and deadlocks so far. */
interface PgCounters {
  walBytes: bigint;
  checkpoints: number;
  /** Deadlocks detected in the cluster's databases: each one stalls its statements for deadlock_timeout. */
  deadlocks: number;
}

async function pgCounters(pool: pg.Pool): Promise<PgCounters> {
  const { rows } = await pool.query<{ lsn: string; deadlocks: string; version: number }>(
    `SELECT pg_current_wal_lsn()::text AS lsn, (SELECT sum(deadlocks) FROM pg_stat_database)::text AS deadlocks,
            current_setting('server_version_num')::int AS version`,
  );
  // PostgreSQL 17 moved the checkpoint counters from pg_stat_bgwriter to pg_stat_checkpointer.
  const cp = await pool.query<{ checkpoints: string }>(
    rows[0]!.version >= 170000
      ? 'SELECT (num_timed + num_requested)::text AS checkpoints FROM pg_stat_checkpointer'
      : 'SELECT (checkpoints_timed + checkpoints_req)::text AS checkpoints FROM pg_stat_bgwriter',
  );
  const [hi, lo] = rows[0]!.lsn.split('/');
  return {
    walBytes: (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`),
    checkpoints: Number(cp.rows[0]!.checkpoints),
    deadlocks: Number(rows[0]!.deadlocks ?? 0),
  };
}

function walSummary(a: PgCounters | undefined, b: PgCounters | undefined, orders: number): PgSummary {
  if (!a || !b) return { walBytesPerOrder: null, checkpoints: null, deadlocks: null };
  return {
    walBytesPerOrder: orders > 0 ? Math.round(Number(b.walBytes - a.walBytes) / orders) : null,
    checkpoints: b.checkpoints - a.checkpoints,
    deadlocks: b.deadlocks - a.deadlocks,
  };
}

type CpuSample = Map<string, Map<number, number>>;
interface CpuSnapshot {
  at: number;
  procs: CpuSample;
}

/** utime+stime of every named group of pids, of this process (the load generator) and of the machine. */
function sampleCpu(groups: [string, number[]][], self: string): CpuSnapshot {
  const procs: CpuSample = new Map();
  for (const [name, pids] of groups) {
    const m = new Map<number, number>();
    for (const pid of pids) {
      const s = readStat(pid);
      if (s) m.set(pid, s.cpuMs);
    }
    procs.set(name, m);
  }
  const u = process.cpuUsage();
  procs.set(self, new Map([[process.pid, (u.user + u.system) / 1000]]));
  procs.set(MACHINE, new Map([[0, readMachineBusyMs() ?? 0]]));
  return { at: performance.now(), procs };
}

const POSTGRES_LABEL = 'postgres (this database’s backends + background)';
const EMBEDDED_POSTGRES_LABEL = 'its PostgreSQL (embedded: the postmaster and every process of the cluster, the bench’s connections excepted)';
const BENCH_PG_LABEL = 'the bench’s own connections to that PostgreSQL (not counted above)';
const OTHERS_LABEL = 'everything else on the machine';
/** Group names (CPU samples, memory peaks) of the PostgreSQL processes that work for papertrade and of the bench's own backends. */
const PG_GROUP = 'postgres';
const BENCH_PG_GROUP = 'bench-pg';

/** A row that adds up other groups: its CPU is their sum, its memory the peak of their simultaneous sum. */
export interface TotalSpec {
  label: string;
  members: string[];
}

/**
 * CPU per group between two snapshots: a pid seen only at the end counts whole (it started in
 * the window), one seen only at the start is left out. The machine's busy time less ours is
 * what else ran on the machine. `labels` renames groups in the rows; `totals` adds rows (just
 * before "everything else") whose peak memory is looked up under their label.
 */
function cpuRows(
  a: CpuSnapshot | undefined,
  b: CpuSnapshot | undefined,
  orders: number,
  fallbackMs: number,
  peakKb: Map<string, number>,
  labels: ReadonlyMap<string, string> = new Map([[PG_GROUP, POSTGRES_LABEL]]),
  totals: readonly TotalSpec[] = [],
): ProcessCpu[] {
  const rows: ProcessCpu[] = [];
  if (!b) return rows;
  const windowMs = a ? b.at - a.at : fallbackMs;
  const row = (name: string, cpuMs: number, kb: number | undefined): ProcessCpu => ({
    process: name,
    cpuMs: Math.round(cpuMs),
    msPerOrder: orders > 0 ? cpuMs / orders : null,
    cores: cpuMs / windowMs,
    peakMb: kb === undefined ? null : Math.round(kb / 1024),
  });
  let ours = 0;
  const groupMs = new Map<string, number>();
  for (const [name, end] of b.procs) {
    let cpuMs = 0;
    for (const [pid, ms] of end) cpuMs += ms - (a?.procs.get(name)?.get(pid) ?? 0);
    if (name === MACHINE) {
      for (const t of totals) {
        rows.push(row(t.label, t.members.reduce((sum, m) => sum + (groupMs.get(m) ?? 0), 0), peakKb.get(t.label)));
      }
      rows.push(row(OTHERS_LABEL, Math.max(0, cpuMs - ours), undefined));
      rows.push(row(`${MACHINE} (${os.cpus().length} cores)`, cpuMs, undefined));
    } else {
      ours += cpuMs;
      groupMs.set(name, cpuMs);
      rows.push(row(labels.get(name) ?? name, cpuMs, peakKb.get(name)));
    }
  }
  return rows;
}

function gitCommit(root: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1]!.trim() : (os.cpus()[0]?.model ?? 'unknown');
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Without a feed role, the bench keeps the price cache fresh itself. */
function startPriceSeeder(redis: Redis, keys: Keys, prices: { ticker: string; price: string }[]): () => void {
  const write = () => {
    const now = Date.now();
    const fields: string[] = [];
    for (const p of prices) fields.push(p.ticker, `${p.price}|${now}`);
    void redis.hset(keys.prices(), ...fields).catch(() => undefined);
  };
  write();
  const timer = setInterval(write, PRICE_REFRESH_MS);
  return () => clearInterval(timer);
}

/** Runs the benchmark; resolves with the exit code (0, or 1 when the audit found violations). */
export async function runBench(raw: RawBenchOptions, sink?: (report: BenchReport) => void): Promise<number> {
  const o = parseBenchOptions(raw);
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const mainJs = path.join(root, 'dist', 'cli', 'main.js');
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: build first (npm run build; npm run bench builds)`);
  if (o.startup) return runStartup({ runs: o.runs, jsonOnly: o.jsonOnly, root, mainJs, commit: gitCommit(root), cpu: cpuModel() });
  const say = o.jsonOnly ? () => undefined : (s: string) => void process.stderr.write(`${s}\n`);
  const tty = process.stderr.isTTY && !o.jsonOnly;
  const status = (line: string, force = false) => {
    if (o.jsonOnly) return;
    if (tty) process.stderr.write(`\r${line.padEnd(118).slice(0, 118)}`);
    else if (force) process.stderr.write(`${line}\n`);
  };
  const endStatus = () => tty && process.stderr.write('\n');

  const runId = randomBytes(4).toString('hex');
  const embedded = o.embedded;
  // --embedded: a fresh data directory of its own, where `start` runs initdb; removed at the end.
  const dataDir = embedded ? mkdtempSync(path.join(os.tmpdir(), `papertrade-bench-${runId}-data-`)) : undefined;
  const baseUrl = process.env.DATABASE_URL || BENCH_DATABASE_URL_DEFAULT;
  const dbName = embedded ? DEFAULT_DATABASE : o.dbName;
  // Embedded: known once `start` runs its server (and again when the bench restarts it for the audit).
  let dbUrl = embedded ? '' : withDatabase(baseUrl, dbName);
  const redisUrl = embedded ? undefined : process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const prefix = `ptbench:${runId}:`;
  const keys = createKeys(prefix);
  const logDir = path.join(os.tmpdir(), `papertrade-bench-${runId}`);
  mkdirSync(logDir, { recursive: true });
  const notes: string[] = [];

  say(
    embedded
      ? `papertrade bench ${runId}: embedded — papertrade start with nothing configured, data in ${dataDir}, logs in ${logDir}`
      : `papertrade bench ${runId}: database ${dbName}, redis prefix ${prefix}, logs in ${logDir}`,
  );
  let pool!: pg.Pool;
  let db!: Db;
  const connect = (url: string) => {
    pool = new pg.Pool({ connectionString: url, max: 8, application_name: BENCH_APP, statement_timeout: 120_000 });
    pool.on('error', () => undefined);
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  };
  if (!embedded) {
    await recreateDatabase(withDatabase(baseUrl, 'postgres'), dbName);
    connect(dbUrl);
  }
  const redis = redisUrl === undefined ? undefined : createRedis(redisUrl, { name: BENCH_APP });
  redis?.on('error', () => undefined);
  const children: ManagedProcess[] = [];
  let stopPrices: (() => void) | undefined;
  /** Embedded: the server the bench starts itself once papertrade has stopped (audit, floor). */
  let ownServer: EmbeddedServer | undefined;
  const rssSums = new Map<string, string[]>();
  const newRss = () => new RssSampler(() => rssTargets(), 250, new Set([PG_GROUP, BENCH_PG_GROUP]), rssSums);
  /** The sampler of the current measurement (each measurement has its own peaks). */
  let rss = newRss();
  let pgPidsCache: number[] = [];
  let benchPgPids: number[] = [];
  let redisPid: number | undefined;
  const rssTargets = () => {
    const m = new Map<string, number[]>();
    for (const c of children) if (!c.exited) m.set(c.name, [c.pid]);
    m.set(PG_GROUP, pgPidsCache);
    if (embedded) m.set(BENCH_PG_GROUP, benchPgPids);
    if (redisPid) m.set('redis-server', [redisPid]);
    return m;
  };
  /** The PostgreSQL processes that work for papertrade now (and, embedded, the bench's own backends). */
  const refreshPgPids = async () => {
    if (dataDir) {
      benchPgPids = await benchBackendPids(pool);
      const bench = new Set(benchPgPids);
      pgPidsCache = embeddedCluster(dataDir).pids.filter((pid) => !bench.has(pid));
    } else {
      pgPidsCache = await postgresPids(pool, dbName);
    }
  };
  const removeDataDir = async () => {
    if (!dataDir || !existsSync(dataDir)) return;
    if (!(await stopCluster(dataDir, 2_000))) {
      say(`warning: processes of the embedded PostgreSQL in ${dataDir} are still running; the directory is kept`);
      return;
    }
    try {
      copyFileSync(path.join(dataDir, LOG_FILE), path.join(logDir, LOG_FILE));
    } catch {
      // No log (it never started).
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  installCleanup(async () => {
    stopPrices?.();
    if (redis) await deleteKeys(redis, prefix).catch(() => undefined);
    await removeDataDir().catch(() => undefined);
  });

  try {
    if (!embedded) await migrateToLatest(db);
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const apiPorts = [port];
    while (apiPorts.length < o.apiProcesses) apiPorts.push(await freePort());
    const origins = apiPorts.map((p) => `http://127.0.0.1:${p}`);
    let adminToken = `bench-admin-${randomBytes(12).toString('hex')}`;
    const childEnv: NodeJS.ProcessEnv = dataDir
      ? // Nothing configured: no DATABASE_URL, no REDIS_URL, no admin token (start writes one into the data directory).
        zeroConfigEnv(process.env, { dataDir, port })
      : {
          ...process.env,
          DATABASE_URL: dbUrl,
          REDIS_URL: redisUrl,
          PAPERTRADE_REDIS_PREFIX: prefix,
          HOST: '127.0.0.1',
          PORT: String(port),
          PAPERTRADE_ADMIN_TOKEN: adminToken,
          LOG_LEVEL: 'warn',
        };
    const cfg = loadConfig(childEnv);
    if (o.resting && cfg.feed !== 'simulator') {
      throw new BenchUsageError(`--resting measures the simulator's ticks (FEED=${cfg.feed} is set): unset FEED`);
    }
    const tunables = Object.fromEntries(
      Object.entries(process.env).filter(
        (e): e is [string, string] =>
          /^(PG_POOL_MAX|ENGINE_|ORDER_STREAM_PARTITIONS|START_ENGINE|REDIS_CLUSTER|OMS_|RECONCILE_|PRICE_AGE_MS_MAX|PAPERTRADE_RESERVATION_BUFFER_BPS|FEED_|RATE_LIMIT_PER_MINUTE|UV_THREADPOOL_SIZE|NODE_OPTIONS)/.test(e[0]) &&
          e[1] !== undefined,
      ),
    );

    // The feed role may not exist in this build: ask the CLI.
    const help = execFileSync(process.execPath, [mainJs, '--help'], { env: childEnv, encoding: 'utf8', timeout: 15_000 });
    const feedRole = /^\s+feed\b/m.test(help);
    if (embedded && !feedRole) throw new Error('--embedded needs a build with the feed: nothing else can give `start` its prices');
    // All-in-one always runs the feed it has; --no-feed only leaves the separate role out.
    const hasFeed = feedRole && (o.feed || o.allInOne);
    let redisVersion = 'none (the Redis parts in papertrade’s memory)';
    if (redis) {
      const info = await redis.info('server');
      redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]) || undefined;
      redisVersion = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
    }

    let pgVersion = '';
    let pgSettings: Record<string, string> = {};
    let instruments: { ticker: string; price: string }[] = [];
    const readPgInfo = async () => {
      pgVersion = (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
      pgSettings = Object.fromEntries(
        (
          await pool.query<{ name: string; setting: string }>(
            `SELECT name, current_setting(name) AS setting FROM pg_settings
              WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_sync_method', 'max_connections', 'commit_delay')`,
          )
        ).rows.map((r) => [r.name, r.setting]),
      );
      instruments = (
        await pool.query<{ ticker: string; price: string }>('SELECT ticker, reference_price::text AS price FROM instruments ORDER BY ticker')
      ).rows;
    };

    let users: BenchUser[] = [];
    /** --stream: one user per client of the largest phase, the load's users first (the others only listen). */
    let streamUsers: BenchUser[] = [];
    const createAllUsers = async () => {
      say(`creating ${o.users} users...`);
      users = await createUsers(db, o.users, runId, say);
      const extra = o.stream ? Math.max(0, Math.max(...o.stream.clients) - o.users) : 0;
      if (extra > 0) say(`creating ${extra} more users for the WebSocket clients...`);
      streamUsers = extra > 0 ? [...users, ...(await createUsers(db, extra, `${runId}-ws`, say))] : users;
    };
    if (!embedded) {
      await readPgInfo();
      if (!hasFeed) {
        notes.push(
          `${feedRole ? 'With --no-feed' : 'No feed role in this build'}: the bench kept the price cache fresh itself (reference prices, every 250 ms).`,
        );
        stopPrices = startPriceSeeder(redis!, keys, instruments);
      }
      await createAllUsers();
    }

    // Start the roles.
    const spawnRole = (name: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
      const file = `${name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}.log`;
      // BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to the roles only:
      // NODE_OPTIONS refuses --cpu-prof, and profiling the load generator too would skew it.
      const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
      // --resting: an inspector on a free loopback port, for a forced GC before and after the
      // placement (resting-run.ts forcedGcReading); idle unless the bench connects to it.
      // --stream: the same on the process serving /ws, for its memory per connection.
      if (o.resting || (o.stream && (o.allInOne || name === 'api'))) nodeArgs.push('--inspect=127.0.0.1:0');
      const p = startProcess(name, process.execPath, [...nodeArgs, mainJs, ...args], { ...childEnv, ...env }, path.join(logDir, file));
      children.push(p);
      return p;
    };
    const spawnedAt = performance.now();
    if (embedded) spawnRole(EMBEDDED_PROCESS, ['start']);
    else if (o.allInOne) spawnRole('papertrade (all-in-one)', ['start']);
    else {
      // --api N: each api process on a port of its own (the load spreads over them); --engines M:
      // M members of the consumer group. The first of each keeps the plain name.
      apiPorts.forEach((apiPort, i) => spawnRole(i === 0 ? 'api' : `api ${i + 1}`, ['api'], { PORT: String(apiPort) }));
      for (let i = 0; i < o.engineProcesses; i++) spawnRole(i === 0 ? 'engine' : `engine ${i + 1}`, ['engine']);
      if (hasFeed) spawnRole('feed', ['feed']);
    }
    const died = () => {
      const dead = children.find((c) => c.exited);
      return dead ? `${dead.name} exited (code ${dead.exitCode}, signal ${dead.exitSignal}); log tail:\n${tailFile(dead.logFile)}` : undefined;
    };
    say(`starting ${children.map((c) => c.name).join(', ')} on ${origin}...`);
    await waitFor(
      origins.length > 1 ? `the ${origins.length} api processes to answer /ready` : 'the api to answer /ready',
      async () => (await Promise.all(origins.map(async (at) => (await fetch(`${at}/ready`)).status === 200))).every(Boolean),
      embedded ? EMBEDDED_START_WAIT_MS : START_WAIT_MS,
      died,
    );
    const readyMs = Math.round(performance.now() - spawnedAt);

    let firstStartMs: number | null = null;
    if (dataDir) {
      firstStartMs = readyMs;
      say(`  ready ${readyMs} ms after the spawn (initdb, the server's start and the migrations included)`);
      // Attach to the server that `start` owns, exactly as the CLI tools do.
      const server = await startEmbeddedPostgres({ dataDir, mode: 'attach-or-start' });
      if (server.owned) {
        await server.stop();
        throw new Error(`the embedded PostgreSQL of ${dataDir} is not run by papertrade (pid ${children[0]!.pid}): the bench had to start it`);
      }
      dbUrl = server.url;
      connect(dbUrl);
      adminToken = readFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
      await readPgInfo();
      say(`  attached to the embedded PostgreSQL ${server.version} on 127.0.0.1:${server.port} (run by papertrade pid ${server.ownerPid})`);
      await createAllUsers();
    } else {
      await waitFor(
        'the engine to create its order stream group',
        // (Redis 7.0 lists a consumer only once it was handed an entry: the group is the signal.)
        async () => ((await redis!.xinfo('GROUPS', keys.orderStream())) as unknown[][]).some((g) => g.includes('engine')),
        START_WAIT_MS,
        died,
      );
    }
    const listed = (
      (await (await fetch(`${origin}/instruments`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as {
        instruments: { ticker: string }[];
      }
    ).instruments.map((i) => i.ticker);
    let tickers = DEFAULT_TICKERS.filter((t) => listed.includes(t));
    if (tickers.length === 0) tickers = listed.slice(0, DEFAULT_TICKERS.length);
    if (tickers.length === 0) throw new Error('GET /instruments lists no instrument');
    const fresh = (asOfMs: number) => Date.now() - asOfMs < cfg.priceAgeMsMax / 2;
    await waitFor(
      'fresh prices for every ticker',
      redis
        ? async () => {
            const raws = await redis.hmget(keys.prices(), ...tickers);
            return raws.every((r) => r !== null && fresh(Number(r.split('|')[1])));
          }
        : // The price cache is inside the papertrade process: ask it.
          async () => {
            const res = await fetch(`${origin}/prices`, { headers: { authorization: `Bearer ${adminToken}` } });
            const body = (await res.json()) as { prices?: { ticker: string; as_of: string }[] };
            const asOf = new Map((body.prices ?? []).map((p) => [p.ticker, Date.parse(p.as_of)]));
            return tickers.every((t) => asOf.has(t) && fresh(asOf.get(t)!));
          },
      START_WAIT_MS,
      died,
    );

    // Seed: every user buys `seedShares` of every ticker, so the workload has shares to sell
    // (--resting: of every listed ticker, for the resting sells placed on all of them).
    const seedTickers = o.resting ? listed : tickers;
    const T = tickers.length;
    const seedRequests: OrderRequest[] = [];
    for (const u of users) {
      for (const t of seedTickers) {
        seedRequests.push({
          path: '/orders',
          authorization: u.authorization,
          body: `{"user_id":"${u.id}","ticker":"${t}","quantity":"${o.seedShares}","type":"market","side":"buy"}`,
        });
      }
    }
    say(`seeding holdings: ${seedRequests.length} buys...`);
    const seedStarted = performance.now();
    const seedErrors = await sendAll(origin, seedRequests, o.concurrency);
    if (Object.keys(seedErrors).length) notes.push(`Seed phase errors: ${JSON.stringify(seedErrors)}.`);
    const seedDrain = await drain(pool, DRAIN_WAIT_MS);
    say(
      `  seeded in ${Math.round(performance.now() - seedStarted)} ms` +
        (seedDrain.pendingLeft ? ` (${seedDrain.pendingLeft} still PENDING)` : ''),
    );
    const index = new Map(users.map((u, i) => [u.id, i]));
    const tIndex = new Map(tickers.map((t, i) => [t, i]));

    // What the report adds up: papertrade and the PostgreSQL that works for it (and Redis, when used).
    const papertradeGroups = children.flatMap((c) => (o.allInOne ? [c.name, `${c.name}: its engine child`] : [c.name]));
    const totals: TotalSpec[] = embedded
      ? [{ label: EMBEDDED_TOTAL_LABEL, members: [...papertradeGroups, PG_GROUP] }]
      : [
          { label: 'total: papertrade + PostgreSQL', members: [...papertradeGroups, PG_GROUP] },
          ...(redisPid ? [{ label: 'total: papertrade + PostgreSQL + Redis', members: [...papertradeGroups, PG_GROUP, 'redis-server'] }] : []),
        ];
    for (const t of totals) rssSums.set(t.label, t.members);
    const labels = new Map(
      embedded
        ? [
            [PG_GROUP, EMBEDDED_POSTGRES_LABEL],
            [BENCH_PG_GROUP, BENCH_PG_LABEL],
          ]
        : [[PG_GROUP, POSTGRES_LABEL]],
    );

    const sampleRun = async (): Promise<CpuSnapshot> => {
      await refreshPgPids();
      const groups: [string, number[]][] = children.map((c) => [c.name, [c.pid]]);
      // `start` with Redis runs its engine in a child process of its own: counted beside it.
      if (o.allInOne) {
        const procs = readProcs();
        for (const c of children) {
          const engines = procs.filter((p) => p.ppid === c.pid && path.basename(p.argv[0] ?? '') === 'node').map((p) => p.pid);
          if (engines.length) groups.push([`${c.name}: its engine child`, engines]);
        }
      }
      groups.push([PG_GROUP, pgPidsCache]);
      if (embedded) groups.push([BENCH_PG_GROUP, benchPgPids]);
      if (redisPid) groups.push(['redis-server', [redisPid]]);
      return sampleCpu(groups, BENCH_LOAD_LABEL);
    };

    await refreshPgPids();
    const pidRefresh = setInterval(() => void refreshPgPids().catch(() => undefined), 1_000);

    /**
     * One closed- or open-loop market-order measurement, as the plain bench makes it (--resting
     * makes it twice, the same way): sellable shares read now (resting sells hold some), ANALYZE
     * and CHECKPOINT first, memory peaks of this measurement only. `lifetimePeaks`: raise the
     * peaks to each child's VmHWM (its peak since it started: right for the first measurement).
     */
    const runMarket = async (
      label: string,
      lifetimePeaks: boolean,
      hooks: { onSteadyStart?: () => Promise<void>; onSteadyEnd?: () => Promise<void> } = {},
      /** 'facade': the same workload through the Alpaca facade (POST /v2/orders, Alpaca's body and headers). */
      target: FacadeTarget = 'native',
    ): Promise<MarketRun> => {
      const sellable = new Int32Array(users.length * T);
      const holdings = await pool.query<{ user_id: string; ticker: string; free: string }>(
        `SELECT user_id, ticker, floor((quantity - reserved_quantity) / $1)::text AS free FROM holdings`,
        [o.quantity],
      );
      for (const h of holdings.rows) {
        const ui = index.get(h.user_id);
        const ti = tIndex.get(h.ticker);
        if (ui !== undefined && ti !== undefined) sellable[ui * T + ti] = Number(h.free);
      }
      await pool.query('ANALYZE');
      await pool.query('CHECKPOINT');

      const sides = { buy: 0, sell: 0 };
      const qty = String(o.quantity);
      const next = (): OrderRequest => {
        const ui = Math.floor(Math.random() * users.length);
        const ti = Math.floor(Math.random() * T);
        let side: 'buy' | 'sell' = 'buy';
        if (o.sellRatio > 0 && Math.random() < o.sellRatio && sellable[ui * T + ti]! > 0) {
          sellable[ui * T + ti]! -= 1;
          side = 'sell';
        }
        sides[side] += 1;
        const u = users[ui]!;
        if (target === 'facade') {
          return { path: FACADE_PATH, authorization: u.authorization, headers: u.alpacaHeaders, body: alpacaOrderBody(tickers[ti]!, qty, side) };
        }
        return {
          path: '/orders',
          authorization: u.authorization,
          body: `{"user_id":"${u.id}","ticker":"${tickers[ti]}","quantity":"${qty}","type":"market","side":"${side}"}`,
        };
      };
      // --batch N: N of those orders (any users) in one POST /orders/batch, as the admin (an
      // omnibus client placing for many accounts); each result's refusal counts as an error.
      const nextBatch = (): OrderRequest => {
        const bodies: string[] = [];
        for (let i = 0; i < o.batch; i++) bodies.push(next().body);
        return { path: '/orders/batch', authorization: `Bearer ${adminToken}`, body: `{"orders":[${bodies.join(',')}]}`, refusalsOf: batchRefusals };
      };

      let pgStart: PgCounters | undefined;
      let pgEnd: PgCounters | undefined;
      let cpuStart: CpuSnapshot | undefined;
      let cpuEnd: CpuSnapshot | undefined;
      rss.stop();
      rss = newRss();
      rss.start();

      let pendingNow = 0;
      let pendingQuery: Promise<void> | undefined;
      let lastPoint: { t: number; ok: number; pending: number } | undefined;
      let fillRate = 0;
      let okTotal = 0;
      const tag = label ? `papertrade, ${label}` : 'papertrade';
      const onSecond = (s: LoadSnapshot) => {
        okTotal += s.okLastSecond;
        if (!pendingQuery) {
          const okAt = okTotal;
          const t = performance.now();
          pendingQuery = pendingCount(pool)
            .then((n) => {
              pendingNow = n;
              if (lastPoint) fillRate = Math.max(0, (okAt - lastPoint.ok - (n - lastPoint.pending)) / ((t - lastPoint.t) / 1000));
              lastPoint = { t, ok: okAt, pending: n };
            })
            .catch(() => undefined)
            .finally(() => (pendingQuery = undefined));
        }
        const phase = s.inSteady ? `${Math.max(0, s.elapsedS - o.warmupS)}/${o.durationS}s` : `warm-up ${s.elapsedS}/${o.warmupS}s`;
        status(
          `[${tag} ${phase}] sent ${s.sent}  acc/s ${s.okLastSecond}  fill/s≈${Math.round(fillRate)}  ` +
            `pending ${pendingNow}  in-flight ${s.inflight}  p99 ${(Math.round(s.p99Ms * 10) / 10).toString()}ms  err ${s.errors}`,
          s.elapsedS % 5 === 0,
        );
      };

      say(
        `running${label ? ` (${label})` : ''}: ${o.rate === 'max' ? `closed loop, ${o.concurrency} in flight` : `open loop, ${o.rate}/s over ${o.concurrency} connections`}, ` +
          `${o.warmupS}s warm-up + ${o.durationS}s measured`,
      );
      const load = await runLoad({
        origin,
        origins,
        rate: o.rate,
        concurrency: o.concurrency,
        inflightMax: INFLIGHT_MAX,
        warmupMs: o.warmupS * 1000,
        durationMs: o.durationS * 1000,
        next: o.batch > 1 && target === 'native' ? nextBatch : next,
        onSecond,
        onSteadyStart: async () => {
          cpuStart = await sampleRun();
          pgStart = await pgCounters(pool).catch(() => undefined);
          await hooks.onSteadyStart?.();
        },
        onSteadyEnd: async () => {
          cpuEnd = await sampleRun();
          pgEnd = await pgCounters(pool).catch(() => undefined);
          await hooks.onSteadyEnd?.();
        },
      });
      endStatus();
      await pendingQuery;
      say('draining: waiting for every order to leave PENDING...');
      const drained = await drain(pool, DRAIN_WAIT_MS);
      const stats = await windowStats(pool, load.windowStartMs, load.windowEndMs);
      if (lifetimePeaks) {
        for (const c of children) {
          const hwm = readStatusKb(c.pid, 'VmHWM');
          if (hwm !== undefined) rss.observe(c.name, hwm);
        }
      }
      rss.sample();
      rss.stop();
      return {
        load,
        stats,
        drained,
        sides,
        processes: cpuRows(cpuStart, cpuEnd, stats.accepted, o.durationS * 1000, rss.peakKb, labels, totals),
        postgres: walSummary(pgStart, pgEnd, stats.accepted),
        checkpoints: (pgEnd?.checkpoints ?? 0) - (pgStart?.checkpoints ?? 0),
        clusterSize: pgPidsCache.length,
      };
    };

    /** The engine's metrics at the steady window's edges (--resting: tick evaluations under the load). */
    type Edge = { engine?: EngineSnapshot; updates: number | null; log: LogCounts | undefined };
    const engineEdges = () => {
      const edges: { start?: Edge; end?: Edge } = {};
      const edge = async (): Promise<Edge> => ({
        engine: await engineSnapshot(origin).catch(() => undefined),
        updates: await ordersRowUpdates(pool).catch(() => null),
        log: logCounts(children[0]!.logFile),
      });
      return {
        edges,
        hooks: {
          onSteadyStart: async () => void (edges.start = await edge()),
          onSteadyEnd: async () => void (edges.end = await edge()),
        },
      };
    };
    const phaseOf = (label: string, run: MarketRun, edges: { start?: Edge; end?: Edge }): MarketPhase => {
      const a = edges.start?.engine;
      const b = edges.end?.engine;
      const d = a && b ? between(a, b) : { tickEval: null, executions: null };
      const u0 = edges.start?.updates ?? null;
      const u1 = edges.end?.updates ?? null;
      return {
        label,
        restingInIndex: a?.resting ?? null,
        ...marketFigures(run, o.durationS),
        tickEval: d.tickEval,
        restingExecutions: d.executions,
        ordersRowUpdatesPerOrder: u0 === null || u1 === null || run.stats.accepted === 0 ? null : (u1 - u0) / run.stats.accepted,
        // The end edge's scrape is the first since the start edge's: its lag maximum covers the window.
        health: windowHealth(edges.start?.log, edges.end?.log, b?.eventLoopLagMaxS, b),
      };
    };

    const edgesA = engineEdges();
    const first = await runMarket(
      o.resting ? 'without resting orders' : o.stream ? 'baseline: no WebSocket client' : o.facade ? facadeLabel('native', 1) : '',
      true,
      o.resting ? edgesA.hooks : {},
    );

    let facade: FacadePart | undefined;
    if (o.facade) {
      // The api's row in the CPU rows (the one process of --all-in-one / --embedded).
      const api = children.find((c) => c.name === 'api') ?? children[0]!;
      const totalLabel = totals[0]?.label;
      const input = (target: FacadeTarget, round: number, run: MarketRun): FacadeWindowInput => {
        const cpu = (pick: (p: ProcessCpu) => boolean) => run.processes.find(pick)?.cpuMs ?? null;
        return {
          target,
          round,
          durationS: o.durationS,
          httpOk: run.load.steady.ok,
          latency: run.load.steady.latency,
          accepted: run.stats.accepted,
          filled: run.stats.filled,
          acceptToFillMs: summarize(run.stats.acceptToFill),
          apiCpuMs: cpu((p) => p.process === api.name),
          totalCpuMs: totalLabel === undefined ? null : cpu((p) => p.process === totalLabel),
          machineCpuMs: cpu((p) => p.process.startsWith(`${MACHINE} (`)),
          errors: run.load.errors,
          sides: run.sides,
        };
      };
      const inputs: FacadeWindowInput[] = [input('native', 1, first)];
      for (const w of facadeSchedule(o.facade.rounds).slice(1)) {
        inputs.push(input(w.target, w.round, await runMarket(facadeLabel(w.target, w.round), false, {}, w.target)));
      }
      const u = users[0]!;
      const t = tickers[0]!;
      const q = String(o.quantity);
      facade = facadePart({
        inputs,
        rounds: o.facade.rounds,
        apiProcess: api.name,
        requests: {
          native: `POST ${NATIVE_PATH} Authorization: Bearer ptk_… {"user_id":"${u.id}","ticker":"${t}","quantity":"${q}","type":"market","side":"buy"}`,
          facade: `POST ${FACADE_PATH} APCA-API-KEY-ID, APCA-API-SECRET-KEY ${alpacaOrderBody(t, q, 'buy')}`,
        },
        notes: [
          'Each window starts as the first does: sellable shares read from the holdings, ANALYZE and CHECKPOINT, then its own ' +
            'warm-up on its own route; sells only of shares the user holds, on both sides.',
          'Neither workload sends a client_order_id (the facade makes none up), so neither pays the idempotency lookup a key costs.',
          ...(api.name === 'api'
            ? []
            : [`${api.name} is the only papertrade process: its CPU includes the engine's (the same on both sides), which dilutes the ratio.`]),
        ],
      });
    }

    let stream: StreamPart | undefined;
    if (o.stream) {
      const tickerPool = [...tickers, ...listed.filter((t) => !tickers.includes(t))];
      if (o.stream.tickers > tickerPool.length) {
        throw new BenchUsageError(`--stream-tickers ${o.stream.tickers}: only ${tickerPool.length} tickers are listed`);
      }
      const api = children.find((c) => c.name === 'api') ?? children[0]!;
      const asInput = (run: MarketRun): MarketInput => ({
        figures: marketFigures(run, o.durationS),
        windowStartMs: run.load.windowStartMs,
        windowEndMs: run.load.windowEndMs,
      });
      stream = await runStreamPhases({
        options: o.stream,
        origin,
        pool,
        users: streamUsers,
        loadUsers: users.length,
        tickerPool,
        api: { name: api.name, pid: api.pid, logFile: api.logFile },
        benchProcess: BENCH_LOAD_LABEL,
        durationS: o.durationS,
        baseline: asInput(first),
        runMarket: async (label, hooks) => asInput(await runMarket(label, false, hooks)),
        say,
        status,
        endStatus: () => void endStatus(),
        abort: died,
      });
    }

    let resting: RestingPart | undefined;
    if (o.resting) {
      const r = o.resting;
      const logFile = children[0]!.logFile;
      const inspector = inspectorUrl(logFile);
      let gcNote: string | null = inspector ? null : `no inspector URL in ${logFile}: no forced-GC reading`;
      const forcedGc = async (): Promise<HeapReading | undefined> => {
        if (!inspector || gcNote) return undefined;
        try {
          return await forcedGcReading(inspector);
        } catch (err) {
          gcNote = `the forced GC through the inspector failed: ${(err as Error).message}`;
          return undefined;
        }
      };
      const idleOpts = (what: string) => ({
        onSecond: (s: number) => status(`[idle, ${what} ${s}/${r.idleS}s] the feed's ticks only`, s % 5 === 0),
        // CPU of every process over the window: what the resting orders cost with nothing traded.
        cpu: async () => {
          const a = await sampleRun();
          return async () => cpuRows(a, await sampleRun(), 0, r.idleS * 1000, new Map(), labels, totals);
        },
      });
      say(`idle ${r.idleS} s, no resting order: the feed's ticks only...`);
      const idleWithout = await idleWindow(origin, pool, logFile, r.idleS, idleOpts('no resting order'));
      endStatus();
      const gcBefore = await forcedGc();

      // The background orders, on every listed ticker, around where its price is now.
      const prices = (await (await fetch(`${origin}/prices`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as {
        prices: { ticker: string; price: string }[];
      };
      const quotes = prices.prices.filter((p) => listed.includes(p.ticker)).map((p) => ({ ticker: p.ticker, price: parsePrice(p.price) }));
      if (quotes.length !== listed.length) throw new Error(`GET /prices has ${quotes.length} of the ${listed.length} listed tickers`);
      const planned = planRestingOrders(r.orders, quotes);
      const byKind: Record<string, number> = {};
      const bySide = { buy: 0, sell: 0 };
      for (const p of planned) {
        byKind[p.kind] = (byKind[p.kind] ?? 0) + 1;
        bySide[p.terms.side] += 1;
      }
      say(`placing ${r.orders} resting orders on ${quotes.length} tickers through POST /orders (${o.concurrency} in flight)...`);
      let placingSeconds = 0;
      const placed = await placeOrders(
        origin,
        r.orders,
        (i) => {
          const u = users[i % users.length]!;
          const p = planned[i]!;
          return { path: '/orders', authorization: u.authorization, body: orderJson(u.id, p.ticker, p.terms) };
        },
        {
          concurrency: o.concurrency,
          deadlineMs: placementDeadlineMs(r.orders),
          what: `${r.orders} resting orders`,
          onSecond: (done, errors) => status(`[placing] ${done}/${r.orders} answered  errors ${errors}`, ++placingSeconds % 5 === 0),
        },
      );
      endStatus();
      say(`  placed in ${Math.round(placed.ms)} ms (${Math.round(r.orders / (placed.ms / 1000))}/s); waiting until all are OPEN and in the index...`);
      const answeredAt = performance.now();
      await waitRested(pool, origin, { open: r.orders, filled: 0, indexed: r.orders }, INDEX_WAIT_MS, died);
      const indexedAfterMs = Math.round(performance.now() - answeredAt);
      say(`  all OPEN and indexed ${indexedAfterMs} ms after the last answer`);
      say(`idle ${r.idleS} s with ${r.orders} resting orders: the feed's ticks only...`);
      const idleWith = await idleWindow(origin, pool, logFile, r.idleS, idleOpts(`${r.orders} resting`));
      endStatus();
      const gcAfter = await forcedGc();

      const edgesB = engineEdges();
      const second = await runMarket(`with ${r.orders} resting orders`, false, edgesB.hooks);

      // The calmest listed ticker: the feed is least likely to reach the crossing's limits first.
      const calm = await pool.query<{ ticker: string }>('SELECT ticker FROM instruments WHERE ticker = ANY($1) ORDER BY annual_volatility, ticker LIMIT 1', [listed]);
      const crossings: CrossingResult[] = [];
      for (let i = 0; i < r.crossRepeats; i++) {
        // Nothing else executed and the index is whole (a watcher that lost its lease rebuilds it).
        await waitRested(pool, origin, { open: r.orders, filled: i * r.cross, indexed: r.orders }, INDEX_WAIT_MS, died);
        const crossing = await runCrossing({
          origin,
          adminToken,
          pool,
          ticker: calm.rows[0]!.ticker,
          users,
          n: r.cross,
          concurrency: o.concurrency,
          indexedBefore: r.orders,
          abort: died,
          say,
        });
        crossings.push(crossing);
        say(`  #${i + 1}: all ${r.cross} FILLED ${Math.round(crossing.sendToAllVisibleMs)} ms after the PUT was sent`);
      }
      resting = {
        r,
        seededTickers: seedTickers.length,
        idleWithout,
        idleWith,
        gcBefore,
        gcAfter,
        gcNote,
        placement: {
          orders: r.orders,
          ms: Math.round(placed.ms),
          perS: r.orders / (placed.ms / 1000),
          byKind,
          bySide,
          indexedAfterMs,
          concurrency: o.concurrency,
        },
        without: phaseOf('without resting orders', first, edgesA.edges),
        with: phaseOf(`with ${r.orders} resting orders`, second, edgesB.edges),
        crossings,
        checkpoints: { without: first.checkpoints, with: second.checkpoints },
      };
    }
    clearInterval(pidRefresh);
    const { load, stats, drained, sides } = first;
    const clusterSize = first.clusterSize;

    say('stopping papertrade...');
    await Promise.all(children.map((c) => stopProcess(c)));
    stopPrices?.();
    stopPrices = undefined;
    if (dataDir) {
      // papertrade stopped its PostgreSQL on the way out: the bench starts it again, for itself,
      // for the audit and the floor (the port changes at every start: a new pool).
      await db.destroy().catch(() => undefined);
      ownServer = await startEmbeddedPostgres({ dataDir, mode: 'attach-or-start' });
      dbUrl = ownServer.url;
      connect(dbUrl);
    }

    // Audit (if this build has it).
    let audit: BenchReport['papertrade']['audit'] = { ran: false, ok: null, violations: {}, note: null };
    try {
      const spec = '../services/audit/audit.service.js';
      const mod = (await import(spec)) as {
        runAudit?: (db: Db, options?: object) => Promise<{ ok: boolean; invariants: { name: string; violations: number | unknown[] }[] }>;
      };
      if (typeof mod.runAudit !== 'function') throw new Error('runAudit is not exported');
      const report = await mod.runAudit(db, {});
      const violations: Record<string, number> = {};
      for (const inv of report.invariants) {
        const n = Array.isArray(inv.violations) ? inv.violations.length : Number(inv.violations);
        if (n > 0) violations[inv.name] = n;
      }
      audit = { ran: true, ok: report.ok, violations, note: null };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const note = e.code === 'ERR_MODULE_NOT_FOUND' ? 'no audit module in this build' : `audit failed: ${e.message ?? String(err)}`;
      audit = { ran: false, ok: null, violations: {}, note };
      say(`note: ${note}`);
    }

    // What every report of this run begins with (the plain one and --resting's).
    const reportHeader = (): Pick<BenchReport, 'timestamp' | 'machine' | 'versions' | 'settings'> => ({
      timestamp: new Date().toISOString(),
      machine: { cpu: cpuModel(), cores: os.cpus().length, ramGb: os.totalmem() / 1024 ** 3 },
      versions: { node: process.version, postgres: pgVersion, redis: redisVersion, papertrade: gitCommit(root) },
      settings: {
        mode: embedded ? 'embedded' : o.allInOne ? 'all-in-one' : 'roles',
        roles: children.map((c) => c.name),
        loop: o.rate === 'max' ? 'closed' : 'open',
        rate: o.rate,
        concurrency: o.concurrency,
        durationS: o.durationS,
        warmupS: o.warmupS,
        users: o.users,
        sellRatio: o.sellRatio,
        quantity: o.quantity,
        seedShares: o.seedShares,
        tickers,
        pgPoolMax: cfg.pgPoolMax,
        engineBatchSizeMax: cfg.engine.batchSizeMax,
        feed: embedded ? 'in the start process' : hasFeed ? 'role' : 'seeded by the bench',
        database: embedded ? `${dbName} (embedded, in a temporary data directory)` : dbName,
        postgresSettings: pgSettings,
        redisPrefix: embedded ? 'none' : prefix,
        env: tunables,
      },
    });

    if (resting) {
      say('the index micro-benchmark (papertrade stopped)...');
      const micro = await runMicroBench(root);
      if (micro.error) say(`note: micro-benchmark: ${micro.error}`);
      const report = restingReport({
        part: resting,
        micro,
        audit,
        common: {
          ...reportHeader(),
          logs: logDir,
        },
        embedded,
        feedTickMs: cfg.feedTickMs,
      });
      const markdown = renderRestingMarkdown(report);
      const files = saveReport(report, markdown, '-resting');
      if (o.jsonOnly) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(`\n${markdown}\n`);
        say(`saved ${files.md} and ${files.json}`);
      }
      return audit.ran && audit.ok === false ? 1 : 0;
    }

    if (stream) {
      const report = streamReport({ part: stream, audit, common: { ...reportHeader(), logs: logDir }, feedTickMs: cfg.feedTickMs });
      const markdown = renderStreamMarkdown(report);
      const files = saveReport(report, markdown, '-stream');
      if (o.jsonOnly) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(`\n${markdown}\n`);
        say(`saved ${files.md} and ${files.json}`);
      }
      // A lost event is a bug of the stream, like a violated invariant: the run fails.
      const lost = report.phases.some((p) => !lossFree(p));
      if (lost) process.stderr.write('papertrade bench: the live stream lost, duplicated or withheld events (see the report)\n');
      return (audit.ran && audit.ok === false) || lost ? 1 : 0;
    }

    // The SQL floor, on the same database with fresh users (and then the same SQL by pgbench).
    const prices = tickers.map((t) => ({ ticker: t, price: instruments.find((i) => i.ticker === t)!.price }));
    let floor: BenchReport['floor'] = null;
    if (o.floor) {
      const total = o.floorConnections ?? cfg.pgPoolMax * 2;
      const fillConnections = Math.min(total - 1, o.floorFillConnections ?? Math.max(1, Math.round(total / 5)));
      const acceptConnections = total - fillConnections;
      say(
        `SQL floor${embedded ? ' (on the embedded PostgreSQL, started by the bench)' : ''}: ${acceptConnections} accepting + ` +
          `${fillConnections} filling connections, ${o.floorWarmupS}s warm-up + ${o.floorDurationS}s measured...`,
      );
      await sleep(2_000);
      let floorPgStart: PgCounters | undefined;
      let floorPgEnd: PgCounters | undefined;
      let floorCpuStart: CpuSnapshot | undefined;
      let floorCpuEnd: CpuSnapshot | undefined;
      const fr = await runFloor({
        databaseUrl: dbUrl,
        users: o.users,
        tickers: prices,
        sellRatio: o.sellRatio,
        quantity: o.quantity,
        seedShares: o.seedShares,
        acceptConnections,
        fillConnections,
        batchSize: o.floorBatch,
        warmupMs: o.floorWarmupS * 1000,
        durationMs: o.floorDurationS * 1000,
        onSecond: (s) => status(`[floor ${s.elapsedS}s] accepted ${s.accepted}  filled ${s.filled}  backlog ${s.backlog}`, s.elapsedS % 5 === 0),
        onSteadyStart: async () => {
          floorCpuStart = sampleCpu([[PG_GROUP, await postgresPids(pool, dbName, BENCH_APP)]], 'bench (floor driver)');
          floorPgStart = await pgCounters(pool).catch(() => undefined);
        },
        onSteadyEnd: async () => {
          floorCpuEnd = sampleCpu([[PG_GROUP, await postgresPids(pool, dbName, BENCH_APP)]], 'bench (floor driver)');
          floorPgEnd = await pgCounters(pool).catch(() => undefined);
        },
      });
      endStatus();
      const fs = await windowStats(pool, fr.windowStartMs, fr.windowEndMs);
      floor = {
        acceptConnections,
        fillConnections,
        batchSize: o.floorBatch,
        durationS: o.floorDurationS,
        warmupS: o.floorWarmupS,
        accepted: fs.accepted,
        filled: fs.filled,
        acceptedPerS: fs.accepted / o.floorDurationS,
        filledPerS: fs.filled / o.floorDurationS,
        acceptLatencyMs: summarize(fr.acceptLatency.percentiles()),
        acceptToFillMs: summarize(fs.acceptToFill),
        refused: fr.refused,
        errors: fr.errors,
        unfilled: fr.unfilled,
        processes: cpuRows(floorCpuStart, floorCpuEnd, fs.accepted, o.floorDurationS * 1000, new Map()),
        postgres: walSummary(floorPgStart, floorPgEnd, fs.accepted),
      };
    }

    // The same SQL by pgbench: the native client, prepared statements — the physical floor.
    let pgbenchFloor: PgbenchFloorPart | null = null;
    if (o.pgbenchFloor) {
      say(`pgbench floor: accept alone with ${PGBENCH_ACCEPT_CLIENTS} clients for ${o.floorDurationS}s, then fills alone in batches of ${PGBENCH_FILL_BATCH}...`);
      const cpu: Record<string, { pgbench: number; machine: number; self: number }> = {};
      const sample = () => {
        const u = process.cpuUsage();
        return { pgbench: readReapedChildrenCpuMs() ?? 0, machine: readMachineBusyMs() ?? 0, self: (u.user + u.system) / 1000 };
      };
      try {
        const pr = await runPgbenchFloor({
          databaseUrl: dbUrl,
          users: o.users,
          tickers: prices,
          sellRatio: o.sellRatio,
          quantity: o.quantity,
          seedShares: o.seedShares,
          acceptClients: PGBENCH_ACCEPT_CLIENTS,
          fillClients: PGBENCH_FILL_CLIENTS,
          fillBatch: PGBENCH_FILL_BATCH,
          durationS: o.floorDurationS,
          onRun: (phase, edge) => {
            const now = sample();
            if (edge === 'start') cpu[phase] = now;
            else {
              const a = cpu[phase]!;
              // What pgbench used is known once it was reaped; the rest of the machine's busy
              // time (less the bench's own) is PostgreSQL working for it, on a quiet machine.
              const pgbenchMs = now.pgbench - a.pgbench;
              cpu[phase] = { pgbench: pgbenchMs, machine: Math.max(0, now.machine - a.machine - pgbenchMs - (now.self - a.self)), self: 0 };
            }
          },
        });
        pgbenchFloor = pgbenchPart(pr, cpu);
      } catch (err) {
        notes.push(`The pgbench floor did not run: ${(err as Error).message.split('\n')[0]}`);
      }
    }

    // CPU and memory per process over the steady window.
    const processes = first.processes;
    const checkpoints = first.checkpoints;
    if (checkpoints > 0) {
      notes.push(
        `${checkpoints} PostgreSQL checkpoint(s) during papertrade's window (a CREATE DATABASE anywhere in the cluster forces one): expect stalls in the tail.`,
      );
    }
    if (floor && floor.filled === 0 && Object.keys(floor.errors).length > 0) {
      notes.push(
        `The SQL floor filled nothing: its statements failed (${Object.entries(floor.errors)
          .map(([k, v]) => `${k} ×${v}`)
          .join(', ')}; 23514 is a CHECK violation): bench/sql/ does not match this build's schema, so there is no ratio to the floor.`,
      );
    }
    const others = processes.find((p) => p.process === OTHERS_LABEL);
    if (others && others.cores > 0.2) {
      notes.push(
        `Other processes on this machine kept ${others.cores.toFixed(2)} cores busy during the window: the numbers are low by an unknown amount; re-run on a quiet machine.`,
      );
    }
    if (embedded) {
      notes.push(
        `Embedded: one \`papertrade start\` with DATABASE_URL, REDIS_URL and PAPERTRADE_ADMIN_TOKEN unset and PAPERTRADE_DATA_DIR a fresh ` +
          `temporary directory (removed at the end): it ran initdb and its own PostgreSQL ${pgVersion}, and keeps the order pipe, the ` +
          `price cache, channels and locks in its memory; its feed provides the prices. It answered /ready ${fmtMs(firstStartMs ?? 0)} ms ` +
          'after the spawn (initdb, the server start and the migrations included). The bench attached to that server as the CLI ' +
          'tools do (database papertrade) to create the users, seed and measure, and read the admin token from the data directory.',
      );
      notes.push(
        `"${EMBEDDED_TOTAL_LABEL}": papertrade's RSS plus the PSS of every process of its PostgreSQL cluster, found in /proc ` +
          `(the postmaster \`postgres -D <dataDir>/pg\` and all its children: ${clusterSize} at the end of the window), less the bench's ` +
          'own connections (shown apart; their pids from pg_stat_activity). PSS splits shared memory (shared buffers) among the ' +
          'processes mapping it, so it is counted once. The peak is the highest simultaneous sum, sampled every 250 ms; CPU likewise summed.',
      );
      notes.push(
        o.floor
          ? 'The SQL floor ran on the embedded PostgreSQL, which the bench started again itself (as a CLI tool does) once papertrade had stopped.'
          : 'SQL floor: not run (--no-floor).',
      );
    } else {
      notes.push(
        'PostgreSQL and Redis are shared with anything else running here: Redis CPU includes other clients; for PostgreSQL only this ' +
          'database’s backends and the background processes are counted.',
      );
    }
    notes.push(
      `CPU from /proc/<pid>/stat (utime+stime, CLK_TCK ${clkTck()}) between the start and the end of the steady window; ` +
        'per order = per order accepted in the window. The load generator shares the machine.',
    );
    notes.push(
      'created_at and filled_at are transaction-start times (now()): accept → FILLED runs from the start of the OMS transaction ' +
        'to the start of the engine transaction that filled the order.',
    );
    if (facade) {
      notes.push(
        `--facade: the figures above are those of the first window (native POST ${NATIVE_PATH}, round 1); the facade section compares every window.`,
      );
    }
    if (o.rate !== 'max' && stats.accepted < 0.95 * o.rate * o.durationS) {
      notes.push(`The offered ${o.rate} orders/s were not all accepted: papertrade is saturated (or failing) at this rate.`);
    }
    notes.push(
      embedded
        ? `Process logs: ${logDir} (with the embedded server's ${LOG_FILE}).`
        : `Process logs: ${logDir}. The database ${dbName} is kept for inspection (dropped at the next run).`,
    );

    const report: BenchReport = {
      ...reportHeader(),
      papertrade: {
        http: {
          sent: load.sent,
          ok: load.ok,
          acceptedPerS: load.steady.ok / o.durationS,
          latencyMs: summarize(load.steady.latency.percentiles()),
          unfinished: load.unfinished,
        },
        db: {
          accepted: stats.accepted,
          filled: stats.filled,
          acceptedPerS: stats.accepted / o.durationS,
          filledPerS: stats.filled / o.durationS,
          rejected: stats.rejected,
          acceptToFillMs: summarize(stats.acceptToFill),
        },
        sides,
        processes,
        postgres: first.postgres,
        errors: load.errors,
        drain: drained,
        audit,
        logs: logDir,
      },
      embedded: dataDir ? { firstStartMs: firstStartMs ?? 0, clusterProcesses: clusterSize } : null,
      floor,
      ratioToFloor: floor && floor.filledPerS > 0 ? stats.filled / o.durationS / floor.filledPerS : null,
      pgbenchFloor,
      ratioToPgbenchFloor: pgbenchFloor && pgbenchFloor.combinedPerS > 0 ? stats.filled / o.durationS / pgbenchFloor.combinedPerS : null,
      batch: o.batch,
      notes,
      ...(facade ? { facade } : {}),
    };
    sink?.(report);
    const markdown = renderMarkdown(report);
    const files = saveReport(report, markdown, facade ? '-facade' : '');
    if (o.jsonOnly) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      process.stdout.write(`\n${markdown}\n`);
      say(`saved ${files.md} and ${files.json}`);
    }
    return audit.ran && audit.ok === false ? 1 : 0;
  } finally {
    rss.stop();
    stopPrices?.();
    await Promise.all(children.map((c) => stopProcess(c, 5_000)));
    killAllSync();
    if (redis) {
      await deleteKeys(redis, prefix).catch(() => undefined);
      redis.disconnect();
    }
    await db?.destroy().catch(() => undefined);
    await ownServer?.stop().catch(() => undefined);
    await removeDataDir().catch(() => undefined);
  }
}
