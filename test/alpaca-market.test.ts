/**
 * Alpaca's instrument and market data routes over real HTTP with Alpaca's key headers: the
 * assets, the clock (and the admin's forced state), the calendar in both date styles the SDKs
 * send, and every market data route, with prices checked digit for digit on the response text.
 * The NYSE calendar is the main server's; a second server runs the `always` calendar.
 */
import { Alpaca, TimeFrame } from '@alpacahq/alpaca-trade-api';
import AlpacaV3 from 'alpaca-trade-api-v3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetId } from '../src/alpaca/alpaca.views.js';
import { addDays, clockAt, localDateAt, sessionsBetween } from '../src/core/calendar.js';
import { parsePrice } from '../src/core/money.js';
import type { Bar } from '../src/services/market-data/bars.js';
import { adminPrice, apiUser, createTestContext, startTestServer, type TestContext, type TestServer } from './harness.js';

interface KeyPair {
  key_id: string;
  secret_key: string;
}

let ctx: TestContext;
let api: TestServer;
let alwaysCtx: TestContext;
let alwaysApi: TestServer;
let user: KeyPair;
let alwaysUser: KeyPair;

const NY = 'America/New_York';
const apca = (u: KeyPair) => ({ 'APCA-API-KEY-ID': u.key_id, 'APCA-API-SECRET-KEY': u.secret_key });

/** A GET on /v2 with the user's key pair: the status, the parsed body and the raw text. */
async function v2(path: string, server: TestServer = api, u: KeyPair = user) {
  const res = await fetch(`${server.url}/v2${path}`, { headers: apca(u) });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
  const body: any = text ? JSON.parse(text) : undefined;
  return { status: res.status, body, text };
}

/** A refusal in Alpaca's shape: the status, the code and the message in words. */
async function refused(path: string, status: number, message: RegExp, server: TestServer = api) {
  const res = await v2(path, server, server === api ? user : alwaysUser);
  expect(res.status).toBe(status);
  expect(typeof res.body.code).toBe('number');
  expect(res.body.message).toMatch(message);
  return res.body;
}

const minute = (iso: string, o: string, h: string, l: string, c: string, ticks: number, ticker = 'NVDA'): Bar => ({
  ticker,
  bucketMs: Date.parse(iso),
  open: parsePrice(o),
  high: parsePrice(h),
  low: parsePrice(l),
  close: parsePrice(c),
  tickCount: ticks,
});

/**
 * NVDA's scripted minutes: two on Monday 2026-11-30 (New York), one at 23:59 New York that day
 * (04:59 UTC on Dec 1, so it belongs to Nov 30's daily bar), and four in the first minutes of
 * Tuesday's session (14:32 and 14:34 have none). AMD has one minute on Dec 1.
 */
const SCRIPTED: Bar[] = [
  minute('2026-11-30T15:00:00Z', '100', '101', '99.5', '100.5', 3),
  minute('2026-11-30T15:01:00Z', '100.5', '102', '100', '101.75', 2),
  minute('2026-12-01T04:59:00Z', '101.75', '101.75', '101.7', '101.7', 1),
  minute('2026-12-01T14:30:00Z', '102', '103.5', '101.25', '103', 4),
  minute('2026-12-01T14:31:00Z', '103', '103.1', '102.9', '102.95', 2),
  minute('2026-12-01T14:33:00Z', '102.95', '104', '102.95', '103.9999', 5),
  minute('2026-12-01T14:35:00Z', '104', '104.25', '103.5', '103.75', 1),
  minute('2026-12-01T15:00:00Z', '150', '150', '150', '150', 1, 'AMD'),
];

// The same bars as Alpaca's JSON text, as the server must write them (vw = (o + h + l + c) / 4).
const B = {
  nov30_1500: '{"t":"2026-11-30T15:00:00Z","o":100,"h":101,"l":99.5,"c":100.5,"v":0,"n":3,"vw":100.25}',
  nov30_1501: '{"t":"2026-11-30T15:01:00Z","o":100.5,"h":102,"l":100,"c":101.75,"v":0,"n":2,"vw":101.0625}',
  dec1_0459: '{"t":"2026-12-01T04:59:00Z","o":101.75,"h":101.75,"l":101.7,"c":101.7,"v":0,"n":1,"vw":101.725}',
  dec1_1430: '{"t":"2026-12-01T14:30:00Z","o":102,"h":103.5,"l":101.25,"c":103,"v":0,"n":4,"vw":102.4375}',
  dec1_1431: '{"t":"2026-12-01T14:31:00Z","o":103,"h":103.1,"l":102.9,"c":102.95,"v":0,"n":2,"vw":102.9875}',
  dec1_1433: '{"t":"2026-12-01T14:33:00Z","o":102.95,"h":104,"l":102.95,"c":103.9999,"v":0,"n":5,"vw":103.474975}',
  dec1_1435: '{"t":"2026-12-01T14:35:00Z","o":104,"h":104.25,"l":103.5,"c":103.75,"v":0,"n":1,"vw":103.875}',
  amd_1500: '{"t":"2026-12-01T15:00:00Z","o":150,"h":150,"l":150,"c":150,"v":0,"n":1,"vw":150}',
  // Daily bars start at New York midnight (05:00 UTC in winter).
  nvdaNov30: '{"t":"2026-11-30T05:00:00Z","o":100,"h":102,"l":99.5,"c":101.7,"v":0,"n":6,"vw":100.8}',
  nvdaDec1: '{"t":"2026-12-01T05:00:00Z","o":102,"h":104.25,"l":101.25,"c":103.75,"v":0,"n":12,"vw":102.8125}',
  amdDec1: '{"t":"2026-12-01T05:00:00Z","o":150,"h":150,"l":150,"c":150,"v":0,"n":1,"vw":150}',
};

