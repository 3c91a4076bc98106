import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Counter } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeContext, createContext, createFeedRunner, type AppContext } from '../src/app.js';
import { formatPrice, parsePrice } from '../src/core/money.js';
import { loadReplay, replayFactory, simulatorFactory } from '../src/services/market-data/feeds.js';
import type { FeedRunner, FeedRunnerOptions } from '../src/services/market-data/feed.runner.js';
import { encodeTickMessage, type TickMessage } from '../src/services/market-data/quote-store.redis.js';
import { LeaseLock } from '../src/infra/lease.js';
import { createTestContext, eventually, redisOnly, type TestContext } from './harness.js';

/** Fast settings so leadership changes take well under a second. */
const FEED_ENV = { FEED_TICK_MS: '50', FEED_LEADER_TTL_MS: '600', PRICE_AGE_MS_MAX: '5000' };
const TTL_MS = 600;
const RENEW_MS = 200;

let dir: string;
const subscribers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'papertrade-feed-'));
});
afterAll(async () => {
  for (const unsubscribe of subscribers) await unsubscribe(); // those a failed test left open
  await rm(dir, { recursive: true, force: true });
});

interface Heard {
  atMs: number;
  message: TickMessage;
}

/**
 * Subscribes to the tick announcements of `ctx`'s quote store and records every batch with its
 * arrival time, in the wire form (decimal strings, ISO times) the assertions read easily.
 */
async function listen(ctx: AppContext) {
  const heard: Heard[] = [];
  const unsubscribe = await ctx.quotes.subscribe((batch) =>
    heard.push({ atMs: Date.now(), message: JSON.parse(encodeTickMessage(batch.quotes, batch.source)) as TickMessage }),
  );
  subscribers.push(unsubscribe);
  return {
    heard,
    from: (feedId: string) => heard.filter((h) => h.message.feed_id === feedId),
    close: () => void unsubscribe(),
  };
}

/** True when nobody holds the feed leader lease (a probe takes it and gives it back). */
async function leaderLeaseFree(ctx: AppContext): Promise<boolean> {
  const probe = new LeaseLock(ctx.infra.leases, ctx.infra.keys.feedLeader(), 1_000, 'probe');
  if (!(await probe.tryAcquire())) return false;
  await probe.release();
  return true;
}

function simulatorRunner(ctx: AppContext, token: string, overrides: Partial<FeedRunnerOptions> = {}): FeedRunner {
  return createFeedRunner(ctx, simulatorFactory(ctx.config), { token, barFlushMs: 200, ...overrides });
}

describe('feed runner with the simulator', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(FEED_ENV);
  });
  afterAll(async () => {
    await ctx.close();
  });

  it('publishes every listed ticker each tick, into the cache and on the ticks channel, and records bars', async () => {
    const listener = await listen(ctx);
    const runner = simulatorRunner(ctx, 'feed-1');
    const tickers = (await ctx.market.listInstruments()).map((i) => i.ticker);
    try {
      runner.start();
      await eventually(async () => (listener.heard.length >= 10 ? true : undefined));
      for (const { message } of listener.heard) {
        expect(message.feed).toBe('simulator');
        expect(message.feed_id).toBe('feed-1');
        expect(message.ticks.map((t) => t.ticker)).toEqual(tickers);
        for (const t of message.ticks) {
          expect(t.price).toMatch(/^\d+\.\d{4}$/);
          // Each tick is a quote: a bid below and an ask above the last price, with sizes in
          // its tier's range (ETSY and CROX mid caps and SFIX a small cap, the rest large).
          expect(Number(t.bid)).toBeLessThan(Number(t.price));
          expect(Number(t.ask)).toBeGreaterThan(Number(t.price));
          const [min, max] = t.ticker === 'SFIX' ? [1_000, 3_000] : [5_000, 15_000];
          for (const size of [t.bid_size, t.ask_size]) {
            expect(Number(size)).toBeGreaterThanOrEqual(min);
            expect(Number(size)).toBeLessThanOrEqual(max);
          }
        }
      }
      const quote = await ctx.market.getPrice('AAPL');
      expect(Date.now() - quote.asOfMs).toBeLessThan(2_000);
      // Prices move from tick to tick.
      const aapl = new Set(listener.heard.map((h) => h.message.ticks.find((t) => t.ticker === 'AAPL')!.price));
      expect(aapl.size).toBeGreaterThan(1);
      // Bars are written while the feed runs.
      await eventually(async () => ((await ctx.market.listBars('AAPL')).length > 0 ? true : undefined));
    } finally {
      await runner.stop();
    }
    // A graceful stop releases the lock and writes the last bars: every published tick is in
    // exactly one bar.
    expect(await leaderLeaseFree(ctx)).toBe(true);
    // Every batch carries every ticker, so the tick counter says how many batches were published.
    const ticksMetric = ctx.metrics.getSingleMetric('papertrade_feed_ticks_total') as Counter;
    const published = ((await ticksMetric.get()).values[0]?.value ?? 0) / tickers.length;
    expect(Number.isInteger(published)).toBe(true);
    await eventually(async () => (listener.heard.length === published ? true : undefined));
    const bars = await ctx.market.listBars('AAPL', '1m', 500);
    expect(bars.reduce((n, b) => n + b.tickCount, 0)).toBe(published);
    const last = listener.heard.at(-1)!.message.ticks.find((t) => t.ticker === 'AAPL')!.price;
    expect(formatPrice(bars[0]!.close)).toBe(last);
    listener.close();
  });

  it('resumes from the cached price, else the last stored bar close, else the reference price', async () => {
    const fresh = await createTestContext(FEED_ENV);
    const listener = await listen(fresh);
    const runner = simulatorRunner(fresh, 'feed-resume');
    try {
      const old = Date.now() - 3_600_000;
      await fresh.quotes.setMany([{ ticker: 'AAPL', price: parsePrice('111.1111'), asOfMs: old }]);
      const bucketMs = Math.floor(old / 60_000) * 60_000;
      const msft = parsePrice('333.3333');
      await fresh.market.saveBars([{ ticker: 'MSFT', bucketMs, open: msft, high: msft, low: msft, close: msft, tickCount: 1 }]);
      runner.start();
      const [first] = await eventually(async () => (listener.heard.length > 0 ? listener.heard : undefined));
      const priceOf = (ticker: string) => first!.message.ticks.find((t) => t.ticker === ticker)?.price;
      expect(priceOf('AAPL')).toBe('111.1111');
      expect(priceOf('MSFT')).toBe('333.3333');
      expect(priceOf('NVDA')).toBe('135.0000');
    } finally {
      await runner.stop();
      listener.close();
      await fresh.close();
    }
  });
});

