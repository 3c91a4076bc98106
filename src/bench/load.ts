/**
 * The HTTP load generator: market orders over keep-alive connections (undici Pool), in one of
 * two shapes:
 *
 * - open loop (`rate` orders/s): request i is scheduled at t0 + i/rate whether or not earlier
 *   ones were answered, and its latency is measured from that scheduled time, so a server that
 *   stalls is charged for the whole queue it builds (no coordinated omission);
 * - closed loop (`rate: 'max'`): `concurrency` requests in flight at all times, latency from the
 *   moment each was sent.
 *
 * Only requests scheduled inside the steady window (after the warm-up) are measured.
 */
import { performance } from 'node:perf_hooks';
import { BalancedPool, Pool } from 'undici';
import { LatencyRecorder } from './stats.js';

/** How long in-flight requests may take to finish after the end of the test. */
export const FINISH_WAIT_MS = 30_000;
/** HTTP headers/body timeout of one request. */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface OrderRequest {
  path: string;
  body: string;
  /** The credential: `Bearer <api key>` (ignored when `headers` is given). */
  authorization: string;
  /**
   * Every header of the request instead (content-type included), built once per user: Alpaca's
   * `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` pair for the facade's POST /v2/orders.
   */
  headers?: Readonly<Record<string, string>>;
  /** Called with the outcome, so the workload can track what it may sell. */
  done?: (ok: boolean) => void;
  /**
   * A request of many orders (POST /orders/batch): reads the 200's body and returns the
   * refusals among its results ("422 ORDER_REJECTED<-…"), counted as errors like whole requests.
   */
  refusalsOf?: (body: string) => string[];
}

/** Sends one order request on the pool (the JSON body as given, with its credential). */
export function postOrder(pool: Pool | BalancedPool, req: OrderRequest): ReturnType<Pool['request']> {
  return pool.request({
    path: req.path,
    method: 'POST',
    headers: req.headers ?? { authorization: req.authorization, 'content-type': 'application/json' },
    body: req.body,
  });
}

export interface LoadOptions {
  /** http://127.0.0.1:PORT */
  origin: string;
  /** Several api processes (--api N): the connections are spread over them, round robin. */
  origins?: readonly string[];
  rate: number | 'max';
  concurrency: number;
  /** Open loop: scheduled requests beyond this many in flight are dropped and counted as errors. */
  inflightMax: number;
  warmupMs: number;
  durationMs: number;
  next(): OrderRequest;
  /** Called once a second with a snapshot (for the progress line). */
  onSecond?(s: LoadSnapshot): void;
  /** Called at the start and the end of the steady window (CPU samples). */
  onSteadyStart?(): Promise<void> | void;
  onSteadyEnd?(): Promise<void> | void;
}

export interface LoadSnapshot {
  elapsedS: number;
  inSteady: boolean;
  sent: number;
  okLastSecond: number;
  errors: number;
  inflight: number;
  /** p99 of the measured window so far (of everything so far during warm-up), ms. */
  p99Ms: number;
}

export interface LoadResult {
  mode: 'open' | 'closed';
  /** Epoch ms of the steady window (the database is asked about this window). */
  windowStartMs: number;
  windowEndMs: number;
  sent: number;
  completed: number;
  ok: number;
  steady: { sent: number; ok: number; latency: LatencyRecorder };
  /** "422 ORDER_REJECTED<-INSUFFICIENT_HOLDINGS", "ERR UND_ERR_SOCKET", "DROPPED generator backlog", ... */
  errors: Record<string, number>;
  /** Requests still unanswered FINISH_WAIT_MS after the end. */
  unfinished: number;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const poolOptions = { pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS };
  const origins = opts.origins && opts.origins.length > 1 ? opts.origins : undefined;
  const pool = origins
    ? new BalancedPool([...origins], { ...poolOptions, connections: Math.max(1, Math.ceil(opts.concurrency / origins.length)) })
    : new Pool(opts.origin, { ...poolOptions, connections: opts.concurrency });
  const allLatency = new LatencyRecorder(0); // histogram only: the warm-up progress line
  const steadyLatency = new LatencyRecorder();
  const errors: Record<string, number> = {};
  const count = (key: string) => (errors[key] = (errors[key] ?? 0) + 1);
  let errorCount = 0;
  let sent = 0;
  let completed = 0;
  let ok = 0;
  let okThisSecond = 0;
  let steadySent = 0;
  let steadyOk = 0;
  let inflight = 0;
  let idle: (() => void) | undefined;

  const t0 = performance.now();
  const epoch0 = Date.now();
  const steadyStart = t0 + opts.warmupMs;
  const end = steadyStart + opts.durationMs;