/** When NVDA's price was set: an instant with milliseconds, written as such. */
const NVDA_QUOTE_MS = Date.parse('2026-12-01T14:35:30.250Z');

beforeAll(async () => {
  ctx = await createTestContext({ MARKET_CALENDAR: 'nyse' });
  api = await startTestServer(ctx);
  alwaysCtx = await createTestContext();
  alwaysApi = await startTestServer(alwaysCtx);
  user = (await apiUser(api)) as unknown as KeyPair;
  alwaysUser = (await apiUser(alwaysApi)) as unknown as KeyPair;
  // AAPL with the touch given; MSFT with the one its tier (large: 2 bps) gives it.
  const aapl = await api.request('PUT', '/admin/prices/AAPL', { body: { price: '150.25', bid: '150.24', ask: '150.26', bid_size: 300, ask_size: 500 } });
  expect(aapl.status).toBe(200);
  await adminPrice(api, 'MSFT', '400.1');
  await ctx.market.saveBars(SCRIPTED);
  // NVDA's price set in the store only (no bar), so that the scripted bars stay its latest.
  await ctx.quotes.setMany([{ ticker: 'NVDA', price: parsePrice('104.5'), asOfMs: NVDA_QUOTE_MS }]);
});

afterAll(async () => {
  await alwaysApi?.server.close();
  await alwaysCtx?.close();
  await api?.server.close();
  await ctx?.close();
});

