/**
 * The one place where errors become HTTP responses. Services throw their own AppErrors with
 * stable codes; this table gives each code its status. Anything unknown is a 500 that carries
 * only a request id (the full chain goes to the log), so internals never leak.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type CoreErrorCode, type ErrorJson } from '../core/errors.js';
import { isUnavailableError } from '../infra/unavailable.js';
import type { AlpacaErrorCode } from '../alpaca/alpaca.errors.js';
import type { AccountsErrorCode } from '../services/accounts/accounts.errors.js';
import type { ClassesErrorCode } from '../services/classes/classes.errors.js';
import type { EventsErrorCode } from '../services/events/events.errors.js';
import type { MarketDataErrorCode } from '../services/market-data/market-data.errors.js';
import type { OrdersErrorCode } from '../services/orders/orders.errors.js';
import type { PortfoliosErrorCode } from '../services/portfolios/portfolios.errors.js';
import type { ResetsErrorCode } from '../services/resets/resets.errors.js';
import type { TradingErrorCode } from '../services/trading/trading.errors.js';
import type { UsersErrorCode } from '../services/users/users.errors.js';

/** The codes the HTTP layer raises itself, as an HttpError or written raw. */
export type HttpErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'VALIDATION_FAILED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  // Written raw by the client-error handler (src/http/hardening.ts) before Fastify has a request.
  | 'REQUEST_TIMEOUT'
  | 'HEADERS_TOO_LARGE'
  // Written raw by sendError for a dependency that cannot be reached.
  | 'SERVICE_UNAVAILABLE';

/** Every code any layer raises: the table below must give each one, and only those, a status. */
export type ErrorCode =
  | CoreErrorCode
  | HttpErrorCode
  | AlpacaErrorCode
  | AccountsErrorCode
  | ClassesErrorCode
  | EventsErrorCode
  | MarketDataErrorCode
  | OrdersErrorCode
  | PortfoliosErrorCode
  | ResetsErrorCode
  | TradingErrorCode
  | UsersErrorCode;

export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  ACCOUNT_NOT_FOUND: 404,
  API_KEY_NOT_FOUND: 404,
  ORDER_NOT_FOUND: 404,
  CLASS_NOT_FOUND: 404,
  UNKNOWN_TICKER: 404,
  METHOD_NOT_ALLOWED: 405,
  EMAIL_TAKEN: 409,
  ORDER_NOT_CANCELABLE: 409,
  ORDER_NOT_REPLACEABLE: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  // The client's position is of another history; 409 like any state the request conflicts with.
  EVENTS_SEQ_AHEAD: 409,
  // Gone: what the client asked to replay was removed by retention.
  EVENTS_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INSUFFICIENT_FUNDS: 422,
  INSUFFICIENT_HOLDINGS: 422,
  ORDER_REJECTED: 422,
  NOTIONAL_TOO_SMALL: 422,
  CLASS_RULE_VIOLATED: 422,
  CLASS_CLOSED: 422,
  RATE_LIMITED: 429,
  // Written raw by the client-error handler (src/http/hardening.ts) before Fastify has a request.
  REQUEST_TIMEOUT: 408,
  HEADERS_TOO_LARGE: 431,
  PRICE_UNAVAILABLE: 503,
  // Only ever raised when the feed role starts with a bad FEED_REPLAY_FILE; never by a request.
  REPLAY_FILE_INVALID: 500,
  SERVICE_UNAVAILABLE: 503,
  // Retried inside the engine (a concurrent change); transient should it ever reach a client.
  EXECUTION_CONFLICT: 503,
  // The reset changed nothing: it lost to new orders of the account every time; retry.
  RESET_CONTENDED: 503,
};

/** The status for a code, or undefined for a code the table does not know (answered 500 INTERNAL). */
export function statusForCode(code: string): number | undefined {
  return Object.hasOwn(STATUS_BY_CODE, code) ? STATUS_BY_CODE[code as ErrorCode] : undefined;
}

export class HttpError extends AppError<HttpErrorCode> {
  constructor(code: HttpErrorCode, message: string, details?: Record<string, unknown>) {
    super('http', code, message, { details });
  }
}

export const unauthenticated = () => new HttpError('UNAUTHENTICATED', 'missing or invalid credentials');
export const forbidden = (message = 'these credentials may not act on this resource') =>
  new HttpError('FORBIDDEN', message);

/** One schema validation error as Ajv reports it (with `verbose`: its schema comes along). */
interface AjvError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: { description?: string; properties?: Record<string, unknown>; enum?: unknown[] };
}

/**
 * Says in words what a schema refused and what is allowed. Every input schema with a pattern
 * carries a description that completes "must be …" (src/http/schemas.ts), so no regular
 * expression ever reaches a message.
 */
