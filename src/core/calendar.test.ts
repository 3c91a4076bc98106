import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  addDays,
  CALENDAR_DAYS_MAX,
  calendarTimeZone,
  clockAt,
  isCalendarKnown,
  isValidTimeZone,
  lastClose,
  localDateAt,
  nextClose,
  nextOpen,
  NYSE_EARLY_CLOSES,
  NYSE_HOLIDAYS,
  NYSE_TABLE_FIRST_YEAR,
  NYSE_TABLE_LAST_YEAR,
  parseIsoDate,
  sessionAt,
  sessionsBetween,
  zonedTimeToEpochMs,
  type CalendarKind,
  type Session,
} from './calendar.js';

const NY = 'America/New_York';
const LONDON = 'Europe/London';
const HOUR = 3_600_000;
const utc = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
/** The wall clock of a zone at an instant, to the minute, as ms of that wall time read as UTC. */
function wallOf(ms: number, timeZone: string): number {
  const f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' });
  const v = Object.fromEntries(f.formatToParts(ms).map((p) => [p.type, Number(p.value)]));
  return Date.UTC(v.year!, v.month! - 1, v.day!, v.hour!, v.minute!);
}

// The published NYSE dates, written out by hand (independently of the table and of the rule generator below).
const PUBLISHED_HOLIDAYS: Record<number, string[]> = {
  2025: ['2025-01-01', '2025-01-09', '2025-01-20', '2025-02-17', '2025-04-18', '2025-05-26', '2025-06-19', '2025-07-04', '2025-09-01', '2025-11-27', '2025-12-25'],
  2026: ['2026-01-01', '2026-01-19', '2026-02-16', '2026-04-03', '2026-05-25', '2026-06-19', '2026-07-03', '2026-09-07', '2026-11-26', '2026-12-25'],
  2027: ['2027-01-01', '2027-01-18', '2027-02-15', '2027-03-26', '2027-05-31', '2027-06-18', '2027-07-05', '2027-09-06', '2027-11-25', '2027-12-24'],
};
const PUBLISHED_EARLY_CLOSES: Record<number, string[]> = {
  2025: ['2025-07-03', '2025-11-28', '2025-12-24'],
  2026: ['2026-11-27', '2026-12-24'],
  2027: ['2027-11-26'],
};
const SESSIONS_PER_YEAR: Record<number, number> = { 2025: 250, 2026: 251, 2027: 251 };
const YEARS = [2025, 2026, 2027];

// --- A rule-based generator, as a second, independent check of the table. ---
const ymd = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d)).toISOString().slice(0, 10);
const dow = (date: string) => new Date(`${date}T00:00:00Z`).getUTCDay();
const shift = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
function nthWeekday(y: number, m: number, weekday: number, n: number): string {
  if (n > 0) {
    const first = ymd(y, m, 1);
    return shift(first, ((weekday - dow(first) + 7) % 7) + 7 * (n - 1));
  }
  const last = ymd(y, m + 1, 0);
  return shift(last, -((dow(last) - weekday + 7) % 7));
}
const observed = (date: string) => (dow(date) === 6 ? shift(date, -1) : dow(date) === 0 ? shift(date, 1) : date);
function easter(y: number): string {
  // Anonymous Gregorian algorithm (Meeus/Jones/Butcher).
  const a = y % 19, b = Math.floor(y / 100), c = y % 100, d = Math.floor(b / 4), e = b % 4;
  const f = Math.floor((b + 8) / 25), g = Math.floor((b - f + 1) / 3), h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4), k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7, m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31), day = ((h + l - 7 * m + 114) % 31) + 1;
  return ymd(y, month, day);
}
function ruleHolidays(y: number): string[] {
  const newYear = ymd(y, 1, 1);
  const list = [
    ...(dow(newYear) === 6 ? [] : [observed(newYear)]), // Saturday New Year's Day is not observed on Dec 31
    nthWeekday(y, 1, 1, 3),
    nthWeekday(y, 2, 1, 3),
    shift(easter(y), -2),
    nthWeekday(y, 5, 1, -1),
    observed(ymd(y, 6, 19)),
    observed(ymd(y, 7, 4)),
    nthWeekday(y, 9, 1, 1),
    nthWeekday(y, 11, 4, 4),
    observed(ymd(y, 12, 25)),
    ...(y === 2025 ? ['2025-01-09'] : []),
  ];
  return list.sort();
}
function ruleEarlyCloses(y: number): string[] {
  const monToThu = (date: string) => dow(date) >= 1 && dow(date) <= 4;
  const july3 = ymd(y, 7, 3);
  const christmasEve = ymd(y, 12, 24);
  return [...(monToThu(july3) ? [july3] : []), shift(nthWeekday(y, 11, 4, 4), 1), ...(monToThu(christmasEve) ? [christmasEve] : [])];
}

