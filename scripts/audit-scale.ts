/**
 * How long `papertrade audit` takes on a large database: creates a scratch database, migrates
 * it, generates (in SQL, with generate_series) 10,000 users with 100 orders each — 1,000,000
 * orders, their fills, ledger rows, cash balances and holdings, all consistent — runs the audit
 * a few times and prints the timings, then drops the database.
 *
 *   npx tsx scripts/audit-scale.ts [--users 10000] [--runs 3] [--keep] [--explain] [--db NAME]
 *
 * --keep leaves the scratch database in place; --db NAME audits such a kept database again
 * without generating (and without dropping it); --explain prints EXPLAIN ANALYZE of each query.
 *
 * Uses DATABASE_URL's server (default the local one); only the scratch database is touched.
 * Each user's 100 orders are 50 buy/sell pairs over the 40 seeded tickers: fills, cancels and
 * rejections of both sides, one position that nets to zero (no holdings row), and a last pair
 * PENDING (a cash hold and a share reservation). Every invariant holds by construction, so the
 * audit must report 0 violations.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { createDb, createPool, migrateToLatest, quoteIdent } from '../src/infra/postgres.js';
import { BENCH_DATABASE_URL_DEFAULT } from '../src/bench/bench.js';
import type { Database } from '../src/infra/schema.js';
import { AUDIT_WORK_MEM_MB, INVARIANTS, runAudit } from '../src/services/audit/audit.service.js';

const ORDERS_PER_USER = 100; // the pairs below are laid out for exactly 100

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const USERS = Number(arg('users', '10000'));
const RUNS = Number(arg('runs', '3'));
const KEEP = process.argv.includes('--keep');
const EXPLAIN = process.argv.includes('--explain');

const serverUrl = new URL(process.env.DATABASE_URL ?? BENCH_DATABASE_URL_DEFAULT);
const REUSE = arg('db', '');
const scratch = REUSE || `pt_audit_scale_${Date.now()}`;
const urlOf = (db: string) => {
  const u = new URL(serverUrl);
  u.pathname = `/${db}`;
  return u.toString();
};

async function withClient<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: urlOf(database) });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function step(client: pg.Client, label: string, text: string, values: unknown[] = []): Promise<void> {
  const t0 = performance.now();
  const res = await client.query(text, values);
  const rows = Array.isArray(res) ? '' : ` (${res.rowCount ?? 0} rows)`;
  console.log(`  ${label.padEnd(28)} ${String(Math.round(performance.now() - t0)).padStart(7)} ms${rows}`);
}

/** Generates the data set; every derived table is computed from the orders and fills. */
async function generate(client: pg.Client): Promise<void> {
  await step(
    client,
    'users',
    `INSERT INTO users (id, name, email)
     SELECT md5('u' || u)::uuid, 'Scale user ' || u, 'user' || u || '@scale.test' FROM generate_series(1, $1::int) u`,
    [USERS],
  );
  // Pair j = (k + 1) / 2 trades ticker (u + j) % 40: pairs j and j + 40 share a ticker.
  // k % 20 = 1: buy REJECTED, and its sell (k % 20 = 2) CANCELED: the ticker of pairs 1 and 41
  // nets to zero. Sells with k % 10 = 4 are CANCELED, k % 10 = 8 REJECTED. Pair 50 is PENDING
  // (its ticker is pair 10's, which holds 6.25 shares for the pending sell of 4.25 to reserve).
  await step(
    client,
    'orders',
    `WITH t AS (SELECT array_agg(ticker ORDER BY ticker) AS tickers FROM instruments)
     INSERT INTO orders (id, user_id, request_hash, ticker, side, type, quantity, status, reserved_amount,
                         quote_price, fill_price, filled_at, reject_reason, created_at, updated_at)
     SELECT md5('o' || u || '-' || k)::uuid, md5('u' || u)::uuid, decode(md5('o' || u || '-' || k), 'hex'),
            t.tickers[1 + (u + (k + 1) / 2) % 40], s.side, 'market', s.qty, s.status,
            CASE WHEN s.side = 'buy' THEN ceil(s.qty * s.price * 1.05 * 100) / 100 ELSE 0 END,
            CASE WHEN s.side = 'buy' THEN s.price END,
            CASE WHEN s.status = 'FILLED' THEN s.price END,
            CASE WHEN s.status = 'FILLED' THEN s.created_at + interval '1 second' END,
            CASE WHEN s.status <> 'REJECTED' THEN NULL
                 WHEN s.side = 'buy' THEN 'PRICE_MOVED_BEYOND_RESERVATION' ELSE 'DELIVERY_ATTEMPTS_EXCEEDED' END,
            s.created_at, s.created_at
       FROM generate_series(1, $1::int) u
      CROSS JOIN generate_series(1, ${ORDERS_PER_USER}) k
      CROSS JOIN t
      CROSS JOIN LATERAL (
        SELECT CASE WHEN k % 2 = 1 THEN 'buy' ELSE 'sell' END AS side,
               CASE WHEN k % 2 = 1 THEN 10.5 ELSE 4.25 END::numeric(24, 6) AS qty,
               (100 + ((u * 31 + k * 17) % 50000) / 100.0)::numeric(20, 4) AS price,
               CASE WHEN k > ${ORDERS_PER_USER - 2} THEN 'PENDING'
                    WHEN k % 2 = 1 AND k % 20 = 1 THEN 'REJECTED'
                    WHEN k % 2 = 0 AND (k % 10 = 4 OR k % 20 = 2) THEN 'CANCELED'
                    WHEN k % 2 = 0 AND k % 10 = 8 THEN 'REJECTED'
                    ELSE 'FILLED' END AS status,
               CASE WHEN k > ${ORDERS_PER_USER - 2} THEN now()
                    ELSE now() - interval '2 days' + k * interval '1 minute' + u * interval '1 millisecond' END AS created_at
      ) s`,
    [USERS],
  );
  await step(
    client,
    'fills',
    `INSERT INTO fills (order_id, price, quantity, amount, executed_at)
     SELECT id, fill_price, quantity, round(quantity * fill_price, 2), filled_at
       FROM orders WHERE status = 'FILLED' ORDER BY filled_at, id`,
  );
  // Ledger ids follow each user's movements in time, so balance_after is the running sum by id.
  await step(
    client,
    'cash_ledger',
    `INSERT INTO cash_ledger (id, user_id, kind, amount, balance_after, order_id, created_at) OVERRIDING SYSTEM VALUE
     SELECT row_number() OVER (ORDER BY e.user_id, e.at, e.order_id NULLS FIRST),
            e.user_id, e.kind, e.amount,
            sum(e.amount) OVER (PARTITION BY e.user_id ORDER BY e.at, e.order_id NULLS FIRST),
            e.order_id, e.at
       FROM (SELECT id AS user_id, 'initial' AS kind, 1000000.00::numeric(20, 2) AS amount, NULL::uuid AS order_id,
                    now() - interval '3 days' AS at
               FROM users
             UNION ALL
             SELECT o.user_id, o.side, CASE WHEN o.side = 'buy' THEN -f.amount ELSE f.amount END, o.id, f.executed_at
               FROM fills f JOIN orders o ON o.id = f.order_id
              WHERE f.amount > 0) e`,
  );
  await step(client, 'ledger id sequence', `SELECT setval(pg_get_serial_sequence('cash_ledger', 'id'), (SELECT max(id) FROM cash_ledger))`);
  await step(
    client,
    'cash_balances',
    `INSERT INTO cash_balances (user_id, cash_balance, available_cash)
     SELECT l.user_id, l.total, l.total - coalesce(h.held, 0)
       FROM (SELECT user_id, sum(amount) AS total FROM cash_ledger GROUP BY user_id) l
       LEFT JOIN (SELECT user_id, sum(reserved_amount) AS held FROM orders
                   WHERE status = 'PENDING' AND side = 'buy' GROUP BY user_id) h ON h.user_id = l.user_id`,
  );
  await step(
    client,
    'holdings',
    `INSERT INTO holdings (user_id, ticker, quantity, reserved_quantity, avg_cost)
     SELECT t.user_id, t.ticker, t.net, coalesce(r.reserved, 0), t.avg_cost
       FROM (SELECT o.user_id, o.ticker,
                    sum(CASE WHEN o.side = 'buy' THEN f.quantity ELSE -f.quantity END) AS net,
                    round(sum(f.quantity * f.price) FILTER (WHERE o.side = 'buy')
                          / sum(f.quantity) FILTER (WHERE o.side = 'buy'), 4) AS avg_cost
               FROM fills f JOIN orders o ON o.id = f.order_id
              GROUP BY o.user_id, o.ticker) t
       LEFT JOIN (SELECT user_id, ticker, sum(quantity) AS reserved FROM orders
                   WHERE status = 'PENDING' AND side = 'sell' GROUP BY user_id, ticker) r
              ON r.user_id = t.user_id AND r.ticker = t.ticker
      WHERE t.net <> 0`,
  );
  await step(client, 'vacuum analyze', 'VACUUM ANALYZE');
}

