/**
 * `GET /stream`: Alpaca's trading stream (`trade_updates`) on papertrade's event log; the work
 * is alpaca.stream.hub.ts, the messages alpaca.stream.protocol.ts. The route is public to the
 * HTTP authentication hook because the stream authenticates itself, as Alpaca's does: by an
 * `authenticate` message with the key pair (key_id, secret_key), or by the upgrade's
 * `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` or `Authorization: Bearer` headers. A plain GET
 * without an upgrade, and an upgrade beyond the process's connection limit (503), are refused in
 * Alpaca's error shape, like the facade's other routes.
 */
import websocket from '@fastify/websocket';
import type { Registry } from 'prom-client';
import type { AppContext } from '../app.js';
import { ValidationError } from '../core/errors.js';
import { requestToken } from '../http/auth.js';
import type { Server } from '../http/server.js';
import type { EventBus, EventLog } from '../services/events/event-log.js';
import { LiveStreamError } from '../services/events/live-protocol.js';
import type { LiveStreamOptions } from '../services/events/live-stream.js';
import { secretsEqual } from '../services/users/api-keys.js';
import * as users from '../services/users/users.service.js';
import { sendAlpacaError } from './alpaca.errors.js';
import { AlpacaStream, type AlpacaStreamPrincipal, type UpgradeCredential } from './alpaca.stream.hub.js';

export { AlpacaStream } from './alpaca.stream.hub.js';

export const ALPACA_STREAM_PATH = '/stream';

export interface AlpacaStreamOverrides {
  /** Overrides of the limits; by default the native stream's configuration (WS_* settings). */
  options?: Partial<LiveStreamOptions>;
  /** Another bus than the context's (tests of a bus that loses messages). */
  bus?: EventBus;
  /** Another log than the context's (tests of events removed while a replay runs). */
  events?: EventLog;
  /** The registry of the metrics; the context's by default, none with `null`. */
  metrics?: Registry | null;
}

/** The credential an upgrade request carries, read as the HTTP edge reads it (src/http/auth.ts). */
export function upgradeCredential(headers: Record<string, string | string[] | undefined>): UpgradeCredential {
  const present = headers.authorization !== undefined || headers['apca-api-key-id'] !== undefined || headers['apca-api-secret-key'] !== undefined;
  return { present, token: present ? requestToken(headers) : undefined };
}

/**
 * Registers `GET /stream` and starts the process's Alpaca stream (stopped when the server
 * closes). It shares the WebSocket plugin the native stream registers (server.ts registers that
 * first), and registers the plugin itself only on a server without one.
 */
export async function registerAlpacaStream(server: Server, ctx: AppContext, overrides: AlpacaStreamOverrides = {}): Promise<AlpacaStream> {
  const stream = new AlpacaStream(
    {
      events: overrides.events ?? ctx.events,
      bus: overrides.bus ?? ctx.infra.eventBus,
      authenticate: async (token): Promise<AlpacaStreamPrincipal | undefined> => {
        if (secretsEqual(token, ctx.config.adminToken)) return { kind: 'admin' };
        const key = await users.resolveApiKey(ctx.db, token, ctx.apiKeys);
        if (!key) return undefined;
        return key.role === 'user' ? { kind: 'user', userId: key.userId, keyId: key.keyId } : { kind: 'teacher' };
      },
      logger: ctx.logger,
      metrics: overrides.metrics === null ? undefined : (overrides.metrics ?? ctx.metrics),
    },
    overrides.options ?? ctx.config.liveStream,
  );

  const stop = async (): Promise<void> => {
    await stream.stop();
  };
  if (server.hasDecorator('websocketServer')) {
    // The plugin's own preClose is the native stream's; this stream closes its connections too.
    server.addHook('preClose', stop);
  } else {
    await server.register(websocket, {
      options: { maxPayload: stream.options.messageBytesMax, perMessageDeflate: false },
      errorHandler: (err, socket) => {
        ctx.logger.debug({ err }, 'alpaca stream: socket error');
        socket.terminate();
      },
      preClose: stop,
    });
  }

  await server.register(async (scope) => {
    scope.setErrorHandler((err, request, reply) => sendAlpacaError(request, reply, err));
    scope.route({
      method: 'GET',
      url: ALPACA_STREAM_PATH,
      config: { auth: 'public' },
      schema: { hide: true },
      preValidation: async () => {
        if (stream.full) {
          throw new LiveStreamError('SERVICE_UNAVAILABLE', 'this process has as many stream connections as it takes; try again later or another api instance', {
            retry_after_s: 1,
          });
        }
      },
      handler: async () => {
        throw new ValidationError('GET /stream is the trade_updates stream: connect with a WebSocket client (Upgrade: websocket)');
      },
      wsHandler: (socket, request) => {
        stream.accept(socket, upgradeCredential(request.headers));
      },
    });
  });

  await stream.start();
  return stream;
}
