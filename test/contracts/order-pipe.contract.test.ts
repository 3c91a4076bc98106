/**
 * The OrderPipe contract (src/services/orders/order-pipe.ts), run with the same test bodies
 * against RedisOrderPipe and MemoryOrderPipe. Redis entries are skipped when the run has no
 * Redis (test/global-setup.ts); each Redis test owns a fresh key prefix, deleted after it, and
 * every connection it opened is closed.
 *
 * Idle times are real and short (50–250 ms), for both implementations alike: claims are
 * polled until the entry qualifies, never slept for.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageFields, type OrderPipe, type PipeConsumer, type PipeEntry, type PipeMessage } from '../../src/services/orders/order-pipe.js';
import { MemoryOrderPipe } from '../../src/services/orders/order-pipe.memory.js';
import { RedisOrderPipe } from '../../src/services/orders/order-pipe.redis.js';
import { eventually, hasRedis } from '../harness.js';
import { memoryFixture, redisFixture, type Factory, type Fixture } from './fixtures.js';
import { PARTITIONS, partitionedPipeTests } from './order-pipe-partitions.js';

interface PipeFixture extends Fixture<OrderPipe> {
  /** Appends an entry with exactly these fields, bypassing publish; undefined when the implementation cannot hold one. */
  publishRaw?: (fields: Record<string, string>) => Promise<string>;
}

const factories: (Factory<PipeFixture> & { holdsRawEntries: boolean })[] = [
  // No publishRaw: the memory pipe only takes PipeMessages, whose fields always include order_id
  // (messageFields), so an entry without one cannot exist in it.
  { name: 'memory', needsRedis: false, holdsRawEntries: false, create: async () => memoryFixture<OrderPipe>(new MemoryOrderPipe()) },
  {
    name: 'redis',
    needsRedis: true,
    holdsRawEntries: true,
    create: async () =>
      redisFixture('pipe', ({ redis, keys, connect }) => ({
        impl: new RedisOrderPipe(redis, keys, () => connect('contract-pipe-reader', { blocking: true })),
        publishRaw: async (fields: Record<string, string>) => (await redis.xadd(keys.orderStream(), '*', ...Object.entries(fields).flat()))!,
      })),
  },
];

function message(i: number): PipeMessage {
  return {
    orderId: randomUUID(),
    userId: randomUUID(),
    ticker: i % 2 ? 'AAPL' : 'MSFT',
    side: i % 2 ? 'buy' : 'sell',
    type: 'market',
    quantity: `${i + 1}.5`,
  };
}

const ids = (entries: readonly PipeEntry[]) => entries.map((e) => e.id);
const orderIds = (entries: readonly PipeEntry[]) => entries.map((e) => e.orderId);

/** Polls claimAbandoned until it returns something (the entries became idle enough). */
function claimWhenIdle(consumer: PipeConsumer, idleMs: number, countMax = 100, timeoutMs = 5_000) {
  return eventually(async () => {
    const claimed = await consumer.claimAbandoned(idleMs, countMax);
    return claimed.length > 0 ? claimed : undefined;
  }, timeoutMs, 10);
}

