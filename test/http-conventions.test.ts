/**
 * The API's conventions, one rule each, over real HTTP: the minimum notional that stops the
 * free-shares exploit, idempotent deposits and withdrawals, tickers in any case, exact JSON
 * numbers, empty bodies, 404/405, messages in words, GET /me, the implied user_id and CORS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { parsePrice } from '../src/core/money.js';
import { ADMIN_TOKEN, createTestContext, eventually, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;

beforeAll(async () => {
  ctx = await createTestContext({ PRICE_AGE_MS_MAX: '86400000', ENGINE_BLOCK_MS: '50' });
  api = await startTestServer(ctx);
});
afterAll(async () => {
  await api?.server.close();
  await ctx?.close();
});

async function setPrice(ticker: string, price: string) {
  await ctx.quotes.setMany([{ ticker, price: parsePrice(price), asOfMs: Date.now() }]);
}

let seq = 0;
async function user(cash: string) {
  const res = await api.request('POST', '/users', { body: { name: 'C', email: `c${++seq}@example.com`, initial_cash: cash } });
  expect(res.status).toBe(201);
  return res.body as { id: string; api_key: string; api_key_id: string };
}

/** Runs an engine until `check` holds, then stops it. */
async function withEngine<T>(check: () => Promise<T | undefined>): Promise<T> {
  const engine = createEngine(ctx);
  await engine.start();
  try {
    return await eventually(check);
  } finally {
    await engine.stop();
  }
}

describe('minimum notional and value from nothing', () => {
  it('refuses the twelve-orders exploit at the first order: 0.000005 COST at 898 is worth 0.00449', async () => {
    const u = await user('0.01');
    await setPrice('COST', '898');
    const res = await api.request('POST', '/orders', {
      token: u.api_key,
      body: { user_id: u.id, ticker: 'COST', quantity: '0.000005', type: 'market' },
    });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({
      code: 'ORDER_REJECTED',
      service: 'orders',
      cause: { code: 'NOTIONAL_TOO_SMALL', service: 'orders', details: { value: '0.00449', minimum: '1.00' } },
    });
    expect(res.body.error.cause.message).toContain('below the minimum of 1.00');
    const orders = await api.request('GET', `/orders?user_id=${u.id}`, { token: u.api_key });
    expect(orders.body.orders).toEqual([]);
  });

  it('accepts an order worth exactly the minimum, and refuses a small sell that leaves shares behind', async () => {
    const u = await user('100.00');
    await setPrice('KO', '100');
    const buy = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'KO', quantity: '0.01', type: 'market' } });
    expect(buy.status).toBe(201); // 0.01 x 100 = 1.00
    await withEngine(async () => ((await ctx.market.getPrice('KO')) && (await orderStatus(buy.body.id, u.api_key)) === 'FILLED' ? true : undefined));
    const part = await api.request('POST', '/orders', {
      token: u.api_key,
      body: { ticker: 'KO', quantity: '0.005', type: 'market', side: 'sell' },
    });
    expect(part.status).toBe(422);
    expect(part.body.error.cause.code).toBe('NOTIONAL_TOO_SMALL');
  });

  it('lets a whole small position be sold, and rejects at execution a sell whose proceeds round to 0.00', async () => {
    const u = await user('1000.00');
    await setPrice('INTC', '20');
    const buy = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'INTC', quantity: '0.1', type: 'market' } });
    expect(buy.status).toBe(201);
    await withEngine(async () => ((await orderStatus(buy.body.id, u.api_key)) === 'FILLED' ? true : undefined));

    // The position fell to 0.10 x 0.5 = 0.05: a sell of all of it is still accepted...
    await setPrice('INTC', '0.5');
    const sell = await api.request('POST', '/orders', {
      token: u.api_key,
      body: { ticker: 'INTC', quantity: '0.1', type: 'market', side: 'sell' },
    });
    expect(sell.status).toBe(201);
    // ...but if by execution it is worth under a cent, no shares leave for nothing.
    await setPrice('INTC', '0.0999');
    const done = await withEngine(async () => {
      const res = await api.request('GET', `/orders/${sell.body.id}`, { token: u.api_key });
      return res.body.status === 'PENDING' ? undefined : res.body;
    });
    expect(done).toMatchObject({ status: 'REJECTED', reject_reason: 'VALUE_ROUNDS_TO_ZERO' });
    const portfolio = await api.request('GET', `/users/${u.id}/portfolio`, { token: u.api_key });
    expect(portfolio.body.positions).toMatchObject([{ ticker: 'INTC', quantity: '0.1', available_quantity: '0.1' }]);
  });

  it('charges a buy its cost rounded up and credits a sell rounded down', async () => {
    const u = await user('1000.00');
    await setPrice('PG', '151.2345');
    const buy = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'PG', quantity: '0.333333', type: 'market' } });
    await withEngine(async () => ((await orderStatus(buy.body.id, u.api_key)) === 'FILLED' ? true : undefined));
    const sell = await api.request('POST', '/orders', {
      token: u.api_key,
      body: { ticker: 'PG', quantity: '0.333333', type: 'market', side: 'sell' },
    });
    await withEngine(async () => ((await orderStatus(sell.body.id, u.api_key)) === 'FILLED' ? true : undefined));
    const activities = await api.request('GET', `/users/${u.id}/activities`, { token: u.api_key });
    // 0.333333 x 151.2345 = 50.41138…: the buyer pays 50.42, the seller receives 50.41.
    expect(activities.body.activities.map((a: { kind: string; amount: string }) => [a.kind, a.amount])).toEqual([
      ['sell', '50.41'],
      ['buy', '-50.42'],
      ['initial', '1000.00'],
    ]);
  });
});

