import { describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.js';
import { bearerToken, errorJson, parseClientMessage, priceJson, recoverId, replyJson } from './live-protocol.js';
import { LIVE_STREAM_DEFAULTS, liveStreamOptions } from './live-stream.js';

const parse = (message: unknown, tickersMax = 3) => parseClientMessage(typeof message === 'string' ? message : JSON.stringify(message), tickersMax);

function refusal(message: unknown): { code: string; message: string; details?: Record<string, unknown> } {
  try {
    parse(message);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return (err as AppError).toJSON();
  }
  throw new Error(`accepted ${JSON.stringify(message)}`);
}

describe('parseClientMessage', () => {
  it('reads each action with its fields', () => {
    expect(parse({ action: 'auth', token: 'ptk_abc', id: 7 })).toEqual({ action: 'auth', id: 7, token: 'ptk_abc' });
    expect(parse({ action: 'ping' })).toEqual({ action: 'ping', id: undefined });
    expect(parse({ action: 'unsubscribe', id: 'u' })).toEqual({ action: 'unsubscribe', id: 'u' });
    expect(parse({ action: 'subscribe', events: true, since_seq: 120, tickers: ['aapl'], user_id: '0190A2B4-0000-7000-8000-00000000000A' })).toEqual({
      action: 'subscribe',
      id: undefined,
      subscription: { events: true, sinceSeq: 120, tickers: ['aapl'], userId: '0190a2b4-0000-7000-8000-00000000000a' },
    });
    expect(parse({ action: 'subscribe' })).toMatchObject({ subscription: { events: false, sinceSeq: undefined, userId: undefined, tickers: [] } });
    expect(parse({ action: 'subscribe', events: true, since_seq: 0 })).toMatchObject({ subscription: { sinceSeq: 0 } });
  });

  it('refuses what is not a message, naming the field at fault', () => {
    expect(refusal('{nope').message).toBe('the message is not valid JSON');
    expect(refusal('null').message).toBe('a message must be a JSON object');
    expect(refusal([1]).message).toBe('a message must be a JSON object');
    expect(refusal({ token: 'x' }).details).toEqual({ field: 'action' });
    expect(refusal({ action: 'toString' }).details).toEqual({ field: 'action' });
    expect(refusal({ action: 'ping', extra: 1 }).message).toMatch(/unknown field extra/);
    expect(refusal({ action: 'ping', id: { a: 1 } }).details).toEqual({ field: 'id' });
    expect(refusal({ action: 'ping', id: 'x'.repeat(65) }).details).toEqual({ field: 'id' });
    expect(refusal({ action: 'auth' }).details).toEqual({ field: 'token' });
    expect(refusal({ action: 'auth', token: 'with space' }).details).toEqual({ field: 'token' });
    expect(refusal({ action: 'auth', token: 'x'.repeat(257) }).details).toEqual({ field: 'token' });
    expect(refusal({ action: 'subscribe', events: 1 }).details).toEqual({ field: 'events' });
    for (const since of [-1, 1.5, '3', 2 ** 53]) expect(refusal({ action: 'subscribe', events: true, since_seq: since }).details).toEqual({ field: 'since_seq' });
    expect(refusal({ action: 'subscribe', since_seq: 3 }).message).toMatch(/goes with "events": true/);
    expect(refusal({ action: 'subscribe', user_id: 'abc' }).details).toEqual({ field: 'user_id' });
    expect(refusal({ action: 'subscribe', tickers: 'AAPL' }).details).toEqual({ field: 'tickers' });
    expect(refusal({ action: 'subscribe', tickers: ['A', 'B', 'C', 'D'] }).details).toEqual({ field: 'tickers', tickers_max: 3 });
    expect(refusal({ action: 'subscribe', tickers: [''] }).details).toEqual({ field: 'tickers' });
    expect(refusal({ action: 'subscribe', tickers: [42] }).details).toEqual({ field: 'tickers' });
    expect(refusal({ action: 'subscribe', tickers: ['X'.repeat(33)] }).details).toEqual({ field: 'tickers' });
    for (const r of [refusal('{nope'), refusal({ action: 'auth' })]) expect(r.code).toBe('VALIDATION_FAILED');
  });

  it('keeps a __proto__ key an unknown field, never a prototype', () => {
    expect(refusal('{"action":"ping","__proto__":{"admin":true}}').message).toMatch(/unknown field __proto__/);
  });
});

describe('recoverId', () => {
  it('finds a usable id even in a refused message, and nothing in junk', () => {
    expect(recoverId('{"action":"dance","id":"a"}')).toBe('a');
    expect(recoverId('{"id":3}')).toBe(3);
    expect(recoverId('not json')).toBeUndefined();
    expect(recoverId('{"id":{"x":1}}')).toBeUndefined();
  });
});

describe('bearerToken', () => {
  it('takes the token of a well-formed header only', () => {
    expect(bearerToken('Bearer ptk_abc')).toBe('ptk_abc');
    expect(bearerToken('bearer ptk_abc')).toBeUndefined();
    expect(bearerToken('Basic dXNlcg==')).toBeUndefined();
    expect(bearerToken('Bearer ')).toBeUndefined();
  });
});

describe('server messages', () => {
  it('renders a price as a decimal string with an ISO time', () => {
    expect(JSON.parse(priceJson({ ticker: 'AAPL', price: 1_502_500n, asOfMs: Date.UTC(2026, 0, 2, 14, 30) }))).toEqual({
      channel: 'prices',
      ticker: 'AAPL',
      price: '150.2500',
      as_of: '2026-01-02T14:30:00.000Z',
    });
  });

  it('renders the touch with the price when the quote has one', () => {
    const q = { ticker: 'AAPL', price: 1_502_500n, asOfMs: Date.UTC(2026, 0, 2, 14, 30), bid: 1_502_300n, ask: 1_502_700n, bidSize: 5_000_000_000n, askSize: 12_000_000_000n };
    expect(JSON.parse(priceJson(q))).toEqual({ channel: 'prices', ticker: 'AAPL', price: '150.2500', bid: '150.2300', ask: '150.2700', bid_size: '5000', ask_size: '12000', as_of: '2026-01-02T14:30:00.000Z' });
  });

  it('echoes the id and carries errors in the HTTP envelope', () => {
    expect(JSON.parse(replyJson('pong', 'p'))).toEqual({ type: 'pong', id: 'p' });
    expect(JSON.parse(replyJson('pong', undefined))).toEqual({ type: 'pong' });
    const err = new AppError('events', 'FORBIDDEN', 'no', { details: { user_id: 'u' } });
    expect(JSON.parse(errorJson(1, err))).toEqual({ type: 'error', id: 1, error: { code: 'FORBIDDEN', message: 'no', service: 'events', details: { user_id: 'u' } } });
  });
});

describe('liveStreamOptions', () => {
  it('applies overrides, and keeps the pacing marks below a shrunk buffer limit', () => {
    expect(liveStreamOptions()).toEqual(LIVE_STREAM_DEFAULTS);
    const small = liveStreamOptions({ sendBufferBytesMax: 32 * 1024 });
    expect(small.replayPauseBytes).toBe(8 * 1024);
    expect(small.priceHoldBytes).toBe(2 * 1024);
    expect(liveStreamOptions({ authTimeoutMs: 50 }).authTimeoutMs).toBe(50);
  });

  it('refuses options that cannot work', () => {
    expect(() => liveStreamOptions({ pingIntervalMs: 0 })).toThrow(RangeError);
    expect(() => liveStreamOptions({ replayPageSize: 5_000 })).toThrow(RangeError);
    expect(() => liveStreamOptions({ sendBufferBytesMax: 1_000, replayPauseBytes: 2_000 })).toThrow(RangeError);
  });
});
