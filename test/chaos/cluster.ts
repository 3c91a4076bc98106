/**
 * The system under test for the chaos suite, as separate OS processes built from `dist/`: one
 * api, two engines and one feed, against a scratch database (created from the migrations) and a
 * Redis key prefix of their own. Also the faults: SIGKILL a process, delete this run's Redis
 * keys, restart the local PostgreSQL cluster.
 *
 * Every child runs in its own process group (src/bench/processes.ts): killing it kills the
 * group, and `killAllSync` (wired to the test process's exit) leaves nothing behind.
 *
 * Engines log at info, so the suite can tell from their logs which one watches the resting
 * orders (`restingLeader`, `watcherEvents`) and quote their warnings next to a violation
 * (`logEntries`); `runCli` runs `papertrade audit` against the run's database.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createDb, ensureDatabase, migrateToLatest, quoteIdent, type Db } from '../../src/infra/postgres.js';
import { freePort, startProcess, stopProcess, tailFile, type ManagedProcess } from '../../src/bench/processes.js';
import { createKeys, type Keys } from '../../src/infra/keys.js';
import { adminUrl, redisUrl, testDatabaseName, urlFor } from '../db-names.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(ROOT, 'dist/cli/main.js');

export type Role = 'api' | 'engine' | 'feed';

/** A chaos run takes a few minutes; databases and keys of runs older than this are leftovers. */
export const STALE_RUN_MS = 30 * 60 * 1000;

/** Recovery settings short enough for a run of a few minutes (see README "Chaos suite"). */
export const CHAOS_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'warn',
  ENGINE_CLAIM_IDLE_MS: '2000',
  RECONCILE_INTERVAL_MS: '500',
  RECONCILE_AFTER_MS: '2000',
  ENGINE_BLOCK_MS: '200',
  // Generous: a feed that re-acquires its lock after the Redis flush must not make every order stale.
  PRICE_AGE_MS_MAX: '30000',
  ENGINE_PRICE_WAIT_MS_MAX: '120000',
  FEED_TICK_MS: '250',
  FEED_LEADER_TTL_MS: '2000',
  // The resting-order watcher's lease: another engine takes the watch over within about this
  // long after the watcher dies (the default is 3 s; the suite bounds the takeover at 10 s).
  ENGINE_RESTING_LEASE_TTL_MS: '2000',
  PG_POOL_MAX: '10',
};

/**
 * Log levels per role: engines log at info, which is a few lines per watcher term ("resting
 * watcher leading", "no longer leading"), so the suite knows which engine watches the resting
 * orders (the one it SIGKILLs) and a report can say who watched when.
 */
const ROLE_LOG_LEVEL: Readonly<Partial<Record<Role, string>>> = { engine: 'info' };

/** A watcher term as an engine logged it. */
export interface WatcherEvent {
  engine: string;
  atMs: number;
  event: 'leading' | 'no longer leading';
  resting?: number;
}

