/**
 * The I/O of `papertrade bench --resting` (the pure parts are resting.ts; the sequence is in
 * bench.ts): reading the engine's /metrics, idle windows, a forced GC through the inspector,
 * placing orders over HTTP with a deadline, waiting for them to rest in the index, the crossing,
 * and the index micro-benchmark. Every wait is a poll with a deadline that fails with what it
 * saw, never a fixed sleep.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type pg from 'pg';
import { Pool, WebSocket } from 'undici';
import { formatPrice, parsePrice, type Price } from '../core/money.js';
import { errorCode, postOrder, REQUEST_TIMEOUT_MS, type OrderRequest } from './load.js';
import type { ProcessCpu } from './report.js';
import {
  crossingPlan,
  gaugeValue,
  histogramDelta,
  minMedian,
  orderJson,
  readHistogram,
  readMicroBench,
  tickEvalStats,
  type CrossingResult,
  type HeapReading,
  type HistogramSnapshot,
  type IdleWindow,
  type MicroBench,
  type WindowHealth,
} from './resting.js';

export const TICK_EVAL_METRIC = 'papertrade_resting_tick_eval_seconds';
export const RESTING_GAUGE = 'papertrade_resting_orders';
export const EXECUTIONS_COUNTER = 'papertrade_resting_executions_total';
/** How often an idle window samples the heap from /metrics. */
export const IDLE_SAMPLE_MS = 500;
/** Orders may take this long to be placed: a minute, plus 5 ms an order (100,000: 9 minutes; ~1,000/s is typical here). */
export const placementDeadlineMs = (orders: number) => 60_000 + orders * 5;
/** Placement stops (and the run fails) after this many failed requests. */
export const PLACEMENT_ERRORS_MAX = 100;
/** From the last answer to every order OPEN and in the index. */
export const INDEX_WAIT_MS = 120_000;
/** The crossing must have filled every order within this (the target is 1 s; this only bounds the wait). */
export const CROSS_FILL_DEADLINE_MS = 15_000;
/** How often the crossing's orders are polled in PostgreSQL: the resolution of "all visible". */
export const CROSS_POLL_MS = 10;
/** The micro-benchmark (compiled into dist with the rest) may run this long. */
export const MICRO_BENCH_TIMEOUT_MS = 300_000;
const INSPECTOR_TIMEOUT_MS = 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (true: done) until it holds; throws `what`, with the last `seen()`, after `timeoutMs`. */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  opts: { intervalMs?: number; seen?: () => string; abort?: () => string | undefined } = {},
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const reason = opts.abort?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${opts.seen ? ` (${opts.seen()})` : ''}`);
    await sleep(opts.intervalMs ?? 250);
  }
}

// ---------------------------------------------------------------------------------------------
// The engine's metrics

export interface EngineSnapshot {
  atMs: number;
  tickEval: HistogramSnapshot | undefined;
  executions: number | undefined;
  resting: number | undefined;
  heapUsed: number | undefined;
  external: number | undefined;
  eventLoopLagMaxS: number | undefined;
  rss: number | undefined;
}

/** One scrape of /metrics: in `start` (all-in-one, embedded) the engine's series are the process's. */
export async function engineSnapshot(origin: string): Promise<EngineSnapshot> {
  const res = await fetch(`${origin}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const text = await res.text();
  return {
    atMs: performance.now(),
    tickEval: readHistogram(text, TICK_EVAL_METRIC),
    executions: gaugeValue(text, EXECUTIONS_COUNTER),
    resting: gaugeValue(text, RESTING_GAUGE),
    heapUsed: gaugeValue(text, 'nodejs_heap_size_used_bytes'),
    external: gaugeValue(text, 'nodejs_external_memory_bytes'),
    eventLoopLagMaxS: gaugeValue(text, 'nodejs_eventloop_lag_max_seconds'),
    rss: gaugeValue(text, 'process_resident_memory_bytes'),
  };
}

/** Warnings the process logged so far that say it stalled: leases lost (LOG_LEVEL=warn keeps them). */
export interface LogCounts {
  watcherLeaseLost: number;
  feedLeadershipLost: number;
}

export function logCounts(logFile: string): LogCounts | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  const count = (needle: string) => text.split(needle).length - 1;
  return { watcherLeaseLost: count('resting watcher lost its lease'), feedLeadershipLost: count('feed leadership lost') };
}

