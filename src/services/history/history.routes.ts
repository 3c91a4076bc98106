import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { formatCash } from '../../core/money.js';
import { formatPct4 } from '../../core/performance.js';
import { readOn } from '../../http/auth.js';
import { CashString, UserIdParams } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { getBalanceWithBase } from './history.repository.js';
import { assertUserExists } from '../users/users.service.js';
import { DEFAULT_TIMEFRAME, HISTORY_PERIODS, HISTORY_TIMEFRAMES, portfolioHistory, type HistoryPeriod, type HistoryTimeframe } from './history.service.js';

/** A percent with 4 decimals ("12.3456" is 12.3456 %). */
const PctString = Type.String({ pattern: '^-?\\d+\\.\\d{4}$', examples: ['12.3456'] });

const HistoryQuery = Type.Object(
  {
    period: Type.Optional(Type.String({ enum: [...HISTORY_PERIODS], description: `one of ${HISTORY_PERIODS.join(', ')} (default 1M)` })),
    timeframe: Type.Optional(Type.String({ enum: [...HISTORY_TIMEFRAMES], description: `one of ${HISTORY_TIMEFRAMES.join(', ')} (default: from the period)` })),
  },
  { additionalProperties: false },
);

const HistoryBody = Type.Object({
  timestamp: Type.Array(Type.Integer(), { description: 'the start of each timeframe bucket, epoch seconds (UTC-aligned buckets)' }),
  equity: Type.Array(CashString),
  profit_loss: Type.Array(CashString, { description: 'equity - base (net contributions) at that point' }),
  profit_loss_pct: Type.Array(Type.Union([PctString, Type.Null()]), { description: 'profit_loss / base in percent, 4 decimals; null when the base is not positive' }),
  base_value: CashString,
  timeframe: Type.String({ enum: [...HISTORY_TIMEFRAMES] }),
});

export function registerHistoryRoutes(server: Server, ctx: AppContext): void {
  server.get(
    '/users/:id/portfolio/history',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['portfolios'],
        summary: 'Equity over a period: the last point of each timeframe bucket that has one (a missing bucket means unchanged)',
        params: UserIdParams,
        querystring: HistoryQuery,
        response: { 200: HistoryBody },
      },
    },
    async (request) => {
      const userId = request.params.id;
      await readOn(request, userId, ctx.classMembership.isMember);
      // The schema allows only the listed values; the casts name their types.
      const period = (request.query.period ?? '1M') as HistoryPeriod;
      const timeframe = (request.query.timeframe ?? DEFAULT_TIMEFRAME[period]) as HistoryTimeframe;
      await assertUserExists(ctx.db, userId);
      const [points, balance] = await Promise.all([portfolioHistory(ctx.db, userId, period, timeframe), getBalanceWithBase(ctx.db, userId)]);
      return {
        timestamp: points.map((p) => p.timestamp),
        equity: points.map((p) => formatCash(p.equity)),
        profit_loss: points.map((p) => formatCash(p.profitLoss)),
        profit_loss_pct: points.map((p) => (p.profitLossPct === null ? null : formatPct4(p.profitLossPct))),
        base_value: formatCash(balance?.base ?? 0n),
        timeframe,
      };
    },
  );
}
