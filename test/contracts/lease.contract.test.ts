/**
 * The LeaseStore contract (src/infra/lease.ts), run with the same test bodies against
 * RedisLeaseStore and MemoryLeaseStore, both raw and through LeaseLock (these replace the
 * LeaderLock tests that lived in test/market-data.test.ts). TTLs are real and short (150–300 ms)
 * for both implementations alike; expiry is polled for, never slept for. Redis entries are
 * skipped when the run has no Redis; each Redis test owns a fresh key prefix, deleted after it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseLock, MemoryLeaseStore, RedisLeaseStore, type LeaseStore } from '../../src/infra/lease.js';
import { eventually, hasRedis } from '../harness.js';
import { memoryFixture, redisFixture, type Factory, type Fixture } from './fixtures.js';

const factories: Factory<Fixture<LeaseStore>>[] = [
  { name: 'memory', needsRedis: false, create: async () => memoryFixture<LeaseStore>(new MemoryLeaseStore()) },
  { name: 'redis', needsRedis: true, create: async () => redisFixture('lease', ({ redis }) => ({ impl: new RedisLeaseStore(redis) })) },
];

describe.each(factories)('LeaseStore contract: $name', (factory) => {
  describe.skipIf(factory.needsRedis && !hasRedis())(factory.name, () => {
    let fx: Fixture<LeaseStore>;
    let store: LeaseStore;
    let key: string;
    beforeEach(async () => {
      fx = await factory.create();
      store = fx.impl;
      key = fx.keys.feedLeader();
    });
    afterEach(async () => {
      await fx?.cleanup();
    });

    describe('raw store', () => {
      it('acquire sets a free key only; renew and release act only for the token the key holds', async () => {
        expect(await store.acquire(key, 'a', 10_000)).toBe(true);
        expect(await store.acquire(key, 'b', 10_000)).toBe(false);
        expect(await store.acquire(key, 'a', 10_000)).toBe(false); // held, even by the same token
        expect(await store.renew(key, 'b', 10_000)).toBe(false);
        expect(await store.release(key, 'b')).toBe(false);
        expect(await store.renew(key, 'a', 10_000)).toBe(true);
        expect(await store.release(key, 'a')).toBe(true);
        expect(await store.release(key, 'a')).toBe(false); // gone already
        expect(await store.renew(key, 'a', 10_000)).toBe(false); // renewing does not recreate
        expect(await store.acquire(key, 'b', 10_000)).toBe(true);
        expect(await store.release(key, 'a')).toBe(false);
        expect(await store.release(key, 'b')).toBe(true);
      });

      it('keeps keys apart', async () => {
        const other = fx.keys.reconcilerLock();
        expect(await store.acquire(key, 'a', 10_000)).toBe(true);
        expect(await store.acquire(other, 'b', 10_000)).toBe(true);
        expect(await store.release(other, 'a')).toBe(false);
        expect(await store.release(key, 'a')).toBe(true);
        expect(await store.release(other, 'b')).toBe(true);
      });

      it('lets a key expire after its ttl: then another token takes it, the old one can neither renew nor release', async () => {
        expect(await store.acquire(key, 'a', 300)).toBe(true);
        expect(await store.acquire(key, 'b', 300)).toBe(false);
        await eventually(async () => ((await store.acquire(key, 'b', 10_000)) ? true : undefined), 3_000, 10);
        expect(await store.renew(key, 'a', 10_000)).toBe(false);
        expect(await store.release(key, 'a')).toBe(false);
        expect(await store.release(key, 'b')).toBe(true);
      });

      it('renew restarts the ttl', async () => {
        // Two keys taken together with the same short ttl; only the second is renewed (long).
        const plain = fx.keys.reconcilerLock();
        expect(await store.acquire(plain, 'a', 150)).toBe(true);
        expect(await store.acquire(key, 'a', 150)).toBe(true);
        expect(await store.renew(key, 'a', 60_000)).toBe(true);
        await eventually(async () => ((await store.acquire(plain, 'b', 10_000)) ? true : undefined), 3_000, 10);
        expect(await store.acquire(key, 'b', 10_000)).toBe(false);
        expect(await store.renew(key, 'a', 60_000)).toBe(true);
      });
    });

    describe('through LeaseLock', () => {
      it('lets one holder at a time take, renew and release the lock', async () => {
        const a = new LeaseLock(store, key, 1_000, 'a');
        const b = new LeaseLock(store, key, 1_000, 'b');
        expect(await a.tryAcquire()).toBe(true);
        expect(a.isHeld()).toBe(true);
        expect(await b.tryAcquire()).toBe(false);
        expect(b.isHeld()).toBe(false);
        expect(await b.renew()).toBe(false);
        expect(b.isHeld()).toBe(false);
        expect(await b.release()).toBe(false); // not b's to release
        expect(await store.acquire(key, 'c', 1_000)).toBe(false); // still a's
        expect(await a.renew()).toBe(true);
        expect(a.isHeld()).toBe(true);
        expect(await a.release()).toBe(true);
        expect(a.isHeld()).toBe(false);
        expect(await b.tryAcquire()).toBe(true);
        expect(b.isHeld()).toBe(true);
        expect(await a.tryAcquire()).toBe(false);
        expect(await a.renew()).toBe(false);
        expect(await a.release()).toBe(false);
        expect(b.isHeld()).toBe(true);
      });

      it('expires when not renewed, so another holder takes it; the old holder cannot renew it back', async () => {
        const a = new LeaseLock(store, key, 150, 'a');
        // b's own ttl is long, so the checks after b takes over do not race b's expiry.
        const b = new LeaseLock(store, key, 10_000, 'b');
        expect(await a.tryAcquire()).toBe(true);
        await eventually(async () => ((await b.tryAcquire()) ? true : undefined), 3_000, 10);
        expect(a.isHeld()).toBe(false); // the local lease ends before the key does
        expect(await a.renew()).toBe(false);
        expect(a.isHeld()).toBe(false);
        expect(await a.tryAcquire()).toBe(false);
        expect(b.isHeld()).toBe(true);
        expect(await store.release(key, 'a')).toBe(false);
        expect(await store.release(key, 'b')).toBe(true);
      });

      it('takes back its own key when only its local lease lapsed (tryAcquire by the holder succeeds)', async () => {
        const a = new LeaseLock(store, key, 10_000, 'a');
        expect(await a.tryAcquire()).toBe(true);
        expect(await a.tryAcquire()).toBe(true);
        expect(a.isHeld()).toBe(true);
        const other = new LeaseLock(store, key, 10_000, 'b');
        expect(await other.tryAcquire()).toBe(false);
        expect(other.isHeld()).toBe(false);
      });

      it('isHeld() is false after release and once the local lease lapses', async () => {
        const a = new LeaseLock(store, key, 150, 'a');
        expect(a.isHeld()).toBe(false); // never acquired
        expect(await a.tryAcquire()).toBe(true);
        const acquiredMs = Date.now();
        expect(a.isHeld()).toBe(true);
        // The local lease is shorter than the ttl (a margin of a tenth).
        expect(a.isHeld(acquiredMs + 150)).toBe(false);
        await eventually(async () => (a.isHeld() ? undefined : true), 3_000, 5);

        expect(await a.tryAcquire()).toBe(true);
        expect(a.isHeld()).toBe(true);
        expect(await a.release()).toBe(true);
        expect(a.isHeld()).toBe(false);
      });
    });
  });
});
