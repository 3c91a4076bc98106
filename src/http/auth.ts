/**
 * Authentication and authorization. Every route declares who may call it in its config; one
 * hook enforces it, so a route cannot forget:
 *
 * - `public`: anyone, with or without credentials;
 * - `user`: a user's key or the admin token;
 * - `teacher`: a class's teacher key or the admin token;
 * - `user-or-teacher`: a user's key, a teacher key or the admin token;
 * - `admin`: the admin token only.
 *
 * The admin token passes every route. A key on a route that does not take its kind is refused
 * with 403 before the handler runs. The handler then scopes the call to what the caller may
 * touch: `actOn(userId)` for anything that changes a user (its own user only: a teacher key
 * never trades, moves cash or manages keys for anyone), `readOn(userId)` for reads (its own
 * user, or a member of the teacher key's class), `teachOn(classId)` and `classAccess(classId)`
 * for a class, `resetOn(userId)` for a reset.
 */
import type { FastifyRequest } from 'fastify';
import type { CachedKey } from '../services/users/api-key-cache.js';
import { apiKeyFromPair, secretsEqual } from '../services/users/api-keys.js';
import { forbidden, unauthenticated } from './errors.js';

export type RouteAuth = 'public' | 'user' | 'teacher' | 'user-or-teacher' | 'admin';

export type Principal =
  | { kind: 'admin' }
  | { kind: 'user'; userId: string; keyId: string }
  /** A class's teacher key: reads and resets the class's members, never trades for them. */
  | { kind: 'teacher'; classId: string; keyId: string };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

export type ApiKeyResolver = (token: string) => Promise<CachedKey | undefined>;

/** Whether `userId` is a member of `classId` (the classes service answers, from a small cache). */
export type IsMemberOf = (classId: string, userId: string) => Promise<boolean>;

const BEARER_RE = /^Bearer ([\x21-\x7e]{1,256})$/;
/** A header value of Alpaca's key pair: printable ASCII, bounded like a bearer token. */
const APCA_VALUE_RE = /^[\x21-\x7e]{1,256}$/;

/**
 * The credential a request carries: `Authorization: Bearer <token>`, or Alpaca's pair of
 * headers `APCA-API-KEY-ID` + `APCA-API-SECRET-KEY` (a key's `key_id` and `secret_key`, the two
 * halves of the same API key), so that Alpaca's SDKs authenticate unchanged. Undefined when
 * neither is there or either is malformed.
 */
export function requestToken(headers: Record<string, string | string[] | undefined>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') return BEARER_RE.exec(authorization)?.[1];
  const keyId = headers['apca-api-key-id'];
  const secret = headers['apca-api-secret-key'];
  if (typeof keyId !== 'string' || typeof secret !== 'string') return undefined;
  if (!APCA_VALUE_RE.test(keyId) || !APCA_VALUE_RE.test(secret)) return undefined;
  return apiKeyFromPair(keyId, secret);
}

/** The key kinds each route setting takes (the admin token passes every non-public route). */
const KEYS_TAKEN: Record<Exclude<RouteAuth, 'public'>, ReadonlySet<'user' | 'teacher'>> = {
  user: new Set(['user']),
  teacher: new Set(['teacher']),
  'user-or-teacher': new Set(['user', 'teacher']),
  admin: new Set(),
};

export function createAuthenticator(adminToken: string, resolveKey: ApiKeyResolver) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    // An unknown route is public: it answers 404 (or 405) to anyone, as the route table is public.
    const auth: RouteAuth = request.is404 ? 'public' : (request.routeOptions.config.auth ?? 'user');
    if (auth === 'public') return;
    const token = requestToken(request.headers);
    if (token === undefined) throw unauthenticated();
    if (secretsEqual(token, adminToken)) {
      request.principal = { kind: 'admin' };
      return;
    }
    const key = await resolveKey(token);
    if (!key) throw unauthenticated();
    request.principal =
      key.role === 'teacher' ? { kind: 'teacher', classId: key.classId, keyId: key.keyId } : { kind: 'user', userId: key.userId, keyId: key.keyId };
    if (KEYS_TAKEN[auth].has(key.role)) return;
    if (auth === 'admin') throw forbidden('this endpoint needs the admin token');
    throw forbidden(
      key.role === 'teacher'
        ? "a teacher key reads and resets its class's members; it may not use this endpoint"
        : "this endpoint needs a class's teacher key or the admin token",
    );
  };
}

function principalOf(request: FastifyRequest): Principal {
  const p = request.principal;
  if (!p) throw unauthenticated();
  return p;
}

/**
 * Throws FORBIDDEN unless the caller is the admin or the owner of `userId`: for anything that
 * changes a user (orders, cash, keys). A teacher key never passes.
 */
export function actOn(request: FastifyRequest, userId: string): void {
  const p = principalOf(request);
  if (p.kind === 'admin') return;
  if (p.kind !== 'user' || p.userId !== userId) throw forbidden();
}

/**
 * Whether the caller may read `userId`'s account, portfolio, orders and events: the admin, the
 * user's own key, or the teacher key of the user's class.
 */
export async function mayRead(request: FastifyRequest, userId: string, isMemberOf: IsMemberOf): Promise<boolean> {
  const p = principalOf(request);
  if (p.kind === 'admin') return true;
  if (p.kind === 'user') return p.userId === userId;
  return isMemberOf(p.classId, userId);
}

/** Throws FORBIDDEN unless the caller may read `userId` (see mayRead). */
export async function readOn(request: FastifyRequest, userId: string, isMemberOf: IsMemberOf): Promise<void> {
  if (!(await mayRead(request, userId, isMemberOf))) throw forbidden();
}

/**
 * Throws FORBIDDEN unless the caller may reset `userId`'s account: the admin, or the teacher
 * key of the user's class. A user's own key may not: in a class a reset is the teacher's call.
 */
export async function resetOn(request: FastifyRequest, userId: string, isMemberOf: IsMemberOf): Promise<void> {
  const p = principalOf(request);
  if (p.kind === 'admin') return;
  if (p.kind === 'teacher' && (await isMemberOf(p.classId, userId))) return;
  throw forbidden(p.kind === 'teacher' ? 'a teacher key resets the members of its own class only' : "only the admin or the class's teacher key resets an account");
}

/** Throws FORBIDDEN unless the caller is the admin or `classId`'s teacher key: managing a class. */
export function teachOn(request: FastifyRequest, classId: string): void {
  const p = principalOf(request);
  if (p.kind === 'admin') return;
  if (p.kind !== 'teacher' || p.classId !== classId) throw forbidden("this needs the class's teacher key or the admin token");
}

/**
 * How the caller sees `classId`: as the admin, as its teacher, or as one of its members;
 * FORBIDDEN for anyone else (another class's teacher, a user outside the class).
 */
export async function classAccess(request: FastifyRequest, classId: string, isMemberOf: IsMemberOf): Promise<'admin' | 'teacher' | 'member'> {
  const p = principalOf(request);
  if (p.kind === 'admin') return 'admin';
  if (p.kind === 'teacher' && p.classId === classId) return 'teacher';
  if (p.kind === 'user' && (await isMemberOf(classId, p.userId))) return 'member';
  throw forbidden("only the admin, the class's teacher key and its members see this class");
}

export function isAdmin(request: FastifyRequest): boolean {
  return request.principal?.kind === 'admin';
}
