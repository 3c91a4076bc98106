import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parsePrice, parseQty, type Price } from '../../core/money.js';
import { initialState, onTick, parseTerms, type OrderTerms, type OrderType, type RawTerms, type RestingState, type Side, type TimeInForce } from '../../core/order-terms.js';
import { RestingIndex, type RestingOrder } from './resting-index.js';
import { uniformFrom } from '../../infra/random.js';

const p = (s: string) => parsePrice(s);

let serial = 0;
function order(side: Side, raw: RawTerms, opts: { id?: string; ticker?: string; quote?: string; createdAtMs?: number; state?: RestingState } = {}): RestingOrder {
  const terms = parseTerms(side, parseQty('10'), raw);
  return {
    id: opts.id ?? `o${String(serial++).padStart(4, '0')}`,
    userId: 'u1',
    ticker: opts.ticker ?? 'AAPL',
    terms,
    state: opts.state ?? initialState(terms, opts.quote === undefined ? undefined : p(opts.quote)),
    createdAtMs: opts.createdAtMs ?? 1_000,
  };
}

const T = 2_000; // a tick time after every order's creation unless said otherwise
const fills = (idx: RestingIndex, price: string, ticker = 'AAPL', asOf = T) =>
  idx.onTick(ticker, p(price), asOf).map((t) => ({ id: t.order.id, price: t.price, triggered: t.triggered }));
const stateOf = (idx: RestingIndex, id: string) => idx.get(id)?.state;

describe('RestingIndex: limits and stops', () => {
  it('executes a buy limit at or below its limit, at the tick price (a gap executes at the gap)', () => {
    const idx = new RestingIndex();
    const a = order('buy', { type: 'limit', limit_price: '140' });
    const b = order('buy', { type: 'limit', limit_price: '139' });
    idx.add(a);
    idx.add(b);
    expect(fills(idx, '140.0001')).toEqual([]);
    expect(fills(idx, '139.5')).toEqual([{ id: a.id, price: p('139.5'), triggered: false }]);
    expect(idx.get(a.id)).toBeUndefined();
    expect(fills(idx, '120')).toEqual([{ id: b.id, price: p('120'), triggered: false }]);
    expect(idx.size).toBe(0);
  });

  it('executes a sell limit at or above its limit', () => {
    const idx = new RestingIndex();
    const s = order('sell', { type: 'limit', limit_price: '160', time_in_force: 'gtc' });
    idx.add(s);
    expect(fills(idx, '159.9999')).toEqual([]);
    expect(fills(idx, '160')).toEqual([{ id: s.id, price: p('160'), triggered: false }]);
  });

  it('triggers stops at or beyond their price and executes them at the tick price', () => {
    const idx = new RestingIndex();
    const buy = order('buy', { type: 'stop', stop_price: '150' });
    const sell = order('sell', { type: 'stop', stop_price: '100' });
    idx.add(buy);
    idx.add(sell);
    expect(fills(idx, '149.9999')).toEqual([]);
    expect(fills(idx, '151')).toEqual([{ id: buy.id, price: p('151'), triggered: true }]);
    expect(fills(idx, '100.0001')).toEqual([]);
    expect(fills(idx, '95')).toEqual([{ id: sell.id, price: p('95'), triggered: true }]);
  });

  it('triggers a stop_limit that gaps past its limit, rests it as a limit, and executes it later', () => {
    const idx = new RestingIndex();
    const sl = order('sell', { type: 'stop_limit', stop_price: '100', limit_price: '99' });
    idx.add(sl);
    expect(idx.drainStateChanges()).toEqual([]);
    expect(fills(idx, '98')).toEqual([]);
    expect(stateOf(idx, sl.id)).toEqual({ triggered: true, extreme: null, stopLevel: null });
    expect(idx.drainStateChanges()).toEqual([{ id: sl.id, state: { triggered: true, extreme: null, stopLevel: null } }]);
    expect(idx.drainStateChanges()).toEqual([]);
    expect(fills(idx, '98.9999')).toEqual([]);
    // Back to the limit, although above the stop: executes.
    expect(fills(idx, '99.5')).toEqual([{ id: sl.id, price: p('99.5'), triggered: true }]);
  });

  it('executes a stop_limit at the tick that triggers it when the limit is reached there', () => {
    const idx = new RestingIndex();
    const bl = order('buy', { type: 'stop_limit', stop_price: '150', limit_price: '151' });
    const gap = order('buy', { type: 'stop_limit', stop_price: '150', limit_price: '150.5' });
    idx.add(bl);
    idx.add(gap);
    expect(fills(idx, '150.75')).toEqual([{ id: bl.id, price: p('150.75'), triggered: true }]);
    expect(stateOf(idx, gap.id)?.triggered).toBe(true);
    expect(fills(idx, '150.5')).toEqual([{ id: gap.id, price: p('150.5'), triggered: true }]);
  });

  it('re-adds a triggered stop_limit (re-sync) straight as a limit', () => {
    const idx = new RestingIndex();
    const sl = order('buy', { type: 'stop_limit', stop_price: '150', limit_price: '149' }, { state: { triggered: true, extreme: null, stopLevel: null } });
    idx.add(sl);
    expect(fills(idx, '140')).toEqual([{ id: sl.id, price: p('140'), triggered: true }]);
  });
});

