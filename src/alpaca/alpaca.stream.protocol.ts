/**
 * The messages of Alpaca's trading stream (`GET /stream`), as Alpaca documents them
 * (https://docs.alpaca.markets/docs/websocket-streaming), parsed and rendered without I/O.
 *
 * Client → server (JSON, as text or binary frames):
 *   { "action": "authenticate", "data": { "key_id": "...", "secret_key": "..." } }
 *   { "action": "auth", "key": "...", "secret": "..." }                 (the newer documented form)
 *   { "action": "listen", "data": { "streams": ["trade_updates"], "since_seq": 41 } }
 *     (since_seq is papertrade's: replay the trade updates after that seq, then follow live)
 * Server → client (always binary frames, as Alpaca's paper stream sends them):
 *   { "stream": "authorization", "data": { "action": "authenticate" | "listen", "status": "authorized" | "unauthorized" } }
 *   { "stream": "listening", "data": { "streams": [...], "since_seq"?, "last_seq"? } }
 *   { "stream": "trade_updates", "data": { "event", "execution_id"?, "order", "timestamp", "price"?, "qty"?, "position_qty"?, "seq" } }
 *   { "action": "error", "stream": "error", "data": { "error_message": "...", "error": { code, message, service, details? } } }
 *
 * Every frame's `data` is an object. Alpaca's SDK 3.x reads `"error" in message.data` and then
 * `message.stream.startsWith(...)` for any stream it does not know, so a frame without an
 * object `data` or without a `stream` string throws inside its socket handler; 4.x refuses a
 * frame whose `data` is not an object. That is also why the error frame, which Alpaca documents
 * as `{ "action": "error", "data": { "error_message" } }` (what 4.x reads), carries a `stream`
 * too, and the native error as `data.error` (what 3.x prints).
 */
import { AppError, ValidationError } from '../core/errors.js';
import { qtyFromDb } from '../core/money.js';
import type { EventRecord, EventType } from '../services/events/event-log.js';
import type { OrderView } from '../services/orders/order-view.js';
import { apiKeyFromPair } from '../services/users/api-keys.js';
import { alpacaOrderFromView, executionId } from './alpaca.views.js';

/** The one stream papertrade has: order updates of the authenticated account. */
export const TRADE_UPDATES = 'trade_updates';
/** Stream names one listen may carry at most (Alpaca has a handful; anything longer is abuse). */
export const LISTEN_STREAMS_MAX = 16;
const STREAM_NAME_LENGTH_MAX = 64;
/** A key_id or secret_key as the HTTP edge takes them (src/http/auth.ts): printable ASCII, bounded. */
const CREDENTIAL_RE = /^[\x21-\x7e]{1,256}$/;

export type AlpacaClientMessage =
  /** `token` is the API key the pair stands for; undefined when the pair is missing or malformed. */
  | { action: 'authenticate'; token: string | undefined }
  | { action: 'listen'; streams: string[]; sinceSeq: number | undefined };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses one client message. Throws ValidationError for what is not JSON, not an object, or
 * not one of the actions; a malformed key pair is not a validation error but credentials that
 * fail (`token` undefined), answered `unauthorized` as Alpaca answers a wrong key. Fields
 * beyond those read are ignored, as Alpaca ignores them.
 */
export function parseAlpacaMessage(text: string): AlpacaClientMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ValidationError('the message is not valid JSON');
  }
  if (!isObject(raw)) throw new ValidationError('a message must be a JSON object');
  switch (raw.action) {
    case 'authenticate': {
      const data = isObject(raw.data) ? raw.data : {};
      return { action: 'authenticate', token: pairToken(data.key_id, data.secret_key) };
    }
    case 'auth':
      return { action: 'authenticate', token: pairToken(raw.key, raw.secret) };
    case 'listen':
      return parseListen(raw.data);
    default:
      throw new ValidationError('action must be "authenticate" (or "auth") or "listen"', { field: 'action' });
  }
}

function pairToken(keyId: unknown, secretKey: unknown): string | undefined {
  if (typeof keyId !== 'string' || typeof secretKey !== 'string') return undefined;
  if (!CREDENTIAL_RE.test(keyId) || !CREDENTIAL_RE.test(secretKey)) return undefined;
  return apiKeyFromPair(keyId, secretKey);
}

