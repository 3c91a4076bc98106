import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPrice } from '../../core/money.js';
import { ReplayFileInvalidError } from './market-data.errors.js';
import {
  REPLAY_FILE_BYTES_MAX,
  ReplayFeed,
  loadReplayFile,
  parseReplayCsv,
  parseReplayTimestamp,
  toReplayBatches,
} from './replay.js';
import { TICK_BATCH_SIZE_MAX, type Tick } from './feed.js';

const HEADER = 'timestamp,ticker,open,high,low,close,volume';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'papertrade-replay-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function csv(rows: string[]): string {
  return [HEADER, ...rows].join('\n') + '\n';
}

function invalidLine(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ReplayFileInvalidError);
    return (err as ReplayFileInvalidError).details?.line as number;
  }
  throw new Error('expected REPLAY_FILE_INVALID');
}

describe('parseReplayTimestamp', () => {
  it('reads ISO-8601 with and without offsets (no offset means UTC), dates and epoch milliseconds', () => {
    expect(parseReplayTimestamp('2024-01-02T14:30:00Z')).toBe(Date.UTC(2024, 0, 2, 14, 30));
    expect(parseReplayTimestamp('2024-01-02T14:30:00')).toBe(Date.UTC(2024, 0, 2, 14, 30));
    expect(parseReplayTimestamp('2024-01-02 14:30')).toBe(Date.UTC(2024, 0, 2, 14, 30));
    expect(parseReplayTimestamp('2024-01-02T15:30:00.250+01:00')).toBe(Date.UTC(2024, 0, 2, 14, 30, 0, 250));
    expect(parseReplayTimestamp('2024-01-02')).toBe(Date.UTC(2024, 0, 2));
    expect(parseReplayTimestamp('1704205800000')).toBe(1_704_205_800_000);
  });

  it('refuses what is neither, and dates that do not exist', () => {
    for (const bad of ['', 'yesterday', '2024-02-30', '2024-13-01T00:00:00Z', '2024-01-02T25:00:00Z', '1.5', '-1', '12345678901234567']) {
      expect(parseReplayTimestamp(bad)).toBeUndefined();
    }
  });
});