/** The health of a window from what was seen at its edges (and the highest lag scraped in it). */
export function windowHealth(
  log0: LogCounts | undefined,
  log1: LogCounts | undefined,
  lagMaxS: number | undefined,
  end: EngineSnapshot | undefined,
): WindowHealth {
  return {
    eventLoopLagMaxMs: lagMaxS === undefined ? null : Math.round(lagMaxS * 1000),
    watcherLeaseLost: log0 && log1 ? log1.watcherLeaseLost - log0.watcherLeaseLost : null,
    feedLeadershipLost: log0 && log1 ? log1.feedLeadershipLost - log0.feedLeadershipLost : null,
    restingAtEnd: end?.resting ?? null,
  };
}

/**
 * Rows of `orders` updated so far (pg_stat_user_tables.n_tup_upd): a fill updates its order once;
 * the watcher's saves of trailing levels add the others. Backends report it at least every second.
 */
export async function ordersRowUpdates(pool: pg.Pool): Promise<number | null> {
  const { rows } = await pool.query<{ n: string | null }>(`SELECT n_tup_upd::text AS n FROM pg_stat_user_tables WHERE relname = 'orders'`);
  return rows[0]?.n === null || rows[0]?.n === undefined ? null : Number(rows[0].n);
}

/** The tick evaluations and executions between two snapshots. */
export function between(a: EngineSnapshot, b: EngineSnapshot) {
  const delta = a.tickEval && b.tickEval ? histogramDelta(a.tickEval, b.tickEval) : undefined;
  return {
    tickEval: tickEvalStats(delta),
    executions: a.executions === undefined || b.executions === undefined ? null : b.executions - a.executions,
  };
}

/**
 * A window with nothing but the feed's ticks: the tick evaluations over it, and the heap and RSS
 * sampled every IDLE_SAMPLE_MS from /metrics (a scrape allocates a little itself: the same in
 * every window).
 */
export async function idleWindow(
  origin: string,
  pool: pg.Pool,
  logFile: string,
  seconds: number,
  opts: { onSecond?: (elapsedS: number) => void; cpu?: () => Promise<() => Promise<ProcessCpu[]>> } = {},
): Promise<IdleWindow> {
  const onSecond = opts.onSecond;
  const cpuDone = await opts.cpu?.();
  const updatesBefore = await ordersRowUpdates(pool);
  const log0 = logCounts(logFile);
  const first = await engineSnapshot(origin);
  let lagMax: number | undefined;
  const heap: number[] = [];
  const rss: number[] = [];
  const end = first.atMs + seconds * 1000;
  let last = first;
  let lastSecond = 0;
  while (performance.now() < end) {
    await sleep(Math.max(0, Math.min(IDLE_SAMPLE_MS, end - performance.now())));
    last = await engineSnapshot(origin);
    if (last.heapUsed !== undefined) heap.push(last.heapUsed + (last.external ?? 0));
    if (last.rss !== undefined) rss.push(last.rss);
    if (last.eventLoopLagMaxS !== undefined) lagMax = Math.max(lagMax ?? 0, last.eventLoopLagMaxS);
    const s = Math.floor((last.atMs - first.atMs) / 1000);
    if (s !== lastSecond) onSecond?.((lastSecond = s));
  }
  const d = between(first, last);
  const updatesAfter = await ordersRowUpdates(pool);
  const processes = (await cpuDone?.()) ?? [];
  return {
    seconds,
    ordersRowUpdatesPerS: updatesBefore === null || updatesAfter === null ? null : (updatesAfter - updatesBefore) / ((last.atMs - first.atMs) / 1000),
    restingInIndex: last.resting ?? null,
    tickEval: d.tickEval,
    restingExecutions: d.executions,
    heap: minMedian(heap),
    rss: minMedian(rss),
    health: windowHealth(log0, logCounts(logFile), lagMax, last),
    processes,
  };
}

// ---------------------------------------------------------------------------------------------
// A forced GC, through the inspector the bench opened on the child (--inspect=127.0.0.1:0)

/** The inspector's WebSocket URL as the child printed it on stderr (its log), the latest one. */
export function inspectorUrl(logFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  const all = [...text.matchAll(/Debugger listening on (ws:\/\/\S+)/g)];
  return all.length ? all[all.length - 1]![1] : undefined;
}

/**
 * heapUsed and rss of the child right after full garbage collections (the DevTools protocol's
 * HeapProfiler.collectGarbage, twice: weak references and finalizers may need a second pass),
 * read with Runtime.evaluate of process.memoryUsage() in the child's main context.
 */
