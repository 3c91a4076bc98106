import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { parseCash } from '../../core/money.js';
import { resetOn } from '../../http/auth.js';
import { forbidden } from '../../http/errors.js';
import { CashString, DecimalInput, QtyString, UserIdParams } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { AccountBody } from '../accounts/accounts.routes.js';
import { resetEventData } from './resets.service.js';

const ResetBody = Type.Object({ cash: Type.Optional(DecimalInput) }, { additionalProperties: false });

const ResetReply = Type.Object({
  ...AccountBody.properties,
  reset: Type.Object({
    id: Type.String(),
    cash_before: CashString,
    orders_canceled: Type.Integer(),
    positions_removed: Type.Array(Type.Object({ ticker: Type.String(), quantity: QtyString })),
  }),
});

export function registerResetRoutes(server: Server, ctx: AppContext): void {
  server.post(
    '/users/:id/reset',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['accounts'],
        summary: 'Reset an account: cancel every open order, clear holdings, set the cash; API keys stay',
        description:
          'Body (optional): `{ "cash"?: "100000.00" }`. In one transaction. `cash` defaults to the class starting cash (a class member) or the initial cash. ' +
          'The user itself, the admin, or the teacher key of the user\'s class may reset; a class member may not choose its own cash.',
        params: UserIdParams,
        body: ResetBody,
        response: { 200: ResetReply },
      },
      // The body is optional: none at all reads as {} (the schema would refuse a missing body).
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request) => {
      const userId = request.params.id;
      const raw = request.body.cash;
      const cash = raw === undefined ? undefined : parseCash(raw, 'cash', { allowZero: true });
      const p = request.principal;
      if (p?.kind === 'user' && p.userId === userId) {
        // A member restarting itself gets the class's starting cash, like everyone in the class.
        if (cash !== undefined && (await ctx.classMembership.memberClass(userId))) {
          throw forbidden("a class member resets to the class's starting cash; only the admin or the teacher chooses another");
        }
      } else {
        await resetOn(request, userId, ctx.classMembership.isMember);
      }
      return resetEventData(await ctx.resets.resetAccount(userId, cash));
    },
  );
}
