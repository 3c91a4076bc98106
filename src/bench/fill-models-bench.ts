/**
 * `papertrade bench --fill-models`: the market-order benchmark run twice in one invocation, under
 * FILL_MODEL=ideal and then FILL_MODEL=realistic (same options, same machine, minutes apart),
 * with filled orders per second, accept → fill latency and engine CPU per order side by side,
 * the ratio against the target (realistic at most 15 % lower), and the models' own CPU per fill
 * measured in process (planExecution in a loop: the pure cost the engine pays per execution).
 */
import { performance } from 'node:perf_hooks';
import { planExecution, type ExecutableOrder, type ExecutionQuote } from '../core/executions.js';
import type { FillModelName } from '../core/fill-models.js';
import { TIER_PARAMS } from '../core/liquidity.js';
import { parseCash, parsePrice, parseQty } from '../core/money.js';
import { saveReport, type BenchReport } from './report.js';

/** The throughput the realistic model may lose against ideal (the target). */
export const REALISTIC_THROUGHPUT_LOSS_MAX = 0.15;

/** Plans per model in the CPU measurement: enough for a stable figure in well under a second. */
export const MODEL_CPU_PLANS = 200_000;

export interface ModelCpu {
  model: FillModelName;
  plans: number;
  /** Wall-clock microseconds per plan (one thread, nothing else running in it). */
  usPerFill: number;
}

/**
 * Times `plans` executions of a 1-share market buy (the bench's order) and of a 50,000-share
 * buy in parts (realistic's bisection for the largest part within the hold), per model.
 */
export function measureModelCpu(plans = MODEL_CPU_PLANS): ModelCpu[] {
  const quote: ExecutionQuote = {
    last: parsePrice('60'),
    bid: parsePrice('59.97'),
    ask: parsePrice('60.03'),
    bidSize: parseQty('10000'),
    askSize: parseQty('10000'),
    asOfMs: 1_000,
  };
  const order: ExecutableOrder = {
    side: 'buy',
    timeInForce: 'day',
    quantity: parseQty('50000'),
    filledQuantity: 0n,
    filledValue: 0n,
    reservedAmount: parseCash('3200000'),
    commissionCharged: 0n,
    commissionSchedule: { perOrder: 0n, perShare: 500n, bps: 0n, minimum: 100n, maximum: null },
    limitPrice: null,
  };
  const params = { impactCoefficientBps: TIER_PARAMS.mid.impactCoefficientBps, dailyVolume: TIER_PARAMS.mid.dailyVolume };
  const out: ModelCpu[] = [];
  for (const model of ['ideal', 'spread', 'realistic'] as const) {
    let sink = 0n;
    // A warm-up so the JIT has compiled the path before it is timed.
    for (let i = 0; i < 2_000; i++) sink += kindOf(planExecution(order, { model, params }, quote, 2_000));
    const start = performance.now();
    for (let i = 0; i < plans; i++) sink += kindOf(planExecution(order, { model, params }, quote, 2_000 + (i & 1023)));
    const ms = performance.now() - start;
    if (sink < 0n) throw new Error('unreachable: keeps the loop from being optimised away');
    out.push({ model, plans, usPerFill: (ms * 1000) / plans });
  }
  return out;
}

function kindOf(plan: ReturnType<typeof planExecution>): bigint {
  return plan.kind === 'fill' ? plan.quantity : 0n;
}

export interface FillModelsReport {
  timestamp: string;
  runs: { model: FillModelName; filledPerS: number; acceptedPerS: number; acceptToFillP50Ms: number | null; acceptToFillP99Ms: number | null; auditOk: boolean | null }[];
  /** realistic filled/s ÷ ideal filled/s. */
  ratio: number | null;
  targetMet: boolean | null;
  modelCpu: ModelCpu[];
}

/** Summarises the two runs and the CPU figures; saves bench/results/<time>-fill-models.{md,json}. */
export function fillModelsReport(reports: { model: FillModelName; report: BenchReport }[], modelCpu: ModelCpu[]): { report: FillModelsReport; markdown: string; files: { md: string; json: string } } {
  const runs = reports.map(({ model, report }) => ({
    model,
    filledPerS: report.papertrade.db.filledPerS,
    acceptedPerS: report.papertrade.db.acceptedPerS,
    acceptToFillP50Ms: report.papertrade.db.acceptToFillMs.count > 0 ? report.papertrade.db.acceptToFillMs.p50 : null,
    acceptToFillP99Ms: report.papertrade.db.acceptToFillMs.count > 0 ? report.papertrade.db.acceptToFillMs.p99 : null,
    auditOk: report.papertrade.audit.ran ? report.papertrade.audit.ok : null,
  }));
  const ideal = runs.find((r) => r.model === 'ideal');
  const realistic = runs.find((r) => r.model === 'realistic');
  const ratio = ideal && realistic && ideal.filledPerS > 0 ? realistic.filledPerS / ideal.filledPerS : null;
  const report: FillModelsReport = {
    timestamp: new Date().toISOString(),
    runs,
    ratio,
    targetMet: ratio === null ? null : ratio >= 1 - REALISTIC_THROUGHPUT_LOSS_MAX,
    modelCpu,
  };
  const fmt = (n: number | null, digits = 1) => (n === null ? 'n/a' : n.toFixed(digits));
  const markdown = [
    '## Fill models: market-order throughput, ideal beside realistic',
    '',
    '| model | filled/s | accepted/s | accept → fill p50 ms | p99 ms | audit |',
    '|---|---:|---:|---:|---:|---|',
    ...runs.map((r) => `| ${r.model} | ${fmt(r.filledPerS)} | ${fmt(r.acceptedPerS)} | ${fmt(r.acceptToFillP50Ms)} | ${fmt(r.acceptToFillP99Ms)} | ${r.auditOk === null ? 'not run' : r.auditOk ? 'clean' : 'VIOLATIONS'} |`),
    '',
    `realistic / ideal filled/s: ${ratio === null ? 'n/a' : ratio.toFixed(3)} (target ≥ ${(1 - REALISTIC_THROUGHPUT_LOSS_MAX).toFixed(2)}: ${report.targetMet === null ? 'n/a' : report.targetMet ? 'met' : 'NOT met'})`,
    '',
    '| model | µs per planned fill (in process) |',
    '|---|---:|',
    ...modelCpu.map((c) => `| ${c.model} | ${c.usPerFill.toFixed(2)} |`),
    '',
  ].join('\n');
  const files = saveReport(report, markdown, '-fill-models');
  return { report, markdown, files };
}

/**
 * Runs `runOne` (the market-order bench) once per model with FILL_MODEL set for its processes,
 * then reports both with the models' CPU. Returns the worst exit code of the runs.
 */
export async function runFillModels(runOne: (sink: (r: BenchReport) => void) => Promise<number>, say: (s: string) => void): Promise<{ code: number; markdown: string }> {
  const reports: { model: FillModelName; report: BenchReport }[] = [];
  let code = 0;
  const before = process.env.FILL_MODEL;
  try {
    for (const model of ['ideal', 'realistic'] as const) {
      say(`fill models: the market-order run under FILL_MODEL=${model}`);
      process.env.FILL_MODEL = model;
      code = Math.max(code, await runOne((report) => reports.push({ model, report })));
    }
  } finally {
    if (before === undefined) delete process.env.FILL_MODEL;
    else process.env.FILL_MODEL = before;
  }
  say('fill models: timing the models in process');
  const { markdown, files } = fillModelsReport(reports, measureModelCpu());
  say(`saved ${files.md} and ${files.json}`);
  return { code, markdown };
}
