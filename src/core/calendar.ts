/**
 * The market calendar and the clock, as pure functions: which days are sessions, when each opens
 * and closes, whether the market is open at an instant, and the next open / next close.
 *
 * Two calendars (`MARKET_CALENDAR`):
 * - `always`: every calendar day of the time zone (`MARKET_TIMEZONE`, any IANA zone) is one
 *   session, open from local midnight to the next local midnight — so a session lasts 23 or 25
 *   hours on the days the zone changes to or from summer time. The market is never closed.
 * - `nyse`: regular NYSE hours, 09:30–16:00 New York time, Monday to Friday, closed on NYSE
 *   holidays and closing at 13:00 on early-close days. **Its zone is always America/New_York**:
 *   the `timeZone` argument is ignored for `nyse` (MARKET_TIMEZONE only applies to `always`),
 *   and `Session.date` is then a New York date. Holidays and early closes come from the table
 *   below, for the years NYSE_TABLE_FIRST_YEAR..NYSE_TABLE_LAST_YEAR (2025–2027). Outside those
 *   years every weekday is a full 09:30–16:00 session and the calendar says it does not know
 *   better: such sessions carry `known: false` (see `isCalendarKnown`); nothing throws.
 *
 * Instants are epoch milliseconds. A session contains an instant t when `openMs <= t < closeMs`:
 * the open is inclusive, the close exclusive (at 16:00:00.000 the market is already closed).
 *
 * Time zone arithmetic uses Intl.DateTimeFormat only. Errors are RangeErrors: an unknown calendar,
 * an invalid time zone (thrown by Intl), a malformed date or time, a non-finite instant, a range
 * of more than CALENDAR_DAYS_MAX days.
 */

export const CALENDAR_KINDS = ['always', 'nyse'] as const;
export type CalendarKind = (typeof CALENDAR_KINDS)[number];

/** MARKET_TIMEZONE's default; also the only zone of the `nyse` calendar. */
export const DEFAULT_MARKET_TIMEZONE = 'America/New_York';
export const NYSE_TIME_ZONE = 'America/New_York';
export const NYSE_OPEN_TIME = '09:30';
export const NYSE_CLOSE_TIME = '16:00';
export const NYSE_EARLY_CLOSE_TIME = '13:00';

/** At most this many days (inclusive range) per `sessionsBetween` call. */
export const CALENDAR_DAYS_MAX = 366;
/** The years the NYSE holiday / early-close table covers; outside them sessions are `known: false`. */
export const NYSE_TABLE_FIRST_YEAR = 2025;
export const NYSE_TABLE_LAST_YEAR = 2027;
/** Dates accepted by `parseIsoDate` (and so by every function taking a date). */
export const ISO_DATE_YEAR_MIN = 1970;
export const ISO_DATE_YEAR_MAX = 9999;

/**
 * NYSE full-day closures on weekdays, per year. The rules each entry follows:
 * - New Year's Day, Jan 1 (Sunday → Monday Jan 2; Saturday → NOT observed: the NYSE does not close
 *   on Friday Dec 31 for it — so Friday 2027-12-31 is a trading day although 2028-01-01 is a Saturday).
 * - Martin Luther King Jr. Day, 3rd Monday of January.
 * - Washington's Birthday, 3rd Monday of February.
 * - Good Friday, the Friday before Easter Sunday (Easter 2025-04-20, 2026-04-05, 2027-03-28).
 * - Memorial Day, last Monday of May.
 * - Juneteenth, June 19 (Saturday → Friday, Sunday → Monday).
 * - Independence Day, July 4 (Saturday → Friday, Sunday → Monday).
 * - Labor Day, 1st Monday of September.
 * - Thanksgiving Day, 4th Thursday of November.
 * - Christmas Day, Dec 25 (Saturday → Friday, Sunday → Monday).
 * - Special closures: 2025-01-09, National Day of Mourning for President Jimmy Carter.
 */
