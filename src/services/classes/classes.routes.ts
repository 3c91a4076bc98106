import { Type, type Static } from 'typebox';
import type { AppContext } from '../../app.js';
import { classRulesJson, RULE_TICKERS_MAX } from '../../core/class-rules.js';
import { FILL_MODELS } from '../../core/fill-models.js';
import { ORDER_TYPES } from '../../core/order-terms.js';
import { formatCash } from '../../core/money.js';
import { classAccess, teachOn } from '../../http/auth.js';
import { forbidden } from '../../http/errors.js';
import { CashString, iso, LimitQuery, parseLimit, Timestamp, Uuid } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { keyPair } from '../users/api-keys.js';
import { leaderboard } from '../history/history.service.js';
import { periodsPerYear } from '../../core/performance.js';
import * as classes from './classes.service.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

// The same rules as POST /users (and the users service, which the command line goes through).
const MemberName = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '^[^\\S\\p{Cc}]*[^\\s\\p{Cc}\\p{Cs}][^\\p{Cc}\\p{Cs}]*$',
  description: 'a name with at least one visible character and no control characters',
});
const MemberEmail = Type.String({
  minLength: 3,
  maxLength: 320,
  pattern: '^[^\\s@\\p{Cc}\\p{Cs}]+@[^\\s@\\p{Cc}\\p{Cs}]+$',
  description: 'an email address such as ada@example.com (no spaces or control characters)',
});
const InstantInput = Type.String({ maxLength: 40, description: 'an ISO 8601 instant with its offset, such as 2026-09-01T13:30:00Z' });

const DecimalInput = (description: string) => Type.Union([Type.String({ maxLength: 40 }), Type.Number()], { description });

const RulesInput = Type.Object(
  {
    tickers: Type.Optional(
      Type.Array(Type.String({ maxLength: 32 }), { maxItems: RULE_TICKERS_MAX, description: 'the only tickers members may trade (listed instruments)' }),
    ),
    order_types: Type.Optional(Type.Array(Type.String({ enum: [...ORDER_TYPES] }), { description: 'the only order types members may use' })),
    max_position_pct: Type.Optional(
      Type.Union([Type.String({ maxLength: 40 }), Type.Number()], {
        description: 'a percent above 0 and at most 100 with at most 2 decimals: the largest position in one ticker, of the member’s equity',
      }),
    ),
    max_orders_per_day: Type.Optional(Type.Integer({ description: 'orders a member may place per market day (1 to 1000000)' })),
    commission_per_order: Type.Optional(
      Type.Union([Type.String({ maxLength: 40 }), Type.Number()], { description: 'cash charged on each order that fills, 0 or more with at most 2 decimals' }),
    ),
    commission: Type.Optional(
      Type.Object(
        {
          per_order: Type.Optional(DecimalInput('cash per order, at most 2 decimals')),
          per_share: Type.Optional(DecimalInput('cash per share, at most 4 decimals')),
          bps: Type.Optional(DecimalInput('basis points of the fill value, a whole number up to 1000')),
          minimum: Type.Optional(DecimalInput('the least an order that fills is charged')),
          maximum: Type.Optional(Type.Union([DecimalInput('the most an order is charged'), Type.Null()])),
        },
        { additionalProperties: false, description: 'a commission schedule in place of the deployment’s (not with commission_per_order)' },
      ),
    ),
    fill_model: Type.Optional(Type.String({ enum: [...FILL_MODELS], description: 'the fill model members’ orders fill under, in place of the deployment’s' })),
  },
  { additionalProperties: false },
);

const RulesBody = Type.Object({
  tickers: Type.Optional(Type.Array(Type.String())),
  order_types: Type.Optional(Type.Array(Type.String())),
  max_position_pct: Type.Optional(Type.String()),
  max_orders_per_day: Type.Optional(Type.Integer()),
  commission_per_order: CashString,
  commission: Type.Optional(
    Type.Object({ per_order: Type.String(), per_share: Type.String(), bps: Type.String(), minimum: Type.String(), maximum: Nullable(Type.String()) }),
  ),
  fill_model: Type.Optional(Type.String()),
});

