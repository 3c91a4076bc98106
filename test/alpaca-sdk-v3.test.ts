/**
 * Alpaca's classic SDK, `@alpacahq/alpaca-trade-api` 3.x (installed as `alpaca-trade-api-v3`),
 * driving a running papertrade as a bot written from Alpaca's documentation would: only
 * `baseUrl` and `dataBaseUrl` point here. Its quirks the server must take: `Content-Type: ""`
 * on every DELETE, `application/json` on bodiless GETs, quantities and prices as JSON numbers,
 * calendar dates as YYYY-MM-DD, and a stream client that stops reading at a frame without an
 * object `data`.
 */
import Alpaca from 'alpaca-trade-api-v3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './harness.js';
import { startSdkStack, type SdkStack, type SdkUser, type SeenUpdate } from './alpaca-sdk-fixture.js';

// The SDK is untyped where it matters (it resolves with Alpaca's JSON); the tests read that JSON.
/* eslint-disable @typescript-eslint/no-explicit-any */
type Client = any;

let stack: SdkStack;
let user: SdkUser;
let alpaca: Client;

const connect = (u: SdkUser): Client => new (Alpaca as any)({ keyId: u.key_id, secretKey: u.secret_key, baseUrl: stack.baseUrl, dataBaseUrl: stack.baseUrl, paper: true });

/** The HTTP status and Alpaca code of a refusal, as axios (under the SDK) rejects with it. */
async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: number; message: string }> {
  try {
    await promise;
  } catch (err: any) {
    return { status: err.response?.status, code: err.response?.data?.code, message: err.response?.data?.message };
  }
  throw new Error('the SDK call succeeded');
}

beforeAll(async () => {
  stack = await startSdkStack();
  user = await stack.newUser('100000.00');
  alpaca = connect(user);
});

afterAll(async () => {
  await stack?.close();
});

