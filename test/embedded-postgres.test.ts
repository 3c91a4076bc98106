/**
 * The embedded PostgreSQL against the real server (no mocks): first start, restart with data
 * kept, recovery after the owner was SIGKILLed, stale postmaster.pid, attaching, refusing a second
 * owner, file modes, loopback only. Every test has its own data directory; waits poll with
 * deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CLUSTER_LOCATION_FILE,
  clusterDirOf,
  describeEmbedded,
  EmbeddedPostgresBusyError,
  EmbeddedPostgresError,
  LOG_ROTATE_BYTES,
  startEmbeddedPostgres,
  type EmbeddedServer,
} from '../src/infra/embedded-postgres.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODULE_PATH = path.join(REPO_ROOT, 'src/infra/embedded-postgres.ts');
const TEST_TIMEOUT_MS = 90_000;
/** A child's server may need an initdb first. */
const CHILD_READY_TIMEOUT_MS = 60_000;
const PROCESS_GONE_TIMEOUT_MS = 20_000;
const POLL_MS = 50;
const isRoot = process.getuid?.() === 0;

const servers: EmbeddedServer[] = [];
const children: ChildProcess[] = [];
const dirs: string[] = [];

async function dataDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pt-embedded-'));
  dirs.push(dir);
  return dir;
}

async function start(dir: string, mode: 'own' | 'attach-or-start' = 'own'): Promise<EmbeddedServer> {
  const server = await startEmbeddedPostgres({ dataDir: dir, mode });
  servers.push(server);
  return server;
}

