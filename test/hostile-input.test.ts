/**
 * Hostile input against every write endpoint, over real HTTP. For each write route (taken from
 * the server's own route table, so a new one cannot be forgotten) fast-check generates requests
 * that must be refused: wrong types, missing and extra fields, bad numbers of every spelling,
 * huge and injection strings, odd unicode, prototype keys, broken JSON, wrong content types,
 * oversize bodies, malformed path ids, wrong credentials. Every one must get a 4xx in the error
 * envelope (never a 5xx, never a stack trace) and leave the database exactly as it was.
 */
import net from 'node:net';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { CASH_MAX, parsePrice, PRICE_MAX, QTY_MAX } from '../src/core/money.js';
import { quoteIdent } from '../src/infra/postgres.js';
import {
  BODY_LIMIT_BYTES,
  CONNECTION_TIMEOUT_MS,
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
} from '../src/http/server.js';
import { ADMIN_TOKEN, createTestContext, eventually, startTestServer, type TestContext, type TestServer } from './harness.js';

const NUM_RUNS = Number(process.env.HOSTILE_NUM_RUNS ?? 60);
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const STATE_TABLES = ['users', 'api_keys', 'cash_balances', 'cash_ledger', 'holdings', 'orders', 'fills', 'classes', 'class_members', 'account_resets'];

let ctx: TestContext;
let api: TestServer;

// ---------------------------------------------------------------------------------------------
// The world under attack
// ---------------------------------------------------------------------------------------------

interface Actor {
  id: string;
  key: string;
  keyId: string;
}

interface World {
  alice: Actor;
  bob: Actor;
  /** A live key of alice's that is not used to call: the target of revocation attempts. */
  aliceSpareKeyId: string;
  aliceRevoked: { key: string; keyId: string };
  alicePendingBuy: string;
  alicePendingSell: string;
  aliceFilled: string;
  aliceCanceled: string;
  bobPending: string;
  /** A resting (OPEN) limit buy of alice's: the target of replace attempts. */
  aliceOpenLimit: string;
  /** Cash alice may still withdraw: anything above it is refused. */
  aliceAvailableCents: bigint;
  /**
   * A user of its own, in no class, for the reset route: were a reset of hers ever accepted,
   * no other spec's expectations (alice's cash, her orders) would move with it.
   */
  carol: Actor;
  /** A class, its teacher key and its one member (who may reset itself, but not choose its cash). */
  classId: string;
  teacherKey: string;
  member: Pick<Actor, 'id' | 'key'>;
  /** The teacher key of another class: it may manage nobody in the first one. */
  otherTeacherKey: string;
}

let world: World;

async function http(method: string, path: string, token: string, body?: unknown) {
  const res = await api.request(method, path, { token, body });
  if (res.status >= 300) throw new Error(`setup ${method} ${path} -> ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function createActor(name: string, cash: string): Promise<Actor> {
  const u = await http('POST', '/users', ADMIN_TOKEN, { name, email: `${name.toLowerCase()}@example.com`, initial_cash: cash });
  return { id: u.id, key: u.api_key, keyId: u.api_key_id };
}

async function placeOrder(actor: Actor, side: 'buy' | 'sell', quantity: string): Promise<string> {
  const order = await http('POST', '/orders', actor.key, { user_id: actor.id, ticker: 'AAPL', quantity, type: 'market', side });
  return order.id;
}

async function setPrices() {
  const now = Date.now();
  await ctx.quotes.setMany([
    { ticker: 'AAPL', price: parsePrice('230'), asOfMs: now },
    { ticker: 'MSFT', price: parsePrice('420'), asOfMs: now },
  ]);
}

beforeAll(async () => {
  ctx = await createTestContext({ PRICE_AGE_MS_MAX: '86400000', ENGINE_BLOCK_MS: '50' });
  api = await startTestServer(ctx);
  await setPrices();

  const alice = await createActor('Alice', '100000.00');
  const bob = await createActor('Bob', '5000.00');
  const spare = await http('POST', `/users/${alice.id}/api-keys`, alice.key);
  const revoked = await http('POST', `/users/${alice.id}/api-keys`, alice.key);
  await http('DELETE', `/users/${alice.id}/api-keys/${revoked.api_key_id}`, alice.key);

  // Holdings come from real fills: run the engine just long enough.
  const aliceFilled = await placeOrder(alice, 'buy', '10');
  const bobFilled = await placeOrder(bob, 'buy', '2');
  const engine = createEngine(ctx);
  await engine.start();
  let aliceOpenLimit: string;
  try {
    for (const [id, key] of [
      [aliceFilled, alice.key],
      [bobFilled, bob.key],
    ] as const) {
      await eventually(async () => ((await api.request('GET', `/orders/${id}`, { token: key })).body.status === 'FILLED' ? true : undefined));
    }
    // Far under the price: it rests OPEN (and stays so once the engine stops).
    aliceOpenLimit = (await http('POST', '/orders', alice.key, { ticker: 'AAPL', side: 'buy', quantity: '1', type: 'limit', limit_price: '10.00', time_in_force: 'gtc' })).id;
    await eventually(async () => ((await api.request('GET', `/orders/${aliceOpenLimit}`, { token: alice.key })).body.status === 'OPEN' ? true : undefined));
  } finally {
    await engine.stop();
  }

  // With the engine stopped, these stay PENDING: orders to attack.
  const alicePendingBuy = await placeOrder(alice, 'buy', '1');
  const alicePendingSell = await placeOrder(alice, 'sell', '1');
  const aliceCanceled = await placeOrder(alice, 'buy', '1');
  await http('DELETE', `/orders/${aliceCanceled}`, alice.key);
  const bobPending = await placeOrder(bob, 'buy', '1');

  const carol = await createActor('Carol', '1000.00');
  const cls = await http('POST', '/classes', ADMIN_TOKEN, { name: 'Hostile class', starting_cash: '25000.00' });
  const [member] = (await http('POST', `/classes/${cls.id}/members`, cls.teacher_key, { members: [{ name: 'Dana', email: 'dana@example.com' }] })).members;
  const otherClass = await http('POST', '/classes', ADMIN_TOKEN, { name: 'Other class', starting_cash: '0' });

  const account = await http('GET', `/users/${alice.id}/account`, alice.key);
  world = {
    alice,
    bob,
    aliceSpareKeyId: spare.api_key_id,
    aliceRevoked: { key: revoked.api_key, keyId: revoked.api_key_id },
    alicePendingBuy,
    alicePendingSell,
    aliceFilled,
    aliceCanceled,
    bobPending,
    aliceOpenLimit: aliceOpenLimit!,
    aliceAvailableCents: BigInt(String(account.available_cash).replace('.', '')),
    carol,
    classId: cls.id,
    teacherKey: cls.teacher_key,
    member: { id: member.user_id, key: member.api_key },
    otherTeacherKey: otherClass.teacher_key,
  };
}, 60_000);

afterAll(async () => {
  await api?.server.close();
  await ctx?.close();
});

// ---------------------------------------------------------------------------------------------
// Database snapshot: row count, content digest and sums of the numeric columns of every table
// ---------------------------------------------------------------------------------------------

let snapshotQuery: string | undefined;

async function buildSnapshotQuery(): Promise<string> {
  const tables = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(ctx.db);
  const names = tables.rows.map((r) => r.table_name);
  expect(names).toEqual(expect.arrayContaining(STATE_TABLES));
  const numeric = await sql<{ table_name: string; column_name: string }>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = 'public' AND data_type IN ('numeric', 'integer', 'bigint', 'smallint')
    ORDER BY table_name, ordinal_position`.execute(ctx.db);
  const parts = names.map((t) => {
    const cols = numeric.rows.filter((c) => c.table_name === t).map((c) => `coalesce(sum(x.${quoteIdent(c.column_name)}), 0)::text`);
    const sums = cols.length ? `concat_ws(',', ${cols.join(', ')})` : `''`;
    return (
      `SELECT '${t}' AS t, count(*)::text AS n, ${sums} AS sums, ` +
      `md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS digest FROM ${quoteIdent(t)} x`
    );
  });
  return parts.join(' UNION ALL ') + ' ORDER BY t';
}

async function snapshot(): Promise<Record<string, string>> {
  snapshotQuery ??= await buildSnapshotQuery();
  const result = await sql.raw<{ t: string; n: string; sums: string; digest: string }>(snapshotQuery).execute(ctx.db);
  const snap: Record<string, string> = {};
  for (const r of result.rows) snap[r.t] = `rows=${r.n} sums=[${r.sums}] md5=${r.digest}`;
  snap['order-pipe backlog'] = String(await ctx.infra.pipe.backlog());
  return snap;
}

// ---------------------------------------------------------------------------------------------
// Requests and the refusal every one of them must get
// ---------------------------------------------------------------------------------------------

interface Hostile {
  kind: string;
  method: string;
  path: string;
  /** The whole Authorization header value, or null for none. */
  auth: string | null;
  body?: string;
  /** undefined: application/json when there is a body; null: no Content-Type at all. */
  contentType?: string | null;
  headers?: Record<string, string>;
  /** Exact statuses expected when the case pins one down; otherwise any 4xx. */
  expect?: readonly number[];
}

interface Answer {
  status: number;
  text: string;
  body: unknown;
  headers: Headers;
}

async function send(c: Hostile): Promise<Answer> {
  const headers: Record<string, string> = { ...(c.headers ?? {}) };
  if (c.auth !== null) headers.authorization = c.auth;
  let body: string | Uint8Array | undefined = c.body;
  if (body !== undefined) {
    if (c.contentType === undefined) headers['content-type'] = 'application/json';
    else if (c.contentType !== null) headers['content-type'] = c.contentType;
    // A string body would make fetch add text/plain; bytes go without any type.
    else body = new TextEncoder().encode(body);
  }
  const res = await fetch(api.url + c.path, { method: c.method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, text, body: parsed, headers: res.headers };
}

/** Things an error response must never show: stack frames, file paths, SQL and driver errors. */
const LEAKS = [
  /\n\s+at\s/,
  /\bat\s+\S+\s+\(?[^\s()]+:\d+:\d+\)?/,
  /node_modules/,
  /\/work\//,
  /\.[cm]?[jt]s:\d+/,
  /"stack"/,
  /syntax error at or near/i,
  /relation "/i,
  /violates .*constraint/i,
  /duplicate key/i,
  /invalid input syntax/i,
  /invalid byte sequence/i,
  /\bECONN[A-Z]+\b/,
];

function describeCase(c: Hostile): string {
  const body = c.body === undefined ? '' : ` body(${c.body.length})=${JSON.stringify(c.body.slice(0, 300))}`;
  return `[${c.kind}] ${c.method} ${c.path.slice(0, 200)} auth=${JSON.stringify(c.auth?.slice(0, 40) ?? null)} ct=${JSON.stringify(c.contentType)}${body}`;
}

/**
 * The statuses a refusal may have on its route: Alpaca's routes (/v2) answer an invalid
 * request 422 where the native API answers 400 (a body that is not JSON stays 400), and a
 * state conflict 422 where the native API answers 409. Their error body carries the native
 * error under `error`, so the envelope checks below hold for both.
 */
function alpacaStatuses(path: string, statuses: readonly number[]): readonly number[] {
  if (!path.startsWith('/v2/')) return statuses;
  return statuses.flatMap((s) => (s === 400 ? [400, 422] : s === 409 ? [422] : [s]));
}

function expectCleanRefusal(c: Hostile, res: Answer): void {
  const where = `${describeCase(c)}\n  -> ${res.status} ${res.text.slice(0, 500)}`;
  expect(res.status, where).toBeGreaterThanOrEqual(400);
  expect(res.status, where).toBeLessThan(500);
  if (c.expect) expect(alpacaStatuses(c.path, c.expect), where).toContain(res.status);
  expect(res.headers.get('content-type') ?? '', where).toMatch(/^application\/json/);
  const error = (res.body as { error?: Record<string, unknown> } | undefined)?.error;
  expect(error, where).toBeDefined();
  expect(error!.code, where).toMatch(/^[A-Z][A-Z0-9_]+$/);
  expect(typeof error!.message, where).toBe('string');
  expect(typeof error!.service, where).toBe('string');
  for (const leak of LEAKS) expect(res.text, where).not.toMatch(leak);
  expect(res.headers.get('x-content-type-options'), where).toBe('nosniff');
}

// ---------------------------------------------------------------------------------------------
// Building blocks: raw JSON values, bodies, strings and numbers of every hostile kind
// ---------------------------------------------------------------------------------------------

/** A JSON value, or raw JSON text (to write tokens JSON.stringify never would: 1e400, -0, NaN). */
type Raw = { json: unknown } | { raw: string };
type Entries = Array<[string, Raw]>;

const J = (json: unknown): Raw => ({ json });
const R = (raw: string): Raw => ({ raw });

function serialize(entries: Entries): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${'raw' in v ? v.raw : JSON.stringify(v.json)}`).join(',')}}`;
}

const KB10 = 10 * 1024;

const INJECTION = [
  "' OR 1=1 --",
  "'; DROP TABLE users; --",
  '" OR ""="',
  "1' AND pg_sleep(5) IS NULL --",
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  '${7*7}',
  '{{7*7}}',
  '#{7*7}',
  '$(reboot)',
  '`id`',
  '../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '\u0000',
  'a\u0000b',
  '%00',
  '\\u0000',
  '{"$gt":""}',
  '__proto__',
  'constructor',
  'prototype',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
  '\r\nX-Injected: 1',
  'AAPL; DELETE FROM orders',
];

const UNICODE = [
  '😀',
  '👨‍👩‍👧‍👦',
  '\u202eevil\u202c',
  'مرحبا',
  'שלום',
  'e\u0301\u0301\u0301\u0301',
  'Z\u0337\u0327\u0353a\u0338l\u0337g\u0336o\u0334',
  '\ufeff',
  '\u200b',
  '\uffff',
  '\ud800',
  '\udc00x',
  '１２３',
  '١٢٣',
  '𝟙𝟚𝟛',
  'ｍａｒｋｅｔ',
  'İı',
  '\u00a0',
];

/** Long strings: past every maxLength we have. */
const LONG_STRINGS = ['x'.repeat(KB10), '9'.repeat(KB10), '😀'.repeat(2600), "' OR 1=1 --".repeat(1000)];

/** Hand-picked strings no field of ours accepts as a number, an id, an enum value or a key. */
const HOSTILE_STRINGS = [...INJECTION, ...UNICODE, ...LONG_STRINGS];

/** Random strings with at least one character outside [A-Za-z0-9._-]. */
const randomHostileString: fc.Arbitrary<string> = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 24 })
  .filter((s) => /[^A-Za-z0-9._-]/.test(s));

