/**
 * The live stream's messages: what a client may send (parsed and checked here, without I/O)
 * and what the server sends besides events. Refusals are AppErrors, so a client gets the same
 * error body over the socket as over HTTP (`{ code, message, service, details? }`).
 *
 * Client → server (JSON text, one object per message; `id`, optional, is echoed in the reply):
 *   { "action": "auth", "token": "..." }
 *   { "action": "subscribe", "events": true, "since_seq": 120, "user_id": "...", "tickers": ["AAPL"] }
 *   { "action": "unsubscribe" }
 *   { "action": "ping" }
 * Server → client:
 *   { "channel": "events", "seq", "type", "at", "user_id", "data" }      (event-log.ts)
 *   { "channel": "prices", "ticker", "price", "as_of" }
 *   { "type": "authenticated" | "subscribed" | "unsubscribed" | "pong" | "error", ... }
 */
import { AppError, ValidationError } from '../../core/errors.js';
import { formatPrice, formatQty } from '../../core/money.js';
import type { Quote } from '../market-data/quote-store.js';
import { TICKER_INPUT_LENGTH_MAX } from '../market-data/instruments.js';

/** Codes the stream raises itself; each is in the HTTP status table already (src/http/errors.ts). */
export type LiveStreamErrorCode = 'UNAUTHENTICATED' | 'FORBIDDEN' | 'RATE_LIMITED' | 'SERVICE_UNAVAILABLE';

export class LiveStreamError extends AppError<LiveStreamErrorCode> {
  constructor(code: LiveStreamErrorCode, message: string, details?: Record<string, unknown>) {
    super('events', code, message, { details });
  }
}

/** Close codes (4000–4999 are the application's). */
export const CLOSE_AUTH_TIMEOUT = 4001;
export const CLOSE_AUTH_FAILED = 4003;
export const CLOSE_SLOW_CONSUMER = 4008;
/** RFC 6455: the endpoint is going away (the server shuts down). */
export const CLOSE_GOING_AWAY = 1001;
/** RFC 6455: try again later (the process is at its connection limit). */
export const CLOSE_TRY_AGAIN_LATER = 1013;

/** Longest token looked at; the HTTP edge takes the same (src/http/auth.ts). */
const TOKEN_RE = /^[\x21-\x7e]{1,256}$/;
const BEARER_RE = /^Bearer ([\x21-\x7e]{1,256})$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ID_LENGTH_MAX = 64;

/** A client's correlation id: echoed in the reply to its message. */
export type RequestId = string | number;

export type ClientMessage =
  | { action: 'auth'; id?: RequestId; token: string }
  | { action: 'subscribe'; id?: RequestId; subscription: SubscriptionRequest }
  | { action: 'unsubscribe'; id?: RequestId }
  | { action: 'ping'; id?: RequestId };

export interface SubscriptionRequest {
  events: boolean;
  /** Replay events after this seq; undefined: only events after the subscription's last seq. */
  sinceSeq: number | undefined;
  /** Lower-cased, as ids are issued. */
  userId: string | undefined;
  /** As the client wrote them (normalised and checked against the listed instruments later). */
  tickers: string[];
}

const FIELDS: Record<ClientMessage['action'], readonly string[]> = {
  auth: ['action', 'id', 'token'],
  subscribe: ['action', 'id', 'events', 'since_seq', 'user_id', 'tickers'],
  unsubscribe: ['action', 'id'],
  ping: ['action', 'id'],
};

/** The token of an `Authorization: Bearer <token>` header; undefined when it is malformed. */
export function bearerToken(header: string): string | undefined {
  return BEARER_RE.exec(header)?.[1];
}

/**
 * Parses one client message. Throws ValidationError (VALIDATION_FAILED) for anything that is
 * not one of the messages above, with the field at fault named; `id` is recovered whenever it
 * can be, so even a refusal can be matched to its request.
 */
export function parseClientMessage(text: string, tickersMax: number): ClientMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ValidationError('the message is not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValidationError('a message must be a JSON object');
  const body = raw as Record<string, unknown>;
  const action = body.action;
  if (typeof action !== 'string' || !Object.hasOwn(FIELDS, action)) {
    throw new ValidationError(`action must be one of: ${Object.keys(FIELDS).map((a) => JSON.stringify(a)).join(', ')}`, { field: 'action' });
  }
  const kind = action as ClientMessage['action'];
  for (const key of Object.keys(body)) {
    if (!FIELDS[kind].includes(key)) throw new ValidationError(`unknown field ${key} (allowed: ${FIELDS[kind].join(', ')})`, { field: key });
  }
  const id = parseId(body.id);
  switch (kind) {
    case 'auth': {
      if (typeof body.token !== 'string' || !TOKEN_RE.test(body.token)) {
        throw new ValidationError('token must be a string of 1 to 256 printable ASCII characters', { field: 'token' });
      }
      return { action: 'auth', id, token: body.token };
    }
    case 'subscribe':
      return { action: 'subscribe', id, subscription: parseSubscription(body, tickersMax) };
    case 'unsubscribe':
    case 'ping':
      return { action: kind, id };
  }
}