async function query<R extends pg.QueryResultRow>(url: string, text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

async function waitFor(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(POLL_MS);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function postmasterPid(dir: string): number | undefined {
  try {
    return Number(readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

/** Postmasters of this data dir, found independently of the module: `postgres` working in <dir>/pg. */
function postmastersOf(dir: string): number[] {
  const pgDir = realpathSync(path.join(dir, 'pg'));
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv0 = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (path.basename(argv0) === 'postgres' && readlinkSync(`/proc/${name}/cwd`) === pgDir && alive(Number(name))) {
        found.push(Number(name));
      }
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/**
 * A separate papertrade-like process that starts the server of `dir` in 'own' mode, prints its
 * URL and keeps running (SIGTERM: stops the server, then exits).
 */
async function startOwnerProcess(dir: string): Promise<{ child: ChildProcess; url: string; port: number }> {
  const script = `
    const m = await import(${JSON.stringify(MODULE_PATH)});
    const s = await m.startEmbeddedPostgres({ dataDir: ${JSON.stringify(dir)}, mode: 'own' });
    process.on('SIGTERM', () => { s.stop().finally(() => process.exit(0)); });
    process.stdout.write(JSON.stringify({ url: s.url, port: s.port }) + '\\n');
    setInterval(() => {}, 1 << 30);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  await waitFor('the owner process to print its URL', () => out.includes('\n') || child.exitCode !== null, CHILD_READY_TIMEOUT_MS).catch(
    (e: Error) => {
      throw new Error(`${e.message}; stderr: ${err}`);
    },
  );
  if (!out.includes('\n')) throw new Error(`the owner process exited (${child.exitCode}): ${err}`);
  const { url, port } = JSON.parse(out.split('\n')[0]!) as { url: string; port: number };
  return { child, url, port };
}

function sigkill(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  return waitFor('the child to die', () => child.signalCode !== null || child.exitCode !== null, PROCESS_GONE_TIMEOUT_MS);
}

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) await sigkill(c);
  // Whatever a killed child left running: fast shutdown, then SIGKILL, each polled with a deadline.
  for (const dir of dirs.splice(0)) {
    if (existsSync(path.join(dir, 'pg'))) {
      for (const pid of postmastersOf(dir)) {
        process.kill(pid, 'SIGINT');
        await waitFor(`postmaster ${pid} to stop`, () => !alive(pid), PROCESS_GONE_TIMEOUT_MS).catch(() => {
          process.kill(pid, 'SIGKILL');
        });
      }
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
}, TEST_TIMEOUT_MS);

describe('embedded PostgreSQL', { timeout: TEST_TIMEOUT_MS }, () => {
  it('initialises on the first start and answers through the returned URL; a restart keeps the data', async () => {
    const dir = await dataDir();
    let t = Date.now();
    const first = await start(dir);
    const firstMs = Date.now() - t;
    expect(first.owned).toBe(true);
    expect(first.ownerPid).toBe(process.pid);
    expect(first.url).toBe(`postgres://postgres:${readFileSync(path.join(dir, 'pg-password'), 'utf8').trim()}@127.0.0.1:${first.port}/papertrade`);
    expect(await query(first.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    const [settings] = await query<{ encoding: string; version: string }>(
      first.url,
      "SELECT current_setting('server_encoding') AS encoding, current_setting('server_version_num') AS version",
    );
    expect(settings!.encoding).toBe('UTF8');
    expect(settings!.version).toMatch(/^17/);
    expect(describeEmbedded(first)).toBe(
      `PostgreSQL: embedded ${first.version} in ${dir}/pg on 127.0.0.1:${first.port} (set DATABASE_URL to use your own server)`,
    );
    expect(readFileSync(path.join(dir, 'postgres.owner'), 'utf8')).toContain(`"pid":${process.pid}`);

    await query(first.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives a restart')");
    await first.stop();
    await first.stop(); // idempotent
    expect(existsSync(path.join(dir, 'postgres.owner'))).toBe(false);
    expect(existsSync(path.join(dir, 'pg', 'postmaster.pid'))).toBe(false);

    t = Date.now();
    const second = await start(dir);
    const restartMs = Date.now() - t;
    expect(await query(second.url, 'SELECT v FROM kept')).toEqual([{ v: 'survives a restart' }]);
    console.log(`embedded PostgreSQL: first start (initdb included) ${firstMs} ms, restart ${restartMs} ms`);
  });

  it('starts after its owner was SIGKILLed: stops the orphaned server, keeps the data, runs one postmaster', async () => {
    const dir = await dataDir();
    const owner = await startOwnerProcess(dir);
    await query(owner.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives a SIGKILL')");
    const orphan = postmasterPid(dir)!;
    await sigkill(owner.child);
    // The orphan keeps running and holds postmaster.pid: the situation a restart has to handle.
    expect(alive(orphan)).toBe(true);
    expect(await query(owner.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);

    const t = Date.now();
    const server = await start(dir);
    console.log(`embedded PostgreSQL: start after a SIGKILLed owner ${Date.now() - t} ms`);
    expect(server.owned).toBe(true);
    expect(alive(orphan)).toBe(false);
    expect(await query(server.url, 'SELECT v FROM kept')).toEqual([{ v: 'survives a SIGKILL' }]);
    expect(postmastersOf(dir)).toEqual([postmasterPid(dir)]);
    expect(postmasterPid(dir)).not.toBe(orphan);
  });

  it('is not blocked by a stale postmaster.pid (dead PID, or a live process that is not postgres)', async () => {
    const dir = await dataDir();
    const first = await start(dir);
    await first.stop();
    const pidFile = path.join(dir, 'pg', 'postmaster.pid');
    const stale = (pid: number) => `${pid}\n${dir}/pg\n1700000000\n5432\n\n127.0.0.1\n  1234  5678\nready   \n`;

    // A PID that is certainly dead: a process that has exited and been reaped.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.once('exit', resolve));
    await fs.writeFile(pidFile, stale(gone.pid!));
    const second = await start(dir);
    expect(await query(second.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await second.stop();

    // A PID that is alive but is not a postgres (this test runner).
    await fs.writeFile(pidFile, stale(process.pid));
    const third = await start(dir);
    expect(await query(third.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it("'attach-or-start' attaches to the server of a live owner and leaves it running on stop()", async () => {
    const dir = await dataDir();
    const owner = await startOwnerProcess(dir);
    const attached = await start(dir, 'attach-or-start');
    expect(attached.owned).toBe(false);
    expect(attached.ownerPid).toBe(owner.child.pid);
    expect(attached.port).toBe(owner.port);
    expect(attached.url).toBe(owner.url);
    expect(describeEmbedded(attached)).toContain(`run by papertrade pid ${owner.child.pid}`);
    expect(await query(attached.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    const pid = postmasterPid(dir)!;
    await attached.stop();
    expect(alive(pid)).toBe(true);
    expect(await query(owner.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);

    // Once the owner is gone (cleanly), the tool starts a server of its own.
    owner.child.kill('SIGTERM');
    await waitFor('the owner to exit', () => owner.child.exitCode !== null, PROCESS_GONE_TIMEOUT_MS);
    expect(alive(pid)).toBe(false);
    const own = await start(dir, 'attach-or-start');
    expect(own.owned).toBe(true);
    expect(await query(own.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it("'own' refuses while another live papertrade owns the data dir", async () => {
    const dir = await dataDir();
    const owner = await startOwnerProcess(dir);
    const err = await startEmbeddedPostgres({ dataDir: dir, mode: 'own' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedPostgresBusyError);
    expect((err as EmbeddedPostgresBusyError).ownerPid).toBe(owner.child.pid);
    expect((err as Error).message).toBe(
      `another papertrade (pid ${owner.child.pid}) is using ${dir}; stop it or use another PAPERTRADE_DATA_DIR`,
    );
    // The refused start touched nothing: the owner's server still answers.
    expect(await query(owner.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(readFileSync(path.join(dir, 'postgres.owner'), 'utf8')).toContain(`"pid":${owner.child.pid}`);
  });

  it('keeps the password in a 0600 file and listens on 127.0.0.1 only, with no unix socket', async () => {
    const dir = await dataDir();
    const server = await start(dir);
    const passwordFile = path.join(dir, 'pg-password');
    expect((await fs.stat(passwordFile)).mode & 0o777).toBe(0o600);
    expect(readFileSync(passwordFile, 'utf8').trim()).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, base64url
    expect((await fs.stat(path.join(dir, 'postgres.log'))).mode & 0o777).toBe(0o600);

    const [settings] = await query<{ listen: string; sockets: string }>(
      server.url,
      "SELECT current_setting('listen_addresses') AS listen, current_setting('unix_socket_directories') AS sockets",
    );
    expect(settings).toEqual({ listen: '127.0.0.1', sockets: '' });
    // The kernel's view: every listening socket on the port is bound to 127.0.0.1.
    const hexPort = server.port.toString(16).toUpperCase().padStart(4, '0');
    const listening = ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A')
        .map((f) => f[1]),
    );
    expect(listening).toEqual([`0100007F:${hexPort}`]);
  });

  it('moves a postgres.log over the limit to postgres.log.1 at start', async () => {
    const dir = await dataDir();
    const big = Buffer.alloc(LOG_ROTATE_BYTES + 1, 'x');
    await fs.writeFile(path.join(dir, 'postgres.log'), big);
    await start(dir);
    expect((await fs.stat(path.join(dir, 'postgres.log.1'))).size).toBe(big.length);
    expect((await fs.stat(path.join(dir, 'postgres.log'))).size).toBeLessThan(LOG_ROTATE_BYTES);
    expect(readFileSync(path.join(dir, 'postgres.log'), 'utf8')).toContain('database system is ready to accept connections');
  });

  // Only root runs PostgreSQL as another user (postgres), whose reach can differ from its own.
  if (isRoot) {
    it('as root, keeps a cluster the postgres user cannot reach in the data dir in a home of its own, recorded, and reuses it', async () => {
      const parent = await dataDir(); // mkdtemp: 0700, not searchable by the postgres user
      const homes = await dataDir();
      await fs.chmod(homes, 0o711);
      const dir = path.join(parent, 'data');
      const first = await startEmbeddedPostgres({ dataDir: dir, mode: 'own', clusterHomesRoot: path.join(homes, 'clusters') });
      servers.push(first);
      const recorded = readFileSync(path.join(dir, CLUSTER_LOCATION_FILE), 'utf8').trim();
      expect(path.dirname(recorded)).toBe(path.join(homes, 'clusters'));
      expect(first.pgDir).toBe(path.join(recorded, 'pg'));
      expect(clusterDirOf(dir)).toBe(first.pgDir);
      expect(existsSync(path.join(dir, 'pg'))).toBe(false);
      await query(first.url, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)');
      await first.stop();
      // The next start follows the record (and would even if the permissions changed meanwhile).
      const second = await start(dir);
      expect(second.pgDir).toBe(first.pgDir);
      expect(await query<{ n: number }>(second.url, 'SELECT n FROM kept')).toEqual([{ n: 42 }]);
    });

    it('as root, says so clearly when neither the data dir nor a cluster home is in reach of the postgres user', async () => {
      const parent = await dataDir();
      const closed = await dataDir(); // 0700 too: a home under it is out of reach as well
      const err = await startEmbeddedPostgres({ dataDir: path.join(parent, 'data'), mode: 'own', clusterHomesRoot: path.join(closed, 'clusters') }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EmbeddedPostgresError);
      expect((err as Error).message).toContain(`${parent} is not searchable by it`);
      expect((err as Error).message).toContain(`nor ${closed}`);
      expect((err as Error).message).toContain('PAPERTRADE_DATA_DIR');
      expect(existsSync(path.join(parent, 'data', CLUSTER_LOCATION_FILE))).toBe(false);
    });
  }
});