  const send = async (scheduled: number): Promise<void> => {
    const req = opts.next();
    const measured = scheduled >= steadyStart && scheduled < end;
    sent += 1;
    if (measured) steadySent += 1;
    inflight += 1;
    let success = false;
    try {
      const res = await postOrder(pool, req);
      if (res.statusCode >= 200 && res.statusCode < 300) {
        if (req.refusalsOf) {
          const refusals = req.refusalsOf(await res.body.text());
          for (const r of refusals) count(r);
          errorCount += refusals.length;
        } else {
          await res.body.dump();
        }
        success = true;
      } else {
        count(`${res.statusCode} ${errorCode(await res.body.text().catch(() => ''))}`);
        errorCount += 1;
      }
    } catch (err) {
      const e = err as { code?: string; name?: string };
      count(`ERR ${e.code ?? e.name ?? 'unknown'}`);
      errorCount += 1;
    } finally {
      inflight -= 1;
      completed += 1;
      if (inflight === 0 && idle) idle();
    }
    const latency = performance.now() - scheduled;
    allLatency.record(latency);
    if (success) {
      ok += 1;
      okThisSecond += 1;
      if (measured) {
        steadyOk += 1;
        steadyLatency.record(latency);
      }
    } else if (measured) {
      // Failed requests still count in the latency distribution: a fast error is no success.
      steadyLatency.record(latency);
    }
    req.done?.(success);
  };

  // Steady-window hooks and the progress line run on their own timers.
  const hooks: Promise<unknown>[] = [];
  let startFired = false;
  let endFired = false;
  const fireStart = () => {
    if (startFired) return;
    startFired = true;
    hooks.push(Promise.resolve(opts.onSteadyStart?.()));
  };
  const fireEnd = () => {
    if (endFired) return;
    endFired = true;
    hooks.push(Promise.resolve(opts.onSteadyEnd?.()));
  };
  const startTimer = setTimeout(fireStart, opts.warmupMs);
  const endTimer = setTimeout(fireEnd, opts.warmupMs + opts.durationMs);
  const progress = setInterval(() => {
    const now = performance.now();
    const inSteady = now >= steadyStart;
    opts.onSecond?.({
      elapsedS: Math.round((now - t0) / 1000),
      inSteady,
      sent,
      okLastSecond: okThisSecond,
      errors: errorCount,
      inflight,
      p99Ms: inSteady && steadyLatency.count > 0 ? steadyLatency.histogramPercentile(99) : allLatency.histogramPercentile(99),
    });
    okThisSecond = 0;
  }, 1_000);

  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  if (opts.rate === 'max') {
    const worker = async () => {
      while (performance.now() < end) await send(performance.now());
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } else {
    const interval = 1000 / opts.rate;
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = Math.min(performance.now(), end);
        for (;;) {
          const scheduled = t0 + i * interval;
          if (scheduled > now || scheduled >= end) break;
          i += 1;
          if (inflight >= opts.inflightMax) {
            count('DROPPED generator backlog');
            errorCount += 1;
            sent += 1;
            if (scheduled >= steadyStart) steadySent += 1;
            continue;
          }
          track(send(scheduled));
        }
        const next = t0 + i * interval;
        if (next >= end) return resolve();
        setTimeout(tick, Math.max(0, Math.min(1, next - performance.now())));
      };
      tick();
    });
  }

  // Let in-flight requests finish (bounded).
  let unfinished = 0;
  if (inflight > 0) {
    const drained = new Promise<void>((resolve) => (idle = resolve));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, FINISH_WAIT_MS)))]);
    clearTimeout(timer);
    unfinished = inflight;
    if (unfinished > 0) errors['UNFINISHED after end'] = unfinished;
  }
  // The hooks fire on their timers; make sure both ran, in order, however the timers fell.
  if (performance.now() < end) await new Promise((r) => setTimeout(r, end - performance.now()));
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  fireStart();
  fireEnd();
  clearInterval(progress);
  await Promise.all(hooks);
  await pool.destroy().catch(() => undefined);

  return {
    mode: opts.rate === 'max' ? 'closed' : 'open',
    windowStartMs: epoch0 + opts.warmupMs,
    windowEndMs: epoch0 + opts.warmupMs + opts.durationMs,
    sent,
    completed,
    ok,
    steady: { sent: steadySent, ok: steadyOk, latency: steadyLatency },
    errors,
    unfinished,
  };
}

/** The error code of an error envelope, with its cause chain: "ORDER_REJECTED<-INSUFFICIENT_FUNDS". */
export function errorCode(text: string): string {
  try {
    let e = (JSON.parse(text) as { error?: { code?: string; cause?: unknown } }).error;
    const codes: string[] = [];
    while (e && codes.length < 5) {
      if (e.code) codes.push(e.code);
      e = e.cause as typeof e;
    }
    return codes.length ? codes.join('<-') : 'no-code';
  } catch {
    return 'non-json';
  }
}

/** Sends every request once, `concurrency` at a time (the seed phase); returns errors by kind. */
export async function sendAll(origin: string, requests: readonly OrderRequest[], concurrency: number): Promise<Record<string, number>> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  const errors: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const req = requests[next++]!;
      try {
        const res = await postOrder(pool, req);
        if (res.statusCode >= 200 && res.statusCode < 300) await res.body.dump();
        else {
          const key = `${res.statusCode} ${errorCode(await res.body.text().catch(() => ''))}`;
          errors[key] = (errors[key] ?? 0) + 1;
        }
      } catch (err) {
        const key = `ERR ${(err as { code?: string }).code ?? 'unknown'}`;
        errors[key] = (errors[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
  await pool.destroy().catch(() => undefined);
  return errors;
}
