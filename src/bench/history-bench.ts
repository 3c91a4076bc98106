/**
 * Benchmark of portfolio history's two cost targets (run after `npm run build`):
 *
 *   node dist/bench/history-bench.js [--users 10000] [--members 1000] [--rounds 5] [--full-history]
 *
 * against the PostgreSQL of BENCH_DATABASE_URL (or DATABASE_URL, or the local one): it creates a
 * database of its own (pt_history_bench_<time>), migrates it, seeds it set-based with SQL, measures,
 * and drops it.
 *
 * 1. A snapshot round over `--users` users with 4 holdings each while every price moves (so every
 *    user gets a point and a metrics update: the worst case). Database time is the wall time of the
 *    round's statements as the client sees them (localhost, so it includes the round trips).
 * 2. The leaderboard of a `--members` class whose members have 30 days of history at a 1-minute
 *    interval. Seeded as downsampling leaves it — a day of 1-minute points and 29 days of
 *    15-minute points, 4,224 a member — or, with --full-history, all 43,200 1-minute points a
 *    member. The metrics rows are seeded directly with plausible sums for 43,200 returns: the
 *    leaderboard reads them and never the history, so their values do not change its cost. Each
 *    member also gets 50 filled orders (the trades count reads a member's orders).
 */
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { createDb, migrateToLatest, quoteIdent } from '../infra/postgres.js';
import { MemoryQuoteStore } from '../services/market-data/quote-store.memory.js';
import { leaderboard, snapshotRound } from '../services/history/history.service.js';
import { readClassMembers } from '../services/history/history.repository.js';
import { periodsPerYear, type RankMetric } from '../core/performance.js';
import pg from 'pg';

const TICKERS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'JPM', 'V', 'MA', 'UNH', 'JNJ', 'XOM', 'WMT', 'PG', 'HD', 'COST', 'LLY', 'ABBV', 'AVGO'];

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1 || v > 1_000_000) throw new Error(`--${name} must be a whole number from 1 to 1000000`);
  return v;
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `min ${s[0]!.toFixed(1)} ms, median ${q(0.5).toFixed(1)} ms, p95 ${q(0.95).toFixed(1)} ms, max ${s[s.length - 1]!.toFixed(1)} ms (n=${s.length})`;
}