async function orderStatus(id: string, token: string): Promise<string> {
  return (await api.request('GET', `/orders/${id}`, { token })).body.status;
}

describe('idempotent deposits and withdrawals', () => {
  it('credits a deposit once per Idempotency-Key: 201, then 200 for the same request, 409 for another', async () => {
    const u = await user('0.00');
    const headers = { 'idempotency-key': 'deposit-2026-12-01' };
    const first = await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '500.00' }, headers });
    expect(first.status).toBe(201);
    expect(first.body.cash_balance).toBe('500.00');
    const again = await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: 500 }, headers });
    expect(again.status).toBe(200);
    expect(again.body.cash_balance).toBe('500.00');
    const other = await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '500.01' }, headers });
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', service: 'accounts' });
    const withdrawal = await api.request('POST', `/users/${u.id}/withdrawals`, { token: u.api_key, body: { amount: '500.00' }, headers });
    expect(withdrawal.status).toBe(409);
    const account = await api.request('GET', `/users/${u.id}/account`, { token: u.api_key });
    expect(account.body.cash_balance).toBe('500.00');
  });

  it('debits a withdrawal once per key, also when the same request races itself', async () => {
    const u = await user('100.00');
    const headers = { 'idempotency-key': 'w-1' };
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => api.request('POST', `/users/${u.id}/withdrawals`, { token: u.api_key, body: { amount: '30.00' }, headers })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    const account = await api.request('GET', `/users/${u.id}/account`, { token: u.api_key });
    expect(account.body.cash_balance).toBe('70.00');
  });

  it('refuses a malformed Idempotency-Key in words', async () => {
    const u = await user('100.00');
    const res = await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' }, headers: { 'idempotency-key': 'has space' } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe("headers.idempotency-key must be 1 to 128 printable ASCII characters without spaces");
  });
});

