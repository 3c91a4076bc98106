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
  formatFixed,
  formatQty,
  fromDb,
  priceFromDb,
  priceToSql,
  CASH_SCALE,
  PRICE_SCALE,
  QTY_SCALE,
  qtyFromDb,
  qtyToSql,
  notional,
  sum,
  type Cash,
  type Price,
  type Qty,
} from '../../core/money.js';
import { meetsMinimumNotional, type OrderStatus } from '../../core/orders.js';
import { classCommissionSchedule, classOpenAt, ruleViolation } from '../../core/class-rules.js';
import { chargesAnything, commissionForValue, commissionScheduleToJson, parseCommissionSchedule, type CommissionSchedule } from '../../core/commissions.js';
import type { FillModelName } from '../../core/fill-models.js';
import { localDateAt, zonedTimeToEpochMs } from '../../core/calendar.js';
import { holdFor, initialState, parseTerms, TRAIL_PERCENT_SCALE, type OrderTerms, type RawTerms } from '../../core/order-terms.js';
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
import type { MemberClass } from '../classes/class-membership.js';
import { ClassClosedError, ClassRuleViolatedError } from '../classes/classes.errors.js';
import { assertUserExists, missingUsers } from '../users/users.service.js';
import {
  AcceptQueueFullError,
  IdempotencyKeyReusedError,
  NotionalTooSmallError,
  OrderNotCancelableError,
  OrderNotReplaceableError,
  OrderNotFoundError,
  OrderRejectedError,
} from './orders.errors.js';
import type { OrderPipe, PipeMessage } from './order-pipe.js';
import { announce } from './order-updates.js';
import { insertedEvent, orderEvent } from './order-events.js';
import * as repo from './orders.repository.js';
import type { EventBus, EventRecord } from '../events/event-log.js';
import * as eventsRepo from '../events/events.repository.js';
import { publishEvents } from '../events/events.service.js';

