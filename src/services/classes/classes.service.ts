/**
 * Classes: a class has a name, the cash each member starts with, an optional trading window,
 * rules and a teacher key; its members are users it creates, in bulk, each funded with the
 * starting cash. The class owns `classes` and `class_members`; the users service creates the
 * users, their accounts and keys inside the class's transaction, so a member never exists
 * without its membership, its cash and its key, and a refused call leaves nothing behind.
 */
import { classRulesJson, parseClassRules, type ClassRules } from '../../core/class-rules.js';
import { assert, ValidationError } from '../../core/errors.js';
import { cashFromDb, cashToSql, parseCash, type Cash } from '../../core/money.js';
import { uuidv7 } from '../../infra/ids.js';
import type { Db, Executor } from '../../infra/postgres.js';
import * as users from '../users/users.service.js';
import { ClassNotFoundError } from './classes.errors.js';
import * as repo from './classes.repository.js';

/** Members one call creates: 500 rows per table stay well inside a second and the 1 MiB body. */
export const MEMBERS_PER_CALL_MAX = 500;
export const CLASS_NAME_LENGTH_MAX = 200;
export const MEMBERS_PAGE_MAX = 500;

export interface Class {
  id: string;
  name: string;
  startingCash: Cash;
  startsAt: Date | null;
  endsAt: Date | null;
  rules: ClassRules;
  leaderboardVisible: boolean;
  createdAt: Date;
}

/** A class as the admin asks for it (the API's or the command line's values, not yet checked). */
export interface NewClass {
  name: unknown;
  startingCash: unknown;
  startsAt?: unknown;
  endsAt?: unknown;
  rules?: unknown;
  leaderboardVisible?: boolean;
}

/** What the class needs of market data: that the tickers its rules name are listed. */
export interface TickerCheck {
  /** Throws UNKNOWN_TICKER unless the ticker is a listed instrument. */
  requireTicker(ticker: string): Promise<void>;
}

function toClass(row: repo.ClassRow): Class {
  return {
    id: row.id,
    name: row.name,
    startingCash: cashFromDb(row.starting_cash),
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    // Stored as validated (classRulesJson): parsing it again cannot fail on a row we wrote.
    rules: parseClassRules(row.rules),
    leaderboardVisible: row.leaderboard_visible,
    createdAt: row.created_at,
  };
}

const NAME_RE = /^[^\S\p{Cc}]*[^\s\p{Cc}\p{Cs}][^\p{Cc}\p{Cs}]*$/u;
const INSTANT_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** An instant in ISO 8601 with its offset (2026-09-01T13:30:00Z); null when absent. */
export function parseInstant(input: unknown, field: string): Date | null {
  if (input === undefined || input === null) return null;
  const match = typeof input === 'string' ? INSTANT_RE.exec(input) : null;
  const date = match ? new Date(input as string) : undefined;
  // Date rolls 2026-02-30 over into March: the day must survive the round trip.
  const [, y, mo, d] = match ?? [];
  const calendarDay = date && !Number.isNaN(date.getTime()) && new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d))).getUTCDate() === Number(d);
  if (!date || !calendarDay || Number(y) < 1970) {
    throw new ValidationError(`${field} must be an ISO 8601 instant with its offset, such as 2026-09-01T13:30:00Z`, { field });
  }
  return date;
}

function validateClassName(input: unknown): string {
  const name = typeof input === 'string' ? input.trim() : undefined;
  if (name === undefined || name.length === 0 || name.length > CLASS_NAME_LENGTH_MAX || !NAME_RE.test(name)) {
    throw new ValidationError(`name must be 1 to ${CLASS_NAME_LENGTH_MAX} characters with at least one visible character and no control characters`, { field: 'name' });
  }
  return name;
}

/**
 * Creates a class and its teacher key (shown once). Every field is checked here, so the API and
 * the command line refuse the same things: the name, the starting cash (a decimal, 0 or more),
 * the window (starts_at before ends_at), the rules (core/class-rules) and their tickers
 * (listed instruments: UNKNOWN_TICKER otherwise).
 */
