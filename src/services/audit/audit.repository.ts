/**
 * Named queries of the audit: one set-based statement per invariant of docs/DESIGN.md. Each scans
 * its tables once (aggregations joined with FULL OUTER JOIN, so a row missing on either side is
 * seen), keeps only violating rows, and returns at most `limit` of them together with the count
 * of all (`count(*) OVER ()`). Every comparison is done by PostgreSQL on NUMERIC values;
 * values leave as text, so no amount ever becomes a JS number.
 *
 * A violation row is unpivoted per field (`CROSS JOIN LATERAL (VALUES …)`): one row per wrong
 * value, with what the other tables say it should be (`expected`) and what is stored (`actual`).
 * A NULL `expected` or `actual` means "no row" (no holdings row, no cash_balances row).
 */
import { sql, type RawBuilder } from 'kysely';
import type { Executor } from '../../infra/postgres.js';

/** One wrong value, as returned by every audit query. */
export interface ViolationRow {
  user_id: string | null;
  ticker: string | null;
  order_id: string | null;
  ledger_id: string | null;
  field: string;
  expected: string | null;
  actual: string | null;
  detail: string | null;
  /** How many violating rows the query found in all (the same on every row). */
  total: string;
}

export interface CountsRow {
  /** The transaction's now(): when the snapshot was taken. */
  snapshot_at: Date;
  users: string;
  orders: string;
  fills: string;
}

/** Shared tail: the count of all violations, a stable order, at most `limit` rows. */
async function violations(db: Executor, body: RawBuilder<unknown>, limit: number): Promise<ViolationRow[]> {
  const { rows } = await sql<ViolationRow>`
    WITH v (user_id, ticker, order_id, ledger_id, field, expected, actual, detail) AS (${body})
    SELECT user_id::text, ticker, order_id::text, ledger_id::text, field, expected, actual, detail,
           count(*) OVER ()::text AS total
      FROM v
     ORDER BY user_id, ticker, order_id, ledger_id, field
     LIMIT ${limit}`.execute(db);
  return rows;
}

/** 1. `0 <= available_cash <= cash_balance` for every user (and every user has a cash account). */
export function cashWithinBounds(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      SELECT u.id, NULL::text, NULL::uuid, NULL::bigint,
             CASE WHEN cb.user_id IS NULL THEN 'cash_balances' ELSE 'available_cash' END,
             CASE WHEN cb.user_id IS NULL THEN 'a cash_balances row'
                  WHEN cb.available_cash < 0 THEN '>= 0'
                  ELSE '<= ' || cb.cash_balance::text END,
             cb.available_cash::text,
             CASE WHEN cb.user_id IS NULL THEN 'user has no cash account'
                  ELSE 'cash_balance ' || cb.cash_balance::text END
        FROM users u
        LEFT JOIN cash_balances cb ON cb.user_id = u.id
       WHERE cb.user_id IS NULL OR NOT (0 <= cb.available_cash AND cb.available_cash <= cb.cash_balance)`,
    limit,
  );
}

/**
 * 2. `cash_balance - available_cash` = sum of `reserved_amount` over the user's live (PENDING or
 * OPEN) orders: a buy's cost and commission, a sell's commission (0 outside a class).
 */
export function heldCashMatchesPendingBuys(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      SELECT coalesce(cb.user_id, h.user_id), NULL::text, NULL::uuid, NULL::bigint,
             'held_cash',
             coalesce(h.held, 0)::numeric(20, 2)::text,
             (cb.cash_balance - cb.available_cash)::text,
             CASE WHEN cb.user_id IS NULL THEN 'live orders holding cash but no cash_balances row'
                  ELSE coalesce(h.holding_orders, 0)::text || ' live order(s) holding cash' END
        FROM cash_balances cb
        FULL JOIN (SELECT user_id, sum(reserved_amount) AS held, count(*) AS holding_orders
                     FROM orders
                    WHERE status IN ('PENDING', 'OPEN') AND reserved_amount > 0
                    GROUP BY user_id) h ON h.user_id = cb.user_id
       WHERE (cb.cash_balance - cb.available_cash) IS DISTINCT FROM coalesce(h.held, 0)`,
    limit,
  );
}

