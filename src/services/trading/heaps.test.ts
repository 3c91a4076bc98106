import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { NIL, SlotHeap, pairingDeleteMin, pairingForEach, pairingInsert, pairingMeld, pairingRemove, type PairingLinks } from './heaps.js';

/** Items 0 .. n - 1 with keys and positions in plain arrays (the index uses typed-array columns). */
function itemsOf(n: number) {
  const keys: bigint[] = Array.from({ length: n }, () => 0n);
  const pos = new Int32Array(n).fill(-1);
  const heap = new SlotHeap({
    before: (a, b) => keys[a]! < keys[b]! || (keys[a] === keys[b] && a < b),
    getPos: (i) => pos[i]!,
    setPos: (i, p) => {
      pos[i] = p;
    },
  });
  return { keys, pos, heap };
}

describe('SlotHeap', () => {
  it('pops in order and removes or re-keys any item (property, against a sorted list)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), key: fc.bigInt(-20n, 20n) }),
      fc.record({ kind: fc.constant('pop' as const) }),
      fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('rekey' as const), at: fc.nat(), key: fc.bigInt(-20n, 20n) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200, size: 'max' }), (ops) => {
        const { keys, pos, heap } = itemsOf(ops.length);
        const sorted = (items: number[]) => [...items].sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b));
        let live: number[] = [];
        let id = 0;
        for (const o of ops) {
          if (o.kind === 'push') {
            const item = id++;
            keys[item] = o.key;
            heap.push(item);
            live.push(item);
          } else if (o.kind === 'pop') {
            const expected = sorted(live)[0] ?? NIL;
            const got = heap.pop();
            expect(got).toBe(expected);
            if (got !== NIL) {
              expect(pos[got]).toBe(-1);
              live = live.filter((i) => i !== got);
            }
          } else if (live.length > 0) {
            const item = live[o.at % live.length]!;
            if (o.kind === 'remove') {
              heap.remove(item);
              expect(pos[item]).toBe(-1);
              live = live.filter((i) => i !== item);
            } else {
              keys[item] = o.key;
              heap.update(item);
            }
          }
          expect(heap.size).toBe(live.length);
          expect(heap.peek()).toBe(sorted(live)[0] ?? NIL);
          heap.toArray().forEach((item, i) => {
            expect(pos[item]).toBe(i);
            expect(heap.at(i)).toBe(item);
          });
          // The backing array follows the size (at most 4x, and at least 4 cells).
          expect(heap.capacity).toBeLessThanOrEqual(Math.max(4, 4 * heap.size));
        }
        const drained: number[] = [];
        for (let item = heap.pop(); item !== NIL; item = heap.pop()) drained.push(item);
        expect(drained).toEqual(sorted(live));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to remove or update an item it does not hold', () => {
    const { heap } = itemsOf(2);
    expect(() => heap.remove(1)).toThrow(/not in this heap/);
    heap.push(0);
    expect(() => heap.update(1)).toThrow(/not in this heap/);
  });

  it('renames its items through a map without changing their positions', () => {
    const { keys, pos, heap } = itemsOf(10);
    for (let i = 0; i < 5; i++) {
      keys[i] = BigInt(10 - i);
      heap.push(i);
    }
    const before = heap.toArray();
    // Items i -> i + 5, with their keys and positions moved along.
    const map = Int32Array.from({ length: 10 }, (_, i) => (i < 5 ? i + 5 : NIL));
    for (let i = 0; i < 5; i++) {
      keys[i + 5] = keys[i]!;
      pos[i + 5] = pos[i]!;
    }
    heap.renumber(map);
    expect(heap.toArray()).toEqual(before.map((i) => i + 5));
    expect([heap.pop(), heap.pop()]).toEqual([9, 8]);
  });

  it('grows to 100,000 items and shrinks back as they leave', () => {
    const { keys, heap } = itemsOf(100_000);
    for (let i = 0; i < 100_000; i++) {
      keys[i] = BigInt((i * 7919) % 100_000);
      heap.push(i);
    }
    expect(heap.capacity).toBe(131_072);
    let last = -1n;
    for (let i = 0; i < 99_990; i++) {
      const item = heap.pop();
      expect(keys[item]! >= last).toBe(true);
      last = keys[item]!;
    }
    expect(heap.size).toBe(10);
    expect(heap.capacity).toBeLessThanOrEqual(40);
  });
});

