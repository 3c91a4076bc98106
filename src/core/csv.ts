/**
 * A small CSV reader and writer (RFC 4180): fields separated by commas, records by CRLF or LF,
 * a field in double quotes may hold commas, line breaks and doubled quotes (""). A byte order
 * mark at the start and blank lines are ignored. Bounded: the text it reads is at most
 * CSV_BYTES_MAX bytes of UTF-8 and CSV_ROWS_MAX records, and every error names the line it is on.
 *
 * Pure (no Buffer, no Node built-in): the command line (`papertrade class add-members`) and the
 * dashboard's roster upload read a file with this one parser, so both accept and refuse the same
 * text.
 */
export const CSV_BYTES_MAX = 10 * 1024 * 1024;
export const CSV_ROWS_MAX = 100_000;

export class CsvError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

export interface CsvRecord {
  /** The line the record starts on (1-based; a quoted line break makes a record span lines). */
  line: number;
  fields: string[];
}

/**
 * The length of `text` in UTF-8 bytes, as Buffer.byteLength counts it (a lone surrogate is the
 * 3 bytes of U+FFFD), counted on the UTF-16 code units so that it runs anywhere.
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A surrogate pair is one code point above U+FFFF: 4 bytes for both units.
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

/** Whether `text` is longer than `bytesMax` bytes of UTF-8, without counting when the answer is plain. */
function longerThan(text: string, bytesMax: number): boolean {
  // Every UTF-16 unit is 1 to 3 bytes (a pair is 4 for two), so the count is needed only between.
  if (text.length > bytesMax) return true;
  if (text.length * 3 <= bytesMax) return false;
  return utf8Length(text) > bytesMax;
}

/** Parses CSV text into records, refusing malformed quoting and anything past the bounds. */
export function parseCsv(text: string, limits: { rowsMax?: number; bytesMax?: number } = {}): CsvRecord[] {
  const rowsMax = limits.rowsMax ?? CSV_ROWS_MAX;
  const bytesMax = limits.bytesMax ?? CSV_BYTES_MAX;
  if (longerThan(text, bytesMax)) throw new CsvError(1, `the file is larger than ${bytesMax} bytes`);
  const records: CsvRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  while (i < text.length) {
    const start = line;
    const fields: string[] = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i += 1;
        for (;;) {
          if (i >= text.length) throw new CsvError(start, 'a quoted field is not closed (a " is missing)');
          const ch = text[i]!;
          if (ch === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i += 1;
            break;
          }
          if (ch === '\n') line += 1;
          field += ch;
          i += 1;
        }
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
          throw new CsvError(line, 'characters after a closing quote (quote the whole field, and double the quotes inside it)');
        }
      } else {
        const begin = i;
        while (i < text.length && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          if (text[i] === '"') throw new CsvError(line, 'a quote inside an unquoted field (quote the whole field, and double the quotes inside it)');
          i += 1;
        }
        field = text.slice(begin, i);
      }
      fields.push(field);
      if (text[i] === ',') {
        i += 1;
        continue;
      }
      break;
    }
    // The end of the record: CRLF, LF, a lone CR, or the end of the text.
    if (text[i] === '\r') i += 1;
    if (text[i] === '\n') i += 1;
    const blank = fields.length === 1 && fields[0] === '';
    if (!blank) {
      if (records.length >= rowsMax) throw new CsvError(start, `more than ${rowsMax} records`);
      records.push({ line: start, fields });
    }
    line += 1;
  }
  return records;
}

/** One field as CSV writes it: quoted when it holds a comma, a quote, a line break or edge spaces. */
export function csvField(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvLine(values: readonly string[]): string {
  return `${values.map(csvField).join(',')}\n`;
}