/** 3. `cash_balance` = sum of the user's `cash_ledger` amounts. */
export function cashBalanceMatchesLedger(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      SELECT coalesce(cb.user_id, l.user_id), NULL::text, NULL::uuid, NULL::bigint,
             'cash_balance',
             coalesce(l.total, 0)::numeric(20, 2)::text,
             cb.cash_balance::text,
             CASE WHEN cb.user_id IS NULL THEN 'ledger rows but no cash_balances row'
                  ELSE coalesce(l.entries, 0)::text || ' ledger row(s)' END
        FROM cash_balances cb
        FULL JOIN (SELECT user_id, sum(amount) AS total, count(*) AS entries
                     FROM cash_ledger
                    GROUP BY user_id) l ON l.user_id = cb.user_id
       WHERE cb.cash_balance IS DISTINCT FROM coalesce(l.total, 0)`,
    limit,
  );
}

/** 3b. Every ledger row's `balance_after` is the running sum of the user's amounts up to it. */
export function ledgerRunningBalance(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      SELECT r.user_id, NULL::text, r.order_id, r.id,
             'balance_after', r.running::text, r.balance_after::text, r.kind || ' ' || r.amount::text
        FROM (SELECT id, user_id, order_id, kind, amount, balance_after,
                     sum(amount) OVER (PARTITION BY user_id ORDER BY id ROWS UNBOUNDED PRECEDING) AS running
                FROM cash_ledger) r
       WHERE r.running <> r.balance_after`,
    limit,
  );
}

/**
 * 4. `holdings.quantity` = shares bought − sold from fills − removed by account resets (net 0:
 * no row), and
 * `reserved_quantity` = sum of the open quantity (quantity − filled_quantity) over the user's live
 * (PENDING or OPEN) sells of that ticker.
 */
