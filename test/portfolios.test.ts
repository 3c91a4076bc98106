import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPrice, formatQty, parsePrice, parseQty, weightedAvgCost } from '../src/core/money.js';
import { executeSell } from '../src/core/orders.js';
import * as portfolios from '../src/services/portfolios/portfolios.service.js';
import { applyDecisions, NO_DECISIONS, wholeFillAt } from '../src/services/trading/trading.service.js';
import { createTestContext, marketOrder, newUser, seedShares, type TestContext } from './harness.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({}, { auditOnClose: { skip: 'service tests move shares without fills on purpose' } });
});
afterAll(async () => {
  await ctx.close();
});

const q = (s: string) => parseQty(s);
const p = (s: string) => parsePrice(s);

/** Sells through the OMS and fills the order at `price` with the engine's own statement. */
async function sellNow(userId: string, ticker: string, quantity: string, price: string) {
  await ctx.quotes.setMany([{ ticker, price: p(price), asOfMs: Date.now() }]);
  const { order } = await ctx.orders.placeOrder(marketOrder(userId, ticker, 'sell', quantity));
  const sold = executeSell(order.quantity, p(price));
  if (sold.outcome !== 'fill') throw new Error('the sell fills');
  await ctx.db.transaction().execute((trx) => applyDecisions(trx, { ...NO_DECISIONS, fills: [wholeFillAt(order, p(price))] }));
}

describe('portfolios service', () => {
  it('adds bought shares with a weighted average cost equal to core/money', async () => {
    const u = await newUser(ctx);
    await seedShares(ctx, u.id, 'AAPL', '10', '152.0000');
    await seedShares(ctx, u.id, 'AAPL', '3.5', '149.3333');
    const [h] = await portfolios.listHoldings(ctx.db, u.id);
    if (!h) throw new Error('a holding');
    expect(formatQty(h.quantity)).toBe('13.5');
    expect(formatPrice(h.avgCost)).toBe(formatPrice(weightedAvgCost(q('10'), p('152.0000'), q('3.5'), p('149.3333'))));
  });

  it('reserves shares and refuses to reserve more than are unreserved', async () => {
    const u = await newUser(ctx);
    await seedShares(ctx, u.id, 'MSFT', '10', '400.0000');
    await portfolios.reserveShares(ctx.db, u.id, 'MSFT', q('6'));
    const err = await portfolios.reserveShares(ctx.db, u.id, 'MSFT', q('4.000001')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INSUFFICIENT_HOLDINGS', service: 'portfolios', details: { available: '4' } });
    await expect(portfolios.reserveShares(ctx.db, u.id, 'NVDA', q('1'))).rejects.toMatchObject({
      code: 'INSUFFICIENT_HOLDINGS',
    });
    const [h] = await portfolios.listHoldings(ctx.db, u.id);
    expect(formatQty(h!.availableQuantity)).toBe('4');
  });

  it('never reserves the same shares twice under concurrent reservations', async () => {
    const u = await newUser(ctx);
    await seedShares(ctx, u.id, 'TSLA', '10', '200.0000');
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => portfolios.reserveShares(ctx.db, u.id, 'TSLA', q('3'))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const [h] = await portfolios.listHoldings(ctx.db, u.id);
    expect(formatQty(h!.reservedQuantity)).toBe('9');
  });

  it('removes sold shares and deletes the row when none are left', async () => {
    const u = await newUser(ctx);
    await seedShares(ctx, u.id, 'AMZN', '10', '180.0000');
    await sellNow(u.id, 'AMZN', '5', '180');
    expect((await portfolios.listHoldings(ctx.db, u.id)).map((h) => [h.ticker, formatQty(h.quantity), h.reservedQuantity])).toEqual([
      ['AMZN', '5', 0n],
    ]);
    await sellNow(u.id, 'AMZN', '5', '181');
    expect(await portfolios.listHoldings(ctx.db, u.id)).toEqual([]);
  });

  it('releases a reservation', async () => {
    const u = await newUser(ctx);
    await seedShares(ctx, u.id, 'META', '2', '500.0000');
    await portfolios.reserveShares(ctx.db, u.id, 'META', q('2'));
    await portfolios.releaseShares(ctx.db, u.id, 'META', q('2'));
    const [h] = await portfolios.listHoldings(ctx.db, u.id);
    expect(h!.reservedQuantity).toBe(0n);
  });

  it('values positions at market price, falling back to average cost', () => {
    const holdings: portfolios.Holding[] = [
      { ticker: 'AAPL', quantity: q('10'), reservedQuantity: 0n, availableQuantity: q('10'), avgCost: p('150.0000') },
      { ticker: 'XYZ', quantity: q('1'), reservedQuantity: 0n, availableQuantity: q('1'), avgCost: p('10.0000') },
    ];
    const [a, x] = portfolios.valuePositions(holdings, new Map([['AAPL', p('152.0000')]]));
    expect(a!.marketValue).toBe(152000n);
    expect(a!.unrealizedPl).toBe(2000n);
    expect(x!.marketValue).toBe(1000n);
    expect(x!.unrealizedPl).toBe(0n);
  });
});
