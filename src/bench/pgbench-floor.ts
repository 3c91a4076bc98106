/**
 * The SQL floor driven by the native pgbench instead of Node: the same least SQL one market
 * order needs (bench/sql/), with no client CPU of ours in the way. pgbench runs the scripts of
 * bench/sql/pgbench/ in prepared mode:
 *
 * - accept: accept-buy.sql and accept-sell.sql weighted by the sell ratio, one statement each
 *   (hold + PENDING row), a random floor user and ticker per transaction;
 * - fill: fill.sql, one transaction per batch that picks its own batch of PENDING orders in SQL
 *   (its client's partition of the users, FOR UPDATE SKIP LOCKED) and settles it.
 *
 * The two phases run one after the other, accepts first (building a backlog), then fills over
 * that backlog, so each is measured alone; the combined rate is what one order costs in both,
 * 1 / (1/accept + 1/fill). Every count comes from the database, not from pgbench: pgbench counts
 * transactions, and a refused accept is a transaction too.
 *
 * The floor users are seeded with seedFloorUsers (floor.ts) and indexed 1..n in the helper table
 * pgbench_floor_users, the tickers (price, cash to hold per buy) in pgbench_floor_tickers: the
 * scripts choose an index with pgbench's random() and look the rest up. The helper tables are
 * recreated by every run, so two runs must not share a database at the same time.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { seedFloorUsers } from './floor.js';

export const PGBENCH_SQL_DIR = new URL('../../bench/sql/pgbench/', import.meta.url);
/** pgbench gets its duration plus this long to connect, finish and report before it is killed. */
export const PGBENCH_TIMEOUT_SLACK_MS = 60_000;
/** `pgbench --version` answers at once or something is wrong. */
export const PGBENCH_VERSION_TIMEOUT_MS = 10_000;
/** pgbench prints a few dozen lines (more when clients abort, one line each). */
export const PGBENCH_OUTPUT_MAX_BYTES = 1024 * 1024;
/** No single statement of the floor should take this long; one that does aborts its client. */
export const PGBENCH_STATEMENT_TIMEOUT_MS = 30_000;
/** Statements of the setup and the counts (seeding is one statement per table). */
export const SETUP_STATEMENT_TIMEOUT_MS = 120_000;
/**
 * The warm-up fill run takes at most this many batches per client, and at most a quarter of
 * the smallest partition's backlog: it prepares the statements and gives the rate from which
 * the measured run's duration is chosen.
 */
export const FILL_PROBE_BATCHES_MAX = 20;
/**
 * The measured fill run is sized to use about this share of the backlog at the warm-up's rate.
 * Warm, the fill runs faster than in the warm-up (half again as fast in a 1,000-user run), so
 * the share leaves room for a rate up to about three times the warm-up's.
 */
export const FILL_BACKLOG_SHARE = 0.35;
/** pgbench's -T counts whole seconds. */
export const PGBENCH_DURATION_MIN_S = 1;
/** Bounds of the options (pgbench's own limits are far higher; these keep a typo harmless). */
const CLIENTS_MAX = 1_000;
const FILL_BATCH_MAX = 10_000;
const DURATION_MAX_S = 3_600;

export interface PgbenchScriptOptions {
  users: number;
  /** Number of tickers (the helper table holds their names and prices). */
  tickers: number;
  /** Shares per order (whole shares). */
  quantity: number;
  fillBatch: number;
  fillClients: number;
}

export interface PgbenchScripts {
  acceptBuy: string;
  acceptSell: string;
  fill: string;
}

let templates: PgbenchScripts | undefined;

function readTemplates(): PgbenchScripts {
  templates ??= {
    acceptBuy: readFileSync(new URL('accept-buy.sql', PGBENCH_SQL_DIR), 'utf8'),
    acceptSell: readFileSync(new URL('accept-sell.sql', PGBENCH_SQL_DIR), 'utf8'),
    fill: readFileSync(new URL('fill.sql', PGBENCH_SQL_DIR), 'utf8'),
  };
  return templates;
}

