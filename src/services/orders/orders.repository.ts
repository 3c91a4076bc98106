/**
 * Named queries over `orders` and `fills`. Status changes carry a status guard — `status IN
 * ('PENDING', 'OPEN')` for the non-terminal ones — so whoever changes a live order first (the
 * engine, a cancel, a replace) wins and every other writer sees no row: one outcome per order.
 */
import { sql, type RawBuilder } from 'kysely';
import { isoMillisUtc, runSteps, type Step } from '../../infra/statements.js';
import { assert } from '../../core/errors.js';
import type { Executor } from '../../infra/postgres.js';
import type { ActivityPageFilter } from '../accounts/accounts.repository.js';
import type { OrderSide, OrderStatus, OrderType, TimeInForce } from '../../core/orders.js';
import type { CommissionScheduleJson } from '../../core/commissions.js';
import type { FillModelName } from '../../core/fill-models.js';

export interface OrderRow {
  id: string;
  user_id: string;
  client_order_id: string | null;
  request_hash: Buffer;
  ticker: string;
  side: OrderSide;
  type: OrderType;
  time_in_force: TimeInForce;
  quantity: string;
  limit_price: string | null;
  stop_price: string | null;
  trail_price: string | null;
  trail_percent: string | null;
  hwm: string | null;
  stop_level: string | null;
  status: OrderStatus;
  reserved_amount: string;
  commission: string;
  commission_charged: string;
  quote_price: string | null;
  fill_price: string | null;
  filled_quantity: string;
  filled_value: string;
  fill_model: FillModelName;
  /** As stored (jsonb, read by the driver as an object); null for no commission. */
  commission_schedule: CommissionScheduleJson | null;
  last_fill_quote_at: Date | null;
  filled_at: Date | null;
  triggered_at: Date | null;
  canceled_at: Date | null;
  expired_at: Date | null;
  reject_reason: string | null;
  cancel_reason: string | null;
  replaces: string | null;
  replaced_by: string | null;
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
  time_in_force: TimeInForce;
  quantity: string;
  limit_price: string | null;
  stop_price: string | null;
  trail_price: string | null;
  trail_percent: string | null;
  reserved_amount: string;
  /** The commission held at acceptance, within reserved_amount until fills charge it. */
  commission: string;
  quote_price: string | null;
  replaces: string | null;
  fill_model: FillModelName;
  /** JSON text of the schedule (commissionScheduleToJson), or null. */
  commission_schedule: string | null;
}

const COLUMNS = [
  'id',
  'user_id',
  'client_order_id',
  'request_hash',
  'ticker',
  'side',
  'type',
  'time_in_force',
  'quantity',
  'limit_price',
  'stop_price',
  'trail_price',
  'trail_percent',
  'hwm',
  'stop_level',
  'status',
  'reserved_amount',
  'commission',
  'commission_charged',
  'quote_price',
  'fill_price',
  'filled_quantity',
  'filled_value',
  'fill_model',
  'commission_schedule',
  'last_fill_quote_at',
  'filled_at',
  'triggered_at',
  'canceled_at',
  'expired_at',
  'reject_reason',
  'cancel_reason',
  'replaces',
  'replaced_by',
  'created_at',
  'updated_at',
] as const;

const returning = sql.join(COLUMNS.map((c) => sql.ref(c)));

/** How a column of the order view is rendered from the row (order-view.ts's formatting). */
type ViewRule = 'text' | 'decimal' | 'quantity' | 'time' | 'status';
const VIEW: readonly (readonly [string, ViewRule])[] = [
  ['id', 'text'],
  ['user_id', 'text'],
  ['client_order_id', 'text'],
  ['ticker', 'text'],
  ['side', 'text'],
  ['type', 'text'],
  ['time_in_force', 'text'],
  ['quantity', 'quantity'],
  ['limit_price', 'decimal'],
  ['stop_price', 'decimal'],
  ['trail_price', 'decimal'],
  ['trail_percent', 'decimal'],
  ['hwm', 'decimal'],
  ['stop_level', 'decimal'],
  ['status', 'status'],
  ['reserved_amount', 'decimal'],
  ['commission', 'decimal'],
  ['commission_charged', 'decimal'],
  ['fill_model', 'text'],
  ['fill_price', 'decimal'],
  ['filled_quantity', 'quantity'],
  ['filled_at', 'time'],
  ['triggered_at', 'time'],
  ['canceled_at', 'time'],
  ['expired_at', 'time'],
  ['reject_reason', 'text'],
  ['cancel_reason', 'text'],
  ['replaces', 'text'],
  ['replaced_by', 'text'],
  ['created_at', 'time'],
  ['updated_at', 'time'],
];

