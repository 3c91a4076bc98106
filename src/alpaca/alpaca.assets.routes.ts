/**
 * Alpaca's instrument routes: the assets, the market clock and the calendar, answered from the
 * native services (the listed instruments, `ctx.clock` with the admin's override, the calendar
 * of core/calendar.ts). Nothing here belongs to an account, so any user's key reads them (and
 * the admin token, which passes every route).
 *
 * Times are written as Alpaca writes them: the clock in the market's local time with its UTC
 * offset (New York for the `nyse` calendar, MARKET_TIMEZONE for `always`), the calendar as
 * local dates and HH:MM times of that zone.
 */
import { Type } from 'typebox';
import type { AppContext } from '../app.js';
import {
  addDays,
  CALENDAR_DAYS_MAX,
  calendarTimeZone,
  ISO_DATE_YEAR_MAX,
  ISO_DATE_YEAR_MIN,
  localDateAt,
  zonedTimestamp,
  type Session,
} from '../core/calendar.js';
import { AppError } from '../core/errors.js';
import { UUID_PATTERN } from '../http/schemas.js';
import type { Server } from '../http/server.js';
import { normalizeTicker, type Instrument } from '../services/market-data/instruments.js';
import { AlpacaError } from './alpaca.errors.js';
import { dateParam } from './alpaca.params.js';
import { assetId } from './alpaca.views.js';

const TAGS = ['alpaca'];
/** Any user's key (the admin token passes too): nothing here belongs to an account. */
const ANY_USER = { auth: 'user' as const };

/**
 * Days a calendar request without a start or an end covers. Alpaca lists every day from 1970
 * to 2029 then; papertrade answers at most CALENDAR_DAYS_MAX days per request, so a missing
 * bound is filled in to make the range that long: before the end, after the start, or around
 * today when both are missing (half a year back, half a year ahead).
 */
export const ALPACA_CALENDAR_DAYS_DEFAULT = CALENDAR_DAYS_MAX;
const CALENDAR_DAYS_BEFORE_TODAY = Math.floor((CALENDAR_DAYS_MAX - 1) / 2);

/**
 * Alpaca's extended-hours session around the NYSE day (04:00–20:00, 17:00 on early-close
 * days), shown as Alpaca shows it. papertrade's orders trade in the regular session only (an
 * extended_hours order is a day limit order of that session), so these are Alpaca's times, not
 * sessions papertrade runs.
 */
const NYSE_SESSION_OPEN = '0400';
const NYSE_SESSION_CLOSE = '2000';
const NYSE_EARLY_SESSION_CLOSE = '1700';

const AssetsQuery = Type.Object(
  {
    status: Type.Optional(Type.String({ enum: ['active', 'inactive'] })),
    asset_class: Type.Optional(Type.String({ enum: ['us_equity', 'crypto', 'us_option'] })),
    exchange: Type.Optional(Type.String({ maxLength: 20, description: 'an exchange such as NASDAQ' })),
    attributes: Type.Optional(Type.String({ maxLength: 400, description: 'comma-separated attributes such as ptp_no_exception,ipo' })),
  },
  { additionalProperties: false },
);

const AssetParams = Type.Object(
  { symbol_or_asset_id: Type.String({ minLength: 1, maxLength: 64, description: 'a symbol such as AAPL (any case), or an asset id' }) },
  { additionalProperties: false },
);

const CalendarDate = Type.String({
  maxLength: 40,
  description: 'a date such as 2026-12-01, or an RFC 3339 timestamp such as 2026-12-01T00:00:00.000Z (its date in the market time zone)',
});

const CalendarQuery = Type.Object(
  {
    start: Type.Optional(CalendarDate),
    end: Type.Optional(CalendarDate),
    date_type: Type.Optional(Type.String({ enum: ['TRADING', 'SETTLEMENT'], description: 'which date start and end select by (default TRADING)' })),
  },
  { additionalProperties: false },
);

