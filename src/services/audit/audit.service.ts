/**
 * The audit: checks every invariant of docs/DESIGN.md over the whole database and reports each
 * violation with the ids involved. All checks run inside ONE transaction, REPEATABLE READ and
 * READ ONLY, so they see one consistent snapshot even while the engine keeps trading; each
 * invariant is one set-based query (audit.repository.ts). Amounts stay NUMERIC in PostgreSQL
 * and strings here.
 */
import { performance } from 'node:perf_hooks';
import type { Db, Executor } from '../../infra/postgres.js';
import * as repo from './audit.repository.js';

/** A PENDING order older than this is reported (the reconciler and engine settle far sooner). */
export const AUDIT_PENDING_MAX_AGE_MS_DEFAULT = 60_000;
/** Violations listed per invariant; all are counted. */
export const AUDIT_EXAMPLES_MAX_DEFAULT = 1_000;
export const AUDIT_EXAMPLES_MAX_LIMIT = 100_000;
/** Ten years: anything longer would reach before the earliest timestamp PostgreSQL stores. */
export const AUDIT_PENDING_MAX_AGE_MS_LIMIT = 10 * 365 * 24 * 3_600_000;
/** The audit scans whole tables: it gets its own statement timeout instead of the pool's 10 s. */
export const AUDIT_STATEMENT_TIMEOUT_MS_DEFAULT = 300_000;
/** work_mem for the audit transaction only, so its aggregations stay in memory. */
export const AUDIT_WORK_MEM_MB = 64;

export interface AuditOptions {
  /** Default AUDIT_PENDING_MAX_AGE_MS_DEFAULT. */
  pendingMaxAgeMs?: number;
  /** Violations listed per invariant (all are counted); default AUDIT_EXAMPLES_MAX_DEFAULT. */
  examplesMax?: number;
  /** Default AUDIT_STATEMENT_TIMEOUT_MS_DEFAULT. */
  statementTimeoutMs?: number;
  /** A bar younger than this is not a missed trigger yet (its ticks may be on their way). */
  triggerSettleMs?: number;
}

/** Ticks reach the resting watcher within seconds; a bar older than this has been seen. */
export const AUDIT_TRIGGER_SETTLE_MS_DEFAULT = 120_000;

export type InvariantName =
  | 'cash_within_bounds'
  | 'held_cash_matches_pending_buys'
  | 'cash_balance_matches_ledger'
  | 'ledger_running_balance'
  | 'holdings_match_fills'
  | 'fills_match_orders'
  | 'no_stale_pending_orders'
  | 'no_value_from_nothing'
  | 'no_missed_triggers'
  | 'events_numbered_without_gaps'
  | 'contributions_match_ledger'
  | 'commissions_match_fills';

/** One wrong value. `expected`/`actual` are decimal strings (or null: "no row"). */
export interface AuditViolation {
  userId: string | null;
  ticker: string | null;
  orderId: string | null;
  ledgerId: string | null;
  field: string;
  expected: string | null;
  actual: string | null;
  detail: string | null;
}

export interface InvariantResult {
  /** The invariant's number in docs/DESIGN.md ("3b": the ledger's running balance). */
  id: string;
  name: InvariantName;
  description: string;
  /** How many violations were found (examples lists at most `examplesMax` of them). */
  violations: number;
  durationMs: number;
  examples: AuditViolation[];
}

export interface AuditReport {
  ok: boolean;
  /** When the snapshot was taken (the transaction's now(), ISO 8601). */
  checkedAt: string;
  durationMs: number;
  pendingMaxAgeMs: number;
  triggerSettleMs: number;
  counts: { users: number; orders: number; fills: number };
  invariants: InvariantResult[];
}

interface InvariantCheck {
  id: string;
  name: InvariantName;
  description: string;
  run(trx: Executor, limit: number, options: Required<AuditOptions>): Promise<repo.ViolationRow[]>;
}

