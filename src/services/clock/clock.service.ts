/**
 * The market clock: is the market open now, when does it next open and close, and the admin's
 * override (POST /admin/market). The calendar rules are core/calendar.ts (pure); the override
 * lives in PostgreSQL (one row, market_clock) so every process sees the same clock. Each process
 * keeps the row in memory, re-read every `refreshMs`, so asking the clock costs nothing on the
 * hot path; a change made through this process is seen here at once and elsewhere within
 * `refreshMs`.
 */
import { clockAt, lastClose, sessionsBetween, type CalendarKind, type Clock, type Session } from '../../core/calendar.js';
import type { Db } from '../../infra/postgres.js';
import type { Logger } from '../../infra/logger.js';
import * as repo from './clock.repository.js';

/** How often each process re-reads the override. */
export const CLOCK_REFRESH_MS = 1_000;

export type ForcedState = 'open' | 'closed' | null;

export interface ClockView extends Clock {
  nowMs: number;
  calendar: CalendarKind;
}

export interface MarketClockOptions {
  calendar: CalendarKind;
  timeZone: string;
  refreshMs?: number;
  logger?: Logger;
  now?: () => number;
}

export class MarketClock {
  private forced: ForcedState = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** What the calendar says from `fromMs` until `untilMs` (its next change): isOpen's memo. */
  private stretch: { fromMs: number; untilMs: number; open: boolean } | undefined;

  constructor(
    private readonly db: Db,
    private readonly options: MarketClockOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Reads the override now, then keeps re-reading it in the background. */
  async start(): Promise<void> {
    if (this.timer) return;
    await this.refresh();
    const tick = () => {
      this.timer = setTimeout(() => {
        this.refresh()
          .catch((err: unknown) => this.options.logger?.warn({ err }, 'cannot read the market clock; keeping the last state'))
          .finally(() => {
            if (this.timer) tick();
          });
      }, this.options.refreshMs ?? CLOCK_REFRESH_MS);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<void> {
    this.forced = (await repo.getClock(this.db)).forced;
  }

  /**
   * Asked for every quote the resting-order watcher applies, so it answers from the calendar's
   * last stretch (open until its next close, or closed until its next open) while `nowMs` is in
   * it: working the calendar out costs a few hundred microseconds (Intl date formatting), the
   * lookup nothing.
   */
  isOpen(nowMs: number = this.now()): boolean {
    if (this.forced !== null) return this.forced === 'open';
    const stretch = this.stretch;
    if (stretch === undefined || nowMs < stretch.fromMs || nowMs >= stretch.untilMs) {
      const clock = clockAt(this.options.calendar, this.options.timeZone, nowMs);
      this.stretch = { fromMs: nowMs, untilMs: clock.calendarOpen ? clock.nextCloseMs : clock.nextOpenMs, open: clock.calendarOpen };
      return clock.calendarOpen;
    }
    return stretch.open;
  }

  view(nowMs: number = this.now()): ClockView {
    return { ...clockAt(this.options.calendar, this.options.timeZone, nowMs, this.forced), nowMs, calendar: this.options.calendar };
  }

  sessions(startDate: string, endDate: string): Session[] {
    return sessionsBetween(this.options.calendar, this.options.timeZone, startDate, endDate);
  }

  /** Sets the override ('auto' removes it) for every process; answers the clock as it is now. */
  async force(state: 'open' | 'closed' | 'auto'): Promise<ClockView> {
    const row = await repo.setForced(this.db, state === 'auto' ? null : state);
    this.forced = row.forced;
    return this.view();
  }

  /** The latest session the engine opened (closedAt null while it is open). */
  latestSession(): Promise<{ openedAt: Date; closedAt: Date | null } | undefined> {
    return repo.latestSession(this.db);
  }

  /** Records a session's open or close that the engine executed. */
  async recordEvent(event: 'open' | 'close', at: Date): Promise<void> {
    if (event === 'open') await repo.openSession(this.db, at);
    else await repo.closeSession(this.db, at);
  }

  /** The calendar's most recent close, unless the override keeps the market open. */
  calendarLastClose(nowMs: number): number | undefined {
    if (this.forced !== null) return undefined;
    return lastClose(this.options.calendar, this.options.timeZone, nowMs);
  }
}
