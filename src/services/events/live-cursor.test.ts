import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventCursor, type Sequenced } from './live-cursor.js';

interface Item extends Sequenced {
  seq: number;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every promise chain that can move move (reads resolved, sends done). */
const settle = () => new Promise<void>((r) => setImmediate(r));

const items = (from: number, to: number): Item[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => ({ seq: from + i }));

/**
 * A cursor over a scripted log: reads wait until the test answers them, sends are recorded,
 * and the client's buffer is "full" when the test says so.
 */
function harness(options: { pageSize?: number; heldMax?: number } = {}) {
  const log: Item[] = [];
  const reads: { afterSeq: number; limit: number; answer: Deferred<Item[]> }[] = [];
  const sent: number[] = [];
  const errors: unknown[] = [];
  let full = false;
  let readyWaiters: (() => void)[] = [];
  const cursor = new EventCursor<Item>({
    read: (afterSeq, limit) => {
      const answer = deferred<Item[]>();
      reads.push({ afterSeq, limit, answer });
      return answer.promise;
    },
    deliver: (item) => {
      sent.push(item.seq);
      return !full;
    },
    ready: () => new Promise<void>((r) => readyWaiters.push(r)),
    onReadError: (err) => errors.push(err),
    pageSize: options.pageSize ?? 3,
    heldMax: options.heldMax ?? 100,
  });
  return {
    log,
    reads,
    sent,
    errors,
    cursor,
    commit(n: number) {
      const added = items(log.length + 1, log.length + n);
      log.push(...added);
      return added;
    },
    /** Answers the oldest pending read from the log as it is now. */
    async answerRead() {
      const r = reads.shift();
      if (!r) throw new Error('no read pending');
      r.answer.resolve(log.filter((e) => e.seq > r.afterSeq).slice(0, r.limit));
      await settle();
    },
    setFull(value: boolean) {
      full = value;
    },
    async drain() {
      const waiters = readyWaiters;
      readyWaiters = [];
      for (const w of waiters) w();
      await settle();
    },
    get waitingForReady() {
      return readyWaiters.length;
    },
  };
}

describe('EventCursor', () => {
  it('sends the next live event at once and reads nothing while in step', async () => {
    const h = harness();
    h.cursor.start(0, 0);
    for (const e of h.commit(3)) h.cursor.onLive(e);
    await settle();
    expect(h.sent).toEqual([1, 2, 3]);
    expect(h.reads).toHaveLength(0);
    expect(h.cursor.inSync).toBe(true);
  });

  it('skips a duplicate and an event at or before its position', async () => {
    const h = harness();
    h.commit(5);
    h.cursor.start(5, 5);
    const [six] = h.commit(1);
    h.cursor.onLive(six!);
    h.cursor.onLive(six!);
    h.cursor.onLive({ seq: 4 });
    expect(h.sent).toEqual([6]);
  });

  it('replays from its position in pages, then follows live', async () => {
    const h = harness({ pageSize: 2 });
    h.commit(5);
    h.cursor.start(1, 5);
    expect(h.reads.map((r) => [r.afterSeq, r.limit])).toEqual([[1, 2]]);
    await h.answerRead();
    expect(h.sent).toEqual([2, 3]);
    await h.answerRead();
    expect(h.sent).toEqual([2, 3, 4, 5]);
    expect(h.reads).toHaveLength(0);
    for (const e of h.commit(1)) h.cursor.onLive(e);
    expect(h.sent).toEqual([2, 3, 4, 5, 6]);
  });

  it('holds live events received before the start and sends those after the position', async () => {
    const h = harness();
    h.commit(2);
    // Registered for live events, then the last seq is read: 3 and 4 commit meanwhile.
    for (const e of h.commit(2)) h.cursor.onLive(e);
    h.cursor.start(2, 2);
    // Held items continue the sequence: no read needed.
    expect(h.sent).toEqual([3, 4]);
    expect(h.reads).toHaveLength(0);
  });

  it('reads the gap when a live event skips one, and sends each event once', async () => {
    const h = harness();
    h.cursor.start(0, 0);
    const [one, two, three] = h.commit(3);
    h.cursor.onLive(one!);
    h.cursor.onLive(three!); // 2 was lost on the bus
    expect(h.sent).toEqual([1]);
    expect(h.reads.map((r) => r.afterSeq)).toEqual([1]);
    // 2 arrives late while the read runs, and 4 too: held, not sent out of turn.
    h.cursor.onLive(two!);
    const [four] = h.commit(1);
    h.cursor.onLive(four!);
    expect(h.sent).toEqual([1]);
    await h.answerRead();
    expect(h.sent).toEqual([1, 2, 3, 4]);
    expect(h.reads).toHaveLength(0);
  });

  it('never runs two reads at once', async () => {
    const h = harness();
    h.cursor.start(0, 0);
    h.commit(10);
    h.cursor.onLastSeq(10);
    h.cursor.onLive({ seq: 10 });
    h.cursor.onLastSeq(10);
    expect(h.reads).toHaveLength(1);
  });

  it('catches up from the sweep when the bus lost everything', async () => {
    const h = harness({ pageSize: 100 });
    h.cursor.start(0, 0);
    h.commit(4);
    h.cursor.onLastSeq(4);
    await h.answerRead();
    expect(h.sent).toEqual([1, 2, 3, 4]);
  });

  it('after a failed read waits for the sweep instead of reading again on every live event', async () => {
    const h = harness();
    h.cursor.start(0, 0);
    h.commit(3);
    h.cursor.onLive({ seq: 3 });
    h.reads.shift()!.answer.reject(new Error('connection lost'));
    await settle();
    expect(h.errors).toHaveLength(1);
    h.commit(1);
    h.cursor.onLive({ seq: 4 });
    expect(h.reads).toHaveLength(0);
    h.cursor.onLastSeq(4);
    await h.answerRead();
    expect(h.sent).toEqual([1, 2, 3, 4]);
  });

  it('pauses a replay while the client is full and resumes when it drains', async () => {
    const h = harness({ pageSize: 10 });
    h.commit(5);
    h.setFull(true);
    h.cursor.start(0, 5);
    await h.answerRead();
    expect(h.sent).toEqual([1]);
    expect(h.waitingForReady).toBe(1);
    h.setFull(false);
    await h.drain();
    expect(h.sent).toEqual([1, 2, 3, 4, 5]);
  });

  it('drops held events past its bound and reads them from the log instead', async () => {
    const h = harness({ pageSize: 100, heldMax: 3 });
    h.cursor.start(0, 0);
    h.commit(1);
    h.cursor.onLastSeq(1);
    for (const e of h.commit(10)) h.cursor.onLive(e);
    await h.answerRead();
    // The read saw only seq 1 (it was answered from the log as of now: all 11). Either way
    // every event goes out once, in order.
    await settle();
    while (h.reads.length > 0) await h.answerRead();
    expect(h.sent).toEqual(items(1, 11).map((e) => e.seq));
  });

  it('sends nothing once stopped, even when a read in flight answers', async () => {
    const h = harness();
    h.commit(3);
    h.cursor.start(0, 3);
    h.cursor.stop();
    await h.answerRead();
    h.cursor.onLive({ seq: 4 });
    expect(h.sent).toEqual([]);
  });

  it('trusts the log when it holds nothing after a seq the bus announced', async () => {
    const h = harness();
    h.commit(1);
    h.cursor.start(1, 1);
    h.cursor.onLive({ seq: 7 }); // of another history
    await h.answerRead();
    expect(h.cursor.highestSeen).toBe(1);
    expect(h.cursor.inSync).toBe(true);
    for (const e of h.commit(1)) h.cursor.onLive(e);
    expect(h.sent).toEqual([2]);
  });

  it('sends a prefetched first page before reading on', async () => {
    const h = harness({ pageSize: 2 });
    h.commit(4);
    h.cursor.start(0, 4, items(1, 2));
    await settle();
    expect(h.sent).toEqual([1, 2]);
    expect(h.reads.map((r) => r.afterSeq)).toEqual([2]);
    await h.answerRead();
    expect(h.sent).toEqual([1, 2, 3, 4]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random interleavings of commits, bus deliveries (lost, repeated, reordered, late),
// sweeps, slow reads that answer from the log as it is when they answer, failed reads, a client
// that fills up and drains, and reconnects with the last seq received. Every connection's
// events continue its starting position one by one (no gap, no duplicate), and once the dust
// settles the client has received everything committed.
// ---------------------------------------------------------------------------------------------

type Step =
  | { kind: 'commit'; count: number; lost: boolean; twice: boolean }
  | { kind: 'bus'; pick: number }
  | { kind: 'busLose'; pick: number }
  | { kind: 'sweepRead' }
  | { kind: 'sweepAnswer'; pick: number }
  | { kind: 'readAnswer'; pick: number }
  | { kind: 'readFail'; pick: number }
  | { kind: 'full'; value: boolean }
  | { kind: 'drain' }
  | { kind: 'reconnect'; prefetch: boolean }
  | { kind: 'start' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('commit' as const), count: fc.integer({ min: 1, max: 3 }), lost: fc.boolean(), twice: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('bus' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('busLose' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweepRead' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweepAnswer' as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('readAnswer' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('readFail' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('full' as const), value: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drain' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reconnect' as const), prefetch: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('start' as const) }) },
);

interface Connection {
  cursor: EventCursor<Item>;
  fromSeq: number;
  received: number[];
  started: boolean;
  prefetch: boolean;
}

async function runScenario(steps: Step[], pageSize: number, heldMax: number): Promise<void> {
  const log: Item[] = [];
  const bus: Item[][] = [];
  const sweeps: number[] = [];
  const reads: { afterSeq: number; limit: number; answer: Deferred<Item[]> }[] = [];
  let readyWaiters: (() => void)[] = [];
  let full = false;
  /** The seq of the last event the client holds, across connections (what it resumes from). */
  let clientSeq = 0;
  const violations: string[] = [];

  const connect = (fromSeq: number, prefetch: boolean): Connection => {
    const conn: Connection = { fromSeq, received: [], started: false, prefetch, cursor: undefined as unknown as EventCursor<Item> };
    conn.cursor = new EventCursor<Item>({
      read: (afterSeq, limit) => {
        const answer = deferred<Item[]>();
        reads.push({ afterSeq, limit, answer });
        return answer.promise;
      },
      deliver: (item) => {
        const expected = (conn.received.at(-1) ?? conn.fromSeq) + 1;
        if (item.seq !== expected) violations.push(`sent ${item.seq}, expected ${expected}`);
        if (conn !== current) violations.push(`a stopped connection sent ${item.seq}`);
        conn.received.push(item.seq);
        clientSeq = item.seq;
        return !full;
      },
      ready: () => new Promise<void>((r) => readyWaiters.push(r)),
      onReadError: () => undefined,
      pageSize,
      heldMax,
    });
    return conn;
  };
  const startConnection = (conn: Connection) => {
    if (conn.started) return;
    conn.started = true;
    // The last seq is read after the connection registered for live events (now).
    const lastSeq = log.length;
    const prefetched = conn.prefetch ? log.filter((e) => e.seq > conn.fromSeq).slice(0, pageSize) : [];
    conn.cursor.start(conn.fromSeq, lastSeq, prefetched);
  };
  let current = connect(0, false);
  const take = <T>(list: T[], pick: number): T | undefined => (list.length === 0 ? undefined : list.splice(pick % list.length, 1)[0]);

  for (const step of steps) {
    switch (step.kind) {
      case 'commit': {
        const batch = items(log.length + 1, log.length + step.count);
        log.push(...batch);
        if (!step.lost) bus.push(batch);
        if (step.twice) bus.push(batch);
        break;
      }
      case 'bus': {
        const message = take(bus, step.pick);
        for (const e of message ?? []) current.cursor.onLive(e);
        break;
      }
      case 'busLose':
        take(bus, step.pick);
        break;
      case 'sweepRead':
        sweeps.push(log.length);
        break;
      case 'sweepAnswer': {
        const seq = take(sweeps, step.pick);
        if (seq !== undefined) current.cursor.onLastSeq(seq);
        break;
      }
      case 'readAnswer': {
        const r = take(reads, step.pick);
        r?.answer.resolve(log.filter((e) => e.seq > r.afterSeq).slice(0, r.limit));
        break;
      }
      case 'readFail':
        take(reads, step.pick)?.answer.reject(new Error('read failed'));
        break;
      case 'full':
        full = step.value;
        break;
      case 'drain': {
        const waiters = readyWaiters;
        readyWaiters = [];
        for (const w of waiters) w();
        break;
      }
      case 'reconnect':
        current.cursor.stop();
        current = connect(clientSeq, step.prefetch);
        break;
      case 'start':
        startConnection(current);
        break;
    }
    await settle();
  }

  // The dust settles: the bus delivers what it still carries, reads answer, the client drains,
  // and a sweep comes round.
  full = false;
  startConnection(current);
  for (let round = 0; round < 1_000; round++) {
    await settle();
    for (const message of bus.splice(0)) for (const e of message) current.cursor.onLive(e);
    for (const seq of sweeps.splice(0)) current.cursor.onLastSeq(seq);
    for (const r of reads.splice(0)) r.answer.resolve(log.filter((e) => e.seq > r.afterSeq).slice(0, r.limit));
    for (const w of readyWaiters.splice(0)) w();
    await settle();
    if (reads.length === 0 && readyWaiters.length === 0) {
      current.cursor.onLastSeq(log.length);
      await settle();
      if (reads.length === 0 && readyWaiters.length === 0) break;
    }
  }
  expect(violations).toEqual([]);
  expect(clientSeq).toBe(log.length);
  expect(current.cursor.inSync).toBe(true);
}

describe('EventCursor under random interleavings', () => {
  it('never sends a gap or a duplicate, and delivers everything committed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 120, size: 'max' }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), (steps, pageSize, heldMax) =>
        runScenario(steps, pageSize, heldMax),
      ),
      { numRuns: 1_000 },
    );
  });
});