const hostileString: fc.Arbitrary<string> = fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), randomHostileString);

/** Values of the wrong JSON type for a field that wants a string or a number. */
const WRONG_TYPES: Raw[] = [
  J(true),
  J(false),
  J(null),
  J([]),
  J(['1']),
  J({}),
  J({ value: '1' }),
  J({ $numberDecimal: '1' }),
  J([[[[[[[[[[[]]]]]]]]]]]),
];
const wrongType: fc.Arbitrary<Raw> = fc.constantFrom(...WRONG_TYPES);

/** A field's bad values: every catalog entry is sent once by the sweep; the property draws from both. */
interface BadValues {
  catalog: Raw[];
  generated: fc.Arbitrary<Raw>;
}

interface DecimalField {
  scale: number;
  /** Largest valid value in units of 10^-scale. */
  max: bigint;
  allowZero: boolean;
}
const CASH: DecimalField = { scale: 2, max: CASH_MAX, allowZero: false };
const CASH_OR_ZERO: DecimalField = { scale: 2, max: CASH_MAX, allowZero: true };
const QTY: DecimalField = { scale: 6, max: QTY_MAX, allowZero: false };
const PRICE: DecimalField = { scale: 4, max: PRICE_MAX, allowZero: false };
/** trail_percent: 2 decimals, strictly between 0 and 100 (99.99 at most). */
const PERCENT: DecimalField = { scale: 2, max: 9_999n, allowZero: false };

/** Request decimals that are refused by construction, whatever the account holds. */
function invalidDecimal(f: DecimalField): BadValues {
  const maxWhole = f.max / 10n ** BigInt(f.scale);
  const tiny = `1.${'0'.repeat(f.scale)}1`; // one digit past the scale
  const catalog: Raw[] = [
    // negative
    J(-1),
    J(-1_000_000_000),
    ...['-1', '-0.01', '-100.00', '-0.000001', '-1e3'].map(J),
    R('-1e400'),
    R('-0.5'),
    R('-9007199254740993'),
    // huge
    J((maxWhole + 1n).toString()),
    R((maxWhole + 1n).toString()),
    R('1e21'),
    R('1e308'),
    R('1e400'),
    R('123456789012345678901234567890'),
    J('9'.repeat(41)),
    J(`1${'0'.repeat(40)}`),
    // too precise (a number only where a double holds every digit), trailing zeros included
    J(tiny),
    R(tiny),
    J(`1.${'0'.repeat(f.scale + 1)}`),
    R('0.1e-10'),
    R('0.30000000000000004'),
    // exponent notation: strings always; numbers where String() keeps the exponent
    ...['1e3', '1E3', '1e-2', '1.5e2', '1e+2', '5e0', '0e0', '1e', 'e1'].map(J),
    R('1e21'),
    R('1e-7'),
    R('2.5e-8'),
    R('1E25'),
    R('1e-300'),
    // NaN and infinities of every spelling (as raw tokens they are not JSON at all)
    ...['NaN', 'nan', 'Infinity', '-Infinity', '+Infinity', 'inf', 'Inf', '∞', '1/0'].map(J),
    R('NaN'),
    R('Infinity'),
    R('-Infinity'),
    // not a plain decimal
    ...['', ' ', ' 1', '1 ', '1\n', '\t1', '+1', '1,000', '1_000', '0x10', '0b1', '0o7', '1.', '.5', '01', '00.5', '1.2.3'].map(J),
    ...['$5', '5 USD', '½', '１', '١', '--1', '1-', '1\u00002', '1\u200b', '1.0\u0301'].map(J),
    ...HOSTILE_STRINGS.map(J),
    ...WRONG_TYPES,
    ...(f.allowZero ? [] : [J(0), J('0'), J('0.00'), J('0.0'), R('-0'), R('0.0'), R('0e5'), J('0.000000')]),
  ];
  const generated = fc.oneof(
    fc.integer({ min: -1_000_000_000, max: -1 }).map(J),
    fc.bigInt({ min: maxWhole + 1n, max: 10n ** 39n }).map((b) => J(b.toString())),
    fc.bigInt({ min: maxWhole + 1n, max: 10n ** 15n }).map((b) => R(b.toString())),
    fc
      .tuple(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.integer({ min: f.scale + 1, max: f.scale + 10 }), fc.integer({ min: 1, max: 9 }))
      .map(([whole, decimals, last]) => J(`${whole}.${'0'.repeat(decimals - 1)}${last}`)),
    fc
      .tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: f.scale + 1, max: f.scale + 3 }), fc.integer({ min: 1, max: 9 }))
      .map(([whole, decimals, last]) => R(`${whole}.${'0'.repeat(decimals - 1)}${last}`)),
    randomHostileString.map(J),
  );
  return { catalog, generated };
}

/** Strings that are refused where any visible text is allowed (names): control chars, lone surrogates. */
function withControlChar(): fc.Arbitrary<string> {
  return fc
    .tuple(fc.string({ maxLength: 8 }), fc.oneof(fc.integer({ min: 0, max: 0x1f }), fc.constant(0x7f), fc.integer({ min: 0xd800, max: 0xdfff })), fc.string({ maxLength: 8 }))
    .map(([a, code, b]) => `${a}${String.fromCharCode(code)}${b}`)
    .filter((s) => !/[\ud800-\udbff][\udc00-\udfff]/.test(s)); // a paired surrogate is a real character
}

function cashText(cents: bigint): string {
  return `${cents / 100n}.${(cents % 100n).toString().padStart(2, '0')}`;
}

const BROKEN_JSON = [
  // Unicode spaces that are not JSON whitespace: a body of one is not an empty body.
  '\u00a0',
  '\ufeff',
  '\u2028',
  '{',
  '}',
  '{"amount":',
  '{"amount": "1.00",}',
  "{'amount': '1.00'}",
  '{amount: "1.00"}',
  '{"amount": "1.00"} x',
  '{"a":1}{"b":2}',
  '[1,2',
  '"unterminated',
  '{"amount": NaN}',
  '{"amount": Infinity}',
  '{"amount": -Infinity}',
  '{"amount": +1}',
  '{"amount": .5}',
  '{"amount": 01}',
  '{"amount": 0x10}',
  '{"amount": 1.}',
  '{"amount": "1.00" /* comment */}',
  '// comment\n{}',
  '\u0000',
  'null null',
  'undefined',
  'nul',
  'tru',
  '{"amount":"\\x41"}',
  '{"amount":"\\u00"}',
  '{"a":"b"',
  '{"a" "b"}',
  '{,}',
  '\ufeff\ufeff{}',
  `${'['.repeat(5000)}${']'.repeat(4999)}`,
];

const brokenJson: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...BROKEN_JSON),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }).filter((s) => {
    // JSON's own whitespace alone is an empty body (a request without one, fine where the body
    // is optional): the 'empty JSON body' kind covers it, not this one.
    if (/^[ \t\n\r]*$/.test(s)) return false;
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  }),
);

/** Content types that are not JSON (a valid JSON body under them must still be refused). */
const WRONG_CONTENT_TYPES: Array<string | null> = [
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'text/html',
  'application/octet-stream',
  'application/jsonx',
  'application/json-patch+json',
  'text/json',
  'application/javascript',
  'image/png',
  'json',
  '*/*',
  null,
];

/** Keys that must never be accepted beside the known fields. */
const extraKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('role', 'admin', 'is_admin', 'id', 'user_id', 'status', 'balance', 'cash_balance', 'reserved_amount', 'api_key', ''),
  fc.constantFrom('constructor', 'prototype', 'toString', 'hasOwnProperty', '__defineGetter__', '😀', 'x'.repeat(KB10)),
  hostileString,
);

/** Prototype-poisoning shapes: refused by the JSON parser itself. */
const POISON: Array<[string, Raw]> = [
  ['__proto__', J({ isAdmin: true })],
  ['__proto__', J(null)],
  ['constructor', J({ prototype: { isAdmin: true } })],
];

