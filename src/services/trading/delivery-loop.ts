/**
 * The delivery loop: the order pipe's protocol on the engine's side. It reads batches of
 * entries as a member of the consumer group, takes over entries that a dead consumer left
 * pending, dead-letters an entry delivered too many times (rejecting its order with a reason,
 * so nothing is silently dropped), hands the orders to the batch executor and acknowledges an
 * entry only after the transaction that settled its order committed.
 *
 * Delivery is at least once and every effect is idempotent (the PENDING guard, one fill per
 * order), so an entry delivered twice changes nothing the second time.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { REJECT_REASONS } from '../../core/orders.js';
import type { EngineConfig } from '../../infra/config.js';
import type { Logger } from '../../infra/logger.js';
import { sleep } from '../../infra/sleep.js';
import { isUnavailableError } from '../../infra/unavailable.js';
import type { OrderPipe, PipeConsumer, PipeEntry } from '../orders/order-pipe.js';
import type { BatchExecutor } from './batch-executor.js';

/** Back-off after a Redis or PostgreSQL outage, doubling from the first to the last. */
export const OUTAGE_BACKOFF_MS_MIN = 100;
export const OUTAGE_BACKOFF_MS_MAX = 2_000;
/** How often to look for entries abandoned by dead consumers. */
export const CLAIM_INTERVAL_MS = 1_000;

export interface DeliveryLoopDeps {
  pipe: OrderPipe;
  executor: BatchExecutor;
  logger: Logger;
  config: EngineConfig;
  consumerName?: string;
  /** The partition of the pipe this loop consumes (0 by default); an engine runs one loop per partition. */
  partition?: number;
}

export class DeliveryLoop {
  readonly consumerName: string;
  private consumer: PipeConsumer | undefined;
  private stopping = false;
  private readonly stopped = new AbortController();
  private loop: Promise<void> | undefined;
  private lastClaimMs = 0;
  /** Entries whose batch met an outage: tried again first, without a new delivery (no count). */
  private retry: PipeEntry[] = [];
  private backoffMs = OUTAGE_BACKOFF_MS_MIN;

  constructor(private readonly deps: DeliveryLoopDeps) {
    this.consumerName = deps.consumerName ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  async start(): Promise<void> {
    this.consumer = await this.deps.pipe.consumer(this.consumerName, this.deps.partition ?? 0);
    this.loop = this.run(this.consumer);
  }

  /** Finishes the batch in hand (its commit and acknowledgements), then returns. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await this.consumer?.close();
    await this.loop;
  }

  private async run(consumer: PipeConsumer): Promise<void> {
    const { config, logger } = this.deps;
    while (!this.stopping) {
      try {
        const entries = this.retry.length ? this.retry.splice(0) : await consumer.read(config.batchSizeMax, config.blockMs);
        if (this.stopping && entries.length === 0) break;
        if (Date.now() - this.lastClaimMs >= CLAIM_INTERVAL_MS) {
          this.lastClaimMs = Date.now();
          entries.push(...(await this.claimAbandoned(consumer)));
        }
        if (entries.length > 0) await this.handle(consumer, entries);
        this.backoffMs = OUTAGE_BACKOFF_MS_MIN;
      } catch (err) {
        if (this.stopping) break;
        logger.warn({ err }, 'engine loop error; backing off');
        await sleep(this.backoffMs, this.stopped.signal);
        this.backoffMs = Math.min(this.backoffMs * 2, OUTAGE_BACKOFF_MS_MAX);
      }
    }
  }

  /** Takes over entries idle with other (likely dead) consumers; dead-letters the over-delivered. */
  private async claimAbandoned(consumer: PipeConsumer): Promise<PipeEntry[]> {
    const { config, logger } = this.deps;
    const claimed = await consumer.claimAbandoned(config.claimIdleMs, config.batchSizeMax);
    if (claimed.length === 0) return [];
    logger.info({ count: claimed.length }, 'claimed abandoned pipe entries');
    const keep: PipeEntry[] = [];
    for (const entry of claimed) {
      if (entry.deliveries > config.deliveriesMax) await this.deadLetter(consumer, entry, REJECT_REASONS.deliveryAttemptsExceeded);
      else keep.push(entry);
    }
    return keep;
  }

  /** Moves an entry to the dead letters and rejects its order, so nothing is silently dropped. */
  private async deadLetter(consumer: PipeConsumer, entry: PipeEntry, reason: string): Promise<void> {
    if (entry.orderId) await this.deps.executor.rejectAlone(entry.orderId, REJECT_REASONS.deliveryAttemptsExceeded);
    await consumer.deadLetter(entry, reason);
    this.deps.logger.error({ entry_id: entry.id, order_id: entry.orderId, reason }, 'pipe entry dead-lettered');
  }

  /** Executes the orders behind a batch of entries and acknowledges what was settled. */
  private async handle(consumer: PipeConsumer, entries: PipeEntry[]): Promise<void> {
    const entriesByOrder = new Map<string, string[]>();
    for (const entry of entries) {
      if (!entry.orderId) {
        await this.deadLetter(consumer, entry, 'MALFORMED_ENTRY');
        continue;
      }
      const ids = entriesByOrder.get(entry.orderId) ?? [];
      ids.push(entry.id);
      entriesByOrder.set(entry.orderId, ids);
    }
    if (entriesByOrder.size === 0) return;
    const report = await this.deps.executor.execute([...entriesByOrder.keys()]);
    if (report.unavailable) {
      // An outage is not the orders' fault: keep the entries (no redelivery, so their
      // delivery counts do not grow) and try them again after the back-off.
      this.retry = entries.filter((e) => e.orderId);
      throw report.unavailable;
    }
    const ack: string[] = [];
    for (const [orderId, ids] of entriesByOrder) if (!report.failed.has(orderId)) ack.push(...ids);
    try {
      await consumer.ack(ack);
    } catch (err) {
      // Settled but not acknowledged: delivered again later, and then changes nothing.
      if (!isUnavailableError(err)) throw err;
      this.deps.logger.warn({ err }, 'acknowledgement failed; the entries will be delivered again, harmlessly');
    }
  }
}
