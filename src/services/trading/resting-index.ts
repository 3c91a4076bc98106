/**
 * The engine's in-memory index of resting (OPEN) orders, so that a price tick costs
 * O(log n + triggered) instead of a pass over every resting order.
 *
 * The result of `onTick(ticker, price, asOfMs)` is exactly what applying the core rule
 * (`onTick` of core/order-terms) to every watched order of that ticker created at or before
 * `asOfMs` would give: the orders it makes executable are returned (and leave the index), the
 * others keep the state the rule returns. The per-ticker structures:
 *
 * - buy limits (and triggered buy stop_limits): a max-heap by limit price, popped while the top
 *   is at or above the price; sell limits mirrored (min-heap).
 * - untriggered buy stops and stop_limits: a min-heap by stop price, popped while the top is at
 *   or below the price; a stop executes, a stop_limit triggers and executes when its limit is
 *   reached at the same tick, else it moves to the limit heap with `triggered = true`. Sells
 *   mirrored.
 * - trailing stops, per side: GROUPS of orders sharing an extreme (high-water mark of a sell,
 *   low of a buy). A tick at a new high pops every group below it (a min-heap of groups by
 *   extreme) and melds them into one group at that price: from then on they move together.
 *   Inside a group, two pairing heaps (by trail price and by trail percent) put the most
 *   sensitive order on top (the smallest trail gives the level nearest the market, whatever the
 *   rounding in `trailingLevel`, which is monotone in the trail). A heap of groups by their best
 *   level makes a tick look only at groups that trigger. Orders point to their group through a
 *   union-find forwarding pointer (melded groups forward to the survivor), compressed on use and
 *   compacted when dead groups pile up.
 *
 * Every heap is indexed (an item's position is kept in a column), so remove(id) is O(log n) with
 * no tombstones.
 *
 * Time: an order takes part in a tick only if the tick is not older than the order. Orders
 * newer than the latest tick of their ticker wait aside (`pending`, by creation time) and join
 * the structures at the first tick not older than them. A tick older than an order already in
 * the structures (an out-of-order tick: the feed should not send them) takes those orders out
 * first, which costs a pass over that ticker's orders.
 *
 * Trailing stops placed without a quote (extreme null) also wait aside until their first tick.
 *
 * State of trailing orders is kept per group, not per order: `get` and `drainStateChanges`
 * materialize {triggered: false, extreme, stopLevel: trailingLevel(...)} on demand, which is
 * what the core rule returns. An order's state as added is kept until a tick touches it.
 *
 * Memory: the index keeps no object per order and none of the caller's objects. Each order is a
 * slot of typed-array columns (resting-index-store.ts: ids as UUID words, prices as int64, about
 * 115 bytes), groups are columns too (40 bytes a group), heaps are Int32Arrays of slots, and the
 * id lookup is an open-addressing table of slots. `get`, `remove`, `ordersWhere`, `onTick` and
 * `drainStateChanges` build fresh objects. Every structure grows and shrinks with the orders:
 * the stores are renumbered (compacted) when three quarters of them are free.
 */
import type { Price } from '../../core/money.js';
import * as orderTerms from '../../core/order-terms.js';
import type { OrderTerms, RestingState, Side } from '../../core/order-terms.js';
import * as heaps from './heaps.js';
import { SlotHeap, type SlotOrder } from './heaps.js';
import * as columns from './resting-index-store.js';
import { BigColumn, GroupStore, IdTable, MIN_CAPACITY, OrderStore, checkEncodable, type RestingOrder } from './resting-index-store.js';

// Module-local bindings of the imported names a tick uses: under tsx (which runs the benchmark)
// modules are compiled to CommonJS, where each use of an imported name is a getter call; a
// local const costs nothing there or in the tsc build.
const { limitReached, stopReached, trailingLevel } = orderTerms;
const { NIL, pairingDeleteMin, pairingForEach, pairingInsert, pairingMeld, pairingRemove } = heaps;
const { BUY_LIMIT, BUY_STOP, FREE, HELD, PENDING, SELL_LIMIT, SELL_STOP, TOUCHED, TRAIL, TRAIL_IS_PERCENT, TRIGGERED, TYPE_LIMIT, TYPE_MARKET, TYPE_STOP, TYPE_STOP_LIMIT, TYPE_TRAILING } = columns;

export type { RestingOrder } from './resting-index-store.js';

/** An order a tick made executable: it executes at this tick's price. */
export interface Triggered {
  /**
   * The order as it rested. Its state is the one it had before the tick, except for a trailing
   * stop: the extreme and level this tick computed (the level the price reached), triggered.
   */
  order: RestingOrder;
  price: Price;
  /** As the core rule says: true for stops, stop_limits and trailing stops, false for limits. */
  triggered: boolean;
}

