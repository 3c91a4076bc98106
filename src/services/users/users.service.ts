/**
 * Users and their API keys. Creating a user opens its cash account in the same transaction, so
 * a user never exists without an account, an initial ledger row and a first key.
 */
import { uuidv7 } from '../../infra/ids.js';
import { pgConstraint, pgErrorCode, type Db, type Executor } from '../../infra/postgres.js';
import type { Cash } from '../../core/money.js';
import * as accounts from '../accounts/accounts.service.js';
import { generateApiKey, hashMatches, parseApiKey } from './api-keys.js';
import type { ApiKeyCache } from './api-key-cache.js';
import { ApiKeyNotFoundError, EmailTakenError, UserNotFoundError } from './users.errors.js';
import * as repo from './users.repository.js';

export interface User {
  id: string;
  name: string;
  email: string;
  createdAt: Date;
}

export interface NewUser {
  name: string;
  email: string;
  initialCash: Cash;
}

function toUser(row: repo.UserRow): User {
  return { id: row.id, name: row.name, email: row.email, createdAt: row.created_at };
}

export async function createUser(db: Db, input: NewUser): Promise<{ user: User; apiKey: string; apiKeyId: string }> {
  const id = uuidv7();
  const key = generateApiKey();
  try {
    const row = await db.transaction().execute(async (trx) => {
      const user = await repo.insertUser(trx, { id, name: input.name, email: input.email });
      await accounts.openAccount(trx, id, input.initialCash);
      await repo.insertApiKey(trx, { id: key.id, user_id: id, key_hash: key.hash });
      return user;
    });
    return { user: toUser(row), apiKey: key.token, apiKeyId: key.id };
  } catch (err) {
    if (pgErrorCode(err) === '23505' && pgConstraint(err) === 'users_email_lower_key') {
      throw new EmailTakenError(input.email);
    }
    throw err;
  }
}

export async function getUser(db: Executor, id: string): Promise<User> {
  const row = await repo.getUserById(db, id);
  if (!row) throw new UserNotFoundError(id);
  return toUser(row);
}

export async function assertUserExists(db: Executor, id: string): Promise<void> {
  if (!(await repo.userExists(db, id))) throw new UserNotFoundError(id);
}

export async function createApiKey(db: Db, userId: string): Promise<{ apiKey: string; apiKeyId: string }> {
  await assertUserExists(db, userId);
  const key = generateApiKey();
  await repo.insertApiKey(db, { id: key.id, user_id: userId, key_hash: key.hash });
  return { apiKey: key.token, apiKeyId: key.id };
}

export async function revokeApiKey(db: Db, userId: string, keyId: string, cache?: ApiKeyCache): Promise<void> {
  if (!(await repo.revokeApiKey(db, userId, keyId))) throw new ApiKeyNotFoundError(keyId);
  cache?.forgetKey(keyId);
}

/**
 * Resolves a bearer API key to its user; undefined for anything unknown, malformed or revoked.
 * With a cache, a recently verified key costs no database round trip.
 */
export async function authenticateApiKey(
  db: Executor,
  token: string,
  cache?: ApiKeyCache,
): Promise<{ userId: string; keyId: string } | undefined> {
  const cached = cache?.get(token);
  if (cached) return cached;
  const found = await lookupApiKey(db, token);
  if (found) cache?.set(token, found);
  return found;
}

async function lookupApiKey(db: Executor, token: string): Promise<{ userId: string; keyId: string } | undefined> {
  const parsed = parseApiKey(token);
  if (!parsed) return undefined;
  const row = await repo.getApiKey(db, parsed.id);
  if (!row || row.revoked_at !== null || !hashMatches(parsed.secret, row.key_hash)) return undefined;
  return { userId: row.user_id, keyId: row.id };
}