/** Nodes 0 .. n - 1 with links in Int32Arrays, as the index keeps them. */
function linksOf(n: number, keys: bigint[]): PairingLinks {
  return {
    child: new Int32Array(n).fill(NIL),
    next: new Int32Array(n).fill(NIL),
    prev: new Int32Array(n).fill(NIL),
    key: (node) => keys[node]!,
  };
}

const members = (l: PairingLinks, root: number) => {
  const out: number[] = [];
  pairingForEach(l, root, (n) => out.push(n));
  return out.sort((a, b) => a - b);
};

describe('pairing heap', () => {
  it('keeps the minimum on top through insert, meld, delete-min and removal of any node (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), heap: fc.integer({ min: 0, max: 2 }), key: fc.bigInt(0n, 30n) }),
      fc.record({ kind: fc.constant('meld' as const), a: fc.integer({ min: 0, max: 2 }), b: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant('deleteMin' as const), heap: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant('remove' as const), heap: fc.integer({ min: 0, max: 2 }), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200, size: 'max' }), (ops) => {
        const keys: bigint[] = [];
        const l = linksOf(ops.length, keys);
        const roots = [NIL, NIL, NIL];
        const sets: number[][] = [[], [], []];
        let id = 0;
        for (const o of ops) {
          if (o.kind === 'insert') {
            const n = id++;
            keys[n] = o.key;
            roots[o.heap] = pairingInsert(l, roots[o.heap]!, n);
            sets[o.heap]!.push(n);
          } else if (o.kind === 'meld') {
            if (o.a === o.b) continue;
            roots[o.a] = pairingMeld(l, roots[o.a]!, roots[o.b]!);
            roots[o.b] = NIL;
            sets[o.a] = [...sets[o.a]!, ...sets[o.b]!];
            sets[o.b] = [];
          } else if (o.kind === 'deleteMin') {
            const root = roots[o.heap]!;
            if (root === NIL) continue;
            const min = sets[o.heap]!.reduce((m, n) => (keys[n]! < m ? keys[n]! : m), keys[root]!);
            expect(keys[root]).toBe(min);
            roots[o.heap] = pairingDeleteMin(l, root);
            expect([l.child[root], l.next[root], l.prev[root]]).toEqual([NIL, NIL, NIL]);
            sets[o.heap] = sets[o.heap]!.filter((n) => n !== root);
          } else {
            const set = sets[o.heap]!;
            if (set.length === 0) continue;
            const victim = set[o.at % set.length]!;
            roots[o.heap] = pairingRemove(l, roots[o.heap]!, victim);
            expect([l.child[victim], l.next[victim], l.prev[victim]]).toEqual([NIL, NIL, NIL]);
            sets[o.heap] = set.filter((n) => n !== victim);
          }
          for (let h = 0; h < 3; h++) {
            const root = roots[h]!;
            const set = sets[h]!;
            expect(members(l, root)).toEqual([...set].sort((a, b) => a - b));
            if (root !== NIL) {
              expect(l.prev[root]).toBe(NIL);
              expect(l.next[root]).toBe(NIL);
              expect(set.every((n) => keys[n]! >= keys[root]!)).toBe(true);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('deletes the minimum of a root with 100,000 children without deep recursion', () => {
    const keys = Array.from({ length: 100_000 }, (_, i) => BigInt(i));
    const l = linksOf(100_000, keys);
    let root = NIL;
    for (let i = 0; i < 100_000; i++) root = pairingInsert(l, root, i);
    const got: bigint[] = [];
    for (let i = 0; i < 1_000 && root !== NIL; i++) {
      got.push(keys[root]!);
      root = pairingDeleteMin(l, root);
    }
    expect(got).toEqual(Array.from({ length: 1_000 }, (_, i) => BigInt(i)));
  });
});