export async function forcedGcReading(wsUrl: string, timeoutMs = INSPECTOR_TIMEOUT_MS): Promise<HeapReading> {
  const ws = new WebSocket(wsUrl);
  const waiting = new Map<number, (m: { result?: unknown; error?: { message?: string } }) => void>();
  let failed: ((err: Error) => void) | undefined;
  const timer = setTimeout(() => failed?.(new Error(`the inspector did not answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      failed = reject;
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${wsUrl}`)));
    });
    ws.addEventListener('message', (ev) => {
      const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message?: string } };
      if (m.id !== undefined) waiting.get(m.id)?.(m);
    });
    let id = 0;
    const call = (method: string, params: object = {}) =>
      new Promise<unknown>((resolve, reject) => {
        failed = reject;
        const n = ++id;
        waiting.set(n, (m) => {
          waiting.delete(n);
          if (m.error) reject(new Error(`${method}: ${m.error.message ?? 'failed'}`));
          else resolve(m.result);
        });
        ws.send(JSON.stringify({ id: n, method, params }));
      });
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const r = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as {
      result?: { value?: string };
    };
    const u = JSON.parse(r.result?.value ?? '{}') as Partial<HeapReading>;
    if (typeof u.heapUsed !== 'number' || typeof u.rss !== 'number') throw new Error('process.memoryUsage() did not come back');
    return { heapUsed: u.heapUsed, arrayBuffers: u.arrayBuffers ?? 0, external: u.external ?? 0, rss: u.rss };
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Placing orders

export class PlacementError extends Error {}

/**
 * POSTs every request once, `concurrency` at a time, and returns the created orders' ids in the
 * requests' order. Stops and throws PlacementError past `deadlineMs` or PLACEMENT_ERRORS_MAX
 * failed requests (the resting orders must all be real: a partial set measures something else).
 */
export async function placeOrders(
  origin: string,
  count: number,
  request: (i: number) => OrderRequest,
  opts: { concurrency: number; deadlineMs: number; what: string; onSecond?: (done: number, errors: number) => void },
): Promise<{ ids: string[]; ms: number }> {
  const pool = new Pool(origin, { connections: opts.concurrency, pipelining: 1, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  const ids = new Array<string>(count);
  const errors: Record<string, number> = {};
  let errorCount = 0;
  let next = 0;
  let done = 0;
  const started = performance.now();
  const deadline = started + opts.deadlineMs;
  let stop: string | undefined;
  const progress = setInterval(() => opts.onSecond?.(done, errorCount), 1_000);
  const worker = async () => {
    while (next < count && stop === undefined) {
      if (performance.now() > deadline) {
        stop = `only ${done} of ${count} answered within ${opts.deadlineMs} ms`;
        break;
      }
      const i = next++;
      const req = request(i);
      try {
        const res = await postOrder(pool, req);
        const text = await res.body.text();
        if (res.statusCode === 201) ids[i] = (JSON.parse(text) as { id: string }).id;
        else {
          const key = `${res.statusCode} ${errorCode(text)}`;
          errors[key] = (errors[key] ?? 0) + 1;
          errorCount += 1;
        }
      } catch (err) {
        const key = `ERR ${(err as { code?: string }).code ?? 'unknown'}`;
        errors[key] = (errors[key] ?? 0) + 1;
        errorCount += 1;
      }
      done += 1;
      if (errorCount >= PLACEMENT_ERRORS_MAX) stop = `${errorCount} requests failed`;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, count) }, worker));
  } finally {
    clearInterval(progress);
    await pool.destroy().catch(() => undefined);
  }
  if (stop === undefined && errorCount > 0) stop = `${errorCount} requests failed`;
  if (stop !== undefined) throw new PlacementError(`placing ${opts.what} failed: ${stop}; errors: ${JSON.stringify(errors)}`);
  return { ids, ms: performance.now() - started };
}

/** Orders of resting types by status (market orders left out). */
export async function restingStatuses(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; n: string }>(`SELECT status, count(*) AS n FROM orders WHERE type <> 'market' GROUP BY 1`);
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/**
 * Waits (bounded) until no resting-type order is PENDING, requires exactly `open` of them OPEN,
 * `filled` FILLED (the crossings so far) and nothing else (none rejected or canceled, none filled
 * on arrival: they were placed away from the price), then until the leader's index holds
 * `indexed` orders (the gauge, updated every second).
 */
