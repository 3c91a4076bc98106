/**
 * The order flow end to end against real PostgreSQL, over the order pipe and quote store of the
 * run (Redis, or the in-process ones): the OMS, the pipe, the trading engine and the
 * reconciler, with prices set directly in the quote store so every number is exact.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createEngine } from '../src/app.js';
import { cashFromDb, formatCash, formatPrice, formatQty, parsePrice, parseQty } from '../src/core/money.js';
import * as accounts from '../src/services/accounts/accounts.service.js';
import * as portfolios from '../src/services/portfolios/portfolios.service.js';
import { executeBuy, executeSell } from '../src/core/orders.js';
import { OrdersService, pipeMessage, type PlaceOrder } from '../src/services/orders/orders.service.js';
import { applyDecisions, NO_DECISIONS, wholeFillAt } from '../src/services/trading/trading.service.js';
import { createTestContext, marketOrder, eventually, newUser, redisOnly, seedShares, type TestContext } from './harness.js';

let ctx: TestContext;
let oms: OrdersService;
const running: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  ctx = await createTestContext({
    ENGINE_BLOCK_MS: '50',
    ENGINE_CLAIM_IDLE_MS: '300',
    RECONCILE_INTERVAL_MS: '100',
    RECONCILE_AFTER_MS: '300',
    PRICE_AGE_MS_MAX: '60000',
  });
  oms = ctx.orders;
});
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});
afterAll(async () => {
  await ctx.close();
});

const q = (s: string) => parseQty(s);
const p = (s: string) => parsePrice(s);

async function setPrice(ticker: string, price: string, asOfMs = Date.now()) {
  await ctx.quotes.setMany([{ ticker, price: p(price), asOfMs }]);
}

async function startEngine(overrides: Parameters<typeof createEngine>[1] = {}) {
  const engine = createEngine(ctx, overrides);
  await engine.start();
  running.push(engine);
  return engine;
}

function buy(userId: string, ticker: string, quantity: string, extra: Partial<PlaceOrder> = {}) {
  return oms.placeOrder(marketOrder(userId, ticker, 'buy', quantity, extra));
}
function sell(userId: string, ticker: string, quantity: string, extra: Partial<PlaceOrder> = {}) {
  return oms.placeOrder(marketOrder(userId, ticker, 'sell', quantity, extra));
}

async function terminal(orderId: string, timeoutMs = 10_000) {
  return eventually(async () => {
    const o = await oms.getOrder(orderId);
    return o.status === 'PENDING' ? undefined : o;
  }, timeoutMs);
}

async function balance(userId: string) {
  const b = await accounts.getBalance(ctx.db, userId);
  return { cash: formatCash(b.cashBalance), available: formatCash(b.availableCash) };
}

async function fillsOf(orderId: string) {
  return ctx.db.selectFrom('fills').selectAll().where('order_id', '=', orderId).execute();
}

/** True once every pipe entry was delivered and settled (nothing undelivered, nothing pending). */
async function streamDrained() {
  const pipe = ctx.infra.pipe;
  return (await pipe.backlog()) === 0 && (await pipe.pending()) === 0 ? true : undefined;
}

/** A quote that exists but is too old to price anything: the engine must wait for a fresh one. */
async function stalePrice(ticker: string) {
  await setPrice(ticker, '1', Date.now() - 3_600_000);
}

async function ledgerSum(userId: string) {
  const { rows } = await sql<{ total: string }>`
    SELECT coalesce(sum(amount), 0)::numeric(20,2)::text AS total FROM cash_ledger WHERE user_id = ${userId}`.execute(ctx.db);
  return rows[0]!.total;
}