const MALFORMED_TOKENS = [
  'Bearer',
  'Bearer ',
  'Basic dXNlcjpwYXNz',
  'Bearer not-a-key',
  `Bearer ${ADMIN_TOKEN}x`,
  `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
  `bearer-${ADMIN_TOKEN}`,
  `Token ${ADMIN_TOKEN}`,
  `Bearer ptk_0000000000000000_${'a'.repeat(43)}`,
  `Bearer ${'a'.repeat(300)}`,
  "Bearer ' OR 1=1 --",
  'Bearer a, Bearer b',
  `Bearer ${ADMIN_TOKEN} ${ADMIN_TOKEN}`,
  'Bearer \u00e9t\u00e9',
];

/** Path segments that are no id at all (nor any other valid path parameter). */
const MALFORMED_SEGMENTS = [
  'abc',
  '1',
  '0',
  '-1',
  'null',
  'undefined',
  '------------------------------------',
  '0190000000007000800000000000000000000',
  '01900000-0000-7000-8000-00000000000g',
  '01900000-0000-7000-8000-0000000000000',
  '{01900000-0000-7000-8000-000000000000}',
  '01900000000070008000000000000000',
  '%00',
  '%zz',
  '%',
  '%2e%2e',
  '..%2F..%2Fetc%2Fpasswd',
  '%20',
  '*',
  '%2A',
  '$%7B7*7%7D',
  'a'.repeat(101),
  'a'.repeat(4000),
  '01900000-0000-7000-8000-000000000000%00',
  '01900000-0000-7000-8000-000000000000;x',
  '01900000-0000-7000-8000-000000000000.json',
];

function malformedSegment(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...MALFORMED_SEGMENTS),
    hostileString.map(encodeSegment),
    fc.integer({ min: 101, max: 4000 }).map((n) => 'a'.repeat(n)),
    fc.tuple(fc.uuid(), fc.constantFrom('x', '0', '-', '%00', '%20', ';', '.json', '%0A')).map(([u, suffix]) => `${u}${suffix}`),
  );
}

/** Percent-encodes a path segment; lone surrogates (which encodeURIComponent refuses) become U+FFFD. */
function encodeSegment(s: string): string {
  return encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
}

const nonexistentUuid = fc.uuid({ version: 7 });
const nonexistentKeyId = fc.stringMatching(/^[0-9a-f]{16}$/);

// ---------------------------------------------------------------------------------------------
// Per route: the legitimate targets and the ways to spoil a request to them
// ---------------------------------------------------------------------------------------------

interface Target {
  label: string;
  auth: string;
  path: string;
}

interface FieldSpec {
  name: string;
  /** Whether a request without the field is refused (it may depend on who calls). */
  required: boolean | ((t: Target) => boolean);
  /** Valid values; the first is the one the catalog sweep uses. */
  valid: (t: Target) => Raw[];
  invalid: (t: Target) => BadValues;
}

interface RouteSpec {
  /** Targets a legitimate principal may act on (a valid body to them would change state). */
  targets: () => Target[];
  /** Every field is optional, but a valid body names at least one (PATCH). */
  atLeastOneField?: boolean;
  /**
   * The body itself may be left out (POST /users/{id}/reset): a request without one, or with
   * an empty one, is valid, so it is never sent as a case to refuse.
   */
  bodyOptional?: boolean;
  /**
   * A variant of a route swept in full elsewhere: the catalog sweep sends only these fields'
   * bad values (and the extra keys); the transport cases and the other fields were swept there.
   * The generated property still spoils every field.
   */
  sweepOnly?: string[];
  /** Body fields; undefined for a route that takes no body. */
  fields?: FieldSpec[];
  /** The same route with bad path parameters (with a legitimate principal). */
  badPaths: () => fc.Arbitrary<BadPath>;
  /** Legitimate requests sent with the wrong credentials. */
  wrongPrincipals: () => Array<{ label: string; auth: string | null; path?: string; expect: number[] }>;
  /** Extra header attacks (e.g. Idempotency-Key). */
  headers?: (t: Target) => fc.Arbitrary<{ label: string; headers: Record<string, string>; entries?: Entries }>;
  /**
   * Fields each valid alone but not together (a window that ends before it starts): merged into
   * a valid body, they must be refused with a 400. The sweep sends every catalog entry.
   */
  conflicts?: (t: Target) => { catalog: Conflict[]; generated: fc.Arbitrary<Conflict> };
}

interface Conflict {
  label: string;
  entries: Entries;
}

/** A valid body with some of its fields replaced (or added) by `extra`. */
function merge(entries: Entries, extra: Entries): Entries {
  return [...entries.filter(([k]) => !extra.some(([e]) => e === k)), ...extra];
}

const bearer = (token: string) => `Bearer ${token}`;
const isRequired = (f: FieldSpec, t: Target) => (typeof f.required === 'function' ? f.required(t) : f.required);

function unauthenticated(): Array<{ label: string; auth: string | null; expect: number[] }> {
  return [
    { label: 'no token', auth: null, expect: [401] },
    { label: 'revoked key', auth: bearer(world.aliceRevoked.key), expect: [401] },
    ...MALFORMED_TOKENS.map((t) => ({ label: `malformed token ${t.slice(0, 20)}`, auth: t, expect: [401] })),
  ];
}

type BadPath = { label: string; path: string; auth: string; expect?: readonly number[] };

/** Bad order ids for a route on one order (cancel, replace): malformed, unknown, not yours, ended; and any `extra`. */
function badOrderPaths(...extra: BadPath[]): fc.Arbitrary<BadPath> {
  const own = bearer(world.alice.key);
  return fc.oneof(
    malformedSegment().map((s) => ({ label: 'malformed order id', path: `/orders/${s}`, auth: own })),
    nonexistentUuid.map((u) => ({ label: 'unknown order', path: `/orders/${u}`, auth: own, expect: [404] })),
    nonexistentUuid.map((u) => ({ label: 'unknown order (admin)', path: `/orders/${u}`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
    fc.constant({ label: "another user's pending order", path: `/orders/${world.bobPending}`, auth: own, expect: [404] }),
    fc.constant({ label: 'filled order', path: `/orders/${world.aliceFilled}`, auth: own, expect: [409] }),
    fc.constant({ label: 'canceled order', path: `/orders/${world.aliceCanceled}`, auth: bearer(ADMIN_TOKEN), expect: [409] }),
    ...extra.map((e) => fc.constant(e)),
  );
}

/** Who may not act on alice's order: nobody unauthenticated, and not bob, whose key finds it "not found" (its existence is not disclosed). */
function orderWrongPrincipals(): Array<{ label: string; auth: string | null; expect: number[] }> {
  return [...unauthenticated(), { label: "another user's key", auth: bearer(world.bob.key), expect: [404] }];
}

const amountField = (invalid: (t: Target) => BadValues): FieldSpec => ({
  name: 'amount',
  required: true,
  valid: () => [J('1.00'), J(1), J('0.01'), J(12.5)],
  invalid,
});

/** Bad values from hand-picked strings (plus the wrong types) and generated ones. */
function badStrings(catalog: string[], generated: fc.Arbitrary<string>, extra: Raw[] = []): BadValues {
  return { catalog: [...catalog.map(J), ...extra, ...WRONG_TYPES], generated: generated.map(J) };
}

/** An email our pattern accepts: something@something, no whitespace, control characters or lone surrogates. */
const looksLikeEmail = (s: string) => /^[^\s@]+@[^\s@]+$/u.test(s) && !/[\p{Cc}\p{Cs}]/u.test(s);

const TIMES_IN_FORCE = ['day', 'gtc', 'ioc', 'fok', 'opg', 'cls'];

/** time_in_force, optional: `valid` are the ones the order's type takes, the others are refused. */
function timeInForceField(valid: readonly string[]): FieldSpec {
  return {
    name: 'time_in_force',
    required: false,
    valid: () => valid.map(J),
    invalid: () =>
      badStrings(
        [...TIMES_IN_FORCE.filter((t) => !valid.includes(t)), 'DAY', 'Day', 'GTC', 'gtd', 'good_till_canceled', ' day', 'day ', 'day\u0000', 'ｄａｙ', '', ...HOSTILE_STRINGS],
        randomHostileString,
      ),
  };
}

function clientOrderIdInvalid(): BadValues {
  return badStrings(
    ['', 'a'.repeat(129), 'x'.repeat(KB10), 'has space', 'tab\there', 'émoji😀', '\u0000', 'a\u0000b', 'new\nline'],
    randomHostileString.filter((s) => /[^\x21-\x7e]/.test(s)),
  );
}

/** Names every name field takes (a user's, a class's, a class member's): free text, injection strings included. */
const VALID_NAMES = [J('Ada'), J('Zoë Ünicode 😀'), ...INJECTION.filter((s) => !/[\p{Cc}]/u.test(s)).map(J)];

function invalidName(): BadValues {
  return badStrings(
    ['', ' ', '\t', '\n', '   \u00a0 ', 'x'.repeat(201), 'x'.repeat(KB10)],
    withControlChar(),
    [...['a\u0000b', '\u0000', 'Ada\u0007', 'Ada\u001b[31m', 'Ada\ud800', '\udc00Ada', 'Ada\r\nX: 1', '\u007f'].map(J), R('1'), R('-0'), R('1e400')],
  );
}

function invalidEmail(): BadValues {
  return badStrings(
    [
      ...['', 'a', 'ab', 'a@', '@b', 'a b@c.d', 'a@b c', 'a@@b', 'a@b@c', 'x\u0000@y.z', 'a@b\n', 'a\ud800@b.c', 'a@b\u0007'],
      ...[`${'a'.repeat(320)}@x.io`, `${'a'.repeat(KB10)}@x.io`],
      ...HOSTILE_STRINGS.filter((s) => !looksLikeEmail(s)),
    ],
    fc.oneof(randomHostileString, withControlChar().map((s) => `a${s}@b.c`)).filter((s) => !looksLikeEmail(s)),
  );
}

/** Instants that are not ISO 8601 with an offset, or not a real moment, or before 1970. */
const BAD_INSTANTS = [
  '',
  'now',
  'yesterday',
  '2026-09-01',
  '2026-09-01T13:30:00',
  '2026-09-01T13:30',
  '2026-09-01 13:30:00Z',
  '2026-09-01t13:30:00z',
  '2026-9-1T13:30:00Z',
  '20260901T133000Z',
  '2026-09-01T13:30:00+0000',
  '2026-09-01T13:30:00 +00:00',
  '2026-09-01T13:30:00UTC',
  '2026-09-01T13:30:00.1234567890Z',
  '2026-09-01T13:30:00.Z',
  // Date would roll these over into the next month (or refuse them): the day must exist.
  '2026-02-29T00:00:00Z',
  '2026-02-30T00:00:00Z',
  '2026-04-31T00:00:00Z',
  '2026-13-01T00:00:00Z',
  '2026-00-10T00:00:00Z',
  '2026-09-00T00:00:00Z',
  '2026-09-01T25:00:00Z',
  '2026-09-01T13:60:00Z',
  '2026-09-01T13:30:60Z',
  '2026-09-01T13:30:00+25:00',
  '2026-09-01T13:30:00+00:60',
  '1969-12-31T23:59:59Z',
  '0000-01-01T00:00:00Z',
  '+275760-09-13T00:00:00Z',
  '-000001-01-01T00:00:00Z',
  '2026-09-01T13:30:00Z'.padEnd(41, '0'),
  '1788269400000',
  'Tue, 01 Sep 2026 13:30:00 GMT',
  '２０２６-09-01T13:30:00Z',
];

/** Instants from 1970 on, far enough from year 9999 that a later one still has four digits. */
const instantSince1970 = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9000-01-01T00:00:00Z'), noInvalidDate: true });

function invalidInstant(): BadValues {
  const pad = (n: number) => String(n).padStart(2, '0');
  return badStrings(
    [...BAD_INSTANTS, ...HOSTILE_STRINGS],
    fc.oneof(
      instantSince1970.map((d) => d.toISOString().slice(0, -1)), // no offset
      instantSince1970.map((d) => d.toISOString().slice(0, 10)), // a day, not an instant
      instantSince1970.map((d) => String(d.getTime())),
      fc.date({ min: new Date('1000-01-01T00:00:00Z'), max: new Date('1969-12-31T23:59:59.999Z'), noInvalidDate: true }).map((d) => d.toISOString()),
      // A day the month does not have.
      fc
        .tuple(fc.integer({ min: 1970, max: 9999 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 29, max: 39 }))
        .filter(([y, m, d]) => new Date(Date.UTC(y, m - 1, d)).getUTCDate() !== d)
        .map(([y, m, d]) => `${y}-${pad(m)}-${pad(d)}T12:00:00Z`),
      randomHostileString,
    ),
    [J(1788269400000), J(0), R('1788269400000.5')],
  );
}

/** A window that ends where or before it starts: each instant valid, the two together not. */
function invalidWindow(): { catalog: Conflict[]; generated: fc.Arbitrary<Conflict> } {
  const window = (label: string, startsAt: string, endsAt: string): Conflict => ({
    label,
    entries: [
      ['starts_at', J(startsAt)],
      ['ends_at', J(endsAt)],
    ],
  });
  return {
    catalog: [
      window('empty window', '2026-09-01T13:30:00Z', '2026-09-01T13:30:00Z'),
      window('empty window, other offsets', '2026-09-01T09:30:00-04:00', '2026-09-01T15:30:00+02:00'),
      window('ends 1 ms before it starts', '2026-09-01T13:30:00.001Z', '2026-09-01T13:30:00Z'),
      window('ends before it starts (by offset)', '2026-09-01T13:30:00-04:00', '2026-09-01T14:00:00Z'),
      window('ends years before it starts', '2030-01-01T00:00:00Z', '1970-01-01T00:00:00Z'),
    ],
    generated: fc
      .tuple(instantSince1970, fc.integer({ min: 0, max: 10 * 365 * 86_400_000 }))
      .map(([end, ms]) => window('ends before it starts', new Date(end.getTime() + ms).toISOString(), end.toISOString())),
  };
}

/** max_position_pct: 2 decimals, above 0 and at most 100. */
const POSITION_PCT: DecimalField = { scale: 2, max: 10_000n, allowZero: false };
const RULE_NAMES = ['tickers', 'order_types', 'max_position_pct', 'max_orders_per_day', 'commission_per_order'];

/** Rules naming only `name`, set to `value` (raw, so that 1e400 and -0 stay as written). */
const rule = (name: string, value: Raw): Raw => R(serialize([[name, value]]));

/** A decimal field's bad values without the generic hostile strings and wrong types (sent top-level already). */
const specificDecimals = (f: DecimalField) => invalidDecimal(f).catalog.filter((bad) => !GENERIC_VALUES.has(rawText(bad)));

function invalidRules(): BadValues {
  const tickers = [
    [],
    Array.from({ length: 501 }, () => 'AAPL'),
    // Well formed but not listed: 404 UNKNOWN_TICKER.
    ['ZZZZ'],
    ['AAPL', 'NOTLISTED'],
    ['Q'],
    ['A.B.C'],
    ['toString'],
    ['valueOf'],
    ['constructor'],
    ['hasOwnProp'],
    ...['', '1ABC', '.A', 'TOOLONGTICKER', 'AA PL', 'AAPL ', ' AAPL', 'AAPL\n', 'AAPL\u0000', 'ÄAPL', 'ＡＡＰＬ', 'AAPL;', '__proto__', 'A'.repeat(33)].map((t) => [t]),
    [null],
    [1],
    [['AAPL']],
    [{}],
    'AAPL',
    {},
  ];
  const orderTypes = [
    [],
    ['MARKET'],
    ['Market'],
    ['market '],
    ['ｍａｒｋｅｔ'],
    ['bogus'],
    ['market', 'bogus'],
    ['stop-limit'],
    ['trailing-stop'],
    [...ORDER_TYPES, 'market'],
    [null],
    [1],
    'market',
    {},
  ];
  const ordersPerDay = [J(0), J(-1), J(1_000_001), J(2 ** 31), J(1.5), J('10'), J(''), R('-0'), R('2.5'), R('1e3'), R('1e400'), R('9007199254740993')];
  const unknown = ['max_position', 'tickers_allowed', 'TICKERS', 'Tickers', 'commission', 'max_position_pct ', 'leaderboard_visible', 'starting_cash', 'role', ''];
  return {
    catalog: [
      ...tickers.map((v) => rule('tickers', J(v))),
      ...orderTypes.map((v) => rule('order_types', J(v))),
      ...[...specificDecimals(POSITION_PCT), J('100.01'), R('100.01'), J('0.00')].map((v) => rule('max_position_pct', v)),
      ...ordersPerDay.map((v) => rule('max_orders_per_day', v)),
      ...specificDecimals(CASH_OR_ZERO).map((v) => rule('commission_per_order', v)),
      ...RULE_NAMES.flatMap((name) => WRONG_TYPES.map((w) => rule(name, w))),
      ...unknown.map((name) => rule(name, J(1))),
      // A known rule beside an unknown one: the typo must not be dropped silently.
      J({ tickers: ['AAPL'], max_orders: 5 }),
      ...HOSTILE_STRINGS.map(J),
      ...WRONG_TYPES.filter((w) => rawText(w) !== '{}'),
    ],
    generated: fc.oneof(
      invalidDecimal(POSITION_PCT).generated.map((v) => rule('max_position_pct', v)),
      invalidDecimal(CASH_OR_ZERO).generated.map((v) => rule('commission_per_order', v)),
      fc.oneof(fc.integer({ min: -1_000_000_000, max: 0 }), fc.integer({ min: 1_000_001, max: 2 ** 40 })).map((n) => rule('max_orders_per_day', J(n))),
      fc.integer({ min: 1, max: 999_999 }).map((n) => rule('max_orders_per_day', J(n + 0.5))),
      fc.array(fc.stringMatching(/^ZQ[0-9]{1,6}$/), { minLength: 1, maxLength: 5 }).map((unlisted) => rule('tickers', J(['AAPL', ...unlisted]))),
      fc.array(hostileString, { minLength: 1, maxLength: 3 }).map((bad) => rule('tickers', J(bad))),
      fc.array(hostileString, { minLength: 1, maxLength: 3 }).map((bad) => rule('order_types', J(bad))),
      extraKey.filter((k) => !RULE_NAMES.includes(k)).map((k) => rule(k, J(1))),
    ),
  };
}

function invalidBoolean(): BadValues {
  const strings = ['true', 'false', 'TRUE', '1', '0', 'yes', 'no', 'on', 'off', ''];
  const catalog = [...strings.map(J), J(0), J(1), J(-1), R('-0'), R('1.0'), J(null), J([]), J([true]), J({}), J({ value: true }), ...HOSTILE_STRINGS.map(J)];
  return { catalog, generated: fc.oneof(fc.integer().map(J), hostileString.map(J), fc.constantFrom(...strings).map(J)) };
}

let memberSeq = 0;
/**
 * A new address for every member a body names, so that no valid list is ever refused for an
 * email taken by an earlier case (it would hide the refusal the case is about).
 */
const freshEmail = () => `hostile-member-${++memberSeq}@example.com`;

/** A member of a members list, valid unless given a bad name, email or extra entry. */
const memberEntry = (name: Raw = J('Member'), email: Raw = J(freshEmail()), ...extra: Entries): Entries => [['name', name], ['email', email], ...extra];
/** A members list, raw: a bad value inside a member stays as written. */
const members = (...list: Entries[]): Raw => R(`[${list.map(serialize).join(',')}]`);

function validMembers(): Raw[] {
  return [members(memberEntry()), members(memberEntry(J('Zoë Ünicode 😀')), memberEntry(J("Robert'); DROP TABLE users; --")))];
}

function invalidMembers(): BadValues {
  const names = invalidName();
  const emails = invalidEmail();
  const taken = ['alice@example.com', 'ALICE@EXAMPLE.COM', 'Dana@Example.com', 'carol@example.com'];
  return {
    catalog: [
      J([]),
      // One past the most a call takes.
      members(...Array.from({ length: 501 }, () => memberEntry())),
      J([null]),
      J(['a@b.c']),
      J([[]]),
      J([{}]),
      J([{ name: 'Member' }]),
      J([{ email: freshEmail() }]),
      members(memberEntry(J('Member'), J(freshEmail()), ['role', J('admin')])),
      members(memberEntry(J('Member'), J(freshEmail()), ['initial_cash', J('1000000.00')])),
      members(memberEntry(J('Member'), J(freshEmail()), ['api_key', J('ptk_x')])),
      members(memberEntry(J('Member'), J(freshEmail()), ['user_id', J(world.alice.id)])),
      members(memberEntry(J('Member'), J(freshEmail()), ['__proto__', J({ isAdmin: true })])),
      // Taken (whatever the case) or given twice: 409 EMAIL_TAKEN, and nobody is created.
      ...taken.map((email) => members(memberEntry(J('Member'), J(email)))),
      members(memberEntry(), memberEntry(J('Member'), J('alice@example.com'))),
      (() => {
        const email = freshEmail();
        return members(memberEntry(J('One'), J(email)), memberEntry(J('Two'), J(email.toUpperCase())));
      })(),
      // One bad member spoils the whole list.
      members(memberEntry(), memberEntry(J(''))),
      members(memberEntry(), memberEntry(J('Member'), J('not an email'))),
      ...names.catalog.map((bad) => members(memberEntry(bad))),
      ...emails.catalog.map((bad) => members(memberEntry(J('Member'), bad))),
      ...HOSTILE_STRINGS.map(J),
      ...WRONG_TYPES,
    ],
    generated: fc.oneof(
      names.generated.map((bad) => members(memberEntry(), memberEntry(bad))),
      emails.generated.map((bad) => members(memberEntry(J('Member'), bad))),
      fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: 1, maxLength: 3 }).map(J),
      fc.tuple(extraKey, fc.jsonValue()).map(([key, value]) => members(memberEntry(J('Member'), J(freshEmail()), [key, J(value)]))),
    ),
  };
}

/**
 * The spec of every write route, keyed `METHOD url` exactly as the server's route table has it
 * (a variant of a route adds `#what`: POST /orders has one per order type).
 */
const SPECS: Record<string, RouteSpec> = {
  'POST /users': {
    targets: () => [{ label: 'admin', auth: bearer(ADMIN_TOKEN), path: '/users' }],
    fields: [
      { name: 'name', required: true, valid: () => VALID_NAMES, invalid: invalidName },
      { name: 'email', required: true, valid: () => [J('hostile@example.com'), J('hostile2@example.com')], invalid: invalidEmail },
      { name: 'initial_cash', required: false, valid: () => [J('10.00'), J(0), J('0')], invalid: () => invalidDecimal(CASH_OR_ZERO) },
    ],
    badPaths: () =>
      fc.constantFrom(
        { label: 'trailing segment', path: '/users/x', auth: bearer(ADMIN_TOKEN) },
        { label: 'double slash', path: '//users', auth: bearer(ADMIN_TOKEN) },
        { label: 'bad encoding', path: '/users%zz', auth: bearer(ADMIN_TOKEN) },
      ),
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "a user's key", auth: bearer(world.alice.key), expect: [403] },
      { label: "another user's key", auth: bearer(world.bob.key), expect: [403] },
    ],
  },

  'POST /users/:id/api-keys': {
    targets: () => [
      { label: 'own key', auth: bearer(world.alice.key), path: `/users/${world.alice.id}/api-keys` },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/users/${world.alice.id}/api-keys` },
    ],
    badPaths: () =>
      fc.oneof(
        malformedSegment().map((s) => ({ label: 'malformed user id', path: `/users/${s}/api-keys`, auth: bearer(world.alice.key) })),
        nonexistentUuid.map((u) => ({ label: 'unknown user (admin)', path: `/users/${u}/api-keys`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
        nonexistentUuid.map((u) => ({ label: 'unknown user (user key)', path: `/users/${u}/api-keys`, auth: bearer(world.alice.key), expect: [403] })),
        fc.constant({ label: "another user's id", path: `/users/${world.bob.id}/api-keys`, auth: bearer(world.alice.key), expect: [403] }),
      ),
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "another user's key", auth: bearer(world.bob.key), expect: [403] },
    ],
  },

  'DELETE /users/:id/api-keys/:key_id': {
    targets: () => [
      { label: 'own key', auth: bearer(world.alice.key), path: `/users/${world.alice.id}/api-keys/${world.aliceSpareKeyId}` },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/users/${world.alice.id}/api-keys/${world.aliceSpareKeyId}` },
    ],
    badPaths: () => {
      const alice = world.alice;
      const own = bearer(alice.key);
      return fc.oneof(
        malformedSegment().map((s) => ({ label: 'malformed key id', path: `/users/${alice.id}/api-keys/${s}`, auth: own })),
        malformedSegment().map((s) => ({ label: 'malformed user id', path: `/users/${s}/api-keys/${world.aliceSpareKeyId}`, auth: own })),
        fc.constant({ label: 'uppercase key id', path: `/users/${alice.id}/api-keys/${world.aliceSpareKeyId.toUpperCase()}`, auth: own }),
        nonexistentKeyId.map((k) => ({ label: 'unknown key id', path: `/users/${alice.id}/api-keys/${k}`, auth: own, expect: [404] })),
        fc.constant({ label: "another user's key id", path: `/users/${alice.id}/api-keys/${world.bob.keyId}`, auth: own, expect: [404] }),
        fc.constant({ label: "another user's key id (admin)", path: `/users/${alice.id}/api-keys/${world.bob.keyId}`, auth: bearer(ADMIN_TOKEN), expect: [404] }),
        fc.constant({ label: 'already revoked key', path: `/users/${alice.id}/api-keys/${world.aliceRevoked.keyId}`, auth: own, expect: [404] }),
        fc.constant({ label: "another user's path", path: `/users/${world.bob.id}/api-keys/${world.bob.keyId}`, auth: own, expect: [403] }),
        nonexistentUuid.map((u) => ({ label: 'unknown user (admin)', path: `/users/${u}/api-keys/${world.aliceSpareKeyId}`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
      );
    },
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "another user's key", auth: bearer(world.bob.key), expect: [403] },
    ],
  },

  'POST /users/:id/deposits': {
    targets: () => [{ label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/users/${world.alice.id}/deposits` }],
    fields: [amountField(() => invalidDecimal(CASH))],
    badPaths: () =>
      fc.oneof(
        malformedSegment().map((s) => ({ label: 'malformed user id', path: `/users/${s}/deposits`, auth: bearer(ADMIN_TOKEN) })),
        nonexistentUuid.map((u) => ({ label: 'unknown user', path: `/users/${u}/deposits`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
      ),
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "the user's own key", auth: bearer(world.alice.key), expect: [403] },
      { label: "another user's key", auth: bearer(world.bob.key), expect: [403] },
    ],
  },

  'POST /users/:id/withdrawals': {
    targets: () => [
      { label: 'own key', auth: bearer(world.alice.key), path: `/users/${world.alice.id}/withdrawals` },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/users/${world.alice.id}/withdrawals` },
    ],
    fields: [
      amountField(() => {
        const bad = invalidDecimal(CASH);
        // Well formed, but more than the account may give: a business refusal (422).
        const tooMuch = fc.bigInt({ min: world.aliceAvailableCents + 1n, max: CASH_MAX }).map((c) => J(cashText(c)));
        return {
          catalog: [...bad.catalog, J(cashText(world.aliceAvailableCents + 1n)), R(cashText(world.aliceAvailableCents + 1n)), J(cashText(CASH_MAX))],
          generated: fc.oneof(bad.generated, tooMuch),
        };
      }),
    ],
    badPaths: () =>
      fc.oneof(
        malformedSegment().map((s) => ({ label: 'malformed user id', path: `/users/${s}/withdrawals`, auth: bearer(world.alice.key) })),
        nonexistentUuid.map((u) => ({ label: 'unknown user (admin)', path: `/users/${u}/withdrawals`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
        fc.constant({ label: "another user's id", path: `/users/${world.bob.id}/withdrawals`, auth: bearer(world.alice.key), expect: [403] }),
      ),
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "another user's key", auth: bearer(world.bob.key), expect: [403] },
    ],
  },

  'POST /orders': {
    targets: () => [
      { label: 'own key', auth: bearer(world.alice.key), path: '/orders' },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: '/orders' },
    ],
    fields: [
      {
        name: 'user_id',
        // A user's key implies its own user: only the admin token must name one.
        required: (t) => t.label === 'admin',
        valid: () => [J(world.alice.id)],
        invalid: (t) => ({
          catalog: [
            ...MALFORMED_SEGMENTS.map((seg) => J(decodeURIComponentSafe(seg))),
            J(world.alice.id.toUpperCase().replace(/-/g, '')),
            J(` ${world.alice.id}`),
            J(`${world.alice.id}\u0000`),
            J(`{${world.alice.id}}`),
            J('01900000-0000-7000-8000-000000000000'), // no such user: 403 for a user's key, 404 for the admin
            ...(t.label === 'own key' ? [J(world.bob.id)] : []),
            ...HOSTILE_STRINGS.map(J),
            ...WRONG_TYPES,
          ],
          generated: fc.oneof(nonexistentUuid.map(J), malformedSegment().map((seg) => J(decodeURIComponentSafe(seg)))),
        }),
      },
      {
        name: 'ticker',
        required: true,
        valid: () => [J('AAPL'), J('aapl')],
        invalid: () =>
          badStrings(
            [
              ...['', '1ABC', '.A', 'TOOLONGTICKER', 'AA PL', 'AAPL ', ' AAPL', 'AAPL\n', 'AAPL\u0000', 'ÄAPL', 'ＡＡＰＬ', 'AAPL;'],
              // Names of Object.prototype members: a lookup in a plain object would find them.
              ...['toString', 'valueOf', 'hasOwnProp', 'isPrototyp', 'TOSTRING', '__proto__', 'constructor'],
              // Well formed but not listed: 404 UNKNOWN_TICKER.
              ...['ZZZZ', 'Q', 'A.B.C', 'NOTLISTED'],
              ...HOSTILE_STRINGS,
            ],
            fc.oneof(fc.stringMatching(/^ZQ[0-9]{1,6}$/), randomHostileString),
          ),
      },
      {
        name: 'quantity',
        required: true,
        valid: () => [J(1), J('1'), J('0.5')],
        invalid: () => {
          const bad = invalidDecimal(QTY);
          // Well formed but beyond the cash (buy) or the shares (sell) alice has: 422.
          const tooMuch = fc.bigInt({ min: 2_000n, max: QTY_MAX / 1_000_000n }).map((q) => J(q.toString()));
          return { catalog: [...bad.catalog, J('2000'), J(2000), J((QTY_MAX / 1_000_000n).toString())], generated: fc.oneof(bad.generated, tooMuch) };
        },
      },
      {
        name: 'type',
        required: true,
        valid: () => [J('market')],
        invalid: () =>
          badStrings(['limit', 'stop', 'MARKET', 'Market', ' market', 'market ', 'market\u0000', 'ｍａｒｋｅｔ', '', ...HOSTILE_STRINGS], randomHostileString),
      },
      timeInForceField(TIMES_IN_FORCE),
      {
        name: 'side',
        required: false,
        valid: () => [J('buy'), J('sell')],
        invalid: () => badStrings(['short', 'BUY', 'Sell', 'b', '', 'buy\u0000', 'sell ', ...HOSTILE_STRINGS], randomHostileString),
      },
      {
        name: 'client_order_id',
        required: false,
        valid: () => [J('hostile-client-order-id')],
        invalid: () => clientOrderIdInvalid(),
      },
    ],
    headers: () =>
      fc.oneof(
        fc
          .tuple(fc.uuid(), fc.uuid())
          .map(([a, b]) => ({ label: 'idempotency key differs from client_order_id', headers: { 'idempotency-key': `k-${a}` }, entries: [['client_order_id', J(`c-${b}`)]] as Entries })),
        fc
          .constantFrom('has space', 'a'.repeat(129), 'x'.repeat(KB10), 'caf\u00e9', 'tab\there', '\u00ff\u00fe')
          .map((v) => ({ label: 'malformed idempotency key', headers: { 'idempotency-key': v } })),
      ),
    badPaths: () =>
      fc.constantFrom(
        { label: 'trailing slash', path: '/orders/', auth: bearer(world.alice.key) },
        { label: 'extra segment', path: '/orders/x', auth: bearer(world.alice.key) },
        { label: 'wrong case', path: '/Orders', auth: bearer(world.alice.key) },
        { label: 'encoded NUL', path: '/orders%00', auth: bearer(world.alice.key) },
      ),
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "another user's key", auth: bearer(world.bob.key), expect: [403] },
    ],
  },

  'DELETE /orders/:id': {
    targets: () => [
      { label: 'own key', auth: bearer(world.alice.key), path: `/orders/${world.alicePendingBuy}` },
      { label: 'own key (sell)', auth: bearer(world.alice.key), path: `/orders/${world.alicePendingSell}` },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/orders/${world.alicePendingBuy}` },
    ],
    badPaths: () => badOrderPaths(),
    wrongPrincipals: () => orderWrongPrincipals(),
  },

  'PATCH /orders/:id': {
    targets: () => [
      { label: 'own key', auth: bearer(world.alice.key), path: `/orders/${world.aliceOpenLimit}` },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/orders/${world.aliceOpenLimit}` },
    ],
    atLeastOneField: true,
    fields: [
      {
        name: 'quantity',
        required: false,
        valid: () => [J('2'), J(3)],
        invalid: () => {
          const bad = invalidDecimal(QTY);
          // Well formed, but a hold (quantity x limit 11.00) beyond alice's cash: 422.
          const tooMuch = fc.bigInt({ min: 100_000n, max: QTY_MAX / 1_000_000n }).map((q) => J(q.toString()));
          return { catalog: [...bad.catalog, J('100000'), J((QTY_MAX / 1_000_000n).toString())], generated: fc.oneof(bad.generated, tooMuch) };
        },
      },
      { name: 'limit_price', required: false, valid: () => [J('11.00'), J(12)], invalid: () => invalidDecimal(PRICE) },
      timeInForceField(TIMES_IN_FORCE),
      { name: 'client_order_id', required: false, valid: () => [J('hostile-replace')], invalid: () => clientOrderIdInvalid() },
    ],
    // A PENDING market order cannot be replaced (it is not resting): 409, like an ended one.
    badPaths: () => badOrderPaths({ label: 'a PENDING market order', path: `/orders/${world.alicePendingBuy}`, auth: bearer(world.alice.key), expect: [409] }),
    wrongPrincipals: () => orderWrongPrincipals(),
  },

  'POST /orders/batch': {
    targets: () => [
      { label: 'own key', auth: bearer(world.alice.key), path: '/orders/batch' },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: '/orders/batch' },
    ],
    // What refuses the whole request. A bad order inside a good batch is answered in its own
    // result with the refusal POST /orders gives it (swept above; test/order-batch.test.ts).
    fields: [
      {
        name: 'orders',
        required: true,
        valid: () => [J([{ user_id: world.alice.id, ticker: 'AAPL', quantity: 1, type: 'market' }])],
        invalid: () => ({
          catalog: [
            J([]),
            J(Array.from({ length: 1001 }, () => ({ user_id: world.alice.id, ticker: 'AAPL', quantity: 1, type: 'market' }))),
            J({ user_id: world.alice.id, ticker: 'AAPL', quantity: 1, type: 'market' }),
            ...HOSTILE_STRINGS.map(J),
            ...WRONG_TYPES.filter((w) => !('json' in w && Array.isArray(w.json))),
          ],
          generated: fc.oneof(fc.string().map(J), fc.integer().map(J), fc.constant(J(null))),
        }),
      },
    ],
    badPaths: () =>
      fc.constantFrom(
        { label: 'extra segment', path: '/orders/batch/x', auth: bearer(world.alice.key) },
        { label: 'wrong case', path: '/orders/Batch', auth: bearer(world.alice.key) },
      ),
    wrongPrincipals: () => unauthenticated(),
  },

  'DELETE /orders': {
    targets: () => [
      { label: 'own key', auth: bearer(world.alice.key), path: '/orders' },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/orders?user_id=${world.alice.id}` },
    ],
    badPaths: () => {
      const own = bearer(world.alice.key);
      return fc.oneof(
        fc.constant({ label: 'admin without user_id', path: '/orders', auth: bearer(ADMIN_TOKEN), expect: [400] }),
        malformedSegment().map((s) => ({ label: 'malformed user_id', path: `/orders?user_id=${s}`, auth: own, expect: [400] })),
        nonexistentUuid.map((u) => ({ label: 'unknown user (admin)', path: `/orders?user_id=${u}`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
        fc.constant({ label: "another user's id", path: `/orders?user_id=${world.bob.id}`, auth: own, expect: [403] }),
        fc.constant({ label: 'unknown query parameter', path: '/orders?status=open', auth: own, expect: [400] }),
        fc.constant({ label: 'user_id twice', path: `/orders?user_id=${world.alice.id}&user_id=${world.bob.id}`, auth: own, expect: [400] }),
      );
    },
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "another user's key", auth: bearer(world.bob.key), path: `/orders?user_id=${world.alice.id}`, expect: [403] },
    ],
  },

  'PUT /admin/prices/:ticker': {
    targets: () => [{ label: 'admin', auth: bearer(ADMIN_TOKEN), path: '/admin/prices/AAPL' }],
    fields: [{ name: 'price', required: true, valid: () => [J('231.00'), J(231), J('0.0001')], invalid: () => invalidDecimal(PRICE) }],
    badPaths: () =>
      fc.oneof(
        malformedSegment().map((s) => ({ label: 'malformed ticker', path: `/admin/prices/${s}`, auth: bearer(ADMIN_TOKEN) })),
        fc.constantFrom('ZZZZ', 'NOTLISTED', 'Q').map((t) => ({ label: 'unknown ticker', path: `/admin/prices/${t}`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
        fc.constant({ label: 'no ticker', path: '/admin/prices/', auth: bearer(ADMIN_TOKEN) }),
      ),
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "a user's key", auth: bearer(world.alice.key), expect: [403] },
    ],
  },

  'POST /admin/market': {
    targets: () => [{ label: 'admin', auth: bearer(ADMIN_TOKEN), path: '/admin/market' }],
    fields: [
      {
        name: 'state',
        required: true,
        valid: () => [J('auto'), J('open'), J('closed')],
        invalid: () =>
          badStrings(['OPEN', 'Closed', 'close', 'opened', 'forced', ' auto', 'auto ', 'auto\u0000', 'ａｕｔｏ', '', 'true', ...HOSTILE_STRINGS], randomHostileString),
      },
    ],
    badPaths: () =>
      fc.constantFrom(
        { label: 'extra segment', path: '/admin/market/x', auth: bearer(ADMIN_TOKEN) },
        { label: 'wrong case', path: '/admin/Market', auth: bearer(ADMIN_TOKEN) },
        { label: 'encoded NUL', path: '/admin/market%00', auth: bearer(ADMIN_TOKEN) },
      ),
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "a user's key", auth: bearer(world.alice.key), expect: [403] },
    ],
  },

  'POST /users/:id/reset': {
    // Carol is in no class (her own key may choose her cash); the member's reset is the teacher's.
    targets: () => [
      { label: 'own key', auth: bearer(world.carol.key), path: `/users/${world.carol.id}/reset` },
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/users/${world.carol.id}/reset` },
      { label: 'teacher key', auth: bearer(world.teacherKey), path: `/users/${world.member.id}/reset` },
    ],
    bodyOptional: true,
    // The cash carol has first: were a reset ever accepted, it would at least leave her cash as it was.
    fields: [{ name: 'cash', required: false, valid: () => [J('1000.00'), J(0), J('0.00'), J(250.5)], invalid: () => invalidDecimal(CASH_OR_ZERO) }],
    badPaths: () => {
      const own = bearer(world.carol.key);
      const teacher = bearer(world.teacherKey);
      return fc.oneof(
        malformedSegment().map((s) => ({ label: 'malformed user id', path: `/users/${s}/reset`, auth: own })),
        malformedSegment().map((s) => ({ label: 'malformed user id (teacher key)', path: `/users/${s}/reset`, auth: teacher })),
        nonexistentUuid.map((u) => ({ label: 'unknown user (admin)', path: `/users/${u}/reset`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
        nonexistentUuid.map((u) => ({ label: 'unknown user (user key)', path: `/users/${u}/reset`, auth: own, expect: [403] })),
        nonexistentUuid.map((u) => ({ label: 'unknown user (teacher key)', path: `/users/${u}/reset`, auth: teacher, expect: [403] })),
        fc.constant({ label: "another user's id", path: `/users/${world.bob.id}/reset`, auth: own, expect: [403] }),
        fc.constant({ label: 'a user outside the class (teacher key)', path: `/users/${world.carol.id}/reset`, auth: teacher, expect: [403] }),
        fc.constant({ label: 'extra segment', path: `/users/${world.carol.id}/reset/x`, auth: own, expect: [404] }),
      );
    },
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "another user's key", auth: bearer(world.bob.key), expect: [403] },
      { label: "a class member on someone else's account", auth: bearer(world.member.key), expect: [403] },
      { label: "another class's teacher key", auth: bearer(world.otherTeacherKey), path: `/users/${world.member.id}/reset`, expect: [403] },
      // Every such request names a cash: a member resets to the class's starting cash only.
      { label: 'a class member choosing its own cash', auth: bearer(world.member.key), path: `/users/${world.member.id}/reset`, expect: [403] },
    ],
  },

  'POST /classes': {
    targets: () => [{ label: 'admin', auth: bearer(ADMIN_TOKEN), path: '/classes' }],
    fields: [
      { name: 'name', required: true, valid: () => VALID_NAMES, invalid: invalidName },
      { name: 'starting_cash', required: true, valid: () => [J('25000.00'), J(0), J('0'), J(100)], invalid: () => invalidDecimal(CASH_OR_ZERO) },
      // Every valid start comes before every valid end: any two make a window.
      {
        name: 'starts_at',
        required: false,
        valid: () => [J('2026-09-01T13:30:00Z'), J('2026-09-01T09:30:00-04:00'), J('2026-09-01T13:30:00.123456789+00:00'), J('2026-09-01T13:30Z'), J('1970-01-01T00:00:00Z')],
        invalid: invalidInstant,
      },
      {
        name: 'ends_at',
        required: false,
        valid: () => [J('2026-12-18T21:00:00Z'), J('2027-01-01T00:00:00+01:00'), J('9999-12-31T23:59:59Z')],
        invalid: invalidInstant,
      },
      {
        name: 'rules',
        required: false,
        valid: () => [
          J({ tickers: ['AAPL', 'msft'], order_types: ['market', 'limit'], max_position_pct: '25.50', max_orders_per_day: 20, commission_per_order: '1.00' }),
          J({}),
          J({ max_position_pct: 100, commission_per_order: 0 }),
          J({ tickers: ['AAPL', 'aapl'], order_types: ['trailing_stop'], max_orders_per_day: 1_000_000, max_position_pct: '0.01' }),
        ],
        invalid: invalidRules,
      },
      { name: 'leaderboard_visible', required: false, valid: () => [J(true), J(false)], invalid: invalidBoolean },
    ],
    conflicts: invalidWindow,
    badPaths: () =>
      fc.constantFrom(
        { label: 'trailing segment', path: '/classes/x', auth: bearer(ADMIN_TOKEN) },
        { label: 'trailing slash', path: '/classes/', auth: bearer(ADMIN_TOKEN) },
        { label: 'double slash', path: '//classes', auth: bearer(ADMIN_TOKEN) },
        { label: 'wrong case', path: '/Classes', auth: bearer(ADMIN_TOKEN) },
        { label: 'bad encoding', path: '/classes%zz', auth: bearer(ADMIN_TOKEN) },
      ),
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "a user's key", auth: bearer(world.alice.key), expect: [403] },
      { label: "a class member's key", auth: bearer(world.member.key), expect: [403] },
      { label: 'a teacher key', auth: bearer(world.teacherKey), expect: [403] },
    ],
  },

  'POST /classes/:id/members': {
    targets: () => [
      { label: 'admin', auth: bearer(ADMIN_TOKEN), path: `/classes/${world.classId}/members` },
      { label: 'teacher key', auth: bearer(world.teacherKey), path: `/classes/${world.classId}/members` },
    ],
    // Small lists with fresh emails: a valid one would create users, so none may collide.
    fields: [{ name: 'members', required: true, valid: validMembers, invalid: invalidMembers }],
    badPaths: () => {
      const teacher = bearer(world.teacherKey);
      return fc.oneof(
        malformedSegment().map((s) => ({ label: 'malformed class id', path: `/classes/${s}/members`, auth: bearer(ADMIN_TOKEN) })),
        malformedSegment().map((s) => ({ label: 'malformed class id (teacher key)', path: `/classes/${s}/members`, auth: teacher })),
        nonexistentUuid.map((u) => ({ label: 'unknown class (admin)', path: `/classes/${u}/members`, auth: bearer(ADMIN_TOKEN), expect: [404] })),
        nonexistentUuid.map((u) => ({ label: 'unknown class (teacher key)', path: `/classes/${u}/members`, auth: teacher, expect: [403] })),
        // A user's id is no class's: not found, even for the admin.
        fc.constant({ label: "a user's id as the class", path: `/classes/${world.alice.id}/members`, auth: bearer(ADMIN_TOKEN), expect: [404] }),
        fc.constant({ label: 'extra segment', path: `/classes/${world.classId}/members/x`, auth: teacher, expect: [404] }),
      );
    },
    wrongPrincipals: () => [
      ...unauthenticated(),
      { label: "a user's key", auth: bearer(world.alice.key), expect: [403] },
      { label: "a class member's key", auth: bearer(world.member.key), expect: [403] },
      { label: "another class's teacher key", auth: bearer(world.otherTeacherKey), expect: [403] },
    ],
  },
};


