/**
 * Alpaca's current SDK, `@alpacahq/alpaca-trade-api` 4.x (the TypeScript rewrite), driving a
 * running papertrade. 4.x has no base-URL option: as its migration guide says, a `pre`
 * middleware rewrites its paper and data hosts to papertrade's, and the trading stream takes a
 * `url`. Its quirks the server must take: amounts as strings, calendar dates as full
 * timestamps, `listen` sent twice (after authentication and on subscribe), Node's fetch, pings
 * every 10 s with a 5 s pong deadline, and typed errors by status.
 */
import { Alpaca, errors, streaming } from '@alpacahq/alpaca-trade-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './harness.js';
import { startSdkStack, type SdkStack, type SdkUser, type SeenUpdate } from './alpaca-sdk-fixture.js';

let stack: SdkStack;
let user: SdkUser;
let alpaca: Alpaca;

const PAPER_HOST = 'https://paper-api.alpaca.markets';
const DATA_HOST = 'https://data.alpaca.markets';

function connect(u: SdkUser): Alpaca {
  const toPapertrade = {
    pre: async (context: { url: string; init: RequestInit }) => ({
      url: context.url.replace(PAPER_HOST, stack.baseUrl).replace(DATA_HOST, stack.baseUrl),
      init: context.init,
    }),
  };
  return new Alpaca({ keyId: u.key_id, secret: u.secret_key, paper: true, middleware: [toPapertrade], retry: false, rateLimit: false });
}

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
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

