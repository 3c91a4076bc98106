/**
 * Chaos suite (`npm run test:chaos`): the roles run as separate OS processes built from `dist/`
 * (api, two engines, feed) while many users trade through the HTTP API, and faults hit them on a
 * schedule: engines SIGKILLed and restarted, this run's Redis keys deleted (the order stream and
 * the price cache are gone), PostgreSQL restarted. Then, after a bounded recovery period, the
 * delivery guarantees and invariants of DESIGN.md must hold exactly:
 *
 * - every order that got a 2xx exists, is what was asked for, and is terminal; an order whose
 *   POST got no answer either does not exist or is terminal too; no order exists that the client
 *   was refused; an order canceled with a 200 is CANCELED; a replayed request returns the
 *   original order;
 * - one fill per FILLED order and none for any other (count(fills) = count(FILLED));
 * - the audit (`runAudit`) finds no violation;
 * - every user's cash and holdings are what the fills imply from the initial cash, recomputed
 *   here with exact bigint arithmetic.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { cashFromDb, formatCash, formatQty, parseCash, qtyFromDb, type Cash, type Qty } from '../../src/core/money.js';
import { killAllSync } from '../../src/bench/processes.js';
import { formatAuditReport, runAudit } from '../../src/services/audit/audit.service.js';
import { Cluster, ensurePostgresUp, restartPostgres, type ProcessRecord } from './cluster.js';
import { call, driveLoad, LoadRecord, TICKERS, type ChaosUser, type SentOrder } from './load.js';

const USERS = 20;
const INITIAL_CASH = '250000.00';
const LOOPS = 8;
const REQUESTS_PER_LOOP_MAX = 500;
const PAUSE_MS: [number, number] = [40, 120];
/** Faults, in ms after the load started; the load goes on until the last one is over plus this. */
const LOAD_AFTER_FAULTS_MS = 5_000;
const LOAD_MS_MAX = 90_000;
const RECOVERY_MS_MAX = 90_000;
/** After recovery no order may be PENDING this long (the reconciler re-publishes after 2 s). */
const AUDIT_PENDING_MAX_AGE_MS = 10_000;
/** Violations printed (all are counted). */
const PROBLEMS_SHOWN_MAX = 40;

