/**
 * The feeds the `feed` role can run (FEED=simulator|replay), as factories the feed runner calls
 * when it takes the lead. A replay file is read and checked before anything starts, so a bad
 * file stops the role at once with the line at fault instead of failing on every leadership
 * attempt. The role itself is wired in src/cli/roles.ts.
 */
import type { Config } from '../../infra/config.js';
import type { Logger } from '../../infra/logger.js';
import type { Price } from '../../core/money.js';
import type { EmitFn, PriceFeed, Tick } from './feed.js';
import type { FeedRunnerOptions } from './feed.runner.js';
import type { Instrument } from './instruments.js';
import { ReplayFileInvalidError } from './market-data.errors.js';
import { loadReplayFile, ReplayFeed, toReplayBatches, type ReplayBatch } from './replay.js';
import { GbmSimulator, SimulatorFeed } from './simulator.js';

export type FeedFactory = FeedRunnerOptions['createFeed'];

/**
 * FEED=manual: prices move only when the admin sets them (PUT /admin/prices/{ticker}). The feed
 * publishes where prices stand when it takes the lead (the cached price, else the last bar's
 * close, else the instrument's reference price) and then nothing: the runner keeps the prices
 * fresh (QuoteStore.refresh, which never overwrites a price the admin set). Scripted price paths
 * in tests and lessons therefore give the same outcome every time.
 */
export class ManualFeed implements PriceFeed {
  readonly kind = 'manual';

  constructor(private readonly start: readonly Tick[]) {}

  async run(emit: EmitFn, signal: AbortSignal): Promise<void> {
    await emit([...this.start]);
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }
}

export function manualFactory(): FeedFactory {
  return (instruments: Instrument[], startPrices: Map<string, Price>): PriceFeed => {
    const asOfMs = Date.now();
    return new ManualFeed(instruments.map((i) => ({ ticker: i.ticker, price: startPrices.get(i.ticker) ?? i.referencePrice, asOfMs })));
  };
}

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