const ClassBody = Type.Object({
  id: Type.String(),
  name: Type.String(),
  starting_cash: CashString,
  starts_at: Nullable(Timestamp),
  ends_at: Nullable(Timestamp),
  rules: RulesBody,
  leaderboard_visible: Type.Boolean(),
  created_at: Timestamp,
});

const ClassIdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
const METRICS = ['return', 'sharpe', 'max_drawdown'] as const;

const toClassBody = (c: classes.Class) => ({
  id: c.id,
  name: c.name,
  starting_cash: formatCash(c.startingCash),
  starts_at: c.startsAt ? iso(c.startsAt) : null,
  ends_at: c.endsAt ? iso(c.endsAt) : null,
  // classRulesJson writes exactly the fields of RulesBody.
  rules: classRulesJson(c.rules) as Static<typeof RulesBody>,
  leaderboard_visible: c.leaderboardVisible,
  created_at: iso(c.createdAt),
});

export function registerClassRoutes(server: Server, ctx: AppContext): void {
  const isMember = ctx.classMembership.isMember;

  server.post(
    '/classes',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['classes'],
        summary: 'Create a class with its starting cash, window and rules (admin); the answer shows its teacher key once',
        body: Type.Object(
          {
            name: MemberName,
            starting_cash: Type.Union([Type.String({ maxLength: 40 }), Type.Number()], {
              description: 'the cash each member starts with: 0 or more, at most 2 decimals, as a JSON number or a string (e.g. "100000.00")',
            }),
            starts_at: Type.Optional(InstantInput),
            ends_at: Type.Optional(InstantInput),
            rules: Type.Optional(RulesInput),
            leaderboard_visible: Type.Optional(Type.Boolean({ default: true, description: 'whether members see the leaderboard (the teacher always does)' })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Intersect([ClassBody, Type.Object({ teacher_key: Type.String({ description: 'the class’s teacher key: shown once; store it' }) })]),
        },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const created = await classes.createClass(ctx.db, ctx.market, {
        name: b.name,
        startingCash: b.starting_cash,
        startsAt: b.starts_at,
        endsAt: b.ends_at,
        rules: b.rules,
        leaderboardVisible: b.leaderboard_visible,
      });
      return reply.status(201).send({ ...toClassBody(created.class), teacher_key: created.teacherKey });
    },
  );

  server.get(
    '/classes',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['classes'],
        summary: 'Every class in the order they were created (admin), `limit` ≤ 500 (default 50), then `?after=<next>`',
        querystring: Type.Object({ limit: Type.Optional(LimitQuery), after: Type.Optional(Uuid) }, { additionalProperties: false }),
        response: { 200: Type.Object({ classes: Type.Array(ClassBody), next: Nullable(Type.String({ description: 'pass as after for the next page' })) }) },
      },
    },
    async (request) => {
      const page = await classes.listClasses(ctx.db, parseLimit(request.query.limit), request.query.after?.toLowerCase());
      return { classes: page.classes.map(toClassBody), next: page.next };
    },
  );

  server.get(
    '/classes/:id',
    {
      config: { auth: 'user-or-teacher' },
      schema: { tags: ['classes'], summary: 'Get a class (the admin, its teacher key, its members)', params: ClassIdParams, response: { 200: ClassBody } },
    },
    async (request) => {
      await classAccess(request, request.params.id, isMember);
      return toClassBody(await classes.getClass(ctx.db, request.params.id));
    },
  );

  server.post(
    '/classes/:id/members',
    {
      config: { auth: 'teacher' },
      schema: {
        tags: ['classes'],
        summary: `Create 1 to ${classes.MEMBERS_PER_CALL_MAX} members, each a user funded with the starting cash, in one transaction (the admin or the class's teacher key; keys shown once)`,
        params: ClassIdParams,
        body: Type.Object(
          {
            members: Type.Array(Type.Object({ name: MemberName, email: MemberEmail }, { additionalProperties: false }), {
              minItems: 1,
              maxItems: classes.MEMBERS_PER_CALL_MAX,
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            members: Type.Array(
              Type.Object({
                user_id: Type.String(),
                name: Type.String(),
                email: Type.String(),
                api_key: Type.String({ description: 'shown once; hand it to the member' }),
                key_id: Type.String({ description: "the same key in Alpaca's form (APCA-API-KEY-ID)" }),
                secret_key: Type.String({ description: "the same key in Alpaca's form (APCA-API-SECRET-KEY); shown once" }),
              }),
            ),
          }),
        },
      },
    },
    async (request, reply) => {
      teachOn(request, request.params.id);
      const created = await classes.addMembers(ctx.db, request.params.id, request.body.members);
      return reply.status(201).send({
        members: created.map((m) => {
          const pair = keyPair(m.apiKey);
          return { user_id: m.user.id, name: m.user.name, email: m.user.email, api_key: m.apiKey, key_id: pair.keyId, secret_key: pair.secretKey };
        }),
      });
    },
  );

  server.get(
    '/classes/:id/members',
    {
      config: { auth: 'teacher' },
      schema: {
        tags: ['classes'],
        summary: 'The class’s members in the order they were created (the admin or the class’s teacher key)',
        params: ClassIdParams,
        querystring: Type.Object({ limit: Type.Optional(LimitQuery), after: Type.Optional(Uuid) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            members: Type.Array(
              Type.Object({ user_id: Type.String(), name: Type.String(), email: Type.String(), joined_at: Timestamp, cash_balance: CashString }),
            ),
            next: Nullable(Type.String({ description: 'pass as after for the next page' })),
          }),
        },
      },
    },
    async (request) => {
      teachOn(request, request.params.id);
      const page = await classes.listMembers(ctx.db, request.params.id, parseLimit(request.query.limit), request.query.after?.toLowerCase());
      return {
        members: page.members.map((m) => ({ user_id: m.userId, name: m.name, email: m.email, joined_at: iso(m.joinedAt), cash_balance: formatCash(m.cashBalance) })),
        next: page.next,
      };
    },
  );

  server.get(
    '/classes/:id/leaderboard',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['classes'],
        summary: 'The class’s members ranked by return, Sharpe ratio or maximum drawdown (members see it when leaderboard_visible)',
        params: ClassIdParams,
        querystring: Type.Object({ metric: Type.Optional(Type.String({ enum: [...METRICS], default: 'return' })) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            as_of: Timestamp,
            entries: Type.Array(
              Type.Object({
                rank: Type.Integer(),
                user_id: Type.String(),
                name: Type.String(),
                equity: CashString,
                return_pct: Type.String(),
                sharpe: Nullable(Type.String()),
                max_drawdown_pct: Type.String(),
                trades: Type.Integer(),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const classId = request.params.id;
      const access = await classAccess(request, classId, isMember);
      const cls = await classes.getClass(ctx.db, classId);
      if (access === 'member' && !cls.leaderboardVisible) throw forbidden("the teacher keeps this class's leaderboard hidden from members");
      const metric = (request.query.metric ?? 'return') as (typeof METRICS)[number];
      const board = await leaderboard(ctx.db, ctx.quotes, classId, metric, {
        // The Sharpe ratio is annualised over the snapshots the engine records.
        periodsPerYear: periodsPerYear(ctx.config.marketCalendar, ctx.config.engine.portfolioSnapshotIntervalMs),
        riskFreeRatePct: ctx.config.leaderboardRiskFreeRatePct,
      });
      return {
        as_of: iso(board.asOf),
        entries: board.entries.map((e) => ({
          rank: e.rank,
          user_id: e.userId,
          name: e.name,
          equity: formatCash(e.equity),
          return_pct: e.returnPct,
          sharpe: e.sharpe,
          max_drawdown_pct: e.maxDrawdownPct,
          trades: e.trades,
        })),
      };
    },
  );
}