describe.each(factories)('OrderPipe contract: $name', (factory) => {
  describe.skipIf(factory.needsRedis && !hasRedis())(factory.name, () => {
    let fx: PipeFixture;
    let pipe: OrderPipe;
    const consumers: PipeConsumer[] = [];
    const join = async (name: string) => {
      const c = await pipe.consumer(name);
      consumers.push(c);
      return c;
    };
    beforeEach(async () => {
      fx = await factory.create();
      pipe = fx.impl;
    });
    afterEach(async () => {
      for (const c of consumers.splice(0)) await c.close();
      await fx?.cleanup();
    });

    it('reads entries in publication order with their order ids and fields', async () => {
      const a = await join('engine-a');
      const messages = [0, 1, 2, 3, 4].map(message);
      await pipe.publish(messages.slice(0, 2));
      await pipe.publish(messages.slice(2));
      const entries = await a.read(100, 1_000);
      expect(orderIds(entries)).toEqual(messages.map((m) => m.orderId));
      entries.forEach((e, i) => {
        const m = messages[i]!;
        expect(e.fields).toEqual({ order_id: m.orderId, user_id: m.userId, ticker: m.ticker, qty: m.quantity, type: m.type, side: m.side });
        expect(e.fields).toEqual(messageFields(m));
        expect(e.id).toMatch(/^\d+-\d+$/);
      });
      expect(new Set(ids(entries)).size).toBe(entries.length);
    });

    it('reads at most countMax entries, and the rest on the next read', async () => {
      const a = await join('engine-a');
      const messages = [0, 1, 2, 3, 4].map(message);
      await pipe.publish(messages);
      const first = await a.read(3, 1_000);
      const second = await a.read(3, 1_000);
      expect(orderIds(first)).toEqual(messages.slice(0, 3).map((m) => m.orderId));
      expect(orderIds(second)).toEqual(messages.slice(3).map((m) => m.orderId));
    });

    it('delivers each entry once, to one consumer of the group', async () => {
      const a = await join('engine-a');
      const b = await join('engine-b');
      const messages = [0, 1, 2, 3, 4, 5].map(message);
      await pipe.publish(messages);
      const toA = await a.read(2, 1_000);
      const toB = await b.read(100, 1_000);
      expect(toA).toHaveLength(2);
      expect(toB).toHaveLength(4);
      expect([...orderIds(toA), ...orderIds(toB)]).toEqual(messages.map((m) => m.orderId));
      // Not again, to either (pending but unacked entries are not re-read).
      expect(await a.read(100, 100)).toEqual([]);
      expect(await b.read(100, 100)).toEqual([]);
    });

    it('waits up to blockMs for a publish that happens during the wait', async () => {
      const a = await join('engine-a');
      const m = message(0);
      const startedMs = Date.now();
      const reading = a.read(10, 2_000);
      const publishing = new Promise<void>((resolve, reject) => {
        setTimeout(() => pipe.publish([m]).then(resolve, reject), 50);
      });
      const entries = await reading;
      await publishing;
      expect(orderIds(entries)).toEqual([m.orderId]);
      expect(Date.now() - startedMs).toBeLessThan(1_500);
    });

    it('returns [] after blockMs when nothing is published', async () => {
      const a = await join('engine-a');
      const startedMs = Date.now();
      expect(await a.read(10, 200)).toEqual([]);
      const elapsedMs = Date.now() - startedMs;
      expect(elapsedMs).toBeGreaterThanOrEqual(180);
      expect(elapsedMs).toBeLessThan(2_000);
    });

    it('close() ends a blocking read promptly with [], and later reads return []', async () => {
      const a = await pipe.consumer('engine-a');
      const startedMs = Date.now();
      const reading = a.read(10, 10_000);
      await new Promise((r) => setTimeout(r, 50)); // let the read start waiting
      await a.close();
      expect(await reading).toEqual([]);
      expect(Date.now() - startedMs).toBeLessThan(2_000);
      expect(await a.read(10, 10_000)).toEqual([]);
      expect(Date.now() - startedMs).toBeLessThan(2_000);
    });

    it('never hands out acked entries again, by read or claim', async () => {
      const a = await join('engine-a');
      const b = await join('engine-b');
      const messages = [0, 1, 2].map(message);
      await pipe.publish(messages);
      const read = await a.read(10, 1_000);
      await a.ack([read[0]!.id, read[2]!.id]);
      const claimed = await claimWhenIdle(b, 100);
      expect(ids(claimed)).toEqual([read[1]!.id]);
      await b.ack([read[1]!.id]);
      expect(await b.claimAbandoned(0, 100)).toEqual([]);
      expect(await a.claimAbandoned(0, 100)).toEqual([]);
      expect(await b.read(10, 100)).toEqual([]);
    });

    it('lets another consumer claim only entries idle for at least idleMs, counting deliveries', async () => {
      const IDLE_MS = 250;
      const a = await join('engine-a');
      const b = await join('engine-b');
      const c = await join('engine-c');
      const [m1, m2] = [message(1), message(2)];
      await pipe.publish([m1, m2]);
      const [e1] = await a.read(1, 1_000);
      expect(e1?.orderId).toBe(m1.orderId);
      // Just read: not idle long enough yet. m2 is not delivered at all, so not claimable either.
      expect(await b.claimAbandoned(IDLE_MS, 100)).toEqual([]);

      const first = await claimWhenIdle(b, IDLE_MS);
      expect(first).toEqual([{ id: e1!.id, orderId: m1.orderId, fields: messageFields(m1), deliveries: 2 }]);

      const [e2] = await a.read(1, 1_000);
      expect(e2?.orderId).toBe(m2.orderId);
      // Both were just delivered (e1 by the claim, e2 by the read): nothing is idle enough.
      expect(await c.claimAbandoned(IDLE_MS, 100)).toEqual([]);

      const second = await claimWhenIdle(c, IDLE_MS);
      // e2 may still be too young when e1 qualifies; collect until both are claimed.
      const all = [...second];
      if (all.length < 2) all.push(...(await claimWhenIdle(c, IDLE_MS)).filter((e) => !all.some((x) => x.id === e.id)));
      const byId = new Map(all.map((e) => [e.id, e]));
      expect(byId.get(e1!.id)?.deliveries).toBe(3);
      expect(byId.get(e2!.id)?.deliveries).toBe(2);
      expect(byId.get(e2!.id)?.fields).toEqual(messageFields(m2));
      expect(byId.size).toBe(2);
    });

    it('claims at most countMax entries', async () => {
      const a = await join('engine-a');
      const b = await join('engine-b');
      await pipe.publish([0, 1, 2, 3].map(message));
      const read = await a.read(10, 1_000);
      const claimed = await claimWhenIdle(b, 50, 3);
      expect(claimed).toHaveLength(3);
      expect(ids(claimed).every((id) => ids(read).includes(id))).toBe(true);
    });

    it('reads an entry whose order_id is not a well-formed id with orderId undefined', async () => {
      const a = await join('engine-a');
      const bad = { ...message(0), orderId: 'not-an-order-id' };
      await pipe.publish([bad]);
      const [entry] = await a.read(10, 1_000);
      expect(entry?.orderId).toBeUndefined();
      expect(entry?.fields.order_id).toBe('not-an-order-id');
    });

    // The memory pipe takes only PipeMessages, whose fields always carry order_id; a raw entry
    // without one can only come from outside papertrade, through Redis: the case exists only there.
    if (factory.holdsRawEntries) {
      it('reads an entry whose fields lack order_id with orderId undefined', async () => {
        const a = await join('engine-a');
        await fx.publishRaw!({ user_id: randomUUID(), ticker: 'AAPL' });
        const [entry] = await a.read(10, 1_000);
        expect(entry?.orderId).toBeUndefined();
        expect(entry?.fields).toEqual({ user_id: expect.any(String), ticker: 'AAPL' });
      });
    }

    it('deadLetter keeps the entry with its reason and settles it: not claimable any more', async () => {
      const a = await join('engine-a');
      const b = await join('engine-b');
      const [m1, m2] = [message(1), message(2)];
      await pipe.publish([m1, m2]);
      const [e1, e2] = await a.read(10, 1_000);
      expect(await pipe.pending()).toBe(2);
      await a.deadLetter(e1!, 'delivered too many times');
      expect(await pipe.pending()).toBe(1);
      const claimed = await claimWhenIdle(b, 50);
      expect(ids(claimed)).toEqual([e2!.id]);
      expect(ids(await b.claimAbandoned(0, 100))).toEqual([e2!.id]); // e2 again, never e1
      expect(await b.read(10, 100)).toEqual([]);
      expect(await pipe.deadLetters(10)).toEqual([
        { entry: { id: e1!.id, orderId: m1.orderId, fields: messageFields(m1) }, reason: 'delivered too many times' },
      ]);
    });

    it('deadLetters returns the newest, newest last, at most countMax', async () => {
      expect(await pipe.deadLetters(10)).toEqual([]);
      const a = await join('engine-a');
      const messages = [0, 1, 2, 3].map(message);
      await pipe.publish(messages);
      const entries = await a.read(10, 1_000);
      for (const [i, e] of entries.entries()) await a.deadLetter(e, `reason ${i}`);
      expect(await pipe.pending()).toBe(0);
      const all = await pipe.deadLetters(100);
      expect(all.map((d) => [d.entry.id, d.entry.orderId, d.reason])).toEqual(entries.map((e, i) => [e.id, e.orderId, `reason ${i}`]));
      const newest = await pipe.deadLetters(2);
      expect(newest.map((d) => d.reason)).toEqual(['reason 2', 'reason 3']);
      expect(await pipe.deadLetters(1)).toHaveLength(1);
    });

    it('deadLetters(0) returns none ("at most countMax")', async () => {
      const a = await join('engine-a');
      await pipe.publish([message(0)]);
      const [entry] = await a.read(10, 1_000);
      await a.deadLetter(entry!, 'bad');
      expect(await pipe.deadLetters(0)).toEqual([]);
    });

    it('counts pending entries: delivered and not yet acked or dead-lettered, claims included', async () => {
      expect(await pipe.pending()).toBe(0);
      const a = await join('engine-a');
      const b = await join('engine-b');
      await pipe.publish([0, 1, 2, 3].map(message));
      expect(await pipe.pending()).toBe(0);
      const read = await a.read(3, 1_000);
      expect(await pipe.pending()).toBe(3);
      await a.ack([read[0]!.id]);
      expect(await pipe.pending()).toBe(2);
      expect(await claimWhenIdle(b, 50)).toHaveLength(2);
      expect(await pipe.pending()).toBe(2); // claimed entries are still pending, with b now
      await b.deadLetter(read[1]!, 'bad');
      expect(await pipe.pending()).toBe(1);
      await b.ack([read[2]!.id]);
      expect(await pipe.pending()).toBe(0);
      expect(await pipe.backlog()).toBe(1);
    });

    it('counts the backlog: 0 on a fresh pipe, n after n publishes, 0 once they are read', async () => {
      expect(await pipe.backlog()).toBe(0);
      const a = await join('engine-a');
      expect(await pipe.backlog()).toBe(0);
      await pipe.publish([0, 1, 2].map(message));
      expect(await pipe.backlog()).toBe(3);
      await pipe.publish([message(3)]);
      expect(await pipe.backlog()).toBe(4);
      expect(await a.read(1, 1_000)).toHaveLength(1);
      expect(await pipe.backlog()).toBe(3);
      expect(await a.read(10, 1_000)).toHaveLength(3);
      expect(await pipe.backlog()).toBe(0);
    });

    it('counts the backlog of entries published before any consumer joined', async () => {
      await pipe.publish([0, 1].map(message));
      expect(await pipe.backlog()).toBe(2);
      const a = await join('engine-a');
      expect(await pipe.backlog()).toBe(2);
      expect(await a.read(10, 1_000)).toHaveLength(2);
      expect(await pipe.backlog()).toBe(0);
    });

    it('publishing nothing is fine', async () => {
      await pipe.publish([]);
      expect(await pipe.backlog()).toBe(0);
    });
  });
});