/**
 * An optional field of Alpaca's routes: JSON null there means "not given" (the SDKs send null
 * for unset fields), so it is no bad value of the field.
 */
function nullMeansAbsent(f: FieldSpec): FieldSpec {
  const isNull = (v: Raw) => 'json' in v && v.json === null;
  return {
    ...f,
    invalid: (t) => {
      const bad = f.invalid(t);
      return { catalog: bad.catalog.filter((v) => !isNull(v)), generated: bad.generated.filter((v) => !isNull(v)) };
    },
  };
}

/** Alpaca's order routes (/v2): the same OMS, Alpaca's fields. A valid request would place, replace or cancel. */
function alpacaAccountPrincipals(): Array<{ label: string; auth: string | null; expect: number[] }> {
  // Another user's key acts on its own account there (a valid request would change it): not a
  // wrong principal of these routes. The admin token and teacher keys have no account: 403.
  return [
    ...unauthenticated(),
    { label: 'admin token', auth: bearer(ADMIN_TOKEN), expect: [403] },
    { label: 'teacher key', auth: bearer(world.teacherKey), expect: [403] },
  ];
}

SPECS['POST /v2/orders'] = {
  targets: () => [{ label: 'own key', auth: bearer(world.alice.key), path: '/v2/orders' }],
  fields: [
    {
      name: 'symbol',
      required: true,
      valid: () => [J('AAPL'), J('aapl')],
      invalid: () => badStrings(['', '1ABC', 'TOOLONGTICKER', 'AA PL', 'ZZZZ', 'NOTLISTED', 'toString', '__proto__', 'BTC/USD', ...HOSTILE_STRINGS], randomHostileString),
    },
    {
      name: 'qty',
      required: true,
      valid: () => [J(1), J('1'), J('0.5')],
      invalid: () => {
        const bad = invalidDecimal(QTY);
        return { catalog: [...bad.catalog, J('2000'), J(2000)], generated: bad.generated };
      },
    },
    { name: 'side', required: true, valid: () => [J('buy'), J('sell')], invalid: () => badStrings(['short', 'BUY', 'sell_short', '', ...HOSTILE_STRINGS], randomHostileString) },
    { name: 'type', required: true, valid: () => [J('market')], invalid: () => badStrings(['limit', 'stop', 'MARKET', '', 'bracket', ...HOSTILE_STRINGS], randomHostileString) },
    { ...timeInForceField(TIMES_IN_FORCE), required: true },
    nullMeansAbsent({ name: 'client_order_id', required: false, valid: () => [J('hostile-v2-order')], invalid: () => clientOrderIdInvalid() }),
  ],
  conflicts: () => ({
    catalog: [
      { label: 'qty and notional', entries: [['notional', J('100')]] },
      { label: 'a bracket order', entries: [['order_class', J('bracket')], ['take_profit', J({ limit_price: '500' })]] },
      { label: 'extended hours on a market order', entries: [['extended_hours', J(true)]] },
      { label: 'opening a short', entries: [['position_intent', J('sell_to_open')]] },
    ],
    generated: fc.constant({ label: 'qty and notional', entries: [['notional', J('100')]] as Entries }),
  }),
  badPaths: () =>
    fc.constantFrom(
      { label: 'trailing slash', path: '/v2/orders/', auth: bearer(world.alice.key) },
      { label: 'wrong case', path: '/v2/Orders', auth: bearer(world.alice.key) },
      { label: 'encoded NUL', path: '/v2/orders%00', auth: bearer(world.alice.key) },
    ),
  wrongPrincipals: () => alpacaAccountPrincipals(),
};

