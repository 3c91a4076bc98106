/**
 * Alpaca's account routes, translated to the native services: the account (GET /v2/account)
 * from the account summary, the activities from the fills and the cash ledger, the portfolio
 * history from the history service, and the account configurations, which are papertrade's
 * fixed settings (a cash account: no margin, no shorting, no options). Nothing here computes
 * what a native service already knows; it renders it in Alpaca's shapes.
 */
import { createHash } from 'node:crypto';
import { Type } from 'typebox';
import type { AppContext } from '../app.js';
import { addDays, calendarTimeZone, localDateAt, parseIsoDate, zonedTimeToEpochMs } from '../core/calendar.js';
import { divRound, formatCash, formatPrice, formatQty, priceFromDb, qtyFromDb, type Cash } from '../core/money.js';
import type { LedgerKind } from '../infra/schema.js';
import type { Server } from '../http/server.js';
import * as accounts from '../services/accounts/accounts.service.js';
import * as history from '../services/history/history.service.js';
import { listFillActivities, type FillActivityRow } from '../services/orders/orders.repository.js';
import { getUser } from '../services/users/users.service.js';
import { AlpacaError } from './alpaca.errors.js';
import { instantParam, isDateParam } from './alpaca.params.js';
import { alpacaUserId } from './alpaca.routes.js';
import { jsonText, num } from './alpaca.views.js';

// ---------------------------------------------------------------------------------------------
// The account
// ---------------------------------------------------------------------------------------------

/**
 * A stable account number derived from the user id: 'PT' and the first 10 hexadecimal digits
 * of its SHA-256, upper case (Alpaca's paper accounts are 'PA' and 10 characters). A hash, not
 * the id's own first digits: a UUIDv7 begins with its creation time, which users created in the
 * same instant (a class's members) share.
 */
export function accountNumber(userId: string): string {
  return `PT${createHash('sha256').update(userId).digest('hex').slice(0, 10).toUpperCase()}`;
}

/** The market's time zone: the one its days (an activity's date, balance_asof) are counted in. */
function marketTimeZone(ctx: AppContext): string {
  return calendarTimeZone(ctx.config.marketCalendar, ctx.config.marketTimeZone);
}

// ---------------------------------------------------------------------------------------------
// Activities
// ---------------------------------------------------------------------------------------------

/** The activity types Alpaca's Trading API names (its OpenAPI document 2.0.1, ActivityType). */
const ALPACA_ACTIVITY_TYPES = [
  'FILL', 'TRANS', 'MISC', 'ACATC', 'ACATS', 'CFEE', 'CGD', 'CSD', 'CSW', 'DIV', 'DIVCGL', 'DIVCGS', 'DIVFEE', 'DIVFT',
  'DIVNRA', 'DIVROC', 'DIVTW', 'DIVTXEX', 'FEE', 'INT', 'INTNRA', 'INTTW', 'JNL', 'JNLC', 'JNLS', 'MA', 'NC', 'OPASN',
  'OPCA', 'OPCSH', 'OPEXC', 'OPEXP', 'OPTRD', 'PTC', 'PTR', 'REORG', 'SPIN', 'SPLIT', 'FOPT',
] as const;
const KNOWN_TYPES: ReadonlySet<string> = new Set(ALPACA_ACTIVITY_TYPES);

/**
 * The activities papertrade has, each an Alpaca type: FILL (a fill), CSD (the initial funding
 * and every deposit), CSW (a withdrawal), FEE (a class's commission) and MISC (an account
 * reset, which no other Alpaca type describes). A buy's or sell's ledger row is no activity:
 * its FILL is.
 */
type ActivityType = 'FILL' | 'CSD' | 'CSW' | 'FEE' | 'MISC';
const PAPERTRADE_TYPES: readonly ActivityType[] = ['FILL', 'CSD', 'CSW', 'FEE', 'MISC'];
const NON_TRADE_TYPES: readonly ActivityType[] = ['CSD', 'CSW', 'FEE', 'MISC'];
const LEDGER_KINDS: Record<Exclude<ActivityType, 'FILL'>, readonly LedgerKind[]> = {
  CSD: ['initial', 'deposit'],
  CSW: ['withdrawal'],
  FEE: ['commission'],
  MISC: ['reset'],
};
const TYPE_OF_KIND: Partial<Record<LedgerKind, ActivityType>> = {
  initial: 'CSD',
  deposit: 'CSD',
  withdrawal: 'CSW',
  commission: 'FEE',
  reset: 'MISC',
};

