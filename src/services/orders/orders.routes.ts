import { Type, type Static } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { normalizeTicker } from '../market-data/instruments.js';
import { parseQty } from '../../core/money.js';
import { CLOSED_STATUSES, OPEN_STATUSES, ORDER_STATUSES, ORDER_TYPES, TIMES_IN_FORCE, type OrderStatus } from '../../core/orders.js';
import { FILL_MODELS } from '../../core/fill-models.js';
import { parseTerms } from '../../core/order-terms.js';
import { ValidationError } from '../../core/errors.js';
import { actOn, isAdmin, mayRead, readOn, type IsMemberOf } from '../../http/auth.js';
import { errorAnswer, forbidden, statusForCode, validationFailure } from '../../http/errors.js';
import {
  CashString,
  Cursor,
  DecimalInput,
  IdempotencyKey,
  LimitQuery,
  parseLimit,
  PriceString,
  QtyString,
  TickerInput,
  Uuid,
  UUID_PATTERN,
} from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { assertSameIdempotencyKey, ORDER_BATCH_MAX, type OrdersService, type PlaceOrder, type PlaceResult } from './orders.service.js';
import { fillBody, orderBody } from './order-view.js';
import { OrderNotFoundError } from './orders.errors.js';
import { ORDER_FILLS_LIMIT_MAX } from './orders.repository.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const NullablePrice = Nullable(PriceString);
const NullableTime = Nullable(Type.String());

