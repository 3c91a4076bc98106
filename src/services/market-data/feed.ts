/**
 * The one interface every price source implements. A feed produces batches of ticks and hands
 * each to `emit`, awaiting it (so a slow consumer slows the feed instead of piling up work);
 * `run` returns when the signal aborts or the source has no more data (a replay that does not
 * loop). A new source (a broker's websocket, another file format) is one more class with `run`.
 *
 * Feeds know nothing about Redis, PostgreSQL or leadership: the feed runner owns those.
 */
import type { Price, Qty } from '../../core/money.js';

/** Most ticks in one batch (one Redis round trip); a feed splits anything larger. */
export const TICK_BATCH_SIZE_MAX = 1_000;

export interface Tick {
  ticker: string;
  price: Price;
  /** When the price was published (epoch ms, wall clock): what the freshness rule measures. */
  asOfMs: number;
  /** The touch, when the source has one (a replay file's bid and ask columns); else the runner adds the tier's. */
  bid?: Price;
  ask?: Price;
  bidSize?: Qty;
  askSize?: Qty;
}

export type EmitFn = (ticks: Tick[]) => Promise<void>;

export interface PriceFeed {
  /** 'simulator' or 'replay': shows up in logs and in the published tick messages. */
  readonly kind: string;
  run(emit: EmitFn, signal: AbortSignal): Promise<void>;
}

export { sleep, sleepUntil } from '../../infra/sleep.js';
