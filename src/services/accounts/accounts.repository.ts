/**
 * Named queries over `cash_balances` and `cash_ledger`. Every statement that moves cash writes
 * its ledger row in the same statement (a data-modifying CTE), so the balance and its ledger
 * cannot drift apart and a movement costs one round trip. Conditional updates
 * (`WHERE available_cash >= $amount`) make each check-and-move atomic: no read-then-write race.
 */
import { sql, type RawBuilder } from 'kysely';
import { isoMillisUtc, runSteps, type Step } from '../../infra/statements.js';
import type { Executor } from '../../infra/postgres.js';
import type { LedgerKind } from '../../infra/schema.js';

export interface BalanceRow {
  user_id: string;
  cash_balance: string;
  available_cash: string;
}

export interface LedgerRow {
  id: string;
  user_id: string;
  kind: LedgerKind;
  amount: string;
  balance_after: string;
  order_id: string | null;
  created_at: Date;
}

export async function insertBalance(db: Executor, userId: string, initialCash: string): Promise<void> {
  await sql`
    WITH b AS (
      INSERT INTO cash_balances (user_id, cash_balance, available_cash, net_contributions)
      VALUES (${userId}, ${initialCash}, ${initialCash}, ${initialCash})
      RETURNING cash_balance)
    INSERT INTO cash_ledger (user_id, kind, amount, balance_after)
    SELECT ${userId}, 'initial', b.cash_balance, b.cash_balance FROM b`.execute(db);
}

/**
 * Opens the cash accounts of many new users, each with the same initial cash, in one statement:
 * the balance rows (what they put in: the initial cash) and their 'initial' ledger rows.
 */
export async function openAccountsMany(db: Executor, userIds: readonly string[], initialCash: string): Promise<void> {
  if (userIds.length === 0) return;
  await sql`
    WITH b AS (
      INSERT INTO cash_balances (user_id, cash_balance, available_cash, net_contributions)
      SELECT u, ${initialCash}::numeric, ${initialCash}::numeric, ${initialCash}::numeric FROM unnest(${userIds}::uuid[]) AS u
      RETURNING user_id, cash_balance)
    INSERT INTO cash_ledger (user_id, kind, amount, balance_after)
    SELECT b.user_id, 'initial', b.cash_balance, b.cash_balance FROM b ORDER BY b.user_id`.execute(db);
}

export interface ResetBalanceRow {
  cash_before: string;
  ledger_id: string;
}

/**
 * Sets a user's cash for an account reset, in one statement: the balance (all of it available:
 * the caller has ended every order that held cash), what the user put in (net_contributions
 * restarts at the cash set) and the 'reset' ledger row of the difference, with the balance after.
 */
export async function resetBalance(db: Executor, userId: string, cash: string): Promise<ResetBalanceRow | undefined> {
  const { rows } = await sql<ResetBalanceRow>`
    WITH before AS (
      SELECT user_id, cash_balance FROM cash_balances WHERE user_id = ${userId} FOR UPDATE),
    updated AS (
      UPDATE cash_balances cb
         SET cash_balance = ${cash}::numeric, available_cash = ${cash}::numeric, net_contributions = ${cash}::numeric, updated_at = now()
        FROM before b WHERE cb.user_id = b.user_id
      RETURNING cb.user_id),
    ledger AS (
      INSERT INTO cash_ledger (user_id, kind, amount, balance_after)
      SELECT b.user_id, 'reset', ${cash}::numeric - b.cash_balance, ${cash}::numeric FROM before b JOIN updated u ON u.user_id = b.user_id
      RETURNING id)
    SELECT b.cash_balance::text AS cash_before, l.id::text AS ledger_id FROM before b, ledger l`.execute(db);
  return rows[0];
}

/** The user's first 'initial' ledger amount: the cash the account was opened with. */
export async function initialCash(db: Executor, userId: string): Promise<string | undefined> {
  const { rows } = await sql<{ amount: string }>`
    SELECT amount::text AS amount FROM cash_ledger WHERE user_id = ${userId} AND kind = 'initial' ORDER BY id LIMIT 1`.execute(db);
  return rows[0]?.amount;
}

