/**
 * A class roster: the CSV a teacher gives to create members (a header line `name,email`, the two
 * columns in either order, then one member a line). The command line (`papertrade class
 * add-members`) and the dashboard read it here, so both check a file line by line in the same
 * words before anything is created: the CSV syntax, the number of fields, each name and email
 * (the rules of POST /users), and an email given twice in the file.
 *
 * Pure: it imports only core modules, so it runs in Node and in the browser alike.
 */
import { CsvError, parseCsv } from './csv.js';
import { ValidationError } from './errors.js';

/** A new user's name and email as POST /users takes them (the same rules for every way in). */
export const USER_NAME_LENGTH_MAX = 200;
export const USER_EMAIL_LENGTH_MAX = 320;
const NAME_RE = /^[^\S\p{Cc}]*[^\s\p{Cc}\p{Cs}][^\p{Cc}\p{Cs}]*$/u;
const EMAIL_RE = /^[^\s@\p{Cc}\p{Cs}]+@[^\s@\p{Cc}\p{Cs}]+$/u;

/**
 * Checks a new user's name and email (trimmed): a name of 1 to 200 characters with a visible
 * one and no control characters, an email like ada@example.com of 3 to 320 characters. `where`
 * names the input in the refusal (a request field, or a line of a CSV file). The users service
 * exports this very function, so the API applies it to every user and member it creates.
 */
export function validateNewUser(input: { name: unknown; email: unknown }, where: string): { name: string; email: string } {
  const name = typeof input.name === 'string' ? input.name.trim() : undefined;
  if (name === undefined || name.length === 0 || name.length > USER_NAME_LENGTH_MAX || !NAME_RE.test(name)) {
    throw new ValidationError(`${where}: name must be 1 to ${USER_NAME_LENGTH_MAX} characters with at least one visible character and no control characters`, { field: `${where}.name` });
  }
  const email = typeof input.email === 'string' ? input.email.trim() : undefined;
  if (email === undefined || email.length < 3 || email.length > USER_EMAIL_LENGTH_MAX || !EMAIL_RE.test(email)) {
    throw new ValidationError(`${where}: email must be an address such as ada@example.com of 3 to ${USER_EMAIL_LENGTH_MAX} characters, without spaces or control characters`, { field: `${where}.email` });
  }
  return { name, email };
}

/** A member as a line of the roster gives it (name and email trimmed). */
export interface RosterMember {
  line: number;
  name: string;
  email: string;
}

/** What is wrong with one line, in words (`message` does not repeat the line). */
export interface RosterProblem {
  line: number;
  message: string;
}

/** Every member the roster gives, and every problem found in it, both in line order. */
export interface Roster {
  members: RosterMember[];
  problems: RosterProblem[];
}

/**
 * Reads a roster and checks every line, collecting every problem rather than stopping at the
 * first, so a teacher can fix the whole file at once. A CSV syntax error (an unclosed quote) or
 * a bad header does stop the reading: the lines after it cannot be told apart reliably, so that
 * one problem is the only one reported and no member is given.
 */
export function checkRoster(text: string, limits: { rowsMax?: number; bytesMax?: number } = {}): Roster {
  let records;
  try {
    records = parseCsv(text, limits);
  } catch (err) {
    if (err instanceof CsvError) return { members: [], problems: [{ line: err.line, message: err.message.replace(/^line \d+: /, '') }] };
    throw err;
  }
  const header = records[0];
  if (!header) return { members: [], problems: [{ line: 1, message: 'the file is empty; it needs a header line name,email' }] };
  const columns = header.fields.map((f) => f.trim().toLowerCase());
  const nameAt = columns.indexOf('name');
  const emailAt = columns.indexOf('email');
  if (columns.length !== 2 || nameAt < 0 || emailAt < 0) {
    return { members: [], problems: [{ line: header.line, message: `the header must be name,email (got ${header.fields.join(',').slice(0, 200)})` }] };
  }
  const members: RosterMember[] = [];
  const problems: RosterProblem[] = [];
  const firstLineOf = new Map<string, number>();
  for (const r of records.slice(1)) {
    if (r.fields.length !== 2) {
      problems.push({ line: r.line, message: `expected 2 fields (name,email), found ${r.fields.length}` });
      continue;
    }
    let member: { name: string; email: string };
    try {
      member = validateNewUser({ name: r.fields[nameAt], email: r.fields[emailAt] }, `line ${r.line}`);
    } catch (err) {
      if (err instanceof ValidationError) {
        problems.push({ line: r.line, message: err.message.replace(/^line \d+: /, '') });
        continue;
      }
      throw err;
    }
    const lower = member.email.toLowerCase();
    const earlier = firstLineOf.get(lower);
    if (earlier !== undefined) {
      problems.push({ line: r.line, message: `the email ${member.email} is also on line ${earlier}` });
      continue;
    }
    firstLineOf.set(lower, r.line);
    members.push({ line: r.line, ...member });
  }
  return { members, problems };
}

/** The roster's members, or its first problem thrown as a CsvError naming its line (the command line's way). */
export function readRoster(text: string, limits: { rowsMax?: number; bytesMax?: number } = {}): RosterMember[] {
  const { members, problems } = checkRoster(text, limits);
  const first = problems[0];
  if (first) throw new CsvError(first.line, first.message);
  return members;
}