/**
 * The order view (order-view.ts's orderBody) of the row `alias`, as a json expression: for a
 * statement that writes an order.* event in the same statement as the change. A NUMERIC's
 * text has the column's scale, which is what formatCash and formatPrice print; quantities drop
 * trailing zeros (trim_scale, as formatQty); times as isoMillisUtc writes them.
 */
export function orderViewSql(alias: string): RawBuilder<unknown> {
  const col = (c: string) => sql`${sql.id(alias)}.${sql.id(c)}`;
  const value = (c: string, rule: ViewRule) => {
    switch (rule) {
      case 'text':
      case 'decimal': // NUMERIC text has the column's scale
        return sql`${col(c)}::text`;
      case 'quantity':
        return sql`trim_scale(${col(c)})::text`;
      case 'time':
        return isoMillisUtc(col(c));
      case 'status': // viewStatus: an OPEN order with shares filled is PARTIALLY_FILLED
        return sql`CASE WHEN ${col(c)} = 'OPEN' AND ${col('filled_quantity')} > 0 THEN 'PARTIALLY_FILLED' ELSE ${col(c)} END`;
    }
  };
  return sql`json_build_object(${sql.join(VIEW.map(([c, rule]) => sql`${sql.lit(c)}, ${value(c, rule)}`))})`;
}
const returningOf = (alias: string) => sql.join(COLUMNS.map((c) => sql`${sql.id(alias)}.${sql.ref(c)}`));

/** The new rows' columns as one unnest() (the batch accept's input, and a single order's). */
const NEW_COLUMNS = [
  ['id', 'uuid'],
  ['user_id', 'uuid'],
  ['client_order_id', 'text'],
  ['request_hash', 'bytea'],
  ['ticker', 'text'],
  ['side', 'text'],
  ['type', 'text'],
  ['time_in_force', 'text'],
  ['quantity', 'numeric'],
  ['limit_price', 'numeric'],
  ['stop_price', 'numeric'],
  ['trail_price', 'numeric'],
  ['trail_percent', 'numeric'],
  ['reserved_amount', 'numeric'],
  ['commission', 'numeric'],
  ['quote_price', 'numeric'],
  ['replaces', 'uuid'],
  ['fill_model', 'text'],
  ['commission_schedule', 'jsonb'],
] as const satisfies readonly (readonly [keyof NewOrderRow, string])[];

function newRowsStep(name: string, orders: readonly NewOrderRow[]): Step {
  const arrays = sql.join(NEW_COLUMNS.map(([c, t]) => sql`${orders.map((o) => o[c])}::${sql.raw(t)}[]`));
  const names = sql.join(NEW_COLUMNS.map(([c]) => sql.id(c)));
  return { name, statement: sql`SELECT * FROM unnest(${arrays}) AS x (${names})` };
}

const insertColumns = sql.join([...NEW_COLUMNS.map(([c]) => sql.id(c)), sql.id('status')]);

/**
 * Steps appending the events a query yields (events.repository's appendEventsSteps, passed in
 * by the OMS, which composes the services): the step `name` returns the appended events.
 */
export type AppendEventsSteps = (name: string, source: RawBuilder<unknown>) => Step[];

/** A new order as inserted, with the order.new event its statement appended. */
export interface InsertedOrderRow extends OrderRow {
  event_seq: string;
  event_at: Date;
  event_data: string;
}

/**
 * The insert of the held orders and their order.new events, ending a statement whose earlier
 * steps are `steps`: `inserted` inserts the rows of `x` that `heldSql` admits, PENDING; the
 * events read the inserted rows (the view rendered in SQL: orderViewSql) and are appended last,
 * so the counters are the statement's last locks. Each order is returned with its event —
 * joined by user, as a statement holds at most one order per user.
 */
