import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ORDER_TYPES, TIMES_IN_FORCE, type OrderTerms } from '../../core/order-terms.js';
import { NIL } from './heaps.js';
import { BigColumn, FREE, HELD, IdTable, OrderStore, formatUuid, parseUuid, uuidWords, type RestingOrder } from './resting-index-store.js';

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
/** Every bigint the columns must keep, with the edges of the in-place range and the two marks. */
const anyBigint = fc.oneof(
  fc.bigInt(),
  fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
  fc.constantFrom(0n, 1n, -1n, I64_MIN, I64_MIN + 1n, I64_MIN + 2n, I64_MAX, I64_MAX + 1n, I64_MIN - 1n, 10_000_000_000n, 1_000_000_000_000_000n),
);
const nullableBigint = fc.option(anyBigint, { nil: null });

const hex = (n: number) => fc.array(fc.constantFrom(...'0123456789abcdef'), { minLength: n, maxLength: n }).map((cs) => cs.join(''));
const canonicalUuid = fc.tuple(hex(8), hex(4), hex(4), hex(4), hex(12)).map((parts) => parts.join('-'));
/** Ids of every kind: canonical UUIDs, the same in upper case, near misses, and any string. */
const anyId = fc.oneof(
  { weight: 4, arbitrary: canonicalUuid },
  { weight: 1, arbitrary: canonicalUuid.map((u) => u.toUpperCase()) },
  { weight: 1, arbitrary: canonicalUuid.map((u) => `${u.slice(0, 8)}${u.slice(9)}-`) },
  { weight: 1, arbitrary: canonicalUuid.map((u) => `${u.slice(0, 35)}g`) },
  { weight: 1, arbitrary: canonicalUuid.map((u) => ` ${u.slice(1)}`) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
);

describe('UUID words', () => {
  it('reads back to the same text for every canonical UUID, and formats every 128 bits canonically', () => {
    fc.assert(
      fc.property(canonicalUuid, (u) => {
        expect(parseUuid(u)).toBe(true);
        expect(formatUuid(uuidWords, 0)).toBe(u);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }), (words) => {
        const w = Uint32Array.from(words);
        const text = formatUuid(w, 0);
        expect(text).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        expect(parseUuid(text)).toBe(true);
        expect([...uuidWords]).toEqual(words);
      }),
    );
  });

  it('refuses every string that is not a canonical UUID', () => {
    const canonical = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    fc.assert(
      fc.property(anyId, (s) => {
        expect(parseUuid(s)).toBe(canonical.test(s));
      }),
    );
    for (const s of ['', '0192f0c2-7c1e-7000-8000-00000000000', '0192F0C2-7C1E-7000-8000-000000000000', '0192f0c2_7c1e-7000-8000-000000000000', '0192f0c27c1e-7000-8000-0000000000000']) {
      expect(parseUuid(s)).toBe(false);
    }
  });

  it('prints a flat string (not a rope of pieces)', () => {
    expect(parseUuid('0192f0c2-7c1e-7000-8000-00000000002a')).toBe(true);
    const text = formatUuid(uuidWords, 0);
    expect(text).toBe('0192f0c2-7c1e-7000-8000-00000000002a');
    // A fresh string each time, equal to the last.
    expect(formatUuid(uuidWords, 0)).toBe(text);
  });
});

describe('BigColumn', () => {
  it('keeps every bigint and null exactly, in place or in its side map, and frees the side map entry when overwritten', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), nullableBigint), { maxLength: 60 }), (writes) => {
        const col = new BigColumn(8);
        const model: (bigint | null)[] = Array.from({ length: 8 }, () => null);
        for (const [i, v] of writes) {
          col.set(i, v);
          model[i] = v;
          for (let j = 0; j < 8; j++) expect(col.get(j)).toBe(model[j]);
          const wide = model.filter((x) => x !== null && (x <= I64_MIN + 1n || x > I64_MAX)).length;
          expect(col.wideCount).toBe(wide);
        }
        col.resize(16);
        for (let j = 0; j < 8; j++) expect(col.get(j)).toBe(model[j]);
        for (let j = 8; j < 16; j++) expect(col.get(j)).toBeNull();
        // Keep the odd indices, moved to 0 .. 3.
        const map = Int32Array.from({ length: 8 }, (_, i) => (i % 2 === 1 ? i >> 1 : NIL));
        col.renumber(4, map, 8);
        for (let j = 0; j < 4; j++) expect(col.get(j)).toBe(model[2 * j + 1]);
      }),
      { numRuns: 300 },
    );
  });

  it('reads a heap key with value(), in place or wide', () => {
    const col = new BigColumn(2);
    col.set(0, 5n);
    col.set(1, 2n ** 70n);
    expect([col.value(0), col.value(1)]).toEqual([5n, 2n ** 70n]);
    col.set(1, null);
    expect(() => col.value(1)).toThrow(/no value/);
  });
});

