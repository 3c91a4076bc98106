/**
 * The live stream in the one-process mode (`npm start` with nothing configured): the bus and
 * the ticks are in memory. Resuming, a whole history and an order's events, and prices.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { createTestContext, startTestServer, type TestContext, type TestServer } from './harness.js';
import { StreamClient } from './events-stream-client.js';

let ctx: TestContext;
let api: TestServer;
let engine: ReturnType<typeof createEngine>;
const clients: StreamClient[] = [];

beforeAll(async () => {
  ctx = await createTestContext({ ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '3600000', ENGINE_RESTING_LEASE_TTL_MS: '1000' }, { infra: 'memory' });
  api = await startTestServer(ctx);
  engine = createEngine(ctx);
  await engine.start();
});
afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await engine?.stop();
  await api?.server.close();
  await ctx?.close();
});

async function subscribed(token: string, subscription: Record<string, unknown>) {
  const client = await StreamClient.subscribed(api.url, token, subscription);
  clients.push(client);
  return client;
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe('the live stream in one process', () => {
  it('replays, follows an order to its fill, resumes after a disconnect, and sends prices', async () => {
    const created = await api.request('POST', '/users', { body: { name: 'M', email: `memory-stream-${Date.now()}@example.com`, initial_cash: '10000.00' } });
    expect(created.status).toBe(201);
    const u = created.body as { id: string; api_key: string };
    for (let i = 0; i < 3; i++) expect((await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '5.00' } })).status).toBeLessThan(300);
    const stored = await ctx.events.lastSeq(u.id);

    const c1 = await subscribed(u.api_key, { events: true, since_seq: 0, tickers: ['AAPL'] });
    expect(await c1.untilSeq(stored)).toEqual(range(1, stored));
    expect((await api.request('PUT', '/admin/prices/AAPL', { body: { price: '150.5' } })).status).toBe(200);
    await c1.waitFor((m) => m.channel === 'prices' && m.ticker === 'AAPL' && m.price === '150.5000');
    const placed = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AAPL', quantity: 1, type: 'market' } });
    expect(placed.status).toBe(201);
    await c1.waitFor((m) => m.channel === 'events' && m.type === 'order.fill');
    expect(c1.events().slice(stored).map((e) => e.type)).toEqual(['order.new', 'order.fill']);
    await c1.close();

    for (let i = 0; i < 2; i++) expect((await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' } })).status).toBeLessThan(300);
    const c2 = await subscribed(u.api_key, { events: true, since_seq: c1.lastSeq() });
    const last = await ctx.events.lastSeq(u.id);
    expect(await c2.untilSeq(last)).toEqual(range(c1.lastSeq() + 1, last));
    expect(c2.events().map((e) => e.type)).toEqual(['cash.deposit', 'cash.deposit']);
  });
});