describe('@alpacahq/alpaca-trade-api 4.x', () => {
  it('reads the account, the clock, the calendar, the assets and the latest trade', async () => {
    const account = await alpaca.trading.account.getAccount();
    expect(account).toMatchObject({ id: user.id, cash: '100000.00', buyingPower: '100000.00', equity: '100000.00', currency: 'USD' });
    const clock = await alpaca.trading.clock.legacyClock();
    expect(typeof clock.isOpen).toBe('boolean');
    // 4.x sends the calendar's start and end as full timestamps.
    const calendar = await alpaca.trading.calendar.legacyCalendar({ start: new Date('2026-12-01T00:00:00Z'), end: new Date('2026-12-04T00:00:00Z') });
    expect(calendar.length).toBeGreaterThan(0);
    const assets = await alpaca.trading.assets.getV2Assets({ status: 'active' });
    expect(assets.map((a) => a.symbol)).toContain('MSFT');
    const msft = await alpaca.trading.assets.getV2AssetsSymbolOrAssetId({ symbolOrAssetId: 'MSFT' });
    expect(msft.symbol).toBe('MSFT');
    const latest = await alpaca.marketData.stocks.stockLatestTradeSingle({ symbol: 'MSFT' });
    expect(latest.trade.p).toBe(400);
  });

  it('buys at the market: new then fill on trade_updates, each once although listen is sent twice', async () => {
    const updates: SeenUpdate[] = [];
    const stream = alpaca.trading.stream({ url: stack.streamUrl });
    let listening = 0;
    stream.on(streaming.EVENT.SUBSCRIPTION, () => {
      listening += 1;
    });
    stream.onTradeUpdate((u) => {
      updates.push({ event: u.event, orderId: u.order.id!, status: String(u.order.status), price: u.price, qty: u.qty, positionQty: u.positionQty, executionId: u.executionId });
    });
    stream.subscribeTradeUpdates();
    stream.connect();
    // Subscribed before connecting, 4.x sends listen once authenticated (its resubscribe); a bot
    // that subscribes again once connected sends a second one. Both are acknowledged, and the
    // events below still come once each.
    await eventually(async () => (listening >= 1 ? true : undefined));
    stream.subscribeTradeUpdates();
    await eventually(async () => (listening >= 2 ? true : undefined));

    const order = await alpaca.trading.orders.market({ symbol: 'AAPL', qty: '2', side: 'buy' });
    expect(order).toMatchObject({ symbol: 'AAPL', qty: '2', side: 'buy', type: 'market', status: 'pending_new' });
    await eventually(async () => (updates.some((u) => u.orderId === order.id && u.event === 'fill') ? true : undefined));
    const mine = updates.filter((u) => u.orderId === order.id);
    expect(mine.map((u) => u.event)).toEqual(['new', 'fill']);
    expect(mine[1]).toMatchObject({ status: 'filled', price: '150.0000', qty: '2', positionQty: '2' });
    stream.disconnect();

    const filled = await alpaca.trading.orders.getOrderByOrderID({ orderId: order.id! });
    expect(filled).toMatchObject({ status: 'filled', filledQty: '2', filledAvgPrice: '150.0000' });
  });

  it('replaces a resting limit and cancels it', async () => {
    const order = await alpaca.trading.orders.limit({ symbol: 'AAPL', qty: '1', side: 'buy', limitPrice: '100.5', timeInForce: 'gtc', clientOrderId: 'v4-limit' });
    await eventually(async () => ((await alpaca.trading.orders.getOrderByOrderID({ orderId: order.id! })).status === 'new' ? true : undefined));
    const byClient = await alpaca.trading.orders.getOrderByClientOrderId({ clientOrderId: 'v4-limit' });
    expect(byClient.id).toBe(order.id);
    const replaced = await alpaca.trading.orders.patchOrderByOrderId({ orderId: order.id!, patchOrderRequest: { qty: '3', limitPrice: '101' } });
    expect(replaced).toMatchObject({ qty: '3', limitPrice: '101.0000', replaces: order.id });
    await eventually(async () => ((await alpaca.trading.orders.getOrderByOrderID({ orderId: replaced.id! })).status === 'new' ? true : undefined));
    await alpaca.trading.orders.deleteOrderByOrderID({ orderId: replaced.id! });
    expect((await alpaca.trading.orders.getOrderByOrderID({ orderId: replaced.id! })).status).toBe('canceled');
    const closed = await alpaca.trading.orders.getAllOrders({ status: 'closed', symbols: ['AAPL'] });
    expect(closed.map((o) => o.id)).toEqual(expect.arrayContaining([order.id, replaced.id]));
  });

  it('lists and closes positions, and reads activities and portfolio history', async () => {
    const positions = await alpaca.trading.positions.getAllOpenPositions();
    expect(positions.map((p) => [p.symbol, p.qty, p.avgEntryPrice, p.marketValue])).toEqual([['AAPL', '2', '150.0000', '300.00']]);
    const closing = await alpaca.trading.positions.deleteOpenPosition({ symbolOrAssetId: 'AAPL' });
    expect(closing).toMatchObject({ symbol: 'AAPL', side: 'sell', qty: '2' });
    await eventually(async () => ((await alpaca.trading.orders.getOrderByOrderID({ orderId: closing.id! })).status === 'filled' ? true : undefined));
    expect(await alpaca.trading.positions.getAllOpenPositions()).toEqual([]);
    expect(await refusal(alpaca.trading.positions.getOpenPosition({ symbolOrAssetId: 'AAPL' }))).toBeInstanceOf(errors.NotFoundError);

    const fills = await alpaca.trading.accountActivities.getAccountActivitiesByActivityType({ activityType: 'FILL' });
    expect(fills).toHaveLength(2);
    // 4.x decodes every activity as a non-trade one (its generated oneOf tries that first and
    // takes anything), which drops a fill's side and price; the raw answer has them.
    const raw = await alpaca.trading.accountActivities.getAccountActivitiesByActivityTypeRaw({ activityType: 'FILL' });
    expect(((await raw.raw.json()) as { side: string; qty: string; price: string }[]).map((a) => [a.side, a.qty, a.price])).toEqual([
      ['sell', '2', '150.0000'],
      ['buy', '2', '150.0000'],
    ]);
    const history = await alpaca.trading.portfolioHistory.getAccountPortfolioHistory({ period: '1D', timeframe: '5Min' });
    expect(history.equity?.length).toBe(history.timestamp?.length);
  });

  it('throws the SDK\'s typed errors for refused orders and bad credentials', async () => {
    const poor = await refusal(alpaca.trading.orders.market({ symbol: 'AAPL', qty: '100000', side: 'buy' }));
    expect(poor).toBeInstanceOf(errors.PermissionError);
    expect(poor).toMatchObject({ status: 403, code: 40310000 });
    const invalid = await refusal(alpaca.trading.orders.submit({ symbol: 'AAPL', qty: '1', side: 'buy', type: 'limit', timeInForce: 'day' } as never));
    expect(invalid).toBeInstanceOf(errors.ValidationError);
    expect(invalid).toMatchObject({ status: 422 });
    const stranger = connect({ ...user, secret_key: 'A'.repeat(43) });
    const denied = await refusal(stranger.trading.account.getAccount());
    expect(denied).toBeInstanceOf(errors.AuthError);
    expect(denied).toMatchObject({ status: 401, code: 40110000 });
  });
});
