/**
 * Alpaca's trading stream (`GET /stream`, `trade_updates`) end to end on the real server, with
 * the `ws` package as the client: authorization as Alpaca answers it, listen and its
 * acknowledgement, the trade updates of market, limit, replaced and rejected orders with their
 * exact fields, resuming with since_seq, the limits, liveness and shutdown. Tests that need
 * shortened timeouts or small limits run a stream-only server with those options on the same
 * context. Every frame received in this file is finally fed to both Alpaca SDKs' stream readers,
 * which must take each without throwing. Waits poll what arrived against a deadline.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import AlpacaV3 from 'alpaca-trade-api-v3';
import { streaming } from '@alpacahq/alpaca-trade-api';
import type { createEngine } from '../src/app.js';
import { registerAlpacaStream, type AlpacaStream, type AlpacaStreamOverrides } from '../src/alpaca/alpaca.stream.js';
import { executionId } from '../src/alpaca/alpaca.views.js';
import { isTradeUpdate, tradeUpdateData } from '../src/alpaca/alpaca.stream.protocol.js';
import type { EventBus, EventLog, EventRecord } from '../src/services/events/event-log.js';
import { EventsExpiredError } from '../src/services/events/events.errors.js';
import type { LiveStreamOptions } from '../src/services/events/live-stream.js';
import { ADMIN_TOKEN, adminPrice, apiUser, eventually, startTradingStack, type TestContext, type TestServer } from './harness.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON */

let ctx: TestContext;
let api: TestServer;
let engine: ReturnType<typeof createEngine>;
const clients: AlpacaClient[] = [];
const servers: StreamServer[] = [];
/** Every frame any client of this file received, for the SDK readers' check at the end. */
const allFrames: Buffer[] = [];

beforeAll(async () => {
  ({ ctx, api, engine } = await startTradingStack());
  await adminPrice(api, 'AAPL', '150.00');
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await engine?.stop();
  await api?.server.close();
  await ctx?.close();
});

// -- a client ---------------------------------------------------------------------------------

interface Closed {
  code: number;
  reason: string;
}

interface User {
  id: string;
  api_key: string;
  key_id: string;
  secret_key: string;
}

