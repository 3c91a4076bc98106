/**
 * Alpaca's order routes, translated to the native OMS: `POST /v2/orders` builds the same
 * command as `POST /orders` (papertrade's order terms, its idempotency by client_order_id) and
 * answers the order in Alpaca's shape; the reads, the replace and the cancels call the same
 * service methods as the native routes. Nothing here decides anything about an order beyond
 * what Alpaca's request means.
 */
import { Type } from 'typebox';
import type { AppContext } from '../app.js';
import { AppError } from '../core/errors.js';
import { parseCash, parseQty, quantityForNotional, type Qty } from '../core/money.js';
import { parseTerms, ORDER_TYPES, TIMES_IN_FORCE, type OrderType, type TimeInForce } from '../core/order-terms.js';
import { CLOSED_STATUSES, OPEN_STATUSES, type OrderStatus } from '../core/orders.js';
import { IdempotencyKey, UUID_PATTERN } from '../http/schemas.js';
import type { Server } from '../http/server.js';
import { normalizeTicker } from '../services/market-data/instruments.js';
import { OrderNotFoundError } from '../services/orders/orders.errors.js';
import type { ReplaceOrder } from '../services/orders/orders.service.js';
import { AlpacaError, alpacaErrorResponse } from './alpaca.errors.js';
import { instantParam } from './alpaca.params.js';
import { calendarTimeZone } from '../core/calendar.js';
import { alpacaUserId } from './alpaca.routes.js';
import { alpacaOrder, ALPACA_STATUS_QUERY } from './alpaca.views.js';

/** Orders one list returns at most, and by default (Alpaca's limits). */
export const ALPACA_ORDERS_LIMIT_MAX = 500;
export const ALPACA_ORDERS_LIMIT_DEFAULT = 50;
/** Symbols one `symbols` filter takes at most. */
export const ALPACA_SYMBOLS_MAX = 100;

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Amount = Type.Union([Type.String({ maxLength: 40 }), Type.Number(), Type.Null()], {
  description: 'a positive decimal, as a JSON number or a string (e.g. 10, "10", "0.5")',
});
const Symbol = Type.String({ minLength: 1, maxLength: 32, description: 'a symbol such as AAPL' });
const Timestamp = Type.String({ maxLength: 40, description: 'an RFC 3339 timestamp such as 2026-12-01T14:30:00Z, or a date such as 2026-12-01' });

const PlaceBody = Type.Object(
  {
    symbol: Symbol,
    qty: Type.Optional(Amount),
    notional: Type.Optional(Amount),
    side: Type.String({ enum: ['buy', 'sell'] }),
    type: Type.String({ enum: [...ORDER_TYPES] }),
    time_in_force: Type.String({ enum: [...TIMES_IN_FORCE] }),
    limit_price: Type.Optional(Amount),
    stop_price: Type.Optional(Amount),
    trail_price: Type.Optional(Amount),
    trail_percent: Type.Optional(Amount),
    extended_hours: Type.Optional(Nullable(Type.Boolean())),
    client_order_id: Type.Optional(Nullable(IdempotencyKey)),
    order_class: Type.Optional(Nullable(Type.String({ enum: ['', 'simple', 'bracket', 'oco', 'oto', 'mleg'] }))),
    position_intent: Type.Optional(Nullable(Type.String({ enum: ['buy_to_open', 'buy_to_close', 'sell_to_open', 'sell_to_close'] }))),
    // Parts of the order classes papertrade does not have: named so that the refusal says so.
    take_profit: Type.Optional(Type.Unknown()),
    stop_loss: Type.Optional(Type.Unknown()),
    legs: Type.Optional(Type.Unknown()),
    advanced_instructions: Type.Optional(Type.Unknown()),
    subtag: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
  },
  { additionalProperties: false },
);

