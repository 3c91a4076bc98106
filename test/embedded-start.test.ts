/**
 * papertrade as a new user starts it, with nothing configured: `papertrade start` runs its own
 * PostgreSQL in the data directory and keeps the order pipe, quote store and locks in memory.
 * The seed's buy and sell flows go through, a SIGKILL with orders still PENDING loses nothing
 * (the next start brings every one of them to a terminal status), and the audit is clean.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../src/infra/embedded-postgres.js';
import { eventually } from './harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
let dataDir: string;
let port: number;
let papertrade: ChildProcess | undefined;
let output = '';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** The environment of a user who configured nothing (no DATABASE_URL, no REDIS_URL). */
function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, PAPERTRADE_CLI: '1', PAPERTRADE_DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'PAPERTRADE_ADMIN_TOKEN', 'PAPERTRADE_REDIS_PREFIX']) delete e[name];
  // Quick recovery, so the test does not wait the production defaults.
  return { ...e, RECONCILE_INTERVAL_MS: '200', RECONCILE_AFTER_MS: '500' };
}

/** Starts papertrade from source and waits for /ready (deadline 60 s). */
async function start(): Promise<void> {
  output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  papertrade = child;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`papertrade exited with ${child.exitCode}:\n${output}`);
      const res = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    60_000,
    50,
  );
}

async function stop(signal: NodeJS.Signals): Promise<number | null> {
  const child = papertrade;
  if (!child || child.exitCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

async function call(method: string, url: string, token: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The database of the embedded server, attached to as the CLI tools do (the server keeps running). */
async function database(): Promise<pg.Client> {
  const server = await startEmbeddedPostgres({ dataDir, mode: 'attach-or-start' });
  expect(server.owned).toBe(false);
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  return client;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'papertrade-embedded-start-'));
  port = await freePort();
});
afterAll(async () => {
  await stop('SIGTERM');
  await rm(dataDir, { recursive: true, force: true });
});