async function insertWithEvents(db: Executor, steps: Step[], heldSql: RawBuilder<unknown>, append: AppendEventsSteps): Promise<InsertedOrderRow[]> {
  return runSteps<InsertedOrderRow>(
    db,
    [
      ...steps,
      {
        name: 'inserted',
        statement: sql`
          INSERT INTO orders (${insertColumns})
          SELECT x.*, 'PENDING' FROM x WHERE ${heldSql}
          RETURNING ${returning}`,
      },
      ...append('order_events', sql`SELECT i.user_id, 'order.new' AS type, ${orderViewSql('i')} AS data, 1 AS ord FROM inserted i`),
    ],
    sql`
      SELECT i.*, e.seq AS event_seq, e.at AS event_at, e.data AS event_data
        FROM inserted i JOIN order_events e ON e.user_id = i.user_id`,
  );
}

/**
 * Takes the hold and inserts the PENDING order with its order.new event in ONE statement (one
 * round trip, atomic by itself): the insert reads from the hold's CTE, so no hold means no
 * order (undefined), and a repeated (user_id, client_order_id) raises the unique violation,
 * undoing the hold with it.
 */
export async function insertPendingOrderWithHold(
  db: Executor,
  order: NewOrderRow,
  hold: RawBuilder<unknown>,
  append: AppendEventsSteps,
): Promise<InsertedOrderRow | undefined> {
  const rows = await insertWithEvents(db, [newRowsStep('x', [order]), { name: 'hold', statement: sql`${hold} RETURNING 1` }], sql`EXISTS (SELECT 1 FROM hold)`, append);
  return rows[0];
}

/** Inserts a PENDING order whose hold its caller already took in the same transaction (replace). */
export async function insertPendingOrder(db: Executor, order: NewOrderRow): Promise<OrderRow> {
  const rows = await runSteps<OrderRow>(db, [newRowsStep('x', [order])], sql`
    INSERT INTO orders (${insertColumns})
    SELECT x.*, 'PENDING' FROM x
    RETURNING ${returning}`);
  return rows[0]!;
}

/**
 * A replacement's state carried over from the order it replaced (trailing: the best price seen,
 * and its level; stop_limit: when it triggered), set on the new PENDING row in the replace's
 * transaction.
 */
export async function setCarriedState(
  db: Executor,
  id: string,
  state: { hwm: string | null; stopLevel: string | null; triggeredAt: Date | null },
): Promise<OrderRow> {
  return (await db
    .updateTable('orders')
    .set({ hwm: state.hwm, stop_level: state.stopLevel, triggered_at: state.triggeredAt })
    .where('id', '=', id)
    .where('status', '=', 'PENDING')
    .returning(COLUMNS)
    .executeTakeFirstOrThrow()) as OrderRow;
}

/**
 * Accepts many orders (at most one per user) in ONE statement: `x` unnests the new rows,
 * `holds(x)` are the leaf services' batch hold steps over it (`held` names those returning the
 * ids they held; the others lock rows), and only the held orders are inserted PENDING, each
 * with its order.new event. An order without its hold is simply not returned (refused); any
 * error (a repeated client_order_id, a missing user) undoes the whole statement, holds included.
 */
