/**
 * A lease lock: one key holding its holder's token for a time, taken only when nobody holds
 * it, kept alive by renewals that only extend it while it still holds our token, released by a
 * compare-and-delete. Nobody can renew or release a lock they do not hold. The feed leader and
 * the reconciler's turn are such locks. The store behind it is Redis (`SET NX PX` and two
 * compare-and-act scripts) across processes, or memory in one process.
 *
 * The holder also keeps a local lease: a renewal sent at time t extends the lease to
 * t + ttl - margin by our own clock. The store started the TTL after t, so the key outlives the local
 * lease: while `isHeld()` says yes, no other process can have acquired the key (barring clock
 * rates drifting more than the margin over one TTL).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { assert } from '../core/errors.js';

/** Shortest TTL accepted; shorter would let a busy event loop lose the lock spuriously. */
export const LEASE_TTL_MS_MIN = 50;
/** Longest TTL accepted (the reconciler's turn lasts one of its intervals, at most an hour). */
export const LEASE_TTL_MS_MAX = 3_600_000;

/*
 * KEYS[1] lock key; ARGV[1] token; ARGV[2] ttl in ms.
 * Returns 1 when the key held the token and its TTL was reset, 0 otherwise (expired or taken).
 */
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

/*
 * KEYS[1] lock key; ARGV[1] token.
 * Returns 1 when the key held the token and was deleted, 0 otherwise.
 */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

export function newLeaseToken(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** Where lease keys live: each operation is atomic (Redis scripts, or one synchronous step in memory). */
export interface LeaseStore {
  /** Sets `key` to `token` for `ttlMs` unless it is held; true when set. */
  acquire(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Restarts the TTL of `key` if it holds `token`; true when it did. */
  renew(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Deletes `key` if it holds `token`; true when it did. */
  release(key: string, token: string): Promise<boolean>;
}

export class RedisLeaseStore implements LeaseStore {
  constructor(private readonly redis: Redis) {}

  async acquire(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async renew(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW_SCRIPT, 1, key, token, String(ttlMs))) === 1;
  }

  async release(key: string, token: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE_SCRIPT, 1, key, token)) === 1;
  }
}

/** Lease keys in memory, for every role in one process; an expired key is as good as absent. */
export class MemoryLeaseStore implements LeaseStore {
  private readonly keys = new Map<string, { token: string; expiresAtMs: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  private holder(key: string): string | undefined {
    const held = this.keys.get(key);
    if (held && held.expiresAtMs <= this.now()) {
      this.keys.delete(key);
      return undefined;
    }
    return held?.token;
  }

  async acquire(key: string, token: string, ttlMs: number): Promise<boolean> {
    if (this.holder(key) !== undefined) return false;
    this.keys.set(key, { token, expiresAtMs: this.now() + ttlMs });
    return true;
  }

  async renew(key: string, token: string, ttlMs: number): Promise<boolean> {
    if (this.holder(key) !== token) return false;
    this.keys.set(key, { token, expiresAtMs: this.now() + ttlMs });
    return true;
  }

  async release(key: string, token: string): Promise<boolean> {
    if (this.holder(key) !== token) return false;
    this.keys.delete(key);
    return true;
  }
}

export class LeaseLock {
  readonly token: string;
  private leaseUntilMs = 0;
  private readonly marginMs: number;

  constructor(
    private readonly store: LeaseStore,
    private readonly key: string,
    readonly ttlMs: number,
    token: string = newLeaseToken(),
  ) {
    assert(Number.isInteger(ttlMs) && ttlMs >= LEASE_TTL_MS_MIN && ttlMs <= LEASE_TTL_MS_MAX, `lock TTL within bounds, got ${ttlMs}`);
    this.token = token;
    // A tenth of the TTL covers the round trip's tail and timer lateness on our side.
    this.marginMs = Math.ceil(ttlMs / 10);
  }

  /** True while our lease is valid by the local clock. */
  isHeld(nowMs: number = Date.now()): boolean {
    return nowMs < this.leaseUntilMs;
  }

  /**
   * Takes the lock when nobody holds it. When the key already holds our own token (our lease
   * lapsed locally, say after a slow renewal, but the key did not expire yet), renewing it is
   * taking it back: no need to wait out the TTL.
   */
  async tryAcquire(): Promise<boolean> {
    const sentMs = Date.now();
    const ok = await this.store.acquire(this.key, this.token, this.ttlMs);
    if (!ok) return this.renew();
    this.leaseUntilMs = sentMs + this.ttlMs - this.marginMs;
    return true;
  }

  /** Extends the lock; false means it is no longer ours (the lease is dropped at once). */
  async renew(): Promise<boolean> {
    const sentMs = Date.now();
    const ok = await this.store.renew(this.key, this.token, this.ttlMs);
    this.leaseUntilMs = ok ? sentMs + this.ttlMs - this.marginMs : 0;
    return ok;
  }

  /** Gives the lock up so a standby takes over at once instead of after the TTL. */
  async release(): Promise<boolean> {
    this.leaseUntilMs = 0;
    return this.store.release(this.key, this.token);
  }
}