SPECS['PATCH /v2/orders/:order_id'] = {
  targets: () => [{ label: 'own key', auth: bearer(world.alice.key), path: `/v2/orders/${world.aliceOpenLimit}` }],
  atLeastOneField: true,
  fields: [
    nullMeansAbsent({
      name: 'qty',
      required: false,
      valid: () => [J('2'), J(3)],
      invalid: () => {
        const bad = invalidDecimal(QTY);
        return { catalog: [...bad.catalog, J('100000')], generated: bad.generated };
      },
    }),
    nullMeansAbsent({ name: 'limit_price', required: false, valid: () => [J('11.00'), J(12)], invalid: () => invalidDecimal(PRICE) }),
    nullMeansAbsent(timeInForceField(TIMES_IN_FORCE)),
    nullMeansAbsent({ name: 'client_order_id', required: false, valid: () => [J('hostile-v2-replace')], invalid: () => clientOrderIdInvalid() }),
  ],
  badPaths: () => alpacaOrderPaths({ label: 'a PENDING market order', path: `/v2/orders/${world.alicePendingBuy}`, auth: bearer(world.alice.key), expect: [409] }),
  wrongPrincipals: () => alpacaOrderPrincipals(),
};

SPECS['DELETE /v2/orders/:order_id'] = {
  targets: () => [{ label: 'own key', auth: bearer(world.alice.key), path: `/v2/orders/${world.alicePendingBuy}` }],
  badPaths: () => alpacaOrderPaths(),
  wrongPrincipals: () => alpacaOrderPrincipals(),
};