export async function createClass(db: Db, tickers: TickerCheck, input: NewClass): Promise<{ class: Class; teacherKey: string; teacherKeyId: string }> {
  const name = validateClassName(input.name);
  const startingCash = parseCash(input.startingCash, 'starting_cash', { allowZero: true });
  const startsAt = parseInstant(input.startsAt, 'starts_at');
  const endsAt = parseInstant(input.endsAt, 'ends_at');
  if (startsAt && endsAt && startsAt >= endsAt) {
    throw new ValidationError(`starts_at (${startsAt.toISOString()}) must be before ends_at (${endsAt.toISOString()})`, { field: 'ends_at' });
  }
  const rules = parseClassRules(input.rules);
  for (const ticker of rules.tickers ?? []) await tickers.requireTicker(ticker);
  return db.transaction().execute(async (trx) => {
    const row = await repo.insertClass(trx, {
      id: uuidv7(),
      name,
      starting_cash: cashToSql(startingCash),
      starts_at: startsAt,
      ends_at: endsAt,
      rules: JSON.stringify(classRulesJson(rules)),
      leaderboard_visible: input.leaderboardVisible ?? true,
    });
    const key = await users.createTeacherKey(trx, row.id);
    return { class: toClass(row), teacherKey: key.apiKey, teacherKeyId: key.apiKeyId };
  });
}

export async function getClass(db: Executor, classId: string): Promise<Class> {
  const row = await repo.getClass(db, classId);
  if (!row) throw new ClassNotFoundError(classId);
  return toClass(row);
}

export const CLASSES_PAGE_MAX = 500;

/** A page of every class in the order they were created (for the admin); `next` is the cursor of the following page. */
export async function listClasses(db: Executor, limit: number, after?: string): Promise<{ classes: Class[]; next: string | null }> {
  assert(Number.isInteger(limit) && limit >= 1 && limit <= CLASSES_PAGE_MAX, `classes page within bounds, got ${limit}`);
  const rows = await repo.listClasses(db, after, limit + 1);
  const page = rows.slice(0, limit).map(toClass);
  return { classes: page, next: rows.length > limit ? page[page.length - 1]!.id : null };
}

export interface NewMember {
  user: users.User;
  joinedAt: Date;
  apiKey: string;
  apiKeyId: string;
}

/** Checks a list of new members as a call gives them: 1 to 500, each a valid name and email. */
export function validateMembers(input: readonly { name: unknown; email: unknown }[], where = 'members'): { name: string; email: string }[] {
  if (input.length < 1 || input.length > MEMBERS_PER_CALL_MAX) {
    throw new ValidationError(`${where} must list 1 to ${MEMBERS_PER_CALL_MAX} members, got ${input.length}`, { field: where });
  }
  return input.map((m, i) => users.validateNewUser(m, `${where}[${i}]`));
}

/**
 * Creates the class's new members, each a user funded with the class's starting cash, with a
 * key, in one transaction of a few set-based statements (users, cash balances and their
 * initial ledger rows, keys, memberships). An email given twice or already taken refuses the
 * whole call (EMAIL_TAKEN, naming the emails). Returns the members in the order given.
 */
export async function addMembers(db: Db, classId: string, input: readonly { name: unknown; email: unknown }[]): Promise<NewMember[]> {
  const members = validateMembers(input);
  const cls = await getClass(db, classId);
  return db.transaction().execute(async (trx) => {
    const created = await users.createUsersMany(trx, members, cls.startingCash);
    const joined = await repo.insertMembers(trx, classId, created.map((c) => c.user.id));
    assert(joined.size === created.length, 'every new member joined');
    return created.map((c) => ({ user: c.user, joinedAt: joined.get(c.user.id)!, apiKey: c.apiKey, apiKeyId: c.apiKeyId }));
  });
}

export interface Member {
  userId: string;
  name: string;
  email: string;
  joinedAt: Date;
  cashBalance: Cash;
}

/** A page of the class's members in the order they were created; `next` is the cursor of the following page. */
export async function listMembers(db: Executor, classId: string, limit: number, after?: string): Promise<{ members: Member[]; next: string | null }> {
  assert(Number.isInteger(limit) && limit >= 1 && limit <= MEMBERS_PAGE_MAX, `members page within bounds, got ${limit}`);
  await getClass(db, classId);
  const rows = await repo.listMembers(db, classId, after, limit + 1);
  const page = rows.slice(0, limit).map((r) => ({ userId: r.user_id, name: r.name, email: r.email, joinedAt: r.joined_at, cashBalance: cashFromDb(r.cash_balance) }));
  return { members: page, next: rows.length > limit ? page[page.length - 1]!.userId : null };
}
