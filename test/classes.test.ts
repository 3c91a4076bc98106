/**
 * Classes over HTTP against a real PostgreSQL: creating a class (and every refusal of a bad
 * field), members in bulk (500 in one set-based transaction, timed; 501 refused; duplicate
 * emails refusing the whole call), what a teacher key may read and may not do, leaderboard
 * visibility, and the command line's add-members from a CSV file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrice } from '../src/core/money.js';
import { addMembersCommand, createClassCommand, readMembersCsv } from '../src/cli/classes.js';
import { parseCsv } from '../src/core/csv.js';
import { createTestContext, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;
let dir: string;

beforeAll(async () => {
  ctx = await createTestContext({ PRICE_AGE_MS_MAX: '86400000' });
  api = await startTestServer(ctx);
  await ctx.quotes.setMany([{ ticker: 'AAPL', price: parsePrice('100'), asOfMs: Date.now() }]);
  dir = await mkdtemp(join(tmpdir(), 'papertrade-classes-'));
});

afterAll(async () => {
  await api?.server.close();
  await ctx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let seq = 0;
const uniq = () => `${Date.now().toString(36)}${++seq}`;

async function createClass(body: Record<string, unknown> = {}) {
  const res = await api.request('POST', '/classes', { body: { name: 'Finance 101', starting_cash: '100000.00', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; teacher_key: string; starting_cash: string; rules: Record<string, unknown>; leaderboard_visible: boolean };
}

function students(n: number, tag = uniq()) {
  return Array.from({ length: n }, (_, i) => ({ name: `Student ${i + 1}`, email: `s${i + 1}-${tag}@school.example` }));
}

async function addMembers(classId: string, members: { name: string; email: string }[], token?: string) {
  return api.request('POST', `/classes/${classId}/members`, { token, body: { members } });
}

describe('creating a class', () => {
  it('creates a class with its rules and a teacher key that is a teacher', async () => {
    const res = await api.request('POST', '/classes', {
      body: {
        name: '  Markets Club ',
        starting_cash: 25000.5,
        starts_at: '2026-09-01T13:30:00Z',
        ends_at: '2026-12-18T21:00:00+00:00',
        rules: { tickers: ['aapl', 'MSFT'], order_types: ['limit', 'market'], max_position_pct: '25', max_orders_per_day: 20, commission_per_order: '1.50' },
        leaderboard_visible: false,
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'Markets Club',
      starting_cash: '25000.50',
      starts_at: '2026-09-01T13:30:00.000Z',
      ends_at: '2026-12-18T21:00:00.000Z',
      rules: { tickers: ['AAPL', 'MSFT'], order_types: ['market', 'limit'], max_position_pct: '25.00', max_orders_per_day: 20, commission_per_order: '1.50' },
      leaderboard_visible: false,
      created_at: expect.any(String),
      teacher_key: expect.stringMatching(/^ptk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/),
    });
    const me = await api.request('GET', '/me', { token: res.body.teacher_key });
    expect(me.body).toEqual({ teacher: true, class_id: res.body.id, key_id: res.body.teacher_key.split('_')[1] });
    const row = await sql<{ role: string; user_id: string | null; class_id: string }>`
      SELECT role, user_id, class_id FROM api_keys WHERE id = ${me.body.key_id}`.execute(ctx.db);
    expect(row.rows).toEqual([{ role: 'teacher', user_id: null, class_id: res.body.id }]);
    const got = await api.request('GET', `/classes/${res.body.id}`, { token: res.body.teacher_key });
    expect(got.status).toBe(200);
    const { teacher_key: _key, ...shown } = res.body;
    expect(got.body).toEqual(shown);
  });

  it('refuses each bad field with 400 naming it, and an unlisted ticker with 404 UNKNOWN_TICKER', async () => {
    const ok = { name: 'Bad fields', starting_cash: '1000.00' };
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['no name', { starting_cash: '1.00' }, /name is required/],
      ['empty name', { ...ok, name: '' }, /name must not be empty/],
      ['blank name', { ...ok, name: '   ' }, /name/],
      ['long name', { ...ok, name: 'x'.repeat(201) }, /name must be at most 200/],
      ['no cash', { name: 'x' }, /starting_cash is required/],
      ['negative cash', { ...ok, starting_cash: '-1.00' }, /starting_cash must be a plain decimal/],
      ['three decimals', { ...ok, starting_cash: '1.001' }, /starting_cash must have at most 2 decimals/],
      ['cash over the maximum', { ...ok, starting_cash: '1000000000000.01' }, /starting_cash must be at most/],
      ['cash as a boolean', { ...ok, starting_cash: true }, /starting_cash/],
      ['starts_at not a date', { ...ok, starts_at: 'next monday' }, /starts_at must be an ISO 8601 instant/],
      ['starts_at without offset', { ...ok, starts_at: '2026-09-01T13:30:00' }, /starts_at must be an ISO 8601 instant/],
      ['ends_at on February 30', { ...ok, ends_at: '2026-02-30T00:00:00Z' }, /ends_at must be an ISO 8601 instant/],
      ['window reversed', { ...ok, starts_at: '2026-12-01T00:00:00Z', ends_at: '2026-09-01T00:00:00Z' }, /starts_at .* must be before ends_at/],
      ['window empty', { ...ok, starts_at: '2026-12-01T00:00:00Z', ends_at: '2026-12-01T00:00:00Z' }, /must be before ends_at/],
      ['rules not an object', { ...ok, rules: ['tickers'] }, /rules must be an object/],
      ['unknown rule', { ...ok, rules: { max_shares: 10 } }, /unknown field max_shares/],
      ['empty tickers', { ...ok, rules: { tickers: [] } }, /rules.tickers must be a list of 1 to 500 tickers/],
      ['malformed ticker', { ...ok, rules: { tickers: ['NOT A TICKER'] } }, /rules.tickers holds "NOT A TICKER", which is not a ticker/],
      ['unknown order type', { ...ok, rules: { order_types: ['iceberg'] } }, /order_types.*must be one of/],
      ['percent above 100', { ...ok, rules: { max_position_pct: '100.01' } }, /rules.max_position_pct must be at most 100.00/],
      ['percent zero', { ...ok, rules: { max_position_pct: '0' } }, /rules.max_position_pct must be greater than zero/],
      ['orders per day zero', { ...ok, rules: { max_orders_per_day: 0 } }, /rules.max_orders_per_day must be a whole number from 1/],
      ['orders per day fractional', { ...ok, rules: { max_orders_per_day: 2.5 } }, /max_orders_per_day/],
      ['commission negative', { ...ok, rules: { commission_per_order: '-1' } }, /rules.commission_per_order must be a plain decimal/],
      ['visibility as a string', { ...ok, leaderboard_visible: 'yes' }, /leaderboard_visible must be a boolean/],
      ['unknown field', { ...ok, teacher: 'me' }, /unknown field teacher/],
    ];
    const failures: string[] = [];
    for (const [label, body, message] of cases) {
      const res = await api.request('POST', '/classes', { body });
      if (res.status !== 400 || res.body.error?.code !== 'VALIDATION_FAILED' || !message.test(res.body.error.message)) {
        failures.push(`${label}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
    expect(failures).toEqual([]);
    const unlisted = await api.request('POST', '/classes', { body: { ...ok, rules: { tickers: ['AAPL', 'ZZZZ'] } } });
    expect([unlisted.status, unlisted.body.error.code, unlisted.body.error.details]).toEqual([404, 'UNKNOWN_TICKER', { ticker: 'ZZZZ' }]);
    // Nothing was created by any refusal.
    const count = await sql<{ n: string }>`SELECT count(*) AS n FROM classes WHERE name = 'Bad fields'`.execute(ctx.db);
    expect(count.rows[0]!.n).toBe('0');
  });

  it('is for the admin only', async () => {
    const teacher = (await createClass()).teacher_key;
    const member = (await addMembers((await createClass()).id, students(1))).body.members[0].api_key;
    for (const token of [teacher, member]) {
      const res = await api.request('POST', '/classes', { token, body: { name: 'x', starting_cash: '1.00' } });
      expect([res.status, res.body.error.code]).toEqual([403, 'FORBIDDEN']);
    }
  });
});

describe('members in bulk', () => {
  it('creates 500 members funded with the starting cash in one call within 2 s, and each key works', async () => {
    const cls = await createClass({ starting_cash: '100000.00' });
    const list = students(500);
    const started = performance.now();
    const res = await addMembers(cls.id, list, cls.teacher_key);
    const elapsedMs = performance.now() - started;
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(201);
    console.log(`POST /classes/{id}/members with 500 members: ${elapsedMs.toFixed(0)} ms over HTTP`);
    expect(elapsedMs).toBeLessThan(2_000);
    expect(res.body.members).toHaveLength(500);
    expect(res.body.members.map((m: { email: string }) => m.email)).toEqual(list.map((s) => s.email));
    const ids = res.body.members.map((m: { user_id: string }) => m.user_id);
    const rows = await sql<{ balances: string; initial: string; ledger_sum: string; contributions: string; keys: string; memberships: string }>`
      SELECT (SELECT count(*) FROM cash_balances WHERE user_id = ANY(${ids}::uuid[]) AND cash_balance = 100000 AND available_cash = 100000) AS balances,
             (SELECT count(*) FROM cash_ledger WHERE user_id = ANY(${ids}::uuid[]) AND kind = 'initial' AND amount = 100000 AND balance_after = 100000) AS initial,
             (SELECT sum(amount)::text FROM cash_ledger WHERE user_id = ANY(${ids}::uuid[])) AS ledger_sum,
             (SELECT count(*) FROM cash_balances WHERE user_id = ANY(${ids}::uuid[]) AND net_contributions = 100000) AS contributions,
             (SELECT count(*) FROM api_keys WHERE user_id = ANY(${ids}::uuid[]) AND role = 'user' AND revoked_at IS NULL) AS keys,
             (SELECT count(*) FROM class_members WHERE user_id = ANY(${ids}::uuid[]) AND class_id = ${cls.id}) AS memberships`.execute(ctx.db);
    expect(rows.rows[0]).toEqual({ balances: '500', initial: '500', ledger_sum: '50000000.00', contributions: '500', keys: '500', memberships: '500' });
    // Every key is its own member's: a sample over HTTP.
    for (const m of [res.body.members[0], res.body.members[250], res.body.members[499]]) {
      const account = await api.request('GET', `/users/${m.user_id}/account`, { token: m.api_key });
      expect([account.status, account.body.cash_balance]).toEqual([200, '100000.00']);
    }
  });

  it('refuses 0 or 501 members, and a user key, creating nothing', async () => {
    const cls = await createClass();
    for (const n of [0, 501]) {
      const res = await addMembers(cls.id, students(n));
      expect([res.status, res.body.error.code], `${n} members`).toEqual([400, 'VALIDATION_FAILED']);
    }
    const bad = await addMembers(cls.id, [{ name: 'No email', email: 'nope' }]);
    expect([bad.status, bad.body.error.message]).toEqual([400, expect.stringMatching(/body.members.0.email must be an email address/)]);
    const members = await api.request('GET', `/classes/${cls.id}/members`);
    expect(members.body.members).toEqual([]);
  });

  it('refuses the whole call with 409 EMAIL_TAKEN naming a duplicate within the request or an email already taken', async () => {
    const cls = await createClass();
    const list = students(3);
    const twice = await addMembers(cls.id, [...list, { name: 'Again', email: list[1]!.email.toUpperCase() }]);
    expect(twice.status).toBe(409);
    expect(twice.body.error).toMatchObject({ code: 'EMAIL_TAKEN', details: { emails: [list[1]!.email.toUpperCase()], in_request: true } });
    expect(twice.body.error.message).toContain(list[1]!.email.toUpperCase());

    const taken = (await api.request('POST', '/users', { body: { name: 'Taken', email: `taken-${uniq()}@school.example` } })).body.email as string;
    const other = students(2);
    const clash = await addMembers(cls.id, [other[0]!, { name: 'Clash', email: taken.toUpperCase() }, other[1]!]);
    expect(clash.status).toBe(409);
    expect(clash.body.error).toMatchObject({ code: 'EMAIL_TAKEN', details: { emails: [taken.toUpperCase()] } });
    // Nothing of either call exists: the first and third of the clash were rolled back with it.
    const emails = [...list, ...other].map((s) => s.email.toLowerCase());
    const left = await sql<{ n: string }>`SELECT count(*) AS n FROM users WHERE lower(email) = ANY(${emails}::text[])`.execute(ctx.db);
    expect(left.rows[0]!.n).toBe('0');
    const ok = await addMembers(cls.id, [...list, ...other]);
    expect(ok.status).toBe(201);
  });

  it('answers 404 CLASS_NOT_FOUND for a class that does not exist (as the admin)', async () => {
    const res = await addMembers('00000000-0000-7000-8000-000000000000', students(1));
    expect([res.status, res.body.error.code]).toEqual([404, 'CLASS_NOT_FOUND']);
  });

  it('lists members in pages with a next cursor', async () => {
    const cls = await createClass({ starting_cash: '500.00' });
    const created = (await addMembers(cls.id, students(5), cls.teacher_key)).body.members as { user_id: string }[];
    const first = await api.request('GET', `/classes/${cls.id}/members?limit=2`, { token: cls.teacher_key });
    expect(first.status).toBe(200);
    expect(first.body.members).toHaveLength(2);
    expect(first.body.members[0]).toEqual({ user_id: created[0]!.user_id, name: 'Student 1', email: expect.any(String), joined_at: expect.any(String), cash_balance: '500.00' });
    const seen = [...first.body.members];
    let next = first.body.next;
    while (next) {
      const page = await api.request('GET', `/classes/${cls.id}/members?limit=2&after=${next}`, { token: cls.teacher_key });
      seen.push(...page.body.members);
      next = page.body.next;
    }
    expect(seen.map((m) => m.user_id)).toEqual(created.map((c) => c.user_id));
    const tooMany = await api.request('GET', `/classes/${cls.id}/members?limit=501`, { token: cls.teacher_key });
    expect(tooMany.status).toBe(400);
  });
});

describe('teacher keys', () => {
  let cls: { id: string; teacher_key: string };
  let member: { user_id: string; api_key: string };
  let orderId: string;
  let otherTeacher: string;
  let outsider: { id: string; api_key: string };

  beforeAll(async () => {
    cls = await createClass();
    [member] = (await addMembers(cls.id, students(2), cls.teacher_key)).body.members;
    otherTeacher = (await createClass()).teacher_key;
    outsider = (await api.request('POST', '/users', { body: { name: 'Outsider', email: `out-${uniq()}@example.com`, initial_cash: '100.00' } })).body;
    const order = await api.request('POST', '/orders', { token: member.api_key, body: { ticker: 'AAPL', quantity: 1, type: 'market' } });
    expect(order.status).toBe(201);
    orderId = order.body.id;
  });

  it("reads its members' account, activities, portfolio, events, orders and class", async () => {
    const t = cls.teacher_key;
    const reads = [
      `/users/${member.user_id}/account`,
      `/users/${member.user_id}/activities`,
      `/users/${member.user_id}/portfolio`,
      `/users/${member.user_id}/events`,
      `/users/${member.user_id}/portfolio/history`,
      `/orders/${orderId}`,
      `/orders?user_id=${member.user_id}`,
      `/classes/${cls.id}`,
      `/classes/${cls.id}/members`,
      `/classes/${cls.id}/leaderboard`,
    ];
    for (const path of reads) {
      const res = await api.request('GET', path, { token: t });
      expect(res.status, `${path}: ${JSON.stringify(res.body).slice(0, 200)}`).toBe(200);
    }
    const orders = await api.request('GET', `/orders?user_id=${member.user_id}`, { token: t });
    expect(orders.body.orders.map((o: { id: string }) => o.id)).toEqual([orderId]);
    const noUser = await api.request('GET', '/orders', { token: t });
    expect([noUser.status, noUser.body.error.message]).toEqual([400, expect.stringMatching(/user_id .* is required with a teacher key/)]);
  });

  it('never trades, cancels, replaces, withdraws, deposits or manages keys, even for its members', async () => {
    const t = cls.teacher_key;
    const writes: Array<[string, string, unknown?]> = [
      ['POST', '/orders', { user_id: member.user_id, ticker: 'AAPL', quantity: 1, type: 'market' }],
      ['POST', '/orders', { ticker: 'AAPL', quantity: 1, type: 'market' }],
      ['DELETE', `/orders/${orderId}`],
      ['PATCH', `/orders/${orderId}`, { limit_price: '9.00' }],
      ['DELETE', `/orders?user_id=${member.user_id}`],
      ['POST', `/users/${member.user_id}/withdrawals`, { amount: '1.00' }],
      ['POST', `/users/${member.user_id}/deposits`, { amount: '1.00' }],
      ['POST', `/users/${member.user_id}/api-keys`],
      ['DELETE', `/users/${member.user_id}/api-keys/${member.api_key.split('_')[1]}`],
      ['GET', `/users/${member.user_id}`],
      ['POST', '/users', { name: 'x', email: `x-${uniq()}@example.com` }],
      ['POST', '/classes', { name: 'x', starting_cash: '1.00' }],
      ['PUT', '/admin/prices/AAPL', { price: '1.00' }],
    ];
    for (const [method, path, body] of writes) {
      const res = await api.request(method, path, { token: t, body });
      expect([res.status, res.body?.error?.code], `${method} ${path}`).toEqual([403, 'FORBIDDEN']);
    }
    // The member's order and cash are as they were.
    const order = await api.request('GET', `/orders/${orderId}`, { token: member.api_key });
    expect(order.body.status).not.toBe('CANCELED');
  });

  it('sees nothing outside its class: another class, a user outside it, another class’s order', async () => {
    const t = cls.teacher_key;
    for (const path of [`/users/${outsider.id}/account`, `/users/${outsider.id}/portfolio`, `/users/${outsider.id}/events`, `/users/${outsider.id}/activities`, `/orders?user_id=${outsider.id}`]) {
      const res = await api.request('GET', path, { token: t });
      expect([res.status, res.body.error.code], path).toEqual([403, 'FORBIDDEN']);
    }
    // Another class's teacher: this class, its members, their orders.
    for (const path of [`/classes/${cls.id}`, `/classes/${cls.id}/members`, `/classes/${cls.id}/leaderboard`, `/users/${member.user_id}/account`]) {
      const res = await api.request('GET', path, { token: otherTeacher });
      expect([res.status, res.body.error.code], path).toEqual([403, 'FORBIDDEN']);
    }
    const foreignOrder = await api.request('GET', `/orders/${orderId}`, { token: otherTeacher });
    expect([foreignOrder.status, foreignOrder.body.error.code]).toEqual([404, 'ORDER_NOT_FOUND']);
    const addElsewhere = await addMembers(cls.id, students(1), otherTeacher);
    expect([addElsewhere.status, addElsewhere.body.error.code]).toEqual([403, 'FORBIDDEN']);
  });

  it('is not accepted where a member would need its own key: members manage themselves', async () => {
    const own = await api.request('POST', `/users/${member.user_id}/withdrawals`, { token: member.api_key, body: { amount: '1.00' } });
    expect(own.status).toBe(201);
    const peer = (await api.request('GET', `/classes/${cls.id}/members`, { token: cls.teacher_key })).body.members[1];
    const peerAccount = await api.request('GET', `/users/${peer.user_id}/account`, { token: member.api_key });
    expect(peerAccount.status).toBe(403);
    // A member is not the teacher: it neither adds members nor lists them.
    expect((await addMembers(cls.id, students(1), member.api_key)).status).toBe(403);
    expect((await api.request('GET', `/classes/${cls.id}/members`, { token: member.api_key })).status).toBe(403);
  });
});

describe('leaderboard visibility', () => {
  it('shows the leaderboard to members only when it is visible; the teacher and the admin always', async () => {
    const visible = await createClass();
    const hidden = await createClass({ leaderboard_visible: false });
    const [inVisible] = (await addMembers(visible.id, students(1))).body.members;
    const [inHidden] = (await addMembers(hidden.id, students(1))).body.members;

    const seen = await api.request('GET', `/classes/${visible.id}/leaderboard?metric=sharpe`, { token: inVisible.api_key });
    expect(seen.status).toBe(200);
    expect(seen.body.entries.map((e: { user_id: string }) => e.user_id)).toEqual([inVisible.user_id]);
    expect(seen.body.entries[0]).toMatchObject({ rank: 1, name: 'Student 1', equity: expect.stringMatching(/^\d+\.\d{2}$/) });

    const refused = await api.request('GET', `/classes/${hidden.id}/leaderboard`, { token: inHidden.api_key });
    expect([refused.status, refused.body.error.code]).toEqual([403, 'FORBIDDEN']);
    for (const token of [hidden.teacher_key, undefined]) {
      expect((await api.request('GET', `/classes/${hidden.id}/leaderboard?metric=max_drawdown`, { token })).status).toBe(200);
    }
    // A member of one class never sees another class's board or class, visible or not.
    expect((await api.request('GET', `/classes/${visible.id}/leaderboard`, { token: inHidden.api_key })).status).toBe(403);
    expect((await api.request('GET', `/classes/${visible.id}`, { token: inHidden.api_key })).status).toBe(403);
    expect((await api.request('GET', `/classes/${hidden.id}`, { token: inHidden.api_key })).status).toBe(200);
    const badMetric = await api.request('GET', `/classes/${visible.id}/leaderboard?metric=luck`);
    expect(badMetric.status).toBe(400);
  });
});

describe('papertrade class add-members', () => {
  it('reads a CSV file with quoted fields and prints keys that work', async () => {
    const created = JSON.parse(await createClassCommand(ctx.db, ctx.market, { name: 'CLI class', startingCash: '2500.00', rules: '{"tickers":["AAPL"]}' }));
    expect(created).toMatchObject({ name: 'CLI class', starting_cash: '2500.00', rules: { tickers: ['AAPL'] }, teacher_key: expect.stringMatching(/^ptk_/) });
    const tag = uniq();
    const file = join(dir, 'students.csv');
    await writeFile(file, `name,email\r\n"Lovelace, Ada",ada-${tag}@school.example\r\nAlan Turing,"alan-${tag}@school.example"\r\n"Grace ""Amazing"" Hopper",grace-${tag}@school.example\r\n`);
    let out = '';
    const result = await addMembersCommand(ctx.db, created.id, file, (text) => (out += text));
    expect(result.created).toBe(3);
    const rows = parseCsv(out);
    expect(rows[0]!.fields).toEqual(['user_id', 'name', 'email', 'api_key']);
    expect(rows.slice(1).map((r) => r.fields[1])).toEqual(['Lovelace, Ada', 'Alan Turing', 'Grace "Amazing" Hopper']);
    for (const { fields: [userId, , email, key] } of rows.slice(1)) {
      const me = await api.request('GET', '/me', { token: key });
      expect([me.status, me.body.user_id, me.body.email]).toEqual([200, userId, email]);
      const account = await api.request('GET', `/users/${userId}/account`, { token: key });
      expect(account.body.cash_balance).toBe('2500.00');
    }
    const list = await api.request('GET', `/classes/${created.id}/members`, { token: created.teacher_key });
    expect(list.body.members).toHaveLength(3);
  });

  it('creates more than one chunk of 500 in order', async () => {
    const created = JSON.parse(await createClassCommand(ctx.db, ctx.market, { name: 'Big class', startingCash: '10.00' }));
    const file = join(dir, 'big.csv');
    const list = students(1_001);
    await writeFile(file, `name,email\n${list.map((s) => `${s.name},${s.email}`).join('\n')}\n`);
    const started = performance.now();
    let out = '';
    const result = await addMembersCommand(ctx.db, created.id, file, (text) => (out += text));
    console.log(`papertrade class add-members, 1,001 members in 3 chunks: ${(performance.now() - started).toFixed(0)} ms`);
    expect(result.created).toBe(1_001);
    expect(parseCsv(out).slice(1).map((r) => r.fields[2])).toEqual(list.map((s) => s.email));
  });

  it('names the line of every problem, and creates nothing for a bad file', async () => {
    const cases: Array<[string, RegExp]> = [
      ['', /line 1: the file is empty/],
      ['email,name,age\nx,y,z\n', /line 1: the header must be name,email/],
      ['name,email\nAda,ada@example.com,extra\n', /line 2: expected 2 fields/],
      ['name,email\nAda,not-an-email\n', /line 2: email must be an address/],
      ['name,email\n"Ada,ada@example.com\n', /line 2: a quoted field is not closed/],
      ['name,email\nAda,a@example.com\n\nBob,A@EXAMPLE.COM\n', /line 4: the email A@EXAMPLE.COM is also on line 2/],
    ];
    for (const [text, message] of cases) expect(() => readMembersCsv(text), JSON.stringify(text)).toThrow(message);

    const created = JSON.parse(await createClassCommand(ctx.db, ctx.market, { name: 'Refused', startingCash: '10.00' }));
    const taken = (await api.request('POST', '/users', { body: { name: 'Taken', email: `cli-taken-${uniq()}@example.com` } })).body.email as string;
    const file = join(dir, 'taken.csv');
    await writeFile(file, `name,email\nFresh,fresh-${uniq()}@example.com\nTaken,${taken}\n`);
    let out = '';
    await expect(addMembersCommand(ctx.db, created.id, file, (text) => (out += text))).rejects.toThrow(new RegExp(`already taken: ${taken.replace(/[.]/g, '\\.')} \\(line 3\\); nothing was created`));
    expect(out).toBe('');
    const list = await api.request('GET', `/classes/${created.id}/members`);
    expect(list.body.members).toEqual([]);
  });
});