export async function getBalance(db: Executor, userId: string): Promise<BalanceRow | undefined> {
  return db
    .selectFrom('cash_balances')
    .select(['user_id', 'cash_balance', 'available_cash'])
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

export async function getBalancesMany(db: Executor, userIds: readonly string[]): Promise<BalanceRow[]> {
  if (userIds.length === 0) return [];
  return db.selectFrom('cash_balances').select(['user_id', 'cash_balance', 'available_cash']).where('user_id', 'in', [...userIds]).execute();
}

/**
 * Deposits and withdrawals are what the user put in or took out (with the initial cash, and
 * restarted by a reset): net_contributions follows them, so portfolio history can tell a
 * deposit from a gain. Trades and commissions are not contributions.
 */
function isContribution(kind: LedgerKind): boolean {
  return kind === 'deposit' || kind === 'withdrawal';
}

export interface CashMovement {
  userId: string;
  kind: LedgerKind;
  /** Signed change of cash_balance; also the ledger amount (no ledger row when it is zero). */
  balanceDelta: string;
  /** Signed change of available_cash. */
  availableDelta: string;
  orderId: string | null;
  /** A client's Idempotency-Key and the hash of its request, kept on the ledger row. */
  idempotency?: { key: string; requestHash: Buffer };
}

/**
 * Steps that move cash and write the ledger row with the balance after, in one statement. The
 * move applies only while available cash stays non-negative; `<name>_cash`
 * returns the new balance row.
 */
export function cashMovementSteps(name: string, m: CashMovement): Step[] {
  const cash = `${name}_cash`;
  return [
    {
      name: cash,
      statement: sql`
        UPDATE cash_balances
           SET cash_balance = cash_balance + ${m.balanceDelta}::numeric,
               available_cash = available_cash + ${m.availableDelta}::numeric,
               net_contributions = net_contributions + ${isContribution(m.kind) ? m.balanceDelta : '0'}::numeric,
               updated_at = now()
         WHERE user_id = ${m.userId} AND available_cash + ${m.availableDelta}::numeric >= 0
        RETURNING user_id, cash_balance::text AS cash_balance, available_cash::text AS available_cash`,
    },
    {
      name: `${name}_ledger`,
      statement: sql`
        INSERT INTO cash_ledger (user_id, kind, amount, balance_after, order_id, idempotency_key, request_hash)
        SELECT c.user_id, ${m.kind}, ${m.balanceDelta}::numeric, c.cash_balance::numeric, ${m.orderId}::uuid,
               ${m.idempotency?.key ?? null}::text, ${m.idempotency?.requestHash ?? null}::bytea
          FROM ${sql.id(cash)} c
         WHERE ${m.balanceDelta}::numeric <> 0
        RETURNING id, user_id, kind, amount, balance_after, order_id, created_at`,
    },
  ];
}

/**
 * Steps settling a batch of orders (many users, several orders per user) in one statement:
 * only the movements whose `orderId` appears in `appliedStep` (a step returning `id`) count.
 * `<name>_cash` updates each user's balance once with the sum of the user's movements (the
 * move applies only while available cash stays non-negative) and returns the new balance;
 * `<name>_ledger` writes one row per movement in the order given, each with the running
 * balance after it — the final balance minus the later movements of the same user — and takes
 * its ids in that order, so the ledger reads exactly as if the orders had settled one by one.
 */
export function cashMovementManySteps(name: string, moves: readonly CashMovement[], appliedStep: string): Step[] {
  const m = `${name}_moves`;
  const cash = `${name}_cash`;
  return [
    {
      name: m,
      statement: sql`
        SELECT x.*
          FROM unnest(${moves.map((v) => v.userId)}::uuid[], ${moves.map((v) => v.kind)}::text[],
                      ${moves.map((v) => v.balanceDelta)}::numeric[], ${moves.map((v) => v.availableDelta)}::numeric[],
                      ${moves.map((v) => v.orderId)}::uuid[])
               WITH ORDINALITY AS x (user_id, kind, balance_delta, available_delta, order_id, seq)
         WHERE x.order_id IN (SELECT id FROM ${sql.id(appliedStep)})`,
    },
    lockBalancesStep(`${name}_lock`, sql`SELECT user_id FROM ${sql.id(m)}`),
    {
      name: cash,
      statement: sql`
        UPDATE cash_balances cb
           SET cash_balance = cb.cash_balance + t.balance_delta,
               available_cash = cb.available_cash + t.available_delta,
               updated_at = now()
          FROM (SELECT user_id, sum(balance_delta) AS balance_delta, sum(available_delta) AS available_delta
                  FROM ${sql.id(m)} GROUP BY user_id) t
         WHERE cb.user_id = t.user_id AND cb.available_cash + t.available_delta >= 0
           AND cb.user_id IN (SELECT user_id FROM ${sql.id(`${name}_lock`)})
        RETURNING cb.user_id, cb.cash_balance`,
    },
    {
      name: `${name}_ledger`,
      statement: sql`
        INSERT INTO cash_ledger (user_id, kind, amount, balance_after, order_id)
        SELECT v.user_id, v.kind, v.balance_delta,
               c.cash_balance - coalesce(sum(v.balance_delta) OVER (
                 PARTITION BY v.user_id ORDER BY v.seq DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0),
               v.order_id
          FROM ${sql.id(m)} v
          JOIN ${sql.id(cash)} c ON c.user_id = v.user_id
         WHERE v.balance_delta <> 0
         ORDER BY v.seq
        RETURNING id`,
    },
  ];
}

/**
 * Steps appending the events a query yields (events.repository's appendEventsSteps, passed in
 * by the service): the step `name` returns the appended events.
 */
export type AppendEventsSteps = (name: string, source: RawBuilder<unknown>) => Step[];

/**
 * The activity view of the ledger row `alias` (GET /users/{id}/activities), as a json
 * expression: NUMERIC text has the column's scale (formatCash), times are UTC milliseconds.
 */
function activityViewSql(alias: string): RawBuilder<unknown> {
  const a = (c: string) => sql`${sql.id(alias)}.${sql.id(c)}`;
  return sql`json_build_object('id', ${a('id')}::text, 'kind', ${a('kind')}, 'amount', ${a('amount')}::text,
    'balance_after', ${a('balance_after')}::text, 'order_id', ${a('order_id')},
    'created_at', ${isoMillisUtc(a('created_at'))})`;
}

export interface MovedRow extends BalanceRow {
  event_seq: string;
  event_at: Date;
  event_data: string;
}

/**
 * A deposit or withdrawal, with its event (type `eventType`, data the activity) appended in the
 * same statement; undefined when available cash would go negative.
 */
export async function moveCash(db: Executor, m: CashMovement, eventType: string, append: AppendEventsSteps): Promise<MovedRow | undefined> {
  const rows = await runSteps<MovedRow>(
    db,
    [
      ...cashMovementSteps('m', m),
      ...append('m_events', sql`SELECT l.user_id, ${eventType}::text AS type, ${activityViewSql('l')} AS data, 1 AS ord FROM m_ledger l`),
    ],
    sql`SELECT c.*, e.seq AS event_seq, e.at AS event_at, e.data AS event_data FROM m_cash c JOIN m_events e ON e.user_id = c.user_id`,
  );
  return rows[0];
}

/**
 * The hold rule for many buys at once, as steps over `inputStep` (a step with columns id,
 * user_id, side, reserved_amount; at most one buy per user, so each balance row is held once):
 * every buy whose user has the available cash gets its hold; step `name` returns the ids held.
 */
export function reserveFundsManySteps(name: string, inputStep: string): Step[] {
  const lock = `${name}_lock`;
  return [
    lockBalancesStep(lock, sql`SELECT user_id FROM ${sql.id(inputStep)} WHERE side = 'buy'`),
    {
      name,
      statement: sql`
        UPDATE cash_balances cb
           SET available_cash = cb.available_cash - x.reserved_amount, updated_at = now()
          FROM ${sql.id(inputStep)} x
         WHERE x.side = 'buy' AND cb.user_id = x.user_id AND cb.available_cash >= x.reserved_amount
           AND cb.user_id IN (SELECT user_id FROM ${sql.id(lock)})
        RETURNING x.id`,
    },
  ];
}

/**
 * Step locking the balance rows of `userIds` (a query returning user_id) in user_id order. A
 * statement that updates many balances locks them in whatever order its plan visits them; two
 * such statements (an accept batch and a fill batch) could each hold a row the other wants and
 * deadlock, costing a second of deadlock_timeout. Every multi-row statement first takes its rows
 * through this step — the one lock order (orders, then balances by user_id, then holdings by
 * user_id and ticker) — and its UPDATE joins the step, so the rows are locked before they change.
 */
export function lockBalancesStep(name: string, userIds: RawBuilder<unknown>): Step {
  return {
    name,
    statement: sql`
      SELECT user_id FROM cash_balances WHERE user_id IN (${userIds}) ORDER BY user_id FOR UPDATE`,
  };
}

/** Locks the balance rows of `userIds` in user_id order (see lockBalancesStep for why the order). */
export async function lockBalances(db: Executor, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  await sql`SELECT user_id FROM cash_balances WHERE user_id = ANY(${[...new Set(userIds)]}::uuid[]) ORDER BY user_id FOR UPDATE`.execute(db);
}

/**
 * The hold rule as a statement: take `amount` from available cash only if it is there. It is
 * exported unexecuted so the OMS can compose it with the order insert into one statement (one
 * round trip, one atomic unit); `reserveFunds` runs it alone.
 */
export function reserveFundsStatement(userId: string, amount: string): RawBuilder<unknown> {
  return sql`
    UPDATE cash_balances
       SET available_cash = available_cash - ${amount}::numeric, updated_at = now()
     WHERE user_id = ${userId} AND available_cash >= ${amount}::numeric`;
}

/** Holds `amount` of available cash; undefined when the account lacks it (or does not exist). */
export async function reserveFunds(db: Executor, userId: string, amount: string): Promise<BalanceRow | undefined> {
  const { rows } = await sql<BalanceRow>`
    ${reserveFundsStatement(userId, amount)}
    RETURNING user_id, cash_balance::text, available_cash::text`.execute(db);
  return rows[0];
}

/** Returns a hold to available cash. The CHECK constraint refuses releasing more than is held. */
export async function releaseFunds(db: Executor, userId: string, amount: string): Promise<BalanceRow | undefined> {
  const { rows } = await sql<BalanceRow>`
    UPDATE cash_balances
       SET available_cash = available_cash + ${amount}::numeric, updated_at = now()
     WHERE user_id = ${userId}
    RETURNING user_id, cash_balance::text, available_cash::text`.execute(db);
  return rows[0];
}

/** The ledger row a deposit or withdrawal with this Idempotency-Key wrote, with its request's hash. */
export async function getLedgerByIdempotencyKey(
  db: Executor,
  userId: string,
  key: string,
): Promise<{ id: string; request_hash: Buffer } | undefined> {
  const { rows } = await sql<{ id: string; request_hash: Buffer }>`
    SELECT id::text, request_hash FROM cash_ledger
     WHERE user_id = ${userId} AND idempotency_key = ${key}`.execute(db);
  return rows[0];
}

export async function listLedger(
  db: Executor,
  userId: string,
  limit: number,
  beforeId: string | undefined,
): Promise<LedgerRow[]> {
  let query = db
    .selectFrom('cash_ledger')
    .select(['id', 'user_id', 'kind', 'amount', 'balance_after', 'order_id', 'created_at'])
    .where('user_id', '=', userId);
  if (beforeId !== undefined) query = query.where('id', '<', beforeId);
  return query.orderBy('id', 'desc').limit(limit).execute();
}

/**
 * A page of activities (the Alpaca facade's GET /v2/account/activities): a window of time and
 * a position after (ascending) or before (descending) an activity id. The same shape pages the
 * fills (orders.repository.listFillActivities), so one filter pages both sources alike.
 */
export interface ActivityPageFilter {
  userId: string;
  /** Only rows at (inclusive) or strictly after this instant. */
  start?: { at: Date; inclusive: boolean } | undefined;
  /** Only rows strictly before this instant. */
  end?: Date | undefined;
  /** Only rows whose activity id sorts after this one (ascending) or before it (descending). */
  pageToken?: string | undefined;
  ascending: boolean;
  limit: number;
}

/** Rows one page of ledger activities reads at most. */
export const LEDGER_ACTIVITIES_LIMIT_MAX = 1_000;

export interface LedgerActivityRow extends LedgerRow {
  /** `<YYYYMMDDHHMMSSmmm>::<ledger id>`, the instant in UTC (see listLedgerActivities). */
  activity_id: string;
}

/**
 * The user's ledger rows of `kinds` as activities, one page in activity id order. An activity
 * id is Alpaca's form: the row's instant in UTC to the millisecond as 17 digits, '::', and the
 * ledger id. The fixed-width digits come first, so the ids sort in time order as plain strings;
 * they are compared byte by byte (COLLATE "C"), as JavaScript compares strings, so a page token
 * means the same position here and to the caller whatever the database's collation.
 */
export async function listLedgerActivities(db: Executor, kinds: readonly LedgerKind[], f: ActivityPageFilter): Promise<LedgerActivityRow[]> {
  if (kinds.length === 0) return [];
  const limit = Math.min(Math.max(1, f.limit), LEDGER_ACTIVITIES_LIMIT_MAX);
  const start = f.start === undefined ? sql`true` : f.start.inclusive ? sql`x.created_at >= ${f.start.at}` : sql`x.created_at > ${f.start.at}`;
  const end = f.end === undefined ? sql`true` : sql`x.created_at < ${f.end}`;
  const token = f.pageToken === undefined ? sql`true` : f.ascending ? sql`x.activity_id COLLATE "C" > ${f.pageToken}` : sql`x.activity_id COLLATE "C" < ${f.pageToken}`;
  const { rows } = await sql<LedgerActivityRow>`
    SELECT x.* FROM (
      SELECT to_char(l.created_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSMS') || '::' || l.id::text AS activity_id,
             l.id::text AS id, l.user_id, l.kind, l.amount::text AS amount, l.balance_after::text AS balance_after,
             l.order_id, l.created_at
        FROM cash_ledger l
       WHERE l.user_id = ${f.userId} AND l.kind = ANY(${[...kinds]}::text[])
    ) x
    WHERE ${start} AND ${end} AND ${token}
    ORDER BY x.activity_id COLLATE "C" ${f.ascending ? sql`ASC` : sql`DESC`}
    LIMIT ${limit}`.execute(db);
  return rows;
}