async function main(): Promise<void> {
  const users = arg('users', 10_000);
  const members = Math.min(users, arg('members', 1_000));
  const rounds = arg('rounds', 5);
  const fullHistory = process.argv.includes('--full-history');
  const adminUrl = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `pt_history_bench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${quoteIdent(dbName)}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const { db } = createDb(url.toString(), 4);
  try {
    await migrateToLatest(db);
    // The seed statements are long; the pool's 10 s statement_timeout is for the service.
    const seed = async (q: ReturnType<typeof sql>) => {
      const started = performance.now();
      await db.connection().execute(async (c) => {
        await sql`SET statement_timeout = 0`.execute(c);
        await q.execute(c);
      });
      return performance.now() - started;
    };
    console.log(`seeding ${users} users with ${TICKERS.length > 4 ? 4 : TICKERS.length} holdings each ...`);
    await seed(sql`
      INSERT INTO users (id, name, email)
      SELECT gen_random_uuid(), 'Bench ' || i, 'bench' || i || '@example.com' FROM generate_series(1, ${users}) i`);
    await seed(sql`INSERT INTO cash_balances (user_id, cash_balance, available_cash, net_contributions) SELECT id, 10000, 10000, 100000 FROM users`);
    await seed(sql`
      INSERT INTO holdings (user_id, ticker, quantity, avg_cost)
      SELECT u.id, (${TICKERS}::text[])[1 + (abs(hashtext(u.id::text || k)) % ${TICKERS.length})], 1 + (abs(hashtext(u.id::text)) % 1000) / 7.0, 100
        FROM users u, generate_series(1, 4) k
      ON CONFLICT DO NOTHING`);
    await sql`ANALYZE`.execute(db);

    const quotes = new MemoryQuoteStore();
    let step = 0;
    const movePrices = async () => {
      step += 1;
      await quotes.setMany(TICKERS.map((ticker, i) => ({ ticker, price: BigInt(100_0000 + ((i * 7919 + step * 104729) % 50_0000)), asOfMs: Date.now() })));
    };

    // 1. Snapshot rounds: the first starts every user (metrics rows and first points); the
    // next ones update every user, as every price moved.
    const roundMs: number[] = [];
    const roundDbMs: number[] = [];
    for (let i = 0; i <= rounds; i++) {
      await movePrices();
      const r = await snapshotRound(db, quotes, { intervalMs: 60_000, marketOpen: true, force: true });
      if (!r) throw new Error('the round was not claimed');
      const label = i === 0 ? 'first round (starts every user)' : `round ${i}`;
      console.log(`${label}: ${r.users} users, ${r.started} started, ${r.updated} updated, ${r.points} points; db ${r.dbMs.toFixed(1)} ms, total ${r.totalMs.toFixed(1)} ms`);
      if (i > 0) {
        roundMs.push(r.totalMs);
        roundDbMs.push(r.dbMs);
      }
    }
    // A round in which nothing moved writes nothing: the read alone.
    const quiet = await snapshotRound(db, quotes, { intervalMs: 60_000, marketOpen: true, force: true });
    console.log(`quiet round (nothing moved): ${quiet!.points} points; db ${quiet!.dbMs.toFixed(1)} ms, total ${quiet!.totalMs.toFixed(1)} ms`);

    // 2. The leaderboard of a class of `members` with 30 days of history.
    const classId = '00000000-0000-4000-8000-000000000001';
    await seed(sql`INSERT INTO classes (id, name, starting_cash) VALUES (${classId}, 'Bench class', 100000)`);
    await seed(sql`INSERT INTO class_members (user_id, class_id) SELECT id, ${classId}::uuid FROM users ORDER BY id LIMIT ${members}`);
    const historyMs = await seed(
      fullHistory
        ? sql`
          INSERT INTO portfolio_history (user_id, at, equity, base)
          SELECT m.user_id, date_trunc('minute', now()) - make_interval(mins => k), 100000 + (abs(hashtext(m.user_id::text || k)) % 100000) / 100.0, 100000
            FROM class_members m, generate_series(1, 43200) k
          ON CONFLICT DO NOTHING`
        : sql`
          INSERT INTO portfolio_history (user_id, at, equity, base)
          SELECT m.user_id, t, 100000 + (abs(hashtext(m.user_id::text || t::text)) % 100000) / 100.0, 100000
            FROM class_members m,
                 (SELECT date_trunc('minute', now()) - make_interval(mins => k) AS t FROM generate_series(1, 1440) k
                  UNION ALL
                  SELECT date_trunc('minute', now()) - interval '1 day' - make_interval(mins => 15 * k) FROM generate_series(1, 29 * 96) k) ts
          ON CONFLICT DO NOTHING`,
    );
    await seed(sql`
      UPDATE portfolio_metrics m
         SET start_period = 0, started_at = now() - interval '30 days',
             sum_r = (abs(hashtext(m.user_id::text)) % 1000000) * 1000, sum_r2 = 43200::numeric * 1000000000000000000 * (1 + abs(hashtext(m.user_id::text)) % 100),
             perf_index = 1000000000000 + abs(hashtext(m.user_id::text)) % 100000000000, peak_index = 1200000000000,
             max_drawdown = abs(hashtext(m.user_id::text)) % 300000000000
        FROM class_members c WHERE c.user_id = m.user_id`);
    await seed(sql`UPDATE history_rounds SET period_no = 43200 + period_no`);
    await seed(sql`
      INSERT INTO orders (id, user_id, request_hash, ticker, side, type, quantity, status, quote_price, fill_price, filled_at, filled_quantity)
      SELECT gen_random_uuid(), c.user_id, '\\x00', 'AAPL', 'buy', 'market', 1, 'FILLED', 100, 100, now() - make_interval(mins => k * 500), 1
        FROM class_members c, generate_series(1, 50) k`);
    await sql`ANALYZE`.execute(db);
    const { rows: size } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM portfolio_history`.execute(db);
    console.log(`history seeded: ${size[0]!.n} points (${fullHistory ? '30 days of 1-minute points' : 'downsampled: 1 day of 1-minute points, 29 days of 15-minute points'}) in ${(historyMs / 1000).toFixed(1)} s`);

    const opts = { periodsPerYear: periodsPerYear('always', 60_000), riskFreeRatePct: 0n };
    const boardMs: Record<RankMetric, number[]> = { return: [], sharpe: [], max_drawdown: [] };
    for (let i = 0; i < 3; i++) await leaderboard(db, quotes, classId, 'return', opts); // warm-up
    for (let i = 0; i < 20; i++) {
      for (const metric of ['return', 'sharpe', 'max_drawdown'] as const) {
        const started = performance.now();
        const board = await leaderboard(db, quotes, classId, metric, opts);
        boardMs[metric].push(performance.now() - started);
        if (board.entries.length !== members) throw new Error(`the leaderboard has ${board.entries.length} entries, not ${members}`);
      }
    }

    // The leaderboard's one statement alone (its database time), without valuation and ranking.
    const statementMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await readClassMembers(db, classId, 10_000);
      statementMs.push(performance.now() - started);
    }

    console.log('');
    console.log(`leaderboard statement alone, ${members} members: ${stats(statementMs)}`);
    console.log(`snapshot round, ${users} users, every price moving: db ${stats(roundDbMs)}; total ${stats(roundMs)}`);
    for (const metric of ['return', 'sharpe', 'max_drawdown'] as const) console.log(`leaderboard by ${metric}, ${members} members: ${stats(boardMs[metric])}`);
  } finally {
    await db.destroy();
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