/**
 * The papertrade types a filter name selects. Alpaca's filter-only names group others: TRANS is
 * its cash transactions, CSD and CSW; MISC is "all types except those in TRANS, DIV or FILL",
 * which here are FEE and MISC (a reset). Any other type Alpaca names selects nothing: papertrade
 * has no dividends, journals, transfers or options, so such a filter is an empty list, as it
 * would be for an Alpaca account that never had one. A name Alpaca does not know is refused.
 */
function typesOf(name: string): readonly ActivityType[] {
  const upper = name.trim().toUpperCase();
  if (upper === 'TRANS') return ['CSD', 'CSW'];
  if (upper === 'MISC') return ['FEE', 'MISC'];
  if ((PAPERTRADE_TYPES as readonly string[]).includes(upper)) return [upper as ActivityType];
  if (KNOWN_TYPES.has(upper)) return [];
  throw new AlpacaError(
    'VALIDATION_FAILED',
    `invalid activity type: ${name} (papertrade's activities are ${PAPERTRADE_TYPES.join(', ')}; TRANS selects CSD and CSW, MISC selects FEE and MISC; ` +
      "Alpaca's other types are accepted and never occur)",
    { field: 'activity_types' },
  );
}

/** Activity types one activity_types filter names at most. */
const ACTIVITY_TYPES_NAMED_MAX = ALPACA_ACTIVITY_TYPES.length;
/** Alpaca's page size: 100 by default and at most. */
export const ACTIVITIES_PAGE_SIZE_MAX = 100;

const ActivityTimestamp = Type.String({ maxLength: 40, description: 'an RFC 3339 timestamp such as 2026-12-01T14:30:00Z, or a date such as 2026-12-01 (midnight in the market time zone)' });
const ActivityPageQuery = {
  date: Type.Optional(ActivityTimestamp),
  after: Type.Optional(ActivityTimestamp),
  until: Type.Optional(ActivityTimestamp),
  direction: Type.Optional(Type.String({ maxLength: 10, description: 'asc or desc (default desc)' })),
  page_size: Type.Optional(Type.String({ maxLength: 10, description: `a whole number from 1 to ${ACTIVITIES_PAGE_SIZE_MAX} (default ${ACTIVITIES_PAGE_SIZE_MAX})` })),
  page_token: Type.Optional(Type.String({ maxLength: 100, description: 'the id of the last activity of the previous page' })),
};
const ActivitiesQuery = Type.Object(
  {
    activity_types: Type.Optional(Type.String({ maxLength: 1_000, description: 'comma-separated activity types such as FILL,CSD' })),
    category: Type.Optional(Type.String({ maxLength: 40, description: 'trade_activity or non_trade_activity' })),
    ...ActivityPageQuery,
  },
  { additionalProperties: false },
);
const ActivityTypeQuery = Type.Object(ActivityPageQuery, { additionalProperties: false });
const ActivityTypeParams = Type.Object({ activity_type: Type.String({ maxLength: 20 }) }, { additionalProperties: false });

/** `<YYYYMMDDHHMMSSmmm>::<order id>:<fill id>` or `...::<ledger id>`, as the repositories build activity ids. */
const ACTIVITY_ID = /^\d{17}::([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:[1-9]\d{0,18})?|[1-9]\d{0,18})$/;

/**
 * A time query parameter (alpaca.params.ts: a timestamp's instant, a date's midnight in the
 * market's time zone), with the date as written (the date part of a timestamp).
 */
function parseTimeParam(raw: string, field: string, timeZone: string): { at: Date; date: string } {
  return { at: new Date(instantParam(raw, field, timeZone)), date: isDateParam(raw) ? raw : raw.slice(0, 10) };
}

