import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { formatCash, parseCash } from '../../core/money.js';
import { actOn } from '../../http/auth.js';
import { CashString, DecimalInput, iso, LimitQuery, parseLimit, Timestamp, Uuid, UserIdParams } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { keyPair } from './api-keys.js';
import * as users from './users.service.js';

const UserBody = Type.Object({
  id: Type.String(),
  name: Type.String(),
  email: Type.String(),
  created_at: Timestamp,
});

const ApiKeyBody = Type.Object({
  api_key: Type.String({ description: 'shown once; store it' }),
  api_key_id: Type.String(),
  key_id: Type.String({ description: "the same key in Alpaca's form: send it as APCA-API-KEY-ID (equals api_key_id)" }),
  secret_key: Type.String({ description: "the same key in Alpaca's form: send it as APCA-API-SECRET-KEY; shown once" }),
});

/** A new key as the API shows it once: the bearer token and Alpaca's key pair of the same key. */
function keyBody(apiKey: string, apiKeyId: string) {
  const pair = keyPair(apiKey);
  return { api_key: apiKey, api_key_id: apiKeyId, key_id: pair.keyId, secret_key: pair.secretKey };
}

const toUserBody = (u: users.User) => ({ id: u.id, name: u.name, email: u.email, created_at: iso(u.createdAt) });

export function registerUserRoutes(server: Server, ctx: AppContext): void {
  server.post(
    '/users',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'Create a user with a cash account and a first API key (admin)',
        body: Type.Object(
          {
            // Some visible character; no control characters (NUL cannot even be stored) or lone
            // UTF-16 surrogates (they would be stored as U+FFFD).
            name: Type.String({
              minLength: 1,
              maxLength: 200,
              pattern: '^[^\\S\\p{Cc}]*[^\\s\\p{Cc}\\p{Cs}][^\\p{Cc}\\p{Cs}]*$',
              description: 'a name with at least one visible character and no control characters',
            }),
            email: Type.String({
              minLength: 3,
              maxLength: 320,
              pattern: '^[^\\s@\\p{Cc}\\p{Cs}]+@[^\\s@\\p{Cc}\\p{Cs}]+$',
              description: 'an email address such as ada@example.com (no spaces or control characters)',
            }),
            initial_cash: Type.Optional(DecimalInput),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([UserBody, ApiKeyBody]) },
      },
    },
    async (request, reply) => {
      const { name, email, initial_cash } = request.body;
      const initialCash = initial_cash === undefined ? 0n : parseCash(initial_cash, 'initial_cash', { allowZero: true });
      const created = await users.createUser(ctx.db, { name: name.trim(), email: email.trim(), initialCash });
      return reply.status(201).send({ ...toUserBody(created.user), ...keyBody(created.apiKey, created.apiKeyId) });
    },
  );

  server.get(
    '/users',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'Every user in the order they were created, with its cash balance (admin), `limit` ≤ 500 (default 50), then `?after=<next>`',
        querystring: Type.Object({ limit: Type.Optional(LimitQuery), after: Type.Optional(Uuid) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            users: Type.Array(Type.Intersect([UserBody, Type.Object({ cash_balance: CashString })])),
            next: Type.Union([Type.String({ description: 'pass as after for the next page' }), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      const page = await users.listUsers(ctx.db, parseLimit(request.query.limit), request.query.after?.toLowerCase());
      return { users: page.users.map((u) => ({ ...toUserBody(u), cash_balance: formatCash(u.cashBalance) })), next: page.next };
    },
  );

  server.get(
    '/me',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['users'],
        summary: "Who these credentials are: a user's key gives its user and key id; a teacher key its class and key id; the admin token gives admin: true",
        response: {
          200: Type.Union([
            Type.Object({ user_id: Type.String(), name: Type.String(), email: Type.String(), key_id: Type.String() }),
            Type.Object({ teacher: Type.Literal(true), class_id: Type.String(), key_id: Type.String() }),
            Type.Object({ admin: Type.Literal(true) }),
          ]),
        },
      },
    },
    async (request) => {
      const principal = request.principal!;
      if (principal.kind === 'admin') return { admin: true as const };
      if (principal.kind === 'teacher') return { teacher: true as const, class_id: principal.classId, key_id: principal.keyId };
      const user = await users.getUser(ctx.db, principal.userId);
      return { user_id: user.id, name: user.name, email: user.email, key_id: principal.keyId };
    },
  );

  server.get(
    '/users/:id',
    { schema: { tags: ['users'], summary: 'Get a user', params: UserIdParams, response: { 200: UserBody } } },
    async (request) => {
      actOn(request, request.params.id);
      return toUserBody(await users.getUser(ctx.db, request.params.id));
    },
  );

  server.post(
    '/users/:id/api-keys',
    {
      schema: { tags: ['users'], summary: 'Create another API key (shown once)', params: UserIdParams, response: { 201: ApiKeyBody } },
    },
    async (request, reply) => {
      actOn(request, request.params.id);
      const key = await users.createApiKey(ctx.db, request.params.id);
      return reply.status(201).send(keyBody(key.apiKey, key.apiKeyId));
    },
  );

  server.delete(
    '/users/:id/api-keys/:key_id',
    {
      schema: {
        tags: ['users'],
        summary: 'Revoke an API key',
        params: Type.Object({ id: Uuid, key_id: Type.String({ pattern: '^[0-9a-f]{16}$', description: 'an API key id (16 lowercase hexadecimal digits)' }) }, { additionalProperties: false }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      actOn(request, request.params.id);
      await users.revokeApiKey(ctx.db, request.params.id, request.params.key_id, ctx.apiKeys);
      return reply.status(204).send(null);
    },
  );
}
