import { describe, expect, it } from 'vitest';
import type { FastifyReply, FastifyRequest } from 'fastify';
import * as core from '../core/errors.js';
import { AppError, ValidationError } from '../core/errors.js';
import * as accounts from '../services/accounts/accounts.errors.js';
import * as classes from '../services/classes/classes.errors.js';
import * as events from '../services/events/events.errors.js';
import * as liveProtocol from '../services/events/live-protocol.js';
import * as marketData from '../services/market-data/market-data.errors.js';
import * as orders from '../services/orders/orders.errors.js';
import * as portfolios from '../services/portfolios/portfolios.errors.js';
import * as resets from '../services/resets/resets.errors.js';
import * as trading from '../services/trading/trading.errors.js';
import * as users from '../services/users/users.errors.js';
import * as http from './errors.js';
import { HttpError, sendError, STATUS_BY_CODE, statusForCode } from './errors.js';

/** One of each error class, built as its callers build it. */
const INSTANCES: AppError[] = [
  new ValidationError('amount must be greater than zero', { field: 'amount' }),
  new accounts.AccountNotFoundError('u-1'),
  new accounts.InsufficientFundsError('u-1', '100.00', '12.34'),
  new accounts.InsufficientFundsError('u-1', '100.00', undefined),
  new accounts.IdempotencyKeyReusedError('key-1'),
  new classes.ClassNotFoundError('c-1'),
  new classes.ClassRuleViolatedError('c-1', { rule: 'tickers', message: 'rule tickers: NOPE is not traded in this class', details: { rule: 'tickers' } }),
  new classes.ClassClosedError('c-1', new Date('2026-01-01T00:00:00Z'), null, new Date('2025-12-31T00:00:00Z')),
  new events.EventsExpiredError('u-1', 3, 120, 30),
  new events.EventsSeqAheadError('u-1', 500, 120),
  new liveProtocol.LiveStreamError('FORBIDDEN', 'a user key follows its own events only'),
  new marketData.UnknownTickerError('NOPE'),
  new marketData.PriceUnavailableError('AAPL', 'no_price'),
  new marketData.PriceUnavailableError('AAPL', 'stale', 90_000),
  new marketData.PriceUnavailableError('AAPL', 'future', -5_000),
  new marketData.ReplayFileInvalidError('replay file line 3: bad price', { line: 3 }),
  new orders.OrderRejectedError(new accounts.InsufficientFundsError('u-1', '100.00', '12.34')),
  new orders.OrderNotFoundError('o-1'),
  new orders.OrderNotCancelableError('o-1', 'filled'),
  new orders.OrderNotReplaceableError('o-1', 'FILLED', 'limit'),
  new orders.IdempotencyKeyReusedError('client-1'),
  new orders.NotionalTooSmallError({ ticker: 'AAPL', quantity: '0.000001', price: '190.0000', value: '0.00', minimum: '1.00' }),
  new orders.AcceptQueueFullError(1_000),
  new portfolios.InsufficientHoldingsError('u-1', 'AAPL', '2.000000', '1.000000'),
  new trading.ExecutionConflictError('o-1'),
  new resets.ResetRetriesExhaustedError('u-1', 5),
  new users.UserNotFoundError('u-1'),
  new users.EmailTakenError('a@example.com'),
  new users.ApiKeyNotFoundError('k-1'),
  new HttpError('UNAUTHENTICATED', 'missing or invalid credentials'),
  new HttpError('RATE_LIMITED', 'slow down', { retry_after_s: 7 }),
  http.unauthenticated(),
  http.forbidden(),
];

type ErrorClass = abstract new (...args: never[]) => AppError;

/** Every AppError subclass a module exports. */
function errorClasses(module: Record<string, unknown>): ErrorClass[] {
  return Object.values(module).filter(
    (value): value is ErrorClass => typeof value === 'function' && value.prototype instanceof AppError,
  );
}

interface Sent {
  status?: number;
  body?: { error: Record<string, unknown> };
  headers: Record<string, string>;
  logged: unknown[];
}

/** Just enough of a request and a reply for sendError, recording what it does. */
function exchange(raw: unknown): Sent {
  const sent: Sent = { headers: {}, logged: [] };
  const log = (...args: unknown[]) => void sent.logged.push(args);
  const request = { id: 'req-42', log: { warn: log, error: log } } as unknown as FastifyRequest;
  const reply = {
    status(code: number) {
      sent.status = code;
      return this;
    },
    send(body: Sent['body']) {
      sent.body = body;
      return this;
    },
    header(name: string, value: string) {
      sent.headers[name] = value;
      return this;
    },
  } as unknown as FastifyReply;
  sendError(request, reply, raw);
  return sent;
}