interface ActivityQuery {
  date?: string | undefined;
  after?: string | undefined;
  until?: string | undefined;
  direction?: string | undefined;
  page_size?: string | undefined;
  page_token?: string | undefined;
}

/**
 * The page a query asks for. `date` is one market day, [its midnight, the next); `after` and
 * `until` are exclusive bounds, as Alpaca words them ("after this date", "before this date"),
 * and cannot be combined with `date`.
 */
function pageFilter(userId: string, q: ActivityQuery, timeZone: string): accounts.ActivityPageFilter {
  const direction = q.direction ?? 'desc';
  if (direction !== 'asc' && direction !== 'desc') throw new AlpacaError('VALIDATION_FAILED', `direction must be asc or desc, not ${direction}`, { field: 'direction' });
  let limit = ACTIVITIES_PAGE_SIZE_MAX;
  if (q.page_size !== undefined) {
    limit = /^\d{1,3}$/.test(q.page_size) ? Number(q.page_size) : 0;
    if (limit < 1 || limit > ACTIVITIES_PAGE_SIZE_MAX) {
      throw new AlpacaError('VALIDATION_FAILED', `page_size must be a whole number from 1 to ${ACTIVITIES_PAGE_SIZE_MAX}, not ${q.page_size}`, { field: 'page_size' });
    }
  }
  let pageToken: string | undefined;
  if (q.page_token !== undefined) {
    pageToken = q.page_token.toLowerCase();
    if (!ACTIVITY_ID.test(pageToken)) {
      throw new AlpacaError('VALIDATION_FAILED', 'page_token must be the id of an activity, as a previous page returned it (such as 20261201143000123::<id>)', { field: 'page_token' });
    }
  }
  const filter: accounts.ActivityPageFilter = { userId, ascending: direction === 'asc', limit, pageToken };
  if (q.date !== undefined) {
    if (q.after !== undefined || q.until !== undefined) {
      throw new AlpacaError('VALIDATION_FAILED', 'date cannot be combined with after or until: date is one whole day', { field: 'date' });
    }
    const day = parseTimeParam(q.date, 'date', timeZone).date;
    filter.start = { at: new Date(zonedTimeToEpochMs(day, '00:00', timeZone)), inclusive: true };
    filter.end = new Date(zonedTimeToEpochMs(addDays(day, 1), '00:00', timeZone));
  }
  if (q.after !== undefined) filter.start = { at: parseTimeParam(q.after, 'after', timeZone).at, inclusive: false };
  if (q.until !== undefined) filter.end = parseTimeParam(q.until, 'until', timeZone).at;
  return filter;
}

function fillActivity(r: FillActivityRow) {
  const qty = qtyFromDb(r.quantity);
  const cum = qtyFromDb(r.cum_quantity);
  const leaves = qtyFromDb(r.order_quantity) - cum;
  return {
    id: r.activity_id,
    activity_type: 'FILL' as const,
    transaction_time: r.transaction_time,
    // Alpaca's words: a fill that leaves part of the order open is a `partial_fill`.
    type: leaves > 0n ? ('partial_fill' as const) : ('fill' as const),
    price: formatPrice(priceFromDb(r.price)),
    qty: formatQty(qty),
    side: r.side,
    symbol: r.ticker,
    leaves_qty: formatQty(leaves),
    order_id: r.order_id,
    cum_qty: formatQty(cum),
    order_status: leaves > 0n ? ('partially_filled' as const) : ('filled' as const),
  };
}

function descriptionOf(a: accounts.LedgerActivity): string {
  switch (a.kind) {
    case 'initial':
      return 'initial funding of the account';
    case 'deposit':
      return 'cash deposit';
    case 'withdrawal':
      return 'cash withdrawal';
    case 'commission':
      return a.orderId === null ? 'commission' : `commission on order ${a.orderId}`;
    case 'reset':
      return `account reset: cash set to ${formatCash(a.balanceAfter)}`;
    default:
      return a.kind;
  }
}