export async function waitRested(
  pool: pg.Pool,
  origin: string,
  expect: { open: number; filled: number; indexed: number },
  timeoutMs: number,
  abort?: () => string | undefined,
): Promise<void> {
  let statuses: Record<string, number> = {};
  await pollUntil(
    `${expect.open} resting orders to leave PENDING`,
    async () => {
      statuses = await restingStatuses(pool);
      return (statuses.PENDING ?? 0) === 0;
    },
    timeoutMs,
    { seen: () => JSON.stringify(statuses), abort },
  );
  const others = Object.entries(statuses).filter(([k]) => k !== 'OPEN' && k !== 'FILLED');
  if ((statuses.OPEN ?? 0) !== expect.open || (statuses.FILLED ?? 0) !== expect.filled || others.length > 0) {
    throw new Error(
      `expected ${expect.open} orders of resting types OPEN, ${expect.filled} FILLED (crossed) and nothing else; by status: ${JSON.stringify(statuses)}`,
    );
  }
  let resting: number | undefined;
  await pollUntil(
    `the engine's index to hold ${expect.indexed} orders (${RESTING_GAUGE})`,
    async () => {
      resting = (await engineSnapshot(origin)).resting;
      return resting === expect.indexed;
    },
    timeoutMs,
    { seen: () => `gauge: ${resting}`, abort },
  );
}

// ---------------------------------------------------------------------------------------------
// The crossing

async function currentPrice(origin: string, adminToken: string, ticker: string): Promise<Price> {
  const res = await fetch(`${origin}/prices/${encodeURIComponent(ticker)}`, { headers: { authorization: `Bearer ${adminToken}` } });
  if (res.status !== 200) throw new Error(`GET /prices/${ticker} answered ${res.status}: ${await res.text()}`);
  return parsePrice(((await res.json()) as { price: string }).price);
}

interface CrossState {
  filled: number;
  open: number;
  firstMs: number | null;
  lastMs: number | null;
  transactions: number;
  atTick: boolean | null;
}

async function crossState(pool: pg.Pool, ids: readonly string[], tick: string): Promise<CrossState> {
  const { rows } = await pool.query<{ filled: string; open: string; first: number | null; last: number | null; tx: string; at_tick: boolean | null }>(
    `SELECT count(*) FILTER (WHERE status = 'FILLED') AS filled, count(*) FILTER (WHERE status = 'OPEN') AS open,
            extract(epoch FROM min(filled_at))::float8 * 1000 AS first, extract(epoch FROM max(filled_at))::float8 * 1000 AS last,
            count(DISTINCT filled_at) AS tx, bool_and(fill_price = $2::numeric) FILTER (WHERE status = 'FILLED') AS at_tick
       FROM orders WHERE id = ANY($1::uuid[])`,
    [ids, tick],
  );
  const r = rows[0]!;
  return { filled: Number(r.filled), open: Number(r.open), firstMs: r.first, lastMs: r.last, transactions: Number(r.tx), atTick: r.at_tick };
}

/**
 * `n` limit buys of `ticker` just under its price (crossingPlan), left to rest and reach the
 * index; then ONE `PUT /admin/prices` below all of them, and the time until every one is FILLED.
 *
 * The feed keeps running: the ticker should be a calm one (the caller picks the lowest
 * volatility), the limits are 20–60 bps under the price for the few seconds they wait (checked:
 * none may fill before the PUT, and the price must still be above them right before it), and a
 * feed tick after the PUT cannot undo the crossing: the watcher applies the ticks in the log's
 * order and the executor fills each order at the price of the tick that crossed it.
 */