// The length bound is tested on the memory pipe only: the Redis pipe trims with
// `MAXLEN ~ ORDER_PIPE_LENGTH_MAX` (100 000, approximate, not configurable), too large to fill
// in a test; the memory pipe takes the bound as an option.
describe('OrderPipe bounded length (memory only)', () => {
  it('keeps at most lengthMax entries, the newest, dropping the oldest even unread', async () => {
    const pipe = new MemoryOrderPipe({ lengthMax: 10 });
    const a = await pipe.consumer('engine-a');
    const messages = Array.from({ length: 25 }, (_, i) => message(i));
    for (const m of messages) await pipe.publish([m]);
    // Exactly the bound (the memory pipe trims entry by entry, unlike MAXLEN ~).
    expect(pipe.length).toBe(10);
    expect(await pipe.backlog()).toBe(10);
    const entries = await a.read(100, 100);
    // The survivors are the newest, in order.
    expect(orderIds(entries)).toEqual(messages.slice(15).map((m) => m.orderId));
    await a.close();
  });

  it('trims delivered-but-unacked entries too, so they are not claimable any more', async () => {
    const pipe = new MemoryOrderPipe({ lengthMax: 10 });
    const a = await pipe.consumer('engine-a');
    const b = await pipe.consumer('engine-b');
    await pipe.publish([message(0)]);
    const [old] = await a.read(1, 100);
    await pipe.publish(Array.from({ length: 10 }, (_, i) => message(i + 1)));
    expect(ids(await b.claimAbandoned(0, 100))).not.toContain(old!.id);
    await a.close();
    await b.close();
  });
});

describe.skipIf(!hasRedis())(`OrderPipe partitioned in ${PARTITIONS} (redis)`, () => {
  partitionedPipeTests(async () =>
    redisFixture('partitioned-pipe', ({ redis, keys, connect }) => ({
      impl: new RedisOrderPipe(redis, keys, () => connect('contract-pipe-reader', { blocking: true }), PARTITIONS),
    })),
  );
});
