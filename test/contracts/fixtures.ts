/**
 * What every contract suite needs to run one set of test bodies against an interface's
 * in-process and Redis implementations: a factory per implementation, and for Redis a fresh key
 * prefix, connections that are all closed (and the prefix's keys deleted) at cleanup.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createKeys, type Keys } from '../../src/infra/keys.js';
import { createRedis } from '../../src/infra/redis.js';
import { testRedisUrl } from '../db-names.js';

export interface Fixture<T> {
  impl: T;
  /** This fixture's own key prefix (the memory implementations ignore it). */
  keys: Keys;
  cleanup(): Promise<void>;
}

export interface Factory<F> {
  name: string;
  needsRedis: boolean;
  create(): Promise<F>;
}

export const freshKeys = (): Keys => createKeys(`test:contract:${randomBytes(4).toString('hex')}:`);

/** An in-process implementation: nothing to clean up. */
export function memoryFixture<T>(impl: T): Fixture<T> {
  return { impl, keys: freshKeys(), cleanup: async () => {} };
}

export interface RedisParts {
  /** The fixture's first connection. */
  redis: Redis;
  keys: Keys;
  /** Another connection (a subscriber, a blocking reader), closed at cleanup. */
  connect(name: string, options?: { blocking?: boolean }): Redis;
}

/** A Redis implementation built by `build` on a fresh prefix; cleanup deletes its keys and closes every connection. */
/** Which Redis a fixture uses: the run's own, or (test/redis-cluster.test.ts) a cluster it started. */
export interface RedisTarget {
  url: string;
  cluster: boolean;
}

export function redisFixture<T, E extends object = object>(
  label: string,
  build: (parts: RedisParts) => { impl: T } & E,
  target: RedisTarget = { url: testRedisUrl()!, cluster: false },
): Fixture<T> & E & { redis: Redis } {
  const { url, cluster } = target;
  const keys = freshKeys();
  const connections: Redis[] = [];
  const connect = (name: string, options: { blocking?: boolean } = {}): Redis => {
    const r = createRedis(url, { name, cluster, ...options });
    r.on('error', () => {});
    connections.push(r);
    return r;
  };
  const redis = connect(`contract-${label}`);
  return {
    ...build({ redis, keys, connect }),
    keys,
    redis,
    async cleanup() {
      // KEYS asks one node only: a cluster's keys go with the cluster, which its test removes.
      if (!cluster) {
        const left = await redis.keys(`${keys.prefix}*`);
        if (left.length) await redis.del(...left);
      }
      for (const c of connections) c.disconnect();
    },
  };
}
