/**
 * Abortable waits. Every loop of a role sleeps through these, so that stopping a role (or losing a
 * lease) ends its loops at once instead of after their longest interval.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';

/** Longest single timer; longer waits are taken in slices so they stay abortable and in range. */
const SLEEP_SLICE_MS = 60_000;

/** Sleeps `ms`; resolves early (without throwing) when the signal aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return;
  try {
    await sleepFor(Math.ceil(ms), undefined, { signal });
  } catch (err) {
    if ((err as { name?: string }).name !== 'AbortError') throw err;
  }
}

/** Waits until the wall clock reaches `dueMs`; returns early (without throwing) on abort. */
export async function sleepUntil(dueMs: number, signal: AbortSignal, now: () => number = Date.now): Promise<void> {
  for (;;) {
    if (signal.aborted) return;
    const remaining = dueMs - now();
    if (remaining <= 0) return;
    await sleep(Math.min(remaining, SLEEP_SLICE_MS), signal);
  }
}
