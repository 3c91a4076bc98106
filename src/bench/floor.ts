/**
 * The SQL floor: the least SQL one market order needs, driven straight at PostgreSQL with the
 * statements checked in under bench/sql/. Accept is ONE statement (hold + PENDING row in a
 * data-modifying CTE); fills run in batches of `batchSize` orders per transaction with
 * set-based statements (orders, cash, ledger and fills in one; holdings for buys and for sells
 * in two more). What papertrade adds on top — HTTP, JSON, auth, Redis, the stream, per-order
 * statements — is what the ratio to this floor measures.
 *
 * Accepting connections run closed loops; the accepted ids go through an in-process queue (the
 * floor's "stream") partitioned by user to the filling connections, so two fill transactions
 * never touch the same account and cannot deadlock. Accepting pauses while the unfilled backlog
 * is over a bound, so the floor reports a throughput that is sustained, not a queue filling up.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { uuidv7 } from '../infra/ids.js';
import { LatencyRecorder } from './stats.js';

export const FLOOR_SQL_DIR = new URL('../../bench/sql/', import.meta.url);
/** After the end, fills may take this long to catch up with what was accepted. */
export const FLOOR_DRAIN_MS = 30_000;

function sqlFile(name: string): string {
  return readFileSync(new URL(name, FLOOR_SQL_DIR), 'utf8');
}

export interface FloorOptions {
  databaseUrl: string;
  users: number;
  tickers: { ticker: string; price: string }[];
  sellRatio: number;
  /** Shares per order (whole shares). */
  quantity: number;
  /** Shares of each ticker every floor user starts with (so sells are possible). */
  seedShares: number;
  acceptConnections: number;
  fillConnections: number;
  batchSize: number;
  warmupMs: number;
  durationMs: number;
  onSecond?(s: { elapsedS: number; accepted: number; filled: number; backlog: number }): void;
  /** Called at the start and the end of the steady window (CPU samples). */
  onSteadyStart?(): Promise<void> | void;
  onSteadyEnd?(): Promise<void> | void;
}

export interface FloorResult {
  windowStartMs: number;
  windowEndMs: number;
  acceptLatency: LatencyRecorder;
  acceptedClient: number;
  refused: number;
  errors: Record<string, number>;
  batches: number;
  drainedMs: number;
  unfilled: number;
}

interface FloorUser {
  id: string;
  sellable: number[];
}

/** Creates the floor's own users: cash, ledger row and starting holdings, set-based. */
export async function seedFloorUsers(client: pg.Client, opts: FloorOptions): Promise<FloorUser[]> {
  const ids = Array.from({ length: opts.users }, () => uuidv7());
  const tag = Date.now().toString(36);
  const cash = '100000000.00';
  await client.query('BEGIN');
  await client.query(
    `INSERT INTO users (id, name, email)
     SELECT id, 'floor ' || n, 'floor-' || $2::text || '-' || n || '@bench.invalid'
       FROM unnest($1::uuid[]) WITH ORDINALITY AS u (id, n)`,
    [ids, tag],
  );
  await client.query(
    `WITH b AS (INSERT INTO cash_balances (user_id, cash_balance, available_cash)
                SELECT id, $2::numeric, $2::numeric FROM unnest($1::uuid[]) AS u (id) RETURNING user_id, cash_balance)
     INSERT INTO cash_ledger (user_id, kind, amount, balance_after) SELECT user_id, 'initial', cash_balance, cash_balance FROM b`,
    [ids, cash],
  );
  await client.query(
    `INSERT INTO holdings (user_id, ticker, quantity, reserved_quantity, avg_cost)
     SELECT u.id, t.ticker, $3::numeric, 0, t.price
       FROM unnest($1::uuid[]) AS u (id) CROSS JOIN unnest($2::text[], $4::numeric[]) AS t (ticker, price)`,
    [ids, opts.tickers.map((t) => t.ticker), opts.seedShares, opts.tickers.map((t) => t.price)],
  );
  await client.query('COMMIT');
  await client.query('ANALYZE');
  const perTicker = Math.floor(opts.seedShares / opts.quantity);
  return ids.map((id) => ({ id, sellable: opts.tickers.map(() => perTicker) }));
}

