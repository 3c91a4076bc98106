/**
 * Migrates a template database once per test run. Each test file then gets its own database
 * copied from it (`CREATE DATABASE … TEMPLATE …`, milliseconds), so files never see each
 * other's rows and nothing needs cleaning between them.
 */
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { migrateToLatest, quoteIdent } from '../src/infra/postgres.js';
import { adminUrl, TEMPLATE_DB, urlFor } from './db-names.js';

export async function setup(): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    // Leftovers of an interrupted earlier run would only waste disk; drop them.
    const stale = await admin.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'pt_test_%' OR datname = $1",
      [TEMPLATE_DB],
    );
    for (const { datname } of stale.rows) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${quoteIdent(TEMPLATE_DB)}`);
  } finally {
    await admin.end();
  }
  const pool = new pg.Pool({ connectionString: urlFor(TEMPLATE_DB), max: 1 });
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  await migrateToLatest(db);
  await db.destroy();
}
