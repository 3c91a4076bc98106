/**
 * Compact storage for the resting-order index: every order is a slot, an integer, and its fields
 * live in typed-array columns indexed by the slot (struct of arrays). A slot costs about 115 bytes
 * of columns and no JavaScript object at all: no hidden class, no per-order BigInt, no copy of the
 * caller's strings. Orders come back out as freshly built RestingOrder objects, equal field for
 * field to what went in (state aside, which the index keeps current).
 *
 * Exactness. Prices, quantities and trail percents are bigint fixed-point and stay bigint: a
 * BigInt64Array holds an int64 exactly and reading it gives a bigint back. A value outside the
 * range the column holds in place (a database NUMERIC(20, 4) can exceed int64) is kept as the
 * bigint itself in a side map, so nothing is ever clamped or wrapped; null is a reserved int64.
 *
 * Ids. The ids the engine handles are UUIDs as PostgreSQL prints them: 36 characters, lowercase
 * hex, hyphens at 8, 13, 18 and 23. That text is a function of the 128 bits and back, so such an
 * id is kept as four 32-bit words (16 bytes instead of a 56-byte string plus a Map entry) and is
 * printed again when an order is read; any other string (a test id, an upper-case UUID) is kept
 * as is in a map. Two ids are equal exactly when their strings are: a canonical string and a
 * non-canonical one never are, and two canonical strings are equal exactly when their words are.
 */
import type { Price } from '../../core/money.js';
import * as orderTerms from '../../core/order-terms.js';
import type { OrderTerms, OrderType, RestingState, Side, TimeInForce } from '../../core/order-terms.js';
import * as heaps from './heaps.js';
import type { PairingLinks } from './heaps.js';

// Module-local bindings of imported names (under tsx's CommonJS output each use of an imported
// name is a getter call; see resting-index.ts).
const { ORDER_TYPES, TIMES_IN_FORCE } = orderTerms;
const { NIL } = heaps;

// ---------------------------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------------------------

/** The smallest capacity of the slot and group stores (and the size below which they never shrink). */
export const MIN_CAPACITY = 64;

/** Capacities grow by half (by one at least): the slack of a column is at most a third of it. */
export function grownCapacity(capacity: number): number {
  return capacity + Math.max(1, capacity >> 1);
}

/** The capacity a store is given when compacted to `live` items: room to grow by half again. */
export function compactedCapacity(live: number, min: number): number {
  return Math.max(min, live + (live >> 1));
}

const I64_MAX = 2n ** 63n - 1n;
/** The int64 that means null. */
const NULL_MARK = -(2n ** 63n);
/** The int64 that means "the value is in the side map" (it does not fit, or is one of the marks). */
const WIDE_MARK = NULL_MARK + 1n;

/**
 * A column of `bigint | null` in a BigInt64Array: 8 bytes a value, exact for every bigint.
 * Values above WIDE_MARK up to int64's maximum are stored in place; null is NULL_MARK; anything
 * else (beyond int64, or equal to a mark) sits in `wide`, keyed by index, and the slot holds
 * WIDE_MARK. Prices and quantities the API accepts (at most 10^10 and 10^15 units) always fit.
 */
export class BigColumn {
  data: BigInt64Array;
  private wide: Map<number, bigint> | null = null;

  constructor(capacity: number) {
    this.data = new BigInt64Array(capacity).fill(NULL_MARK);
  }

  get(i: number): bigint | null {
    const v = this.data[i]!;
    if (v > WIDE_MARK) return v;
    return v === NULL_MARK ? null : this.wideAt(i);
  }

  /** The value of a slot known to hold one (a heap key): the same as `get`, without the null. */
  value(i: number): bigint {
    const v = this.data[i]!;
    return v > WIDE_MARK ? v : this.wideAt(i);
  }

  set(i: number, v: bigint | null): void {
    const data = this.data;
    if (this.wide !== null && data[i] === WIDE_MARK) this.wide.delete(i);
    if (v === null) data[i] = NULL_MARK;
    else if (v > WIDE_MARK && v <= I64_MAX) data[i] = v;
    else {
      (this.wide ??= new Map()).set(i, v);
      data[i] = WIDE_MARK;
    }
  }