describe('the seed flows', () => {
  it('buys 10 AAPL: reserve 1575.00 at 150, fill at 152 for 1520.00', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('AAPL', '150');
    const { order, created } = await buy(u.id, 'AAPL', '10');
    expect(created).toBe(true);
    expect(order.status).toBe('PENDING');
    expect(formatCash(order.reservedAmount)).toBe('1575.00');
    expect(await balance(u.id)).toEqual({ cash: '10000.00', available: '8425.00' });

    await setPrice('AAPL', '152');
    await startEngine();
    const filled = await terminal(order.id);
    expect(filled.status).toBe('FILLED');
    expect(filled.fillPrice).toBe(p('152'));
    expect(await balance(u.id)).toEqual({ cash: '8480.00', available: '8480.00' });
    const [h] = await portfolios.listHoldings(ctx.db, u.id);
    expect([h!.ticker, formatQty(h!.quantity), h!.avgCost]).toEqual(['AAPL', '10', p('152')]);
    const fills = await fillsOf(order.id);
    expect(fills.map((f) => [f.price, f.quantity, f.amount])).toEqual([['152.0000', '10.000000', '1520.00']]);

    const sold = await sell(u.id, 'AAPL', '5');
    expect(formatCash(sold.order.reservedAmount)).toBe('0.00');
    expect((await terminal(sold.order.id)).status).toBe('FILLED');
    expect(await balance(u.id)).toEqual({ cash: '9240.00', available: '9240.00' });
    expect(formatQty((await portfolios.listHoldings(ctx.db, u.id))[0]!.quantity)).toBe('5');

    const rest = await sell(u.id, 'AAPL', '5');
    expect((await terminal(rest.order.id)).status).toBe('FILLED');
    expect(await portfolios.listHoldings(ctx.db, u.id)).toEqual([]);
    expect(await balance(u.id)).toEqual({ cash: '10000.00', available: '10000.00' });
    expect(await ledgerSum(u.id)).toBe('10000.00');
  });

  it('rejects a buy whose cost moved beyond the reservation and releases the hold', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('MSFT', '150');
    const { order } = await buy(u.id, 'MSFT', '10');
    await setPrice('MSFT', '157.5010'); // 1575.01 > 1575.00 reserved
    await startEngine();
    const done = await terminal(order.id);
    expect([done.status, done.rejectReason]).toEqual(['REJECTED', 'PRICE_MOVED_BEYOND_RESERVATION']);
    expect(await balance(u.id)).toEqual({ cash: '10000.00', available: '10000.00' });
    expect(await fillsOf(order.id)).toEqual([]);
  });
});

describe('refusals', () => {
  it('wraps INSUFFICIENT_FUNDS and INSUFFICIENT_HOLDINGS in ORDER_REJECTED and changes nothing', async () => {
    const u = await newUser(ctx, { cash: '100.00' });
    await setPrice('NVDA', '150');
    const funds = await buy(u.id, 'NVDA', '1').catch((e: unknown) => e);
    expect(funds).toMatchObject({ code: 'ORDER_REJECTED', service: 'orders', cause: { code: 'INSUFFICIENT_FUNDS', service: 'accounts' } });
    const holdings = await sell(u.id, 'NVDA', '1').catch((e: unknown) => e);
    expect(holdings).toMatchObject({ code: 'ORDER_REJECTED', cause: { code: 'INSUFFICIENT_HOLDINGS', service: 'portfolios' } });
    expect(await balance(u.id)).toEqual({ cash: '100.00', available: '100.00' });
    expect(await ctx.db.selectFrom('orders').select('id').where('user_id', '=', u.id).execute()).toEqual([]);
  });

  it('refuses an unknown ticker and a missing or stale price', async () => {
    const u = await newUser(ctx, { cash: '100000.00' });
    await expect(buy(u.id, 'NOPE', '1')).rejects.toMatchObject({ code: 'UNKNOWN_TICKER' });
    await expect(buy(u.id, 'HD', '1')).rejects.toMatchObject({ code: 'PRICE_UNAVAILABLE' }); // never priced
    await setPrice('GOOGL', '170', Date.now() - 120_000);
    await expect(buy(u.id, 'GOOGL', '1')).rejects.toMatchObject({ code: 'PRICE_UNAVAILABLE' });
  });
});

