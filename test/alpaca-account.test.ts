/**
 * Alpaca's account and position routes over real HTTP with Alpaca's key headers: the account's
 * amounts after trades, the activities (fills and cash movements, their types and their
 * paging), the portfolio history as exact JSON numbers, the fixed configurations, and positions
 * (read, closed in part or whole, all at once). Each describe trades its own tickers, so the
 * prices one sets never move another's numbers.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, calendarTimeZone, localDateAt } from '../src/core/calendar.js';
import { keyPair } from '../src/services/users/api-keys.js';
import { snapshotRound } from '../src/services/history/history.service.js';
import { assetId } from '../src/alpaca/alpaca.views.js';
import { adminPrice, apiUser, eventually, startTradingStack, type TestServer } from './harness.js';

interface ApiUser {
  id: string;
  api_key: string;
  key_id: string;
  secret_key: string;
}

let stack: Awaited<ReturnType<typeof startTradingStack>>;
let api: TestServer;
let timeZone: string;

const apca = (u: { key_id: string; secret_key: string }) => ({ 'APCA-API-KEY-ID': u.key_id, 'APCA-API-SECRET-KEY': u.secret_key });
const v2 = (u: ApiUser, method: string, path: string, body?: unknown) => api.request(method, `/v2${path}`, { token: null, headers: apca(u), body });
/** The response text as the server wrote it (JSON numbers are checked digit for digit). */
const v2Text = async (u: ApiUser, path: string) => {
  const res = await fetch(`${api.url}/v2${path}`, { headers: apca(u) });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};
const newUser = async (cash = '100000.00') => (await apiUser(api, cash)) as ApiUser;
const today = () => localDateAt(Date.now(), timeZone);

/** A native order (POST /orders with the user's bearer key), waited for until `status`. */
async function nativeOrder(u: ApiUser, body: Record<string, unknown>, status = 'FILLED') {
  const res = await api.request('POST', '/orders', { token: u.api_key, body });
  expect(res.status).toBe(201);
  return eventually(async () => {
    const got = await api.request('GET', `/orders/${res.body.id}`, { token: u.api_key });
    return got.body.status === status ? got.body : undefined;
  });
}
const buy = (u: ApiUser, ticker: string, quantity: string) => nativeOrder(u, { ticker, quantity, type: 'market', side: 'buy' });
const sell = (u: ApiUser, ticker: string, quantity: string) => nativeOrder(u, { ticker, quantity, type: 'market', side: 'sell' });
/** Waits until an order (placed on /v2) is filled, as the native API shows it. */
const filled = (u: ApiUser, id: string) =>
  eventually(async () => {
    const res = await api.request('GET', `/orders/${id}`, { token: u.api_key });
    return res.body.status === 'FILLED' ? res.body : undefined;
  });
const cancel = async (u: ApiUser, id: string) => expect((await api.request('DELETE', `/orders/${id}`, { token: u.api_key })).status).toBe(200);
const forceSnapshot = () => snapshotRound(stack.ctx.db, stack.ctx.quotes, { intervalMs: 60_000, marketOpen: true, force: true });

beforeAll(async () => {
  stack = await startTradingStack();
  api = stack.api;
  timeZone = calendarTimeZone(stack.ctx.config.marketCalendar, stack.ctx.config.marketTimeZone);
  const prices: [string, string][] = [
    ['AAPL', '150.00'],
    ['NVDA', '100.00'],
    ['AMZN', '200.00'],
    ['GOOGL', '175.00'],
    ['META', '580.00'],
    ['TSLA', '250.00'],
    ['V', '300.00'],
    ['MA', '500.00'],
    ['JPM', '200.00'],
  ];
  for (const [ticker, price] of prices) await adminPrice(api, ticker, price);
});

afterAll(async () => {
  await stack?.engine.stop();
  await api?.server.close();
  await stack?.ctx.close();
});

