/**
 * Defensive HTTP plumbing kept out of server.ts: security headers on every response, our error
 * envelope for the errors the framework and Node answer before any hook runs (malformed HTTP,
 * oversize headers, bad URL encoding, overlong path parameters), and the rule that a route
 * without a body schema takes no body.
 */
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, sendError } from './errors.js';
import { DASHBOARD_CSP, isDashboardPath } from './dashboard.js';

/** The API only ever answers JSON: nothing in a response may load, frame or run anything. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/**
 * The docs UI (swagger-ui, served from /docs) loads its own scripts and styles and fetches the
 * OpenAPI document and, with "Try it out", the API: same origin only, no inline scripts.
 * swagger-ui sets inline styles and uses data: images.
 */
const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "font-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

export function isDocsPath(url: string): boolean {
  const path = url.split('?', 1)[0]!;
  return path === '/docs' || path.startsWith('/docs/');
}

/** Headers set on every response, whatever its status (set in onRequest, before auth). */
export function setSecurityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  const docs = isDocsPath(request.url);
  const dashboard = !docs && isDashboardPath(request.url);
  void reply.headers({
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'content-security-policy': docs ? DOCS_CSP : dashboard ? DASHBOARD_CSP : API_CSP,
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'x-permitted-cross-domain-policies': 'none',
  });
  // Responses carry balances and, once, API keys: no cache may keep them. The docs' static
  // files and the dashboard's keep their own caching headers.
  if (!docs && !dashboard) void reply.header('cache-control', 'no-store');
}

/**
 * Errors raised by the router before a request object reaches our hooks: a URL whose percent
 * encoding is broken, or a path parameter longer than `maxParamLength`.
 */
export function frameworkErrorHandler(error: { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
  void reply.header('x-request-id', request.id);
  setSecurityHeaders(request, reply);
  const message =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is too long' : 'the URL is not valid (bad percent-encoding)';
  sendError(request, reply, new HttpError('VALIDATION_FAILED', message));
}

const CLIENT_ERRORS: Record<string, { status: number; reason: string; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    reason: 'Request Header Fields Too Large',
    code: 'HEADERS_TOO_LARGE',
    message: 'request headers (with the URL) exceed 16 KiB',
  },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', code: 'REQUEST_TIMEOUT', message: 'the request took too long to arrive' },
  ERR_HTTP_HEADERS_TIMEOUT: { status: 408, reason: 'Request Timeout', code: 'REQUEST_TIMEOUT', message: 'the request headers took too long to arrive' },
};

/**
 * Node rejects malformed HTTP (bad request line, header overflow, request timeout) before
 * Fastify sees a request; answer those in our error envelope too, then close the connection.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return;
  const known = (err.code && CLIENT_ERRORS[err.code]) || {
    status: 400,
    reason: 'Bad Request',
    code: 'VALIDATION_FAILED',
    message: 'malformed HTTP request',
  };
  const body = JSON.stringify({ error: { code: known.code, message: known.message, service: 'http' } });
  socket.end(
    [
      `HTTP/1.1 ${known.status} ${known.reason}`,
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'X-Content-Type-Options: nosniff',
      'Connection: close',
      '',
      body,
    ].join('\r\n'),
  );
}

/**
 * preValidation: a route that declares no body schema takes no body. Without this, a body sent
 * to such a route (say `{"role":"admin"}` to POST /users/{id}/api-keys) would be silently
 * ignored. An empty object is tolerated, as many clients send `{}` by default.
 */
export async function refuseUnexpectedBody(request: FastifyRequest): Promise<void> {
  // An unknown route answers 404 (or 405) whatever it was sent.
  if (request.is404) return;
  if (request.body === undefined || request.routeOptions.schema?.body !== undefined) return;
  const body = request.body as unknown;
  const emptyObject =
    typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0;
  if (!emptyObject) throw new HttpError('VALIDATION_FAILED', `${request.method} ${request.routeOptions.url ?? ''} takes no request body`);
}

const UUID_ANY_CASE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * preHandler (after validation): a UUID is case-insensitive, and PostgreSQL accepts either
 * case, but the owner check and every echoed id compare strings. Path ids are brought to the
 * lower case they are issued in, once, so `/users/01A2…` is the same user as `/users/01a2…`.
 */
export async function lowerCaseUuidParams(request: FastifyRequest): Promise<void> {
  const params = request.params as Record<string, unknown> | undefined;
  if (!params) return;
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string' && UUID_ANY_CASE.test(value)) params[name] = value.toLowerCase();
  }
}

/**
 * onRequest: a request without a body (no Content-Length or 0, no Transfer-Encoding) carries
 * nothing to parse, so its Content-Type, whatever it says (`application/json`, `text/plain`, or
 * the empty string Alpaca's SDK sends on DELETE), is dropped before the framework looks for a
 * parser. A route that needs a body then says so in its own validation message.
 */
export async function ignoreContentTypeOfEmptyBody(request: FastifyRequest): Promise<void> {
  const headers = request.headers;
  if (headers['content-type'] === undefined || headers['transfer-encoding'] !== undefined) return;
  const length = headers['content-length'];
  if (length === undefined || length === '0') delete headers['content-type'];
}

/** The methods routed for a concrete path (for a 405's Allow header), from the route table. */
export function allowedMethods(routes: readonly { method: string; url: string }[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    if (route.url === '*' || route.url.includes('*')) continue;
    if (routePattern(route.url).test(path)) methods.add(route.method);
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

const patterns = new Map<string, RegExp>();

/** `/users/:id/account` as a regular expression over paths (`::` is a literal colon). */
function routePattern(url: string): RegExp {
  let re = patterns.get(url);
  if (re === undefined) {
    const source = url
      .split('::')
      .map((part) =>
        part
          .split(/(:[A-Za-z_][A-Za-z0-9_]*)/)
          .map((piece) => (piece.startsWith(':') ? '[^/]+' : piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join(''),
      )
      .join(':');
    re = new RegExp(`^${source}/?$`);
    patterns.set(url, re);
  }
  return re;
}

/** Headers a browser client sends and may read, for CORS. */
const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'idempotency-key', 'apca-api-key-id', 'apca-api-secret-key'];
const CORS_EXPOSED_HEADERS = ['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'];
/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_S = 600;

/**
 * @fastify/cors options: only the configured origins (exact match), the API's methods and
 * headers, no cookies (credentials are bearer tokens the page sends itself).
 */
export function corsOptions(origins: readonly string[]) {
  return {
    origin: [...origins],
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    credentials: false,
    maxAge: CORS_MAX_AGE_S,
    strictPreflight: true,
  };
}
