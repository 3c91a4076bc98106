/**
 * The live stream and retention: a subscribe whose since_seq is older than what the log keeps
 * is refused with EVENTS_EXPIRED (and where to resume), leaving the previous subscription as it
 * was. A file of its own: the retention pass here removes every event of the database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventsService } from '../src/services/events/events.service.js';
import { createTestContext, startTestServer, type TestContext, type TestServer } from './harness.js';
import { StreamClient } from './events-stream-client.js';

let ctx: TestContext;
let api: TestServer;
const clients: StreamClient[] = [];

beforeAll(async () => {
  ctx = await createTestContext();
  api = await startTestServer(ctx);
});
afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await api?.server.close();
  await ctx?.close();
});

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

async function deposit(userId: string) {
  const res = await api.request('POST', `/users/${userId}/deposits`, { body: { amount: '1.00' } });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

describe('a since_seq past retention', () => {
  it('is refused with EVENTS_EXPIRED and where to resume; the previous subscription goes on', async () => {
    const created = await api.request('POST', '/users', { body: { name: 'R', email: `retention-${Date.now()}@example.com`, initial_cash: '100.00' } });
    expect(created.status).toBe(201);
    const u = created.body as { id: string; api_key: string };
    for (let i = 0; i < 3; i++) await deposit(u.id);
    const removedUpTo = await ctx.events.lastSeq(u.id);
    // A retention pass run as if two days had gone by, keeping one: every event so far goes.
    const later = new EventsService({ db: ctx.db, retentionDays: 1, logger: ctx.logger, now: () => Date.now() + 2 * 86_400_000 });
    expect(await later.prune()).toBeGreaterThanOrEqual(removedUpTo);
    await deposit(u.id);
    await deposit(u.id);

    const c = await StreamClient.subscribed(api.url, u.api_key, { events: true, since_seq: removedUpTo });
    clients.push(c);
    expect(await c.untilSeq(removedUpTo + 2)).toEqual(range(removedUpTo + 1, removedUpTo + 2));

    c.send({ action: 'subscribe', id: 'old', events: true, since_seq: 1 });
    const refusal = await c.waitFor((m) => m.id === 'old');
    expect(refusal).toMatchObject({
      type: 'error',
      error: { code: 'EVENTS_EXPIRED', service: 'events', details: { after_seq: 1, kept_from_seq: removedUpTo + 1, resume_after_seq_min: removedUpTo } },
    });
    await deposit(u.id);
    expect(await c.untilSeq(removedUpTo + 3)).toEqual(range(removedUpTo + 1, removedUpTo + 3));
  });
});
