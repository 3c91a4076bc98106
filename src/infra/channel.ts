/**
 * A channel: fire-and-forget messages to whoever listens now (pub/sub). Used for what is news
 * but never the only copy — order status changes today; PostgreSQL holds the state, so a
 * listener that misses a message (slow, reconnecting, or not there yet) has lost nothing that
 * cannot be read again. Two implementations: Redis pub/sub (across processes) and memory (one
 * process).
 */
import type { Redis } from 'ioredis';

export type Unsubscribe = () => Promise<void>;

export interface Channel {
  /** Sends messages in order; resolves when they are handed to the transport. */
  publish(messages: readonly string[]): Promise<void>;
  /** Hears every message published from now on, in order, until unsubscribed. */
  subscribe(onMessage: (message: string) => void): Promise<Unsubscribe>;
}

/** Redis pub/sub on one channel name. A subscription takes a connection of its own. */
export class RedisChannel implements Channel {
  constructor(
    private readonly redis: Redis,
    private readonly name: string,
    private readonly subscriberFor: () => Redis = () => redis.duplicate(),
  ) {}

  async publish(messages: readonly string[]): Promise<void> {
    if (messages.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const m of messages) pipeline.publish(this.name, m);
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async subscribe(onMessage: (message: string) => void): Promise<Unsubscribe> {
    const subscriber = this.subscriberFor();
    subscriber.on('error', () => {});
    subscriber.on('message', (from: string, text: string) => {
      if (from === this.name) onMessage(text);
    });
    await subscriber.subscribe(this.name);
    return async () => {
      await subscriber.unsubscribe(this.name).catch(() => undefined);
      subscriber.disconnect();
    };
  }
}

/**
 * In memory: listeners are called on the next turn of the event loop (never inside publish,
 * like a message that travels), in publication order.
 */
export class MemoryChannel implements Channel {
  private readonly listeners = new Set<(message: string) => void>();

  async publish(messages: readonly string[]): Promise<void> {
    if (messages.length === 0 || this.listeners.size === 0) return;
    const listeners = [...this.listeners];
    setImmediate(() => {
      for (const m of messages) for (const listener of listeners) if (this.listeners.has(listener)) listener(m);
    });
  }

  async subscribe(onMessage: (message: string) => void): Promise<Unsubscribe> {
    // One wrapper per subscription, so the same function subscribed twice is two listeners.
    const listener = (m: string) => onMessage(m);
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
    };
  }
}