const terms = fc.record<OrderTerms>({
  side: fc.constantFrom('buy', 'sell'),
  type: fc.constantFrom(...ORDER_TYPES),
  timeInForce: fc.constantFrom(...TIMES_IN_FORCE),
  quantity: anyBigint,
  limitPrice: nullableBigint,
  stopPrice: nullableBigint,
  trailPrice: nullableBigint,
  trailPercent: nullableBigint,
});
const anyOrder: fc.Arbitrary<RestingOrder> = fc
  .record({
    id: anyId,
    userId: anyId,
    ticker: fc.string({ maxLength: 8 }),
    terms,
    state: fc.record({ triggered: fc.boolean(), extreme: nullableBigint, stopLevel: nullableBigint }),
    createdAtMs: fc.oneof(fc.double(), fc.integer(), fc.constantFrom(-0, Number.MAX_SAFE_INTEGER, 1_800_000_000_000)),
  })
  // Plain objects, as the watcher builds them (fast-check's records have no prototype).
  .map((o) => ({ ...o, terms: { ...o.terms }, state: { ...o.state } }));

describe('OrderStore and IdTable', () => {
  it('round-trip every field of every order exactly, through growth, slot reuse and compaction (property, against a Map)', () => {
    const op = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), order: anyOrder }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), fc.integer({ min: 1, max: 8 }), (ops, minCapacity) => {
        const store = new OrderStore(minCapacity);
        const ids = new IdTable(store);
        const model = new Map<string, { slot: number; order: RestingOrder }>();
        for (const o of ops) {
          if (o.kind === 'add') {
            const old = model.get(o.order.id);
            if (old !== undefined) {
              ids.delete(old.slot);
              store.free(old.slot);
            }
            const s = store.alloc();
            store.write(s, o.order, 0);
            ids.insert(o.order.id, s);
            model.set(o.order.id, { slot: s, order: o.order });
          } else if (o.kind === 'remove') {
            const keys = [...model.keys()];
            if (keys.length === 0) continue;
            const id = keys[o.at % keys.length]!;
            const { slot } = model.get(id)!;
            expect(ids.find(id)).toBe(slot);
            ids.delete(slot);
            store.free(slot);
            model.delete(id);
            expect(ids.find(id)).toBe(NIL);
          } else {
            const map = store.compact();
            ids.rebuild();
            for (const entry of model.values()) entry.slot = map[entry.slot]!;
            expect(store.capacity).toBeLessThanOrEqual(Math.max(minCapacity, model.size + (model.size >> 1)));
          }
          expect(store.size).toBe(model.size);
          expect(ids.size).toBe(model.size);
          for (const [id, { slot, order }] of model) {
            expect(ids.find(id)).toBe(slot);
            expect(store.where[slot]).toBe(HELD);
            expect(store.read(slot, order.ticker, store.storedState(slot))).toStrictEqual(order);
            expect(store.idOf(slot)).toBe(id);
          }
          expect(ids.cells).toBeLessThanOrEqual(Math.max(16, 16 * model.size));
          let live = 0;
          for (let s = 0; s < store.high; s++) if (store.where[s] !== FREE) live += 1;
          expect(live).toBe(model.size);
        }
        for (const { slot } of [...model.values()]) {
          ids.delete(slot);
          store.free(slot);
        }
        // Nothing outlives its slot.
        expect(store.sideEntries()).toBe(0);
        expect(ids.size).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('finds 20,000 UUIDs by id among each other, and loses each one removed (the table shrinks back)', () => {
    const store = new OrderStore();
    const ids = new IdTable(store);
    const idOf = (i: number) => `0192f0c2-7c1e-7${(i >> 16).toString(16).padStart(3, '0')}-8000-${i.toString(16).padStart(12, '0')}`;
    const slots: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const s = store.alloc();
      store.write(s, { id: idOf(i), userId: 'u', ticker: 'T', terms: { side: 'buy', type: 'market', timeInForce: 'day', quantity: 1n, limitPrice: null, stopPrice: null, trailPrice: null, trailPercent: null }, state: { triggered: false, extreme: null, stopLevel: null }, createdAtMs: i }, 0);
      ids.insert(idOf(i), s);
      slots.push(s);
    }
    expect(ids.cells).toBe(32_768);
    for (let i = 0; i < 20_000; i++) expect(ids.find(idOf(i))).toBe(slots[i]);
    expect(ids.find(idOf(20_000))).toBe(NIL);
    expect(ids.find(idOf(7).toUpperCase())).toBe(NIL);
    for (let i = 0; i < 20_000; i += 2) {
      ids.delete(slots[i]!);
      store.free(slots[i]!);
    }
    for (let i = 0; i < 20_000; i++) expect(ids.find(idOf(i))).toBe(i % 2 === 0 ? NIL : slots[i]);
    for (let i = 1; i < 20_000; i += 2) {
      ids.delete(slots[i]!);
      store.free(slots[i]!);
    }
    expect(ids.size).toBe(0);
    expect(ids.cells).toBeLessThanOrEqual(16);
  });
});