class AlpacaClient {
  /** Each frame as received: whether it was binary, and its JSON. */
  readonly frames: { binary: boolean; json: any }[] = [];
  closed: Closed | undefined;
  private readonly closedPromise: Promise<Closed>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary) => {
      allFrames.push(data);
      this.frames.push({ binary: isBinary, json: JSON.parse(data.toString('utf8')) });
    });
    this.closedPromise = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        resolve(this.closed);
      }),
    );
    ws.on('error', () => {});
  }

  static async connect(url: string, options: { headers?: Record<string, string>; autoPong?: boolean } = {}): Promise<AlpacaClient> {
    const wsUrl = url.startsWith('ws+unix:') ? url : `${url.replace(/^http/, 'ws')}/stream`;
    const ws = new WebSocket(wsUrl, { headers: options.headers ?? {}, autoPong: options.autoPong ?? true });
    const client = new AlpacaClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
      ws.once('error', reject);
    });
    clients.push(client);
    return client;
  }

  get messages(): any[] {
    return this.frames.map((f) => f.json);
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends Alpaca's authenticate message and returns the authorization answer. */
  async authenticate(keyId: string, secretKey: string): Promise<any> {
    const from = this.frames.length;
    this.send({ action: 'authenticate', data: { key_id: keyId, secret_key: secretKey } });
    return this.waitFor((m) => m.stream === 'authorization', { from });
  }

  /** Sends a listen and returns its answer (a listening frame, or an error / authorization frame). */
  async listen(streams: string[] = ['trade_updates'], sinceSeq?: number): Promise<any> {
    const from = this.frames.length;
    this.send({ action: 'listen', data: { streams, ...(sinceSeq !== undefined ? { since_seq: sinceSeq } : {}) } });
    return this.waitFor((m) => m.stream === 'listening' || m.stream === 'authorization' || m.action === 'error', { from });
  }

  /** The data of every trade update received. */
  updates(): any[] {
    return this.messages.filter((m) => m.stream === 'trade_updates').map((m) => m.data);
  }

  /** Waits until `n` trade updates have arrived; returns them. */
  async untilUpdates(n: number, timeoutMs = 10_000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.updates();
      if (got.length >= n) return got;
      if (this.closed) throw new Error(`closed (${this.closed.code}) with ${got.length} of ${n} updates: ${JSON.stringify(this.messages.slice(-3))}`);
      if (Date.now() > deadline) throw new Error(`${got.length} of ${n} updates within ${timeoutMs} ms: ${JSON.stringify(got.map((u) => u.event))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async waitFor(match: (m: any) => boolean, options: { from?: number; timeoutMs?: number } = {}): Promise<any> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(options.from ?? 0).find(match);
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting; got ${JSON.stringify(this.messages.slice(-3))}`);
      if (Date.now() > deadline) throw new Error(`no matching frame within ${timeoutMs} ms; last: ${JSON.stringify(this.messages.slice(-3))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<Closed> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closedPromise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  pause(): void {
    (this.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
  }

  resume(): void {
    (this.ws as unknown as { _socket: import('node:net').Socket })._socket.resume();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.ws.close();
    await this.waitClosed().catch(() => this.ws.terminate());
  }
}

/** A client authenticated by message as `u`. */
async function authenticated(u: User, url = api.url): Promise<AlpacaClient> {
  const c = await AlpacaClient.connect(url);
  expect(await c.authenticate(u.key_id, u.secret_key)).toEqual({ stream: 'authorization', data: { action: 'authenticate', status: 'authorized' } });
  return c;
}

/** A client authenticated and listening to trade_updates (live from now). */
async function listening(u: User, url = api.url): Promise<AlpacaClient> {
  const c = await authenticated(u, url);
  expect(await c.listen()).toEqual({ stream: 'listening', data: { streams: ['trade_updates'] } });
  return c;
}

// -- a stream-only server ---------------------------------------------------------------------

interface StreamServer {
  stream: AlpacaStream;
  url: string;
  close(): Promise<void>;
}

/** `GET /stream` alone, on the context's parts with the test's options, over TCP or a Unix socket. */
async function streamServer(
  options: Partial<LiveStreamOptions> = {},
  extra: Omit<AlpacaStreamOverrides, 'options'> & { unixSocket?: boolean } = {},
): Promise<StreamServer> {
  const { unixSocket, ...overrides } = extra;
  const server = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  const stream = await registerAlpacaStream(server, ctx, { metrics: null, ...overrides, options });
  await server.ready();
  let url: string;
  let socketPath: string | undefined;
  if (unixSocket) {
    socketPath = path.join(tmpdir(), `pt-alpaca-${randomBytes(6).toString('hex')}.sock`);
    await server.listen({ path: socketPath });
    url = `ws+unix://${socketPath}:/stream`;
  } else {
    await server.listen({ host: '127.0.0.1', port: 0 });
    const address = server.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }
  const s: StreamServer = {
    stream,
    url,
    async close() {
      await server.close();
      if (socketPath) rmSync(socketPath, { force: true });
    },
  };
  servers.push(s);
  return s;
}

// -- the API ------------------------------------------------------------------------------------

const user = async (cash?: string) => (await apiUser(api, cash)) as User;

async function placeOrder(u: User, body: Record<string, unknown>): Promise<any> {
  const res = await api.request('POST', '/orders', { token: u.api_key, body: { ticker: 'AAPL', quantity: '2', type: 'market', side: 'buy', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function orderUntil(u: User, id: string, status: string): Promise<any> {
  return eventually(async () => {
    const o = (await api.request('GET', `/orders/${id}`, { token: u.api_key })).body;
    return o.status === status ? o : undefined;
  });
}

async function deposit(u: User) {
  const res = await api.request('POST', `/users/${u.id}/deposits`, { body: { amount: '1.00' } });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

/** The user's events in the log, oldest first. */
async function log(u: User, afterSeq = 0): Promise<EventRecord[]> {
  return ctx.events.readAfter(u.id, afterSeq, 1_000);
}

/** The trade_updates event papertrade's event type becomes (what the stream must send, in order). */
const TRADE_EVENT: Record<string, string> = {
  'order.new': 'new',
  'order.fill': 'fill',
  'order.canceled': 'canceled',
  'order.expired': 'expired',
  'order.rejected': 'rejected',
  'order.replaced': 'replaced',
};

/** A round trip on the connection: every frame the server sent before it has arrived after it. */
async function roundTrip(c: AlpacaClient): Promise<void> {
  const from = c.frames.length;
  c.send({ action: 'listen', data: { streams: ['trade_updates'] } });
  await c.waitFor((m) => m.stream === 'listening', { from });
}

// ---------------------------------------------------------------------------------------------

describe('authorization', () => {
  it('answers authorized to a user key pair, in the authenticate form and the auth form', async () => {
    const u = await user();
    await authenticated(u);
    const c = await AlpacaClient.connect(api.url);
    c.send({ action: 'auth', key: u.key_id, secret: u.secret_key });
    expect(await c.waitFor((m) => m.stream === 'authorization')).toEqual({ stream: 'authorization', data: { action: 'authenticate', status: 'authorized' } });
  });

  it('answers unauthorized and closes (4003) for a wrong secret, a missing pair, the admin token and a teacher key', async () => {
    const u = await user();
    const wrong = await AlpacaClient.connect(api.url);
    expect(await wrong.authenticate(u.key_id, 'A'.repeat(43))).toEqual({
      stream: 'authorization',
      data: { action: 'authenticate', status: 'unauthorized', error_message: 'invalid key_id or secret_key' },
    });
    expect((await wrong.waitClosed()).code).toBe(4003);

    const missing = await AlpacaClient.connect(api.url);
    missing.send({ action: 'authenticate', data: { key_id: u.key_id } });
    expect(await missing.waitFor((m) => m.stream === 'authorization')).toMatchObject({ data: { action: 'authenticate', status: 'unauthorized' } });
    expect((await missing.waitClosed()).code).toBe(4003);

    const admin = await AlpacaClient.connect(api.url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(await admin.waitFor((m) => m.stream === 'authorization')).toEqual({
      stream: 'authorization',
      data: { action: 'authenticate', status: 'unauthorized', error_message: expect.stringMatching(/admin token has no trade updates/) },
    });
    expect((await admin.waitClosed()).code).toBe(4003);

    const cls = await api.request('POST', '/classes', { body: { name: 'Stream class', starting_cash: '1000.00' } });
    expect(cls.status, JSON.stringify(cls.body)).toBe(201);
    const [, keyId, secret] = /^ptk_([0-9a-f]{16})_(.+)$/.exec(cls.body.teacher_key)!;
    const teacher = await AlpacaClient.connect(api.url);
    expect(await teacher.authenticate(keyId!, secret!)).toMatchObject({
      data: { action: 'authenticate', status: 'unauthorized', error_message: expect.stringMatching(/teacher key has no trade updates/) },
    });
    expect((await teacher.waitClosed()).code).toBe(4003);
  });

  it("takes the upgrade's APCA-API-KEY-ID / APCA-API-SECRET-KEY or bearer headers, and refuses malformed ones", async () => {
    const u = await user();
    const apca = await AlpacaClient.connect(api.url, { headers: { 'APCA-API-KEY-ID': u.key_id, 'APCA-API-SECRET-KEY': u.secret_key } });
    expect(await apca.waitFor((m) => m.stream === 'authorization')).toEqual({ stream: 'authorization', data: { action: 'authenticate', status: 'authorized' } });
    expect(await apca.listen()).toEqual({ stream: 'listening', data: { streams: ['trade_updates'] } });

    const bearer = await AlpacaClient.connect(api.url, { headers: { authorization: `Bearer ${u.api_key}` } });
    expect(await bearer.waitFor((m) => m.stream === 'authorization')).toMatchObject({ data: { status: 'authorized' } });
    // The same account again by message is authorized again; the connection goes on.
    expect(await bearer.authenticate(u.key_id, u.secret_key)).toMatchObject({ data: { status: 'authorized' } });
    expect(await bearer.listen()).toMatchObject({ stream: 'listening' });

    const basic = await AlpacaClient.connect(api.url, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(await basic.waitFor((m) => m.stream === 'authorization')).toMatchObject({ data: { status: 'unauthorized' } });
    expect((await basic.waitClosed()).code).toBe(4003);
  });

  it('answers a listen before authentication as Alpaca does, and the connection may still authenticate', async () => {
    const u = await user();
    const c = await AlpacaClient.connect(api.url);
    expect(await c.listen()).toEqual({
      stream: 'authorization',
      data: { action: 'listen', status: 'unauthorized', error_message: expect.stringMatching(/authenticate first/) },
    });
    await c.authenticate(u.key_id, u.secret_key);
    expect(await c.listen()).toEqual({ stream: 'listening', data: { streams: ['trade_updates'] } });
  });

  it('closes with 4001 after an error when no authentication comes within the timeout', async () => {
    const s = await streamServer({ authTimeoutMs: 150 });
    const c = await AlpacaClient.connect(s.url);
    expect(await c.waitClosed()).toEqual({ code: 4001, reason: 'authentication timed out' });
    expect(c.messages).toEqual([{ action: 'error', stream: 'error', data: { error_message: expect.stringMatching(/timed out/), error: expect.objectContaining({ code: 'UNAUTHENTICATED' }) } }]);

    // One that authenticated in time is not closed by it.
    const u = await user();
    const ok = await listening(u, s.url);
    await placeOrder(u, {});
    await ok.untilUpdates(2);
    expect(ok.closed).toBeUndefined();
  });
});

describe('listen', () => {
  it('acknowledges the streams that exist only, and an empty list', async () => {
    const u = await user();
    const c = await authenticated(u);
    expect(await c.listen(['trade_updates', 'account_updates', 'trade_updates'])).toEqual({ stream: 'listening', data: { streams: ['trade_updates'] } });
    expect(await c.listen(['account_updates'])).toEqual({ stream: 'listening', data: { streams: [] } });
    expect(await c.listen([])).toEqual({ stream: 'listening', data: { streams: [] } });
  });

  it('a market buy brings new then fill with the exact price, qty, position_qty and execution_id; a listen twice answers twice and sends each once', async () => {
    const u = await user();
    const c = await authenticated(u);
    // As Alpaca's SDK 4.x does: listen after authentication and once more on subscribing.
    expect(await c.listen()).toEqual({ stream: 'listening', data: { streams: ['trade_updates'] } });
    expect(await c.listen()).toEqual({ stream: 'listening', data: { streams: ['trade_updates'] } });
    expect(c.messages.filter((m) => m.stream === 'listening')).toHaveLength(2);
    const other = await listening(u);

    const placed = await placeOrder(u, { quantity: '2' });
    const [created, filled] = await c.untilUpdates(2);
    await roundTrip(c);
    expect(c.updates().map((d) => d.event)).toEqual(['new', 'fill']);

    const events = (await log(u)).filter((e) => e.type === 'order.new' || e.type === 'order.fill');
    expect(events.map((e) => e.type)).toEqual(['order.new', 'order.fill']);
    expect(created).toEqual({ event: 'new', order: expect.objectContaining({ id: placed.id, status: 'pending_new', qty: '2', filled_qty: '0', symbol: 'AAPL' }), timestamp: events[0]!.at, seq: events[0]!.seq });
    expect(filled).toEqual({
      event: 'fill',
      execution_id: executionId(placed.id),
      order: expect.objectContaining({ id: placed.id, status: 'filled', qty: '2', filled_qty: '2', filled_avg_price: '150.0000', side: 'buy', type: 'market' }),
      timestamp: events[1]!.at,
      price: '150.0000',
      qty: '2',
      position_qty: '2',
      seq: events[1]!.seq,
    });
    // The order in the update is the order as the facade's REST API shows it.
    const rest = await api.request('GET', `/v2/orders/${placed.id}`, { token: u.api_key });
    expect(rest.status).toBe(200);
    expect(filled.order).toEqual(rest.body);

    // A second connection of the user gets the same updates, byte for byte (rendered once).
    await other.untilUpdates(2);
    await roundTrip(other);
    expect(other.updates()).toEqual(c.updates());
    // Every frame was binary, as Alpaca's paper stream sends them.
    expect(c.frames.every((f) => f.binary)).toBe(true);

    // A second buy: the position grows.
    await placeOrder(u, { quantity: '1' });
    const [, , , second] = await c.untilUpdates(4);
    expect(second).toMatchObject({ event: 'fill', qty: '1', position_qty: '3', price: '150.0000' });
  });

  it('a resting limit that is canceled brings new then canceled', async () => {
    const u = await user();
    const c = await listening(u);
    const placed = await placeOrder(u, { type: 'limit', limit_price: '100.00', time_in_force: 'gtc', quantity: '1' });
    await orderUntil(u, placed.id, 'OPEN');
    const canceled = await api.request('DELETE', `/orders/${placed.id}`, { token: u.api_key });
    expect(canceled.status).toBe(200);
    const [created, done] = await c.untilUpdates(2);
    expect(created).toMatchObject({ event: 'new', order: { id: placed.id, type: 'limit', limit_price: '100.0000' } });
    expect(done).toMatchObject({ event: 'canceled', order: { id: placed.id, status: 'canceled', canceled_at: expect.any(String) }, timestamp: expect.any(String) });
    expect(done.execution_id).toBeUndefined();
    expect(done.price).toBeUndefined();
  });

  it('a replace brings replaced (the old order) then new (the new one)', async () => {
    const u = await user();
    const c = await listening(u);
    const placed = await placeOrder(u, { type: 'limit', limit_price: '100.00', time_in_force: 'gtc', quantity: '1' });
    await orderUntil(u, placed.id, 'OPEN');
    const replaced = await api.request('PATCH', `/orders/${placed.id}`, { token: u.api_key, body: { limit_price: '101.00' } });
    expect(replaced.status, JSON.stringify(replaced.body)).toBe(200);
    const updates = await c.untilUpdates(3);
    expect(updates.map((d) => [d.event, d.order.id])).toEqual([
      ['new', placed.id],
      ['replaced', placed.id],
      ['new', replaced.body.id],
    ]);
    expect(updates[1].order).toMatchObject({ status: 'replaced', replaced_by: replaced.body.id, replaced_at: expect.any(String) });
    expect(updates[2].order).toMatchObject({ replaces: placed.id, limit_price: '101.0000' });
    await api.request('DELETE', `/orders/${replaced.body.id}`, { token: u.api_key });
    expect((await c.untilUpdates(4))[3]).toMatchObject({ event: 'canceled', order: { id: replaced.body.id } });
  });

  it('a buy stop rejected at its trigger brings new then rejected', async () => {
    const u = await user('10000.00');
    await adminPrice(api, 'META', '500.00');
    const c = await listening(u);
    const stop = await placeOrder(u, { ticker: 'META', type: 'stop', stop_price: '510.00', quantity: '1' });
    await orderUntil(u, stop.id, 'OPEN');
    await adminPrice(api, 'META', '540.00');
    const [created, rejected] = await c.untilUpdates(2);
    expect(created).toMatchObject({ event: 'new', order: { id: stop.id } });
    expect(rejected).toMatchObject({ event: 'rejected', order: { id: stop.id, status: 'rejected', failed_at: expect.any(String) }, timestamp: expect.any(String) });
    // The order's open event moved the position without being sent.
    await roundTrip(c);
    expect((await log(u)).map((e) => e.type)).toEqual(['order.new', 'order.open', 'order.rejected']);
    expect(c.updates().map((d) => d.event)).toEqual(['new', 'rejected']);
  });

  it('a listen with no streams stops the updates; a listen again follows live ones', async () => {
    const u = await user();
    const c = await listening(u);
    const witness = await listening(u);
    expect(await c.listen([])).toEqual({ stream: 'listening', data: { streams: [] } });
    await placeOrder(u, {});
    await witness.untilUpdates(2);
    await c.listen([]);
    expect(c.updates()).toEqual([]);

    await c.listen();
    const second = await placeOrder(u, { quantity: '1' });
    const got = await c.untilUpdates(2);
    expect(got.map((d) => [d.event, d.order.id])).toEqual([
      ['new', second.id],
      ['fill', second.id],
    ]);
  });

  it('bad messages are answered with an error frame whose data is an object, and the connection stays', async () => {
    const u = await user();
    const c = await authenticated(u);
    const errors: [unknown, RegExp][] = [
      ['not json', /not valid JSON/],
      ['[1,2]', /JSON object/],
      [{ action: 'subscribe' }, /action must be/],
      [{ action: 'listen' }, /data.streams/],
      [{ action: 'listen', data: { streams: 'trade_updates' } }, /data.streams/],
      [{ action: 'listen', data: { streams: [1] } }, /stream name/],
      [{ action: 'listen', data: { streams: ['trade_updates'], since_seq: -1 } }, /since_seq/],
      [{ action: 'listen', data: { streams: [], since_seq: 0 } }, /since_seq goes with/],
    ];
    for (const [message, pattern] of errors) {
      const from = c.frames.length;
      c.send(message);
      const reply = await c.waitFor((m) => m.action === 'error', { from });
      expect(reply).toEqual({ action: 'error', stream: 'error', data: { error_message: expect.stringMatching(pattern), error: expect.objectContaining({ code: 'VALIDATION_FAILED' }) } });
    }
    // Binary JSON is read like text.
    c.ws.send(Buffer.from(JSON.stringify({ action: 'listen', data: { streams: ['trade_updates'] } })), { binary: true });
    await c.waitFor((m) => m.stream === 'listening');
    expect(c.closed).toBeUndefined();
    expect(c.messages.every((m) => typeof m.data === 'object' && m.data !== null && !Array.isArray(m.data))).toBe(true);
  });
});

describe('resuming with since_seq', () => {
  it('replays exactly the missed trade updates, in order, then live ones', async () => {
    const u = await user();
    const c1 = await listening(u);
    await placeOrder(u, { quantity: '1' });
    await c1.untilUpdates(2);
    const lastSeen = c1.updates().at(-1).seq;
    await c1.close();

    // Missed meanwhile: a buy, a deposit (not a trade update), a limit placed and canceled.
    const bought = await placeOrder(u, { quantity: '1' });
    await orderUntil(u, bought.id, 'FILLED');
    await deposit(u);
    const limit = await placeOrder(u, { type: 'limit', limit_price: '90.00', time_in_force: 'gtc', quantity: '1' });
    await orderUntil(u, limit.id, 'OPEN');
    await api.request('DELETE', `/orders/${limit.id}`, { token: u.api_key });
    await orderUntil(u, limit.id, 'CANCELED');

    const missed = (await log(u, lastSeen)).filter((e) => isTradeUpdate(e.type));
    const expected = missed.map((e) => [e.seq, TRADE_EVENT[e.type]]);
    expect(expected.map(([, event]) => event)).toEqual(['new', 'fill', 'new', 'canceled']);
    const last = await ctx.events.lastSeq(u.id);

    const c2 = await authenticated(u);
    expect(await c2.listen(['trade_updates'], lastSeen)).toEqual({ stream: 'listening', data: { streams: ['trade_updates'], since_seq: lastSeen, last_seq: last } });
    await c2.untilUpdates(expected.length);
    await roundTrip(c2);
    expect(c2.updates().map((d) => [d.seq, d.event])).toEqual(expected);
    // The replayed updates are the ones a live client got, field for field.
    expect(c2.updates()[0]).toMatchObject({ order: { id: bought.id }, timestamp: missed[0]!.at });

    const live = await placeOrder(u, { quantity: '1' });
    const all = await c2.untilUpdates(expected.length + 2);
    expect(all.slice(expected.length).map((d) => [d.event, d.order.id])).toEqual([
      ['new', live.id],
      ['fill', live.id],
    ]);
    const seqs = all.map((d) => d.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('since_seq 0 replays the whole history; a since_seq ahead of the log is refused and the connection stays', async () => {
    const u = await user();
    await placeOrder(u, { quantity: '1' });
    await eventually(async () => ((await log(u)).some((e) => e.type === 'order.fill') ? true : undefined));
    const last = await ctx.events.lastSeq(u.id);
    const c = await authenticated(u);
    expect(await c.listen(['trade_updates'], last + 5)).toEqual({
      action: 'error',
      stream: 'error',
      data: { error_message: expect.stringMatching(/beyond/), error: expect.objectContaining({ code: 'EVENTS_SEQ_AHEAD' }) },
    });
    expect(await c.listen(['trade_updates'], 0)).toMatchObject({ data: { since_seq: 0, last_seq: last } });
    expect((await c.untilUpdates(2)).map((d) => d.event)).toEqual(['new', 'fill']);
  });

  it('a replay across many small pages, with events written while it runs, sends every trade update once and in order', async () => {
    const u = await user();
    for (let i = 0; i < 3; i++) {
      const o = await placeOrder(u, { quantity: '1' });
      await deposit(u);
      await orderUntil(u, o.id, 'FILLED');
    }
    const s = await streamServer({ replayPageSize: 2 });
    const c = await authenticated(u, s.url);
    await c.listen(['trade_updates'], 0);
    const during = await placeOrder(u, { quantity: '1' });
    await orderUntil(u, during.id, 'FILLED');
    const expected = (await log(u)).filter((e) => isTradeUpdate(e.type)).map((e) => [e.seq, TRADE_EVENT[e.type]]);
    expect(expected).toHaveLength(8);
    await c.untilUpdates(expected.length);
    await roundTrip(c);
    expect(c.updates().map((d) => [d.seq, d.event])).toEqual(expected);
  });

  it('a since_seq past retention is refused with an error saying to resync from REST', async () => {
    const u = await user();
    await deposit(u);
    await deposit(u);
    const removedUpTo = await ctx.events.lastSeq(u.id);
    // What a retention pass does to this user's oldest events.
    await sql`DELETE FROM events WHERE user_id = ${u.id} AND seq <= ${removedUpTo}`.execute(ctx.db);
    await deposit(u);
    const c = await authenticated(u);
    expect(await c.listen(['trade_updates'], 0)).toEqual({
      action: 'error',
      stream: 'error',
      data: { error_message: expect.stringMatching(/REST endpoints/), error: expect.objectContaining({ code: 'EVENTS_EXPIRED' }) },
    });
    expect(await c.listen(['trade_updates'], removedUpTo)).toMatchObject({ stream: 'listening', data: { since_seq: removedUpTo } });
  });

  it('events that expire while a replay runs end the connection (4010) after the error', async () => {
    const u = await user();
    await deposit(u);
    await deposit(u);
    const expiring: EventLog = {
      lastSeq: (id) => ctx.events.lastSeq(id),
      lastSeqs: (ids) => ctx.events.lastSeqs(ids),
      // The first page reads; every page after it finds its events removed.
      readAfter: async (id, afterSeq, limit) => {
        if (afterSeq > 0) throw new EventsExpiredError(id, afterSeq, afterSeq + 2, 30);
        return ctx.events.readAfter(id, afterSeq, limit);
      },
    };
    const s = await streamServer({ replayPageSize: 1 }, { events: expiring });
    const c = await authenticated(u, s.url);
    await c.listen(['trade_updates'], 0);
    expect((await c.waitClosed()).code).toBe(4010);
    expect(c.messages.at(-1)).toMatchObject({ action: 'error', data: { error: { code: 'EVENTS_EXPIRED' } } });
  });
});

describe('a bus that loses messages', () => {
  it('still delivers every trade update: the sweep finds what the bus never carried', async () => {
    const silent: EventBus = { publish: async () => undefined, subscribe: async () => async () => undefined };
    const s = await streamServer({ sweepIntervalMs: 50 }, { bus: silent });
    const u = await user();
    const c = await listening(u, s.url);
    const placed = await placeOrder(u, {});
    expect((await c.untilUpdates(2)).map((d) => [d.event, d.order.id])).toEqual([
      ['new', placed.id],
      ['fill', placed.id],
    ]);
    expect(s.stream.stats().sweeps).toBeGreaterThan(0);
  });
});

describe('limits', () => {
  it('closes a connection that sends a message above the size limit (1009)', async () => {
    const s = await streamServer({ messageBytesMax: 1024 });
    const c = await AlpacaClient.connect(s.url);
    c.send({ action: 'authenticate', data: { key_id: 'x', secret_key: 'y'.repeat(2_000) } });
    expect((await c.waitClosed()).code).toBe(1009);
  });

  it('refuses messages past the rate limit with one RATE_LIMITED error a second', async () => {
    const u = await user();
    const s = await streamServer({ clientMessagesPerSecondMax: 5 });
    const c = await authenticated(u, s.url);
    for (let i = 0; i < 12; i++) c.send({ action: 'listen', data: { streams: ['trade_updates'] } });
    await c.waitFor((m) => m.action === 'error' && m.data.error.code === 'RATE_LIMITED');
    expect(c.messages.filter((m) => m.action === 'error')).toHaveLength(1);
    await eventually(async () => (c.messages.filter((m) => m.stream === 'listening').length >= 4 ? true : undefined));
    expect(c.messages.filter((m) => m.stream === 'listening').length).toBeLessThanOrEqual(5);
  });

  it('refuses an upgrade beyond the connection limit with 503, and a plain GET in Alpaca\'s error shape', async () => {
    const s = await streamServer({ connectionsMax: 1 });
    const first = await AlpacaClient.connect(s.url);
    await expect(AlpacaClient.connect(s.url)).rejects.toThrow(/503/);
    await first.close();
    await eventually(async () => (s.stream.stats().connections === 0 ? true : undefined));
    await AlpacaClient.connect(s.url);

    const plain = await api.request('GET', '/stream', { token: null });
    expect(plain.status).toBe(422);
    expect(plain.body).toMatchObject({ code: 40010001, message: expect.stringMatching(/WebSocket/) });
  });

  it('cuts a client that stops reading (4008) after an error frame; what it got runs without a gap', async () => {
    let publish: ((events: EventRecord[]) => void) | undefined;
    const bus: EventBus = {
      publish: async () => undefined,
      subscribe: async (onEvents) => {
        publish = onEvents;
        return async () => undefined;
      },
    };
    const s = await streamServer({ sendBufferBytesMax: 32 * 1024 }, { bus, unixSocket: true });
    const u = await user();
    // The order's events are all in the log before the client listens: nothing real follows.
    const placed = await placeOrder(u, { quantity: '1' });
    await orderUntil(u, placed.id, 'FILLED');
    const orderNew = (await log(u)).find((e) => e.type === 'order.new')!;
    const c = await listening(u, s.url);
    const base = await ctx.events.lastSeq(u.id);
    c.pause();
    // Updates the bus brings faster than the client reads: far beyond the 32 KiB limit.
    publish!(Array.from({ length: 2_000 }, (_, i) => ({ ...orderNew, seq: base + 1 + i })));
    await eventually(async () => (s.stream.stats().closedBy.slow_consumer === 1 ? true : undefined));
    c.resume();
    expect((await c.waitClosed()).code).toBe(4008);
    expect(c.messages.at(-1)).toMatchObject({ action: 'error', data: { error: { code: 'SLOW_CONSUMER' } } });
    const seqs = c.updates().map((d) => d.seq);
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs.length).toBeLessThan(2_000);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => base + 1 + i));
  });
});

describe('liveness and shutdown', () => {
  it('terminates a connection that does not answer pings, and keeps one that does', async () => {
    const u = await user();
    const s = await streamServer({ pingIntervalMs: 50 });
    const silent = await AlpacaClient.connect(s.url, { autoPong: false });
    const answering = await listening(u, s.url);
    expect((await silent.waitClosed()).code).toBe(1006);
    await eventually(async () => (s.stream.stats().connections === 1 ? true : undefined));
    await roundTrip(answering);
    expect(answering.closed).toBeUndefined();
    expect(s.stream.stats().closedBy.ping_timeout).toBe(1);
  });

  it('answers the pings of a client (as the SDK 4.x sends them)', async () => {
    const u = await user();
    const c = await listening(u);
    const pong = new Promise<void>((resolve) => c.ws.once('pong', () => resolve()));
    c.ws.ping();
    await pong;
  });

  it('closes every connection with 1001 when the server shuts down', async () => {
    const u = await user();
    const s = await streamServer();
    const c = await listening(u, s.url);
    const idle = await AlpacaClient.connect(s.url);
    await s.close();
    expect((await c.waitClosed()).code).toBe(1001);
    expect((await idle.waitClosed()).code).toBe(1001);
  });
});

describe('the trade update of an event', () => {
  const view = (fields: Record<string, unknown>) => ({
    id: '0b0e7a5e-7f36-4d5e-9d55-4a4f1a3c2b10',
    user_id: '5d1b2c3a-0000-4000-8000-000000000001',
    client_order_id: null,
    ticker: 'AAPL',
    side: 'buy',
    type: 'limit',
    time_in_force: 'gtc',
    quantity: '10',
    limit_price: '150.0000',
    stop_price: null,
    trail_price: null,
    trail_percent: null,
    hwm: null,
    stop_level: null,
    status: 'OPEN',
    reserved_amount: '1500.00',
    commission: '0.00',
    fill_price: '149.5000',
    filled_quantity: '4',
    filled_at: null,
    triggered_at: null,
    canceled_at: null,
    expired_at: null,
    reject_reason: null,
    cancel_reason: null,
    replaces: null,
    replaced_by: null,
    created_at: '2026-01-05T15:00:00.000Z',
    updated_at: '2026-01-05T15:00:01.000Z',
    ...fields,
  });
  const event = (type: EventRecord['type'], data: unknown): EventRecord => ({ userId: 'u', seq: 7, type, at: '2026-01-05T15:00:01.000Z', dataJson: JSON.stringify(data) });

  it('is partial_fill while the order is filled below its quantity, with the fill price and qty', () => {
    const data = tradeUpdateData(event('order.fill', { ...view({}), fill: { price: '149.5000', quantity: '4', amount: '598.00', commission: '0.00' }, position_quantity: '4' }));
    expect(data).toMatchObject({ event: 'partial_fill', price: '149.5000', qty: '4', position_qty: '4', seq: 7, order: { status: 'partially_filled', filled_qty: '4', qty: '10' } });
    const full = tradeUpdateData(event('order.fill', { ...view({ status: 'FILLED', filled_quantity: '10' }), fill: { price: '149.5000', quantity: '10', amount: '1495.00', commission: '0.00' }, position_quantity: '10' }));
    expect(full).toMatchObject({ event: 'fill', qty: '10', position_qty: '10' });
  });

  it('is none for the events that are not trade updates; expired is expired', () => {
    for (const type of ['order.open', 'order.triggered', 'cash.deposit', 'cash.withdrawal', 'account.reset'] as const) {
      expect(tradeUpdateData(event(type, type.startsWith('order') ? view({}) : { amount: '1.00' }))).toBeUndefined();
    }
    expect(tradeUpdateData(event('order.expired', view({ status: 'EXPIRED', filled_quantity: '0', fill_price: null, expired_at: '2026-01-05T21:00:00.000Z' })))).toMatchObject({
      event: 'expired',
      order: { status: 'expired', expired_at: '2026-01-05T21:00:00.000Z' },
    });
  });
});

describe("Alpaca's SDK readers", () => {
  it('take every frame sent in this file without throwing: 3.x (JSON.parse, then "error" in data) and 4.x', async () => {
    expect(allFrames.length).toBeGreaterThan(50);
    const kinds = new Set(allFrames.map((f) => JSON.parse(f.toString('utf8'))).map((m) => m.stream ?? m.action));
    expect([...kinds].sort()).toEqual(['authorization', 'error', 'listening', 'trade_updates']);

    const v3 = new (AlpacaV3 as any)({ keyId: 'k', secretKey: 's', paper: true, baseUrl: 'http://127.0.0.1:1' }).trade_ws;
    // The reader disconnects on `unauthorized`: a socket that takes the call.
    v3.conn = { close: () => undefined };
    v3.session.reconnect = false;
    const v3Updates: any[] = [];
    v3.onOrderUpdate((u: unknown) => v3Updates.push(u));
    const v4 = new streaming.TradingStream({ credentials: { keyId: 'k', secret: 's' }, url: 'ws://127.0.0.1:1', reconnect: false });
    const v4Updates: any[] = [];
    const v4Errors: string[] = [];
    v4.onTradeUpdate((u) => v4Updates.push(u));
    v4.onError((e) => v4Errors.push(e));
    const quiet = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      for (const frame of allFrames) {
        const message = JSON.parse(frame.toString('utf8'));
        // What 3.x does first with every frame: it must find an object.
        expect(() => 'error' in message.data).not.toThrow();
        expect(() => v3.handleMessage(frame)).not.toThrow();
        expect(() => (v4 as any).handleMessage(message)).not.toThrow();
      }
    } finally {
      quiet.mockRestore();
    }
    const sentUpdates = allFrames.filter((f) => JSON.parse(f.toString('utf8')).stream === 'trade_updates').length;
    expect(v3Updates).toHaveLength(sentUpdates);
    expect(v4Updates).toHaveLength(sentUpdates);
    const fill = v4Updates.find((u) => u.event === 'fill' && u.positionQty === '2');
    expect(fill).toMatchObject({ price: '150.0000', qty: '2', positionQty: '2', executionId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    // 4.x surfaces Alpaca's error frames by their error_message.
    expect(v4Errors).toEqual(expect.arrayContaining([expect.stringMatching(/not valid JSON/)]));
  });
});
