/**
 * Alpaca's position routes, translated to the native services: a position is a holding valued
 * at the latest quote (portfolios.valuePortfolio, as the native GET /users/{id}/portfolio
 * values it), and closing one is a market sell placed through the native OMS, the same path as
 * the native POST /orders, so it is an order like any other (events, trade_updates, fills).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../app.js';
import { AppError } from '../core/errors.js';
import { divRound, formatCash, formatFixed, formatPrice, formatQty, notional, parseDecimal, parseQty, QTY_SCALE, type Price, type Qty } from '../core/money.js';
import { parseTerms } from '../core/order-terms.js';
import { UUID_PATTERN } from '../http/schemas.js';
import type { Server } from '../http/server.js';
import { normalizeTicker } from '../services/market-data/instruments.js';
import type { Order } from '../services/orders/orders.service.js';
import * as portfolios from '../services/portfolios/portfolios.service.js';
import { AlpacaError, alpacaErrorResponse } from './alpaca.errors.js';
import { alpacaUserId } from './alpaca.routes.js';
import { alpacaOrder, assetId } from './alpaca.views.js';

/**
 * The exchange a position shows: papertrade has no exchanges, and lists every asset on this one
 * (the same constant as the asset routes' ALPACA_EXCHANGE).
 */
const POSITION_EXCHANGE = 'NASDAQ';

/** Fractions (unrealized_plpc, change_today: 0.0123 is 1.23 %) have this many decimals, half-up. */
const FRACTION_DECIMALS = 6;
const FRACTION_UNIT = 10n ** BigInt(FRACTION_DECIMALS);

/** A percentage to close: above 0 and at most 100, with at most 6 decimals. */
const PERCENTAGE_SCALE = 6;
const PERCENTAGE_MAX = 100n * 10n ** BigInt(PERCENTAGE_SCALE);

/**
 * Positions one DELETE /v2/positions closes at most. A user holds at most one position per
 * listed instrument, so this is never reached in practice; it bounds the work of one request.
 */
export const POSITIONS_CLOSED_MAX = 1_000;

const uuidRe = new RegExp(UUID_PATTERN);

const PositionParams = Type.Object({ symbol_or_asset_id: Type.String({ minLength: 1, maxLength: 64, description: 'a symbol such as AAPL (any case), or an asset id' }) }, { additionalProperties: false });
const CloseQuery = Type.Object(
  {
    qty: Type.Optional(Type.String({ maxLength: 40, description: 'the shares to sell, with at most 6 decimals' })),
    percentage: Type.Optional(Type.String({ maxLength: 40, description: 'the percent of the position to sell: above 0 and at most 100, with at most 6 decimals' })),
  },
  { additionalProperties: false },
);
const CloseAllQuery = Type.Object(
  { cancel_orders: Type.Optional(Type.String({ enum: ['true', 'false'], description: 'cancel every open order first (default false)' })) },
  { additionalProperties: false },
);

/** `numerator / denominator` as a fraction, half-up to FRACTION_DECIMALS (denominator > 0). */
function fraction(numerator: bigint, denominator: bigint): string {
  return formatFixed(divRound(numerator * FRACTION_UNIT, denominator, 'half-up'), FRACTION_DECIMALS);
}

/**
 * A valued position in Alpaca's shape. Amounts are cents, rounded half-up as the native
 * valuation rounds them: market_value = qty × current price, cost_basis = qty × average entry
 * price, unrealized_pl their difference. unrealized_plpc is the exact ratio of the unrounded
 * amounts, (current − entry) / entry, rounded once.
 *
 * papertrade keeps no previous close per ticker, so the intraday fields count the position's
 * day from its entry: lastday_price is the average entry price, and the intraday profit and loss
 * and change_today equal the unrealized totals. Consistent with one another (intraday_pl is
 * qty × (current − lastday)), though not a calendar day's change for a position held longer.
 */
function alpacaPosition(p: portfolios.ValuedPosition) {
  const costBasis = notional(p.quantity, p.avgCost, 'half-up');
  const unrealizedPl = formatCash(p.marketValue - costBasis);
  const plpc = fraction(p.marketPrice - p.avgCost, p.avgCost);
  return {
    asset_id: assetId(p.ticker),
    symbol: p.ticker,
    exchange: POSITION_EXCHANGE,
    asset_class: 'us_equity' as const,
    asset_marginable: false,
    qty: formatQty(p.quantity),
    // Shares open sell orders hold are not available to another sell.
    qty_available: formatQty(p.availableQuantity),
    avg_entry_price: formatPrice(p.avgCost),
    side: 'long' as const,
    market_value: formatCash(p.marketValue),
    cost_basis: formatCash(costBasis),
    unrealized_pl: unrealizedPl,
    unrealized_plpc: plpc,
    unrealized_intraday_pl: unrealizedPl,
    unrealized_intraday_plpc: plpc,
    current_price: formatPrice(p.marketPrice),
    lastday_price: formatPrice(p.avgCost),
    change_today: plpc,
  };
}

/**
 * The holding a path names: a ticker in any case, or an asset id (assetId of a held ticker);
 * undefined when the user holds none of it.
 */
async function findHolding(ctx: AppContext, userId: string, symbolOrAssetId: string): Promise<portfolios.Holding | undefined> {
  if (uuidRe.test(symbolOrAssetId)) {
    const id = symbolOrAssetId.toLowerCase();
    return (await portfolios.listHoldings(ctx.db, userId)).find((h) => assetId(h.ticker) === id);
  }
  const ticker = normalizeTicker(symbolOrAssetId);
  return ticker === undefined ? undefined : portfolios.getHolding(ctx.db, userId, ticker);
}