/** An order as stored: its terms (core/order-terms.ts) and what has happened to it. */
export interface Order extends OrderTerms {
  id: string;
  userId: string;
  clientOrderId: string | null;
  ticker: string;
  /** Trailing stops: the best price since placement, and the trigger level it gives. */
  hwm: Price | null;
  stopLevel: Price | null;
  status: OrderStatus;
  /** The hold: a buy's cash for its cost and commission, a sell's cash for its commission. */
  reservedAmount: Cash;
  /**
   * The commission held at acceptance (within reservedAmount): the most its schedule can charge
   * at the hold's prices. What the fills charged is commissionCharged.
   */
  commission: Cash;
  commissionCharged: Cash;
  /** The schedule fixed at acceptance (the class's, else the deployment's); null for none. */
  commissionSchedule: CommissionSchedule | null;
  /** The fill model fixed at acceptance. */
  fillModel: FillModelName;
  quotePrice: Price | null;
  /** The average fill price. */
  fillPrice: Price | null;
  filledQuantity: Qty;
  /** Σ quantity × price over its fills, exact (scale QTY_SCALE + PRICE_SCALE). */
  filledValue: bigint;
  /** The as_of of the quote its last execution used (it meets each quote at most once). */
  lastFillQuoteAt: Date | null;
  filledAt: Date | null;
  triggeredAt: Date | null;
  canceledAt: Date | null;
  expiredAt: Date | null;
  rejectReason: string | null;
  cancelReason: string | null;
  replaces: string | null;
  replacedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface PlaceOrder {
  userId: string;
  ticker: string;
  terms: OrderTerms;
  clientOrderId: string | undefined;
  /** Check that the user exists first (the admin may name any id; a user's key implies its user). */
  verifyUser?: boolean;
}

/** What a replace may change (API: PATCH /orders/{id}); absent fields keep the order's values. */
export interface ReplaceOrder {
  quantity?: Qty | undefined;
  limitPrice?: unknown;
  stopPrice?: unknown;
  trailPrice?: unknown;
  trailPercent?: unknown;
  timeInForce?: string | undefined;
  clientOrderId?: string | undefined;
}

/** An order's terms, as core/order-terms reasons about them. */
export function termsOf(o: Order): OrderTerms {
  return {
    side: o.side,
    type: o.type,
    timeInForce: o.timeInForce,
    quantity: o.quantity,
    limitPrice: o.limitPrice,
    stopPrice: o.stopPrice,
    trailPrice: o.trailPrice,
    trailPercent: o.trailPercent,
  };
}

/** What the OMS needs of market data: a validated ticker and a fresh price (one round trip). */
export interface MarketPrices {
  /** Throws UNKNOWN_TICKER for a ticker that is not traded. */
  requireTicker(ticker: string): Promise<void>;
  /** Throws UNKNOWN_TICKER or PRICE_UNAVAILABLE (no quote, or older than the maximum age). */
  getPrice(ticker: string): Promise<Quote>;
}

/** What the OMS needs of classes: the class a user trades in, if any. */
export interface ClassRulesSource {
  memberClass(userId: string): Promise<MemberClass | undefined>;
  /** Reads many users' classes at once, so the memberClass calls that follow need no query. */
  prime?(userIds: readonly string[]): Promise<void>;
}

export interface OrdersDeps {
  db: Db;
  /** Where accepted orders go to the engine. */
  pipe: OrderPipe;
  /** Where status changes are announced. */
  orderUpdates: Channel;
  /** Where committed events are announced (the log itself is written with each change). */
  eventBus: EventBus;
  logger: Logger;
  market: MarketPrices;
  /** Prices of many tickers at once: a class member's equity for the position rule. */
  prices: portfolios.PriceReader;
  /** Which class a user trades in (cached): a member's orders meet its rules. */
  classes?: ClassRulesSource;
  /** The time zone of the market's days (a class's orders-per-day rule counts by them). */
  marketTimeZone?: string;
  /** The clock a class's window is checked against (tests set it). */
  now?: () => Date;
  reservationBufferBps: bigint;
  /** The deployment's fill model (FILL_MODEL; a class's rule takes its place). Default ideal. */
  fillModel?: FillModelName;
  /** The deployment's commission schedule (COMMISSION_*; a class's rule takes its place). */
  commissionSchedule?: CommissionSchedule | null;
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
  | { kind: 'accepted'; order: Order; event: EventRecord }
  /** No hold (refused), or its statement failed (e.g. a repeated client_order_id): try it alone. */
  | { kind: 'alone' };

interface AcceptItem {
  row: repo.NewOrderRow;
}

const price = (v: string | null) => (v === null ? null : priceFromDb(v));

/** The quote a fill used, as stored on it (decimal strings; as_of ISO 8601). */
export interface FillQuoteJson {
  bid: string;
  ask: string;
  last: string;
  bid_size: string;
  ask_size: string;
  as_of: string;
}

/** One execution of an order, with what explains its price (core/executions.ts: Explanation). */
export interface Fill {
  id: string;
  orderId: string;
  price: Price;
  quantity: Qty;
  amount: Cash;
  commission: Cash;
  model: FillModelName;
  modelVersion: number;
  /** As stored: decimal strings (realistic's impact coefficient and daily volume), or null. */
  modelParams: Record<string, string> | null;
  /** The quote the fill used (bid, ask, last, sizes, as_of) as stored, or null for fills before quotes were kept. */
  quote: FillQuoteJson | null;
  quoteAgeMs: number | null;
  /** Slippage from the reference price (the touch for spread models, last for ideal), in bps with 2 decimals. */
  slippageBps: string | null;
  reason: string | null;
  executedAt: Date;
}

export function toFill(row: repo.FillRow): Fill {
  return {
    id: row.id,
    orderId: row.order_id,
    price: priceFromDb(row.price),
    quantity: qtyFromDb(row.quantity),
    amount: cashFromDb(row.amount),
    commission: cashFromDb(row.commission),
    model: row.model as FillModelName,
    modelVersion: row.model_version,
    modelParams: row.model_params,
    quote: row.quote as FillQuoteJson | null,
    quoteAgeMs: row.quote_age_ms,
    slippageBps: row.slippage_bps,
    reason: row.reason,
    executedAt: row.executed_at,
  };
}

export function toOrder(row: repo.OrderRow): Order {
  return {
    id: row.id,
    userId: row.user_id,
    clientOrderId: row.client_order_id,
    ticker: row.ticker,
    side: row.side,
    type: row.type,
    timeInForce: row.time_in_force,
    quantity: qtyFromDb(row.quantity),
    limitPrice: price(row.limit_price),
    stopPrice: price(row.stop_price),
    trailPrice: price(row.trail_price),
    trailPercent: row.trail_percent === null ? null : fromDb(row.trail_percent, TRAIL_PERCENT_SCALE),
    hwm: price(row.hwm),
    stopLevel: price(row.stop_level),
    status: row.status,
    reservedAmount: cashFromDb(row.reserved_amount),
    commission: cashFromDb(row.commission),
    commissionCharged: cashFromDb(row.commission_charged),
    commissionSchedule: row.commission_schedule === null ? null : parseCommissionSchedule(row.commission_schedule, 'commission_schedule'),
    fillModel: row.fill_model,
    quotePrice: price(row.quote_price),
    fillPrice: price(row.fill_price),
    filledQuantity: qtyFromDb(row.filled_quantity),
    filledValue: fromDb(row.filled_value, QTY_SCALE + PRICE_SCALE),
    lastFillQuoteAt: row.last_fill_quote_at,
    filledAt: row.filled_at,
    triggeredAt: row.triggered_at,
    canceledAt: row.canceled_at,
    expiredAt: row.expired_at,
    rejectReason: row.reject_reason,
    cancelReason: row.cancel_reason,
    replaces: row.replaces,
    replacedBy: row.replaced_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The request as a retry must repeat it, hashed: same key + same request replays the order. */
export function requestHash(userId: string, ticker: string, t: OrderTerms, replaces: string | null = null): Buffer {
  const canonical = JSON.stringify([
    userId,
    ticker,
    t.side,
    t.type,
    t.timeInForce,
    formatQty(t.quantity),
    ...[t.limitPrice, t.stopPrice, t.trailPrice].map((p) => (p === null ? null : formatPrice(p))),
    t.trailPercent === null ? null : formatFixed(t.trailPercent, TRAIL_PERCENT_SCALE),
    replaces,
  ]);
  // crypto.hash: one call, no Hash object per order (Node 20.12+).
  return hash('sha256', canonical, 'buffer');
}

/** The new PENDING row; `hash` is the request's (requestHash), computed once by the caller. */
function newRow(
  userId: string,
  ticker: string,
  t: OrderTerms,
  reserved: Cash,
  quote: Price,
  clientOrderId: string | null,
  replaces: string | null,
  hash: Buffer,
  pricing: Pricing,
): repo.NewOrderRow {
  const p = (v: Price | null) => (v === null ? null : priceToSql(v));
  return {
    id: uuidv7(),
    user_id: userId,
    client_order_id: clientOrderId,
    request_hash: hash,
    ticker,
    side: t.side,
    type: t.type,
    time_in_force: t.timeInForce,
    quantity: qtyToSql(t.quantity),
    limit_price: p(t.limitPrice),
    stop_price: p(t.stopPrice),
    trail_price: p(t.trailPrice),
    trail_percent: t.trailPercent === null ? null : formatFixed(t.trailPercent, TRAIL_PERCENT_SCALE),
    reserved_amount: cashToSql(reserved),
    commission: cashToSql(pricing.commission),
    quote_price: priceToSql(quote),
    replaces,
    fill_model: pricing.fillModel,
    commission_schedule: pricing.schedule === null ? null : JSON.stringify(commissionScheduleToJson(pricing.schedule)),
  };
}

/** What an order fills under and pays, fixed at acceptance, and the cash it holds for them. */
export interface Pricing {
  /** The whole hold: a buy's cost and commission; a class member's sell, its commission. */
  reserved: Cash;
  /** The commission held within `reserved`. */
  commission: Cash;
  fillModel: FillModelName;
  schedule: CommissionSchedule | null;
}

/** Cash (scale 2) as a value at the scale of quantity × price (scale 10). */
const CASH_TO_VALUE = 10n ** BigInt(QTY_SCALE + PRICE_SCALE - CASH_SCALE);

/**
 * The pricing of an order: its fill model and commission schedule (the class's, else the
 * deployment's), and its hold. A buy holds the commission its schedule charges on the whole
 * cost hold (fills at lower prices cost no more: the schedule grows with value). A class
 * member's sell holds its commission at the quote, as classes always have; any other sell
 * pays its commission from its proceeds (the engine refuses a sell whose commission exceeds
 * them), so a sell needs no cash to be accepted.
 */
export function pricingFor(
  t: OrderTerms,
  quote: Price,
  deployment: { bufferBps: bigint; fillModel: FillModelName; schedule: CommissionSchedule | null },
  member: MemberClass | undefined,
): Pricing {
  const fillModel = member?.rules.fillModel ?? deployment.fillModel;
  const chosen = (member ? classCommissionSchedule(member.rules) : undefined) ?? deployment.schedule;
  const schedule = chosen !== null && chargesAnything(chosen) ? chosen : null;
  const costHold = holdFor(t, quote, deployment.bufferBps);
  let commission = 0n;
  if (schedule !== null && t.side === 'buy') commission = commissionForValue(schedule, t.quantity, costHold * CASH_TO_VALUE);
  if (schedule !== null && t.side === 'sell' && member) commission = commissionForValue(schedule, t.quantity, t.quantity * quote);
  return { reserved: costHold + commission, commission, fillModel, schedule };
}

/** The order a client_order_id names, if its request is the same one (else IDEMPOTENCY_KEY_REUSED). */
function replayOf(existing: repo.OrderRow | undefined, clientOrderId: string, hash: Buffer): Order | undefined {
  if (!existing) return undefined;
  if (!existing.request_hash.equals(hash)) throw new IdempotencyKeyReusedError(clientOrderId);
  return toOrder(existing);
}

const clientKey = (userId: string, clientOrderId: string) => `${userId}\n${clientOrderId}`;

/** Orders one POST /orders/batch may carry. */
export const ORDER_BATCH_MAX = 1_000;

/** One order's answer in a batch: the order (created: false for a replay), or why it was refused. */
export type PlaceResult = { order: Order; created: boolean; error?: undefined } | { error: unknown; order?: undefined };

/** An order checked and priced, ready for its hold (or replayed, or a class member's). */
type Prepared =
  | { kind: 'replay'; order: Order }
  | { kind: 'member'; member: MemberClass; quote: Price; hash: Buffer }
  | { kind: 'accept'; row: repo.NewOrderRow; reserved: Cash; hash: Buffer };

/** Orders one cancel-all cancels at most (a user's live orders beyond it stay; call again). */
export const CANCEL_ALL_MAX = 1_000;

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

  private pricing(t: OrderTerms, quote: Price, member: MemberClass | undefined): Pricing {
    const deployment = { bufferBps: this.deps.reservationBufferBps, fillModel: this.deps.fillModel ?? 'ideal', schedule: this.deps.commissionSchedule ?? null };
    return pricingFor(t, quote, deployment, member);
  }

  /**
   * Places an order of any type. Returns `created: false` when the client_order_id was seen
   * before with the same request (the original order is returned, nothing new happens).
   */
  async placeOrder(cmd: PlaceOrder): Promise<{ order: Order; created: boolean }> {
    const prepared = await this.prepare(cmd);
    if (prepared.kind === 'replay') return { order: prepared.order, created: false };
    if (prepared.kind === 'member') return this.acceptForMember(cmd, prepared.member, prepared.quote, prepared.hash);
    const { row, reserved, hash } = prepared;
    if (this.accepts) {
      const result = await this.accepts.submit({ row }).catch((err: unknown) => {
        throw err instanceof BatcherFullError ? new AcceptQueueFullError(err.queueMax) : err;
      });
      if (result.kind === 'accepted') return { order: result.order, created: true };
      // Refused or failed in the batch: the order alone gets the exact refusal (and its error
      // mapping) from the one-order path; a hold that has meanwhile become possible is taken.
    }
    return this.acceptAlone(cmd.userId, cmd.ticker, cmd.terms, cmd.clientOrderId, row, reserved, hash);
  }

  /**
   * Places many orders at once (POST /orders/batch): each is checked, replayed or refused on its
   * own exactly as placeOrder would, and the ones left are accepted together through the
   * set-based accept statements (one per round of at most one order per user, so a user's
   * orders are held in request order) and published in one pipeline. One answer per command, in
   * order: the order with whether it is new, or the error it was refused with. An error that is
   * not a refusal (a dependency down) is answered for that order alone: the others are unaffected.
   */
  async placeOrders(cmds: readonly PlaceOrder[]): Promise<PlaceResult[]> {
    if (cmds.length > ORDER_BATCH_MAX) throw new ValidationError(`a batch holds at most ${ORDER_BATCH_MAX} orders, not ${cmds.length}`, { field: 'orders' });
    const results = new Array<PlaceResult>(cmds.length);
    // What each order would ask of PostgreSQL alone, asked once for the batch: which users the
    // admin named exist, and the users' classes.
    const verify = [...new Set(cmds.filter((c) => c.verifyUser).map((c) => c.userId))];
    const keyed = cmds.flatMap((c) => (c.clientOrderId === undefined ? [] : [{ userId: c.userId, clientOrderId: c.clientOrderId }]));
    const [missing, , replays] = await Promise.all([
      missingUsers(this.deps.db, verify),
      this.deps.classes?.prime?.(cmds.map((c) => c.userId)),
      repo.getOrdersByClientIds(this.deps.db, keyed),
    ]);
    const known = new Map(replays.map((r) => [clientKey(r.user_id, r.client_order_id!), r]));
    const prepared = await Promise.all(
      cmds.map((cmd) =>
        missing.has(cmd.userId)
          ? { kind: 'error' as const, err: new UserNotFoundError(cmd.userId) }
          : this.prepare({ ...cmd, verifyUser: false }, known).catch((err: unknown) => ({ kind: 'error' as const, err })),
      ),
    );
    const batch: { index: number; item: AcceptItem; reserved: Cash; hash: Buffer }[] = [];
    const members: number[] = [];
    prepared.forEach((p, index) => {
      if (p.kind === 'error') results[index] = { error: p.err };
      else if (p.kind === 'replay') results[index] = { order: p.order, created: false };
      else if (p.kind === 'member') members.push(index);
      else batch.push({ index, item: { row: p.row }, reserved: p.reserved, hash: p.hash });
    });
    const settle = async (index: number, run: () => Promise<{ order: Order; created: boolean }>) => {
      results[index] = await run().catch((err: unknown) => ({ error: err }));
    };
    if (batch.length > 0) {
      const accepted = await this.acceptMany(batch.map((b) => b.item)).catch((err: unknown) => {
        this.deps.logger.debug({ err, orders: batch.length }, 'batched accept failed; accepting its orders one by one');
        return batch.map((): AcceptResult => ({ kind: 'alone' }));
      });
      const alone: (typeof batch)[number][] = [];
      accepted.forEach((r, i) => {
        if (r.kind === 'accepted') results[batch[i]!.index] = { order: r.order, created: true };
        else alone.push(batch[i]!);
      });
      // Refused in the batch (or a duplicate client_order_id in it): alone, in request order,
      // so each gets the exact refusal or replay its one-order request would.
      for (const b of alone) {
        const cmd = cmds[b.index]!;
        await settle(b.index, () => this.acceptAlone(cmd.userId, cmd.ticker, cmd.terms, cmd.clientOrderId, b.item.row, b.reserved, b.hash));
      }
    }
    // Class members' orders are accepted one at a time under their balance lock (acceptForMember).
    for (const index of members) {
      const p = prepared[index] as Extract<Prepared, { kind: 'member' }>;
      await settle(index, () => this.acceptForMember(cmds[index]!, p.member, p.quote, p.hash));
    }
    return results;
  }

  /**
   * What every order goes through before its hold: the replay of a client_order_id seen
   * before, the user's existence (for the admin), the quote, the minimum notional, and the
   * user's class. Throws the refusal; answers what is left to do.
   */
  private async prepare(cmd: PlaceOrder, known?: ReadonlyMap<string, repo.OrderRow>): Promise<Prepared> {
    const t = cmd.terms;
    const hash = requestHash(cmd.userId, cmd.ticker, t);
    if (cmd.clientOrderId !== undefined) {
      // `known`: the batch's orders with these keys, read at once (absent: none exists).
      const replay = known ? replayOf(known.get(clientKey(cmd.userId, cmd.clientOrderId)), cmd.clientOrderId, hash) : await this.replay(cmd.userId, cmd.clientOrderId, hash);
      if (replay) return { kind: 'replay', order: replay };
    }
    if (cmd.verifyUser) await assertUserExists(this.deps.db, cmd.userId);
    // Every order is priced: for the minimum notional, and a buy for its hold.
    const quote = await this.deps.market.getPrice(cmd.ticker);
    await this.requireMinimumNotional(cmd.userId, cmd.ticker, t, quote.price);
    const member = await this.deps.classes?.memberClass(cmd.userId);
    if (member) return { kind: 'member', member, quote: quote.price, hash };
    const pricing = this.pricing(t, quote.price, undefined);
    const row = newRow(cmd.userId, cmd.ticker, t, pricing.reserved, quote.price, cmd.clientOrderId ?? null, null, hash, pricing);
    return { kind: 'accept', row, reserved: pricing.reserved, hash };
  }

  /**
   * Refuses an order worth less than the minimum notional at the quote (a sell of a whole
   * position excepted: the holding is read only for a sell that is under the minimum).
   */
  private async requireMinimumNotional(userId: string, ticker: string, t: OrderTerms, price: Price, db: Executor = this.deps.db): Promise<void> {
    const minimum = this.deps.orderNotionalMin;
    const order = { side: t.side, quantity: t.quantity };
    if (meetsMinimumNotional(order, price, minimum, undefined)) return;
    const held = t.side === 'sell' ? (await portfolios.getHolding(db, userId, ticker))?.quantity : undefined;
    if (meetsMinimumNotional(order, price, minimum, held)) return;
    throw new OrderRejectedError(
      new NotionalTooSmallError({
        ticker,
        quantity: formatQty(t.quantity),
        price: formatPrice(price),
        value: formatExactNotional(t.quantity, price),
        minimum: formatCash(minimum),
      }),
    );
  }

  /** Accepts one order in its own statement (the hold composed with the insert) and publishes it. */
  private async acceptAlone(
    userId: string,
    ticker: string,
    t: OrderTerms,
    clientOrderId: string | undefined,
    row: repo.NewOrderRow,
    reserved: Cash,
    hash: Buffer,
  ): Promise<{ order: Order; created: boolean }> {
    let order: Order;
    let event: EventRecord;
    try {
      const hold =
        t.side === 'buy' ? accounts.reserveFundsStatement(userId, reserved) : portfolios.reserveSharesStatement(userId, ticker, t.quantity);
      const inserted = await repo.insertPendingOrderWithHold(this.deps.db, row, hold, eventsRepo.appendEventsSteps);
      if (!inserted) {
        throw t.side === 'buy'
          ? await accounts.fundsRefusal(this.deps.db, userId, reserved)
          : await portfolios.sharesRefusal(this.deps.db, userId, ticker, t.quantity);
      }
      order = toOrder(inserted);
      event = insertedEvent(inserted);
    } catch (err) {
      if (pgErrorCode(err) === '23505' && pgConstraint(err) === 'orders_client_order_id_key' && clientOrderId) {
        // A concurrent request with the same key committed first; our statement undid its hold.
        const replay = await this.replay(userId, clientOrderId, hash);
        if (replay) return { order: replay, created: false };
      }
      if (err instanceof AccountNotFoundError || pgErrorCode(err) === '23503') throw new UserNotFoundError(userId);
      if (err instanceof AppError && (err.code === 'INSUFFICIENT_FUNDS' || err.code === 'INSUFFICIENT_HOLDINGS')) {
        throw new OrderRejectedError(err);
      }
      throw err;
    }

    await this.publishAccepted([order], [event]);
    return { order, created: true };
  }

  /**
   * Accepts a class member's order: in one transaction that first locks the member's balance
   * row, so the member's orders are accepted one at a time and each sees the others' effects —
   * two racing orders cannot both pass a rule that only one of them fits (orders per day, the
   * position limit). The hold covers the class's commission as well: a buy's with its cost, a
   * sell's alone. Off the batched path: members are few next to the deployment's traffic.
   */
  private async acceptForMember(cmd: PlaceOrder, member: MemberClass, quote: Price, hash: Buffer): Promise<{ order: Order; created: boolean }> {
    const { userId, ticker, terms: t } = cmd;
    this.requireClassOpen(member);
    const pricing = this.pricing(t, quote, member);
    const reserved = pricing.reserved;
    const row = newRow(userId, ticker, t, reserved, quote, cmd.clientOrderId ?? null, null, hash, pricing);
    let accepted: { order: Order; events: EventRecord[] };
    try {
      accepted = await this.deps.db.transaction().execute(async (trx) => {
        await accounts.lockBalances(trx, [userId]);
        await this.requireClassRules(trx, member, userId, ticker, t, quote, null);
        await takeHold(trx, userId, ticker, t, reserved);
        const order = toOrder(await repo.insertPendingOrder(trx, row));
        return { order, events: await eventsRepo.appendEvents(trx, [orderEvent('order.new', order)]) };
      });
    } catch (err) {
      if (pgErrorCode(err) === '23505' && pgConstraint(err) === 'orders_client_order_id_key' && cmd.clientOrderId) {
        const replay = await this.replay(userId, cmd.clientOrderId, hash);
        if (replay) return { order: replay, created: false };
      }
      if (err instanceof AppError && (err.code === 'INSUFFICIENT_FUNDS' || err.code === 'INSUFFICIENT_HOLDINGS')) throw new OrderRejectedError(err);
      throw err;
    }
    await this.publishAccepted([accepted.order], accepted.events);
    return { order: accepted.order, created: true };
  }

  /** Refuses with CLASS_CLOSED outside the class's window [starts_at, ends_at). */
  private requireClassOpen(member: MemberClass): void {
    const now = this.deps.now?.() ?? new Date();
    if (!classOpenAt(member, now)) throw new OrderRejectedError(new ClassClosedError(member.classId, member.startsAt, member.endsAt, now));
  }

  /**
   * Refuses an order that breaks one of the class's rules (core/class-rules decides). Runs in
   * the caller's transaction with the member's balance row locked, and reads only what the
   * rules in force need. `replacing`: the order a replace ends (its buy does not count twice).
   */
  private async requireClassRules(trx: Executor, member: MemberClass, userId: string, ticker: string, t: OrderTerms, quote: Price, replacing: Order | null): Promise<void> {
    const rules = member.rules;
    const ordersToday = rules.maxOrdersPerDay === null ? 0 : await repo.countOrdersSince(trx, userId, this.marketDayStart());
    let positionValueAfter = 0n;
    let equity = 0n;
    if (rules.maxPositionPct !== null && t.side === 'buy') {
      const balance = await accounts.getBalance(trx, userId);
      const positions = await portfolios.valuePortfolio(trx, this.deps.prices, userId);
      equity = balance.cashBalance + sum(positions.map((p) => p.marketValue));
      const held = positions.find((p) => p.ticker === ticker)?.quantity ?? 0n;
      const liveBuys = qtyFromDb(await repo.liveBuyQuantity(trx, userId, ticker, replacing?.id ?? null));
      positionValueAfter = notional(held + liveBuys + t.quantity, quote, 'half-up');
    }
    const violation = ruleViolation(rules, { ticker, type: t.type, side: t.side, ordersToday, positionValueAfter, equity });
    if (violation) throw new OrderRejectedError(new ClassRuleViolatedError(member.classId, violation));
  }

  /** Midnight of today in the market's time zone: where a class's orders-per-day count starts. */
  private marketDayStart(): Date {
    const timeZone = this.deps.marketTimeZone ?? 'UTC';
    const now = this.deps.now?.() ?? new Date();
    return new Date(zonedTimeToEpochMs(localDateAt(now.getTime(), timeZone), '00:00', timeZone));
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
    const events: EventRecord[] = [];
    for (const round of rounds) {
      let rows: repo.InsertedOrderRow[];
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
          eventsRepo.appendEventsSteps,
        );
      } catch (err) {
        this.deps.logger.debug({ err, orders: round.length }, 'batched accept failed; accepting its orders one by one');
        for (const i of round) results[i] = { kind: 'alone' };
        continue;
      }
      this.acceptBatchSize.observe(round.length);
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const i of round) {
        const row = byId.get(items[i]!.row.id);
        if (!row) {
          results[i] = { kind: 'alone' };
          continue;
        }
        const order = toOrder(row);
        const event = insertedEvent(row);
        results[i] = { kind: 'accepted', order, event };
        accepted.push(order);
        events.push(event);
      }
    }
    await this.publishAccepted(accepted, events);
    return results;
  }