export interface ProcessRecord {
  name: string;
  role: Role;
  process: ManagedProcess;
  /** Killed or stopped by the suite; any other exit is a failure of the system under test. */
  intended: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Cluster {
  readonly runId: string;
  readonly dbName: string;
  readonly prefix: string;
  readonly adminToken: string;
  readonly logDir: string;
  readonly redis: Redis;
  /** This run's Redis key names (the tick log, the watcher's cursor). */
  readonly keys: Keys;
  db!: Db;
  port = 0;
  readonly processes: ProcessRecord[] = [];
  private seq = 0;

  constructor() {
    this.runId = `${Date.now()}_${Math.random().toString(16).slice(2, 8)}`;
    this.dbName = testDatabaseName(`chaos${this.runId.split('_')[1]}`);
    this.prefix = `chaos:${this.runId}:`;
    this.adminToken = `chaos-admin-${this.runId}-0123456789`;
    this.logDir = mkdtempSync(path.join(tmpdir(), 'papertrade-chaos-'));
    this.redis = new Redis(redisUrl(), { maxRetriesPerRequest: 2, connectTimeout: 3_000, lazyConnect: false });
    this.redis.on('error', () => undefined);
    this.keys = createKeys(this.prefix);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get databaseUrl(): string {
    return urlFor(this.dbName);
  }

  /** Creates and migrates the scratch database; picks a free port. */
  async prepare(): Promise<void> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm run test:chaos does)`);
    await this.dropStaleRuns();
    await ensureDatabase(this.databaseUrl);
    const { db } = createDb(this.databaseUrl, 4);
    this.db = db;
    await migrateToLatest(db);
    this.port = await freePort();
  }

  /**
   * An interrupted run (Ctrl-C, a killed CI job) leaves its database and Redis keys behind; both
   * carry the run's start time, so those of runs older than STALE_RUN_MS are dropped here.
   */
  private async dropStaleRuns(): Promise<void> {
    const stale = (ms: string | undefined) => ms !== undefined && Date.now() - Number(ms) > STALE_RUN_MS;
    let cursor = '0';
    for (let round = 0; round < 10_000; round++) {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', 'chaos:*', 'COUNT', 1_000);
      const old = keys.filter((k) => stale(/^chaos:(\d{13})_/.exec(k)?.[1]));
      if (old.length) await this.redis.del(...old);
      cursor = next;
      if (cursor === '0') break;
    }
    const admin = new pg.Client({ connectionString: adminUrl(), connectionTimeoutMillis: 5_000 });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'pt\\_test\\_%\\_chaos%'");
      for (const { datname } of rows) {
        if (stale(/^pt_test_(\d{13})_chaos/.exec(datname)?.[1])) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`);
      }
    } finally {
      await admin.end().catch(() => undefined);
    }
  }

  env(role?: Role): NodeJS.ProcessEnv {
    const level = role === undefined ? undefined : ROLE_LOG_LEVEL[role];
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: redisUrl(),
      PAPERTRADE_REDIS_PREFIX: this.prefix,
      PAPERTRADE_ADMIN_TOKEN: this.adminToken,
      HOST: '127.0.0.1',
      PORT: String(this.port),
      ...CHAOS_ENV,
      ...(level ? { LOG_LEVEL: level } : {}),
    };
  }

  start(role: Role): ProcessRecord {
    this.seq += 1;
    const name = `${role}-${this.seq}`;
    const logFile = path.join(this.logDir, `${name}.log`);
    const p = startProcess(name, process.execPath, [CLI, role], this.env(role), logFile);
    const record: ProcessRecord = { name, role, process: p, intended: false };
    this.processes.push(record);
    return record;
  }

  /** SIGKILL to the process group, then waits (bounded) for the exit. */
  async kill(record: ProcessRecord): Promise<void> {
    record.intended = true;
    try {
      process.kill(-record.process.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await Promise.race([record.process.done, sleep(5_000)]);
  }

  /** SIGTERM (graceful: an engine finishes its batch), SIGKILL after the grace period. */
  async stop(record: ProcessRecord, graceMs = 8_000): Promise<void> {
    record.intended = true;
    await stopProcess(record.process, graceMs);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.processes.filter((r) => !r.process.exited).map((r) => this.stop(r)));
  }

  /** Processes that exited without the suite asking them to. */
  unexpectedExits(): ProcessRecord[] {
    return this.processes.filter((r) => r.process.exited && !r.intended);
  }

  running(role: Role): ProcessRecord[] {
    return this.processes.filter((r) => r.role === role && !r.process.exited);
  }

  /**
   * Runs a CLI command of papertrade (`papertrade audit …`) against this run's database and
   * Redis; its output and exit code. Bounded: SIGKILLed past `timeoutMs` (code null).
   */
  async runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
    this.seq += 1;
    const logFile = path.join(this.logDir, `cli-${args[0] ?? 'command'}-${this.seq}.log`);
    const p = startProcess(`cli-${this.seq}`, process.execPath, [CLI, ...args], this.env(), logFile);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const finished = await Promise.race([p.done.then(() => true), timedOut]);
    clearTimeout(timer);
    if (!finished) await stopProcess(p, 1_000);
    return { code: finished ? p.exitCode : null, output: tailFile(logFile, 200_000) };
  }

  /** Every watcher term the engines logged, in time order. */
  watcherEvents(): WatcherEvent[] {
    const events: WatcherEvent[] = [];
    for (const r of this.processes.filter((p) => p.role === 'engine')) {
      for (const line of logLines(r.process.logFile)) {
        if (!line.includes('resting watcher')) continue;
        try {
          const entry = JSON.parse(line) as { time?: string | number; msg?: string; resting?: number };
          const atMs = typeof entry.time === 'string' ? Date.parse(entry.time) : (entry.time ?? 0);
          if (entry.msg === 'resting watcher leading; index built') {
            events.push({ engine: r.name, atMs, event: 'leading', ...(entry.resting === undefined ? {} : { resting: entry.resting }) });
          } else if (entry.msg === 'resting watcher no longer leading') {
            events.push({ engine: r.name, atMs, event: 'no longer leading' });
          }
        } catch {
          /* not a log line */
        }
      }
    }
    return events.sort((a, b) => a.atMs - b.atMs);
  }

  /**
   * Log entries of level >= `minLevel` (pino: 40 warn, 50 error) that `role`'s processes wrote
   * between `fromMs` and `toMs`, in time order, one line each: "engine-7 00:10:21.261Z warn <msg> (<err>) {fields}".
   */
  logEntries(role: Role, fromMs: number, toMs: number, minLevel = 40): string[] {
    const found: { atMs: number; line: string }[] = [];
    for (const r of this.processes.filter((p) => p.role === role)) {
      for (const line of logLines(r.process.logFile)) {
        if (!line.startsWith('{')) continue;
        try {
          const { level, time, msg, err, role: _role, pid: _pid, ...fields } = JSON.parse(line) as { level?: number; time?: string; msg?: string; err?: { type?: string; message?: string }; role?: string; pid?: number };
          const atMs = Date.parse(time ?? '');
          if ((level ?? 0) < minLevel || !(atMs >= fromMs && atMs <= toMs)) continue;
          const shown = Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
          found.push({ atMs, line: `${r.name} ${time} ${level! >= 50 ? 'error' : 'warn'} ${msg ?? '?'}${err ? ` (${err.type}: ${err.message})` : ''}${shown}` });
        } catch {
          /* not a log line */
        }
      }
    }
    return found.sort((a, b) => a.atMs - b.atMs).map((f) => f.line);
  }

  /** The running engine that leads the resting-order watch now, as far as the logs tell. */
  restingLeader(): ProcessRecord | undefined {
    const last = new Map<string, WatcherEvent>();
    for (const e of this.watcherEvents()) last.set(e.engine, e);
    return this.running('engine')
      .filter((r) => last.get(r.name)?.event === 'leading')
      .sort((a, b) => last.get(b.name)!.atMs - last.get(a.name)!.atMs)[0];
  }

  /** The tails of every child's log, for a failure message. */
  logTails(bytes = 3_000): string {
    return this.processes
      .map((r) => {
        const state = r.process.exited
          ? `exited code=${r.process.exitCode} signal=${r.process.exitSignal}${r.intended ? ' (by the suite)' : ' (UNEXPECTED)'}`
          : 'running';
        const tail = tailFile(r.process.logFile, bytes).trimEnd();
        return `--- ${r.name} (pid ${r.process.pid}, ${state}) ${r.process.logFile}\n${tail || '(empty log)'}`;
      })
      .join('\n');
  }

  /**
   * Error-level lines (pino level >= 50) of every child's log, counted by message and error type;
   * output that is not a log line (a crash's stack trace) is counted as "unstructured output".
   */
  loggedErrors(): Map<string, number> {
    const counts = new Map<string, number>();
    const add = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
    for (const r of this.processes) {
      let text = '';
      try {
        text = readFileSync(r.process.logFile, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        let entry: { level?: number; msg?: string; err?: { type?: string; message?: string } };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          add(`${r.role}: unstructured output`);
          continue;
        }
        if ((entry.level ?? 0) >= 50) add(`${r.role}: ${entry.msg ?? '?'}${entry.err?.type ? ` (${entry.err.type}: ${entry.err.message?.replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 80)})` : ''}`);
      }
    }
    return counts;
  }

  /** Deletes every key of this run (SCAN + DEL; never FLUSHALL: other runs may share Redis). */
  async flushRedisPrefix(): Promise<number> {
    let cursor = '0';
    let deleted = 0;
    for (let round = 0; round < 10_000; round++) {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1_000);
      if (keys.length) deleted += await this.redis.del(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
    return deleted;
  }

  /**
   * Processes of this run still alive anywhere on the machine: a `dist/cli/main.js` process whose
   * environment carries this run's Redis prefix (other runs' processes are not ours to judge).
   */
  orphans(): { pid: number; cmdline: string }[] {
    const found: { pid: number; cmdline: string }[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
        if (!cmdline.includes('dist/cli/main.js')) continue;
        const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
        if (environ.includes(`PAPERTRADE_REDIS_PREFIX=${this.prefix}`)) found.push({ pid: Number(entry), cmdline: cmdline.trim() });
      } catch {
        /* gone meanwhile, or not readable */
      }
    }
    return found;
  }

  /** Drops the scratch database and this run's Redis keys; closes the suite's own connections. */
  async dispose(): Promise<void> {
    await this.db?.destroy().catch(() => undefined);
    await this.flushRedisPrefix().catch(() => undefined);
    this.redis.disconnect();
    const admin = new pg.Client({ connectionString: adminUrl(), connectionTimeoutMillis: 5_000 });
    try {
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(this.dbName)} WITH (FORCE)`);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL restart

export type PgRestartResult =
  | { done: true; downMs: number; command: string }
  | { done: false; reason: string };

/**
 * Runs a command in a process group of its own, so a Ctrl-C aimed at the test run cannot
 * interrupt `pg_ctlcluster` between stopping and starting the server. Past the deadline it is
 * left to finish on its own: killing it halfway could leave the server stopped.
 */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    let settled = false;
    const settle = (ok: boolean, extra = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ok, output: `${output}${extra}`.trim() });
    };
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.on('error', (err) => settle(false, ` (${err.message})`));
    child.on('exit', (code, signal) => settle(code === 0, code === 0 ? '' : ` (exit code ${code}, signal ${signal})`));
    const timer = setTimeout(() => settle(false, ` (still running after ${timeoutMs} ms)`), timeoutMs);
  });
}

/** The local cluster the suite could restart, or why it cannot. */
export function localCluster(): { version: string } | { reason: string } {
  const host = new URL(adminUrl()).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) return { reason: `PostgreSQL at ${host} is not local` };
  if (!existsSync('/usr/bin/pg_ctlcluster') && !existsSync('/usr/local/bin/pg_ctlcluster')) {
    return { reason: 'pg_ctlcluster is not installed' };
  }
  let versions: string[];
  try {
    versions = readdirSync('/etc/postgresql').sort();
  } catch {
    return { reason: '/etc/postgresql does not exist' };
  }
  if (!versions[0]) return { reason: 'no cluster under /etc/postgresql' };
  return { version: versions[0] };
}

export async function postgresStartedAt(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: adminUrl(), connectionTimeoutMillis: 2_000 });
  // A server shutting down terminates the connection with an error event: not an uncaught one.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t');
    return rows[0]?.t;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function waitForPostgres(timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await postgresStartedAt()) return true;
    await sleep(200);
  }
  return false;
}

/**
 * Restarts the local cluster (`pg_ctlcluster … restart`, fast shutdown: every connection is
 * cut). Never throws: when the suite cannot control the server it says why and the fault is
 * skipped. A restart that did not change the postmaster's start time did not hit our server.
 */
export async function restartPostgres(): Promise<PgRestartResult> {
  const cluster = localCluster();
  if ('reason' in cluster) return { done: false, reason: cluster.reason };
  const before = await postgresStartedAt();
  if (!before) return { done: false, reason: 'PostgreSQL does not answer before the restart' };
  const args = ['--skip-systemctl-redirect', cluster.version, 'main', 'restart'];
  const command = `pg_ctlcluster ${args.join(' ')}`;
  const started = Date.now();
  const result = await run('pg_ctlcluster', args, 60_000);
  if (!result.ok) {
    await ensurePostgresUp();
    return { done: false, reason: `${command} failed: ${result.output.slice(0, 300)}` };
  }
  if (!(await waitForPostgres(30_000))) return { done: false, reason: `${command}: PostgreSQL did not come back within 30 s` };
  const after = await postgresStartedAt();
  if (after === before) return { done: false, reason: `${command} did not restart the server the suite uses` };
  return { done: true, downMs: Date.now() - started, command };
}

/** Starts the local cluster if it does not answer (a run that died mid-restart). */
export async function ensurePostgresUp(): Promise<void> {
  if (await postgresStartedAt()) return;
  const cluster = localCluster();
  if ('reason' in cluster) return;
  await run('pg_ctlcluster', ['--skip-systemctl-redirect', cluster.version, 'main', 'start'], 60_000);
  await waitForPostgres(30_000);
}

/** The lines of a child's log file; none when it does not exist (the process never started). */
function logLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}
