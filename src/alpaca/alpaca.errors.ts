/**
 * Errors as Alpaca's Trading API answers them: `{ "code": 40310000, "message": "..." }` with
 * Alpaca's statuses (403 for buying power, 422 for an invalid order, 404, 401). The facade
 * raises no codes of its own beyond AlpacaError (a refusal of what Alpaca's API refuses that
 * papertrade's does not); everything else is the native service's error, translated here from
 * the native table (src/http/errors.ts) so that the two APIs can never disagree on what
 * happened. The native error rides along as `error`, with its cause chain, for a person
 * reading the response; an SDK reads `code` and `message`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorJson } from '../core/errors.js';
import { isUnavailableError } from '../infra/unavailable.js';
import { statusForCode, toAppError } from '../http/errors.js';

export type AlpacaErrorCode = 'VALIDATION_FAILED' | 'NOT_FOUND';

/** A request Alpaca's API refuses in its own terms (an unsupported order class, a setting papertrade fixes). */
export class AlpacaError extends AppError<AlpacaErrorCode> {
  constructor(code: AlpacaErrorCode, message: string, details?: Record<string, unknown>, cause?: AppError) {
    super('alpaca', code, message, { details, cause });
  }
}

/** Alpaca's error body. */
export interface AlpacaErrorBody {
  code: number;
  message: string;
  /** papertrade's own error (code, service, message, cause chain); absent on 5xx beyond a request id. */
  error?: ErrorJson & { request_id?: string };
}

/** Alpaca's phrases for the refusals bots match on, by the native code found in the chain. */
const PHRASES: Readonly<Record<string, { status: number; code: number; phrase: string }>> = {
  INSUFFICIENT_FUNDS: { status: 403, code: 40310000, phrase: 'insufficient buying power' },
  INSUFFICIENT_HOLDINGS: { status: 403, code: 40310000, phrase: 'insufficient qty available for order' },
  // A class's rule is a restriction of the account, which Alpaca answers 403 (like PDT protection).
  CLASS_RULE_VIOLATED: { status: 403, code: 40310000, phrase: 'order refused by the class rules' },
  CLASS_CLOSED: { status: 403, code: 40310000, phrase: 'trading is not allowed for this account now' },
};

/** Alpaca's status and code for a native status (what the native table gave the error). */
function byStatus(status: number): { status: number; code: number } {
  switch (status) {
    case 400:
      // Alpaca answers an invalid field of an order (or of a query) 422 with code 40010001.
      return { status: 422, code: 40010001 };
    case 401:
      return { status: 401, code: 40110000 };
    case 403:
      return { status: 403, code: 40310000 };
    case 404:
      return { status: 404, code: 40410000 };
    case 405:
      return { status: 405, code: 40510000 };
    // Alpaca answers a state conflict (not cancelable, not replaceable, a used client_order_id) 422.
    case 409:
    case 410:
    case 422:
      return { status: 422, code: 42210000 };
    case 413:
      return { status: 413, code: 41310000 };
    case 415:
      return { status: 415, code: 41510000 };
    case 429:
      return { status: 429, code: 42910000 };
    default:
      // 500 -> 50000000, 503 -> 50300000: Alpaca's codes are the status followed by five digits.
      return { status, code: status * 100_000 };
  }
}

/** Where in the chain Alpaca has a phrase for the refusal (the outermost such code). */
function phraseOf(err: AppError): (typeof PHRASES)[string] | undefined {
  for (let e: AppError | undefined = err; e; e = e.cause) {
    const found = PHRASES[e.code];
    if (found) return found;
  }
  return undefined;
}

/**
 * The status and body for any thrown value: an AppError (or a framework refusal) translated;
 * anything else a 500 that says nothing but its request id, as on the native API.
 */
export function alpacaErrorResponse(raw: unknown, requestId: string): { status: number; body: AlpacaErrorBody; retryAfterS?: unknown } {
  const appError = toAppError(raw);
  const nativeStatus = appError ? statusForCode(appError.code) : undefined;
  if (appError && nativeStatus !== undefined) {
    const phrase = phraseOf(appError);
    // A body that is not JSON at all is Alpaca's 400 ("request body format is invalid").
    const malformed = appError.code === 'VALIDATION_FAILED' && appError.message.startsWith('request body');
    const mapped = phrase ?? (malformed ? { status: 400, code: 40010000 } : byStatus(nativeStatus));
    const native: AlpacaErrorBody['error'] = nativeStatus >= 500 ? { ...appError.toJSON(), request_id: requestId } : appError.toJSON();
    const message = phrase ? `${phrase.phrase} (${appError.message})` : appError.message;
    return { status: mapped.status, body: { code: mapped.code, message, error: native }, retryAfterS: appError.details?.retry_after_s };
  }
  if (isUnavailableError(raw)) {
    return {
      status: 503,
      body: { code: 50300000, message: 'a dependency is unavailable, try again', error: { code: 'SERVICE_UNAVAILABLE', message: 'a dependency is unavailable, try again', service: 'http', request_id: requestId } },
    };
  }
  return { status: 500, body: { code: 50000000, message: 'internal server error', error: { code: 'INTERNAL', message: 'internal error', service: 'http', request_id: requestId } } };
}

/** The facade's error handler: Alpaca's shape for every refusal under /v2 and on /stream. */
export function sendAlpacaError(request: FastifyRequest, reply: FastifyReply, raw: unknown): FastifyReply {
  const { status, body, retryAfterS } = alpacaErrorResponse(raw, request.id);
  if (status >= 500) {
    if (status === 500 && !(raw instanceof AppError)) request.log.error({ err: raw }, 'unhandled error');
    else request.log.warn({ err: raw }, 'dependency unavailable');
  }
  if (retryAfterS !== undefined && (status === 429 || status === 503)) void reply.header('retry-after', String(retryAfterS));
  return reply.status(status).send(body);
}