const sessionsOfYear = (y: number) => sessionsBetween('nyse', NY, `${y}-01-01`, `${y}-12-31`);

describe('NYSE table: the published dates', () => {
  it.each(YEARS)('holidays and early closes of %i are the published lists', (y) => {
    expect(NYSE_HOLIDAYS[y]).toEqual(PUBLISHED_HOLIDAYS[y]);
    expect(NYSE_EARLY_CLOSES[y]).toEqual(PUBLISHED_EARLY_CLOSES[y]);
    expect(ruleHolidays(y)).toEqual(PUBLISHED_HOLIDAYS[y]);
    expect(ruleEarlyCloses(y)).toEqual(PUBLISHED_EARLY_CLOSES[y]);
    expect([NYSE_TABLE_FIRST_YEAR, NYSE_TABLE_LAST_YEAR]).toEqual([2025, 2027]);
  });

  it.each(YEARS)('%i: every weekday but the holidays is a session, known, closing early exactly on the early-close days', (y) => {
    const sessions = sessionsOfYear(y);
    expect(sessions).toHaveLength(SESSIONS_PER_YEAR[y]!);
    const dates = sessions.map((s) => s.date);
    for (let d = `${y}-01-01`; d <= `${y}-12-31`; d = shift(d, 1)) {
      const weekday = dow(d) >= 1 && dow(d) <= 5;
      expect(dates.includes(d), d).toBe(weekday && !PUBLISHED_HOLIDAYS[y]!.includes(d));
    }
    expect(sessions.filter((s) => s.earlyClose).map((s) => s.date)).toEqual(PUBLISHED_EARLY_CLOSES[y]);
    expect(sessions.every((s) => s.known)).toBe(true);
  });

  it('2026 has 251 sessions; Friday 2027-12-31 trades (New Year 2028 on a Saturday is not observed)', () => {
    expect(sessionsOfYear(2026)).toHaveLength(251);
    const s = sessionsBetween('nyse', NY, '2027-12-31', '2027-12-31');
    expect(s.map((x) => [x.date, iso(x.openMs), iso(x.closeMs)])).toEqual([['2027-12-31', '2027-12-31T14:30:00.000Z', '2027-12-31T21:00:00.000Z']]);
    expect(sessionsBetween('nyse', NY, '2027-07-02', '2027-07-02')[0]).toMatchObject({ earlyClose: false }); // Fri before observed Jul 5
    expect(sessionsBetween('nyse', NY, '2026-07-02', '2026-07-02')[0]).toMatchObject({ earlyClose: false }); // Thu before observed Jul 3
    expect(sessionsBetween('nyse', NY, '2027-12-23', '2027-12-23')[0]).toMatchObject({ earlyClose: false });
  });

  it('regular hours are 09:30–16:00 New York; early closes are 13:00 = 18:00 UTC in winter, 17:00 UTC in summer', () => {
    const one = (d: string) => sessionsBetween('nyse', NY, d, d)[0]!;
    expect([iso(one('2026-01-02').openMs), iso(one('2026-01-02').closeMs)]).toEqual(['2026-01-02T14:30:00.000Z', '2026-01-02T21:00:00.000Z']);
    expect([iso(one('2026-07-01').openMs), iso(one('2026-07-01').closeMs)]).toEqual(['2026-07-01T13:30:00.000Z', '2026-07-01T20:00:00.000Z']);
    expect(one('2025-07-03')).toMatchObject({ earlyClose: true, closeMs: utc('2025-07-03T17:00:00Z') });
    expect(one('2025-11-28')).toMatchObject({ earlyClose: true, closeMs: utc('2025-11-28T18:00:00Z') });
    expect(one('2025-12-24')).toMatchObject({ earlyClose: true, closeMs: utc('2025-12-24T18:00:00Z') });
    expect(one('2026-11-27')).toMatchObject({ earlyClose: true, openMs: utc('2026-11-27T14:30:00Z'), closeMs: utc('2026-11-27T18:00:00Z') });
    expect(one('2026-12-24')).toMatchObject({ earlyClose: true, closeMs: utc('2026-12-24T18:00:00Z') });
    expect(one('2027-11-26')).toMatchObject({ earlyClose: true, closeMs: utc('2027-11-26T18:00:00Z') });
  });

  it('the nyse calendar is always in New York, whatever time zone it is given', () => {
    const ny = sessionsBetween('nyse', NY, '2026-03-01', '2026-03-31');
    expect(sessionsBetween('nyse', 'Asia/Tokyo', '2026-03-01', '2026-03-31')).toEqual(ny);
    expect(sessionsBetween('nyse', 'Not/AZone', '2026-03-01', '2026-03-31')).toEqual(ny);
    expect(calendarTimeZone('nyse', 'Asia/Tokyo')).toBe(NY);
    expect(calendarTimeZone('always', 'Asia/Tokyo')).toBe('Asia/Tokyo');
    // 2026-03-09 in Tokyo is already underway at the New York open, but the session is the New York date.
    expect(sessionAt('nyse', 'Asia/Tokyo', utc('2026-03-09T13:30:00Z'))?.date).toBe('2026-03-09');
  });

  it('beyond the table, weekdays are full sessions marked known: false', () => {
    expect(sessionsBetween('nyse', NY, '2024-12-30', '2025-01-02').map((s) => [s.date, s.known])).toEqual([
      ['2024-12-30', false],
      ['2024-12-31', false],
      ['2025-01-02', true],
    ]);
    // 2028: Jan 3 (Mon), Jul 4 (Tue, a real holiday), Nov 24 (Fri after Thanksgiving, really early): all plain guesses.
    for (const d of ['2028-01-03', '2028-07-04', '2028-11-24']) {
      expect(sessionsBetween('nyse', NY, d, d)).toEqual([
        { date: d, openMs: zonedTimeToEpochMs(d, '09:30', NY), closeMs: zonedTimeToEpochMs(d, '16:00', NY), earlyClose: false, known: false },
      ]);
    }
    expect(sessionsBetween('nyse', NY, '2028-01-08', '2028-01-09')).toEqual([]); // weekend
    expect(isCalendarKnown('nyse', '2024-12-31')).toBe(false);
    expect(isCalendarKnown('nyse', '2025-01-01')).toBe(true);
    expect(isCalendarKnown('nyse', '2027-12-31')).toBe(true);
    expect(isCalendarKnown('nyse', '2028-01-01')).toBe(false);
    expect(isCalendarKnown('always', '2099-01-01')).toBe(true);
  });
});