export function holdingsMatchFills(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      WITH moved (user_id, ticker, net) AS (
        SELECT o.user_id, o.ticker,
               sum(CASE WHEN o.side = 'buy' THEN f.quantity ELSE -f.quantity END) AS net
          FROM fills f
          JOIN orders o ON o.id = f.order_id
         GROUP BY o.user_id, o.ticker
        UNION ALL
        -- A reset removes each holding as it stands; reset_positions records what it removed.
        SELECT user_id, ticker, -sum(quantity) FROM reset_positions GROUP BY user_id, ticker),
      traded AS (
        SELECT user_id, ticker, sum(net) AS net FROM moved GROUP BY user_id, ticker),
      reserved AS (
        SELECT user_id, ticker, sum(quantity - filled_quantity) AS reserved
          FROM orders
         WHERE status IN ('PENDING', 'OPEN') AND side = 'sell'
         GROUP BY user_id, ticker),
      expected AS (
        SELECT coalesce(t.user_id, r.user_id) AS user_id, coalesce(t.ticker, r.ticker) AS ticker,
               coalesce(t.net, 0) AS net, coalesce(r.reserved, 0) AS reserved
          FROM traded t
          FULL JOIN reserved r ON r.user_id = t.user_id AND r.ticker = t.ticker),
      j AS (
        SELECT coalesce(h.user_id, e.user_id) AS user_id, coalesce(h.ticker, e.ticker) AS ticker,
               nullif(coalesce(e.net, 0), 0) AS want_qty, h.quantity AS qty,
               coalesce(e.reserved, 0) AS want_reserved, h.reserved_quantity AS reserved
          FROM holdings h
          FULL JOIN expected e ON e.user_id = h.user_id AND e.ticker = h.ticker
         WHERE h.quantity IS DISTINCT FROM nullif(coalesce(e.net, 0), 0)
            OR coalesce(h.reserved_quantity, 0) <> coalesce(e.reserved, 0))
      SELECT j.user_id, j.ticker, NULL::uuid, NULL::bigint, v.field, v.expected, v.actual, v.detail
        FROM j
       CROSS JOIN LATERAL (VALUES
         ('quantity', j.want_qty::text, j.qty::text, j.qty IS DISTINCT FROM j.want_qty,
          CASE WHEN j.want_qty < 0 THEN 'fills and resets removed more shares than fills bought'
               WHEN j.qty IS NULL THEN 'no holdings row for shares bought'
               WHEN j.want_qty IS NULL THEN 'holdings row for a position that fills net to zero' END),
         ('reserved_quantity', j.want_reserved::text, j.reserved::text,
          coalesce(j.reserved, 0) <> j.want_reserved, 'sum of the open quantity over live sells')
       ) AS v (field, expected, actual, bad, detail)
       WHERE v.bad`,
    limit,
  );
}

/**
 * 5. An order's fills add up to what the order says it filled: the sum of their quantities is
 * its filled_quantity (the whole quantity when FILLED, none for an order that never executed),
 * the sum of quantity × price its filled_value, and its fill_price is their average (half up to
 * 4 decimals). Each fill's amount follows the fill's own `rounding` rule: 'against_account'
 * (every fill since 0.2) is the order's value through this fill brought to the cent against the
 * account (a buy up, a sell down) less the same of its value before it — for an order's only or
 * first fill, quantity × price rounded — so an order's parts add up to its value rounded once;
 * 'half_up' (older fills, one per order) rounds quantity × price half up.
 */
export function fillsMatchOrders(db: Executor, limit: number): Promise<ViolationRow[]> {
  const cents = (v: RawBuilder<unknown>) => sql`(CASE WHEN x.side = 'buy' THEN ceil(${v} * 100) ELSE floor(${v} * 100) END) / 100`;
  const wantAmount = sql`(CASE WHEN x.rounding = 'half_up' THEN round(x.quantity * x.price, 2)
                               ELSE ${cents(sql`x.cum`)} - ${cents(sql`(x.cum - x.quantity * x.price)`)} END)::numeric(20, 2)`;
  return violations(
    db,
    sql`
      WITH f AS (
        SELECT order_id, sum(quantity) AS q, sum(quantity * price) AS v FROM fills GROUP BY order_id),
      j AS (
        SELECT o.id AS order_id, o.user_id, o.ticker, o.status, o.filled_quantity, o.filled_value, o.fill_price,
               coalesce(f.q, 0) AS q, coalesce(f.v, 0) AS v,
               CASE WHEN f.q > 0 THEN round(f.v / f.q, 4) END AS want_price
          FROM orders o
          LEFT JOIN f ON f.order_id = o.id
         WHERE o.filled_quantity <> coalesce(f.q, 0) OR o.filled_value <> coalesce(f.v, 0)
            OR o.fill_price IS DISTINCT FROM CASE WHEN f.q > 0 THEN round(f.v / f.q, 4) END),
      x AS (
        SELECT fl.id, fl.order_id, fl.quantity, fl.price, fl.amount, fl.rounding, o.side, o.user_id, o.ticker,
               sum(fl.quantity * fl.price) OVER (PARTITION BY fl.order_id ORDER BY fl.id) AS cum
          FROM fills fl JOIN orders o ON o.id = fl.order_id)
      SELECT j.user_id, j.ticker, j.order_id, NULL::bigint, v.field, v.expected, v.actual, v.detail
        FROM j
       CROSS JOIN LATERAL (VALUES
         ('filled_quantity', j.q::text, j.filled_quantity::text, j.filled_quantity <> j.q,
          'order ' || j.status || ': orders.filled_quantity vs the sum of its fills'),
         ('filled_value', j.v::text, j.filled_value::text, j.filled_value <> j.v,
          'orders.filled_value vs the sum of quantity x price over its fills'),
         ('fill_price', j.want_price::text, j.fill_price::text, j.fill_price IS DISTINCT FROM j.want_price,
          'orders.fill_price vs the average price of its fills')
       ) AS v (field, expected, actual, bad, detail)
       WHERE v.bad
      UNION ALL
      SELECT x.user_id, x.ticker, x.order_id, NULL::bigint, 'fill_amount', ${wantAmount}::text, x.amount::text,
             'fill ' || x.id::text || ': ' ||
             CASE WHEN x.rounding = 'half_up' THEN 'quantity x price rounded half up'
                  WHEN x.side = 'buy' THEN 'the order''s value through this fill rounded up (a buy), less the same before it'
                  ELSE 'the order''s value through this fill rounded down (a sell), less the same before it' END
        FROM x
       WHERE x.amount <> ${wantAmount}`,
    limit,
  );
}

/**
 * 7. No value from nothing: a fill that moved shares moved cash (amount > 0). The database has
 * refused new zero-amount fills since 0.2 (fills_amount_positive); this finds any older one, or
 * one planted by hand. Such fills are how shares were once bought for 0.00 and sold for cash.
 */
export function noValueFromNothing(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      SELECT o.user_id, o.ticker, f.order_id, NULL::bigint,
             'fill_amount', '> 0.00', f.amount::text,
             'fill ' || f.id::text || ' moved ' || f.quantity::text || ' shares at ' || f.price::text || ' for ' || f.amount::text
        FROM fills f
        LEFT JOIN orders o ON o.id = f.order_id
       WHERE f.amount <= 0 AND f.quantity > 0`,
    limit,
  );
}

