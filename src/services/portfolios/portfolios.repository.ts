/**
 * Named queries over `holdings`. Reservations and sells are single conditional statements, so
 * two concurrent sells cannot both take the same shares.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Step } from '../../infra/statements.js';
import type { Executor } from '../../infra/postgres.js';

export interface HoldingRow {
  ticker: string;
  quantity: string;
  reserved_quantity: string;
  avg_cost: string;
}

export async function listHoldings(db: Executor, userId: string): Promise<HoldingRow[]> {
  return db
    .selectFrom('holdings')
    .select(['ticker', 'quantity', 'reserved_quantity', 'avg_cost'])
    .where('user_id', '=', userId)
    .orderBy('ticker')
    .execute();
}

/**
 * Removes every holding of a user (an account reset), returning what was removed. The rows
 * are locked in ticker order first: the lock order for holdings.
 */
export async function deleteHoldingsOfUser(db: Executor, userId: string): Promise<HoldingRow[]> {
  await sql`SELECT ticker FROM holdings WHERE user_id = ${userId} ORDER BY ticker FOR UPDATE`.execute(db);
  const { rows } = await sql<HoldingRow>`
    DELETE FROM holdings WHERE user_id = ${userId}
    RETURNING ticker, quantity::text AS quantity, reserved_quantity::text AS reserved_quantity, avg_cost::text AS avg_cost`.execute(db);
  return rows.sort((a, b) => (a.ticker < b.ticker ? -1 : 1));
}

export async function getHolding(db: Executor, userId: string, ticker: string): Promise<HoldingRow | undefined> {
  return db
    .selectFrom('holdings')
    .select(['ticker', 'quantity', 'reserved_quantity', 'avg_cost'])
    .where('user_id', '=', userId)
    .where('ticker', '=', ticker)
    .executeTakeFirst();
}

/**
 * The share-hold rule as a statement: reserve `quantity` only if that many are unreserved.
 * Exported unexecuted so the OMS can compose it with the order insert into one statement.
 */
export function reserveSharesStatement(userId: string, ticker: string, quantity: string): RawBuilder<unknown> {
  return sql`
    UPDATE holdings
       SET reserved_quantity = reserved_quantity + ${quantity}::numeric, updated_at = now()
     WHERE user_id = ${userId} AND ticker = ${ticker}
       AND quantity - reserved_quantity >= ${quantity}::numeric`;
}

/**
 * The share reservation rule for many sells at once, as steps over `inputStep` (a step with
 * columns id, user_id, side, ticker, quantity; at most one sell per user and ticker): every
 * sell whose shares are there unreserved gets them reserved; step `name` returns the ids
 * reserved. `lockAfter`: see lockHoldingsStep.
 */
export function reserveSharesManySteps(name: string, inputStep: string, lockAfter?: string): Step[] {
  const lock = `${name}_lock`;
  return [
    lockHoldingsStep(lock, sql`SELECT user_id, ticker FROM ${sql.id(inputStep)} WHERE side = 'sell'`, lockAfter),
    {
      name,
      statement: sql`
        UPDATE holdings h
           SET reserved_quantity = h.reserved_quantity + x.quantity, updated_at = now()
          FROM ${sql.id(inputStep)} x
         WHERE x.side = 'sell' AND h.user_id = x.user_id AND h.ticker = x.ticker
           AND h.quantity - h.reserved_quantity >= x.quantity
           AND (h.user_id, h.ticker) IN (SELECT user_id, ticker FROM ${sql.id(lock)})
        RETURNING x.id`,
    },
  ];
}

/**
 * Step locking the holdings rows of `keys` (a query returning user_id, ticker) in (user_id,
 * ticker) order — the lock order of accounts.repository.lockBalancesStep, which explains why.
 * With `lockAfter` (a locking step of balances), that step's locks are all taken first.
 */
export function lockHoldingsStep(name: string, keys: RawBuilder<unknown>, lockAfter?: string): Step {
  const after = lockAfter ? sql`AND (SELECT count(*) FROM ${sql.id(lockAfter)}) >= 0` : sql``;
  return {
    name,
    statement: sql`
      SELECT user_id, ticker FROM holdings
       WHERE (user_id, ticker) IN (${keys}) ${after}
       ORDER BY user_id, ticker FOR UPDATE`,
  };
}

/** Locks holdings rows of (user, ticker) pairs in (user_id, ticker) order: the global lock order. */
export async function lockHoldings(db: Executor, keys: readonly { userId: string; ticker: string }[]): Promise<void> {
  if (keys.length === 0) return;
  await sql`
    SELECT h.user_id, h.ticker FROM holdings h
      JOIN unnest(${keys.map((k) => k.userId)}::uuid[], ${keys.map((k) => k.ticker)}::text[]) AS k (user_id, ticker)
        ON h.user_id = k.user_id AND h.ticker = k.ticker
     ORDER BY h.user_id, h.ticker FOR UPDATE OF h`.execute(db);
}