export async function insertPendingOrdersWithHolds(
  db: Executor,
  orders: readonly NewOrderRow[],
  holds: (inputStep: string) => { steps: Step[]; held: string[] },
  append: AppendEventsSteps,
): Promise<InsertedOrderRow[]> {
  // Each order is returned joined to its event by user (insertWithEvents).
  assert(new Set(orders.map((o) => o.user_id)).size === orders.length, 'an accept statement holds at most one order per user');
  const { steps: holdSteps, held: heldSteps } = holds('x');
  const held = sql.join(
    heldSteps.map((name) => sql`SELECT id FROM ${sql.id(name)}`),
    sql` UNION ALL `,
  );
  return insertWithEvents(db, [newRowsStep('x', orders), ...holdSteps], sql`id IN (${held})`, append);
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

/** The orders with any of these (user, client_order_id) pairs: one query for a batch's replays. */
export async function getOrdersByClientIds(db: Executor, pairs: readonly { userId: string; clientOrderId: string }[]): Promise<OrderRow[]> {
  if (pairs.length === 0) return [];
  return (await db
    .selectFrom('orders')
    .select(COLUMNS)
    .where(({ eb, refTuple, tuple }) =>
      eb(
        refTuple('user_id', 'client_order_id'),
        'in',
        pairs.map((p) => tuple(p.userId, p.clientOrderId)),
      ),
    )
    .execute()) as OrderRow[];
}

export interface OrderFilter {
  userId?: string | undefined;
  statuses?: readonly OrderStatus[] | undefined;
  /** Only orders with no share filled ('none') or some ('some'): OPEN vs PARTIALLY_FILLED. */
  filled?: 'none' | 'some' | undefined;
  ticker?: string | undefined;
  /** Any of these tickers (Alpaca's `symbols`). */
  tickers?: readonly string[] | undefined;
  side?: 'buy' | 'sell' | undefined;
  /** Created strictly after / up to and including these times (Alpaca's `after` and `until`). */
  createdAfter?: Date | undefined;
  createdUntil?: Date | undefined;
  beforeId?: string | undefined;
  /** Oldest first (default: newest first). */
  ascending?: boolean | undefined;
  limit: number;
}

export async function listOrders(db: Executor, f: OrderFilter): Promise<OrderRow[]> {
  let q = db.selectFrom('orders').select(COLUMNS);
  if (f.userId !== undefined) q = q.where('user_id', '=', f.userId);
  if (f.statuses !== undefined) q = q.where('status', 'in', [...f.statuses]);
  if (f.filled !== undefined) q = q.where('filled_quantity', f.filled === 'none' ? '=' : '>', '0');
  if (f.ticker !== undefined) q = q.where('ticker', '=', f.ticker);
  if (f.tickers !== undefined) q = f.tickers.length === 0 ? q.where(sql<boolean>`false`) : q.where('ticker', 'in', [...f.tickers]);
  if (f.side !== undefined) q = q.where('side', '=', f.side);
  // Compared at the millisecond, as clients see the times: an order is not "after" the
  // created_at it was shown with.
  if (f.createdAfter !== undefined) q = q.where(sql`date_trunc('milliseconds', created_at)`, '>', f.createdAfter);
  if (f.createdUntil !== undefined) q = q.where(sql`date_trunc('milliseconds', created_at)`, '<=', f.createdUntil);
  if (f.beforeId !== undefined) q = q.where('id', '<', f.beforeId);
  return (await q.orderBy('id', f.ascending ? 'asc' : 'desc').limit(f.limit).execute()) as OrderRow[];
}

/** Locks the live (PENDING or OPEN) orders among `ids` for this transaction, in id order. */
export async function lockLiveOrders(db: Executor, ids: readonly string[]): Promise<OrderRow[]> {
  if (ids.length === 0) return [];
  return (await db
    .selectFrom('orders')
    .select(COLUMNS)
    .where('id', 'in', [...new Set(ids)].sort())
    .where('status', 'in', ['PENDING', 'OPEN'])
    .orderBy('id')
    .forUpdate()
    .execute()) as OrderRow[];
}

/** Cancels a live order; with `ownerId`, only if that user owns it. */
export async function markCanceled(db: Executor, id: string, options: { ownerId?: string; reason?: string } = {}): Promise<OrderRow | undefined> {
  return finish(db, id, sql`status = 'CANCELED', canceled_at = now(), cancel_reason = ${options.reason ?? null}`, options.ownerId);
}

export async function markRejected(db: Executor, id: string, reason: string, triggered = false): Promise<OrderRow | undefined> {
  const trigger = triggered ? sql`, triggered_at = coalesce(triggered_at, now())` : sql``;
  return finish(db, id, sql`status = 'REJECTED', reject_reason = ${reason}${trigger}`);
}

export async function markExpired(db: Executor, id: string): Promise<OrderRow | undefined> {
  return finish(db, id, sql`status = 'EXPIRED', expired_at = now()`);
}

/** A replaced OPEN order: REPLACED, pointing at its successor. Only from OPEN (never PENDING). */
export async function markReplaced(db: Executor, id: string, replacedBy: string): Promise<OrderRow | undefined> {
  const { rows } = await sql<OrderRow>`
    UPDATE orders SET status = 'REPLACED', replaced_by = ${replacedBy}::uuid, updated_at = now()
     WHERE id = ${id} AND status = 'OPEN'
    RETURNING ${returning}`.execute(db);
  return rows[0];
}

async function finish(db: Executor, id: string, set: RawBuilder<unknown>, ownerId?: string): Promise<OrderRow | undefined> {
  const owner = ownerId === undefined ? sql`` : sql` AND user_id = ${ownerId}`;
  const { rows } = await sql<OrderRow>`
    UPDATE orders SET ${set}, updated_at = now()
     WHERE id = ${id} AND status IN ('PENDING', 'OPEN')${owner}
    RETURNING ${returning}`.execute(db);
  return rows[0];
}

/**
 * Rests PENDING orders OPEN, each with its trailing state (hwm, stop level) and trigger time;
 * returns the rows it changed (an order a cancel took first is not returned).
 */
export async function markOpen(
  db: Executor,
  rests: readonly { id: string; hwm: string | null; stopLevel: string | null; triggered: boolean }[],
): Promise<OrderRow[]> {
  if (rests.length === 0) return [];
  const { rows } = await sql<OrderRow>`
    UPDATE orders o SET status = 'OPEN', hwm = x.hwm, stop_level = x.stop_level,
           triggered_at = CASE WHEN x.triggered THEN coalesce(o.triggered_at, now()) ELSE o.triggered_at END,
           updated_at = now()
      FROM unnest(${rests.map((r) => r.id)}::uuid[], ${rests.map((r) => r.hwm)}::numeric[],
                  ${rests.map((r) => r.stopLevel)}::numeric[], ${rests.map((r) => r.triggered)}::boolean[])
           AS x (id, hwm, stop_level, triggered)
     WHERE o.id = x.id AND o.status = 'PENDING'
    RETURNING ${returningOf('o')}`.execute(db);
  return rows;
}

/**
 * Keeps resting orders' watch state current (trailing hwm and stop level, a stop_limit's
 * trigger) for readers of the order; applies only while they are still OPEN. Returns the orders
 * this call triggered (their triggered_at was unset before it): each is an order.triggered.
 */
export async function saveRestingState(
  db: Executor,
  states: readonly { id: string; hwm: string | null; stopLevel: string | null; triggered: boolean }[],
): Promise<OrderRow[]> {
  if (states.length === 0) return [];
  // `before` reads the rows as the statement found them (every CTE sees the same snapshot).
  const { rows } = await sql<OrderRow & { was_triggered: boolean }>`
    WITH x AS (
      SELECT * FROM unnest(${states.map((r) => r.id)}::uuid[], ${states.map((r) => r.hwm)}::numeric[],
                           ${states.map((r) => r.stopLevel)}::numeric[], ${states.map((r) => r.triggered)}::boolean[])
             AS x (id, hwm, stop_level, triggered)),
    before AS (SELECT o.id, o.triggered_at IS NOT NULL AS was_triggered FROM orders o WHERE o.id IN (SELECT id FROM x)),
    saved AS (
      UPDATE orders o SET hwm = x.hwm, stop_level = x.stop_level,
             triggered_at = CASE WHEN x.triggered THEN coalesce(o.triggered_at, now()) ELSE o.triggered_at END
        FROM x
       WHERE o.id = x.id AND o.status = 'OPEN'
      RETURNING ${returningOf('o')})
    SELECT s.* FROM saved s JOIN before b ON b.id = s.id
     WHERE s.triggered_at IS NOT NULL AND NOT b.was_triggered`.execute(db);
  return rows;
}

/** One execution of a live order, as the fill statement applies it (decimal strings). */
export interface ExecutedRow {
  id: string;
  /** The filled quantity the engine read: the guard that no other execution came first. */
  filledBefore: string;
  quantity: string;
  /** quantity × price, exact (scale 10). */
  value: string;
  averagePrice: string;
  /** The hold of the part still open (kept as it was when the execution completes the order). */
  reservedAfter: string;
  commission: string;
  complete: boolean;
  triggered: boolean;
  /** The as_of of the quote the execution used. */
  quoteAt: Date;
}

/**
 * Step: one execution of each of a batch of live orders, in one UPDATE: the filled quantity,
 * value, average price, hold and commission move on; an order whose execution completes it is
 * FILLED, any other stays (or becomes) OPEN with its rest. Returns the rows it changed — an
 * order a cancel took first, already filled, or executed by someone else since it was read
 * (its filled quantity moved) is simply not returned: every later step of the batch joins on
 * this step, so only the orders it returns have effects.
 */
export function markExecutedManyStep(name: string, rows: readonly ExecutedRow[]): Step {
  const col = <K extends keyof ExecutedRow>(k: K) => rows.map((r) => r[k]);
  return {
    name,
    statement: sql`
      UPDATE orders o
         SET status = CASE WHEN x.complete THEN 'FILLED' ELSE 'OPEN' END,
             fill_price = x.average_price,
             filled_quantity = o.filled_quantity + x.quantity,
             filled_value = o.filled_value + x.value,
             filled_at = CASE WHEN x.complete THEN now() END,
             reserved_amount = CASE WHEN x.complete THEN o.reserved_amount ELSE x.reserved_after END,
             commission_charged = o.commission_charged + x.commission,
             last_fill_quote_at = x.quote_at,
             triggered_at = CASE WHEN x.triggered THEN coalesce(o.triggered_at, now()) ELSE o.triggered_at END,
             updated_at = now()
        FROM unnest(${col('id')}::uuid[], ${col('filledBefore')}::numeric[], ${col('quantity')}::numeric[], ${col('value')}::numeric[],
                    ${col('averagePrice')}::numeric[], ${col('reservedAfter')}::numeric[], ${col('commission')}::numeric[],
                    ${col('complete')}::boolean[], ${col('triggered')}::boolean[], ${col('quoteAt')}::timestamptz[])
             AS x (id, filled_before, quantity, value, average_price, reserved_after, commission, complete, triggered, quote_at)
       WHERE o.id = x.id AND o.status IN ('PENDING', 'OPEN') AND o.filled_quantity = x.filled_before
      RETURNING ${returningOf('o')}`,
  };
}

/** A fill row with its explanation (decimal strings; JSON as text). */
export interface NewFillRow {
  orderId: string;
  price: string;
  quantity: string;
  amount: string;
  commission: string;
  model: string;
  modelVersion: number;
  modelParams: string | null;
  quote: string;
  quoteAgeMs: number;
  slippageBps: string;
  reason: string;
}

/** Step: the fill rows of a batch, for the orders `filledStep` returned. */
export function insertFillsStep(name: string, fills: readonly NewFillRow[], filledStep: string): Step {
  const col = <K extends keyof NewFillRow>(k: K) => fills.map((f) => f[k]);
  return {
    name,
    statement: sql`
      INSERT INTO fills (order_id, price, quantity, amount, commission, model, model_version, model_params, quote, quote_age_ms, slippage_bps, reason)
      SELECT x.order_id, x.price, x.quantity, x.amount, x.commission, x.model, x.model_version, x.model_params, x.quote, x.quote_age_ms, x.slippage_bps, x.reason
        FROM unnest(${col('orderId')}::uuid[], ${col('price')}::numeric[], ${col('quantity')}::numeric[], ${col('amount')}::numeric[],
                    ${col('commission')}::numeric[], ${col('model')}::text[], ${col('modelVersion')}::int[], ${col('modelParams')}::jsonb[],
                    ${col('quote')}::jsonb[], ${col('quoteAgeMs')}::int[], ${col('slippageBps')}::numeric[], ${col('reason')}::text[])
             AS x (order_id, price, quantity, amount, commission, model, model_version, model_params, quote, quote_age_ms, slippage_bps, reason)
       WHERE x.order_id IN (SELECT id FROM ${sql.id(filledStep)})
      RETURNING order_id`,
  };
}

/** A stored fill with its explanation, as GET /orders/{id}/fills shows it. */
export interface FillRow {
  id: string;
  order_id: string;
  price: string;
  quantity: string;
  amount: string;
  commission: string;
  rounding: string;
  model: string;
  model_version: number;
  model_params: Record<string, string> | null;
  quote: Record<string, string> | null;
  quote_age_ms: number | null;
  slippage_bps: string | null;
  reason: string | null;
  executed_at: Date;
}

/** Fills one order may have listed at once (an order of 1,000,000 shares in parts of 1,000 has 1,000). */
export const ORDER_FILLS_LIMIT_MAX = 1_000;

/** An order's fills in execution order, after fill id `afterId`, at most `limit`. */
export async function listFillsOfOrder(db: Executor, orderId: string, limit: number, afterId?: string): Promise<FillRow[]> {
  let q = db
    .selectFrom('fills')
    .select(['id', 'order_id', 'price', 'quantity', 'amount', 'commission', 'rounding', 'model', 'model_version', 'model_params', 'quote', 'quote_age_ms', 'slippage_bps', 'reason', 'executed_at'])
    .where('order_id', '=', orderId);
  if (afterId !== undefined) q = q.where('id', '>', afterId);
  return (await q.orderBy('id').limit(Math.min(Math.max(1, limit), ORDER_FILLS_LIMIT_MAX)).execute()) as FillRow[];
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

/** OPEN orders in id order after `afterId`, at most `limit`: the engine's index is built from these. */
export async function listOpenOrders(db: Executor, afterId: string | undefined, limit: number): Promise<OrderRow[]> {
  let q = db.selectFrom('orders').select(COLUMNS).where('status', '=', 'OPEN');
  if (afterId !== undefined) q = q.where('id', '>', afterId);
  return (await q.orderBy('id').limit(limit).execute()) as OrderRow[];
}

/** Ids of OPEN orders after `afterId`, in id order, at most `limit` (the index's full check). */
export async function listOpenIds(db: Executor, afterId: string | undefined, limit: number): Promise<string[]> {
  let q = db.selectFrom('orders').select('id').where('status', '=', 'OPEN');
  if (afterId !== undefined) q = q.where('id', '>', afterId);
  return (await q.orderBy('id').limit(limit).execute()).map((r) => r.id);
}

/** OPEN orders changed at or after `since` (the index's catch-up for notifications it missed). */
export async function listOpenChangedSince(db: Executor, since: Date, limit: number): Promise<OrderRow[]> {
  return (await db
    .selectFrom('orders')
    .select(COLUMNS)
    .where('status', '=', 'OPEN')
    .where('updated_at', '>=', since)
    .orderBy('updated_at')
    .limit(limit)
    .execute()) as OrderRow[];
}

/** Which of `ids` are still OPEN (the index drops the others). */
export async function stillOpen(db: Executor, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await sql<{ id: string }>`
    SELECT id FROM orders WHERE id = ANY(${[...ids]}::uuid[]) AND status = 'OPEN'`.execute(db);
  return new Set(rows.map((r) => r.id));
}

/** The live (PENDING or OPEN) orders of a user, oldest first, at most `limit` (cancel-all). */
/**
 * Cancels every live order of a user (an account reset), set-based: the rows are locked in id
 * order first, then ended with `reason`. NOWAIT: an order another transaction holds (the engine
 * filling it) raises 55P03 at once instead of waiting — the reset holds the user's balance by
 * then, so waiting here could close a cycle; it rolls back and tries again instead.
 */
export async function cancelLiveOrdersOfUser(db: Executor, userId: string, reason: string): Promise<OrderRow[]> {
  await sql`SELECT id FROM orders WHERE user_id = ${userId} AND status IN ('PENDING', 'OPEN') ORDER BY id FOR UPDATE NOWAIT`.execute(db);
  const { rows } = await sql<OrderRow>`
    UPDATE orders SET status = 'CANCELED', canceled_at = now(), cancel_reason = ${reason}, updated_at = now()
     WHERE user_id = ${userId} AND status IN ('PENDING', 'OPEN')
    RETURNING ${returning}`.execute(db);
  return rows.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Whether the user has a live order (a reset checks none slipped in past its cancel). */
export async function hasLiveOrders(db: Executor, userId: string): Promise<boolean> {
  const { rows } = await sql`SELECT 1 FROM orders WHERE user_id = ${userId} AND status IN ('PENDING', 'OPEN') LIMIT 1`.execute(db);
  return rows.length > 0;
}

/** How many orders the user placed since `since` (replacements included: each is an order). */
export async function countOrdersSince(db: Executor, userId: string, since: Date): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM orders WHERE user_id = ${userId} AND created_at >= ${since}`.execute(db);
  return rows[0]!.n;
}

/** Shares the user's live buys of a ticker are for (`exceptId`: an order being replaced). */
export async function liveBuyQuantity(db: Executor, userId: string, ticker: string, exceptId: string | null = null): Promise<string> {
  const { rows } = await sql<{ q: string }>`
    SELECT coalesce(sum(quantity), 0)::text AS q FROM orders
     WHERE user_id = ${userId} AND ticker = ${ticker} AND side = 'buy' AND status IN ('PENDING', 'OPEN')
       AND id IS DISTINCT FROM ${exceptId}::uuid`.execute(db);
  return rows[0]!.q;
}

export async function listLiveOfUser(db: Executor, userId: string, limit: number): Promise<OrderRow[]> {
  return (await db
    .selectFrom('orders')
    .select(COLUMNS)
    .where('user_id', '=', userId)
    .where('status', 'in', ['PENDING', 'OPEN'])
    .orderBy('id')
    .limit(limit)
    .execute()) as OrderRow[];
}

/**
 * The OPEN orders a session event concerns, placed at or before `at` — at the open, opg orders
 * and market orders waiting for it; at the close, cls orders and day orders — by id (time order)
 * after `afterId`, at most `limit`: the caller pages through them, so an order the event leaves
 * OPEN is read once.
 */
export async function listOpenForSession(db: Executor, event: 'open' | 'close', at: Date, limit: number, afterId?: string): Promise<OrderRow[]> {
  let q = db.selectFrom('orders').select(COLUMNS).where('status', '=', 'OPEN').where('created_at', '<=', at);
  if (afterId !== undefined) q = q.where('id', '>', afterId);
  q =
    event === 'open'
      ? q.where((eb) => eb.or([eb('time_in_force', '=', 'opg'), eb.and([eb('type', '=', 'market'), eb('time_in_force', '<>', 'cls')])]))
      : q.where('time_in_force', 'in', ['cls', 'day']);
  return (await q.orderBy('id').limit(limit).execute()) as OrderRow[];
}

/** Fills one page of fill activities reads at most. */
export const FILL_ACTIVITIES_LIMIT_MAX = 1_000;

/**
 * A page of fill activities (the Alpaca facade's GET /v2/account/activities): the ledger's
 * activity page filter, so one filter pages both sources alike.
 */
export type FillActivityFilter = ActivityPageFilter;

export interface FillActivityRow {
  /**
   * `<YYYYMMDDHHMMSSmmm>::<order id>:<fill id>`: the fill's instant in UTC, then its order and
   * the fill (an order may fill in several parts, even within one millisecond).
   */
  activity_id: string;
  order_id: string;
  ticker: string;
  side: OrderSide;
  price: string;
  quantity: string;
  /** The order's quantity, and what it had filled once this fill was in. */
  order_quantity: string;
  cum_quantity: string;
  /** The fill's instant, ISO 8601 in UTC to the millisecond (the instant of activity_id). */
  transaction_time: string;
}

/**
 * The user's fills as activities, one page in activity id order. The id is Alpaca's form, built
 * as accounts.repository.listLedgerActivities builds the ledger's (17 digits of the instant in
 * UTC, '::', then the order and fill ids), and compared byte by byte (COLLATE "C"), so fills and
 * ledger rows merge into one order and a page token means the same position in both.
 */
export async function listFillActivities(db: Executor, f: FillActivityFilter): Promise<FillActivityRow[]> {
  const limit = Math.min(Math.max(1, f.limit), FILL_ACTIVITIES_LIMIT_MAX);
  const start = f.start === undefined ? sql`true` : f.start.inclusive ? sql`x.executed_at >= ${f.start.at}` : sql`x.executed_at > ${f.start.at}`;
  const end = f.end === undefined ? sql`true` : sql`x.executed_at < ${f.end}`;
  const token = f.pageToken === undefined ? sql`true` : f.ascending ? sql`x.activity_id COLLATE "C" > ${f.pageToken}` : sql`x.activity_id COLLATE "C" < ${f.pageToken}`;
  const { rows } = await sql<FillActivityRow>`
    SELECT x.activity_id, x.order_id, x.ticker, x.side, x.price, x.quantity, x.order_quantity, x.cum_quantity, x.transaction_time FROM (
      SELECT to_char(fl.executed_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSMS') || '::' || o.id::text || ':' || fl.id::text AS activity_id,
             o.id::text AS order_id, o.ticker, o.side, fl.price::text AS price, fl.quantity::text AS quantity,
             o.quantity::text AS order_quantity,
             (sum(fl.quantity) OVER (PARTITION BY fl.order_id ORDER BY fl.id))::text AS cum_quantity,
             ${isoMillisUtc(sql`fl.executed_at`)} AS transaction_time, fl.executed_at
        FROM orders o JOIN fills fl ON fl.order_id = o.id
       WHERE o.user_id = ${f.userId}
    ) x
    WHERE ${start} AND ${end} AND ${token}
    ORDER BY x.activity_id COLLATE "C" ${f.ascending ? sql`ASC` : sql`DESC`}
    LIMIT ${limit}`.execute(db);
  return rows;
}
