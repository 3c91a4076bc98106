/**
 * The time parameters of Alpaca's routes, read one way everywhere: an RFC 3339 timestamp is
 * its instant; a date alone is the start of that day in the market's time zone (the zone the
 * calendar, activities and daily bars count days in). The SDKs send both: 3.x dates, 4.x full
 * timestamps.
 */
import { localDateAt, parseIsoDate, zonedTimeToEpochMs, ISO_DATE_YEAR_MAX, ISO_DATE_YEAR_MIN } from '../core/calendar.js';
import { AlpacaError } from './alpaca.errors.js';

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** Instants the parameters take: from the second day of 1970 to the start of 9999, so every local date around them is one the calendar takes. */
export const INSTANT_MS_MIN = Date.UTC(1970, 0, 2);
const INSTANT_MS_MAX = Date.UTC(9999, 0, 1);

/** True when `raw` is a date alone (YYYY-MM-DD), not a timestamp. */
export function isDateParam(raw: string): boolean {
  return DATE_RE.test(raw);
}

/**
 * A time parameter as epoch ms: a timestamp's instant (to the millisecond: finer digits are
 * dropped, as the answers show milliseconds), or a date's midnight in `zone`.
 */
export function instantParam(raw: string, field: string, zone: string): number {
  let ms = Number.NaN;
  if (DATE_RE.test(raw)) {
    if (parseIsoDate(raw)) ms = zonedTimeToEpochMs(raw, '00:00', zone);
  } else if (RFC3339_RE.test(raw)) {
    ms = Date.parse(raw);
  }
  if (!Number.isFinite(ms) || ms < INSTANT_MS_MIN || ms >= INSTANT_MS_MAX) {
    throw new AlpacaError(
      'VALIDATION_FAILED',
      `${field} must be an RFC 3339 timestamp such as 2026-12-01T14:30:00Z, or a date such as 2026-12-01, from 1970-01-02 to 9998-12-31 (got ${JSON.stringify(raw.slice(0, 40))})`,
      { field },
    );
  }
  return ms;
}

/** A date parameter as a date of `zone`: a date as given, or the date at a timestamp's instant there. */
export function dateParam(raw: string, field: string, zone: string): string {
  let date: string | undefined;
  if (DATE_RE.test(raw)) {
    date = raw;
  } else if (RFC3339_RE.test(raw)) {
    const ms = Date.parse(raw);
    if (Number.isFinite(ms)) date = localDateAt(ms, zone);
  }
  if (date === undefined || !parseIsoDate(date)) {
    throw new AlpacaError(
      'VALIDATION_FAILED',
      `${field} must be a real date such as 2026-12-01 or an RFC 3339 timestamp such as 2026-12-01T00:00:00Z, in the years ${ISO_DATE_YEAR_MIN} to ${ISO_DATE_YEAR_MAX} (got ${JSON.stringify(raw.slice(0, 40))})`,
      { field },
    );
  }
  return date;
}
