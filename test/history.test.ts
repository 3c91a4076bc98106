/**
 * Portfolio history and leaderboards against a real PostgreSQL: snapshot rounds write a point
 * only on change, equity exact to the cent and equal to GET /users/{id}/account at the same
 * prices, the running metrics, downsampling, reset points (and a round racing a reset), one
 * leader among snapshotters, the history endpoint, and a class's leaderboard. No engine runs in
 * this file: its snapshotter would run rounds of its own between the ones the tests run.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cashFromDb, formatCash, parsePrice } from '../src/core/money.js';
import { accumulate, ACCUMULATOR_START, intervalReturn, RATIO_ONE } from '../src/core/performance.js';
import { LeaseLock } from '../src/infra/lease.js';
import * as accounts from '../src/services/accounts/accounts.service.js';
import { recordReset } from '../src/services/history/history.repository.js';
import { compactHistory, HistorySnapshotter, leaderboard, snapshotRound, type SnapshotRoundOptions } from '../src/services/history/history.service.js';
import { periodsPerYear } from '../src/core/performance.js';
import { createTestContext, eventually, newUser, seedShares, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;

beforeAll(async () => {
  ctx = await createTestContext();
  api = await startTestServer(ctx);
});
afterAll(async () => {
  await api?.server.close();
  await ctx?.close();
});

const round = (extra: Partial<SnapshotRoundOptions> = {}) => snapshotRound(ctx.db, ctx.quotes, { intervalMs: 60_000, marketOpen: true, force: true, ...extra });

async function setPrice(ticker: string, price: string) {
  await ctx.quotes.setMany([{ ticker, price: parsePrice(price), asOfMs: Date.now() }]);
}

async function points(userId: string) {
  const { rows } = await sql<{ at: Date; equity: string; base: string; kind: string }>`
    SELECT at, equity::text, base::text, kind FROM portfolio_history WHERE user_id = ${userId} ORDER BY at`.execute(ctx.db);
  return rows;
}

async function metrics(userId: string) {
  return ctx.db.selectFrom('portfolio_metrics').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
}

async function accountEquity(userId: string, apiKey: string): Promise<string> {
  const res = await api.request('GET', `/users/${userId}/account`, { token: apiKey });
  expect(res.status).toBe(200);
  return res.body.equity;
}

async function base(userId: string): Promise<bigint> {
  const row = await ctx.db.selectFrom('cash_balances').select('net_contributions').where('user_id', '=', userId).executeTakeFirstOrThrow();
  return cashFromDb(row.net_contributions);
}

describe('snapshot rounds', () => {
  it('write a point for a user only when its equity or base changed', async () => {
    const u = await newUser(ctx, { cash: '1000.00' });
    const first = await round();
    expect(first?.started).toBeGreaterThanOrEqual(1);
    expect((await points(u.id)).map((p) => [p.equity, p.kind])).toEqual([['1000.00', 'round']]);

    await round();
    await round();
    expect(await points(u.id)).toHaveLength(1);

    await accounts.deposit(ctx.db, u.id, 2_500n);
    const third = await round();
    const list = await points(u.id);
    expect(list).toHaveLength(2);
    expect(list[1]).toMatchObject({ equity: '1025.00', base: formatCash(await base(u.id)) });
    expect(list[1]!.at).toEqual(third!.at);
  });

  it('values equity exactly to the cent, as GET /users/{id}/account does at the same prices', async () => {
    const u = await newUser(ctx, { cash: '1000.00' });
    // 0.333333 × 150.1234 = 50.04108... and 0.777777 × 33.3333 = 25.925874...: each position
    // rounds half-up on its own, as in the account summary.
    await seedShares(ctx, u.id, 'AAPL', '0.333333', '150.1234');
    await seedShares(ctx, u.id, 'MSFT', '0.777777', '33.3333');
    for (const [aapl, msft] of [['150.1234', '33.3333'], ['151.0050', '33.3350'], ['149.9999', '40.0001']] as const) {
      await setPrice('AAPL', aapl);
      await setPrice('MSFT', msft);
      await round();
      const last = (await points(u.id)).at(-1)!;
      expect(last.equity).toBe(await accountEquity(u.id, u.apiKey));
    }
  });

  it('keeps the running metrics of the returns, counting unchanged rounds as zero returns', async () => {
    const u = await newUser(ctx, { cash: '0' });
    await seedShares(ctx, u.id, 'KO', '10', '50');
    await round();
    const start = await metrics(u.id);
    const b = await base(u.id);
    // 500.00 -> 550.00 -> 550.00 (unchanged) -> 495.00: r = 0.1, 0, -0.1.
    const equities = [55_000n, 55_000n, 49_500n];
    const prices = ['55', '55', '49.5'];
    let acc = ACCUMULATOR_START;
    let prev = 50_000n;
    for (let i = 0; i < prices.length; i++) {
      await setPrice('KO', prices[i]!);
      await round();
      acc = accumulate(acc, intervalReturn(prev, equities[i]!, b, b));
      prev = equities[i]!;
    }
    const m = await metrics(u.id);
    expect(BigInt(m.sum_r)).toBe(acc.sumR);
    expect(BigInt(m.sum_r2)).toBe(acc.sumR2);
    expect(BigInt(m.perf_index)).toBe((RATIO_ONE * 99n) / 100n);
    expect(BigInt(m.peak_index)).toBe((RATIO_ONE * 11n) / 10n);
    expect(BigInt(m.max_drawdown)).toBe(RATIO_ONE / 10n);
    // Three counted rounds since the start, one of which wrote nothing for this user.
    const { rows } = await sql<{ period_no: string }>`SELECT period_no FROM history_rounds`.execute(ctx.db);
    expect(BigInt(rows[0]!.period_no) - BigInt(start.start_period)).toBe(3n);
    expect(await points(u.id)).toHaveLength(3);
  });

  it('does not count rounds while the market is closed as return intervals', async () => {
    const before = await sql<{ period_no: string; round_no: string }>`SELECT period_no, round_no FROM history_rounds`.execute(ctx.db);
    await round({ marketOpen: false });
    const after = await sql<{ period_no: string; round_no: string }>`SELECT period_no, round_no FROM history_rounds`.execute(ctx.db);
    expect(BigInt(after.rows[0]!.round_no)).toBe(BigInt(before.rows[0]!.round_no) + 1n);
    // A session close recorded since the last round would make this a counted 'close' round;
    // this database has none.
    expect(after.rows[0]!.period_no).toBe(before.rows[0]!.period_no);
  });

  it('runs a close round when a session close is recorded, and claims at most one round per interval', async () => {
    const u = await newUser(ctx, { cash: '10.00' });
    await round();
    await accounts.deposit(ctx.db, u.id, 100n);
    await sql`INSERT INTO market_sessions (opened_at, closed_at) VALUES (now() - interval '1 hour', now())`.execute(ctx.db);
    // Not forced: the last round is younger than the interval, but the close makes one due.
    const close = await round({ force: false, marketOpen: false });
    expect(close).toMatchObject({ close: true, counted: true });
    expect((await points(u.id)).at(-1)).toMatchObject({ equity: '11.00', kind: 'close' });
    expect(await round({ force: false })).toBeUndefined();
  });
});

describe('downsampling', () => {
  it('keeps the last point of each 15 minutes past a day and of each day past 30 days, and every reset point', async () => {
    const recent = randomUUID();
    const old = randomUUID();
    // `recent`: a point a minute for an hour three days ago, and a reset at minute 7.
    // `old`: a point an hour for a UTC day 40 days ago.
    await sql`
      INSERT INTO portfolio_history (user_id, at, equity, base, kind)
      SELECT ${recent}::uuid, t0 + make_interval(mins => i), 1000 + i, 1000, CASE WHEN i = 7 THEN 'reset' ELSE 'round' END
        FROM (SELECT date_trunc('hour', now() - interval '3 days') AS t0) s, generate_series(0, 59) i`.execute(ctx.db);
    await sql`
      INSERT INTO portfolio_history (user_id, at, equity, base)
      SELECT ${old}::uuid, d0 + make_interval(hours => i), 2000 + i, 2000
        FROM (SELECT date_trunc('day', now() - interval '40 days') AS d0) s, generate_series(0, 23) i`.execute(ctx.db);
    await sql`
      UPDATE history_rounds SET compacted_15m_until = date_trunc('hour', now() - interval '3 days'),
                                compacted_1d_until = date_trunc('day', now() - interval '40 days')`.execute(ctx.db);
    // Enough windows to reach the present: 2 days of 15-minute windows, 10 days of hourly ones.
    const deleted = await compactHistory(ctx.db, 400);
    expect(deleted).toBe(60 - 5 + 24 - 1);
    expect((await points(recent)).map((p) => [p.at.getUTCMinutes(), p.kind])).toEqual([
      [7, 'reset'],
      [14, 'round'],
      [29, 'round'],
      [44, 'round'],
      [59, 'round'],
    ]);
    expect((await points(old)).map((p) => [p.at.getUTCHours(), p.equity])).toEqual([[23, '2023.00']]);
    // Nothing is left to do: another pass deletes nothing.
    expect(await compactHistory(ctx.db, 400)).toBe(0);
  });
});

describe('account resets', () => {
  it('recordReset writes a reset point and restarts the metrics', async () => {
    const u = await newUser(ctx, { cash: '100.00' });
    await seedShares(ctx, u.id, 'PEP', '2', '100');
    await round();
    await setPrice('PEP', '110');
    await round();
    const before = await metrics(u.id);
    expect(BigInt(before.sum_r)).not.toBe(0n);

    await ctx.db.transaction().execute((trx) => recordReset(trx, u.id, 50_000n));
    const after = await metrics(u.id);
    expect(after).toMatchObject({ resets: 1, point_equity: '500.00', point_base: '500.00', period_equity: '500.00', sum_r: '0', sum_r2: '0', max_drawdown: '0' });
    expect(BigInt(after.perf_index)).toBe(RATIO_ONE);
    expect(BigInt(after.version)).toBe(BigInt(before.version) + 1n);
    expect((await points(u.id)).at(-1)).toMatchObject({ equity: '500.00', base: '500.00', kind: 'reset' });
  });

  it('a round that read the user before a reset committed does not undo the reset', async () => {
    const u = await newUser(ctx, { cash: '100.00' });
    await seedShares(ctx, u.id, 'WMT', '3', '60');
    await round();
    await setPrice('WMT', '66');
    let resetDone = false;
    const raced = await round({
      afterRead: async () => {
        if (resetDone) return;
        resetDone = true;
        await ctx.db.transaction().execute((trx) => recordReset(trx, u.id, 12_345n));
      },
    });
    expect(resetDone).toBe(true);
    const m = await metrics(u.id);
    expect(m).toMatchObject({ resets: 1, point_equity: '123.45', sum_r: '0' });
    const list = await points(u.id);
    expect(list.at(-1)).toMatchObject({ equity: '123.45', kind: 'reset' });
    expect(list.some((p) => p.at.getTime() === raced!.at.getTime())).toBe(false);
  });

  it('a round does not wait for a reset in progress, and writes nothing over it', async () => {
    const u = await newUser(ctx, { cash: '100.00' });
    await seedShares(ctx, u.id, 'HD', '1', '300');
    await round();
    await setPrice('HD', '330');
    const other = await newUser(ctx, { cash: '5.00' });
    await ctx.db.transaction().execute(async (trx) => {
      await recordReset(trx, u.id, 20_000n);
      // The reset holds the user's metrics row: the round skips it instead of waiting, and
      // still records everyone else.
      const during = await round();
      expect(during).toBeDefined();
      expect((await points(other.id)).length).toBe(1);
    });
    expect(await metrics(u.id)).toMatchObject({ resets: 1, point_equity: '200.00' });
    expect((await points(u.id)).at(-1)).toMatchObject({ kind: 'reset', equity: '200.00' });
    // The next round records the user's real equity again (its holdings are still there here:
    // this test resets only the history, not the account).
    await round();
    expect((await points(u.id)).at(-1)).toMatchObject({ kind: 'round', equity: formatCash(10_000n + 33_000n) });
  });
});

describe('the snapshot leader', () => {
  const snapshotter = (intervalMs = 60_000) =>
    new HistorySnapshotter({
      db: ctx.db,
      quotes: ctx.quotes,
      clock: { isOpen: () => true },
      lease: new LeaseLock(ctx.infra.leases, ctx.infra.keys.historySnapshotLeader(), HistorySnapshotter.leaseTtlMs(intervalMs)),
      logger: ctx.logger,
      intervalMs,
    });

  it('two snapshotters: one leads and runs the round, and no round runs again within the interval', async () => {
    const a = snapshotter();
    const b = snapshotter();
    const results = await Promise.all([a.pass({ force: true }), b.pass({ force: true })]);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
    const leader = a.isLeader() ? a : b;
    expect(await leader.pass()).toBeUndefined();
    await a.stop();
    await b.stop();
  });

  it('running, one leads at a time, and a standby takes over when the leader stops', async () => {
    const a = snapshotter(1_000);
    const b = snapshotter(1_000);
    a.start();
    b.start();
    try {
      const leader = await eventually(async () => (a.isLeader() ? a : b.isLeader() ? b : undefined));
      const standby = leader === a ? b : a;
      expect(standby.isLeader()).toBe(false);
      await eventually(async () => leader.last);
      await leader.stop();
      await eventually(async () => (standby.isLeader() ? true : undefined));
      await eventually(async () => standby.last);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('GET /users/{id}/portfolio/history', () => {
  it('answers the last point of each bucket in Alpaca’s shape, opened by the point before the period', async () => {
    const u = await newUser(ctx, { cash: '1000.00' });
    // Points written directly at known instants: two days ago (before a 1D period), three hours
    // ago, and twice within one minute two hours ago (the later one stands for that minute).
    const t1 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3 * 3_600_000;
    const at = [t1 - 2 * 86_400_000, t1, t1 + 3_600_000 + 10_000, t1 + 3_600_000 + 50_000];
    const values = [['900.00', '1000.00'], ['1000.00', '1000.00'], ['1234.56', '1100.00'], ['1210.00', '1100.00']];
    for (let i = 0; i < at.length; i++) {
      await sql`INSERT INTO portfolio_history (user_id, at, equity, base) VALUES (${u.id}, ${new Date(at[i]!)}, ${values[i]![0]}, ${values[i]![1]})`.execute(ctx.db);
    }
    const before = Date.now();
    const res = await api.request('GET', `/users/${u.id}/portfolio/history?period=1D&timeframe=1Min`, { token: u.apiKey });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // The opening bucket is the minute the period starts in (a day before the request).
    const opening = res.body.timestamp[0];
    expect(opening * 1000).toBeGreaterThanOrEqual(Math.floor((before - 86_400_000) / 60_000) * 60_000);
    expect(opening * 1000).toBeLessThanOrEqual(Date.now() - 86_400_000);
    expect(res.body).toEqual({
      timestamp: [opening, t1 / 1000, (t1 + 3_600_000) / 1000],
      equity: ['900.00', '1000.00', '1210.00'],
      profit_loss: ['-100.00', '0.00', '110.00'],
      // -100 / 1000 = -10 %; 110 / 1100 = 10 %.
      profit_loss_pct: ['-10.0000', '0.0000', '10.0000'],
      base_value: formatCash(await base(u.id)),
      timeframe: '1Min',
    });
    // Hourly buckets: the 10:00-style bucket holds both later points, the last standing.
    const hourly = await api.request('GET', `/users/${u.id}/portfolio/history?period=1W&timeframe=1H`, { token: u.apiKey });
    expect(hourly.body.timestamp).toEqual([t1 - 2 * 86_400_000, t1, t1 + 3_600_000].map((t) => t / 1000));
    expect(hourly.body.equity).toEqual(['900.00', '1000.00', '1210.00']);
    // Defaults: a month, hourly buckets.
    const defaults = await api.request('GET', `/users/${u.id}/portfolio/history`, { token: u.apiKey });
    expect(defaults.status).toBe(200);
    expect(defaults.body.timeframe).toBe('1H');
    expect(defaults.body.equity).toEqual(['900.00', '1000.00', '1210.00']);
  });

  it('refuses unknown periods and timeframes, naming the allowed values, and other users', async () => {
    const u = await newUser(ctx, { cash: '1.00' });
    const badPeriod = await api.request('GET', `/users/${u.id}/portfolio/history?period=2D`, { token: u.apiKey });
    expect(badPeriod.status).toBe(400);
    expect(badPeriod.body.error.code).toBe('VALIDATION_FAILED');
    for (const p of ['1D', '1W', '1M', '3M', '1A', 'all']) expect(badPeriod.body.error.message).toContain(p);
    const badTf = await api.request('GET', `/users/${u.id}/portfolio/history?timeframe=2Min`, { token: u.apiKey });
    expect(badTf.status).toBe(400);
    for (const t of ['1Min', '5Min', '15Min', '1H', '1D']) expect(badTf.body.error.message).toContain(t);
    const other = await newUser(ctx, { cash: '1.00' });
    expect((await api.request('GET', `/users/${u.id}/portfolio/history`, { token: other.apiKey })).status).toBe(403);
    expect((await api.request('GET', `/users/${randomUUID()}/portfolio/history`)).status).toBe(404);
  });
});

describe('leaderboard', () => {
  it('ranks a class by return, Sharpe and drawdown, with live equity and trades since the start', async () => {
    const classId = randomUUID();
    await sql`INSERT INTO classes (id, name, starting_cash) VALUES (${classId}, 'History class', 1000)`.execute(ctx.db);
    const [a, b, c] = [await newUser(ctx, { cash: '1000.00', name: 'Ann' }), await newUser(ctx, { cash: '1000.00', name: 'Bob' }), await newUser(ctx, { cash: '1000.00', name: 'Cy' })];
    await sql`INSERT INTO class_members (user_id, class_id) SELECT u, ${classId}::uuid FROM unnest(${[a.id, b.id, c.id]}::uuid[]) u`.execute(ctx.db);
    await round(); // Every member's metrics start here.
    await seedShares(ctx, a.id, 'NKE', '10', '100'); // Ann: 1000 in NKE; one fill.
    await seedShares(ctx, b.id, 'IBM', '5', '100'); // Bob: 500 in IBM; one fill.
    // Cy holds cash only: return 0, no varying returns (Sharpe null), no drawdown.
    for (const [nke, ibm] of [['100', '100'], ['110', '90'], ['99', '99'], ['120', '100']] as const) {
      await setPrice('NKE', nke);
      await setPrice('IBM', ibm);
      await round();
    }
    // Live: NKE falls after the last round. Ann's drawdown folds in this live point.
    await setPrice('NKE', '90');

    const opts = { periodsPerYear: periodsPerYear('always', 60_000), riskFreeRatePct: 0n };
    const byReturn = await leaderboard(ctx.db, ctx.quotes, classId, 'return', opts);
    const equity = async (u: { id: string; apiKey: string }) => cashFromDb(await accountEquity(u.id, u.apiKey));
    const rows = new Map(byReturn.entries.map((e) => [e.userId, e]));
    for (const u of [a, b, c]) {
      expect(rows.get(u.id)!.equity).toBe(await equity(u));
    }
    // Ann: 900 in NKE + cash; Bob: 500 in IBM; Cy: cash. Returns against each one's base.
    const pct = async (u: { id: string; apiKey: string }) => {
      const e = await equity(u);
      const bs = await base(u.id);
      return Number(e - bs) / Number(bs);
    };
    const expectedOrder = [a, b, c].map((u) => u.id);
    const returns = await Promise.all([a, b, c].map(pct));
    expectedOrder.sort((x, y) => returns[[a, b, c].findIndex((u) => u.id === y)]! - returns[[a, b, c].findIndex((u) => u.id === x)]! || (x < y ? -1 : 1));
    expect(byReturn.entries.map((e) => e.userId)).toEqual(expectedOrder);
    expect(byReturn.entries.map((e) => e.rank)).toEqual([1, 2, 3]);
    expect(rows.get(a.id)).toMatchObject({ name: 'Ann', trades: 1 });
    expect(rows.get(b.id)).toMatchObject({ name: 'Bob', trades: 1 });
    expect(rows.get(c.id)).toMatchObject({ name: 'Cy', trades: 0, sharpe: null, maxDrawdownPct: '0.0000', returnPct: '0.0000' });
    // Ann's index peaked at the 120 round; live at 90 her position fell 25 % from there.
    expect(Number(rows.get(a.id)!.maxDrawdownPct)).toBeGreaterThan(Number(rows.get(b.id)!.maxDrawdownPct));

    const bySharpe = await leaderboard(ctx.db, ctx.quotes, classId, 'sharpe', opts);
    expect(bySharpe.entries.at(-1)!.userId).toBe(c.id); // null last
    expect(bySharpe.entries[0]!.sharpe).not.toBeNull();
    const sharpes = bySharpe.entries.slice(0, 2).map((e) => Number(e.sharpe));
    expect(sharpes[0]).toBeGreaterThanOrEqual(sharpes[1]!);

    const byDrawdown = await leaderboard(ctx.db, ctx.quotes, classId, 'max_drawdown', opts);
    expect(byDrawdown.entries.map((e) => e.userId)).toEqual([c.id, b.id, a.id]);
  });
});
