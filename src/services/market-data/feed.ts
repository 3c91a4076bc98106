/**
 * The one interface every price source implements. A feed produces batches of ticks and hands
 * each to `emit`, awaiting it (so a slow consumer slows the feed instead of piling up work);
 * `run` returns when the signal aborts or the source has no more data (a replay that does not
 * loop). A new source (a broker's websocket, another file format) is one more class with `run`.
 *
 * Feeds know nothing about Redis, PostgreSQL or leadership: the feed runner owns those.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Price } from '../../core/money.js';

/** Most ticks in one batch (one Redis round trip); a feed splits anything larger. */
export const TICK_BATCH_SIZE_MAX = 1_000;

export interface Tick {
  ticker: string;
  price: Price;
  /** When the price was published (epoch ms, wall clock): what the freshness rule measures. */
  asOfMs: number;
}

export type EmitFn = (ticks: Tick[]) => Promise<void>;

export interface PriceFeed {
  /** 'simulator' or 'replay': shows up in logs and in the published tick messages. */
  readonly kind: string;
  run(emit: EmitFn, signal: AbortSignal): Promise<void>;
}

/** Longest single timer; longer waits are taken in slices so they stay abortable and in range. */
const SLEEP_SLICE_MS = 60_000;

/** Waits until the wall clock reaches `dueMs`; returns early (without throwing) on abort. */
export async function sleepUntil(dueMs: number, signal: AbortSignal, now: () => number = Date.now): Promise<void> {
  for (;;) {
    if (signal.aborted) return;
    const remaining = dueMs - now();
    if (remaining <= 0) return;
    await sleep(Math.min(remaining, SLEEP_SLICE_MS), signal);
  }
}

/** Sleeps `ms`; resolves early (without throwing) when the signal aborts. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  try {
    await sleepFor(Math.ceil(ms), undefined, { signal });
  } catch (err) {
    if ((err as { name?: string }).name !== 'AbortError') throw err;
  }
}