export const INVARIANTS: readonly InvariantCheck[] = [
  {
    id: '1',
    name: 'cash_within_bounds',
    description: '0 <= available_cash <= cash_balance for every user (and every user has a cash account)',
    run: (trx, limit) => repo.cashWithinBounds(trx, limit),
  },
  {
    id: '2',
    name: 'held_cash_matches_pending_buys',
    description: "cash_balance - available_cash = sum of reserved_amount over the user's live orders (a buy's cost and commission, a sell's commission)",
    run: (trx, limit) => repo.heldCashMatchesPendingBuys(trx, limit),
  },
  {
    id: '3',
    name: 'cash_balance_matches_ledger',
    description: "cash_balance = sum of the user's cash_ledger amounts",
    run: (trx, limit) => repo.cashBalanceMatchesLedger(trx, limit),
  },
  {
    id: '3b',
    name: 'ledger_running_balance',
    description: "every cash_ledger row's balance_after = running sum of the user's amounts up to it (by id)",
    run: (trx, limit) => repo.ledgerRunningBalance(trx, limit),
  },
  {
    id: '4',
    name: 'holdings_match_fills',
    description:
      'holdings.quantity = bought - sold from fills - removed by resets (no row at zero); reserved_quantity = the open quantity of live (PENDING or OPEN) sells',
    run: (trx, limit) => repo.holdingsMatchFills(trx, limit),
  },
  {
    id: '5',
    name: 'fills_match_orders',
    description:
      "an order's fills add up to its filled_quantity (all of it when FILLED, none when it never executed) and filled_value, its fill_price is their average; each amount = quantity x price rounded against the account (buys up, sells down)",
    run: (trx, limit) => repo.fillsMatchOrders(trx, limit),
  },
  {
    id: '6',
    name: 'no_stale_pending_orders',
    description: 'no order stays PENDING beyond the recovery period (pending_max_age_ms)',
    run: (trx, limit, o) => repo.stalePendingOrders(trx, o.pendingMaxAgeMs, limit),
  },
  {
    id: '7',
    name: 'no_value_from_nothing',
    description: 'every fill that moved shares moved cash: no fill has amount 0.00 (or less) for a positive quantity',
    run: (trx, limit) => repo.noValueFromNothing(trx, limit),
  },
  {
    id: '8',
    name: 'no_missed_triggers',
    description: 'no OPEN limit, stop or stop_limit order rests past a stored minute bar (after its placement) that met its condition',
    run: (trx, limit, o) => repo.noMissedTriggers(trx, o.triggerSettleMs, limit),
  },
  {
    id: '9',
    name: 'events_numbered_without_gaps',
    description: "every user's kept events run seq by seq, without a gap, up to the user's event counter",
    run: (trx, limit) => repo.eventsNumberedWithoutGaps(trx, limit),
  },
  {
    id: '10',
    name: 'contributions_match_ledger',
    description:
      "net_contributions = the cash set by the user's last reset + initial, deposit and withdrawal amounts after it; every reset has its 'reset' ledger row",
    run: (trx, limit) => repo.contributionsMatchLedger(trx, limit),
  },
  {
    id: '11',
    name: 'commissions_match_fills',
    description: "an order's 'commission' ledger rows add up to minus its commission_charged, as its fills' commissions do; an order charged nothing has none",
    run: (trx, limit) => repo.commissionsMatchFills(trx, limit),
  },
];

function toViolation(row: repo.ViolationRow): AuditViolation {
  return {
    userId: row.user_id,
    ticker: row.ticker,
    orderId: row.order_id,
    ledgerId: row.ledger_id,
    field: row.field,
    expected: row.expected,
    actual: row.actual,
    detail: row.detail,
  };
}

function resolveOptions(options: AuditOptions): Required<AuditOptions> {
  const resolved = {
    pendingMaxAgeMs: options.pendingMaxAgeMs ?? AUDIT_PENDING_MAX_AGE_MS_DEFAULT,
    examplesMax: options.examplesMax ?? AUDIT_EXAMPLES_MAX_DEFAULT,
    statementTimeoutMs: options.statementTimeoutMs ?? AUDIT_STATEMENT_TIMEOUT_MS_DEFAULT,
    triggerSettleMs: options.triggerSettleMs ?? AUDIT_TRIGGER_SETTLE_MS_DEFAULT,
  };
  // examplesMax >= 1: the count of all violations rides on the rows returned.
  for (const [name, value, min, max] of [
    ['pendingMaxAgeMs', resolved.pendingMaxAgeMs, 0, AUDIT_PENDING_MAX_AGE_MS_LIMIT],
    ['examplesMax', resolved.examplesMax, 1, AUDIT_EXAMPLES_MAX_LIMIT],
    ['statementTimeoutMs', resolved.statementTimeoutMs, 1, 2 ** 31 - 1],
    ['triggerSettleMs', resolved.triggerSettleMs, 0, AUDIT_PENDING_MAX_AGE_MS_LIMIT],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
    }
  }
  return resolved;
}