describe('concurrency', () => {
  it('accepts exactly 3 of 50 concurrent buys on an account that can afford 3', async () => {
    const u = await newUser(ctx, { cash: '500.00' });
    await setPrice('AMZN', '150'); // each buy reserves 157.50; 3 fit in 500.00, 4 do not
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => buy(u.id, 'AMZN', '1')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.cause?.code);
    expect(new Set(refused)).toEqual(new Set(['INSUFFICIENT_FUNDS']));
    expect(await balance(u.id)).toEqual({ cash: '500.00', available: '27.50' });
  });

  it('never sells more shares than held under concurrent sells', async () => {
    const u = await newUser(ctx, { cash: '0.00' });
    await seedShares(ctx, u.id, 'TSLA', '10', '200');
    await setPrice('TSLA', '200');
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => sell(u.id, 'TSLA', '3')));
    const accepted = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ order: { id: string } }>).value.order.id);
    expect(accepted).toHaveLength(3);
    await startEngine();
    for (const id of accepted) expect((await terminal(id)).status).toBe('FILLED');
    const [h] = await portfolios.listHoldings(ctx.db, u.id);
    expect([formatQty(h!.quantity), h!.reservedQuantity]).toEqual(['1', 0n]);
    expect(await balance(u.id)).toEqual({ cash: '1800.00', available: '1800.00' });
  });
});

describe('idempotency', () => {
  it('replays the original order for the same client_order_id, also when 10 requests race', async () => {
    const u = await newUser(ctx, { cash: '100000.00' });
    await setPrice('META', '500');
    const results = await Promise.all(Array.from({ length: 10 }, () => buy(u.id, 'META', '2', { clientOrderId: 'race-1' })));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.order.id)).size).toBe(1);
    expect(formatCash((await accounts.getBalance(ctx.db, u.id)).availableCash)).toBe('98950.00');
    const again = await buy(u.id, 'META', '2.000', { clientOrderId: 'race-1' });
    expect([again.created, again.order.id]).toEqual([false, results[0]!.order.id]);
    await expect(buy(u.id, 'META', '3', { clientOrderId: 'race-1' })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await expect(sell(u.id, 'META', '2', { clientOrderId: 'race-1' })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });
});

