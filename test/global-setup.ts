/**
 * Migrates a template database once per test run. Each test file then gets its own database
 * copied from it (`CREATE DATABASE … TEMPLATE …`, milliseconds), so files never see each
 * other's rows and nothing needs cleaning between them. Names carry their creation time, so
 * several runs can share a server and leftovers of a killed run are recognised and dropped.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { migrateToLatest, quoteIdent } from '../src/infra/postgres.js';
import { adminUrl, isStaleTestDatabase, urlFor } from './db-names.js';

let templateDb: string | undefined;

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

export async function setup(): Promise<void> {
  templateDb = `pt_tpl_${Date.now()}_${randomBytes(3).toString('hex')}`;
  process.env.PT_TEMPLATE_DB = templateDb;
  await withAdmin(async (admin) => {
    const all = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'pt\\_%'");
    for (const { datname } of all.rows) {
      if (isStaleTestDatabase(datname)) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`);
    }
    await admin.query(`CREATE DATABASE ${quoteIdent(templateDb!)}`);
  });
  const pool = new pg.Pool({ connectionString: urlFor(templateDb), max: 1 });
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  await migrateToLatest(db);
  await db.destroy();
}

export async function teardown(): Promise<void> {
  if (!templateDb) return;
  await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(templateDb!)} WITH (FORCE)`));
}