describe('parseReplayCsv', () => {
  it('parses rows exactly and sorts them by timestamp, keeping file order for ties', () => {
    const rows = parseReplayCsv(
      csv([
        '2024-01-02T14:31:00Z,MSFT,370.1,371,369.5,370.25,100',
        '2024-01-02T14:30:00Z,AAPL,187.15,188.44,186.9,188.01,1234567',
        '1704205800000,MSFT,370,370.5,369.9,370.1,',
      ]),
    );
    expect(rows.map((r) => [r.tsMs, r.ticker, formatPrice(r.close), r.line])).toEqual([
      [1_704_205_800_000, 'AAPL', '188.0100', 3],
      [1_704_205_800_000, 'MSFT', '370.1000', 4],
      [1_704_205_860_000, 'MSFT', '370.2500', 2],
    ]);
  });

  it('rounds prices with more than 4 decimals half-up, exactly', () => {
    const [row] = parseReplayCsv(csv(['1000,AAPL,1.00005,2.123456789,0.99994999,1.23455,0']));
    expect([row!.open, row!.high, row!.low, row!.close].map(formatPrice)).toEqual(['1.0001', '2.1235', '0.9999', '1.2346']);
  });

  it('accepts CRLF line ends, a byte-order mark, blank lines and a case-insensitive header', () => {
    const text = '\uFEFFTimestamp,Ticker,Open,High,Low,Close,Volume\r\n1000,AAPL,1,1,1,1,1\r\n\r\n2000,AAPL,2,2,2,2,2\r\n';
    expect(parseReplayCsv(text).map((r) => r.tsMs)).toEqual([1000, 2000]);
  });

  it('refuses a wrong header, naming line 1', () => {
    expect(invalidLine(() => parseReplayCsv('time,ticker,close\n1000,AAPL,1\n'))).toBe(1);
  });

  it('refuses a bad row, naming its line', () => {
    const bad = [
      '1000,AAPL,1,1,1,1', // six fields
      'soon,AAPL,1,1,1,1,1',
      '1000,aapl,1,1,1,1,1',
      '1000,AAPL,1,1,1,-1,1',
      '1000,AAPL,1,1,1,0,1',
      '1000,AAPL,1,1,1,0.00001,1', // rounds to zero
      '1000,AAPL,1,1,1,1e3,1',
      '1000,AAPL,1,1,2,1,1', // low above high
      '1000,AAPL,1,1,1,1,lots',
    ];
    for (const row of bad) expect(invalidLine(() => parseReplayCsv(csv(['1000,AAPL,1,1,1,1,1', row])))).toBe(3);
  });

  it('reads the optional bid,ask and bid_size,ask_size columns; a row may leave them empty', () => {
    const text = [
      `${HEADER},bid,ask,bid_size,ask_size`,
      '2024-01-02T14:30:00Z,AAPL,1,1,1,150.00,0,149.98,150.02,300,500',
      '2024-01-02T14:30:00Z,MSFT,1,1,1,400.00,0,399.9,400.1,,',
      '2024-01-02T14:30:00Z,COST,1,1,1,800.00,0,,,,',
    ].join('\n');
    const rows = parseReplayCsv(text);
    expect(rows[0]!.touch).toEqual({ bid: 1_499_800n, ask: 1_500_200n, bidSize: 300_000_000n, askSize: 500_000_000n });
    expect(rows[1]!.touch).toEqual({ bid: 3_999_000n, ask: 4_001_000n });
    expect(rows[2]!.touch).toBeUndefined();
    expect(toReplayBatches(rows).batches[0]!.prices[0]).toEqual({ ticker: 'AAPL', price: 1_500_000n, touch: rows[0]!.touch });
    expect(parseReplayCsv([`${HEADER},bid,ask`, '2024-01-02,AAPL,1,1,1,150,0,149,151'].join('\n'))[0]!.touch).toEqual({ bid: 1_490_000n, ask: 1_510_000n });
  });

  it('refuses a bad touch, naming its line and what is allowed', () => {
    const withTouch = (row: string) => () => parseReplayCsv([`${HEADER},bid,ask,bid_size,ask_size`, row].join('\n'));
    const message = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    };
    expect(message(withTouch('2024-01-02,AAPL,1,1,1,150,0,151,149,1,1'))).toBe('replay file line 2: bid is above ask');
    expect(message(withTouch('2024-01-02,AAPL,1,1,1,150,0,149,,1,1'))).toContain('give bid and ask together');
    expect(message(withTouch('2024-01-02,AAPL,1,1,1,150,0,,,1,1'))).toContain('bid_size and ask_size need a bid and an ask');
    expect(message(withTouch('2024-01-02,AAPL,1,1,1,150,0,149,151,1.5,1'))).toContain('bid_size "1.5" is not a whole number of shares');
    expect(invalidLine(() => parseReplayCsv([`${HEADER},bid`, '2024-01-02,AAPL,1,1,1,150,0,149'].join('\n')))).toBe(1);
  });

  it('refuses a file with no rows and one with more rows than allowed', () => {
    expect(invalidLine(() => parseReplayCsv(`${HEADER}\n`))).toBeDefined();
    expect(invalidLine(() => parseReplayCsv(csv(['1,A,1,1,1,1,1', '2,A,1,1,1,1,1', '3,A,1,1,1,1,1']), 2))).toBe(4);
  });
});

describe('loadReplayFile', () => {
  it('reads a file from disk', async () => {
    const file = path.join(dir, 'small.csv');
    await writeFile(file, csv(['2000,AAPL,1,1,1,2,0', '1000,AAPL,1,1,1,1,0']));
    expect((await loadReplayFile(file)).map((r) => r.tsMs)).toEqual([1000, 2000]);
  });

  it('refuses a missing file and a file over the size limit without reading it', async () => {
    await expect(loadReplayFile(path.join(dir, 'missing.csv'))).rejects.toBeInstanceOf(ReplayFileInvalidError);
    const big = path.join(dir, 'big.csv');
    await writeFile(big, '');
    await truncate(big, REPLAY_FILE_BYTES_MAX + 1); // sparse: no disk used
    await expect(loadReplayFile(big)).rejects.toThrow(/over the/);
  });
});

describe('toReplayBatches', () => {
  it('groups rows by timestamp, the last row of a repeated ticker winning, and skips unlisted tickers', () => {
    const rows = parseReplayCsv(
      csv(['1000,AAPL,1,1,1,1,0', '1000,ZZZZ,1,1,1,9,0', '1000,AAPL,1,2,1,2,0', '2000,MSFT,3,3,3,3,0', '3000,ZZZZ,1,1,1,1,0']),
    );
    const { batches, skippedTickers } = toReplayBatches(rows, new Set(['AAPL', 'MSFT']));
    expect(skippedTickers).toEqual(['ZZZZ']);
    expect(batches.map((b) => [b.tsMs, b.prices.map((p) => `${p.ticker}=${formatPrice(p.price)}`)])).toEqual([
      [1000, ['AAPL=2.0000']],
      [2000, ['MSFT=3.0000']],
    ]);
  });

  it('splits a timestamp with more tickers than one batch may carry', () => {
    const count = TICK_BATCH_SIZE_MAX + 5;
    const rows = parseReplayCsv(csv(Array.from({ length: count }, (_, i) => `1000,T${i},1,1,1,1,0`)));
    const { batches } = toReplayBatches(rows);
    expect(batches.map((b) => b.prices.length)).toEqual([TICK_BATCH_SIZE_MAX, 5]);
  });
});

