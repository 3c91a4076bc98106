/**
 * The order pipe: how an accepted order travels from the OMS to a trading engine. PostgreSQL
 * holds the truth; an entry only says "look at order X". The pipe is the OMS's port to
 * infrastructure, with two implementations behind one contract (test/contracts/order-pipe.contract.test.ts):
 * Redis Streams with a consumer group (roles in separate processes), and memory (every role in
 * one process).
 *
 * The protocol the engine relies on, as Redis Streams give it:
 * - delivery is at least once: an entry read by a consumer stays pending for it until acked;
 * - an entry pending with a consumer that stopped is claimed by another after an idle time,
 *   and every delivery is counted (so an entry that keeps failing can be dead-lettered);
 * - the pipe is bounded: past its length the oldest entries go, even unread ones — an order
 *   whose entry was lost is still PENDING in PostgreSQL and the reconciler publishes it again.
 */

/** What the OMS publishes for each accepted order. */
export interface PipeMessage {
  orderId: string;
  userId: string;
  ticker: string;
  side: string;
  type: string;
  /** Decimal string, for people reading the stream; the engine reads the order from PostgreSQL. */
  quantity: string;
}

export interface PipeEntry {
  /** The pipe's own id of the entry (a Redis stream id, "<ms>-<seq>"). */
  id: string;
  /** The order the entry points at; undefined when the entry is malformed. */
  orderId: string | undefined;
  /** The entry as stored, field by field, kept with it when it is dead-lettered. */
  fields: Record<string, string>;
}

export interface ClaimedEntry extends PipeEntry {
  /** How many times the entry has been delivered, this claim included. */
  deliveries: number;
}

export interface PipeConsumer {
  readonly name: string;
  /**
   * Up to `countMax` entries no consumer has been given yet, waiting at most `blockMs` for the
   * first. They stay pending for this consumer until acked. [] after close() or on timeout.
   */
  read(countMax: number, blockMs: number): Promise<PipeEntry[]>;
  /** Settles entries: they will not be delivered again. */
  ack(entryIds: readonly string[]): Promise<void>;
  /** Takes over entries pending with any consumer for at least `idleMs`, with their delivery counts. */
  claimAbandoned(idleMs: number, countMax: number): Promise<ClaimedEntry[]>;
  /** Moves an entry to the dead letters with the reason, and settles it. */
  deadLetter(entry: PipeEntry, reason: string): Promise<void>;
  /** Ends a read in progress and releases what the consumer holds; its pending entries stay pending. */
  close(): Promise<void>;
}

export interface OrderPipe {
  /** Appends entries in one round trip; throws when the pipe cannot take them. */
  publish(messages: readonly PipeMessage[]): Promise<void>;
  /** Entries published and not yet given to any consumer (0 when the pipe does not exist). */
  backlog(): Promise<number>;
  /** Entries given to a consumer and not yet settled (acked or dead-lettered). */
  pending(): Promise<number>;
  /** The newest dead letters, newest last, at most `countMax`. */
  deadLetters(countMax: number): Promise<{ entry: PipeEntry; reason: string }[]>;
  /** How many partitions the pipe has (a user's orders are always in the same one). */
  readonly partitions: number;
  /** Joins the consumer group of `partition` (0 by default; creating it when missing) as `name`. */
  consumer(name: string, partition?: number): Promise<PipeConsumer>;
}

/** Entries kept in the pipe; beyond this the oldest are trimmed. */
export const ORDER_PIPE_LENGTH_MAX = 100_000;
/** Dead letters kept. */
export const DEAD_LETTER_LENGTH_MAX = 10_000;

const ORDER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The order id an entry's fields name, if they name a well-formed one. */
export function orderIdOf(fields: Record<string, string>): string | undefined {
  const id = fields.order_id;
  return id !== undefined && ORDER_ID.test(id) ? id : undefined;
}

/** The fields an entry is stored with (Redis stream fields; the memory pipe keeps the same). */
export function messageFields(m: PipeMessage): Record<string, string> {
  return { order_id: m.orderId, user_id: m.userId, ticker: m.ticker, qty: m.quantity, type: m.type, side: m.side };
}