describe('GET /v2/account', () => {
  it('shows the cash, equity and buying power of a cash account, exactly, after a buy and with a hold', async () => {
    const u = await newUser();
    await buy(u, 'AAPL', '2');
    const created = await stack.ctx.db.selectFrom('users').select('created_at').where('id', '=', u.id).executeTakeFirstOrThrow();
    const res = await v2(u, 'GET', '/account');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: u.id,
      account_number: `PT${createHash('sha256').update(u.id).digest('hex').slice(0, 10).toUpperCase()}`,
      status: 'ACTIVE',
      crypto_status: 'INACTIVE',
      currency: 'USD',
      cash: '99700.00',
      buying_power: '99700.00',
      regt_buying_power: '99700.00',
      daytrading_buying_power: '99700.00',
      effective_buying_power: '99700.00',
      non_marginable_buying_power: '99700.00',
      options_buying_power: '0',
      portfolio_value: '100000.00',
      equity: '100000.00',
      long_market_value: '300.00',
      position_market_value: '300.00',
      short_market_value: '0',
      last_equity: '100000.00',
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
      created_at: created.created_at.toISOString(),
      accrued_fees: '0',
      pending_transfer_in: '0',
      pending_transfer_out: '0',
      balance_asof: today(),
      reserved_cash: '0.00',
    });

    // A resting limit buy holds its cost: buying power drops by it, cash and equity do not.
    const limit = await nativeOrder(u, { ticker: 'AAPL', quantity: '1', type: 'limit', limit_price: '100.00', side: 'buy', time_in_force: 'gtc' }, 'OPEN');
    expect(limit.reserved_amount).toBe('100.00');
    const held = await v2(u, 'GET', '/account');
    expect(held.body).toMatchObject({ cash: '99700.00', buying_power: '99600.00', non_marginable_buying_power: '99600.00', equity: '100000.00', reserved_cash: '100.00' });
    await cancel(u, limit.id);
    expect((await v2(u, 'GET', '/account')).body).toMatchObject({ buying_power: '99700.00', reserved_cash: '0.00' });
  });

  it('last_equity is the equity history recorded at the last reset (or close), and the equity moves with the price', async () => {
    const u = await newUser();
    const reset = await api.request('POST', `/users/${u.id}/reset`, { token: u.api_key, body: { cash: '50000.00' } });
    expect(reset.status).toBe(200);
    await buy(u, 'NVDA', '10');
    await adminPrice(api, 'NVDA', '100.25');
    const res = await v2(u, 'GET', '/account');
    expect(res.body).toMatchObject({ cash: '49000.00', long_market_value: '1002.50', equity: '50002.50', portfolio_value: '50002.50', last_equity: '50000.00' });
  });

  it("refuses the admin token and a teacher key: the API acts as one user's account", async () => {
    const admin = await api.request('GET', '/v2/account');
    expect(admin.status).toBe(403);
    expect(admin.body).toMatchObject({ code: 40310000 });
    expect(admin.body.message).toMatch(/use that user's key/);
    const cls = await api.request('POST', '/classes', { body: { name: 'Alpaca refusals', starting_cash: '1000.00' } });
    expect(cls.status).toBe(201);
    const teacher = keyPair(cls.body.teacher_key);
    for (const path of ['/account', '/account/activities', '/positions', '/account/configurations']) {
      const res = await api.request('GET', `/v2${path}`, { token: null, headers: apca({ key_id: teacher.keyId, secret_key: teacher.secretKey }) });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe(40310000);
    }
    const adminPositions = await api.request('DELETE', '/v2/positions');
    expect(adminPositions.status).toBe(403);
    expect(adminPositions.body.code).toBe(40310000);
  });
});