  /**
   * Sends committed orders down the pipe (one round trip) and announces them. A failure loses
   * nothing: the orders are PENDING in PostgreSQL and the reconciler publishes them again; the
   * clients still get their 201.
   */
  private async publishAccepted(orders: readonly Order[], events: readonly EventRecord[]): Promise<void> {
    if (orders.length === 0) return;
    await publishEvents(this.deps.eventBus, events, this.deps.logger);
    await announce(this.deps.orderUpdates, orders, (err) => this.deps.logger.warn({ err }, 'order update announcement failed'));
    await this.deps.pipe.publish(orders.map(pipeMessage)).catch((err: unknown) =>
      this.deps.logger.warn({ err, orders: orders.length }, 'order pipe publish failed; left to the reconciler'),
    );
  }

  private async replay(userId: string, clientOrderId: string, hash: Buffer): Promise<Order | undefined> {
    return replayOf(await repo.getOrderByClientId(this.deps.db, userId, clientOrderId), clientOrderId, hash);
  }

  /** With `ownerId`, another user's order answers ORDER_NOT_FOUND: its existence is not disclosed. */
  async getOrder(id: string, ownerId?: string): Promise<Order> {
    const row = await repo.getOrder(this.deps.db, id);
    if (!row || (ownerId !== undefined && row.user_id !== ownerId)) throw new OrderNotFoundError(id);
    return toOrder(row);
  }