describe('alpaca-trade-api 3.x', () => {
  it('reads the account, the clock, the calendar and the assets', async () => {
    const account = await alpaca.getAccount();
    expect(account).toMatchObject({ id: user.id, status: 'ACTIVE', currency: 'USD', cash: '100000.00', buying_power: '100000.00', equity: '100000.00' });
    const clock = await alpaca.getClock();
    expect(typeof clock.is_open).toBe('boolean');
    expect(Date.parse(clock.next_open)).toBeGreaterThan(0);
    const calendar = await alpaca.getCalendar({ start: new Date('2026-12-01T12:00:00Z'), end: new Date('2026-12-04T12:00:00Z') });
    expect(calendar.length).toBeGreaterThan(0);
    expect(calendar[0].date).toMatch(/^2026-12-0\d$/);
    const assets = await alpaca.getAssets({ status: 'active' });
    expect(assets.map((a: any) => a.symbol)).toContain('AAPL');
    const aapl = await alpaca.getAsset('AAPL');
    expect(aapl).toMatchObject({ symbol: 'AAPL', class: 'us_equity', tradable: true });
    const trade = await alpaca.getLatestTrade('AAPL');
    expect(trade.Price).toBe(150);
  });

  it('buys at the market and sees new then fill on trade_updates, each once, in order', async () => {
    const updates: SeenUpdate[] = [];
    const frames: unknown[] = [];
    const ws = alpaca.trade_ws;
    ws.onOrderUpdate((data: any) => {
      frames.push(data);
      updates.push({ event: data.event, orderId: data.order.id, status: data.order.status, price: data.price, qty: data.qty, positionQty: data.position_qty, executionId: data.execution_id });
    });
    ws.onConnect(() => ws.subscribe(['trade_updates']));
    ws.connect();
    // The SDK only logs the listening reply; the test waits for it on the SDK's socket, so that
    // the order below is placed once the stream follows the account.
    await new Promise<void>((resolve) => {
      ws.conn.on('message', (data: Buffer) => {
        if (JSON.parse(data.toString('utf8')).stream === 'listening') resolve();
      });
    });

    const order = await alpaca.createOrder({ symbol: 'AAPL', qty: 2, side: 'buy', type: 'market', time_in_force: 'day' });
    expect(order).toMatchObject({ symbol: 'AAPL', qty: '2', side: 'buy', type: 'market', status: 'pending_new' });
    await eventually(async () => (updates.some((u) => u.orderId === order.id && u.event === 'fill') ? true : undefined));
    const mine = updates.filter((u) => u.orderId === order.id);
    expect(mine.map((u) => u.event)).toEqual(['new', 'fill']);
    expect(mine[1]).toMatchObject({ status: 'filled', price: '150.0000', qty: '2', positionQty: '2' });
    expect(mine[1]!.executionId).toMatch(/^[0-9a-f-]{36}$/);
    ws.disconnect();

    const filled = await alpaca.getOrder(order.id);
    expect(filled).toMatchObject({ status: 'filled', filled_qty: '2', filled_avg_price: '150.0000' });
  });

  it('replaces a resting limit and cancels it (DELETE sends Content-Type: "")', async () => {
    const order = await alpaca.createOrder({ symbol: 'AAPL', qty: 1, side: 'buy', type: 'limit', limit_price: 100.5, time_in_force: 'gtc', client_order_id: 'v3-limit' });
    expect(order.limit_price).toBe('100.5000');
    await eventually(async () => ((await alpaca.getOrder(order.id)).status === 'new' ? true : undefined));
    const byClient = await alpaca.getOrderByClientId('v3-limit');
    expect(byClient.id).toBe(order.id);
    const replaced = await alpaca.replaceOrder(order.id, { qty: 3, limit_price: 101 });
    expect(replaced).toMatchObject({ qty: '3', limit_price: '101.0000', replaces: order.id });
    expect((await alpaca.getOrder(order.id)).status).toBe('replaced');
    await eventually(async () => ((await alpaca.getOrder(replaced.id)).status === 'new' ? true : undefined));
    await alpaca.cancelOrder(replaced.id);
    expect((await alpaca.getOrder(replaced.id)).status).toBe('canceled');
    const open = await alpaca.getOrders({ status: 'open' });
    expect(open.map((o: any) => o.id)).not.toContain(replaced.id);
    const closed = await alpaca.getOrders({ status: 'closed', symbols: 'AAPL', direction: 'asc', limit: 100 });
    expect(closed.map((o: any) => o.id)).toEqual(expect.arrayContaining([order.id, replaced.id]));
  });

  it('lists and closes positions, and reads activities and portfolio history', async () => {
    const positions = await alpaca.getPositions();
    expect(positions).toHaveLength(1);
    expect(positions[0]).toMatchObject({ symbol: 'AAPL', qty: '2', side: 'long', avg_entry_price: '150.0000' });
    const position = await alpaca.getPosition('AAPL');
    expect(position.market_value).toBe('300.00');
    const closing = await alpaca.closePosition('AAPL');
    expect(closing).toMatchObject({ symbol: 'AAPL', side: 'sell', qty: '2', type: 'market' });
    await eventually(async () => ((await alpaca.getOrder(closing.id)).status === 'filled' ? true : undefined));
    expect(await alpaca.getPositions()).toEqual([]);
    expect((await refusal(alpaca.getPosition('AAPL'))).status).toBe(404);

    const fills = await alpaca.getAccountActivities({ activityTypes: ['FILL'] });
    expect(fills.map((a: any) => [a.side, a.qty, a.price])).toEqual([
      ['sell', '2', '150.0000'],
      ['buy', '2', '150.0000'],
    ]);
    const history = await alpaca.getPortfolioHistory({ period: '1D', timeframe: '5Min' });
    expect(Array.isArray(history.timestamp)).toBe(true);
    expect(history.equity).toHaveLength(history.timestamp.length);
  });

  it('sees Alpaca\'s statuses and codes for refused orders and bad credentials', async () => {
    const poor = await refusal(alpaca.createOrder({ symbol: 'AAPL', qty: 100000, side: 'buy', type: 'market', time_in_force: 'day' }));
    expect(poor).toMatchObject({ status: 403, code: 40310000 });
    expect(poor.message).toMatch(/^insufficient buying power/);
    const invalid = await refusal(alpaca.createOrder({ symbol: 'AAPL', qty: 1, side: 'buy', type: 'limit', time_in_force: 'day' }));
    expect(invalid).toMatchObject({ status: 422 });
    expect(invalid.message).toMatch(/limit_price is required/);
    const stranger = connect({ ...user, secret_key: 'A'.repeat(43) });
    expect(await refusal(stranger.getAccount())).toMatchObject({ status: 401, code: 40110000 });
  });
});