describe('time zones', () => {
  it('converts local times exactly across the New York DST changes of 2026', () => {
    // 2026-03-08: 02:00 EST → 03:00 EDT.
    expect(iso(zonedTimeToEpochMs('2026-03-08', '00:00', NY))).toBe('2026-03-08T05:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-03-08', '01:59', NY))).toBe('2026-03-08T06:59:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-03-08', '02:30', NY))).toBe('2026-03-08T07:30:00.000Z'); // skipped: 03:30 EDT
    expect(iso(zonedTimeToEpochMs('2026-03-08', '03:00', NY))).toBe('2026-03-08T07:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-03-08', '09:30', NY))).toBe('2026-03-08T13:30:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-03-06', '09:30', NY))).toBe('2026-03-06T14:30:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-03-09', '00:00', NY))).toBe('2026-03-09T04:00:00.000Z');
    // 2026-11-01: 02:00 EDT → 01:00 EST.
    expect(iso(zonedTimeToEpochMs('2026-11-01', '00:00', NY))).toBe('2026-11-01T04:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-11-01', '00:59', NY))).toBe('2026-11-01T04:59:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-11-01', '01:30', NY))).toBe('2026-11-01T05:30:00.000Z'); // repeated: the first (EDT)
    expect(iso(zonedTimeToEpochMs('2026-11-01', '02:00', NY))).toBe('2026-11-01T07:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-11-02', '00:00', NY))).toBe('2026-11-02T05:00:00.000Z');
  });

  it('converts local times exactly across the London DST changes of 2026', () => {
    // 2026-03-29: 01:00 GMT → 02:00 BST; 2026-10-25: 02:00 BST → 01:00 GMT.
    expect(iso(zonedTimeToEpochMs('2026-03-29', '00:00', LONDON))).toBe('2026-03-29T00:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-03-29', '01:30', LONDON))).toBe('2026-03-29T01:30:00.000Z'); // skipped: 02:30 BST
    expect(iso(zonedTimeToEpochMs('2026-03-29', '02:00', LONDON))).toBe('2026-03-29T01:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-03-30', '00:00', LONDON))).toBe('2026-03-29T23:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-10-25', '00:00', LONDON))).toBe('2026-10-24T23:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-10-25', '01:30', LONDON))).toBe('2026-10-25T00:30:00.000Z'); // repeated: the first (BST)
    expect(iso(zonedTimeToEpochMs('2026-10-25', '02:00', LONDON))).toBe('2026-10-25T02:00:00.000Z');
    expect(iso(zonedTimeToEpochMs('2026-10-26', '00:00', LONDON))).toBe('2026-10-26T00:00:00.000Z');
  });

  it('a skipped midnight is the first instant of the day (Santiago, 2026-09-06 00:00 → 01:00)', () => {
    const t = zonedTimeToEpochMs('2026-09-06', '00:00', 'America/Santiago');
    expect(localDateAt(t, 'America/Santiago')).toBe('2026-09-06');
    expect(localDateAt(t - 1, 'America/Santiago')).toBe('2026-09-05');
    const [s] = sessionsBetween('always', 'America/Santiago', '2026-09-06', '2026-09-06');
    expect(s!.closeMs - s!.openMs).toBe(23 * HOUR);
  });

  it('local dates and the validation helpers', () => {
    expect(localDateAt(utc('2026-03-09T03:59:59.999Z'), NY)).toBe('2026-03-08');
    expect(localDateAt(utc('2026-03-09T04:00:00Z'), NY)).toBe('2026-03-09');
    expect(localDateAt(utc('2026-03-09T04:00:00Z'), 'Asia/Tokyo')).toBe('2026-03-09');
    expect(isValidTimeZone(NY)).toBe(true);
    expect(isValidTimeZone('Europe/London')).toBe(true);
    expect(isValidTimeZone('UTC')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    expect(parseIsoDate('2026-02-28')).toEqual({ year: 2026, month: 2, day: 28 });
    expect(parseIsoDate('2028-02-29')).toEqual({ year: 2028, month: 2, day: 29 });
    for (const bad of ['2026-02-29', '2026-02-30', '2026-04-31', '2026-13-01', '2026-00-10', '2026-01-00', '2026-1-01', '20260101', '2026-01-01T00:00', ' 2026-01-01', '1969-12-31', '']) {
      expect(parseIsoDate(bad), bad).toBeUndefined();
    }
    expect(addDays('2026-02-28', 1)).toBe('2026-03-01');
    expect(addDays('2026-01-01', -1)).toBe('2025-12-31');
    expect(() => zonedTimeToEpochMs('2026-02-30', '09:30', NY)).toThrow(RangeError);
    expect(() => zonedTimeToEpochMs('2026-02-01', '24:00', NY)).toThrow(RangeError);
    expect(() => zonedTimeToEpochMs('2026-02-01', '9:30', NY)).toThrow(RangeError);
    expect(() => zonedTimeToEpochMs('2026-02-01', '09:30', 'Nope/Nope')).toThrow(RangeError);
  });
});