describe('RestingIndex: trailing stops', () => {
  it('moves a trailing sell up with the market: 5% over 100 -> 110 -> 104.50 executes at 104.50', () => {
    const idx = new RestingIndex();
    const t = order('sell', { type: 'trailing_stop', trail_percent: '5' }, { quote: '100' });
    idx.add(t);
    expect(stateOf(idx, t.id)).toEqual({ triggered: false, extreme: p('100'), stopLevel: p('95') });
    const after: Array<[string, string, string]> = [
      ['110', '110', '104.5'],
      ['107', '110', '104.5'],
      ['104.5001', '110', '104.5'],
    ];
    for (const [price, hwm, level] of after) {
      expect(fills(idx, price)).toEqual([]);
      expect(stateOf(idx, t.id)).toEqual({ triggered: false, extreme: p(hwm), stopLevel: p(level) });
    }
    expect(idx.drainStateChanges()).toEqual([{ id: t.id, state: { triggered: false, extreme: p('110'), stopLevel: p('104.5') } }]);
    const [hit, ...rest] = idx.onTick('AAPL', p('104.5'), T);
    expect(rest).toEqual([]);
    expect(hit).toMatchObject({ price: p('104.5'), triggered: true, order: { id: t.id, state: { triggered: true, extreme: p('110'), stopLevel: p('104.5') } } });
    expect(idx.size).toBe(0);
    expect(idx.drainStateChanges()).toEqual([]);
  });

  it('moves orders that share a high together and executes only those whose level the price reaches', () => {
    const idx = new RestingIndex();
    const tight = order('sell', { type: 'trailing_stop', trail_price: '2' }, { quote: '100' });
    const wide = order('sell', { type: 'trailing_stop', trail_price: '5' }, { quote: '98' });
    const pct = order('sell', { type: 'trailing_stop', trail_percent: '3' }, { quote: '101' });
    for (const o of [tight, wide, pct]) idx.add(o);
    expect(fills(idx, '105')).toEqual([]); // every high becomes 105: levels 103, 100, 101.85
    expect([tight, wide, pct].map((o) => stateOf(idx, o.id)?.stopLevel)).toEqual([p('103'), p('100'), p('101.85')]);
    expect(idx.drainStateChanges().map((c) => c.id)).toEqual([tight.id, wide.id, pct.id]);
    expect(fills(idx, '102')).toEqual([{ id: tight.id, price: p('102'), triggered: true }]);
    expect(fills(idx, '101.85')).toEqual([{ id: pct.id, price: p('101.85'), triggered: true }]);
    expect(stateOf(idx, wide.id)).toEqual({ triggered: false, extreme: p('105'), stopLevel: p('100') });
  });

  it('mirrors trailing buys with the low, the level above the market', () => {
    const idx = new RestingIndex();
    const t = order('buy', { type: 'trailing_stop', trail_price: '2' }, { quote: '50' });
    const pct = order('buy', { type: 'trailing_stop', trail_percent: '10' }, { quote: '50' });
    idx.add(t);
    idx.add(pct);
    expect(fills(idx, '45')).toEqual([]);
    expect(stateOf(idx, t.id)).toEqual({ triggered: false, extreme: p('45'), stopLevel: p('47') });
    expect(stateOf(idx, pct.id)).toEqual({ triggered: false, extreme: p('45'), stopLevel: p('49.5') });
    expect(fills(idx, '46.9999')).toEqual([]);
    expect(fills(idx, '47')).toEqual([{ id: t.id, price: p('47'), triggered: true }]);
    expect(fills(idx, '49.5')).toEqual([{ id: pct.id, price: p('49.5'), triggered: true }]);
  });

  it('starts a trailing stop placed without a quote at its first tick', () => {
    const idx = new RestingIndex();
    const t = order('sell', { type: 'trailing_stop', trail_price: '1' });
    idx.add(t);
    expect(stateOf(idx, t.id)).toEqual({ triggered: false, extreme: null, stopLevel: null });
    expect(fills(idx, '20')).toEqual([]);
    expect(stateOf(idx, t.id)).toEqual({ triggered: false, extreme: p('20'), stopLevel: p('19') });
    expect(idx.drainStateChanges()).toEqual([{ id: t.id, state: { triggered: false, extreme: p('20'), stopLevel: p('19') } }]);
  });
});

