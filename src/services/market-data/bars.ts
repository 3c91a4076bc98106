/**
 * 1-minute OHLC bars aggregated from ticks, in memory, between writes to `price_bars`.
 *
 * Each write carries the bar as this process knows it plus the number of ticks not yet written,
 * and the upsert merges it with the stored row (open kept, high/low widened, close replaced,
 * tick_count added): re-writing the current bar every few seconds is idempotent for the prices,
 * counts every tick once, and a bar started by an earlier leader in the same minute is extended.
 */
import type { Price } from '../../core/money.js';
import type { Tick } from './feed.js';

export const BAR_INTERVAL_MS = 60_000;
/** Finished bars kept for a database that is down; past this the oldest are dropped (and counted). */
export const PENDING_BARS_MAX = 100_000;

export interface Bar {
  ticker: string;
  /** Start of the minute, epoch ms. */
  bucketMs: number;
  open: Price;
  high: Price;
  low: Price;
  close: Price;
  tickCount: number;
}

export function bucketOf(ms: number): number {
  return Math.floor(ms / BAR_INTERVAL_MS) * BAR_INTERVAL_MS;
}

interface TickerState {
  /** The bar in progress, with every tick this process saw in its minute. */
  bar: Bar;
  /** Ticks of `bar` not written yet. */
  unwritten: number;
}

export class BarAggregator {
  private readonly state = new Map<string, TickerState>();
  /** Finished bars with unwritten ticks, keyed by ticker and bucket (insertion order = age). */
  private readonly finished = new Map<string, Bar>();
  /** Finished bars dropped because PENDING_BARS_MAX was reached. */
  droppedBars = 0;

  constructor(private readonly pendingBarsMax: number = PENDING_BARS_MAX) {}

  add(ticks: readonly Tick[]): void {
    for (const tick of ticks) {
      const current = this.state.get(tick.ticker);
      const bucketMs = bucketOf(tick.asOfMs);
      if (current === undefined || bucketMs > current.bar.bucketMs) {
        if (current !== undefined && current.unwritten > 0) {
          this.pushFinished({ ...current.bar, tickCount: current.unwritten });
        }
        const p = tick.price;
        this.state.set(tick.ticker, {
          bar: { ticker: tick.ticker, bucketMs, open: p, high: p, low: p, close: p, tickCount: 1 },
          unwritten: 1,
        });
        continue;
      }
      // Same minute, or an earlier one if the clock stepped back: the current bar takes it, so
      // a stored bar is never reopened by a tick out of order.
      const bar = current.bar;
      if (tick.price > bar.high) bar.high = tick.price;
      if (tick.price < bar.low) bar.low = tick.price;
      bar.close = tick.price;
      bar.tickCount += 1;
      current.unwritten += 1;
    }
  }

  /** True when a minute has rolled over for some ticker and its finished bar awaits a write. */
  hasFinished(): boolean {
    return this.finished.size > 0;
  }

  /** Takes every bar with unwritten ticks: finished ones and the current minute of each ticker. */
  drain(): Bar[] {
    const out = [...this.finished.values()];
    this.finished.clear();
    for (const s of this.state.values()) {
      if (s.unwritten === 0) continue;
      out.push({ ...s.bar, tickCount: s.unwritten });
      s.unwritten = 0;
    }
    return out;
  }

  /** Gives back bars whose write failed, so the next drain retries them (each tick counted once). */
  requeue(bars: readonly Bar[]): void {
    for (const bar of bars) {
      const s = this.state.get(bar.ticker);
      if (s !== undefined && s.bar.bucketMs === bar.bucketMs) {
        s.unwritten += bar.tickCount; // Still the current bar: its prices in memory are newer.
        continue;
      }
      const key = finishedKey(bar);
      const newer = this.finished.get(key);
      if (newer !== undefined) {
        // The minute finished after the drain; that copy has the later close.
        newer.tickCount += bar.tickCount;
      } else {
        this.pushFinished({ ...bar });
      }
    }
  }

  private pushFinished(bar: Bar): void {
    this.finished.set(finishedKey(bar), bar);
    while (this.finished.size > this.pendingBarsMax) {
      const oldest = this.finished.keys().next().value as string;
      this.finished.delete(oldest);
      this.droppedBars += 1;
    }
  }
}

function finishedKey(bar: Bar): string {
  return `${bar.ticker}|${bar.bucketMs}`;
}
