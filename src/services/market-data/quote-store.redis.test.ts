import { describe, expect, it } from 'vitest';
import { decodeQuote, encodeQuote } from './quote-store.redis.js';

describe('the Redis quote store encoding', () => {
  it('round-trips a quote exactly', () => {
    expect(decodeQuote('AAPL', encodeQuote(1520000n, 1_700_000_000_000))).toEqual({ ticker: 'AAPL', price: 1520000n, asOfMs: 1_700_000_000_000 });
  });

  it('reads an unreadable cache value as no price rather than failing', () => {
    for (const raw of [null, '', '152', 'abc|1700000000000', '152.0000|soon', '-1.0000|1', '1e3|1', '1.00001|1']) {
      expect(decodeQuote('AAPL', raw), String(raw)).toBeUndefined();
    }
  });
});
