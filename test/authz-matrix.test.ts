/**
 * The authorization matrix: every route the server has (from its own route table) × every kind
 * of caller, over real HTTP, against what the route's classification says. A route the table
 * does not classify fails the test, so a new route cannot ship without its access rule.
 *
 * The owner is a member of a class (created by it, as members are); "teacher" is that class's
 * teacher key, "other-teacher" another class's, and "other" a user outside the class.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrice } from '../src/core/money.js';
import type { RouteAuth } from '../src/http/auth.js';
import { createApiKey } from '../src/services/users/users.service.js';
import { ADMIN_TOKEN, createTestContext, seedShares, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;

/**
 * How a route decides who may call it:
 * - `public`: anyone, credentials or not (and bad credentials are ignored);
 * - `admin`: the admin token only; a user's key or a teacher key gets 403;
 * - `user-path`: acts on the user named in the path (`/users/{id}/…`); another user's key gets
 *   403, and so does every teacher key (a teacher never acts for a member);
 * - `user-path-read`: reads the user named in the path: the user's key, or the teacher key of
 *   the user's class; anyone else's key 403;
 * - `user-body` / `user-query`: acts on the user named by `user_id` in the body / query; 403;
 * - `user-query-read`: reads the user named by `user_id` in the query, as `user-path-read`;
 * - `order-owner`: changes one order by id; another user's order is "not found" (404), never
 *   disclosed; a teacher key 403;
 * - `order-owner-read`: reads one order by id: its user's key or its class's teacher key;
 *   anyone else's order is "not found" (404);
 * - `any-user`: any user's key; nothing in it belongs to a user (market data); a teacher key 403;
 * - `any-credential`: any valid credential, teacher keys too (who am I);
 * - `class-teacher`: manages the class in the path: its teacher key; anyone else's key 403;
 * - `class-reader`: reads the class in the path: its teacher key or a member's key; 403 otherwise;
 * - `user-path-reset`: resets the user in the path: the user's own key or the teacher key of
 *   the user's class; any other key 403.
 * - `alpaca-account`: Alpaca's routes of "the account" (/v2/account, /v2/orders, /v2/positions):
 *   any user's key acts on its own account (another user's key gets its own, not the owner's);
 *   the admin token and teacher keys have no account there: 403;
 * - `alpaca-order`: one order by id (or client_order_id) on /v2: the owner's key; another user's
 *   key gets 404 (never disclosed); the admin token and teacher keys 403;
 * - `alpaca-market`: Alpaca's instrument and market-data routes: any user's key or the admin
 *   token; a teacher key 403.
 */
type Scope =
  | 'public'
  | 'admin'
  | 'user-path'
  | 'user-path-read'
  | 'user-body'
  | 'user-query'
  | 'user-query-read'
  | 'order-owner'
  | 'order-owner-read'
  | 'any-user'
  | 'any-credential'
  | 'class-teacher'
  | 'class-reader'
  | 'user-path-reset'
  | 'alpaca-account'
  | 'alpaca-order'
  | 'alpaca-market';

interface Fixtures {
  owner: { id: string; key: string };
  other: { id: string; key: string };
  revokedKey: string;
  /** A teacher key revoked (there is no route for it yet: set in the database). */
  revokedTeacherKey: string;
  /** The owner's class, its teacher key, and another class's. */
  classId: string;
  teacherKey: string;
  otherTeacherKey: string;
  /** The owner's order that stays readable (GET). */
  orderId: string;
  seq: number;
}

interface Classified {
  scope: Scope;
  /** Body (and query) of a request that succeeds for the owner, built fresh for each call. */
  request?: (fx: Fixtures) => { body?: unknown; query?: string };
  /**
   * For a batch route (200 with one result per item): the status the scope is checked against
   * is the first item's, as the same order alone would answer. Credentials the route itself
   * refuses (401, 403 before any item) are checked as they are.
   */
  itemStatus?: true;
}

