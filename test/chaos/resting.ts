/**
 * Resting orders under chaos: what moves prices through them, what measures how long they go
 * unwatched, and the check that every tick that should have executed one did so in time.
 *
 * - TickRecorder reads this run's tick log (the Redis stream the resting-order watcher reads) as
 *   it grows, so the suite knows every tick the watcher was given: the feed's and the admin's
 *   (and it samples the watcher's saved cursor); UpdateRecorder hears the order updates.
 * - driveCrossings moves prices with `PUT /admin/prices/{ticker}` through the levels where the
 *   chaos users' resting orders sit: one-tick spikes (the feed's next tick, 250 ms later, puts the
 *   price back on its walk) and short sweeps of a few ticks.
 * - Probes measure the watch after each fault: a limit placed before the fault (only the index
 *   or a rebuild knows it) and a fresh one placed after it are each crossed by one admin tick, and
 *   the time until each is FILLED is recorded.
 * - checkCrossings replays the recorded ticks over every day/gtc resting order and finds the first
 *   tick that must have executed it (by the order's own terms, from the ticks after its creation);
 *   the order must have left OPEN within a bound of that tick (or of the end of an outage that
 *   covered the tick).
 *
 * Prices are bigint (4 decimals) throughout; times are epoch milliseconds of this machine, the
 * clock every process of the run shares.
 */
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { formatPrice, fromDb, priceFromDb, type Price } from '../../src/core/money.js';
import type { Db } from '../../src/infra/postgres.js';
import { decodeTickMessage } from '../../src/services/market-data/quote-store.redis.js';
import { call, moveBps, type LoadRecord, type OrderRequest, type SentOrder } from './load.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const between = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** A price to the cent (down). */
export const toCent = (price: Price): Price => (price / 100n) * 100n;

// ---------------------------------------------------------------------------------------------
// The tick log, as the watcher reads it

export interface RecordedTick {
  /** The tick log entry (stream id): the order in which the watcher applies ticks. */
  entry: string;
  asOfMs: number;
  price: Price;
  /** Set by `PUT /admin/prices` (feed "admin"), else the feed's. */
  admin: boolean;
}

/** Reads the tick log from its beginning as it grows (every `intervalMs`), per ticker in log order. */
export class TickRecorder {
  readonly byTicker = new Map<string, RecordedTick[]>();
  /** The watcher's saved tick-log position, each time a poll saw it change. */
  readonly cursors: { atMs: number; cursor: string | null }[] = [];
  private lastEntry: string | undefined;
  entries = 0;
  readErrors = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly cursorKey?: string,
  ) {}

  get lastEntryId(): string | undefined {
    return this.lastEntry;
  }

  /** Reads what the log gained since the last read (bounded: at most 100 pages), and the watcher's cursor. */
  async poll(): Promise<void> {
    if (this.cursorKey) {
      const cursor = await this.redis.get(this.cursorKey);
      if (this.cursors.at(-1)?.cursor !== cursor) this.cursors.push({ atMs: Date.now(), cursor });
    }
    for (let page = 0; page < 100; page++) {
      const rows = (await this.redis.xrange(this.key, this.lastEntry === undefined ? '-' : `(${this.lastEntry}`, '+', 'COUNT', 1_000)) as [
        string,
        string[],
      ][];
      for (const [entry, flat] of rows) {
        this.lastEntry = entry;
        this.entries += 1;
        const i = flat.indexOf('batch');
        const batch = i >= 0 ? decodeTickMessage(flat[i + 1] ?? '') : undefined;
        if (!batch) continue;
        const admin = batch.source.feed === 'admin';
        for (const q of batch.quotes) {
          let ticks = this.byTicker.get(q.ticker);
          if (!ticks) this.byTicker.set(q.ticker, (ticks = []));
          ticks.push({ entry, asOfMs: q.asOfMs, price: q.price, admin });
        }
      }
      if (rows.length < 1_000) return;
    }
  }

  /** Polls until `stop()` (and at most `maxMs`); a failed read is counted and retried. */
  async run(stop: () => boolean, maxMs: number, intervalMs = 200): Promise<void> {
    const deadline = Date.now() + maxMs;
    while (!stop() && Date.now() < deadline) {
      await this.poll().catch(() => (this.readErrors += 1));
      await sleep(intervalMs);
    }
  }

  /** Where the feed's walk stands: its latest tick (the admin's spikes left out). */
  walk(ticker: string): Price | undefined {
    const ticks = this.byTicker.get(ticker) ?? [];
    for (let i = ticks.length - 1; i >= 0; i--) if (!ticks[i]!.admin) return ticks[i]!.price;
    return undefined;
  }

  ticks(ticker: string): readonly RecordedTick[] {
    return this.byTicker.get(ticker) ?? [];
  }

  lastAsOfMs(): number {
    let last = 0;
    for (const ticks of this.byTicker.values()) for (const t of ticks) if (t.asOfMs > last) last = t.asOfMs;
    return last;
  }

  /** When the watcher's saved cursor was first seen at or past `entry` (undefined: never). */
  cursorPassed(entry: string): { atMs: number; cursor: string } | undefined {
    const found = this.cursors.find((c) => c.cursor !== null && compareEntries(c.cursor, entry) >= 0);
    return found ? { atMs: found.atMs, cursor: found.cursor! } : undefined;
  }

  /** The first admin tick of `ticker` at or after `sinceMs` whose price `cond` accepts. */
  firstAdminTick(ticker: string, sinceMs: number, cond: (p: Price) => boolean): RecordedTick | undefined {
    return this.ticks(ticker).find((t) => t.admin && t.asOfMs >= sinceMs && cond(t.price));
  }
}