export async function runCrossing(opts: {
  origin: string;
  adminToken: string;
  pool: pg.Pool;
  ticker: string;
  users: readonly { id: string; authorization: string }[];
  n: number;
  concurrency: number;
  /** Orders in the index before the crossing's are added. */
  indexedBefore: number;
  abort?: () => string | undefined;
  say: (s: string) => void;
}): Promise<CrossingResult> {
  const { origin, adminToken, pool, ticker, n } = opts;
  const base = await currentPrice(origin, adminToken, ticker);
  const plan = crossingPlan(base, n);
  const request = (i: number): OrderRequest => {
    const u = opts.users[i % opts.users.length]!;
    return { path: '/orders', authorization: u.authorization, body: orderJson(u.id, ticker, { side: 'buy', type: 'limit', limit_price: formatPrice(plan.limits[i]!) }) };
  };
  opts.say(`crossing: ${n} limit buys of ${ticker} at ${formatPrice(plan.limits[n - 1]!)}–${formatPrice(plan.limits[0]!)} (price ${formatPrice(base)})...`);
  const placed = await placeOrders(origin, n, request, { concurrency: opts.concurrency, deadlineMs: placementDeadlineMs(n), what: `the crossing's ${n} limit buys` });
  const ids = placed.ids;
  const tick = formatPrice(plan.tick);
  let state = await crossState(pool, ids, tick);
  await pollUntil(
    `the crossing's ${n} orders to rest OPEN`,
    async () => {
      state = await crossState(pool, ids, tick);
      return state.open + state.filled === n;
    },
    INDEX_WAIT_MS,
    { seen: () => JSON.stringify(state), abort: opts.abort },
  );
  if (state.filled > 0) {
    throw new Error(`${state.filled} of the crossing's ${n} limit buys filled before the crossing tick: the feed moved ${ticker} down to them; rerun`);
  }
  let resting: number | undefined;
  await pollUntil(
    `the index to hold the crossing's orders (${RESTING_GAUGE} = ${opts.indexedBefore + n})`,
    async () => {
      resting = (await engineSnapshot(origin)).resting;
      return resting === opts.indexedBefore + n;
    },
    INDEX_WAIT_MS,
    { seen: () => `gauge: ${resting}`, abort: opts.abort },
  );
  const before = await engineSnapshot(origin);
  const now = await currentPrice(origin, adminToken, ticker);
  if (now <= plan.limits[0]!) throw new Error(`${ticker} is at ${formatPrice(now)}, at or under the crossing's highest limit: the feed moved it; rerun`);

  const sentAtMs = Date.now();
  const t0 = performance.now();
  const res = await fetch(`${origin}/admin/prices/${encodeURIComponent(ticker)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ price: tick }),
  });
  if (res.status !== 200) throw new Error(`PUT /admin/prices/${ticker} answered ${res.status}: ${await res.text()}`);
  const asOfMs = Date.parse(((await res.json()) as { as_of: string }).as_of);
  let visibleAt = 0;
  await pollUntil(
    `all ${n} crossed orders to be FILLED`,
    async () => {
      state = await crossState(pool, ids, tick);
      visibleAt = performance.now();
      return state.filled === n;
    },
    CROSS_FILL_DEADLINE_MS,
    { intervalMs: CROSS_POLL_MS, seen: () => `${state.filled} FILLED, ${state.open} OPEN`, abort: opts.abort },
  );
  let after = await engineSnapshot(origin);
  // The counter is raised when each executor call returns, possibly after the commit we saw.
  await pollUntil(
    'the executions counter',
    async () => {
      after = await engineSnapshot(origin);
      return (after.executions ?? 0) - (before.executions ?? 0) >= n;
    },
    5_000,
  ).catch(() => undefined);
  return {
    ticker,
    orders: n,
    basePrice: formatPrice(base),
    limitsLow: formatPrice(plan.limits[n - 1]!),
    limitsHigh: formatPrice(plan.limits[0]!),
    tickPrice: tick,
    sentAtMs,
    asOfMs,
    sendToAsOfMs: asOfMs - sentAtMs,
    asOfToLastFilledAtMs: (state.lastMs ?? NaN) - asOfMs,
    sendToLastFilledAtMs: (state.lastMs ?? NaN) - sentAtMs,
    asOfToFirstFilledAtMs: (state.firstMs ?? NaN) - asOfMs,
    sendToAllVisibleMs: visibleAt - t0,
    pollIntervalMs: CROSS_POLL_MS,
    transactions: state.transactions,
    filledAtTickPrice: state.atTick === true,
    executionsCounted: before.executions === undefined || after.executions === undefined ? null : after.executions - before.executions,
  };
}

// ---------------------------------------------------------------------------------------------
// The micro-benchmark of the index alone

/** Runs dist/services/trading/resting-index.bench.js with --expose-gc and reads its JSON (fields read defensively). */
export async function runMicroBench(root: string): Promise<MicroBench> {
  const file = path.join(root, 'dist', 'services', 'trading', 'resting-index.bench.js');
  const command = `node --expose-gc ${path.relative(root, file)}`;
  const empty = { orders: null, bytesPerOrder: null, figure: null, callerObjectsBytesPerOrder: null, quietTickMeanUs: null, quietTickP99Us: null, crossingTickMeanMs: null, raw: null };
  if (!existsSync(file)) return { command, ...empty, error: 'not in this build' };
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', file], {
      cwd: root,
      timeout: MICRO_BENCH_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    return { command, ...readMicroBench(JSON.parse(stdout.slice(stdout.indexOf('{'))) as unknown), error: null };
  } catch (err) {
    return { command, ...empty, error: (err as Error).message.split('\n')[0] ?? 'failed' };
  }
}