describe('RestingIndex: time, removal, replacement, held orders', () => {
  it('leaves orders newer than a tick untouched by it', () => {
    const idx = new RestingIndex();
    const limit = order('buy', { type: 'limit', limit_price: '140' }, { createdAtMs: 5_000 });
    const trail = order('sell', { type: 'trailing_stop', trail_price: '1' }, { quote: '100', createdAtMs: 5_000 });
    idx.add(limit);
    idx.add(trail);
    expect(fills(idx, '130', 'AAPL', 4_999)).toEqual([]);
    expect(fills(idx, '150', 'AAPL', 4_999)).toEqual([]);
    expect(stateOf(idx, trail.id)).toEqual({ triggered: false, extreme: p('100'), stopLevel: p('99') });
    expect(fills(idx, '130', 'AAPL', 5_000)).toEqual([{ id: limit.id, price: p('130'), triggered: false }]);
    // The trailing stop joined at 130: high 130, level 129 — not reached.
    expect(stateOf(idx, trail.id)).toEqual({ triggered: false, extreme: p('130'), stopLevel: p('129') });
  });

  it('leaves orders alone on a tick older than they are even after newer ticks (out of order)', () => {
    const idx = new RestingIndex();
    idx.onTick('AAPL', p('150'), 10_000); // creates nothing: no book yet
    const first = order('buy', { type: 'limit', limit_price: '100' }, { createdAtMs: 1_000 });
    idx.add(first);
    expect(fills(idx, '150', 'AAPL', 10_000)).toEqual([]);
    const late = order('buy', { type: 'limit', limit_price: '140' }, { createdAtMs: 9_000 });
    const trail = order('sell', { type: 'trailing_stop', trail_price: '5' }, { quote: '150', createdAtMs: 9_000 });
    idx.add(late);
    idx.add(trail);
    expect(fills(idx, '151', 'AAPL', 10_001)).toEqual([]);
    expect(fills(idx, '90', 'AAPL', 8_000)).toEqual([{ id: first.id, price: p('90'), triggered: false }]);
    expect(idx.get(late.id)).toBeDefined();
    expect(stateOf(idx, trail.id)).toEqual({ triggered: false, extreme: p('151'), stopLevel: p('146') });
    expect(fills(idx, '139', 'AAPL', 10_002)).toEqual([
      { id: late.id, price: p('139'), triggered: false },
      { id: trail.id, price: p('139'), triggered: true },
    ]);
  });

  it('removes an order with its current state', () => {
    const idx = new RestingIndex();
    const t = order('sell', { type: 'trailing_stop', trail_price: '1' }, { quote: '100' });
    const l = order('buy', { type: 'limit', limit_price: '90' });
    idx.add(t);
    idx.add(l);
    fills(idx, '101');
    expect(idx.remove(t.id)?.state).toEqual({ triggered: false, extreme: p('101'), stopLevel: p('100') });
    expect(idx.remove(t.id)).toBeUndefined();
    // A fresh object equal to the one added: the index keeps none of the caller's objects.
    expect(idx.remove(l.id)).toStrictEqual(l);
    expect(fills(idx, '1')).toEqual([]);
    expect(idx.size).toBe(0);
    expect(idx.tickers()).toEqual([]);
    expect(idx.drainStateChanges()).toEqual([]);
  });

  it('replaces an order added again under the same id, state included', () => {
    const idx = new RestingIndex();
    const a = order('buy', { type: 'limit', limit_price: '140' }, { id: 'x' });
    idx.add(a);
    const b = order('buy', { type: 'limit', limit_price: '130' }, { id: 'x' });
    idx.add(b);
    expect(idx.size).toBe(1);
    expect(fills(idx, '135')).toEqual([]);
    const t = order('sell', { type: 'trailing_stop', trail_price: '1' }, { id: 'x', quote: '100' });
    idx.add(t);
    fills(idx, '110');
    idx.add({ ...t, state: { triggered: false, extreme: p('120'), stopLevel: p('119') } });
    expect(stateOf(idx, 'x')).toEqual({ triggered: false, extreme: p('120'), stopLevel: p('119') });
    expect(idx.drainStateChanges()).toEqual([]);
    expect(fills(idx, '119')).toEqual([{ id: 'x', price: p('119'), triggered: true }]);
  });

  it('holds opg, cls and market orders without ever triggering them, and finds them for session events', () => {
    const idx = new RestingIndex();
    const opg = order('buy', { type: 'limit', limit_price: '200', time_in_force: 'opg' });
    const cls = order('sell', { type: 'market', time_in_force: 'cls' }, { ticker: 'MSFT' });
    const mkt = order('buy', { type: 'market' });
    const day = order('buy', { type: 'limit', limit_price: '1' });
    for (const o of [opg, cls, mkt, day]) idx.add(o);
    expect(fills(idx, '150')).toEqual([]);
    expect(fills(idx, '150', 'MSFT')).toEqual([]);
    expect(idx.size).toBe(4);
    expect(idx.tickers()).toEqual(['AAPL', 'MSFT']);
    expect(idx.ordersWhere((o) => o.terms.timeInForce === 'opg' || o.terms.type === 'market').map((o) => o.id)).toEqual([opg.id, cls.id, mkt.id]);
    expect(idx.ordersWhere((o) => o.terms.timeInForce === 'day').map((o) => o.id)).toEqual([mkt.id, day.id]);
    expect(idx.remove(cls.id)).toStrictEqual(cls);
    expect(idx.tickers()).toEqual(['AAPL']);
  });

  it('returns what a tick executes by creation time, then id', () => {
    const idx = new RestingIndex();
    const orders = [
      order('buy', { type: 'limit', limit_price: '100' }, { id: 'b', createdAtMs: 20 }),
      order('sell', { type: 'stop', stop_price: '100' }, { id: 'a', createdAtMs: 20 }),
      order('sell', { type: 'trailing_stop', trail_price: '1' }, { id: 'z', quote: '120', createdAtMs: 10 }),
      order('buy', { type: 'limit', limit_price: '101' }, { id: 'c', createdAtMs: 30 }),
    ];
    for (const o of orders) idx.add(o);
    expect(fills(idx, '99').map((f) => f.id)).toEqual(['z', 'a', 'b', 'c']);
  });

  it('refuses a watched order without the prices its type needs', () => {
    const idx = new RestingIndex();
    const o = order('buy', { type: 'limit', limit_price: '1' });
    expect(() => idx.add({ ...o, terms: { ...o.terms, limitPrice: null } })).toThrow(/needs limitPrice/);
  });
});

