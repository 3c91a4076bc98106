/**
 * The HTTP server: Fastify with TypeBox schemas (which also generate the OpenAPI document),
 * one authentication hook, one error mapper, request ids in every log line and response.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import cors from '@fastify/cors';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { histogram } from '../infra/metrics.js';
import { Periodic } from '../infra/periodic.js';
import { API_KEY_REVALIDATE_INTERVAL_MS } from '../services/users/api-key-cache.js';
import { sql } from 'kysely';
import type { AppContext } from '../app.js';
import { registerOrderRoutes } from '../services/orders/orders.routes.js';
import * as users from '../services/users/users.service.js';
import { createAuthenticator, type RouteAuth } from './auth.js';
import { HttpError, sendError } from './errors.js';
import {
  allowedMethods,
  clientErrorHandler,
  corsOptions,
  frameworkErrorHandler,
  ignoreContentTypeOfEmptyBody,
  lowerCaseUuidParams,
  refuseUnexpectedBody,
  setSecurityHeaders,
} from './hardening.js';
import { parseJsonBody } from './json-body.js';
import { enforceRateLimit, RateLimiter } from './rate-limit.js';
import { registerUserRoutes } from '../services/users/users.routes.js';
import { registerAccountRoutes } from '../services/accounts/accounts.routes.js';
import { registerPortfolioRoutes } from '../services/portfolios/portfolios.routes.js';
import { registerHistoryRoutes } from '../services/history/history.routes.js';
import { registerMarketDataRoutes } from '../services/market-data/market-data.routes.js';
import { registerAuditRoutes } from '../services/audit/audit.routes.js';
import { registerClockRoutes } from '../services/clock/clock.routes.js';
import { liveStreamDeps, registerLiveStream } from '../services/events/live-stream.routes.js';
import { registerEventRoutes } from '../services/events/events.routes.js';
import { registerClassRoutes } from '../services/classes/classes.routes.js';
import { registerResetRoutes } from '../services/resets/resets.routes.js';
import { registerAlpacaApi } from '../alpaca/alpaca.routes.js';
import { registerDashboard } from './dashboard.js';
import { registerAlpacaStream } from '../alpaca/alpaca.stream.js';

export const BODY_LIMIT_BYTES = 1024 * 1024;
export const READY_TIMEOUT_MS = 2_000;
export const REQUEST_TIMEOUT_MS = 30_000;
/** Time for a client to send the request line and headers (slow-header clients are cut off). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** A socket with no traffic at all this long is closed (longer than any request may take). */
export const CONNECTION_TIMEOUT_MS = 60_000;
/** An idle keep-alive connection is closed after this (longer than a typical proxy's 60 s). */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** Longest path parameter routed; ids are 36 characters, tickers at most a few dozen. */
export const MAX_PARAM_LENGTH = 100;

export type Server = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface RouteInfo {
  method: string;
  url: string;
  auth: RouteAuth;
}

