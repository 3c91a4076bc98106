/**
 * Users and their API keys. Creating a user opens its cash account in the same transaction, so
 * a user never exists without an account, an initial ledger row and a first key.
 */
import { uuidv7 } from '../../infra/ids.js';
import { pgConstraint, pgErrorCode, type Db, type Executor } from '../../infra/postgres.js';
import { assert } from '../../core/errors.js';
import { cashToSql, type Cash } from '../../core/money.js';
import * as accounts from '../accounts/accounts.service.js';
import * as accountsRepo from '../accounts/accounts.repository.js';
import { generateApiKey, hashMatches, parseApiKey } from './api-keys.js';
import type { ApiKeyCache, CachedKey } from './api-key-cache.js';
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

/**
 * A new user's name and email as POST /users takes them (the same rules for every way in):
 * they live in src/core/roster.ts, which the command line's and the dashboard's roster reader
 * use too, so a member is checked by one set of rules wherever it comes from.
 */
export { USER_EMAIL_LENGTH_MAX, USER_NAME_LENGTH_MAX, validateNewUser } from '../../core/roster.js';

/** Users one set-based creation takes: its statements stay small and well inside the statement timeout. */
export const USERS_PER_BATCH_MAX = 1_000;

export interface CreatedUser {
  user: User;
  apiKey: string;
  apiKeyId: string;
}

/**
 * Creates many users, each with a cash account holding `initialCash` and a first key, in a
 * few set-based statements inside the caller's transaction (so the caller may add its own
 * rows, such as class memberships, atomically). Refuses the whole list with EMAIL_TAKEN, naming
 * the emails, when one is given twice or already taken. Returns the users in the order given.
 */
export async function createUsersMany(trx: Executor, inputs: readonly { name: string; email: string }[], initialCash: Cash): Promise<CreatedUser[]> {
  assert(inputs.length <= USERS_PER_BATCH_MAX, `at most ${USERS_PER_BATCH_MAX} users at once, got ${inputs.length}`);
  assert(initialCash >= 0n, 'initial cash is never negative');
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const { email } of inputs) {
    const lower = email.toLowerCase();
    if (seen.has(lower)) twice.add(email);
    seen.add(lower);
  }
  if (twice.size > 0) throw new EmailTakenError([...twice], { inRequest: true });
  const rows = inputs.map((u) => ({ id: uuidv7(), name: u.name, email: u.email }));
  const inserted = await repo.insertUsersSkippingTaken(trx, rows);
  if (inserted.length !== rows.length) {
    // The statement skipped the users whose email is taken; the caller's transaction rolls back.
    const insertedIds = new Set(inserted.map((r) => r.id));
    throw new EmailTakenError(rows.filter((r) => !insertedIds.has(r.id)).map((r) => r.email));
  }
  const userIds = rows.map((r) => r.id);
  await accountsRepo.openAccountsMany(trx, userIds, cashToSql(initialCash));
  const keys = rows.map(() => generateApiKey());
  await repo.insertApiKeysMany(trx, keys.map((k, i) => ({ id: k.id, user_id: userIds[i]!, key_hash: k.hash })));
  const byId = new Map(inserted.map((r) => [r.id, r]));
  return rows.map((r, i) => ({ user: toUser(byId.get(r.id)!), apiKey: keys[i]!.token, apiKeyId: keys[i]!.id }));
}

/** The emails of `emails` existing users already hold (a check before a long bulk import). */
export async function findTakenEmails(db: Executor, emails: readonly string[]): Promise<string[]> {
  return repo.findTakenEmails(db, emails);
}

/** A class's teacher key (inside the caller's transaction, with the class); shown once. */
export async function createTeacherKey(trx: Executor, classId: string): Promise<{ apiKey: string; apiKeyId: string }> {
  const key = generateApiKey();
  await repo.insertTeacherKey(trx, { id: key.id, class_id: classId, key_hash: key.hash });
  return { apiKey: key.token, apiKeyId: key.id };
}

export const USERS_PAGE_MAX = 500;

export interface ListedUser extends User {
  cashBalance: Cash;
}

