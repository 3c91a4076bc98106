import { sql } from 'kysely';
import type { Executor } from '../../infra/postgres.js';

export interface UserRow {
  id: string;
  name: string;
  email: string;
  created_at: Date;
}

export interface ApiKeyRow {
  id: string;
  /** Null for a teacher key (it belongs to a class). */
  user_id: string | null;
  /** 'user' (a user's key) or 'teacher' (a class's key). */
  role: string;
  /** The class of a teacher key; null for a user's key. */
  class_id: string | null;
  key_hash: Buffer;
  revoked_at: Date | null;
}

export async function insertUser(db: Executor, user: { id: string; name: string; email: string }): Promise<UserRow> {
  return db.insertInto('users').values(user).returning(['id', 'name', 'email', 'created_at']).executeTakeFirstOrThrow();
}

/**
 * Inserts many users in one statement. A user whose email is taken (case-insensitively, by an
 * existing user, a concurrent insert or an earlier row of the same list) is skipped, not an
 * error: the caller compares what came back with what it asked for and names the emails.
 */
export async function insertUsersSkippingTaken(
  db: Executor,
  users: readonly { id: string; name: string; email: string }[],
): Promise<UserRow[]> {
  if (users.length === 0) return [];
  const { rows } = await sql<UserRow>`
    INSERT INTO users (id, name, email)
    SELECT x.id, x.name, x.email
      FROM unnest(${users.map((u) => u.id)}::uuid[], ${users.map((u) => u.name)}::text[], ${users.map((u) => u.email)}::text[])
           WITH ORDINALITY AS x (id, name, email, ord)
     ORDER BY x.ord
    ON CONFLICT DO NOTHING
    RETURNING id, name, email, created_at`.execute(db);
  return rows;
}

/** The emails of `emails` that existing users hold, compared case-insensitively (as stored). */
export async function findTakenEmails(db: Executor, emails: readonly string[]): Promise<string[]> {
  if (emails.length === 0) return [];
  const { rows } = await sql<{ email: string }>`
    SELECT email FROM users WHERE lower(email) = ANY(${emails.map((e) => e.toLowerCase())}::text[]) ORDER BY lower(email)`.execute(db);
  return rows.map((r) => r.email);
}

/** A page of users in id order (the order they were created in), after `afterId`. */
export async function listUsers(db: Executor, afterId: string | undefined, limit: number): Promise<UserRow[]> {
  let query = db.selectFrom('users').select(['id', 'name', 'email', 'created_at']).orderBy('id').limit(limit);
  if (afterId !== undefined) query = query.where('id', '>', afterId);
  return query.execute();
}

export async function getUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').select(['id', 'name', 'email', 'created_at']).where('id', '=', id).executeTakeFirst();
}

export async function userExists(db: Executor, id: string): Promise<boolean> {
  return (await db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

/** Which of `ids` are users (one query for a batch of orders the admin places). */
export async function existingUserIds(db: Executor, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom('users').select('id').where('id', 'in', [...ids]).execute();
  return new Set(rows.map((r) => r.id));
}

export async function insertApiKey(db: Executor, key: { id: string; user_id: string; key_hash: Buffer }): Promise<void> {
  await db.insertInto('api_keys').values(key).execute();
}

/** Inserts users' keys in one statement. */
export async function insertApiKeysMany(db: Executor, keys: readonly { id: string; user_id: string; key_hash: Buffer }[]): Promise<void> {
  if (keys.length === 0) return;
  await sql`
    INSERT INTO api_keys (id, user_id, key_hash)
    SELECT * FROM unnest(${keys.map((k) => k.id)}::text[], ${keys.map((k) => k.user_id)}::uuid[], ${keys.map((k) => k.key_hash)}::bytea[])`.execute(db);
}

/** A class's key (role 'teacher'): it has a class and no user. */
export async function insertTeacherKey(db: Executor, key: { id: string; class_id: string; key_hash: Buffer }): Promise<void> {
  await db.insertInto('api_keys').values({ ...key, role: 'teacher', user_id: null }).execute();
}

export async function getApiKey(db: Executor, id: string): Promise<ApiKeyRow | undefined> {
  return db
    .selectFrom('api_keys')
    .select(['id', 'user_id', 'role', 'class_id', 'key_hash', 'revoked_at'])
    .where('id', '=', id)
    .executeTakeFirst();
}

/** The ids among `ids` of keys that exist and are not revoked. */
export async function liveApiKeyIds(db: Executor, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await sql<{ id: string }>`
    SELECT id FROM api_keys WHERE id = ANY(${[...ids]}::text[]) AND revoked_at IS NULL`.execute(db);
  return new Set(rows.map((r) => r.id));
}

/** Revokes an active key of the user; false when there is no such active key. */
export async function revokeApiKey(db: Executor, userId: string, keyId: string): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: new Date() })
    .where('id', '=', keyId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