  /**
   * An order's fills in execution order, each with its explanation, a page of at most `limit`
   * after fill `afterId`. With `ownerId`, another user's order answers ORDER_NOT_FOUND.
   */
  async listFills(id: string, ownerId: string | undefined, limit: number, afterId?: string): Promise<{ order: Order; fills: Fill[]; next: string | null }> {
    const order = await this.getOrder(id, ownerId);
    const rows = await repo.listFillsOfOrder(this.deps.db, id, limit + 1, afterId);
    const page = rows.slice(0, limit).map(toFill);
    return { order, fills: page, next: rows.length > limit ? page[page.length - 1]!.id : null };
  }

  /** The user's order with this client_order_id; ORDER_NOT_FOUND when it has none. */
  async getOrderByClientOrderId(userId: string, clientOrderId: string): Promise<Order> {
    const row = await repo.getOrderByClientId(this.deps.db, userId, clientOrderId);
    if (!row) throw new OrderNotFoundError(clientOrderId, 'client_order_id');
    return toOrder(row);
  }

  async listOrders(filter: repo.OrderFilter): Promise<{ orders: Order[]; next: string | null }> {
    const rows = await repo.listOrders(this.deps.db, { ...filter, limit: filter.limit + 1 });
    const page = rows.slice(0, filter.limit).map(toOrder);
    return { orders: page, next: rows.length > filter.limit ? page[page.length - 1]!.id : null };
  }

