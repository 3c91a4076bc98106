import { describe, expect, it } from 'vitest';
import { Batcher, BatcherFullError } from './batcher.js';

/** A run whose batches stay open until released, recording what each batch held. */
function gatedRun() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const run = async (items: number[]) => {
    batches.push(items);
    await new Promise<void>((r) => gates.push(r));
    return items.map((i) => i * 10);
  };
  const releaseAll = () => gates.splice(0).forEach((g) => g());
  return { batches, run, releaseAll };
}

async function until(check: () => boolean) {
  const deadline = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met within 2 s');
    await new Promise((r) => setImmediate(r));
  }
}

describe('Batcher', () => {
  it('runs a lone item at once, alone', async () => {
    const b = new Batcher(async (items: number[]) => items.map((i) => i + 1), { sizeMax: 10, concurrencyMax: 1, queueMax: 100 });
    expect(await b.submit(1)).toBe(2);
  });

  it('gathers items that arrive while the batches are busy, up to sizeMax, and answers each its own result', async () => {
    const g = gatedRun();
    const b = new Batcher(g.run, { sizeMax: 3, concurrencyMax: 1, queueMax: 100 });
    const first = b.submit(1);
    await until(() => g.batches.length === 1);
    const rest = [2, 3, 4, 5, 6].map((i) => b.submit(i));
    expect(b.waiting).toBe(5);
    g.releaseAll();
    await until(() => g.batches.length === 2);
    g.releaseAll();
    await until(() => g.batches.length === 3);
    g.releaseAll();
    expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40, 50, 60]);
    expect(g.batches).toEqual([[1], [2, 3, 4], [5, 6]]);
  });

  it('joins items submitted in the same event-loop turn, and runs up to concurrencyMax batches at once', async () => {
    const g = gatedRun();
    const b = new Batcher(g.run, { sizeMax: 2, concurrencyMax: 2, queueMax: 100 });
    const all = [1, 2, 3, 4, 5].map((i) => b.submit(i));
    await until(() => g.batches.length === 2);
    expect(g.batches).toEqual([[1, 2], [3, 4]]);
    g.releaseAll();
    await until(() => g.batches.length === 3);
    g.releaseAll();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50]);
  });

  it('rejects every item of a batch whose run throws or answers the wrong count, and goes on', async () => {
    let calls = 0;
    const b = new Batcher(
      async (items: number[]) => {
        calls++;
        if (calls === 1) throw new Error('boom');
        if (calls === 2) return [];
        return items;
      },
      { sizeMax: 5, concurrencyMax: 1, queueMax: 100 },
    );
    await expect(Promise.all([b.submit(1), b.submit(2)])).rejects.toThrow('boom');
    await expect(b.submit(3)).rejects.toThrow('answered 0 results');
    expect(await b.submit(4)).toBe(4);
  });

  it('refuses at once past queueMax waiting items, and takes items again once the queue drains', async () => {
    const g = gatedRun();
    const b = new Batcher(g.run, { sizeMax: 2, concurrencyMax: 1, queueMax: 3 });
    const first = b.submit(1); // runs at once (gated)
    await until(() => g.batches.length === 1);
    const waiting = [b.submit(2), b.submit(3), b.submit(4)];
    await expect(b.submit(5)).rejects.toBeInstanceOf(BatcherFullError);
    expect(b.waiting).toBe(3);
    g.releaseAll();
    expect(await first).toBe(10);
    await until(() => g.batches.length === 2);
    g.releaseAll();
    await until(() => g.batches.length === 3);
    g.releaseAll();
    expect(await Promise.all(waiting)).toEqual([20, 30, 40]);
    const again = b.submit(6);
    await until(() => g.batches.length === 4);
    g.releaseAll();
    expect(await again).toBe(60);
  });
});
