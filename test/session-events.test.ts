/**
 * Session events the calendar makes happen without anyone forcing them: the midnight of the
 * always-open calendar (one day's session closes as the next opens: day orders expire, gtc
 * orders stay) and a close the engine missed while it was down (it runs the close at the
 * calendar's time when it comes back). The watcher is given a clock whose calendar the test
 * scripts; the orders go through the HTTP API and the engine as usual.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/app.js';
import { closeSession, latestSession, openSession } from '../src/services/clock/clock.repository.js';
import type { SessionClock } from '../src/services/trading/resting-watcher.js';
import { createTestContext, eventually, startTestServer, type TestContext, type TestServer } from './harness.js';

let ctx: TestContext;
let api: TestServer;

/** A calendar the test turns: open or not, and its most recent close. */
const calendar = { open: true, lastCloseMs: undefined as number | undefined };
const clock = (): SessionClock => ({
  isOpen: () => calendar.open,
  latestSession: () => latestSession(ctx.db),
  recordEvent: (event, at) => (event === 'open' ? openSession(ctx.db, at) : closeSession(ctx.db, at)),
  calendarLastClose: () => calendar.lastCloseMs,
});

beforeAll(async () => {
  ctx = await createTestContext({ ENGINE_BLOCK_MS: '50', PRICE_AGE_MS_MAX: '3600000', ENGINE_RESTING_LEASE_TTL_MS: '1000' });
  api = await startTestServer(ctx);
});
afterAll(async () => {
  await api?.server.close();
  await ctx?.close();
});

async function user() {
  const res = await api.request('POST', '/users', { body: { name: 'S', email: `s${Math.random()}@example.com`, initial_cash: '100000.00' } });
  return res.body as { id: string; api_key: string };
}

async function status(token: string, id: string): Promise<string> {
  return (await api.request('GET', `/orders/${id}`, { token })).body.status;
}

function sessions() {
  return ctx.db.selectFrom('market_sessions').select(['opened_at', 'closed_at']).orderBy('opened_at').execute();
}

describe('session events from the calendar', () => {
  it("always calendar: at midnight the day's session closes and the next opens; day orders expire, gtc stay", async () => {
    calendar.open = true;
    calendar.lastCloseMs = undefined;
    await api.request('PUT', '/admin/prices/KO', { body: { price: '60' } });
    const engine = createEngine(ctx, { sessionClock: clock() });
    await engine.start();
    try {
      // The first look at the clock opens a session.
      await eventually(async () => ((await sessions()).length === 1 ? true : undefined));
      const u = await user();
      const day = (await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'KO', quantity: 1, type: 'limit', limit_price: '50' } })).body;
      const gtc = (await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'KO', quantity: 1, type: 'limit', limit_price: '50', time_in_force: 'gtc' } })).body;
      for (const o of [day, gtc]) await eventually(async () => ((await status(u.api_key, o.id)) === 'OPEN' ? true : undefined));

      // Midnight: the calendar's latest close is now, after the recorded open.
      const midnight = Date.now();
      calendar.lastCloseMs = midnight;
      await eventually(async () => ((await status(u.api_key, day.id)) === 'EXPIRED' ? true : undefined));
      expect(await status(u.api_key, gtc.id)).toBe('OPEN');
      await eventually(async () => ((await sessions()).length === 2 ? true : undefined));
      const [first, second] = await sessions();
      expect(first!.closed_at?.getTime()).toBe(midnight);
      expect(second!.closed_at).toBeNull();
      expect(second!.opened_at.getTime()).toBeGreaterThanOrEqual(midnight);

      // The next day: a new day order rests, and the same midnight is not run again.
      const next = (await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'KO', quantity: 1, type: 'limit', limit_price: '50' } })).body;
      await eventually(async () => ((await status(u.api_key, next.id)) === 'OPEN' ? true : undefined));
      const settled = await sessions();
      expect(settled).toHaveLength(2);
      expect(await status(u.api_key, next.id)).toBe('OPEN');
      await api.request('DELETE', '/orders', { token: u.api_key });
    } finally {
      await engine.stop();
    }
  });

  it('runs a close it missed while no engine ran, at the close time: day orders placed before it expire', async () => {
    calendar.open = true;
    calendar.lastCloseMs = undefined;
    await api.request('PUT', '/admin/prices/KO', { body: { price: '60' } });
    const u = await user();
    let engine = createEngine(ctx, { sessionClock: clock() });
    await engine.start();
    let day: { id: string };
    try {
      await eventually(async () => ((await sessions()).at(-1)?.closed_at === null ? true : undefined));
      day = (await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'KO', quantity: 1, type: 'limit', limit_price: '50' } })).body;
      await eventually(async () => ((await status(u.api_key, day.id)) === 'OPEN' ? true : undefined));
    } finally {
      await engine.stop();
    }
    // While no engine runs, the session ends (a night): the market is closed when one comes back.
    const closeMs = Date.now();
    calendar.lastCloseMs = closeMs;
    calendar.open = false;
    engine = createEngine(ctx, { sessionClock: clock() });
    await engine.start();
    try {
      await eventually(async () => ((await status(u.api_key, day!.id)) === 'EXPIRED' ? true : undefined));
      // The close is recorded after the day orders it expires: poll for it with a deadline.
      const last = await eventually(async () => {
        const row = (await sessions()).at(-1)!;
        return row.closed_at !== null ? row : undefined;
      });
      expect(last.closed_at?.getTime()).toBe(closeMs);
      // Closed, and no open: nothing else happens.
      expect((await sessions()).filter((s) => s.closed_at === null)).toEqual([]);
    } finally {
      await engine.stop();
      calendar.open = true;
    }
  });
});