describe('always calendar', () => {
  it('a session is a local day: 23 hours when DST starts, 25 when it ends', () => {
    const ny = sessionsBetween('always', NY, '2026-03-07', '2026-03-09');
    expect(ny.map((s) => [s.date, iso(s.openMs), (s.closeMs - s.openMs) / HOUR])).toEqual([
      ['2026-03-07', '2026-03-07T05:00:00.000Z', 24],
      ['2026-03-08', '2026-03-08T05:00:00.000Z', 23],
      ['2026-03-09', '2026-03-09T04:00:00.000Z', 24],
    ]);
    const fall = sessionsBetween('always', NY, '2026-11-01', '2026-11-01')[0]!;
    expect([iso(fall.openMs), iso(fall.closeMs)]).toEqual(['2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z']);
    const london = sessionsBetween('always', LONDON, '2026-03-29', '2026-03-29').concat(sessionsBetween('always', LONDON, '2026-10-25', '2026-10-25'));
    expect(london.map((s) => (s.closeMs - s.openMs) / HOUR)).toEqual([23, 25]);
    const tokyo = sessionsBetween('always', 'Asia/Tokyo', '2026-01-01', '2026-12-31');
    expect(tokyo).toHaveLength(365);
    expect(tokyo.every((s) => s.closeMs - s.openMs === 24 * HOUR && !s.earlyClose && s.known)).toBe(true);
    expect(iso(tokyo[0]!.openMs)).toBe('2025-12-31T15:00:00.000Z');
  });

  it('is always open; the next open and next close are the end of the local day', () => {
    const now = utc('2026-03-08T12:00:00Z');
    expect(sessionAt('always', NY, now)?.date).toBe('2026-03-08');
    expect(iso(nextOpen('always', NY, now))).toBe('2026-03-09T04:00:00.000Z');
    expect(iso(nextClose('always', NY, now))).toBe('2026-03-09T04:00:00.000Z');
    expect(iso(lastClose('always', NY, now))).toBe('2026-03-08T05:00:00.000Z');
    // At local midnight the new day's session is open, and the old one has just closed.
    const midnight = utc('2026-03-09T04:00:00Z');
    expect(sessionAt('always', NY, midnight)?.date).toBe('2026-03-09');
    expect(lastClose('always', NY, midnight)).toBe(midnight);
    expect(iso(nextClose('always', NY, midnight))).toBe('2026-03-10T04:00:00.000Z');
    expect(clockAt('always', LONDON, now, null)).toMatchObject({ isOpen: true, calendarOpen: true, known: true });
  });
});