/**
 * 8. No missed trigger: an OPEN limit, stop or stop_limit order (day or gtc) whose condition a
 * stored minute bar met after the order was placed should have executed. Only bars that began
 * after the order's minute count (a bar of the placement minute may hold ticks from before it),
 * only bars older than `settleMs` (ticks still on their way are not missed yet), and only bars
 * wholly inside a session the engine opened (market_sessions: the market executes nothing while
 * it is closed, whatever the price does). Trailing
 * stops are not checked here: their level depends on the path of the price, not one bar.
 */
export function noMissedTriggers(db: Executor, settleMs: number, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      SELECT o.user_id, o.ticker, o.id, NULL::bigint,
             'missed_trigger',
             'executed by the bar at ' || to_char(b.bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'),
             'OPEN',
             o.type || ' ' || o.side || ' limit ' || coalesce(o.limit_price::text, '-') || ' stop ' || coalesce(o.stop_price::text, '-') ||
               '; bar low ' || b.low::text || ' high ' || b.high::text
        FROM orders o
        JOIN LATERAL (
          SELECT bucket, low, high FROM price_bars b
           WHERE b.ticker = o.ticker
             AND b.bucket >= date_trunc('minute', coalesce(o.triggered_at, o.created_at)) + interval '1 minute'
             AND b.bucket < now() - ${settleMs}::double precision * interval '1 millisecond'
             -- Only minutes wholly inside a session the engine opened: a price set while the
             -- market is closed executes nothing.
             AND EXISTS (SELECT 1 FROM market_sessions s
                          WHERE b.bucket >= date_trunc('minute', s.opened_at) + interval '1 minute'
                            AND (s.closed_at IS NULL OR b.bucket + interval '1 minute' <= s.closed_at))
             AND CASE
                   WHEN o.type = 'limit' OR (o.type = 'stop_limit' AND o.triggered_at IS NOT NULL) THEN
                     CASE WHEN o.side = 'buy' THEN b.low <= o.limit_price ELSE b.high >= o.limit_price END
                   WHEN o.type IN ('stop', 'stop_limit') THEN
                     CASE WHEN o.side = 'buy' THEN b.high >= o.stop_price ELSE b.low <= o.stop_price END
                   ELSE false END
           ORDER BY bucket LIMIT 1) b ON true
       WHERE o.status = 'OPEN' AND o.time_in_force IN ('day', 'gtc') AND o.type IN ('limit', 'stop', 'stop_limit')
         -- Bars record last prices: only the ideal model executes on them. Under spread and
         -- realistic a limit waits for the touch, which bars do not keep.
         AND o.fill_model = 'ideal' AND o.filled_quantity = 0`,
    limit,
  );
}

/**
 * 6. No order stays PENDING longer than `maxAgeMs` (the recovery period: the reconciler
 * re-publishes a pending order after a few seconds, the engine rejects one without a price
 * after ENGINE_PRICE_WAIT_MS_MAX). Ages are measured from the snapshot's `now()`.
 */
export function stalePendingOrders(db: Executor, maxAgeMs: number, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      SELECT user_id, ticker, id, NULL::bigint,
             'pending_age_ms',
             '<= ' || ${String(maxAgeMs)},
             floor(extract(epoch FROM now() - created_at) * 1000)::bigint::text,
             side || ' PENDING since ' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        FROM orders
       WHERE status = 'PENDING'
         AND created_at < now() - ${maxAgeMs}::double precision * interval '1 millisecond'`,
    limit,
  );
}