  /** Values kept in the side map (tests, and a bound on it: at most one per slot). */
  get wideCount(): number {
    return this.wide?.size ?? 0;
  }

  resize(capacity: number): void {
    const data = new BigInt64Array(capacity).fill(NULL_MARK);
    data.set(this.data.subarray(0, Math.min(capacity, this.data.length)));
    this.data = data;
  }

  /** Moves every value from index i to map[i] (NIL: dropped) in a column of `capacity`. */
  renumber(capacity: number, map: Int32Array, high: number): void {
    const old = this.data;
    const data = new BigInt64Array(capacity).fill(NULL_MARK);
    for (let i = 0; i < high; i++) {
      const j = map[i]!;
      if (j !== NIL) data[j] = old[i]!;
    }
    this.data = data;
    if (this.wide !== null) {
      const wide = new Map<number, bigint>();
      for (const [i, v] of this.wide) {
        const j = map[i]!;
        if (j !== NIL) wide.set(j, v);
      }
      this.wide = wide.size > 0 ? wide : null;
    }
  }

  private wideAt(i: number): bigint {
    const v = this.wide?.get(i);
    if (v === undefined) throw new Error(`BigColumn: no value at ${i}`);
    return v;
  }
}

type NumberColumn = Int32Array | Uint32Array | Uint8Array | Float64Array;

function resized<T extends NumberColumn>(column: T, length: number, fill = 0): T {
  const next = new (column.constructor as new (n: number) => T)(length);
  if (fill !== 0) next.fill(fill);
  next.set(column.subarray(0, Math.min(length, column.length)) as never);
  return next;
}

/** The column with item i moved to map[i] (NIL: dropped); `stride` values per item. */
function renumbered<T extends NumberColumn>(column: T, length: number, map: Int32Array, high: number, stride = 1, fill = 0): T {
  const next = new (column.constructor as new (n: number) => T)(length * stride);
  if (fill !== 0) next.fill(fill);
  for (let i = 0; i < high; i++) {
    const j = map[i]!;
    if (j === NIL) continue;
    for (let k = 0; k < stride; k++) next[j * stride + k] = column[i * stride + k]!;
  }
  return next;
}

/** The map with its keys moved through `map` (keys mapped to NIL dropped). */
function renumberedKeys<V>(m: Map<number, V>, map: Int32Array): Map<number, V> {
  const next = new Map<number, V>();
  for (const [i, v] of m) {
    const j = map[i]!;
    if (j !== NIL) next.set(j, v);
  }
  return next;
}

// ---------------------------------------------------------------------------------------------
// UUIDs
// ---------------------------------------------------------------------------------------------

/** Where parseUuid leaves the 128 bits it read, as four big-endian 32-bit words. */
export const uuidWords = new Uint32Array(4);

/**
 * Reads `s` into `uuidWords` when it is a UUID in canonical form (36 characters, lowercase hex,
 * hyphens at 8, 13, 18 and 23), which is the only text formatUuid produces: for such strings the
 * two are inverse. Returns false, leaving `uuidWords` unspecified, for every other string.
 */
export function parseUuid(s: string): boolean {
  if (s.length !== 36) return false;
  let word = 0;
  let nibbles = 0;
  let k = 0;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
      continue;
    }
    let digit: number;
    if (c >= 48 && c <= 57) digit = c - 48;
    else if (c >= 97 && c <= 102) digit = c - 87;
    else return false;
    word = (word << 4) | digit;
    if (++nibbles === 8) {
      uuidWords[k++] = word;
      word = 0;
      nibbles = 0;
    }
  }
  return true;
}

/** Copies `uuidWords` to words[at .. at + 3] (four stores: cheaper than a call to TypedArray#set). */
function copyWords(words: Uint32Array, at: number): void {
  words[at] = uuidWords[0]!;
  words[at + 1] = uuidWords[1]!;
  words[at + 2] = uuidWords[2]!;
  words[at + 3] = uuidWords[3]!;
}

