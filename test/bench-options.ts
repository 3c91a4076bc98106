/**
 * The options `papertrade bench` gets from commander when none is given (src/cli/main.ts), as
 * the raw strings parseBenchOptions takes: the starting point of the bench's option tests.
 */
import type { RawBenchOptions } from '../src/bench/bench.js';

export const RAW_BENCH_DEFAULTS: RawBenchOptions = {
  duration: '60',
  warmup: '5',
  rate: 'max',
  concurrency: '64',
  users: '1000',
  sellRatio: '0.5',
  quantity: '1',
  seedShares: '100',
  allInOne: false,
  embedded: false,
  startup: false,
  facade: false,
  feed: true,
  floor: true,
  floorDuration: '20',
  floorWarmup: '3',
  floorBatch: '100',
  dbName: 'papertrade_bench',
  jsonOnly: false,
};
