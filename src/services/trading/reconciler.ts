/**
 * The reconciler: PostgreSQL's PENDING rows are the outbox. Every interval, one engine (a short
 * Redis lock decides which) re-publishes pending orders older than `reconcileAfterMs` — orders
 * whose XADD failed after commit, whose stream was flushed or trimmed, or that waited for a
 * price. A re-published order that was in flight after all is harmless: execution is
 * idempotent. While the consumer group still has undelivered entries (a backlog), it waits:
 * those orders are on their way and re-publishing them would only grow the backlog.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { EngineConfig } from '../../infra/config.js';
import type { Keys } from '../../infra/keys.js';
import type { Logger } from '../../infra/logger.js';
import type { Db } from '../../infra/postgres.js';
import { publishOrders } from '../orders/order-stream.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { toOrder } from '../orders/orders.service.js';
import { CONSUMER_GROUP } from './trading.engine.js';

/** Orders re-published per pass at most. */
export const RECONCILE_BATCH_MAX = 1_000;

export interface ReconcilerDeps {
  db: Db;
  redis: Redis;
  keys: Keys;
  logger: Logger;
  config: EngineConfig;
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly token = randomBytes(8).toString('hex');

  constructor(private readonly deps: ReconcilerDeps) {}

  start(): void {
    const tick = () => {
      this.running = this.pass()
        .catch((err: unknown) => this.deps.logger.warn({ err }, 'reconciler pass failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.deps.config.reconcileIntervalMs);
        });
    };
    this.timer = setTimeout(tick, this.deps.config.reconcileIntervalMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass; returns how many orders were re-published. */
  async pass(): Promise<number> {
    const { db, redis, keys, config, logger } = this.deps;
    const locked = await redis.set(keys.reconcilerLock(), this.token, 'PX', config.reconcileIntervalMs, 'NX');
    if (locked !== 'OK') return 0;
    if ((await this.backlog()) > 0) return 0;
    const rows = await ordersRepo.listPendingOlderThan(db, new Date(Date.now() - config.reconcileAfterMs), RECONCILE_BATCH_MAX);
    if (rows.length === 0) return 0;
    await publishOrders(redis, keys, rows.map(toOrder));
    logger.info({ count: rows.length }, 'reconciler re-published pending orders');
    return rows.length;
  }

  /** Entries not yet delivered to any consumer; 0 when the group (or stream) does not exist. */
  private async backlog(): Promise<number> {
    let groups: unknown[];
    try {
      groups = (await this.deps.redis.xinfo('GROUPS', this.deps.keys.orderStream())) as unknown[];
    } catch {
      return 0; // no stream: nothing is on its way
    }
    for (const g of groups as unknown[][]) {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) info.set(String(g[i]), g[i + 1]);
      if (info.get('name') === CONSUMER_GROUP) {
        const lag = info.get('lag');
        return typeof lag === 'number' ? lag : 0;
      }
    }
    return 0;
  }
}
