import { describe, expect, it } from 'vitest';
import { buildCli } from '../cli/main.js';
import { batchRefusals, BenchUsageError, parseBenchOptions, type RawBenchOptions } from './bench.js';
import { errorCode } from './load.js';
import { RssSampler } from './processes.js';
import { LatencyRecorder } from './stats.js';
import { RAW_BENCH_DEFAULTS as defaults } from '../../test/bench-options.js';


describe('LatencyRecorder', () => {
  it('gives exact percentiles from every sample', () => {
    const r = new LatencyRecorder();
    for (let i = 1; i <= 1000; i++) r.record(i);
    expect(r.percentiles()).toEqual({ count: 1000, p50: 500, p95: 950, p99: 990, max: 1000, exact: true });
  });

  it('merges recorders: exact while every sample fits', () => {
    const a = new LatencyRecorder();
    const b = new LatencyRecorder();
    for (let i = 1; i <= 500; i++) a.record(i);
    for (let i = 501; i <= 1000; i++) b.record(i);
    const m = new LatencyRecorder();
    m.merge(a);
    m.merge(b);
    expect(m.percentiles()).toEqual({ count: 1000, p50: 500, p95: 950, p99: 990, max: 1000, exact: true });
    const capped = new LatencyRecorder(600);
    capped.merge(a);
    capped.merge(b);
    const p = capped.percentiles();
    expect(p).toMatchObject({ count: 1000, max: 1000, exact: false });
    expect(p.p99).toBeGreaterThanOrEqual(990);
    expect(p.p99).toBeLessThanOrEqual(990 * 1.01);
  });

  it('falls back to the histogram (within 1 %) past the sample cap', () => {
    const r = new LatencyRecorder(10);
    for (let i = 1; i <= 1000; i++) r.record(i);
    const p = r.percentiles();
    expect(p.exact).toBe(false);
    expect(p.p99).toBeGreaterThanOrEqual(990);
    expect(p.p99).toBeLessThanOrEqual(990 * 1.01);
    expect(p.max).toBe(1000);
  });
});

describe('errorCode', () => {
  it('reads the cause chain of an error envelope', () => {
    const body = JSON.stringify({ error: { code: 'ORDER_REJECTED', cause: { code: 'INSUFFICIENT_FUNDS' } } });
    expect(errorCode(body)).toBe('ORDER_REJECTED<-INSUFFICIENT_FUNDS');
    expect(errorCode('<html>')).toBe('non-json');
  });
});