describe('nyse clock', () => {
  const at = (now: string, kind: CalendarKind = 'nyse', tz = NY) => {
    const t = utc(now);
    return { session: sessionAt(kind, tz, t)?.date, nextOpen: iso(nextOpen(kind, tz, t)), nextClose: iso(nextClose(kind, tz, t)), lastClose: iso(lastClose(kind, tz, t)) };
  };

  it('on a weekend, across the spring DST change', () => {
    expect(at('2026-03-07T12:00:00Z')).toEqual({
      session: undefined,
      nextOpen: '2026-03-09T13:30:00.000Z', // Monday 09:30 EDT
      nextClose: '2026-03-09T20:00:00.000Z',
      lastClose: '2026-03-06T21:00:00.000Z', // Friday 16:00 EST
    });
  });

  it('on holidays: Thanksgiving, the day of mourning, Good Friday long weekend', () => {
    expect(at('2026-11-26T15:00:00Z')).toEqual({
      session: undefined,
      nextOpen: '2026-11-27T14:30:00.000Z',
      nextClose: '2026-11-27T18:00:00.000Z', // early close
      lastClose: '2026-11-25T21:00:00.000Z',
    });
    expect(at('2025-01-08T21:00:00Z')).toMatchObject({ session: undefined, nextOpen: '2025-01-10T14:30:00.000Z', lastClose: '2025-01-08T21:00:00.000Z' });
    expect(at('2025-01-09T15:00:00Z')).toMatchObject({ session: undefined, nextOpen: '2025-01-10T14:30:00.000Z' });
    expect(at('2026-04-02T20:30:00Z')).toMatchObject({ session: undefined, nextOpen: '2026-04-06T13:30:00.000Z', lastClose: '2026-04-02T20:00:00.000Z' });
  });

  it('the open is inclusive and the close exclusive', () => {
    expect(at('2026-03-09T13:29:59.999Z')).toEqual({
      session: undefined,
      nextOpen: '2026-03-09T13:30:00.000Z',
      nextClose: '2026-03-09T20:00:00.000Z',
      lastClose: '2026-03-06T21:00:00.000Z',
    });
    expect(at('2026-03-09T13:30:00.000Z')).toEqual({
      session: '2026-03-09',
      nextOpen: '2026-03-10T13:30:00.000Z', // the next session's open
      nextClose: '2026-03-09T20:00:00.000Z',
      lastClose: '2026-03-06T21:00:00.000Z',
    });
    expect(at('2026-03-09T19:59:59.999Z')).toMatchObject({ session: '2026-03-09', nextClose: '2026-03-09T20:00:00.000Z' });
    expect(at('2026-03-09T20:00:00.000Z')).toEqual({
      session: undefined,
      nextOpen: '2026-03-10T13:30:00.000Z',
      nextClose: '2026-03-10T20:00:00.000Z',
      lastClose: '2026-03-09T20:00:00.000Z', // at the close instant, that close counts
    });
    // An early close: closed from 13:00.
    expect(at('2026-11-27T17:59:59.999Z').session).toBe('2026-11-27');
    expect(at('2026-11-27T18:00:00.000Z')).toMatchObject({ session: undefined, lastClose: '2026-11-27T18:00:00.000Z', nextOpen: '2026-11-30T14:30:00.000Z' });
  });

  it('across the autumn DST change and the end of the table', () => {
    expect(at('2026-10-30T20:00:00Z')).toMatchObject({ session: undefined, nextOpen: '2026-11-02T14:30:00.000Z', nextClose: '2026-11-02T21:00:00.000Z' });
    expect(at('2027-12-31T22:00:00Z')).toMatchObject({ session: undefined, nextOpen: '2028-01-03T14:30:00.000Z', lastClose: '2027-12-31T21:00:00.000Z' });
    expect(clockAt('nyse', NY, utc('2027-12-31T22:00:00Z'), null).known).toBe(false);
    // Open on a known day, but the next open (2028-01-03) is a guess.
    expect(clockAt('nyse', NY, utc('2027-12-31T15:00:00Z'), null)).toMatchObject({ isOpen: true, known: false });
    expect(clockAt('nyse', NY, utc('2027-12-30T15:00:00Z'), null)).toMatchObject({ isOpen: true, known: true });
  });

  it('forced open or closed overrides the calendar; the next open and close stay the calendar’s', () => {
    const weekend = utc('2026-03-07T12:00:00Z');
    expect(clockAt('nyse', NY, weekend, null)).toEqual({
      isOpen: false,
      calendarOpen: false,
      forced: null,
      nextOpenMs: utc('2026-03-09T13:30:00Z'),
      nextCloseMs: utc('2026-03-09T20:00:00Z'),
      known: true,
    });
    expect(clockAt('nyse', NY, weekend, 'open')).toMatchObject({ isOpen: true, calendarOpen: false, forced: 'open', nextCloseMs: utc('2026-03-09T20:00:00Z') });
    const midSession = utc('2026-03-10T15:00:00Z');
    expect(clockAt('nyse', NY, midSession, 'open')).toMatchObject({ isOpen: true, nextCloseMs: utc('2026-03-10T20:00:00Z') });
    expect(clockAt('nyse', NY, midSession, 'closed')).toMatchObject({
      isOpen: false,
      calendarOpen: true,
      nextOpenMs: utc('2026-03-11T13:30:00Z'),
      nextCloseMs: utc('2026-03-10T20:00:00Z'),
    });
    expect(clockAt('nyse', NY, weekend, 'closed')).toMatchObject({ isOpen: false, nextOpenMs: utc('2026-03-09T13:30:00Z') });
    expect(clockAt('always', NY, weekend, 'closed')).toMatchObject({ isOpen: false, calendarOpen: true, nextOpenMs: utc('2026-03-08T05:00:00Z') });
    expect(clockAt('nyse', NY, weekend)).toMatchObject({ isOpen: false });
  });

  it('refuses bad arguments with RangeError', () => {
    expect(() => sessionsBetween('nyse', NY, '2026-01-01', '2027-01-01')).not.toThrow(); // 366 days
    expect(() => sessionsBetween('nyse', NY, '2026-01-01', '2027-01-02')).toThrow(RangeError); // 367 days
    expect(CALENDAR_DAYS_MAX).toBe(366);
    expect(() => sessionsBetween('nyse', NY, '2026-01-02', '2026-01-01')).toThrow(RangeError);
    expect(() => sessionsBetween('nyse', NY, '2026-02-30', '2026-03-01')).toThrow(RangeError);
    expect(() => sessionsBetween('weekly' as CalendarKind, NY, '2026-01-01', '2026-01-02')).toThrow(RangeError);
    expect(() => sessionsBetween('always', 'Nope/Nope', '2026-01-01', '2026-01-02')).toThrow(RangeError);
    expect(() => sessionAt('always', 'Nope/Nope', 0)).toThrow(RangeError);
    expect(() => nextOpen('nyse', NY, Number.NaN)).toThrow(RangeError);
    expect(() => clockAt('nyse', NY, 0, 'maybe' as 'open')).toThrow(RangeError);
    expect(sessionsBetween('nyse', NY, '2026-01-03', '2026-01-03')).toEqual([]);
  });
});

