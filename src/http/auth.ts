/**
 * Authentication and authorization. Every route declares who may call it in its config
 * (`public`, `user` — a user's key or the admin token — or `admin`); one hook enforces it, so a
 * route cannot forget. A user's key acts only on its own user: handlers call `actOn(userId)`.
 */
import type { FastifyRequest } from 'fastify';
import { secretsEqual } from '../services/users/api-keys.js';
import { forbidden, unauthenticated } from './errors.js';

export type RouteAuth = 'public' | 'user' | 'admin';

export type Principal = { kind: 'admin' } | { kind: 'user'; userId: string; keyId: string };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

export type ApiKeyResolver = (token: string) => Promise<{ userId: string; keyId: string } | undefined>;

const BEARER_RE = /^Bearer ([\x21-\x7e]{1,256})$/;

export function createAuthenticator(adminToken: string, resolveKey: ApiKeyResolver) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    // An unknown route is public: it answers 404 (or 405) to anyone, as the route table is public.
    const auth: RouteAuth = request.is404 ? 'public' : (request.routeOptions.config.auth ?? 'user');
    if (auth === 'public') return;
    const header = request.headers.authorization;
    const match = header ? BEARER_RE.exec(header) : null;
    if (!match) throw unauthenticated();
    const token = match[1]!;
    if (secretsEqual(token, adminToken)) {
      request.principal = { kind: 'admin' };
      return;
    }
    const key = await resolveKey(token);
    if (!key) throw unauthenticated();
    request.principal = { kind: 'user', userId: key.userId, keyId: key.keyId };
    if (auth === 'admin') throw forbidden('this endpoint needs the admin token');
  };
}

/** Throws FORBIDDEN unless the caller is the admin or the owner of `userId`. */
export function actOn(request: FastifyRequest, userId: string): void {
  const p = request.principal;
  if (!p) throw unauthenticated();
  if (p.kind === 'admin') return;
  if (p.userId !== userId) throw forbidden();
}

export function isAdmin(request: FastifyRequest): boolean {
  return request.principal?.kind === 'admin';
}