/** The `id` of a message that may be malformed: echoed on its error when it is usable. */
export function recoverId(text: string): RequestId | undefined {
  try {
    const raw = JSON.parse(text) as unknown;
    if (typeof raw !== 'object' || raw === null) return undefined;
    return parseId((raw as Record<string, unknown>).id);
  } catch {
    return undefined;
  }
}

function parseId(id: unknown): RequestId | undefined {
  if (id === undefined) return undefined;
  if ((typeof id === 'string' && id.length <= ID_LENGTH_MAX) || Number.isSafeInteger(id)) return id as RequestId;
  throw new ValidationError(`id must be a string of at most ${ID_LENGTH_MAX} characters or an integer`, { field: 'id' });
}

function parseSubscription(body: Record<string, unknown>, tickersMax: number): SubscriptionRequest {
  if (body.events !== undefined && typeof body.events !== 'boolean') throw new ValidationError('events must be a boolean', { field: 'events' });
  const events = body.events === true;
  let sinceSeq: number | undefined;
  if (body.since_seq !== undefined) {
    if (!Number.isSafeInteger(body.since_seq) || (body.since_seq as number) < 0) {
      throw new ValidationError('since_seq must be an integer, 0 or more (the seq of the last event received; 0 for the whole history)', { field: 'since_seq' });
    }
    if (!events) throw new ValidationError('since_seq goes with "events": true', { field: 'since_seq' });
    sinceSeq = body.since_seq as number;
  }
  let userId: string | undefined;
  if (body.user_id !== undefined) {
    if (typeof body.user_id !== 'string' || !UUID_RE.test(body.user_id)) {
      throw new ValidationError('user_id must be a UUID (8-4-4-4-12 hexadecimal digits)', { field: 'user_id' });
    }
    userId = body.user_id.toLowerCase();
  }
  const tickers: string[] = [];
  if (body.tickers !== undefined) {
    if (!Array.isArray(body.tickers)) throw new ValidationError('tickers must be an array of tickers', { field: 'tickers' });
    if (body.tickers.length > tickersMax) {
      throw new ValidationError(`tickers must have at most ${tickersMax} items`, { field: 'tickers', tickers_max: tickersMax });
    }
    for (const t of body.tickers) {
      if (typeof t !== 'string' || t.length === 0 || t.length > TICKER_INPUT_LENGTH_MAX) {
        throw new ValidationError(`each ticker must be a string of 1 to ${TICKER_INPUT_LENGTH_MAX} characters`, { field: 'tickers' });
      }
      tickers.push(t);
    }
  }
  return { events, sinceSeq, userId, tickers };
}

// ---------------------------------------------------------------------------------------------
// Server messages. Events are rendered by event-log.ts (streamEventJson); the rest here.
// ---------------------------------------------------------------------------------------------

/**
 * A price as the stream sends it, built once per tick and ticker whatever the audience: the last
 * price and, as every feed now publishes, the touch (bid, ask, bid_size, ask_size). A quote
 * stored before quotes had sides has no touch until its next tick, and is sent without one.
 */
export function priceJson(q: Quote): string {
  const touch =
    q.bid !== undefined && q.ask !== undefined && q.bidSize !== undefined && q.askSize !== undefined
      ? `,"bid":"${formatPrice(q.bid)}","ask":"${formatPrice(q.ask)}","bid_size":"${formatQty(q.bidSize)}","ask_size":"${formatQty(q.askSize)}"`
      : '';
  return `{"channel":"prices","ticker":${JSON.stringify(q.ticker)},"price":"${formatPrice(q.price)}"${touch},"as_of":"${new Date(q.asOfMs).toISOString()}"}`;
}

export function replyJson(type: string, id: RequestId | undefined, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ type, ...(id !== undefined ? { id } : {}), ...fields });
}

export function errorJson(id: RequestId | undefined, error: AppError | { code: string; message: string; service: string }): string {
  return replyJson('error', id, { error: error instanceof AppError ? error.toJSON() : error });
}
