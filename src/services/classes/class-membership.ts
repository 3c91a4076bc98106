/**
 * Which class a user trades in, and its rules, as the OMS asks for every order; and whether a
 * user is a member of a class, as the authorization of teacher keys and members asks. Membership is
 * fixed when the user is created (members are created by their class and never move), so a
 * user's answer — a class or none — is cached for as long as the process lives, within a bound;
 * the class itself (its window and rules) is cached for a few seconds, so every api process
 * sees a change within that time. A user outside any class costs one indexed lookup per process.
 */
import { sql } from 'kysely';
import { parseClassRules, type ClassRules } from '../../core/class-rules.js';
import { cashFromDb, type Cash } from '../../core/money.js';
import { InFlight } from '../../infra/in-flight.js';
import type { Executor } from '../../infra/postgres.js';

export interface MemberClass {
  classId: string;
  startingCash: Cash;
  startsAt: Date | null;
  endsAt: Date | null;
  rules: ClassRules;
}

/** Users whose membership answer is kept at most (the oldest is forgotten first). */
export const MEMBERSHIP_CACHE_USERS_MAX = 100_000;
/** Membership reads shared at most at once (past this, a miss reads on its own). */
export const MEMBERSHIP_READS_SHARED_MAX = 10_000;
/** Classes whose window and rules are kept at most. */
export const CLASSES_CACHED_MAX = 10_000;
/** How long a class's window and rules are reused before they are read again. */
export const CLASS_CACHE_TTL_MS = 5_000;

interface ClassRow {
  id: string;
  starting_cash: string;
  starts_at: Date | null;
  ends_at: Date | null;
  rules: unknown;
}

function toMemberClass(row: ClassRow): MemberClass {
  return {
    classId: row.id,
    startingCash: cashFromDb(row.starting_cash),
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    // Stored rules were validated on the way in; parsing again gives the typed form.
    rules: parseClassRules(row.rules),
  };
}

/** The class of a user, read now (no cache): for transactions that must see the stored state. */
export async function readMemberClass(db: Executor, userId: string): Promise<MemberClass | undefined> {
  const { rows } = await sql<ClassRow>`
    SELECT c.id, c.starting_cash::text AS starting_cash, c.starts_at, c.ends_at, c.rules
      FROM class_members m JOIN classes c ON c.id = m.class_id
     WHERE m.user_id = ${userId}`.execute(db);
  return rows[0] ? toMemberClass(rows[0]) : undefined;
}

async function readClass(db: Executor, classId: string): Promise<MemberClass | undefined> {
  const { rows } = await sql<ClassRow>`
    SELECT id, starting_cash::text AS starting_cash, starts_at, ends_at, rules FROM classes WHERE id = ${classId}`.execute(db);
  return rows[0] ? toMemberClass(rows[0]) : undefined;
}

export class ClassMembership {
  /** userId → classId, or null for a user in no class. */
  private readonly classOf = new Map<string, string | null>();
  private readonly classes = new Map<string, { value: MemberClass | undefined; readAt: number }>();
  /** Membership reads in flight, by user. */
  private readonly lookups = new InFlight<string | null>(MEMBERSHIP_READS_SHARED_MAX);

  constructor(
    private readonly db: Executor,
    private readonly options: { usersMax?: number; classTtlMs?: number; now?: () => number } = {},
  ) {}

  async memberClass(userId: string): Promise<MemberClass | undefined> {
    const classId = await this.classIdOf(userId);
    return classId === null ? undefined : this.classById(classId);
  }

  /**
   * Whether `userId` is a member of `classId`: how teacher keys and members are authorized (an
   * arrow property, so it is passed around as a function). No user can be asked about before
   * its creation committed — its id is made in that transaction — so a cached "no class" is
   * never a member that was still being created.
   */
  readonly isMember = async (classId: string, userId: string): Promise<boolean> => (await this.classIdOf(userId)) === classId;

  /**
   * Reads the membership of every user among `userIds` not cached yet in one query (a batch of
   * orders), so the per-order lookups that follow are answered from the cache.
   */
  async prime(userIds: readonly string[]): Promise<void> {
    const unknown = [...new Set(userIds)].filter((id) => !this.classOf.has(id));
    if (unknown.length === 0) return;
    const { rows } = await sql<{ user_id: string; class_id: string }>`
      SELECT user_id, class_id FROM class_members WHERE user_id = ANY(${unknown}::uuid[])`.execute(this.db);
    const found = new Map(rows.map((r) => [r.user_id, r.class_id]));
    for (const id of unknown) this.remember(id, found.get(id) ?? null);
  }

  private classIdOf(userId: string): Promise<string | null> {
    const classId = this.classOf.get(userId);
    if (classId !== undefined) return Promise.resolve(classId);
    // Requests that miss together share one read (a new bot's first burst of orders).
    return this.lookups.run(userId, async () => {
      const { rows } = await sql<{ class_id: string }>`SELECT class_id FROM class_members WHERE user_id = ${userId}`.execute(this.db);
      const found = rows[0]?.class_id ?? null;
      this.remember(userId, found);
      return found;
    });
  }

  private async classById(classId: string): Promise<MemberClass | undefined> {
    const now = (this.options.now ?? Date.now)();
    const cached = this.classes.get(classId);
    if (cached && now - cached.readAt < (this.options.classTtlMs ?? CLASS_CACHE_TTL_MS)) return cached.value;
    const value = await readClass(this.db, classId);
    // Classes are few next to their members; the bound only guards against a flood of them.
    if (this.classes.size >= CLASSES_CACHED_MAX) this.classes.clear();
    this.classes.set(classId, { value, readAt: now });
    return value;
  }

  private remember(userId: string, classId: string | null): void {
    if (this.classOf.size >= (this.options.usersMax ?? MEMBERSHIP_CACHE_USERS_MAX)) {
      // A Map iterates in insertion order: the first key is the oldest entry.
      const oldest = this.classOf.keys().next().value;
      if (oldest !== undefined) this.classOf.delete(oldest);
    }
    this.classOf.set(userId, classId);
  }
}
