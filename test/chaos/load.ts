/**
 * The chaos suite's clients: many users, each placing buys, sells of shares it bought, cancels of
 * its own recent orders and exact replays (same client_order_id) through its own API key. Every
 * response is recorded. A request that never reached the server (connection refused) changed
 * nothing; one that was sent and got no answer (socket hang-up, timeout) is "unknown": the
 * order may exist, and is looked up afterwards by its client_order_id.
 */
import { formatQty, parseQty, type Qty } from '../../src/core/money.js';

export type Outcome =
  | { kind: 'response'; status: number; body: unknown; code: string | undefined }
  /** The connection was refused: the request never reached the server. */
  | { kind: 'refused'; error: string }
  /** Sent, but no answer: whatever it asked for may or may not have happened. */
  | { kind: 'unknown'; error: string };

export const REQUEST_TIMEOUT_MS = 20_000;

export async function call(baseUrl: string, method: string, urlPath: string, token: string, body?: unknown): Promise<Outcome> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(baseUrl + urlPath, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep the text */
    }
    const code = (parsed as { error?: { code?: string } } | undefined)?.error?.code;
    return { kind: 'response', status: res.status, body: parsed, code };
  } catch (err) {
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const code = e.cause?.code ?? e.name ?? 'ERROR';
    if (code === 'ECONNREFUSED') return { kind: 'refused', error: code };
    return { kind: 'unknown', error: `${code}: ${e.cause?.message ?? e.message ?? ''}`.slice(0, 200) };
  }
}

export interface ChaosUser {
  id: string;
  apiKey: string;
  initialCash: string;
  /** Shares this client believes the user can sell: accepted buys minus accepted sells. */
  sellable: Map<string, Qty>;
  /** Recently accepted order ids, newest last (what the client may try to cancel). */
  recent: string[];
}

export interface OrderRequest {
  user_id: string;
  ticker: string;
  quantity: string;
  type: 'market';
  side: 'buy' | 'sell';
  client_order_id: string;
}

export interface SentOrder {
  request: OrderRequest;
  sentAtMs: number;
  outcome: 'accepted' | 'refused' | 'unknown' | 'failed';
  /** HTTP status, or 'refused' / 'unknown' at the transport level. */
  status: number | 'refused' | 'unknown';
  code?: string | undefined;
  orderId?: string | undefined;
  error?: string | undefined;
}

export class LoadRecord {
  readonly orders = new Map<string, SentOrder>();
  /** Order id -> client_order_id of every 2xx POST /orders. */
  readonly accepted = new Map<string, string>();
  readonly refusedByCode = new Map<string, number>();
  readonly cancels = { sent: 0, ok: 0, notCancelable: 0, other: new Map<string, number>() };
  /** Orders whose DELETE answered 200 CANCELED: they must end CANCELED. */
  readonly canceled = new Set<string>();
  readonly replays = { sent: 0, same: 0, other: new Map<string, number>() };
  /** Replays that answered with another order or a 201: a duplicate order. */
  readonly replayMismatches: { clientOrderId: string; expected: string; got: unknown; status: number }[] = [];
  requests = 0;

  count(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }
}

export const TICKERS = ['AAPL', 'NVDA', 'AMZN', 'KO', 'INTC', 'BAC', 'WMT', 'CSCO'] as const;
// Every buy is worth more than the 1.00 minimum notional at the tickers' prices (INTC ~22: 0.05 is 1.10).
const BUY_QUANTITIES = ['1', '2', '0.5', '3', '1.25', '0.05'];
const SELL_QUANTITIES = ['1', '0.5', '0.25', '2'].map((q) => parseQty(q));