  /**
   * Cancels a live (PENDING or OPEN) order and releases its hold in the same transaction.
   * Racing the engine, exactly one wins: both change the row only while it is live.
   */
  async cancelOrder(id: string, ownerId: string | undefined): Promise<Order> {
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const row = await repo.markCanceled(trx, id, { ownerId });
      if (!row) return undefined;
      const order = toOrder(row);
      await releaseHold(trx, order);
      return { order, events: await eventsRepo.appendEvents(trx, [orderEvent('order.canceled', order)]) };
    });
    if (!result) {
      const current = await repo.getOrder(this.deps.db, id);
      if (!current || (ownerId !== undefined && current.user_id !== ownerId)) throw new OrderNotFoundError(id);
      throw new OrderNotCancelableError(id, current.status);
    }
    await publishEvents(this.deps.eventBus, result.events, this.deps.logger);
    await announce(this.deps.orderUpdates, [result.order], (err) => this.deps.logger.warn({ err }, 'order update announcement failed'));
    return result.order;
  }

  /**
   * Cancels every live order of a user (at most CANCEL_ALL_MAX), each on its own as a cancel
   * would: one that finished meanwhile answers ORDER_NOT_CANCELABLE.
   */
  async cancelAll(userId: string, verifyUser = false): Promise<{ id: string; order?: Order; error?: AppError }[]> {
    // The admin names the user: one that does not exist is a 404, not an empty success.
    if (verifyUser) await assertUserExists(this.deps.db, userId);
    const live = await repo.listLiveOfUser(this.deps.db, userId, CANCEL_ALL_MAX);
    const results: { id: string; order?: Order; error?: AppError }[] = [];
    for (const row of live) {
      try {
        results.push({ id: row.id, order: await this.cancelOrder(row.id, userId) });
      } catch (err) {
        if (err instanceof AppError) results.push({ id: row.id, error: err });
        else throw err;
      }
    }
    return results;
  }

  /**
   * Replaces an OPEN order: in ONE transaction the old order becomes REPLACED (with
   * replaced_by) and a new order with the changed terms (same side, ticker and type; `replaces`
   * the old one) takes its place PENDING, the hold adjusted by the difference — a buy holds or
   * releases cash, a sell shares. A new hold that does not fit refuses the replace and changes
   * nothing. The new order then goes to the engine like any other (it may be marketable now).
   * Racing a fill, exactly one wins: the old row is locked while OPEN, and a fill changes it
   * only while it is live.
   */
  async replaceOrder(id: string, ownerId: string | undefined, change: ReplaceOrder): Promise<Order> {
    const current = await repo.getOrder(this.deps.db, id);
    if (!current || (ownerId !== undefined && current.user_id !== ownerId)) throw new OrderNotFoundError(id);
    const old = toOrder(current);
    if (old.status !== 'OPEN' || old.type === 'market') throw new OrderNotReplaceableError(id, old.status, old.type);
    // A partly filled order's fills stand; replacing its remainder would need a second order
    // with the first one's history. Cancel it and place a new one instead.
    if (old.filledQuantity > 0n) throw new OrderNotReplaceableError(id, 'PARTIALLY_FILLED', old.type);
    const t = replacedTerms(old, change);
    const quote = await this.deps.market.getPrice(old.ticker);
    const member = await this.deps.classes?.memberClass(old.userId);
    if (member) this.requireClassOpen(member);
    const pricing = this.pricing(t, quote.price, member);
    const reserved = pricing.reserved;
    const clientOrderId = change.clientOrderId ?? null;
    let replaced: { old: Order; fresh: Order; events: EventRecord[] };
    try {
      replaced = await this.deps.db.transaction().execute(async (trx) => {
        // Lock order: the order first, then the balance or holding (the global lock order).
        const [locked] = await repo.lockLiveOrders(trx, [id]);
        if (!locked || locked.status !== 'OPEN') throw new OrderNotReplaceableError(id, locked?.status ?? 'terminal', old.type);
        if (qtyFromDb(locked.filled_quantity) > 0n) throw new OrderNotReplaceableError(id, 'PARTIALLY_FILLED', old.type);
        const before = toOrder(locked);
        await this.requireMinimumNotional(before.userId, before.ticker, t, quote.price, trx);
        if (member) {
          // As for a new order: the member's balance row serializes its orders under the rules.
          await accounts.lockBalances(trx, [before.userId]);
          await this.requireClassRules(trx, member, before.userId, before.ticker, t, quote.price, before);
        }
        // The old hold returns and the new one is taken, in this transaction: a refusal then
        // speaks of the whole new hold against what is available with the old one back.
        await releaseHold(trx, before);
        await takeHold(trx, before.userId, before.ticker, t, reserved);
        const hashed = requestHash(before.userId, before.ticker, t, before.id);
        let fresh = toOrder(await repo.insertPendingOrder(trx, newRow(before.userId, before.ticker, t, reserved, quote.price, clientOrderId, before.id, hashed, pricing)));
        const carried = carriedState(before, t);
        if (carried) fresh = toOrder(await repo.setCarriedState(trx, fresh.id, carried));
        const done = await repo.markReplaced(trx, before.id, fresh.id);
        if (!done) throw new OrderNotReplaceableError(id, 'terminal', old.type);
        const oldDone = toOrder(done);
        const events = await eventsRepo.appendEvents(trx, [orderEvent('order.replaced', oldDone), orderEvent('order.new', fresh)]);
        return { old: oldDone, fresh, events };
      });
    } catch (err) {
      if (err instanceof AppError && (err.code === 'INSUFFICIENT_FUNDS' || err.code === 'INSUFFICIENT_HOLDINGS')) throw new OrderRejectedError(err);
      if (pgErrorCode(err) === '23505' && pgConstraint(err) === 'orders_client_order_id_key' && clientOrderId) {
        throw new IdempotencyKeyReusedError(clientOrderId);
      }
      throw err;
    }
    await announce(this.deps.orderUpdates, [replaced.old], (err) => this.deps.logger.warn({ err }, 'order update announcement failed'));
    await this.publishAccepted([replaced.fresh], replaced.events);
    return replaced.fresh;
  }
}