/**
 * 9. Events are numbered per user without a gap: the kept events of a user run from their
 * oldest kept seq up to the user's counter, one by one (retention removes a prefix only), and
 * no event belongs to a user without a counter.
 */
export function eventsNumberedWithoutGaps(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      SELECT coalesce(c.user_id, e.user_id), NULL::text, NULL::uuid, NULL::bigint,
             'event_seqs',
             coalesce(e.lo::text, '1') || '..' || coalesce(c.last_seq::text, '(no counter)') || ' without a gap',
             coalesce(e.n::text || ' events, seq ' || e.lo::text || '..' || e.hi::text, 'no events'),
             'events are numbered per user 1, 2, 3, ... up to the user''s counter'
        FROM event_counters c
        FULL JOIN (SELECT user_id, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM events GROUP BY user_id) e
          ON e.user_id = c.user_id
       WHERE c.user_id IS NULL OR (e.user_id IS NOT NULL AND (e.hi <> c.last_seq OR e.n <> e.hi - e.lo + 1))`,
    limit,
  );
}

/**
 * 10. What the user put in: `net_contributions` = the cash set by the user's last reset (its
 * ledger row's balance_after; 0 when never reset) + the initial, deposit and withdrawal amounts
 * after it (ledger ids grow with the user's balance lock, so "after" is by id). And every reset
 * matches its ledger row: a 'reset' row whose balance_after is the reset's cash_after.
 */
export function contributionsMatchLedger(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      WITH last_reset AS (
        SELECT DISTINCT ON (user_id) user_id, id, balance_after
          FROM cash_ledger WHERE kind = 'reset' ORDER BY user_id, id DESC),
      since AS (
        SELECT l.user_id, sum(l.amount) AS total
          FROM cash_ledger l LEFT JOIN last_reset r ON r.user_id = l.user_id
         WHERE l.kind IN ('initial', 'deposit', 'withdrawal') AND l.id > coalesce(r.id, 0)
         GROUP BY l.user_id),
      want AS (
        SELECT cb.user_id, cb.net_contributions, coalesce(r.balance_after, 0) + coalesce(s.total, 0) AS expected
          FROM cash_balances cb
          LEFT JOIN last_reset r ON r.user_id = cb.user_id
          LEFT JOIN since s ON s.user_id = cb.user_id)
      SELECT user_id, NULL::text, NULL::uuid, NULL::bigint, 'net_contributions', expected::numeric(20, 2)::text,
             net_contributions::text, 'initial + deposits - withdrawals since the last reset, from its cash'
        FROM want WHERE net_contributions <> expected
      UNION ALL
      SELECT ar.user_id, NULL::text, NULL::uuid, ar.ledger_id, 'reset_ledger',
             'a reset row with balance_after ' || ar.cash_after::text,
             coalesce(l.kind || ' row with balance_after ' || l.balance_after::text, 'no ledger row'),
             'account reset ' || ar.id::text
        FROM account_resets ar LEFT JOIN cash_ledger l ON l.id = ar.ledger_id
       WHERE l.id IS NULL OR l.kind <> 'reset' OR l.balance_after <> ar.cash_after OR l.user_id <> ar.user_id`,
    limit,
  );
}