const ReplaceBody = Type.Object(
  {
    qty: Type.Optional(Amount),
    time_in_force: Type.Optional(Nullable(Type.String({ enum: [...TIMES_IN_FORCE] }))),
    limit_price: Type.Optional(Amount),
    stop_price: Type.Optional(Amount),
    trail: Type.Optional(Amount),
    client_order_id: Type.Optional(Nullable(IdempotencyKey)),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.String({ enum: [...ALPACA_STATUS_QUERY] })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: `a whole number from 1 to ${ALPACA_ORDERS_LIMIT_MAX} (default ${ALPACA_ORDERS_LIMIT_DEFAULT})` })),
    after: Type.Optional(Timestamp),
    until: Type.Optional(Timestamp),
    direction: Type.Optional(Type.String({ enum: ['asc', 'desc'] })),
    nested: Type.Optional(Type.String({ enum: ['true', 'false'] })),
    symbols: Type.Optional(Type.String({ maxLength: 4_000, description: 'comma-separated symbols such as AAPL,MSFT' })),
    side: Type.Optional(Type.String({ enum: ['buy', 'sell'] })),
    asset_class: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);

const OrderIdParams = Type.Object({ order_id: Type.String({ maxLength: 100 }) }, { additionalProperties: false });
const NestedQuery = Type.Object({ nested: Type.Optional(Type.String({ enum: ['true', 'false'] })) }, { additionalProperties: false });
const uuidRe = new RegExp(UUID_PATTERN);

/** An amount field: absent when missing or null (the SDKs send null for "not set"). */
function present(value: unknown): value is string | number {
  return value !== undefined && value !== null;
}

/** An order id from the path; anything that is not a UUID names no order (404, as Alpaca). */
function orderIdOf(raw: string): string {
  if (!uuidRe.test(raw)) throw new OrderNotFoundError(raw);
  return raw.toLowerCase();
}

/** Alpaca's order classes papertrade has: simple orders only. */
function requireSimple(body: { order_class?: string | null; take_profit?: unknown; stop_loss?: unknown; legs?: unknown; advanced_instructions?: unknown }): void {
  const cls = body.order_class ?? '';
  if (cls !== '' && cls !== 'simple') {
    throw new AlpacaError('VALIDATION_FAILED', `order_class ${cls} is not supported: papertrade places simple orders (order_class simple); place the legs as separate orders`, { field: 'order_class' });
  }
  for (const field of ['take_profit', 'stop_loss', 'legs', 'advanced_instructions'] as const) {
    if (body[field] !== undefined && body[field] !== null) {
      throw new AlpacaError('VALIDATION_FAILED', `${field} is not supported: papertrade places simple orders only`, { field });
    }
  }
}

/**
 * The quantity an order asks for: `qty`, or for `notional` (Alpaca: market orders, time in force
 * day) the most shares the amount buys at the current quote, rounded down.
 */
async function orderQuantity(ctx: AppContext, ticker: string, body: { qty?: unknown; notional?: unknown; type: string; time_in_force: string }): Promise<Qty> {
  const hasQty = present(body.qty);
  const hasNotional = present(body.notional);
  if (hasQty === hasNotional) {
    throw new AlpacaError('VALIDATION_FAILED', hasQty ? 'qty and notional cannot both be given: give one' : 'qty or notional is required', { field: hasQty ? 'notional' : 'qty' });
  }
  if (hasQty) return parseQty(body.qty, 'qty');
  if (body.type !== 'market' || body.time_in_force !== 'day') {
    throw new AlpacaError('VALIDATION_FAILED', 'notional orders must be market orders with time_in_force day', { field: 'notional' });
  }
  const amount = parseCash(body.notional, 'notional');
  const quote = await ctx.market.getPrice(ticker);
  const quantity = quantityForNotional(amount, quote.price);
  if (quantity === 0n) throw new AlpacaError('VALIDATION_FAILED', `notional ${body.notional as string} buys less than 0.000001 shares of ${ticker} at its price`, { field: 'notional' });
  return quantity;
}

function statusesOf(status: string | undefined): readonly OrderStatus[] | undefined {
  if (status === 'all') return undefined;
  if (status === 'closed') return CLOSED_STATUSES;
  return OPEN_STATUSES;
}

