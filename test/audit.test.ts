/**
 * The audit against real PostgreSQL: a database after a realistic flow (users, buys and sells
 * filled by the engine, a rejection, a cancel, pending orders) passes; then each invariant is
 * broken on purpose with direct SQL — the way a bug or a hand edit would — and the audit must
 * name it with the ids involved. Every test repairs what it broke (afterEach checks the audit
 * is clean again). Also the CLI (exit codes, --json) and GET /admin/audit.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql, type RawBuilder } from 'kysely';
import { createEngine } from '../src/app.js';
import { parsePrice } from '../src/core/money.js';
import type { Order, OrdersService } from '../src/services/orders/orders.service.js';
import {
  runAudit,
  type AuditOptions,
  type AuditReport,
  type AuditViolation,
  type InvariantName,
} from '../src/services/audit/audit.service.js';
import { ADMIN_TOKEN, createTestContext, marketOrder, eventually, newUser, startTestServer, type TestContext } from './harness.js';
import { redisUrl, urlFor } from './db-names.js';

let ctx: TestContext;
let oms: OrdersService;

/** The cast of the flow: a trader, a round-tripper, a small account with a pending buy. */
const u = { a: '', b: '', c: '' };
const o = {
  aBuyAapl: undefined as unknown as Order,
  aBuyMsft: undefined as unknown as Order,
  aSellAapl: undefined as unknown as Order,
  aBuyFraction: undefined as unknown as Order,
  bRejected: undefined as unknown as Order,
  cCanceled: undefined as unknown as Order,
  cPendingBuy: undefined as unknown as Order,
  aPendingSell: undefined as unknown as Order,
};


async function setPrice(ticker: string, price: string) {
  await ctx.quotes.setMany([{ ticker, price: parsePrice(price), asOfMs: Date.now() }]);
}

function place(userId: string, side: 'buy' | 'sell', ticker: string, quantity: string) {
  return oms.placeOrder(marketOrder(userId, ticker, side, quantity));
}

async function terminal(orderId: string): Promise<Order> {
  return eventually(async () => {
    const order = await oms.getOrder(orderId);
    return order.status === 'PENDING' ? undefined : order;
  });
}

async function placeAndWait(userId: string, side: 'buy' | 'sell', ticker: string, quantity: string) {
  const { order } = await place(userId, side, ticker, quantity);
  return terminal(order.id);
}

/** Longer than this file can run: its deliberate PENDING orders are never stale by age alone. */
const FILE_PENDING_MAX_AGE_MS = 3_600_000;

beforeAll(async () => {
  ctx = await createTestContext({ ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '60000', RECONCILE_INTERVAL_MS: '100' });
  oms = ctx.orders;
  u.a = (await newUser(ctx, { cash: '10000.00' })).id;
  u.b = (await newUser(ctx, { cash: '5000.00' })).id;
  u.c = (await newUser(ctx, { cash: '1000.00' })).id;
  await setPrice('AAPL', '150');
  await setPrice('MSFT', '300');

  // Before the engine runs: a buy whose price then moves past its hold, and a cancel.
  o.bRejected = (await place(u.b, 'buy', 'MSFT', '1')).order; // holds 315.00
  o.cCanceled = await oms.cancelOrder((await place(u.c, 'buy', 'AAPL', '2')).order.id, u.c);
  await setPrice('MSFT', '320');

  const engine = createEngine(ctx);
  await engine.start();
  try {
    o.bRejected = await terminal(o.bRejected.id);
    expect(o.bRejected.status).toBe('REJECTED');
    await setPrice('MSFT', '300');
    o.aBuyAapl = await placeAndWait(u.a, 'buy', 'AAPL', '10');
    o.aBuyMsft = await placeAndWait(u.a, 'buy', 'MSFT', '2.5');
    o.aSellAapl = await placeAndWait(u.a, 'sell', 'AAPL', '4');
    await setPrice('AAPL', '151.2345');
    o.aBuyFraction = await placeAndWait(u.a, 'buy', 'AAPL', '0.333333'); // 50.42: a buy's cost rounds up
    await setPrice('AAPL', '150');
    expect((await placeAndWait(u.b, 'buy', 'AAPL', '3')).status).toBe('FILLED');
    expect((await placeAndWait(u.b, 'sell', 'AAPL', '3')).status).toBe('FILLED'); // B: no AAPL row
    for (const order of [o.aBuyAapl, o.aBuyMsft, o.aSellAapl, o.aBuyFraction]) expect(order.status).toBe('FILLED');
  } finally {
    await engine.stop();
  }
  // With no engine running these stay PENDING: a cash hold and a share reservation.
  o.cPendingBuy = (await place(u.c, 'buy', 'AAPL', '1')).order; // holds 157.50
  o.aPendingSell = (await place(u.a, 'sell', 'AAPL', '1')).order; // reserves 1 share
});

