/**
 * The JSON body parser of the API. It is JSON.parse with three rules a money API needs and the
 * framework's parser does not have:
 *
 * - A JSON number must mean exactly what it says. `1e3` is refused (write 1000), and so is any
 *   number a double cannot hold digit for digit (`0.30000000000000001`, 2^53 + 1): parsing it
 *   would silently change the amount. Such values go in strings ("0.30000000000000001"), where
 *   the money module reads every digit.
 * - Prototype keys (`__proto__`, `constructor.prototype`) are refused with a message that says so
 *   (secure-json-parse, as Fastify's own parser uses).
 * - Every refusal says in words what is wrong, as a VALIDATION_FAILED error.
 *
 * The number scan is one pass over the text, outside strings only; bodies are at most 1 MiB.
 */
import sjson from 'secure-json-parse';
import { ValidationError } from '../core/errors.js';

/** Reads a request body; throws ValidationError (400) for anything that is not exact JSON. */
export function parseJsonBody(text: string): unknown {
  // Only JSON's own whitespace (RFC 8259: space, tab, LF, CR) makes an empty body; trim() would
  // also take U+00A0, U+FEFF, U+2028 and the like, which are not JSON and must be refused.
  if (JSON_WHITESPACE_ONLY.test(text)) return undefined;
  checkNumbers(text);
  try {
    return sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    const message = (err as Error).message ?? '';
    if (/prototype/i.test(message)) {
      throw new ValidationError('request body must not contain the keys __proto__ or constructor.prototype');
    }
    throw new ValidationError(`request body is not valid JSON (${message.replace(/^JSON\.parse: /, '')})`);
  }
}

const JSON_WHITESPACE_ONLY = /^[ \t\n\r]*$/;

const isDigit = (c: number) => c >= 48 && c <= 57;

/** Throws for a number token written with an exponent, or one a double cannot represent exactly. */
export function checkNumbers(text: string): void {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      continue;
    }
    if (c !== 45 /* - */ && !isDigit(c)) continue;
    let end = i + 1;
    while (end < text.length && /[0-9.eE+-]/.test(text[end]!)) end++;
    checkNumberToken(text.slice(i, end));
    i = end - 1;
  }
}

function checkNumberToken(token: string): void {
  if (/[eE]/.test(token)) {
    const value = Number(token);
    const plain = Number.isFinite(value) && Math.abs(value) < 1e21 ? ` (write ${plainDecimal(value)})` : '';
    throw new ValidationError(`numbers must be plain decimals: ${token} has an exponent${plain}`);
  }
  // Malformed tokens (1.2.3, --1) are left to JSON.parse, which reports where they are.
  if (!/^-?(0|[1-9]\d*)(\.\d+)?$/.test(token)) return;
  if (normalize(String(Number(token))) !== normalize(token)) {
    throw new ValidationError(
      `the number ${token.length > 40 ? `${token.slice(0, 40)}…` : token} cannot be read exactly from JSON; send it as a string ("${
        token.length > 40 ? `${token.slice(0, 40)}…` : token
      }")`,
    );
  }
}

/** Drops a fraction's trailing zeros (and a bare dot) and the sign of zero: 10.50 → 10.5, -0 → 0. */
function normalize(decimal: string): string {
  const trimmed = decimal.includes('.') ? decimal.replace(/0+$/, '').replace(/\.$/, '') : decimal;
  return trimmed === '-0' ? '0' : trimmed;
}

/** A double below 1e21 without exponent notation, for the hint in a message. */
function plainDecimal(value: number): string {
  const text = String(value);
  if (!/e/i.test(text)) return text;
  // Tiny values (1e-7): toLocaleString would group digits; build the fraction by hand.
  const [mantissa = '0', exponent = '0'] = text.split(/e/i);
  const digits = mantissa.replace('-', '').replace('.', '');
  const shift = Number(exponent) + (mantissa.replace('-', '').split('.')[0]?.length ?? 1);
  const sign = value < 0 ? '-' : '';
  return shift <= 0 ? `${sign}0.${'0'.repeat(-shift)}${digits}` : `${sign}${digits.padEnd(shift, '0')}`;
}