describe('GET /v2/account/activities', () => {
  let u: ApiUser;
  let all: any[]; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON as answered
  let buyOrder: { id: string };
  let sellOrder: { id: string };

  beforeAll(async () => {
    u = await newUser();
    expect((await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '500.00' } })).status).toBe(201);
    expect((await api.request('POST', `/users/${u.id}/withdrawals`, { token: u.api_key, body: { amount: '200.50' } })).status).toBe(201);
    buyOrder = await buy(u, 'JPM', '1.5');
    sellOrder = await sell(u, 'JPM', '0.5');
    const res = await v2(u, 'GET', '/account/activities');
    expect(res.status).toBe(200);
    all = res.body;
  });

  const fill = (order: { id: string }, side: string, qty: string) => ({
    id: expect.stringMatching(new RegExp(`^\\d{17}::${order.id}:[1-9][0-9]*$`)),
    activity_type: 'FILL',
    transaction_time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
    type: 'fill',
    price: '200.0000',
    qty,
    side,
    symbol: 'JPM',
    leaves_qty: '0',
    order_id: order.id,
    cum_qty: qty,
    order_status: 'filled',
  });
  const nta = (type: string, amount: string, description: string) => ({
    id: expect.stringMatching(/^\d{17}::\d+$/),
    activity_type: type,
    date: today(),
    net_amount: amount,
    description,
    status: 'executed',
    symbol: null,
    qty: null,
    per_share_amount: null,
  });

  it('lists fills and cash movements, newest first; buys and sells move no cash activity of their own', async () => {
    expect(all).toEqual([
      fill(sellOrder, 'sell', '0.5'),
      fill(buyOrder, 'buy', '1.5'),
      nta('CSW', '-200.50', 'cash withdrawal'),
      nta('CSD', '500.00', 'cash deposit'),
      nta('CSD', '100000.00', 'initial funding of the account'),
    ]);
    // A fill's id is its instant (UTC, to the millisecond) and its order.
    for (const a of all.slice(0, 2)) expect(a.id).toMatch(new RegExp(`^${a.transaction_time.replace(/\D/g, '')}::${a.order_id}:[1-9][0-9]*$`));
    const ids = all.map((a) => a.id);
    expect([...ids].sort().reverse()).toEqual(ids);
  });

  it('filters by activity_types, category and the type in the path (TRANS is CSD and CSW; types papertrade never has are empty)', async () => {
    const ids = (list: { id: string }[]) => list.map((a) => a.id);
    expect(ids((await v2(u, 'GET', '/account/activities?activity_types=FILL')).body)).toEqual(ids(all.slice(0, 2)));
    expect(ids((await v2(u, 'GET', '/account/activities?activity_types=CSD,CSW')).body)).toEqual(ids(all.slice(2)));
    expect(ids((await v2(u, 'GET', '/account/activities?activity_types=TRANS')).body)).toEqual(ids(all.slice(2)));
    expect(ids((await v2(u, 'GET', '/account/activities?activity_types=csw')).body)).toEqual([all[2].id]);
    expect(ids((await v2(u, 'GET', '/account/activities?category=trade_activity')).body)).toEqual(ids(all.slice(0, 2)));
    expect(ids((await v2(u, 'GET', '/account/activities?category=non_trade_activity')).body)).toEqual(ids(all.slice(2)));
    expect(ids((await v2(u, 'GET', '/account/activities/FILL')).body)).toEqual(ids(all.slice(0, 2)));
    expect(ids((await v2(u, 'GET', '/account/activities/CSD')).body)).toEqual(ids(all.slice(3)));
    expect(ids((await v2(u, 'GET', '/account/activities/TRANS?direction=asc')).body)).toEqual(ids(all.slice(2)).reverse());
    for (const path of ['/account/activities/DIV', '/account/activities?activity_types=DIV,JNLC', '/account/activities/FEE', '/account/activities/MISC']) {
      const res = await v2(u, 'GET', path);
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
    }
  });

  it('pages with page_token, both directions, until the list is exhausted', async () => {
    const pages = async (direction: 'asc' | 'desc') => {
      const seen: string[] = [];
      let token: string | undefined;
      const sizes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await v2(u, 'GET', `/account/activities?page_size=2&direction=${direction}${token ? `&page_token=${token}` : ''}`);
        expect(res.status).toBe(200);
        sizes.push(res.body.length);
        if (res.body.length === 0) break;
        seen.push(...res.body.map((a: { id: string }) => a.id));
        token = res.body[res.body.length - 1].id;
      }
      return { seen, sizes };
    };
    const desc = await pages('desc');
    expect(desc.sizes).toEqual([2, 2, 1, 0]);
    expect(desc.seen).toEqual(all.map((a) => a.id));
    const asc = await pages('asc');
    expect(asc.sizes).toEqual([2, 2, 1, 0]);
    expect(asc.seen).toEqual(all.map((a) => a.id).reverse());
    // A page type-filtered continues where the token points, in that type only.
    const next = await v2(u, 'GET', `/account/activities/FILL?page_token=${all[0].id}`);
    expect(next.body.map((a: { id: string }) => a.id)).toEqual([all[1].id]);
  });

  it('filters by date, after and until (timestamps or market dates)', async () => {
    const ids = (list: { id: string }[]) => list.map((a) => a.id);
    expect(ids((await v2(u, 'GET', `/account/activities?date=${today()}`)).body)).toEqual(ids(all));
    expect((await v2(u, 'GET', `/account/activities?date=${addDays(today(), -1)}`)).body).toEqual([]);
    expect((await v2(u, 'GET', `/account/activities?after=${addDays(today(), 1)}`)).body).toEqual([]);
    expect(ids((await v2(u, 'GET', `/account/activities?until=${addDays(today(), 1)}`)).body)).toEqual(ids(all));
    // until is exclusive: the sell (at or after its millisecond) is left out, the buy is in.
    const until = await v2(u, 'GET', `/account/activities?activity_types=FILL&until=${all[0].transaction_time}`);
    expect(ids(until.body)).toEqual([all[1].id]);
    // after is exclusive: one millisecond after the buy's leaves the sell only.
    const afterBuy = new Date(Date.parse(all[1].transaction_time) + 1).toISOString();
    expect(ids((await v2(u, 'GET', `/account/activities?activity_types=FILL&after=${afterBuy}`)).body)).toEqual([all[0].id]);
  });

  it('refuses bad parameters with 422 and words', async () => {
    const cases: [string, RegExp][] = [
      ['/account/activities/XYZ', /^invalid activity type: XYZ \(papertrade's activities are FILL, CSD, CSW, FEE, MISC/],
      ['/account/activities?activity_types=FILL,BOGUS', /^invalid activity type: BOGUS/],
      ['/account/activities?activity_types=,', /^activity_types names no type/],
      ['/account/activities?activity_types=FILL&category=trade_activity', /^activity_types and category cannot both be given/],
      ['/account/activities?category=trades', /^category must be trade_activity or non_trade_activity/],
      ['/account/activities?direction=sideways', /^direction must be asc or desc, not sideways$/],
      ['/account/activities?page_size=0', /^page_size must be a whole number from 1 to 100, not 0$/],
      ['/account/activities?page_size=101', /^page_size must be a whole number from 1 to 100, not 101$/],
      ['/account/activities?page_size=ten', /^page_size must be a whole number from 1 to 100, not ten$/],
      ['/account/activities?page_token=abc', /^page_token must be the id of an activity/],
      ['/account/activities?date=2026-13-01', /^date must be an RFC 3339 timestamp/],
      ['/account/activities?after=yesterday', /^after must be an RFC 3339 timestamp/],
      [`/account/activities?date=${today()}&after=${today()}`, /^date cannot be combined with after or until/],
    ];
    for (const [path, message] of cases) {
      const res = await v2(u, 'GET', path);
      expect(res.status, path).toBe(422);
      expect(res.body.code, path).toBe(40010001);
      expect(res.body.message, path).toMatch(message);
    }
    const unknown = await v2(u, 'GET', '/account/activities?colour=red');
    expect(unknown.status).toBe(422);
    expect(unknown.body.code).toBe(40010001);
  });

  it("a class's commission is a FEE (MISC selects it too); a reset is a MISC", async () => {
    const cls = await api.request('POST', '/classes', { body: { name: 'Alpaca fees', starting_cash: '10000.00', rules: { commission_per_order: '1.25' } } });
    expect(cls.status).toBe(201);
    const members = await api.request('POST', `/classes/${cls.body.id}/members`, { token: cls.body.teacher_key, body: { members: [{ name: 'Fee payer', email: `fee-${randomUUID()}@example.com` }] } });
    expect(members.status).toBe(201);
    const m = members.body.members[0];
    const member: ApiUser = { id: m.user_id, api_key: m.api_key, key_id: m.key_id, secret_key: m.secret_key };
    const order = await buy(member, 'JPM', '2');
    const fees = await v2(member, 'GET', '/account/activities/FEE');
    expect(fees.body).toEqual([nta('FEE', '-1.25', `commission on order ${order.id}`)]);
    const misc = await v2(member, 'GET', '/account/activities?activity_types=MISC');
    expect(misc.body.map((a: { id: string }) => a.id)).toEqual([fees.body[0].id]);

    expect((await api.request('POST', `/users/${member.id}/reset`, { token: member.api_key })).status).toBe(200);
    const afterReset = await v2(member, 'GET', '/account/activities?activity_types=MISC');
    // 10000.00 - 400.00 (the buy) - 1.25 (its commission) = 9598.75 before; the reset sets 10000.00.
    expect(afterReset.body).toEqual([nta('MISC', '401.25', 'account reset: cash set to 10000.00'), nta('FEE', '-1.25', `commission on order ${order.id}`)]);
  });
});

