import { describe, expect, it } from 'vitest';
import { checkRoster, readRoster, validateNewUser } from './roster.js';

describe('checkRoster', () => {
  it('reads the members of a roster, columns in either order, names and emails trimmed', () => {
    expect(checkRoster('email,name\n ada@example.com , Ada Lovelace \n"b@example.com","Turing, Alan"\n')).toEqual({
      members: [
        { line: 2, name: 'Ada Lovelace', email: 'ada@example.com' },
        { line: 3, name: 'Turing, Alan', email: 'b@example.com' },
      ],
      problems: [],
    });
    expect(checkRoster('Name , EMAIL\n')).toEqual({ members: [], problems: [] });
  });

  it('collects every problem of every line, in line order, and keeps the good lines', () => {
    const text = 'name,email\nAda,ada@example.com\nBob\n,c@example.com\nDan,not-an-email\nEve,ADA@example.com\nFay,f@example.com\n';
    const roster = checkRoster(text);
    expect(roster.members.map((m) => m.line)).toEqual([2, 7]);
    expect(roster.problems).toEqual([
      { line: 3, message: 'expected 2 fields (name,email), found 1' },
      { line: 4, message: expect.stringMatching(/^name must be 1 to 200 characters/) },
      { line: 5, message: expect.stringMatching(/^email must be an address such as ada@example.com/) },
      { line: 6, message: 'the email ADA@example.com is also on line 2' },
    ]);
  });

  it('stops at a syntax error or a bad header: nothing after it can be trusted', () => {
    expect(checkRoster('')).toEqual({ members: [], problems: [{ line: 1, message: 'the file is empty; it needs a header line name,email' }] });
    expect(checkRoster('name,email,age\n')).toEqual({ members: [], problems: [{ line: 1, message: 'the header must be name,email (got name,email,age)' }] });
    expect(checkRoster('name,email\nAda,a@example.com\n"Bob,b@example.com\n')).toEqual({
      members: [],
      problems: [{ line: 3, message: 'a quoted field is not closed (a " is missing)' }],
    });
    expect(checkRoster('name,email\na,a@x\nb,b@x\n', { rowsMax: 2 }).problems).toEqual([{ line: 3, message: 'more than 2 records' }]);
  });

  it('throws the first problem with its line for the command line', () => {
    expect(() => readRoster('name,email\nAda,a@example.com\nBob,bad\nCy,\n')).toThrow(/^line 3: email must be an address/);
    expect(readRoster('name,email\nAda,a@example.com\n')).toEqual([{ line: 2, name: 'Ada', email: 'a@example.com' }]);
  });
});

describe('validateNewUser', () => {
  it('takes what POST /users takes and names the input in a refusal', () => {
    expect(validateNewUser({ name: '  Grace  ', email: ' g@h ' }, 'body')).toEqual({ name: 'Grace', email: 'g@h' });
    expect(() => validateNewUser({ name: 'a\u0007b', email: 'a@b' }, 'body.members[0]')).toThrow(/^body\.members\[0\]: name must be/);
    expect(() => validateNewUser({ name: 'x'.repeat(201), email: 'a@b' }, 'w')).toThrow(/name must be 1 to 200/);
    expect(() => validateNewUser({ name: 'Ada', email: 'a b@c' }, 'w')).toThrow(/email must be/);
    expect(() => validateNewUser({ name: 'Ada', email: 42 }, 'w')).toThrow(/email must be/);
  });
});
