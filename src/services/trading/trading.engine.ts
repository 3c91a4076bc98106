/**
 * The trading engine: a Redis Streams consumer-group member that executes accepted orders.
 *
 * Delivery is at least once and every effect is idempotent (the PENDING guard, one fill per
 * order), so the rules are simple: acknowledge an entry only after the transaction that
 * settled its order committed; take over entries another consumer left pending too long
 * (XAUTOCLAIM); send an entry delivered too many times to the dead-letter stream and reject its
 * order with a reason. A backlog is executed many orders per transaction; if that transaction
 * fails, each order is retried alone so one bad order cannot hold the others back.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Counter, Histogram, Registry } from 'prom-client';
import { counter, histogram } from '../../infra/metrics.js';
import { REJECT_REASONS, type RejectReason } from '../../core/orders.js';
import type { EngineConfig } from '../../infra/config.js';
import type { Keys } from '../../infra/keys.js';
import type { Logger } from '../../infra/logger.js';
import { isTransientPgError, type Db } from '../../infra/postgres.js';
import { isUnavailableError } from '../../infra/unavailable.js';
import type { PriceCache, Quote } from '../market-data/price-cache.js';
import { requireFresh } from '../market-data/market-data.service.js';
import { DEAD_LETTER_LENGTH_MAX, publishUpdates, toUpdate, type OrderUpdate } from '../orders/order-stream.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { toOrder, type Order } from '../orders/orders.service.js';
import { executeOrders, rejectOrder, type Outcome } from './trading.service.js';
import { ExecutionConflictError } from './trading.errors.js';
import { formatPrice } from '../../core/money.js';

export const CONSUMER_GROUP = 'engine';
/** Attempts of one batch transaction that failed on a deadlock or serialization conflict. */
export const BATCH_ATTEMPTS_MAX = 3;
/** Back-off after a Redis or PostgreSQL outage, doubling from the first to the last. */
export const OUTAGE_BACKOFF_MS_MIN = 100;
export const OUTAGE_BACKOFF_MS_MAX = 2_000;
/** How often to look for entries abandoned by dead consumers. */
export const CLAIM_INTERVAL_MS = 1_000;

export interface EngineDeps {
  db: Db;
  redis: Redis;
  /** A connection of its own for the blocking XREADGROUP. */
  reader: Redis;
  keys: Keys;
  logger: Logger;
  prices: PriceCache;
  priceAgeMsMax: number;
  config: EngineConfig;
  metrics?: Registry;
  consumerName?: string;
}

interface Entry {
  id: string;
  orderId: string | undefined;
  fields: string[];
}

type StreamReply = [string, [string, string[]][]][] | null;

function parseEntries(raw: [string, string[]][]): Entry[] {
  return raw.map(([id, fields]) => {
    const i = fields ? fields.indexOf('order_id') : -1;
    const orderId = i >= 0 && i % 2 === 0 ? fields[i + 1] : undefined;
    return { id, orderId: orderId && /^[0-9a-f-]{36}$/.test(orderId) ? orderId : undefined, fields: fields ?? [] };
  });
}

export class TradingEngine {
  readonly consumer: string;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private lastClaimMs = 0;
  /** Entries whose batch failed because PostgreSQL or Redis was unreachable: retried first. */
  private retry: Entry[] = [];
  private backoffMs = OUTAGE_BACKOFF_MS_MIN;
  private lastFailure: unknown;
  private lastFailureUnavailable = false;
  private readonly executed: Counter;
  private readonly batchSeconds: Histogram;

  constructor(private readonly deps: EngineDeps) {
    this.consumer = deps.consumerName ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.executed = counter(deps.metrics, 'papertrade_engine_orders_total', 'Orders brought to a terminal status by the engine', ['status']);
    this.batchSeconds = histogram(deps.metrics, 'papertrade_engine_batch_seconds', 'Time to execute one batch of orders', [
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
    ]);
  }

  async start(): Promise<void> {
    await this.ensureGroup();
    this.loop = this.run();
  }