function positiveInt(name: string, value: number, max: number): string {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`${name} must be an integer in 1..${max}, got ${value}`);
  return String(value);
}

/**
 * The three pgbench scripts with the run's constants written in ({{users}}, {{quantity}}, ...):
 * literals rather than pgbench variables, so the prepared statements are planned for the real
 * LIMIT and modulus instead of a generic parameter. Only integers are substituted; prices and
 * tickers stay in the helper table. Pure apart from reading the (unchanging) template files once.
 */
export function pgbenchScripts(opts: PgbenchScriptOptions): PgbenchScripts {
  const values: Record<string, string> = {
    users: positiveInt('users', opts.users, 2 ** 31 - 1),
    tickers: positiveInt('tickers', opts.tickers, 2 ** 31 - 1),
    quantity: positiveInt('quantity', opts.quantity, 2 ** 31 - 1),
    fill_batch: positiveInt('fillBatch', opts.fillBatch, FILL_BATCH_MAX),
    fill_clients: positiveInt('fillClients', opts.fillClients, CLIENTS_MAX),
  };
  const fillIn = (name: string, text: string) =>
    text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
      const v = values[key];
      if (v === undefined) throw new Error(`bench/sql/pgbench/${name}: unknown placeholder {{${key}}}`);
      return v;
    });
  const t = readTemplates();
  return {
    acceptBuy: fillIn('accept-buy.sql', t.acceptBuy),
    acceptSell: fillIn('accept-sell.sql', t.acceptSell),
    fill: fillIn('fill.sql', t.fill),
  };
}

export interface PgbenchOutput {
  /** "number of transactions actually processed" (with -t, the first number of "n/m"). */
  transactions: number;
  /** "tps = N (without initial connection time)"; null when pgbench printed none (nothing ran). */
  tps: number | null;
  latencyAvgMs: number | null;
  /** "number of failed transactions" (pgbench 15 and later); null when not printed. */
  failed: number | null;
  /** "duration: N s" (runs with -T); null for runs with -t. */
  durationS: number | null;
  initialConnectionMs: number | null;
  clients: number | null;
  threads: number | null;
}

function numberAfter(text: string, re: RegExp): number | null {
  const m = re.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

/**
 * Reads pgbench's summary. Only the run's own lines count: the per-script lines repeat the
 * same labels after " - " and are not anchored at the start of a line.
 */
export function parsePgbenchOutput(text: string): PgbenchOutput {
  const transactions = numberAfter(text, /^number of transactions actually processed: (\d+)/m);
  if (transactions === null) throw new Error('not a pgbench summary: no "number of transactions actually processed" line');
  return {
    transactions,
    tps: numberAfter(text, /^tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/m),
    latencyAvgMs: numberAfter(text, /^latency average = ([\d.]+) ms/m),
    failed: numberAfter(text, /^number of failed transactions: (\d+)/m),
    durationS: numberAfter(text, /^duration: (\d+) s/m),
    initialConnectionMs: numberAfter(text, /^initial connection time = ([\d.]+) ms/m),
    clients: numberAfter(text, /^number of clients: (\d+)/m),
    threads: numberAfter(text, /^number of threads: (\d+)/m),
  };
}

/**
 * libpq's environment for pgbench, from the URL: the password travels in PGPASSWORD, never on
 * a command line that `ps` shows. The caller's other PG* variables are dropped so that none of
 * them (PGSERVICE, PGOPTIONS, ...) changes what the run connects to.
 */
export function pgbenchEnv(databaseUrl: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const url = new URL(databaseUrl);
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error(`not a PostgreSQL URL: ${url.protocol}`);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith('PG')) env[k] = v;
  const host = url.searchParams.get('host') ?? decodeURIComponent(url.hostname);
  if (host) env.PGHOST = host.replace(/^\[(.*)\]$/, '$1');
  if (url.port) env.PGPORT = url.port;
  if (url.username) env.PGUSER = decodeURIComponent(url.username);
  if (url.password) env.PGPASSWORD = decodeURIComponent(url.password);
  const db = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (db) env.PGDATABASE = db;
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode;
  env.PGAPPNAME = 'papertrade-bench-pgbench-floor';
  env.PGOPTIONS = `-c statement_timeout=${PGBENCH_STATEMENT_TIMEOUT_MS}`;
  return env;
}