function positionNotFound(): AlpacaError {
  return new AlpacaError('NOT_FOUND', 'position does not exist');
}

/** A holding valued at the latest quote (its average cost without one), as valuePortfolio does. */
async function valued(ctx: AppContext, holding: portfolios.Holding): Promise<portfolios.ValuedPosition> {
  const quotes = await ctx.quotes.getMany([holding.ticker]);
  const prices = new Map<string, Price>([...quotes].map(([t, q]) => [t, q.price]));
  return portfolios.valuePositions([holding], prices)[0]!;
}

/**
 * The shares a close sells: `qty`, or `percentage` of the holding rounded DOWN to the quantity
 * scale (never more than asked), or the whole holding. A qty above what is held is the OMS's
 * refusal (INSUFFICIENT_HOLDINGS), as for any sell.
 */
function closeQuantity(held: Qty, ticker: string, q: { qty?: string | undefined; percentage?: string | undefined }): Qty {
  if (q.qty !== undefined && q.percentage !== undefined) {
    throw new AlpacaError('VALIDATION_FAILED', 'qty and percentage cannot both be given: give one, or neither to close the whole position', { field: 'percentage' });
  }
  if (q.qty !== undefined) return parseQty(q.qty, 'qty');
  if (q.percentage === undefined) return held;
  const pct = parseDecimal(q.percentage, { scale: PERCENTAGE_SCALE, max: PERCENTAGE_MAX, field: 'percentage' });
  const quantity = divRound(held * pct, PERCENTAGE_MAX, 'down');
  if (quantity === 0n) {
    throw new AlpacaError(
      'VALIDATION_FAILED',
      `percentage ${q.percentage} of ${formatQty(held)} ${ticker} is less than the smallest quantity (${formatFixed(1n, QTY_SCALE)} shares)`,
      { field: 'percentage' },
    );
  }
  return quantity;
}

/** A market sell for the day, placed as the native POST /orders places one, with a fresh client_order_id. */
async function sellAtMarket(ctx: AppContext, userId: string, ticker: string, quantity: Qty): Promise<Order> {
  const terms = parseTerms('sell', quantity, { type: 'market', time_in_force: 'day' });
  const { order } = await ctx.orders.placeOrder({ userId, ticker, terms, clientOrderId: randomUUID() });
  return order;
}

/** One position's result in a close-all: the order, or the refusal in Alpaca's error body. */
async function closeOne(ctx: AppContext, request: FastifyRequest, userId: string, h: portfolios.Holding) {
  try {
    return { symbol: h.ticker, status: 200, body: alpacaOrder(await sellAtMarket(ctx, userId, h.ticker, h.quantity)) };
  } catch (err) {
    const { status, body } = alpacaErrorResponse(err, request.id);
    if (!(err instanceof AppError)) request.log.error({ err, ticker: h.ticker }, 'closing a position failed');
    return { symbol: h.ticker, status, body: { code: body.code, message: body.message } };
  }
}

export function registerAlpacaPositionRoutes(server: Server, ctx: AppContext): void {
  const user = { auth: 'user' as const };

  server.get('/positions', { config: user, schema: { tags: ['alpaca'], summary: 'Open positions, valued at the latest prices' } }, async (request) => {
    const userId = alpacaUserId(request);
    return (await portfolios.valuePortfolio(ctx.db, ctx.quotes, userId)).map(alpacaPosition);
  });

  server.get(
    '/positions/:symbol_or_asset_id',
    { config: user, schema: { tags: ['alpaca'], summary: 'One open position (404 when there is none)', params: PositionParams } },
    async (request) => {
      const userId = alpacaUserId(request);
      const holding = await findHolding(ctx, userId, request.params.symbol_or_asset_id);
      if (!holding) throw positionNotFound();
      return alpacaPosition(await valued(ctx, holding));
    },
  );

  server.delete(
    '/positions/:symbol_or_asset_id',
    {
      config: user,
      schema: {
        tags: ['alpaca'],
        summary: 'Close a position (all of it, qty shares, or a percentage): a market sell for the day; the answer is the order',
        params: PositionParams,
        querystring: CloseQuery,
      },
    },
    async (request) => {
      const userId = alpacaUserId(request);
      const holding = await findHolding(ctx, userId, request.params.symbol_or_asset_id);
      if (!holding) throw positionNotFound();
      const quantity = closeQuantity(holding.quantity, holding.ticker, request.query);
      return alpacaOrder(await sellAtMarket(ctx, userId, holding.ticker, quantity));
    },
  );

  server.delete(
    '/positions',
    {
      config: user,
      schema: {
        tags: ['alpaca'],
        summary: 'Close every position (207: one result per position); cancel_orders=true cancels every open order first',
        querystring: CloseAllQuery,
      },
    },
    async (request, reply) => {
      const userId = alpacaUserId(request);
      // Cancelling first frees the shares open sells hold, so the whole holdings can be sold.
      if (request.query.cancel_orders === 'true') await ctx.orders.cancelAll(userId);
      const holdings = (await portfolios.listHoldings(ctx.db, userId)).slice(0, POSITIONS_CLOSED_MAX);
      const results = [];
      // One after the other: the OMS accepts one order of a user at a time anyway.
      for (const h of holdings) results.push(await closeOne(ctx, request, userId, h));
      return reply.status(207).send(results);
    },
  );
}