export async function buildServer(ctx: AppContext): Promise<{ server: Server; routes: RouteInfo[] }> {
  const server = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    http: { headersTimeout: HEADERS_TIMEOUT_MS },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Our own onResponse hook logs requests (with the route and timing) at debug level.
    logController: new LogController({ disableRequestLogging: true }),
    // verbose: validation errors carry their schema, whose description words the message.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, verbose: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // The API speaks JSON only; any other body type is a 415, not a string to validate. JSON
  // bodies go through our parser: exact numbers, no prototype keys, refusals in words.
  server.removeContentTypeParser(['text/plain', 'application/json']);
  server.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // A request with no body has nothing to parse, whatever its Content-Type says (many clients,
  // Alpaca's SDK among them, send one on every request, even `Content-Type: ""` on DELETE).
  server.addHook('onRequest', ignoreContentTypeOfEmptyBody);
  // Browser apps on other origins (CORS_ORIGINS): the preflight is answered before authentication.
  if (ctx.config.corsOrigins.length > 0) await server.register(cors, corsOptions(ctx.config.corsOrigins));

  const routes: RouteInfo[] = [];
  server.addHook('onRoute', (route) => {
    // The docs UI's own routes carry no config of ours; they are public by nature.
    if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), auth: 'public' };
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const auth = (route.config as { auth?: RouteAuth } | undefined)?.auth ?? 'user';
    for (const method of methods) if (method !== 'HEAD') routes.push({ method, url: route.url, auth });
  });

  await server.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'papertrade', version: '0.1.0', description: 'Self-hosted paper-trading brokerage API' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await server.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });

  const httpDuration = histogram(
    ctx.metrics,
    'papertrade_http_request_duration_seconds',
    'HTTP request duration by route and status',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    ['method', 'route', 'status'],
  );

  const authenticate = createAuthenticator(ctx.config.adminToken, (token) => users.resolveApiKey(ctx.db, token, ctx.apiKeys));
  // The cached keys in use are revalidated together, so none expires under its bot's requests.
  const keyRevalidation = new Periodic(
    API_KEY_REVALIDATE_INTERVAL_MS,
    () => users.revalidateApiKeys(ctx.db, ctx.apiKeys),
    (err) => ctx.logger.debug({ err }, 'API key revalidation failed; the keys it would have renewed expire as usual'),
  );
  keyRevalidation.start();
  server.addHook('onClose', () => keyRevalidation.stop());
  // Per credential, shared by every api instance through Redis; off when the limit is 0.
  const rateLimiter =
    ctx.config.rateLimitPerMinute > 0
      ? new RateLimiter({ counter: ctx.infra.rateCounter, limit: ctx.config.rateLimitPerMinute, logger: ctx.logger })
      : undefined;
  server.decorateRequest('principal', undefined);
  server.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    setSecurityHeaders(request, reply);
    let authError: unknown;
    try {
      await authenticate(request);
    } catch (err) {
      authError = err;
    }
    // Counted once the credential is known, even when it may not use this route (a 403).
    if (rateLimiter) await enforceRateLimit(rateLimiter, request, reply);
    if (authError !== undefined) throw authError;
  });
  server.addHook('preValidation', refuseUnexpectedBody);
  server.addHook('preHandler', lowerCaseUuidParams);
  server.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 500) request.log.warn({ status: reply.statusCode, route }, 'request failed');
    else request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
  });
  server.setErrorHandler((err, request, reply) => sendError(request, reply, err));
  // An unknown path is a 404 for anyone (the route table is public: /openapi.json); a known path
  // with another method is a 405 that lists the methods it has.
  server.setNotFoundHandler({}, (request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = allowedMethods(routes, path);
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '));
      return sendError(request, reply, new HttpError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`));
    }
    return sendError(request, reply, new HttpError('NOT_FOUND', `no route ${request.method} ${path}`));
  });

  const publicRoute = { auth: 'public' as const };
  server.get('/health', { config: publicRoute, schema: { hide: true } }, async () => ({ status: 'ok' }));
  server.get('/ready', { config: publicRoute, schema: { hide: true } }, async (_request, reply) => {
    const [pgOk, redisOk] = await Promise.all([
      withTimeout(sql`SELECT 1`.execute(ctx.db), READY_TIMEOUT_MS),
      withTimeout(
        ctx.infra.ping().then((ok) => {
          if (!ok) throw new Error('infrastructure did not answer');
        }),
        READY_TIMEOUT_MS,
      ),
    ]);
    // `redis` is null when the parts Redis serves run in memory (every role in this process).
    const body = {
      status: pgOk && redisOk ? 'ready' : 'unavailable',
      postgres: pgOk,
      redis: ctx.infra.kind === 'redis' ? redisOk : null,
    };
    return reply.status(pgOk && redisOk ? 200 : 503).send(body);
  });
  server.get('/metrics', { config: publicRoute, schema: { hide: true } }, async (_request, reply) => {
    return reply.type(ctx.metrics.contentType).send(await ctx.metrics.metrics());
  });
  server.get('/openapi.json', { config: publicRoute, schema: { hide: true } }, async () => server.swagger());

  registerUserRoutes(server, ctx);
  registerAccountRoutes(server, ctx);
  registerPortfolioRoutes(server, ctx);
  registerHistoryRoutes(server, ctx);
  registerResetRoutes(server, ctx);
  registerMarketDataRoutes(server, ctx);
  registerOrderRoutes(server, ctx.orders, ctx.classMembership.isMember);
  registerAuditRoutes(server, ctx);
  registerClockRoutes(server, ctx);
  registerEventRoutes(server, ctx);
  registerClassRoutes(server, ctx);
  // The web dashboard (dist/web) at `/`: a client of the routes above, like any other.
  registerDashboard(server, ctx.config);
  // Alpaca's Trading API v2 and market data under /v2, translated to the same services.
  await registerAlpacaApi(server, ctx);
  // The clock's admin override is read by every process: this one keeps its copy current.
  await ctx.clock.start();
  // GET /ws: each client's events (replayed, then live) and the prices it asks for.
  await registerLiveStream(server, liveStreamDeps(ctx));
  // GET /stream: Alpaca's trade_updates protocol over the same event log.
  await registerAlpacaStream(server, ctx);

  await server.ready();
  return { server, routes };
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