describe('GET /v2/account/portfolio/history', () => {
  let u: ApiUser;

  beforeAll(async () => {
    u = await newUser();
    await buy(u, 'AMZN', '3');
    await forceSnapshot();
    await adminPrice(api, 'AMZN', '199.45');
    await forceSnapshot();
  });

  /** The values of one array of the answer, as the text wrote them. */
  const arrayText = (text: string, name: string) => {
    const m = new RegExp(`"${name}":\\[([^\\]]*)\\]`).exec(text);
    if (!m) throw new Error(`no ${name} in ${text}`);
    return m[1] === '' ? [] : m[1]!.split(',');
  };

  it("answers Alpaca's shape with exact JSON numbers: equity, profit/loss and its fraction of the base", async () => {
    const res = await v2Text(u, '/account/portfolio/history?period=1D&timeframe=1Min');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^application\/json/);
    const body = JSON.parse(res.text);
    expect(Object.keys(body)).toEqual(['timestamp', 'equity', 'profit_loss', 'profit_loss_pct', 'base_value', 'timeframe']);
    expect(body.timeframe).toBe('1Min');
    const n = body.timestamp.length;
    expect(n).toBeGreaterThanOrEqual(1);
    for (const name of ['equity', 'profit_loss', 'profit_loss_pct']) expect(body[name]).toHaveLength(n);
    for (const t of body.timestamp) expect(t % 60).toBe(0);
    // 99400.00 cash + 3 × 199.45 = 99998.35: 1.65 below the 100000 put in, -0.0000165 → -0.000017.
    expect(arrayText(res.text, 'equity').at(-1)).toBe('99998.35');
    expect(arrayText(res.text, 'profit_loss').at(-1)).toBe('-1.65');
    expect(arrayText(res.text, 'profit_loss_pct').at(-1)).toBe('-0.000017');
    expect(res.text).toMatch(/"base_value":100000,"timeframe":"1Min"\}$/);
    // Every point is one of the two equities the rounds saw (a bucket keeps its last point).
    for (const [i, equity] of arrayText(res.text, 'equity').entries()) {
      expect(['100000', '99998.35']).toContain(equity);
      expect(arrayText(res.text, 'profit_loss')[i]).toBe(equity === '100000' ? '0' : '-1.65');
      expect(arrayText(res.text, 'profit_loss_pct')[i]).toBe(equity === '100000' ? '0' : '-0.000017');
    }
  });

  it('in day buckets, the whole answer is one point: the last of the day, digit for digit', async () => {
    const last = await stack.ctx.db.selectFrom('portfolio_history').select('at').where('user_id', '=', u.id).orderBy('at', 'desc').limit(1).executeTakeFirstOrThrow();
    const day = Math.floor(last.at.getTime() / 86_400_000) * 86_400;
    const res = await v2Text(u, '/account/portfolio/history?period=1D&timeframe=1D');
    expect(res.text).toBe(`{"timestamp":[${day}],"equity":[99998.35],"profit_loss":[-1.65],"profit_loss_pct":[-0.000017],"base_value":100000,"timeframe":"1D"}`);
  });

  it("takes Alpaca's defaults and parameters: 1M in 1D buckets, pnl_reset and extended_hours accepted, date_end", async () => {
    const res = await v2(u, 'GET', '/account/portfolio/history?pnl_reset=per_day&extended_hours=true&intraday_reporting=market_hours');
    expect(res.status).toBe(200);
    expect(res.body.timeframe).toBe('1D');
    expect(res.body.equity.at(-1)).toBe(99998.35);
    expect((await v2(u, 'GET', '/account/portfolio/history?period=1W')).body.timeframe).toBe('15Min');
    const past = await v2Text(u, `/account/portfolio/history?date_end=${addDays(today(), -1)}`);
    expect(past.status).toBe(200);
    expect(past.text).toBe('{"timestamp":[],"equity":[],"profit_loss":[],"profit_loss_pct":[],"base_value":100000,"timeframe":"1D"}');
    const now = await v2(u, 'GET', `/account/portfolio/history?period=1D&timeframe=1H&date_end=${today()}`);
    expect(now.body.equity.at(-1)).toBe(99998.35);
  });

  it('refuses what papertrade does not keep, in words', async () => {
    const cases: [string, RegExp][] = [
      ['period=2W', /^period 2W is not supported: papertrade keeps history for the periods 1D, 1W, 1M, 3M, 1A, all$/],
      ['timeframe=2H', /^timeframe 2H is not supported: use one of 1Min, 5Min, 15Min, 1H, 1D$/],
      ['start=2026-12-01T00:00:00Z', /^start is not supported/],
      ['cashflow_types=ALL', /^cashflow_types is not supported/],
      ['date_end=2026-12-01&end=2026-12-01T00:00:00Z', /^date_end and end name the same thing/],
      ['date_end=tomorrow', /^date_end must be an RFC 3339 timestamp/],
    ];
    for (const [query, message] of cases) {
      const res = await v2(u, 'GET', `/account/portfolio/history?${query}`);
      expect(res.status, query).toBe(422);
      expect(res.body.code, query).toBe(40010001);
      expect(res.body.message, query).toMatch(message);
    }
  });
});

