/**
 * Starting papertrade: a server it needs that does not answer is named in one line with its
 * address and what to do (exit 2, no stack trace); the admin token lives in the data directory
 * across restarts; the engine and the feed never print one.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAdminToken, AdminTokenFileError } from '../src/cli/admin-token.js';
import { loadConfig } from '../src/infra/config.js';
import { createTestContext, redisOnly, type TestContext } from './harness.js';
import { testRedisUrl, urlFor } from './db-names.js';

const root = fileURLToPath(new URL('..', import.meta.url));
let ctx: TestContext;
let dataDir: string;

beforeAll(async () => {
  ctx = await createTestContext({}, { auditOnClose: { skip: 'no trading' } });
  dataDir = await mkdtemp(path.join(tmpdir(), 'papertrade-cli-'));
});
afterAll(async () => {
  await ctx?.close();
  await rm(dataDir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI from source; with `until`, waits for that text in its output (deadline 30 s),
 * then stops it with SIGTERM.
 */
function cli(args: string[], env: Record<string, string>, until?: RegExp): Promise<Run> {
  return new Promise((resolve, reject) => {
    // node itself (not npx) so that SIGTERM reaches papertrade's own shutdown.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, PAPERTRADE_CLI: '1', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`papertrade ${args.join(' ')} did not finish in time:\n${stdout}\n${stderr}`));
    }, 30_000);
    const check = () => {
      if (until && until.test(stdout + stderr)) child.kill('SIGTERM');
    };
    child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), check()));
    child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), check()));
    child.on('exit', (code) => {
      clearTimeout(deadline);
      resolve({ code, stdout, stderr });
    });
  });
}

/** This run's PostgreSQL database, and its Redis when it has one (without: every role in memory). */
const reachableEnv = (): Record<string, string> => ({
  DATABASE_URL: urlFor(ctx.dbName),
  ...(testRedisUrl() ? { REDIS_URL: testRedisUrl()! } : {}),
  PAPERTRADE_REDIS_PREFIX: `test:cli:${ctx.dbName}:`,
  PAPERTRADE_DATA_DIR: dataDir,
});

