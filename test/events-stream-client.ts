/**
 * A test client of the live stream (`GET /ws`) over the `ws` package, and a stream-only server
 * with options of the test's choosing (shortened timeouts, small buffers) beside the real API
 * server of the same context. Waits poll what arrived against a deadline; nothing sleeps.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import WebSocket from 'ws';
import type { AppContext } from '../src/app.js';
import { sendError } from '../src/http/errors.js';
import { liveStreamDeps, registerLiveStream, type LiveStreamDeps } from '../src/services/events/live-stream.routes.js';
import type { LiveStream, LiveStreamOptions } from '../src/services/events/live-stream.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON */

export interface Closed {
  code: number;
  reason: string;
}

export class StreamClient {
  readonly messages: any[] = [];
  closed: Closed | undefined;
  private readonly closedPromise: Promise<Closed>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(String(data))));
    this.closedPromise = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        resolve(this.closed);
      }),
    );
    ws.on('error', () => {});
  }

  /** Connects to `url` (http://… or ws+unix://…); `token` goes in the Authorization header. */
  static async connect(url: string, options: { token?: string; authorization?: string; autoPong?: boolean } = {}): Promise<StreamClient> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (options.authorization !== undefined) headers.authorization = options.authorization;
    const wsUrl = url.startsWith('ws+unix:') ? url : `${url.replace(/^http/, 'ws')}/ws`;
    const ws = new WebSocket(wsUrl, { headers, autoPong: options.autoPong ?? true });
    const client = new StreamClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return client;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Connects, authenticates by header with `token`, subscribes, and waits for `subscribed`. */
  static async subscribed(url: string, token: string, subscription: Record<string, unknown>): Promise<StreamClient> {
    const client = await StreamClient.connect(url, { token });
    await client.subscribe(subscription);
    return client;
  }

  /** Sends a subscribe and returns its `subscribed` reply (throws on an error reply). */
  async subscribe(subscription: Record<string, unknown>): Promise<any> {
    const id = `s${randomBytes(4).toString('hex')}`;
    this.send({ action: 'subscribe', id, ...subscription });
    const reply = await this.waitFor((m) => m.id === id);
    if (reply.type !== 'subscribed') throw new Error(`subscribe refused: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** The first message after index `from` that `match` accepts, within the deadline. */
  async waitFor(match: (m: any) => boolean, options: { from?: number; timeoutMs?: number } = {}): Promise<any> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(options.from ?? 0).find(match);
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting; got ${JSON.stringify(this.messages.slice(-3))}`);
      if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms; last: ${JSON.stringify(this.messages.slice(-3))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  events(): any[] {
    return this.messages.filter((m) => m.channel === 'events');
  }

  seqs(): number[] {
    return this.events().map((e) => e.seq);
  }

  lastSeq(): number {
    return this.events().at(-1)?.seq ?? 0;
  }

  /** Waits until the events received reach `seq`; returns their seqs. */
  async untilSeq(seq: number, timeoutMs = 10_000): Promise<number[]> {
    await this.waitFor((m) => m.channel === 'events' && m.seq >= seq, { timeoutMs });
    return this.seqs();
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

  /** Stops reading from the socket (the server's sends pile up), and reads again. */
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

export interface StreamServer {
  stream: LiveStream;
  /** What StreamClient.connect takes. */
  url: string;
  close(): Promise<void>;
}

/**
 * A server with only `GET /ws`, on the context's parts and with the given options, on TCP or —
 * for tests of a full send buffer — a Unix socket, whose small kernel buffers fill at once (a
 * loopback TCP connection absorbs megabytes before the server's own queue grows).
 */
export async function startStreamServer(
  ctx: AppContext,
  options: Partial<LiveStreamOptions> = {},
  overrides: Partial<LiveStreamDeps> & { unixSocket?: boolean } = {},
): Promise<StreamServer> {
  const { unixSocket, ...depsOverrides } = overrides;
  const server = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  // Errors in the envelope and with the statuses of the real server.
  server.setErrorHandler((err, request, reply) => sendError(request, reply, err));
  const stream = await registerLiveStream(server, { ...liveStreamDeps(ctx, options), metrics: undefined, ...depsOverrides });
  await server.ready();
  let url: string;
  let socketPath: string | undefined;
  if (unixSocket) {
    socketPath = path.join(tmpdir(), `pt-ws-${randomBytes(6).toString('hex')}.sock`);
    await server.listen({ path: socketPath });
    url = `ws+unix://${socketPath}:/ws`;
  } else {
    await server.listen({ host: '127.0.0.1', port: 0 });
    const address = server.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }
  return {
    stream,
    url,
    async close() {
      await server.close();
      if (socketPath) rmSync(socketPath, { force: true });
    },
  };
}