// -----------------------------------------------------------------------------------------------
// Model-based property: the index against a model that applies core onTick to every order.
// -----------------------------------------------------------------------------------------------

type Ticker = 'A' | 'B' | 'D' | 'W';
/**
 * A and B quote around 100 in steps of 0.05; D at 0.0001 to 0.0009 (levels clamp and round);
 * W across 2^63 (no such price is accepted, but the index must stay exact beyond its int64
 * columns: half of W's prices are kept in place, half in the columns' side maps).
 */
const priceAt = (ticker: Ticker, k: number): Price =>
  ticker === 'D' ? BigInt(k + 1) : ticker === 'W' ? 2n ** 63n - 2_000n + BigInt(k) * 500n : 1_000_000n + BigInt(k) * 500n;
const trailAt = (ticker: Ticker, k: number): Price => (ticker === 'D' ? BigInt(k) : BigInt(k) * 250n);

/**
 * The ids of the pool: canonical UUIDs (kept as words), plain strings, and the upper-case text of
 * the same UUIDs (a different id with the same bits: kept as a string, never confused).
 */
const uuidOf = (i: number) => `0192f0c2-7c1e-7000-8000-${i.toString(16).padStart(12, '0')}`;
const poolId = (i: number) => (i % 3 === 0 ? uuidOf(i) : i % 3 === 1 ? `id${i}` : uuidOf(i - 2).toUpperCase());
const poolUser = (i: number) => (i % 2 === 0 ? uuidOf(1_000 + i) : `user-${i}`);

interface TermsSpec {
  side: Side;
  type: OrderType;
  tif: TimeInForce;
  limitK: number;
  stopK: number;
  trail: { byPrice: true; k: number } | { byPrice: false; pct: bigint };
}
type StateSpec = { kind: 'initial'; quoteK: number | null } | { kind: 'raw'; triggered: boolean; extremeK: number; levelK: number };
type Op =
  | { kind: 'add'; ticker: Ticker; id: number; terms: TermsSpec; state: StateSpec; dt: number }
  | { kind: 'remove'; id: number }
  | { kind: 'tick'; ticker: Ticker; k: number; dt: number; walk?: boolean }
  | { kind: 'advance'; by: number }
  | { kind: 'drain' };