describe('/v2/account/configurations', () => {
  const fixed = {
    dtbp_check: 'both',
    trade_confirm_email: 'none',
    suspend_trade: false,
    no_shorting: true,
    fractional_trading: true,
    max_margin_multiplier: '1',
    max_options_trading_level: 0,
    pdt_check: 'entry',
    ptp_no_exception_entry: false,
  };

  it("answers papertrade's fixed settings; a PATCH with the same values is answered them", async () => {
    const u = await newUser();
    const got = await v2(u, 'GET', '/account/configurations');
    expect(got.status).toBe(200);
    expect(got.body).toEqual(fixed);
    const same = await v2(u, 'PATCH', '/account/configurations', fixed);
    expect(same.status).toBe(200);
    expect(same.body).toEqual(fixed);
    const some = await v2(u, 'PATCH', '/account/configurations', { no_shorting: true, max_margin_multiplier: 1 });
    expect(some.status).toBe(200);
    expect(some.body).toEqual(fixed);
    expect((await v2(u, 'PATCH', '/account/configurations', {})).body).toEqual(fixed);
  });

  it('refuses any other value, naming the setting, what papertrade has and why; and an unknown setting', async () => {
    const u = await newUser();
    const cases: [Record<string, unknown>, string][] = [
      [{ no_shorting: false }, "no_shorting false is not supported: papertrade's no_shorting is true and cannot change (papertrade is a cash account without shorting)"],
      [{ max_margin_multiplier: '4' }, 'max_margin_multiplier "4" is not supported: papertrade\'s max_margin_multiplier is "1" and cannot change (papertrade is a cash account without margin)'],
      [{ trade_confirm_email: 'all', no_shorting: true }, 'trade_confirm_email "all" is not supported: papertrade\'s trade_confirm_email is "none" and cannot change (papertrade sends no emails)'],
      [{ max_options_trading_level: 2 }, "max_options_trading_level 2 is not supported: papertrade's max_options_trading_level is 0 and cannot change (papertrade trades no options)"],
    ];
    for (const [body, message] of cases) {
      const res = await v2(u, 'PATCH', '/account/configurations', body);
      expect(res.status).toBe(422);
      expect(res.body.code).toBe(40010001);
      expect(res.body.message).toBe(message);
    }
    const unknown = await v2(u, 'PATCH', '/account/configurations', { margin_please: true });
    expect(unknown.status).toBe(422);
    expect(unknown.body.code).toBe(40010001);
    expect(unknown.body.message).toMatch(/margin_please/);
  });
});

