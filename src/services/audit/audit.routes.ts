/**
 * GET /admin/audit: the audit report (admin token only). A database that breaks an invariant is
 * still a 200: the report says `ok: false` and lists the violations; it is not an error of the
 * request.
 */
import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { ValidationError } from '../../core/errors.js';
import type { Server } from '../../http/server.js';
import {
  AUDIT_EXAMPLES_MAX_DEFAULT,
  AUDIT_PENDING_MAX_AGE_MS_DEFAULT,
  AUDIT_PENDING_MAX_AGE_MS_LIMIT,
  AUDIT_TRIGGER_SETTLE_MS_DEFAULT,
  auditReportJson,
  INVARIANTS,
  runAudit,
} from './audit.service.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

/** Route limit on listed violations per invariant (the CLI may ask for more). */
const EXAMPLES_MAX_HTTP = 10_000;

const ViolationBody = Type.Object({
  user_id: Nullable(Type.String()),
  ticker: Nullable(Type.String()),
  order_id: Nullable(Type.String()),
  ledger_id: Nullable(Type.String()),
  field: Type.String({ description: 'the value that is wrong, e.g. cash_balance, quantity, fill_count' }),
  expected: Nullable(Type.String({ description: 'what the other tables say it should be (null: no row)' })),
  actual: Nullable(Type.String({ description: 'what is stored (null: no row)' })),
  detail: Nullable(Type.String()),
});

export const AuditReportBody = Type.Object({
  ok: Type.Boolean({ description: 'true when no invariant is violated' }),
  checked_at: Type.String({ description: 'when the snapshot was taken' }),
  duration_ms: Type.Integer(),
  pending_max_age_ms: Type.Integer(),
  trigger_settle_ms: Type.Integer(),
  counts: Type.Object({ users: Type.Integer(), orders: Type.Integer(), fills: Type.Integer() }),
  invariants: Type.Array(
    Type.Object({
      id: Type.String({ enum: INVARIANTS.map((i) => i.id) }),
      name: Type.String({ enum: INVARIANTS.map((i) => i.name) }),
      description: Type.String(),
      violations: Type.Integer({ description: 'all violations found; examples lists at most `limit`' }),
      duration_ms: Type.Integer(),
      examples: Type.Array(ViolationBody),
    }),
  ),
});

function intParam(raw: string | undefined, field: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ValidationError(`${field} must be an integer from ${min} to ${max}`, { field });
  }
  return value;
}

export function registerAuditRoutes(server: Server, ctx: AppContext): void {
  server.get(
    '/admin/audit',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Check every invariant over one read-only snapshot of the database (admin)',
        description:
          'Always 200 when the audit ran: `ok` is false and `invariants[].examples` lists the violations when any invariant is broken.',
        querystring: Type.Object(
          {
            pending_max_age_ms: Type.Optional(
              Type.String({ pattern: '^[0-9]{1,12}$', description: `a whole number of milliseconds (default ${AUDIT_PENDING_MAX_AGE_MS_DEFAULT})` }),
            ),
            trigger_settle_ms: Type.Optional(
              Type.String({ pattern: '^[0-9]{1,12}$', description: `a whole number of milliseconds (default ${AUDIT_TRIGGER_SETTLE_MS_DEFAULT})` }),
            ),
            limit: Type.Optional(
              Type.String({ pattern: '^[0-9]{1,5}$', description: `a whole number of violations listed per invariant (default ${AUDIT_EXAMPLES_MAX_DEFAULT})` }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: AuditReportBody },
      },
    },
    async (request) => {
      const q = request.query;
      const report = await runAudit(ctx.db, {
        pendingMaxAgeMs: intParam(q.pending_max_age_ms, 'pending_max_age_ms', AUDIT_PENDING_MAX_AGE_MS_DEFAULT, 0, AUDIT_PENDING_MAX_AGE_MS_LIMIT),
        triggerSettleMs: intParam(q.trigger_settle_ms, 'trigger_settle_ms', AUDIT_TRIGGER_SETTLE_MS_DEFAULT, 0, AUDIT_PENDING_MAX_AGE_MS_LIMIT),
        examplesMax: intParam(q.limit, 'limit', AUDIT_EXAMPLES_MAX_DEFAULT, 1, EXAMPLES_MAX_HTTP),
      });
      return auditReportJson(report);
    },
  );
}