/** EXPLAIN ANALYZE of each audit query, captured from a logged audit run. */
async function explainAll(databaseUrl: string): Promise<void> {
  const captured: { sql: string; parameters: readonly unknown[] }[] = [];
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: createPool(databaseUrl, 1) }),
    log: (event) => {
      if (event.level === 'query' && event.query.sql.includes('count(*) OVER ()')) captured.push(event.query);
    },
  });
  try {
    await runAudit(db);
  } finally {
    await db.destroy();
  }
  await withClient(new URL(databaseUrl).pathname.slice(1), async (c) => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await c.query(`SET LOCAL work_mem = '${AUDIT_WORK_MEM_MB}MB'`);
    for (const [i, q] of captured.entries()) {
      const plan = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${q.sql}`, [...q.parameters]);
      console.log(`--- ${INVARIANTS[i]?.id ?? '?'} ${INVARIANTS[i]?.name ?? ''}`);
      console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'));
    }
    await c.query('COMMIT');
  });
}

async function main(): Promise<void> {
  console.log(
    REUSE
      ? `reusing database ${scratch}`
      : `scratch database ${scratch}: ${USERS} users x ${ORDERS_PER_USER} orders = ${USERS * ORDERS_PER_USER} orders`,
  );
  if (!REUSE) await withClient('postgres', (c) => c.query(`CREATE DATABASE ${quoteIdent(scratch)}`));
  try {
    const { db } = createDb(urlOf(scratch), 2);
    try {
      // Applies only the migrations a reused database lacks (e.g. a new index being measured).
      const applied = await migrateToLatest(db);
      if (REUSE && applied.length) console.log(`  applied ${applied.join(', ')}`);
    } finally {
      await db.destroy();
    }
    if (!REUSE) {
      const t0 = performance.now();
      await withClient(scratch, generate);
      console.log(`  generated in ${Math.round(performance.now() - t0)} ms`);
    }
    // The last pair of each user was "just placed": generation takes longer than the audit's
    // recovery period, so the pending orders' age is reset right before auditing.
    await withClient(scratch, (c) =>
      step(c, 'pending orders placed now', "UPDATE orders SET created_at = now(), updated_at = now() WHERE status = 'PENDING'"),
    );
    const sizes = await withClient(scratch, (c) =>
      c.query<{ relname: string; size: string }>(
        `SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) AS size FROM pg_class
          WHERE relname IN ('orders', 'fills', 'cash_ledger', 'holdings', 'cash_balances') ORDER BY relname`,
      ),
    );
    console.log(`  sizes (with indexes): ${sizes.rows.map((r) => `${r.relname} ${r.size}`).join(', ')}`);

    if (EXPLAIN) await explainAll(urlOf(scratch));

    const { db: auditDb } = createDb(urlOf(scratch), 2);
    try {
      for (let run = 1; run <= RUNS; run++) {
        const report = await runAudit(auditDb);
        const per = report.invariants.map((i) => `${i.id}:${i.durationMs}`).join(' ');
        const violations = report.invariants.reduce((n, i) => n + i.violations, 0);
        console.log(
          `audit run ${run}: ${report.durationMs} ms, ok=${report.ok}, ${violations} violations; ` +
            `${report.counts.users} users, ${report.counts.orders} orders, ${report.counts.fills} fills; ms per invariant ${per}`,
        );
        if (!report.ok) {
          for (const i of report.invariants.filter((x) => x.violations > 0)) {
            console.log(`  ${i.id} ${i.name}: ${i.violations}`, i.examples.slice(0, 3));
          }
          process.exitCode = 1;
        }
      }
    } finally {
      await auditDb.destroy();
    }
  } finally {
    if (KEEP || REUSE) console.log(`kept ${scratch} (drop it with: psql -c 'DROP DATABASE ${scratch}')`);
    else {
      await withClient('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(scratch)} WITH (FORCE)`)).catch(
        (err: unknown) => console.error(`could not drop ${scratch} (${String(err)}); drop it by hand`),
      );
    }
  }
}

await main();
