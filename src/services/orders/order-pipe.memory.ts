/**
 * The order pipe in memory, for every role in one process: the semantics of a Redis stream
 * with one consumer group, as the engine relies on them (see order-pipe.ts) — entries delivered
 * once to one consumer and pending until acked, claimed after an idle time with their delivery
 * counts, dead letters, a bounded length. It lives as long as the process: a crash loses its
 * entries, which is fine by the rule that PostgreSQL holds the state (the reconciler publishes
 * every PENDING order again).
 */
import {
  DEAD_LETTER_LENGTH_MAX,
  messageFields,
  ORDER_PIPE_LENGTH_MAX,
  orderIdOf,
  type ClaimedEntry,
  type OrderPipe,
  type PipeConsumer,
  type PipeEntry,
  type PipeMessage,
} from './order-pipe.js';
import { StreamIdSource } from '../../infra/stream-ids.js';

interface Stored {
  entry: PipeEntry;
  /** Set once delivered: who holds it, since when, how many times it was delivered. */
  pending?: { consumer: string; sinceMs: number; deliveries: number };
}

export interface MemoryOrderPipeOptions {
  lengthMax?: number;
  deadLettersMax?: number;
  now?: () => number;
}

export class MemoryOrderPipe implements OrderPipe {
  /** Every entry not yet acknowledged, in publication order (Map keeps insertion order). */
  private readonly entries = new Map<string, Stored>();
  /** Ids not yet delivered to any consumer, oldest first. */
  private undelivered: string[] = [];
  private undeliveredHead = 0;
  private readonly waiters = new Set<() => void>();
  private readonly ids = new StreamIdSource();
  private readonly dead: { entry: PipeEntry; reason: string }[] = [];
  private readonly lengthMax: number;
  private readonly deadLettersMax: number;
  private readonly now: () => number;

  constructor(options: MemoryOrderPipeOptions = {}) {
    this.lengthMax = options.lengthMax ?? ORDER_PIPE_LENGTH_MAX;
    this.deadLettersMax = options.deadLettersMax ?? DEAD_LETTER_LENGTH_MAX;
    this.now = options.now ?? Date.now;
  }

  async publish(messages: readonly PipeMessage[]): Promise<void> {
    for (const m of messages) {
      const fields = messageFields(m);
      const id = this.ids.next(this.now());
      this.entries.set(id, { entry: { id, orderId: orderIdOf(fields), fields } });
      this.undelivered.push(id);
    }
    this.trim();
    for (const wake of [...this.waiters]) wake();
  }

  async backlog(): Promise<number> {
    let undelivered = 0;
    for (const stored of this.entries.values()) if (!stored.pending) undelivered++;
    return undelivered;
  }

  async pending(): Promise<number> {
    let delivered = 0;
    for (const stored of this.entries.values()) if (stored.pending) delivered++;
    return delivered;
  }

  async deadLetters(countMax: number): Promise<{ entry: PipeEntry; reason: string }[]> {
    return countMax <= 0 ? [] : this.dead.slice(-countMax);
  }

  /** One process holds the whole pipe: nothing to share out, so one partition. */
  readonly partitions = 1;

  async consumer(name: string, partition = 0): Promise<PipeConsumer> {
    if (partition !== 0) throw new RangeError(`partition ${partition} is not one of the pipe's 1`);
    return new MemoryPipeConsumer(name, this);
  }

  /** Hands up to `countMax` undelivered entries to `consumer`. */
  take(consumer: string, countMax: number): PipeEntry[] {
    const out: PipeEntry[] = [];
    const now = this.now();
    while (out.length < countMax && this.undeliveredHead < this.undelivered.length) {
      const stored = this.entries.get(this.undelivered[this.undeliveredHead++]!);
      if (!stored) continue; // trimmed
      stored.pending = { consumer, sinceMs: now, deliveries: 1 };
      out.push(stored.entry);
    }
    this.compactUndelivered();
    return out;
  }

  /** Waits until something is published or `ms` pass (or `signal` fires); resolves either way. */
  wait(ms: number, signal: { cancel?: () => void }): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal.cancel = done;
    });
  }

  ack(entryIds: readonly string[]): void {
    for (const id of entryIds) {
      const stored = this.entries.get(id);
      // Acking an entry that was never delivered (or was trimmed) changes nothing, as XACK.
      if (stored?.pending) this.entries.delete(id);
    }
  }

  claim(consumer: string, idleMs: number, countMax: number): ClaimedEntry[] {
    const now = this.now();
    const out: ClaimedEntry[] = [];
    for (const stored of this.entries.values()) {
      if (out.length >= countMax) break;
      const p = stored.pending;
      if (!p || now - p.sinceMs < idleMs) continue;
      stored.pending = { consumer, sinceMs: now, deliveries: p.deliveries + 1 };
      out.push({ ...stored.entry, deliveries: p.deliveries + 1 });
    }
    return out;
  }

  deadLetter(entry: PipeEntry, reason: string): void {
    this.dead.push({ entry, reason });
    if (this.dead.length > this.deadLettersMax) this.dead.splice(0, this.dead.length - this.deadLettersMax);
    this.entries.delete(entry.id);
  }

  /** Entries published and not yet acknowledged (delivered or not). */
  get length(): number {
    return this.entries.size;
  }

  /** Past the length bound the oldest entries go, delivered or not (as MAXLEN does). */
  private trim(): void {
    let excess = this.entries.size - this.lengthMax;
    if (excess <= 0) return;
    for (const id of this.entries.keys()) {
      if (excess-- <= 0) break;
      this.entries.delete(id);
    }
  }

  private compactUndelivered(): void {
    // The consumed prefix is dropped now and then, so the array stays bounded by the backlog.
    if (this.undeliveredHead > 1_024 && this.undeliveredHead * 2 > this.undelivered.length) {
      this.undelivered = this.undelivered.slice(this.undeliveredHead);
      this.undeliveredHead = 0;
    }
  }
}

class MemoryPipeConsumer implements PipeConsumer {
  private closed = false;
  private readonly signal: { cancel?: () => void } = {};

  constructor(
    readonly name: string,
    private readonly pipe: MemoryOrderPipe,
  ) {}

  async read(countMax: number, blockMs: number): Promise<PipeEntry[]> {
    const deadline = Date.now() + blockMs;
    for (;;) {
      if (this.closed) return [];
      const entries = this.pipe.take(this.name, countMax);
      if (entries.length > 0) return entries;
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await this.pipe.wait(left, this.signal);
    }
  }

  async ack(entryIds: readonly string[]): Promise<void> {
    this.pipe.ack(entryIds);
  }

  async claimAbandoned(idleMs: number, countMax: number): Promise<ClaimedEntry[]> {
    return this.pipe.claim(this.name, idleMs, countMax);
  }

  async deadLetter(entry: PipeEntry, reason: string): Promise<void> {
    this.pipe.deadLetter(entry, reason);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.signal.cancel?.();
  }
}
