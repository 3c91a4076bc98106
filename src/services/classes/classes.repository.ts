/**
 * Named queries over `classes` and `class_members`. Members are written set-based (one
 * statement for any number of them), in the transaction that creates their users.
 */
import { sql } from 'kysely';
import type { Executor } from '../../infra/postgres.js';

export interface ClassRow {
  id: string;
  name: string;
  starting_cash: string;
  starts_at: Date | null;
  ends_at: Date | null;
  rules: Record<string, unknown>;
  leaderboard_visible: boolean;
  created_at: Date;
}

const CLASS_COLUMNS = ['id', 'name', 'starting_cash', 'starts_at', 'ends_at', 'rules', 'leaderboard_visible', 'created_at'] as const;

export async function insertClass(
  db: Executor,
  row: { id: string; name: string; starting_cash: string; starts_at: Date | null; ends_at: Date | null; rules: string; leaderboard_visible: boolean },
): Promise<ClassRow> {
  return db.insertInto('classes').values(row).returning(CLASS_COLUMNS).executeTakeFirstOrThrow();
}

export async function getClass(db: Executor, id: string): Promise<ClassRow | undefined> {
  return db.selectFrom('classes').select(CLASS_COLUMNS).where('id', '=', id).executeTakeFirst();
}

/** A page of classes in id order (the order they were created in), after `afterId`. */
export async function listClasses(db: Executor, afterId: string | undefined, limit: number): Promise<ClassRow[]> {
  let query = db.selectFrom('classes').select(CLASS_COLUMNS).orderBy('id').limit(limit);
  if (afterId !== undefined) query = query.where('id', '>', afterId);
  return query.execute();
}

/** Adds users to a class in one statement; returns when they joined (one instant: the statement's). */
export async function insertMembers(db: Executor, classId: string, userIds: readonly string[]): Promise<Map<string, Date>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await sql<{ user_id: string; joined_at: Date }>`
    INSERT INTO class_members (user_id, class_id)
    SELECT u, ${classId}::uuid FROM unnest(${[...userIds]}::uuid[]) AS u
    RETURNING user_id, joined_at`.execute(db);
  return new Map(rows.map((r) => [r.user_id, r.joined_at]));
}

export interface MemberRow {
  user_id: string;
  name: string;
  email: string;
  joined_at: Date;
  cash_balance: string;
}

/** A page of a class's members in user id order (the order they were created in), after `afterUserId`. */
export async function listMembers(db: Executor, classId: string, afterUserId: string | undefined, limit: number): Promise<MemberRow[]> {
  const { rows } = await sql<MemberRow>`
    SELECT m.user_id, u.name, u.email, m.joined_at, cb.cash_balance::text AS cash_balance
      FROM class_members m
      JOIN users u ON u.id = m.user_id
      JOIN cash_balances cb ON cb.user_id = m.user_id
     WHERE m.class_id = ${classId} ${afterUserId === undefined ? sql`` : sql`AND m.user_id > ${afterUserId}::uuid`}
     ORDER BY m.user_id
     LIMIT ${limit}`.execute(db);
  return rows;
}