SPECS['DELETE /v2/orders'] = {
  targets: () => [{ label: 'own key', auth: bearer(world.alice.key), path: '/v2/orders' }],
  badPaths: () =>
    fc.constantFrom(
      { label: 'unknown query parameter', path: '/v2/orders?status=open', auth: bearer(world.alice.key), expect: [400] },
      { label: 'extra segment', path: '/v2/orders/x/y', auth: bearer(world.alice.key), expect: [404] },
    ),
  wrongPrincipals: () => alpacaAccountPrincipals(),
};


SPECS['DELETE /v2/positions/:symbol_or_asset_id'] = {
  targets: () => [{ label: 'own key', auth: bearer(world.alice.key), path: '/v2/positions/AAPL' }],
  badPaths: () => {
    const own = bearer(world.alice.key);
    const at = (query: string) => `/v2/positions/AAPL?${query}`;
    return fc.oneof(
      fc.constantFrom(
        ...['qty=abc', 'qty=0', 'qty=-1', 'qty=1e3', 'qty=0.0000001', 'percentage=0', 'percentage=101', 'percentage=abc', 'percentage=-5', 'qty=1&percentage=5', 'colour=red'].map((q) => ({
          label: `bad query ${q}`,
          path: at(q),
          auth: own,
          expect: [400],
        })),
        { label: 'more than the position', path: at('qty=200000'), auth: own, expect: [403] },
        { label: 'an unlisted symbol', path: '/v2/positions/ZZZZ', auth: own, expect: [404] },
        { label: 'an unknown asset id', path: '/v2/positions/01900000-0000-5000-8000-000000000000', auth: own, expect: [404] },
        { label: 'extra segment', path: '/v2/positions/AAPL/x', auth: own, expect: [404] },
      ),
      malformedSegment().map((seg) => ({ label: 'malformed symbol', path: `/v2/positions/${seg}`, auth: own })),
    );
  },
  wrongPrincipals: () => alpacaAccountPrincipals(),
};

SPECS['DELETE /v2/positions'] = {
  targets: () => [{ label: 'own key', auth: bearer(world.alice.key), path: '/v2/positions' }],
  badPaths: () =>
    fc.constantFrom(
      { label: 'cancel_orders not a boolean', path: '/v2/positions?cancel_orders=maybe', auth: bearer(world.alice.key), expect: [400] },
      { label: 'unknown query parameter', path: '/v2/positions?percentage=50', auth: bearer(world.alice.key), expect: [400] },
    ),
  wrongPrincipals: () => alpacaAccountPrincipals(),
};

SPECS['PATCH /v2/account/configurations'] = {
  targets: () => [{ label: 'own key', auth: bearer(world.alice.key), path: '/v2/account/configurations' }],
  // No body is a change of nothing (Alpaca answers the configuration): valid, never a case to refuse.
  bodyOptional: true,
  atLeastOneField: true,
  fields: [
    { name: 'no_shorting', required: false, valid: () => [J(true)], invalid: () => ({ catalog: [J(false), J('true'), J(1), J(null), ...WRONG_TYPES.filter((v) => !('json' in v && v.json === true))], generated: fc.jsonValue().filter((v) => v !== true).map(J) }) },
    { name: 'fractional_trading', required: false, valid: () => [J(true)], invalid: () => ({ catalog: [J(false), J('yes'), J(0), J(null)], generated: fc.jsonValue().filter((v) => v !== true).map(J) }) },
    { name: 'max_margin_multiplier', required: false, valid: () => [J('1')], invalid: () => badStrings(['2', '4', '1.0', '0', '', ...HOSTILE_STRINGS], randomHostileString) },
  ],
  badPaths: () => fc.constant({ label: 'extra segment', path: '/v2/account/configurations/x', auth: bearer(world.alice.key), expect: [404] }),
  wrongPrincipals: () => alpacaAccountPrincipals(),
};

/** Bad order ids on /v2 (a malformed id names no order there: 404, as Alpaca answers). */
function alpacaOrderPaths(...extra: BadPath[]): fc.Arbitrary<BadPath> {
  const own = bearer(world.alice.key);
  return fc.oneof(
    malformedSegment().map((s) => ({ label: 'malformed order id', path: `/v2/orders/${s}`, auth: own })),
    nonexistentUuid.map((u) => ({ label: 'unknown order', path: `/v2/orders/${u}`, auth: own, expect: [404] })),
    fc.constant({ label: "another user's pending order", path: `/v2/orders/${world.bobPending}`, auth: own, expect: [404] }),
    fc.constant({ label: 'filled order', path: `/v2/orders/${world.aliceFilled}`, auth: own, expect: [409] }),
    fc.constant({ label: 'canceled order', path: `/v2/orders/${world.aliceCanceled}`, auth: own, expect: [409] }),
    ...extra.map((e) => fc.constant(e)),
  );
}