/** Cash to hold for a buy: quantity × price × 1.05 rounded up to the cent (as papertrade's default). */
function reservation(quantity: number, price: string): string {
  const [whole, frac = ''] = price.split('.');
  const priceTicks = BigInt(whole! + frac.padEnd(4, '0').slice(0, 4)); // 1/10,000
  const num = BigInt(quantity) * priceTicks * 10_500n; // ticks × bps: scale 1e4 × 1e4
  const den = 1_000_000n; // to cents: / (1e4 × 1e4 / 1e2)
  const cents = (num + den - 1n) / den;
  const s = cents.toString().padStart(3, '0');
  return `${s.slice(0, -2)}.${s.slice(-2)}`;
}

export async function runFloor(opts: FloorOptions): Promise<FloorResult> {
  const connect = async () => {
    const c = new pg.Client({
      connectionString: opts.databaseUrl,
      application_name: 'papertrade-bench-floor',
      statement_timeout: 10_000,
    });
    await c.connect();
    return c;
  };
  const setup = await connect();
  const users = await seedFloorUsers(setup, opts);
  await setup.query('CHECKPOINT');
  await setup.end();

  const acceptBuy = sqlFile('floor-accept-buy.sql');
  const acceptSell = sqlFile('floor-accept-sell.sql');
  const fill = sqlFile('floor-fill.sql');
  const holdingsBuy = sqlFile('floor-fill-holdings-buy.sql');
  const holdingsSell = sqlFile('floor-fill-holdings-sell.sql');
  const reserve = opts.tickers.map((t) => reservation(opts.quantity, t.price));
  const tickerNames = opts.tickers.map((t) => t.ticker);
  const tickerPrices = opts.tickers.map((t) => t.price);
  const qty = String(opts.quantity);

  const accepters = await Promise.all(Array.from({ length: opts.acceptConnections }, connect));
  const fillers = await Promise.all(Array.from({ length: opts.fillConnections }, connect));
  const queues: string[][] = fillers.map(() => []);
  const wake: ((() => void) | undefined)[] = fillers.map(() => undefined);
  const backlogMax = opts.fillConnections * opts.batchSize * 2;
  let backlog = 0;
  let resumeAccept: (() => void) | undefined;

  const latency = new LatencyRecorder();
  const errors: Record<string, number> = {};
  let acceptedClient = 0;
  let acceptedAll = 0;
  let filledAll = 0;
  let refused = 0;
  let batches = 0;

  const t0 = performance.now();
  const epoch0 = Date.now();
  const steadyStart = t0 + opts.warmupMs;
  const end = steadyStart + opts.durationMs;
  let accepting = true;

  const hooks: Promise<unknown>[] = [];
  const startTimer = setTimeout(() => hooks.push(Promise.resolve(opts.onSteadyStart?.())), opts.warmupMs);
  const endTimer = setTimeout(() => hooks.push(Promise.resolve(opts.onSteadyEnd?.())), opts.warmupMs + opts.durationMs);
  const progress = setInterval(() => {
    opts.onSecond?.({ elapsedS: Math.round((performance.now() - t0) / 1000), accepted: acceptedAll, filled: filledAll, backlog });
  }, 1_000);

  const acceptLoop = async (client: pg.Client) => {
    while (performance.now() < end) {
      while (backlog >= backlogMax && performance.now() < end) {
        await new Promise<void>((resolve) => {
          resumeAccept = resolve;
          setTimeout(resolve, 5);
        });
      }
      const ui = Math.floor(Math.random() * users.length);
      const user = users[ui]!;
      const ti = Math.floor(Math.random() * tickerNames.length);
      let sell = Math.random() < opts.sellRatio;
      if (sell && user.sellable[ti]! <= 0) sell = false;
      if (sell) user.sellable[ti]! -= 1;
      const id = uuidv7();
      const hash = createHash('sha256').update(`${user.id}|${tickerNames[ti]}|${sell ? 'sell' : 'buy'}|${qty}`).digest();
      const started = performance.now();
      try {
        const res = sell
          ? await client.query({ name: 'floor_accept_sell', text: acceptSell, values: [id, user.id, tickerNames[ti], qty, hash] })
          : await client.query({
              name: 'floor_accept_buy',
              text: acceptBuy,
              values: [id, user.id, tickerNames[ti], qty, reserve[ti], tickerPrices[ti], hash],
            });
        const measured = started >= steadyStart && started < end;
        if (measured) latency.record(performance.now() - started);
        if (res.rowCount === 1) {
          acceptedAll += 1;
          if (measured) acceptedClient += 1;
          const k = ui % queues.length;
          queues[k]!.push(id);
          backlog += 1;
          wake[k]?.();
        } else {
          refused += 1;
        }
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'unknown';
        errors[`accept ${code}`] = (errors[`accept ${code}`] ?? 0) + 1;
      }
    }
  };

  const fillLoop = async (client: pg.Client, k: number) => {
    const queue = queues[k]!;
    for (;;) {
      if (queue.length === 0) {
        if (!accepting) return;
        await new Promise<void>((resolve) => {
          wake[k] = resolve;
          setTimeout(resolve, 5);
        });
        wake[k] = undefined;
        continue;
      }
      const ids = queue.splice(0, opts.batchSize);
      backlog -= ids.length;
      resumeAccept?.();
      for (let attempt = 1; ; attempt++) {
        try {
          await client.query('BEGIN');
          const { rows } = await client.query<{ id: string }>({ name: 'floor_fill', text: fill, values: [ids, tickerNames, tickerPrices] });
          const filled = rows.map((r) => r.id);
          await client.query({ name: 'floor_fill_holdings_buy', text: holdingsBuy, values: [filled] });
          await client.query({ name: 'floor_fill_holdings_sell', text: holdingsSell, values: [filled] });
          await client.query('COMMIT');
          filledAll += filled.length;
          batches += 1;
          break;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          const code = (err as { code?: string }).code ?? 'unknown';
          errors[`fill ${code}`] = (errors[`fill ${code}`] ?? 0) + 1;
          if (attempt >= 3 || (code !== '40P01' && code !== '40001')) break;
        }
      }
    }
  };

  const fills = fillers.map((c, k) => fillLoop(c, k));
  await Promise.all(accepters.map(acceptLoop));
  accepting = false;
  // The accept loops end at `end`; let the end-of-window hook fire on its timer if it has not yet.
  const late = end - performance.now();
  if (late > 0) await new Promise((r) => setTimeout(r, late + 1));
  if (hooks.length < 2) {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
    if (hooks.length === 0) hooks.push(Promise.resolve(opts.onSteadyStart?.()));
    hooks.push(Promise.resolve(opts.onSteadyEnd?.()));
  }
  await Promise.all(hooks);
  const drainStart = performance.now();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(fills), new Promise((r) => (timer = setTimeout(r, FLOOR_DRAIN_MS)))]);
  clearTimeout(timer);
  const drainedMs = performance.now() - drainStart;
  const unfilled = queues.reduce((n, q) => n + q.length, 0);
  for (const q of queues) q.length = 0;
  await Promise.all(fills);
  clearInterval(progress);
  await Promise.all([...accepters, ...fillers].map((c) => c.end().catch(() => undefined)));

  return {
    windowStartMs: epoch0 + opts.warmupMs,
    windowEndMs: epoch0 + opts.warmupMs + opts.durationMs,
    acceptLatency: latency,
    acceptedClient,
    refused,
    errors,
    batches,
    drainedMs,
    unfilled,
  };
}