/** Runs every invariant over one read-only snapshot and returns the report (never throws on a violation). */
export async function runAudit(db: Db, options: AuditOptions = {}): Promise<AuditReport> {
  const opts = resolveOptions(options);
  const started = performance.now();
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      await repo.tuneAuditTransaction(trx, opts.statementTimeoutMs, AUDIT_WORK_MEM_MB);
      // The first query fixes the snapshot; every later one reads the same data.
      const c = await repo.counts(trx);
      const invariants: InvariantResult[] = [];
      for (const check of INVARIANTS) {
        const t0 = performance.now();
        const rows = await check.run(trx, opts.examplesMax, opts);
        invariants.push({
          id: check.id,
          name: check.name,
          description: check.description,
          violations: rows.length ? Number(rows[0]!.total) : 0,
          durationMs: Math.round(performance.now() - t0),
          examples: rows.map(toViolation),
        });
      }
      return {
        ok: invariants.every((i) => i.violations === 0),
        checkedAt: c.snapshot_at.toISOString(),
        durationMs: Math.round(performance.now() - started),
        pendingMaxAgeMs: opts.pendingMaxAgeMs,
        triggerSettleMs: opts.triggerSettleMs,
        counts: { users: Number(c.users), orders: Number(c.orders), fills: Number(c.fills) },
        invariants,
      };
    });
}

/** The report as the API and `papertrade audit --json` print it: snake_case, like every response. */
export function auditReportJson(report: AuditReport) {
  return {
    ok: report.ok,
    checked_at: report.checkedAt,
    duration_ms: report.durationMs,
    pending_max_age_ms: report.pendingMaxAgeMs,
    trigger_settle_ms: report.triggerSettleMs,
    counts: { ...report.counts },
    invariants: report.invariants.map((i) => ({
      id: i.id,
      name: i.name,
      description: i.description,
      violations: i.violations,
      duration_ms: i.durationMs,
      examples: i.examples.map((v) => ({
        user_id: v.userId,
        ticker: v.ticker,
        order_id: v.orderId,
        ledger_id: v.ledgerId,
        field: v.field,
        expected: v.expected,
        actual: v.actual,
        detail: v.detail,
      })),
    })),
  };
}

export type AuditReportJson = ReturnType<typeof auditReportJson>;

/** A human-readable report: a line per invariant, a line per listed violation, a summary. */
export function formatAuditReport(report: AuditReport): string {
  const lines: string[] = [];
  const c = report.counts;
  lines.push(
    `papertrade audit at ${report.checkedAt}: ${c.users} users, ${c.orders} orders, ${c.fills} fills (one snapshot)`,
  );
  const shown = (v: string | null) => (v === null ? '(no row)' : v);
  for (const inv of report.invariants) {
    const status = inv.violations === 0 ? 'ok  ' : 'FAIL';
    lines.push(
      `${status} ${inv.id.padEnd(2)} ${inv.name.padEnd(31)} ${String(inv.violations).padStart(7)} violation(s)  ${inv.durationMs} ms`,
    );
    if (inv.violations > 0) lines.push(`        ${inv.description}`);
    for (const v of inv.examples) {
      const ids = [
        v.userId && `user_id=${v.userId}`,
        v.ticker && `ticker=${v.ticker}`,
        v.orderId && `order_id=${v.orderId}`,
        v.ledgerId && `ledger_id=${v.ledgerId}`,
      ].filter(Boolean);
      lines.push(
        `        ${ids.join(' ')} ${v.field}: expected ${shown(v.expected)}, actual ${shown(v.actual)}${v.detail ? ` (${v.detail})` : ''}`,
      );
    }
    if (inv.examples.length < inv.violations) {
      lines.push(`        … and ${inv.violations - inv.examples.length} more`);
    }
  }
  const total = report.invariants.reduce((n, i) => n + i.violations, 0);
  const failed = report.invariants.filter((i) => i.violations > 0).map((i) => i.id);
  lines.push(
    report.ok
      ? `OK: ${report.invariants.length} invariants hold (${report.durationMs} ms)`
      : `FAILED: ${total} violation(s) of invariant(s) ${failed.join(', ')} (${report.durationMs} ms)`,
  );
  return `${lines.join('\n')}\n`;
}