const k = fc.integer({ min: 0, max: 8 });
const trailSpec = fc.oneof(
  fc.record({ byPrice: fc.constant(true as const), k: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ byPrice: fc.constant(false as const), pct: fc.oneof(fc.bigInt(1n, 40n), fc.constantFrom(2_500n, 9_999n)) }),
);
const termsSpec = (trailingOnly: boolean): fc.Arbitrary<TermsSpec> =>
  fc.record({
    side: fc.constantFrom<Side>('buy', 'sell'),
    type: trailingOnly ? fc.constant<OrderType>('trailing_stop') : fc.constantFrom<OrderType>('limit', 'stop', 'stop_limit', 'trailing_stop', 'trailing_stop', 'market'),
    tif: fc.constantFrom<TimeInForce>('day', 'gtc', 'gtc', 'day', 'opg', 'cls'),
    limitK: k,
    stopK: k,
    trail: trailSpec,
  });
const stateSpec: fc.Arbitrary<StateSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('initial' as const), quoteK: fc.option(k, { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), triggered: fc.boolean(), extremeK: k, levelK: k }) },
);
const ID_POOL = 16;
const anyTicker = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Ticker>('A') },
  { weight: 1, arbitrary: fc.constant<Ticker>('B') },
  { weight: 1, arbitrary: fc.constant<Ticker>('D') },
  { weight: 1, arbitrary: fc.constant<Ticker>('W') },
);
const ops = (trailingOnly: boolean): fc.Arbitrary<Op[]> => {
  // Trailing only: mostly one ticker, so that groups meld and hold both trail prices and percents.
  const ticker = trailingOnly ? fc.oneof({ weight: 6, arbitrary: fc.constant<Ticker>('A') }, { weight: 1, arbitrary: fc.constant<Ticker>('D') }) : anyTicker;
  return fc.array(
    fc.oneof(
      { weight: 8, arbitrary: fc.record({ kind: fc.constant('add' as const), ticker, id: fc.integer({ min: 0, max: ID_POOL - 1 }), terms: termsSpec(trailingOnly), state: stateSpec, dt: fc.integer({ min: -2, max: 3 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), id: fc.integer({ min: 0, max: ID_POOL - 1 }) }) },
      {
        weight: 10,
        arbitrary: fc.record({
          kind: fc.constant('tick' as const),
          ticker,
          // Trailing only: a walk (k is then the step, -1 to +1), so that orders live long enough to meld.
          k: trailingOnly ? fc.integer({ min: -1, max: 1 }) : k,
          dt: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -3, max: 3 }) }),
          walk: fc.constant(trailingOnly),
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), by: fc.integer({ min: 1, max: 3 }) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('drain' as const) }) },
    ),
    { minLength: 1, maxLength: 150, size: 'max' },
  );
};

function buildTerms(ticker: Ticker, s: TermsSpec): OrderTerms {
  // opg and cls are only for market and limit orders (as parseTerms says).
  const tif = (s.tif === 'opg' || s.tif === 'cls') && s.type !== 'market' && s.type !== 'limit' ? 'gtc' : s.tif;
  const trailing = s.type === 'trailing_stop';
  return {
    side: s.side,
    type: s.type,
    timeInForce: tif,
    quantity: 1_000_000n,
    limitPrice: s.type === 'limit' || s.type === 'stop_limit' ? priceAt(ticker, s.limitK) : null,
    stopPrice: s.type === 'stop' || s.type === 'stop_limit' ? priceAt(ticker, s.stopK) : null,
    trailPrice: trailing && s.trail.byPrice ? trailAt(ticker, s.trail.k) : null,
    trailPercent: trailing && !s.trail.byPrice ? s.trail.pct : null,
  };
}

function buildState(ticker: Ticker, terms: OrderTerms, s: StateSpec): RestingState {
  if (s.kind === 'initial') return initialState(terms, s.quoteK === null ? undefined : priceAt(ticker, s.quoteK));
  if (terms.type === 'trailing_stop') return { triggered: s.triggered, extreme: priceAt(ticker, s.extremeK), stopLevel: priceAt(ticker, s.levelK) };
  return { triggered: s.triggered, extreme: null, stopLevel: null };
}