/** Every order status change announced on the run's order-updates channel (what the watcher hears). */
export class UpdateRecorder {
  readonly updates: { atMs: number; orderId: string; status: string; ticker: string }[] = [];
  private subscriber: Redis | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly channel: string,
  ) {}

  async start(): Promise<void> {
    const subscriber = this.redis.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    subscriber.on('message', (from: string, text: string) => {
      if (from !== this.channel) return;
      try {
        const u = JSON.parse(text) as { order_id?: string; status?: string; ticker?: string };
        if (u.order_id && u.status) this.updates.push({ atMs: Date.now(), orderId: u.order_id, status: u.status, ticker: u.ticker ?? '?' });
      } catch {
        /* not ours */
      }
    });
    await subscriber.subscribe(this.channel);
  }

  stop(): void {
    this.subscriber?.disconnect();
  }

  between(status: string, fromMs: number, toMs: number) {
    return this.updates.filter((u) => u.status === status && u.atMs >= fromMs && u.atMs <= toMs);
  }
}

/** Stream ids ("<ms>-<seq>") in order. */
export function compareEntries(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map((x) => BigInt(x));
  const [bm = 0n, bs = 0n] = b.split('-').map((x) => BigInt(x));
  return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Prices moved through the resting orders

export interface PriceSet {
  ticker: string;
  price: Price;
  /** The walk's price it moved from, and by how much (basis points, signed). */
  from: Price;
  bps: number;
  sentAtMs: number;
  /** HTTP status, or 'refused' / 'unknown'. */
  status: number | string;
  /** The tick's as_of (from the answer). */
  asOfMs?: number;
}

export class CrossingRecord {
  readonly sets: PriceSet[] = [];
  spikes = 0;
  sweeps = 0;
}

export async function setPrice(baseUrl: string, adminToken: string, ticker: string, price: Price, from: Price, record?: CrossingRecord): Promise<PriceSet> {
  const bps = Number(((price - from) * 10_000n) / from);
  const set: PriceSet = { ticker, price, from, bps, sentAtMs: Date.now(), status: 'unknown' };
  const res = await call(baseUrl, 'PUT', `/admin/prices/${ticker}`, adminToken, { price: formatPrice(price) });
  set.status = res.kind === 'response' ? res.status : res.kind;
  if (res.kind === 'response' && res.status === 200) set.asOfMs = Date.parse((res.body as { as_of: string }).as_of);
  record?.sets.push(set);
  return set;
}

export interface CrossingOptions {
  baseUrl: string;
  adminToken: string;
  tickers: readonly string[];
  recorder: TickRecorder;
  stop: () => boolean;
  /** Pause between two price moves. */
  pauseMs: [number, number];
}

/**
 * Until `stop()`: one ticker at a time, a one-tick spike of 0.3 % to 3 % up or down from the
 * walk (70 %), or a sweep of 3 to 5 ticks 60 ms apart through levels up to 3 % away (30 %).
 * Never beyond 3 %: a market buy holds its quote plus 5 %, so a spike does not reject market
 * orders; it crosses resting ones.
 */
export async function driveCrossings(o: CrossingOptions, record: CrossingRecord): Promise<void> {
  for (let n = 0; n < 100_000 && !o.stop(); n++) {
    const ticker = pick(o.tickers);
    const from = o.recorder.walk(ticker);
    if (from !== undefined) {
      const dir = Math.random() < 0.5 ? -1 : 1;
      if (Math.random() < 0.3) {
        record.sweeps += 1;
        const steps = between(3, 5);
        const top = between(80, 300);
        for (let i = 1; i <= steps && !o.stop(); i++) {
          await setPrice(o.baseUrl, o.adminToken, ticker, moveBps(from, (dir * top * i) / steps), from, record);
          await sleep(60);
        }
      } else {
        record.spikes += 1;
        await setPrice(o.baseUrl, o.adminToken, ticker, moveBps(from, dir * between(30, 300)), from, record);
      }
    }
    await sleep(between(o.pauseMs[0], o.pauseMs[1]));
  }
}

// ---------------------------------------------------------------------------------------------
// Probes: how long a resting order goes unwatched after a fault

export const PROBE_QUANTITY = '1';
/**
 * A sentinel buy limit rests 3 % below the walk (a buy stop 3 % above it); the fresh probe limit
 * 6 % below; each crossing goes 0.5 % through the order's level, so it crosses nothing else.
 */
const SENTINEL_BPS = 300;
const FRESH_BPS = -600;
const CROSS_THROUGH_BPS = 50;

/** A buy limit (crossed by a tick at or below its level) or a buy stop (at or above it). */
export type ProbeKind = 'limit' | 'stop';

export interface ProbeOrder {
  orderId: string;
  kind: ProbeKind;
  level: Price;
  /** When the price set that crosses it was first sent, and the tick that did (from the tick log). */
  crossSentAtMs?: number;
  crossAsOfMs?: number;
  crossStatus?: number | string;
  /** Placed -> OPEN (fresh probes). */
  openAfterMs?: number;
  status?: string;
  filledAtMs?: number;
  /** Filled only after the price was held through its limit for seconds (the one tick was missed). */
  filledOnSustained?: boolean;
}

export interface ProbeResult {
  label: string;
  /** A step of a staircase (one of many sentinels crossed one after the other): summarized together. */
  staircase?: string;
  ticker: string;
  faultAtMs: number;
  /** Fills are due this long after this instant (the crossing, or the end of an outage). */
  dueFromMs?: number;
  sentinel?: ProbeOrder;
  fresh?: ProbeOrder;
  notes: string[];
}

export interface ProbeDeps {
  baseUrl: string;
  adminToken: string;
  db: Db;
  recorder: TickRecorder;
  record: LoadRecord;
  user: { id: string; apiKey: string };
  runId: string;
  boundMs: number;
  /** Probes are placed with this many retries of one client_order_id, at most. */
  placeTimeoutMs: number;
}

/** The price of the one tick that crosses a probe order: 0.5 % through its level, to the cent. */
function crossing(o: ProbeOrder): Price {
  return o.kind === 'limit' ? toCent(moveBps(o.level, -CROSS_THROUGH_BPS)) : toCent(moveBps(o.level, CROSS_THROUGH_BPS) + 99n);
}

export class Probes {
  readonly results: ProbeResult[] = [];
  /** By ticker and kind ("MSFT/limit"). */
  private readonly sentinels = new Map<string, ProbeOrder>();
  private seq = 0;

  constructor(private readonly d: ProbeDeps) {}

  /** Places a sentinel of `ticker` (before the faults) and waits until it rests. */
  async placeSentinel(ticker: string, kind: ProbeKind = 'limit'): Promise<void> {
    const walk = this.d.recorder.walk(ticker);
    if (walk === undefined) throw new Error(`no price of ${ticker} in the tick log`);
    const level = toCent(moveBps(walk, kind === 'limit' ? -SENTINEL_BPS : SENTINEL_BPS));
    const orderId = await this.place(ticker, kind, level);
    const status = await this.waitFor([orderId], (s) => s !== 'PENDING', 30_000);
    if (status.get(orderId)?.status !== 'OPEN') throw new Error(`sentinel ${orderId} of ${ticker} is ${status.get(orderId)?.status}, not OPEN`);
    this.sentinels.set(`${ticker}/${kind}`, { orderId, kind, level });
  }

  /**
   * Right after a fault: one tick through the sentinel's limit, then a fresh limit placed and,
   * once it rests, one tick through it. Both must fill within the bound of their crossing.
   */
  async afterFault(label: string, ticker: string, faultAtMs: number): Promise<ProbeResult> {
    const result: ProbeResult = { label, ticker, faultAtMs, notes: [] };
    this.results.push(result);
    await this.probe(result).catch((err: unknown) => result.notes.push(`the probe failed: ${(err as Error).message ?? String(err)}`));
    return result;
  }

  private async probe(result: ProbeResult): Promise<void> {
    const { ticker } = result;
    const sentinel = this.sentinels.get(`${ticker}/limit`);
    if (sentinel) {
      result.sentinel = sentinel;
      await this.cross(ticker, sentinel, result);
    }
    const walk = this.d.recorder.walk(ticker)!;
    const fresh: ProbeOrder = { orderId: '', kind: 'limit', level: toCent(moveBps(walk, FRESH_BPS)) };
    const placedAt = Date.now();
    fresh.orderId = await this.place(ticker, 'limit', fresh.level);
    result.fresh = fresh;
    const rested = await this.waitFor([fresh.orderId], (s) => s !== 'PENDING', 30_000);
    fresh.openAfterMs = Date.now() - placedAt;
    if (rested.get(fresh.orderId)?.status !== 'OPEN') result.notes.push(`fresh probe ${fresh.orderId} is ${rested.get(fresh.orderId)?.status ?? 'unknown'} ${seconds(fresh.openAfterMs)} after it was placed, not OPEN`);
    else await this.cross(ticker, fresh, result);
    await this.settle(result, [sentinel, fresh].filter((p): p is ProbeOrder => p !== undefined));
  }

  /**
   * Right after a fault: one tick through the sentinel of each of `tickers`, `stepMs` apart (each
   * ticker's tick crosses only its own sentinel, so each sentinel has exactly one chance), over the
   * seconds in which the watch changes hands. Every one must fill within the bound of its tick.
   */
  async staircase(label: string, kind: ProbeKind, tickers: readonly string[], stepMs: number, faultAtMs: number): Promise<ProbeResult[]> {
    const steps = tickers.map((ticker, i) => ({ i, ticker, result: { label: `${label} step ${i + 1}/${tickers.length}`, staircase: label, ticker, faultAtMs, notes: [] } as ProbeResult }));
    this.results.push(...steps.map((s) => s.result));
    const crossed: Promise<void>[] = [];
    for (const { i, ticker, result } of steps) {
      await sleep(Math.max(0, faultAtMs + i * stepMs - Date.now()));
      const sentinel = this.sentinels.get(`${ticker}/${kind}`);
      if (!sentinel) {
        result.notes.push(`no ${kind} sentinel on ${ticker}`);
        continue;
      }
      result.sentinel = sentinel;
      // Sent without waiting for the answer, so the steps keep their pace.
      crossed.push(this.cross(ticker, sentinel, result, 1).catch((err: unknown) => void result.notes.push(`the crossing failed: ${String(err)}`)));
    }
    await Promise.all(crossed);
    await Promise.all(
      steps.map(({ result }) =>
        result.sentinel ? this.settle(result, [result.sentinel]).catch((err: unknown) => void result.notes.push(`the probe failed: ${String(err)}`)) : undefined,
      ),
    );
    return steps.map((s) => s.result);
  }

  /**
   * During an outage (`down()` true once it has begun): one tick through the sentinel's limit
   * while it lasts, sent through the api (which publishes it before it fails to record the bar).
   * The fill is due within the bound after `back` resolves (the outage is over).
   */
  async duringOutage(label: string, ticker: string, down: () => Promise<boolean>, over: () => boolean, back: Promise<number>): Promise<ProbeResult> {
    const result: ProbeResult = { label, ticker, faultAtMs: Date.now(), notes: [] };
    this.results.push(result);
    const sentinel = this.sentinels.get(`${ticker}/limit`)!;
    result.sentinel = sentinel;
    await this.outageProbe(result, sentinel, down, over, back).catch((err: unknown) => result.notes.push(`the probe failed: ${(err as Error).message ?? String(err)}`));
    return result;
  }

  private async outageProbe(result: ProbeResult, sentinel: ProbeOrder, down: () => Promise<boolean>, over: () => boolean, back: Promise<number>): Promise<void> {
    const { ticker } = result;
    const deadline = Date.now() + 30_000;
    let isDown = false;
    while (!over() && Date.now() < deadline) {
      if ((isDown = await down())) break;
      await sleep(50);
    }
    if (!isDown) {
      result.notes.push('the outage was over before the probe saw it: crossed after it instead');
    }
    result.faultAtMs = Date.now();
    await this.cross(ticker, sentinel, result, 1);
    result.dueFromMs = await back;
    await this.settle(result, [sentinel]);
  }

  private async place(ticker: string, kind: ProbeKind, level: Price): Promise<string> {
    this.seq += 1;
    const request: OrderRequest = {
      user_id: this.d.user.id,
      ticker,
      quantity: PROBE_QUANTITY,
      type: kind,
      side: 'buy',
      time_in_force: 'gtc',
      ...(kind === 'limit' ? { limit_price: formatPrice(level) } : { stop_price: formatPrice(level) }),
      client_order_id: `chaos-${this.d.runId}-probe-${this.seq}`,
    };
    const sent: SentOrder = { request, via: 'place', sentAtMs: Date.now(), outcome: 'failed', status: 'unknown' };
    this.d.record.orders.set(request.client_order_id, sent);
    const deadline = Date.now() + this.d.placeTimeoutMs;
    // The same client_order_id every time: a retry after a lost answer gets the same order back.
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const res = await call(this.d.baseUrl, 'POST', '/orders', this.d.user.apiKey, request);
      if (res.kind === 'response' && (res.status === 201 || res.status === 200)) {
        const orderId = (res.body as { id: string }).id;
        sent.outcome = 'accepted';
        sent.status = res.status;
        sent.orderId = orderId;
        this.d.record.accepted.set(orderId, request.client_order_id);
        return orderId;
      }
      sent.status = res.kind === 'response' ? res.status : res.kind;
      sent.outcome = res.kind === 'refused' ? 'refused' : res.kind === 'unknown' || (res.kind === 'response' && res.status >= 500) ? 'unknown' : 'refused';
      if (res.kind === 'response' && res.status < 500 && res.status !== 429) throw new Error(`probe order refused: ${JSON.stringify(res).slice(0, 300)}`);
      await sleep(Math.min(1_000, 100 * 2 ** attempt));
    }
    throw new Error(`probe order of ${ticker} not accepted within ${this.d.placeTimeoutMs} ms`);
  }

  /** One admin tick 0.5 % through the order's level (retried until answered 200, bounded). */
  private async cross(ticker: string, order: ProbeOrder, result: ProbeResult, attemptsMax = 50): Promise<void> {
    const price = crossing(order);
    const from = this.d.recorder.walk(ticker) ?? order.level;
    order.crossSentAtMs = Date.now();
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      const set = await setPrice(this.d.baseUrl, this.d.adminToken, ticker, price, from);
      order.crossStatus ??= set.status;
      if (set.status === 200) return;
      await sleep(200);
    }
    if (attemptsMax > 1) result.notes.push(`PUT /admin/prices/${ticker} never answered 200 (first: ${order.crossStatus})`);
  }

  /**
   * Waits (bounded) for the probes to fill; one not FILLED within the bound gets the price held
   * through its limit for 8 s, to tell a missed tick (it fills then) from an order nobody watches.
   */
  private async settle(result: ProbeResult, orders: ProbeOrder[]): Promise<void> {
    await this.d.recorder.poll().catch(() => undefined);
    for (const o of orders) {
      const tick = this.d.recorder.firstAdminTick(result.ticker, (o.crossSentAtMs ?? 0) - 50, (p) => (o.kind === 'limit' ? p <= o.level : p >= o.level));
      if (tick) o.crossAsOfMs = tick.asOfMs;
    }
    const due = (o: ProbeOrder) => Math.max(result.dueFromMs ?? 0, o.crossAsOfMs ?? o.crossSentAtMs ?? Date.now()) + this.d.boundMs;
    const ids = orders.map((o) => o.orderId);
    const latest = Math.max(...orders.map(due));
    const seen = await this.waitFor(ids, (s) => s === 'FILLED', Math.max(0, latest - Date.now()) + 1_000);
    const unfilled = orders.filter((o) => seen.get(o.orderId)?.status !== 'FILLED');
    for (const o of orders) {
      const s = seen.get(o.orderId);
      o.status = s?.status;
      o.filledAtMs = s?.filledAtMs;
    }
    if (unfilled.length === 0) return;
    // Held through the level: the walk's ticks are interleaved, the admin's keep crossing (each unfilled order in turn).
    const holdUntil = Date.now() + 8_000;
    for (let i = 0; i < 40 && Date.now() < holdUntil; i++) {
      const o = unfilled[i % unfilled.length]!;
      await setPrice(this.d.baseUrl, this.d.adminToken, result.ticker, crossing(o), o.level);
      await sleep(200);
    }
    const after = await this.waitFor(
      unfilled.map((o) => o.orderId),
      (s) => s === 'FILLED',
      3_000,
    );
    for (const o of unfilled) {
      const s = after.get(o.orderId);
      o.status = s?.status;
      o.filledAtMs = s?.filledAtMs;
      o.filledOnSustained = s?.status === 'FILLED';
    }
  }

  /** Polls the database (every 100 ms, errors retried) until every order's status satisfies `done`, or the timeout. */
  private async waitFor(ids: string[], done: (status: string) => boolean, timeoutMs: number): Promise<Map<string, { status: string; filledAtMs?: number }>> {
    const deadline = Date.now() + timeoutMs;
    let seen = new Map<string, { status: string; filledAtMs?: number }>();
    for (;;) {
      try {
        const { rows } = await sql<{ id: string; status: string; filled_ms: string | null }>`
          SELECT id::text, status, floor(extract(epoch FROM filled_at) * 1000)::bigint::text AS filled_ms
            FROM orders WHERE id = ANY(${ids}::uuid[])`.execute(this.d.db);
        seen = new Map(rows.map((r) => [r.id, { status: r.status, ...(r.filled_ms === null ? {} : { filledAtMs: Number(r.filled_ms) }) }]));
        if (ids.every((id) => seen.has(id) && done(seen.get(id)!.status))) return seen;
      } catch {
        /* PostgreSQL down: try again */
      }
      if (Date.now() >= deadline) return seen;
      await sleep(100);
    }
  }

  /** The problems of every probe: not FILLED, or FILLED later than the bound after its crossing. */
  problems(evidence: (ms: number) => string = () => ''): string[] {
    const out: string[] = [];
    for (const r of this.results) {
      for (const [what, o] of [
        ['placed before', r.sentinel],
        ['placed after', r.fresh],
      ] as const) {
        if (!o) continue;
        const crossedAt = o.crossAsOfMs ?? o.crossSentAtMs;
        const dueFrom = Math.max(r.dueFromMs ?? 0, crossedAt ?? 0);
        const crossedBy = o.crossAsOfMs ? `the admin tick at ${new Date(o.crossAsOfMs).toISOString()}` : `no admin tick through it in the tick log (PUT answered ${o.crossStatus})`;
        if (o.status !== 'FILLED') {
          out.push(
            `PROBE ${r.label}: buy ${o.kind} ${formatPrice(o.level)} of ${r.ticker} ${what} the fault (order ${o.orderId}) is ${o.status ?? 'unknown'}; crossed by ${crossedBy}, and then held through its level for 8 s${crossedAt ? evidence(crossedAt) : ''}`,
          );
        } else if (o.filledAtMs! - dueFrom > this.d.boundMs) {
          out.push(
            `PROBE ${r.label}: buy ${o.kind} ${formatPrice(o.level)} of ${r.ticker} ${what} the fault (order ${o.orderId}) FILLED ${seconds(o.filledAtMs! - dueFrom)} after ` +
              `${r.dueFromMs && r.dueFromMs > (crossedAt ?? 0) ? `the end of the outage (crossed by ${crossedBy})` : crossedBy}${o.filledOnSustained ? ' (only once the price was held through its level: the one tick was missed)' : ''}; the bound is ${seconds(this.d.boundMs)}${crossedAt ? evidence(crossedAt) : ''}`,
          );
        }
      }
      for (const n of r.notes) out.push(`PROBE ${r.label}: ${n}`);
    }
    return out;
  }

  /** One line per probe for the summary. */
  lines(runStartMs: number): string[] {
    const at = (ms: number) => `+${((ms - runStartMs) / 1000).toFixed(1)} s`;
    const describe = (o: ProbeOrder | undefined, r: ProbeResult) => {
      if (!o) return 'none';
      const crossedAt = o.crossAsOfMs ?? o.crossSentAtMs ?? 0;
      const outage = r.dueFromMs ? `, ${seconds(Math.abs(o.filledAtMs! - r.dueFromMs))} ${o.filledAtMs! >= r.dueFromMs ? 'after' : 'before'} the outage ended` : '';
      const fill =
        o.status === 'FILLED'
          ? `FILLED ${seconds(o.filledAtMs! - crossedAt)} after its one-tick crossing (${seconds(o.filledAtMs! - r.faultAtMs)} after the fault${outage})${o.filledOnSustained ? ' ONLY WHEN HELD through its limit' : ''}`
          : `${o.status ?? '?'} (NOT FILLED)`;
      const put = o.crossStatus !== undefined && o.crossStatus !== 200 ? `the crossing PUT answered ${o.crossStatus}${o.crossAsOfMs ? ' but its tick is in the log' : ''}, ` : '';
      return `${o.openAfterMs !== undefined ? `OPEN ${seconds(o.openAfterMs)} after placing, ` : ''}${put}${fill}`;
    };
    const lines: string[] = [];
    const stairsDone = new Set<string>();
    for (const r of this.results) {
      if (r.staircase === undefined) {
        lines.push(`chaos: probe ${r.label} at ${at(r.faultAtMs)} on ${r.ticker}: placed before: ${describe(r.sentinel, r)}; placed after: ${describe(r.fresh, r)}`);
        continue;
      }
      if (stairsDone.has(r.staircase)) continue;
      stairsDone.add(r.staircase);
      const steps = this.results.filter((s) => s.staircase === r.staircase);
      const crossedAt = (o: ProbeOrder) => o.crossAsOfMs ?? o.crossSentAtMs ?? 0;
      const filled = steps.filter((s) => s.sentinel?.status === 'FILLED');
      const latencies = filled.map((s) => s.sentinel!.filledAtMs! - crossedAt(s.sentinel!));
      const first = Math.min(...steps.map((s) => (s.sentinel ? crossedAt(s.sentinel) : Infinity)));
      const last = Math.max(...steps.map((s) => (s.sentinel ? crossedAt(s.sentinel) : -Infinity)));
      lines.push(
        `chaos: probe ${r.staircase} at ${at(r.faultAtMs)}: ${steps.length} sentinels (one per ticker) crossed by one tick each from ${at(first)} to ${at(last)}: ` +
          `${filled.length} FILLED (after their tick: min ${seconds(Math.min(...latencies))}, max ${seconds(Math.max(...latencies))})` +
          `${filled.some((s) => s.sentinel!.filledOnSustained) ? `, ${filled.filter((s) => s.sentinel!.filledOnSustained).length} ONLY WHEN HELD` : ''}` +
          `${steps.length > filled.length ? `, NOT FILLED: ${steps.filter((s) => s.sentinel?.status !== 'FILLED').map((s) => `${s.ticker} ${s.sentinel?.status ?? '?'}`).join(', ')}` : ''}`,
      );
    }
    return lines;
  }
}