describe('delivery guarantees', () => {
  it('fills once when the same pipe entry is delivered twice', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('JPM', '200');
    const { order } = await buy(u.id, 'JPM', '5');
    // Duplicate entries for the same order, as a redelivery or a reconciler re-publish makes.
    await ctx.infra.pipe.publish([pipeMessage(order), pipeMessage(order)]);
    await startEngine();
    expect((await terminal(order.id)).status).toBe('FILLED');
    await eventually(streamDrained);
    expect(await fillsOf(order.id)).toHaveLength(1);
    expect(await balance(u.id)).toEqual({ cash: '9000.00', available: '9000.00' });
  });

  it('keeps exactly one fill when an engine dies between commit and acknowledgement', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('AAPL', '100');
    const dying = await ctx.infra.pipe.consumer('dying-engine');
    const { order } = await buy(u.id, 'AAPL', '1');
    const entries = await dying.read(100, 1_000);
    expect(entries.map((e) => e.orderId)).toContain(order.id);
    // It commits the execution exactly as the engine does, then dies before acknowledging.
    const execution = executeBuy(order.quantity, p('100'), order.reservedAmount);
    if (execution.outcome !== 'fill') throw new Error('the hold covers the buy');
    await ctx.db.transaction().execute((trx) => applyDecisions(trx, { ...NO_DECISIONS, fills: [wholeFillAt(order, p('100'))] }));
    await dying.close();
    expect(await ctx.infra.pipe.pending()).toBeGreaterThan(0);

    await startEngine(); // claims the dead consumer's entries after claimIdleMs
    await eventually(streamDrained);
    expect(await fillsOf(order.id)).toHaveLength(1);
    expect(await balance(u.id)).toEqual({ cash: '9900.00', available: '9900.00' });
  });

  it('completes every pending order after Redis lost the stream (the reconciler)', redisOnly, async () => {
    const u = await newUser(ctx, { cash: '100000.00' });
    await setPrice('AAPL', '100');
    const placed = [];
    for (let i = 0; i < 20; i++) placed.push((await buy(u.id, 'AAPL', '1')).order);
    // Redis loses everything of ours: the stream, its group, the price cache.
    const ours = await ctx.redis!.keys(`${ctx.keys.prefix}*`);
    await ctx.redis!.del(...ours);
    await setPrice('AAPL', '100');
    await startEngine();
    for (const o of placed) expect((await terminal(o.id, 15_000)).status).toBe('FILLED');
    expect(await balance(u.id)).toEqual({ cash: '98000.00', available: '98000.00' });
  });

  it('lets an order wait for a price, then fills it when the price returns', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('NFLX', '100');
    const { order } = await buy(u.id, 'NFLX', '1');
    await stalePrice('NFLX');
    await startEngine();
    // Polls until the engine has seen the entry (acknowledged it) while the order still waits.
    await eventually(streamDrained);
    expect((await oms.getOrder(order.id)).status).toBe('PENDING');
    await setPrice('NFLX', '101');
    const done = await terminal(order.id);
    expect([done.status, done.fillPrice]).toEqual(['FILLED', p('101')]);
  });

  it('rejects with PRICE_UNAVAILABLE an order that waited past the limit', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('ORCL', '100');
    const { order } = await buy(u.id, 'ORCL', '1');
    await stalePrice('ORCL');
    await startEngine({ priceWaitMsMax: 0 });
    const done = await terminal(order.id);
    expect([done.status, done.rejectReason]).toEqual(['REJECTED', 'PRICE_UNAVAILABLE']);
    expect(await balance(u.id)).toEqual({ cash: '10000.00', available: '10000.00' });
  });

  it('dead-letters an entry delivered too many times and rejects its order with the reason', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('KO', '60');
    const crashy = await ctx.infra.pipe.consumer('crashy');
    const { order } = await buy(u.id, 'KO', '1');
    expect((await crashy.read(100, 1_000)).map((e) => e.orderId)).toContain(order.id);
    // Each crash-and-claim cycle counts a delivery; push this entry past the limit.
    for (let i = 0; i < 6; i++) await crashy.claimAbandoned(0, 100);
    await crashy.close();
    await startEngine({ deliveriesMax: 5, reconcileAfterMs: 60_000 });
    const done = await terminal(order.id);
    expect([done.status, done.rejectReason]).toEqual(['REJECTED', 'DELIVERY_ATTEMPTS_EXCEEDED']);
    // The order is rejected first, then its entry dead-lettered: poll for the dead letter.
    const dead = await eventually(async () => {
      const letters = await ctx.infra.pipe.deadLetters(100);
      return letters.some((d) => d.entry.orderId === order.id) ? letters : undefined;
    });
    expect(dead.some((d) => d.entry.orderId === order.id && d.reason === 'DELIVERY_ATTEMPTS_EXCEEDED')).toBe(true);
    expect(await balance(u.id)).toEqual({ cash: '10000.00', available: '10000.00' });
  });

  it('dead-letters a malformed entry instead of dropping it', redisOnly, async () => {
    await startEngine();
    await ctx.redis!.xadd(ctx.keys.orderStream(), '*', 'garbage', 'yes');
    await eventually(async () => ((await ctx.infra.pipe.deadLetters(100)).some((d) => d.reason === 'MALFORMED_ENTRY') ? true : undefined));
  });
});