export interface StateChange {
  id: string;
  state: RestingState;
}

/**
 * Whether ticks decide the order: limit, stop, stop_limit and trailing_stop orders that are day
 * or gtc. Everything else (opg, cls, market orders waiting for the open) is only held.
 */
export function restsOnPrice(terms: OrderTerms): boolean {
  return terms.type !== 'market' && (terms.timeInForce === 'day' || terms.timeInForce === 'gtc');
}

function missing(order: RestingOrder, field: string): TypeError {
  return new TypeError(`resting order ${order.id}: a ${order.terms.type} order needs ${field}`);
}

function checkTerms(order: RestingOrder): void {
  const t = order.terms;
  if ((t.type === 'limit' || t.type === 'stop_limit') && t.limitPrice === null) throw missing(order, 'limitPrice');
  if ((t.type === 'stop' || t.type === 'stop_limit') && t.stopPrice === null) throw missing(order, 'stopPrice');
  if (t.type === 'trailing_stop' && (t.trailPrice === null) === (t.trailPercent === null)) throw missing(order, 'exactly one of trailPrice and trailPercent');
}

function sameState(a: RestingState, b: RestingState): boolean {
  return a.triggered === b.triggered && a.extreme === b.extreme && a.stopLevel === b.stopLevel;
}

function byCreationThenId(a: { createdAtMs: number; id: string }, b: { createdAtMs: number; id: string }): number {
  if (a.createdAtMs !== b.createdAtMs) return a.createdAtMs - b.createdAtMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Heap orders over the columns (a few shared instances, so the heaps' calls stay monomorphic)
// ---------------------------------------------------------------------------------------------

/** Slots by a price column, highest or lowest first; positions in the store's `pos`. */
class SlotsByPrice implements SlotOrder {
  constructor(
    private readonly store: OrderStore,
    private readonly key: BigColumn,
    private readonly highFirst: boolean,
  ) {}

  before(a: number, b: number): boolean {
    const x = this.key.value(a);
    const y = this.key.value(b);
    return this.highFirst ? x > y : x < y;
  }

  getPos(s: number): number {
    return this.store.pos[s]!;
  }

  setPos(s: number, pos: number): void {
    this.store.pos[s] = pos;
  }
}

/** Slots by creation time, oldest first (the pending heap). */
class SlotsByCreation implements SlotOrder {
  constructor(private readonly store: OrderStore) {}

  before(a: number, b: number): boolean {
    const created = this.store.created;
    return created[a]! < created[b]!;
  }

  getPos(s: number): number {
    return this.store.pos[s]!;
  }

  setPos(s: number, pos: number): void {
    this.store.pos[s] = pos;
  }
}

/** Groups by their extreme (`hwmPos`) or by their best level (`levelPos`). */
class GroupsBy implements SlotOrder {
  constructor(
    private readonly groups: GroupStore,
    private readonly byLevel: boolean,
    private readonly highFirst: boolean,
  ) {}

  before(a: number, b: number): boolean {
    const key = this.byLevel ? this.groups.best : this.groups.hwm;
    const x = key.value(a);
    const y = key.value(b);
    return this.highFirst ? x > y : x < y;
  }

  getPos(g: number): number {
    return (this.byLevel ? this.groups.levelPos : this.groups.hwmPos)[g]!;
  }

  setPos(g: number, pos: number): void {
    (this.byLevel ? this.groups.levelPos : this.groups.hwmPos)[g] = pos;
  }
}

/** What the books and trailing sides share: the stores, the change sets, and the heap orders. */
class Shared {
  readonly store: OrderStore;
  readonly groups: GroupStore;
  readonly ids: IdTable;
  /** Orders whose state changed since the last drain (stop_limit triggers, trailing orders a tick first touched). */
  readonly dirtyEntries = new Set<number>();
  /** Groups whose extreme moved since the last drain. */
  readonly dirtyGroups = new Set<number>();
  /** Melded groups not reclaimed yet. */
  deadGroups = 0;
  readonly buyLimitOrder: SlotsByPrice;
  readonly sellLimitOrder: SlotsByPrice;
  readonly buyStopOrder: SlotsByPrice;
  readonly sellStopOrder: SlotsByPrice;
  readonly pendingOrder: SlotsByCreation;
  readonly sellExtremes: GroupsBy;
  readonly buyExtremes: GroupsBy;
  readonly sellLevels: GroupsBy;
  readonly buyLevels: GroupsBy;
  /** Handed to trailingLevel in place of the order's terms (it reads only these two fields). */
  private readonly trailTerms: Pick<OrderTerms, 'trailPrice' | 'trailPercent'> = { trailPrice: null, trailPercent: null };
  /** The books by index (the `book` column); freed indices are reused. */
  readonly books: (Book | undefined)[] = [];

  constructor(minCapacity: number) {
    const store = (this.store = new OrderStore(minCapacity));
    const groups = (this.groups = new GroupStore(minCapacity));
    this.ids = new IdTable(store);
    this.buyLimitOrder = new SlotsByPrice(store, store.limit, true);
    this.sellLimitOrder = new SlotsByPrice(store, store.limit, false);
    this.buyStopOrder = new SlotsByPrice(store, store.stop, false);
    this.sellStopOrder = new SlotsByPrice(store, store.stop, true);
    this.pendingOrder = new SlotsByCreation(store);
    this.sellExtremes = new GroupsBy(groups, false, false);
    this.buyExtremes = new GroupsBy(groups, false, true);
    this.sellLevels = new GroupsBy(groups, true, true);
    this.buyLevels = new GroupsBy(groups, true, false);
  }

  /** The trailing level of a watched trailing order (one trail field set) at `extreme`. */
  levelOf(side: Side, s: number, extreme: Price): Price {
    const t = this.trailTerms;
    const trail = this.store.trail.value(s);
    if ((this.store.code[s]! & TRAIL_IS_PERCENT) !== 0) {
      t.trailPrice = null;
      t.trailPercent = trail;
    } else {
      t.trailPrice = trail;
      t.trailPercent = null;
    }
    return trailingLevel(side, extreme, t);
  }

  /** The live group of a trailing order in the structures, compressing the path to it. */
  liveGroup(s: number): number {
    const forward = this.groups.forward;
    const first = this.store.group[s]!;
    let root = first;
    while (forward[root] !== NIL) root = forward[root]!;
    let g = first;
    while (forward[g] !== NIL && forward[g] !== root) {
      const nextGroup = forward[g]!;
      forward[g] = root;
      g = nextGroup;
    }
    this.store.group[s] = root;
    return root;
  }

  /** The state of a trailing order: its group's once a tick touched it, else as stored. */
  trailState(s: number): RestingState {
    if ((this.store.bits[s]! & TOUCHED) === 0) return this.store.storedState(s);
    const hwm = this.groups.hwm.value(this.liveGroup(s));
    return { triggered: false, extreme: hwm, stopLevel: this.levelOf(this.store.sideOf(s), s, hwm) };
  }

  /** The order's current state. */
  stateOf(s: number): RestingState {
    const store = this.store;
    if (store.where[s] === TRAIL && (store.bits[s]! & TOUCHED) !== 0) return this.trailState(s);
    return store.storedState(s);
  }

  /**
   * A new RestingOrder for the slot with `state` (its current state by default). `id`, when the
   * caller looked the slot up by it, is the slot's id already: it saves printing the UUID again.
   */
  read(s: number, state: RestingState = this.stateOf(s), id?: string): RestingOrder {
    return this.store.read(s, this.books[this.store.book[s]!]!.ticker, state, id);
  }

  /** The slot leaves the index (executed or removed): already out of its structure. */
  retire(s: number): void {
    const store = this.store;
    this.ids.delete(s);
    this.dirtyEntries.delete(s);
    const book = this.books[store.book[s]!];
    if (book !== undefined) book.count -= 1;
    store.free(s);
  }
}

/** The trailing stops of one side of one ticker. */
class TrailSide {
  readonly side: Side;
  private readonly sell: boolean;
  /** Sells: min-heap of groups by hwm (the groups a new high raises); buys: max-heap by low. */
  readonly extremes: SlotHeap;
  /** Sells: max-heap of groups by best level; buys: min-heap. */
  readonly levels: SlotHeap;
  private readonly shared: Shared;

  constructor(side: Side, shared: Shared) {
    this.side = side;
    this.sell = side === 'sell';
    this.shared = shared;
    this.extremes = new SlotHeap(this.sell ? shared.sellExtremes : shared.buyExtremes);
    this.levels = new SlotHeap(this.sell ? shared.sellLevels : shared.buyLevels);
  }

  add(s: number, extreme: Price): void {
    const { store, groups } = this.shared;
    const g = groups.alloc(extreme);
    store.group[s] = g;
    if ((store.code[s]! & TRAIL_IS_PERCENT) !== 0) groups.byPercent[g] = pairingInsert(store, NIL, s);
    else groups.byPrice[g] = pairingInsert(store, NIL, s);
    groups.size[g] = 1;
    groups.best.set(g, this.bestOf(g));
    this.extremes.push(g);
    this.levels.push(g);
  }

  /** Takes an order out of its group; returns whether that group had changed since the last drain. */
  remove(s: number): boolean {
    const { store, groups } = this.shared;
    const g = this.shared.liveGroup(s);
    const wasDirty = this.shared.dirtyGroups.has(g);
    if ((store.code[s]! & TRAIL_IS_PERCENT) !== 0) groups.byPercent[g] = pairingRemove(store, groups.byPercent[g]!, s);
    else groups.byPrice[g] = pairingRemove(store, groups.byPrice[g]!, s);
    store.group[s] = NIL;
    groups.size[g] = groups.size[g]! - 1;
    if (groups.size[g] === 0) this.drop(g);
    else {
      const best = this.bestOf(g);
      if (best !== groups.best.value(g)) {
        groups.best.set(g, best);
        this.levels.update(g);
      }
    }
    return wasDirty;
  }

  /** Applies a tick: raises (melds) the groups the price passes, then pops the orders it triggers. */
  tick(price: Price, hits: Triggered[]): void {
    const shared = this.shared;
    const { store, groups } = shared;
    const extremes = this.extremes;
    // No closure on the per-tick path: creating one costs more than the peeks of a quiet tick
    // (and more still under tsx, which wraps each creation in a call that names the function).
    let top = extremes.peek();
    if (top !== NIL && this.passes(top, price)) {
      let survivor = extremes.pop();
      let others: number[] | null = null;
      while ((top = extremes.peek()) !== NIL && this.passes(top, price)) (others ??= []).push(extremes.pop());
      if (others !== null) {
        // Union by size keeps forwarding chains short.
        for (let i = 0; i < others.length; i++) {
          const g = others[i]!;
          if (groups.size[g]! > groups.size[survivor]!) {
            others[i] = survivor;
            survivor = g;
          }
        }
        for (const g of others) {
          groups.byPrice[survivor] = pairingMeld(store, groups.byPrice[survivor]!, groups.byPrice[g]!);
          groups.byPercent[survivor] = pairingMeld(store, groups.byPercent[survivor]!, groups.byPercent[g]!);
          groups.size[survivor] = groups.size[survivor]! + groups.size[g]!;
          groups.byPrice[g] = NIL;
          groups.byPercent[g] = NIL;
          groups.size[g] = 0;
          groups.forward[g] = survivor;
          this.levels.remove(g);
          shared.dirtyGroups.delete(g);
          shared.deadGroups += 1;
        }
      }
      groups.hwm.set(survivor, price);
      groups.best.set(survivor, this.bestOf(survivor));
      this.levels.update(survivor);
      extremes.push(survivor);
      shared.dirtyGroups.add(survivor);
    }

    const levels = this.levels;
    const side = this.side;
    for (;;) {
      const g = levels.peek();
      if (g === NIL || !stopReached(side, groups.best.value(g), price)) break;
      const hwm = groups.hwm.value(g);
      for (;;) {
        const s = groups.byPrice[g]!;
        if (s === NIL) break;
        const level = shared.levelOf(side, s, hwm);
        if (!stopReached(side, level, price)) break;
        groups.byPrice[g] = pairingDeleteMin(store, s);
        this.hit(g, s, hwm, level, price, hits);
      }
      for (;;) {
        const s = groups.byPercent[g]!;
        if (s === NIL) break;
        const level = shared.levelOf(side, s, hwm);
        if (!stopReached(side, level, price)) break;
        groups.byPercent[g] = pairingDeleteMin(store, s);
        this.hit(g, s, hwm, level, price, hits);
      }
      if (groups.size[g] === 0) this.drop(g);
      else {
        groups.best.set(g, this.bestOf(g));
        levels.update(g);
      }
    }
  }

  /** The orders of this side (for the rare out-of-order tick). */
  collect(into: number[]): void {
    const { store, groups } = this.shared;
    const push = (s: number) => {
      into.push(s);
    };
    for (let i = 0; i < this.extremes.size; i++) {
      const g = this.extremes.at(i);
      pairingForEach(store, groups.byPrice[g]!, push);
      pairingForEach(store, groups.byPercent[g]!, push);
    }
  }

  /** Orders in this side's groups (stats: a pass over the groups). */
  count(): number {
    let n = 0;
    for (let i = 0; i < this.extremes.size; i++) n += this.shared.groups.size[this.extremes.at(i)]!;
    return n;
  }

  /** Whether a tick at `price` passes the extreme of group `g` (a new high of sells, a new low of buys). */
  private passes(g: number, price: Price): boolean {
    const hwm = this.shared.groups.hwm.value(g);
    return this.sell ? hwm < price : hwm > price;
  }

  private hit(g: number, s: number, hwm: Price, level: Price, price: Price, hits: Triggered[]): void {
    const { store, groups } = this.shared;
    store.group[s] = NIL;
    groups.size[g] = groups.size[g]! - 1;
    hits.push({ order: this.shared.read(s, { triggered: true, extreme: hwm, stopLevel: level }), price, triggered: true });
    this.shared.retire(s);
  }

  private drop(g: number): void {
    this.extremes.remove(g);
    this.levels.remove(g);
    this.shared.dirtyGroups.delete(g);
    this.shared.groups.free(g);
  }

  private bestOf(g: number): Price {
    const { groups } = this.shared;
    const hwm = groups.hwm.value(g);
    let best: Price | null = null;
    const byPrice = groups.byPrice[g]!;
    if (byPrice !== NIL) best = this.shared.levelOf(this.side, byPrice, hwm);
    const byPercent = groups.byPercent[g]!;
    if (byPercent !== NIL) {
      const level = this.shared.levelOf(this.side, byPercent, hwm);
      if (best === null || (this.sell ? level > best : level < best)) best = level;
    }
    return best!;
  }
}

/** The resting orders of one ticker. */
class Book {
  readonly ticker: string;
  /** Orders of the ticker in the index, held ones included. */
  count = 0;
  /** The latest tick seen (orders newer than it wait in `pending`). */
  lastAsOf = -Infinity;
  /** At least the creation time of every order in the structures (a tick older than it takes some out). */
  maxSettledCreated = -Infinity;
  readonly buyLimits: SlotHeap;
  readonly sellLimits: SlotHeap;
  readonly buyStops: SlotHeap;
  readonly sellStops: SlotHeap;
  /** Watched orders not in the structures yet, by creation time. */
  readonly pending: SlotHeap;
  readonly trailSell: TrailSide;
  readonly trailBuy: TrailSide;
  /** Trailing orders that joined the structures since the last tick (their state is still as added). */
  readonly untouched = new Set<number>();

  constructor(ticker: string, shared: Shared) {
    this.ticker = ticker;
    this.buyLimits = new SlotHeap(shared.buyLimitOrder);
    this.sellLimits = new SlotHeap(shared.sellLimitOrder);
    this.buyStops = new SlotHeap(shared.buyStopOrder);
    this.sellStops = new SlotHeap(shared.sellStopOrder);
    this.pending = new SlotHeap(shared.pendingOrder);
    this.trailSell = new TrailSide('sell', shared);
    this.trailBuy = new TrailSide('buy', shared);
  }

  heapOf(where: number): SlotHeap {
    switch (where) {
      case BUY_LIMIT:
        return this.buyLimits;
      case SELL_LIMIT:
        return this.sellLimits;
      case BUY_STOP:
        return this.buyStops;
      case SELL_STOP:
        return this.sellStops;
      case PENDING:
        return this.pending;
      default:
        throw new Error(`no heap for ${where}`);
    }
  }

  /** The heaps of slots (not of groups). */
  slotHeaps(): SlotHeap[] {
    return [this.buyLimits, this.sellLimits, this.buyStops, this.sellStops, this.pending];
  }
}

export class RestingIndex {
  private readonly shared: Shared;
  private readonly bookByTicker = new Map<string, number>();
  private readonly freeBooks: number[] = [];
  private readonly compactAfter: number;

  /**
   * `compactAfterDeadGroups`: melded groups are forgotten (every trailing order pointed straight
   * at its live group) once more than this many, and more than there are orders, have piled up.
   * `minCapacity` (tests): the size of the stores below which they neither start nor shrink.
   */
  constructor(options: { compactAfterDeadGroups?: number; minCapacity?: number } = {}) {
    this.compactAfter = options.compactAfterDeadGroups ?? 1024;
    this.shared = new Shared(options.minCapacity ?? MIN_CAPACITY);
  }

  get size(): number {
    return this.shared.store.size;
  }

  /** Adds an order with its state; an id already in the index is replaced (its state with it). */
  add(order: RestingOrder): void {
    const watched = restsOnPrice(order.terms);
    if (watched) checkTerms(order);
    checkEncodable(order);
    const shared = this.shared;
    const existing = shared.ids.find(order.id);
    if (existing !== NIL) {
      this.removeSlot(existing);
      this.maintain();
    }
    const trailing = watched && order.terms.type === 'trailing_stop';
    const book = this.bookFor(order.ticker);
    const store = shared.store;
    const s = store.alloc();
    store.write(s, order, this.bookByTicker.get(order.ticker)!);
    shared.ids.insert(order.id, s);
    book.count += 1;
    if (!watched) return;
    if (order.createdAtMs > book.lastAsOf || (trailing && order.state.extreme === null)) {
      store.where[s] = PENDING;
      book.pending.push(s);
    } else {
      this.settle(book, s, null);
    }
  }

  /** Takes an order out; returns it with its current state. */
  remove(id: string): RestingOrder | undefined {
    const s = this.shared.ids.find(id);
    if (s === NIL) return undefined;
    const current = this.removeSlot(s, id);
    this.maintain();
    return current;
  }

  /** The order with its current state. */
  get(id: string): RestingOrder | undefined {
    const s = this.shared.ids.find(id);
    return s === NIL ? undefined : this.shared.read(s, undefined, id);
  }

  /** Whether an order is in the index: `get` without building the order. */
  has(id: string): boolean {
    return this.shared.ids.find(id) !== NIL;
  }

  /**
   * The ids of every order in the index, in no particular order: `ordersWhere(() => true)`
   * without building (and sorting) every order, for passes that need only the ids (the prune).
   */
  ids(): string[] {
    const { store } = this.shared;
    const out: string[] = [];
    for (let s = 0; s < store.high; s++) if (store.where[s] !== FREE) out.push(store.idOf(s));
    return out;
  }

  /** Counts for metrics and benchmarks: orders by where they wait, and trailing groups. A pass over the tickers. */
  stats(): { orders: number; tickers: number; pending: number; limits: number; stops: number; trailing: number; trailingGroups: number } {
    let pending = 0;
    let limits = 0;
    let stops = 0;
    let trailingGroups = 0;
    let trailingCount = 0;
    for (const b of this.bookByTicker.values()) {
      const book = this.shared.books[b]!;
      pending += book.pending.size;
      limits += book.buyLimits.size + book.sellLimits.size;
      stops += book.buyStops.size + book.sellStops.size;
      for (const side of [book.trailSell, book.trailBuy]) {
        trailingGroups += side.extremes.size;
        trailingCount += side.count();
      }
    }
    return { orders: this.size, tickers: this.bookByTicker.size, pending, limits, stops, trailing: trailingCount, trailingGroups };
  }

  /**
   * What the index holds in memory, in bytes of typed arrays (tests and benchmarks; the id
   * strings that are not UUIDs and the values beyond int64 are counted apart, as entries).
   */
  footprint(): { slots: number; slotCapacity: number; groups: number; groupCapacity: number; idCells: number; heapCells: number; sideEntries: number } {
    const { store, groups, ids, books } = this.shared;
    let heapCells = 0;
    for (const b of this.bookByTicker.values()) {
      const book = books[b]!;
      for (const heap of [...book.slotHeaps(), book.trailSell.extremes, book.trailSell.levels, book.trailBuy.extremes, book.trailBuy.levels]) heapCells += heap.capacity;
    }
    return { slots: store.size, slotCapacity: store.capacity, groups: groups.used, groupCapacity: groups.capacity, idCells: ids.cells, heapCells, sideEntries: store.sideEntries() };
  }

  /** The tickers with orders in the index (held ones included), sorted. */
  tickers(): string[] {
    return [...this.bookByTicker.keys()].sort();
  }

  /** The orders (with their current state) that satisfy `pred`, by creation time then id. A pass over all orders. */
  ordersWhere(pred: (o: RestingOrder) => boolean): RestingOrder[] {
    const { store } = this.shared;
    const out: RestingOrder[] = [];
    for (let s = 0; s < store.high; s++) {
      if (store.where[s] === FREE) continue;
      const o = this.shared.read(s);
      if (pred(o)) out.push(o);
    }
    return out.sort(byCreationThenId);
  }

  /**
   * Applies one tick of `ticker` at `price`, quoted at `asOfMs`. Returns the orders it makes
   * executable, removed from the index, by creation time then id; the others get the state the
   * core rule gives them (stop_limit triggers, trailing extremes and levels).
   */
  onTick(ticker: string, price: Price, asOfMs: number): Triggered[] {
    const b = this.bookByTicker.get(ticker);
    if (b === undefined) return [];
    const shared = this.shared;
    const store = shared.store;
    const book = shared.books[b]!;
    if (asOfMs > book.lastAsOf) book.lastAsOf = asOfMs;
    if (asOfMs < book.maxSettledCreated) this.takeOutNewerThan(book, asOfMs);
    const pending = book.pending;
    let next = pending.peek();
    while (next !== NIL && store.created[next]! <= asOfMs) {
      pending.pop();
      this.settle(book, next, price);
      next = pending.peek();
    }

    const hits: Triggered[] = [];
    let s: number;
    const buyLimits = book.buyLimits;
    while ((s = buyLimits.peek()) !== NIL && store.limit.value(s) >= price) {
      buyLimits.pop();
      hits.push({ order: shared.read(s, store.storedState(s)), price, triggered: store.typeOf(s) !== TYPE_LIMIT });
      shared.retire(s);
    }
    const sellLimits = book.sellLimits;
    while ((s = sellLimits.peek()) !== NIL && store.limit.value(s) <= price) {
      sellLimits.pop();
      hits.push({ order: shared.read(s, store.storedState(s)), price, triggered: store.typeOf(s) !== TYPE_LIMIT });
      shared.retire(s);
    }
    const buyStops = book.buyStops;
    while ((s = buyStops.peek()) !== NIL && store.stop.value(s) <= price) {
      buyStops.pop();
      this.stopTriggered(book, s, price, hits);
    }
    const sellStops = book.sellStops;
    while ((s = sellStops.peek()) !== NIL && store.stop.value(s) >= price) {
      sellStops.pop();
      this.stopTriggered(book, s, price, hits);
    }
    book.trailSell.tick(price, hits);
    book.trailBuy.tick(price, hits);

    if (book.untouched.size > 0) {
      for (const t of book.untouched) {
        if (store.where[t] !== TRAIL) continue;
        store.bits[t] = store.bits[t]! | TOUCHED;
        if (!sameState(shared.trailState(t), store.storedState(t))) shared.dirtyEntries.add(t);
      }
      book.untouched.clear();
    }
    if (book.count === 0) this.dropBook(ticker, b);
    this.maintain();
    return hits.length > 1 ? hits.sort((x, y) => byCreationThenId(x.order, y.order)) : hits;
  }

  /**
   * The orders whose state changed since the last call (or since they were added), each once
   * with its latest state, by creation time then id. Orders that left the index are not in it.
   */
  drainStateChanges(): StateChange[] {
    const shared = this.shared;
    const { store, groups, dirtyEntries, dirtyGroups } = shared;
    const changed: number[] = [...dirtyEntries];
    const push = (s: number) => {
      if (!dirtyEntries.has(s)) changed.push(s);
    };
    for (const g of dirtyGroups) {
      pairingForEach(store, groups.byPrice[g]!, push);
      pairingForEach(store, groups.byPercent[g]!, push);
    }
    dirtyEntries.clear();
    dirtyGroups.clear();
    const out = changed.map((s) => ({ id: store.idOf(s), createdAtMs: store.created[s]!, state: shared.stateOf(s) }));
    out.sort(byCreationThenId);
    return out.map((o) => ({ id: o.id, state: o.state }));
  }

  private bookFor(ticker: string): Book {
    const shared = this.shared;
    const b = this.bookByTicker.get(ticker);
    if (b !== undefined) return shared.books[b]!;
    const book = new Book(ticker, shared);
    const index = this.freeBooks.pop() ?? shared.books.length;
    shared.books[index] = book;
    this.bookByTicker.set(ticker, index);
    return book;
  }

  private dropBook(ticker: string, b: number): void {
    this.bookByTicker.delete(ticker);
    this.shared.books[b] = undefined;
    this.freeBooks.push(b);
  }

  private removeSlot(s: number, id?: string): RestingOrder {
    const shared = this.shared;
    const current = shared.read(s, undefined, id);
    const b = shared.store.book[s]!;
    const book = shared.books[b]!;
    this.takeOut(book, s);
    shared.retire(s);
    if (book.count === 0) this.dropBook(book.ticker, b);
    return current;
  }

  /** Puts a watched order in the price structures; `tickPrice` is the tick it joins at, if any. */
  private settle(book: Book, s: number, tickPrice: Price | null): void {
    const store = this.shared.store;
    switch (store.typeOf(s)) {
      case TYPE_LIMIT:
        this.toLimits(book, s);
        break;
      case TYPE_STOP:
        this.toStops(book, s);
        break;
      case TYPE_STOP_LIMIT:
        if ((store.bits[s]! & TRIGGERED) !== 0) this.toLimits(book, s);
        else this.toStops(book, s);
        break;
      case TYPE_TRAILING: {
        const extreme = store.extreme.get(s) ?? tickPrice!;
        store.bits[s] = store.bits[s]! & ~TOUCHED;
        store.where[s] = TRAIL;
        (store.isBuy(s) ? book.trailBuy : book.trailSell).add(s, extreme);
        book.untouched.add(s);
        break;
      }
      case TYPE_MARKET:
        throw new Error('market orders are held, not settled');
    }
    const created = store.created[s]!;
    if (created > book.maxSettledCreated) book.maxSettledCreated = created;
  }

  private toLimits(book: Book, s: number): void {
    const store = this.shared.store;
    if (store.isBuy(s)) {
      store.where[s] = BUY_LIMIT;
      book.buyLimits.push(s);
    } else {
      store.where[s] = SELL_LIMIT;
      book.sellLimits.push(s);
    }
  }

  private toStops(book: Book, s: number): void {
    const store = this.shared.store;
    if (store.isBuy(s)) {
      store.where[s] = BUY_STOP;
      book.buyStops.push(s);
    } else {
      store.where[s] = SELL_STOP;
      book.sellStops.push(s);
    }
  }

  /** A stop or untriggered stop_limit reached at `price` (already popped). */
  private stopTriggered(book: Book, s: number, price: Price, hits: Triggered[]): void {
    const shared = this.shared;
    const store = shared.store;
    if (store.typeOf(s) === TYPE_STOP || limitReached(store.sideOf(s), store.limit.value(s), price)) {
      hits.push({ order: shared.read(s, store.storedState(s)), price, triggered: true });
      shared.retire(s);
      return;
    }
    store.bits[s] = store.bits[s]! | TRIGGERED;
    this.toLimits(book, s);
    shared.dirtyEntries.add(s);
  }

  /** Takes an order out of whatever structure holds it (it stays in the id table). */
  private takeOut(book: Book, s: number): void {
    const where = this.shared.store.where[s]!;
    switch (where) {
      case HELD:
      case FREE:
        return;
      case TRAIL:
        (this.shared.store.isBuy(s) ? book.trailBuy : book.trailSell).remove(s);
        book.untouched.delete(s);
        return;
      default:
        book.heapOf(where).remove(s);
    }
  }

  /** An out-of-order tick: orders in the structures that are newer than it wait aside again. */
  private takeOutNewerThan(book: Book, asOfMs: number): void {
    const shared = this.shared;
    const store = shared.store;
    const settled: number[] = [...book.buyLimits.toArray(), ...book.sellLimits.toArray(), ...book.buyStops.toArray(), ...book.sellStops.toArray()];
    const trailing: number[] = [];
    book.trailSell.collect(trailing);
    book.trailBuy.collect(trailing);
    let max = -Infinity;
    for (const s of settled) {
      const created = store.created[s]!;
      if (created <= asOfMs) {
        if (created > max) max = created;
        continue;
      }
      book.heapOf(store.where[s]!).remove(s);
      store.where[s] = PENDING;
      book.pending.push(s);
    }
    for (const s of trailing) {
      const created = store.created[s]!;
      if (created <= asOfMs) {
        if (created > max) max = created;
        continue;
      }
      const state = shared.trailState(s);
      const side = store.isBuy(s) ? book.trailBuy : book.trailSell;
      if (side.remove(s)) shared.dirtyEntries.add(s);
      book.untouched.delete(s);
      if ((store.bits[s]! & TOUCHED) !== 0) store.writeState(s, state);
      store.bits[s] = store.bits[s]! & ~TOUCHED;
      store.where[s] = PENDING;
      book.pending.push(s);
    }
    book.maxSettledCreated = max;
  }

  /** Compacts what has piled up: melded groups, and stores three quarters free. */
  private maintain(): void {
    const shared = this.shared;
    if ((shared.deadGroups > this.compactAfter && shared.deadGroups > this.size) || shared.groups.wantsShrink()) this.compactGroups();
    if (shared.store.wantsCompaction()) this.compactSlots();
  }

  /**
   * Points every trailing order straight at its live group and renumbers the live groups from 0
   * in columns sized to them: the melded groups are reclaimed and the group store shrinks.
   */
  private compactGroups(): void {
    const shared = this.shared;
    const { store, groups } = shared;
    const map = new Int32Array(groups.high).fill(NIL);
    let live = 0;
    for (let s = 0; s < store.high; s++) {
      if (store.where[s] !== TRAIL) continue;
      const g = shared.liveGroup(s);
      if (map[g] === NIL) map[g] = live++;
      store.group[s] = map[g]!;
    }
    groups.renumber(map, live);
    for (const b of this.bookByTicker.values()) {
      const book = shared.books[b]!;
      for (const heap of [book.trailSell.extremes, book.trailSell.levels, book.trailBuy.extremes, book.trailBuy.levels]) heap.renumber(map);
    }
    const dirty = [...shared.dirtyGroups];
    shared.dirtyGroups.clear();
    for (const g of dirty) shared.dirtyGroups.add(map[g]!);
    shared.deadGroups = 0;
  }

  /** Renumbers the live slots from 0 in columns sized to them, and renames every reference to a slot. */
  private compactSlots(): void {
    const shared = this.shared;
    const { store, groups } = shared;
    const map = store.compact();
    for (let g = 0; g < groups.high; g++) {
      const byPrice = groups.byPrice[g]!;
      if (byPrice !== NIL) groups.byPrice[g] = map[byPrice]!;
      const byPercent = groups.byPercent[g]!;
      if (byPercent !== NIL) groups.byPercent[g] = map[byPercent]!;
    }
    const rename = (set: Set<number>) => {
      const old = [...set];
      set.clear();
      for (const s of old) set.add(map[s]!);
    };
    for (const b of this.bookByTicker.values()) {
      const book = shared.books[b]!;
      for (const heap of book.slotHeaps()) heap.renumber(map);
      rename(book.untouched);
    }
    rename(shared.dirtyEntries);
    shared.ids.rebuild();
  }
}