/** The only exchange papertrade's instruments are shown on (its market has one venue). */
export const ALPACA_EXCHANGE = 'NASDAQ';

/** An instrument as Alpaca's asset: a fractionable US equity, cash only (no margin, no shorting). */
export function alpacaAsset(i: Instrument) {
  return {
    id: assetId(i.ticker),
    class: 'us_equity' as const,
    exchange: ALPACA_EXCHANGE,
    symbol: i.ticker,
    name: i.name,
    status: 'active' as const,
    tradable: true,
    marginable: false,
    shortable: false,
    easy_to_borrow: false,
    fractionable: true,
    maintenance_margin_requirement: 100,
    margin_requirement_long: '100',
    margin_requirement_short: '100',
    attributes: [] as string[],
  };
}

const uuidRe = new RegExp(UUID_PATTERN);
const FIRST_DATE = `${ISO_DATE_YEAR_MIN}-01-01`;
const LAST_DATE = `${ISO_DATE_YEAR_MAX}-12-31`;

/** A date moved by `days`, kept inside the dates the calendar takes. */
function shifted(date: string, days: number): string {
  if (days < 0 && addDays(FIRST_DATE, -days) > date) return FIRST_DATE;
  if (days > 0 && addDays(LAST_DATE, -days) < date) return LAST_DATE;
  return addDays(date, days);
}

/** The local time of an instant in the zone, as HH:MM (Alpaca's open and close). */
function localTime(ms: number, zone: string): string {
  return zonedTimestamp(ms, zone).slice(11, 16);
}