describe('properties', () => {
  const ZONES = [NY, LONDON, 'UTC', 'Asia/Tokyo', 'Asia/Kolkata', 'Australia/Lord_Howe', 'America/Santiago', 'Pacific/Chatham', 'America/Sao_Paulo'];
  const kind = fc.constantFrom<CalendarKind>('always', 'nyse');
  const zone = fc.constantFrom(...ZONES);
  const instant = fc.integer({ min: utc('2024-06-01T00:00:00Z'), max: utc('2028-06-01T00:00:00Z') });
  const near = (k: CalendarKind, tz: string, now: number): Session[] => {
    const day = localDateAt(now, calendarTimeZone(k, tz));
    return sessionsBetween(k, tz, addDays(day, -1), addDays(day, 1));
  };

  it('nextOpen and nextClose are after now; sessionAt is defined iff a session contains now; lastClose is at or before now', () => {
    fc.assert(
      fc.property(kind, zone, instant, (k, tz, now) => {
        const s = sessionAt(k, tz, now);
        const open = nextOpen(k, tz, now);
        const close = nextClose(k, tz, now);
        const last = lastClose(k, tz, now);
        expect(open).toBeGreaterThan(now);
        expect(close).toBeGreaterThan(now);
        expect(last).toBeDefined();
        expect(last!).toBeLessThanOrEqual(now);
        const containing = near(k, tz, now).filter((x) => x.openMs <= now && now < x.closeMs);
        expect(s === undefined ? [] : [s]).toEqual(containing);
        if (s) {
          expect(close).toBe(s.closeMs);
          expect(open).toBeGreaterThanOrEqual(s.closeMs);
        } else {
          expect(open).toBeLessThan(close); // the next session opens, then closes
          expect(sessionAt(k, tz, open)?.openMs).toBe(open);
          expect(sessionAt(k, tz, close - 1)?.closeMs).toBe(close);
          expect(nextOpen(k, tz, last!)).toBe(open); // nothing opened between the last close and now
        }
        expect(clockAt(k, tz, now, null).isOpen).toBe(s !== undefined);
        expect(clockAt(k, tz, now, 'open')).toMatchObject({ isOpen: true, nextOpenMs: open, nextCloseMs: close });
        expect(clockAt(k, tz, now, 'closed')).toMatchObject({ isOpen: false, nextOpenMs: open, nextCloseMs: close });
      }),
      { numRuns: 300 },
    );
  });

  it('sessions are non-empty, disjoint, increasing, dated by their local open; always-sessions tile the days', () => {
    const start = fc.integer({ min: 0, max: 4 * 365 }).map((n) => addDays('2024-06-01', n));
    const length = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(CALENDAR_DAYS_MAX));
    fc.assert(
      fc.property(kind, zone, start, length, (k, tz, first, days) => {
        const last = addDays(first, days - 1);
        const sessions = sessionsBetween(k, tz, first, last);
        const zoneOf = calendarTimeZone(k, tz);
        sessions.forEach((s, i) => {
          expect(s.openMs).toBeLessThan(s.closeMs);
          expect(s.date >= first && s.date <= last).toBe(true);
          expect(localDateAt(s.openMs, zoneOf)).toBe(s.date);
          const next = sessions[i + 1];
          if (next) {
            expect(next.date > s.date).toBe(true);
            expect(next.openMs).toBeGreaterThanOrEqual(s.closeMs);
            if (k === 'always') expect(next.openMs).toBe(s.closeMs);
          }
        });
        if (k === 'always') expect(sessions).toHaveLength(days);
      }),
      { numRuns: 60 },
    );
  });

  it('zonedTimeToEpochMs gives the local wall time asked for, or the time just past a skipped gap', () => {
    const date = fc.integer({ min: 0, max: 4 * 365 }).map((n) => addDays('2024-06-01', n));
    const time = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
    fc.assert(
      fc.property(date, time, zone, (d, t, tz) => {
        const ms = zonedTimeToEpochMs(d, t, tz);
        const askedMs = Date.parse(`${d}T${t}Z`);
        const skipped = wallOf(ms, tz) - askedMs;
        expect(skipped === 0 || (skipped > 0 && skipped <= HOUR)).toBe(true);
        if (skipped === 0) {
          // The first occurrence: half an hour and an hour earlier, the wall clock read an earlier time.
          expect(wallOf(ms - HOUR / 2, tz)).toBeLessThan(askedMs);
          expect(wallOf(ms - HOUR, tz)).toBeLessThan(askedMs);
        } else {
          // Inside a gap: a minute earlier the clock read a time before the one asked (the gap's start).
          expect(wallOf(ms - skipped - 60_000, tz)).toBeLessThan(askedMs);
        }
      }),
      { numRuns: 300 },
    );
  });
});