export function describeValidationError(v: AjvError, context: string): string {
  const where = `${context}${v.instancePath ? v.instancePath.replace(/\//g, '.') : ''}`;
  const described = v.parentSchema?.description;
  const p = v.params;
  switch (v.keyword) {
    case 'required':
      return `${where === context ? context : where}: ${String(p.missingProperty)} is required`;
    case 'additionalProperties': {
      const allowed = Object.keys(v.parentSchema?.properties ?? {});
      return `${where}: unknown field ${String(p.additionalProperty)}${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`;
    }
    case 'pattern':
    case 'format':
    case 'anyOf':
      return described ? `${where} must be ${described}` : `${where} is not valid`;
    case 'const':
      return `${where} must be ${JSON.stringify(p.allowedValue)}`;
    case 'enum':
      return `${where} must be one of: ${((p.allowedValues as unknown[]) ?? []).map((a) => JSON.stringify(a)).join(', ')}`;
    case 'type':
      if (context === 'body' && where === 'body') return 'request body must be a JSON object';
      return `${where} must be ${p.type === 'object' ? 'an object' : p.type === 'array' ? 'an array' : `a ${String(p.type)}`}`;
    case 'minLength':
      return Number(p.limit) === 1 ? `${where} must not be empty` : `${where} must be at least ${String(p.limit)} characters`;
    case 'maxLength':
      return `${where} must be at most ${String(p.limit)} characters`;
    case 'minProperties': {
      const allowed = Object.keys(v.parentSchema?.properties ?? {});
      return `${where} must name at least ${String(p.limit)} field${Number(p.limit) === 1 ? '' : 's'}${allowed.length ? ` (of: ${allowed.join(', ')})` : ''}`;
    }
    case 'minItems':
      return `${where} must have at least ${String(p.limit)} item(s)`;
    case 'maxItems':
      return `${where} must have at most ${String(p.limit)} items`;
    default:
      return `${where} ${v.message ?? 'is not valid'}`;
  }
}

/** A schema's refusal as VALIDATION_FAILED, each problem in words; `context` names the part checked ("body", "body.orders.3"). */
export function validationFailure(reported: readonly object[], context: string): HttpError {
  const errors = reported as readonly AjvError[];
  // A union (anyOf) reports each branch's refusal and then its own: its description says it all.
  const unions = errors.filter((v) => v.keyword === 'anyOf').map((v) => v.schemaPath.replace(/\/anyOf$/, '/anyOf/'));
  const problems = errors
    .filter((v) => v.keyword === 'anyOf' || !unions.some((prefix) => v.schemaPath.startsWith(prefix)))
    .map((v) => describeValidationError(v, context));
  return new HttpError('VALIDATION_FAILED', problems.join('; '), { problems });
}

/** Errors of the framework's own checks (body parsing, limits) mapped to our codes. */
function fromFastifyError(err: FastifyError): AppError | undefined {
  if (err.validation) return validationFailure(err.validation as unknown as AjvError[], err.validationContext ?? 'body');
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError('PAYLOAD_TOO_LARGE', 'request body is larger than 1 MiB');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError('UNSUPPORTED_MEDIA_TYPE', 'request body must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HttpError('VALIDATION_FAILED', 'request body is empty');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError('VALIDATION_FAILED', 'content-length does not match the body');
    default:
      break;
  }
  // JSON syntax errors and forbidden prototype keys come from the JSON body parser as 400s.
  if (err.statusCode === 400 || err instanceof SyntaxError) {
    return new HttpError('VALIDATION_FAILED', 'request body is not valid JSON');
  }
  if (err.statusCode === 413) return new HttpError('PAYLOAD_TOO_LARGE', 'request body is larger than 1 MiB');
  if (err.statusCode === 415) return new HttpError('UNSUPPORTED_MEDIA_TYPE', 'request body must be application/json');
  return undefined;
}

/** What a thrown value is in our codes: an AppError, a framework refusal mapped to one, or undefined (a bug or an outage). */
export function toAppError(raw: unknown): AppError | undefined {
  return raw instanceof AppError ? raw : fromFastifyError(raw as FastifyError);
}

/**
 * The status and body a thrown value answers with: an AppError its code's status and its JSON
 * (a 5xx with the request id); an outage 503; anything else (a bug) 500 with nothing of its
 * internals. The one mapping, for whole responses (sendError) and for each result of a batch.
 */
export function errorAnswer(request: FastifyRequest, raw: unknown): { status: number; body: { error: ErrorJson & { request_id?: string } }; appError?: AppError } {
  const appError = toAppError(raw);
  if (appError) {
    const status = statusForCode(appError.code);
    if (status !== undefined) {
      if (status >= 500) request.log.warn({ err: raw, chain: appError.codeChain() }, 'dependency unavailable');
      const body: { error: ErrorJson & { request_id?: string } } = { error: appError.toJSON() };
      if (status >= 500) body.error.request_id = request.id;
      return { status, body, appError };
    }
  }
  if (isUnavailableError(raw)) {
    request.log.warn({ err: raw }, 'dependency unavailable');
    return {
      status: 503,
      body: { error: { code: 'SERVICE_UNAVAILABLE' satisfies HttpErrorCode, message: 'a dependency is unavailable, try again', service: 'http', request_id: request.id } },
    };
  }
  request.log.error({ err: raw }, 'unhandled error');
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error', service: 'http', request_id: request.id } } };
}

export function sendError(request: FastifyRequest, reply: FastifyReply, raw: unknown): FastifyReply {
  const { status, body, appError } = errorAnswer(request, raw);
  if (appError?.details?.retry_after_s !== undefined && (status === 429 || status === 503)) {
    void reply.header('retry-after', String(appError.details.retry_after_s));
  }
  return reply.status(status).send(body);
}