/** Reserves shares for a pending sell; no row when fewer than `quantity` are unreserved. */
export async function reserveShares(
  db: Executor,
  userId: string,
  ticker: string,
  quantity: string,
): Promise<HoldingRow | undefined> {
  const { rows } = await sql<HoldingRow>`
    ${reserveSharesStatement(userId, ticker, quantity)}
    RETURNING ticker, quantity::text, reserved_quantity::text, avg_cost::text`.execute(db);
  return rows[0];
}

export async function releaseShares(
  db: Executor,
  userId: string,
  ticker: string,
  quantity: string,
): Promise<HoldingRow | undefined> {
  const { rows } = await sql<HoldingRow>`
    UPDATE holdings
       SET reserved_quantity = reserved_quantity - ${quantity}::numeric, updated_at = now()
     WHERE user_id = ${userId} AND ticker = ${ticker} AND reserved_quantity >= ${quantity}::numeric
    RETURNING ticker, quantity::text, reserved_quantity::text, avg_cost::text`.execute(db);
  return rows[0];
}

/**
 * Steps moving the shares of a batch of filled orders, for the orders `appliedStep` returned
 * (a step returning `id`). The batch holds at most one order per (user, ticker) — the caller
 * splits it — so each holding row is touched by one step once, as PostgreSQL requires of a
 * statement's data-modifying CTEs, and the result equals filling them one by one. Buys are
 * added as addSharesStep does; sells leave as removeReservedSharesSteps does (deleted at zero).
 * `<name>_added` returns (user_id, ticker) and `<name>_deleted` and `<name>_reduced` `order_id`
 * per holding moved; `_added` and `_reduced` also the `quantity` the holding is left with.
 */
export function moveSharesManySteps(
  name: string,
  moves: readonly { orderId: string; side: 'buy' | 'sell'; userId: string; ticker: string; quantity: string; price: string }[],
  appliedStep: string,
  lockAfter?: string,
): Step[] {
  const m = `${name}_moves`;
  const lock = `${name}_lock`;
  const locked = sql`(h.user_id, h.ticker) IN (SELECT user_id, ticker FROM ${sql.id(lock)})`;
  return [
    {
      name: m,
      statement: sql`
        SELECT x.*
          FROM unnest(${moves.map((v) => v.orderId)}::uuid[], ${moves.map((v) => v.side)}::text[],
                      ${moves.map((v) => v.userId)}::uuid[], ${moves.map((v) => v.ticker)}::text[],
                      ${moves.map((v) => v.quantity)}::numeric[], ${moves.map((v) => v.price)}::numeric[])
               AS x (order_id, side, user_id, ticker, quantity, price)
         WHERE x.order_id IN (SELECT id FROM ${sql.id(appliedStep)})`,
    },
    lockHoldingsStep(lock, sql`SELECT user_id, ticker FROM ${sql.id(m)}`, lockAfter),
    {
      name: `${name}_added`,
      statement: sql`
        INSERT INTO holdings AS h (user_id, ticker, quantity, reserved_quantity, avg_cost)
        SELECT user_id, ticker, quantity, 0, price FROM ${sql.id(m)}
         WHERE side = 'buy' AND (SELECT count(*) FROM ${sql.id(lock)}) >= 0
        ON CONFLICT (user_id, ticker) DO UPDATE
           SET avg_cost = round((h.quantity * h.avg_cost + excluded.quantity * excluded.avg_cost)
                                / (h.quantity + excluded.quantity), 4),
               quantity = h.quantity + excluded.quantity,
               updated_at = now()
        RETURNING user_id, ticker, quantity::text AS quantity`,
    },
    {
      name: `${name}_deleted`,
      statement: sql`
        DELETE FROM holdings h
         USING ${sql.id(m)} s
         WHERE s.side = 'sell' AND h.user_id = s.user_id AND h.ticker = s.ticker
           AND h.quantity = s.quantity AND h.reserved_quantity = s.quantity AND ${locked}
        RETURNING s.order_id`,
    },
    {
      name: `${name}_reduced`,
      statement: sql`
        UPDATE holdings h
           SET quantity = h.quantity - s.quantity,
               reserved_quantity = h.reserved_quantity - s.quantity,
               updated_at = now()
          FROM ${sql.id(m)} s
         WHERE s.side = 'sell' AND h.user_id = s.user_id AND h.ticker = s.ticker
           AND h.quantity > s.quantity AND h.reserved_quantity >= s.quantity AND ${locked}
        RETURNING s.order_id, h.quantity::text AS quantity`,
    },
  ];
}

