/**
 * The simulated market: every ticker follows a geometric Brownian motion,
 *
 *   ln S(t + dt) = ln S(t) + (mu - sigma^2 / 2) dt + sigma sqrt(dt) Z,
 *
 * with dt the tick interval in trading years (252 days of 6.5 hours) and Z a standard normal
 * mixing one market-wide shock M (drawn once per tick) with the ticker's own shock e:
 *
 *   Z = sqrt(rho) M + sqrt(1 - rho) e,
 *
 * so two tickers' returns have correlation rho and each keeps unit variance. The walk runs in
 * floating point on log prices (which cannot reach zero or overflow once clamped); each emitted
 * price goes through `simulatedPriceToPrice`, the one place a float becomes an exact Price.
 *
 * Deterministic: the same seed, tick interval, correlation and starting prices give the same
 * path, whatever the wall clock does (a late tick moves the path one step, never a bigger one).
 */
import { assert } from '../../core/errors.js';
import { PRICE_MAX, type Price } from '../../core/money.js';
import { sleepUntil, TICK_BATCH_SIZE_MAX, type EmitFn, type PriceFeed, type Tick } from './feed.js';
import { SeededRandom } from '../../infra/random.js';

/** Trading time per year the volatilities are quoted in: 252 sessions of 6.5 hours. */
export const TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600;
/** The lowest price the simulator emits (0.0001): a price is never zero or negative. */
export const SIMULATED_PRICE_MIN: Price = 1n;
export const SIMULATED_PRICE_MAX: Price = PRICE_MAX;
/** Price units per currency unit at the price scale (4 decimals). */
const PRICE_UNITS = 10_000;
const LOG_PRICE_MIN = Math.log(Number(SIMULATED_PRICE_MIN) / PRICE_UNITS);
const LOG_PRICE_MAX = Math.log(Number(SIMULATED_PRICE_MAX) / PRICE_UNITS);
/** Bound on the universe one simulator walks: one tick batch carries every ticker. */
export const SIMULATED_TICKERS_MAX = TICK_BATCH_SIZE_MAX;

/**
 * The one conversion from the simulator's floating-point price to an exact Price: rounds to the
 * nearest 1/10,000 (halves up; `Math.round` is fine here because the value is a simulated draw,
 * not money anyone entered) and clamps into [0.0001, PRICE_MAX]. Every value below 2^53 / 10^4 is
 * an exact integer after the rounding, so the BigInt conversion loses nothing.
 */
export function simulatedPriceToPrice(value: number): Price {
  assert(!Number.isNaN(value), 'simulated price is a number');
  const units = value * PRICE_UNITS;
  if (!(units < Number(SIMULATED_PRICE_MAX))) return SIMULATED_PRICE_MAX;
  const rounded = Math.round(units);
  return rounded < Number(SIMULATED_PRICE_MIN) ? SIMULATED_PRICE_MIN : BigInt(rounded);
}

/** The starting point of a walk: an exact Price as the float the model works with. */
export function priceToSimulatorFloat(price: Price): number {
  assert(price > 0n && price <= PRICE_MAX, `starting price within bounds, got ${price}`);
  return Number(price) / PRICE_UNITS;
}

export interface SimulatedInstrument {
  ticker: string;
  startPrice: Price;
  /** Annualized volatility as a fraction (0.25 = 25 % a year). */
  annualVolatility: number;
}

export interface SimulatorOptions {
  seed: number;
  tickMs: number;
  /** Pairwise correlation of the tickers' returns, from 0 (independent) to 1 (lockstep). */
  correlation: number;
  /** Annualized drift mu; 0 keeps each price's expectation where it started. */
  annualDrift?: number;
}

export class GbmSimulator {
  private readonly tickers: string[];
  private readonly logPrices: Float64Array;
  private readonly driftPerStep: Float64Array;
  private readonly sigmaPerStep: Float64Array;
  private readonly marketLoading: number;
  private readonly ownLoading: number;
  private readonly random: SeededRandom;

  constructor(instruments: readonly SimulatedInstrument[], options: SimulatorOptions) {
    assert(instruments.length <= SIMULATED_TICKERS_MAX, `at most ${SIMULATED_TICKERS_MAX} simulated tickers`);
    assert(options.tickMs > 0, 'tick interval is positive');
    assert(options.correlation >= 0 && options.correlation <= 1, 'correlation is within [0, 1]');
    // Sorted, so the draws map to tickers the same way whatever order the caller listed them in.
    const sorted = [...instruments].sort((a, b) => (a.ticker < b.ticker ? -1 : a.ticker > b.ticker ? 1 : 0));
    const dtYears = options.tickMs / 1000 / TRADING_SECONDS_PER_YEAR;
    const mu = options.annualDrift ?? 0;
    this.tickers = sorted.map((i) => i.ticker);
    this.logPrices = Float64Array.from(sorted, (i) => Math.log(priceToSimulatorFloat(i.startPrice)));
    this.sigmaPerStep = Float64Array.from(sorted, (i) => {
      assert(Number.isFinite(i.annualVolatility) && i.annualVolatility >= 0, `volatility of ${i.ticker} is >= 0`);
      return i.annualVolatility * Math.sqrt(dtYears);
    });
    this.driftPerStep = Float64Array.from(sorted, (i) => (mu - (i.annualVolatility * i.annualVolatility) / 2) * dtYears);
    this.marketLoading = Math.sqrt(options.correlation);
    this.ownLoading = Math.sqrt(1 - options.correlation);
    this.random = new SeededRandom(options.seed);
  }

  /** The prices where the walk stands, without moving it. */
  current(asOfMs: number): Tick[] {
    return this.tickers.map((ticker, i) => ({ ticker, price: simulatedPriceToPrice(Math.exp(this.logPrices[i]!)), asOfMs }));
  }

  /** Moves every ticker one tick and returns the new prices. */
  step(asOfMs: number): Tick[] {
    const market = this.random.nextNormal();
    const ticks: Tick[] = new Array(this.tickers.length);
    for (let i = 0; i < this.tickers.length; i++) {
      const z = this.marketLoading * market + this.ownLoading * this.random.nextNormal();
      const next = this.logPrices[i]! + this.driftPerStep[i]! + this.sigmaPerStep[i]! * z;
      // Clamped in log space so a price pinned at the floor can still walk back up.
      this.logPrices[i] = Math.min(LOG_PRICE_MAX, Math.max(LOG_PRICE_MIN, next));
      ticks[i] = { ticker: this.tickers[i]!, price: simulatedPriceToPrice(Math.exp(this.logPrices[i]!)), asOfMs };
    }
    return ticks;
  }
}

/** The simulator as a feed: publishes the starting prices, then one step every `tickMs`. */
export class SimulatorFeed implements PriceFeed {
  readonly kind = 'simulator';

  constructor(
    private readonly simulator: GbmSimulator,
    private readonly tickMs: number,
  ) {}

  async run(emit: EmitFn, signal: AbortSignal): Promise<void> {
    // The first batch is where the walk starts, so a restarted feed continues without a jump.
    let due = Date.now();
    await emit(this.simulator.current(due));
    while (!signal.aborted) {
      due += this.tickMs;
      const now = Date.now();
      // Fell behind (a slow emit, a paused process): skip the missed ticks instead of bursting them.
      if (due < now - this.tickMs) due = now;
      await sleepUntil(due, signal);
      if (signal.aborted) return;
      await emit(this.simulator.step(Date.now()));
    }
  }
}