describe('bounded accept queue', () => {
  it('refuses at once with SERVICE_UNAVAILABLE past the queue bound, and every other order is accepted', async () => {
    const u = await newUser(ctx, { cash: '100000.00' });
    await setPrice('CSCO', '50');
    // One statement at a time, two orders a statement, at most three waiting.
    const small = new OrdersService({
      db: ctx.db,
      pipe: ctx.infra.pipe,
      orderUpdates: ctx.infra.orderUpdates,
      eventBus: ctx.infra.eventBus,
      logger: ctx.logger,
      prices: ctx.quotes,
      market: ctx.market,
      reservationBufferBps: 500n,
      orderNotionalMin: 100n,
      acceptBatchMax: 2,
      acceptConcurrencyMax: 1,
      acceptQueueMax: 3,
    });
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () => small.placeOrder(marketOrder(u.id, 'CSCO', 'buy', '1'))),
    );
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    expect(refused.length).toBeGreaterThan(0);
    for (const err of refused) expect(err).toMatchObject({ code: 'SERVICE_UNAVAILABLE', service: 'orders', details: { retry_after_s: 1 } });
    const accepted = results.length - refused.length;
    const rows = await ctx.db.selectFrom('orders').select('id').where('user_id', '=', u.id).execute();
    expect(rows).toHaveLength(accepted);
    // What was refused held nothing: the cash held is exactly that of the accepted orders.
    expect(await balance(u.id)).toEqual({ cash: '100000.00', available: formatCash(10_000_000n - BigInt(accepted) * 5_250n) });
  });
});

describe('batched accept', () => {
  it('accepts concurrent orders of many users in shared statements, refusing exactly the ones without funds or shares', async () => {
    await setPrice('PEP', '100');
    const rich = await Promise.all(Array.from({ length: 20 }, () => newUser(ctx, { cash: '1000.00' })));
    const broke = await Promise.all(Array.from({ length: 10 }, () => newUser(ctx, { cash: '50.00' })));
    const holders = await Promise.all(Array.from({ length: 10 }, () => newUser(ctx, { cash: '0.00' })));
    for (const h of holders) await seedShares(ctx, h.id, 'PEP', '3', '100');
    await setPrice('PEP', '100');
    const metric = async () => {
      const values = (await oms.acceptBatchSize.get()).values;
      const pick = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
      return { statements: pick('papertrade_oms_accept_batch_orders_count'), orders: pick('papertrade_oms_accept_batch_orders_sum') };
    };
    const before = await metric();

    const settle = <T>(p: Promise<T>) => p.then((v) => ({ ok: true as const, v }), (e: { code?: string; cause?: { code?: string } }) => ({ ok: false as const, e }));
    const results = await Promise.all([
      ...rich.map((u) => settle(buy(u.id, 'PEP', '2'))), // holds 210.00 each
      ...broke.map((u) => settle(buy(u.id, 'PEP', '1'))), // needs 105.00, has 50.00
      ...holders.map((u) => settle(sell(u.id, 'PEP', '2'))),
      ...holders.slice(0, 5).map((u) => settle(sell(u.id, 'PEP', '2'))), // only 1 left unreserved
      settle(buy(rich[0]!.id, 'PEP', '1', { clientOrderId: 'same-key' })),
      settle(buy(rich[0]!.id, 'PEP', '1', { clientOrderId: 'same-key' })),
    ]);
    const after = await metric();

    const [buysRich, buysBroke, sells, oversells, keyed] = [
      results.slice(0, 20),
      results.slice(20, 30),
      results.slice(30, 40),
      results.slice(40, 45),
      results.slice(45),
    ];
    expect(buysRich.every((r) => r.ok)).toBe(true);
    expect(buysBroke.map((r) => (r.ok ? 'ok' : r.e.cause?.code))).toEqual(Array(10).fill('INSUFFICIENT_FUNDS'));
    expect(sells.every((r) => r.ok)).toBe(true);
    expect(oversells.map((r) => (r.ok ? 'ok' : r.e.cause?.code))).toEqual(Array(5).fill('INSUFFICIENT_HOLDINGS'));
    // The same client_order_id twice at once: one order, the other request replays it.
    const keyedOrders = keyed.map((r) => (r.ok ? (r.v as { order: { id: string }; created: boolean }) : undefined));
    expect(keyedOrders.every(Boolean)).toBe(true);
    expect(new Set(keyedOrders.map((k) => k!.order.id)).size).toBe(1);
    expect(keyedOrders.map((k) => k!.created).sort()).toEqual([false, true]);

    // Fewer statements than orders: they were accepted together.
    expect(after.orders - before.orders).toBeGreaterThan(after.statements - before.statements);
    for (const u of rich.slice(1)) expect(await balance(u.id)).toEqual({ cash: '1000.00', available: '790.00' });
    for (const u of broke) expect(await balance(u.id)).toEqual({ cash: '50.00', available: '50.00' });
    for (const u of holders) {
      const [h] = await portfolios.listHoldings(ctx.db, u.id);
      expect([formatQty(h!.quantity), formatQty(h!.reservedQuantity)]).toEqual(['3', '2']);
    }
  });
});

