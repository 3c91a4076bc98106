/**
 * The order management service (OMS). It orchestrates accounts and portfolios: the hold (cash
 * for a buy, shares for a sell) and the PENDING row commit together or not at all. The hold is
 * the leaf service's own statement (its rule stays there), composed with the order insert into
 * one statement — atomic on its own and one round trip on the hot path. Only after the commit
 * does it publish the order to the stream; if that publish fails the order is still safe in
 * PostgreSQL and the reconciler publishes it later.
 */
import { hash } from 'node:crypto';
import type { Histogram, Registry } from 'prom-client';
import { AppError, ValidationError } from '../../core/errors.js';
import {
  cashFromDb,
  cashToSql,
  formatCash,
  formatExactNotional,
  formatPrice,
  formatQty,
  priceFromDb,
  priceToSql,
  qtyFromDb,
  qtyToSql,
  type Cash,
  type Price,
  type Qty,
} from '../../core/money.js';
import { buyReservation, meetsMinimumNotional, type OrderSide, type OrderStatus, type OrderType } from '../../core/orders.js';
import { Batcher, BatcherFullError } from '../../infra/batcher.js';
import { uuidv7 } from '../../infra/ids.js';
import { histogram } from '../../infra/metrics.js';
import type { Channel } from '../../infra/channel.js';
import type { Logger } from '../../infra/logger.js';
import { pgConstraint, pgErrorCode, type Db, type Executor } from '../../infra/postgres.js';
import * as accounts from '../accounts/accounts.service.js';
import { AccountNotFoundError } from '../accounts/accounts.errors.js';
import * as portfolios from '../portfolios/portfolios.service.js';
import type { Quote } from '../market-data/quote-store.js';
import { UserNotFoundError } from '../users/users.errors.js';
import { assertUserExists } from '../users/users.service.js';
import {
  AcceptQueueFullError,
  IdempotencyKeyReusedError,
  NotionalTooSmallError,
  OrderNotCancelableError,
  OrderNotFoundError,
  OrderRejectedError,
} from './orders.errors.js';
import type { OrderPipe, PipeMessage } from './order-pipe.js';
import { announce } from './order-updates.js';
import * as repo from './orders.repository.js';