describe('feed leadership', () => {
  let ctx: TestContext;
  const others: AppContext[] = [];
  /**
   * Another feed of the same deployment: same database and key prefix with its own clients (with
   * Redis, as another process would be), or the same in-process infrastructure (memory).
   */
  const peer = () => {
    const other = ctx.infra.kind === 'redis' ? createContext(ctx.config, 'feed-peer') : createContext(ctx.config, 'feed-peer', ctx.logger, ctx.infra);
    others.push(other);
    return other;
  };
  beforeAll(async () => {
    ctx = await createTestContext(FEED_ENV);
  });
  afterAll(async () => {
    for (const other of others) await closeContext(other).catch(() => {});
    await ctx.close();
  });

  it('lets only one of two feeds emit, and the standby takes over within seconds when the leader dies', redisOnly, async () => {
    const listener = await listen(ctx);
    const ctxA = peer();
    const ctxB = peer();
    const a = simulatorRunner(ctxA, 'feed-a');
    const b = simulatorRunner(ctxB, 'feed-b');
    try {
      a.start();
      await eventually(async () => (listener.from('feed-a').length > 0 ? true : undefined));
      b.start();
      // Both run side by side for a while: only the leader emits.
      await eventually(async () => (listener.from('feed-a').length >= 15 ? true : undefined));
      expect(listener.from('feed-b')).toEqual([]);
      expect(b.isLeader()).toBe(false);

      // The leader dies without releasing anything (its connection is gone, as in a crash).
      const crashedAtMs = Date.now();
      await ctxA.infra.close();
      const firstFromB = await eventually(async () => listener.from('feed-b')[0], 5_000);
      const takeoverMs = firstFromB.atMs - crashedAtMs;
      // The key outlives the crash by at most one TTL; the standby polls every renewal period.
      expect(takeoverMs).toBeLessThan(TTL_MS + RENEW_MS + 1_000);
      expect(listener.heard.filter((h) => h.message.feed_id === 'feed-a' && h.atMs > firstFromB.atMs)).toEqual([]);
      // The new leader continues from the cached prices: no jump.
      const lastFromA = listener.from('feed-a').at(-1)!.message.ticks;
      expect(firstFromB.message.ticks).toEqual(lastFromA.map((t) => ({ ...t, as_of: firstFromB.message.ticks[0]!.as_of })));
    } finally {
      await a.stop();
      await b.stop();
      listener.close();
    }
  });

  it('stops emitting as soon as its lock is taken away', async () => {
    const listener = await listen(ctx);
    const a = simulatorRunner(peer(), 'feed-c');
    try {
      a.start();
      await eventually(async () => (listener.from('feed-c').length >= 3 ? true : undefined));
      // Someone else holds the lock now (as after a long pause of ours and a takeover).
      const key = ctx.infra.keys.feedLeader();
      await ctx.infra.leases.release(key, 'feed-c');
      expect(await ctx.infra.leases.acquire(key, 'intruder', 60_000)).toBe(true);
      const stolenAtMs = Date.now();
      await eventually(async () => (a.isLeader() ? undefined : true), 5_000);
      const stoodDownAtMs = Date.now();
      expect(stoodDownAtMs - stolenAtMs).toBeLessThan(RENEW_MS + 500);
      const count = listener.from('feed-c').length;
      // Observe a few tick intervals: nothing more from the deposed leader.
      const observeUntil = Date.now() + 300;
      await eventually(async () => (Date.now() >= observeUntil ? true : undefined));
      expect(listener.from('feed-c').length).toBeLessThanOrEqual(count + 1); // at most one already in flight
      expect(listener.heard.filter((h) => h.message.feed_id === 'feed-c' && h.atMs > stoodDownAtMs + 100)).toEqual([]);
      // When the lock frees up, it leads again.
      await ctx.infra.leases.release(key, 'intruder');
      await eventually(async () => (a.isLeader() ? true : undefined), 5_000);
    } finally {
      await a.stop();
      listener.close();
    }
  });

  it('hands over at once on a graceful stop (the lock is released, not left to expire)', async () => {
    const listener = await listen(ctx);
    const a = simulatorRunner(peer(), 'feed-d');
    const b = simulatorRunner(peer(), 'feed-e');
    try {
      a.start();
      await eventually(async () => (a.isLeader() ? true : undefined));
      b.start();
      await eventually(async () => (listener.from('feed-d').length >= 2 ? true : undefined));
      const stoppedAtMs = Date.now();
      await a.stop();
      const first = await eventually(async () => listener.from('feed-e')[0], 5_000);
      expect(first.atMs - stoppedAtMs).toBeLessThan(TTL_MS);
    } finally {
      await a.stop();
      await b.stop();
      listener.close();
    }
  });
  it('stops at once when stopped while it is still taking the lock (the term must not outlive the stop)', async () => {
    const runner = simulatorRunner(peer(), 'feed-f');
    runner.start(); // tryAcquire is in flight now
    const stopped = await Promise.race([runner.stop().then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
    expect(stopped).toBe('stopped');
    expect(runner.isLeader()).toBe(false);
  });
});

describe('feed runner with a replay file', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext({ ...FEED_ENV, FEED: 'replay', FEED_REPLAY_FILE: '/dev/null' });
  });
  afterAll(async () => {
    await ctx.close();
  });

  async function replayRunner(rows: string[], token: string, speed: number, loop: boolean) {
    const file = path.join(dir, `${token}.csv`);
    await writeFile(file, ['timestamp,ticker,open,high,low,close,volume', ...rows].join('\n'));
    const batches = await loadReplay(file, await ctx.market.listInstruments(), ctx.logger);
    return createFeedRunner(ctx, replayFactory(batches, { feedReplaySpeed: speed, feedReplayLoop: loop }), {
      token,
      quietRefreshMs: 100,
    });
  }

  it('keeps quotes fresh through a long gap in the data by re-publishing the latest prices', async () => {
    const listener = await listen(ctx);
    const runner = await replayRunner(['2024-01-02T14:30:00Z,AAPL,1,1,1,188.01,0', '2024-01-02T15:30:00Z,AAPL,1,1,1,190,0'], 'replay-gap', 1, false);
    try {
      runner.start();
      await eventually(async () => (listener.from('replay-gap').length >= 4 ? true : undefined));
      const heard = listener.from('replay-gap');
      expect(heard.every((h) => h.message.ticks[0]!.price === '188.0100' && h.message.feed === 'replay')).toBe(true);
      const asOfs = heard.map((h) => Date.parse(h.message.ticks[0]!.as_of));
      expect(asOfs).toEqual([...asOfs].sort((x, y) => x - y));
      expect(asOfs.at(-1)! - asOfs[0]!).toBeGreaterThanOrEqual(250);
      expect(formatPrice((await ctx.market.getPrice('AAPL')).price)).toBe('188.0100');
    } finally {
      await runner.stop();
      listener.close();
    }
  });

  it('publishes a finished replay once and keeps the lock, so a standby does not replay it again', async () => {
    const listener = await listen(ctx);
    const rows = ['1000,AAPL,1,1,1,10,0', '2000,AAPL,1,1,1,11,0', '2000,MSFT,1,1,1,20,0', '3000,AAPL,1,1,1,12,0', '3000,NOTLISTED,1,1,1,1,0'];
    const a = await replayRunner(rows, 'replay-a', 100, false);
    const b = await replayRunner(rows, 'replay-b', 100, false);
    try {
      a.start();
      await eventually(async () => (listener.from('replay-a').length >= 3 ? true : undefined));
      b.start();
      // Well past the replay's end (30 ms) and several polling periods of the standby.
      const observeUntil = Date.now() + 3 * RENEW_MS + 200;
      await eventually(async () => (Date.now() >= observeUntil ? true : undefined));
      expect(listener.from('replay-a').map((h) => h.message.ticks.map((t) => `${t.ticker}=${t.price}`).join(' '))).toEqual([
        'AAPL=10.0000',
        'AAPL=11.0000 MSFT=20.0000',
        'AAPL=12.0000',
      ]);
      expect(listener.from('replay-b')).toEqual([]);
      expect(a.isLeader()).toBe(true);
    } finally {
      await a.stop();
      await b.stop();
      listener.close();
    }
  });
});