const watched = (t: OrderTerms) => t.type !== 'market' && (t.timeInForce === 'day' || t.timeInForce === 'gtc');
const byCreationThenId = (a: { createdAtMs: number; id: string }, b: { createdAtMs: number; id: string }) =>
  a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The naive engine: every order in a map, core onTick applied to each on every tick. */
class Model {
  readonly orders = new Map<string, { order: RestingOrder; reported: RestingState }>();

  add(o: RestingOrder) {
    this.orders.delete(o.id);
    this.orders.set(o.id, { order: o, reported: o.state });
  }

  remove(id: string) {
    const m = this.orders.get(id);
    this.orders.delete(id);
    return m?.order;
  }

  tick(ticker: string, price: Price, asOfMs: number) {
    const hits: { id: string; createdAtMs: number; price: Price; triggered: boolean }[] = [];
    for (const [id, m] of this.orders) {
      const o = m.order;
      if (o.ticker !== ticker || !watched(o.terms) || o.createdAtMs > asOfMs) continue;
      const r = onTick(o.terms, o.state, price);
      if (r.kind === 'execute') {
        hits.push({ id, createdAtMs: o.createdAtMs, price: r.price, triggered: r.triggered });
        this.orders.delete(id);
      } else {
        m.order = { ...o, state: r.state };
      }
    }
    return hits.sort(byCreationThenId).map(({ id, price: at, triggered }) => ({ id, price: at, triggered }));
  }

  drain() {
    const out: { id: string; createdAtMs: number; state: RestingState }[] = [];
    for (const m of this.orders.values()) {
      const { state } = m.order;
      const r = m.reported;
      if (state.triggered !== r.triggered || state.extreme !== r.extreme || state.stopLevel !== r.stopLevel) {
        out.push({ id: m.order.id, createdAtMs: m.order.createdAtMs, state });
        m.reported = state;
      }
    }
    return out.sort(byCreationThenId).map(({ id, state }) => ({ id, state }));
  }
}

/**
 * What the index holds follows what it indexes: the stores at most 4x their live slots (they are
 * compacted when 3/4 free), the id table at most 16 cells an order, heaps at most 4 cells an item
 * (and 4 for an empty one), melded groups at most max(compactAfterDeadGroups, orders).
 */
function expectBounded(idx: RestingIndex, minCapacity: number, compactAfterDeadGroups: number) {
  const fp = idx.footprint();
  const size = idx.size;
  const bounds: Record<string, boolean> = {
    slots: fp.slots === size,
    slotCapacity: fp.slotCapacity <= Math.max(minCapacity, 4 * size),
    groupCapacity: fp.groupCapacity <= Math.max(minCapacity, 4 * fp.groups),
    groups: fp.groups <= size + Math.max(compactAfterDeadGroups, size),
    idCells: fp.idCells <= Math.max(16, 16 * size),
    heapCells: fp.heapCells <= 9 * 4 * idx.tickers().length + 4 * (size + 2 * fp.groups),
    sideEntries: size > 0 || fp.sideEntries === 0,
  };
  const broken = Object.keys(bounds).filter((name) => !bounds[name]);
  if (broken.length > 0) expect({ broken, footprint: fp, size }).toEqual({ broken: [] });
}

function runAgainstModel(ops: Op[], compactAfterDeadGroups: number, minCapacity = 64) {
  const idx = new RestingIndex({ compactAfterDeadGroups, minCapacity });
  const model = new Model();
  let now = 1_000;
  const last = new Map<Ticker, number>();
  for (const o of ops) {
    switch (o.kind) {
      case 'add': {
        const terms = buildTerms(o.ticker, o.terms);
        const added: RestingOrder = { id: poolId(o.id), userId: poolUser(o.id), ticker: o.ticker, terms, state: buildState(o.ticker, terms, o.state), createdAtMs: now + o.dt };
        idx.add(added);
        model.add(added);
        break;
      }
      case 'remove':
        expect(idx.remove(poolId(o.id))).toStrictEqual(model.remove(poolId(o.id)));
        break;
      case 'tick': {
        const at = o.walk ? Math.min(8, Math.max(0, (last.get(o.ticker) ?? 4) + o.k)) : o.k;
        last.set(o.ticker, at);
        const price = priceAt(o.ticker, at);
        const got = idx.onTick(o.ticker, price, now + o.dt).map((t) => ({ id: t.order.id, price: t.price, triggered: t.triggered }));
        expect(got).toEqual(model.tick(o.ticker, price, now + o.dt));
        break;
      }
      case 'advance':
        now += o.by;
        break;
      case 'drain':
        expect(idx.drainStateChanges()).toEqual(model.drain());
        break;
    }
    expect(idx.size).toBe(model.orders.size);
    // One comparison a step (an expect costs more than the index's work).
    const pool = Array.from({ length: ID_POOL }, (_, i) => poolId(i));
    expect({ orders: pool.map((id) => idx.get(id)), has: pool.map((id) => idx.has(id)), ids: idx.ids().sort() }).toStrictEqual({
      orders: pool.map((id) => model.orders.get(id)?.order),
      has: pool.map((id) => model.orders.has(id)),
      ids: [...model.orders.keys()].sort(),
    });
    expect(idx.tickers()).toEqual([...new Set([...model.orders.values()].map((m) => m.order.ticker))].sort());
    expectBounded(idx, minCapacity, compactAfterDeadGroups);
  }
  expect(idx.drainStateChanges()).toEqual(model.drain());
  // Emptied, the index gives its memory back (melded groups up to compactAfterDeadGroups aside).
  for (let i = 0; i < ID_POOL; i++) idx.remove(poolId(i));
  expectBounded(idx, minCapacity, compactAfterDeadGroups);
  expect(idx.footprint()).toMatchObject({ slots: 0, slotCapacity: minCapacity, idCells: 16, heapCells: 0, sideEntries: 0 });
}

