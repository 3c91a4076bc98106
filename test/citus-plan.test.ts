/**
 * The Citus plan (the README's "Past one machine") kept true: every table is placed (distributed by user_id,
 * reference, or coordinator-only); the constraints that would have to change before
 * create_distributed_table are exactly the ones the plan lists; and every statement the hot
 * flow sends to PostgreSQL for a distributed table names one user (`user_id = $n`), so Citus
 * could route it to one shard — or is on a small allowlist that says why it does not.
 *
 * The statements are captured below the services: pg.Client's query method is wrapped for the
 * connections of this file's database, and the flow runs through the real HTTP API with an
 * engine running (accept, the engine's fills, a resting limit and its cancel, the reads).
 */
import pg from 'pg';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { createEngine } from '../src/app.js';
import { adminPrice, apiUser, eventually, startTradingStack, type TestContext, type TestServer } from './harness.js';

/** Distributed by user_id, co-located (the README's "Past one machine"). */
const DISTRIBUTED = [
  'cash_balances',
  'orders',
  'fills',
  'cash_ledger',
  'holdings',
  'event_counters',
  'events',
  'class_members',
  'account_resets',
  'reset_positions',
  'portfolio_history',
  'portfolio_metrics',
] as const;
/** Reference tables: a copy on every node. */
const REFERENCE = ['users', 'api_keys', 'classes', 'instruments', 'market_clock', 'market_sessions', 'history_rounds'] as const;
/** Left on the coordinator. */
const LOCAL = ['price_bars', 'kysely_migration', 'kysely_migration_lock'] as const;

/** Distributed tables without a user_id column today (the plan adds one). */
const LACKING_USER_ID = ['fills'];
/** PRIMARY KEY / UNIQUE indexes of distributed tables that do not include user_id (the plan widens them). */
const UNIQUE_WITHOUT_USER_ID = [
  'account_resets.account_resets_ledger_id_key',
  'account_resets.account_resets_pkey',
  'cash_ledger.cash_ledger_pkey',
  'fills.fills_pkey',
  'orders.orders_pkey',
  'orders.orders_replaces_key',
  'reset_positions.reset_positions_pkey',
];
/** Foreign keys between distributed tables that do not carry user_id on both sides. */
const FOREIGN_KEYS_WITHOUT_USER_ID = [
  'account_resets.account_resets_ledger_id_fkey',
  'cash_ledger.cash_ledger_order_id_fkey',
  'fills.fills_order_id_fkey',
  'orders.orders_replaced_by_fkey',
  'orders.orders_replaces_fkey',
  'reset_positions.reset_positions_reset_id_fkey',
];

interface Allowed {
  name: string;
  pattern: RegExp;
  /** Hot statements the flow must produce (a stale entry fails); background scans may not run in the window. */
  required: boolean;
}

/**
 * Statements over distributed tables that do not name one user. Each is either multi-shard by
 * design (a batch over many users, a scan over all of them) or a TODO(citus): a per-order
 * statement that could name its user and does not.
 */
