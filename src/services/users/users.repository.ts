import type { Executor } from '../../infra/postgres.js';

export interface UserRow {
  id: string;
  name: string;
  email: string;
  created_at: Date;
}

export interface ApiKeyRow {
  id: string;
  user_id: string;
  key_hash: Buffer;
  revoked_at: Date | null;
}

export async function insertUser(db: Executor, user: { id: string; name: string; email: string }): Promise<UserRow> {
  return db.insertInto('users').values(user).returning(['id', 'name', 'email', 'created_at']).executeTakeFirstOrThrow();
}

export async function getUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').select(['id', 'name', 'email', 'created_at']).where('id', '=', id).executeTakeFirst();
}

export async function userExists(db: Executor, id: string): Promise<boolean> {
  return (await db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

export async function insertApiKey(db: Executor, key: { id: string; user_id: string; key_hash: Buffer }): Promise<void> {
  await db.insertInto('api_keys').values(key).execute();
}

export async function getApiKey(db: Executor, id: string): Promise<ApiKeyRow | undefined> {
  return db
    .selectFrom('api_keys')
    .select(['id', 'user_id', 'key_hash', 'revoked_at'])
    .where('id', '=', id)
    .executeTakeFirst();
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