export function registerAlpacaOrderRoutes(server: Server, ctx: AppContext): void {
  const orders = ctx.orders;
  const user = { auth: 'user' as const };
  const timeZone = calendarTimeZone(ctx.config.marketCalendar, ctx.config.marketTimeZone);

  server.post(
    '/orders',
    { config: user, schema: { tags: ['alpaca'], summary: "Place an order (Alpaca's POST /v2/orders)", body: PlaceBody } },
    async (request) => {
      const userId = alpacaUserId(request);
      const body = request.body;
      requireSimple(body);
      if (body.position_intent === 'buy_to_close' || body.position_intent === 'sell_to_open') {
        throw new AlpacaError('VALIDATION_FAILED', `position_intent ${body.position_intent} opens or closes a short position: papertrade is a cash account without shorting`, { field: 'position_intent' });
      }
      // Alpaca takes extended-hours orders as DAY limit orders only. papertrade has no extended
      // session: such an order trades in the regular session, as any day limit order.
      if (body.extended_hours === true && (body.type !== 'limit' || body.time_in_force !== 'day')) {
        throw new AlpacaError('VALIDATION_FAILED', 'extended hours order must be DAY limit orders', { field: 'extended_hours' });
      }
      const ticker = normalizeTicker(body.symbol) ?? body.symbol;
      const side = body.side === 'sell' ? 'sell' : 'buy';
      try {
        const quantity = await orderQuantity(ctx, ticker, body);
        const terms = parseTerms(side, quantity, {
          type: body.type as OrderType,
          time_in_force: body.time_in_force as TimeInForce,
          limit_price: body.limit_price ?? undefined,
          stop_price: body.stop_price ?? undefined,
          trail_price: body.trail_price ?? undefined,
          trail_percent: body.trail_percent ?? undefined,
        });
        // A client_order_id the bot gives is the order's idempotency key: the same request with
        // it again answers the same order (Alpaca refuses the repeat). Without one, none is made
        // up: an order without a key shows its id as its client_order_id (as Alpaca always has
        // one), and the OMS skips the replay lookup a key costs — a generated key could never be
        // a retry, yet it cost a query per order.
        const { order } = await orders.placeOrder({ userId, ticker, terms, clientOrderId: body.client_order_id ?? undefined });
        return alpacaOrder(order);
      } catch (err) {
        // Alpaca refuses an order for an unknown symbol as an invalid order (422), not a 404.
        if (err instanceof AppError && err.code === 'UNKNOWN_TICKER') throw new AlpacaError('VALIDATION_FAILED', `asset "${ticker}" not found`, { field: 'symbol' }, err);
        throw err;
      }
    },
  );

  server.get(
    '/orders',
    { config: user, schema: { tags: ['alpaca'], summary: "List orders (Alpaca's GET /v2/orders)", querystring: ListQuery } },
    async (request) => {
      const userId = alpacaUserId(request);
      const q = request.query;
      const limit = q.limit === undefined ? ALPACA_ORDERS_LIMIT_DEFAULT : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > ALPACA_ORDERS_LIMIT_MAX) {
        throw new AlpacaError('VALIDATION_FAILED', `limit must be a whole number from 1 to ${ALPACA_ORDERS_LIMIT_MAX}`, { field: 'limit' });
      }
      let tickers: string[] | undefined;
      if (q.symbols !== undefined) {
        tickers = q.symbols.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => normalizeTicker(s) ?? s);
        if (tickers.length > ALPACA_SYMBOLS_MAX) throw new AlpacaError('VALIDATION_FAILED', `symbols takes at most ${ALPACA_SYMBOLS_MAX} symbols`, { field: 'symbols' });
      }
      const page = await orders.listOrders({
        userId,
        statuses: statusesOf(q.status),
        tickers,
        side: q.side as 'buy' | 'sell' | undefined,
        createdAfter: q.after === undefined ? undefined : new Date(instantParam(q.after, 'after', timeZone)),
        createdUntil: q.until === undefined ? undefined : new Date(instantParam(q.until, 'until', timeZone)),
        ascending: q.direction === 'asc',
        limit,
      });
      return page.orders.map(alpacaOrder);
    },
  );

  // A literal ':' in a Fastify path is written '::' (a single one starts a parameter).
  server.get(
    '/orders::by_client_order_id',
    {
      config: user,
      schema: {
        tags: ['alpaca'],
        summary: 'Get an order by its client_order_id',
        querystring: Type.Object({ client_order_id: IdempotencyKey, nested: Type.Optional(Type.String({ enum: ['true', 'false'] })) }, { additionalProperties: false }),
      },
    },
    async (request) => {
      const userId = alpacaUserId(request);
      const clientOrderId = request.query.client_order_id;
      try {
        return alpacaOrder(await orders.getOrderByClientOrderId(userId, clientOrderId));
      } catch (err) {
        // An order placed without a client_order_id shows its id as one: find it by that too.
        if (err instanceof OrderNotFoundError && uuidRe.test(clientOrderId)) {
          const order = await orders.getOrder(clientOrderId.toLowerCase(), userId).catch(() => undefined);
          if (order && order.clientOrderId === null) return alpacaOrder(order);
        }
        throw err;
      }
    },
  );

  server.get(
    '/orders/:order_id',
    { config: user, schema: { tags: ['alpaca'], summary: 'Get an order', params: OrderIdParams, querystring: NestedQuery } },
    async (request) => alpacaOrder(await orders.getOrder(orderIdOf(request.params.order_id), alpacaUserId(request))),
  );

  server.patch(
    '/orders/:order_id',
    { config: user, schema: { tags: ['alpaca'], summary: 'Replace an open order; the answer is the new order', params: OrderIdParams, body: ReplaceBody } },
    async (request) => {
      const userId = alpacaUserId(request);
      const id = orderIdOf(request.params.order_id);
      const b = request.body;
      const change: ReplaceOrder = {
        quantity: present(b.qty) ? parseQty(b.qty, 'qty') : undefined,
        limitPrice: b.limit_price ?? undefined,
        stopPrice: b.stop_price ?? undefined,
        timeInForce: b.time_in_force ?? undefined,
        clientOrderId: b.client_order_id ?? undefined,
      };
      if (present(b.trail)) {
        // Alpaca's one `trail` field is the new trail of whichever kind the order has.
        const current = await orders.getOrder(id, userId);
        if (current.type !== 'trailing_stop') throw new AlpacaError('VALIDATION_FAILED', `trail applies to trailing_stop orders, not ${current.type}`, { field: 'trail' });
        if (current.trailPercent !== null) change.trailPercent = b.trail;
        else change.trailPrice = b.trail;
      }
      if (Object.values(change).every((v) => v === undefined)) {
        throw new AlpacaError('VALIDATION_FAILED', 'a replace changes at least one of: qty, time_in_force, limit_price, stop_price, trail, client_order_id');
      }
      return alpacaOrder(await orders.replaceOrder(id, userId, change));
    },
  );

  server.delete(
    '/orders/:order_id',
    { config: user, schema: { tags: ['alpaca'], summary: 'Cancel an order (204)', params: OrderIdParams, querystring: Type.Object({}, { additionalProperties: false }) } },
    async (request, reply) => {
      await orders.cancelOrder(orderIdOf(request.params.order_id), alpacaUserId(request));
      return reply.status(204).send();
    },
  );

  server.delete(
    '/orders',
    { config: user, schema: { tags: ['alpaca'], summary: 'Cancel every open order (207, one result per order)', querystring: Type.Object({}, { additionalProperties: false }) } },
    async (request, reply) => {
      const results = await orders.cancelAll(alpacaUserId(request));
      return reply.status(207).send(
        results.map((r) => {
          if (r.order) return { id: r.id, status: 200, body: alpacaOrder(r.order) };
          const { status, body } = alpacaErrorResponse(r.error ?? new AppError('orders', 'INTERNAL', 'cancel failed'), request.id);
          return { id: r.id, status, body: { code: body.code, message: body.message } };
        }),
      );
    },
  );
}
