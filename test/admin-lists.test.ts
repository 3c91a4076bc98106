/**
 * The admin's lists (GET /users, GET /classes): every user or class in the order they were
 * created, in pages that follow each other without a gap or a repeat.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiUser, createTestContext, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;

beforeAll(async () => {
  ctx = await createTestContext();
  api = await startTestServer(ctx);
});
afterAll(async () => {
  await api?.server.close();
  await ctx?.close();
});

describe('GET /users', () => {
  it('lists every user with its cash, page after page, oldest first', async () => {
    const made = [await apiUser(api, '10.00'), await apiUser(api, '20.50'), await apiUser(api, '0.00')];
    const first = await api.request('GET', '/users?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.users).toHaveLength(2);
    expect(first.body.next).toBe(first.body.users[1].id);
    const second = await api.request('GET', `/users?limit=2&after=${first.body.next}`);
    const listed = [...first.body.users, ...second.body.users];
    expect(second.body.next).toBeNull();
    expect(listed.map((u: { id: string }) => u.id)).toEqual(made.map((u) => u.id));
    expect(listed.map((u: { cash_balance: string }) => u.cash_balance)).toEqual(['10.00', '20.50', '0.00']);
    expect(Object.keys(listed[0]).sort()).toEqual(['cash_balance', 'created_at', 'email', 'id', 'name']);
  });

  it('is the admin’s only, and refuses a bad limit or cursor in words', async () => {
    const user = await apiUser(api);
    expect((await api.request('GET', '/users', { token: user.api_key })).status).toBe(403);
    const bad = await api.request('GET', '/users?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/limit/);
    expect((await api.request('GET', '/users?after=nope')).status).toBe(400);
  });
});

describe('GET /classes', () => {
  it('lists every class, page after page, without its teacher key', async () => {
    const names = ['Lists A', 'Lists B', 'Lists C'];
    for (const name of names) expect((await api.request('POST', '/classes', { body: { name, starting_cash: '500.00' } })).status).toBe(201);
    const first = await api.request('GET', '/classes?limit=2');
    expect(first.status).toBe(200);
    const second = await api.request('GET', `/classes?limit=2&after=${first.body.next}`);
    const listed = [...first.body.classes, ...second.body.classes];
    expect(listed.map((c: { name: string }) => c.name)).toEqual(names);
    expect(second.body.next).toBeNull();
    expect(listed[0]).not.toHaveProperty('teacher_key');
    expect(listed[0]).toMatchObject({ starting_cash: '500.00', leaderboard_visible: true, rules: { commission_per_order: '0.00' } });
  });
});