describe('RestingIndex against the naive model (property)', () => {
  it('gives the same executions, in the same order, and the same states after every step', () => {
    fc.assert(
      fc.property(ops(false), fc.integer({ min: 0, max: 3 }), fc.constantFrom(1, 3, 64), (sequence, compact, minCapacity) => runAgainstModel(sequence, compact, minCapacity)),
      { numRuns: 400 },
    );
  });

  it('does so with trailing stops only (groups melded, split by removals and out-of-order ticks, compacted)', () => {
    fc.assert(
      fc.property(ops(true), fc.integer({ min: 0, max: 3 }), fc.constantFrom(1, 3, 64), (sequence, compact, minCapacity) => runAgainstModel(sequence, compact, minCapacity)),
      { numRuns: 300 },
    );
  });

  it('agrees on a few fixed scenarios (regressions)', () => {
    // Many trailing sells merged by rising ticks, then a fall through all their levels.
    const ops: Op[] = [];
    for (let i = 0; i < ID_POOL; i++) {
      ops.push({ kind: 'add', ticker: 'A', id: i, terms: { side: 'sell', type: 'trailing_stop', tif: 'gtc', limitK: 0, stopK: 0, trail: i % 2 ? { byPrice: true, k: 1 + (i % 8) } : { byPrice: false, pct: BigInt(1 + i) } }, state: { kind: 'initial', quoteK: i % 9 }, dt: 0 });
    }
    for (const step of [1, 3, 5, 8, 7, 6, 4, 2, 0]) ops.push({ kind: 'tick', ticker: 'A', k: step, dt: 0 }, { kind: 'drain' });
    runAgainstModel(ops, 0);
  });

  it('renames every reference to a slot when the store is compacted (pending, untouched, triggered, heaps)', () => {
    const add = (id: number, ticker: Ticker, terms: TermsSpec, state: StateSpec, dt = 0): Op => ({ kind: 'add', ticker, id, terms, state, dt });
    const limit = (side: Side, k: number): TermsSpec => ({ side, type: 'limit', tif: 'gtc', limitK: k, stopK: 0, trail: { byPrice: true, k: 1 } });
    const ops: Op[] = [
      ...Array.from({ length: 11 }, (_, i) => add(i, 'B', limit('sell', 8), { kind: 'initial', quoteK: null })),
      add(15, 'A', limit('buy', 0), { kind: 'initial', quoteK: null }),
      { kind: 'tick', ticker: 'A', k: 4, dt: 0 }, // A has seen a tick: later orders settle at once
      // Settled at once: untouched until A's next tick.
      add(11, 'A', { side: 'sell', type: 'trailing_stop', tif: 'gtc', limitK: 0, stopK: 0, trail: { byPrice: true, k: 1 } }, { kind: 'initial', quoteK: 4 }),
      // Triggered by the next tick without executing: a state change to drain.
      add(12, 'A', { side: 'sell', type: 'stop_limit', tif: 'gtc', limitK: 1, stopK: 5, trail: { byPrice: true, k: 1 } }, { kind: 'initial', quoteK: null }),
      // Newer than every tick: pending.
      add(13, 'A', limit('buy', 7), { kind: 'initial', quoteK: null }, 5),
      add(14, 'A', { side: 'buy', type: 'trailing_stop', tif: 'day', limitK: 0, stopK: 0, trail: { byPrice: false, pct: 10n } }, { kind: 'initial', quoteK: 4 }),
      // Three quarters of the store are freed: it is compacted, the four orders above move to slots 0-3.
      ...Array.from({ length: 11 }, (_, i): Op => ({ kind: 'remove', id: i })),
      { kind: 'remove', id: 15 },
      { kind: 'tick', ticker: 'A', k: 3, dt: 0 },
      { kind: 'drain' },
      { kind: 'advance', by: 6 },
      { kind: 'tick', ticker: 'A', k: 6, dt: 0 },
      { kind: 'drain' },
      { kind: 'tick', ticker: 'A', k: 2, dt: 0 },
      { kind: 'drain' },
    ];
    runAgainstModel(ops, 1024, 1);
  });

  it('reports a change of a melded group to an order an out-of-order tick took out of it', () => {
    const trail = (id: number, quoteK: number, dt = 0): Op => ({ kind: 'add', ticker: 'A', id, terms: { side: 'sell', type: 'trailing_stop', tif: 'gtc', limitK: 0, stopK: 0, trail: { byPrice: true, k: 8 } }, state: { kind: 'initial', quoteK }, dt });
    runAgainstModel(
      [
        trail(0, 0),
        { kind: 'tick', ticker: 'A', k: 0, dt: 0 },
        { kind: 'advance', by: 5 },
        trail(1, 1),
        { kind: 'tick', ticker: 'A', k: 1, dt: 0 },
        { kind: 'drain' },
        { kind: 'tick', ticker: 'A', k: 3, dt: 0 }, // melds both: one group, changed
        { kind: 'tick', ticker: 'A', k: 3, dt: -3 }, // older than order 1: takes it out of the group
        { kind: 'drain' },
      ],
      1024,
    );
  });
});