function ledgerActivity(a: accounts.LedgerActivity, timeZone: string) {
  return {
    id: a.activityId,
    activity_type: TYPE_OF_KIND[a.kind] ?? 'MISC',
    // The day the movement happened in the market's time zone.
    date: localDateAt(a.createdAt.getTime(), timeZone),
    net_amount: formatCash(a.amount),
    description: descriptionOf(a),
    status: 'executed' as const,
    symbol: null,
    qty: null,
    per_share_amount: null,
  };
}

type AlpacaActivity = ReturnType<typeof fillActivity> | ReturnType<typeof ledgerActivity>;

/**
 * One page of the activities of `types`: each source (fills, ledger) read for a page of its own
 * in activity id order, the two merged in that order and cut to the page. Ids of both sources
 * are the same form and compare as plain strings, so a page token continues both exactly.
 */
async function activitiesPage(ctx: AppContext, types: ReadonlySet<ActivityType>, filter: accounts.ActivityPageFilter): Promise<AlpacaActivity[]> {
  const kinds = NON_TRADE_TYPES.filter((t) => types.has(t)).flatMap((t) => LEDGER_KINDS[t as Exclude<ActivityType, 'FILL'>]);
  const timeZone = marketTimeZone(ctx);
  const [fills, ledger] = await Promise.all([
    types.has('FILL') ? listFillActivities(ctx.db, filter) : Promise.resolve([]),
    kinds.length > 0 ? accounts.listLedgerActivities(ctx.db, kinds, filter) : Promise.resolve([]),
  ]);
  const merged: AlpacaActivity[] = [...fills.map(fillActivity), ...ledger.map((a) => ledgerActivity(a, timeZone))];
  const sign = filter.ascending ? 1 : -1;
  merged.sort((a, b) => (a.id < b.id ? -sign : a.id > b.id ? sign : 0));
  return merged.slice(0, filter.limit);
}

// ---------------------------------------------------------------------------------------------
// Portfolio history
// ---------------------------------------------------------------------------------------------

const HistoryQuery = Type.Object(
  {
    period: Type.Optional(Type.String({ maxLength: 10, description: `one of ${history.HISTORY_PERIODS.join(', ')} (default 1M)` })),
    timeframe: Type.Optional(Type.String({ maxLength: 10, description: `one of ${history.HISTORY_TIMEFRAMES.join(', ')}` })),
    date_end: Type.Optional(ActivityTimestamp),
    end: Type.Optional(ActivityTimestamp),
    start: Type.Optional(Type.String({ maxLength: 40 })),
    date_start: Type.Optional(Type.String({ maxLength: 40 })),
    extended_hours: Type.Optional(Type.String({ enum: ['true', 'false'] })),
    intraday_reporting: Type.Optional(Type.String({ enum: ['market_hours', 'extended_hours', 'continuous'] })),
    pnl_reset: Type.Optional(Type.String({ enum: ['no_reset', 'per_day'] })),
    cashflow_types: Type.Optional(Type.String({ maxLength: 1_000 })),
  },
  { additionalProperties: false },
);

const DAY_MS = 86_400_000;
/** profit_loss_pct is a fraction (0.0123 is 1.23 %) with this many decimals, rounded half-up. */
const PL_FRACTION_DECIMALS = 6;
const PL_FRACTION_UNIT = 10n ** BigInt(PL_FRACTION_DECIMALS);

/** Alpaca's default timeframe: 1Min below 7 days of period, 15Min below 30 days, else 1D. */
function defaultTimeframe(period: history.HistoryPeriod): history.HistoryTimeframe {
  if (period === 'all') return '1D';
  const ms = history.PERIOD_MS[period];
  return ms < 7 * DAY_MS ? '1Min' : ms < 30 * DAY_MS ? '15Min' : '1D';
}

function parsePeriod(raw: string | undefined): history.HistoryPeriod {
  if (raw === undefined) return '1M';
  const text = raw.toUpperCase() === 'ALL' ? 'all' : raw.toUpperCase();
  if ((history.HISTORY_PERIODS as readonly string[]).includes(text)) return text as history.HistoryPeriod;
  throw new AlpacaError(
    'VALIDATION_FAILED',
    `period ${raw} is not supported: papertrade keeps history for the periods ${history.HISTORY_PERIODS.join(', ')}`,
    { field: 'period' },
  );
}

