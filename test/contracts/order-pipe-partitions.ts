/**
 * What a partitioned order pipe must do beyond the one-partition contract
 * (order-pipe.contract.test.ts): each user's orders go to one partition, in publication order;
 * the consumers of all partitions together read every entry once; the counts and the dead
 * letters cover every partition. Registered by the contract file (one Redis) and by
 * test/redis-cluster.test.ts (the partitions spread over a cluster's nodes).
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { orderPartitionOf } from '../../src/infra/keys.js';
import type { PipeConsumer, PipeEntry, PipeMessage } from '../../src/services/orders/order-pipe.js';
import type { RedisOrderPipe } from '../../src/services/orders/order-pipe.redis.js';
import { eventually } from '../harness.js';

export const PARTITIONS = 4;

export function partitionedPipeTests(create: () => Promise<{ impl: RedisOrderPipe; cleanup(): Promise<void> }>): void {
  let fx: { impl: RedisOrderPipe; cleanup(): Promise<void> };
  const consumers: PipeConsumer[] = [];
  const joinAll = async (name: string) => {
    const all = await Promise.all(Array.from({ length: fx.impl.partitions }, (_, k) => fx.impl.consumer(name, k)));
    consumers.push(...all);
    return all;
  };
  beforeEach(async () => {
    fx = await create();
  });
  afterEach(async () => {
    for (const c of consumers.splice(0)) await c.close();
    await fx?.cleanup();
  });

  const users = Array.from({ length: 12 }, () => randomUUID());
  const messages = (perUser: number): PipeMessage[] =>
    Array.from({ length: perUser }, (_, i) => users.map((userId) => ({ orderId: randomUUID(), userId, ticker: 'AAPL', side: 'buy', type: 'market', quantity: String(i + 1) }))).flat();

  /** Reads every partition until `count` entries have come, each partition's in its order. */
  async function readAll(all: PipeConsumer[], count: number): Promise<PipeEntry[][]> {
    const got: PipeEntry[][] = all.map(() => []);
    await eventually(async () => {
      await Promise.all(all.map(async (c, k) => got[k]!.push(...(await c.read(100, 20)))));
      return got.flat().length >= count ? true : undefined;
    });
    return got;
  }

  it('sends each user to one partition, keeps a user\'s orders in order there, and delivers every entry once', async () => {
    const sent = messages(3);
    await fx.impl.publish(sent);
    const got = await readAll(await joinAll('p'), sent.length);
    expect(got.flat().map((e) => e.orderId).sort()).toEqual(sent.map((m) => m.orderId).sort());
    got.forEach((entries, k) => {
      for (const e of entries) expect(orderPartitionOf(e.fields.user_id!, PARTITIONS)).toBe(k);
    });
    for (const userId of users) {
      const k = orderPartitionOf(userId, PARTITIONS);
      const theirs = got[k]!.filter((e) => e.fields.user_id === userId).map((e) => e.orderId);
      expect(theirs).toEqual(sent.filter((m) => m.userId === userId).map((m) => m.orderId));
    }
    // With twelve random users, more than one partition is used (the odds of one are 4^-11).
    expect(got.filter((entries) => entries.length > 0).length).toBeGreaterThan(1);
  });

  it('counts backlog and pending over every partition', async () => {
    const sent = messages(2);
    await fx.impl.publish(sent);
    expect(await fx.impl.backlog()).toBe(sent.length);
    const all = await joinAll('q');
    const got = await readAll(all, sent.length);
    expect(await fx.impl.backlog()).toBe(0);
    expect(await fx.impl.pending()).toBe(sent.length);
    await Promise.all(all.map((c, k) => c.ack(got[k]!.map((e) => e.id))));
    expect(await fx.impl.pending()).toBe(0);
  });

  it('lists the newest dead letters of all partitions together, newest last', async () => {
    const sent = messages(1);
    await fx.impl.publish(sent);
    const all = await joinAll('d');
    const got = await readAll(all, sent.length);
    // Dead-letter in a known order across partitions, each in a later millisecond: stream ids
    // order entries across streams to the millisecond only (within one, their sequence). The
    // millisecond to pass is the one the previous dead letter's reply arrived in: Redis stamped
    // it at or before then, and stamps the next one at or after the request leaves.
    const order = got.flatMap((entries, k) => entries.map((e) => ({ e, c: all[k]! })));
    let lastMs = 0;
    for (const [i, { e, c }] of order.entries()) {
      while (Date.now() <= lastMs) await new Promise((r) => setImmediate(r));
      await c.deadLetter(e, `reason ${i}`);
      lastMs = Date.now();
    }
    const dead = await fx.impl.deadLetters(5);
    expect(dead.map((d) => d.reason)).toEqual(order.slice(-5).map((_, i) => `reason ${order.length - 5 + i}`));
    expect(await fx.impl.pending()).toBe(0);
  });

  it('refuses a consumer of a partition it does not have', async () => {
    await expect(fx.impl.consumer('x', PARTITIONS)).rejects.toThrow(/not one of the pipe's 4/);
  });
}
