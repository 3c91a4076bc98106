import { describe, expect, it } from 'vitest';
import { PRICE_CLOCK_SKEW_MS_MAX, quoteFreshness } from './market.js';

describe('the freshness rule', () => {
  const now = 1_800_000_000_000;
  it('takes a quote up to the maximum age, and one dated at most the skew allowance ahead', () => {
    expect(quoteFreshness(undefined, now, 5_000)).toBe('missing');
    expect(quoteFreshness(now - 5_000, now, 5_000)).toBe('fresh');
    expect(quoteFreshness(now - 5_001, now, 5_000)).toBe('stale');
    expect(quoteFreshness(now + PRICE_CLOCK_SKEW_MS_MAX, now, 5_000)).toBe('fresh');
    expect(quoteFreshness(now + PRICE_CLOCK_SKEW_MS_MAX + 1, now, 5_000)).toBe('future');
  });
});