export function registerAlpacaAssetRoutes(server: Server, ctx: AppContext): void {
  const market = ctx.market;
  const calendar = ctx.config.marketCalendar;
  // The zone the calendar counts its days in: New York for `nyse`, MARKET_TIMEZONE for `always`.
  const zone = calendarTimeZone(calendar, ctx.config.marketTimeZone);

  server.get(
    '/assets',
    { config: ANY_USER, schema: { tags: TAGS, summary: "List assets (Alpaca's GET /v2/assets): every listed instrument", querystring: AssetsQuery } },
    async (request) => {
      const q = request.query;
      // Every papertrade instrument is an active US equity on one exchange, with no attributes:
      // a filter for anything else selects nothing, as Alpaca's would.
      if (q.status === 'inactive') return [];
      if (q.asset_class !== undefined && q.asset_class !== 'us_equity') return [];
      if (q.exchange !== undefined && q.exchange.toUpperCase() !== ALPACA_EXCHANGE) return [];
      if (q.attributes !== undefined && q.attributes.split(',').some((a) => a.trim() !== '')) return [];
      return (await market.listInstruments()).map(alpacaAsset);
    },
  );

  server.get(
    '/assets/:symbol_or_asset_id',
    { config: ANY_USER, schema: { tags: TAGS, summary: 'Get an asset by symbol (any case) or asset id', params: AssetParams } },
    async (request) => {
      const raw = request.params.symbol_or_asset_id;
      const shown = raw.slice(0, 64);
      if (uuidRe.test(raw)) {
        // Asset ids are derived from tickers (alpaca.views.ts), so the list is searched; it holds
        // at most INSTRUMENTS_MAX instruments and the ids are memoized.
        const id = raw.toLowerCase();
        const found = (await market.listInstruments()).find((i) => assetId(i.ticker) === id);
        if (found === undefined) throw new AlpacaError('NOT_FOUND', 'asset not found', { symbol_or_asset_id: shown });
        return alpacaAsset(found);
      }
      try {
        return alpacaAsset(await market.getInstrument(normalizeTicker(raw) ?? raw));
      } catch (err) {
        if (err instanceof AppError && err.code === 'UNKNOWN_TICKER') throw new AlpacaError('NOT_FOUND', 'asset not found', { symbol_or_asset_id: shown }, err);
        throw err;
      }
    },
  );

  server.get(
    '/clock',
    {
      config: ANY_USER,
      schema: { tags: TAGS, summary: "The market clock (Alpaca's GET /v2/clock), with the admin's forced open or closed state; times in the market's UTC offset" },
    },
    async () => {
      const v = ctx.clock.view();
      // is_open is the admin's override when there is one; next_open and next_close are always
      // the calendar's, as on the native GET /clock.
      return {
        timestamp: zonedTimestamp(v.nowMs, zone),
        is_open: v.isOpen,
        next_open: zonedTimestamp(v.nextOpenMs, zone),
        next_close: zonedTimestamp(v.nextCloseMs, zone),
      };
    },
  );

  server.get(
    '/calendar',
    {
      config: ANY_USER,
      schema: {
        tags: TAGS,
        summary: `Trading days from start to end (Alpaca's GET /v2/calendar), at most ${CALENDAR_DAYS_MAX} days; a missing bound makes the range ${ALPACA_CALENDAR_DAYS_DEFAULT} days long`,
        querystring: CalendarQuery,
      },
    },
    async (request) => {
      const q = request.query;
      const given = {
        start: q.start === undefined ? undefined : dateParam(q.start, 'start', zone),
        end: q.end === undefined ? undefined : dateParam(q.end, 'end', zone),
      };
      const span = ALPACA_CALENDAR_DAYS_DEFAULT - 1;
      let start: string;
      let end: string;
      if (given.start !== undefined && given.end !== undefined) {
        start = given.start;
        end = given.end;
      } else if (given.start !== undefined) {
        start = given.start;
        end = shifted(start, span);
      } else if (given.end !== undefined) {
        end = given.end;
        start = shifted(end, -span);
      } else {
        start = shifted(localDateAt(Date.now(), zone), -CALENDAR_DAYS_BEFORE_TODAY);
        end = shifted(start, span);
      }
      if (end < start) throw new AlpacaError('VALIDATION_FAILED', `end (${end}) must not be before start (${start})`, { field: 'end' });
      if (shifted(start, CALENDAR_DAYS_MAX - 1) < end) {
        throw new AlpacaError('VALIDATION_FAILED', `a calendar request covers at most ${CALENDAR_DAYS_MAX} days (${start} to ${end} is more): ask for the range in parts`, { field: 'end' });
      }

      // Settlement is the next trading day (T+1). Sessions a little beyond the range give the
      // settlement dates of its last days and, for date_type SETTLEMENT, the trading days
      // before it that settle inside it; no gap between sessions is longer than two weeks.
      const lookaround = 14;
      const sessions: Session[] = [
        ...(start === FIRST_DATE ? [] : ctx.clock.sessions(shifted(start, -lookaround), addDays(start, -1))),
        ...ctx.clock.sessions(start, end),
        ...(end === LAST_DATE ? [] : ctx.clock.sessions(addDays(end, 1), shifted(end, lookaround))),
      ];
      const days = [];
      for (let i = 0; i < sessions.length - 1; i++) {
        const s = sessions[i]!;
        const settlement = sessions[i + 1]!.date;
        const selected = q.date_type === 'SETTLEMENT' ? settlement : s.date;
        if (selected < start || selected > end) continue;
        days.push({
          date: s.date,
          open: localTime(s.openMs, zone),
          // An `always` session ends at the next local midnight; 23:59 says "end of the day" in
          // the HH:MM form every client parses (24:00 is refused by common parsers).
          close: calendar === 'always' ? '23:59' : localTime(s.closeMs, zone),
          session_open: calendar === 'always' ? '0000' : NYSE_SESSION_OPEN,
          session_close: calendar === 'always' ? '2359' : s.earlyClose ? NYSE_EARLY_SESSION_CLOSE : NYSE_SESSION_CLOSE,
          settlement_date: settlement,
        });
      }
      return days;
    },
  );
}