  /** Finishes the batch in hand (its commit and XACK), then returns. */
  async stop(): Promise<void> {
    this.stopping = true;
    // Unblocks a waiting XREADGROUP; entries it may have been handed stay in our pending list
    // and are claimed by another consumer after claimIdleMs.
    this.deps.reader.disconnect();
    await this.loop;
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.deps.redis.xgroup('CREATE', this.deps.keys.orderStream(), CONSUMER_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        const entries = this.retry.length ? this.retry.splice(0) : await this.readNew();
        if (this.stopping && entries.length === 0) break;
        if (Date.now() - this.lastClaimMs >= CLAIM_INTERVAL_MS) {
          this.lastClaimMs = Date.now();
          entries.push(...(await this.claimAbandoned()));
        }
        if (entries.length > 0) {
          try {
            await this.handle(entries);
          } catch (err) {
            // An outage is not the orders' fault: keep the entries (no redelivery, so their
            // delivery counts do not grow) and try them again after the back-off.
            if (isUnavailableError(err)) this.retry = entries;
            throw err;
          }
        }
        this.backoffMs = OUTAGE_BACKOFF_MS_MIN;
      } catch (err) {
        if (this.stopping) break;
        const message = String((err as Error).message);
        if (message.includes('NOGROUP')) {
          // The stream or its group is gone (Redis flushed or restarted): recreate it; the
          // reconciler re-publishes the pending orders the old stream held.
          this.deps.logger.warn('order stream group missing; recreating');
          await this.ensureGroup().catch(() => undefined);
          continue;
        }
        this.deps.logger.warn({ err }, 'engine loop error; backing off');
        await sleep(this.backoffMs);
        this.backoffMs = Math.min(this.backoffMs * 2, OUTAGE_BACKOFF_MS_MAX);
      }
    }
  }

  private async readNew(): Promise<Entry[]> {
    const { keys, config } = this.deps;
    const reply = (await this.deps.reader.xreadgroup(
      'GROUP',
      CONSUMER_GROUP,
      this.consumer,
      'COUNT',
      config.batchSizeMax,
      'BLOCK',
      config.blockMs,
      'STREAMS',
      keys.orderStream(),
      '>',
    )) as StreamReply;
    return reply?.[0] ? parseEntries(reply[0][1]) : [];
  }

  /** Takes over entries idle in other (likely dead) consumers; dead-letters the over-delivered. */
  private async claimAbandoned(): Promise<Entry[]> {
    const { redis, keys, config } = this.deps;
    const [, claimedRaw, deleted] = (await redis.xautoclaim(
      keys.orderStream(),
      CONSUMER_GROUP,
      this.consumer,
      config.claimIdleMs,
      '0-0',
      'COUNT',
      config.batchSizeMax,
    )) as [string, [string, string[]][], string[]];
    // Entries trimmed from the stream while pending: nothing to read; their orders, if still
    // pending, come back through the reconciler.
    if (deleted?.length) await redis.xack(keys.orderStream(), CONSUMER_GROUP, ...deleted);
    const claimed = parseEntries(claimedRaw.filter((e) => e && e[1]));
    if (claimed.length === 0) return [];
    this.deps.logger.info({ count: claimed.length }, 'claimed abandoned stream entries');

    const ids = claimed.map((e) => e.id).sort(compareStreamIds);
    const pending = (await redis.xpending(
      keys.orderStream(),
      CONSUMER_GROUP,
      ids[0]!,
      ids[ids.length - 1]!,
      ids.length,
      this.consumer,
    )) as [string, string, number, number][];
    const deliveries = new Map(pending.map(([id, , , count]) => [id, count]));
    const keep: Entry[] = [];
    for (const entry of claimed) {
      if ((deliveries.get(entry.id) ?? 0) > config.deliveriesMax) await this.deadLetter(entry, REJECT_REASONS.deliveryAttemptsExceeded);
      else keep.push(entry);
    }
    return keep;
  }

  /** Moves an entry to the dead-letter stream and rejects its order, so nothing is silently dropped. */
  private async deadLetter(entry: Entry, reason: RejectReason | 'MALFORMED_ENTRY'): Promise<void> {
    const { db, redis, keys, logger } = this.deps;
    let update: OrderUpdate | undefined;
    if (entry.orderId) {
      const row = await ordersRepo.getOrder(db, entry.orderId);
      if (row && row.status === 'PENDING') {
        const outcome = await db
          .transaction()
          .execute((trx) => rejectOrder(trx, toOrder(row), REJECT_REASONS.deliveryAttemptsExceeded));
        if (outcome.applied) {
          update = toUpdate(outcome.order, null);
          this.executed.inc({ status: 'REJECTED' });
        }
      }
    }
    await redis
      .multi()
      .xadd(keys.orderDeadLetterStream(), 'MAXLEN', '~', DEAD_LETTER_LENGTH_MAX, '*', 'entry_id', entry.id, 'reason', reason, ...entry.fields)
      .xack(keys.orderStream(), CONSUMER_GROUP, entry.id)
      .exec();
    logger.error({ entry_id: entry.id, order_id: entry.orderId, reason }, 'stream entry dead-lettered');
    if (update) await publishUpdates(redis, keys, [update]).catch(() => undefined);
  }

  /** Executes the orders behind a batch of entries and acknowledges what was settled. */
  private async handle(entries: Entry[]): Promise<void> {
    const { db, redis, keys, config } = this.deps;
    const started = process.hrtime.bigint();
    const entriesByOrder = new Map<string, string[]>();
    for (const entry of entries) {
      if (!entry.orderId) {
        await this.deadLetter(entry, 'MALFORMED_ENTRY');
        continue;
      }
      const list = entriesByOrder.get(entry.orderId) ?? [];
      list.push(entry.id);
      entriesByOrder.set(entry.orderId, list);
    }
    if (entriesByOrder.size === 0) return;

    const rows = await db
      .selectFrom('orders')
      .selectAll()
      .where('id', 'in', [...entriesByOrder.keys()])
      .execute();
    const pending = rows.filter((r) => r.status === 'PENDING').map((r) => toOrder(r as ordersRepo.OrderRow));
    const quotes = await this.freshQuotes(pending);

    const now = Date.now();
    const work: { order: Order; price?: Quote['price']; reject?: RejectReason }[] = [];
    for (const order of pending) {
      const quote = quotes.get(order.ticker);
      if (quote) work.push({ order, price: quote.price });
      else if (now - order.createdAt.getTime() > config.priceWaitMsMax) {
        work.push({ order, reject: REJECT_REASONS.priceUnavailable });
      }
      // Otherwise the order waits for a price: its entry is acknowledged and the reconciler
      // brings the still-pending order back, so a price outage holds no stream entries.
    }
    // One lock order for every engine (user, then ticker, then order): batches never deadlock
    // each other on the same account rows.
    work.sort((a, b) => cmp(a.order.userId, b.order.userId) || cmp(a.order.ticker, b.order.ticker) || cmp(a.order.id, b.order.id));

    const { outcomes, failed } = await this.executeBatch(work);
    if (failed.size > 0 && failed.size === work.length && this.lastFailureUnavailable) {
      throw this.lastFailure;
    }
    const ack: string[] = [];
    for (const [orderId, ids] of entriesByOrder) if (!failed.has(orderId)) ack.push(...ids);
    if (ack.length) await redis.xack(keys.orderStream(), CONSUMER_GROUP, ...ack);

    const updates = outcomes.filter((o) => o.applied).map((o) => toUpdate(o.order, o.order.fillPrice === null ? null : formatPrice(o.order.fillPrice)));
    for (const u of updates) this.executed.inc({ status: u.status });
    if (updates.length) await publishUpdates(redis, keys, updates).catch(() => undefined);
    this.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  private async freshQuotes(orders: Order[]): Promise<Map<string, Quote>> {
    const tickers = [...new Set(orders.map((o) => o.ticker))];
    const quotes = await this.deps.prices.getMany(tickers);
    const now = Date.now();
    const fresh = new Map<string, Quote>();
    for (const [ticker, quote] of quotes) {
      if (isFresh(ticker, quote, this.deps.priceAgeMsMax, now)) fresh.set(ticker, quote);
    }
    return fresh;
  }

  private async executeBatch(
    work: { order: Order; price?: Quote['price']; reject?: RejectReason }[],
  ): Promise<{ outcomes: Outcome[]; failed: Set<string> }> {
    const run = (items: typeof work) =>
      this.deps.db.transaction().execute(async (trx) => {
        const outcomes: Outcome[] = [];
        for (const item of items) if (item.reject) outcomes.push(await rejectOrder(trx, item.order, item.reject));
        const priced = items.flatMap((item) => (item.reject ? [] : [{ order: item.order, price: item.price! }]));
        if (priced.length) outcomes.push(...(await executeOrders(trx, priced)));
        return outcomes;
      });
    if (work.length === 0) return { outcomes: [], failed: new Set() };
    for (let attempt = 1; attempt <= BATCH_ATTEMPTS_MAX; attempt++) {
      try {
        return { outcomes: await run(work), failed: new Set() };
      } catch (err) {
        this.lastFailure = err;
        this.lastFailureUnavailable = isUnavailableError(err);
        if (this.lastFailureUnavailable) return { outcomes: [], failed: new Set(work.map((w) => w.order.id)) };
        const transient = isTransientPgError(err) || err instanceof ExecutionConflictError;
        if (!transient || attempt === BATCH_ATTEMPTS_MAX) {
          if (work.length === 1) {
            this.deps.logger.error({ err, order_id: work[0]!.order.id }, 'order execution failed; left for redelivery');
            return { outcomes: [], failed: new Set([work[0]!.order.id]) };
          }
          break;
        }
      }
    }
    // The batch failed as a whole: execute each order alone so only the bad one stays behind
    // (unacknowledged: it is redelivered and, past deliveriesMax, dead-lettered).
    const outcomes: Outcome[] = [];
    const failed = new Set<string>();
    for (const item of work) {
      const single = await this.executeBatch([item]);
      outcomes.push(...single.outcomes);
      for (const id of single.failed) failed.add(id);
    }
    return { outcomes, failed };
  }
}

function isFresh(ticker: string, quote: Quote, priceAgeMsMax: number, nowMs: number): boolean {
  try {
    requireFresh(ticker, quote, priceAgeMsMax, nowMs);
    return true;
  } catch {
    return false;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
