/**
 * The market clock over HTTP: GET /clock and GET /calendar with both calendars, the NYSE table
 * as a client sees it (holidays and early closes at their published dates), and the admin's
 * POST /admin/market as every process reads it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clockAt } from '../src/core/calendar.js';
import { MarketClock } from '../src/services/clock/clock.service.js';
import { ADMIN_TOKEN, createTestContext, eventually, startTestServer, type TestContext, type TestServer } from './harness.js';

interface Session {
  date: string;
  open: string;
  close: string;
  early_close: boolean;
}

describe('MARKET_CALENDAR=nyse', () => {
  let ctx: TestContext;
  let api: TestServer;
  let token: string;
  beforeAll(async () => {
    ctx = await createTestContext({ MARKET_CALENDAR: 'nyse' });
    api = await startTestServer(ctx);
    const user = await api.request('POST', '/users', { token: ADMIN_TOKEN, body: { name: 'Clock', email: 'clock@example.com' } });
    token = user.body.api_key;
  });
  afterAll(async () => {
    await api?.server.close();
    await ctx?.close();
  });

  const calendar = async (query: string) => {
    const res = await api.request('GET', `/calendar?${query}`, { token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.sessions as Session[];
  };

  it('lists the sessions of Thanksgiving and Christmas 2026 as NYSE published them: holidays out, 13:00 closes', async () => {
    const sessions = await calendar('start=2026-11-23&end=2026-12-31');
    const dates = sessions.map((s) => s.date);
    // Thanksgiving (Thu 26 Nov) and Christmas (Fri 25 Dec) are holidays; weekends never trade.
    expect(dates.slice(0, 4)).toEqual(['2026-11-23', '2026-11-24', '2026-11-25', '2026-11-27']);
    expect(dates).not.toContain('2026-12-25');
    expect(dates.filter((d) => [0, 6].includes(new Date(`${d}T12:00:00Z`).getUTCDay()))).toEqual([]);
    expect(dates).toHaveLength(27);
    // A regular winter session: 09:30-16:00 New York = 14:30-21:00 UTC; the early closes at 13:00 = 18:00 UTC.
    expect(sessions[0]).toEqual({ date: '2026-11-23', open: '2026-11-23T14:30:00.000Z', close: '2026-11-23T21:00:00.000Z', early_close: false });
    expect(sessions.filter((s) => s.early_close)).toEqual([
      { date: '2026-11-27', open: '2026-11-27T14:30:00.000Z', close: '2026-11-27T18:00:00.000Z', early_close: true },
      { date: '2026-12-24', open: '2026-12-24T14:30:00.000Z', close: '2026-12-24T18:00:00.000Z', early_close: true },
    ]);
  });

  it('has every 2025-2027 holiday and early close of the published table, in summer time too', async () => {
    const year = async (y: number) => [...(await calendar(`start=${y}-01-01&end=${y}-06-30`)), ...(await calendar(`start=${y}-07-01&end=${y}-12-31`))];
    const holidays: Record<number, string[]> = {
      2025: ['2025-01-01', '2025-01-09', '2025-01-20', '2025-02-17', '2025-04-18', '2025-05-26', '2025-06-19', '2025-07-04', '2025-09-01', '2025-11-27', '2025-12-25'],
      2026: ['2026-01-01', '2026-01-19', '2026-02-16', '2026-04-03', '2026-05-25', '2026-06-19', '2026-07-03', '2026-09-07', '2026-11-26', '2026-12-25'],
      2027: ['2027-01-01', '2027-01-18', '2027-02-15', '2027-03-26', '2027-05-31', '2027-06-18', '2027-07-05', '2027-09-06', '2027-11-25', '2027-12-24'],
    };
    const earlyCloses: Record<number, string[]> = {
      2025: ['2025-07-03', '2025-11-28', '2025-12-24'],
      2026: ['2026-11-27', '2026-12-24'],
      2027: ['2027-11-26'],
    };
    for (const y of [2025, 2026, 2027]) {
      const sessions = await year(y);
      const dates = new Set(sessions.map((s) => s.date));
      for (const h of holidays[y]!) expect(dates.has(h), `${h} is a holiday`).toBe(false);
      expect(sessions.filter((s) => s.early_close).map((s) => s.date)).toEqual(earlyCloses[y]);
      expect(sessions).toHaveLength({ 2025: 250, 2026: 251, 2027: 251 }[y]!);
    }
    // In summer New York is UTC-4: the July 3, 2025 early close is at 17:00 UTC.
    const july = await calendar('start=2025-07-03&end=2025-07-03');
    expect(july).toEqual([{ date: '2025-07-03', open: '2025-07-03T13:30:00.000Z', close: '2025-07-03T17:00:00.000Z', early_close: true }]);
  });

  it('answers the clock with the calendar name and the next open and close, in order', async () => {
    const res = await api.request('GET', '/clock', { token });
    expect(res.status).toBe(200);
    const c = res.body;
    expect(c).toMatchObject({ calendar: 'nyse', forced: null });
    const now = Date.parse(c.timestamp);
    const [open, close] = [Date.parse(c.next_open), Date.parse(c.next_close)];
    expect(open).toBeGreaterThan(now);
    expect(close).toBeGreaterThan(now);
    // Open now: the close comes first; closed: the open does.
    expect(c.is_open ? close < open : open < close).toBe(true);
  });

  it('refuses bad calendar queries in words: not a date, end before start, more than 366 days', async () => {
    const cases: [string, string][] = [
      ['start=2026-13-01', 'start must be a real date as YYYY-MM-DD (got 2026-13-01)'],
      ['start=yesterday', 'querystring.start must be a date as YYYY-MM-DD'],
      ['start=2026-03-10&end=2026-03-09', 'end must not be before start'],
      ['start=2026-01-01&end=2027-01-02', 'a calendar request covers at most 366 days'],
      ['from=2026-01-01', 'querystring: unknown field from (allowed: start, end)'],
    ];
    for (const [query, message] of cases) {
      const res = await api.request('GET', `/calendar?${query}`, { token });
      expect([res.status, res.body.error.message], query).toEqual([400, message]);
    }
    // A leap year's 366 days are allowed.
    expect(await calendar('start=2028-01-01&end=2028-12-31')).not.toHaveLength(0);
  });
});

describe('MARKET_CALENDAR=always (the default), and the admin override', () => {
  let ctx: TestContext;
  let api: TestServer;
  /** The clock of another process on the same database (an engine, another api). */
  let other: MarketClock;
  beforeAll(async () => {
    ctx = await createTestContext({ MARKET_TIMEZONE: 'Europe/London' });
    api = await startTestServer(ctx);
    other = new MarketClock(ctx.db, { calendar: 'always', timeZone: 'Europe/London', refreshMs: 50 });
    await other.start();
  });
  afterAll(async () => {
    await api?.request('POST', '/admin/market', { token: ADMIN_TOKEN, body: { state: 'auto' } });
    other?.stop();
    await api?.server.close();
    await ctx?.close();
  });

  it('is open every day, one session per local day in MARKET_TIMEZONE', async () => {
    const clock = (await api.request('GET', '/clock')).body;
    expect(clock).toMatchObject({ is_open: true, calendar: 'always', forced: null });
    const sessions = (await api.request('GET', '/calendar?start=2026-03-28&end=2026-03-30')).body.sessions as Session[];
    // London's clocks go forward on 29 March 2026: that session is 23 hours long.
    expect(sessions).toEqual([
      { date: '2026-03-28', open: '2026-03-28T00:00:00.000Z', close: '2026-03-29T00:00:00.000Z', early_close: false },
      { date: '2026-03-29', open: '2026-03-29T00:00:00.000Z', close: '2026-03-29T23:00:00.000Z', early_close: false },
      { date: '2026-03-30', open: '2026-03-29T23:00:00.000Z', close: '2026-03-30T23:00:00.000Z', early_close: false },
    ]);
    const defaulted = (await api.request('GET', '/calendar')).body.sessions as Session[];
    expect(defaulted).toHaveLength(30);
  });

  it('closes and opens on the admin override, for every process, and goes back to the calendar on auto', async () => {
    const closed = await api.request('POST', '/admin/market', { token: ADMIN_TOKEN, body: { state: 'closed' } });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ is_open: false, forced: 'closed', calendar: 'always' });
    // The other process reads the override within its refresh period.
    await eventually(async () => (other.view().forced === 'closed' ? true : undefined));
    expect(other.isOpen()).toBe(false);

    const opened = await api.request('POST', '/admin/market', { token: ADMIN_TOKEN, body: { state: 'open' } });
    expect(opened.body).toMatchObject({ is_open: true, forced: 'open' });
    const auto = await api.request('POST', '/admin/market', { token: ADMIN_TOKEN, body: { state: 'auto' } });
    expect(auto.body).toMatchObject({ is_open: true, forced: null });
    await eventually(async () => (other.view().forced === null ? true : undefined));
    expect(other.isOpen()).toBe(true);
  });
});

describe('MarketClock.isOpen', () => {
  it('answers what the calendar says at every moment, also from its memo of the current stretch', () => {
    // Never started: no override, and the database is not read.
    const clocks = (['nyse', 'always'] as const).map((calendar) => ({
      calendar,
      clock: new MarketClock(undefined as never, { calendar, timeZone: 'America/New_York' }),
    }));
    // Every 7 minutes over 2026-12-22 .. 2026-12-29 (an early close on the 24th, Christmas on the
    // 25th, a weekend), in time order and then in random order (the memo must not go stale when
    // asked about an earlier moment).
    const start = Date.parse('2026-12-22T00:00:00Z');
    const moments = Array.from({ length: (7 * 24 * 60) / 7 }, (_, i) => start + i * 7 * 60_000 + (i % 13) * 1_000);
    const shuffled = [...moments].sort((a, b) => ((a * 2654435761) % 1009) - ((b * 2654435761) % 1009));
    for (const { calendar, clock } of clocks) {
      for (const ms of [...moments, ...shuffled]) {
        expect(clock.isOpen(ms), `${calendar} at ${new Date(ms).toISOString()}`).toBe(clockAt(calendar, 'America/New_York', ms).isOpen);
      }
    }
  });
});
