import { describe, expect, it } from 'vitest';
import { ApiKeyCache } from './api-key-cache.js';

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
});