// ---------------------------------------------------------------------------------------------
// The check: every tick that should have executed a resting order did, in time

export interface RestingRow {
  id: string;
  user_id: string;
  ticker: string;
  side: 'buy' | 'sell';
  type: string;
  time_in_force: string;
  limit_price: string | null;
  stop_price: string | null;
  trail_price: string | null;
  trail_percent: string | null;
  status: string;
  reject_reason: string | null;
  cancel_reason: string | null;
  fill_price: string | null;
  created_ms: string;
  /** When it left OPEN/PENDING (filled_at, canceled_at, expired_at, else updated_at); null while live. */
  ended_ms: string | null;
  replaces: string | null;
}

export async function loadRestingRows(db: Db): Promise<RestingRow[]> {
  const { rows } = await sql<RestingRow>`
    SELECT id::text, user_id::text, ticker, side, type, time_in_force, limit_price::text, stop_price::text,
           trail_price::text, trail_percent::text, status, reject_reason, cancel_reason, fill_price::text,
           floor(extract(epoch FROM created_at) * 1000)::bigint::text AS created_ms,
           floor(extract(epoch FROM CASE status WHEN 'FILLED' THEN filled_at WHEN 'CANCELED' THEN canceled_at
                                                WHEN 'EXPIRED' THEN expired_at WHEN 'OPEN' THEN NULL WHEN 'PENDING' THEN NULL
                                                ELSE updated_at END) * 1000)::bigint::text AS ended_ms,
           replaces::text
      FROM orders WHERE type <> 'market'`.execute(db);
  return rows;
}