export const OrderBody = Type.Object({
  id: Type.String(),
  user_id: Type.String(),
  client_order_id: Nullable(Type.String()),
  ticker: Type.String(),
  side: Type.String({ enum: ['buy', 'sell'] }),
  type: Type.String({ enum: [...ORDER_TYPES] }),
  time_in_force: Type.String({ enum: [...TIMES_IN_FORCE] }),
  quantity: QtyString,
  limit_price: NullablePrice,
  stop_price: NullablePrice,
  trail_price: NullablePrice,
  trail_percent: Nullable(Type.String()),
  hwm: NullablePrice,
  stop_level: NullablePrice,
  status: Type.String({ enum: [...ORDER_STATUSES, 'PARTIALLY_FILLED'] }),
  reserved_amount: CashString,
  commission: CashString,
  commission_charged: CashString,
  fill_model: Type.String({ enum: [...FILL_MODELS] }),
  fill_price: NullablePrice,
  filled_quantity: QtyString,
  filled_at: NullableTime,
  triggered_at: NullableTime,
  canceled_at: NullableTime,
  expired_at: NullableTime,
  reject_reason: Nullable(Type.String()),
  cancel_reason: Nullable(Type.String()),
  replaces: Nullable(Type.String()),
  replaced_by: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const NullableString = Nullable(Type.String());
export const FillBody = Type.Object({
  id: Type.String(),
  order_id: Type.String(),
  price: PriceString,
  quantity: QtyString,
  amount: CashString,
  commission: CashString,
  executed_at: Type.String(),
  explanation: Type.Object({
    model: Type.String({ enum: [...FILL_MODELS] }),
    model_version: Type.Integer(),
    params: Type.Record(Type.String(), Type.String(), { description: "the model's parameters (realistic: impact_coefficient_bps, daily_volume)" }),
    quote: Type.Union(
      [
        Type.Object({ bid: PriceString, ask: PriceString, last: PriceString, bid_size: QtyString, ask_size: QtyString, as_of: Type.String() }),
        Type.Null(),
      ],
      { description: 'the quote the fill used; null for fills recorded before quotes were kept' },
    ),
    quote_age_ms: Nullable(Type.Integer()),
    slippage_bps: Nullable(Type.String({ description: 'slippage from the reference price (the touch, or last under ideal), in basis points' })),
    reason: NullableString,
  }),
});
const FillsLimitQuery = Type.String({ pattern: '^[0-9]{1,4}$', description: `a whole number from 1 to ${ORDER_FILLS_LIMIT_MAX} (default 100)` });
const FillCursor = Type.String({ pattern: '^[0-9]{1,19}$', description: 'a fill id the previous page returned as next' });

const Ticker = TickerInput;
const ClientOrderId = IdempotencyKey;
const OrderIdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
const PriceInput = Type.Union([Type.String({ maxLength: 40 }), Type.Number()], {
  description: 'a positive price with at most 4 decimals, as a JSON number or a string (e.g. 140 or "139.50")',
});
const PercentInput = Type.Union([Type.String({ maxLength: 40 }), Type.Number()], {
  description: 'a percent above 0 and below 100 with at most 2 decimals, as a JSON number or a string (e.g. 5 or "2.5")',
});
const STATUS_FILTERS = ['open', 'closed', 'all', ...ORDER_STATUSES, 'PARTIALLY_FILLED'] as const;

/**
 * status=open (PENDING, OPEN and PARTIALLY_FILLED), closed (every terminal status), all, or one
 * status as the view shows it (OPEN: nothing filled yet; PARTIALLY_FILLED: OPEN with fills).
 */
function statusFilter(raw: string | undefined): { statuses: readonly OrderStatus[] | undefined; filled?: 'none' | 'some' } {
  if (raw === undefined || raw === 'all') return { statuses: undefined };
  if (raw === 'open') return { statuses: OPEN_STATUSES };
  if (raw === 'closed') return { statuses: CLOSED_STATUSES };
  if (raw === 'PARTIALLY_FILLED') return { statuses: ['OPEN'], filled: 'some' };
  if (raw === 'OPEN') return { statuses: ['OPEN'], filled: 'none' };
  return { statuses: [raw as OrderStatus] };
}

/** One order as POST /orders takes it (and each element of POST /orders/batch). */
export const PlaceOrderBody = Type.Object(
  {
    user_id: Type.Optional(Type.String({ ...Uuid, description: 'a UUID (8-4-4-4-12 hexadecimal digits); optional with a user\'s key (its own user)' })),
    ticker: Ticker,
    quantity: DecimalInput,
    type: Type.String({ enum: [...ORDER_TYPES] }),
    side: Type.Optional(Type.String({ enum: ['buy', 'sell'], default: 'buy' })),
    time_in_force: Type.Optional(Type.String({ enum: [...TIMES_IN_FORCE] })),
    limit_price: Type.Optional(PriceInput),
    stop_price: Type.Optional(PriceInput),
    trail_price: Type.Optional(PriceInput),
    trail_percent: Type.Optional(PercentInput),
    client_order_id: Type.Optional(ClientOrderId),
  },
  { additionalProperties: false },
);
type PlaceOrderInput = Static<typeof PlaceOrderBody>;

export function registerOrderRoutes(server: Server, orders: OrdersService, isMemberOf: IsMemberOf): void {
  server.post(
    '/orders',
    {
      schema: {
        tags: ['orders'],
        summary: 'Place an order of any type and time in force (201 new, 200 replay of the same client_order_id)',
        headers: Type.Object({ 'idempotency-key': Type.Optional(ClientOrderId) }),
        body: PlaceOrderBody,
        response: { 200: OrderBody, 201: OrderBody },
      },
    },
    async (request, reply) => {
      const { order, created } = await orders.placeOrder(placeCommand(request, request.body, request.headers['idempotency-key']));
      return reply.status(created ? 201 : 200).send(orderBody(order));
    },
  );

  server.post(
    '/orders/batch',
    {
      schema: {
        tags: ['orders'],
        summary: `Place up to ${ORDER_BATCH_MAX} orders in one request: each is checked, replayed or refused on its own, as POST /orders would`,
        body: Type.Object(
          {
            orders: Type.Array(Type.Unknown({ description: 'an order, as the body of POST /orders' }), {
              minItems: 1,
              maxItems: ORDER_BATCH_MAX,
              description: `1 to ${ORDER_BATCH_MAX} orders, each as the body of POST /orders`,
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            results: Type.Array(
              Type.Object({
                status: Type.Integer({ description: '201 accepted, 200 a replay of the same client_order_id, else the status POST /orders would answer' }),
                order: Type.Optional(OrderBody),
                error: Type.Optional(Type.Unknown()),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const validate = request.compileValidationSchema(PlaceOrderBody, 'body');
      const cmds: (PlaceOrder | undefined)[] = [];
      const refusals = new Map<number, unknown>();
      request.body.orders.forEach((raw, i) => {
        try {
          if (!validate(raw)) throw validationFailure(validate.errors ?? [], `body.orders.${i}`);
          cmds.push(placeCommand(request, raw as PlaceOrderInput, undefined));
        } catch (err) {
          refusals.set(i, err);
          cmds.push(undefined);
        }
      });
      const placed = await orders.placeOrders(cmds.filter((c): c is PlaceOrder => c !== undefined));
      let next = 0;
      const results = cmds.map((cmd, i) => {
        const r: PlaceResult = cmd === undefined ? { error: refusals.get(i) } : placed[next++]!;
        if (r.order) return { status: r.created ? 201 : 200, order: orderBody(r.order) };
        const { status, body } = errorAnswer(request, r.error);
        return { status, error: body.error };
      });
      return { results };
    },
  );

  server.get(
    '/orders/:id',
    {
      config: { auth: 'user-or-teacher' },
      schema: { tags: ['orders'], summary: 'Get an order', params: OrderIdParams, response: { 200: OrderBody } },
    },
    async (request) => {
      const order = await orders.getOrder(request.params.id, ownerOf(request));
      // A teacher key sees its members' orders; any other order is "not found", never disclosed.
      if (!(await mayRead(request, order.userId, isMemberOf))) throw new OrderNotFoundError(request.params.id);
      return orderBody(order);
    },
  );

  server.get(
    '/orders/:id/fills',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['orders'],
        summary: "An order's fills in execution order, each with the quote, model and reason behind its price",
        params: OrderIdParams,
        querystring: Type.Object({ limit: Type.Optional(FillsLimitQuery), after: Type.Optional(FillCursor) }, { additionalProperties: false }),
        response: { 200: Type.Object({ order_id: Type.String(), fills: Type.Array(FillBody), next: Nullable(Type.String()) }) },
      },
    },
    async (request) => {
      const limit = parseLimit(request.query.limit, ORDER_FILLS_LIMIT_MAX, 100);
      const page = await orders.listFills(request.params.id, ownerOf(request), limit, request.query.after);
      if (!(await mayRead(request, page.order.userId, isMemberOf))) throw new OrderNotFoundError(request.params.id);
      return { order_id: page.order.id, fills: page.fills.map(fillBody), next: page.next };
    },
  );

  server.patch(
    '/orders/:id',
    {
      schema: {
        tags: ['orders'],
        summary: 'Replace an OPEN order: it becomes REPLACED and the answer is the new order (409 ORDER_NOT_REPLACEABLE otherwise)',
        params: OrderIdParams,
        body: Type.Object(
          {
            quantity: Type.Optional(DecimalInput),
            limit_price: Type.Optional(PriceInput),
            stop_price: Type.Optional(PriceInput),
            trail_price: Type.Optional(PriceInput),
            trail_percent: Type.Optional(PercentInput),
            time_in_force: Type.Optional(Type.String({ enum: [...TIMES_IN_FORCE] })),
            client_order_id: Type.Optional(ClientOrderId),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: OrderBody },
      },
    },
    async (request) => {
      const b = request.body;
      const order = await orders.replaceOrder(request.params.id, ownerOf(request), {
        quantity: b.quantity === undefined ? undefined : parseQty(b.quantity),
        limitPrice: b.limit_price,
        stopPrice: b.stop_price,
        trailPrice: b.trail_price,
        trailPercent: b.trail_percent,
        timeInForce: b.time_in_force,
        clientOrderId: b.client_order_id,
      });
      return orderBody(order);
    },
  );

  server.delete(
    '/orders/:id',
    {
      schema: {
        tags: ['orders'],
        summary: 'Cancel a PENDING or OPEN order (409 ORDER_NOT_CANCELABLE once terminal)',
        params: OrderIdParams,
        response: { 200: OrderBody },
      },
    },
    async (request) => orderBody(await orders.cancelOrder(request.params.id, ownerOf(request))),
  );

  server.delete(
    '/orders',
    {
      schema: {
        tags: ['orders'],
        summary: "Cancel every PENDING and OPEN order of a user (a user's key: its own; the admin: user_id required)",
        querystring: Type.Object({ user_id: Type.Optional(Uuid) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            results: Type.Array(
              Type.Object({
                id: Type.String(),
                status: Type.Integer(),
                order: Type.Optional(OrderBody),
                error: Type.Optional(Type.Unknown()),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const userId = queryUserId(request, request.query.user_id, true)!;
      const results = await orders.cancelAll(userId, isAdmin(request));
      return {
        results: results.map((r) => (r.order ? { id: r.id, status: 200, order: orderBody(r.order) } : { id: r.id, status: statusForCode(r.error!.code) ?? 500, error: r.error!.toJSON() })),
      };
    },
  );

  server.get(
    '/orders',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['orders'],
        summary: 'List orders, newest first (status: open, closed, all, or one status)',
        querystring: Type.Object(
          {
            user_id: Type.Optional(Uuid),
            status: Type.Optional(Type.String({ enum: [...STATUS_FILTERS] })),
            ticker: Type.Optional(Ticker),
            limit: Type.Optional(LimitQuery),
            before: Type.Optional(Cursor),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ orders: Type.Array(OrderBody), next: Nullable(Type.String()) }) },
      },
    },
    async (request) => {
      const q = request.query;
      const userId = await listUserId(request, q.user_id, isMemberOf);
      if (q.before !== undefined && !new RegExp(UUID_PATTERN).test(q.before)) {
        throw new ValidationError('before must be a cursor returned as next', { field: 'before' });
      }
      const page = await orders.listOrders({
        userId,
        ...statusFilter(q.status),
        ticker: q.ticker === undefined ? undefined : (normalizeTicker(q.ticker) ?? q.ticker),
        beforeId: q.before,
        limit: parseLimit(q.limit),
      });
      return { orders: page.orders.map(orderBody), next: page.next };
    },
  );
}

/** The command one order's body asks for (its user checked against the credentials). */
function placeCommand(request: FastifyRequest, body: PlaceOrderInput, idempotencyKey: string | undefined): PlaceOrder {
  const userId = orderUserId(request, body.user_id);
  const side = body.side === 'sell' ? 'sell' : 'buy';
  return {
    userId,
    ticker: normalizeTicker(body.ticker) ?? body.ticker,
    terms: parseTerms(side, parseQty(body.quantity), body),
    clientOrderId: assertSameIdempotencyKey(body.client_order_id, idempotencyKey),
    verifyUser: isAdmin(request),
  };
}

/**
 * Whose orders a list shows: a user's key its own (another user_id is FORBIDDEN); a teacher
 * key the member it names (required); the admin the one named, or everyone's.
 */
async function listUserId(request: FastifyRequest, userId: string | undefined, isMemberOf: IsMemberOf): Promise<string | undefined> {
  if (request.principal?.kind !== 'teacher') return queryUserId(request, userId, false);
  if (userId === undefined) throw new ValidationError('querystring: user_id (a member of the class) is required with a teacher key', { field: 'user_id' });
  await readOn(request, userId.toLowerCase(), isMemberOf);
  return userId.toLowerCase();
}

/**
 * The user a query acts on: a user's key its own (another user_id is FORBIDDEN); the admin
 * the one named (required when `required`).
 */
function queryUserId(request: FastifyRequest, userId: string | undefined, required: boolean): string | undefined {
  const principal = request.principal!;
  if (principal.kind === 'user') {
    if (userId !== undefined && userId.toLowerCase() !== principal.userId) throw forbidden();
    return principal.userId;
  }
  // A teacher key never acts for anyone (its routes refuse it before this; this keeps it so).
  if (principal.kind === 'teacher') throw forbidden();
  if (required && userId === undefined) throw new ValidationError('querystring: user_id is required with the admin token', { field: 'user_id' });
  return userId?.toLowerCase();
}

/**
 * Whose order this is: a user's key implies its own user (user_id may be left out, and another
 * user's id is FORBIDDEN); the admin token must name the user.
 */
function orderUserId(request: FastifyRequest, bodyUserId: string | undefined): string {
  const userId = bodyUserId?.toLowerCase() ?? (request.principal?.kind === 'user' ? request.principal.userId : undefined);
  if (userId === undefined) {
    throw new ValidationError('body: user_id is required with the admin token (a user\'s key implies its own user)', { field: 'user_id' });
  }
  actOn(request, userId);
  return userId;
}

/** A user's key sees only its own orders (others answer 404); the admin sees all. */
function ownerOf(request: { principal?: { kind: string; userId?: string } | undefined }): string | undefined {
  const p = request.principal;
  return p && p.kind === 'user' ? p.userId : undefined;
}
