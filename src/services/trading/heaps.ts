/**
 * Two small heaps over integer items (slots of a struct-of-arrays store) for the engine's index
 * of resting orders. Items are plain numbers, so a heap costs 4 bytes per item and no object per
 * item: the keys and positions live in the caller's typed-array columns.
 *
 * - SlotHeap: a binary heap whose items know their position (kept by the caller through
 *   `SlotOrder`), so that any item can be removed or re-keyed in O(log n): no tombstones,
 *   nothing to compact. Its array grows and shrinks with it.
 * - Pairing-heap functions over intrusive links: three Int32Array columns (`child`, `next`,
 *   `prev`) indexed by item, keyed by a bigint, min first. Meld is O(1); delete-min and removal
 *   of any node O(log n) amortized. Every operation is iterative, so a root with 100,000
 *   children cannot overflow the stack.
 */

/** The "no item" value of both heaps. */
export const NIL = -1;

/** How a SlotHeap orders its items and where their positions are recorded (columns owned by the caller). */
export interface SlotOrder {
  /** True when item `a` must come out before item `b`. */
  before(a: number, b: number): boolean;
  getPos(item: number): number;
  /** Called with -1 when the item leaves the heap. */
  setPos(item: number, pos: number): void;
}

const MIN_HEAP_CAPACITY = 4;

export class SlotHeap {
  private items: Int32Array;
  private n = 0;
  private readonly order: SlotOrder;

  constructor(order: SlotOrder) {
    this.order = order;
    this.items = new Int32Array(MIN_HEAP_CAPACITY);
  }

  get size(): number {
    return this.n;
  }

  /** The first item, or NIL when empty. */
  peek(): number {
    return this.n === 0 ? NIL : this.items[0]!;
  }

  push(item: number): void {
    if (this.n === this.items.length) this.resize(this.n * 2);
    const i = this.n++;
    this.items[i] = item;
    this.order.setPos(item, i);
    this.up(i);
  }

  /** Removes and returns the first item, or NIL when empty. */
  pop(): number {
    if (this.n === 0) return NIL;
    const items = this.items;
    const top = items[0]!;
    const last = items[--this.n]!;
    this.order.setPos(top, -1);
    if (this.n > 0) {
      items[0] = last;
      this.order.setPos(last, 0);
      this.down(0);
    }
    this.maybeShrink();
    return top;
  }

  /** Removes an item that is in this heap. */
  remove(item: number): void {
    const i = this.order.getPos(item);
    if (i < 0 || i >= this.n || this.items[i] !== item) throw new Error('SlotHeap.remove: item is not in this heap');
    const last = this.items[--this.n]!;
    this.order.setPos(item, -1);
    if (i < this.n) {
      this.items[i] = last;
      this.order.setPos(last, i);
      if (!this.up(i)) this.down(i);
    }
    this.maybeShrink();
  }

  /** Restores the order after the key of an item in this heap changed (either way). */
  update(item: number): void {
    const i = this.order.getPos(item);
    if (i < 0 || i >= this.n || this.items[i] !== item) throw new Error('SlotHeap.update: item is not in this heap');
    if (!this.up(i)) this.down(i);
  }

  /** The item at position `i` (0 ≤ i < size), in heap (not sorted) order: for passes over every item. */
  at(i: number): number {
    return this.items[i]!;
  }

  /** The items in heap (not sorted) order; for passes that change the heap, and tests. */
  toArray(): number[] {
    return Array.from(this.items.subarray(0, this.n));
  }

  /**
   * Renames every item through `map` (old item -> new item), when the caller's store is
   * compacted. Positions do not change: the caller moves each item's position with the item.
   */
  renumber(map: Int32Array): void {
    const items = this.items;
    for (let i = 0; i < this.n; i++) items[i] = map[items[i]!]!;
  }

  /** The length of the backing array (tests: it follows the size). */
  get capacity(): number {
    return this.items.length;
  }

  // The array halves once a quarter full, so a heap that emptied gives its memory back and an
  // item going in and out at the boundary does not resize each time.
  private maybeShrink(): void {
    const capacity = this.items.length;
    if (capacity > MIN_HEAP_CAPACITY && this.n * 4 <= capacity) this.resize(Math.max(MIN_HEAP_CAPACITY, capacity >> 1));
  }

  private resize(capacity: number): void {
    const items = new Int32Array(capacity);
    items.set(this.items.subarray(0, this.n));
    this.items = items;
  }