describe('cancel', () => {
  it('cancels a pending order, releasing its hold; a terminal order is not cancelable', async () => {
    const u = await newUser(ctx, { cash: '1000.00' });
    await setPrice('PEP', '100');
    const { order } = await buy(u.id, 'PEP', '2');
    expect(await balance(u.id)).toEqual({ cash: '1000.00', available: '790.00' });
    const canceled = await oms.cancelOrder(order.id, u.id);
    expect(canceled.status).toBe('CANCELED');
    expect(await balance(u.id)).toEqual({ cash: '1000.00', available: '1000.00' });
    await expect(oms.cancelOrder(order.id, u.id)).rejects.toMatchObject({ code: 'ORDER_NOT_CANCELABLE' });
    const other = await newUser(ctx);
    await expect(oms.cancelOrder(order.id, other.id)).rejects.toMatchObject({ code: 'ORDER_NOT_FOUND' });
  });

  it('has exactly one winner when a cancel races the fill, and the money stays consistent', async () => {
    const u = await newUser(ctx, { cash: '100000.00' });
    await seedShares(ctx, u.id, 'WMT', '100', '50');
    await setPrice('WMT', '50');
    await startEngine();
    const orders = [];
    for (let i = 0; i < 20; i++) {
      const placed = i % 2 === 0 ? await buy(u.id, 'WMT', '1') : await sell(u.id, 'WMT', '1');
      const cancel = oms.cancelOrder(placed.order.id, u.id).then(
        () => 'CANCELED',
        (e: { code?: string }) => e.code,
      );
      orders.push({ id: placed.order.id, side: placed.order.side, cancel });
    }
    let filledBuys = 0n;
    let filledSells = 0n;
    for (const o of orders) {
      const result = await o.cancel;
      const final = await terminal(o.id);
      expect(['CANCELED', 'FILLED']).toContain(final.status);
      expect(result).toBe(final.status === 'CANCELED' ? 'CANCELED' : 'ORDER_NOT_CANCELABLE');
      expect(await fillsOf(o.id)).toHaveLength(final.status === 'FILLED' ? 1 : 0);
      if (final.status === 'FILLED') {
        if (o.side === 'buy') filledBuys += 1n;
        else filledSells += 1n;
      }
    }
    // Every fill is at 50.00: the cash and the shares follow from the count of each side's fills.
    const expectedCash = 10_000_000n - filledBuys * 5000n + filledSells * 5000n;
    expect(await balance(u.id)).toEqual({ cash: formatCash(expectedCash), available: formatCash(expectedCash) });
    const [h] = await portfolios.listHoldings(ctx.db, u.id);
    expect([h!.quantity, h!.reservedQuantity]).toEqual([q(String(100n + filledBuys - filledSells)), 0n]);
    expect(await ledgerSum(u.id)).toBe(formatCash(expectedCash));
  });
});

