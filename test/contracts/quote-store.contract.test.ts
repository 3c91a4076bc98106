/**
 * The QuoteStore and TickLog contracts (src/services/market-data/quote-store.ts), run with the same test
 * bodies against RedisQuoteStore and MemoryQuoteStore. Redis entries are skipped when the run
 * has no Redis (test/global-setup.ts); each Redis test owns a fresh key prefix, deleted after it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parsePrice, PRICE_MAX } from '../../src/core/money.js';
import { TICK_LOG_START, type Quote, type QuoteStore, type TickBatch, type TickLog, type TickSource } from '../../src/services/market-data/quote-store.js';
import { MemoryQuoteStore } from '../../src/services/market-data/quote-store.memory.js';
import { RedisQuoteStore } from '../../src/services/market-data/quote-store.redis.js';
import { eventually, hasRedis } from '../harness.js';
import { memoryFixture, redisFixture, type Factory, type Fixture } from './fixtures.js';

type QuoteFixture = Fixture<QuoteStore & TickLog>;

const factories: Factory<QuoteFixture>[] = [
  { name: 'memory', needsRedis: false, create: async () => memoryFixture<QuoteStore & TickLog>(new MemoryQuoteStore()) },
  {
    name: 'redis',
    needsRedis: true,
    create: async () => redisFixture('quotes', ({ redis, keys, connect }) => ({ impl: new RedisQuoteStore(redis, keys, () => connect('contract-quotes-sub')) })),
  },
];

const p = (s: string) => parsePrice(s);
const T0 = Date.UTC(2024, 0, 2, 14, 30);
const SOURCE: TickSource = { feed: 'simulator', feedId: 'contract-feed' };

/** A subscriber that records what it hears. */
async function listen(store: QuoteStore, onEach?: (batch: TickBatch) => void) {
  const batches: TickBatch[] = [];
  const unsubscribe = await store.subscribe((batch) => {
    batches.push(batch);
    onEach?.(batch);
  });
  return { batches, unsubscribe };
}

/** Waits until a batch holding a quote of `ticker` arrives in `batches`. */
function heard(batches: TickBatch[], ticker: string, timeoutMs = 5_000) {
  return eventually(async () => (batches.some((b) => b.quotes.some((q) => q.ticker === ticker)) ? true : undefined), timeoutMs, 10);
}

