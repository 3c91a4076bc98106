/**
 * The feeds the `feed` role can run (FEED=simulator|replay), as factories the feed runner calls
 * when it takes the lead. A replay file is read and checked before anything starts, so a bad
 * file stops the role at once with the line at fault instead of failing on every leadership
 * attempt. The role itself is wired in src/cli/roles.ts.
 */
import type { Config } from '../../infra/config.js';
import type { Logger } from '../../infra/logger.js';
import type { Price } from '../../core/money.js';
import type { PriceFeed } from './feed.js';
import type { FeedRunnerOptions } from './feed.runner.js';
import type { Instrument } from './instruments.js';
import { ReplayFileInvalidError } from './market-data.errors.js';
import { loadReplayFile, ReplayFeed, toReplayBatches, type ReplayBatch } from './replay.js';
import { GbmSimulator, SimulatorFeed } from './simulator.js';

export type FeedFactory = FeedRunnerOptions['createFeed'];

/** The simulator as configured: seeded walk from the given starting prices. */
export function simulatorFactory(config: Pick<Config, 'feedSeed' | 'feedTickMs' | 'feedCorrelation'>): FeedFactory {
  return (instruments: Instrument[], startPrices: Map<string, Price>): PriceFeed => {
    const simulator = new GbmSimulator(
      instruments.map((i) => ({
        ticker: i.ticker,
        startPrice: startPrices.get(i.ticker) ?? i.referencePrice,
        annualVolatility: i.annualVolatility,
      })),
      { seed: config.feedSeed, tickMs: config.feedTickMs, correlation: config.feedCorrelation },
    );
    return new SimulatorFeed(simulator, config.feedTickMs);
  };
}

/**
 * Reads the replay file and keeps the rows of listed instruments. Throws ReplayFileInvalidError
 * for a bad file or one with no row for a listed instrument.
 */
export async function loadReplay(path: string, listed: readonly Instrument[], logger: Logger): Promise<ReplayBatch[]> {
  const rows = await loadReplayFile(path);
  const { batches, skippedTickers } = toReplayBatches(rows, new Set(listed.map((i) => i.ticker)));
  if (skippedTickers.length > 0) {
    logger.warn({ skipped: skippedTickers.slice(0, 20), count: skippedTickers.length }, 'replay rows of unlisted tickers are skipped');
  }
  if (batches.length === 0) throw new ReplayFileInvalidError(`replay file ${path} has no rows for a listed instrument`, { path });
  logger.info({ path, rows: rows.length, batches: batches.length }, 'replay file loaded');
  return batches;
}

export function replayFactory(batches: readonly ReplayBatch[], config: Pick<Config, 'feedReplaySpeed' | 'feedReplayLoop'>): FeedFactory {
  return () => new ReplayFeed(batches, { speed: config.feedReplaySpeed, loop: config.feedReplayLoop });
}
