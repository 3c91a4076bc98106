import { describe, expect, it } from 'vitest';
import { API_KEY_REVALIDATE_IDLE_MS, ApiKeyCache } from './api-key-cache.js';

describe('ApiKeyCache', () => {
  const key = (n: number) => ({ role: 'user' as const, userId: `u${n}`, keyId: `k${n}` });

  it('returns a cached key until its time to live runs out', () => {
    const cache = new ApiKeyCache(1_000, 10);
    cache.set('t1', key(1), 0);
    expect(cache.get('t1', 999)).toEqual(key(1));
    expect(cache.get('t1', 1_000)).toBeUndefined();
  });

  it('stays within its size, dropping the oldest entry', () => {
    const cache = new ApiKeyCache(1_000, 2);
    cache.set('t1', key(1), 0);
    cache.set('t2', key(2), 0);
    cache.set('t3', key(3), 0);
    expect([cache.get('t1', 1), cache.get('t2', 1), cache.get('t3', 1)]).toEqual([undefined, key(2), key(3)]);
  });

  it('keeps teacher keys like user keys', () => {
    const cache = new ApiKeyCache(1_000, 10);
    const teacher = { role: 'teacher' as const, classId: 'c1', keyId: 'k9' };
    cache.set('t9', teacher, 0);
    expect(cache.get('t9', 1)).toEqual(teacher);
    cache.forgetKey('k9');
    expect(cache.get('t9', 1)).toBeUndefined();
  });

  it('forgets a revoked key at once', () => {
    const cache = new ApiKeyCache();
    cache.set('t1', key(1));
    cache.forgetKey('k1');
    expect(cache.get('t1')).toBeUndefined();
  });

  it('asks to revalidate the unexpired keys used lately, each key once', () => {
    const cache = new ApiKeyCache(1_000, 10);
    cache.set('t1', key(1), 0);
    cache.set('t1b', key(1), 0);
    cache.set('t2', key(2), 0);
    cache.set('t3', key(3), 0);
    expect(cache.keyIdsInUse(500).sort()).toEqual(['k1', 'k2', 'k3']);
    // Expired entries are not asked about: they are looked up again when next used.
    expect(cache.keyIdsInUse(1_000)).toEqual([]);
  });

  it('leaves a key idle for API_KEY_REVALIDATE_IDLE_MS to expire', () => {
    const cache = new ApiKeyCache(10 * API_KEY_REVALIDATE_IDLE_MS, 10);
    cache.set('t1', key(1), 0);
    cache.set('t2', key(2), 0);
    cache.get('t2', API_KEY_REVALIDATE_IDLE_MS);
    expect(cache.keyIdsInUse(API_KEY_REVALIDATE_IDLE_MS + 1)).toEqual(['k2']);
  });

  it('renews confirmed keys from the time the query was sent, and forgets the others', () => {
    const cache = new ApiKeyCache(1_000, 10);
    cache.set('t1', key(1), 0);
    cache.set('t2', key(2), 0);
    cache.set('t3', key(3), 0);
    // k1 confirmed by a read sent at 800; k2 asked about and not live; k3 not asked about.
    cache.revalidated(['k1', 'k2'], new Set(['k1']), 800);
    expect(cache.get('t1', 1_799)).toEqual(key(1));
    expect(cache.get('t1', 1_800)).toBeUndefined();
    expect(cache.get('t2', 1)).toBeUndefined();
    expect(cache.get('t3', 999)).toEqual(key(3));
    expect(cache.get('t3', 1_000)).toBeUndefined();
  });

  it('never shortens an entry with an older confirmation', () => {
    const cache = new ApiKeyCache(1_000, 10);
    cache.set('t1', key(1), 500);
    cache.revalidated(['k1'], new Set(['k1']), 100);
    expect(cache.get('t1', 1_499)).toEqual(key(1));
  });

  it('reads a missing key once for the requests that miss it together, and caches what it found', async () => {
    const cache = new ApiKeyCache();
    let loads = 0;
    let release!: (v: ReturnType<typeof key>) => void;
    const load = () => {
      loads++;
      return new Promise<ReturnType<typeof key>>((r) => (release = r));
    };
    const waiting = [cache.resolve('t1', load), cache.resolve('t1', load), cache.resolve('t1', load)];
    release(key(1));
    expect(await Promise.all(waiting)).toEqual([key(1), key(1), key(1)]);
    expect(loads).toBe(1);
    expect(await cache.resolve('t1', load)).toEqual(key(1));
    expect(loads).toBe(1);
  });

  it('does not cache a lookup a revocation through this process overtook, nor let later requests join it', async () => {
    const cache = new ApiKeyCache();
    const releases: ((v: ReturnType<typeof key> | undefined) => void)[] = [];
    const load = () => new Promise<ReturnType<typeof key> | undefined>((r) => releases.push(r));
    const before = cache.resolve('t1', load);
    cache.forgetKey('k1');
    // Asked after the revocation: a lookup of its own, which sees the key revoked.
    const after = cache.resolve('t1', load);
    expect(releases).toHaveLength(2);
    releases[0]!(key(1));
    releases[1]!(undefined);
    expect(await before).toEqual(key(1));
    expect(await after).toBeUndefined();
    expect(cache.get('t1')).toBeUndefined();
  });

  it('shares no failed lookup: the next request reads again', async () => {
    const cache = new ApiKeyCache();
    await expect(cache.resolve('t1', () => Promise.reject(new Error('database down')))).rejects.toThrow('database down');
    expect(await cache.resolve('t1', () => Promise.resolve(key(1)))).toEqual(key(1));
  });
});