type Fault = 'kill-engine' | 'kill-both-engines' | 'flush-redis' | 'restart-postgres';
const SCHEDULE: { atMs: number; fault: Fault }[] = [
  { atMs: 4_000, fault: 'kill-engine' },
  { atMs: 9_000, fault: 'kill-engine' },
  { atMs: 14_000, fault: 'flush-redis' },
  { atMs: 19_000, fault: 'kill-engine' },
  { atMs: 24_000, fault: 'restart-postgres' },
  { atMs: 33_000, fault: 'kill-both-engines' },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const log = (line: string) => console.log(line);

let cluster: Cluster;
let passed = false;
const onSignal = (signal: NodeJS.Signals) => {
  killAllSync();
  process.exit(signal === 'SIGINT' ? 130 : 143);
};

/** Polls until `check` returns true; false when the deadline passed. */
async function until(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

async function ready(): Promise<boolean> {
  const res = await call(cluster.url, 'GET', '/ready', cluster.adminToken);
  return res.kind === 'response' && res.status === 200;
}

function assertAlive(records: ProcessRecord[]): void {
  const dead = records.filter((r) => r.process.exited);
  if (dead.length) throw new Error(`${dead.map((r) => r.name).join(', ')} exited during start-up:\n${cluster.logTails()}`);
}

beforeAll(async () => {
  process.on('exit', killAllSync);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await ensurePostgresUp();
  cluster = new Cluster();
  await cluster.prepare();
  const started = [cluster.start('feed'), cluster.start('engine'), cluster.start('engine'), cluster.start('api')];
  const isReady = await until(async () => {
    assertAlive(started);
    return ready();
  }, 30_000);
  if (!isReady) throw new Error(`the api was not ready within 30 s:\n${cluster.logTails()}`);
  // Orders need prices: wait for the feed's first ticks of every traded ticker.
  const priced = await until(async () => {
    const res = await call(cluster.url, 'GET', '/prices', cluster.adminToken);
    if (res.kind !== 'response' || res.status !== 200) return false;
    const have = new Set((res.body as { prices: { ticker: string }[] }).prices.map((p) => p.ticker));
    return TICKERS.every((t) => have.has(t));
  }, 30_000);
  if (!priced) throw new Error(`the feed published no prices within 30 s:\n${cluster.logTails()}`);
}, 120_000);

afterAll(async () => {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (!cluster) return;
  if (!passed) log(`chaos: child process logs (${cluster.logDir}):\n${cluster.logTails()}`);
  await cluster.stopAll();
  killAllSync();
  process.off('exit', killAllSync);
  await ensurePostgresUp();
  const orphans = cluster.orphans();
  for (const o of orphans) {
    try {
      process.kill(o.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await cluster.dispose();
  if (passed) rmSync(cluster.logDir, { recursive: true, force: true });
  log(`chaos: child processes left running: ${orphans.length}${orphans.length ? ` ${JSON.stringify(orphans)}` : ''}`);
  expect(orphans, 'child processes of this run still running after the suite').toEqual([]);
}, 90_000);

describe('chaos: api, two engines and feed as separate processes under faults', () => {
  it('keeps every accepted order, fills each at most once and keeps cash and holdings exact', async () => {
    // ---- users ------------------------------------------------------------------------------
    const users: ChaosUser[] = [];
    for (let i = 0; i < USERS; i++) {
      const res = await call(cluster.url, 'POST', '/users', cluster.adminToken, {
        name: `Chaos ${i}`,
        email: `chaos-${cluster.runId}-${i}@example.com`,
        initial_cash: INITIAL_CASH,
      });
      if (res.kind !== 'response' || res.status !== 201) throw new Error(`POST /users failed: ${JSON.stringify(res)}`);
      const body = res.body as { id: string; api_key: string };
      users.push({ id: body.id, apiKey: body.api_key, initialCash: INITIAL_CASH, sellable: new Map(), recent: [] });
    }

    // ---- load and faults, together ----------------------------------------------------------
    const record = new LoadRecord();
    const faults = { engineKills: 0, redisFlushes: 0, redisKeysDeleted: 0, pgRestarts: 0, pgSkipped: '' };
    const pg = { downMs: 0, readyStatuses: new Map<string, number>(), apiBackMs: 0 };
    const loadStart = Date.now();
    let faultsDone = false;
    let faultsDoneAt = 0;
    const stop = () => {
      const elapsed = Date.now() - loadStart;
      return elapsed > LOAD_MS_MAX || (faultsDone && Date.now() - faultsDoneAt > LOAD_AFTER_FAULTS_MS);
    };

    const killEngine = async (engine: ProcessRecord | undefined) => {
      if (!engine) return;
      await cluster.kill(engine);
      faults.engineKills += 1;
      log(`chaos: +${seconds(Date.now() - loadStart)} SIGKILL ${engine.name} (pid ${engine.process.pid})`);
    };

    const injectFaults = async () => {
      try {
        for (const { atMs, fault } of SCHEDULE) {
          await sleep(Math.max(0, loadStart + atMs - Date.now()));
          if (fault === 'kill-engine') {
            await killEngine(cluster.running('engine')[0]);
            await sleep(1_000);
            const next = cluster.start('engine');
            log(`chaos: +${seconds(Date.now() - loadStart)} started ${next.name}`);
          } else if (fault === 'kill-both-engines') {
            await Promise.all(cluster.running('engine').map((e) => killEngine(e)));
            await sleep(3_000);
            const next = [cluster.start('engine'), cluster.start('engine')];
            log(`chaos: +${seconds(Date.now() - loadStart)} started ${next.map((e) => e.name).join(', ')}`);
          } else if (fault === 'flush-redis') {
            faults.redisKeysDeleted += await cluster.flushRedisPrefix();
            faults.redisFlushes += 1;
            log(`chaos: +${seconds(Date.now() - loadStart)} deleted ${faults.redisKeysDeleted} Redis keys under ${cluster.prefix}`);
          } else {
            await restartPostgresWhileProbing();
          }
        }
      } finally {
        faultsDone = true;
        faultsDoneAt = Date.now();
      }
    };

    /** Restarts PostgreSQL while probing the api's /ready; then waits for the api to be ready again. */
    const restartPostgresWhileProbing = async () => {
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const res = await call(cluster.url, 'GET', '/ready', cluster.adminToken);
          const key = res.kind === 'response' ? String(res.status) : res.kind;
          pg.readyStatuses.set(key, (pg.readyStatuses.get(key) ?? 0) + 1);
          await sleep(100);
        }
      })();
      log(`chaos: +${seconds(Date.now() - loadStart)} restarting PostgreSQL`);
      const result = await restartPostgres();
      const restartedAt = Date.now();
      probing = false;
      await probe;
      if (!result.done) {
        faults.pgSkipped = result.reason;
        log(`chaos: postgres restart SKIPPED: ${result.reason}`);
        return;
      }
      faults.pgRestarts += 1;
      pg.downMs = result.downMs;
      const back = await until(ready, 30_000);
      pg.apiBackMs = Date.now() - restartedAt;
      log(
        `chaos: +${seconds(Date.now() - loadStart)} PostgreSQL restarted (${result.command}, ${seconds(result.downMs)}); ` +
          `api ${back ? `ready again after ${seconds(pg.apiBackMs)}` : 'NOT ready within 30 s'}`,
      );
    };

    await Promise.all([
      injectFaults(),
      driveLoad(
        { baseUrl: cluster.url, users, loops: LOOPS, requestsPerLoopMax: REQUESTS_PER_LOOP_MAX, pauseMs: PAUSE_MS, stop, runId: cluster.runId },
        record,
      ),
    ]);
    const loadMs = Date.now() - loadStart;

    // ---- recovery ---------------------------------------------------------------------------
    const apiAlive = await until(ready, 30_000);
    const recoveryStart = Date.now();
    let pendingLeft = -1;
    const recovered = await until(
      async () => {
        const { rows } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM orders WHERE status = 'PENDING'`.execute(cluster.db);
        pendingLeft = Number(rows[0]!.n);
        return pendingLeft === 0;
      },
      RECOVERY_MS_MAX,
      250,
    );
    const recoveryMs = Date.now() - recoveryStart;

    // ---- what the database says -------------------------------------------------------------
    const problems: string[] = [];
    const problem = (line: string) => problems.push(line);
    if (!apiAlive) problem('the api did not answer /ready 200 after the faults');
    if (!recovered) problem(`${pendingLeft} order(s) still PENDING ${seconds(RECOVERY_MS_MAX)} after the load`);
    for (const r of cluster.unexpectedExits()) {
      problem(`${r.name} exited on its own (code ${r.process.exitCode}, signal ${r.process.exitSignal})`);
    }

    type OrderRow = { id: string; user_id: string; client_order_id: string | null; ticker: string; side: string; quantity: string; status: string; reject_reason: string | null };
    const { rows: dbOrders } = await sql<OrderRow>`
      SELECT id::text, user_id::text, client_order_id, ticker, side, quantity::text, status, reject_reason
        FROM orders`.execute(cluster.db);
    const byId = new Map(dbOrders.map((o) => [o.id, o]));

    // Every 2xx order exists, is what was asked for, and is terminal.
    for (const [orderId, clientOrderId] of record.accepted) {
      const sent = record.orders.get(clientOrderId)!;
      const row = byId.get(orderId);
      if (!row) {
        problem(`LOST: order ${orderId} (client_order_id ${clientOrderId}) got ${sent.status} but is not in the database`);
        continue;
      }
      if (row.status === 'PENDING') problem(`NOT TERMINAL: order ${orderId} got ${sent.status} and is still PENDING`);
      const r = sent.request;
      if (
        row.user_id !== r.user_id ||
        row.ticker !== r.ticker ||
        row.side !== r.side ||
        row.client_order_id !== r.client_order_id ||
        qtyFromDb(row.quantity) !== qtyFromDb(r.quantity)
      ) {
        problem(`MISMATCH: order ${orderId} is ${JSON.stringify(row)} but the request was ${JSON.stringify(r)}`);
      }
    }
    for (const orderId of record.canceled) {
      const status = byId.get(orderId)?.status;
      if (status !== 'CANCELED') problem(`CANCEL LOST: order ${orderId} was canceled with a 200 but is ${status ?? 'missing'}`);
    }
    for (const m of record.replayMismatches) {
      problem(`REPLAY: client_order_id ${m.clientOrderId} replayed got ${m.status} ${JSON.stringify(m.got)}, expected order ${m.expected}`);
    }

    // Orders whose POST got no answer (or a 5xx): looked up through the API by client_order_id.
    const listed = new Map<string, { id: string; status: string; client_order_id: string | null }>();
    for (const user of users) {
      let before: string | null = null;
      for (let page = 0; page < 100; page++) {
        const res = await call(cluster.url, 'GET', `/orders?user_id=${user.id}&limit=500${before ? `&before=${before}` : ''}`, user.apiKey);
        if (res.kind !== 'response' || res.status !== 200) {
          problem(`GET /orders for user ${user.id} failed after recovery: ${JSON.stringify(res).slice(0, 300)}`);
          break;
        }
        const body = res.body as { orders: { id: string; status: string; client_order_id: string | null }[]; next: string | null };
        for (const o of body.orders) if (o.client_order_id) listed.set(o.client_order_id, o);
        before = body.next;
        if (!before) break;
      }
    }
    const unknown = [...record.orders.values()].filter((s) => s.outcome === 'unknown');
    const failed = [...record.orders.values()].filter((s) => s.outcome === 'failed');
    const lookUp = (sent: SentOrder) => {
      const o = listed.get(sent.request.client_order_id);
      if (o && o.status === 'PENDING') {
        problem(`NOT TERMINAL: order ${o.id} (POST answered ${sent.status}${sent.error ? ` ${sent.error}` : ''}) exists and is still PENDING`);
      }
      return o !== undefined;
    };
    const unknownExisted = unknown.filter(lookUp).length;
    const failedExisted = failed.filter(lookUp).length;
    // No order exists that the client was refused (4xx or connection refused), and the API lists what the database holds.
    const mayExist = new Set([...unknown, ...failed].map((s) => s.request.client_order_id));
    for (const row of dbOrders) {
      const known = row.client_order_id !== null && (record.accepted.has(row.id) || mayExist.has(row.client_order_id));
      if (!known) problem(`PHANTOM: order ${row.id} (${JSON.stringify(row)}) exists though its POST was refused`);
      const viaApi = row.client_order_id === null ? undefined : listed.get(row.client_order_id);
      if (!viaApi || viaApi.id !== row.id || viaApi.status !== row.status) {
        problem(`API: GET /orders shows ${JSON.stringify(viaApi)} for order ${row.id} (${row.status} in the database)`);
      }
    }

    // One fill per FILLED order, none for any other.
    const { rows: fillStats } = await sql<{ fills: string; filled: string; doubled: string; strays: string }>`
      SELECT (SELECT count(*) FROM fills)::text AS fills,
             (SELECT count(*) FROM orders WHERE status = 'FILLED')::text AS filled,
             (SELECT count(*) FROM (SELECT order_id FROM fills GROUP BY order_id HAVING count(*) > 1) d)::text AS doubled,
             (SELECT count(*) FROM fills f JOIN orders o ON o.id = f.order_id WHERE o.status <> 'FILLED')::text AS strays`.execute(cluster.db);
    const fs = fillStats[0]!;
    if (fs.fills !== fs.filled) problem(`FILLS: ${fs.fills} fills for ${fs.filled} FILLED orders`);
    if (fs.doubled !== '0') problem(`DOUBLE FILL: ${fs.doubled} order(s) have more than one fill`);
    if (fs.strays !== '0') problem(`FILLS: ${fs.strays} fill(s) of orders that are not FILLED`);

    // Cash and holdings, recomputed from the initial cash and the fills.
    const { rows: fills } = await sql<{ user_id: string; ticker: string; side: string; quantity: string; amount: string }>`
      SELECT o.user_id::text, o.ticker, o.side, f.quantity::text, f.amount::text
        FROM fills f JOIN orders o ON o.id = f.order_id`.execute(cluster.db);
    const expectCash = new Map<string, Cash>(users.map((u) => [u.id, parseCash(u.initialCash, 'initial_cash')]));
    const expectQty = new Map<string, Qty>();
    for (const f of fills) {
      const amount = cashFromDb(f.amount);
      const qty = qtyFromDb(f.quantity);
      const sign = f.side === 'buy' ? 1n : -1n;
      expectCash.set(f.user_id, (expectCash.get(f.user_id) ?? 0n) - sign * amount);
      const key = `${f.user_id}/${f.ticker}`;
      expectQty.set(key, (expectQty.get(key) ?? 0n) + sign * qty);
    }
    const { rows: balances } = await sql<{ user_id: string; cash_balance: string; available_cash: string }>`
      SELECT user_id::text, cash_balance::text, available_cash::text FROM cash_balances`.execute(cluster.db);
    const { rows: holdings } = await sql<{ user_id: string; ticker: string; quantity: string; reserved_quantity: string }>`
      SELECT user_id::text, ticker, quantity::text, reserved_quantity::text FROM holdings`.execute(cluster.db);
    const balanceOf = new Map(balances.map((b) => [b.user_id, b]));
    for (const user of users) {
      const want = formatCash(expectCash.get(user.id)!);
      const b = balanceOf.get(user.id);
      if (!b) {
        problem(`CASH: user ${user.id} has no cash_balances row`);
        continue;
      }
      // Nothing is pending after recovery, so nothing is held either.
      if (formatCash(cashFromDb(b.cash_balance)) !== want || formatCash(cashFromDb(b.available_cash)) !== want) {
        problem(`CASH: user ${user.id} has cash_balance ${b.cash_balance}, available_cash ${b.available_cash}; the fills imply ${want}`);
      }
      const account = await call(cluster.url, 'GET', `/users/${user.id}/account`, user.apiKey);
      const body = account.kind === 'response' ? (account.body as { cash_balance?: string; available_cash?: string }) : undefined;
      if (body?.cash_balance !== want || body?.available_cash !== want) {
        problem(`CASH: GET /users/${user.id}/account answers ${JSON.stringify(account).slice(0, 300)}; the fills imply ${want}`);
      }
    }
    const heldKeys = new Set<string>();
    for (const h of holdings) {
      const key = `${h.user_id}/${h.ticker}`;
      heldKeys.add(key);
      const want = expectQty.get(key) ?? 0n;
      if (qtyFromDb(h.quantity) !== want || qtyFromDb(h.reserved_quantity) !== 0n) {
        problem(`HOLDINGS: ${key} holds ${h.quantity} (reserved ${h.reserved_quantity}); the fills imply ${formatQty(want)} (reserved 0)`);
      }
    }
    for (const [key, qty] of expectQty) {
      if (qty !== 0n && !heldKeys.has(key)) problem(`HOLDINGS: ${key} has no holdings row; the fills imply ${formatQty(qty)}`);
    }

    // The audit, over one snapshot.
    const report = await runAudit(cluster.db, { pendingMaxAgeMs: AUDIT_PENDING_MAX_AGE_MS });
    const auditViolations = report.invariants.reduce((n, i) => n + i.violations, 0);
    if (!report.ok) problem(`AUDIT:\n${formatAuditReport(report)}`);

    // How long orders took from acceptance to their terminal status, through the faults.
    const { rows: latency } = await sql<{ max_ms: string | null; slow: string }>`
      SELECT floor(max(extract(epoch FROM updated_at - created_at)) * 1000)::text AS max_ms,
             count(*) FILTER (WHERE updated_at - created_at > interval '2 seconds')::text AS slow
        FROM orders WHERE status <> 'PENDING'`.execute(cluster.db);
    const errorsLogged = cluster.loggedErrors();

    // ---- summary ----------------------------------------------------------------------------
    const statuses = new Map<string, number>();
    const reasons = new Map<string, number>();
    for (const o of dbOrders) {
      statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1);
      if (o.reject_reason) reasons.set(o.reject_reason, (reasons.get(o.reject_reason) ?? 0) + 1);
    }
    const list = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none';
    const refused = [...record.orders.values()].filter((s) => s.outcome === 'refused').length;
    const readyDuringPg = [...pg.readyStatuses].map(([k, v]) => `${k} x${v}`).join(', ');
    const pgLine = faults.pgRestarts
      ? `postgres restart x${faults.pgRestarts} (${seconds(pg.downMs)}; api /ready during it: ${readyDuringPg}; ready again ${seconds(pg.apiBackMs)} after)`
      : `postgres restart SKIPPED (${faults.pgSkipped})`;
    const summary = [
      `chaos: processes api, engine x2, feed (${cluster.processes.length} started in all); database ${cluster.dbName}; redis prefix ${cluster.prefix}`,
      `chaos: load ${seconds(loadMs)}, ${record.requests} requests from ${LOOPS} loops as ${USERS} users`,
      `chaos: orders sent ${record.orders.size}, accepted ${record.accepted.size}, refused ${refused}, ` +
        `unknown ${unknown.length} (${unknownExisted} existed), 5xx ${failed.length} (${failedExisted} existed); not accepted by code: ${list(record.refusedByCode)}`,
      `chaos: cancels ${record.cancels.sent} (ok ${record.cancels.ok}, 409 ${record.cancels.notCancelable}, other: ${list(record.cancels.other)}); ` +
        `replays ${record.replays.sent} (same order ${record.replays.same}, mismatched ${record.replayMismatches.length}, other: ${list(record.replays.other)})`,
      `chaos: faults: engine SIGKILL x${faults.engineKills}, redis flush x${faults.redisFlushes} (${faults.redisKeysDeleted} keys), ${pgLine}`,
      `chaos: recovery ${seconds(recoveryMs)}; orders FILLED ${statuses.get('FILLED') ?? 0} REJECTED ${statuses.get('REJECTED') ?? 0} ` +
        `CANCELED ${statuses.get('CANCELED') ?? 0} PENDING ${statuses.get('PENDING') ?? 0}; reject reasons: ${list(reasons)}; ` +
        `fills ${fs.fills}, orders with 2+ fills ${fs.doubled}; slowest order settled in ${seconds(Number(latency[0]?.max_ms ?? 0))}, ` +
        `${latency[0]?.slow ?? 0} took over 2 s`,
      `chaos: errors logged by the children: ${list(errorsLogged)}`,
      `chaos: audit violations ${auditViolations} (${report.counts.users} users, ${report.counts.orders} orders, ${report.counts.fills} fills); ` +
        `cash and holdings of ${users.length} users recomputed from fills`,
      ...problems.slice(0, PROBLEMS_SHOWN_MAX).map((p) => `chaos: VIOLATION ${p}`),
      ...(problems.length > PROBLEMS_SHOWN_MAX ? [`chaos: … and ${problems.length - PROBLEMS_SHOWN_MAX} more`] : []),
      `violations: ${problems.length}`,
    ];
    log(summary.join('\n'));

    expect(faults.engineKills).toBeGreaterThanOrEqual(3);
    expect(faults.redisFlushes).toBe(1);
    expect(record.accepted.size).toBeGreaterThan(100);
    expect(problems.length, `violations:\n${problems.slice(0, PROBLEMS_SHOWN_MAX).join('\n')}`).toBe(0);
    passed = true;
  }, 240_000);
});