describe('parseBenchOptions', () => {
  it('parses the defaults and open-loop rates', () => {
    expect(parseBenchOptions(defaults)).toMatchObject({ durationS: 60, rate: 'max', concurrency: 64, sellRatio: 0.5 });
    expect(parseBenchOptions({ ...defaults, rate: '300' }).rate).toBe(300);
  });

  it('refuses values out of bounds', () => {
    expect(() => parseBenchOptions({ ...defaults, rate: 'fast' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, duration: '0' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, users: '1000000' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, sellRatio: '1.5' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, dbName: 'drop table' })).toThrow(BenchUsageError);
  });

  it('takes --batch, --api and --engines within bounds, with separate roles only', () => {
    expect(parseBenchOptions(defaults)).toMatchObject({ batch: 1, apiProcesses: 1, engineProcesses: 1, pgbenchFloor: true });
    expect(parseBenchOptions({ ...defaults, batch: '100', api: '2', engines: '3' })).toMatchObject({ batch: 100, apiProcesses: 2, engineProcesses: 3 });
    expect(() => parseBenchOptions({ ...defaults, batch: '1001' })).toThrow(/--batch must be an integer from 1 to 1000/);
    expect(() => parseBenchOptions({ ...defaults, api: '0' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, engines: '17' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, api: '2', allInOne: true })).toThrow(/--api and --engines start separate role processes/);
    expect(() => parseBenchOptions({ ...defaults, batch: '10', facade: true })).toThrow(/--batch measures the market-order load/);
    expect(parseBenchOptions({ ...defaults, pgbenchFloor: false }).pgbenchFloor).toBe(false);
    expect(parseBenchOptions({ ...defaults, floor: false }).pgbenchFloor).toBe(false);
  });

  it('counts the refusals among a batch answer, by status and code', () => {
    const body = JSON.stringify({
      results: [
        { status: 201, order: {} },
        { status: 422, error: { code: 'ORDER_REJECTED', cause: { code: 'INSUFFICIENT_FUNDS' } } },
        { status: 200, order: {} },
      ],
    });
    expect(batchRefusals(body)).toEqual(['422 ORDER_REJECTED<-INSUFFICIENT_FUNDS (in a batch)']);
    expect(batchRefusals('not json')).toEqual(['200 non-json (a batch)']);
  });

  it('makes --embedded all-in-one and refuses --no-feed with it', () => {
    expect(parseBenchOptions({ ...defaults, embedded: true })).toMatchObject({ embedded: true, allInOne: true, feed: true });
    expect(() => parseBenchOptions({ ...defaults, embedded: true, feed: false })).toThrow(/--no-feed cannot be used with --embedded/);
  });

  it('takes --facade (2 rounds by default) and --facade-rounds with it only, alone as a scenario', () => {
    expect(parseBenchOptions(defaults).facade).toBeNull();
    expect(parseBenchOptions({ ...defaults, facade: true }).facade).toEqual({ rounds: 2 });
    expect(parseBenchOptions({ ...defaults, facade: true, facadeRounds: '3' }).facade).toEqual({ rounds: 3 });
    expect(parseBenchOptions({ ...defaults, facade: true, allInOne: true })).toMatchObject({ facade: { rounds: 2 }, allInOne: true });
    expect(() => parseBenchOptions({ ...defaults, facadeRounds: '3' })).toThrow(/--facade-rounds goes with --facade/);
    expect(() => parseBenchOptions({ ...defaults, facade: true, facadeRounds: '0' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, facade: true, facadeRounds: '11' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, facade: true, startup: true })).toThrow(/separate scenarios/);
    expect(() => parseBenchOptions({ ...defaults, facade: true, stream: true })).toThrow(/separate scenarios/);
    expect(() => parseBenchOptions({ ...defaults, facade: true, resting: true, allInOne: true })).toThrow(/separate scenarios/);
  });

  it('takes --runs with --startup only, 3 by default', () => {
    expect(parseBenchOptions({ ...defaults, startup: true })).toMatchObject({ startup: true, runs: 3 });
    expect(parseBenchOptions({ ...defaults, startup: true, runs: '5' }).runs).toBe(5);
    expect(() => parseBenchOptions({ ...defaults, runs: '5' })).toThrow(/--runs goes with --startup/);
    expect(() => parseBenchOptions({ ...defaults, startup: true, runs: '0' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, startup: true, embedded: true })).toThrow(BenchUsageError);
  });
});

describe('the bench command line (src/cli/main.ts)', () => {
  const parsed = async (args: string[]): Promise<RawBenchOptions> => {
    const program = buildCli();
    const bench = program.commands.find((c) => c.name() === 'bench')!;
    let got: RawBenchOptions | undefined;
    bench.action((opts: RawBenchOptions) => void (got = opts));
    await program.parseAsync(['node', 'papertrade', 'bench', ...args]);
    return got!;
  };

  it('gives the defaults test/bench-options.ts mirrors, --facade off', async () => {
    const raw = await parsed([]);
    expect(raw).toMatchObject(defaults);
    expect(raw.facadeRounds).toBeUndefined();
    expect(parseBenchOptions(raw).facade).toBeNull();
  });

  it('passes --facade and --facade-rounds through', async () => {
    const raw = await parsed(['--facade', '--facade-rounds', '3', '--duration', '20', '--no-floor']);
    expect(raw).toMatchObject({ facade: true, facadeRounds: '3', duration: '20', floor: false });
    expect(parseBenchOptions(raw)).toMatchObject({ facade: { rounds: 3 }, durationS: 20, floor: false });
  });
});

describe('RssSampler', () => {
  it('keeps the peak of a sum from the same samples', () => {
    const sampler = new RssSampler(
      () =>
        new Map([
          ['a', [process.pid]],
          ['b', [process.pid]],
        ]),
      1_000,
      new Set(),
      new Map([['a + b', ['a', 'b']]]),
    );
    sampler.sample();
    const a = sampler.peakKb.get('a')!;
    expect(a).toBeGreaterThan(0);
    // One sample: the sum is exactly the two of it.
    expect(sampler.peakKb.get('a + b')).toBe(a + sampler.peakKb.get('b')!);
  });
});