function parseTimeframe(raw: string | undefined, period: history.HistoryPeriod): history.HistoryTimeframe {
  if (raw === undefined) return defaultTimeframe(period);
  if ((history.HISTORY_TIMEFRAMES as readonly string[]).includes(raw)) return raw as history.HistoryTimeframe;
  throw new AlpacaError('VALIDATION_FAILED', `timeframe ${raw} is not supported: use one of ${history.HISTORY_TIMEFRAMES.join(', ')}`, { field: 'timeframe' });
}

/**
 * Where the history ends: `date_end` (or `end`, as 4.x of the SDK names it) at most now. A date
 * alone ends with its market day (the last instant before the next midnight in the market's time
 * zone); a timestamp at its instant.
 */
function historyEndMs(q: { date_end?: string | undefined; end?: string | undefined }, timeZone: string, nowMs: number): number {
  if (q.date_end !== undefined && q.end !== undefined) {
    throw new AlpacaError('VALIDATION_FAILED', 'date_end and end name the same thing: give one', { field: 'end' });
  }
  const field = q.date_end !== undefined ? 'date_end' : 'end';
  const raw = q.date_end ?? q.end;
  if (raw === undefined) return nowMs;
  const ms = parseIsoDate(raw) ? zonedTimeToEpochMs(addDays(raw, 1), '00:00', timeZone) - 1 : parseTimeParam(raw, field, timeZone).at.getTime();
  return Math.min(ms, nowMs);
}

/** profit_loss / base as a fraction, half-up to PL_FRACTION_DECIMALS; 0 when nothing was put in. */
function plFraction(profitLoss: Cash, base: Cash): bigint {
  return base > 0n ? divRound(profitLoss * PL_FRACTION_UNIT, base, 'half-up') : 0n;
}

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

/** papertrade's account configuration, fixed: each setting with why it cannot change. */
const CONFIGURATION = {
  dtbp_check: { value: 'both', why: 'papertrade has no day-trading buying power to check (a cash account without margin)' },
  trade_confirm_email: { value: 'none', why: 'papertrade sends no emails' },
  suspend_trade: { value: false, why: 'papertrade has no suspension of trading by the user (a class may have a trading window)' },
  no_shorting: { value: true, why: 'papertrade is a cash account without shorting' },
  fractional_trading: { value: true, why: 'papertrade trades quantities with up to 6 decimals for every account' },
  max_margin_multiplier: { value: '1', why: 'papertrade is a cash account without margin' },
  max_options_trading_level: { value: 0, why: 'papertrade trades no options' },
  pdt_check: { value: 'entry', why: 'papertrade has no pattern day trader rule to check (a cash account without margin)' },
  ptp_no_exception_entry: { value: false, why: 'papertrade lists no publicly traded partnerships' },
} as const;
type ConfigurationKey = keyof typeof CONFIGURATION;

function configuration() {
  return Object.fromEntries(Object.entries(CONFIGURATION).map(([k, v]) => [k, v.value])) as { [K in ConfigurationKey]: (typeof CONFIGURATION)[K]['value'] };
}

// Each setting takes any JSON value here: a value that is not papertrade's is refused below, in
// words that name the setting and why (a schema would only say the type is wrong).
const Setting = Type.Optional(Type.Unknown());
const ConfigurationsBody = Type.Object(
  {
    dtbp_check: Setting,
    trade_confirm_email: Setting,
    suspend_trade: Setting,
    no_shorting: Setting,
    fractional_trading: Setting,
    max_margin_multiplier: Setting,
    max_options_trading_level: Setting,
    pdt_check: Setting,
    ptp_no_exception_entry: Setting,
  },
  { additionalProperties: false },
);