describe('GET /v2/assets', () => {
  const aapl = {
    id: assetId('AAPL'),
    class: 'us_equity',
    exchange: 'NASDAQ',
    symbol: 'AAPL',
    name: 'Apple Inc.',
    status: 'active',
    tradable: true,
    marginable: false,
    shortable: false,
    easy_to_borrow: false,
    fractionable: true,
    maintenance_margin_requirement: 100,
    margin_requirement_long: '100',
    margin_requirement_short: '100',
    attributes: [],
  };

  it('lists every listed instrument as an active, fractionable US equity, in symbol order', async () => {
    const res = await v2('/assets');
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(43);
    expect(res.body[0]).toEqual(aapl);
    const symbols = res.body.map((a: { symbol: string }) => a.symbol);
    expect(symbols).toEqual([...symbols].sort());
    expect(symbols).toContain('BRK.B');
    expect(new Set(res.body.map((a: { id: string }) => a.id)).size).toBe(43);
  });

  it('filters as Alpaca does: inactive, other classes, other exchanges and attributes select nothing', async () => {
    expect((await v2('/assets?status=active&asset_class=us_equity&exchange=NASDAQ')).body).toHaveLength(43);
    for (const query of ['status=inactive', 'asset_class=crypto', 'asset_class=us_option', 'exchange=NYSE', 'attributes=ptp_no_exception,ipo']) {
      const res = await v2(`/assets?${query}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
    }
    // An empty attributes filter is no filter.
    expect((await v2('/assets?attributes=')).body).toHaveLength(43);
  });

  it('refuses a status or class Alpaca does not have, and unknown parameters (422)', async () => {
    const bad = await refused('/assets?status=halted', 422, /status/);
    expect(bad.code).toBe(40010001);
    await refused('/assets?asset_class=fx', 422, /asset_class/);
    await refused('/assets?color=red', 422, /color|additional/);
  });

  it('answers one asset by symbol in any case or by asset id, and 404 "asset not found" otherwise', async () => {
    expect((await v2('/assets/aapl')).body).toEqual(aapl);
    expect((await v2(`/assets/${assetId('AAPL')}`)).body).toEqual(aapl);
    expect((await v2(`/assets/${assetId('AAPL').toUpperCase()}`)).body).toEqual(aapl);
    expect((await v2('/assets/brk.b')).body).toMatchObject({ symbol: 'BRK.B', name: 'Berkshire Hathaway Inc. Class B', id: assetId('BRK.B') });
    for (const missing of ['ZZZZ', '00000000-0000-5000-8000-000000000000', 'not a ticker']) {
      const res = await v2(`/assets/${encodeURIComponent(missing)}`);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 40410000, message: 'asset not found' });
    }
  });

  it('takes any user key and the admin token; no credentials is 401', async () => {
    expect((await api.request('GET', '/v2/assets/MSFT')).status).toBe(200);
    const none = await api.request('GET', '/v2/assets', { token: null });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe(40110000);
  });
});

/** The zone's UTC offset at an instant as +HH:MM, from Intl (independently of the server). */
function offsetOf(ms: number, zone: string): string {
  const name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' }).formatToParts(ms).find((p) => p.type === 'timeZoneName')!.value;
  return name === 'GMT' ? '+00:00' : name.slice(3);
}

const wallFormats = new Map<string, Intl.DateTimeFormat>();

/** The local wall time of an instant in a zone, YYYY-MM-DDTHH:MM:SS, from Intl. */
function wallOf(ms: number, zone: string): string {
  let format = wallFormats.get(zone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    wallFormats.set(zone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(ms).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}

/** A clock time as Alpaca writes it: the local time and the offset of the zone at that instant. */
function expectZoned(text: string, zone: string): number {
  const ms = Date.parse(text);
  expect(Number.isFinite(ms)).toBe(true);
  expect(text.slice(0, 19)).toBe(wallOf(ms, zone));
  expect(text.slice(-6)).toBe(offsetOf(ms, zone));
  expect(text).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?[+-]\d{2}:\d{2}$/);
  return ms;
}

describe('GET /v2/clock', () => {
  it("answers the NYSE clock in New York's offset, as the calendar says at its timestamp", async () => {
    const before = Date.now();
    const res = await v2('/clock');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['timestamp', 'is_open', 'next_open', 'next_close']);
    const now = expectZoned(res.body.timestamp, NY);
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
    const expected = clockAt('nyse', NY, now);
    expect(res.body.is_open).toBe(expected.isOpen);
    expect(expectZoned(res.body.next_open, NY)).toBe(expected.nextOpenMs);
    expect(expectZoned(res.body.next_close, NY)).toBe(expected.nextCloseMs);
    // Sessions open at 09:30 and close at 16:00 (13:00 on early-close days), New York time.
    expect(res.body.next_open.slice(11, 19)).toBe('09:30:00');
    expect(['16:00:00', '13:00:00']).toContain(res.body.next_close.slice(11, 19));
    // The same clock as the native route.
    const native = await api.request('GET', '/clock');
    expect(Date.parse(native.body.next_open)).toBe(expected.nextOpenMs);
    expect(Date.parse(native.body.next_close)).toBe(expected.nextCloseMs);
  });

  it("follows the admin's forced state, and the calendar again after auto", async () => {
    try {
      expect((await api.request('POST', '/admin/market', { body: { state: 'open' } })).status).toBe(200);
      const open = await v2('/clock');
      expect(open.body.is_open).toBe(true);
      const calendar = clockAt('nyse', NY, Date.parse(open.body.timestamp));
      // The next open and close stay the calendar's.
      expect(Date.parse(open.body.next_open)).toBe(calendar.nextOpenMs);
      expect(Date.parse(open.body.next_close)).toBe(calendar.nextCloseMs);

      await api.request('POST', '/admin/market', { body: { state: 'closed' } });
      expect((await v2('/clock')).body.is_open).toBe(false);
    } finally {
      await api.request('POST', '/admin/market', { body: { state: 'auto' } });
    }
    const auto = await v2('/clock');
    expect(auto.body.is_open).toBe(clockAt('nyse', NY, Date.parse(auto.body.timestamp)).isOpen);
  });

  it('answers the always calendar: open, closing at the next local midnight', async () => {
    const res = await v2('/clock', alwaysApi, alwaysUser);
    expect(res.status).toBe(200);
    expect(res.body.is_open).toBe(true);
    expectZoned(res.body.timestamp, NY);
    expect(expectZoned(res.body.next_close, NY)).toBe(clockAt('always', NY, Date.parse(res.body.timestamp)).nextCloseMs);
    expect(res.body.next_close.slice(11, 19)).toBe('00:00:00');
  });
});

describe('GET /v2/calendar', () => {
  const day = (date: string, settlement: string, close = '16:00', sessionClose = '2000') => ({
    date,
    open: '09:30',
    close,
    session_open: '0400',
    session_close: sessionClose,
    settlement_date: settlement,
  });

  it('lists trading days for YYYY-MM-DD bounds (3.x): holidays left out, early closes, settlement the next trading day', async () => {
    const res = await v2('/calendar?start=2026-11-25&end=2026-12-01');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      day('2026-11-25', '2026-11-27'), // Thanksgiving (Nov 26) is closed
      day('2026-11-27', '2026-11-30', '13:00', '1700'), // the day after closes at 13:00
      day('2026-11-30', '2026-12-01'),
      day('2026-12-01', '2026-12-02'),
    ]);
    const christmas = await v2('/calendar?start=2026-12-23&end=2026-12-28');
    expect(christmas.body).toEqual([day('2026-12-23', '2026-12-24'), day('2026-12-24', '2026-12-28', '13:00', '1700'), day('2026-12-28', '2026-12-29')]);
  });

  it("takes RFC 3339 timestamps (4.x), reading each as its date in New York", async () => {
    // 00:00 UTC on Dec 1 is 19:00 on Nov 30 in New York; 00:00 UTC on Dec 4 is Dec 3 there.
    const utcMidnights = await v2('/calendar?start=2026-12-01T00:00:00.000Z&end=2026-12-04T00:00:00.000Z');
    expect(utcMidnights.status).toBe(200);
    expect(utcMidnights.body.map((d: { date: string }) => d.date)).toEqual(['2026-11-30', '2026-12-01', '2026-12-02', '2026-12-03']);
    const ny = await v2(`/calendar?start=${encodeURIComponent('2026-12-01T09:00:00-05:00')}&end=2026-12-04T05:00:00Z`);
    expect(ny.body.map((d: { date: string }) => d.date)).toEqual(['2026-12-01', '2026-12-02', '2026-12-03', '2026-12-04']);
  });

  it('selects by settlement date with date_type SETTLEMENT', async () => {
    const res = await v2('/calendar?start=2026-11-27&end=2026-11-30&date_type=SETTLEMENT');
    expect(res.body).toEqual([day('2026-11-25', '2026-11-27'), day('2026-11-27', '2026-11-30', '13:00', '1700')]);
    const trading = await v2('/calendar?start=2026-11-27&end=2026-11-30&date_type=TRADING');
    expect(trading.body.map((d: { date: string }) => d.date)).toEqual(['2026-11-27', '2026-11-30']);
  });

  it('fills a missing bound to make the range 366 days long (Alpaca lists 1970-2029)', async () => {
    const fromStart = (await v2('/calendar?start=2026-12-01')).body;
    expect(fromStart[0].date).toBe('2026-12-01');
    expect(fromStart.at(-1).date).toBe('2027-12-01'); // a Wednesday, 365 days on
    const toEnd = (await v2('/calendar?end=2026-12-31')).body;
    expect(toEnd[0].date).toBe('2025-12-31');
    expect(toEnd.at(-1).date).toBe('2026-12-31');
    // Neither: half a year back and half a year ahead of today (New York).
    const todayBefore = localDateAt(Date.now(), NY);
    const around = (await v2('/calendar')).body.map((d: { date: string }) => d.date);
    const todayAfter = localDateAt(Date.now(), NY);
    const expected = (today: string) => sessionsBetween('nyse', NY, addDays(today, -182), addDays(today, 183)).map((s) => s.date);
    expect([expected(todayBefore), expected(todayAfter)]).toContainEqual(around);
  });

  it('refuses impossible dates, an end before the start and more than 366 days, in words (422)', async () => {
    const bad = await refused('/calendar?start=2026-02-30', 422, /start must be a real date such as 2026-12-01 or an RFC 3339 timestamp/);
    expect(bad.code).toBe(40010001);
    await refused('/calendar?end=tomorrow', 422, /end must be a real date/);
    await refused('/calendar?start=1969-12-31', 422, /years 1970 to 9999/);
    await refused('/calendar?start=2026-12-05&end=2026-12-01', 422, /end \(2026-12-01\) must not be before start \(2026-12-05\)/);
    await refused('/calendar?start=2026-01-01&end=2027-06-01', 422, /at most 366 days/);
    await refused('/calendar?date_type=CLEARING', 422, /date_type/);
  });

  it('lists every day of the always calendar, open all day', async () => {
    const res = await v2('/calendar?start=2026-12-05&end=2026-12-06', alwaysApi, alwaysUser);
    expect(res.body).toEqual([
      { date: '2026-12-05', open: '00:00', close: '23:59', session_open: '0000', session_close: '2359', settlement_date: '2026-12-06' },
      { date: '2026-12-06', open: '00:00', close: '23:59', session_open: '0000', session_close: '2359', settlement_date: '2026-12-07' },
    ]);
  });
});

describe('latest trades and quotes', () => {
  it('answers the last price as the latest trade, digit for digit', async () => {
    const res = await v2('/stocks/aapl/trades/latest');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^\{"symbol":"AAPL","trade":\{"t":"[^"]+","x":"V","p":150\.25,"s":100,"c":\[" "\],"i":\d+,"z":"C"\}\}$/);
    expect(Date.parse(res.body.trade.t)).toBe(res.body.trade.i);
    expect(res.body.trade.t).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
    expect((await v2('/stocks/MSFT/trades/latest?feed=iex&currency=USD')).text).toContain('"p":400.1,');
  });

  it('answers the latest quote with the touch the price was published with, sizes in shares', async () => {
    const res = await v2('/stocks/AAPL/quotes/latest');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^\{"symbol":"AAPL","quote":\{"t":"[^"]+","ax":"V","ap":150\.26,"as":500,"bx":"V","bp":150\.24,"bs":300,"c":\["R"\],"z":"C"\}\}$/);
  });

  it('refuses an unknown symbol (404) and a listed one without a price yet (503)', async () => {
    for (const route of ['trades', 'quotes']) {
      const unknown = await refused(`/stocks/ZZZZ/${route}/latest`, 404, /unknown ticker "ZZZZ"/);
      expect(unknown.code).toBe(40410000);
      const none = await refused(`/stocks/KO/${route}/latest`, 503, /no price for KO yet/);
      expect(none.code).toBe(50300000);
    }
  });

  it('answers many symbols at once, leaving out unknown ones and those without a price', async () => {
    const trades = await v2('/stocks/trades/latest?symbols=AAPL,msft,ZZZZ,KO,aapl,BTC/USD');
    expect(trades.status).toBe(200);
    expect(Object.keys(trades.body.trades).sort()).toEqual(['AAPL', 'MSFT']);
    expect(trades.text).toMatch(/"AAPL":\{"t":"[^"]+","x":"V","p":150\.25,/);
    expect(trades.text).toMatch(/"MSFT":\{"t":"[^"]+","x":"V","p":400\.1,/);
    const quotes = await v2('/stocks/quotes/latest?symbols=MSFT,KO');
    expect(Object.keys(quotes.body.quotes)).toEqual(['MSFT']);
    // 400.1 with a 2 bps spread: 0.0801 wide (never narrower than asked), the extra tick below.
    expect(quotes.text).toMatch(/"ap":400\.14,"as":\d+,"bx":"V","bp":400\.0599,"bs":\d+/);
    expect((await v2('/stocks/quotes/latest?symbols=ZZZZ')).body).toEqual({ quotes: {} });
  });

  it('refuses a missing symbols list, more than 100 symbols, another currency and an unknown feed (422)', async () => {
    await refused('/stocks/trades/latest', 422, /symbols is required/);
    await refused('/stocks/trades/latest?symbols=,,', 422, /symbols is required/);
    const many = Array.from({ length: 101 }, (_, i) => `S${i}`).join(',');
    await refused(`/stocks/quotes/latest?symbols=${many}`, 422, /at most 100 symbols per request \(got 101\)/);
    // 100 symbols are fine (repeats count once).
    expect((await v2(`/stocks/quotes/latest?symbols=${Array.from({ length: 100 }, (_, i) => `S${i}`).join(',')},S1`)).status).toBe(200);
    await refused('/stocks/AAPL/trades/latest?currency=EUR', 422, /papertrade's prices are in USD only/);
    await refused('/stocks/AAPL/trades/latest?feed=nasdaq', 422, /feed/);
  });

  it('takes the admin token too; no credentials is 401', async () => {
    expect((await api.request('GET', '/v2/stocks/AAPL/trades/latest')).body.trade.p).toBe(150.25);
    expect((await api.request('GET', '/v2/stocks/AAPL/trades/latest', { token: null })).status).toBe(401);
  });
});

describe('bars', () => {
  const page = (bars: string[], next: string | null, symbol = 'NVDA') => `{"bars":[${bars.join(',')}],"symbol":"${symbol}","next_page_token":${next === null ? 'null' : JSON.stringify(next)}}`;

  it('answers 1-minute bars whose start lies in [start, end], exactly as stored', async () => {
    const res = await v2('/stocks/NVDA/bars?timeframe=1Min&start=2026-12-01T14:30:00Z&end=2026-12-01T14:35:00Z');
    expect(res.status).toBe(200);
    expect(res.text).toBe(page([B.dec1_1430, B.dec1_1431, B.dec1_1433, B.dec1_1435], null));
    // 1T is the same timeframe; a bar starting after `end` is left out.
    expect((await v2('/stocks/nvda/bars?timeframe=1T&start=2026-12-01T14:30:00Z&end=2026-12-01T14:34:59Z')).text).toBe(page([B.dec1_1430, B.dec1_1431, B.dec1_1433], null));
    // feed, adjustment, asof and currency USD change nothing.
    expect((await v2('/stocks/NVDA/bars?timeframe=1Min&start=2026-12-01T14:30:00Z&end=2026-12-01T14:35:00Z&feed=sip&adjustment=split,dividend&asof=2026-12-01&currency=USD')).text).toBe(res.text);
  });

  it('aggregates minutes into 5Min, 1Hour and 1Day bars (days from New York midnight), exactly', async () => {
    const fiveMin = await v2('/stocks/NVDA/bars?timeframe=5Min&start=2026-12-01T14:30:00Z&end=2026-12-01T14:39:00Z');
    expect(fiveMin.text).toBe(
      page(['{"t":"2026-12-01T14:30:00Z","o":102,"h":104,"l":101.25,"c":103.9999,"v":0,"n":11,"vw":102.812475}', B.dec1_1435], null),
    );
    // A bar starting before `start` is not returned (Alpaca's bars start at or after it).
    expect((await v2('/stocks/NVDA/bars?timeframe=5Min&start=2026-12-01T14:31:00Z&end=2026-12-01T14:39:00Z')).text).toBe(page([B.dec1_1435], null));

    const hours = await v2('/stocks/NVDA/bars?timeframe=1Hour&start=2026-11-30T00:00:00Z&end=2026-12-01T23:00:00Z');
    expect(hours.text).toBe(
      page(
        [
          '{"t":"2026-11-30T15:00:00Z","o":100,"h":102,"l":99.5,"c":101.75,"v":0,"n":5,"vw":100.8125}',
          '{"t":"2026-12-01T04:00:00Z","o":101.75,"h":101.75,"l":101.7,"c":101.7,"v":0,"n":1,"vw":101.725}',
          '{"t":"2026-12-01T14:00:00Z","o":102,"h":104.25,"l":101.25,"c":103.75,"v":0,"n":12,"vw":102.8125}',
        ],
        null,
      ),
    );
    // Dates as bounds are New York midnights; 23:59 New York on Nov 30 is in Nov 30's bar.
    const daily = await v2('/stocks/NVDA/bars?timeframe=1Day&start=2026-11-30&end=2026-12-01');
    expect(daily.text).toBe(page([B.nvdaNov30, B.nvdaDec1], null));
    expect((await v2('/stocks/NVDA/bars?timeframe=1D&start=2026-11-30&end=2026-12-01&sort=desc')).text).toBe(page([B.nvdaDec1, B.nvdaNov30], null));
  });

  it('pages with next_page_token, ascending and descending', async () => {
    const query = 'timeframe=1Min&start=2026-11-30&end=2026-12-02&limit=3';
    const first = await v2(`/stocks/NVDA/bars?${query}`);
    expect(first.body.bars).toHaveLength(3);
    expect(first.text).toBe(page([B.nov30_1500, B.nov30_1501, B.dec1_0459], first.body.next_page_token));
    expect(first.body.next_page_token).toMatch(/^[A-Za-z0-9_-]+$/);
    const second = await v2(`/stocks/NVDA/bars?${query}&page_token=${first.body.next_page_token}`);
    expect(second.text).toBe(page([B.dec1_1430, B.dec1_1431, B.dec1_1433], second.body.next_page_token));
    const third = await v2(`/stocks/NVDA/bars?${query}&page_token=${second.body.next_page_token}`);
    expect(third.text).toBe(page([B.dec1_1435], null));

    const desc = 'timeframe=1Min&start=2026-12-01T14:30:00Z&end=2026-12-01T14:35:00Z&limit=2&sort=desc';
    const d1 = await v2(`/stocks/NVDA/bars?${desc}`);
    expect(d1.text).toBe(page([B.dec1_1435, B.dec1_1433], d1.body.next_page_token));
    const d2 = await v2(`/stocks/NVDA/bars?${desc}&page_token=${d1.body.next_page_token}`);
    expect(d2.text).toBe(page([B.dec1_1431, B.dec1_1430], null));
  });

  it('answers many symbols keyed by symbol, limit counting across them, unknown symbols left out', async () => {
    const query = 'timeframe=1Day&start=2026-11-30&end=2026-12-01';
    const all = await v2(`/stocks/bars?symbols=nvda,AMD,ZZZZ,KO&${query}`);
    expect(all.status).toBe(200);
    expect(all.text).toBe(`{"bars":{"AMD":[${B.amdDec1}],"NVDA":[${B.nvdaNov30},${B.nvdaDec1}]},"next_page_token":null}`);
    const first = await v2(`/stocks/bars?symbols=NVDA,AMD&${query}&limit=2`);
    expect(first.text).toBe(`{"bars":{"AMD":[${B.amdDec1}],"NVDA":[${B.nvdaNov30}]},"next_page_token":${JSON.stringify(first.body.next_page_token)}}`);
    const second = await v2(`/stocks/bars?symbols=NVDA,AMD&${query}&limit=2&page_token=${first.body.next_page_token}`);
    expect(second.text).toBe(`{"bars":{"NVDA":[${B.nvdaDec1}]},"next_page_token":null}`);
    expect((await v2(`/stocks/bars?symbols=ZZZZ&${query}`)).text).toBe('{"bars":{},"next_page_token":null}');
  });

  it("defaults to the current market day up to now: the admin's price is in this minute's bar", async () => {
    const dayOfPrice = localDateAt(Date.now(), NY);
    const res = await v2('/stocks/AAPL/bars?timeframe=1Min');
    expect(res.status).toBe(200);
    // Only across New York midnight could the bar of a moment ago belong to yesterday.
    if (localDateAt(Date.now(), NY) === dayOfPrice) {
      expect(res.body.bars).toHaveLength(1);
      expect(res.text).toMatch(/"o":150\.25,"h":150\.25,"l":150\.25,"c":150\.25,"v":0,"n":1,"vw":150\.25\}\],"symbol":"AAPL","next_page_token":null\}$/);
    }
    expect((await v2('/stocks/NVDA/bars?timeframe=1Min&start=2026-12-02&end=2026-12-03')).text).toBe(page([], null));
  });

  it('refuses timeframes it cannot build exactly, saying which exist (422)', async () => {
    for (const timeframe of ['1Week', '1Month', '7Min', '60Min', '5Hour', '2Day', '1min', 'minute']) {
      const body = await refused(`/stocks/NVDA/bars?timeframe=${timeframe}`, 422, /is not available: papertrade keeps 1-minute bars and builds 1Min, 2Min.*30Min.*1Hour.*12Hour.*1Day/);
      expect(body.code).toBe(40010001);
    }
    await refused('/stocks/NVDA/bars', 422, /timeframe is required: one of 1Min/);
    await refused('/stocks/bars?symbols=NVDA&timeframe=1Week', 422, /no week or month bars/);
  });

  it('refuses a bad limit, bad times, an end before the start and a foreign page token (422); an unknown symbol is 404', async () => {
    await refused('/stocks/NVDA/bars?timeframe=1Min&limit=0', 422, /limit must be a whole number from 1 to 10000/);
    await refused('/stocks/NVDA/bars?timeframe=1Min&limit=10001', 422, /limit must be a whole number from 1 to 10000/);
    expect((await v2('/stocks/NVDA/bars?timeframe=1Min&limit=10000&start=2026-11-30&end=2026-12-02')).body.bars).toHaveLength(7);
    await refused('/stocks/NVDA/bars?timeframe=1Min&start=yesterday', 422, /start must be an RFC 3339 timestamp/);
    await refused('/stocks/NVDA/bars?timeframe=1Min&start=2026-12-02&end=2026-12-01', 422, /end \(2026-12-01T05:00:00Z\) must not be before start \(2026-12-02T05:00:00Z\)/);
    await refused('/stocks/NVDA/bars?timeframe=1Min&page_token=bm9wZQ', 422, /page_token is not one this request returned/);
    const amd = await v2('/stocks/AMD/bars?timeframe=1Min&start=2026-11-30&end=2026-12-02&limit=1');
    expect(amd.body.next_page_token).toBeNull();
    const nvda = await v2('/stocks/NVDA/bars?timeframe=1Min&start=2026-11-30&end=2026-12-02&limit=1');
    await refused(`/stocks/AMD/bars?timeframe=1Min&start=2026-11-30&end=2026-12-02&limit=1&page_token=${nvda.body.next_page_token}`, 422, /page_token is not one this request returned/);
    const unknown = await refused('/stocks/ZZZZ/bars?timeframe=1Min', 404, /unknown ticker/);
    expect(unknown.code).toBe(40410000);
    await refused('/stocks/bars?timeframe=1Min', 422, /symbols is required/);
  });

  it('ends a page early once it has read 50,000 minutes, and the tokens then give every day once, in either order', async () => {
    // IBM trades every minute from New York midnight on Oct 15 to New York midnight on Nov 20,
    // 2026: 36 days, one of them 25 hours long (Nov 1, the end of summer time), 51,900 minutes.
    const first = Date.parse('2026-10-15T04:00:00Z');
    const until = Date.parse('2026-11-20T05:00:00Z');
    const minutes: Bar[] = [];
    for (let ms = first, i = 0; ms < until; ms += 60_000, i++) {
      const p = 1_000_000n + BigInt((i * 37) % 1000);
      minutes.push({ ticker: 'IBM', bucketMs: ms, open: p, high: p + 5n, low: p - 5n, close: p + 1n, tickCount: 1 + (i % 3) });
    }
    expect(minutes).toHaveLength(51_900);
    // The same minutes written in one statement (saveBars would take 52 round trips).
    await sql`
      INSERT INTO price_bars (ticker, bucket, open, high, low, close, tick_count)
      SELECT 'IBM', ${new Date(first)}::timestamptz + i * interval '1 minute', p, p + 0.0005, p - 0.0005, p + 0.0001, 1 + i % 3
        FROM generate_series(0, ${minutes.length - 1}) AS i, LATERAL (SELECT 100 + ((i * 37) % 1000) / 10000.0 AS p) AS price`.execute(ctx.db);

    // The daily bars, worked out here: grouped by the New York date of each minute.
    const dec = (v: bigint, scale: number) => {
      const text = v.toString().padStart(scale + 1, '0');
      return `${text.slice(0, -scale)}.${text.slice(-scale)}`.replace(/\.?0+$/, '');
    };
    const days = new Map<string, Bar>();
    for (const m of minutes) {
      const date = wallOf(m.bucketMs, NY).slice(0, 10);
      const d = days.get(date);
      if (d === undefined) days.set(date, { ...m });
      else {
        if (m.high > d.high) d.high = m.high;
        if (m.low < d.low) d.low = m.low;
        d.close = m.close;
        d.tickCount += m.tickCount;
      }
    }
    expect(days.size).toBe(36);
    const text = (d: Bar) =>
      `{"t":"${new Date(d.bucketMs).toISOString().replace('.000Z', 'Z')}","o":${dec(d.open, 4)},"h":${dec(d.high, 4)},"l":${dec(d.low, 4)},"c":${dec(d.close, 4)},"v":0,"n":${d.tickCount},"vw":${dec((d.open + d.high + d.low + d.close) * 25n, 6)}}`;
    const expected = [...days.values()].map(text);

    for (const sort of ['asc', 'desc'] as const) {
      const query = `timeframe=1Day&start=2026-10-15&end=2026-11-19&sort=${sort}`;
      const seen: string[] = [];
      const sizes: number[] = [];
      let token: string | null = null;
      do {
        const res = await v2(`/stocks/IBM/bars?${query}${token === null ? '' : `&page_token=${token}`}`);
        expect(res.status).toBe(200);
        token = res.body.next_page_token;
        const bars = res.body.bars.map((b: unknown) => JSON.stringify(b));
        expect(res.text).toBe(page(res.body.bars.map((_: unknown, i: number) => (sort === 'asc' ? expected[seen.length + i] : expected[expected.length - 1 - seen.length - i])), token, 'IBM'));
        seen.push(...bars);
        sizes.push(bars.length);
      } while (token !== null && sizes.length < 5);
      // 34 whole days fit in the first 50,000 minutes; the last two come on the second page.
      expect(sizes).toEqual([34, 2]);
      expect(seen).toHaveLength(36);
    }
  }, 60_000);

  it('answers the latest 1-minute bar, one symbol or many', async () => {
    expect((await v2('/stocks/nvda/bars/latest')).text).toBe(`{"symbol":"NVDA","bar":${B.dec1_1435}}`);
    expect((await v2('/stocks/bars/latest?symbols=NVDA,AMD,KO,ZZZZ')).text).toBe(`{"bars":{"AMD":${B.amd_1500},"NVDA":${B.dec1_1435}}}`);
    await refused('/stocks/KO/bars/latest', 404, /no bar for KO yet/);
    await refused('/stocks/ZZZZ/bars/latest', 404, /unknown ticker/);
  });
});

describe('snapshots', () => {
  const nvdaSnapshot =
    '"latestTrade":{"t":"2026-12-01T14:35:30.250Z","x":"V","p":104.5,"s":100,"c":[" "],"i":1796135730250,"z":"C"},' +
    '"latestQuote":{"t":"2026-12-01T14:35:30.250Z","ax":"V","ap":104.5,"as":5000,"bx":"V","bp":104.5,"bs":5000,"c":["R"],"z":"C"},' +
    `"minuteBar":${B.dec1_1435},"dailyBar":${B.nvdaDec1},"prevDailyBar":${B.nvdaNov30}`;

  it('answers the latest trade and quote, the minute bar, and the daily and previous daily bars', async () => {
    expect(NVDA_QUOTE_MS).toBe(1796135730250);
    const res = await v2('/stocks/nvda/snapshot');
    expect(res.status).toBe(200);
    expect(res.text).toBe(`{"symbol":"NVDA",${nvdaSnapshot}}`);
  });

  it("answers a symbol with only today's price: no previous day", async () => {
    const res = await v2('/stocks/AAPL/snapshot');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/"minuteBar":\{"t":"[^"]+","o":150\.25,"h":150\.25,"l":150\.25,"c":150\.25,"v":0,"n":1,"vw":150\.25\}/);
    expect(res.body.dailyBar).toMatchObject({ o: 150.25, c: 150.25, n: 1 });
    expect(res.body.prevDailyBar).toBeNull();
  });

  it('refuses an unknown symbol (404) and one without a price yet (503)', async () => {
    await refused('/stocks/ZZZZ/snapshot', 404, /unknown ticker/);
    await refused('/stocks/KO/snapshot', 503, /no price for KO yet/);
  });

  it('answers many symbols as a map of snapshots, leaving out those it has nothing for', async () => {
    const res = await v2('/stocks/snapshots?symbols=NVDA,aapl,KO,ZZZZ');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['AAPL', 'NVDA']);
    expect(res.text).toContain(`"NVDA":{${nvdaSnapshot}}`);
    expect(res.body.AAPL.latestTrade.p).toBe(150.25);
    await refused('/stocks/snapshots', 422, /symbols is required/);
  });
});

describe("the SDKs' parsers", () => {
  const PAPER_HOST = 'https://paper-api.alpaca.markets';
  const DATA_HOST = 'https://data.alpaca.markets';

  it('3.x reads latest trades and quotes, paged bars, snapshots, the clock and the calendar', async () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the 3.x SDK is untyped where it matters
    const v3: any = new (AlpacaV3 as any)({ keyId: user.key_id, secretKey: user.secret_key, baseUrl: api.url, dataBaseUrl: api.url, paper: true });
    expect(await v3.getLatestTrade('AAPL')).toMatchObject({ Price: 150.25, Size: 100, Exchange: 'V', Tape: 'C' });
    expect(await v3.getLatestQuote('MSFT')).toMatchObject({ BidPrice: 400.0599, AskPrice: 400.14 });
    const latest = await v3.getLatestTrades(['AAPL', 'MSFT', 'ZZZZ']);
    expect([...latest.keys()]).toEqual(['AAPL', 'MSFT']);

    // getBarsV2 follows next_page_token on its own: pages of three (limit 3, 3, then 1).
    const bars = [];
    for await (const bar of v3.getBarsV2('NVDA', { timeframe: v3.newTimeframe(1, v3.timeframeUnit.MIN), start: '2026-11-30', end: '2026-12-02', limit: 7, pageLimit: 3 })) bars.push(bar);
    expect(bars.map((b: { Timestamp: string }) => b.Timestamp)).toEqual(SCRIPTED.filter((b) => b.ticker === 'NVDA').map((b) => new Date(b.bucketMs).toISOString().replace('.000Z', 'Z')));
    expect(bars[5]).toMatchObject({ OpenPrice: 102.95, HighPrice: 104, LowPrice: 102.95, ClosePrice: 103.9999, Volume: 0, TradeCount: 5, VWAP: 103.474975 });
    const multi = await v3.getMultiBarsV2(['NVDA', 'AMD'], { timeframe: v3.newTimeframe(1, v3.timeframeUnit.DAY), start: '2026-11-30', end: '2026-12-01' });
    expect(multi.get('NVDA').map((b: { ClosePrice: number }) => b.ClosePrice)).toEqual([101.7, 103.75]);
    expect(multi.get('AMD')).toHaveLength(1);

    expect(await v3.getSnapshot('NVDA')).toMatchObject({ symbol: 'NVDA', LatestTrade: { Price: 104.5 }, MinuteBar: { ClosePrice: 103.75 }, DailyBar: { OpenPrice: 102 }, PrevDailyBar: { ClosePrice: 101.7 } });
    const snapshots = await v3.getSnapshots(['NVDA', 'AAPL', 'KO']);
    expect(snapshots.map((x: { symbol: string }) => x.symbol)).toEqual(['AAPL', 'NVDA']);

    expect(typeof (await v3.getClock()).is_open).toBe('boolean');
    const calendar = await v3.getCalendar({ start: '2026-11-25', end: '2026-11-30' });
    expect(calendar.map((d: { date: string }) => d.date)).toEqual(['2026-11-25', '2026-11-27', '2026-11-30']);
  });

  it('4.x reads latest trades, bars (collected across pages), snapshots and the calendar', async () => {
    const toPapertrade = {
      pre: async (context: { url: string; init: RequestInit }) => ({ url: context.url.replace(PAPER_HOST, api.url).replace(DATA_HOST, api.url), init: context.init }),
    };
    const v4 = new Alpaca({ keyId: user.key_id, secret: user.secret_key, paper: true, middleware: [toPapertrade], retry: false, rateLimit: false });
    const stocks = v4.marketData.stocks;
    expect((await stocks.stockLatestTradeSingle({ symbol: 'AAPL' })).trade.p).toBe(150.25);
    expect((await stocks.stockLatestQuoteSingle({ symbol: 'AAPL', feed: 'iex' })).quote).toMatchObject({ ap: 150.26, bp: 150.24, as: 500, bs: 300 });
    expect(Object.keys((await stocks.stockLatestTrades({ symbols: 'AAPL,MSFT,KO' })).trades)).toEqual(['AAPL', 'MSFT']);

    const single = await stocks.stockBarSingle({ symbol: 'NVDA', timeframe: '5Min', start: new Date('2026-12-01T14:30:00Z'), end: new Date('2026-12-01T14:39:00Z') });
    expect(single.symbol).toBe('NVDA');
    expect(single.nextPageToken).toBeNull();
    expect(single.bars.map((b) => [b.t.toISOString(), b.o, b.c, b.n])).toEqual([
      ['2026-12-01T14:30:00.000Z', 102, 103.9999, 11],
      ['2026-12-01T14:35:00.000Z', 104, 103.75, 1],
    ]);
    const collected = await v4.marketData.collectStockBarsBySymbol({ symbols: ['NVDA', 'AMD'], timeframe: TimeFrame.Minute, start: new Date('2026-11-30T05:00:00Z'), end: new Date('2026-12-02T05:00:00Z'), limit: 2 });
    expect(Object.keys(collected).sort()).toEqual(['AMD', 'NVDA']);
    expect(collected.NVDA).toHaveLength(7);
    expect(collected.AMD).toHaveLength(1);

    const snapshot = await stocks.stockSnapshotSingle({ symbol: 'NVDA' });
    expect(snapshot.latestTrade?.p).toBe(104.5);
    expect(snapshot.dailyBar?.t.toISOString()).toBe('2026-12-01T05:00:00.000Z');
    expect(snapshot.prevDailyBar?.c).toBe(101.7);
    const snapshots = await stocks.stockSnapshots({ symbols: 'NVDA,AAPL,ZZZZ' });
    expect(Object.keys(snapshots)).toEqual(['AAPL', 'NVDA']);

    // 4.x sends the calendar's bounds as full timestamps: their New York dates are read.
    const calendar = await v4.trading.calendar.legacyCalendar({ start: new Date('2026-11-25T12:00:00Z'), end: new Date('2026-11-30T12:00:00Z') });
    expect(calendar.map((d) => [d.date.toISOString().slice(0, 10), d.open, d.close, d.settlementDate.toISOString().slice(0, 10)])).toEqual([
      ['2026-11-25', '09:30', '16:00', '2026-11-27'],
      ['2026-11-27', '09:30', '13:00', '2026-11-30'],
      ['2026-11-30', '09:30', '16:00', '2026-12-01'],
    ]);
  });
});
