/**
 * The RateCounter contract (src/http/rate-limit.ts), run with the same test bodies against
 * RedisRateCounter and MemoryRateCounter, and the RateLimiter over each. TTLs are real and
 * short for both implementations alike. Redis entries are skipped when the run has no Redis;
 * each Redis test owns a fresh key prefix, deleted after it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryRateCounter, RATE_LIMIT_WINDOW_MS, RateLimiter, RedisRateCounter, type RateCounter } from '../../src/http/rate-limit.js';
import { createLogger } from '../../src/infra/logger.js';
import { eventually, hasRedis } from '../harness.js';
import { memoryFixture, redisFixture, type Factory, type Fixture } from './fixtures.js';

const factories: Factory<Fixture<RateCounter>>[] = [
  { name: 'memory', needsRedis: false, create: async () => memoryFixture<RateCounter>(new MemoryRateCounter()) },
  { name: 'redis', needsRedis: true, create: async () => redisFixture('rate', ({ redis, keys }) => ({ impl: new RedisRateCounter(redis, keys) })) },
];

const W0 = Date.UTC(2024, 0, 2, 14, 30);
const W1 = W0 + RATE_LIMIT_WINDOW_MS;
const TTL = 60_000;

describe.each(factories)('RateCounter contract: $name', (factory) => {
  describe.skipIf(factory.needsRedis && !hasRedis())(factory.name, () => {
    let fx: Fixture<RateCounter>;
    let counter: RateCounter;
    beforeEach(async () => {
      fx = await factory.create();
      counter = fx.impl;
      // "Ready when connected": a fresh Redis connection becomes ready; memory always is.
      await eventually(async () => (counter.isReady() ? true : undefined), 5_000, 10);
    });
    afterEach(async () => {
      await fx?.cleanup();
    });

    it('is ready when connected', () => {
      expect(counter.isReady()).toBe(true);
    });

    it('counts 1, 2, 3 for one (subject, window)', async () => {
      expect(await counter.increment('key:a', W0, TTL)).toBe(1);
      expect(await counter.increment('key:a', W0, TTL)).toBe(2);
      expect(await counter.increment('key:a', W0, TTL)).toBe(3);
    });

    it('counts subjects and windows separately', async () => {
      expect(await counter.increment('key:a', W0, TTL)).toBe(1);
      expect(await counter.increment('key:a', W0, TTL)).toBe(2);
      expect(await counter.increment('key:b', W0, TTL)).toBe(1);
      expect(await counter.increment('key:a', W1, TTL)).toBe(1);
      expect(await counter.increment('admin', W0, TTL)).toBe(1);
      expect(await counter.increment('key:a', W0, TTL)).toBe(3);
      expect(await counter.increment('key:b', W0, TTL)).toBe(2);
      expect(await counter.increment('key:a', W1, TTL)).toBe(2);
    });

    it('counts concurrent increments exactly', async () => {
      const counts = await Promise.all(Array.from({ length: 20 }, () => counter.increment('key:c', W0, TTL)));
      expect([...counts].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('forgets a count after its ttl', async () => {
      expect(await counter.increment('key:t', W0, 100)).toBe(1);
      expect(await counter.increment('key:t', W0, 100)).toBe(2);
      // Each increment restarts the ttl, so poll more slowly than the ttl: once a poll finds
      // the count gone it starts again at 1. Another subject, long-lived, is unaffected.
      expect(await counter.increment('key:u', W0, TTL)).toBe(1);
      await eventually(async () => ((await counter.increment('key:t', W0, 100)) === 1 ? true : undefined), 5_000, 200);
      expect(await counter.increment('key:u', W0, TTL)).toBe(2);
    });

    it('RateLimiter: with limit 3 the 4th hit in a window is refused, counted', async () => {
      const now = W0 + 10_000; // mid-window, fixed: every hit falls in the same window
      const limiter = new RateLimiter({ counter, limit: 3, logger: createLogger('silent', 'test'), now: () => now });
      const decisions = [];
      for (let i = 0; i < 4; i++) decisions.push(await limiter.hit('key:limited'));
      expect(decisions.map((d) => [d.allowed, d.remaining, d.counted])).toEqual([
        [true, 2, true],
        [true, 1, true],
        [true, 0, true],
        [false, 0, true],
      ]);
      for (const d of decisions) {
        expect(d.limit).toBe(3);
        expect(d.resetS).toBe(50);
      }
      // Another subject has its own budget.
      expect(await limiter.hit('key:other')).toMatchObject({ allowed: true, remaining: 2, counted: true });
    });
  });
});
