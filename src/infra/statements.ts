/**
 * Composing several services' statements into one SQL statement of data-modifying CTEs. Each
 * leaf service keeps its rule in its own repository and exports it as a step; an orchestrator
 * (the OMS, the trading engine) chains steps so the whole unit is atomic on its own and costs
 * one round trip. A step depends on an earlier one by reading it (`WHERE id IN (SELECT id FROM
 * <earlier step>)`), so nothing happens to rows the step it depends on did not touch.
 *
 * PostgreSQL runs every data-modifying CTE of a statement exactly once against the same
 * snapshot, so two steps must never update the same row (each step here touches its own table).
 */
import { sql, type RawBuilder } from 'kysely';
import type { Executor } from './postgres.js';

export interface Step {
  name: string;
  statement: RawBuilder<unknown>;
}

/** Runs `final` (a SELECT over the steps) with the steps as its CTEs, in one round trip. */
export async function runSteps<R>(db: Executor, steps: readonly Step[], final: RawBuilder<unknown>): Promise<R[]> {
  const ctes = sql.join(steps.map((s) => sql`${sql.id(s.name)} AS (${s.statement})`));
  const { rows } = await sql<R>`WITH ${ctes} ${final}`.execute(db);
  return rows;
}

/**
 * A timestamptz as the API writes times (Date.toISOString(): UTC, milliseconds, `Z`), for
 * views rendered in SQL. to_char truncates the microseconds, as the driver does into a Date.
 */
export function isoMillisUtc(expr: RawBuilder<unknown>): RawBuilder<string> {
  return sql<string>`to_char(${expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}
