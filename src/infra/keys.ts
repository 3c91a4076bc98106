/**
 * Every Redis key and channel name papertrade uses comes from here, under one prefix, so a
 * deployment (or a test file) owns a disjoint key space and a reviewer sees the whole layout in
 * one place. Streams named here are always written with `MAXLEN ~` (see their writers).
 *
 * Keys written together carry the same hash tag (the part in braces), so that on a Redis
 * Cluster they live in one slot and a MULTI or a script over them is allowed: the price hash
 * and the tick log (`{market}`: one MULTI publishes a tick batch), and each partition of the
 * order stream with its dead letters (`{orders.<k>}`: a dead-lettering moves an entry from one
 * to the other in one MULTI). Different partitions have different tags, so a cluster spreads
 * them over its nodes. Every other key is used alone. On a single Redis the braces are only
 * characters of the name.
 */
export interface Keys {
  readonly prefix: string;
  /**
   * Stream of accepted orders, consumed by the trading engine's consumer group: partition
   * `partition` of ORDER_STREAM_PARTITIONS (0 when not partitioned; see orderPartitionOf).
   */
  orderStream(partition?: number): string;
  /** Where a partition's entries delivered too many times go, with the reason; bounded like the order stream. */
  orderDeadLetterStream(partition?: number): string;
  /** Hash: ticker -> "<price>|<as_of epoch ms>". One HGET prices an order. */
  prices(): string;
  /** Pub/sub channel of price ticks. */
  ticksChannel(): string;
  /** Stream of tick batches (bounded with MAXLEN ~): what the resting-order watcher reads. */
  tickLog(): string;
  /** Where a tick-log reader keeps its position. */
  tickCursor(reader: string): string;
  /** Leader lock of the resting-order watcher (one engine watches the resting orders). */
  restingLeader(): string;
  /** Pub/sub channel of order status changes. */
  orderUpdatesChannel(): string;
  /** Pub/sub channel of committed events (the event log's news; the log itself is in PostgreSQL). */
  eventsChannel(): string;
  /** Short lock so one process at a time runs an event-retention pass. */
  eventsPrunerLock(): string;
  /** Leader lock of the feed role. */
  feedLeader(): string;
  /** Short lock so one engine at a time runs a reconciler pass. */
  reconcilerLock(): string;
  /** Leader lock of the portfolio-history snapshotter (one engine records every user's equity). */
  historySnapshotLeader(): string;
  /** Fixed-window request counter of one API key. */
  rateLimit(subject: string, windowStartMs: number): string;
}

export function createKeys(prefix: string): Keys {
  return {
    prefix,
    orderStream: (partition = 0) => `${prefix}{orders.${partition}}:stream`,
    orderDeadLetterStream: (partition = 0) => `${prefix}{orders.${partition}}:dead`,
    prices: () => `${prefix}{market}:prices`,
    ticksChannel: () => `${prefix}ticks`,
    tickLog: () => `${prefix}{market}:ticks:log`,
    tickCursor: (reader) => `${prefix}ticks:cursor:${reader}`,
    restingLeader: () => `${prefix}engine:resting`,
    orderUpdatesChannel: () => `${prefix}orders:updates`,
    eventsChannel: () => `${prefix}events`,
    eventsPrunerLock: () => `${prefix}events:pruner`,
    feedLeader: () => `${prefix}feed:leader`,
    reconcilerLock: () => `${prefix}engine:reconciler`,
    historySnapshotLeader: () => `${prefix}engine:history`,
    rateLimit: (subject, windowStartMs) => `${prefix}ratelimit:${subject}:${windowStartMs}`,
  };
}

/** Most partitions an order stream may be split into (ORDER_STREAM_PARTITIONS). */
export const ORDER_STREAM_PARTITIONS_MAX = 64;

/**
 * The partition of the order stream a user's orders go to: the last 32 bits of the user id
 * (random in a v4 or v7 UUID, where the first bits of a v7 are its time) modulo the count. The
 * same user always lands in the same partition, so one user's orders stay in order.
 */
export function orderPartitionOf(userId: string, partitions: number): number {
  if (partitions <= 1) return 0;
  const tail = Number.parseInt(userId.slice(-8), 16);
  return (Number.isFinite(tail) ? tail : 0) % partitions;
}
