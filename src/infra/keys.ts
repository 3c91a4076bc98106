/**
 * Every Redis key and channel name papertrade uses comes from here, under one prefix, so a
 * deployment (or a test file) owns a disjoint key space and a reviewer sees the whole layout in
 * one place. Streams named here are always written with `MAXLEN ~` (see their writers).
 */
export interface Keys {
  readonly prefix: string;
  /** Stream of accepted orders, consumed by the trading engine's consumer group. */
  orderStream(): string;
  /** Where entries delivered too many times go, with the reason; bounded like the order stream. */
  orderDeadLetterStream(): string;
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
    orderStream: () => `${prefix}orders:stream`,
    orderDeadLetterStream: () => `${prefix}orders:dead`,
    prices: () => `${prefix}prices`,
    ticksChannel: () => `${prefix}ticks`,
    tickLog: () => `${prefix}ticks:log`,
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