describe('the status table', () => {
  it('gives every code a client or server error status', () => {
    const entries = Object.entries(STATUS_BY_CODE);
    expect(entries.length).toBeGreaterThan(0);
    for (const [code, status] of entries) {
      expect(Number.isInteger(status), code).toBe(true);
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThanOrEqual(599);
    }
  });

  it('knows the code of every error class the services export', () => {
    for (const error of INSTANCES) {
      expect(error).toBeInstanceOf(AppError);
      expect(error.name).toBe(error.constructor.name);
      expect(Object.keys(STATUS_BY_CODE), `${error.name} raises ${error.code}`).toContain(error.code);
      expect(statusForCode(error.code)).toBe(STATUS_BY_CODE[error.code as keyof typeof STATUS_BY_CODE]);
    }
  });

  it('has an instance above of every exported error class (a new class needs one)', () => {
    const exported = [core, accounts, classes, events, liveProtocol, marketData, orders, portfolios, resets, trading, users, http].flatMap(errorClasses);
    const built = new Set<unknown>(INSTANCES.map((error) => error.constructor));
    for (const cls of exported) expect(built.has(cls), cls.name).toBe(true);
    expect(new Set(exported).size).toBe(built.size);
  });

  it('does not take inherited object keys for codes', () => {
    expect(statusForCode('toString')).toBeUndefined();
    expect(statusForCode('constructor')).toBeUndefined();
    expect(statusForCode('NO_SUCH_CODE')).toBeUndefined();
  });

  it('keeps the chain of causes in codeChain and toJSON', () => {
    const rejected = new orders.OrderRejectedError(new accounts.InsufficientFundsError('u-1', '100.00', '12.34'));
    expect(rejected.codeChain()).toEqual(['ORDER_REJECTED', 'INSUFFICIENT_FUNDS']);
    expect(rejected.toJSON()).toEqual({
      code: 'ORDER_REJECTED',
      message: 'order rejected: available cash 12.34 below the 100.00 required',
      service: 'orders',
      cause: {
        code: 'INSUFFICIENT_FUNDS',
        message: 'available cash 12.34 below the 100.00 required',
        service: 'accounts',
        details: { user_id: 'u-1', requested: '100.00', available: '12.34' },
      },
    });
  });
});

describe('sendError', () => {
  it('answers a refusal with its status and its error, without a request id', () => {
    const sent = exchange(new orders.OrderNotFoundError('o-1'));
    expect(sent.status).toBe(404);
    expect(sent.body).toEqual({ error: { code: 'ORDER_NOT_FOUND', message: 'no order o-1', service: 'orders', details: { order_id: 'o-1' } } });
  });

  it('answers an error it does not know with a 500 that carries only a request id', () => {
    const secret = new Error('password authentication failed for user "papertrade"');
    const sent = exchange(secret);
    expect(sent.status).toBe(500);
    expect(sent.body).toEqual({ error: { code: 'INTERNAL', message: 'internal error', service: 'http', request_id: 'req-42' } });
    expect(JSON.stringify(sent.body)).not.toContain('password');
    expect(sent.logged.length).toBe(1);
  });

  it('answers an AppError with a code outside the table as that same 500', () => {
    const sent = exchange(new AppError('somewhere', 'NOT_IN_THE_TABLE', 'internal detail', { details: { secret: 1 } }));
    expect(sent.status).toBe(500);
    expect(sent.body).toEqual({ error: { code: 'INTERNAL', message: 'internal error', service: 'http', request_id: 'req-42' } });
  });

  it('answers an unreachable dependency with a 503 that carries only a request id', () => {
    const sent = exchange(Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:5432'), { code: 'ECONNREFUSED' }));
    expect(sent.status).toBe(503);
    expect(sent.body).toEqual({
      error: { code: 'SERVICE_UNAVAILABLE', message: 'a dependency is unavailable, try again', service: 'http', request_id: 'req-42' },
    });
  });

  it('adds the request id and Retry-After to a mapped 5xx', () => {
    const sent = exchange(new orders.AcceptQueueFullError(1_000));
    expect(sent.status).toBe(503);
    expect(sent.body?.error.code).toBe('SERVICE_UNAVAILABLE');
    expect(sent.body?.error.request_id).toBe('req-42');
    expect(sent.headers['retry-after']).toBe('1');
  });

  it('sends Retry-After with a rate limit', () => {
    const sent = exchange(new HttpError('RATE_LIMITED', 'slow down', { retry_after_s: 7 }));
    expect(sent.status).toBe(429);
    expect(sent.headers['retry-after']).toBe('7');
    expect(sent.body?.error.request_id).toBeUndefined();
  });
});