export const NYSE_HOLIDAYS: Readonly<Record<number, readonly string[]>> = {
  2025: [
    '2025-01-01', // New Year's Day (Wed)
    '2025-01-09', // National Day of Mourning for President Carter (Thu), special closure
    '2025-01-20', // Martin Luther King Jr. Day (3rd Mon Jan)
    '2025-02-17', // Washington's Birthday (3rd Mon Feb)
    '2025-04-18', // Good Friday (Easter Apr 20)
    '2025-05-26', // Memorial Day (last Mon May)
    '2025-06-19', // Juneteenth (Thu)
    '2025-07-04', // Independence Day (Fri)
    '2025-09-01', // Labor Day (1st Mon Sep)
    '2025-11-27', // Thanksgiving Day (4th Thu Nov)
    '2025-12-25', // Christmas Day (Thu)
  ],
  2026: [
    '2026-01-01', // New Year's Day (Thu)
    '2026-01-19', // Martin Luther King Jr. Day (3rd Mon Jan)
    '2026-02-16', // Washington's Birthday (3rd Mon Feb)
    '2026-04-03', // Good Friday (Easter Apr 5)
    '2026-05-25', // Memorial Day (last Mon May)
    '2026-06-19', // Juneteenth (Fri)
    '2026-07-03', // Independence Day observed (Jul 4 is a Saturday → Friday)
    '2026-09-07', // Labor Day (1st Mon Sep)
    '2026-11-26', // Thanksgiving Day (4th Thu Nov)
    '2026-12-25', // Christmas Day (Fri)
  ],
  2027: [
    '2027-01-01', // New Year's Day (Fri)
    '2027-01-18', // Martin Luther King Jr. Day (3rd Mon Jan)
    '2027-02-15', // Washington's Birthday (3rd Mon Feb)
    '2027-03-26', // Good Friday (Easter Mar 28)
    '2027-05-31', // Memorial Day (last Mon May)
    '2027-06-18', // Juneteenth observed (Jun 19 is a Saturday → Friday)
    '2027-07-05', // Independence Day observed (Jul 4 is a Sunday → Monday)
    '2027-09-06', // Labor Day (1st Mon Sep)
    '2027-11-25', // Thanksgiving Day (4th Thu Nov)
    '2027-12-24', // Christmas Day observed (Dec 25 is a Saturday → Friday)
    // No closure on Fri 2027-12-31: New Year's Day 2028 falls on a Saturday and is not observed.
  ],
};

/**
 * NYSE early closes (13:00 New York), per year. The rules:
 * - July 3, when it is a Monday–Thursday trading day before a weekday Independence Day. When
 *   July 4 falls on a weekend there is no early close (2026: observed Fri Jul 3, Thu Jul 2 is a
 *   full day, as in 2015 and 2020; 2027: observed Mon Jul 5, Fri Jul 2 is a full day, as in 2021).
 * - The day after Thanksgiving (Friday).
 * - Christmas Eve, Dec 24, when it is a weekday trading day. When Christmas falls on a Saturday
 *   (2027) Dec 24 is the observed holiday and the day before it is a full day.
 */
export const NYSE_EARLY_CLOSES: Readonly<Record<number, readonly string[]>> = {
  2025: [
    '2025-07-03', // day before Independence Day (Thu)
    '2025-11-28', // day after Thanksgiving (Fri)
    '2025-12-24', // Christmas Eve (Wed)
  ],
  2026: [
    '2026-11-27', // day after Thanksgiving (Fri)
    '2026-12-24', // Christmas Eve (Thu)
  ],
  2027: [
    '2027-11-26', // day after Thanksgiving (Fri)
  ],
};

const HOLIDAY_SET: ReadonlySet<string> = new Set(Object.values(NYSE_HOLIDAYS).flat());
const EARLY_CLOSE_SET: ReadonlySet<string> = new Set(Object.values(NYSE_EARLY_CLOSES).flat());

export interface Session {
  /** The session's local date, YYYY-MM-DD, in the calendar's zone (New York for `nyse`). */
  date: string;
  /** The open, inclusive (epoch ms). */
  openMs: number;
  /** The close, exclusive (epoch ms). */
  closeMs: number;
  /** True when the session closes early (13:00 for `nyse`); always false for `always`. */
  earlyClose: boolean;
  /** False when the session is a guess: a `nyse` weekday outside the table's years. */
  known: boolean;
}

/** The admin override of the clock: force the market open or closed, or follow the calendar (null). */
export interface ClockState {
  forced: 'open' | 'closed' | null;
}

export interface Clock {
  /** Open now: the override if any, else the calendar. */
  isOpen: boolean;
  /** What the calendar alone says about now. */
  calendarOpen: boolean;
  forced: ClockState['forced'];
  /** The calendar's next open after now (see `nextOpen`). */
  nextOpenMs: number;
  /** The calendar's next close after now (see `nextClose`). */
  nextCloseMs: number;
  /** False when now, the next open or the next close falls on a day the calendar does not know. */
  known: boolean;
}

export interface IsoDate {
  year: number;
  month: number;
  day: number;
}

