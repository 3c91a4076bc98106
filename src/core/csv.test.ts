import { describe, expect, it } from 'vitest';
import { csvLine, parseCsv, utf8Length } from './csv.js';

describe('parseCsv', () => {
  it('reads plain and quoted fields, CRLF and LF, and names each record’s line', () => {
    const text = 'name,email\r\nAda,ada@example.com\n"Lovelace, Ada","a""b@example.com"\n';
    expect(parseCsv(text)).toEqual([
      { line: 1, fields: ['name', 'email'] },
      { line: 2, fields: ['Ada', 'ada@example.com'] },
      { line: 3, fields: ['Lovelace, Ada', 'a"b@example.com'] },
    ]);
  });

  it('keeps line breaks inside quotes and counts them for the lines after', () => {
    const records = parseCsv('a,b\n"two\nlines",x\nlast,y');
    expect(records).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['two\nlines', 'x'] },
      { line: 4, fields: ['last', 'y'] },
    ]);
  });

  it('ignores a byte order mark and blank lines, and keeps empty fields', () => {
    expect(parseCsv('\ufeffname,email\n\n,x@example.com\n\n')).toEqual([
      { line: 1, fields: ['name', 'email'] },
      { line: 3, fields: ['', 'x@example.com'] },
    ]);
  });

  it('refuses malformed quoting, naming the line', () => {
    expect(() => parseCsv('a,b\n"open,x\n')).toThrow(/^line 2: a quoted field is not closed/);
    expect(() => parseCsv('a,b\nx"y,z\n')).toThrow(/^line 2: a quote inside an unquoted field/);
    expect(() => parseCsv('a,b\n\n"x"y,z\n')).toThrow(/^line 3: characters after a closing quote/);
  });

  it('stays within its bounds', () => {
    expect(() => parseCsv('a\nb\nc\n', { rowsMax: 2 })).toThrow(/^line 3: more than 2 records/);
    expect(() => parseCsv('x'.repeat(11), { bytesMax: 10 })).toThrow(/larger than 10 bytes/);
  });

  it('reads back what csvLine writes', () => {
    const values = ['plain', 'with, comma', 'with "quotes"', 'two\nlines', ' edge ', ''];
    expect(parseCsv(csvLine(values))).toEqual([{ line: 1, fields: values }]);
  });

  it('bounds the text by its UTF-8 bytes, counted as Buffer.byteLength counts them', () => {
    const samples = ['', 'plain', 'café', '€', '😀', 'a\ud800b', '\udc00', 'x😀é€\n'];
    for (const s of samples) expect(utf8Length(s), JSON.stringify(s)).toBe(new TextEncoder().encode(s).length);
    // Four characters of three bytes each: 12 bytes, although the text is 4 units long.
    expect(() => parseCsv('€€€€', { bytesMax: 11 })).toThrow(/larger than 11 bytes/);
    expect(parseCsv('€€€€', { bytesMax: 12 })).toEqual([{ line: 1, fields: ['€€€€'] }]);
  });
});
