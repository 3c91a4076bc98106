/**
 * The chaos suite's clients: many users, each placing market buys, sells of shares it bought,
 * resting orders of every type (limits on both sides, stops, stop_limits, trailing stops by price
 * and by percent; day and gtc, some ioc and fok) priced near the market, replaces (PATCH) of its
 * resting orders, cancels of its own recent orders, cancel-alls and exact replays (same
 * client_order_id) through its own API key. Every response is recorded. A request that never
 * reached the server (connection refused) changed nothing; one that was sent and got no answer
 * (socket hang-up, timeout) is "unknown": the order may exist, and is looked up afterwards by its
 * client_order_id.
 */
import { formatPrice, formatQty, parseQty, type Price, type Qty } from '../../src/core/money.js';

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

export type RestingType = 'limit' | 'stop' | 'stop_limit' | 'trailing_stop';
export type OrderType = 'market' | RestingType;
export type TimeInForce = 'day' | 'gtc' | 'ioc' | 'fok';

export interface OrderRequest {
  user_id: string;
  ticker: string;
  quantity: string;
  type: OrderType;
  side: 'buy' | 'sell';
  time_in_force?: TimeInForce;
  limit_price?: string;
  stop_price?: string;
  trail_price?: string;
  trail_percent?: string;
  client_order_id: string;
}

export interface ChaosUser {
  id: string;
  apiKey: string;
  initialCash: string;
  /** Shares this client believes the user can sell: accepted buys minus accepted sells. */
  sellable: Map<string, Qty>;
  /** Recently accepted order ids, newest last (what the client may try to cancel). */
  recent: string[];
  /** Recently accepted day/gtc resting orders with their terms, newest last (what it may replace). */
  resting: { orderId: string; request: OrderRequest }[];
}

