/**
 * Rate limiting per credential (an API key, or the admin token): a fixed one-minute window per
 * subject, counted by a RateCounter — in Redis (one `MULTI INCR PEXPIRE` round trip on
 * `keys.rateLimit(subject, windowStartMs)`), so the limit holds across api instances, or in
 * memory when one process serves everything. A request over the limit is refused with
 * `429 RATE_LIMITED` and `Retry-After` before anything else happens.
 *
 * The limiter fails open: when the counter is down or slow, requests are served (and a warning
 * is logged at most every few seconds) rather than every request being refused.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import type { Logger } from '../infra/logger.js';
import { HttpError } from './errors.js';

/** Counts requests per subject and window: the rate limiter's port. */
export interface RateCounter {
  /** False while the counter cannot be asked at all (the limiter then lets requests through). */
  isReady(): boolean;
  /** Adds one to (subject, window) and returns the count; the count lives `ttlMs`. */
  increment(subject: string, windowStartMs: number, ttlMs: number): Promise<number>;
}

export class RedisRateCounter implements RateCounter {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  isReady(): boolean {
    return this.redis.status === 'ready';
  }

  async increment(subject: string, windowStartMs: number, ttlMs: number): Promise<number> {
    const key = this.keys.rateLimit(subject, windowStartMs);
    const results = await this.redis.multi().incr(key).pexpire(key, ttlMs).exec();
    const incr = results?.[0];
    if (!incr || incr[0] || typeof incr[1] !== 'number') throw incr?.[0] ?? new Error('rate limit counter failed');
    return incr[1];
  }
}

/** Counts in memory (one process); expired windows are swept as new ones begin, so it stays bounded. */
export class MemoryRateCounter implements RateCounter {
  private readonly counts = new Map<string, { count: number; expiresAtMs: number }>();
  private lastSweepMs = 0;

  constructor(private readonly now: () => number = Date.now) {}

  isReady(): boolean {
    return true;
  }

  async increment(subject: string, windowStartMs: number, ttlMs: number): Promise<number> {
    const now = this.now();
    if (now - this.lastSweepMs >= ttlMs) {
      this.lastSweepMs = now;
      for (const [key, c] of this.counts) if (c.expiresAtMs <= now) this.counts.delete(key);
    }
    const key = `${subject}:${windowStartMs}`;
    const current = this.counts.get(key);
    const count = current && current.expiresAtMs > now ? current.count + 1 : 1;
    this.counts.set(key, { count, expiresAtMs: now + ttlMs });
    return count;
  }
}

export const RATE_LIMIT_WINDOW_MS = 60_000;
/** How long a request waits for the counter before it is let through uncounted. */
export const RATE_LIMIT_REDIS_TIMEOUT_MS = 500;
const FAIL_OPEN_LOG_INTERVAL_MS = 10_000;

export interface RateDecision {
  allowed: boolean;
  limit: number;
  /** Requests left in this window (0 once refused). */
  remaining: number;
  /** Seconds until the window ends (at least 1). */
  resetS: number;
  /** False when the counter could not be asked and the request was let through uncounted. */
  counted: boolean;
}

export interface RateLimiterOptions {
  counter: RateCounter;
  /** Requests per window per subject; must be positive (0 means "off": build no limiter). */
  limit: number;
  logger: Logger;
  windowMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

export class RateLimiter {
  readonly limit: number;
  private readonly windowMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private lastFailOpenLogMs = -Infinity;

  constructor(private readonly opts: RateLimiterOptions) {
    if (!Number.isInteger(opts.limit) || opts.limit <= 0) throw new RangeError('rate limit must be a positive integer');
    this.limit = opts.limit;
    this.windowMs = opts.windowMs ?? RATE_LIMIT_WINDOW_MS;
    this.timeoutMs = opts.timeoutMs ?? RATE_LIMIT_REDIS_TIMEOUT_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Counts one request of `subject` and says whether it may proceed. Never throws. */
  async hit(subject: string): Promise<RateDecision> {
    const now = this.now();
    const windowStart = Math.floor(now / this.windowMs) * this.windowMs;
    const resetS = Math.max(1, Math.ceil((windowStart + this.windowMs - now) / 1000));
    const open: RateDecision = { allowed: true, limit: this.limit, remaining: this.limit, resetS, counted: false };
    const { counter } = this.opts;
    // Not connected: do not queue behind reconnects, let the request through now.
    if (!counter.isReady()) return this.failOpen(open, new Error('the rate counter is not connected'));
    try {
      // The count outlives its window a little, so a clock a bit behind still finds it.
      const count = await withTimeout(counter.increment(subject, windowStart, this.windowMs + 5_000), this.timeoutMs);
      return { allowed: count <= this.limit, limit: this.limit, remaining: Math.max(0, this.limit - count), resetS, counted: true };
    } catch (err) {
      return this.failOpen(open, err);
    }
  }

  private failOpen(decision: RateDecision, err: unknown): RateDecision {
    const now = Date.now();
    if (now - this.lastFailOpenLogMs >= FAIL_OPEN_LOG_INTERVAL_MS) {
      this.lastFailOpenLogMs = now;
      this.opts.logger.warn({ err }, 'rate limiter cannot reach its counter; letting requests through uncounted');
    }
    return decision;
  }
}

/** The rate-limit subject of an authenticated request: its API key, or the admin token. */
export function rateLimitSubject(request: FastifyRequest): string | undefined {
  const p = request.principal;
  if (!p) return undefined;
  return p.kind === 'admin' ? 'admin' : `key:${p.keyId}`;
}

/**
 * Counts an authenticated request and throws `RATE_LIMITED` (429, with `retry_after_s` that
 * sendError turns into `Retry-After`) when its credential is over the limit. Public and
 * unauthenticated requests are not counted.
 */
export async function enforceRateLimit(limiter: RateLimiter, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const subject = rateLimitSubject(request);
  if (subject === undefined) return;
  const decision = await limiter.hit(subject);
  if (!decision.counted) return;
  void reply.header('x-ratelimit-limit', String(decision.limit));
  void reply.header('x-ratelimit-remaining', String(decision.remaining));
  void reply.header('x-ratelimit-reset', String(decision.resetS));
  if (!decision.allowed) {
    throw new HttpError('RATE_LIMITED', `rate limit of ${decision.limit} requests per minute exceeded; retry in ${decision.resetS} s`, {
      retry_after_s: decision.resetS,
    });
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  // The command may still settle after we gave up on it; its outcome is of no interest then.
  promise.catch(() => {});
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`rate limit counter timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