function parseListen(data: unknown): AlpacaClientMessage {
  if (!isObject(data) || !Array.isArray(data.streams)) {
    throw new ValidationError('listen takes data.streams, a list of stream names: { "action": "listen", "data": { "streams": ["trade_updates"] } }', { field: 'data.streams' });
  }
  if (data.streams.length > LISTEN_STREAMS_MAX) throw new ValidationError(`data.streams has at most ${LISTEN_STREAMS_MAX} names`, { field: 'data.streams' });
  const streams: string[] = [];
  for (const s of data.streams) {
    if (typeof s !== 'string' || s.length > STREAM_NAME_LENGTH_MAX) {
      throw new ValidationError(`each stream name is a string of at most ${STREAM_NAME_LENGTH_MAX} characters`, { field: 'data.streams' });
    }
    if (!streams.includes(s)) streams.push(s);
  }
  let sinceSeq: number | undefined;
  if (data.since_seq !== undefined && data.since_seq !== null) {
    if (!Number.isSafeInteger(data.since_seq) || (data.since_seq as number) < 0) {
      throw new ValidationError('data.since_seq must be an integer, 0 or more (the seq of the last trade update received; 0 for the whole history)', {
        field: 'data.since_seq',
      });
    }
    if (!streams.includes(TRADE_UPDATES)) throw new ValidationError('data.since_seq goes with the trade_updates stream', { field: 'data.since_seq' });
    sinceSeq = data.since_seq as number;
  }
  return { action: 'listen', streams, sinceSeq };
}

/** The streams of a listen that exist, in the order asked: Alpaca leaves the others out of its answer. */
export function availableStreams(streams: readonly string[]): string[] {
  return streams.filter((s) => s === TRADE_UPDATES);
}

// ---------------------------------------------------------------------------------------------
// Server frames: JSON text as bytes, sent as binary frames.
// ---------------------------------------------------------------------------------------------

const frame = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

/** Alpaca's answer to an authentication (`action: "authenticate"`) or to a listen before one (`"listen"`). */
export function authorizationFrame(action: 'authenticate' | 'listen', status: 'authorized' | 'unauthorized', errorMessage?: string): Buffer {
  return frame({ stream: 'authorization', data: { action, status, ...(errorMessage !== undefined ? { error_message: errorMessage } : {}) } });
}

/**
 * The acknowledgement of a listen: the streams now followed. A resumed listen (since_seq) also
 * says where the replay starts and the last seq at that moment.
 */
export function listeningFrame(streams: readonly string[], resumed?: { sinceSeq: number; lastSeq: number }): Buffer {
  return frame({ stream: 'listening', data: { streams, ...(resumed ? { since_seq: resumed.sinceSeq, last_seq: resumed.lastSeq } : {}) } });
}

/** An error in Alpaca's documented shape (`action: "error"`, `error_message`), readable by both SDKs (see above). */
export function errorFrame(error: AppError | { code: string; message: string; service: string }): Buffer {
  const native = error instanceof AppError ? error.toJSON() : error;
  return frame({ action: 'error', stream: 'error', data: { error_message: native.message, error: native } });
}

/** The trade_updates event of each papertrade event type that is one; the others are not sent. */
const TRADE_EVENTS: Partial<Record<EventType, 'new' | 'fill' | 'canceled' | 'expired' | 'rejected' | 'replaced'>> = {
  'order.new': 'new',
  'order.fill': 'fill',
  'order.canceled': 'canceled',
  'order.expired': 'expired',
  'order.rejected': 'rejected',
  'order.replaced': 'replaced',
};

/** What an order.fill's data adds to the order view (src/services/trading/trading.service.ts). */
interface FillData {
  fill?: { price: string; quantity: string; amount: string; commission: string };
  position_quantity?: string;
}

/** True when papertrade's event type is sent on trade_updates. */
export function isTradeUpdate(type: EventType): boolean {
  return TRADE_EVENTS[type] !== undefined;
}

/**
 * The trade_updates data of an event, or undefined for an event that is not a trade update
 * (order.open, order.triggered, cash and account events: they advance the position only).
 * `timestamp` is when the change committed; `seq` is papertrade's, for resuming with since_seq.
 * A fill is `partial_fill` while the order's filled quantity is below its quantity.
 */
export function tradeUpdateData(e: EventRecord): Record<string, unknown> | undefined {
  const name = TRADE_EVENTS[e.type];
  if (name === undefined) return undefined;
  const view = JSON.parse(e.dataJson) as OrderView & FillData;
  const order = alpacaOrderFromView(view);
  if (name !== 'fill') return { event: name, order, timestamp: e.at, seq: e.seq };
  const partial = qtyFromDb(view.filled_quantity) < qtyFromDb(view.quantity);
  return {
    event: partial ? 'partial_fill' : 'fill',
    execution_id: executionId(view.id),
    order,
    timestamp: e.at,
    price: view.fill?.price ?? view.fill_price,
    qty: view.fill?.quantity ?? view.filled_quantity,
    ...(view.position_quantity !== undefined ? { position_qty: view.position_quantity } : {}),
    seq: e.seq,
  };
}

/** The trade_updates frame of an event; undefined when the event is not a trade update. */
export function tradeUpdateFrame(e: EventRecord): Buffer | undefined {
  const data = tradeUpdateData(e);
  return data === undefined ? undefined : frame({ stream: TRADE_UPDATES, data });
}
