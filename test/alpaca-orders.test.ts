/**
 * Alpaca's order routes over real HTTP with Alpaca's key headers: the shapes, statuses and
 * error bodies Alpaca documents, and the one order path — an order placed on /v2 is the same
 * order on the native API and in the event log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPrice, apiUser, eventually, startTradingStack, type TestServer } from './harness.js';

let stack: Awaited<ReturnType<typeof startTradingStack>>;
let api: TestServer;
let user: { id: string; api_key: string; key_id: string; secret_key: string };

const apca = (u: { key_id: string; secret_key: string }) => ({ 'APCA-API-KEY-ID': u.key_id, 'APCA-API-SECRET-KEY': u.secret_key });
const v2 = (method: string, path: string, body?: unknown, u: { key_id: string; secret_key: string } = user) => api.request(method, `/v2${path}`, { token: null, headers: apca(u), body });

beforeAll(async () => {
  stack = await startTradingStack();
  api = stack.api;
  await adminPrice(api, 'AAPL', '150.00');
  await adminPrice(api, 'MSFT', '400.00');
  user = (await apiUser(api, '100000.00')) as typeof user;
});

afterAll(async () => {
  await stack?.engine.stop();
  await api?.server.close();
  await stack?.ctx.close();
});

const filled = (id: string, u = user) =>
  eventually(async () => {
    const res = await v2('GET', `/orders/${id}`, undefined, u);
    return res.body.status === 'filled' ? res.body : undefined;
  });

describe('credentials', () => {
  it('key creation returns the key pair, which authenticates as the same key', async () => {
    expect(user.key_id).toMatch(/^[0-9a-f]{16}$/);
    expect(user.api_key).toBe(`ptk_${user.key_id}_${user.secret_key}`);
    const res = await v2('GET', '/orders');
    expect(res.status).toBe(200);
  });

  it('a wrong secret is 401 in Alpaca shape; no credentials too', async () => {
    const bad = await v2('GET', '/orders', undefined, { key_id: user.key_id, secret_key: 'x'.repeat(43) });
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ code: 40110000 });
    const none = await api.request('GET', '/v2/orders', { token: null });
    expect(none.status).toBe(401);
    expect(typeof none.body.message).toBe('string');
  });

  it('the bearer form keeps working on /v2; the admin token is refused (no account of its own)', async () => {
    expect((await api.request('GET', '/v2/orders', { token: user.api_key })).status).toBe(200);
    const admin = await api.request('GET', '/v2/orders');
    expect(admin.status).toBe(403);
    expect(admin.body.code).toBe(40310000);
  });
});

describe('POST /v2/orders', () => {
  it('places a market order (quantities as JSON numbers, as 3.x sends them) that fills, in Alpaca shape', async () => {
    const res = await v2('POST', '/orders', { symbol: 'aapl', qty: 2, side: 'buy', type: 'market', time_in_force: 'day' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      symbol: 'AAPL',
      qty: '2',
      filled_qty: '0',
      side: 'buy',
      type: 'market',
      order_type: 'market',
      time_in_force: 'day',
      status: 'pending_new',
      asset_class: 'us_equity',
      order_class: '',
      extended_hours: false,
      legs: null,
    });
    // No client_order_id given: the order's id stands for one, and finds the order too.
    expect(res.body.client_order_id).toBe(res.body.id);
    expect((await v2('GET', `/orders:by_client_order_id?client_order_id=${res.body.id}`)).body.id).toBe(res.body.id);
    expect(res.body.asset_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const done = await filled(res.body.id);
    expect(done).toMatchObject({ filled_qty: '2', filled_avg_price: '150.0000' });
    expect(Date.parse(done.filled_at)).toBeGreaterThan(0);

    // The one order path: the native API and the event log know the same order.
    const native = await api.request('GET', `/orders/${res.body.id}`, { token: user.api_key });
    expect(native.body).toMatchObject({ status: 'FILLED', ticker: 'AAPL', quantity: '2', client_order_id: null });
    const events = await api.request('GET', `/users/${user.id}/events`, { token: user.api_key });
    const types = events.body.events.filter((e: { data: { id: string } }) => e.data.id === res.body.id).map((e: { type: string }) => e.type);
    expect(types).toEqual(['order.new', 'order.fill']);
  });

  it('takes quantities and prices as strings (as 4.x sends them); a resting limit is new', async () => {
    const res = await v2('POST', '/orders', { symbol: 'AAPL', qty: '1.5', side: 'buy', type: 'limit', limit_price: '100.25', time_in_force: 'gtc', client_order_id: 'limit-1' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ qty: '1.5', limit_price: '100.2500', client_order_id: 'limit-1' });
    const open = await eventually(async () => {
      const r = await v2('GET', `/orders/${res.body.id}`);
      return r.body.status === 'new' ? r.body : undefined;
    });
    expect(open.status).toBe('new');
    // The same client_order_id and request again: the same order (papertrade's idempotency).
    const again = await v2('POST', '/orders', { symbol: 'AAPL', qty: '1.5', side: 'buy', type: 'limit', limit_price: '100.25', time_in_force: 'gtc', client_order_id: 'limit-1' });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(res.body.id);
    const byClient = await v2('GET', '/orders:by_client_order_id?client_order_id=limit-1');
    expect(byClient.status).toBe(200);
    expect(byClient.body.id).toBe(res.body.id);
  });

  it('a notional market order buys the most shares the amount buys at the quote', async () => {
    const res = await v2('POST', '/orders', { symbol: 'MSFT', notional: '1000', side: 'buy', type: 'market', time_in_force: 'day' });
    expect(res.status).toBe(200);
    expect(res.body.qty).toBe('2.5');
    await filled(res.body.id);
    const limit = await v2('POST', '/orders', { symbol: 'MSFT', notional: '1000', side: 'buy', type: 'limit', limit_price: '1', time_in_force: 'day' });
    expect(limit.status).toBe(422);
    expect(limit.body.message).toMatch(/notional orders must be market orders/);
  });

  it('refuses what Alpaca refuses: 403 for buying power and qty, 422 for invalid orders', async () => {
    const poor = await v2('POST', '/orders', { symbol: 'AAPL', qty: '100000', side: 'buy', type: 'market', time_in_force: 'day' });
    expect(poor.status).toBe(403);
    expect(poor.body.code).toBe(40310000);
    expect(poor.body.message).toMatch(/^insufficient buying power/);
    expect(poor.body.error.code).toBe('ORDER_REJECTED');
    expect(poor.body.error.cause.code).toBe('INSUFFICIENT_FUNDS');

    const noShares = await v2('POST', '/orders', { symbol: 'MSFT', qty: '50', side: 'sell', type: 'market', time_in_force: 'day' });
    expect(noShares.status).toBe(403);
    expect(noShares.body.message).toMatch(/^insufficient qty available for order/);

    const cases: [unknown, RegExp][] = [
      [{ symbol: 'AAPL', qty: '1', side: 'buy', type: 'limit', time_in_force: 'day' }, /limit_price is required/],
      [{ symbol: 'AAPL', qty: '0', side: 'buy', type: 'market', time_in_force: 'day' }, /qty/],
      [{ symbol: 'AAPL', side: 'buy', type: 'market', time_in_force: 'day' }, /qty or notional is required/],
      [{ symbol: 'AAPL', qty: '1', notional: '10', side: 'buy', type: 'market', time_in_force: 'day' }, /cannot both/],
      [{ symbol: 'AAPL', qty: '1', side: 'buy', type: 'market' }, /time_in_force is required/],
      [{ symbol: 'AAPL', qty: '1', side: 'buy', type: 'market', time_in_force: 'day', extended_hours: true }, /extended hours order must be DAY limit orders/],
      [{ symbol: 'AAPL', qty: '1', side: 'buy', type: 'market', time_in_force: 'day', order_class: 'bracket', take_profit: { limit_price: '200' } }, /order_class bracket is not supported/],
      [{ symbol: 'AAPL', qty: '1', side: 'sell', type: 'market', time_in_force: 'day', position_intent: 'sell_to_open' }, /without shorting/],
      [{ symbol: 'NOPE', qty: '1', side: 'buy', type: 'market', time_in_force: 'day' }, /asset "NOPE" not found/],
      [{ symbol: 'AAPL', qty: '1', side: 'buy', type: 'market', time_in_force: 'day', colour: 'red' }, /unknown field colour/],
    ];
    for (const [body, message] of cases) {
      const res = await v2('POST', '/orders', body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.code, JSON.stringify(body)).toBe(res.body.code === 42210000 ? 42210000 : 40010001);
      expect(res.body.message, JSON.stringify(body)).toMatch(message);
    }
    // A body that is not JSON is Alpaca's 400.
    const garbage = await api.request('POST', '/v2/orders', { token: null, headers: apca(user), body: '{"symbol":' });
    expect(garbage.status).toBe(400);
    expect(garbage.body.code).toBe(40010000);
  });

  it('accepts extended_hours on a DAY limit order', async () => {
    const res = await v2('POST', '/orders', { symbol: 'AAPL', qty: '1', side: 'buy', type: 'limit', limit_price: '90', time_in_force: 'day', extended_hours: true });
    expect(res.status).toBe(200);
    expect((await v2('DELETE', `/orders/${res.body.id}`)).status).toBe(204);
  });
});

describe('replace, cancel and list', () => {
  it('PATCH replaces an open limit: the old one is replaced, the answer is the new one; DELETE is 204', async () => {
    const placed = await v2('POST', '/orders', { symbol: 'AAPL', qty: '3', side: 'buy', type: 'limit', limit_price: '120', time_in_force: 'gtc' });
    await eventually(async () => ((await v2('GET', `/orders/${placed.body.id}`)).body.status === 'new' ? true : undefined));
    const replaced = await v2('PATCH', `/orders/${placed.body.id}`, { qty: '4', limit_price: '121.5' });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ qty: '4', limit_price: '121.5000', replaces: placed.body.id });
    const old = await v2('GET', `/orders/${placed.body.id}`);
    expect(old.body).toMatchObject({ status: 'replaced', replaced_by: replaced.body.id });
    expect(old.body.replaced_at).not.toBeNull();

    await eventually(async () => ((await v2('GET', `/orders/${replaced.body.id}`)).body.status === 'new' ? true : undefined));
    // 3.x sends Content-Type: "" (and no body) on every DELETE.
    const res = await fetch(`${api.url}/v2/orders/${replaced.body.id}`, { method: 'DELETE', headers: { ...apca(user), 'content-type': '' } });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    const canceled = await v2('GET', `/orders/${replaced.body.id}`);
    expect(canceled.body.status).toBe('canceled');
    const again = await v2('DELETE', `/orders/${replaced.body.id}`);
    expect(again.status).toBe(422);
    expect(again.body.code).toBe(42210000);
  });

  it('an unknown order is 404 (also for an id that is no UUID); another user\'s order too', async () => {
    expect((await v2('GET', '/orders/0190b7a0-0000-7000-8000-000000000000')).status).toBe(404);
    const res = await v2('GET', '/orders/not-an-id');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe(40410000);
    const other = (await apiUser(api)) as typeof user;
    const mine = await v2('POST', '/orders', { symbol: 'AAPL', qty: '1', side: 'buy', type: 'limit', limit_price: '50', time_in_force: 'gtc' });
    expect((await v2('GET', `/orders/${mine.body.id}`, undefined, other)).status).toBe(404);
    expect((await v2('DELETE', `/orders/${mine.body.id}`, undefined, other)).status).toBe(404);
    expect((await v2('GET', '/orders:by_client_order_id?client_order_id=limit-1', undefined, other)).status).toBe(404);
  });

  it('GET /v2/orders filters by status, symbols, side, after/until and direction', async () => {
    const u = (await apiUser(api)) as typeof user;
    const a = await v2('POST', '/orders', { symbol: 'AAPL', qty: '1', side: 'buy', type: 'limit', limit_price: '10', time_in_force: 'gtc' }, u);
    const b = await v2('POST', '/orders', { symbol: 'MSFT', qty: '1', side: 'buy', type: 'limit', limit_price: '10', time_in_force: 'gtc' }, u);
    const c = await v2('POST', '/orders', { symbol: 'AAPL', qty: '1', side: 'buy', type: 'market', time_in_force: 'day' }, u);
    await filled(c.body.id, u);
    const ids = (res: { body: { id: string }[] }) => res.body.map((o) => o.id);
    expect(ids(await v2('GET', '/orders', undefined, u))).toEqual([b.body.id, a.body.id]);
    expect(ids(await v2('GET', '/orders?status=closed', undefined, u))).toEqual([c.body.id]);
    expect(ids(await v2('GET', '/orders?status=all&direction=asc', undefined, u))).toEqual([a.body.id, b.body.id, c.body.id]);
    expect(ids(await v2('GET', '/orders?status=all&symbols=aapl', undefined, u))).toEqual([c.body.id, a.body.id]);
    expect(ids(await v2('GET', '/orders?status=all&side=sell', undefined, u))).toEqual([]);
    expect(ids(await v2('GET', '/orders?status=all&limit=1', undefined, u))).toEqual([c.body.id]);
    expect(ids(await v2('GET', `/orders?status=all&after=${encodeURIComponent(a.body.created_at)}&direction=asc`, undefined, u))).toEqual([b.body.id, c.body.id]);
    expect(ids(await v2('GET', `/orders?status=all&until=${encodeURIComponent(a.body.created_at)}`, undefined, u))).toEqual([a.body.id]);
    expect(ids(await v2('GET', '/orders?status=all&nested=true&after=2000-01-01', undefined, u))).toHaveLength(3);
    const bad = await v2('GET', '/orders?limit=501', undefined, u);
    expect(bad.status).toBe(422);
    expect((await v2('GET', '/orders?after=yesterday', undefined, u)).body.message).toMatch(/after must be an RFC 3339 timestamp/);
    expect((await v2('GET', '/orders?status=pending', undefined, u)).status).toBe(422);

    const all = await v2('DELETE', '/orders', undefined, u);
    expect(all.status).toBe(207);
    expect(all.body.map((r: { id: string; status: number }) => [r.id, r.status]).sort()).toEqual([[a.body.id, 200], [b.body.id, 200]].sort());
    expect(all.body[0].body.status).toBe('canceled');
  });

  it('takes a bodiless GET with Content-Type: application/json, as 3.x sends every GET', async () => {
    const res = await fetch(`${api.url}/v2/orders?status=all&limit=1`, { headers: { ...apca(user), 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    expect(Array.isArray(await res.json())).toBe(true);
  });

  it('an unknown /v2 route is 404 in Alpaca shape', async () => {
    const res = await v2('GET', '/watchlists');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe(40410000);
  });
});