/** Every route the server has. Adding a route means adding it here, with its access rule. */
const ROUTES: Record<string, Classified> = {
  'GET /docs': { scope: 'public' },
  'GET /docs/static/index.html': { scope: 'public' },
  'GET /docs/static/swagger-initializer.js': { scope: 'public' },
  'GET /docs/json': { scope: 'public' },
  'GET /docs/yaml': { scope: 'public' },
  'GET /docs/static/*': { scope: 'public' },
  'GET /health': { scope: 'public' },
  'GET /ready': { scope: 'public' },
  'GET /metrics': { scope: 'public' },
  'GET /openapi.json': { scope: 'public' },
  // The dashboard's page and files (each client signs in from the page itself).
  'GET /': { scope: 'public' },
  'GET /index.html': { scope: 'public' },
  'GET /assets/*': { scope: 'public' },
  'GET /dashboard/settings': { scope: 'public' },
  // The live stream authenticates itself (header or first message); a plain GET is a 400.
  'GET /ws': { scope: 'public' },

  'POST /users': {
    scope: 'admin',
    request: (fx) => ({ body: { name: 'Matrix', email: `matrix${++fx.seq}@example.com`, initial_cash: '10.00' } }),
  },
  'GET /users': { scope: 'admin' },
  'GET /me': { scope: 'any-credential' },
  'GET /users/:id': { scope: 'user-path' },
  'POST /users/:id/api-keys': { scope: 'user-path' },
  'DELETE /users/:id/api-keys/:key_id': { scope: 'user-path' },
  'GET /users/:id/account': { scope: 'user-path-read' },
  'POST /users/:id/deposits': { scope: 'admin', request: () => ({ body: { amount: '1.00' } }) },
  'POST /users/:id/withdrawals': { scope: 'user-path', request: () => ({ body: { amount: '1.00' } }) },
  'GET /users/:id/activities': { scope: 'user-path-read' },
  'GET /users/:id/events': { scope: 'user-path-read' },
  'GET /users/:id/portfolio': { scope: 'user-path-read' },
  'GET /users/:id/portfolio/history': { scope: 'user-path-read' },
  // Each caller allowed to resets the owner (its orders canceled, its cash restarted); the later routes need nothing it removes.
  'POST /users/:id/reset': { scope: 'user-path-reset', request: () => ({ body: {} }) },

  'GET /instruments': { scope: 'any-user' },
  'GET /prices': { scope: 'any-user' },
  'GET /prices/:ticker': { scope: 'any-user' },
  'GET /prices/:ticker/bars': { scope: 'any-user' },

  'POST /orders': {
    scope: 'user-body',
    request: (fx) => ({ body: { user_id: fx.owner.id, ticker: 'AAPL', quantity: 1, type: 'market' } }),
  },
  'POST /orders/batch': {
    scope: 'user-body',
    request: (fx) => ({ body: { orders: [{ user_id: fx.owner.id, ticker: 'AAPL', quantity: 1, type: 'market' }] } }),
    itemStatus: true,
  },
  'GET /orders/:id': { scope: 'order-owner-read' },
  'GET /orders/:id/fills': { scope: 'order-owner-read' },
  'DELETE /orders/:id': { scope: 'order-owner' },
  'PATCH /orders/:id': { scope: 'order-owner', request: () => ({ body: { limit_price: '9.00' } }) },
  'GET /orders': { scope: 'user-query-read', request: (fx) => ({ query: `user_id=${fx.owner.id}` }) },
  'DELETE /orders': { scope: 'user-query', request: (fx) => ({ query: `user_id=${fx.owner.id}` }) },

  'GET /clock': { scope: 'any-user' },
  'GET /calendar': { scope: 'any-user', request: () => ({ query: 'start=2026-12-01&end=2026-12-31' }) },

  'POST /classes': { scope: 'admin', request: (fx) => ({ body: { name: `Matrix class ${++fx.seq}`, starting_cash: '10.00' } }) },
  'GET /classes': { scope: 'admin' },
  'GET /classes/:id': { scope: 'class-reader' },
  'POST /classes/:id/members': {
    scope: 'class-teacher',
    request: (fx) => ({ body: { members: [{ name: 'Matrix member', email: `matrix-member${++fx.seq}@example.com` }] } }),
  },
  'GET /classes/:id/members': { scope: 'class-teacher' },
  'GET /classes/:id/leaderboard': { scope: 'class-reader' },

  // Alpaca's trade_updates stream authenticates itself, like /ws; a plain GET is refused.
  'GET /stream': { scope: 'public' },
  'POST /v2/orders': { scope: 'alpaca-account', request: () => ({ body: { symbol: 'AAPL', qty: '1', side: 'buy', type: 'market', time_in_force: 'day' } }) },
  'GET /v2/orders': { scope: 'alpaca-account', request: () => ({ query: 'status=all' }) },
  'DELETE /v2/orders': { scope: 'alpaca-account' },
  'GET /v2/orders::by_client_order_id': { scope: 'alpaca-order', request: () => ({ query: 'client_order_id=matrix-order' }) },
  'GET /v2/orders/:order_id': { scope: 'alpaca-order' },
  'PATCH /v2/orders/:order_id': { scope: 'alpaca-order', request: () => ({ body: { limit_price: '9.00' } }) },
  'DELETE /v2/orders/:order_id': { scope: 'alpaca-order' },
  'GET /v2/account': { scope: 'alpaca-account' },
  'GET /v2/account/activities': { scope: 'alpaca-account' },
  'GET /v2/account/activities/:activity_type': { scope: 'alpaca-account' },
  'GET /v2/account/portfolio/history': { scope: 'alpaca-account' },
  'GET /v2/account/configurations': { scope: 'alpaca-account' },
  'PATCH /v2/account/configurations': { scope: 'alpaca-account', request: () => ({ body: { no_shorting: true } }) },
  // A user without the position gets 404 for it: the owner holds AAPL (seeded), others not.
  'GET /v2/positions': { scope: 'alpaca-account' },
  'GET /v2/positions/:symbol_or_asset_id': { scope: 'alpaca-order' },
  'DELETE /v2/positions/:symbol_or_asset_id': { scope: 'alpaca-order', request: () => ({ query: 'qty=1' }) },
  'DELETE /v2/positions': { scope: 'alpaca-account' },
  'GET /v2/assets': { scope: 'alpaca-market' },
  'GET /v2/assets/:symbol_or_asset_id': { scope: 'alpaca-market' },
  'GET /v2/clock': { scope: 'alpaca-market' },
  'GET /v2/calendar': { scope: 'alpaca-market', request: () => ({ query: 'start=2026-12-01&end=2026-12-31' }) },
  'GET /v2/stocks/:symbol/trades/latest': { scope: 'alpaca-market' },
  'GET /v2/stocks/trades/latest': { scope: 'alpaca-market', request: () => ({ query: 'symbols=AAPL' }) },
  'GET /v2/stocks/:symbol/quotes/latest': { scope: 'alpaca-market' },
  'GET /v2/stocks/quotes/latest': { scope: 'alpaca-market', request: () => ({ query: 'symbols=AAPL' }) },
  'GET /v2/stocks/:symbol/bars': { scope: 'alpaca-market', request: () => ({ query: 'timeframe=1Min' }) },
  'GET /v2/stocks/:symbol/bars/latest': { scope: 'alpaca-market' },
  'GET /v2/stocks/bars/latest': { scope: 'alpaca-market', request: () => ({ query: 'symbols=AAPL' }) },
  'GET /v2/stocks/bars': { scope: 'alpaca-market', request: () => ({ query: 'symbols=AAPL&timeframe=1Min' }) },
  'GET /v2/stocks/:symbol/snapshot': { scope: 'alpaca-market' },
  'GET /v2/stocks/snapshots': { scope: 'alpaca-market', request: () => ({ query: 'symbols=AAPL' }) },

  'GET /admin/audit': { scope: 'admin' },
  'PUT /admin/prices/:ticker': { scope: 'admin', request: () => ({ body: { price: '100.00' } }) },
  'POST /admin/market': { scope: 'admin', request: () => ({ body: { state: 'auto' } }) },
};

