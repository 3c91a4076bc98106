/**
 * PostgreSQL: the pool, the Kysely handle, database creation and migrations.
 *
 * Migrations are plain SQL files in `migrations/` named `<UTC timestamp>_<what>.sql`. They are
 * frozen in time: they never import application code, so an old migration means the same thing
 * forever. Kysely's Migrator applies them in name order, each in its own transaction, under an
 * advisory lock so two processes starting together do not race.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, sql, type Migration, type MigrationProvider, type Transaction } from 'kysely';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;
/** A handle that can run queries: the pool itself or an open transaction. */
export type Executor = Kysely<Database>;

/** Bounds so one stuck query or client cannot hold a connection forever. */
export const STATEMENT_TIMEOUT_MS = 10_000;
export const CONNECT_TIMEOUT_MS = 5_000;
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 30_000;
export const TCP_KEEPALIVE_INITIAL_DELAY_MS = 10_000;

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

export function createPool(databaseUrl: string, poolMax: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolMax,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    application_name: 'papertrade',
    // TCP keep-alive probes find a server that vanished without closing the connection (a
    // network partition): statement_timeout is enforced by the server and cannot notice that.
    keepAlive: true,
    keepAliveInitialDelayMillis: TCP_KEEPALIVE_INITIAL_DELAY_MS,
  });
  // An idle client that loses its server (restart, network) emits 'error' on the pool; without
  // a listener Node would crash the process. The next checkout simply gets a new connection.
  pool.on('error', () => {});
  // A checked-out client (mid-query or mid-transaction) has no pool listener: its 'error' on a
  // lost connection would crash the process. The query itself fails; release discards the client.
  pool.on('connect', (client) => {
    client.on('error', () => {});
    preparePerConnection(client);
  });
  return pool;
}

/** Prepared statements kept per connection; past this, further query texts run unprepared. */
export const PREPARED_STATEMENTS_PER_CONNECTION_MAX = 500;
/** Longer texts are one-off (migrations, scripts): not worth a slot. */
export const PREPARED_STATEMENT_TEXT_LENGTH_MAX = 8_000;

/**
 * Runs every parameterized query as a named prepared statement on its connection, so
 * PostgreSQL parses and plans each query shape once per connection instead of on every
 * execution — the hot paths (accept, fill) run the same few statements thousands of times a
 * second. Queries without parameters (BEGIN, COMMIT, migrations with several statements)
 * stay unnamed, as a prepared statement holds a single command.
 */
function preparePerConnection(client: pg.PoolClient): void {
  const names = new Map<string, string>();
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (text: unknown, values?: unknown, ...rest: unknown[]) => {
    if (typeof text === 'string' && Array.isArray(values) && values.length > 0 && text.length <= PREPARED_STATEMENT_TEXT_LENGTH_MAX) {
      let name = names.get(text);
      if (name === undefined && names.size < PREPARED_STATEMENTS_PER_CONNECTION_MAX) {
        name = `pt_${names.size}`;
        names.set(text, name);
      }
      if (name !== undefined) return query({ name, text, values }, ...rest);
    }
    return query(text, values, ...rest);
  };
}

export function createDb(databaseUrl: string, poolMax: number): { db: Db; pool: pg.Pool } {
  const pool = createPool(databaseUrl, poolMax);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, pool };
}

/** Creates the database named in `databaseUrl` if it does not exist yet. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } catch (err) {
      // Another process created it between our check and our CREATE: that is what we wanted.
      if ((err as { code?: string }).code !== '42P04') throw err;
      return false;
    }
    return true;
  } finally {
    await client.end();
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.dir)).filter((f) => /^\d{14}_[a-z0-9_]+\.sql$/.test(f)).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const text = await readFile(path.join(this.dir, file), 'utf8');
      migrations[file.replace(/\.sql$/, '')] = {
        up: async (db) => {
          await sql.raw(text).execute(db);
        },
      };
    }
    return migrations;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the migrator works on any schema
export async function migrateToLatest(db: Kysely<any>, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider(dir) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? error}`, {
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Transient failures worth one more try: serialization failure, deadlock, lost connection. */
export function isTransientPgError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === '40001' || code === '40P01' || code === '57P01' || code === '08006' || code === '08003';
}

export function pgErrorCode(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

export function pgConstraint(err: unknown): string | undefined {
  return (err as { constraint?: string } | undefined)?.constraint;
}
