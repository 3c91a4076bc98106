/**
 * Named queries over `orders` and `fills`. Status changes carry the `status = 'PENDING'` guard:
 * whoever changes a pending order first (engine or cancel) wins, the other sees no row.
 */
import { sql, type RawBuilder } from 'kysely';
import { runSteps, type Step } from '../../infra/statements.js';
import type { Executor } from '../../infra/postgres.js';
import type { OrderSide, OrderStatus, OrderType } from '../../core/orders.js';

export interface OrderRow {
  id: string;
  user_id: string;
  client_order_id: string | null;
  request_hash: Buffer;
  ticker: string;
  side: OrderSide;
  type: OrderType;
  quantity: string;
  status: OrderStatus;
  reserved_amount: string;
  quote_price: string | null;
  fill_price: string | null;
  filled_at: Date | null;
  reject_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewOrderRow {
  id: string;
  user_id: string;
  client_order_id: string | null;
  request_hash: Buffer;
  ticker: string;
  side: OrderSide;
  type: OrderType;
  quantity: string;
  reserved_amount: string;
  quote_price: string | null;
}

const COLUMNS = [
  'id',
  'user_id',
  'client_order_id',
  'request_hash',
  'ticker',
  'side',
  'type',
  'quantity',
  'status',
  'reserved_amount',
  'quote_price',
  'fill_price',
  'filled_at',
  'reject_reason',
  'created_at',
  'updated_at',
] as const;

/**
 * Takes the hold and inserts the PENDING order in ONE statement (one round trip, atomic by
 * itself): the insert reads from the hold's CTE, so no hold means no order (undefined), and a
 * repeated (user_id, client_order_id) raises the unique violation, undoing the hold with it.
 */
export async function insertPendingOrderWithHold(
  db: Executor,
  order: NewOrderRow,
  hold: RawBuilder<unknown>,
): Promise<OrderRow | undefined> {
  const { rows } = await sql<OrderRow>`
    WITH hold AS (${hold} RETURNING 1)
    INSERT INTO orders (id, user_id, client_order_id, request_hash, ticker, side, type, quantity, status,
                        reserved_amount, quote_price)
    SELECT ${order.id}::uuid, ${order.user_id}::uuid, ${order.client_order_id}, ${order.request_hash}, ${order.ticker},
           ${order.side}, ${order.type}, ${order.quantity}::numeric, 'PENDING', ${order.reserved_amount}::numeric,
           ${order.quote_price}::numeric
      FROM hold
    RETURNING ${sql.join(COLUMNS.map((c) => sql.ref(c)))}`.execute(db);
  return rows[0];
}

/**
 * Accepts many orders in ONE statement: `x` unnests the new rows, `holds(x)` are the leaf
 * services' batch hold steps over it (`held` names those returning the ids they held; the
 * others lock rows), and only the held orders
 * are inserted PENDING. An order without its hold is simply not returned (refused); any error
 * (a repeated client_order_id, a missing user) undoes the whole statement, holds included.
 */
export async function insertPendingOrdersWithHolds(
  db: Executor,
  orders: readonly NewOrderRow[],
  holds: (inputStep: string) => { steps: Step[]; held: string[] },
): Promise<OrderRow[]> {
  const col = <K extends keyof NewOrderRow>(k: K) => orders.map((o) => o[k]);
  const input: Step = {
    name: 'x',
    statement: sql`
      SELECT * FROM unnest(${col('id')}::uuid[], ${col('user_id')}::uuid[], ${col('client_order_id')}::text[],
                           ${col('request_hash')}::bytea[], ${col('ticker')}::text[], ${col('side')}::text[],
                           ${col('type')}::text[], ${col('quantity')}::numeric[], ${col('reserved_amount')}::numeric[],
                           ${col('quote_price')}::numeric[])
        AS x (id, user_id, client_order_id, request_hash, ticker, side, type, quantity, reserved_amount, quote_price)`,
  };
  const { steps: holdSteps, held: heldSteps } = holds('x');
  const held = sql.join(
    heldSteps.map((name) => sql`SELECT id FROM ${sql.id(name)}`),
    sql` UNION ALL `,
  );
  return runSteps<OrderRow>(
    db,
    [input, ...holdSteps],
    sql`
      INSERT INTO orders (id, user_id, client_order_id, request_hash, ticker, side, type, quantity, status,
                          reserved_amount, quote_price)
      SELECT id, user_id, client_order_id, request_hash, ticker, side, type, quantity, 'PENDING', reserved_amount, quote_price
        FROM x
       WHERE id IN (${held})
      RETURNING ${sql.join(COLUMNS.map((c) => sql.ref(c)))}`,
  );
}

export async function getOrder(db: Executor, id: string): Promise<OrderRow | undefined> {
  return (await db.selectFrom('orders').select(COLUMNS).where('id', '=', id).executeTakeFirst()) as OrderRow | undefined;
}

/** The orders among `ids` that exist (any status), in no particular order. */
export async function getOrders(db: Executor, ids: readonly string[]): Promise<OrderRow[]> {
  if (ids.length === 0) return [];
  return (await db.selectFrom('orders').select(COLUMNS).where('id', 'in', [...ids]).execute()) as OrderRow[];
}

export async function getOrderByClientId(db: Executor, userId: string, clientOrderId: string): Promise<OrderRow | undefined> {
  return (await db
    .selectFrom('orders')
    .select(COLUMNS)
    .where('user_id', '=', userId)
    .where('client_order_id', '=', clientOrderId)
    .executeTakeFirst()) as OrderRow | undefined;
}

export interface OrderFilter {
  userId?: string | undefined;
  status?: OrderStatus | undefined;
  ticker?: string | undefined;
  beforeId?: string | undefined;
  limit: number;
}

export async function listOrders(db: Executor, f: OrderFilter): Promise<OrderRow[]> {
  let q = db.selectFrom('orders').select(COLUMNS);
  if (f.userId !== undefined) q = q.where('user_id', '=', f.userId);
  if (f.status !== undefined) q = q.where('status', '=', f.status);
  if (f.ticker !== undefined) q = q.where('ticker', '=', f.ticker);
  if (f.beforeId !== undefined) q = q.where('id', '<', f.beforeId);
  return (await q.orderBy('id', 'desc').limit(f.limit).execute()) as OrderRow[];
}

/** Locks the still-pending orders among `ids` for this transaction (sorted: a stable lock order). */
export async function lockPendingOrders(db: Executor, ids: readonly string[]): Promise<OrderRow[]> {
  if (ids.length === 0) return [];
  return (await db
    .selectFrom('orders')
    .select(COLUMNS)
    .where('id', 'in', [...ids].sort())
    .where('status', '=', 'PENDING')
    .orderBy('id')
    .forUpdate()
    .execute()) as OrderRow[];
}

/** Cancels a pending order; with `ownerId`, only if that user owns it. */
export async function markCanceled(db: Executor, id: string, ownerId?: string): Promise<OrderRow | undefined> {
  return finish(db, id, sql`status = 'CANCELED'`, ownerId);
}

export async function markRejected(db: Executor, id: string, reason: string): Promise<OrderRow | undefined> {
  return finish(db, id, sql`status = 'REJECTED', reject_reason = ${reason}`);
}

async function finish(
  db: Executor,
  id: string,
  set: ReturnType<typeof sql>,
  ownerId?: string,
): Promise<OrderRow | undefined> {
  const owner = ownerId === undefined ? sql`` : sql` AND user_id = ${ownerId}`;
  const { rows } = await sql<OrderRow>`
    UPDATE orders SET ${set}, updated_at = now()
     WHERE id = ${id} AND status = 'PENDING'${owner}
    RETURNING ${sql.join(COLUMNS.map((c) => sql.ref(c)))}`.execute(db);
  return rows[0];
}

/**
 * Step: a batch of PENDING orders to FILLED, each at its own price, in one UPDATE. Returns the
 * rows it changed (an order a cancel took first, or already filled, is simply not returned):
 * every later step of the batch joins on this step, so only the orders it returns have effects.
 */
export function markFilledManyStep(name: string, fills: readonly { id: string; price: string }[]): Step {
  return {
    name,
    statement: sql`
      UPDATE orders o SET status = 'FILLED', fill_price = x.price, filled_at = now(), updated_at = now()
        FROM unnest(${fills.map((f) => f.id)}::uuid[], ${fills.map((f) => f.price)}::numeric[]) AS x (id, price)
       WHERE o.id = x.id AND o.status = 'PENDING'
      RETURNING ${sql.join(COLUMNS.map((c) => sql`o.${sql.ref(c)}`))}`,
  };
}

/** Step: the fill rows of a batch, for the orders `filledStep` returned. */
export function insertFillsStep(
  name: string,
  fills: readonly { orderId: string; price: string; quantity: string; amount: string }[],
  filledStep: string,
): Step {
  return {
    name,
    statement: sql`
      INSERT INTO fills (order_id, price, quantity, amount)
      SELECT x.order_id, x.price, x.quantity, x.amount
        FROM unnest(${fills.map((f) => f.orderId)}::uuid[], ${fills.map((f) => f.price)}::numeric[],
                    ${fills.map((f) => f.quantity)}::numeric[], ${fills.map((f) => f.amount)}::numeric[])
             AS x (order_id, price, quantity, amount)
       WHERE x.order_id IN (SELECT id FROM ${sql.id(filledStep)})
      RETURNING order_id`,
  };
}

/** Pending orders created before `olderThan`, oldest first: what the reconciler re-publishes. */
export async function listPendingOlderThan(db: Executor, olderThan: Date, limit: number): Promise<OrderRow[]> {
  return (await db
    .selectFrom('orders')
    .select(COLUMNS)
    .where('status', '=', 'PENDING')
    .where('created_at', '<', olderThan)
    .orderBy('created_at')
    .limit(limit)
    .execute()) as OrderRow[];
}