// ---------------------------------------------------------------------------------------------
// Dates: 'YYYY-MM-DD' strings and day numbers (days since 1970-01-01).
// ---------------------------------------------------------------------------------------------

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** No gap between two sessions of these calendars is longer than this (NYSE: a long weekend). */
const SCAN_DAYS_MAX = 14;

/** Parses a calendar date 'YYYY-MM-DD' (years ISO_DATE_YEAR_MIN..MAX), refusing 2026-02-30 and the like. */
export function parseIsoDate(text: string): IsoDate | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (year < ISO_DATE_YEAR_MIN || year > ISO_DATE_YEAR_MAX || month < 1 || month > 12 || day < 1) return undefined;
  if (day > daysInMonth(year, month)) return undefined;
  return { year, month, day };
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function dayNumberOf(date: string): number {
  const d = parseIsoDate(date);
  if (!d) throw new RangeError(`not a date (YYYY-MM-DD): ${String(date)}`);
  return Date.UTC(d.year, d.month - 1, d.day) / DAY_MS;
}

function isoDateOf(dayNumber: number): string {
  return new Date(dayNumber * DAY_MS).toISOString().slice(0, 10);
}

/** 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday). */
function weekdayOf(dayNumber: number): number {
  return (((dayNumber + 4) % 7) + 7) % 7;
}

/** The date `days` days after (before, if negative) `date`. */
export function addDays(date: string, days: number): string {
  return isoDateOf(dayNumberOf(date) + days);
}

// ---------------------------------------------------------------------------------------------
// Time zones, with Intl.DateTimeFormat.
// ---------------------------------------------------------------------------------------------

/** True when Intl knows the zone (an IANA name such as 'Europe/London', or 'UTC'). */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone === '') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** The zone a calendar computes in: America/New_York for `nyse`, the given zone for `always`. */
export function calendarTimeZone(kind: CalendarKind, timeZone: string): string {
  checkKind(kind);
  return kind === 'nyse' ? NYSE_TIME_ZONE : timeZone;
}

// A memo of formatters (they are costly to build); bounded, since zone names come from outside.
const FORMATTERS_MAX = 64;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= FORMATTERS_MAX) formatters.clear();
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall clock of the zone at an instant, as the UTC epoch ms of that wall time (whole seconds). */
function wallMs(timeZone: string, ms: number): number {
  const v: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(ms)) {
    if (part.type !== 'literal') v[part.type] = Number(part.value);
  }
  const hour = v.hour === 24 ? 0 : (v.hour ?? 0);
  return Date.UTC(v.year ?? 0, (v.month ?? 1) - 1, v.day ?? 1, hour, v.minute ?? 0, v.second ?? 0);
}

/** The zone's UTC offset at an instant (local minus UTC, ms). */
function offsetMs(timeZone: string, ms: number): number {
  return wallMs(timeZone, ms) - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant of a local wall time (given as ms of that wall time read as UTC) in a zone, exact
 * across offset changes. Like Temporal's 'compatible' disambiguation: a repeated wall time (the
 * autumn hour) is its earlier instant; a skipped one (the spring gap) is moved forward by the gap
 * (02:30 on a spring-forward day in New York is 03:30 EDT), so a skipped midnight gives the first
 * instant of the day.
 */
function localToEpochMs(timeZone: string, local: number): number {
  const before = offsetMs(timeZone, local - DAY_MS);
  const after = offsetMs(timeZone, local + DAY_MS);
  const a = local - before;
  const b = local - after;
  const aFits = offsetMs(timeZone, a) === before;
  const bFits = offsetMs(timeZone, b) === after;
  if (aFits && bFits) return Math.min(a, b);
  if (aFits) return a;
  if (bFits) return b;
  return a;
}

