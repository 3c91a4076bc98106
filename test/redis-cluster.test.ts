/**
 * papertrade on a Redis Cluster: a local three-master cluster started by the test itself. The
 * keys written together share a slot (one MULTI or script over them is allowed), the order
 * stream's partitions spread over the nodes, the partitioned pipe keeps its contract there, and
 * the whole path — orders over HTTP (one at a time and in a batch), the engine, prices, the
 * live updates — works end to end with the audit clean at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { Redis } from 'ioredis';
import { createEngine } from '../src/app.js';
import { parsePrice } from '../src/core/money.js';
import { createKeys } from '../src/infra/keys.js';
import { createRedis } from '../src/infra/redis.js';
import { RedisOrderPipe } from '../src/services/orders/order-pipe.redis.js';
import { RedisQuoteStore } from '../src/services/market-data/quote-store.redis.js';
import { redisFixture } from './contracts/fixtures.js';
import { PARTITIONS, partitionedPipeTests } from './contracts/order-pipe-partitions.js';
import { createTestContext, eventually, startTestServer, type TestContext, type TestServer } from './harness.js';
import { startLocalCluster, type LocalCluster } from './redis-cluster.js';

const CLUSTER_START_MS = 60_000;

let cluster: LocalCluster;
let client: Redis;

beforeAll(async () => {
  cluster = await startLocalCluster(3);
  client = createRedis(cluster.url, { name: 'cluster-inspector', cluster: true });
  client.on('error', () => {});
}, CLUSTER_START_MS);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

/** The port of the master serving `key`'s slot, from CLUSTER SLOTS. */
async function nodeOf(key: string): Promise<number> {
  const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
  const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (!range) throw new Error(`no node serves slot ${slot}`);
  return range[2][1];
}

describe('Redis Cluster: the key layout', () => {
  it('puts keys written together in one slot and spreads the order stream partitions over the nodes', async () => {
    const keys = createKeys('pt:');
    const slot = async (key: string) => Number(await client.call('CLUSTER', 'KEYSLOT', key));
    expect(await slot(keys.prices())).toBe(await slot(keys.tickLog()));
    for (let k = 0; k < PARTITIONS; k++) expect(await slot(keys.orderStream(k))).toBe(await slot(keys.orderDeadLetterStream(k)));
    const nodes = new Set(await Promise.all(Array.from({ length: PARTITIONS }, (_, k) => nodeOf(keys.orderStream(k)))));
    expect(nodes.size).toBeGreaterThan(1);
  });
});

describe(`Redis Cluster: the order pipe partitioned in ${PARTITIONS}`, () => {
  partitionedPipeTests(async () =>
    redisFixture(
      'cluster-pipe',
      ({ redis, keys, connect }) => ({ impl: new RedisOrderPipe(redis, keys, () => connect('cluster-pipe-reader', { blocking: true }), PARTITIONS, true) }),
      { url: cluster.url, cluster: true },
    ),
  );
});

describe('Redis Cluster: the quote store', () => {
  it('publishes a tick batch (one MULTI over the price hash and the tick log), reads it back and refreshes it', async () => {
    const fx = redisFixture(
      'cluster-quotes',
      ({ redis, keys, connect }) => ({ impl: new RedisQuoteStore(redis, keys, () => connect('cluster-quotes-subscriber', { blocking: true })) }),
      { url: cluster.url, cluster: true },
    );
    try {
      const store = fx.impl;
      const asOfMs = Date.now() - 1_000;
      await store.publish(
        [
          { ticker: 'AAPL', price: parsePrice('190.5'), asOfMs },
          { ticker: 'MSFT', price: parsePrice('410'), asOfMs },
        ],
        { feed: 'test', feedId: 'cluster' },
      );
      expect((await store.get('AAPL'))?.price).toBe(parsePrice('190.5'));
      expect([...(await store.getMany(['AAPL', 'MSFT'])).keys()].sort()).toEqual(['AAPL', 'MSFT']);
      const read = await store.readTicks('0-0', 10, 10);
      expect(read.entries.flatMap((e) => e.batch.quotes.map((q) => q.ticker)).sort()).toEqual(['AAPL', 'MSFT']);
      await store.refresh(['AAPL'], asOfMs + 500, { feed: 'test', feedId: 'cluster' });
      expect((await store.get('AAPL'))?.asOfMs).toBe(asOfMs + 500);
    } finally {
      await fx.cleanup();
    }
  });
});

describe('Redis Cluster: papertrade end to end', () => {
  let ctx: TestContext;
  let api: TestServer;
  let engine: ReturnType<typeof createEngine>;

  beforeAll(async () => {
    ctx = await createTestContext(
      { ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '3600000', ORDER_STREAM_PARTITIONS: String(PARTITIONS) },
      { infra: 'redis', redisTarget: { url: cluster.url, cluster: true } },
    );
    api = await startTestServer(ctx);
    engine = createEngine(ctx);
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await api?.server.close();
    await ctx?.close();
  });

  it('accepts orders one at a time and in a batch, and the engines of every partition fill them', async () => {
    expect(engine.loops).toHaveLength(PARTITIONS);
    for (const ticker of ['AAPL', 'MSFT']) {
      const res = await api.request('PUT', `/admin/prices/${ticker}`, { body: { price: '100' } });
      expect(res.status).toBe(200);
    }
    const users = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const res = await api.request('POST', '/users', { body: { name: `C${i}`, email: `cluster${i}@example.com`, initial_cash: '10000.00' } });
        return res.body as { id: string; api_key: string };
      }),
    );
    const alone = await Promise.all(users.map((u) => api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AAPL', quantity: 2, type: 'market' } })));
    expect(alone.map((r) => r.status)).toEqual(users.map(() => 201));
    // The batch sells shares these buys bring: they must have filled first.
    const bought = alone.map((r) => r.body.id as string);
    await eventually(async () => {
      const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM orders WHERE id = ANY(${bought}::uuid[]) AND status = 'FILLED'`.execute(ctx.db);
      return rows[0]!.n === String(bought.length) ? true : undefined;
    }, 20_000);
    const batch = await api.request('POST', '/orders/batch', {
      body: { orders: users.flatMap((u) => [{ user_id: u.id, ticker: 'MSFT', quantity: 1, type: 'market' }, { user_id: u.id, ticker: 'AAPL', quantity: 1, type: 'market', side: 'sell' }]) },
    });
    expect(batch.status).toBe(200);
    expect((batch.body.results as { status: number }[]).map((r) => r.status)).toEqual(users.flatMap(() => [201, 201]));
    const ids = [...alone.map((r) => r.body.id as string), ...(batch.body.results as { order: { id: string } }[]).map((r) => r.order.id)];
    await eventually(async () => {
      const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM orders WHERE id = ANY(${ids}::uuid[]) AND status = 'FILLED'`.execute(ctx.db);
      return rows[0]!.n === String(ids.length) ? true : undefined;
    }, 20_000);
    const account = await api.request('GET', `/users/${users[0]!.id}/account`, { token: users[0]!.api_key });
    // 2 AAPL and 1 MSFT bought, 1 AAPL sold, all at 100.
    expect(account.body).toMatchObject({ cash_balance: '9800.00', available_cash: '9800.00' });
    // The orders went through more than one partition, each on its node.
    const used = await Promise.all(Array.from({ length: PARTITIONS }, (_, k) => client.xlen(ctx.keys.orderStream(k))));
    expect(used.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(used.reduce((a, b) => a + b, 0)).toBe(ids.length);
  });
});
