import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { ApiKeyCache } from '../src/services/users/api-key-cache.js';
import { resolveApiKey, revalidateApiKeys } from '../src/services/users/users.service.js';
import { createTestContext, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;
beforeAll(async () => {
  ctx = await createTestContext();
  api = await startTestServer(ctx);
});
afterAll(async () => {
  await api.server.close();
  await ctx.close();
});

async function createUser(body: Record<string, unknown>) {
  const res = await api.request('POST', '/users', { body });
  expect(res.status).toBe(201);
  return res.body as { id: string; api_key: string; api_key_id: string };
}

let emailSeq = 0;
const email = () => `ada${++emailSeq}@example.com`;

describe('users, accounts and activities over HTTP', () => {
  it('walks the foundation flow: create with cash, account, refused withdrawal, 403, 400, activities', async () => {
    const ada = await createUser({ name: 'Ada', email: email(), initial_cash: '10000.00' });
    expect(ada.api_key).toMatch(/^ptk_/);

    const account = await api.request('GET', `/users/${ada.id}/account`, { token: ada.api_key });
    expect(account.status).toBe(200);
    expect(account.body).toEqual({
      user_id: ada.id,
      cash_balance: '10000.00',
      available_cash: '10000.00',
      reserved_cash: '0.00',
      positions_value: '0.00',
      equity: '10000.00',
    });

    const ok = await api.request('POST', `/users/${ada.id}/withdrawals`, { token: ada.api_key, body: { amount: 2500.5 } });
    expect(ok.status).toBe(201);
    expect(ok.body.cash_balance).toBe('7499.50');

    const tooMuch = await api.request('POST', `/users/${ada.id}/withdrawals`, {
      token: ada.api_key,
      body: { amount: '7499.51' },
    });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error).toMatchObject({ code: 'INSUFFICIENT_FUNDS', service: 'accounts' });

    // A UUID is case-insensitive: the owner's key works with the id in upper case too.
    const shouted = await api.request('GET', `/users/${ada.id.toUpperCase()}/account`, { token: ada.api_key });
    expect(shouted.status).toBe(200);
    expect(shouted.body.user_id).toBe(ada.id);

    const bob = await createUser({ name: 'Bob', email: email() });
    const foreign = await api.request('GET', `/users/${ada.id}/account`, { token: bob.api_key });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe('FORBIDDEN');
    const foreignWithdrawal = await api.request('POST', `/users/${ada.id}/withdrawals`, {
      token: bob.api_key,
      body: { amount: '1.00' },
    });
    expect(foreignWithdrawal.status).toBe(403);

    for (const amount of ['1e3', '-5', '1.001', 'NaN', '', true, null]) {
      const bad = await api.request('POST', `/users/${ada.id}/withdrawals`, { token: ada.api_key, body: { amount } });
      expect(bad.status, `amount ${JSON.stringify(amount)}`).toBe(400);
      expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    }

    const dep = await api.request('POST', `/users/${ada.id}/deposits`, { body: { amount: '0.50' } });
    expect(dep.status).toBe(201);

    const acts = await api.request('GET', `/users/${ada.id}/activities`, { token: ada.api_key });
    expect(acts.status).toBe(200);
    const kinds = acts.body.activities.map((a: { kind: string }) => a.kind);
    expect(kinds).toEqual(['deposit', 'withdrawal', 'initial']);
    const totalCents = acts.body.activities.reduce(
      (s: bigint, a: { amount: string }) => s + BigInt(a.amount.replace('.', '')),
      0n,
    );
    const final = await api.request('GET', `/users/${ada.id}/account`, { token: ada.api_key });
    expect(final.body.cash_balance).toBe('7500.00');
    expect(totalCents).toBe(750000n);
  });

  it('defaults initial cash to zero and refuses a duplicate email with 409 EMAIL_TAKEN', async () => {
    const e = email();
    const u = await createUser({ name: 'Zero', email: e });
    const acct = await api.request('GET', `/users/${u.id}/account`);
    expect(acct.body.cash_balance).toBe('0.00');
    const dup = await api.request('POST', '/users', { body: { name: 'Again', email: e.toUpperCase() } });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('EMAIL_TAKEN');
  });

  it('only the admin creates users and deposits', async () => {
    const u = await createUser({ name: 'U', email: email() });
    const asUser = await api.request('POST', '/users', { token: u.api_key, body: { name: 'X', email: email() } });
    expect(asUser.status).toBe(403);
    const dep = await api.request('POST', `/users/${u.id}/deposits`, { token: u.api_key, body: { amount: '5.00' } });
    expect(dep.status).toBe(403);
  });

  it('answers 401 without, or with bad, credentials', async () => {
    const u = await createUser({ name: 'U', email: email() });
    for (const token of [null, 'nonsense', `${u.api_key.slice(0, -1)}x`, 'ptk_0000000000000000_' + 'a'.repeat(43)]) {
      const res = await api.request('GET', `/users/${u.id}`, { token });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHENTICATED');
    }
  });

  it('creates and revokes API keys; a revoked key is refused', async () => {
    const u = await createUser({ name: 'Keys', email: email() });
    const second = await api.request('POST', `/users/${u.id}/api-keys`, { token: u.api_key });
    expect(second.status).toBe(201);
    expect((await api.request('GET', `/users/${u.id}`, { token: second.body.api_key })).status).toBe(200);
    const revoke = await api.request('DELETE', `/users/${u.id}/api-keys/${second.body.api_key_id}`, { token: u.api_key });
    expect(revoke.status).toBe(204);
    expect((await api.request('GET', `/users/${u.id}`, { token: second.body.api_key })).status).toBe(401);
    const again = await api.request('DELETE', `/users/${u.id}/api-keys/${second.body.api_key_id}`, { token: u.api_key });
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('API_KEY_NOT_FOUND');
    const row = await ctx.db.selectFrom('api_keys').select('key_hash').where('id', '=', u.api_key_id).executeTakeFirstOrThrow();
    expect(row.key_hash.toString('utf8')).not.toContain(u.api_key.split('_').pop());
  });

  it('revalidates cached keys together: live ones stay cached past their time to live, revoked ones are dropped', async () => {
    const a = await createUser({ name: 'Bot A', email: email() });
    const b = await createUser({ name: 'Bot B', email: email() });
    const cache = new ApiKeyCache(1_000, 10);
    let nowMs = 1_000_000;
    const now = () => nowMs;
    // Cached as resolveApiKey caches a lookup, at the test's clock.
    for (const u of [a, b]) {
      const found = await resolveApiKey(ctx.db, u.api_key);
      expect(found).toMatchObject({ role: 'user', userId: u.id });
      cache.set(u.api_key, found!, nowMs);
    }
    // B's key revoked through another api instance: only the database knows.
    await ctx.db.updateTable('api_keys').set({ revoked_at: new Date() }).where('id', '=', b.api_key_id).execute();
    nowMs += 900;
    expect(await revalidateApiKeys(ctx.db, cache, now)).toBe(2);
    // A's entry was renewed from the revalidation: cached until +1,900, not +1,000.
    expect(cache.get(a.api_key, nowMs + 999)).toMatchObject({ userId: a.id });
    expect(cache.get(a.api_key, nowMs + 1_000)).toBeUndefined();
    expect(cache.get(b.api_key, nowMs)).toBeUndefined();
    expect(await resolveApiKey(ctx.db, b.api_key, cache)).toBeUndefined();
  });

  it('answers 404 USER_NOT_FOUND for the admin and 400 for a malformed id', async () => {
    const missing = await api.request('GET', '/users/01900000-0000-7000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('USER_NOT_FOUND');
    const malformed = await api.request('GET', '/users/not-an-id');
    expect(malformed.status).toBe(400);
  });

  it('refuses unknown fields, broken JSON, a wrong content type and bodies over 1 MiB', async () => {
    const extra = await api.request('POST', '/users', { body: { name: 'X', email: email(), admin: true } });
    expect(extra.status).toBe(400);
    expect(extra.body.error.message).toContain('admin');
    const broken = await api.request('POST', '/users', { body: '{"name": "X",' });
    expect([broken.status, broken.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    const proto = await api.request('POST', '/users', { body: '{"name":"X","email":"p@x.io","__proto__":{"a":1}}' });
    expect(proto.status).toBe(400);
    const text = await api.request('POST', '/users', { body: 'name=X', headers: { 'content-type': 'text/plain' } });
    expect([text.status, text.body.error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const huge = await api.request('POST', '/users', { body: JSON.stringify({ name: 'x'.repeat(1_100_000), email: email() }) });
    expect([huge.status, huge.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
  });

  it('serves health, readiness, metrics, the OpenAPI document and the docs without credentials', async () => {
    expect((await api.request('GET', '/health', { token: null })).status).toBe(200);
    const ready = await api.request('GET', '/ready', { token: null });
    // `redis` is null when the parts Redis serves run in this process.
    expect([ready.status, ready.body.postgres, ready.body.redis]).toEqual([200, true, ctx.infra.kind === 'redis' ? true : null]);
    const metrics = await api.request('GET', '/metrics', { token: null });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('papertrade_http_request_duration_seconds');
    const doc = await api.request('GET', '/openapi.json', { token: null });
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/users', '/users/{id}/account', '/users/{id}/activities']));
    const docs = await fetch(`${api.url}/docs`, { redirect: 'follow' });
    expect(docs.status).toBe(200);
  });

  it('answers an unknown route with 404 NOT_FOUND in the error envelope', async () => {
    const res = await api.request('GET', '/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it('hides internals of a 5xx behind a request id that is also in the header', async () => {
    const u = await createUser({ name: 'Broken', email: email() });
    await sql`ALTER TABLE holdings RENAME TO holdings_gone`.execute(ctx.db);
    try {
      const res = await api.request('GET', `/users/${u.id}/portfolio`);
      expect(res.status).toBe(500);
      expect(res.body.error).toEqual({
        code: 'INTERNAL',
        message: 'internal error',
        service: 'http',
        request_id: res.headers.get('x-request-id'),
      });
      expect(JSON.stringify(res.body)).not.toMatch(/holdings|relation|select/i);
    } finally {
      await sql`ALTER TABLE holdings_gone RENAME TO holdings`.execute(ctx.db);
    }
  });
});