const HEX_DIGITS = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
// One scratch buffer for printing: Buffer#toString('latin1') gives a flat one-byte string (a
// template literal would build a rope of pieces several times the size).
const uuidText = Buffer.alloc(36);

/** The canonical text of the UUID in words[at .. at + 3]. */
export function formatUuid(words: Uint32Array, at: number): string {
  let p = 0;
  for (let k = 0; k < 4; k++) {
    const w = words[at + k]!;
    for (let shift = 28; shift >= 0; shift -= 4) {
      if (p === 8 || p === 13 || p === 18 || p === 23) uuidText[p++] = 45;
      uuidText[p++] = HEX_DIGITS[(w >>> shift) & 15]!;
    }
  }
  return uuidText.toString('latin1', 0, 36);
}

/** Mixes the four words of a UUID (UUIDv7 starts with a timestamp, so every word counts). */
function hashWords(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ c;
  h = Math.imul(h ^ (h >>> 13), 0x85ebca6b) ^ d;
  h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
  return (h ^ (h >>> 15)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/** The order as the engine hands it to the index, and as the index gives it back. */
export interface RestingOrder {
  id: string;
  userId: string;
  ticker: string;
  terms: OrderTerms;
  state: RestingState;
  /** A tick older than the order (asOfMs < createdAtMs) never affects it. */
  createdAtMs: number;
}

// Where a slot's order is (the `where` column).
export const HELD = 0;
export const PENDING = 1;
export const BUY_LIMIT = 2;
export const SELL_LIMIT = 3;
export const BUY_STOP = 4;
export const SELL_STOP = 5;
export const TRAIL = 6;
export const FREE = 7;

// The `code` column: side (bit 0: sell), type (bits 1-3, index in ORDER_TYPES), time in force
// (bits 4-6, index in TIMES_IN_FORCE), and bit 7: the trail column holds the trail percent.
const SELL_BIT = 1;
const TYPE_SHIFT = 1;
const TIF_SHIFT = 4;
export const TRAIL_IS_PERCENT = 0x80;
export const TYPE_MARKET = ORDER_TYPES.indexOf('market');
export const TYPE_LIMIT = ORDER_TYPES.indexOf('limit');
export const TYPE_STOP = ORDER_TYPES.indexOf('stop');
export const TYPE_STOP_LIMIT = ORDER_TYPES.indexOf('stop_limit');
export const TYPE_TRAILING = ORDER_TYPES.indexOf('trailing_stop');

// The `bits` column.
/** state.triggered. */
export const TRIGGERED = 1;
/** A trailing order a tick touched since it joined the structures: its state is its group's. */
export const TOUCHED = 2;
const ID_IS_UUID = 4;
const USER_IS_UUID = 8;

/** Refuses what the columns cannot encode (a side, type or time in force outside the enums). */
export function checkEncodable(order: RestingOrder): void {
  const t = order.terms;
  if (t.side !== 'buy' && t.side !== 'sell') throw new TypeError(`resting order ${order.id}: unknown side ${String(t.side)}`);
  if (!(ORDER_TYPES as readonly string[]).includes(t.type)) throw new TypeError(`resting order ${order.id}: unknown type ${String(t.type)}`);
  if (!(TIMES_IN_FORCE as readonly string[]).includes(t.timeInForce)) throw new TypeError(`resting order ${order.id}: unknown time in force ${String(t.timeInForce)}`);
  if (typeof order.id !== 'string' || typeof order.userId !== 'string' || typeof order.ticker !== 'string') throw new TypeError(`resting order ${String(order.id)}: id, userId and ticker must be strings`);
}

/**
 * The orders of the index, one slot each. Slots are handed out from a free list (a freed slot is
 * reused first) and, when three quarters of the capacity are free, `compact` renumbers the live
 * slots from 0 so that the columns shrink: the store is owned by the index's size.
 *
 * The columns are public for the index's hot paths; they are replaced when the store grows or
 * is compacted, so they are always read through the store, never kept in a variable across an
 * `alloc` or a `compact`.
 */
export class OrderStore implements PairingLinks {
  capacity: number;
  /** Live slots. */
  size = 0;
  /** Every slot at or above this one is unused (free slots below it are in the free list). */
  high = 0;
  private freeHead = NIL;
  private readonly minCapacity: number;

  /** The id and user id of each slot as UUID words (4 per slot) when they are canonical UUIDs. */
  idWords: Uint32Array;
  userWords: Uint32Array;
  /** Index of the ticker's book in the index. */
  book: Int32Array;
  code: Uint8Array;
  where: Uint8Array;
  bits: Uint8Array;
  created: Float64Array;
  /** Position in the binary heap the slot is in (pending, limits, stops). */
  pos: Int32Array;
  /** Pairing-heap links of trailing orders, and the free list (through `next`). */
  child: Int32Array;
  next: Int32Array;
  prev: Int32Array;
  /** Trailing orders in the structures: the group they were put in (follow `forward` to the live one). */
  group: Int32Array;
  readonly limit: BigColumn;
  readonly stop: BigColumn;
  /** The trail price, or the trail percent when the code says TRAIL_IS_PERCENT. */
  readonly trail: BigColumn;
  readonly quantity: BigColumn;
  /** The state as added (or as last written back): trailing orders touched by a tick take theirs from their group. */
  readonly extreme: BigColumn;
  readonly stopLevel: BigColumn;
  /** The strings that are not canonical UUIDs, by slot. */
  private otherIds = new Map<number, string>();
  private otherUsers = new Map<number, string>();
  /** Terms with both a trail price and a trail percent (never valid, but kept as given): the percent. */
  private secondTrail = new Map<number, bigint>();

  constructor(minCapacity = MIN_CAPACITY) {
    this.minCapacity = Math.max(1, minCapacity);
    const n = this.minCapacity;
    this.capacity = n;
    this.idWords = new Uint32Array(4 * n);
    this.userWords = new Uint32Array(4 * n);
    this.book = new Int32Array(n);
    this.code = new Uint8Array(n);
    this.where = new Uint8Array(n).fill(FREE);
    this.bits = new Uint8Array(n);
    this.created = new Float64Array(n);
    this.pos = new Int32Array(n).fill(NIL);
    this.child = new Int32Array(n).fill(NIL);
    this.next = new Int32Array(n).fill(NIL);
    this.prev = new Int32Array(n).fill(NIL);
    this.group = new Int32Array(n).fill(NIL);
    this.limit = new BigColumn(n);
    this.stop = new BigColumn(n);
    this.trail = new BigColumn(n);
    this.quantity = new BigColumn(n);
    this.extreme = new BigColumn(n);
    this.stopLevel = new BigColumn(n);
  }

  /** The pairing-heap key of a trailing order: its trail (price or percent; each heap holds one kind). */
  key(slot: number): bigint {
    return this.trail.value(slot);
  }

  /** A free slot (the store may grow: reread the columns). */
  alloc(): number {
    let s = this.freeHead;
    if (s !== NIL) this.freeHead = this.next[s]!;
    else {
      if (this.high === this.capacity) this.grow(grownCapacity(this.capacity));
      s = this.high++;
    }
    // Typed arrays drop writes out of range without a word: a slot past the columns must not exist.
    if (s >= this.capacity) throw new Error(`OrderStore: slot ${s} beyond capacity ${this.capacity}`);
    this.size += 1;
    return s;
  }

  /** Gives a slot back: drops what it held outside the columns, and links it into the free list. */
  free(s: number): void {
    this.limit.set(s, null);
    this.stop.set(s, null);
    this.trail.set(s, null);
    this.quantity.set(s, null);
    this.extreme.set(s, null);
    this.stopLevel.set(s, null);
    this.otherIds.delete(s);
    this.otherUsers.delete(s);
    this.secondTrail.delete(s);
    this.where[s] = FREE;
    this.pos[s] = NIL;
    this.child[s] = NIL;
    this.prev[s] = NIL;
    this.group[s] = NIL;
    this.next[s] = this.freeHead;
    this.freeHead = s;
    this.size -= 1;
  }

  /** Writes an order into slot `s` (checked with checkEncodable), held: the index places it. */
  write(s: number, order: RestingOrder, book: number): void {
    const t = order.terms;
    let bits = order.state.triggered ? TRIGGERED : 0;
    if (parseUuid(order.id)) {
      copyWords(this.idWords, 4 * s);
      bits |= ID_IS_UUID;
    } else this.otherIds.set(s, order.id);
    if (parseUuid(order.userId)) {
      copyWords(this.userWords, 4 * s);
      bits |= USER_IS_UUID;
    } else this.otherUsers.set(s, order.userId);
    let code = (t.side === 'sell' ? SELL_BIT : 0) | (ORDER_TYPES.indexOf(t.type) << TYPE_SHIFT) | (TIMES_IN_FORCE.indexOf(t.timeInForce) << TIF_SHIFT);
    if (t.trailPrice === null && t.trailPercent !== null) {
      code |= TRAIL_IS_PERCENT;
      this.trail.set(s, t.trailPercent);
    } else {
      this.trail.set(s, t.trailPrice);
      if (t.trailPercent !== null) this.secondTrail.set(s, t.trailPercent);
    }
    this.code[s] = code;
    this.bits[s] = bits;
    this.book[s] = book;
    this.where[s] = HELD;
    this.created[s] = order.createdAtMs;
    this.pos[s] = NIL;
    this.child[s] = NIL;
    this.next[s] = NIL;
    this.prev[s] = NIL;
    this.group[s] = NIL;
    this.limit.set(s, t.limitPrice);
    this.stop.set(s, t.stopPrice);
    this.quantity.set(s, t.quantity);
    this.extreme.set(s, order.state.extreme);
    this.stopLevel.set(s, order.state.stopLevel);
  }

  /** True when the slot's id is `id`'s words (which are in `uuidWords`, from parseUuid). */
  hasUuidId(s: number): boolean {
    if ((this.bits[s]! & ID_IS_UUID) === 0) return false;
    const w = this.idWords;
    const at = 4 * s;
    return w[at] === uuidWords[0] && w[at + 1] === uuidWords[1] && w[at + 2] === uuidWords[2] && w[at + 3] === uuidWords[3];
  }

  idIsUuid(s: number): boolean {
    return (this.bits[s]! & ID_IS_UUID) !== 0;
  }

  /** The hash of a slot's UUID id (the id table's home for it). */
  idHash(s: number): number {
    const w = this.idWords;
    const at = 4 * s;
    return hashWords(w[at]!, w[at + 1]!, w[at + 2]!, w[at + 3]!);
  }

  idOf(s: number): string {
    return (this.bits[s]! & ID_IS_UUID) !== 0 ? formatUuid(this.idWords, 4 * s) : this.otherIds.get(s)!;
  }

  userIdOf(s: number): string {
    return (this.bits[s]! & USER_IS_UUID) !== 0 ? formatUuid(this.userWords, 4 * s) : this.otherUsers.get(s)!;
  }

  sideOf(s: number): Side {
    return (this.code[s]! & SELL_BIT) !== 0 ? 'sell' : 'buy';
  }

  isBuy(s: number): boolean {
    return (this.code[s]! & SELL_BIT) === 0;
  }

  /** The type's index in ORDER_TYPES (compare with TYPE_LIMIT and the others). */
  typeOf(s: number): number {
    return (this.code[s]! >> TYPE_SHIFT) & 7;
  }

  termsOf(s: number): OrderTerms {
    const code = this.code[s]!;
    const percent = (code & TRAIL_IS_PERCENT) !== 0;
    return {
      side: (code & SELL_BIT) !== 0 ? 'sell' : 'buy',
      type: ORDER_TYPES[(code >> TYPE_SHIFT) & 7] as OrderType,
      timeInForce: TIMES_IN_FORCE[(code >> TIF_SHIFT) & 7] as TimeInForce,
      quantity: this.quantity.get(s)!,
      limitPrice: this.limit.get(s),
      stopPrice: this.stop.get(s),
      trailPrice: percent ? null : this.trail.get(s),
      trailPercent: percent ? this.trail.get(s) : (this.secondTrail.get(s) ?? null),
    };
  }

  /** The state as stored (for a trailing order a tick touched, the index computes it from its group). */
  storedState(s: number): RestingState {
    return { triggered: (this.bits[s]! & TRIGGERED) !== 0, extreme: this.extreme.get(s), stopLevel: this.stopLevel.get(s) };
  }

  writeState(s: number, state: RestingState): void {
    this.bits[s] = state.triggered ? this.bits[s]! | TRIGGERED : this.bits[s]! & ~TRIGGERED;
    this.extreme.set(s, state.extreme);
    this.stopLevel.set(s, state.stopLevel);
  }

  /** A new RestingOrder for the slot, with `state` (and `id`, when the caller has the slot's id string). */
  read(s: number, ticker: string, state: RestingState, id: string = this.idOf(s)): RestingOrder {
    return { id, userId: this.userIdOf(s), ticker, terms: this.termsOf(s), state, createdAtMs: this.created[s]! };
  }

  /** Values and strings kept outside the columns (tests: each is freed with its slot). */
  sideEntries(): number {
    let n = this.otherIds.size + this.otherUsers.size + this.secondTrail.size;
    for (const column of [this.limit, this.stop, this.trail, this.quantity, this.extreme, this.stopLevel]) n += column.wideCount;
    return n;
  }

  /** True when compact() would shrink the store (three quarters of it free). */
  wantsCompaction(): boolean {
    return this.capacity > this.minCapacity && this.size * 4 < this.capacity;
  }

  /**
   * Renumbers the live slots 0 .. size - 1 (in slot order) in columns sized to them, and returns
   * the map from old slot to new (NIL for free slots) for the index to rename its references.
   * Pairing links, being columns, are renamed here.
   */
  compact(): Int32Array {
    const high = this.high;
    const map = new Int32Array(high).fill(NIL);
    let n = 0;
    for (let i = 0; i < high; i++) if (this.where[i] !== FREE) map[i] = n++;
    const capacity = compactedCapacity(n, this.minCapacity);
    this.idWords = renumbered(this.idWords, capacity, map, high, 4);
    this.userWords = renumbered(this.userWords, capacity, map, high, 4);
    this.book = renumbered(this.book, capacity, map, high);
    this.code = renumbered(this.code, capacity, map, high);
    this.where = renumbered(this.where, capacity, map, high, 1, FREE);
    this.bits = renumbered(this.bits, capacity, map, high);
    this.created = renumbered(this.created, capacity, map, high);
    this.pos = renumbered(this.pos, capacity, map, high, 1, NIL);
    this.group = renumbered(this.group, capacity, map, high, 1, NIL);
    const rename = (links: Int32Array) => {
      const next = renumbered(links, capacity, map, high, 1, NIL);
      for (let j = 0; j < n; j++) {
        const v = next[j]!;
        if (v !== NIL) next[j] = map[v]!;
      }
      return next;
    };
    this.child = rename(this.child);
    this.next = rename(this.next);
    this.prev = rename(this.prev);
    for (const column of [this.limit, this.stop, this.trail, this.quantity, this.extreme, this.stopLevel]) column.renumber(capacity, map, high);
    this.otherIds = renumberedKeys(this.otherIds, map);
    this.otherUsers = renumberedKeys(this.otherUsers, map);
    this.secondTrail = renumberedKeys(this.secondTrail, map);
    this.capacity = capacity;
    this.high = n;
    this.freeHead = NIL;
    return map;
  }

  private grow(capacity: number): void {
    this.idWords = resized(this.idWords, 4 * capacity);
    this.userWords = resized(this.userWords, 4 * capacity);
    this.book = resized(this.book, capacity);
    this.code = resized(this.code, capacity);
    this.where = resized(this.where, capacity, FREE);
    this.bits = resized(this.bits, capacity);
    this.created = resized(this.created, capacity);
    this.pos = resized(this.pos, capacity, NIL);
    this.child = resized(this.child, capacity, NIL);
    this.next = resized(this.next, capacity, NIL);
    this.prev = resized(this.prev, capacity, NIL);
    this.group = resized(this.group, capacity, NIL);
    for (const column of [this.limit, this.stop, this.trail, this.quantity, this.extreme, this.stopLevel]) column.resize(capacity);
    this.capacity = capacity;
  }
}

// ---------------------------------------------------------------------------------------------
// Id -> slot
// ---------------------------------------------------------------------------------------------

const MIN_TABLE = 16;

/**
 * From order id to slot. Canonical UUIDs are in an open-addressing table (linear probing, at most
 * three quarters full, 4 bytes a cell: 5 to 11 bytes per order) whose cells hold slot + 1 and
 * whose keys are the slots' id words; deletion shifts the following cells back, so there are no
 * tombstones. Other ids are in a Map. Both follow the number of orders, up and down.
 */
export class IdTable {
  private table = new Int32Array(MIN_TABLE);
  private count = 0;
  private readonly others = new Map<string, number>();
  private readonly store: OrderStore;

  constructor(store: OrderStore) {
    this.store = store;
  }

  get size(): number {
    return this.count + this.others.size;
  }

  /** Cells of the UUID table (tests: it follows the size). */
  get cells(): number {
    return this.table.length;
  }

  find(id: string): number {
    if (!parseUuid(id)) return this.others.get(id) ?? NIL;
    const table = this.table;
    const mask = table.length - 1;
    for (let i = hashWords(uuidWords[0]!, uuidWords[1]!, uuidWords[2]!, uuidWords[3]!) & mask; ; i = (i + 1) & mask) {
      const cell = table[i]!;
      if (cell === 0) return NIL;
      if (this.store.hasUuidId(cell - 1)) return cell - 1;
    }
  }

  /** Records the slot of `id` (not in the table; the store already holds the slot's id). */
  insert(id: string, s: number): void {
    if (!this.store.idIsUuid(s)) {
      this.others.set(id, s);
      return;
    }
    if ((this.count + 1) * 4 > this.table.length * 3) this.rehash(this.table.length * 2);
    this.place(s);
    this.count += 1;
  }

  /** Forgets slot `s` (whose id is still in the store). */
  delete(s: number): void {
    if (!this.store.idIsUuid(s)) {
      this.others.delete(this.store.idOf(s));
      return;
    }
    const table = this.table;
    const mask = table.length - 1;
    let i = this.store.idHash(s) & mask;
    while (table[i] !== s + 1) {
      if (table[i] === 0) throw new Error(`IdTable: slot ${s} is not in the table`);
      i = (i + 1) & mask;
    }
    // Backward-shift deletion: a following cell moves into the hole unless its home lies in the
    // cyclic range (hole, cell], where the probe for it would not pass the hole.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const cell = table[j]!;
      if (cell === 0) break;
      const home = this.store.idHash(cell - 1) & mask;
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        table[i] = cell;
        i = j;
      }
    }
    table[i] = 0;
    this.count -= 1;
    if (this.table.length > MIN_TABLE && this.count * 8 < this.table.length) this.rehash(this.table.length >> 1);
  }

  /** Rebuilds from the store's live slots (after the store was compacted: every slot moved). */
  rebuild(): void {
    const store = this.store;
    this.others.clear();
    let uuids = 0;
    for (let s = 0; s < store.high; s++) if (store.where[s] !== FREE && store.idIsUuid(s)) uuids += 1;
    let cells = MIN_TABLE;
    while (uuids * 4 > cells * 3) cells *= 2;
    this.table = new Int32Array(cells);
    this.count = uuids;
    for (let s = 0; s < store.high; s++) {
      if (store.where[s] === FREE) continue;
      if (store.idIsUuid(s)) this.place(s);
      else this.others.set(store.idOf(s), s);
    }
  }

  private place(s: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let i = this.store.idHash(s) & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = s + 1;
  }

  private rehash(cells: number): void {
    const old = this.table;
    this.table = new Int32Array(cells);
    for (const cell of old) if (cell !== 0) this.place(cell - 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Trailing groups
// ---------------------------------------------------------------------------------------------

/**
 * The groups of trailing orders (orders of one side of one ticker sharing an extreme), as
 * columns indexed by group id: 40 bytes a group. A group emptied by removals or executions is
 * freed at once; a group melded into another forwards to it and is reclaimed when the index
 * compacts the groups (every order then points straight at its live group), which also shrinks
 * the columns when three quarters of them are unused.
 */
export class GroupStore {
  capacity: number;
  /** Groups allocated and not freed: live ones and melded ones not reclaimed yet. */
  used = 0;
  high = 0;
  private freeHead = NIL;
  private readonly minCapacity: number;
  /** The extreme its orders share: high-water mark of sells, low of buys. */
  readonly hwm: BigColumn;
  /** The level of its most sensitive order: the highest of sells, the lowest of buys. */
  readonly best: BigColumn;
  /** Pairing-heap roots (order slots) of its orders with a trail price, and with a trail percent. */
  byPrice: Int32Array;
  byPercent: Int32Array;
  size: Int32Array;
  hwmPos: Int32Array;
  levelPos: Int32Array;
  /** The group it was melded into, or NIL (the free list also runs through it). */
  forward: Int32Array;

  constructor(minCapacity = MIN_CAPACITY) {
    this.minCapacity = Math.max(1, minCapacity);
    const n = this.minCapacity;
    this.capacity = n;
    this.hwm = new BigColumn(n);
    this.best = new BigColumn(n);
    this.byPrice = new Int32Array(n).fill(NIL);
    this.byPercent = new Int32Array(n).fill(NIL);
    this.size = new Int32Array(n);
    this.hwmPos = new Int32Array(n).fill(NIL);
    this.levelPos = new Int32Array(n).fill(NIL);
    this.forward = new Int32Array(n).fill(NIL);
  }

  alloc(hwm: Price): number {
    let g = this.freeHead;
    if (g !== NIL) this.freeHead = this.forward[g]!;
    else {
      if (this.high === this.capacity) this.grow(grownCapacity(this.capacity));
      g = this.high++;
    }
    if (g >= this.capacity) throw new Error(`GroupStore: group ${g} beyond capacity ${this.capacity}`);
    this.hwm.set(g, hwm);
    this.best.set(g, null);
    this.byPrice[g] = NIL;
    this.byPercent[g] = NIL;
    this.size[g] = 0;
    this.hwmPos[g] = NIL;
    this.levelPos[g] = NIL;
    this.forward[g] = NIL;
    this.used += 1;
    return g;
  }

  /** Frees an empty group that no order can reach. */
  free(g: number): void {
    this.hwm.set(g, null);
    this.best.set(g, null);
    this.byPrice[g] = NIL;
    this.byPercent[g] = NIL;
    this.size[g] = 0;
    this.forward[g] = this.freeHead;
    this.freeHead = g;
    this.used -= 1;
  }

  wantsShrink(): boolean {
    return this.capacity > this.minCapacity && this.used * 4 < this.capacity;
  }

  /** Keeps only the groups map[] names (0 .. live - 1), in columns sized to them; forwards are cleared. */
  renumber(map: Int32Array, live: number): void {
    const high = this.high;
    const capacity = compactedCapacity(live, this.minCapacity);
    this.hwm.renumber(capacity, map, high);
    this.best.renumber(capacity, map, high);
    this.byPrice = renumbered(this.byPrice, capacity, map, high, 1, NIL);
    this.byPercent = renumbered(this.byPercent, capacity, map, high, 1, NIL);
    this.size = renumbered(this.size, capacity, map, high);
    this.hwmPos = renumbered(this.hwmPos, capacity, map, high, 1, NIL);
    this.levelPos = renumbered(this.levelPos, capacity, map, high, 1, NIL);
    this.forward = new Int32Array(capacity).fill(NIL);
    this.capacity = capacity;
    this.high = live;
    this.used = live;
    this.freeHead = NIL;
  }

  private grow(capacity: number): void {
    this.hwm.resize(capacity);
    this.best.resize(capacity);
    this.byPrice = resized(this.byPrice, capacity, NIL);
    this.byPercent = resized(this.byPercent, capacity, NIL);
    this.size = resized(this.size, capacity);
    this.hwmPos = resized(this.hwmPos, capacity, NIL);
    this.levelPos = resized(this.levelPos, capacity, NIL);
    this.forward = resized(this.forward, capacity, NIL);
    this.capacity = capacity;
  }
}