const DECLARED_AUTH: Record<Scope, RouteAuth> = {
  public: 'public',
  admin: 'admin',
  'user-path': 'user',
  'user-path-read': 'user-or-teacher',
  'user-body': 'user',
  'user-query': 'user',
  'user-query-read': 'user-or-teacher',
  'order-owner': 'user',
  'order-owner-read': 'user-or-teacher',
  'any-user': 'user',
  'any-credential': 'user-or-teacher',
  'class-teacher': 'teacher',
  'class-reader': 'user-or-teacher',
  'user-path-reset': 'user-or-teacher',
  'alpaca-account': 'user',
  'alpaca-order': 'user',
  'alpaca-market': 'user',
};

type Caller = 'none' | 'malformed' | 'revoked' | 'other' | 'own' | 'teacher' | 'other-teacher' | 'admin';

/** What each caller must get, per scope: an exact status, or "anything but" a set. */
type Expectation = { exactly: number } | { success: true } | { not: number[] };

const OK: Expectation = { success: true };
const FORBIDDEN: Expectation = { exactly: 403 };
const HIDDEN: Expectation = { exactly: 404 };

function expected(scope: Scope, caller: Caller): Expectation {
  if (scope === 'public') return { not: [401, 403] };
  if (caller === 'none' || caller === 'malformed' || caller === 'revoked') return { exactly: 401 };
  const teacher = caller === 'teacher' || caller === 'other-teacher';
  if (scope === 'alpaca-account') return caller === 'admin' || teacher ? FORBIDDEN : OK;
  if (scope === 'alpaca-order') return caller === 'admin' || teacher ? FORBIDDEN : caller === 'own' ? OK : HIDDEN;
  if (scope === 'alpaca-market') return teacher ? FORBIDDEN : OK;
  if (caller === 'admin') return OK; // on real ids
  switch (scope) {
    case 'admin':
      return FORBIDDEN;
    case 'any-credential':
      return OK;
    case 'any-user':
      return teacher ? FORBIDDEN : OK;
    case 'user-path':
    case 'user-body':
    case 'user-query':
      return caller === 'own' ? OK : FORBIDDEN;
    case 'order-owner':
      return caller === 'own' ? OK : caller === 'other' ? HIDDEN : FORBIDDEN;
    case 'user-path-read':
    case 'user-query-read':
    case 'user-path-reset':
      return caller === 'own' || caller === 'teacher' ? OK : FORBIDDEN;
    case 'order-owner-read':
      return caller === 'own' || caller === 'teacher' ? OK : HIDDEN;
    case 'class-teacher':
      return caller === 'teacher' ? OK : FORBIDDEN;
    case 'class-reader':
      return caller === 'own' || caller === 'teacher' ? OK : FORBIDDEN;
  }
}

