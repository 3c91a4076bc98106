/**
 * The reconciler: PostgreSQL's PENDING rows are the outbox. Every interval, one engine (a short
 * lease decides which) re-publishes pending orders older than `reconcileAfterMs` — orders whose
 * publish failed after commit, whose pipe was flushed or trimmed, that waited for a price, or
 * that an in-process pipe lost with its process. A re-published order that was in flight after
 * all is harmless: execution is idempotent. While the pipe still has undelivered entries (a
 * backlog), it waits: those orders are on their way and re-publishing them would only grow it.
 */
import type { EngineConfig } from '../../infra/config.js';
import type { LeaseLock } from '../../infra/lease.js';
import type { Logger } from '../../infra/logger.js';
import { Periodic } from '../../infra/periodic.js';
import type { Db } from '../../infra/postgres.js';
import type { OrderPipe } from '../orders/order-pipe.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { pipeMessage, toOrder } from '../orders/orders.service.js';

/** Orders re-published per pass at most. */
export const RECONCILE_BATCH_MAX = 1_000;

export interface ReconcilerDeps {
  db: Db;
  pipe: OrderPipe;
  /** One engine's turn per interval: a lease of one interval, never released early. */
  turn: LeaseLock;
  logger: Logger;
  config: EngineConfig;
}

export class Reconciler {
  private readonly periodic: Periodic;

  constructor(private readonly deps: ReconcilerDeps) {
    this.periodic = new Periodic(deps.config.reconcileIntervalMs, () => this.pass(), (err) => deps.logger.warn({ err }, 'reconciler pass failed'));
  }

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** One pass; returns how many orders were re-published. */
  async pass(): Promise<number> {
    const { db, pipe, turn, config, logger } = this.deps;
    if (!(await turn.tryAcquire())) return 0;
    if ((await pipe.backlog()) > 0) return 0;
    const rows = await ordersRepo.listPendingOlderThan(db, new Date(Date.now() - config.reconcileAfterMs), RECONCILE_BATCH_MAX);
    if (rows.length === 0) return 0;
    await pipe.publish(rows.map((r) => pipeMessage(toOrder(r))));
    logger.info({ count: rows.length }, 'reconciler re-published pending orders');
    return rows.length;
  }
}
