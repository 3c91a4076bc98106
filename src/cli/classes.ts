/**
 * `papertrade class create` and `papertrade class add-members`: the admin's tools for classes,
 * straight on the database (as `user create`), through the same classes service as the API, so
 * they check and refuse exactly what POST /classes and POST /classes/{id}/members do.
 */
import { readFile, stat } from 'node:fs/promises';
import { classRulesJson } from '../core/class-rules.js';
import { AppError, ValidationError } from '../core/errors.js';
import { formatCash } from '../core/money.js';
import { isUuid } from '../infra/ids.js';
import type { Db } from '../infra/postgres.js';
import * as classes from '../services/classes/classes.service.js';
import * as users from '../services/users/users.service.js';
import { CSV_BYTES_MAX, CsvError, csvLine } from '../core/csv.js';
import { readRoster, type RosterMember } from '../core/roster.js';

export interface CreateClassOptions {
  name: string;
  startingCash: string;
  startsAt?: string | undefined;
  endsAt?: string | undefined;
  /** The rules as JSON text, e.g. '{"tickers":["AAPL"],"max_orders_per_day":20}'. */
  rules?: string | undefined;
  hideLeaderboard?: boolean;
}

/** Creates a class; returns what the command prints: the class as JSON, with its teacher key. */
export async function createClassCommand(db: Db, tickers: classes.TickerCheck, opts: CreateClassOptions): Promise<string> {
  let rules: unknown;
  if (opts.rules !== undefined) {
    try {
      rules = JSON.parse(opts.rules);
    } catch (err) {
      throw new ValidationError(`--rules must be a JSON object (${(err as Error).message})`, { field: 'rules' });
    }
  }
  const created = await classes.createClass(db, tickers, {
    name: opts.name,
    startingCash: opts.startingCash,
    startsAt: opts.startsAt,
    endsAt: opts.endsAt,
    rules,
    leaderboardVisible: !opts.hideLeaderboard,
  });
  const c = created.class;
  const body = {
    id: c.id,
    name: c.name,
    starting_cash: formatCash(c.startingCash),
    starts_at: c.startsAt?.toISOString() ?? null,
    ends_at: c.endsAt?.toISOString() ?? null,
    rules: classRulesJson(c.rules),
    leaderboard_visible: c.leaderboardVisible,
    teacher_key: created.teacherKey,
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

/** A member as a CSV line gives it. */
export type CsvMember = RosterMember;

/** Emails checked against existing users per query before the import starts. */
const TAKEN_CHECK_BATCH = 5_000;

/**
 * Reads a members CSV (header `name,email`, in either order; quoted fields allowed) and checks
 * every line before anything is created: the shape, each name and email (the rules of POST
 * /users), emails given twice in the file. The first refusal is thrown, naming its line. The
 * reading is src/core/roster.ts, which the dashboard's roster upload uses as well.
 */
export function readMembersCsv(text: string): CsvMember[] {
  return readRoster(text);
}

export interface AddMembersResult {
  created: number;
}

/**
 * Creates the CSV's members in the class, MEMBERS_PER_CALL_MAX per transaction, writing each
 * chunk's `user_id,name,email,api_key` lines as soon as it is committed (the keys are shown only
 * once). Emails already taken are looked up before the first chunk, so a file that would fail on
 * one creates nothing; should a chunk still fail (an email taken meanwhile), the error says how
 * many members were created and printed before it.
 */
export async function addMembersCommand(db: Db, classId: string, csvPath: string, write: (text: string) => void): Promise<AddMembersResult> {
  if (!isUuid(classId)) throw new ValidationError(`--class must be a class id (a UUID), got ${classId.slice(0, 40)}`, { field: 'class' });
  const size = (await stat(csvPath)).size;
  if (size > CSV_BYTES_MAX) throw new CsvError(1, `${csvPath} is larger than ${CSV_BYTES_MAX} bytes`);
  let members: CsvMember[];
  try {
    members = readMembersCsv(await readFile(csvPath, 'utf8'));
  } catch (err) {
    if (err instanceof CsvError) throw new ValidationError(`${csvPath} ${err.message}`, { line: err.line });
    throw err;
  }
  await classes.getClass(db, classId);
  const lineOf = new Map(members.map((m) => [m.email.toLowerCase(), m.line]));
  const taken: string[] = [];
  for (let i = 0; i < members.length; i += TAKEN_CHECK_BATCH) {
    taken.push(...(await users.findTakenEmails(db, members.slice(i, i + TAKEN_CHECK_BATCH).map((m) => m.email))));
  }
  if (taken.length > 0) {
    const shown = taken.slice(0, 20).map((e) => `${e} (line ${lineOf.get(e.toLowerCase())})`);
    throw new ValidationError(`${csvPath}: ${taken.length} email(s) already taken: ${shown.join(', ')}${taken.length > 20 ? ', …' : ''}; nothing was created`, {
      emails: taken.slice(0, 20),
    });
  }
  write(csvLine(['user_id', 'name', 'email', 'api_key']));
  let created = 0;
  for (let i = 0; i < members.length; i += classes.MEMBERS_PER_CALL_MAX) {
    const chunk = members.slice(i, i + classes.MEMBERS_PER_CALL_MAX);
    let added: classes.NewMember[];
    try {
      added = await classes.addMembers(db, classId, chunk);
    } catch (err) {
      const where = `lines ${chunk[0]!.line} to ${chunk[chunk.length - 1]!.line}`;
      const why = err instanceof AppError ? `${err.code}: ${err.message}` : String(err);
      throw new Error(`${csvPath} ${where} were refused (${why}); ${created} member(s) before them were created and printed`, { cause: err });
    }
    for (const m of added) write(csvLine([m.user.id, m.user.name, m.user.email, m.apiKey]));
    created += added.length;
  }
  return { created };
}
