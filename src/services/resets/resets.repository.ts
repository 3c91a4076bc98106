/** Named queries over `account_resets` and `reset_positions`: the record of each account reset. */
import { sql } from 'kysely';
import type { Executor } from '../../infra/postgres.js';

export interface NewReset {
  userId: string;
  /** The reset's 'reset' cash_ledger row. */
  ledgerId: string;
  cashBefore: string;
  cashAfter: string;
  ordersCanceled: number;
  /** The holdings the reset removed. */
  positions: readonly { ticker: string; quantity: string; avgCost: string }[];
}

/** Records a reset and the holdings it removed (the audit's share invariant counts them); returns its id. */
export async function insertReset(db: Executor, r: NewReset): Promise<string> {
  const { rows } = await sql<{ id: string }>`
    WITH reset AS (
      INSERT INTO account_resets (user_id, ledger_id, cash_before, cash_after, orders_canceled)
      VALUES (${r.userId}, ${r.ledgerId}, ${r.cashBefore}::numeric, ${r.cashAfter}::numeric, ${r.ordersCanceled})
      RETURNING id),
    positions AS (
      INSERT INTO reset_positions (reset_id, user_id, ticker, quantity, avg_cost)
      SELECT reset.id, ${r.userId}::uuid, x.ticker, x.quantity, x.avg_cost
        FROM reset,
             unnest(${r.positions.map((p) => p.ticker)}::text[], ${r.positions.map((p) => p.quantity)}::numeric[],
                    ${r.positions.map((p) => p.avgCost)}::numeric[]) AS x (ticker, quantity, avg_cost))
    SELECT id::text AS id FROM reset`.execute(db);
  return rows[0]!.id;
}