export interface SentOrder {
  /** What was asked for; for a replace, the new order's terms (the old order's with the changes). */
  request: OrderRequest;
  /** POST /orders, or PATCH /orders/{replaces}. */
  via: 'place' | 'replace';
  /** The order a replace was sent for. */
  replaces?: string;
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
  /** Order id -> client_order_id of every 2xx POST /orders (and of the new order of every 200 PATCH). */
  readonly accepted = new Map<string, string>();
  readonly refusedByCode = new Map<string, number>();
  readonly cancels = { sent: 0, ok: 0, notCancelable: 0, other: new Map<string, number>() };
  /** Orders whose DELETE answered 200 CANCELED (alone or in a cancel-all): they must end CANCELED. */
  readonly canceled = new Set<string>();
  readonly cancelAlls = { sent: 0, ok: 0, canceled: 0, notCancelable: 0, other: new Map<string, number>() };
  readonly replays = { sent: 0, same: 0, other: new Map<string, number>() };
  /** Replays that answered with another order or a 201: a duplicate order. */
  readonly replayMismatches: { clientOrderId: string; expected: string; got: unknown; status: number }[] = [];
  readonly replaces = { sent: 0, ok: 0, notReplaceable: 0, other: new Map<string, number>() };
  /** Old order id -> new order id of every PATCH answered 200: the old one must end REPLACED. */
  readonly replaced = new Map<string, string>();
  /** Accepted resting orders (POST or PATCH) by "type side time_in_force". */
  readonly restingAccepted = new Map<string, number>();
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
  /** Where the market stands (the feed's latest tick), for pricing resting orders near it. */
  price: (ticker: string) => Price | undefined;
  /**
   * While true the loops place no resting order and replace none (market orders, cancels and
   * replays go on): nothing comes to rest meanwhile. The caller bounds how long it lasts.
   */
  restingQuiet?: () => boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const between = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** `price` moved by `bps` basis points (negative: down), truncated to the 0.0001; at least 0.0001. */
export function moveBps(price: Price, bps: number): Price {
  const moved = (price * BigInt(10_000 + Math.round(bps))) / 10_000n;
  return moved < 1n ? 1n : moved;
}

/** A price to the cent (down), at least 0.01. */
function toCent(price: Price): Price {
  const cents = (price / 100n) * 100n;
  return cents < 100n ? 100n : cents;
}

/**
 * How far from the market (basis points) a resting order is placed: a few within the reach of
 * the feed's random walk alone (it moves about 1 bp a tick), most within the crossing driver's
 * spikes (30 to 300 bp), some beyond them (they rest until the end of the run).
 */
function offsetBps(): number {
  const r = Math.random();
  if (r < 0.12) return between(1, 4);
  if (r < 0.9) return between(20, 250);
  return between(300, 600);
}

type RestingKind = 'limit' | 'stop' | 'stop_limit' | 'trail_price' | 'trail_percent';
const RESTING_KINDS: readonly RestingKind[] = ['limit', 'limit', 'stop', 'stop_limit', 'trail_price', 'trail_percent'];

export function kindOf(r: Pick<OrderRequest, 'type' | 'trail_price'>): RestingKind {
  if (r.type === 'trailing_stop') return r.trail_price !== undefined ? 'trail_price' : 'trail_percent';
  return r.type as RestingKind;
}

type RestingTerms = Pick<OrderRequest, 'type' | 'time_in_force' | 'limit_price' | 'stop_price' | 'trail_price' | 'trail_percent'>;

/**
 * The type-specific terms of a resting order of `kind` on `side`, priced from the market `q`:
 * limits rest on the far side (a buy below the market, a sell above it), stops and stop_limits
 * on the near side (a buy stop above, a sell stop below), trailing stops trail by a price or a
 * percent. An ioc or fok limit is marketable half the time (it fills at once, else it is canceled).
 */
function restingTerms(kind: RestingKind, side: 'buy' | 'sell', q: Price, tif: TimeInForce): RestingTerms {
  const bps = offsetBps();
  const fmt = (p: Price) => formatPrice(bps >= 10 ? toCent(p) : p);
  // +1: away from the market for a limit (a buy below it), -1: toward it.
  const away = side === 'buy' ? -1 : 1;
  switch (kind) {
    case 'limit': {
      const marketable = (tif === 'ioc' || tif === 'fok') && Math.random() < 0.5;
      return { type: 'limit', time_in_force: tif, limit_price: fmt(moveBps(q, marketable ? -away * 30 : away * bps)) };
    }
    case 'stop':
      return { type: 'stop', time_in_force: tif, stop_price: fmt(moveBps(q, -away * bps)) };
    case 'stop_limit': {
      const stop = moveBps(q, -away * bps);
      return { type: 'stop_limit', time_in_force: tif, stop_price: fmt(stop), limit_price: fmt(moveBps(stop, -away * between(0, 80))) };
    }
    case 'trail_price': {
      const trail = moveBps(q, bps) - q;
      return { type: 'trailing_stop', time_in_force: tif, trail_price: formatPrice(trail < 1n ? 1n : trail) };
    }
    case 'trail_percent':
      // Basis points are hundredths of a percent: 85 bp is "0.85".
      return { type: 'trailing_stop', time_in_force: tif, trail_percent: `${Math.floor(bps / 100)}.${String(bps % 100).padStart(2, '0')}` };
  }
}

/** Runs `loops` client loops until each sent `requestsPerLoopMax` requests or `stop()` says so. */
export async function driveLoad(options: LoadOptions, record: LoadRecord): Promise<void> {
  const loops = Array.from({ length: options.loops }, (_, i) => clientLoop(options, record, i));
  await Promise.all(loops);
}

async function clientLoop(o: LoadOptions, record: LoadRecord, loop: number): Promise<void> {
  for (let n = 0; n < o.requestsPerLoopMax && !o.stop(); n++) {
    const user = pick(o.users);
    // During a resting quiet the resting band (replaces, resting placements) becomes market buys.
    const drawn = Math.random();
    const r = o.restingQuiet?.() && drawn >= 0.126 && drawn < 0.49 ? 0.99 : drawn;
    const seq = `${loop}-${n}`;
    const sellable = [...user.sellable].filter(([, q]) => q > 0n);
    if (r < 0.08 && user.recent.length > 0) await cancel(o, record, user);
    else if (r < 0.086) await cancelAll(o, record, user);
    else if (r < 0.126 && record.accepted.size > 0) await replay(o, record, user);
    else if (r < 0.19 && user.resting.length > 0) await replace(o, record, user, seq);
    else if (r < 0.49) await placeResting(o, record, user, sellable, seq);
    else if (r < 0.7 && sellable.length > 0) {
      const [ticker, held] = pick(sellable);
      const wanted = pick(SELL_QUANTITIES);
      await place(o, record, user, ticker, wanted < held ? wanted : held, 'sell', { type: 'market' }, seq);
    } else {
      await place(o, record, user, pick(TICKERS), parseQty(pick(BUY_QUANTITIES)), 'buy', { type: 'market' }, seq);
    }
    record.requests += 1;
    await sleep(o.pauseMs[0] + Math.random() * (o.pauseMs[1] - o.pauseMs[0]));
  }
}

/** A resting order of a random kind near the market: a sell of shares held when there are some. */
async function placeResting(o: LoadOptions, record: LoadRecord, user: ChaosUser, sellable: [string, Qty][], seq: string): Promise<void> {
  const sell = sellable.length > 0 && Math.random() < 0.45;
  const [ticker, held] = sell ? pick(sellable) : [pick(TICKERS), 0n];
  const q = o.price(ticker);
  if (q === undefined) return place(o, record, user, ticker, parseQty(pick(BUY_QUANTITIES)), 'buy', { type: 'market' }, seq);
  const kind = pick(RESTING_KINDS);
  const tif: TimeInForce = Math.random() < 0.12 ? pick(['ioc', 'fok'] as const) : pick(['day', 'gtc'] as const);
  const terms = restingTerms(kind, sell ? 'sell' : 'buy', q, tif);
  const wanted = pick(SELL_QUANTITIES);
  const quantity = sell ? (wanted < held ? wanted : held) : parseQty(pick(BUY_QUANTITIES));
  await place(o, record, user, ticker, quantity, sell ? 'sell' : 'buy', terms, seq);
}

async function place(
  o: LoadOptions,
  record: LoadRecord,
  user: ChaosUser,
  ticker: string,
  quantity: Qty,
  side: 'buy' | 'sell',
  terms: RestingTerms,
  seq: string,
): Promise<void> {
  const request: OrderRequest = {
    user_id: user.id,
    ticker,
    quantity: formatQty(quantity),
    side,
    ...terms,
    client_order_id: `chaos-${o.runId}-${seq}`,
  };
  const sent: SentOrder = { request, via: 'place', sentAtMs: Date.now(), outcome: 'failed', status: 'unknown' };
  record.orders.set(request.client_order_id, sent);
  // Sells are counted as reserved before the answer, so concurrent loops never oversell the estimate.
  if (side === 'sell') user.sellable.set(ticker, (user.sellable.get(ticker) ?? 0n) - quantity);
  const res = await call(o.baseUrl, 'POST', '/orders', user.apiKey, request);
  if (res.kind === 'response') {
    sent.status = res.status;
    sent.code = res.code;
    if (res.status === 201 || res.status === 200) {
      const orderId = (res.body as { id: string }).id;
      accepted(record, user, sent, orderId);
      // A resting buy's shares arrive only if it fills: the client does not count on them.
      if (side === 'buy' && request.type === 'market') user.sellable.set(ticker, (user.sellable.get(ticker) ?? 0n) + quantity);
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

function accepted(record: LoadRecord, user: ChaosUser, sent: SentOrder, orderId: string): void {
  const r = sent.request;
  sent.outcome = 'accepted';
  sent.orderId = orderId;
  record.accepted.set(orderId, r.client_order_id);
  user.recent.push(orderId);
  if (user.recent.length > 8) user.recent.shift();
  if (r.type === 'market') return;
  record.count(record.restingAccepted, `${r.type} ${r.side} ${r.time_in_force ?? 'day'}`);
  if (r.time_in_force === 'ioc' || r.time_in_force === 'fok') return;
  user.resting.push({ orderId, request: r });
  if (user.resting.length > 12) user.resting.shift();
}

async function cancel(o: LoadOptions, record: LoadRecord, user: ChaosUser): Promise<void> {
  const orderId = pick(user.recent);
  record.cancels.sent += 1;
  const res = await call(o.baseUrl, 'DELETE', `/orders/${orderId}`, user.apiKey);
  if (res.kind === 'response' && res.status === 200) {
    record.cancels.ok += 1;
    record.canceled.add(orderId);
    forget(user, orderId);
  } else if (res.kind === 'response' && res.status === 409 && res.code === 'ORDER_NOT_CANCELABLE') {
    record.cancels.notCancelable += 1;
    forget(user, orderId);
  } else {
    record.count(record.cancels.other, res.kind === 'response' ? `${res.status} ${res.code ?? '?'}` : res.kind);
  }
}

function forget(user: ChaosUser, orderId: string): void {
  user.recent = user.recent.filter((id) => id !== orderId);
  user.resting = user.resting.filter((e) => e.orderId !== orderId);
}

/** DELETE /orders?user_id=: every live order of the user; each one answered 200 must end CANCELED. */
async function cancelAll(o: LoadOptions, record: LoadRecord, user: ChaosUser): Promise<void> {
  record.cancelAlls.sent += 1;
  const res = await call(o.baseUrl, 'DELETE', `/orders?user_id=${user.id}`, user.apiKey);
  if (res.kind === 'response' && res.status === 200) {
    record.cancelAlls.ok += 1;
    for (const r of (res.body as { results: { id: string; status: number }[] }).results) {
      if (r.status === 200) {
        record.cancelAlls.canceled += 1;
        record.canceled.add(r.id);
      } else {
        record.cancelAlls.notCancelable += 1;
      }
    }
    user.recent = [];
    user.resting = [];
  } else {
    record.count(record.cancelAlls.other, res.kind === 'response' ? `${res.status} ${res.code ?? '?'}` : res.kind);
  }
}

/**
 * PATCH /orders/{id} of one of the user's resting orders: new prices (or trail, of either kind)
 * picked from the market now, sometimes another quantity (buys) or time in force. The new order
 * is recorded like a placed one (its own client_order_id); the old one must end REPLACED.
 */
async function replace(o: LoadOptions, record: LoadRecord, user: ChaosUser, seq: string): Promise<void> {
  const entry = pick(user.resting);
  const old = entry.request;
  const q = o.price(old.ticker);
  if (q === undefined) return;
  const kind = old.type === 'trailing_stop' ? pick(['trail_price', 'trail_percent'] as const) : kindOf(old);
  const tif: TimeInForce = Math.random() < 0.2 ? (old.time_in_force === 'gtc' ? 'day' : 'gtc') : (old.time_in_force ?? 'day');
  const terms = restingTerms(kind, old.side, q, tif);
  const body: Record<string, string> = {};
  for (const field of ['limit_price', 'stop_price', 'trail_price', 'trail_percent'] as const) {
    const value = terms[field];
    if (value !== undefined) body[field] = value;
  }
  if (tif !== (old.time_in_force ?? 'day')) body.time_in_force = tif;
  if (old.side === 'buy' && Math.random() < 0.25) body.quantity = formatQty(parseQty(pick(BUY_QUANTITIES)));
  const clientOrderId = `chaos-${o.runId}-${seq}-r`;
  body.client_order_id = clientOrderId;
  const { trail_price: _p, trail_percent: _pct, ...kept } = old;
  const request: OrderRequest = {
    ...(old.type === 'trailing_stop' ? kept : old),
    ...terms,
    quantity: body.quantity ?? old.quantity,
    client_order_id: clientOrderId,
  };
  const sent: SentOrder = { request, via: 'replace', replaces: entry.orderId, sentAtMs: Date.now(), outcome: 'failed', status: 'unknown' };
  record.orders.set(clientOrderId, sent);
  record.replaces.sent += 1;
  const res = await call(o.baseUrl, 'PATCH', `/orders/${entry.orderId}`, user.apiKey, body);
  if (res.kind === 'response') {
    sent.status = res.status;
    sent.code = res.code;
    if (res.status === 200) {
      record.replaces.ok += 1;
      const orderId = (res.body as { id: string }).id;
      record.replaced.set(entry.orderId, orderId);
      forget(user, entry.orderId);
      accepted(record, user, sent, orderId);
      return;
    }
    sent.outcome = res.status >= 500 ? 'failed' : 'refused';
    if (res.status === 409 && res.code === 'ORDER_NOT_REPLACEABLE') {
      record.replaces.notReplaceable += 1;
      forget(user, entry.orderId);
    } else {
      record.count(record.replaces.other, `${res.status} ${res.code ?? '?'}`);
    }
  } else {
    sent.status = res.kind;
    sent.outcome = res.kind === 'refused' ? 'refused' : 'unknown';
    sent.error = res.error;
    record.count(record.replaces.other, res.kind);
  }
}

/** Sends an accepted order's exact request again: it must answer 200 with the same order. */
async function replay(o: LoadOptions, record: LoadRecord, user: ChaosUser): Promise<void> {
  const mine = [...record.orders.values()].filter((s) => s.via === 'place' && s.outcome === 'accepted' && s.request.user_id === user.id).slice(-20);
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