interface ExecResult {
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: PGBENCH_OUTPUT_MAX_BYTES, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const tail = `${stderr}`.trim().split('\n').slice(-10).join('\n');
        reject(new Error(`${file} ${args.join(' ')} failed (${err.message.split('\n')[0]})${tail ? `:\n${tail}` : ''}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

export interface PgbenchRun {
  scripts: string[];
  clients: number;
  threads: number;
  /** -T seconds, or null for a run of -t transactions per client. */
  durationS: number | null;
  transactionsPerClient: number | null;
  transactions: number;
  tps: number;
  latencyAvgMs: number | null;
  failed: number | null;
  /** Seconds pgbench measured (transactions / tps, without connecting). */
  elapsedS: number;
}

export interface PgbenchFloorOptions {
  databaseUrl: string;
  users: number;
  tickers: { ticker: string; price: string }[];
  sellRatio: number;
  /** Shares per order (whole shares). */
  quantity: number;
  /** Shares of each ticker every floor user starts with: must cover every sell of the run. */
  seedShares: number;
  acceptClients?: number;
  fillClients?: number;
  fillBatch?: number;
  /** Seconds of the accept run; the fill run is sized from the backlog it leaves. */
  durationS: number;
  /** pgbench -j; default: min(clients, CPUs). */
  threads?: number;
  /** The pgbench executable (default: `pgbench` on the PATH). */
  pgbench?: string;
  /** Called just before and just after each measured pgbench run (CPU samples). */
  onRun?(phase: 'accept' | 'fill', edge: 'start' | 'end'): Promise<void> | void;
}

export interface PgbenchFloorResult {
  pgbenchVersion: string;
  users: number;
  tickers: number;
  sellRatio: number;
  accept: {
    run: PgbenchRun;
    /** Orders the floor inserted (from the database). */
    accepted: number;
    refusedBuys: number;
    refusedSells: number;
    perS: number;
  };
  fill: {
    batch: number;
    /** The warm-up run (null when the backlog was too small for one). */
    probe: PgbenchRun | null;
    run: PgbenchRun;
    /** PENDING floor orders when the measured run started and after it. */
    backlogBefore: number;
    pendingAfter: number;
    /** Orders the measured run filled (from the database). */
    filled: number;
    /**
     * True when some client's partition ran out of PENDING orders during the measured run: its
     * rate is then taken up to exhaustion from the batches' start times (`perS`), and
     * `perSWholeRun` (filled / run time) understates it.
     */
    exhausted: boolean;
    perS: number;
    perSWholeRun: number;
  };
  combinedPerS: number;
}

function pgbenchRunOf(out: PgbenchOutput, scripts: string[], clients: number, threads: number, durationS: number | null, perClient: number | null): PgbenchRun {
  if (out.tps === null || out.tps <= 0 || out.transactions === 0) throw new Error('pgbench ran no transaction');
  return {
    scripts,
    clients,
    threads,
    durationS,
    transactionsPerClient: perClient,
    transactions: out.transactions,
    tps: out.tps,
    latencyAvgMs: out.latencyAvgMs,
    failed: out.failed,
    elapsedS: out.transactions / out.tps,
  };
}

/** Counts the run needs; every one is about the floor users of this run only. */
async function counts(client: pg.Client, fillClients: number): Promise<{ orders: number; pending: number[]; filled: number; refusedBuys: number; refusedSells: number }> {
  const { rows } = await client.query<{ part: number; orders: string; pending: string; filled: string }>(
    `SELECT fu.idx % $1 AS part, count(o.id) AS orders,
            count(o.id) FILTER (WHERE o.status = 'PENDING') AS pending,
            count(o.id) FILTER (WHERE o.status = 'FILLED') AS filled
       FROM pgbench_floor_users fu LEFT JOIN orders o ON o.user_id = fu.user_id
      GROUP BY 1 ORDER BY 1`,
    [fillClients],
  );
  const refused = await client.query<{ buys: string; sells: string }>(
    `SELECT count(*) FILTER (WHERE side = 'buy') AS buys, count(*) FILTER (WHERE side = 'sell') AS sells FROM pgbench_floor_refusals`,
  );
  const pending = Array.from({ length: fillClients }, () => 0);
  for (const r of rows) pending[r.part] = Number(r.pending);
  return {
    orders: rows.reduce((n, r) => n + Number(r.orders), 0),
    pending,
    filled: rows.reduce((n, r) => n + Number(r.filled), 0),
    refusedBuys: Number(refused.rows[0]!.buys),
    refusedSells: Number(refused.rows[0]!.sells),
  };
}

/**
 * Fills per second up to exhaustion: per client (partition), the orders of every batch but its
 * last over the time from its first batch's start to its last's (each batch's fills carry its
 * transaction's start time), summed over the clients.
 */
async function fillRateToExhaustion(client: pg.Client, fillClients: number, since: string): Promise<number> {
  const { rows } = await client.query<{ orders: string | null; span_s: string | null }>(
    `WITH b AS (
       SELECT fu.idx % $1 AS part, f.executed_at AS at, count(*) AS orders
         FROM fills f JOIN orders o ON o.id = f.order_id JOIN pgbench_floor_users fu ON fu.user_id = o.user_id
        WHERE f.executed_at >= $2::timestamptz
        GROUP BY 1, 2
     ), w AS (
       SELECT part, at, orders, max(at) OVER (PARTITION BY part) AS last, min(at) OVER (PARTITION BY part) AS first FROM b
     )
     SELECT sum(orders) FILTER (WHERE at < last) AS orders, extract(epoch FROM max(last) - min(first)) AS span_s
       FROM w GROUP BY part`,
    [fillClients, since],
  );
  let rate = 0;
  for (const r of rows) {
    const span = Number(r.span_s ?? 0);
    if (span > 0 && r.orders !== null) rate += Number(r.orders) / span;
  }
  return rate;
}

export async function runPgbenchFloor(opts: PgbenchFloorOptions): Promise<PgbenchFloorResult> {
  const acceptClients = Number(positiveInt('acceptClients', opts.acceptClients ?? 16, CLIENTS_MAX));
  const fillClients = Number(positiveInt('fillClients', opts.fillClients ?? 2, CLIENTS_MAX));
  const fillBatch = Number(positiveInt('fillBatch', opts.fillBatch ?? 50, FILL_BATCH_MAX));
  const durationS = Number(positiveInt('durationS', opts.durationS, DURATION_MAX_S));
  if (!(opts.sellRatio >= 0 && opts.sellRatio <= 1)) throw new RangeError(`sellRatio must be in [0, 1], got ${opts.sellRatio}`);
  if (opts.tickers.length === 0) throw new RangeError('at least one ticker');
  // Every fill client needs a partition with users in it, or it has nothing to do.
  if (!(opts.users >= fillClients)) throw new RangeError(`users (${opts.users}) must be at least fillClients (${fillClients})`);
  for (const t of opts.tickers) {
    if (!/^\d{1,16}(\.\d{1,4})?$/.test(t.price) || /^0+(\.0+)?$/.test(t.price)) throw new RangeError(`price of ${t.ticker} must be a positive decimal string, got ${t.price}`);
  }
  const pgbench = opts.pgbench ?? 'pgbench';
  const env = pgbenchEnv(opts.databaseUrl);
  const threadsFor = (clients: number) => Math.min(clients, opts.threads ?? availableParallelism());

  const version = (await run(pgbench, ['--version'], env, PGBENCH_VERSION_TIMEOUT_MS)).stdout.trim();
  const scripts = pgbenchScripts({ users: opts.users, tickers: opts.tickers.length, quantity: opts.quantity, fillBatch, fillClients });
  const dir = await mkdtemp(path.join(tmpdir(), 'papertrade-pgbench-floor-'));
  const client = new pg.Client({
    connectionString: opts.databaseUrl,
    application_name: 'papertrade-bench-pgbench-floor',
    statement_timeout: SETUP_STATEMENT_TIMEOUT_MS,
  });
  await client.connect();
  try {
    const files = { acceptBuy: path.join(dir, 'accept-buy.sql'), acceptSell: path.join(dir, 'accept-sell.sql'), fill: path.join(dir, 'fill.sql') };
    await Promise.all([writeFile(files.acceptBuy, scripts.acceptBuy), writeFile(files.acceptSell, scripts.acceptSell), writeFile(files.fill, scripts.fill)]);

    // The helper tables: the floor users by index, the tickers by index with the cash a buy
    // holds (quantity x price x 1.05 rounded up to the cent, as papertrade's default buffer).
    await client.query(`DROP TABLE IF EXISTS pgbench_floor_users, pgbench_floor_tickers, pgbench_floor_refusals`);
    await client.query(`CREATE TABLE pgbench_floor_users (idx int PRIMARY KEY, user_id uuid NOT NULL UNIQUE)`);
    await client.query(
      `CREATE TABLE pgbench_floor_tickers (idx int PRIMARY KEY, ticker text NOT NULL UNIQUE, price numeric(20, 4) NOT NULL, reserve numeric(20, 2) NOT NULL)`,
    );
    await client.query(`CREATE TABLE pgbench_floor_refusals (side text NOT NULL, user_idx int NOT NULL, ticker_idx int NOT NULL)`);
    const users = await seedFloorUsers(client, {
      databaseUrl: opts.databaseUrl,
      users: opts.users,
      tickers: opts.tickers,
      sellRatio: opts.sellRatio,
      quantity: opts.quantity,
      seedShares: opts.seedShares,
      acceptConnections: acceptClients,
      fillConnections: fillClients,
      batchSize: fillBatch,
      warmupMs: 0,
      durationMs: durationS * 1000,
    });
    await client.query(`INSERT INTO pgbench_floor_users (idx, user_id) SELECT n, id FROM unnest($1::uuid[]) WITH ORDINALITY AS u (id, n)`, [
      users.map((u) => u.id),
    ]);
    await client.query(
      `INSERT INTO pgbench_floor_tickers (idx, ticker, price, reserve)
       SELECT n, ticker, price, ceil($3::numeric * price * 1.05 * 100) / 100
         FROM unnest($1::text[], $2::numeric[]) WITH ORDINALITY AS t (ticker, price, n)`,
      [opts.tickers.map((t) => t.ticker), opts.tickers.map((t) => t.price), opts.quantity],
    );
    await client.query('ANALYZE pgbench_floor_users, pgbench_floor_tickers');
    await client.query('CHECKPOINT');

    // (a) Accept alone. pgbench's weights are integers: the sell ratio in thousandths.
    const sellWeight = Math.round(opts.sellRatio * 1000);
    const acceptFiles = [
      ...(sellWeight < 1000 ? [`${files.acceptBuy}@${1000 - sellWeight}`] : []),
      ...(sellWeight > 0 ? [`${files.acceptSell}@${sellWeight}`] : []),
    ];
    const acceptThreads = threadsFor(acceptClients);
    await opts.onRun?.('accept', 'start');
    const acceptOut = await run(
      pgbench,
      [...acceptFiles.flatMap((f) => ['-f', f]), '-M', 'prepared', '-n', '-c', String(acceptClients), '-j', String(acceptThreads), '-T', String(durationS)],
      env,
      durationS * 1000 + PGBENCH_TIMEOUT_SLACK_MS,
    );
    await opts.onRun?.('accept', 'end');
    const acceptRun = pgbenchRunOf(parsePgbenchOutput(acceptOut.stdout), acceptFiles, acceptClients, acceptThreads, durationS, null);
    const afterAccept = await counts(client, fillClients);
    // Refusals are transactions too: only the rows inserted count, over pgbench's own time.
    const acceptPerS = afterAccept.orders / acceptRun.elapsedS;
    await client.query('ANALYZE orders');

    // (b) Fill alone, over that backlog. A short warm-up run first (-t: a fixed number of batches
    // per client that cannot exhaust any partition) prepares the statements and gives the rate
    // that sizes the measured -T run to use about a third of what remains.
    const fillThreads = threadsFor(fillClients);
    const fillArgs = ['-f', files.fill, '-M', 'prepared', '-n', '-c', String(fillClients), '-j', String(fillThreads)];
    const probeBatches = Math.min(FILL_PROBE_BATCHES_MAX, Math.floor(Math.min(...afterAccept.pending) / fillBatch / 4));
    let probe: PgbenchRun | null = null;
    if (probeBatches >= 1) {
      const out = await run(pgbench, [...fillArgs, '-t', String(probeBatches)], env, PGBENCH_TIMEOUT_SLACK_MS);
      probe = pgbenchRunOf(parsePgbenchOutput(out.stdout), [files.fill], fillClients, fillThreads, null, probeBatches);
    }
    const beforeFill = await counts(client, fillClients);
    const backlogBefore = beforeFill.pending.reduce((a, b) => a + b, 0);
    // Per client: the smallest partition decides when the first client runs dry.
    const probeRatePerClient = probe ? (probe.tps * fillBatch) / fillClients : 0;
    const fillS =
      probeRatePerClient > 0
        ? Math.min(durationS, Math.max(PGBENCH_DURATION_MIN_S, Math.floor((FILL_BACKLOG_SHARE * Math.min(...beforeFill.pending)) / probeRatePerClient)))
        : PGBENCH_DURATION_MIN_S;
    const since = (await client.query<{ now: string }>('SELECT clock_timestamp()::text AS now')).rows[0]!.now;
    await opts.onRun?.('fill', 'start');
    const fillOut = await run(pgbench, [...fillArgs, '-T', String(fillS)], env, fillS * 1000 + PGBENCH_TIMEOUT_SLACK_MS);
    await opts.onRun?.('fill', 'end');
    const fillRun = pgbenchRunOf(parsePgbenchOutput(fillOut.stdout), [files.fill], fillClients, fillThreads, fillS, null);
    const afterFill = await counts(client, fillClients);
    const filled = afterFill.filled - beforeFill.filled;
    const exhausted = afterFill.pending.some((n) => n === 0);
    const perSWholeRun = filled / fillRun.elapsedS;
    const fillPerS = exhausted ? await fillRateToExhaustion(client, fillClients, since) : perSWholeRun;

    return {
      pgbenchVersion: version,
      users: opts.users,
      tickers: opts.tickers.length,
      sellRatio: opts.sellRatio,
      accept: {
        run: acceptRun,
        accepted: afterAccept.orders,
        refusedBuys: afterAccept.refusedBuys,
        refusedSells: afterAccept.refusedSells,
        perS: acceptPerS,
      },
      fill: {
        batch: fillBatch,
        probe,
        run: fillRun,
        backlogBefore,
        pendingAfter: afterFill.pending.reduce((a, b) => a + b, 0),
        filled,
        exhausted,
        perS: fillPerS,
        perSWholeRun,
      },
      combinedPerS: acceptPerS > 0 && fillPerS > 0 ? 1 / (1 / acceptPerS + 1 / fillPerS) : 0,
    };
  } finally {
    await client.end().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