/**
 * What a replacement keeps of the order it replaces: a trailing stop the best price seen so far
 * (its level recomputed with the new trail), a triggered stop_limit its trigger while its stop
 * price is unchanged. Undefined: nothing to carry.
 */
function carriedState(old: Order, t: OrderTerms): { hwm: string | null; stopLevel: string | null; triggeredAt: Date | null } | undefined {
  if (t.type === 'trailing_stop' && old.hwm !== null) {
    const state = initialState(t, undefined, { extreme: old.hwm, triggered: false });
    return { hwm: priceToSql(state.extreme!), stopLevel: priceToSql(state.stopLevel!), triggeredAt: null };
  }
  if (t.type === 'stop_limit' && old.triggeredAt !== null && t.stopPrice === old.stopPrice) return { hwm: null, stopLevel: null, triggeredAt: old.triggeredAt };
  return undefined;
}

/** The terms of a replacement: the old order's, with the changed fields (validated as a new order's). */
function replacedTerms(old: Order, change: ReplaceOrder): OrderTerms {
  const p = (v: Price | null) => (v === null ? undefined : formatPrice(v));
  const trailChanged = change.trailPrice !== undefined || change.trailPercent !== undefined;
  const raw: RawTerms = {
    type: old.type,
    time_in_force: change.timeInForce ?? old.timeInForce,
    limit_price: change.limitPrice ?? p(old.limitPrice),
    stop_price: change.stopPrice ?? p(old.stopPrice),
    // A new trail of either kind replaces the old one of either kind.
    trail_price: trailChanged ? change.trailPrice : p(old.trailPrice),
    trail_percent: trailChanged ? change.trailPercent : old.trailPercent === null ? undefined : formatFixed(old.trailPercent, TRAIL_PERCENT_SCALE),
  };
  return parseTerms(old.side, change.quantity ?? old.quantity, raw);
}