describe.each(factories)('QuoteStore contract: $name', (factory) => {
  describe.skipIf(factory.needsRedis && !hasRedis())(factory.name, () => {
    let fx: QuoteFixture;
    let store: QuoteStore & TickLog;
    beforeEach(async () => {
      fx = await factory.create();
      store = fx.impl;
    });
    afterEach(async () => {
      await fx?.cleanup();
    });

    it('gets undefined for a ticker without a quote, and empty results from an empty store', async () => {
      expect(await store.get('NOPE')).toBeUndefined();
      expect(await store.getMany(['NOPE', 'ALSO'])).toEqual(new Map());
      expect(await store.getMany([])).toEqual(new Map());
      expect(await store.getAll()).toEqual([]);
    });

    it('returns what setMany stored: exact prices and times, getMany only for quoted tickers, getAll in ticker order', async () => {
      const quotes: Quote[] = [
        { ticker: 'MSFT', price: p('410.0001'), asOfMs: T0 + 2 },
        { ticker: 'AAPL', price: p('189.9999'), asOfMs: T0 + 1 },
        { ticker: 'GOOGL', price: p('0.0001'), asOfMs: T0 },
        { ticker: 'BRK.B', price: PRICE_MAX, asOfMs: T0 + 3 },
      ];
      await store.setMany(quotes);

      const aapl = await store.get('AAPL');
      expect(aapl).toEqual({ ticker: 'AAPL', price: p('189.9999'), asOfMs: T0 + 1 });
      expect(typeof aapl!.price).toBe('bigint');
      expect(aapl!.price).toBe(1_899_999n);
      expect((await store.get('BRK.B'))?.price).toBe(10_000_000_000n); // PRICE_MAX, 1000000.0000

      const many = await store.getMany(['GOOGL', 'NOPE', 'MSFT']);
      expect([...many.keys()].sort()).toEqual(['GOOGL', 'MSFT']);
      expect(many.get('GOOGL')).toEqual({ ticker: 'GOOGL', price: 1n, asOfMs: T0 });
      expect(many.get('MSFT')).toEqual({ ticker: 'MSFT', price: p('410.0001'), asOfMs: T0 + 2 });
      expect(many.has('NOPE')).toBe(false);

      expect(await store.getAll()).toEqual([
        { ticker: 'AAPL', price: p('189.9999'), asOfMs: T0 + 1 },
        { ticker: 'BRK.B', price: PRICE_MAX, asOfMs: T0 + 3 },
        { ticker: 'GOOGL', price: p('0.0001'), asOfMs: T0 },
        { ticker: 'MSFT', price: p('410.0001'), asOfMs: T0 + 2 },
      ]);
    });

    it('replaces an earlier quote with a later one (setMany and publish alike)', async () => {
      await store.setMany([{ ticker: 'AAPL', price: p('100.0000'), asOfMs: T0 }]);
      await store.setMany([{ ticker: 'AAPL', price: p('101.5000'), asOfMs: T0 + 1_000 }]);
      expect(await store.get('AAPL')).toEqual({ ticker: 'AAPL', price: p('101.5000'), asOfMs: T0 + 1_000 });
      await store.publish([{ ticker: 'AAPL', price: p('102.2500'), asOfMs: T0 + 2_000 }], SOURCE);
      expect(await store.get('AAPL')).toEqual({ ticker: 'AAPL', price: p('102.2500'), asOfMs: T0 + 2_000 });
      expect(await store.getAll()).toHaveLength(1);
    });

    it('publish stores the batch and announces it: source and quotes exact, the price already stored when the subscriber hears it', async () => {
      await store.setMany([{ ticker: 'AMZN', price: p('150.0000'), asOfMs: T0 - 1_000 }]);
      // Read the store from inside the callback: it must already hold the announced price.
      const readsInCallback: Promise<Quote | undefined>[] = [];
      const sub = await listen(store, (batch) => readsInCallback.push(store.get(batch.quotes[0]!.ticker)));
      try {
        const quotes: Quote[] = [
          { ticker: 'AMZN', price: p('200.1234'), asOfMs: T0 },
          { ticker: 'GOOGL', price: p('175.0001'), asOfMs: T0 + 1 },
        ];
        await store.publish(quotes, SOURCE);
        expect(await store.get('GOOGL')).toEqual({ ticker: 'GOOGL', price: p('175.0001'), asOfMs: T0 + 1 });
        await heard(sub.batches, 'AMZN');
        expect(sub.batches).toEqual([{ source: SOURCE, quotes }]);
        expect(typeof sub.batches[0]!.quotes[0]!.price).toBe('bigint');
        expect(readsInCallback).toHaveLength(1);
        expect(await readsInCallback[0]).toEqual({ ticker: 'AMZN', price: p('200.1234'), asOfMs: T0 });
      } finally {
        await sub.unsubscribe();
      }
    });

    it('delivers every batch once, in publication order, to every subscriber', async () => {
      const one = await listen(store);
      const two = await listen(store);
      try {
        const published: TickBatch[] = [];
        for (let i = 0; i < 8; i++) {
          const quotes: Quote[] = [{ ticker: i === 7 ? 'LAST' : 'AAPL', price: p(`${100 + i}.0001`), asOfMs: T0 + i }];
          const source = { feed: 'simulator', feedId: `feed-${i}` };
          published.push({ source, quotes });
          await store.publish(quotes, source);
        }
        await heard(one.batches, 'LAST');
        await heard(two.batches, 'LAST');
        expect(one.batches).toEqual(published);
        expect(two.batches).toEqual(published);
      } finally {
        await one.unsubscribe();
        await two.unsubscribe();
      }
    });

    it('delivers nothing more after unsubscribe', async () => {
      const gone = await listen(store);
      const stays = await listen(store);
      try {
        await store.publish([{ ticker: 'FIRST', price: p('1.0000'), asOfMs: T0 }], SOURCE);
        await heard(gone.batches, 'FIRST');
        await heard(stays.batches, 'FIRST');
        await gone.unsubscribe();

        await store.publish([{ ticker: 'AFTER', price: p('2.0000'), asOfMs: T0 + 1 }], SOURCE);
        await store.publish([{ ticker: 'MARKER', price: p('3.0000'), asOfMs: T0 + 2 }], SOURCE);
        await heard(stays.batches, 'MARKER');
        expect(stays.batches.map((b) => b.quotes[0]!.ticker)).toEqual(['FIRST', 'AFTER', 'MARKER']);
        expect(gone.batches.map((b) => b.quotes[0]!.ticker)).toEqual(['FIRST']);
        // The store itself was written all the same.
        expect((await store.get('AFTER'))?.price).toBe(p('2.0000'));
      } finally {
        await stays.unsubscribe();
      }
    });

    it('refresh moves as_of forward without changing prices, announces what it refreshed, and adds nothing to the tick log', async () => {
      await store.setMany([
        { ticker: 'AAPL', price: p('150.0000'), asOfMs: T0 },
        { ticker: 'MSFT', price: p('300.0000'), asOfMs: T0 + 5_000 },
      ]);
      const { cursor } = await store.readTicks(undefined, 10, 0);
      const sub = await listen(store);
      try {
        // MSFT is already newer than the refresh; NOPE has no quote: neither is touched.
        await store.refresh(['AAPL', 'MSFT', 'NOPE'], T0 + 1_000, SOURCE);
        expect(await store.get('AAPL')).toEqual({ ticker: 'AAPL', price: p('150.0000'), asOfMs: T0 + 1_000 });
        expect(await store.get('MSFT')).toEqual({ ticker: 'MSFT', price: p('300.0000'), asOfMs: T0 + 5_000 });
        expect(await store.get('NOPE')).toBeUndefined();
        await heard(sub.batches, 'AAPL');
        expect(sub.batches).toEqual([{ source: SOURCE, quotes: [{ ticker: 'AAPL', price: p('150.0000'), asOfMs: T0 + 1_000 }] }]);
        const read = await store.readTicks(cursor, 10, 0);
        expect(read.entries).toEqual([]);
      } finally {
        await sub.unsubscribe();
      }
    });

    it('keeps a quote\'s touch (bid, ask and their sizes) through setMany, publish, the tick log, announcements and refresh', async () => {
      const touch = { bid: p('149.9700'), ask: p('150.0300'), bidSize: 5_000_000_000n, askSize: 12_000_000_000n };
      const aapl: Quote = { ticker: 'AAPL', price: p('150.0000'), asOfMs: T0, ...touch };
      const { cursor } = await store.readTicks(undefined, 10, 0);
      const sub = await listen(store);
      try {
        await store.publish([aapl, { ticker: 'MSFT', price: p('300.0000'), asOfMs: T0 }], SOURCE);
        expect(await store.get('AAPL')).toEqual(aapl);
        // A quote without a touch stays without one.
        expect(await store.get('MSFT')).toEqual({ ticker: 'MSFT', price: p('300.0000'), asOfMs: T0 });
        expect((await store.getMany(['AAPL'])).get('AAPL')).toEqual(aapl);
        await heard(sub.batches, 'AAPL');
        expect(sub.batches[0]!.quotes[0]).toEqual(aapl);
        expect((await store.readTicks(cursor, 10, 0)).entries[0]!.batch.quotes[0]).toEqual(aapl);
        await store.refresh(['AAPL'], T0 + 1_000, SOURCE);
        expect(await store.get('AAPL')).toEqual({ ...aapl, asOfMs: T0 + 1_000 });
        await eventually(async () => (sub.batches.length >= 2 ? true : undefined), 5_000, 10);
        expect(sub.batches[1]!.quotes).toEqual([{ ...aapl, asOfMs: T0 + 1_000 }]);
      } finally {
        await sub.unsubscribe();
      }
    });

    it('refresh never puts back an older price over one published meanwhile', async () => {
      await store.setMany([{ ticker: 'AAPL', price: p('150.0000'), asOfMs: T0 }]);
      await store.publish([{ ticker: 'AAPL', price: p('139.5000'), asOfMs: T0 + 2_000 }], SOURCE);
      await store.refresh(['AAPL'], T0 + 1_000, SOURCE); // older than the published tick: nothing
      expect(await store.get('AAPL')).toEqual({ ticker: 'AAPL', price: p('139.5000'), asOfMs: T0 + 2_000 });
      await store.refresh(['AAPL'], T0 + 3_000, SOURCE); // newer: the published price, fresher
      expect(await store.get('AAPL')).toEqual({ ticker: 'AAPL', price: p('139.5000'), asOfMs: T0 + 3_000 });
    });

    it('tick log: reads every published batch after a cursor, in order, at most countMax at a time', async () => {
      await store.publish([{ ticker: 'BEFORE', price: p('1.0000'), asOfMs: T0 }], SOURCE);
      // Without a cursor: only what is published from now on.
      const start = await store.readTicks(undefined, 10, 0);
      expect(start.entries).toEqual([]);
      expect(start.gap).toBe(false);
      for (let i = 0; i < 5; i++) await store.publish([{ ticker: `T${i}`, price: p(`${10 + i}.0000`), asOfMs: T0 + i }], SOURCE);
      const first = await store.readTicks(start.cursor, 3, 0);
      expect(first.entries.map((e) => e.batch.quotes[0]!.ticker)).toEqual(['T0', 'T1', 'T2']);
      expect(first.entries[0]!.batch).toEqual({ source: SOURCE, quotes: [{ ticker: 'T0', price: p('10.0000'), asOfMs: T0 }] });
      expect(first.cursor).toBe(first.entries[2]!.cursor);
      const rest = await store.readTicks(first.cursor, 3, 0);
      expect(rest.entries.map((e) => e.batch.quotes[0]!.ticker)).toEqual(['T3', 'T4']);
      expect(rest.gap).toBe(false);
      const none = await store.readTicks(rest.cursor, 3, 0);
      expect([none.entries, none.cursor]).toEqual([[], rest.cursor]);
    });

    it('tick log: a waiting read wakes for a batch published meanwhile, and closeReader ends a wait at once', async () => {
      const { cursor } = await store.readTicks(undefined, 10, 0);
      const waitStarted = Date.now();
      const waiting = store.readTicks(cursor, 10, 5_000);
      await store.publish([{ ticker: 'WAKE', price: p('1.0000'), asOfMs: T0 }], SOURCE);
      const woke = await waiting;
      expect(woke.entries.map((e) => e.batch.quotes[0]!.ticker)).toEqual(['WAKE']);
      // Woken by the publish, not by the end of its 5 s wait.
      expect(Date.now() - waitStarted).toBeLessThan(2_000);
      const started = Date.now();
      const blocked = store.readTicks(woke.cursor, 10, 10_000);
      await store.closeReader();
      const ended = await blocked;
      expect(ended.entries).toEqual([]);
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('tick log: reports a gap when the log no longer holds the position read from', async () => {
      await store.publish([{ ticker: 'AAPL', price: p('1.0000'), asOfMs: T0 }], SOURCE);
      // A position older than anything the log holds (as after trimming, or a flush).
      const read = await store.readTicks('1-0', 10, 0);
      expect(read.gap).toBe(true);
      expect(read.entries.map((e) => e.batch.quotes[0]!.ticker)).toEqual(['AAPL']);
    });

    it('tick log: from TICK_LOG_START reads everything the log holds, without a gap', async () => {
      await store.publish([{ ticker: 'ONE', price: p('1.0000'), asOfMs: T0 }], SOURCE);
      await store.publish([{ ticker: 'TWO', price: p('2.0000'), asOfMs: T0 + 1 }], SOURCE);
      const read = await store.readTicks(TICK_LOG_START, 10, 0);
      expect(read.gap).toBe(false);
      expect(read.entries.map((e) => e.batch.quotes[0]!.ticker)).toEqual(['ONE', 'TWO']);
      const empty = await factory.create();
      try {
        const none = await empty.impl.readTicks(TICK_LOG_START, 10, 0);
        expect([none.entries, none.gap, none.cursor]).toEqual([[], false, TICK_LOG_START]);
      } finally {
        await empty.cleanup();
      }
    });

    it('tick log: keeps each reader its saved position', async () => {
      expect(await store.loadCursor('nobody')).toBeUndefined();
      await store.saveCursor('watcher', '5-1');
      await store.saveCursor('other', '7-0');
      await store.saveCursor('watcher', '6-0');
      expect(await store.loadCursor('watcher')).toBe('6-0');
      expect(await store.loadCursor('other')).toBe('7-0');
    });

    it('announces nothing for an empty batch', async () => {
      const sub = await listen(store);
      try {
        await store.publish([], SOURCE);
        await store.publish([{ ticker: 'MARKER', price: p('3.0000'), asOfMs: T0 }], SOURCE);
        await heard(sub.batches, 'MARKER');
        expect(sub.batches).toEqual([{ source: SOURCE, quotes: [{ ticker: 'MARKER', price: p('3.0000'), asOfMs: T0 }] }]);
        expect(await store.getAll()).toEqual([{ ticker: 'MARKER', price: p('3.0000'), asOfMs: T0 }]);
      } finally {
        await sub.unsubscribe();
      }
    });
  });
});