afterAll(async () => {
  await ctx?.close();
});

afterEach(async () => {
  // Every test repairs what it broke: the database is clean again for the next one. The two
  // orders left PENDING on purpose may be older than the default minute on a loaded machine
  // (the file's own length): staleness is tested where it is meant, not here.
  const report = await runAudit(ctx.db, { pendingMaxAgeMs: FILE_PENDING_MAX_AGE_MS });
  expect(report.invariants.filter((i) => i.violations > 0).map((i) => i.name)).toEqual([]);
});

const run = (statements: RawBuilder<unknown>[]) =>
  ctx.db.transaction().execute(async (trx) => {
    for (const s of statements) await s.execute(trx);
  });

/** Breaks the database, audits it, and repairs it whatever happens. */
async function whileBroken(breakIt: RawBuilder<unknown>[], repair: RawBuilder<unknown>[], options: AuditOptions = {}) {
  await run(breakIt);
  try {
    return await runAudit(ctx.db, options);
  } finally {
    await run(repair);
  }
}

function invariant(report: AuditReport, name: InvariantName) {
  const found = report.invariants.find((i) => i.name === name);
  if (!found) throw new Error(`no invariant ${name} in the report`);
  return found;
}

/** The report fails exactly `name` (every other invariant holds) and lists `expected`. */
function expectOnly(report: AuditReport, name: InvariantName, expected: Partial<AuditViolation>[]) {
  expect(report.ok).toBe(false);
  expect(report.invariants.filter((i) => i.violations > 0).map((i) => i.name)).toEqual([name]);
  const inv = invariant(report, name);
  expect(inv.violations).toBe(expected.length);
  expect(inv.examples).toHaveLength(expected.length);
  expect(inv.examples).toEqual(expect.arrayContaining(expected.map((e) => expect.objectContaining(e))));
}

const cashOf = async (userId: string) =>
  (await ctx.db.selectFrom('cash_balances').select(['cash_balance', 'available_cash']).where('user_id', '=', userId).executeTakeFirstOrThrow());

describe('a clean database', () => {
  it('passes every invariant after a realistic flow, with counts and timings', async () => {
    const report = await runAudit(ctx.db, { pendingMaxAgeMs: FILE_PENDING_MAX_AGE_MS });
    expect(report.ok).toBe(true);
    expect(report.invariants.map((i) => [i.id, i.name, i.violations, i.examples])).toEqual([
      ['1', 'cash_within_bounds', 0, []],
      ['2', 'held_cash_matches_pending_buys', 0, []],
      ['3', 'cash_balance_matches_ledger', 0, []],
      ['3b', 'ledger_running_balance', 0, []],
      ['4', 'holdings_match_fills', 0, []],
      ['5', 'fills_match_orders', 0, []],
      ['6', 'no_stale_pending_orders', 0, []],
      ['7', 'no_value_from_nothing', 0, []],
      ['8', 'no_missed_triggers', 0, []],
      ['9', 'events_numbered_without_gaps', 0, []],
      ['10', 'contributions_match_ledger', 0, []],
      ['11', 'commissions_match_fills', 0, []],
    ]);
    // 3 users; 10 orders (6 filled by A and B, 1 rejected, 1 canceled, 2 pending); 6 fills.
    expect(report.counts).toEqual({ users: 3, orders: 10, fills: 6 });
    expect(report.pendingMaxAgeMs).toBe(FILE_PENDING_MAX_AGE_MS);
    expect(Number.isNaN(Date.parse(report.checkedAt))).toBe(false);
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
    // The flow really left what the invariants talk about.
    expect(await cashOf(u.c)).toEqual({ cash_balance: '1000.00', available_cash: '842.50' });
    const fraction = await ctx.db.selectFrom('fills').select('amount').where('order_id', '=', o.aBuyFraction.id).executeTakeFirstOrThrow();
    expect(fraction.amount).toBe('50.42'); // 0.333333 x 151.2345 = 50.41138…, rounded up for a buy
  });

  it('refuses nonsensical options', async () => {
    await expect(runAudit(ctx.db, { pendingMaxAgeMs: -1 })).rejects.toThrow(RangeError);
    await expect(runAudit(ctx.db, { examplesMax: 1.5 })).rejects.toThrow(RangeError);
    // At least one example: the count of all violations rides on the rows returned.
    await expect(runAudit(ctx.db, { examplesMax: 0 })).rejects.toThrow(RangeError);
    await expect(runAudit(ctx.db, { pendingMaxAgeMs: Number.MAX_SAFE_INTEGER })).rejects.toThrow(RangeError);
  });
});