function parseTime(time: string): number {
  const m = typeof time === 'string' ? /^([01]\d|2[0-3]):([0-5]\d)$/.exec(time) : null;
  if (!m) throw new RangeError(`not a time (HH:MM, 00:00–23:59): ${String(time)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/**
 * The epoch ms of a local date and time ('YYYY-MM-DD', 'HH:MM') in a zone, exact across DST
 * changes; a time repeated by a change is its first occurrence, a time skipped by one is moved
 * forward by the gap (see above). Throws RangeError on a bad date, time or zone.
 */
export function zonedTimeToEpochMs(date: string, time: string, timeZone: string): number {
  return localToEpochMs(timeZone, dayNumberOf(date) * DAY_MS + parseTime(time) * MINUTE_MS);
}

/** The local date (YYYY-MM-DD) in a zone at an instant. */
export function localDateAt(nowMs: number, timeZone: string): string {
  checkInstant(nowMs);
  return isoDateOf(Math.floor(wallMs(timeZone, nowMs) / DAY_MS));
}

// ---------------------------------------------------------------------------------------------
// Sessions.
// ---------------------------------------------------------------------------------------------

function checkKind(kind: CalendarKind): void {
  if (!(CALENDAR_KINDS as readonly string[]).includes(kind)) {
    throw new RangeError(`unknown calendar: ${String(kind)} (expected ${CALENDAR_KINDS.join(' or ')})`);
  }
}

function checkInstant(ms: number): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new RangeError(`not an instant: ${String(ms)}`);
}

/** True when the calendar knows the date: always for `always`; for `nyse`, inside the table's years. */
export function isCalendarKnown(kind: CalendarKind, date: string): boolean {
  checkKind(kind);
  if (kind === 'always') return true;
  const year = Math.floor(Number(date.slice(0, 4)));
  return year >= NYSE_TABLE_FIRST_YEAR && year <= NYSE_TABLE_LAST_YEAR;
}

const NYSE_OPEN_MIN = parseTime(NYSE_OPEN_TIME);
const NYSE_CLOSE_MIN = parseTime(NYSE_CLOSE_TIME);
const NYSE_EARLY_CLOSE_MIN = parseTime(NYSE_EARLY_CLOSE_TIME);

function startOfDay(timeZone: string, dayNumber: number): number {
  return localToEpochMs(timeZone, dayNumber * DAY_MS);
}

function nyseSession(dayNumber: number): Session | undefined {
  const weekday = weekdayOf(dayNumber);
  if (weekday === 0 || weekday === 6) return undefined;
  const date = isoDateOf(dayNumber);
  const known = isCalendarKnown('nyse', date);
  if (known && HOLIDAY_SET.has(date)) return undefined;
  const earlyClose = known && EARLY_CLOSE_SET.has(date);
  const local = dayNumber * DAY_MS;
  return {
    date,
    openMs: localToEpochMs(NYSE_TIME_ZONE, local + NYSE_OPEN_MIN * MINUTE_MS),
    closeMs: localToEpochMs(NYSE_TIME_ZONE, local + (earlyClose ? NYSE_EARLY_CLOSE_MIN : NYSE_CLOSE_MIN) * MINUTE_MS),
    earlyClose,
    known,
  };
}

/** The session of one local date, if it is one (an `always` day a zone skips entirely is none). */
function sessionOn(kind: CalendarKind, timeZone: string, dayNumber: number): Session | undefined {
  if (kind === 'nyse') return nyseSession(dayNumber);
  const openMs = startOfDay(timeZone, dayNumber);
  const closeMs = startOfDay(timeZone, dayNumber + 1);
  if (openMs >= closeMs) return undefined;
  return { date: isoDateOf(dayNumber), openMs, closeMs, earlyClose: false, known: true };
}

/** The day number of the local date at an instant in the calendar's zone. */
function localDayAt(kind: CalendarKind, timeZone: string, nowMs: number): number {
  checkKind(kind);
  checkInstant(nowMs);
  return Math.floor(wallMs(calendarTimeZone(kind, timeZone), nowMs) / DAY_MS);
}

/**
 * The sessions whose local dates lie in startDate..endDate (inclusive, YYYY-MM-DD), in order.
 * Throws RangeError on a bad date, endDate before startDate, or more than CALENDAR_DAYS_MAX days.
 */
export function sessionsBetween(kind: CalendarKind, timeZone: string, startDate: string, endDate: string): Session[] {
  checkKind(kind);
  const first = dayNumberOf(startDate);
  const last = dayNumberOf(endDate);
  if (last < first) throw new RangeError(`endDate ${endDate} is before startDate ${startDate}`);
  if (last - first + 1 > CALENDAR_DAYS_MAX) throw new RangeError(`at most ${CALENDAR_DAYS_MAX} days per request`);
  const sessions: Session[] = [];
  if (kind === 'nyse') {
    for (let d = first; d <= last; d++) {
      const s = nyseSession(d);
      if (s) sessions.push(s);
    }
    return sessions;
  }
  let openMs = startOfDay(timeZone, first);
  for (let d = first; d <= last; d++) {
    const closeMs = startOfDay(timeZone, d + 1);
    if (openMs < closeMs) sessions.push({ date: isoDateOf(d), openMs, closeMs, earlyClose: false, known: true });
    openMs = closeMs;
  }
  return sessions;
}

/** The session open at the instant (openMs <= nowMs < closeMs), or undefined when the calendar is closed. */
export function sessionAt(kind: CalendarKind, timeZone: string, nowMs: number): Session | undefined {
  const today = localDayAt(kind, timeZone, nowMs);
  for (let d = today; d >= today - 1; d--) {
    const s = sessionOn(kind, timeZone, d);
    if (s && s.openMs <= nowMs && nowMs < s.closeMs) return s;
  }
  return undefined;
}

function firstSessionAfter(kind: CalendarKind, timeZone: string, nowMs: number, pick: (s: Session) => number): Session {
  const today = localDayAt(kind, timeZone, nowMs);
  for (let d = today; d <= today + SCAN_DAYS_MAX; d++) {
    const s = sessionOn(kind, timeZone, d);
    if (s && pick(s) > nowMs) return s;
  }
  throw new Error(`no session within ${SCAN_DAYS_MAX} days of ${nowMs}`);
}

/**
 * The next open strictly after now: when closed, the open of the next session (no session opens
 * exactly at a closed instant, the open being inclusive); when open, the open of the session after
 * the current one (for `always`, the current session's close).
 */
export function nextOpen(kind: CalendarKind, timeZone: string, nowMs: number): number {
  return firstSessionAfter(kind, timeZone, nowMs, (s) => s.openMs).openMs;
}

/** The next close strictly after now: the current session's close when open, else the next session's. */
export function nextClose(kind: CalendarKind, timeZone: string, nowMs: number): number {
  return firstSessionAfter(kind, timeZone, nowMs, (s) => s.closeMs).closeMs;
}

/**
 * The most recent session close at or before now (a close exactly at now counts, the market being
 * closed then), or undefined if none within SCAN_DAYS_MAX days (never, for these calendars). Used to
 * expire `day` orders whose close was missed.
 */
export function lastClose(kind: CalendarKind, timeZone: string, nowMs: number): number | undefined {
  const today = localDayAt(kind, timeZone, nowMs);
  for (let d = today; d >= today - SCAN_DAYS_MAX; d--) {
    const s = sessionOn(kind, timeZone, d);
    if (s && s.closeMs <= nowMs) return s.closeMs;
  }
  return undefined;
}

/**
 * The clock at an instant, with the admin override. `forced` 'open' makes it open now and 'closed'
 * closed now, whatever the calendar says; null follows the calendar. The next open and next close
 * are always the calendar's, strictly after now: forced open, nextCloseMs is the calendar's next
 * close (the current session's if the calendar is open too, else the next session's); forced
 * closed, nextOpenMs is the calendar's next open (the next session's, if the calendar is open now).
 */
export function clockAt(kind: CalendarKind, timeZone: string, nowMs: number, forced: ClockState['forced'] = null): Clock {
  if (forced !== null && forced !== 'open' && forced !== 'closed') throw new RangeError(`unknown override: ${String(forced)}`);
  const calendarOpen = sessionAt(kind, timeZone, nowMs) !== undefined;
  const nextOpenMs = nextOpen(kind, timeZone, nowMs);
  const nextCloseMs = nextClose(kind, timeZone, nowMs);
  const zone = calendarTimeZone(kind, timeZone);
  const known = [nowMs, nextOpenMs, nextCloseMs].every((ms) => isCalendarKnown(kind, localDateAt(ms, zone)));
  return { isOpen: forced === null ? calendarOpen : forced === 'open', calendarOpen, forced, nextOpenMs, nextCloseMs, known };
}

/**
 * An instant as RFC 3339 text in a zone's local time with its UTC offset at that instant, e.g.
 * '2026-12-02T09:30:00-05:00' for New York in winter ('Z' is never used, '+00:00' is written
 * instead). Milliseconds are written only when there are some, as clocks that show whole
 * seconds do. Throws RangeError on a non-finite instant or an invalid zone.
 */
export function zonedTimestamp(ms: number, timeZone: string): string {
  checkInstant(ms);
  const wall = wallMs(timeZone, ms);
  const offsetMin = Math.round((wall - Math.floor(ms / 1000) * 1000) / MINUTE_MS);
  const fraction = ((ms % 1000) + 1000) % 1000;
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  const local = new Date(wall).toISOString().slice(0, 19);
  return `${local}${fraction === 0 ? '' : `.${String(fraction).padStart(3, '0')}`}${offset}`;
}