/**
 * A page of every user in the order they were created (for the admin), each with its cash
 * balance (two queries, whatever the page size); `next` is the cursor of the following page.
 */
export async function listUsers(db: Executor, limit: number, after?: string): Promise<{ users: ListedUser[]; next: string | null }> {
  assert(Number.isInteger(limit) && limit >= 1 && limit <= USERS_PAGE_MAX, `users page within bounds, got ${limit}`);
  const rows = await repo.listUsers(db, after, limit + 1);
  const page = rows.slice(0, limit).map(toUser);
  const balances = await accounts.getBalancesMany(db, page.map((u) => u.id));
  return {
    // Every user is created with its account in one transaction: the balance is always there.
    users: page.map((u) => ({ ...u, cashBalance: balances.get(u.id)?.cashBalance ?? 0n })),
    next: rows.length > limit ? page[page.length - 1]!.id : null,
  };
}

export async function getUser(db: Executor, id: string): Promise<User> {
  const row = await repo.getUserById(db, id);
  if (!row) throw new UserNotFoundError(id);
  return toUser(row);
}

export async function assertUserExists(db: Executor, id: string): Promise<void> {
  if (!(await repo.userExists(db, id))) throw new UserNotFoundError(id);
}

/** The ids among `ids` that name no user. */
export async function missingUsers(db: Executor, ids: readonly string[]): Promise<Set<string>> {
  const found = await repo.existingUserIds(db, ids);
  return new Set(ids.filter((id) => !found.has(id)));
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

/** What a valid API key stands for: a user (its own account) or a class (its teacher). */
export type ResolvedKey = CachedKey;

/**
 * Resolves a bearer API key to what it stands for — a user's key to its user, a teacher key to
 * its class — or undefined for anything unknown, malformed or revoked. With a cache, a
 * recently verified key costs no database round trip.
 */
export async function resolveApiKey(db: Executor, token: string, cache?: ApiKeyCache): Promise<ResolvedKey | undefined> {
  return cache ? cache.resolve(token, () => lookupApiKey(db, token)) : lookupApiKey(db, token);
}

/** Key ids per revalidation query (API_KEY_CACHE_ENTRIES_MAX bounds how many queries a pass makes). */
export const API_KEY_REVALIDATE_BATCH_MAX = 1_000;

/**
 * Revalidates the keys `cache` holds in use against the database, a query per
 * API_KEY_REVALIDATE_BATCH_MAX of them (see ApiKeyCache): confirmed keys are renewed, revoked
 * or deleted ones forgotten. Returns how many keys it asked about.
 */
export async function revalidateApiKeys(db: Executor, cache: ApiKeyCache, now: () => number = Date.now): Promise<number> {
  const ids = cache.keyIdsInUse(now());
  for (let i = 0; i < ids.length; i += API_KEY_REVALIDATE_BATCH_MAX) {
    const chunk = ids.slice(i, i + API_KEY_REVALIDATE_BATCH_MAX);
    const sentAtMs = now();
    cache.revalidated(chunk, await repo.liveApiKeyIds(db, chunk), sentAtMs);
  }
  return ids.length;
}

/**
 * Resolves a bearer API key to its user; undefined for anything unknown, malformed or revoked,
 * and for a teacher key (which has no user): for the callers that serve users only.
 */
export async function authenticateApiKey(
  db: Executor,
  token: string,
  cache?: ApiKeyCache,
): Promise<{ userId: string; keyId: string } | undefined> {
  const found = await resolveApiKey(db, token, cache);
  return found?.role === 'user' ? { userId: found.userId, keyId: found.keyId } : undefined;
}

async function lookupApiKey(db: Executor, token: string): Promise<ResolvedKey | undefined> {
  const parsed = parseApiKey(token);
  if (!parsed) return undefined;
  const row = await repo.getApiKey(db, parsed.id);
  if (!row || row.revoked_at !== null || !hashMatches(parsed.secret, row.key_hash)) return undefined;
  if (row.role === 'teacher' && row.class_id !== null) return { role: 'teacher', classId: row.class_id, keyId: row.id };
  if (row.role === 'user' && row.user_id !== null) return { role: 'user', userId: row.user_id, keyId: row.id };
  return undefined;
}
