import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { formatCash, formatPrice, formatQty } from '../../core/money.js';
import { readOn } from '../../http/auth.js';
import { CashString, PriceString, QtyString, UserIdParams } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { assertUserExists } from '../users/users.service.js';
import * as portfolios from './portfolios.service.js';

export function registerPortfolioRoutes(server: Server, ctx: AppContext): void {
  server.get(
    '/users/:id/portfolio',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['portfolios'],
        summary: 'Positions valued at the latest prices',
        params: UserIdParams,
        response: {
          200: Type.Object({
            user_id: Type.String(),
            positions: Type.Array(
              Type.Object({
                ticker: Type.String(),
                quantity: QtyString,
                available_quantity: QtyString,
                avg_cost: PriceString,
                market_price: PriceString,
                market_value: CashString,
                unrealized_pl: CashString,
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const userId = request.params.id;
      await readOn(request, userId, ctx.classMembership.isMember);
      await assertUserExists(ctx.db, userId);
      const positions = await portfolios.valuePortfolio(ctx.db, ctx.quotes, userId);
      return {
        user_id: userId,
        positions: positions.map((p) => ({
          ticker: p.ticker,
          quantity: formatQty(p.quantity),
          available_quantity: formatQty(p.availableQuantity),
          avg_cost: formatPrice(p.avgCost),
          market_price: formatPrice(p.marketPrice),
          market_value: formatCash(p.marketValue),
          unrealized_pl: formatCash(p.unrealizedPl),
        })),
      };
    },
  );
}
