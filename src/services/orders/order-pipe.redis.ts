/**
 * The order pipe on Redis Streams: `partitions` streams (`keys.orderStream(k)`, each bounded
 * with `MAXLEN ~`; a user's orders always go to the same one, orderPartitionOf), one consumer
 * group (`engine`) on each whose members are the engines, XAUTOCLAIM for entries a dead
 * consumer left pending, and a dead-letter stream per partition (bounded too). A consumer reads
 * one partition on a connection of its own, as XREADGROUP BLOCK holds its connection while it
 * waits; an engine runs one consumer per partition. Partitions let several engines and, on a
 * Redis Cluster, several nodes share the stream: each partition has its own hash tag.
 */
import type { Redis } from 'ioredis';
import { orderPartitionOf, type Keys } from '../../infra/keys.js';
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
import { compareStreamIds } from '../../infra/stream-ids.js';

export const CONSUMER_GROUP = 'engine';

type StreamEntries = [string, string[] | null][];

function toEntry(id: string, flat: string[]): PipeEntry {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return { id, orderId: orderIdOf(fields), fields };
}

function isNoGroup(err: unknown): boolean {
  return String((err as Error | undefined)?.message).includes('NOGROUP');
}

export class RedisOrderPipe implements OrderPipe {
  /**
   * @param redis the shared command connection (auto-pipelined)
   * @param blockingConnection a new connection for one consumer's blocking reads
   * @param partitions how many streams the orders are split into (ORDER_STREAM_PARTITIONS)
   * @param cluster whether `redis` is a Redis Cluster: a pipeline may then only hold one slot's keys
   */
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly blockingConnection: () => Redis,
    readonly partitions = 1,
    private readonly cluster = false,
  ) {
    if (!(Number.isInteger(partitions) && partitions >= 1)) throw new RangeError('partitions is a whole number from 1');
  }

  private allPartitions(): number[] {
    return Array.from({ length: this.partitions }, (_, k) => k);
  }

  async publish(messages: readonly PipeMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const byPartition = new Map<number, PipeMessage[]>();
    for (const m of messages) {
      const k = orderPartitionOf(m.userId, this.partitions);
      const list = byPartition.get(k);
      if (list) list.push(m);
      else byPartition.set(k, [m]);
    }
    // One pipeline for everything on a single Redis; on a cluster one per partition (a
    // pipeline must stay within a slot), sent at once.
    const pipelines = this.cluster ? [...byPartition].map((entry) => [entry]) : [[...byPartition]];
    await Promise.all(
      pipelines.map(async (partitions) => {
        const pipeline = this.redis.pipeline();
        for (const [k, list] of partitions) {
          const stream = this.keys.orderStream(k);
          for (const m of list) pipeline.xadd(stream, 'MAXLEN', '~', ORDER_PIPE_LENGTH_MAX, '*', ...Object.entries(messageFields(m)).flat());
        }
        const results = await pipeline.exec();
        const failed = results?.find(([err]) => err);
        if (failed) throw failed[0];
      }),
    );
  }

  async backlog(): Promise<number> {
    const counts = await Promise.all(this.allPartitions().map((k) => this.partitionBacklog(this.keys.orderStream(k))));
    return counts.reduce((a, b) => a + b, 0);
  }

  private async partitionBacklog(stream: string): Promise<number> {
    let groups: unknown[];
    try {
      groups = (await this.redis.xinfo('GROUPS', stream)) as unknown[];
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
    // No group yet (no engine ever joined, or Redis lost it): nobody was given anything.
    return this.redis.xlen(stream);
  }

  async pending(): Promise<number> {
    const counts = await Promise.all(
      this.allPartitions().map(async (k) => {
        try {
          const summary = (await this.redis.xpending(this.keys.orderStream(k), CONSUMER_GROUP)) as [number, ...unknown[]];
          return Number(summary[0] ?? 0);
        } catch (err) {
          if (isNoGroup(err)) return 0;
          throw err;
        }
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  async deadLetters(countMax: number): Promise<{ entry: PipeEntry; reason: string }[]> {
    if (countMax <= 0) return [];
    // The newest of each partition, then the newest of them all: stream ids are times, so across
    // partitions the order is to the millisecond.
    const perPartition = await Promise.all(
      this.allPartitions().map(async (k) => ((await this.redis.xrevrange(this.keys.orderDeadLetterStream(k), '+', '-', 'COUNT', countMax)) ?? []) as [string, string[]][]),
    );
    const rows = perPartition.flat().sort((a, b) => compareStreamIds(b[0], a[0])).slice(0, countMax);
    return rows.reverse().map(([, flat]) => {
      const all = toEntry('', flat).fields;
      const { entry_id: entryId = '', reason = '', ...fields } = all;
      return { entry: { id: entryId, orderId: orderIdOf(fields), fields }, reason };
    });
  }

  async consumer(name: string, partition = 0): Promise<PipeConsumer> {
    if (!(Number.isInteger(partition) && partition >= 0 && partition < this.partitions)) {
      throw new RangeError(`partition ${partition} is not one of the pipe's ${this.partitions}`);
    }
    await ensureGroup(this.redis, this.keys.orderStream(partition));
    const reader = this.blockingConnection();
    // Errors of a blocking connection surface in read(); without a listener they would crash.
    reader.on('error', () => {});
    return new RedisPipeConsumer(name, this.redis, reader, this.keys.orderStream(partition), this.keys.orderDeadLetterStream(partition));
  }
}

async function ensureGroup(redis: Redis, stream: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, CONSUMER_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
  }
}

class RedisPipeConsumer implements PipeConsumer {
  private closed = false;

  constructor(
    readonly name: string,
    private readonly redis: Redis,
    private readonly reader: Redis,
    private readonly stream: string,
    private readonly deadStream: string,
  ) {}

  async read(countMax: number, blockMs: number): Promise<PipeEntry[]> {
    if (this.closed) return [];
    try {
      const reply = (await this.reader.xreadgroup(
        'GROUP',
        CONSUMER_GROUP,
        this.name,
        'COUNT',
        countMax,
        'BLOCK',
        blockMs,
        'STREAMS',
        this.stream,
        '>',
      )) as [string, StreamEntries][] | null;
      return (reply?.[0]?.[1] ?? []).filter((e) => e[1]).map(([id, flat]) => toEntry(id, flat!));
    } catch (err) {
      if (this.closed) return [];
      // The stream or its group is gone (Redis flushed or restarted): recreate it. The orders
      // the old stream held are still PENDING in PostgreSQL; the reconciler publishes them.
      if (isNoGroup(err)) {
        await ensureGroup(this.redis, this.stream);
        return [];
      }
      throw err;
    }
  }

  async ack(entryIds: readonly string[]): Promise<void> {
    if (entryIds.length) await this.redis.xack(this.stream, CONSUMER_GROUP, ...entryIds);
  }

  async claimAbandoned(idleMs: number, countMax: number): Promise<ClaimedEntry[]> {
    const stream = this.stream;
    let reply: [string, StreamEntries, string[]];
    try {
      reply = (await this.redis.xautoclaim(stream, CONSUMER_GROUP, this.name, idleMs, '0-0', 'COUNT', countMax)) as typeof reply;
    } catch (err) {
      if (isNoGroup(err)) return [];
      throw err;
    }
    const [, claimedRaw, deleted] = reply;
    // Entries trimmed from the stream while pending: nothing to read; their orders, if still
    // pending, come back through the reconciler.
    if (deleted?.length) await this.redis.xack(stream, CONSUMER_GROUP, ...deleted);
    const claimed = claimedRaw.filter((e) => e && e[1]).map(([id, flat]) => toEntry(id, flat!));
    if (claimed.length === 0) return [];
    const ids = claimed.map((e) => e.id).sort(compareStreamIds);
    const pending = (await this.redis.xpending(stream, CONSUMER_GROUP, ids[0]!, ids[ids.length - 1]!, ids.length, this.name)) as [
      string,
      string,
      number,
      number,
    ][];
    const deliveries = new Map(pending.map(([id, , , count]) => [id, count]));
    return claimed.map((e) => ({ ...e, deliveries: deliveries.get(e.id) ?? 1 }));
  }

  async deadLetter(entry: PipeEntry, reason: string): Promise<void> {
    const results = await this.redis
      .multi()
      .xadd(
        this.deadStream,
        'MAXLEN',
        '~',
        DEAD_LETTER_LENGTH_MAX,
        '*',
        'entry_id',
        entry.id,
        'reason',
        reason,
        ...Object.entries(entry.fields).flat(),
      )
      .xack(this.stream, CONSUMER_GROUP, entry.id)
      .exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async close(): Promise<void> {
    this.closed = true;
    // Unblocks a waiting XREADGROUP; entries it may have been handed stay in our pending list
    // and are claimed by another consumer after the idle time.
    this.reader.disconnect();
  }
}