/** A span of the run the system could not act in (both engines dead, PostgreSQL down): a tick in it is due from its end. */
export interface Outage {
  label: string;
  fromMs: number;
  toMs: number;
}

export interface Demand {
  order: RestingRow;
  tick: RecordedTick;
  /** The first tick that made the order executable, by its terms and the ticks since its creation. */
  dueMs: number;
  endedMs: number | undefined;
  verdict: 'in time' | 'late' | 'missed';
}

/** `created_at` must precede a tick's as_of by this much for the tick to count (ms truncation, clock reads). */
export const TICK_AFTER_CREATION_MARGIN_MS = 50;

/**
 * The first recorded tick that must have executed `o`, by the contract of the watcher: every tick
 * of the log quoted at or after the order's creation is applied to it, in log order. Sufficient
 * conditions only (a missing tick in the recording can only hide a demand, never invent one):
 * a limit reached; a stop reached; a stop_limit whose stop a tick reached, at a tick that reaches
 * its limit; a trailing stop at a tick beyond the level that the best price of the earlier
 * recorded ticks gives (the true level is at least that close: its best price is at least as good).
 */
export function firstDemand(o: RestingRow, ticks: readonly RecordedTick[]): RecordedTick | undefined {
  const buy = o.side === 'buy';
  const created = Number(o.created_ms) + TICK_AFTER_CREATION_MARGIN_MS;
  const limit = o.limit_price === null ? undefined : priceFromDb(o.limit_price);
  const stop = o.stop_price === null ? undefined : priceFromDb(o.stop_price);
  const trail = o.trail_price === null ? undefined : priceFromDb(o.trail_price);
  const pct = o.trail_percent === null ? undefined : fromDb(o.trail_percent, 2);
  const limitOk = (p: Price) => (buy ? p <= limit! : p >= limit!);
  const stopOk = (p: Price) => (buy ? p >= stop! : p <= stop!);
  let triggered = false;
  let best: Price | undefined;
  for (const t of ticks) {
    if (t.asOfMs < created) continue;
    const p = t.price;
    switch (o.type) {
      case 'limit':
        if (limitOk(p)) return t;
        break;
      case 'stop':
        if (stopOk(p)) return t;
        break;
      case 'stop_limit':
        triggered ||= stopOk(p);
        if (triggered && limitOk(p)) return t;
        break;
      case 'trailing_stop': {
        if (best !== undefined) {
          const extreme = buy ? (p < best ? p : best) : p > best ? p : best;
          // sell: level >= extreme - trail (or extreme x (1 - pct)); buy: level <= extreme + trail (or x (1 + pct)).
          const beyond =
            trail !== undefined
              ? buy
                ? p >= extreme + trail
                : p <= extreme - trail
              : buy
                ? p * 10_000n >= extreme * (10_000n + pct!)
                : p * 10_000n <= extreme * (10_000n - pct!);
          if (beyond) return t;
        }
        best = best === undefined ? p : buy ? (p < best ? p : best) : p > best ? p : best;
        break;
      }
    }
  }
  return undefined;
}