/** What the pipe carries for an order: its id, and a few fields for people reading the stream. */
export function pipeMessage(o: Order): PipeMessage {
  return { orderId: o.id, userId: o.userId, ticker: o.ticker, side: o.side, type: o.type, quantity: formatQty(o.quantity) };
}

/** The part of an order's hold its cost may use (the rest is its commission): the final check's bound. */
export function holdForCost(o: Pick<Order, 'reservedAmount' | 'commission'>): Cash {
  return o.reservedAmount - o.commission;
}

/**
 * Returns what a live order holds: its cash (a buy's cost and commission, a sell's commission)
 * and a sell's shares. Cash first: balances are locked before holdings (the one lock order).
 */
export async function releaseHold(trx: Executor, order: Order): Promise<void> {
  if (order.side === 'buy' || order.reservedAmount > 0n) await accounts.releaseFunds(trx, order.userId, order.reservedAmount);
  // A partly filled sell holds only the shares still open.
  if (order.side === 'sell') await portfolios.releaseShares(trx, order.userId, order.ticker, order.quantity - order.filledQuantity);
}

/** Takes an order's hold inside the caller's transaction: cash (if any) before shares, the lock order. */
async function takeHold(trx: Executor, userId: string, ticker: string, t: OrderTerms, reserved: Cash): Promise<void> {
  if (reserved > 0n) await accounts.reserveFunds(trx, userId, reserved);
  if (t.side === 'sell') await portfolios.reserveShares(trx, userId, ticker, t.quantity);
}

export function assertSameIdempotencyKey(bodyKey: string | undefined, headerKey: string | undefined): string | undefined {
  if (bodyKey !== undefined && headerKey !== undefined && bodyKey !== headerKey) {
    throw new ValidationError('client_order_id and the Idempotency-Key header differ', { field: 'client_order_id' });
  }
  return bodyKey ?? headerKey;
}
