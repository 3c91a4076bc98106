/**
 * Named queries over `cash_balances` and `cash_ledger`. Every statement that moves cash writes
 * its ledger row in the same statement (a data-modifying CTE), so the balance and its ledger
 * cannot drift apart and a movement costs one round trip. Conditional updates
 * (`WHERE available_cash >= $amount`) make each check-and-move atomic: no read-then-write race.
 */
import { sql, type RawBuilder } from 'kysely';
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
      INSERT INTO cash_balances (user_id, cash_balance, available_cash)
      VALUES (${userId}, ${initialCash}, ${initialCash})
      RETURNING cash_balance)
    INSERT INTO cash_ledger (user_id, kind, amount, balance_after)
    SELECT ${userId}, 'initial', b.cash_balance, b.cash_balance FROM b`.execute(db);
}

export async function getBalance(db: Executor, userId: string): Promise<BalanceRow | undefined> {
  return db
    .selectFrom('cash_balances')
    .select(['user_id', 'cash_balance', 'available_cash'])
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

/**
 * Moves cash in or out of both the balance and the available cash (deposits, withdrawals).
 * `delta` is signed; a negative delta only applies while available cash covers it.
 */
export async function moveCash(
  db: Executor,
  userId: string,
  kind: LedgerKind,
  delta: string,
  orderId: string | null,
): Promise<BalanceRow | undefined> {
  const { rows } = await sql<BalanceRow>`
    WITH b AS (
      UPDATE cash_balances
         SET cash_balance = cash_balance + ${delta}::numeric,
             available_cash = available_cash + ${delta}::numeric,
             updated_at = now()
       WHERE user_id = ${userId} AND available_cash + ${delta}::numeric >= 0
      RETURNING user_id, cash_balance, available_cash),
    l AS (
      INSERT INTO cash_ledger (user_id, kind, amount, balance_after, order_id)
      SELECT b.user_id, ${kind}, ${delta}::numeric, b.cash_balance, ${orderId}::uuid FROM b)
    SELECT user_id, cash_balance::text, available_cash::text FROM b`.execute(db);
  return rows[0];
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

/**
 * Settles a filled buy: the cost leaves the balance, the hold is released and the part of it
 * not spent returns to available cash. One statement with its ledger row.
 */
export async function settleBuy(
  db: Executor,
  userId: string,
  reserved: string,
  cost: string,
  orderId: string,
): Promise<BalanceRow | undefined> {
  const { rows } = await sql<BalanceRow>`
    WITH b AS (
      UPDATE cash_balances
         SET cash_balance = cash_balance - ${cost}::numeric,
             available_cash = available_cash + ${reserved}::numeric - ${cost}::numeric,
             updated_at = now()
       WHERE user_id = ${userId}
      RETURNING user_id, cash_balance, available_cash),
    l AS (
      INSERT INTO cash_ledger (user_id, kind, amount, balance_after, order_id)
      SELECT b.user_id, 'buy', -${cost}::numeric, b.cash_balance, ${orderId}::uuid FROM b)
    SELECT user_id, cash_balance::text, available_cash::text FROM b`.execute(db);
  return rows[0];
}

/** Settles a filled sell: the proceeds are credited to the balance and to available cash. */
export async function settleSell(
  db: Executor,
  userId: string,
  proceeds: string,
  orderId: string,
): Promise<BalanceRow | undefined> {
  return moveCash(db, userId, 'sell', proceeds, orderId);
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