export interface LoadOptions {
  baseUrl: string;
  users: ChaosUser[];
  loops: number;
  requestsPerLoopMax: number;
  /** Pause between two requests of one loop, picked uniformly from this range. */
  pauseMs: [number, number];
  /** Each loop stops when this returns true (checked before every request). */
  stop: () => boolean;
  runId: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** Runs `loops` client loops until each sent `requestsPerLoopMax` requests or `stop()` says so. */
export async function driveLoad(options: LoadOptions, record: LoadRecord): Promise<void> {
  const loops = Array.from({ length: options.loops }, (_, i) => clientLoop(options, record, i));
  await Promise.all(loops);
}

async function clientLoop(o: LoadOptions, record: LoadRecord, loop: number): Promise<void> {
  for (let n = 0; n < o.requestsPerLoopMax && !o.stop(); n++) {
    const user = pick(o.users);
    const r = Math.random();
    const sellable = [...user.sellable].filter(([, q]) => q > 0n);
    if (r < 0.12 && user.recent.length > 0) await cancel(o, record, user);
    else if (r < 0.17 && record.accepted.size > 0) await replay(o, record, user);
    else if (r < 0.45 && sellable.length > 0) {
      const [ticker, held] = pick(sellable);
      const wanted = pick(SELL_QUANTITIES);
      await place(o, record, user, ticker, wanted < held ? wanted : held, 'sell', `${loop}-${n}`);
    } else {
      await place(o, record, user, pick(TICKERS), parseQty(pick(BUY_QUANTITIES)), 'buy', `${loop}-${n}`);
    }
    record.requests += 1;
    await sleep(o.pauseMs[0] + Math.random() * (o.pauseMs[1] - o.pauseMs[0]));
  }
}

async function place(
  o: LoadOptions,
  record: LoadRecord,
  user: ChaosUser,
  ticker: string,
  quantity: Qty,
  side: 'buy' | 'sell',
  seq: string,
): Promise<void> {
  const request: OrderRequest = {
    user_id: user.id,
    ticker,
    quantity: formatQty(quantity),
    type: 'market',
    side,
    client_order_id: `chaos-${o.runId}-${seq}`,
  };
  const sent: SentOrder = { request, sentAtMs: Date.now(), outcome: 'failed', status: 'unknown' };
  record.orders.set(request.client_order_id, sent);
  // Sells are counted as reserved before the answer, so concurrent loops never oversell the estimate.
  if (side === 'sell') user.sellable.set(ticker, (user.sellable.get(ticker) ?? 0n) - quantity);
  const res = await call(o.baseUrl, 'POST', '/orders', user.apiKey, request);
  if (res.kind === 'response') {
    sent.status = res.status;
    sent.code = res.code;
    if (res.status === 201 || res.status === 200) {
      const orderId = (res.body as { id: string }).id;
      sent.outcome = 'accepted';
      sent.orderId = orderId;
      record.accepted.set(orderId, request.client_order_id);
      user.recent.push(orderId);
      if (user.recent.length > 8) user.recent.shift();
      if (side === 'buy') user.sellable.set(ticker, (user.sellable.get(ticker) ?? 0n) + quantity);
      return;
    }
    sent.outcome = res.status >= 500 ? 'failed' : 'refused';
    record.count(record.refusedByCode, `${res.status} ${res.code ?? '?'}`);
  } else {
    sent.status = res.kind;
    sent.outcome = res.kind === 'refused' ? 'refused' : 'unknown';
    sent.error = res.error;
    record.count(record.refusedByCode, res.kind === 'refused' ? 'connection refused' : 'no response');
  }
  if (side === 'sell') user.sellable.set(ticker, (user.sellable.get(ticker) ?? 0n) + quantity);
}

async function cancel(o: LoadOptions, record: LoadRecord, user: ChaosUser): Promise<void> {
  const orderId = pick(user.recent);
  record.cancels.sent += 1;
  const res = await call(o.baseUrl, 'DELETE', `/orders/${orderId}`, user.apiKey);
  if (res.kind === 'response' && res.status === 200) {
    record.cancels.ok += 1;
    record.canceled.add(orderId);
    user.recent = user.recent.filter((id) => id !== orderId);
  } else if (res.kind === 'response' && res.status === 409 && res.code === 'ORDER_NOT_CANCELABLE') {
    record.cancels.notCancelable += 1;
    user.recent = user.recent.filter((id) => id !== orderId);
  } else {
    record.count(record.cancels.other, res.kind === 'response' ? `${res.status} ${res.code ?? '?'}` : res.kind);
  }
}

/** Sends an accepted order's exact request again: it must answer 200 with the same order. */
async function replay(o: LoadOptions, record: LoadRecord, user: ChaosUser): Promise<void> {
  const mine = [...record.orders.values()].filter((s) => s.outcome === 'accepted' && s.request.user_id === user.id).slice(-20);
  if (mine.length === 0) return;
  const original = pick(mine);
  record.replays.sent += 1;
  const res = await call(o.baseUrl, 'POST', '/orders', user.apiKey, original.request);
  if (res.kind === 'response' && (res.status === 200 || res.status === 201)) {
    const id = (res.body as { id?: string }).id;
    if (res.status === 200 && id === original.orderId) record.replays.same += 1;
    else record.replayMismatches.push({ clientOrderId: original.request.client_order_id, expected: original.orderId!, got: res.body, status: res.status });
  } else {
    record.count(record.replays.other, res.kind === 'response' ? `${res.status} ${res.code ?? '?'}` : res.kind);
  }
}