describe('/v2/positions', () => {
  it('lists positions valued at the latest prices, exactly; one by symbol (any case) or asset id; 404 otherwise', async () => {
    const u = await newUser();
    await buy(u, 'GOOGL', '2');
    await buy(u, 'META', '1.5');
    await adminPrice(api, 'GOOGL', '180.25');
    await adminPrice(api, 'META', '579.99');
    // A resting sell holds half a share: it is not available to another sell.
    const resting = await nativeOrder(u, { ticker: 'META', quantity: '0.5', type: 'limit', limit_price: '1000', side: 'sell', time_in_force: 'gtc' }, 'OPEN');
    const googl = {
      asset_id: assetId('GOOGL'),
      symbol: 'GOOGL',
      exchange: 'NASDAQ',
      asset_class: 'us_equity',
      asset_marginable: false,
      qty: '2',
      qty_available: '2',
      avg_entry_price: '175.0000',
      side: 'long',
      market_value: '360.50',
      cost_basis: '350.00',
      unrealized_pl: '10.50',
      unrealized_plpc: '0.030000',
      unrealized_intraday_pl: '10.50',
      unrealized_intraday_plpc: '0.030000',
      current_price: '180.2500',
      lastday_price: '175.0000',
      change_today: '0.030000',
    };
    // 1.5 × 579.99 = 869.985 → 869.99 (half-up); -0.01 / 580 = -0.0000172… → -0.000017.
    const meta = {
      asset_id: assetId('META'),
      symbol: 'META',
      exchange: 'NASDAQ',
      asset_class: 'us_equity',
      asset_marginable: false,
      qty: '1.5',
      qty_available: '1',
      avg_entry_price: '580.0000',
      side: 'long',
      market_value: '869.99',
      cost_basis: '870.00',
      unrealized_pl: '-0.01',
      unrealized_plpc: '-0.000017',
      unrealized_intraday_pl: '-0.01',
      unrealized_intraday_plpc: '-0.000017',
      current_price: '579.9900',
      lastday_price: '580.0000',
      change_today: '-0.000017',
    };
    const list = await v2(u, 'GET', '/positions');
    expect(list.status).toBe(200);
    expect(list.body).toEqual([googl, meta]);
    expect((await v2(u, 'GET', '/positions/googl')).body).toEqual(googl);
    expect((await v2(u, 'GET', `/positions/${assetId('META')}`)).body).toEqual(meta);
    expect((await v2(u, 'GET', `/positions/${assetId('META').toUpperCase()}`)).body).toEqual(meta);
    for (const missing of ['TSLA', assetId('TSLA'), randomUUID(), 'not a symbol!']) {
      const res = await v2(u, 'GET', `/positions/${encodeURIComponent(missing)}`);
      expect(res.status, missing).toBe(404);
      expect(res.body).toEqual({ code: 40410000, message: 'position does not exist', error: expect.objectContaining({ code: 'NOT_FOUND' }) });
    }
    await cancel(u, resting.id);
  });

  it('closes a position by qty, by percentage (rounded down), then whole: market sells for the day that fill', async () => {
    const u = await newUser();
    await buy(u, 'TSLA', '10');
    const byQty = await v2(u, 'DELETE', '/positions/tsla?qty=2.5');
    expect(byQty.status).toBe(200);
    expect(byQty.body).toMatchObject({ symbol: 'TSLA', side: 'sell', qty: '2.5', type: 'market', order_type: 'market', time_in_force: 'day', asset_id: assetId('TSLA') });
    expect(byQty.body.client_order_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await filled(u, byQty.body.id)).toMatchObject({ side: 'sell', filled_quantity: '2.5', fill_price: '250.0000', client_order_id: byQty.body.client_order_id });
    expect((await v2(u, 'GET', '/positions/TSLA')).body).toMatchObject({ qty: '7.5', qty_available: '7.5', market_value: '1875.00' });

    // 7.5 × 33.333333 % = 2.499999975 → 2.499999 (down, at 6 decimals).
    const byPct = await v2(u, 'DELETE', `/positions/${assetId('TSLA')}?percentage=33.333333`);
    expect(byPct.status).toBe(200);
    expect(byPct.body).toMatchObject({ symbol: 'TSLA', side: 'sell', qty: '2.499999', type: 'market' });
    await filled(u, byPct.body.id);
    expect((await v2(u, 'GET', '/positions/TSLA')).body).toMatchObject({ qty: '5.000001' });

    const refusals: [string, number, number, RegExp][] = [
      ['qty=1&percentage=5', 422, 40010001, /^qty and percentage cannot both be given/],
      ['percentage=0', 422, 40010001, /^percentage must be greater than zero$/],
      ['percentage=100.5', 422, 40010001, /^percentage must be at most 100\.000000$/],
      ['percentage=0.00001', 422, 40010001, /^percentage 0\.00001 of 5\.000001 TSLA is less than the smallest quantity \(0\.000001 shares\)$/],
      ['qty=-1', 422, 40010001, /^qty must be a plain decimal/],
      ['qty=100', 403, 40310000, /^insufficient qty available for order \(order rejected: 5\.000001 TSLA available, 100 required\)$/],
    ];
    for (const [query, status, code, message] of refusals) {
      const res = await v2(u, 'DELETE', `/positions/TSLA?${query}`);
      expect(res.status, query).toBe(status);
      expect(res.body.code, query).toBe(code);
      expect(res.body.message, query).toMatch(message);
    }

    const whole = await v2(u, 'DELETE', '/positions/TSLA');
    expect(whole.status).toBe(200);
    expect(whole.body).toMatchObject({ symbol: 'TSLA', side: 'sell', qty: '5.000001', type: 'market', time_in_force: 'day' });
    await filled(u, whole.body.id);
    expect((await v2(u, 'GET', '/positions/TSLA')).status).toBe(404);
    expect((await v2(u, 'GET', '/positions')).body).toEqual([]);
    expect((await v2(u, 'DELETE', '/positions/TSLA')).body).toMatchObject({ code: 40410000, message: 'position does not exist' });
    // 10 bought at 250.00 and all sold at 250.00; a sell is credited its value rounded down to the
    // cent, which only the 2.499999 shares' 624.99975 had to be: 624.99, so a cent less is back.
    expect((await v2(u, 'GET', '/account')).body).toMatchObject({ cash: '99999.99', equity: '99999.99', long_market_value: '0.00' });
  });

  it('DELETE /v2/positions answers 207, one result per position; shares held by open orders need cancel_orders=true', async () => {
    const u = await newUser();
    await buy(u, 'MA', '2');
    await buy(u, 'V', '3');
    const resting = await nativeOrder(u, { ticker: 'MA', quantity: '1', type: 'limit', limit_price: '900', side: 'sell', time_in_force: 'gtc' }, 'OPEN');

    const first = await v2(u, 'DELETE', '/positions');
    expect(first.status).toBe(207);
    expect(first.body).toHaveLength(2);
    expect(first.body[0]).toEqual({ symbol: 'MA', status: 403, body: { code: 40310000, message: 'insufficient qty available for order (order rejected: 1 MA available, 2 required)' } });
    expect(first.body[1]).toMatchObject({ symbol: 'V', status: 200, body: { symbol: 'V', side: 'sell', qty: '3', type: 'market', time_in_force: 'day' } });
    await filled(u, first.body[1].body.id);

    const second = await v2(u, 'DELETE', '/positions?cancel_orders=true');
    expect(second.status).toBe(207);
    expect(second.body).toHaveLength(1);
    expect(second.body[0]).toMatchObject({ symbol: 'MA', status: 200, body: { symbol: 'MA', side: 'sell', qty: '2', type: 'market' } });
    expect((await api.request('GET', `/orders/${resting.id}`, { token: u.api_key })).body.status).toBe('CANCELED');
    await filled(u, second.body[0].body.id);
    expect((await v2(u, 'GET', '/positions')).body).toEqual([]);
    const none = await v2(u, 'DELETE', '/positions');
    expect(none.status).toBe(207);
    expect(none.body).toEqual([]);
    expect((await v2(u, 'DELETE', '/positions?cancel_orders=maybe')).status).toBe(422);
  });
});