let fx: Fixtures;

async function call(method: string, path: string, token: string | null, body?: unknown) {
  const res = await api.request(method, path, { token, body });
  return res;
}

async function newActor(name: string) {
  const res = await call('POST', '/users', ADMIN_TOKEN, { name, email: `${name}@example.com`, initial_cash: '100000.00' });
  expect(res.status).toBe(201);
  return { id: res.body.id as string, key: res.body.api_key as string };
}

/**
 * A resting limit buy of the owner's, OPEN as the engine would leave it (no engine runs here:
 * the status is set directly; its hold is the one the OMS took).
 */
async function freshOpenOrder(): Promise<string> {
  const res = await call('POST', '/orders', fx.owner.key, { ticker: 'AAPL', quantity: 1, type: 'limit', limit_price: '10.00', time_in_force: 'gtc' });
  expect(res.status).toBe(201);
  await sql`UPDATE orders SET status = 'OPEN' WHERE id = ${res.body.id}`.execute(ctx.db);
  return res.body.id;
}

async function freshPendingOrder(): Promise<string> {
  const res = await call('POST', '/orders', fx.owner.key, { user_id: fx.owner.id, ticker: 'AAPL', quantity: 1, type: 'market' });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function newClass(name: string) {
  const res = await call('POST', '/classes', ADMIN_TOKEN, { name, starting_cash: '100000.00' });
  expect(res.status).toBe(201);
  return { id: res.body.id as string, teacherKey: res.body.teacher_key as string };
}

/** A member of the class, created by it (as every member is). */
async function newMember(classId: string, name: string) {
  const res = await call('POST', `/classes/${classId}/members`, ADMIN_TOKEN, { members: [{ name, email: `${name}@example.com` }] });
  expect(res.status).toBe(201);
  return { id: res.body.members[0].user_id as string, key: res.body.members[0].api_key as string };
}

beforeAll(async () => {
  ctx = await createTestContext({ PRICE_AGE_MS_MAX: '86400000' });
  api = await startTestServer(ctx);
  // A price with its minute bar (Alpaca's latest-bar routes read bars).
  await ctx.market.setPrice('AAPL', parsePrice('100'));
  const cls = await newClass('Matrix class');
  const otherClass = await newClass('Another class');
  const revokedClass = await newClass('Revoked class');
  await sql`UPDATE api_keys SET revoked_at = now() WHERE id = ${revokedClass.teacherKey.split('_')[1]}`.execute(ctx.db);
  const owner = await newMember(cls.id, 'owner');
  const other = await newActor('other');
  const spare = await call('POST', `/users/${owner.id}/api-keys`, owner.key);
  expect((await call('DELETE', `/users/${owner.id}/api-keys/${spare.body.api_key_id}`, owner.key)).status).toBe(204);
  fx = {
    owner,
    other,
    revokedKey: spare.body.api_key,
    revokedTeacherKey: revokedClass.teacherKey,
    classId: cls.id,
    teacherKey: cls.teacherKey,
    otherTeacherKey: otherClass.teacherKey,
    orderId: '',
    seq: 0,
  };
  fx.orderId = await freshPendingOrder();
  const named = await call('POST', '/orders', fx.owner.key, { ticker: 'AAPL', quantity: 1, type: 'limit', limit_price: '10.00', time_in_force: 'gtc', client_order_id: 'matrix-order' });
  expect(named.status).toBe(201);
});

afterAll(async () => {
  await api?.server.close();
  await ctx?.close();
});

/** The URL of a route with its parameters filled with real things of the owner's. */
async function fillPath(method: string, url: string): Promise<string> {
  let path = url;
  if (path.includes(':key_id')) path = path.replace(':key_id', (await createApiKey(ctx.db, fx.owner.id)).apiKeyId);
  if (path.startsWith('/v2/orders/:order_id')) {
    const id = method === 'DELETE' ? await freshPendingOrder() : method === 'PATCH' ? await freshOpenOrder() : fx.orderId;
    path = path.replace(':order_id', id);
  }
  // The owner is given shares before each route of one position (a reset of the owner by an
  // earlier route, or a closing, leaves none), so the owner's request finds one to read or close.
  if (path.startsWith('/v2/positions/') || (path === '/v2/positions' && method === 'DELETE')) await seedShares(ctx, fx.owner.id, 'AAPL', '2', '100');
  path = path.replace(':activity_type', 'FILL').replace(':symbol_or_asset_id', 'AAPL').replace(':symbol', 'AAPL').replace('::', ':');
  if (path.startsWith('/orders/:id')) {
    const id = method === 'DELETE' ? await freshPendingOrder() : method === 'PATCH' ? await freshOpenOrder() : fx.orderId;
    path = path.replace(':id', id);
  }
  if (path.startsWith('/users/:id')) path = path.replace(':id', fx.owner.id);
  if (path.startsWith('/classes/:id')) path = path.replace(':id', fx.classId);
  path = path.replace(':ticker', 'AAPL').replace('/docs/static/*', '/docs/static/swagger-ui.css').replace('/assets/*', '/assets/missing.js');
  // A literal colon (Alpaca's /v2/orders:by_client_order_id) is not a parameter.
  expect(path.replace('/v2/orders:by_client_order_id', ''), `unfilled parameter in ${url}`).not.toMatch(/[:*]/);
  return path;
}

function tokensFor(caller: Caller): Array<{ label: string; token: string | null }> {
  switch (caller) {
    case 'none':
      return [{ label: 'no token', token: null }];
    case 'malformed':
      return [
        { label: 'garbage', token: 'not-a-key' },
        { label: 'admin token + 1 char', token: `${ADMIN_TOKEN}x` },
        { label: 'truncated key', token: fx.owner.key.slice(0, -1) },
        { label: 'key with a wrong secret', token: `${fx.owner.key.slice(0, -4)}AAAA` },
        { label: 'unknown key id', token: `ptk_0000000000000000_${'a'.repeat(43)}` },
        { label: 'overlong', token: 'a'.repeat(300) },
      ];
    case 'revoked':
      return [
        { label: 'revoked key', token: fx.revokedKey },
        { label: 'revoked teacher key', token: fx.revokedTeacherKey },
      ];
    case 'other':
      return [{ label: "another user's key", token: fx.other.key }];
    case 'own':
      return [{ label: 'own key', token: fx.owner.key }];
    case 'teacher':
      return [{ label: "the owner's class's teacher key", token: fx.teacherKey }];
    case 'other-teacher':
      return [{ label: "another class's teacher key", token: fx.otherTeacherKey }];
    case 'admin':
      return [{ label: 'admin token', token: ADMIN_TOKEN }];
  }
}

/**
 * The credential as a client of the route sends it: on Alpaca's routes a key goes as Alpaca's
 * pair of headers (its two halves), anything else (the admin token, garbage) as a bearer token.
 */
function credentialHeaders(path: string, token: string | null): Record<string, string> {
  if (token === null) return {};
  const pair = /^ptk_([0-9a-f]{16})_(.+)$/.exec(token);
  if (path.startsWith('/v2/') && pair) return { 'apca-api-key-id': pair[1]!, 'apca-api-secret-key': pair[2]! };
  return { authorization: `Bearer ${token}` };
}

const CALLERS: Caller[] = ['none', 'malformed', 'revoked', 'other', 'own', 'teacher', 'other-teacher', 'admin'];

/** Headers every response carries, whatever its route and status. */
function missingSecurityHeaders(headers: Headers, path: string): string[] {
  const docs = path === '/docs' || path.startsWith('/docs/');
  const want: Record<string, RegExp> = {
    'x-content-type-options': /^nosniff$/,
    'x-frame-options': /^DENY$/,
    'referrer-policy': /^no-referrer$/,
    'content-security-policy': docs ? /default-src 'self'.*frame-ancestors 'none'/ : /^default-src 'none'.*frame-ancestors 'none'/,
    'x-request-id': /^[0-9a-f-]{36}$/,
  };
  // The dashboard's page is revalidated, its hashed files kept; everything else is never stored.
  const dashboard = path === '/' || path === '/index.html' || path.startsWith('/assets/');
  if (dashboard) want['cache-control'] = /^(no-cache|no-store|public, max-age=31536000, immutable)$/;
  else if (!docs) want['cache-control'] = /^no-store$/;
  return Object.entries(want)
    .filter(([name, pattern]) => !pattern.test(headers.get(name) ?? ''))
    .map(([name]) => `${name}=${headers.get(name)}`);
}

describe('authorization matrix', () => {
  it('classifies every route the server has, as the route itself declares it', () => {
    const actual = api.routes.map((r) => `${r.method} ${r.url}`);
    const unclassified = actual.filter((r) => !(r in ROUTES));
    expect(unclassified, 'routes missing from the authorization table: classify them in ROUTES').toEqual([]);
    expect(Object.keys(ROUTES).filter((r) => !actual.includes(r)), 'ROUTES entries the server no longer has').toEqual([]);
    for (const route of api.routes) {
      const scope = ROUTES[`${route.method} ${route.url}`]!.scope;
      expect(route.auth, `${route.method} ${route.url} is ${scope} in the table`).toBe(DECLARED_AUTH[scope]);
    }
  });

  it.each(CALLERS)('answers every route as its classification says for the caller: %s', async (caller) => {
    await ctx.quotes.setMany([{ ticker: 'AAPL', price: parsePrice('100'), asOfMs: Date.now() }]);
    const failures: string[] = [];
    let checked = 0;
    for (const route of api.routes) {
      const entry = ROUTES[`${route.method} ${route.url}`];
      if (!entry) continue; // reported by the classification test
      for (const { label, token } of tokensFor(caller)) {
        const path = await fillPath(route.method, route.url);
        const req = entry.request?.(fx) ?? {};
        const full = req.query ? `${path}?${req.query}` : path;
        const res = await fetch(api.url + full, {
          method: route.method,
          redirect: 'manual',
          headers: {
            ...credentialHeaders(path, token),
            ...(req.body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: req.body === undefined ? undefined : JSON.stringify(req.body),
        });
        let text = await res.text();
        let status = res.status;
        if (entry.itemStatus && status === 200) {
          const item = (JSON.parse(text) as { results: { status: number; error?: unknown }[] }).results[0]!;
          status = item.status;
          text = JSON.stringify(item);
        }
        checked += 1;
        const want = expected(entry.scope, caller);
        const ok =
          'exactly' in want
            ? status === want.exactly
            : 'success' in want
              ? status >= 200 && status < 300
              : !want.not.includes(status) && status < 500;
        const missing = missingSecurityHeaders(res.headers, path);
        if (missing.length) failures.push(`${route.method} ${full} as ${label}: missing security headers ${missing.join(', ')}`);
        if (!ok) failures.push(`${route.method} ${full} [${entry.scope}] as ${label}: got ${status} ${text.slice(0, 160)}, want ${JSON.stringify(want)}`);
        if (status >= 400 && route.auth !== 'public') {
          // Every refusal is in the error envelope; an auth refusal says which.
          const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
          if (status === 401 && code !== 'UNAUTHENTICATED') failures.push(`${route.method} ${full} as ${label}: 401 with code ${code}`);
          if (res.status === 403 && code !== 'FORBIDDEN') failures.push(`${route.method} ${full} as ${label}: 403 with code ${code}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(api.routes.length);
  });

  it('serves the docs UI and every asset it references under its CSP', async () => {
    const page = await fetch(`${api.url}/docs`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-eval');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1]!, `${api.url}/docs`).pathname);
    expect(assets).toEqual(expect.arrayContaining(['/docs/static/swagger-ui.css', '/docs/static/swagger-ui-bundle.js', '/docs/static/swagger-initializer.js']));
    // Everything the page loads is same-origin and therefore allowed by 'self'.
    expect(html).not.toMatch(/<script>(?!\s*<\/script>)|<script(?![^>]*\bsrc=)[^>]*>[^<\s]/);
    for (const asset of [...assets, '/docs/json']) {
      const res = await fetch(api.url + asset);
      expect(res.status, asset).toBe(200);
      expect(await res.arrayBuffer().then((b) => b.byteLength), asset).toBeGreaterThan(0);
    }
    expect(missingSecurityHeaders(page.headers, '/docs')).toEqual([]);
  });

  it('never lets a user key act on another user through the body or the query', async () => {
    const foreignOrder = await call('POST', '/orders', fx.other.key, { user_id: fx.owner.id, ticker: 'AAPL', quantity: 1, type: 'market' });
    expect([foreignOrder.status, foreignOrder.body.error.code]).toEqual([403, 'FORBIDDEN']);
    const foreignList = await call('GET', `/orders?user_id=${fx.owner.id}`, fx.other.key);
    expect(foreignList.status).toBe(403);
    const ownList = await call('GET', '/orders', fx.other.key);
    expect(ownList.body.orders.every((o: { user_id: string }) => o.user_id === fx.other.id)).toBe(true);
    // Revoking another user's key through one's own path is "not found", not a revocation.
    const otherKeyId = fx.other.key.split('_')[1];
    const crossRevoke = await call('DELETE', `/users/${fx.owner.id}/api-keys/${otherKeyId}`, fx.owner.key);
    expect(crossRevoke.status).toBe(404);
    expect((await call('GET', `/users/${fx.other.id}`, fx.other.key)).status).toBe(200);
  });

  it("lets a member read its own class, and its leaderboard only while the teacher shows it", async () => {
    const hidden = await call('POST', '/classes', ADMIN_TOKEN, { name: 'Hidden board', starting_cash: '10.00', leaderboard_visible: false });
    const member = await newMember(hidden.body.id, 'hidden-member');
    expect((await call('GET', `/classes/${hidden.body.id}`, member.key)).status).toBe(200);
    const board = await call('GET', `/classes/${hidden.body.id}/leaderboard`, member.key);
    expect([board.status, board.body.error.code]).toEqual([403, 'FORBIDDEN']);
    expect((await call('GET', `/classes/${hidden.body.id}/leaderboard`, hidden.body.teacher_key)).status).toBe(200);
    // The visible class's board is the owner's to read, never a member's of another class.
    expect((await call('GET', `/classes/${fx.classId}/leaderboard`, fx.owner.key)).status).toBe(200);
    expect((await call('GET', `/classes/${fx.classId}/leaderboard`, member.key)).status).toBe(403);
    expect((await call('GET', `/classes/${hidden.body.id}/leaderboard`, fx.owner.key)).status).toBe(403);
  });

  it("lets a teacher key read its members only, and never through another member's order", async () => {
    const peer = await newMember(fx.classId, 'peer');
    expect((await call('GET', `/users/${peer.id}/account`, fx.teacherKey)).status).toBe(200);
    expect((await call('GET', `/users/${fx.other.id}/account`, fx.teacherKey)).status).toBe(403);
    expect((await call('GET', `/orders?user_id=${fx.other.id}`, fx.teacherKey)).status).toBe(403);
    // A member is a user like any other: its key reads its peers no more than any user's does.
    expect((await call('GET', `/users/${peer.id}/account`, fx.owner.key)).status).toBe(403);
    expect((await call('GET', `/orders/${fx.orderId}`, peer.key)).status).toBe(404);
  });
});
