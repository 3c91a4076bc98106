import { describe, expect, it } from 'vitest';
import { decodeQuote, encodeQuote } from './quote-store.redis.js';

describe('the Redis quote store encoding', () => {
  it('round-trips a quote exactly, with its touch or without one', () => {
    const bare = { ticker: 'AAPL', price: 1520000n, asOfMs: 1_700_000_000_000 };
    expect(encodeQuote(bare)).toBe('152.0000|1700000000000');
    expect(decodeQuote('AAPL', encodeQuote(bare))).toEqual(bare);
    const quoted = { ...bare, bid: 1519700n, ask: 1520300n, bidSize: 5_000_000_000n, askSize: 1_500_000n };
    expect(encodeQuote(quoted)).toBe('152.0000|1700000000000|151.9700|152.0300|5000|1.5');
    expect(decodeQuote('AAPL', encodeQuote(quoted))).toEqual(quoted);
  });

  it('reads a value written before quotes had sides as a quote without a touch', () => {
    expect(decodeQuote('AAPL', '152.0000|1700000000000')).toEqual({ ticker: 'AAPL', price: 1520000n, asOfMs: 1_700_000_000_000 });
  });

  it('reads an unreadable cache value as no price rather than failing', () => {
    for (const raw of [null, '', '152', 'abc|1700000000000', '152.0000|soon', '-1.0000|1', '1e3|1', '1.00001|1', '152|1|151|153', '152|1|151|153|x|1', '152|1|151|153|1|2|3']) {
      expect(decodeQuote('AAPL', raw), String(raw)).toBeUndefined();
    }
  });
});
