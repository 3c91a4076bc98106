import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { normalizeTicker } from '../market-data/instruments.js';
import { parseQty, formatCash, formatPrice, formatQty } from '../../core/money.js';
import { ORDER_STATUSES } from '../../core/orders.js';
import { ValidationError } from '../../core/errors.js';
import { actOn, isAdmin } from '../../http/auth.js';
import { forbidden } from '../../http/errors.js';
import {
  CashString,
  Cursor,
  DecimalInput,
  IdempotencyKey,
  iso,
  LimitQuery,
  parseLimit,
  PriceString,
  QtyString,
  TickerInput,
  Uuid,
  UUID_PATTERN,
} from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { assertSameIdempotencyKey, type Order, type OrdersService } from './orders.service.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const OrderBody = Type.Object({
  id: Type.String(),
  user_id: Type.String(),
  client_order_id: Nullable(Type.String()),
  ticker: Type.String(),
  side: Type.String({ enum: ['buy', 'sell'] }),
  type: Type.String({ enum: ['market'] }),
  quantity: QtyString,
  status: Type.String({ enum: [...ORDER_STATUSES] }),
  reserved_amount: CashString,
  fill_price: Nullable(PriceString),
  filled_at: Nullable(Type.String()),
  reject_reason: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
});

export function orderBody(o: Order) {
  return {
    id: o.id,
    user_id: o.userId,
    client_order_id: o.clientOrderId,
    ticker: o.ticker,
    side: o.side,
    type: o.type,
    quantity: formatQty(o.quantity),
    status: o.status,
    reserved_amount: formatCash(o.reservedAmount),
    fill_price: o.fillPrice === null ? null : formatPrice(o.fillPrice),
    filled_at: o.filledAt === null ? null : iso(o.filledAt),
    reject_reason: o.rejectReason,
    created_at: iso(o.createdAt),
    updated_at: iso(o.updatedAt),
  };
}

const Ticker = TickerInput;
const ClientOrderId = IdempotencyKey;
const OrderIdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export function registerOrderRoutes(server: Server, orders: OrdersService): void {
  server.post(
    '/orders',
    {
      schema: {
        tags: ['orders'],
        summary: 'Place a market order (201 new, 200 replay of the same client_order_id)',
        headers: Type.Object({ 'idempotency-key': Type.Optional(ClientOrderId) }),
        body: Type.Object(
          {
            user_id: Type.Optional(Type.String({ ...Uuid, description: 'a UUID (8-4-4-4-12 hexadecimal digits); optional with a user\'s key (its own user)' })),
            ticker: Ticker,
            quantity: DecimalInput,
            type: Type.String({ enum: ['market'] }),
            side: Type.Optional(Type.String({ enum: ['buy', 'sell'], default: 'buy' })),
            client_order_id: Type.Optional(ClientOrderId),
          },
          { additionalProperties: false },
        ),
        response: { 200: OrderBody, 201: OrderBody },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const userId = orderUserId(request, body.user_id);
      const { order, created } = await orders.placeOrder({
        userId,
        ticker: normalizeTicker(body.ticker) ?? body.ticker,
        side: body.side === 'sell' ? 'sell' : 'buy',
        type: 'market',
        quantity: parseQty(body.quantity),
        clientOrderId: assertSameIdempotencyKey(body.client_order_id, request.headers['idempotency-key']),
        verifyUser: isAdmin(request),
      });
      return reply.status(created ? 201 : 200).send(orderBody(order));
    },
  );

  server.get(
    '/orders/:id',
    { schema: { tags: ['orders'], summary: 'Get an order', params: OrderIdParams, response: { 200: OrderBody } } },
    async (request) => {
      const order = await orders.getOrder(request.params.id, ownerOf(request));
      return orderBody(order);
    },
  );

  server.delete(
    '/orders/:id',
    {
      schema: {
        tags: ['orders'],
        summary: 'Cancel a PENDING order (409 ORDER_NOT_CANCELABLE once terminal)',
        params: OrderIdParams,
        response: { 200: OrderBody },
      },
    },
    async (request) => orderBody(await orders.cancelOrder(request.params.id, ownerOf(request))),
  );

  server.get(
    '/orders',
    {
      schema: {
        tags: ['orders'],
        summary: 'List orders, newest first',
        querystring: Type.Object(
          {
            user_id: Type.Optional(Uuid),
            status: Type.Optional(Type.String({ enum: [...ORDER_STATUSES] })),
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
      const principal = request.principal!;
      let userId = q.user_id;
      if (principal.kind === 'user') {
        if (userId !== undefined && userId !== principal.userId) throw forbidden();
        userId = principal.userId;
      }
      if (q.before !== undefined && !new RegExp(UUID_PATTERN).test(q.before)) {
        throw new ValidationError('before must be a cursor returned as next', { field: 'before' });
      }
      const page = await orders.listOrders({
        userId,
        status: q.status as (typeof ORDER_STATUSES)[number] | undefined,
        ticker: q.ticker === undefined ? undefined : (normalizeTicker(q.ticker) ?? q.ticker),
        beforeId: q.before,
        limit: parseLimit(q.limit),
      });
      return { orders: page.orders.map(orderBody), next: page.next };
    },
  );
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