describe('set-based fills', () => {
  /** Places the same orders for a fresh user; returns them sorted as the engine sorts a batch. */
  async function scenario() {
    const u = await newUser(ctx, { cash: '10000.00' });
    await seedShares(ctx, u.id, 'KO', '5', '60');
    await setPrice('AAPL', '150');
    await setPrice('MSFT', '300');
    await setPrice('KO', '60');
    const placed = [
      (await buy(u.id, 'AAPL', '2')).order,
      (await sell(u.id, 'KO', '5')).order,
      (await buy(u.id, 'AAPL', '3')).order,
      (await buy(u.id, 'MSFT', '1')).order,
      (await buy(u.id, 'KO', '1.5')).order,
    ];
    const prices: Record<string, string> = {};
    // Prices that make the average cost round, and a second AAPL buy at another price.
    const px = [p('150.1234'), p('61.0001'), p('151.5678'), p('299.9999'), p('60.3333')];
    placed.forEach((o, i) => (prices[o.id] = formatPrice(px[i]!)));
    const sorted = [...placed].sort((a, b) => (a.ticker < b.ticker ? -1 : a.ticker > b.ticker ? 1 : a.id < b.id ? -1 : 1));
    const items = sorted.map((order) => wholeFillAt(order, p(prices[order.id]!)));
    return { u, items };
  }

  async function state(userId: string) {
    const ledger = await ctx.db
      .selectFrom('cash_ledger')
      .select(['kind', 'amount', 'balance_after'])
      .where('user_id', '=', userId)
      .orderBy('id')
      .execute();
    const holdings = (await portfolios.listHoldings(ctx.db, userId)).map((h) => [h.ticker, formatQty(h.quantity), formatPrice(h.avgCost), formatQty(h.reservedQuantity)]);
    return { balance: await balance(userId), ledger, holdings };
  }

  it('fills a batch in one statement with exactly the result of filling its orders one by one', async () => {
    const batch = await scenario();
    const single = await scenario();

    const { outcomes, events } = await ctx.db.transaction().execute((trx) => applyDecisions(trx, { ...NO_DECISIONS, fills: batch.items }));
    expect(outcomes.map((o) => [o.applied, o.order.status])).toEqual(batch.items.map(() => [true, 'FILLED']));
    // One order.fill per order, in round order, each with the position its fill left (KO: sold
    // to zero in round one, bought again in round two), numbered on from the user's last event.
    expect(events.map((e) => { const d = JSON.parse(e.dataJson); return [e.type, d.ticker, d.fill.quantity, d.position_quantity]; })).toEqual([
      ['order.fill', 'AAPL', '2', '2'],
      ['order.fill', 'KO', '5', '0'],
      ['order.fill', 'MSFT', '1', '1'],
      ['order.fill', 'AAPL', '3', '5'],
      ['order.fill', 'KO', '1.5', '1.5'],
    ]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => events[0]!.seq + i));
    for (const item of single.items) await ctx.db.transaction().execute((trx) => applyDecisions(trx, { ...NO_DECISIONS, fills: [item] }));

    const a = await state(batch.u.id);
    const b = await state(single.u.id);
    expect([a.balance, a.holdings]).toEqual([b.balance, b.holdings]);
    // Same movements; within the batch they are ledgered round by round (the second AAPL and
    // KO orders come last), each row with the running balance after it.
    const movements = (s: typeof a) => s.ledger.map((r) => `${r.kind} ${r.amount}`).sort();
    expect(movements(a)).toEqual(movements(b));
    a.ledger.slice(1).forEach((row, i) => {
      expect(cashFromDb(row.balance_after)).toBe(cashFromDb(a.ledger[i]!.balance_after) + cashFromDb(row.amount));
    });
    // The KO position was sold to zero and bought again in the same batch (two rounds).
    expect(a.holdings).toEqual([
      ['AAPL', '5', '150.9900', '0'], // (2 x 150.1234 + 3 x 151.5678) / 5 = 150.99004
      ['KO', '1.5', '60.3333', '0'],
      ['MSFT', '1', '299.9999', '0'],
    ]);

    // Executing the batch again changes nothing: every order is past PENDING.
    const again = await ctx.db.transaction().execute((trx) => applyDecisions(trx, { ...NO_DECISIONS, fills: batch.items }));
    expect(again.events).toEqual([]);
    expect(again.outcomes.every((o) => !o.applied)).toBe(true);
    expect(await state(batch.u.id)).toEqual(a);
  });
});

