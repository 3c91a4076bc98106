/**
 * `GET /ws`: the live stream's WebSocket endpoint (live-stream.ts does the work). The route is
 * public to the HTTP authentication hook because the stream authenticates itself: by the
 * upgrade's `Authorization: Bearer` header or by a first `auth` message, with the same tokens
 * as HTTP (the admin token or a user's API key). A plain GET without an upgrade is refused in
 * the HTTP error envelope; an upgrade beyond the process's connection limit gets a 503.
 */
import websocket from '@fastify/websocket';
import type { Registry } from 'prom-client';
import { ValidationError } from '../../core/errors.js';
import type { Server } from '../../http/server.js';
import type { AppContext } from '../../app.js';
import type { Logger } from '../../infra/logger.js';
import type { Db } from '../../infra/postgres.js';
import type { QuoteStore } from '../market-data/quote-store.js';
import type { ApiKeyCache } from '../users/api-key-cache.js';
import { secretsEqual } from '../users/api-keys.js';
import * as users from '../users/users.service.js';
import type { EventBus, EventLog } from './event-log.js';
import { LiveStreamError } from './live-protocol.js';
import { LiveStream, type LiveStreamOptions, type StreamPrincipal } from './live-stream.js';


export interface LiveStreamDeps {
  db: Db;
  apiKeys: ApiKeyCache;
  adminToken: string;
  events: EventLog;
  bus: EventBus;
  quotes: QuoteStore;
  market: { isKnownTicker(ticker: string): Promise<boolean> };
  logger: Logger;
  metrics?: Registry;
  /** Overrides of the defaults (LIVE_STREAM_DEFAULTS). */
  options?: Partial<LiveStreamOptions>;
}

/** The stream's deps from the process's context (what src/http/server.ts registers). */
export function liveStreamDeps(ctx: AppContext, options: Partial<LiveStreamOptions> = ctx.config.liveStream): LiveStreamDeps {
  return {
    db: ctx.db,
    apiKeys: ctx.apiKeys,
    adminToken: ctx.config.adminToken,
    events: ctx.events,
    bus: ctx.infra.eventBus,
    quotes: ctx.quotes,
    market: ctx.market,
    logger: ctx.logger,
    metrics: ctx.metrics,
    options,
  };
}

/** Registers the WebSocket plugin and `GET /ws`, and starts the process's stream (stopped when the server closes). */
export async function registerLiveStream(server: Server, deps: LiveStreamDeps): Promise<LiveStream> {
  const stream = new LiveStream(
    {
      events: deps.events,
      bus: deps.bus,
      quotes: deps.quotes,
      isKnownTicker: (ticker) => deps.market.isKnownTicker(ticker),
      authenticate: async (token): Promise<StreamPrincipal | undefined> => {
        if (secretsEqual(token, deps.adminToken)) return { kind: 'admin' };
        const key = await users.authenticateApiKey(deps.db, token, deps.apiKeys);
        return key ? { kind: 'user', userId: key.userId, keyId: key.keyId } : undefined;
      },
      assertUser: (userId) => users.assertUserExists(deps.db, userId),
      logger: deps.logger,
      metrics: deps.metrics,
    },
    deps.options,
  );

  await server.register(websocket, {
    options: {
      maxPayload: stream.options.messageBytesMax,
      // Events are rendered once for every connection; compressing per connection would undo that.
      perMessageDeflate: false,
    },
    // A client that vanishes mid-frame is routine, not an error of ours.
    errorHandler: (err, socket) => {
      deps.logger.debug({ err }, 'live stream: socket error');
      socket.terminate();
    },
    preClose: async () => {
      await stream.stop();
    },
  });

  server.route({
    method: 'GET',
    url: '/ws',
    config: { auth: 'public' },
    schema: { hide: true },
    preValidation: async () => {
      if (stream.full) {
        throw new LiveStreamError('SERVICE_UNAVAILABLE', 'this process has as many live stream connections as it takes; try again later or another api instance', {
          retry_after_s: 1,
        });
      }
    },
    handler: async () => {
      throw new ValidationError('GET /ws is the live stream: connect with a WebSocket client (Upgrade: websocket)');
    },
    wsHandler: (socket, request) => {
      stream.accept(socket, request.headers.authorization);
    },
  });

  await stream.start();
  return stream;
}