describe('ReplayFeed', () => {
  const rows = parseReplayCsv(
    csv([
      // Deliberately out of order in the file.
      '2024-01-02T14:30:02Z,AAPL,1,1,1,102,0',
      '2024-01-02T14:30:00Z,AAPL,1,1,1,100,0',
      '2024-01-02T14:30:00Z,MSFT,1,1,1,200,0',
      '2024-01-02T14:30:01Z,AAPL,1,1,1,101,0',
      '2024-01-02T14:30:04Z,AAPL,1,1,1,104,0',
    ]),
  );
  const { batches } = toReplayBatches(rows);
  const closes = (ticks: Tick[]) => ticks.map((t) => `${t.ticker}=${formatPrice(t.price)}`).join(' ');

  async function record(feed: ReplayFeed, until: (n: number) => boolean) {
    const seen: { at: number; ticks: Tick[] }[] = [];
    const controller = new AbortController();
    const started = Date.now();
    await feed.run(async (ticks) => {
      seen.push({ at: Date.now() - started, ticks });
      if (until(seen.length)) controller.abort();
    }, controller.signal);
    return seen;
  }

  it('replays in timestamp order with wall-clock spacing = data spacing / speed, then stops', async () => {
    const speed = 20; // 1 s of data every 50 ms
    const seen = await record(new ReplayFeed(batches, { speed, loop: false }), () => false);
    expect(seen.map((s) => closes(s.ticks))).toEqual([
      'AAPL=100.0000 MSFT=200.0000',
      'AAPL=101.0000',
      'AAPL=102.0000',
      'AAPL=104.0000',
    ]);
    const dataOffsetsMs = [0, 1000, 2000, 4000];
    seen.forEach((s, i) => {
      const expected = dataOffsetsMs[i]! / speed;
      // Timers never fire early; under load they may fire late, never by a whole interval here.
      expect(s.at).toBeGreaterThanOrEqual(expected - 2);
      expect(s.at).toBeLessThan(expected + 70);
    });
    // as_of is the publication time, so replayed prices are fresh.
    for (const s of seen) for (const t of s.ticks) expect(Math.abs(t.asOfMs - Date.now())).toBeLessThan(5_000);
  });

  it('takes proportionally longer at a lower speed', async () => {
    const seen = await record(new ReplayFeed(batches, { speed: 10, loop: false }), () => false);
    expect(seen.at(-1)!.at).toBeGreaterThanOrEqual(400 - 2);
    expect(seen.at(-1)!.at).toBeLessThan(400 + 60);
  });

  it('loops back to the first batch after the average spacing when asked to', async () => {
    const speed = 100;
    const seen = await record(new ReplayFeed(batches, { speed, loop: true }), (n) => n >= 9);
    expect(seen.map((s) => closes(s.ticks))).toEqual([
      'AAPL=100.0000 MSFT=200.0000',
      'AAPL=101.0000',
      'AAPL=102.0000',
      'AAPL=104.0000',
      'AAPL=100.0000 MSFT=200.0000',
      'AAPL=101.0000',
      'AAPL=102.0000',
      'AAPL=104.0000',
      'AAPL=100.0000 MSFT=200.0000',
    ]);
    // Each pass starts one average spacing (4 s / 3 of data) after the last batch of the one
    // before: the schedule is absolute, so lateness under load does not accumulate.
    const passMs = (4000 + 4000 / 3) / speed;
    for (const [index, due] of [[4, passMs], [8, 2 * passMs]] as const) {
      expect(seen[index]!.at).toBeGreaterThanOrEqual(due - 2);
      expect(seen[index]!.at).toBeLessThan(due + 70);
    }
  });

  it('stops promptly when aborted in the middle of a long wait', async () => {
    const controller = new AbortController();
    const feed = new ReplayFeed(batches, { speed: 0.001, loop: false });
    const started = Date.now();
    const run = feed.run(async () => {
      setTimeout(() => controller.abort(), 20);
    }, controller.signal);
    await run;
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