const ALLOWED: readonly Allowed[] = [
  // The OMS's accept batch: up to ACCEPT_BATCH_MAX orders of different users (at most one per
  // user) in one statement, every row keyed by its user_id from unnest(): multi-shard by design.
  { name: 'accept batch', pattern: /^WITH "x" AS \(SELECT \* FROM unnest\(.*"inserted" AS \( INSERT INTO orders /, required: true },
  // The engine's fill batch: many users' fills in one statement, multi-shard by design.
  // TODO(citus): inside it orders are matched by id alone (o.id = x.id) and fills has no
  // user_id; both must carry user_id for the per-shard parts to be co-located.
  { name: 'engine fill batch', pattern: /^WITH "filled" AS \( UPDATE orders o SET .* FROM unnest\(/, required: true },
  // The engine's batch moving accepted resting orders to OPEN (many users), multi-shard by design.
  // TODO(citus): matched by id alone (o.id = x.id); the rows could carry user_id.
  { name: 'engine mark-open batch', pattern: /^UPDATE orders o SET status = 'OPEN', .* FROM unnest\(\$1::uuid\[\]/, required: true },
  // The event append (the outbox) in its batch form: users from unnest(). Multi-shard for the
  // engine's batches; TODO(citus): a single user's cancel also appends through this form, so
  // Citus cannot see that it is one user.
  { name: 'event append', pattern: /^WITH "appended_source" AS \( SELECT x\.user_id, .* FROM unnest\(\$1::uuid\[\]/, required: true },
  // TODO(citus): GET /orders/:id and the engine's single-order paths read an order by id alone;
  // the owner is known (the request's user, the pipe message's userId) and checked after the read.
  { name: 'order by id', pattern: /^select .* from "orders" where "id" = \$1$/, required: true },
  // TODO(citus): the engine (a delivered batch) and the watcher read orders by a list of ids
  // alone; the pipe messages carry userId, so (user_id, id) pairs could be passed.
  { name: 'orders by ids', pattern: /^select .* from "orders" where "id" in \(\$1(, \$\d+)*\)$/, required: true },
  // The reconciler's scan of PENDING orders older than RECONCILE_AFTER_MS: all users, multi-shard by design.
  { name: 'reconciler scan', pattern: /^select .* from "orders" where "status" = \$1 and "created_at" < \$2 order by "created_at" limit \$3$/, required: false },
  // The resting-order watcher's scans of OPEN orders (changed since its last look; at a
  // session's open or close): all users, multi-shard by design.
  { name: 'watcher changed scan', pattern: /^select .* from "orders" where "status" = \$1 and "updated_at" >= \$2 order by "updated_at" limit \$3$/, required: false },
  { name: 'watcher session scan', pattern: /^select .* from "orders" where "status" = \$1 and "created_at" <= \$2 and /, required: false },
  { name: 'watcher index rebuild', pattern: /^select .* from "orders" where "status" = \$1 (and "id" > \$2 )?order by "id"/, required: false },
  // The portfolio snapshot round (every user's equity, for history and leaderboards) and its
  // downsampling: all users, multi-shard by design.
  { name: 'snapshot page', pattern: /^WITH page AS \( SELECT user_id, cash_balance::text, net_contributions::text FROM cash_balances /, required: false },
  { name: 'snapshot write', pattern: /^WITH input AS \( SELECT \* FROM unnest\(\$1::uuid\[\]/, required: false },
  { name: 'history downsampling', pattern: /^WITH w AS \( .* DELETE FROM portfolio_history h USING w /, required: false },
  // Event retention, by age over all users: multi-shard by design. TODO(citus): it deletes by
  // ctid, which is only meaningful inside one shard; it must delete by (user_id, seq) or by age.
  { name: 'event retention', pattern: /^DELETE FROM events WHERE ctid = ANY\(ARRAY\(SELECT ctid FROM events WHERE at < \$1 LIMIT \$2\)\)$/, required: false },
];

let ctx: TestContext;
let api: TestServer;
let engine: ReturnType<typeof createEngine>;

const captured: string[] = [];
let capturing = false;
let dbName: string | undefined;

type QueryFn = (...args: unknown[]) => unknown;
const clientProto = pg.Client.prototype as unknown as { query: QueryFn };
const originalQuery = clientProto.query;

function normalize(text: string): string {
  return text.replace(/--[^\n]*/g, ' ').replace(/\s+/g, ' ').trim();
}

/** A statement as a failure names it: a long column list elided, then cut at 240 characters. */
function short(text: string): string {
  const t = text.replace(/^select .{80,}? from "/i, 'select … from "').replace(/ returning .{80,}$/i, ' returning …');
  return t.length > 240 ? `${t.slice(0, 240)}…` : t;
}

/** The distributed tables a statement reads or writes (names after FROM/JOIN/INTO/UPDATE/USING). */
function distributedTablesOf(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/\b(?:from|join|into|update|using)\s+(?:only\s+)?"?([a-z_][a-z0-9_]*)"?/gi)) {
    const name = m[1]!.toLowerCase();
    if ((DISTRIBUTED as readonly string[]).includes(name)) found.add(name);
  }
  return [...found];
}

/** Names one user: a `user_id = $n` predicate, or an INSERT of a user_id column from VALUES. */
function namesOneUser(text: string): boolean {
  if (/(?:^|[^a-z_])(?:"?[a-z_]+"?\.)?"?user_id"?\s*=\s*\$\d+/i.test(text)) return true;
  const insert = /\binsert into "?[a-z_]+"?\s*(?:as [a-z_]+\s*)?\(([^)]*)\)\s*values\s*\(/i.exec(text);
  return insert !== null && /(^|[\s,"])user_id("|\s|,|$)/.test(insert[1]!);
}

beforeAll(async () => {
  clientProto.query = function (this: { database?: string }, ...args: unknown[]) {
    if (capturing && dbName !== undefined && this.database === dbName) {
      const first = args[0];
      const text = typeof first === 'string' ? first : (first as { text?: unknown } | undefined)?.text;
      if (typeof text === 'string') captured.push(normalize(text));
    }
    return originalQuery.apply(this, args);
  };
  ({ ctx, api, engine } = await startTradingStack({
    // The background scans run inside the captured window, so they are checked too.
    RECONCILE_INTERVAL_MS: '100',
    PORTFOLIO_SNAPSHOT_INTERVAL_MS: '1000',
    EVENTS_PRUNE_INTERVAL_MS: '1000',
  }));
  dbName = ctx.dbName;
});
afterAll(async () => {
  capturing = false;
  clientProto.query = originalQuery;
  await engine?.stop();
  await api?.server.close();
  await ctx?.close();
});

describe('the Citus plan', () => {
  it('places every table, and lists exactly the constraints that lack user_id', async () => {
    const { rows: tables } = await sql<{ name: string }>`
      SELECT relname AS name FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace ORDER BY 1`.execute(ctx.db);
    expect(tables.map((t) => t.name)).toEqual([...DISTRIBUTED, ...REFERENCE, ...LOCAL].sort());

    const { rows: lacking } = await sql<{ name: string }>`
      SELECT c.relname AS name FROM pg_class c
       WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(${[...DISTRIBUTED]}::text[])
         AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
       ORDER BY 1`.execute(ctx.db);
    expect(lacking.map((r) => r.name)).toEqual(LACKING_USER_ID);

    const { rows: unique } = await sql<{ name: string }>`
      SELECT t.relname || '.' || i.relname AS name
        FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
       WHERE x.indisunique AND t.relname = ANY(${[...DISTRIBUTED]}::text[]) AND t.relnamespace = 'public'::regnamespace
         AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'user_id' AND a.attnum = ANY(x.indkey))
       ORDER BY 1`.execute(ctx.db);
    expect(unique.map((r) => r.name)).toEqual(UNIQUE_WITHOUT_USER_ID);

    const { rows: fks } = await sql<{ name: string }>`
      SELECT t.relname || '.' || k.conname AS name
        FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
       WHERE k.contype = 'f' AND t.relname = ANY(${[...DISTRIBUTED]}::text[]) AND r.relname = ANY(${[...DISTRIBUTED]}::text[])
         AND NOT (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'user_id' AND a.attnum = ANY(k.conkey))
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attname = 'user_id' AND a.attnum = ANY(k.confkey)))
       ORDER BY 1`.execute(ctx.db);
    expect(fks.map((r) => r.name)).toEqual(FOREIGN_KEYS_WITHOUT_USER_ID);
  });

  it('every hot statement over a distributed table names one user, or is allowlisted with its reason', async () => {
    const u = await apiUser(api, '100000.00');
    await adminPrice(api, 'AAPL', '150');
    const token = u.api_key;
    const get = async (id: string) => (await api.request('GET', `/orders/${id}`, { token })).body as { status: string };
    const until = (id: string, status: string) => eventually(async () => ((await get(id)).status === status ? true : undefined));

    capturing = true;
    const buy = await api.request('POST', '/orders', { token, body: { ticker: 'AAPL', side: 'buy', type: 'market', quantity: 10 } });
    expect(buy.status).toBe(201);
    await until(buy.body.id, 'FILLED');
    const sell = await api.request('POST', '/orders', { token, body: { ticker: 'AAPL', side: 'sell', type: 'market', quantity: 5 } });
    expect(sell.status).toBe(201);
    await until(sell.body.id, 'FILLED');
    const limit = await api.request('POST', '/orders', { token, body: { ticker: 'AAPL', side: 'buy', type: 'limit', limit_price: '100', quantity: 3 } });
    expect(limit.status).toBe(201);
    await until(limit.body.id, 'OPEN');
    expect((await api.request('DELETE', `/orders/${limit.body.id}`, { token })).status).toBe(200);
    expect((await api.request('GET', '/orders', { token })).status).toBe(200);
    expect((await api.request('GET', `/users/${u.id}/portfolio`, { token })).status).toBe(200);
    expect((await api.request('GET', `/users/${u.id}/account`, { token })).status).toBe(200);
    capturing = false;

    const statements = [...new Set(captured)];
    const used = new Set<string>();
    const unrouted: string[] = [];
    for (const text of statements) {
      if (distributedTablesOf(text).length === 0) continue; // BEGIN/COMMIT, reference and local tables
      const allowed = ALLOWED.find((a) => a.pattern.test(text));
      if (allowed) {
        used.add(allowed.name);
        continue;
      }
      if (!namesOneUser(text)) unrouted.push(`[${distributedTablesOf(text).join(', ')}] ${short(text)}`);
    }
    expect(unrouted, 'statements over distributed tables that name no user and are not allowlisted').toEqual([]);
    const stale = ALLOWED.filter((a) => a.required && !used.has(a.name)).map((a) => a.name);
    expect(stale, "allowlisted hot statements the flow no longer runs: remove them from ALLOWED and from the README's Past one machine section").toEqual([]);
    // The flow really ran the per-user statements the plan relies on.
    const pinned = statements.filter((t) => distributedTablesOf(t).length > 0 && namesOneUser(t) && !ALLOWED.some((a) => a.pattern.test(t)));
    for (const table of ['orders', 'cash_balances', 'holdings', 'class_members']) {
      expect(pinned.some((t) => distributedTablesOf(t).includes(table)), `a statement over ${table} naming one user`).toBe(true);
    }
  });
});