export interface Order {
  id: string;
  userId: string;
  clientOrderId: string | null;
  ticker: string;
  side: OrderSide;
  type: OrderType;
  quantity: Qty;
  status: OrderStatus;
  reservedAmount: Cash;
  quotePrice: Price | null;
  fillPrice: Price | null;
  filledAt: Date | null;
  rejectReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface PlaceOrder {
  userId: string;
  ticker: string;
  side: OrderSide;
  type: OrderType;
  quantity: Qty;
  clientOrderId: string | undefined;
  /** Check that the user exists first (the admin may name any id; a user's key implies its user). */
  verifyUser?: boolean;
}

/** What the OMS needs of market data: a validated ticker and a fresh price (one round trip). */
export interface MarketPrices {
  /** Throws UNKNOWN_TICKER for a ticker that is not traded. */
  requireTicker(ticker: string): Promise<void>;
  /** Throws UNKNOWN_TICKER or PRICE_UNAVAILABLE (no quote, or older than the maximum age). */
  getPrice(ticker: string): Promise<Quote>;
}

export interface OrdersDeps {
  db: Db;
  /** Where accepted orders go to the engine. */
  pipe: OrderPipe;
  /** Where status changes are announced. */
  orderUpdates: Channel;
  logger: Logger;
  market: MarketPrices;
  reservationBufferBps: bigint;
  /** The least an order may be worth at the quote, in cents (see core/orders meetsMinimumNotional). */
  orderNotionalMin: Cash;
  /** Orders accepted in one statement at most when requests queue up; 1 accepts one by one. */
  acceptBatchMax?: number;
  /** Accept statements in flight at once (keep below the pool size: reads need connections too). */
  acceptConcurrencyMax?: number;
  /** Orders waiting for an accept statement at most; past it an order is refused with 503 at once. */
  acceptQueueMax?: number;
  metrics?: Registry;
}

/** Orders that may wait for an accept statement in one api process before new ones get 503. */
export const ACCEPT_QUEUE_MAX_DEFAULT = 10_000;

/** What a batched accept answers for one order. */
type AcceptResult =
  | { kind: 'accepted'; order: Order }
  /** No hold (refused), or its statement failed (e.g. a repeated client_order_id): try it alone. */
  | { kind: 'alone' };

interface AcceptItem {
  row: repo.NewOrderRow;
}

export function toOrder(row: repo.OrderRow): Order {
  return {
    id: row.id,
    userId: row.user_id,
    clientOrderId: row.client_order_id,
    ticker: row.ticker,
    side: row.side,
    type: row.type,
    quantity: qtyFromDb(row.quantity),
    status: row.status,
    reservedAmount: cashFromDb(row.reserved_amount),
    quotePrice: row.quote_price === null ? null : priceFromDb(row.quote_price),
    fillPrice: row.fill_price === null ? null : priceFromDb(row.fill_price),
    filledAt: row.filled_at,
    rejectReason: row.reject_reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The request as a retry must repeat it, hashed: same key + same request replays the order. */
export function requestHash(cmd: PlaceOrder): Buffer {
  const canonical = JSON.stringify([cmd.userId, cmd.ticker, cmd.side, cmd.type, formatQty(cmd.quantity)]);
  // crypto.hash: one call, no Hash object per order (Node 20.12+).
  return hash('sha256', canonical, 'buffer');
}

export class OrdersService {
  private readonly accepts: Batcher<AcceptItem, AcceptResult> | undefined;
  /** Orders per accept statement: how much the batching saves under the current load. */
  readonly acceptBatchSize: Histogram;

  constructor(private readonly deps: OrdersDeps) {
    this.acceptBatchSize = histogram(deps.metrics, 'papertrade_oms_accept_batch_orders', 'Orders per batched accept statement', [
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024,
    ]);
    const sizeMax = deps.acceptBatchMax ?? 1;
    this.accepts =
      sizeMax > 1
        ? new Batcher((items) => this.acceptMany(items), {
            sizeMax,
            concurrencyMax: deps.acceptConcurrencyMax ?? 2,
            queueMax: deps.acceptQueueMax ?? ACCEPT_QUEUE_MAX_DEFAULT,
          })
        : undefined;
  }

  /**
   * Places a market order. Returns `created: false` when the client_order_id was seen before
   * with the same request (the original order is returned, nothing new happens).
   */
  async placeOrder(cmd: PlaceOrder): Promise<{ order: Order; created: boolean }> {
    const hash = requestHash(cmd);
    if (cmd.clientOrderId !== undefined) {
      const replay = await this.replay(cmd.userId, cmd.clientOrderId, hash);
      if (replay) return { order: replay, created: false };
    }
    if (cmd.verifyUser) await assertUserExists(this.deps.db, cmd.userId);
    // Both sides are priced: a buy for its hold, both for the minimum notional.
    const quote = await this.deps.market.getPrice(cmd.ticker);
    await this.requireMinimumNotional(cmd, quote.price);
    const reserved = cmd.side === 'buy' ? buyReservation(cmd.quantity, quote.price, this.deps.reservationBufferBps) : 0n;
    const row: repo.NewOrderRow = {
      id: uuidv7(),
      user_id: cmd.userId,
      client_order_id: cmd.clientOrderId ?? null,
      request_hash: hash,
      ticker: cmd.ticker,
      side: cmd.side,
      type: cmd.type,
      quantity: qtyToSql(cmd.quantity),
      reserved_amount: cashToSql(reserved),
      quote_price: priceToSql(quote.price),
    };

    if (this.accepts) {
      const result = await this.accepts.submit({ row }).catch((err: unknown) => {
        throw err instanceof BatcherFullError ? new AcceptQueueFullError(err.queueMax) : err;
      });
      if (result.kind === 'accepted') return { order: result.order, created: true };
      // Refused or failed in the batch: the order alone gets the exact refusal (and its error
      // mapping) from the one-order path; a hold that has meanwhile become possible is taken.
    }
    return this.acceptAlone(cmd, row, reserved, hash);
  }

  /**
   * Refuses an order worth less than the minimum notional at the quote (a sell of a whole
   * position excepted: the holding is read only for a sell that is under the minimum).
   */
  private async requireMinimumNotional(cmd: PlaceOrder, price: Price): Promise<void> {
    const minimum = this.deps.orderNotionalMin;
    const order = { side: cmd.side, quantity: cmd.quantity };
    if (meetsMinimumNotional(order, price, minimum, undefined)) return;
    const held = cmd.side === 'sell' ? (await portfolios.getHolding(this.deps.db, cmd.userId, cmd.ticker))?.quantity : undefined;
    if (meetsMinimumNotional(order, price, minimum, held)) return;
    throw new OrderRejectedError(
      new NotionalTooSmallError({
        ticker: cmd.ticker,
        quantity: formatQty(cmd.quantity),
        price: formatPrice(price),
        value: formatExactNotional(cmd.quantity, price),
        minimum: formatCash(minimum),
      }),
    );
  }

  /** Accepts one order in its own statement (the hold composed with the insert) and publishes it. */
  private async acceptAlone(
    cmd: PlaceOrder,
    row: repo.NewOrderRow,
    reserved: Cash,
    hash: Buffer,
  ): Promise<{ order: Order; created: boolean }> {
    let order: Order;
    try {
      const hold =
        cmd.side === 'buy'
          ? accounts.reserveFundsStatement(cmd.userId, reserved)
          : portfolios.reserveSharesStatement(cmd.userId, cmd.ticker, cmd.quantity);
      const inserted = await repo.insertPendingOrderWithHold(this.deps.db, row, hold);
      if (!inserted) {
        throw cmd.side === 'buy'
          ? await accounts.fundsRefusal(this.deps.db, cmd.userId, reserved)
          : await portfolios.sharesRefusal(this.deps.db, cmd.userId, cmd.ticker, cmd.quantity);
      }
      order = toOrder(inserted);
    } catch (err) {
      if (pgErrorCode(err) === '23505' && pgConstraint(err) === 'orders_client_order_id_key' && cmd.clientOrderId) {
        // A concurrent request with the same key committed first; our statement undid its hold.
        const replay = await this.replay(cmd.userId, cmd.clientOrderId, hash);
        if (replay) return { order: replay, created: false };
      }
      if (err instanceof AccountNotFoundError || pgErrorCode(err) === '23503') throw new UserNotFoundError(cmd.userId);
      if (err instanceof AppError && (err.code === 'INSUFFICIENT_FUNDS' || err.code === 'INSUFFICIENT_HOLDINGS')) {
        throw new OrderRejectedError(err);
      }
      throw err;
    }

    await this.publishAccepted([order]);
    return { order, created: true };
  }

  /**
   * Accepts a batch of orders that queued up while earlier statements ran: one statement per
   * round (a round holds at most one order per user, so each balance or holding row is held
   * once, in arrival order), then one Redis pipeline publishing every accepted order. A round
   * whose statement fails sends its orders back to be accepted alone.
   */
  private async acceptMany(items: AcceptItem[]): Promise<AcceptResult[]> {
    const results: AcceptResult[] = new Array<AcceptResult>(items.length);
    const rounds: number[][] = [];
    const depth = new Map<string, number>();
    items.forEach((item, i) => {
      const d = depth.get(item.row.user_id) ?? 0;
      depth.set(item.row.user_id, d + 1);
      (rounds[d] ??= []).push(i);
    });
    const accepted: Order[] = [];
    for (const round of rounds) {
      let rows: repo.OrderRow[];
      try {
        rows = await repo.insertPendingOrdersWithHolds(
          this.deps.db,
          round.map((i) => items[i]!.row),
          (input) => ({
            steps: [
              ...accounts.reserveFundsManySteps('cash_hold', input),
              // Balances are locked before holdings: the one lock order (see lockBalancesStep).
              ...portfolios.reserveSharesManySteps('share_hold', input, 'cash_hold_lock'),
            ],
            held: ['cash_hold', 'share_hold'],
          }),
        );
      } catch (err) {
        this.deps.logger.debug({ err, orders: round.length }, 'batched accept failed; accepting its orders one by one');
        for (const i of round) results[i] = { kind: 'alone' };
        continue;
      }
      this.acceptBatchSize.observe(round.length);
      const byId = new Map(rows.map((r) => [r.id, toOrder(r)]));
      for (const i of round) {
        const order = byId.get(items[i]!.row.id);
        results[i] = order ? { kind: 'accepted', order } : { kind: 'alone' };
        if (order) accepted.push(order);
      }
    }
    await this.publishAccepted(accepted);
    return results;
  }

  /**
   * Sends committed orders down the pipe (one round trip) and announces them. A failure loses
   * nothing: the orders are PENDING in PostgreSQL and the reconciler publishes them again; the
   * clients still get their 201.
   */
  private async publishAccepted(orders: readonly Order[]): Promise<void> {
    if (orders.length === 0) return;
    await announce(this.deps.orderUpdates, orders, (err) => this.deps.logger.warn({ err }, 'order update announcement failed'));
    await this.deps.pipe.publish(orders.map(pipeMessage)).catch((err: unknown) =>
      this.deps.logger.warn({ err, orders: orders.length }, 'order pipe publish failed; left to the reconciler'),
    );
  }

  private async replay(userId: string, clientOrderId: string, hash: Buffer): Promise<Order | undefined> {
    const existing = await repo.getOrderByClientId(this.deps.db, userId, clientOrderId);
    if (!existing) return undefined;
    if (!existing.request_hash.equals(hash)) throw new IdempotencyKeyReusedError(clientOrderId);
    return toOrder(existing);
  }

  /** With `ownerId`, another user's order answers ORDER_NOT_FOUND: its existence is not disclosed. */
  async getOrder(id: string, ownerId?: string): Promise<Order> {
    const row = await repo.getOrder(this.deps.db, id);
    if (!row || (ownerId !== undefined && row.user_id !== ownerId)) throw new OrderNotFoundError(id);
    return toOrder(row);
  }

  async listOrders(filter: repo.OrderFilter): Promise<{ orders: Order[]; next: string | null }> {
    const rows = await repo.listOrders(this.deps.db, { ...filter, limit: filter.limit + 1 });
    const page = rows.slice(0, filter.limit).map(toOrder);
    return { orders: page, next: rows.length > filter.limit ? page[page.length - 1]!.id : null };
  }

  /**
   * Cancels a PENDING order and releases its hold in the same transaction. Racing the engine,
   * exactly one wins: both change the row only `WHERE status = 'PENDING'`.
   */
  async cancelOrder(id: string, ownerId: string | undefined): Promise<Order> {
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const row = await repo.markCanceled(trx, id, ownerId);
      if (!row) return undefined;
      const order = toOrder(row);
      await releaseHold(trx, order);
      return order;
    });
    if (!result) {
      const current = await repo.getOrder(this.deps.db, id);
      if (!current || (ownerId !== undefined && current.user_id !== ownerId)) throw new OrderNotFoundError(id);
      throw new OrderNotCancelableError(id, current.status);
    }
    await announce(this.deps.orderUpdates, [result], (err) => this.deps.logger.warn({ err }, 'order update announcement failed'));
    return result;
  }
}

/** What the pipe carries for an order: its id, and a few fields for people reading the stream. */
export function pipeMessage(o: Order): PipeMessage {
  return { orderId: o.id, userId: o.userId, ticker: o.ticker, side: o.side, type: o.type, quantity: formatQty(o.quantity) };
}

/** Returns what a pending order holds: its cash for a buy, its shares for a sell. */
export async function releaseHold(trx: Executor, order: Order): Promise<void> {
  if (order.side === 'buy') await accounts.releaseFunds(trx, order.userId, order.reservedAmount);
  else await portfolios.releaseShares(trx, order.userId, order.ticker, order.quantity);
}

export function assertSameIdempotencyKey(bodyKey: string | undefined, headerKey: string | undefined): string | undefined {
  if (bodyKey !== undefined && headerKey !== undefined && bodyKey !== headerKey) {
    throw new ValidationError('client_order_id and the Idempotency-Key header differ', { field: 'client_order_id' });
  }
  return bodyKey ?? headerKey;
}
