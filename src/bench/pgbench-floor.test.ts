import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { testDatabaseName, urlFor } from '../../test/db-names.js';
import { createDatabaseFromTemplate, dropDatabase } from '../../test/harness.js';
import { parsePgbenchOutput, pgbenchEnv, pgbenchScripts, runPgbenchFloor } from './pgbench-floor.js';

/** A real pgbench 15 summary of a run of two weighted scripts (-M prepared -c 2 -j 2 -T 2). */
const PGBENCH_15_MULTI = `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: multiple scripts
scaling factor: 1
query mode: prepared
number of clients: 2
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 112346
number of failed transactions: 0 (0.000%)
latency average = 0.036 ms
initial connection time = 5.534 ms
tps = 56258.343908 (without initial connection time)
SQL script 1: /tmp/pgb1.sql
 - weight: 3 (targets 75.0% of total)
 - 84285 transactions (75.0% of total, tps = 42206.527302)
 - number of failed transactions: 0 (0.000%)
 - latency average = 0.035 ms
 - latency stddev = 0.023 ms
SQL script 2: /tmp/pgb1.sql
 - weight: 1 (targets 25.0% of total)
 - 28015 transactions (24.9% of total, tps = 14028.781662)
 - number of failed transactions: 0 (0.000%)
 - latency average = 0.035 ms
 - latency stddev = 0.019 ms
`;

/** A real pgbench 15 summary of a run whose every client aborted (nothing processed, no tps). */
const PGBENCH_15_ABORTED = `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: /tmp/pgb2.sql
scaling factor: 1
query mode: prepared
number of clients: 2
number of threads: 1
maximum number of tries: 1
duration: 1 s
number of transactions actually processed: 0
number of failed transactions: 0 (NaN%)
`;

/** A real pgbench 15 summary of a run of -t transactions per client (no duration line). */
const PGBENCH_15_COUNTED = `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: /tmp/pgb1.sql
scaling factor: 1
query mode: prepared
number of clients: 2
number of threads: 2
maximum number of tries: 1
number of transactions per client: 12
number of transactions actually processed: 24/24
number of failed transactions: 0 (0.000%)
latency average = 0.321 ms
initial connection time = 7.548 ms
tps = 6240.249610 (without initial connection time)
`;

describe('parsePgbenchOutput', () => {
  it('reads the run summary, not the per-script lines', () => {
    expect(parsePgbenchOutput(PGBENCH_15_MULTI)).toEqual({
      transactions: 112346,
      tps: 56258.343908,
      latencyAvgMs: 0.036,
      failed: 0,
      durationS: 2,
      initialConnectionMs: 5.534,
      clients: 2,
      threads: 2,
    });
  });

  it('reads a run of -t transactions per client', () => {
    expect(parsePgbenchOutput(PGBENCH_15_COUNTED)).toMatchObject({ transactions: 24, tps: 6240.24961, latencyAvgMs: 0.321, durationS: null });
  });

  it('gives no tps when nothing ran', () => {
    expect(parsePgbenchOutput(PGBENCH_15_ABORTED)).toMatchObject({ transactions: 0, tps: null, latencyAvgMs: null, failed: 0 });
  });

  it('refuses text that is not a pgbench summary', () => {
    expect(() => parsePgbenchOutput('pgbench: error: connection to server failed')).toThrow(/not a pgbench summary/);
  });
});