function alpacaOrderPrincipals(): Array<{ label: string; auth: string | null; expect: number[] }> {
  return [
    ...unauthenticated(),
    { label: "another user's key", auth: bearer(world.bob.key), expect: [404] },
    { label: 'admin token', auth: bearer(ADMIN_TOKEN), expect: [403] },
    { label: 'teacher key', auth: bearer(world.teacherKey), expect: [403] },
  ];
}

const ORDER_TYPES = ['market', 'limit', 'stop', 'stop_limit', 'trailing_stop'];

/** The order type a variant of POST /orders is about; every other type is wrong for its fields. */
function typeField(type: string): FieldSpec {
  return {
    name: 'type',
    required: true,
    valid: () => [J(type)],
    invalid: () =>
      badStrings([...ORDER_TYPES.filter((t) => t !== type), type.toUpperCase(), ` ${type}`, `${type} `, `${type}\u0000`, ...(type.includes('_') ? [type.replace('_', '-')] : []), '', ...HOSTILE_STRINGS], randomHostileString),
  };
}

/** A required price field of an order type (4 decimals, positive). */
function priceField(name: string, valid: Raw[]): FieldSpec {
  return { name, required: true, valid: () => valid, invalid: () => invalidDecimal(PRICE) };
}

/**
 * Variants of POST /orders, one per order type (the route table has one route; its body
 * depends on the type). Prices are set so that 2,000 shares (the quantity field's "too much")
 * hold more than alice's cash: such a request is refused (422), never accepted.
 */
function orderVariant(type: string, prices: FieldSpec[], timesInForce: readonly string[]): RouteSpec {
  const base = SPECS['POST /orders']!;
  const keep = base.fields!.filter((f) => f.name !== 'type' && f.name !== 'time_in_force');
  return {
    ...base,
    fields: [...keep, typeField(type), ...prices, timeInForceField(timesInForce)],
    sweepOnly: ['type', ...prices.map((f) => f.name), 'time_in_force'],
  };
}
const PRICED_TIMES_IN_FORCE = ['day', 'gtc', 'ioc', 'fok'];
SPECS['POST /orders#limit'] = orderVariant('limit', [priceField('limit_price', [J('100.00'), J('100'), J(150)])], TIMES_IN_FORCE);
SPECS['POST /orders#stop'] = orderVariant('stop', [priceField('stop_price', [J('300.00'), J(300)])], PRICED_TIMES_IN_FORCE);
SPECS['POST /orders#stop_limit'] = orderVariant(
  'stop_limit',
  [priceField('stop_price', [J('300.00')]), priceField('limit_price', [J('310.00'), J(310)])],
  PRICED_TIMES_IN_FORCE,
);
SPECS['POST /orders#trailing_stop (percent)'] = orderVariant(
  'trailing_stop',
  [{ name: 'trail_percent', required: true, valid: () => [J('5'), J('0.5'), J(12.25)], invalid: () => invalidDecimal(PERCENT) }],
  PRICED_TIMES_IN_FORCE,
);
SPECS['POST /orders#trailing_stop (price)'] = orderVariant('trailing_stop', [priceField('trail_price', [J('10.00'), J(10)])], PRICED_TIMES_IN_FORCE);

/** The route a SPECS key tests: the key itself, or what precedes `#` for a variant. */
const routeOf = (key: string) => key.split('#')[0]!;

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The property's bad values for a field: catalog entries and generated ones alike. */
function badValue(f: FieldSpec, t: Target): fc.Arbitrary<Raw> {
  const bad = f.invalid(t);
  return fc.oneof(fc.constantFrom(...bad.catalog), bad.generated);
}

/** The first valid value of every field, optional ones included: the body the sweep spoils. */
function exampleEntries(spec: RouteSpec, t: Target): Entries {
  return (spec.fields ?? []).map((f) => [f.name, f.valid(t)[0]!]);
}

/** A valid body for a target: required fields, and optional ones now and then. */
function validEntries(spec: RouteSpec, t: Target): fc.Arbitrary<Entries> {
  const fields = spec.fields ?? [];
  return fc.tuple(...fields.map((f) => fc.tuple(fc.constantFrom(...f.valid(t)), fc.boolean()))).map((values) => {
    const entries: Entries = [];
    fields.forEach((f, i) => {
      const [value, include] = values[i]!;
      if (isRequired(f, t) || include) entries.push([f.name, value]);
    });
    if (spec.atLeastOneField && entries.length === 0) entries.push([fields[0]!.name, values[0]![0]]);
    return entries;
  });
}

function hostileCases(routeKey: string, spec: RouteSpec): fc.Arbitrary<Hostile> {
  const [method] = routeKey.split(' ') as [string];
  const targets = spec.targets();
  const target = fc.constantFrom(...targets);
  const hasBody = spec.fields !== undefined;
  const baseBody = (t: Target) => (hasBody ? validEntries(spec, t) : fc.constant<Entries>([]));
  const mk = (kind: string, t: Target, rest: Partial<Hostile>): Hostile => ({ kind, method, path: t.path, auth: t.auth, ...rest });

  const kinds: Array<{ arbitrary: fc.Arbitrary<Hostile>; weight: number }> = [];

  // Transport: a valid body that only the content type, the syntax or the size spoils.
  kinds.push({
    weight: 2,
    arbitrary: target.chain((t) =>
      fc.tuple(baseBody(t), fc.constantFrom(...WRONG_CONTENT_TYPES)).map(([entries, contentType]) =>
        mk(`wrong content type ${contentType}`, t, { body: serialize(entries), contentType, expect: [415] }),
      ),
    ),
  });
  kinds.push({
    weight: 2,
    arbitrary: target.chain((t) => brokenJson.map((body) => mk('broken JSON', t, { body, expect: [400] }))),
  });
  kinds.push({
    weight: 1,
    arbitrary: target.chain((t) =>
      fc.tuple(baseBody(t), fc.constantFrom(...POISON)).map(([entries, poison]) =>
        mk(`prototype key ${poison[0]}`, t, { body: serialize([...entries, poison]), expect: [400] }),
      ),
    ),
  });
  kinds.push({
    weight: 1,
    arbitrary: target.chain((t) =>
      fc.tuple(baseBody(t), fc.integer({ min: 1, max: 2 * 1024 * 1024 })).map(([entries, over]) => {
        const body = serialize([...entries, ['padding', J('')]]);
        const pad = 'x'.repeat(BODY_LIMIT_BYTES + over - body.length);
        return mk('oversize body', t, { body: body.replace('"padding":""', `"padding":"${pad}"`), expect: [413] });
      }),
    ),
  });
  if (hasBody && !spec.bodyOptional) {
    kinds.push({
      weight: 1,
      arbitrary: target.map((t) => mk('empty JSON body', t, { body: '', expect: [400] })),
    });
  }

  if (hasBody) {
    const fields = spec.fields!;
    // One field (at least) with a bad value, the others valid.
    kinds.push({
      weight: 6,
      arbitrary: target.chain((t) =>
        fc
          .tuple(validEntries(spec, t), fc.integer({ min: 0, max: fields.length - 1 }))
          .chain(([entries, i]) =>
            badValue(fields[i]!, t).map((bad) => {
              const name = fields[i]!.name;
              const rest = entries.filter(([k]) => k !== name);
              return mk(`invalid ${name}`, t, { body: serialize([...rest, [name, bad]]) });
            }),
          ),
      ),
    });
    // A required field missing (where the route has one: a PATCH has none).
    const withRequired = targets.filter((t) => fields.some((f) => isRequired(f, t)));
    if (withRequired.length > 0) {
      kinds.push({
        weight: 2,
        arbitrary: fc.constantFrom(...withRequired).chain((t) =>
          fc.tuple(validEntries(spec, t), fc.constantFrom(...fields.filter((f) => isRequired(f, t)))).map(([entries, f]) =>
            mk(`missing ${f.name}`, t, { body: serialize(entries.filter(([k]) => k !== f.name)), expect: [400] }),
          ),
        ),
      });
    }
    // An unknown field beside valid ones.
    kinds.push({
      weight: 2,
      arbitrary: target.chain((t) =>
        fc
          .tuple(validEntries(spec, t), extraKey, fc.oneof(fc.jsonValue().map(J), wrongType))
          .filter(([entries, key]) => !entries.some(([k]) => k === key))
          .map(([entries, key, value]) => mk(`extra field ${key.slice(0, 20)}`, t, { body: serialize([...entries, [key, value]]), expect: [400] })),
      ),
    });
    // The same key twice: valid first, invalid last (JSON.parse keeps the last).
    kinds.push({
      weight: 1,
      arbitrary: target.chain((t) =>
        fc
          .tuple(validEntries(spec, t), fc.integer({ min: 0, max: fields.length - 1 }))
          .chain(([entries, i]) =>
            badValue(fields[i]!, t).map((bad) => {
              const f = fields[i]!;
              const withValid = entries.some(([k]) => k === f.name) ? entries : [...entries, [f.name, J('placeholder')] as [string, Raw]];
              return mk(`duplicate ${f.name}`, t, { body: serialize([...withValid, [f.name, bad]]) });
            }),
          ),
      ),
    });
    // Not an object at all, or a random JSON document without every required field.
    kinds.push({
      weight: 2,
      arbitrary: target.chain((t) =>
        fc
          .oneof(
            fc.constantFrom('null', 'true', 'false', '0', '-1', '"string"', '[]', '[{}]', '1e400', `[${'1,'.repeat(1000)}1]`),
            fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
          )
          .filter((text) => {
            const v = JSON.parse(text) as unknown;
            const isObj = typeof v === 'object' && v !== null && !Array.isArray(v);
            return !isObj || fields.some((f) => isRequired(f, t) && !(f.name in (v as object)));
          })
          .map((body) => mk('not a valid document', t, { body, expect: [400] })),
      ),
    });
  } else {
    // A route without a body schema takes no body: anything but nothing (or {}) is refused.
    kinds.push({
      weight: 6,
      arbitrary: target.chain((t) =>
        fc
          .oneof(
            fc.tuple(extraKey, fc.jsonValue()).map(([k, v]) => serialize([[k, J(v)]])),
            fc.constantFrom('null', 'true', '0', '"x"', '[]', '[{}]', '{"role":"admin"}', '{"user_id":"x"}', '{"revoke_all":true}'),
            fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
          )
          .filter((text) => text !== '{}')
          .map((body) => mk('body on a body-less route', t, { body, expect: [400] })),
      ),
    });
  }

  // Bad path parameters, with a body that would otherwise be valid.
  kinds.push({
    weight: 4,
    arbitrary: spec.badPaths().chain((bad) => {
      const t: Target = { label: bad.label, auth: bad.auth, path: bad.path };
      return baseBody(t).map((entries) =>
        mk(`path: ${bad.label}`, t, { body: hasBody ? serialize(entries) : undefined, expect: bad.expect }),
      );
    }),
  });

  // A request that would be fine with the right credentials: it names everything it acts on
  // (a user_id left out would mean the caller's own user, which these credentials may use).
  const principals = spec.wrongPrincipals();
  const complete = (entries: Entries, t: Target): Entries => [
    ...entries,
    ...exampleEntries(spec, t).filter(([k]) => !entries.some(([e]) => e === k)),
  ];
  kinds.push({
    weight: 3,
    arbitrary: fc.tuple(target, fc.constantFrom(...principals)).chain(([t, p]) =>
      baseBody(t).map((entries) =>
        mk(`credentials: ${p.label}`, t, {
          auth: p.auth,
          path: p.path ?? t.path,
          body: hasBody ? serialize(complete(entries, t)) : undefined,
          expect: p.expect,
        }),
      ),
    ),
  });

  if (spec.conflicts) {
    const conflicts = spec.conflicts;
    kinds.push({
      weight: 2,
      arbitrary: target.chain((t) => {
        const c = conflicts(t);
        return fc
          .tuple(validEntries(spec, t), fc.oneof(fc.constantFrom(...c.catalog), c.generated))
          .map(([entries, conflict]) => mk(`conflict: ${conflict.label}`, t, { body: serialize(merge(entries, conflict.entries)), expect: [400] }));
      }),
    });
  }

  if (spec.headers) {
    const headers = spec.headers;
    kinds.push({
      weight: 2,
      arbitrary: target.chain((t) =>
        fc.tuple(validEntries(spec, t), headers(t)).map(([entries, h]) => {
          const extra = h.entries ?? [];
          const merged = [...entries.filter(([k]) => !extra.some(([e]) => e === k)), ...extra];
          return mk(`header: ${h.label}`, t, { headers: h.headers, body: serialize(merged), expect: [400] });
        }),
      ),
    });
  }

  return fc.oneof(...kinds);
}