describe('papertrade start with nothing configured', () => {
  let admin: string;
  let user: { id: string; api_key: string };

  it('runs its own PostgreSQL and no Redis, and says so', { timeout: 90_000 }, async () => {
    await start();
    expect(output).toMatch(/PostgreSQL: embedded 17\.\d+ in .*papertrade-embedded-start-.*\/pg on 127\.0\.0\.1:\d+ \(set DATABASE_URL to use your own server\)/);
    expect(output).toContain('Redis: none');
    const ready = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.json());
    expect(ready).toEqual({ status: 'ready', postgres: true, redis: null });
    admin = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  });

  it('fills the seed buy and sell, with the account moving by exactly the fill amounts', { timeout: 60_000 }, async () => {
    const created = await call('POST', '/users', admin, { name: 'Ada', email: 'ada@example.com', initial_cash: '10000.00' });
    expect(created.status).toBe(201);
    user = created.body;
    const buy = await call('POST', '/orders', user.api_key, { ticker: 'AAPL', quantity: 10, type: 'market' });
    expect(buy.status).toBe(201);
    const filled = await eventually(async () => {
      const o = await call('GET', `/orders/${buy.body.id}`, user.api_key);
      return o.body.status === 'PENDING' ? undefined : o.body;
    });
    expect(filled.status).toBe('FILLED');
    const sell = await call('POST', '/orders', user.api_key, { ticker: 'AAPL', quantity: 5, type: 'market', side: 'sell' });
    const sold = await eventually(async () => {
      const o = await call('GET', `/orders/${sell.body.id}`, user.api_key);
      return o.body.status === 'PENDING' ? undefined : o.body;
    });
    expect(sold.status).toBe('FILLED');
    const activities = await call('GET', `/users/${user.id}/activities`, user.api_key);
    const amounts = activities.body.activities.map((a: { kind: string; amount: string }) => [a.kind, a.amount]);
    expect(amounts[2]).toEqual(['initial', '10000.00']);
    const account = await call('GET', `/users/${user.id}/account`, user.api_key);
    const ledger = activities.body.activities.reduce((sum: bigint, a: { amount: string }) => sum + BigInt(a.amount.replace('.', '')), 0n);
    expect(BigInt(account.body.cash_balance.replace('.', ''))).toBe(ledger);
    expect(account.body.available_cash).toBe(account.body.cash_balance);
  });

  it('streams the whole history from since_seq 0, then a buy live; a client back with its last seq gets exactly what it missed', { timeout: 60_000 }, async () => {
    const follow = (sinceSeq: number) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${user.api_key}` } });
      const events: { seq: number; type: string; data: { id: string } }[] = [];
      ws.on('open', () => ws.send(JSON.stringify({ action: 'subscribe', events: true, since_seq: sinceSeq })));
      ws.on('message', (raw: Buffer) => {
        const message = JSON.parse(raw.toString('utf8'));
        if (message.channel === 'events') events.push(message);
      });
      const closed = new Promise((resolve) => ws.once('close', resolve));
      return { events, close: async () => (ws.close(), await closed) };
    };
    const count = async (list: unknown[], n: number) => eventually(async () => (list.length >= n ? true : undefined));

    // The seed's buy and sell: order.new and order.fill each.
    const first = follow(0);
    await count(first.events, 4);
    expect(first.events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'order.new'],
      [2, 'order.fill'],
      [3, 'order.new'],
      [4, 'order.fill'],
    ]);
    const buy = await call('POST', '/orders', user.api_key, { ticker: 'AAPL', quantity: 1, type: 'market' });
    await count(first.events, 6);
    expect(first.events.slice(4).map((e) => [e.seq, e.type, e.data.id])).toEqual([
      [5, 'order.new', buy.body.id],
      [6, 'order.fill', buy.body.id],
    ]);
    await first.close();

    const sell = await call('POST', '/orders', user.api_key, { ticker: 'AAPL', quantity: 1, type: 'market', side: 'sell' });
    await eventually(async () => ((await call('GET', `/orders/${sell.body.id}`, user.api_key)).body.status === 'FILLED' ? true : undefined));
    const again = follow(6);
    await count(again.events, 2);
    // The next event comes right after them: nothing was skipped or sent twice in between.
    await call('POST', `/users/${user.id}/deposits`, admin, { amount: '1.00' });
    await count(again.events, 3);
    expect(again.events.map((e) => [e.seq, e.type])).toEqual([
      [7, 'order.new'],
      [8, 'order.fill'],
      [9, 'cash.deposit'],
    ]);
    await again.close();
  });

  it('loses nothing to a SIGKILL with orders PENDING: the next start brings each to a terminal status', { timeout: 120_000 }, async () => {
    // Hold the user's balance row, so the engine's fills of these sells wait behind it: the
    // orders are accepted (the sells only reserve shares) and stay PENDING.
    const db = await database();
    let pending: string[];
    try {
      await db.query('BEGIN');
      await db.query('SELECT 1 FROM cash_balances WHERE user_id = $1 FOR UPDATE', [user.id]);
      const placed = [];
      for (let i = 0; i < 5; i++) placed.push(await call('POST', '/orders', user.api_key, { ticker: 'AAPL', quantity: '1', type: 'market', side: 'sell' }));
      expect(placed.map((p) => p.status)).toEqual([201, 201, 201, 201, 201]);
      pending = placed.map((p) => p.body.id as string);
      const { rows } = await db.query("SELECT count(*)::int AS n FROM orders WHERE status = 'PENDING' AND id = ANY($1)", [pending]);
      expect(rows[0].n).toBe(5);
      expect(await stop('SIGKILL')).toBeNull();
      await db.query('ROLLBACK');
    } finally {
      await db.end().catch(() => undefined);
    }

    await start();
    expect(output).toContain('left running');
    const after = await eventually(async () => {
      const statuses = await Promise.all(pending.map(async (id) => (await call('GET', `/orders/${id}`, user.api_key)).body.status as string));
      return statuses.every((s) => s !== 'PENDING') ? statuses : undefined;
    }, 30_000);
    expect(after).toEqual(['FILLED', 'FILLED', 'FILLED', 'FILLED', 'FILLED']);
    // The same user, orders and balances came back; the shares sold are gone from the position.
    const portfolio = await call('GET', `/users/${user.id}/portfolio`, user.api_key);
    expect(portfolio.body.positions).toEqual([]);
    const audit = await call('GET', '/admin/audit', admin);
    expect(audit.body.ok, JSON.stringify(audit.body.invariants.filter((i: { violations: number }) => i.violations > 0))).toBe(true);
  });

  it('stops its PostgreSQL with it on SIGTERM', { timeout: 60_000 }, async () => {
    expect(await stop('SIGTERM')).toBe(0);
    await expect(readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
