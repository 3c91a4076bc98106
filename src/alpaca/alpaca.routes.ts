/**
 * The Alpaca-compatible facade: Alpaca's Trading API v2 under `/v2` (and its market data under
 * `/v2/stocks`, on the same host), and the `trade_updates` stream at `/stream`. It translates
 * requests and responses only: every order goes through the native OMS, every read through the
 * native services, so an order placed here is the same order on the native API and in the event
 * log. Its routes answer errors in Alpaca's shape (alpaca.errors.ts); authentication is the
 * server's one hook, which takes Alpaca's `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers
 * beside the bearer token.
 *
 * The facade acts as one user, as an Alpaca key does: a user's key. The admin token and teacher
 * keys have no account of their own here and are refused (403) on the routes of an account;
 * the instrument routes (assets, clock, calendar, market data) take any user's key.
 */
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../app.js';
import { forbidden } from '../http/errors.js';
import type { Server } from '../http/server.js';
import { AlpacaError, sendAlpacaError } from './alpaca.errors.js';
import { registerAlpacaOrderRoutes } from './alpaca.orders.routes.js';
import { registerAlpacaAccountRoutes } from './alpaca.account.routes.js';
import { registerAlpacaPositionRoutes } from './alpaca.positions.routes.js';
import { registerAlpacaAssetRoutes } from './alpaca.assets.routes.js';
import { registerAlpacaMarketDataRoutes } from './alpaca.market-data.routes.js';

export const ALPACA_PREFIX = '/v2';

/** The user the facade acts for: the caller's own (a user's key); anyone else is refused. */
export function alpacaUserId(request: FastifyRequest): string {
  const p = request.principal;
  if (p?.kind === 'user') return p.userId;
  throw forbidden(
    p?.kind === 'admin'
      ? "the Alpaca API acts as one account: use that user's key (key_id and secret_key), not the admin token"
      : "the Alpaca API acts as one account: use a user's key, not a teacher key",
  );
}

/** Registers `/v2/...`; `/stream` is registered with the other WebSocket routes (alpaca.stream.ts). */
export async function registerAlpacaApi(server: Server, ctx: AppContext): Promise<void> {
  await server.register(
    async (v2) => {
      v2.setErrorHandler((err, request, reply) => sendAlpacaError(request, reply, err));
      v2.setNotFoundHandler((request, reply) => {
        const path = request.url.split('?')[0]!;
        return sendAlpacaError(request, reply, new AlpacaError('NOT_FOUND', `no route ${request.method} ${path} in papertrade's Alpaca API`));
      });
      registerAlpacaAccountRoutes(v2, ctx);
      registerAlpacaOrderRoutes(v2, ctx);
      registerAlpacaPositionRoutes(v2, ctx);
      registerAlpacaAssetRoutes(v2, ctx);
      registerAlpacaMarketDataRoutes(v2, ctx);
    },
    { prefix: ALPACA_PREFIX },
  );
}