describe('start-up with a server missing', () => {
  it('names PostgreSQL, its address and what to do, and exits 2 without a stack trace', { timeout: 60_000 }, async () => {
    const commands = [['start'], ['migrate'], ['user', 'create', '--name', 'A', '--email', 'a@example.com'], ['audit']];
    // A role alone needs Redis before anything else: it is tried only where the run has one.
    if (testRedisUrl()) commands.push(['engine']);
    for (const command of commands) {
      const run = await cli(command, { ...reachableEnv(), DATABASE_URL: 'postgres://postgres@127.0.0.1:1/papertrade' });
      // The audit keeps its own exit code for "could not run" (3); every other command says 2.
      expect(run.code, command.join(' ')).toBe(command[0] === 'audit' ? 3 : 2);
      expect(run.stderr).toContain(
        'papertrade: cannot reach PostgreSQL at 127.0.0.1:1 (ECONNREFUSED); set DATABASE_URL to a PostgreSQL server that is running, or start one',
      );
      expect(run.stderr).not.toMatch(/^\s+at /m);
    }
  });

  it('names Redis the same way, and both when both are missing', { timeout: 60_000 }, async () => {
    const redis = await cli(['feed'], { ...reachableEnv(), REDIS_URL: 'redis://127.0.0.1:1' });
    expect(redis.code).toBe(2);
    expect(redis.stderr).toContain('papertrade: cannot reach Redis at 127.0.0.1:1 (ECONNREFUSED); set REDIS_URL');
    const both = await cli(['api'], { ...reachableEnv(), REDIS_URL: 'redis://127.0.0.1:1', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('cannot reach PostgreSQL at 127.0.0.1:1');
    expect(both.stderr).toContain('cannot reach Redis at 127.0.0.1:1');
    expect(both.stderr).not.toMatch(/^\s+at /m);
  });

  it('reports a bad variable the same way', async () => {
    const run = await cli(['engine'], { ...reachableEnv(), PORT: 'eighty' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('PORT: must be an integer');
  });
});

describe('the admin token', () => {
  it('is generated once into the data directory (mode 0600) and read back on every later start', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'papertrade-token-'));
    try {
      const config = loadConfig({ PAPERTRADE_DATA_DIR: dir });
      const first = await resolveAdminToken(config);
      expect(first.created).toBe(true);
      expect(first.file).toBe(path.join(dir, 'admin-token'));
      expect(first.config.adminToken).toMatch(/^pta_[A-Za-z0-9_-]{32}$/);
      expect((await stat(first.file!)).mode & 0o777).toBe(0o600);
      const again = await resolveAdminToken(config);
      expect([again.created, again.config.adminToken]).toEqual([false, first.config.adminToken]);
      // Processes starting together agree on one token.
      const dir2 = path.join(dir, 'racing');
      const racing = await Promise.all(Array.from({ length: 8 }, () => resolveAdminToken(loadConfig({ PAPERTRADE_DATA_DIR: dir2 }))));
      expect(new Set(racing.map((r) => r.config.adminToken)).size).toBe(1);
      expect(racing.filter((r) => r.created)).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('comes from PAPERTRADE_ADMIN_TOKEN when set, and a damaged file is refused with what to do', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'papertrade-token-'));
    try {
      const env = await resolveAdminToken(loadConfig({ PAPERTRADE_DATA_DIR: dir, PAPERTRADE_ADMIN_TOKEN: 'x'.repeat(20) }));
      expect([env.file, env.config.adminToken]).toEqual([undefined, 'x'.repeat(20)]);
      await writeFile(path.join(dir, 'admin-token'), 'short\n');
      const err = await resolveAdminToken(loadConfig({ PAPERTRADE_DATA_DIR: dir })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AdminTokenFileError);
      expect((err as Error).message).toContain('delete it to have a new one generated');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is printed at start with where it is kept, and the same token on the next start', { timeout: 60_000 }, async () => {
    const { REDIS_URL: _redis, ...memory } = reachableEnv();
    const first = await cli(['start'], { ...memory, PORT: '0', FEED_TICK_MS: '1000' }, /api listening/);
    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    expect(first.stderr).toContain(`admin token (generated now): ${token}`);
    expect(first.stderr).toContain(`kept in ${path.join(dataDir, 'admin-token')}`);
    const again = await cli(['start'], { ...memory, PORT: '0', FEED_TICK_MS: '1000' }, /api listening/);
    expect(again.stderr).toContain(`admin token: ${token}`);
    expect(again.code, again.stderr).toBe(0);
  });

  it('is printed by the api alone, and never by the engine or the feed', { ...redisOnly, timeout: 60_000 }, async () => {
    const token = await resolveAdminToken(loadConfig({ PAPERTRADE_DATA_DIR: dataDir })).then((r) => r.config.adminToken);
    const api = await cli(['api'], { ...reachableEnv(), PORT: '0' }, /api listening/);
    expect(api.stderr).toContain(`admin token: ${token}`);
    const engine = await cli(['engine'], reachableEnv(), /trading engine consuming/);
    const feed = await cli(['feed'], reachableEnv(), /feed role started/);
    for (const run of [engine, feed]) {
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout + run.stderr).not.toMatch(/admin token|pta_/);
    }
  });

  it('runs the engine of `start` in a child process with Redis, and stops it with itself', { ...redisOnly, timeout: 60_000 }, async () => {
    const run = await cli(['start'], { ...reachableEnv(), PORT: '0', FEED_TICK_MS: '1000' }, /trading engine consuming the order stream/);
    expect(run.code, run.stderr).toBe(0);
    const out = run.stdout + run.stderr;
    const pid = Number(/"engine_pid":(\d+)/.exec(out)?.[1]);
    expect(pid).toBeGreaterThan(0);
    // Not the process that serves the api.
    expect(pid).not.toBe(Number(/"pid":(\d+),[^\n]*api listening/.exec(out)?.[1]));
    // The parent waited for its child before exiting: nothing is left running.
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    // START_ENGINE=in-process keeps it in the one process; child without Redis is refused.
    const inProcess = await cli(['start'], { ...reachableEnv(), PORT: '0', START_ENGINE: 'in-process' }, /trading engine consuming the order stream/);
    expect(inProcess.stdout + inProcess.stderr).not.toContain('child process');
    const { REDIS_URL: _redis, ...memory } = reachableEnv();
    const refused = await cli(['start'], { ...memory, START_ENGINE: 'child' });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('START_ENGINE: child needs REDIS_URL');
  });

  it('refuses to run a role alone without Redis, and says why', async () => {
    const { REDIS_URL: _redis, ...memory } = reachableEnv();
    for (const role of ['api', 'engine', 'feed']) {
      const run = await cli([role], memory);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`papertrade ${role} alone needs Redis`);
      expect(run.stderr).toContain('`papertrade start`');
    }
  });
});
