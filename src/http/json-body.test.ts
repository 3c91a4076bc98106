import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ValidationError } from '../core/errors.js';
import { parseJsonBody } from './json-body.js';

function refusal(text: string): string {
  try {
    parseJsonBody(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${text}`);
}

describe('the JSON body parser', () => {
  it('reads plain JSON, numbers and strings as written', () => {
    expect(parseJsonBody('{"amount": 10.50, "quantity": "0.000005", "n": -3, "z": 0}')).toEqual({
      amount: 10.5,
      quantity: '0.000005',
      n: -3,
      z: 0,
    });
    expect(parseJsonBody('')).toBeUndefined();
    expect(parseJsonBody('  \n')).toBeUndefined();
  });

  it('takes only JSON whitespace as an empty body: other Unicode spaces are not JSON, and are refused', () => {
    expect(parseJsonBody(' \t\r\n')).toBeUndefined();
    // String.prototype.trim() removes these too; a body of one of them once counted as no body,
    // so POST /users/{id}/api-keys with it created a key (found by the hostile-input suite).
    for (const body of ['\u00a0', '\ufeff', '\u2028', '\u3000', ' \u000b ']) {
      expect(refusal(body), JSON.stringify(body)).toMatch(/^request body is not valid JSON/);
    }
  });

  it('refuses a number with an exponent and says how to write it', () => {
    expect(refusal('{"amount": 1e3}')).toBe('numbers must be plain decimals: 1e3 has an exponent (write 1000)');
    expect(refusal('{"quantity": 1E3}')).toContain('1E3 has an exponent');
    expect(refusal('{"q": 2.5e-7}')).toContain('(write 0.00000025)');
    expect(refusal('[1e400]')).toBe('numbers must be plain decimals: 1e400 has an exponent');
  });

  it('refuses a number a double cannot hold exactly, and suggests a string', () => {
    expect(refusal('{"amount": 0.30000000000000001}')).toBe(
      'the number 0.30000000000000001 cannot be read exactly from JSON; send it as a string ("0.30000000000000001")',
    );
    expect(refusal('{"quantity": 9007199254740993}')).toContain('9007199254740993');
  });

  it('leaves digits inside strings alone, escaped quotes included', () => {
    expect(parseJsonBody('{"name": "1e3 \\" 0.30000000000000001", "x": 1}')).toEqual({ name: '1e3 " 0.30000000000000001', x: 1 });
  });

  it('refuses prototype keys in words', () => {
    expect(refusal('{"__proto__": {"admin": true}}')).toBe('request body must not contain the keys __proto__ or constructor.prototype');
    expect(refusal('{"constructor": {"prototype": {"x": 1}}}')).toContain('constructor.prototype');
  });

  it('says where malformed JSON breaks', () => {
    expect(refusal('{"amount": }')).toMatch(/^request body is not valid JSON \(.+\)$/);
    expect(refusal('{"a": 1.2.3}')).toMatch(/^request body is not valid JSON/);
  });

  it('accepts every number whose shortest form is its own text (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }), fc.integer({ min: 0, max: 9999 }), (whole, frac) => {
        const text = `${whole}.${String(frac).padStart(4, '0')}`;
        const value = Number(text);
        // Every value up to 15 significant digits round-trips, so it is accepted as written.
        expect(parseJsonBody(`{"v": ${text}}`)).toEqual({ v: value });
      }),
    );
  });
});