/** True when `value` is papertrade's setting (the multiplier also as the number 1, as some clients send it). */
function isPapertradeSetting(key: ConfigurationKey, value: unknown): boolean {
  const fixed = CONFIGURATION[key].value;
  if (key === 'max_margin_multiplier' && value === 1) return true;
  return value === fixed;
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

export function registerAlpacaAccountRoutes(server: Server, ctx: AppContext): void {
  const user = { auth: 'user' as const };

  server.get('/account', { config: user, schema: { tags: ['alpaca'], summary: "The account (Alpaca's GET /v2/account)" } }, async (request) => {
    const userId = alpacaUserId(request);
    const nowMs = Date.now();
    const [owner, summary, close] = await Promise.all([
      getUser(ctx.db, userId),
      accounts.accountSummary(ctx.db, ctx.quotes, userId),
      history.lastCloseEquity(ctx.db, userId, new Date(nowMs)),
    ]);
    const cash = formatCash(summary.cashBalance);
    const equity = formatCash(summary.equity);
    // A cash account: what can be spent is the cash not held by open orders, whatever the kind
    // of buying power asked about (no margin multiplies it, no day trading adds to it).
    const buyingPower = formatCash(summary.availableCash);
    return {
      id: userId,
      account_number: accountNumber(userId),
      status: 'ACTIVE',
      crypto_status: 'INACTIVE',
      currency: 'USD',
      cash,
      buying_power: buyingPower,
      regt_buying_power: buyingPower,
      daytrading_buying_power: buyingPower,
      effective_buying_power: buyingPower,
      non_marginable_buying_power: buyingPower,
      options_buying_power: '0',
      portfolio_value: equity,
      equity,
      long_market_value: formatCash(summary.positionsValue),
      position_market_value: formatCash(summary.positionsValue),
      short_market_value: '0',
      // The equity at the last session close (or the last reset, which restarts the account)
      // that history recorded; an account history has no close for yet has only its equity now.
      last_equity: close === undefined ? equity : formatCash(close.equity),
      initial_margin: '0',
      maintenance_margin: '0',
      last_maintenance_margin: '0',
      sma: '0',
      multiplier: '1',
      pattern_day_trader: false,
      trading_blocked: false,
      transfers_blocked: false,
      account_blocked: false,
      trade_suspended_by_user: false,
      shorting_enabled: false,
      daytrade_count: 0,
      options_approved_level: 0,
      options_trading_level: 0,
      created_at: owner.createdAt.toISOString(),
      accrued_fees: '0',
      pending_transfer_in: '0',
      pending_transfer_out: '0',
      balance_asof: localDateAt(nowMs, marketTimeZone(ctx)),
      // papertrade's own: the cash open buy orders hold (cash - buying_power).
      reserved_cash: formatCash(summary.reservedCash),
    };
  });

  server.get(
    '/account/activities',
    { config: user, schema: { tags: ['alpaca'], summary: 'Account activities: fills and cash movements, newest first by default', querystring: ActivitiesQuery } },
    async (request) => {
      const userId = alpacaUserId(request);
      const q = request.query;
      let types: ActivityType[] = [...PAPERTRADE_TYPES];
      if (q.activity_types !== undefined && q.category !== undefined) {
        throw new AlpacaError('VALIDATION_FAILED', 'activity_types and category cannot both be given: give one', { field: 'category' });
      }
      if (q.activity_types !== undefined) {
        const names = q.activity_types.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
        if (names.length === 0) throw new AlpacaError('VALIDATION_FAILED', 'activity_types names no type: give comma-separated types such as FILL,CSD', { field: 'activity_types' });
        if (names.length > ACTIVITY_TYPES_NAMED_MAX) throw new AlpacaError('VALIDATION_FAILED', `activity_types names at most ${ACTIVITY_TYPES_NAMED_MAX} types`, { field: 'activity_types' });
        types = names.flatMap(typesOf);
      } else if (q.category !== undefined) {
        if (q.category !== 'trade_activity' && q.category !== 'non_trade_activity') {
          throw new AlpacaError('VALIDATION_FAILED', `category must be trade_activity or non_trade_activity, not ${q.category}`, { field: 'category' });
        }
        types = q.category === 'trade_activity' ? ['FILL'] : [...NON_TRADE_TYPES];
      }
      const filter = pageFilter(userId, q, marketTimeZone(ctx));
      return activitiesPage(ctx, new Set(types), filter);
    },
  );

  server.get(
    '/account/activities/:activity_type',
    { config: user, schema: { tags: ['alpaca'], summary: 'Account activities of one type', params: ActivityTypeParams, querystring: ActivityTypeQuery } },
    async (request) => {
      const userId = alpacaUserId(request);
      const types = typesOf(request.params.activity_type);
      const filter = pageFilter(userId, request.query, marketTimeZone(ctx));
      return activitiesPage(ctx, new Set(types), filter);
    },
  );

  server.get(
    '/account/portfolio/history',
    { config: user, schema: { tags: ['alpaca'], summary: 'Equity and profit/loss over a period (JSON numbers, exact)', querystring: HistoryQuery } },
    async (request, reply) => {
      const userId = alpacaUserId(request);
      const q = request.query;
      for (const field of ['start', 'date_start'] as const) {
        if (q[field] !== undefined) {
          throw new AlpacaError('VALIDATION_FAILED', `${field} is not supported: papertrade's history is a period (period) ending at date_end, or now`, { field });
        }
      }
      if (q.cashflow_types !== undefined) {
        throw new AlpacaError('VALIDATION_FAILED', 'cashflow_types is not supported: papertrade reports deposits and withdrawals as activities (CSD, CSW), not in the history', { field: 'cashflow_types' });
      }
      const period = parsePeriod(q.period);
      const timeframe = parseTimeframe(q.timeframe, period);
      const endMs = historyEndMs(q, marketTimeZone(ctx), Date.now());
      // Accepted and ignored: extended_hours and intraday_reporting (papertrade has one session,
      // and its points are taken whenever the snapshot rounds run), and pnl_reset: profit_loss
      // is always measured from the base (what was put in: initial cash, deposits, withdrawals),
      // which is Alpaca's no_reset; per_day would restart it at each close, which it does not.
      const [points, base] = await Promise.all([history.portfolioHistory(ctx.db, userId, period, timeframe, Date.now(), endMs), history.currentBase(ctx.db, userId)]);
      // Each point's profit/loss is against its own base (equity - profit_loss), as natively.
      const text = jsonText({
        timestamp: points.map((p) => p.timestamp),
        equity: points.map((p) => num(p.equity, 2)),
        profit_loss: points.map((p) => num(p.profitLoss, 2)),
        profit_loss_pct: points.map((p) => num(plFraction(p.profitLoss, p.equity - p.profitLoss), PL_FRACTION_DECIMALS)),
        // The base is what was put in, not a close's equity: so no base_value_asof, which in
        // Alpaca's answer names the close the base is the equity of.
        base_value: num(base ?? 0n, 2),
        timeframe,
      });
      return reply.type('application/json').send(text);
    },
  );

  server.get('/account/configurations', { config: user, schema: { tags: ['alpaca'], summary: "The account's configuration (papertrade's fixed settings)" } }, async (request) => {
    alpacaUserId(request);
    return configuration();
  });

  server.patch(
    '/account/configurations',
    {
      config: user,
      schema: { tags: ['alpaca'], summary: "Change the configuration: papertrade's own values are accepted, any other is refused (422)", body: ConfigurationsBody },
      // No body at all reads as {} (nothing to change), as Alpaca answers it.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request) => {
      alpacaUserId(request);
      const body: Partial<Record<ConfigurationKey, unknown>> = request.body;
      for (const key of Object.keys(CONFIGURATION) as ConfigurationKey[]) {
        if (!(key in body) || isPapertradeSetting(key, body[key])) continue;
        const fixed = CONFIGURATION[key];
        throw new AlpacaError(
          'VALIDATION_FAILED',
          `${key} ${JSON.stringify(body[key])} is not supported: papertrade's ${key} is ${JSON.stringify(fixed.value)} and cannot change (${fixed.why})`,
          { field: key },
        );
      }
      return configuration();
    },
  );
}