const rawText = (r: Raw) => ('raw' in r ? r.raw : JSON.stringify(r.json));
const GENERIC_VALUES = new Set([...HOSTILE_STRINGS.map((v) => JSON.stringify(v)), ...WRONG_TYPES.map(rawText)]);

/** Bodies a body-less route must refuse. */
const NO_BODY_CATALOG = ['null', 'true', '0', '"x"', '[]', '[{}]', '{"role":"admin"}', '{"user_id":"x"}', '{"revoke_all":true}', '{"":""}'];
// The order price fields are extra keys too: each is refused where it does not belong to the
// order's type (a known field in the wrong place is as wrong as an unknown one).
const EXTRA_KEYS = ['role', 'admin', 'id', 'user_id', 'status', 'cash_balance', 'limit_price', 'stop_price', 'trail_price', 'trail_percent', '', 'constructor', 'prototype', 'toString', '😀', 'x'.repeat(KB10)];

/**
 * Every hand-picked hostile value, each sent once: the property above explores combinations
 * at random, this sweep guarantees that no listed value is ever skipped.
 */
function catalogCases(routeKey: string, spec: RouteSpec): Hostile[] {
  const [method] = routeKey.split(' ') as [string];
  const cases: Hostile[] = [];
  const targets = spec.targets();
  const mk = (kind: string, t: Target, rest: Partial<Hostile>): Hostile => ({ kind, method, path: t.path, auth: t.auth, ...rest });
  targets.forEach((t, targetIndex) => {
    const example = exampleEntries(spec, t);
    const body = serialize(example);
    // The body parser's refusals do not depend on who calls: the first target gets them all.
    const transport = spec.sweepOnly
      ? { types: [], broken: [] }
      : targetIndex === 0
        ? { types: WRONG_CONTENT_TYPES, broken: BROKEN_JSON }
        : { types: ['text/plain', null], broken: ['{'] };
    for (const contentType of transport.types) cases.push(mk(`wrong content type ${contentType}`, t, { body, contentType, expect: [415] }));
    for (const broken of transport.broken) cases.push(mk('broken JSON', t, { body: broken, expect: [400] }));
    if (!spec.sweepOnly) for (const poison of POISON) cases.push(mk(`prototype key ${poison[0]}`, t, { body: serialize([...example, poison]), expect: [400] }));
    // An empty body is a request without one: refused where a body is needed, fine elsewhere.
    if (spec.fields && !spec.bodyOptional) cases.push(mk('empty JSON body', t, { body: '', expect: [400] }));
    if (!spec.fields) {
      for (const nobody of NO_BODY_CATALOG) cases.push(mk('body on a body-less route', t, { body: nobody, expect: [400] }));
      return;
    }
    for (const f of spec.fields) {
      if (spec.sweepOnly && !spec.sweepOnly.includes(f.name)) continue;
      // The generic hostile strings and wrong types go to the first target only; the other
      // targets (the admin token, say) get each field's own list.
      const catalog = f.invalid(t).catalog.filter((bad) => targetIndex === 0 || !GENERIC_VALUES.has(rawText(bad)));
      for (const bad of catalog) {
        cases.push(mk(`invalid ${f.name}`, t, { body: serialize(example.map(([k, v]) => [k, k === f.name ? bad : v])) }));
      }
      if (isRequired(f, t)) cases.push(mk(`missing ${f.name}`, t, { body: serialize(example.filter(([k]) => k !== f.name)), expect: [400] }));
    }
    for (const key of EXTRA_KEYS) {
      if (!example.some(([k]) => k === key)) cases.push(mk(`extra field ${key.slice(0, 20)}`, t, { body: serialize([...example, [key, J(1)]]), expect: [400] }));
    }
    for (const conflict of spec.conflicts?.(t).catalog ?? []) {
      cases.push(mk(`conflict: ${conflict.label}`, t, { body: serialize(merge(example, conflict.entries)), expect: [400] }));
    }
    if (spec.headers) {
      for (const h of fc.sample(spec.headers(t), { numRuns: 10, seed: 42 })) {
        const extra = h.entries ?? [];
        const merged = [...example.filter(([k]) => !extra.some(([e]) => e === k)), ...extra];
        cases.push(mk(`header: ${h.label}`, t, { headers: h.headers, body: serialize(merged), expect: [400] }));
      }
    }
  });
  const t0 = targets[0]!;
  const body0 = spec.fields ? serialize(exampleEntries(spec, t0)) : undefined;
  for (const p of spec.wrongPrincipals()) {
    cases.push(mk(`credentials: ${p.label}`, t0, { auth: p.auth, path: p.path ?? t0.path, body: body0, expect: p.expect }));
  }
  const seen = new Set<string>();
  for (const bad of fc.sample(spec.badPaths(), { numRuns: 50, seed: 42 })) {
    if (seen.has(bad.path + bad.auth)) continue;
    seen.add(bad.path + bad.auth);
    const t: Target = { label: bad.label, auth: bad.auth, path: bad.path };
    cases.push(mk(`path: ${bad.label}`, t, { body: spec.fields ? serialize(exampleEntries(spec, t)) : undefined, expect: bad.expect }));
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

let baseline: Record<string, string>;
let casesRun = 0;
let catalogued = 0;
let generated = 0;

describe('hostile input on every write endpoint', () => {
  beforeAll(async () => {
    baseline = await snapshot();
  });

  it('has a generator for every write route the server has, and no stale one', () => {
    const writeRoutes = api.routes.filter((r) => WRITE_METHODS.has(r.method)).map((r) => `${r.method} ${r.url}`);
    const specified = new Set(Object.keys(SPECS).map(routeOf));
    const missing = writeRoutes.filter((r) => !specified.has(r));
    expect(missing, `write routes without a hostile-input generator: add them to SPECS`).toEqual([]);
    const stale = Object.keys(SPECS).filter((k) => !writeRoutes.includes(routeOf(k)));
    expect(stale, 'SPECS entries for routes the server no longer has').toEqual([]);
  });

  /** Sends one case and checks the refusal and that the database did not move since `last`. */
  let last: Record<string, string>;
  async function attack(c: Hostile): Promise<void> {
    casesRun += 1;
    const res = await send(c);
    expectCleanRefusal(c, res);
    const now = await snapshot();
    expect(now, `database changed by ${describeCase(c)} -> ${res.status} ${res.text.slice(0, 300)}`).toEqual(last);
  }

  it.each(Object.keys(SPECS))('%s refuses every catalogued hostile value with a clean 4xx and changes nothing', async (routeKey) => {
    await setPrices(); // keep quotes fresh so a refusal is never a 503 PRICE_UNAVAILABLE
    last = await snapshot();
    const cases = catalogCases(routeKey, SPECS[routeKey]!);
    catalogued += cases.length;
    for (const c of cases) await attack(c);
  }, 60_000);

  it.each(Object.keys(SPECS))('%s refuses generated hostile requests with a clean 4xx and changes nothing', async (routeKey) => {
    await setPrices();
    last = await snapshot();
    await fc.assert(fc.asyncProperty(hostileCases(routeKey, SPECS[routeKey]!), attack), { numRuns: NUM_RUNS, endOnFailure: true });
    generated += NUM_RUNS;
  }, 60_000);


  it('refuses deterministic extremes on every write route: oversize (chunked), 1 MiB + 1, raw malformed HTTP', async () => {
    const before = await snapshot();
    for (const key of Object.keys(SPECS)) {
      const t = SPECS[key]!.targets()[0]!;
      const [method] = key.split(' ') as [string];
      // Exactly one byte over the limit.
      const head = '{"padding":"';
      const body = `${head}${'x'.repeat(BODY_LIMIT_BYTES + 1 - head.length - 2)}"}`;
      expect(body.length).toBe(BODY_LIMIT_BYTES + 1);
      const c: Hostile = { kind: '1 MiB + 1', method, path: t.path, auth: t.auth, body, expect: [413] };
      expectCleanRefusal(c, await send(c));
      // Chunked, with no Content-Length to check up front.
      const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === 0) controller.enqueue(new TextEncoder().encode('{"padding":"'));
          if (sent > BODY_LIMIT_BYTES * 2) controller.close();
          else controller.enqueue(chunk);
          sent += chunk.length;
        },
      });
      let status: number | string;
      let text = '';
      try {
        const res = await fetch(api.url + t.path, {
          method,
          headers: { authorization: t.auth, 'content-type': 'application/json' },
          body: stream,
          duplex: 'half',
        } as RequestInit);
        status = res.status;
        text = await res.text();
      } catch (err) {
        // The server may cut the upload short once it is over the limit; that is a refusal too.
        status = `connection closed (${(err as Error).message})`;
      }
      if (typeof status === 'number') {
        expect([status, text], `${key} chunked`).toEqual([413, expect.stringContaining('PAYLOAD_TOO_LARGE')]);
      }
    }
    expect(await snapshot()).toEqual(before);
  }, 60_000);

  it('answers malformed HTTP, oversize headers and broken URL encoding in the error envelope', async () => {
    const port = Number(new URL(api.url).port);
    const raw = (text: string) =>
      new Promise<string>((resolve) => {
        let buf = '';
        const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
        socket.on('data', (d) => (buf += d.toString('latin1')));
        socket.on('close', () => resolve(buf));
        socket.on('error', () => resolve(buf));
        setTimeout(() => socket.destroy(), 3_000);
      });
    const statusAndError = (response: string) => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
      const body = response.slice(response.indexOf('\r\n\r\n') + 4);
      return { status, error: (JSON.parse(body) as { error: { code: string; service: string } }).error };
    };
    const garbage = statusAndError(await raw('GARBAGE\r\n\r\n'));
    expect(garbage).toEqual({ status: 400, error: expect.objectContaining({ code: 'VALIDATION_FAILED', service: 'http' }) });
    const badHeader = statusAndError(await raw('POST /users HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n'));
    expect(badHeader.status).toBe(400);
    const hugeHeader = statusAndError(await raw(`POST /users HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(hugeHeader).toEqual({ status: 431, error: expect.objectContaining({ code: 'HEADERS_TOO_LARGE' }) });
    const badLength = await raw(
      `POST /users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{"a":1}`,
    );
    expect(statusAndError(badLength).status).toBe(400);
    const smuggle = await raw(
      `POST /users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    );
    expect(statusAndError(smuggle).status).toBe(400);
    // Path traversal is not normalized into another route.
    const traversal = await raw(
      `POST /users/../users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    expect(statusAndError(traversal).status).toBeGreaterThanOrEqual(400);
    expect(statusAndError(traversal).status).toBeLessThan(500);

    const badUrl = await send({ kind: 'bad url', method: 'POST', path: `/users/%zz/deposits`, auth: bearer(ADMIN_TOKEN), body: '{"amount":"1.00"}' });
    expectCleanRefusal({ kind: 'bad url', method: 'POST', path: '/users/%zz/deposits', auth: null }, badUrl);
    expect(badUrl.body).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    const longParam = await send({ kind: 'long param', method: 'DELETE', path: `/orders/${'a'.repeat(5_000)}`, auth: bearer(ADMIN_TOKEN) });
    expect([longParam.status, (longParam.body as { error: { code: string } }).error.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(longParam.text).not.toContain('a'.repeat(200));
  });

  it('bounds how long a slow client may hold a connection', () => {
    const node = api.server.server;
    expect(node.headersTimeout).toBe(HEADERS_TIMEOUT_MS);
    expect(node.requestTimeout).toBe(REQUEST_TIMEOUT_MS);
    expect(node.timeout).toBe(CONNECTION_TIMEOUT_MS);
    expect(node.keepAliveTimeout).toBe(KEEP_ALIVE_TIMEOUT_MS);
    expect(HEADERS_TIMEOUT_MS).toBeLessThanOrEqual(REQUEST_TIMEOUT_MS);
    expect(REQUEST_TIMEOUT_MS).toBeLessThan(CONNECTION_TIMEOUT_MS);
  });

  it('leaves every table exactly as it was before the attacks', async () => {
    expect(await snapshot()).toEqual(baseline);
  });

  it('stores injection strings and unicode in free-text fields verbatim (they are data, not code)', async () => {
    // Outside the no-change properties above: this one is meant to succeed.
    for (const name of ["Robert'); DROP TABLE users; --", '<script>alert(1)</script>', '${7*7}', '👨‍👩‍👧‍👦 \u202eRTL', 'Zoë e\u0301']) {
      const created = await api.request('POST', '/users', { body: { name, email: `verbatim${casesRun}${Math.random()}@example.com` } });
      expect(created.status, name).toBe(201);
      const got = await api.request('GET', `/users/${created.body.id}`);
      expect(got.body.name).toBe(name);
    }
    expect(await sql<{ n: string }>`SELECT count(*)::text AS n FROM users`.execute(ctx.db).then((r) => r.rows[0]!.n)).not.toBe('0');
  });

  afterAll(() => {
    // A visible tally of what was thrown at the server.
    console.info(`hostile-input: ${casesRun} hostile requests checked (${catalogued} catalogued, ${generated} generated)`);
  });
});
