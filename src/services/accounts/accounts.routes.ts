import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { formatCash, parseCash } from '../../core/money.js';
import { ValidationError } from '../../core/errors.js';
import { actOn, readOn } from '../../http/auth.js';
import { CashString, Cursor, DecimalInput, IdempotencyKey, iso, LimitQuery, parseLimit, UserIdParams } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { assertUserExists } from '../users/users.service.js';
import * as accounts from './accounts.service.js';

/** An account as the API shows it (also the base of a reset's answer). */
export const AccountBody = Type.Object({
  user_id: Type.String(),
  cash_balance: CashString,
  available_cash: CashString,
  reserved_cash: CashString,
  positions_value: CashString,
  equity: CashString,
});

const AmountBody = Type.Object({ amount: DecimalInput }, { additionalProperties: false });
const IdempotencyHeaders = Type.Object({ 'idempotency-key': Type.Optional(IdempotencyKey) });

/** The account as its summary says, in the API's decimal strings. */
async function accountView(ctx: AppContext, userId: string, balance?: accounts.Balance) {
  const a = await accounts.accountSummary(ctx.db, ctx.quotes, userId, balance);
  return {
    user_id: a.userId,
    cash_balance: formatCash(a.cashBalance),
    available_cash: formatCash(a.availableCash),
    reserved_cash: formatCash(a.reservedCash),
    positions_value: formatCash(a.positionsValue),
    equity: formatCash(a.equity),
  };
}

export function registerAccountRoutes(server: Server, ctx: AppContext): void {
  server.get(
    '/users/:id/account',
    {
      config: { auth: 'user-or-teacher' },
      schema: { tags: ['accounts'], summary: 'Cash, holds and equity', params: UserIdParams, response: { 200: AccountBody } },
    },
    async (request) => {
      await readOn(request, request.params.id, ctx.classMembership.isMember);
      await assertUserExists(ctx.db, request.params.id);
      return accountView(ctx, request.params.id);
    },
  );

  server.post(
    '/users/:id/deposits',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['accounts'],
        summary: 'Deposit cash (admin); 201, or 200 replaying an earlier request with the same Idempotency-Key',
        params: UserIdParams,
        headers: IdempotencyHeaders,
        body: AmountBody,
        response: { 200: AccountBody, 201: AccountBody },
      },
    },
    async (request, reply) => {
      const amount = parseCash(request.body.amount);
      await assertUserExists(ctx.db, request.params.id);
      const moved = await accounts.deposit(ctx.db, request.params.id, amount, { idempotencyKey: request.headers['idempotency-key'], publish: ctx.publishEvents });
      return reply.status(moved.replayed ? 200 : 201).send(await accountView(ctx, request.params.id, moved.balance));
    },
  );

  server.post(
    '/users/:id/withdrawals',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Withdraw cash (refused past available cash); 200 replaying the same Idempotency-Key',
        params: UserIdParams,
        headers: IdempotencyHeaders,
        body: AmountBody,
        response: { 200: AccountBody, 201: AccountBody },
      },
    },
    async (request, reply) => {
      actOn(request, request.params.id);
      const amount = parseCash(request.body.amount);
      await assertUserExists(ctx.db, request.params.id);
      const moved = await accounts.withdraw(ctx.db, request.params.id, amount, { idempotencyKey: request.headers['idempotency-key'], publish: ctx.publishEvents });
      return reply.status(moved.replayed ? 200 : 201).send(await accountView(ctx, request.params.id, moved.balance));
    },
  );

  server.get(
    '/users/:id/activities',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['accounts'],
        summary: 'Cash movements, newest first',
        params: UserIdParams,
        querystring: Type.Object({ limit: Type.Optional(LimitQuery), before: Type.Optional(Cursor) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            activities: Type.Array(
              Type.Object({
                id: Type.String(),
                kind: Type.String(),
                amount: CashString,
                balance_after: CashString,
                order_id: Type.Union([Type.String(), Type.Null()]),
                created_at: Type.String(),
              }),
            ),
            next: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      await readOn(request, request.params.id, ctx.classMembership.isMember);
      const limit = parseLimit(request.query.limit);
      const before = request.query.before;
      if (before !== undefined && !/^[0-9]{1,19}$/.test(before)) {
        throw new ValidationError('before must be a cursor returned as next', { field: 'before' });
      }
      await assertUserExists(ctx.db, request.params.id);
      const page = await accounts.listActivities(ctx.db, request.params.id, limit, before);
      return {
        activities: page.activities.map((a) => ({
          id: a.id,
          kind: a.kind,
          amount: formatCash(a.amount),
          balance_after: formatCash(a.balanceAfter),
          order_id: a.orderId,
          created_at: iso(a.createdAt),
        })),
        next: page.next,
      };
    },
  );
}