export interface CrossingReport {
  demands: Demand[];
  problems: string[];
  /** Resting day/gtc orders looked at, and ticks recorded. */
  orders: number;
  ticks: number;
}

/**
 * Every day/gtc resting order that a recorded tick made executable must have left OPEN (FILLED,
 * or REJECTED by the final check, or CANCELED/REPLACED/EXPIRED by then) within `boundMs` of that
 * tick, or of the end of an outage the tick fell in. Still OPEN (after the watcher consumed the
 * whole log) is a missed trigger; later is a late one. Filled resting orders must also have filled
 * at a price their terms allow.
 */
export function checkCrossings(rows: readonly RestingRow[], recorder: TickRecorder, outages: readonly Outage[], boundMs: number, context: (ms: number) => string): CrossingReport {
  const problems: string[] = [];
  const demands: Demand[] = [];
  let orders = 0;
  for (const o of rows) {
    if (o.time_in_force !== 'day' && o.time_in_force !== 'gtc') continue;
    orders += 1;
    const tick = firstDemand(o, recorder.ticks(o.ticker));
    const endedMs = o.ended_ms === null ? undefined : Number(o.ended_ms);
    if (tick && (endedMs === undefined || endedMs > tick.asOfMs)) {
      const outage = outages.find((w) => w.fromMs <= tick.asOfMs && tick.asOfMs <= w.toMs);
      const dueMs = (outage ? outage.toMs : tick.asOfMs) + boundMs;
      const verdict = endedMs === undefined ? 'missed' : endedMs > dueMs ? 'late' : 'in time';
      demands.push({ order: o, tick, dueMs, endedMs, verdict });
      if (verdict !== 'in time') {
        const terms = `${o.type} ${o.side} ${o.time_in_force} limit ${o.limit_price ?? '-'} stop ${o.stop_price ?? '-'} trail ${o.trail_price ?? o.trail_percent ?? '-'}${o.trail_percent ? '%' : ''}`;
        const what =
          verdict === 'missed'
            ? `is still ${o.status}`
            : `ended ${o.status}${o.reject_reason ? ` (${o.reject_reason})` : o.cancel_reason ? ` (${o.cancel_reason})` : ''} only ${seconds(endedMs! - tick.asOfMs)} after it`;
        problems.push(
          `${verdict === 'missed' ? 'MISSED TRIGGER' : 'LATE TRIGGER'}: order ${o.id} (${o.ticker} ${terms}, created ${new Date(Number(o.created_ms)).toISOString()}) ` +
            `was made executable by the ${tick.admin ? 'admin' : 'feed'} tick ${formatPrice(tick.price)} at ${new Date(tick.asOfMs).toISOString()} (log entry ${tick.entry}; ${context(tick.asOfMs)}) and ${what}; ` +
            `due by ${new Date(dueMs).toISOString()}${outage ? ` (the end of ${outage.label} + ${seconds(boundMs)})` : ''}${cursorNote(recorder, tick, endedMs)}`,
        );
      }
    }
    if (o.status === 'FILLED' && o.fill_price !== null) {
      const fill = priceFromDb(o.fill_price);
      const buy = o.side === 'buy';
      const limit = o.limit_price === null ? undefined : priceFromDb(o.limit_price);
      const stop = o.stop_price === null ? undefined : priceFromDb(o.stop_price);
      const bad =
        (limit !== undefined && (buy ? fill > limit : fill < limit)) || (o.type === 'stop' && stop !== undefined && (buy ? fill < stop : fill > stop));
      if (bad) problems.push(`FILL PRICE: ${o.type} ${o.side} order ${o.id} (limit ${o.limit_price ?? '-'}, stop ${o.stop_price ?? '-'}) FILLED at ${o.fill_price}`);
    }
  }
  let ticks = 0;
  for (const t of recorder.byTicker.values()) ticks += t.length;
  return { demands, problems, orders, ticks };
}

/** Whether the watcher's saved cursor moved past the tick's entry before the order left OPEN: the tick would not be read again. */
export function cursorNote(recorder: TickRecorder, tick: RecordedTick, endedMs: number | undefined): string {
  const passed = recorder.cursorPassed(tick.entry);
  if (!passed) return '; the saved cursor was not seen past its entry';
  const before = endedMs === undefined || passed.atMs < endedMs;
  return `; the watcher's saved cursor was seen past its entry (at ${passed.cursor}) ${seconds(passed.atMs - tick.asOfMs)} after the tick${before ? ', before the order left OPEN: no watcher reads that tick again' : ''}`;
}

/** The p-th percentile of `values` (nearest rank; 0 for none). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