describe('one set of input rules', () => {
  it('reads tickers in any case on every route and answers the listed form', async () => {
    const u = await user('1000.00');
    await setPrice('AAPL', '150');
    const placed = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'aapl', quantity: 1, type: 'market' } });
    expect(placed.status).toBe(201);
    expect(placed.body.ticker).toBe('AAPL');
    const listed = await api.request('GET', `/orders?ticker=Aapl`, { token: u.api_key });
    expect(listed.body.orders.map((o: { id: string }) => o.id)).toEqual([placed.body.id]);
    const price = await api.request('GET', '/prices/aapl', { token: u.api_key });
    expect(price.body.ticker).toBe('AAPL');
  });

  it('refuses JSON numbers with an exponent, or that a double cannot hold, on money and quantities', async () => {
    const u = await user('100000.00');
    await setPrice('AAPL', '150');
    for (const [path, body, token] of [
      [`/users/${u.id}/deposits`, '{"amount": 1e3}', ADMIN_TOKEN],
      ['/orders', '{"ticker": "AAPL", "quantity": 1e1, "type": "market"}', u.api_key],
      ['/orders', '{"ticker": "AAPL", "quantity": 1E1, "type": "market"}', u.api_key],
      [`/users/${u.id}/withdrawals`, '{"amount": 0.30000000000000001}', u.api_key],
    ] as const) {
      const res = await api.request('POST', path, { token, body });
      expect(res.status, body).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const exp = await api.request('POST', `/users/${u.id}/deposits`, { body: '{"amount": 1e3}' });
    expect(exp.body.error.message).toBe('numbers must be plain decimals: 1e3 has an exponent (write 1000)');
    const account = await api.request('GET', `/users/${u.id}/account`, { token: u.api_key });
    expect(account.body.cash_balance).toBe('100000.00');
  });

  it('accepts an empty body wherever none is expected, whatever the Content-Type', async () => {
    const u = await user('1000.00');
    await setPrice('AAPL', '150');
    const key = await api.request('POST', `/users/${u.id}/api-keys`, { token: u.api_key, headers: { 'content-type': 'application/json' } });
    expect(key.status).toBe(201);
    for (const contentType of ['application/json', '', 'text/plain']) {
      const order = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AAPL', quantity: 1, type: 'market' } });
      const res = await api.request('DELETE', `/orders/${order.body.id}`, { token: u.api_key, headers: { 'content-type': contentType } });
      expect(res.status, `Content-Type ${JSON.stringify(contentType)}`).toBe(200);
      expect(res.body.status).toBe('CANCELED');
    }
    const revoke = await api.request('DELETE', `/users/${u.id}/api-keys/${key.body.api_key_id}`, {
      token: u.api_key,
      headers: { 'content-type': 'application/json' },
    });
    expect(revoke.status).toBe(204);
  });

  it('says what a route that needs a body missed', async () => {
    const u = await user('1000.00');
    const res = await api.request('POST', '/orders', { token: u.api_key, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe('request body must be a JSON object');
  });

  it('answers 404 for an unknown route with or without a body or credentials, and 405 with Allow for a known path', async () => {
    for (const token of [null, ADMIN_TOKEN]) {
      const res = await api.request('POST', '/nothing/here', { token, body: { a: 1 } });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    const put = await api.request('PUT', '/instruments', { body: { a: 1 } });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD');
    expect(put.body.error).toMatchObject({ code: 'METHOD_NOT_ALLOWED', message: 'PUT is not allowed on /instruments; allowed: GET, HEAD' });
    const del = await api.request('PUT', '/orders/01900000-0000-7000-8000-000000000000', { token: null });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('DELETE, GET, HEAD, PATCH');
  });

  it('words every refusal for a person: no regular expressions, no schema jargon', async () => {
    const u = await user('1000.00');
    const cases: [string, string, unknown, string][] = [
      ['POST', '/orders', '{"__proto__": {"x": 1}, "ticker": "AAPL"}', 'request body must not contain the keys __proto__ or constructor.prototype'],
      ['GET', '/prices/AAPL/bars?interval=5m', undefined, 'querystring.interval must be "1m"'],
      ['GET', '/users/not-a-uuid', undefined, 'params.id must be a UUID (8-4-4-4-12 hexadecimal digits)'],
      ['GET', '/orders?limit=ten', undefined, 'querystring.limit must be a whole number from 1 to 500 (default 50)'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'market', colour: 'red' }, 'body: unknown field colour (allowed: user_id, ticker, quantity, type, side, time_in_force, limit_price, stop_price, trail_price, trail_percent, client_order_id)'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'bogus' }, 'body.type must be one of: "market", "limit", "stop", "stop_limit", "trailing_stop"'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'limit' }, 'limit_price is required for a limit order'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'market', limit_price: '10' }, 'limit_price does not apply to a market order'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'trailing_stop', trail_percent: '100' }, 'trail_percent must be below 100'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'trailing_stop', trail_percent: '5', trail_price: '1' }, 'a trailing_stop order takes exactly one of trail_price and trail_percent'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'stop', stop_price: '10', time_in_force: 'opg' }, 'time_in_force opg is only for market and limit orders, not stop'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'limit', limit_price: '10.00001' }, 'limit_price must have at most 4 decimals'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'market', time_in_force: 'GTC' }, 'body.time_in_force must be one of: "day", "gtc", "ioc", "fok", "opg", "cls"'],
      ['PATCH', '/orders/01900000-0000-7000-8000-000000000000', {}, 'body must name at least 1 field (of: quantity, limit_price, stop_price, trail_price, trail_percent, time_in_force, client_order_id)'],
      ['GET', '/calendar?start=2026-02-30', undefined, 'start must be a real date as YYYY-MM-DD (got 2026-02-30)'],
      ['GET', '/calendar?start=2026-01-01&end=2027-06-01', undefined, 'a calendar request covers at most 366 days'],
      ['POST', '/orders', { ticker: 'AAPL', type: 'market' }, 'body: quantity is required'],
      ['POST', '/orders', { ticker: 'AA PL', quantity: 1, type: 'market' }, 'body.ticker must be a ticker such as AAPL or BRK.B (any case)'],
      ['POST', '/orders', { ticker: 'AAPL', quantity: true, type: 'market' }, 'body.quantity must be a positive decimal, as a JSON number or a string (e.g. 10 or "1575.00")'],
    ];
    for (const [method, path, body, message] of cases) {
      const res = await api.request(method, path, { token: u.api_key, body });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(res.body.error.message, `${method} ${path}`).toBe(message);
      expect(res.body.error.message).not.toMatch(/\^|\$|\\[dsp]|must match|equal to constant|must NOT/);
    }
  });
});

