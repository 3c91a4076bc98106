import { describe, expect, it } from 'vitest';
import { isUuid, uuidv7 } from './ids.js';

describe('uuidv7', () => {
  it('gives RFC 9562 version-7 ids carrying the millisecond', () => {
    const id = uuidv7(1_795_000_000_123);
    expect(isUuid(id)).toBe(true);
    expect(id[14]).toBe('7');
    expect('89ab').toContain(id[19]);
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(1_795_000_000_123);
  });

  it('keeps ids strictly increasing and unique, within one millisecond and past the random pool', () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7(1_795_000_000_500));
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(uuidv7(1_795_000_000_000) > ids[ids.length - 1]!).toBe(true); // a clock step back does not reorder
  });
});
