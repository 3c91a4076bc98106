/**
 * The in-process tick log's bound (Redis keeps its own with MAXLEN ~, which trims only whole
 * macro nodes and so cannot be pinned down this exactly): past its length the oldest batches go,
 * and a reader whose position was trimmed away is told of the gap.
 */
import { describe, expect, it } from 'vitest';
import { parsePrice } from '../../core/money.js';
import { MemoryQuoteStore } from './quote-store.memory.js';

const SOURCE = { feed: 'test', feedId: 'test-1' };

describe('the in-process tick log', () => {
  it('keeps the newest batches up to its length, and reports a gap to a reader whose position was trimmed', async () => {
    const store = new MemoryQuoteStore(3);
    for (let i = 1; i <= 5; i++) await store.publish([{ ticker: `T${i}`, price: parsePrice(String(i)), asOfMs: 1_000 * i }], SOURCE);
    const all = await store.readTicks('0-0', 100, 0);
    expect(all.gap).toBe(false);
    expect(all.entries.map((e) => e.batch.quotes[0]!.ticker)).toEqual(['T3', 'T4', 'T5']);

    // A position before the oldest kept batch (the first batch's, trimmed): a gap, then what is kept.
    const first = new MemoryQuoteStore(3);
    await first.publish([{ ticker: 'T1', price: parsePrice('1'), asOfMs: 1_000 }], SOURCE);
    const cursor = (await first.readTicks('0-0', 100, 0)).cursor;
    for (let i = 2; i <= 5; i++) await first.publish([{ ticker: `T${i}`, price: parsePrice(String(i)), asOfMs: 1_000 * i }], SOURCE);
    const after = await first.readTicks(cursor, 100, 0);
    expect(after.gap).toBe(true);
    expect(after.entries.map((e) => e.batch.quotes[0]!.ticker)).toEqual(['T3', 'T4', 'T5']);

    // A position still in the log: no gap.
    const fromT3 = await first.readTicks(after.entries[0]!.cursor, 100, 0);
    expect(fromT3.gap).toBe(false);
    expect(fromT3.entries.map((e) => e.batch.quotes[0]!.ticker)).toEqual(['T4', 'T5']);
  });
});
