/**
 * The market clock over HTTP: GET /clock, GET /calendar, and the admin's POST /admin/market
 * (force the market open or closed now, or back to the calendar).
 */
import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { addDays, CALENDAR_DAYS_MAX, localDateAt, parseIsoDate } from '../../core/calendar.js';
import { ValidationError } from '../../core/errors.js';
import { iso } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import type { ClockView } from './clock.service.js';

const ClockBody = Type.Object({
  timestamp: Type.String(),
  is_open: Type.Boolean(),
  next_open: Type.String(),
  next_close: Type.String(),
  calendar: Type.String({ enum: ['always', 'nyse'] }),
  forced: Type.Union([Type.Null(), Type.String({ enum: ['open', 'closed'] })]),
});

const DateQuery = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'a date as YYYY-MM-DD' });

/** Calendar days listed when the request gives no end. */
export const CALENDAR_DAYS_DEFAULT = 30;

function clockBody(v: ClockView) {
  return {
    timestamp: iso(new Date(v.nowMs)),
    is_open: v.isOpen,
    next_open: iso(new Date(v.nextOpenMs)),
    next_close: iso(new Date(v.nextCloseMs)),
    calendar: v.calendar,
    forced: v.forced,
  };
}

function date(raw: string, field: string): string {
  if (!parseIsoDate(raw)) throw new ValidationError(`${field} must be a real date as YYYY-MM-DD (got ${raw})`, { field });
  return raw;
}

export function registerClockRoutes(server: Server, ctx: AppContext): void {
  server.get(
    '/clock',
    { schema: { tags: ['market'], summary: 'Is the market open, and when does it next open and close', response: { 200: ClockBody } } },
    async () => clockBody(ctx.clock.view()),
  );

  server.get(
    '/calendar',
    {
      schema: {
        tags: ['market'],
        summary: `Trading sessions from start to end (at most ${CALENDAR_DAYS_MAX} days; default: ${CALENDAR_DAYS_DEFAULT} days from today)`,
        querystring: Type.Object({ start: Type.Optional(DateQuery), end: Type.Optional(DateQuery) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            sessions: Type.Array(Type.Object({ date: Type.String(), open: Type.String(), close: Type.String(), early_close: Type.Boolean() })),
          }),
        },
      },
    },
    async (request) => {
      const today = localDateAt(Date.now(), ctx.config.marketCalendar === 'nyse' ? 'America/New_York' : ctx.config.marketTimeZone);
      const start = request.query.start === undefined ? today : date(request.query.start, 'start');
      const end = request.query.end === undefined ? addDays(start, CALENDAR_DAYS_DEFAULT - 1) : date(request.query.end, 'end');
      if (end < start) throw new ValidationError('end must not be before start', { field: 'end' });
      if (addDays(start, CALENDAR_DAYS_MAX - 1) < end) {
        throw new ValidationError(`a calendar request covers at most ${CALENDAR_DAYS_MAX} days`, { field: 'end' });
      }
      return {
        sessions: ctx.clock.sessions(start, end).map((s) => ({
          date: s.date,
          open: iso(new Date(s.openMs)),
          close: iso(new Date(s.closeMs)),
          early_close: s.earlyClose,
        })),
      };
    },
  );

  server.post(
    '/admin/market',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['market'],
        summary: 'Force the market open or closed now (closed: cls orders execute, then day orders expire), or back to the calendar (auto)',
        body: Type.Object({ state: Type.String({ enum: ['open', 'closed', 'auto'] }) }, { additionalProperties: false }),
        response: { 200: ClockBody },
      },
    },
    async (request) => clockBody(await ctx.clock.force(request.body.state as 'open' | 'closed' | 'auto')),
  );
}