  private up(start: number): boolean {
    const items = this.items;
    const order = this.order;
    const item = items[start]!;
    let i = start;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!order.before(item, p)) break;
      items[i] = p;
      order.setPos(p, i);
      i = parent;
    }
    if (i === start) return false;
    items[i] = item;
    order.setPos(item, i);
    return true;
  }

  private down(start: number): void {
    const items = this.items;
    const order = this.order;
    const n = this.n;
    const item = items[start]!;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      let c = items[left]!;
      if (right < n) {
        const r = items[right]!;
        if (order.before(r, c)) {
          child = right;
          c = r;
        }
      }
      if (!order.before(c, item)) break;
      items[i] = c;
      order.setPos(c, i);
      i = child;
    }
    if (i !== start) {
      items[i] = item;
      order.setPos(item, i);
    }
  }
}

/**
 * The links of pairing heaps over integer nodes. `prev` is the parent for a first child, else
 * the left sibling; NIL for a root. A node belongs to at most one pairing heap at a time. The
 * columns are read through this object at every call, so the owner may replace them (growth).
 */
export interface PairingLinks {
  child: Int32Array;
  next: Int32Array;
  prev: Int32Array;
  /** The node's key (smallest on top). */
  key(node: number): bigint;
}

/** Melds two heaps (roots, or NIL) in O(1); returns the new root. */
export function pairingMeld(l: PairingLinks, a: number, b: number): number {
  if (a === NIL) return b;
  if (b === NIL) return a;
  // Ties keep `a` on top: the order among equal keys does not matter to callers.
  let top = a;
  let under = b;
  if (l.key(b) < l.key(a)) {
    top = b;
    under = a;
  }
  const { child, next, prev } = l;
  const first = child[top]!;
  prev[under] = top;
  next[under] = first;
  if (first !== NIL) prev[first] = under;
  child[top] = under;
  next[top] = NIL;
  prev[top] = NIL;
  return top;
}

/** Inserts a detached node; returns the new root. */
export function pairingInsert(l: PairingLinks, root: number, node: number): number {
  l.child[node] = NIL;
  l.next[node] = NIL;
  l.prev[node] = NIL;
  return pairingMeld(l, root, node);
}

/** Two-pass pairing of a sibling list (left to right, then right to left), iteratively. */
function mergePairs(l: PairingLinks, first: number): number {
  if (first === NIL) return NIL;
  const { next, prev } = l;
  // Pass 1: meld consecutive pairs, threading the results into a list through `next`, reversed.
  let pairs = NIL;
  let node = first;
  while (node !== NIL) {
    const a = node;
    const b = next[a]!;
    let melded: number;
    if (b === NIL) {
      node = NIL;
      prev[a] = NIL;
      next[a] = NIL;
      melded = a;
    } else {
      node = next[b]!;
      next[a] = NIL;
      prev[a] = NIL;
      next[b] = NIL;
      prev[b] = NIL;
      melded = pairingMeld(l, a, b);
    }
    next[melded] = pairs;
    pairs = melded;
  }
  // Pass 2: meld right to left (the reversed list is already right to left).
  let root = NIL;
  while (pairs !== NIL) {
    const following = next[pairs]!;
    next[pairs] = NIL;
    root = pairingMeld(l, root, pairs);
    pairs = following;
  }
  return root;
}

/** Removes the root; returns the new root. The removed node comes out detached. */
export function pairingDeleteMin(l: PairingLinks, root: number): number {
  const rest = mergePairs(l, l.child[root]!);
  l.child[root] = NIL;
  l.next[root] = NIL;
  l.prev[root] = NIL;
  return rest;
}

/** Removes any node of the heap rooted at `root`; returns the new root. The node comes out detached. */
export function pairingRemove(l: PairingLinks, root: number, node: number): number {
  if (node === root) return pairingDeleteMin(l, root);
  const { child, next, prev } = l;
  const before = prev[node]!;
  const after = next[node]!;
  if (child[before] === node) child[before] = after;
  else next[before] = after;
  if (after !== NIL) prev[after] = before;
  next[node] = NIL;
  prev[node] = NIL;
  const sub = mergePairs(l, child[node]!);
  child[node] = NIL;
  return pairingMeld(l, root, sub);
}

/**
 * Visits every node of a heap (no order), iteratively. `fn` must not change the heap. The
 * stack holds one entry per level with unvisited children: bounded by the heap's size.
 */
export function pairingForEach(l: PairingLinks, root: number, fn: (node: number) => void): void {
  if (root === NIL) return;
  const stack: number[] = [root];
  while (stack.length > 0) {
    let node = stack.pop()!;
    // Walk the sibling list, stacking children.
    while (node !== NIL) {
      fn(node);
      const first = l.child[node]!;
      if (first !== NIL) stack.push(first);
      node = l.next[node]!;
    }
  }
}
