/**
 * The event log's reading side and its retention. Writers (the OMS, the trading engine, the
 * accounts service) append through events.repository inside their own transactions and publish
 * what they appended on the bus after the commit; this service serves the log to clients (GET
 * /users/{id}/events, the live stream's replay and repair) and removes what is past retention.
 */
import { assert } from '../../core/errors.js';
import type { LeaseLock } from '../../infra/lease.js';
import type { Logger } from '../../infra/logger.js';
import { Periodic } from '../../infra/periodic.js';
import type { Db } from '../../infra/postgres.js';
import { EVENTS_PAGE_MAX, type EventBus, type EventLog, type EventRecord } from './event-log.js';
import { EventsExpiredError, EventsSeqAheadError } from './events.errors.js';
import * as repo from './events.repository.js';

/** Days an event is kept by default (EVENTS_RETENTION_DAYS). */
export const EVENTS_RETENTION_DAYS_DEFAULT = 30;
/** Events one retention statement deletes at most: short statements, no long lock on the table. */
export const EVENTS_PRUNE_BATCH = 5_000;
/** Statements one retention pass runs at most; the next pass goes on where it stopped. */
export const EVENTS_PRUNE_BATCHES_MAX = 200;
/** Users one lastSeqs query asks about at most (the live stream's sweep splits bigger sets). */
export const LAST_SEQS_BATCH_MAX = 5_000;

const DAY_MS = 86_400_000;

export interface EventsServiceDeps {
  db: Db;
  retentionDays: number;
  logger: Logger;
  now?: () => number;
}

export class EventsService implements EventLog {
  private readonly now: () => number;

  constructor(private readonly deps: EventsServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  get retentionDays(): number {
    return this.deps.retentionDays;
  }

  lastSeq(userId: string): Promise<number> {
    return repo.lastSeq(this.deps.db, userId);
  }

  async lastSeqs(userIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (let i = 0; i < userIds.length; i += LAST_SEQS_BATCH_MAX) {
      const chunk = userIds.slice(i, i + LAST_SEQS_BATCH_MAX);
      const found = await repo.lastSeqs(this.deps.db, chunk);
      for (const id of chunk) out.set(id, found.get(id) ?? 0);
    }
    return out;
  }

  /**
   * Reads events after `afterSeq`. A page must start at afterSeq + 1 and run without a hole:
   * anything else means retention removed events the client has not seen (EVENTS_EXPIRED). An
   * empty page is checked against the counter: empty because the client is up to date, or
   * because everything after it was removed.
   */
  async readAfter(userId: string, afterSeq: number, limit: number): Promise<EventRecord[]> {
    assert(Number.isSafeInteger(afterSeq) && afterSeq >= 0, 'afterSeq is a non-negative integer');
    assert(Number.isInteger(limit) && limit >= 1 && limit <= EVENTS_PAGE_MAX, 'limit within bounds');
    let events = await repo.listAfter(this.deps.db, userId, afterSeq, limit);
    if (events.length === 0) {
      const last = await repo.lastSeq(this.deps.db, userId);
      if (afterSeq > last) throw new EventsSeqAheadError(userId, afterSeq, last);
      if (afterSeq === last) return [];
      // The counter is ahead: events were written between the two reads (read them), or
      // everything after afterSeq was removed (the read below finds a hole or nothing).
      events = await repo.listAfter(this.deps.db, userId, afterSeq, limit);
      if (events.length === 0) throw await this.expired(userId, afterSeq);
    }
    // Seqs are never skipped when written, so a hole is what retention removed.
    if (events.some((e, i) => e.seq !== afterSeq + 1 + i)) throw await this.expired(userId, afterSeq);
    return events;
  }

  /** The refusal for a position whose successors were removed, naming the oldest seq kept. */
  private async expired(userId: string, afterSeq: number): Promise<EventsExpiredError> {
    // Last seq + 1 when every event of the user was removed.
    const keptFrom = (await repo.firstKeptSeq(this.deps.db, userId)) ?? (await repo.lastSeq(this.deps.db, userId)) + 1;
    return new EventsExpiredError(userId, afterSeq, keptFrom, this.deps.retentionDays);
  }

  /**
   * Deletes events older than the retention, in short batches (bounded per pass); returns how
   * many. Run by one process of the deployment at a time (the caller holds a lease).
   */
  async prune(): Promise<number> {
    const cutoff = new Date(this.now() - this.deps.retentionDays * DAY_MS);
    let deleted = 0;
    for (let batch = 0; batch < EVENTS_PRUNE_BATCHES_MAX; batch++) {
      const n = await repo.deleteOlderThan(this.deps.db, cutoff, EVENTS_PRUNE_BATCH);
      deleted += n;
      if (n < EVENTS_PRUNE_BATCH) break;
    }
    if (deleted > 0) this.deps.logger.info({ deleted, cutoff: cutoff.toISOString() }, 'events past retention deleted');
    return deleted;
  }
}

/**
 * Retention, run by every engine: each interval, the engine whose turn it is (a lease of one
 * interval, never released early) deletes what is past the retention.
 */
export class EventRetention {
  private readonly periodic: Periodic;

  constructor(events: EventsService, turn: LeaseLock, intervalMs: number, logger: Logger) {
    this.periodic = new Periodic(
      intervalMs,
      async () => {
        if (await turn.tryAcquire()) await events.prune();
      },
      (err) => logger.warn({ err }, 'event retention pass failed'),
    );
  }

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}

/** Publishes committed events; never throws (the log is the record, the bus only news). */
export async function publishEvents(bus: EventBus, events: readonly EventRecord[], logger: Logger): Promise<void> {
  if (events.length === 0) return;
  await bus.publish(events).catch((err: unknown) => logger.warn({ err, events: events.length }, 'event publish failed; subscribers repair from the log'));
}