/**
 * 11. Commissions are charged by fills, each as a 'commission' ledger row of its own: an order's
 * commission rows add up to minus its commission_charged, and so do its fills' commissions; an
 * order nothing was charged for has neither.
 */
export function commissionsMatchFills(db: Executor, limit: number): Promise<ViolationRow[]> {
  return violations(
    db,
    sql`
      WITH charged AS (
        SELECT order_id, count(*) AS n, -sum(amount) AS total FROM cash_ledger WHERE kind = 'commission' GROUP BY order_id),
      billed AS (
        SELECT order_id, sum(commission) AS total FROM fills WHERE commission > 0 GROUP BY order_id),
      o AS (
        SELECT id, user_id, ticker, status, commission_charged FROM orders WHERE commission_charged > 0),
      j AS (
        SELECT coalesce(o.id, c.order_id, b.order_id) AS order_id, o.user_id, o.ticker, o.status,
               coalesce(o.commission_charged, 0) AS want, coalesce(c.total, 0) AS ledger, coalesce(c.n, 0) AS n,
               coalesce(b.total, 0) AS fills
          FROM o
          FULL JOIN charged c ON c.order_id = o.id
          FULL JOIN billed b ON b.order_id = coalesce(o.id, c.order_id))
      SELECT coalesce(j.user_id, x.user_id), coalesce(j.ticker, x.ticker), j.order_id, NULL::bigint, v.field, v.expected, v.actual, v.detail
        FROM j
        LEFT JOIN orders x ON x.id = j.order_id
       CROSS JOIN LATERAL (VALUES
         ('commission_ledger', j.want::text, j.ledger::text || ' in ' || j.n::text || ' row(s)', j.ledger <> j.want,
          'order ' || coalesce(x.status, '?') || ': its commission rows vs orders.commission_charged'),
         ('commission_fills', j.want::text, j.fills::text, j.fills <> j.want,
          'the sum of its fills'' commissions vs orders.commission_charged')
       ) AS v (field, expected, actual, bad, detail)
       WHERE v.bad`,
    limit,
  );
}

export async function counts(db: Executor): Promise<CountsRow> {
  const { rows } = await sql<CountsRow>`
    SELECT now() AS snapshot_at,
           (SELECT count(*) FROM users)::text AS users,
           (SELECT count(*) FROM orders)::text AS orders,
           (SELECT count(*) FROM fills)::text AS fills`.execute(db);
  return rows[0]!;
}

/**
 * Gives the audit transaction (already REPEATABLE READ, READ ONLY) a statement timeout fit for
 * a whole-database scan and the memory to aggregate in RAM, for this transaction only.
 */
export async function tuneAuditTransaction(db: Executor, statementTimeoutMs: number, workMemMb: number): Promise<void> {
  // SET cannot take bind parameters; set_config(…, true) is the parameterised SET LOCAL.
  // JIT compilation costs more than it saves on these scans (hundreds of ms of optimisation
  // for a few cheap expressions); it is turned off for this transaction.
  await sql`SELECT set_config('statement_timeout', ${String(statementTimeoutMs)}, true),
                   set_config('work_mem', ${`${workMemMb}MB`}, true),
                   set_config('jit', 'off', true)`.execute(db);
}
