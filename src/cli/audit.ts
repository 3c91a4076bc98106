/**
 * `papertrade audit`: runs the audit and prints its report (text, or JSON with --json).
 * Exit codes: 0 every invariant holds, 1 violations found, 3 the audit could not run.
 */
import { InvalidArgumentError } from 'commander';
import type { AppContext } from '../app.js';
import { auditReportJson, formatAuditReport, runAudit } from '../services/audit/audit.service.js';

export const AUDIT_EXIT_OK = 0;
export const AUDIT_EXIT_VIOLATIONS = 1;
export const AUDIT_EXIT_FAILED = 3;

export interface AuditCommandOptions {
  json: boolean;
  pendingMaxAgeMs: number;
  triggerSettleMs?: number;
  limit: number;
}

/** Commander argument parser for non-negative integer options. */
export function nonNegativeInt(raw: string): number {
  if (!/^[0-9]{1,15}$/.test(raw)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(raw);
}

/** Commander argument parser for positive integer options. */
export function positiveInt(raw: string): number {
  const value = nonNegativeInt(raw);
  if (value < 1) throw new InvalidArgumentError('must be at least 1');
  return value;
}

/** Runs the audit on `ctx` and writes the report to `out`; returns the exit code. */
export async function auditCommand(
  ctx: AppContext,
  opts: AuditCommandOptions,
  out: { write(text: string): unknown } = process.stdout,
  err: { write(text: string): unknown } = process.stderr,
): Promise<number> {
  let report;
  try {
    report = await runAudit(ctx.db, { pendingMaxAgeMs: opts.pendingMaxAgeMs, triggerSettleMs: opts.triggerSettleMs, examplesMax: opts.limit });
  } catch (e) {
    const error = e as { code?: string; message?: string };
    err.write(`papertrade audit: could not run: ${error.code ? `${error.code}: ` : ''}${error.message ?? String(e)}\n`);
    return AUDIT_EXIT_FAILED;
  }
  out.write(opts.json ? `${JSON.stringify(auditReportJson(report), null, 2)}\n` : formatAuditReport(report));
  return report.ok ? AUDIT_EXIT_OK : AUDIT_EXIT_VIOLATIONS;
}