describe('each invariant, broken on purpose', () => {
  it('1: available cash below zero (CHECK dropped), and a user without a cash account', async () => {
    // available_cash -1000 (to -157.50) and the pending buy's hold +1000: invariant 2 still holds.
    const report = await whileBroken(
      [
        sql`ALTER TABLE cash_balances DROP CONSTRAINT cash_balances_available_within_balance`,
        sql`UPDATE cash_balances SET available_cash = available_cash - 1000 WHERE user_id = ${u.c}`,
        sql`UPDATE orders SET reserved_amount = reserved_amount + 1000 WHERE id = ${o.cPendingBuy.id}`,
        sql`INSERT INTO users (id, name, email) VALUES ('00000000-0000-4000-8000-000000000001', 'No account', 'none@example.com')`,
      ],
      [
        sql`DELETE FROM users WHERE id = '00000000-0000-4000-8000-000000000001'`,
        sql`UPDATE orders SET reserved_amount = reserved_amount - 1000 WHERE id = ${o.cPendingBuy.id}`,
        sql`UPDATE cash_balances SET available_cash = available_cash + 1000 WHERE user_id = ${u.c}`,
        sql`ALTER TABLE cash_balances ADD CONSTRAINT cash_balances_available_within_balance
              CHECK (0 <= available_cash AND available_cash <= cash_balance)`,
      ],
    );
    expectOnly(report, 'cash_within_bounds', [
      { userId: u.c, field: 'available_cash', expected: '>= 0', actual: '-157.50' },
      { userId: '00000000-0000-4000-8000-000000000001', field: 'cash_balances', actual: null },
    ]);
  });

  it('1: available cash above the balance is reported too (and breaks invariant 2 with it)', async () => {
    const report = await whileBroken(
      [
        sql`ALTER TABLE cash_balances DROP CONSTRAINT cash_balances_available_within_balance`,
        sql`UPDATE cash_balances SET available_cash = cash_balance + 1 WHERE user_id = ${u.b}`,
      ],
      [
        sql`UPDATE cash_balances SET available_cash = cash_balance WHERE user_id = ${u.b}`,
        sql`ALTER TABLE cash_balances ADD CONSTRAINT cash_balances_available_within_balance
              CHECK (0 <= available_cash AND available_cash <= cash_balance)`,
      ],
    );
    const { cash_balance } = await cashOf(u.b);
    expect(invariant(report, 'cash_within_bounds').examples).toEqual([
      expect.objectContaining({ userId: u.b, field: 'available_cash', expected: `<= ${cash_balance}` }),
    ]);
    expect(invariant(report, 'held_cash_matches_pending_buys').examples).toEqual([
      expect.objectContaining({ userId: u.b, field: 'held_cash', expected: '0.00', actual: '-1.00' }),
    ]);
  });

  it('2: a pending buy whose reserved_amount differs from the cash held', async () => {
    const report = await whileBroken(
      [sql`UPDATE orders SET reserved_amount = reserved_amount + 0.01 WHERE id = ${o.cPendingBuy.id}`],
      [sql`UPDATE orders SET reserved_amount = reserved_amount - 0.01 WHERE id = ${o.cPendingBuy.id}`],
    );
    expectOnly(report, 'held_cash_matches_pending_buys', [
      { userId: u.c, field: 'held_cash', expected: '157.51', actual: '157.50', detail: '1 live order(s) holding cash' },
    ]);
  });

  it('3: a ledger row that the balance never saw', async () => {
    const { cash_balance } = await cashOf(u.a);
    const { rows } = await sql<{ id: string }>`
      INSERT INTO cash_ledger (user_id, kind, amount, balance_after)
      VALUES (${u.a}, 'sell', 1.00, ${cash_balance}::numeric + 1) RETURNING id`.execute(ctx.db);
    let report: AuditReport;
    try {
      report = await runAudit(ctx.db, { pendingMaxAgeMs: FILE_PENDING_MAX_AGE_MS });
    } finally {
      await sql`DELETE FROM cash_ledger WHERE id = ${rows[0]!.id}`.execute(ctx.db);
    }
    const expectedSum = (await sql<{ v: string }>`SELECT (${cash_balance}::numeric + 1)::text AS v`.execute(ctx.db)).rows[0]!.v;
    expectOnly(report, 'cash_balance_matches_ledger', [
      { userId: u.a, field: 'cash_balance', expected: expectedSum, actual: cash_balance },
    ]);
  });

  it("3b: a ledger row whose balance_after is not the running sum", async () => {
    const last = await ctx.db
      .selectFrom('cash_ledger')
      .select(['id', 'balance_after', 'order_id'])
      .where('user_id', '=', u.a)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    const report = await whileBroken(
      [sql`UPDATE cash_ledger SET balance_after = balance_after + 0.01 WHERE id = ${last.id}`],
      [sql`UPDATE cash_ledger SET balance_after = balance_after - 0.01 WHERE id = ${last.id}`],
    );
    expectOnly(report, 'ledger_running_balance', [
      { userId: u.a, ledgerId: last.id, orderId: last.order_id, field: 'balance_after', expected: last.balance_after },
    ]);
  });

  it('4: holdings that disagree with the fills and with the pending sells', async () => {
    // A holds AAPL 10 - 4 + 0.333333 = 6.333333 with 1 reserved, MSFT 2.5; B's AAPL nets to zero.
    const msft = await ctx.db.selectFrom('holdings').selectAll().where('user_id', '=', u.a).where('ticker', '=', 'MSFT').executeTakeFirstOrThrow();
    const report = await whileBroken(
      [
        sql`UPDATE holdings SET quantity = quantity + 1, reserved_quantity = 0 WHERE user_id = ${u.a} AND ticker = 'AAPL'`,
        sql`DELETE FROM holdings WHERE user_id = ${u.a} AND ticker = 'MSFT'`,
        sql`INSERT INTO holdings (user_id, ticker, quantity, reserved_quantity, avg_cost) VALUES (${u.b}, 'AAPL', 1, 0, 150)`,
      ],
      [
        sql`DELETE FROM holdings WHERE user_id = ${u.b} AND ticker = 'AAPL'`,
        sql`INSERT INTO holdings (user_id, ticker, quantity, reserved_quantity, avg_cost)
            VALUES (${u.a}, 'MSFT', ${msft.quantity}, ${msft.reserved_quantity}, ${msft.avg_cost})`,
        sql`UPDATE holdings SET quantity = quantity - 1, reserved_quantity = 1 WHERE user_id = ${u.a} AND ticker = 'AAPL'`,
      ],
    );
    expectOnly(report, 'holdings_match_fills', [
      { userId: u.a, ticker: 'AAPL', field: 'quantity', expected: '6.333333', actual: '7.333333' },
      { userId: u.a, ticker: 'AAPL', field: 'reserved_quantity', expected: '1.000000', actual: '0.000000' },
      { userId: u.a, ticker: 'MSFT', field: 'quantity', expected: '2.500000', actual: null, detail: 'no holdings row for shares bought' },
      { userId: u.b, ticker: 'AAPL', field: 'quantity', expected: null, actual: '1.000000' },
    ]);
  });

  it('4: lists at most `examplesMax` violations but counts them all', async () => {
    const report = await whileBroken(
      [sql`UPDATE holdings SET quantity = quantity + 1, reserved_quantity = 0 WHERE user_id = ${u.a} AND ticker = 'AAPL'`],
      [sql`UPDATE holdings SET quantity = quantity - 1, reserved_quantity = 1 WHERE user_id = ${u.a} AND ticker = 'AAPL'`],
      { examplesMax: 1 },
    );
    const inv = invariant(report, 'holdings_match_fills');
    expect([inv.violations, inv.examples.length, inv.examples[0]!.field]).toEqual([2, 1, 'quantity']);
  });

  it('5: a FILLED order without a fill, a CANCELED one with a fill, wrong fill values', async () => {
    const rejected = o.bRejected.id;
    const canceledWithFill = o.aBuyAapl.id;
    const report = await whileBroken(
      [
        sql`UPDATE orders SET status = 'FILLED', fill_price = 320, filled_quantity = quantity, filled_at = now(), reject_reason = NULL WHERE id = ${rejected}`,
        sql`UPDATE orders SET status = 'CANCELED', fill_price = NULL, filled_quantity = 0, filled_at = NULL WHERE id = ${canceledWithFill}`,
        sql`UPDATE fills SET amount = amount + 0.01 WHERE order_id = ${o.aBuyMsft.id}`,
        sql`UPDATE fills SET price = price + 1, amount = round(quantity * (price + 1), 2) WHERE order_id = ${o.aSellAapl.id}`,
      ],
      [
        sql`UPDATE fills SET price = price - 1, amount = round(quantity * (price - 1), 2) WHERE order_id = ${o.aSellAapl.id}`,
        sql`UPDATE fills SET amount = amount - 0.01 WHERE order_id = ${o.aBuyMsft.id}`,
        sql`UPDATE orders SET status = 'FILLED', fill_price = 150, filled_quantity = quantity, filled_at = now() WHERE id = ${canceledWithFill}`,
        sql`UPDATE orders SET status = 'REJECTED', fill_price = NULL, filled_quantity = 0, filled_at = NULL,
                   reject_reason = 'PRICE_MOVED_BEYOND_RESERVATION' WHERE id = ${rejected}`,
      ],
    );
    const inv = invariant(report, 'fills_match_orders');
    expect(inv.examples.map((v) => `${v.orderId} ${v.field}`).sort()).toEqual(
      [
        `${rejected} filled_quantity`,
        `${rejected} fill_price`,
        `${canceledWithFill} filled_quantity`,
        `${canceledWithFill} fill_price`,
        `${o.aBuyMsft.id} fill_amount`,
        `${o.aSellAapl.id} filled_value`,
        `${o.aSellAapl.id} fill_price`,
      ].sort(),
    );
    expect(inv.examples).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ orderId: rejected, userId: u.b, ticker: 'MSFT', field: 'filled_quantity', expected: '0', detail: expect.stringContaining('order FILLED') }),
        expect.objectContaining({ orderId: canceledWithFill, userId: u.a, field: 'filled_quantity', actual: '0.000000', detail: expect.stringContaining('order CANCELED') }),
        expect.objectContaining({ orderId: o.aBuyMsft.id, field: 'fill_amount', expected: '750.00', actual: '750.01' }),
        expect.objectContaining({ orderId: o.aSellAapl.id, field: 'fill_price', expected: '151.0000', actual: '150.0000' }),
      ]),
    );
  });

  it('5: a fill the order does not know of — also seen by invariant 4', async () => {
    const id = o.aBuyMsft.id;
    const report = await whileBroken(
      [sql`INSERT INTO fills (order_id, price, quantity, amount) SELECT order_id, price, quantity, amount FROM fills WHERE order_id = ${id}`],
      [sql`DELETE FROM fills WHERE id = (SELECT max(id) FROM fills WHERE order_id = ${id})`],
    );
    expect(invariant(report, 'fills_match_orders').examples).toEqual([
      expect.objectContaining({ orderId: id, userId: u.a, field: 'filled_quantity', expected: '5.000000', actual: '2.500000' }),
      expect.objectContaining({ orderId: id, userId: u.a, field: 'filled_value' }),
    ]);
    expect(invariant(report, 'holdings_match_fills').examples).toEqual([
      expect.objectContaining({ userId: u.a, ticker: 'MSFT', field: 'quantity', expected: '5.000000', actual: '2.500000' }),
    ]);
  });

  it('5: checks each amount by its own rounding rule: a buy rounded down is wrong, an old half-up fill is not', async () => {
    const id = o.aBuyFraction.id; // 0.333333 x 151.2345 = 50.41138…: paid 50.42
    const report = await whileBroken(
      [sql`UPDATE fills SET amount = 50.41 WHERE order_id = ${id}`],
      [sql`UPDATE fills SET amount = 50.42 WHERE order_id = ${id}`],
    );
    expectOnly(report, 'fills_match_orders', [
      { orderId: id, field: 'fill_amount', expected: '50.42', actual: '50.41', detail: expect.stringContaining('rounded up (a buy)') },
    ]);
    // The same amount on a fill written under the old half-up rule is what that rule gave.
    const old = await whileBroken(
      [sql`UPDATE fills SET amount = 50.41, rounding = 'half_up' WHERE order_id = ${id}`],
      [sql`UPDATE fills SET amount = 50.42, rounding = 'against_account' WHERE order_id = ${id}`],
    );
    expect(invariant(old, 'fills_match_orders').violations).toBe(0);
  });

  it('7: shares bought for 0.00 under the old half-up rule, consistent everywhere else, are value from nothing', async () => {
    // The free-shares exploit as it used to land: 0.000005 COST at 898 filled for 0.00 (half-up),
    // with its holding and no ledger row. Every other invariant holds; only 7 sees it.
    const orderId = '01900000-0000-7000-8000-00000000c057';
    const report = await whileBroken(
      [
        sql`ALTER TABLE fills DROP CONSTRAINT fills_amount_positive`,
        sql`INSERT INTO orders (id, user_id, request_hash, ticker, side, type, quantity, status, reserved_amount, quote_price, fill_price, filled_quantity, filled_value, filled_at)
            VALUES (${orderId}, ${u.b}, decode('00', 'hex'), 'COST', 'buy', 'market', 0.000005, 'FILLED', 0.01, 898, 898, 0.000005, 0.00449, now())`,
        sql`INSERT INTO fills (order_id, price, quantity, amount, rounding) VALUES (${orderId}, 898, 0.000005, 0, 'half_up')`,
        sql`INSERT INTO holdings (user_id, ticker, quantity, reserved_quantity, avg_cost) VALUES (${u.b}, 'COST', 0.000005, 0, 898)`,
      ],
      [
        sql`DELETE FROM holdings WHERE user_id = ${u.b} AND ticker = 'COST'`,
        sql`DELETE FROM fills WHERE order_id = ${orderId}`,
        sql`DELETE FROM orders WHERE id = ${orderId}`,
        sql`ALTER TABLE fills ADD CONSTRAINT fills_amount_positive CHECK (amount > 0) NOT VALID`,
      ],
    );
    expectOnly(report, 'no_value_from_nothing', [
      { orderId, userId: u.b, ticker: 'COST', field: 'fill_amount', expected: '> 0.00', actual: '0.00' },
    ]);
  });

  it('refuses a new fill of 0.00 in the database itself', async () => {
    const err = await sql`INSERT INTO fills (order_id, price, quantity, amount) VALUES (${o.cCanceled.id}, 898, 0.000005, 0)`
      .execute(ctx.db)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '23514', constraint: 'fills_amount_positive' });
  });

  it('8: an OPEN limit a bar crossed during a session is a missed trigger; a bar while the market was closed is not', async () => {
    const missed = '01900000-0000-7000-8000-0000000c0008';
    const closedOnly = '01900000-0000-7000-8000-0000000c0009';
    const openOrder = (id: string, limit: number) =>
      sql`INSERT INTO orders (id, user_id, request_hash, ticker, side, type, time_in_force, quantity, limit_price, status, reserved_amount, created_at)
          VALUES (${id}, ${u.b}, decode('00', 'hex'), 'COST', 'buy', 'limit', 'gtc', 10, ${limit}, 'OPEN', ${limit * 10}, now() - interval '50 minutes')`;
    const bar = (minutesAgo: number, low: number) =>
      sql`INSERT INTO price_bars (ticker, bucket, open, high, low, close, tick_count)
          VALUES ('COST', date_trunc('minute', now()) - ${minutesAgo} * interval '1 minute', 101, 101, ${low}, 101, 2)`;
    const report = await whileBroken(
      [
        // A session 40 to 20 minutes ago; both orders hold their cost (invariant 2 stays clean).
        sql`INSERT INTO market_sessions (opened_at, closed_at) VALUES (now() - interval '40 minutes', now() - interval '20 minutes')`,
        openOrder(missed, 100),
        openOrder(closedOnly, 90),
        sql`UPDATE cash_balances SET available_cash = available_cash - 1900 WHERE user_id = ${u.b}`,
        bar(30, 99), // in the session: crosses the 100 limit, not the 90 one
        bar(10, 89), // after the close: would cross both, and executes nothing
      ],
      [
        sql`DELETE FROM price_bars WHERE ticker = 'COST'`,
        sql`UPDATE cash_balances SET available_cash = available_cash + 1900 WHERE user_id = ${u.b}`,
        sql`DELETE FROM orders WHERE id IN (${missed}, ${closedOnly})`,
        sql`DELETE FROM market_sessions WHERE closed_at = opened_at + interval '20 minutes'`,
      ],
    );
    expectOnly(report, 'no_missed_triggers', [
      { orderId: missed, userId: u.b, ticker: 'COST', field: 'missed_trigger', actual: 'OPEN' },
    ]);
    expect(invariant(report, 'no_missed_triggers').examples[0]!.detail).toContain('bar low 99.0000');
  });

  it('9: a user whose counter runs past the kept events, and an event past its counter', async () => {
    const report = await whileBroken(
      [
        sql`UPDATE event_counters SET last_seq = last_seq + 1 WHERE user_id = ${u.a}`,
        sql`INSERT INTO events (user_id, seq, type, data)
            SELECT user_id, last_seq + 2, 'cash.deposit', '{}'::json FROM event_counters WHERE user_id = ${u.b}`,
      ],
      [
        sql`DELETE FROM events WHERE user_id = ${u.b} AND seq = (SELECT last_seq + 2 FROM event_counters WHERE user_id = ${u.b})`,
        sql`UPDATE event_counters SET last_seq = last_seq - 1 WHERE user_id = ${u.a}`,
      ],
    );
    expectOnly(report, 'events_numbered_without_gaps', [
      { userId: u.a, field: 'event_seqs' },
      { userId: u.b, field: 'event_seqs' },
    ]);
  });

  it('10: net_contributions that drifted from the ledger, and a reset whose ledger row says another cash', async () => {
    const report = await whileBroken(
      [
        sql`UPDATE cash_balances SET net_contributions = net_contributions + 1 WHERE user_id = ${u.a}`,
        sql`INSERT INTO account_resets (user_id, ledger_id, cash_before, cash_after, orders_canceled)
            SELECT user_id, id, balance_after, balance_after + 5, 0 FROM cash_ledger
             WHERE user_id = ${u.b} AND kind = 'initial'`,
      ],
      [sql`DELETE FROM account_resets WHERE user_id = ${u.b}`, sql`UPDATE cash_balances SET net_contributions = net_contributions - 1 WHERE user_id = ${u.a}`],
    );
    expectOnly(report, 'contributions_match_ledger', [
      { userId: u.a, field: 'net_contributions' },
      { userId: u.b, field: 'reset_ledger' },
    ]);
  });

  it('11: a commission never charged on its filled order, and one charged on an order that did not fill', async () => {
    const filled = o.aBuyAapl.id;
    const canceled = o.cCanceled.id;
    const report = await whileBroken(
      [
        sql`UPDATE orders SET commission_charged = 1.00 WHERE id = ${filled}`,
        sql`INSERT INTO cash_ledger (user_id, kind, amount, balance_after, order_id)
            SELECT user_id, 'commission', -2.00, 0, id FROM orders WHERE id = ${canceled}`,
      ],
      [
        sql`DELETE FROM cash_ledger WHERE kind = 'commission'`,
        sql`UPDATE orders SET commission_charged = 0 WHERE id = ${filled}`,
      ],
    );
    const found = [...new Set(invariant(report, 'commissions_match_fills').examples.map((v) => v.orderId))].sort();
    expect(found).toEqual([filled, canceled].sort());
  });

  it('6: an order PENDING beyond the recovery period; a longer period accepts it', async () => {
    const id = o.cPendingBuy.id;
    await sql`UPDATE orders SET created_at = now() - interval '2 hours' WHERE id = ${id}`.execute(ctx.db);
    let report: AuditReport;
    let lenient: AuditReport;
    try {
      report = await runAudit(ctx.db, { pendingMaxAgeMs: FILE_PENDING_MAX_AGE_MS });
      lenient = await runAudit(ctx.db, { pendingMaxAgeMs: 3 * FILE_PENDING_MAX_AGE_MS });
    } finally {
      await sql`UPDATE orders SET created_at = now() WHERE id = ${id}`.execute(ctx.db);
    }
    expectOnly(report, 'no_stale_pending_orders', [
      { orderId: id, userId: u.c, ticker: 'AAPL', field: 'pending_age_ms', expected: `<= ${FILE_PENDING_MAX_AGE_MS}` },
    ]);
    expect(Number(invariant(report, 'no_stale_pending_orders').examples[0]!.actual)).toBeGreaterThanOrEqual(2 * 3_600_000);
    expect(lenient.ok).toBe(true);
  });
});