describe('who am I, and the implied user', () => {
  it('answers GET /me with the key user and key id, or admin: true', async () => {
    const u = await user('1.00');
    const me = await api.request('GET', '/me', { token: u.api_key });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ user_id: u.id, name: 'C', email: `c${seq}@example.com`, key_id: u.api_key_id });
    expect((await api.request('GET', '/me')).body).toEqual({ admin: true });
    expect((await api.request('GET', '/me', { token: null })).status).toBe(401);
  });

  it("takes user_id from a user's key when it is left out, and requires it of the admin", async () => {
    const u = await user('1000.00');
    await setPrice('AAPL', '150');
    const placed = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AAPL', quantity: 1, type: 'market' } });
    expect(placed.status).toBe(201);
    expect(placed.body.user_id).toBe(u.id);
    const upper = await api.request('POST', '/orders', { token: u.api_key, body: { user_id: u.id.toUpperCase(), ticker: 'AAPL', quantity: 1, type: 'market' } });
    expect(upper.status).toBe(201);
    const admin = await api.request('POST', '/orders', { body: { ticker: 'AAPL', quantity: 1, type: 'market' } });
    expect(admin.status).toBe(400);
    expect(admin.body.error.message).toContain('user_id is required with the admin token');
  });
});

describe('CORS', () => {
  it('is off by default: a preflight from another origin gets no Access-Control headers', async () => {
    const res = await fetch(`${api.url}/orders`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers the preflight of an allowed origin before authentication, and nothing for others', async () => {
    const cors = await createTestContext({ CORS_ORIGINS: 'https://app.example.com' }, { auditOnClose: { skip: 'no writes' } });
    const server = await startTestServer(cors);
    try {
      const preflight = await fetch(`${server.url}/orders`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.example.com',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
      expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
      const get = await fetch(`${server.url}/instruments`, { headers: { origin: 'https://app.example.com', authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(get.status).toBe(200);
      expect(get.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      expect(get.headers.get('access-control-expose-headers')).toContain('x-request-id');
      const evil = await fetch(`${server.url}/instruments`, { headers: { origin: 'https://evil.example.com', authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await server.server.close();
      await cors.close();
    }
  });
});
