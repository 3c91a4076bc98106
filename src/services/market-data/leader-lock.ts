/**
 * A leader lock in Redis: one key holding the leader's token, set with `SET NX PX` and kept
 * alive by renewals that only extend it while it still holds our token (a compare-and-pexpire
 * script), released by a compare-and-delete. Nobody can renew or release a lock they do not hold.
 *
 * The holder also keeps a local lease: a renewal sent at time t extends the lease to
 * t + ttl - margin by our own clock. Redis started the TTL after t, so the key outlives the local
 * lease: while `isHeld()` says yes, no other process can have acquired the key (barring clock
 * rates drifting more than the margin over one TTL).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { assert } from '../../core/errors.js';

/** Shortest TTL accepted; shorter would let a busy event loop lose the lock spuriously. */
export const LEADER_TTL_MS_MIN = 100;
export const LEADER_TTL_MS_MAX = 60_000;

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

export function newLeaderToken(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

export class LeaderLock {
  readonly token: string;
  private leaseUntilMs = 0;
  private readonly marginMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    readonly ttlMs: number,
    token: string = newLeaderToken(),
  ) {
    assert(Number.isInteger(ttlMs) && ttlMs >= LEADER_TTL_MS_MIN && ttlMs <= LEADER_TTL_MS_MAX, `lock TTL within bounds, got ${ttlMs}`);
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
    const ok = (await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK';
    if (!ok) return this.renew();
    this.leaseUntilMs = sentMs + this.ttlMs - this.marginMs;
    return true;
  }

  /** Extends the lock; false means it is no longer ours (the lease is dropped at once). */
  async renew(): Promise<boolean> {
    const sentMs = Date.now();
    const ok = (await this.redis.eval(RENEW_SCRIPT, 1, this.key, this.token, String(this.ttlMs))) === 1;
    this.leaseUntilMs = ok ? sentMs + this.ttlMs - this.marginMs : 0;
    return ok;
  }

  /** Gives the lock up so a standby takes over at once instead of after the TTL. */
  async release(): Promise<boolean> {
    this.leaseUntilMs = 0;
    return (await this.redis.eval(RELEASE_SCRIPT, 1, this.key, this.token)) === 1;
  }
}