describe('RestingIndex at scale (no timing: see resting-index.bench.ts)', () => {
  it('agrees with the naive model over 20,000 orders on ticks that trigger nothing and on one that crosses many', () => {
    const idx = new RestingIndex();
    const model = new Model();
    const rand = uniformFrom(7);
    const base = p('100');
    const pick = <X>(xs: readonly X[]) => xs[Math.floor(rand() * xs.length)]!;
    const offset = (lo: number, hi: number) => (base * BigInt(Math.floor((lo + rand() * (hi - lo)) * 10_000))) / 10_000n;
    for (let i = 0; i < 20_000; i++) {
      const side = pick(['buy', 'sell'] as const);
      const type = pick(['limit', 'stop', 'stop_limit', 'trailing_stop'] as const);
      const away = (lo: number, hi: number) => (side === 'buy' === (type === 'limit') ? base - offset(lo, hi) : base + offset(lo, hi));
      const raw: RawTerms =
        type === 'limit'
          ? { type, limit_price: String(away(0.01, 0.3)).replace(/(\d{4})$/, '.$1') }
          : type === 'stop'
            ? { type, stop_price: String(side === 'buy' ? base + offset(0.01, 0.3) : base - offset(0.01, 0.3)).replace(/(\d{4})$/, '.$1') }
            : type === 'stop_limit'
              ? side === 'buy'
                ? { type, stop_price: '110', limit_price: '111' }
                : { type, stop_price: '90', limit_price: '89' }
              : rand() < 0.5
                ? { type, trail_price: String(1 + Math.floor(rand() * 20)) }
                : { type, trail_percent: String(1 + Math.floor(rand() * 20)) };
      const o = order(side, { ...raw, time_in_force: pick(['day', 'gtc']) }, { id: `s${i}`, ticker: 'X', quote: '100', createdAtMs: i % 1_000 });
      idx.add(o);
      model.add(o);
    }
    let t = 2_000;
    for (const price of ['100', '100.01', '100.02', '99.99', '100.5', '100.4']) {
      expect(idx.onTick('X', p(price), t).length).toBe(0);
      expect(model.tick('X', p(price), t++)).toEqual([]);
    }
    expect(idx.drainStateChanges()).toEqual(model.drain());
    const got = idx.onTick('X', p('80'), t).map((h) => ({ id: h.order.id, price: h.price, triggered: h.triggered }));
    const want = model.tick('X', p('80'), t++);
    expect(got.length).toBeGreaterThan(1_000);
    expect(got).toEqual(want);
    for (const id of ['s1', 's2', 's3', 's4', 's5']) expect(idx.get(id)).toEqual(model.orders.get(id)?.order);
    expect(idx.drainStateChanges()).toEqual(model.drain());
    expect(idx.size).toBe(model.orders.size);
  });
});