describe('pgbenchScripts', () => {
  const opts = { users: 1000, tickers: 8, quantity: 3, fillBatch: 50, fillClients: 4 };

  it('writes the run constants in and leaves no placeholder', () => {
    const s = pgbenchScripts(opts);
    for (const text of [s.acceptBuy, s.acceptSell, s.fill]) expect(text).not.toMatch(/\{\{/);
    for (const text of [s.acceptBuy, s.acceptSell]) {
      expect(text).toContain('\\set user_idx random(1, 1000)');
      expect(text).toContain('\\set ticker_idx random(1, 8)');
      expect(text).toContain('3::numeric');
      // One statement: the only semicolon ends it.
      expect(text.replace(/^--.*$/gm, '').match(/;/g)).toHaveLength(1);
    }
    expect(s.acceptBuy).toContain("'|buy|3'");
    expect(s.acceptSell).toContain("'|sell|3'");
    expect(s.fill).toMatch(/^BEGIN;$/m);
    expect(s.fill).toMatch(/^COMMIT;$/m);
    expect(s.fill).toContain('LIMIT 50');
    expect(s.fill).toContain('% 4 = :client_id');
    expect(s.fill).toContain('FOR UPDATE OF o SKIP LOCKED');
    // Buys round up, sells down, to the cent, as floor-fill.sql.
    expect(s.fill).toContain("CASE WHEN o.side = 'buy' THEN ceil(o.quantity * px.price * 100) ELSE floor(o.quantity * px.price * 100) END / 100");
  });

  it('refuses constants that are not positive integers', () => {
    expect(() => pgbenchScripts({ ...opts, quantity: 1.5 })).toThrow(RangeError);
    expect(() => pgbenchScripts({ ...opts, fillBatch: 0 })).toThrow(RangeError);
    expect(() => pgbenchScripts({ ...opts, users: Number.NaN })).toThrow(RangeError);
  });
});

describe('pgbenchEnv', () => {
  it('passes the connection in libpq variables and drops the caller’s', () => {
    const env = pgbenchEnv('postgres://bench:s%40cret@db.example:6543/pt_bench?sslmode=require', { PATH: '/usr/bin', PGSERVICE: 'other' });
    expect(env).toMatchObject({ PATH: '/usr/bin', PGHOST: 'db.example', PGPORT: '6543', PGUSER: 'bench', PGPASSWORD: 's@cret', PGDATABASE: 'pt_bench', PGSSLMODE: 'require' });
    expect(env.PGSERVICE).toBeUndefined();
  });
});

/** How long the integration test may take: seeding, 2 s of accepts, a warm-up and up to 2 s of fills. */
const INTEGRATION_TIMEOUT_MS = 120_000;
const SEED_CASH = '100000000.00';
const SEED_SHARES = 100_000;

describe('runPgbenchFloor', () => {
  it(
    'accepts and fills with pgbench, and the filled orders’ cash and shares add up',
    async () => {
      const dbName = testDatabaseName(randomBytes(6).toString('hex'));
      await createDatabaseFromTemplate(dbName);
      const url = urlFor(dbName);
      try {
        const r = await runPgbenchFloor({
          databaseUrl: url,
          users: 20,
          tickers: [
            { ticker: 'AAPL', price: '189.9550' },
            { ticker: 'MSFT', price: '415.2001' },
          ],
          sellRatio: 0.5,
          quantity: 3,
          seedShares: SEED_SHARES,
          acceptClients: 4,
          fillClients: 2,
          fillBatch: 50,
          durationS: 2,
        });
        expect(r.pgbenchVersion).toMatch(/^pgbench \(PostgreSQL\) \d+/);
        expect(r.accept.perS).toBeGreaterThan(0);
        expect(r.fill.perS).toBeGreaterThan(0);
        expect(r.combinedPerS).toBeGreaterThan(0);
        expect(r.combinedPerS).toBeLessThan(Math.min(r.accept.perS, r.fill.perS));
        expect(r.accept.refusedBuys).toBe(0);
        expect(r.accept.refusedSells).toBe(0);
        expect(r.accept.run.failed).toBe(0);
        expect(r.fill.run.failed).toBe(0);
        // No refusal: every accept transaction pgbench counted inserted its order.
        expect(r.accept.accepted).toBe(r.accept.run.transactions);
        expect(r.fill.filled).toBeGreaterThan(0);

        const db = new pg.Client({ connectionString: url });
        await db.connect();
        try {
          const q = async (text: string, values: unknown[] = []) => (await db.query<{ n: string }>(text, values)).rows[0]!.n;
          const floorUsers = 'SELECT user_id FROM pgbench_floor_users';
          expect(await q(`SELECT count(*) AS n FROM orders WHERE user_id IN (${floorUsers})`)).toBe(String(r.accept.accepted));
          // Every balance is the sum of its ledger, and moved from the seed by exactly the
          // filled orders' amounts, rounded against the account (buys up, sells down).
          expect(
            await q(`SELECT count(*) AS n FROM cash_balances cb WHERE cb.user_id IN (${floorUsers})
                        AND cb.cash_balance <> (SELECT sum(amount) FROM cash_ledger l WHERE l.user_id = cb.user_id)`),
          ).toBe('0');
          expect(
            await q(
              `SELECT count(*) AS n FROM cash_balances cb WHERE cb.user_id IN (${floorUsers})
                  AND cb.cash_balance - $1::numeric <> coalesce((
                        SELECT sum(CASE WHEN o.side = 'buy' THEN -ceil(o.quantity * o.fill_price * 100) / 100
                                        ELSE floor(o.quantity * o.fill_price * 100) / 100 END)
                          FROM orders o WHERE o.user_id = cb.user_id AND o.status = 'FILLED'), 0)`,
              [SEED_CASH],
            ),
          ).toBe('0');
          // Available cash is the balance less the holds of the orders still pending.
          expect(
            await q(`SELECT count(*) AS n FROM cash_balances cb WHERE cb.user_id IN (${floorUsers})
                        AND cb.available_cash <> cb.cash_balance - coalesce((
                              SELECT sum(reserved_amount) FROM orders o WHERE o.user_id = cb.user_id AND o.status = 'PENDING'), 0)`),
          ).toBe('0');
          // Shares: the seed plus filled buys less filled sells; reserved: the pending sells.
          expect(
            await q(
              `SELECT count(*) AS n FROM holdings h WHERE h.user_id IN (${floorUsers})
                  AND (h.quantity <> $1::numeric + coalesce((
                         SELECT sum(CASE WHEN o.side = 'buy' THEN o.quantity ELSE -o.quantity END) FROM orders o
                          WHERE o.user_id = h.user_id AND o.ticker = h.ticker AND o.status = 'FILLED'), 0)
                    OR h.reserved_quantity <> coalesce((
                         SELECT sum(o.quantity) FROM orders o
                          WHERE o.user_id = h.user_id AND o.ticker = h.ticker AND o.status = 'PENDING' AND o.side = 'sell'), 0))`,
              [SEED_SHARES],
            ),
          ).toBe('0');
          // One fill and one ledger row per filled order, with the same amount.
          const filled = await q(`SELECT count(*) AS n FROM orders WHERE status = 'FILLED' AND user_id IN (${floorUsers})`);
          expect(Number(filled)).toBeGreaterThan(0);
          expect(await q(`SELECT count(*) AS n FROM fills f JOIN orders o ON o.id = f.order_id WHERE o.user_id IN (${floorUsers})`)).toBe(filled);
          expect(
            await q(`SELECT count(*) AS n FROM cash_ledger l JOIN fills f USING (order_id)
                      WHERE l.kind IN ('buy', 'sell') AND abs(l.amount) = f.amount`),
          ).toBe(filled);
          expect(await q(`SELECT count(*) AS n FROM orders WHERE status = 'PENDING' AND user_id IN (${floorUsers})`)).toBe(String(r.fill.pendingAfter));
        } finally {
          await db.end();
        }
      } finally {
        await dropDatabase(dbName);
      }
    },
    INTEGRATION_TIMEOUT_MS,
  );
});