describe('two engines on one holding', () => {
  it('fills a sell whose holding another engine changed after the statement began, without redelivery', async () => {
    const u = await newUser(ctx, { cash: '0.00' });
    await seedShares(ctx, u.id, 'IBM', '2', '100');
    await setPrice('IBM', '100');
    const engineB = await ctx.infra.pipe.consumer('engine-b');
    const a = (await sell(u.id, 'IBM', '1')).order;
    const b = (await sell(u.id, 'IBM', '1')).order;
    // Engine B owns sell b: it takes both entries (and keeps them, never claimed within the test);
    // sell a is published again for our engine.
    const taken = await engineB.read(100, 1_000);
    expect(taken.map((e) => e.orderId)).toEqual(expect.arrayContaining([a.id, b.id]));
    await ctx.infra.pipe.publish([pipeMessage(a)]);
    // "Engine B" fills sell b and keeps its transaction open until our engine is blocked behind
    // it; the engine's statement for sell a then resumes against a holding changed after its
    // snapshot. A redelivery would take a minute (claimIdleMs), so a quick fill proves the retry.
    const sold = executeSell(b.quantity, p('100'));
    if (sold.outcome !== 'fill') throw new Error('a sell of 1 at 100 fills');
    await ctx.db.transaction().execute(async (trx) => {
      await applyDecisions(trx, { ...NO_DECISIONS, fills: [wholeFillAt(b, p('100'))] });
      await startEngine({ claimIdleMs: 60_000, reconcileAfterMs: 60_000 });
      await eventually(async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(ctx.db);
        return rows[0]!.n > 0 ? true : undefined;
      });
    });
    expect((await terminal(a.id, 5_000)).status).toBe('FILLED');
    expect(await portfolios.listHoldings(ctx.db, u.id)).toEqual([]);
    expect(await balance(u.id)).toEqual({ cash: '200.00', available: '200.00' });
    expect((await fillsOf(a.id)).length + (await fillsOf(b.id)).length).toBe(2);
    await engineB.ack(taken.map((e) => e.id));
    await engineB.close();
  });
});

describe('order updates', () => {
  it('publishes every status change on the updates channel', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('AAPL', '100');
    const seen: { order_id: string; status: string; fill_price: string | null }[] = [];
    const unsubscribe = await ctx.infra.orderUpdates.subscribe((message) => seen.push(JSON.parse(message)));
    try {
      const { order } = await buy(u.id, 'AAPL', '1');
      const canceled = (await buy(u.id, 'AAPL', '1')).order;
      await oms.cancelOrder(canceled.id, u.id);
      await startEngine();
      await terminal(order.id);
      await eventually(async () => (seen.filter((m) => m.order_id === order.id).length >= 2 ? true : undefined));
      expect(seen.filter((m) => m.order_id === order.id).map((m) => [m.status, m.fill_price])).toEqual([
        ['PENDING', null],
        ['FILLED', '100.0000'],
      ]);
      expect(seen.filter((m) => m.order_id === canceled.id).map((m) => m.status)).toEqual(['PENDING', 'CANCELED']);
    } finally {
      await unsubscribe();
    }
  });
});

describe('shutdown', () => {
  it('stops gracefully, leaving nothing unacknowledged', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    await setPrice('AAPL', '100');
    const engine = createEngine(ctx, {});
    await engine.start();
    const placed = [];
    for (let i = 0; i < 10; i++) placed.push((await buy(u.id, 'AAPL', '1')).order);
    for (const o of placed) await terminal(o.id);
    await engine.stop();
    expect(await ctx.infra.pipe.pending()).toBe(0);
  });
});
