/**
 * The event log's shapes and ports. Every change a client cares about is an event stored in
 * PostgreSQL by the transaction that made the change (the transactional outbox), numbered per
 * user from 1 without gaps; after the commit the writer publishes it on the event bus, which
 * only carries news: whoever misses a message reads the log (`EventLog`) and loses nothing.
 *
 * `dataJson` is the event's data as clients receive it, already rendered (JSON text), so that a
 * fan-out to many connections never parses or re-renders it.
 */
import type { Channel, Unsubscribe } from '../../infra/channel.js';

export const EVENT_TYPES = [
  'order.new',
  'order.open',
  'order.triggered',
  'order.fill',
  'order.canceled',
  'order.expired',
  'order.rejected',
  'order.replaced',
  'cash.deposit',
  'cash.withdrawal',
  'account.reset',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface EventRecord {
  userId: string;
  /** Per user: 1, 2, 3, ... (a JS number is exact to 2^53, far beyond any user's history). */
  seq: number;
  type: EventType;
  /** When the change committed's transaction ran, as ISO 8601 UTC with milliseconds. */
  at: string;
  /** The data as JSON text: the order as GET /orders/{id} shows it, or the activity. */
  dataJson: string;
}

/** Events one read returns at most (GET /users/{id}/events, a replay page). */
export const EVENTS_PAGE_MAX = 1_000;

/** What readers of the log need (the REST endpoint, the live stream's replay and gap repair). */
export interface EventLog {
  /** The user's last committed seq; 0 before the first event. */
  lastSeq(userId: string): Promise<number>;
  /** The last committed seq of each of `userIds` (0 for a user without events). */
  lastSeqs(userIds: readonly string[]): Promise<Map<string, number>>;
  /**
   * Events with seq > afterSeq, oldest first, at most `limit` (≤ EVENTS_PAGE_MAX). Throws
   * EventsExpiredError when events after `afterSeq` have been removed by retention (the client
   * resynchronises from the REST endpoints), and EventsSeqAheadError when `afterSeq` is beyond
   * the user's last event (a client of another database, or a bug).
   */
  readAfter(userId: string, afterSeq: number, limit: number): Promise<EventRecord[]>;
}

/**
 * The bus: committed events announced to every api process (Redis pub/sub across processes,
 * memory within one). Best effort, like any channel: a subscriber repairs gaps from the log.
 */
export interface EventBus {
  publish(events: readonly EventRecord[]): Promise<void>;
  subscribe(onEvents: (events: EventRecord[]) => void): Promise<Unsubscribe>;
}

/**
 * One bus message per committed batch: one line per event, its header as a JSON array and its
 * data as the stored JSON text after a tab — the data is passed through, never parsed.
 * (JSON text never holds a raw newline or tab: both are escaped inside strings.)
 */
export function encodeEvents(events: readonly EventRecord[]): string {
  return events.map((e) => `${JSON.stringify([e.userId, e.seq, e.type, e.at])}\t${e.dataJson}`).join('\n');
}

export function decodeEvents(message: string): EventRecord[] {
  const out: EventRecord[] = [];
  for (const line of message.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    const [userId, seq, type, at] = JSON.parse(line.slice(0, tab)) as [string, number, EventType, string];
    out.push({ userId, seq, type, at, dataJson: line.slice(tab + 1) });
  }
  return out;
}

/** The bus over a channel (RedisChannel or MemoryChannel). */
export function channelEventBus(channel: Channel): EventBus {
  return {
    publish: async (events) => {
      if (events.length > 0) await channel.publish([encodeEvents(events)]);
    },
    subscribe: (onEvents) => channel.subscribe((message) => onEvents(decodeEvents(message))),
  };
}

/** The event as the REST endpoint lists it: `{ seq, type, at, user_id, data }` (JSON text). */
export function eventJson(e: EventRecord): string {
  return `{"seq":${e.seq},"type":${JSON.stringify(e.type)},"at":${JSON.stringify(e.at)},"user_id":${JSON.stringify(e.userId)},"data":${e.dataJson}}`;
}

/** The event as the live stream sends it: the REST shape with `"channel": "events"` first. */
export function streamEventJson(e: EventRecord): string {
  return `{"channel":"events",${eventJson(e).slice(1)}`;
}