describe('papertrade audit (CLI)', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));

  function cli(args: string[], database = ctx.dbName): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = {
      ...process.env,
      PAPERTRADE_CLI: '1',
      DATABASE_URL: urlFor(database),
      REDIS_URL: redisUrl(),
      PAPERTRADE_REDIS_PREFIX: `test:audit-cli:${ctx.dbName}:`,
      PAPERTRADE_ADMIN_TOKEN: ADMIN_TOKEN,
      LOG_LEVEL: 'silent',
    };
    return new Promise((resolve) => {
      execFile('npx', ['tsx', 'src/cli/main.ts', 'audit', ...args], { cwd: root, env, timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('exits 0 on a clean database and prints a summary', { timeout: 90_000 }, async () => {
    const { code, stdout } = await cli([]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/3 users, 10 orders, 6 fills/);
    expect(stdout).toMatch(/^OK: 12 invariants hold/m);
  });

  it('exits 1 with the violations as JSON when an invariant is broken', { timeout: 90_000 }, async () => {
    // Both pending orders are older than 0 ms: invariant 6 fails without touching the data.
    const { code, stdout } = await cli(['--json', '--pending-max-age-ms', '0']);
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({ ok: false, pending_max_age_ms: 0, counts: { users: 3, orders: 10, fills: 6 } });
    const stale = report.invariants.find((i: { name: string }) => i.name === 'no_stale_pending_orders');
    expect(stale.violations).toBe(2);
    expect(stale.examples.map((v: { order_id: string }) => v.order_id).sort()).toEqual(
      [o.cPendingBuy.id, o.aPendingSell.id].sort(),
    );
  });

  it('prints each violation with its ids in text mode, and exits 3 when it cannot run', { timeout: 90_000 }, async () => {
    const broken = await cli(['--pending-max-age-ms', '0', '--limit', '1']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/FAIL 6 +no_stale_pending_orders +2 violation/);
    expect(broken.stdout).toMatch(/user_id=\S+ ticker=AAPL order_id=\S+ pending_age_ms: expected <= 0, actual \d+/);
    expect(broken.stdout).toMatch(/… and 1 more/);
    expect(broken.stdout).toMatch(/^FAILED: 2 violation\(s\) of invariant\(s\) 6/m);

    const missing = await cli([], 'pt_no_such_database_for_audit');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/papertrade audit: could not run/);
  });
});

describe('GET /admin/audit', () => {
  it('answers the report to the admin (200 even when it fails), 403 to a user key, 401 without credentials', async () => {
    const api = await startTestServer(ctx);
    try {
      expect(api.routes).toContainEqual({ method: 'GET', url: '/admin/audit', auth: 'admin' });
      // The default age limit is a minute; this file's PENDING orders may be older than that.
      expect((await api.request('GET', '/admin/audit')).body.pending_max_age_ms).toBe(60000);
      const ok = await api.request('GET', `/admin/audit?pending_max_age_ms=${FILE_PENDING_MAX_AGE_MS}`);
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ ok: true, counts: { users: 3, orders: 10, fills: 6 }, pending_max_age_ms: FILE_PENDING_MAX_AGE_MS });
      expect(ok.body.invariants).toHaveLength(12);

      const failing = await api.request('GET', '/admin/audit?pending_max_age_ms=0&limit=1');
      expect(failing.status).toBe(200);
      expect(failing.body.ok).toBe(false);
      const stale = failing.body.invariants.find((i: { name: string }) => i.name === 'no_stale_pending_orders');
      expect(stale.violations).toBe(2);
      expect(stale.examples).toHaveLength(1);
      expect(stale.examples[0]).toMatchObject({ field: 'pending_age_ms', expected: '<= 0', ledger_id: null });

      const user = await newUser(ctx, { cash: '0' });
      const forbidden = await api.request('GET', '/admin/audit', { token: user.apiKey });
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.error.code).toBe('FORBIDDEN');
      expect((await api.request('GET', '/admin/audit', { token: null })).status).toBe(401);
      expect((await api.request('GET', '/admin/audit?limit=abc')).status).toBe(400);
      expect((await api.request('GET', '/admin/audit?limit=0')).body.error.code).toBe('VALIDATION_FAILED');
    } finally {
      await api.server.close();
    }
  });
});
