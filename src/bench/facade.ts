/**
 * `papertrade bench --facade`: what the Alpaca-compatible facade costs beside the native API.
 * The same market-order workload (same users, tickers, sell ratio, quantity, warm-up and
 * duration) runs against `POST /orders` and against `POST /v2/orders` (Alpaca's body and its
 * `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers) in alternating windows of one run, each
 * measured as the plain bench measures (runMarket in bench.ts), and the report sets them side
 * by side: ok orders/s, accept latency, filled orders/s and the api process's CPU per order,
 * whose ratio facade / native is held against FACADE_CPU_RATIO_MAX.
 *
 * The windows go native → facade in odd rounds and facade → native in even ones (ABBA), so a
 * drift of the machine or of the database's size over the run falls on both sides alike.
 */
import { keyPair } from '../services/users/api-keys.js';
import type { LatencySummary } from './report.js';
import { LatencyRecorder } from './stats.js';

/** The issue's target: the facade costs the api at most 15 % more CPU per order. */
export const FACADE_CPU_RATIO_MAX = 1.15;
export const FACADE_ROUNDS_DEFAULT = 2;
export const FACADE_ROUNDS_MAX = 10;
export const NATIVE_PATH = '/orders';
export const FACADE_PATH = '/v2/orders';

export type FacadeTarget = 'native' | 'facade';

export interface FacadeOptions {
  /** Rounds of one native and one facade window each. */
  rounds: number;
}

/** The windows in the order they run: round r is native → facade when r is odd, facade → native when even. */
export function facadeSchedule(rounds: number): { target: FacadeTarget; round: number }[] {
  const out: { target: FacadeTarget; round: number }[] = [];
  for (let round = 1; round <= rounds; round++) {
    const pair: FacadeTarget[] = round % 2 === 1 ? ['native', 'facade'] : ['facade', 'native'];
    for (const target of pair) out.push({ target, round });
  }
  return out;
}

/** A window's label in the progress line and the report. */
export function facadeLabel(target: FacadeTarget, round: number): string {
  return `${target === 'native' ? `native POST ${NATIVE_PATH}` : `facade POST ${FACADE_PATH}`}, round ${round}`;
}

/** The headers an Alpaca client sends with a user's key: its two halves, as SDKs send them. */
export function alpacaHeaders(apiKey: string): Readonly<Record<string, string>> {
  const { keyId, secretKey } = keyPair(apiKey);
  return { 'apca-api-key-id': keyId, 'apca-api-secret-key': secretKey, 'content-type': 'application/json' };
}

/** Alpaca's order request for a market order of `qty` shares. */
export function alpacaOrderBody(symbol: string, qty: string, side: 'buy' | 'sell'): string {
  return `{"symbol":"${symbol}","qty":"${qty}","side":"${side}","type":"market","time_in_force":"day"}`;
}

/** One measured window, as bench.ts hands it over. */
export interface FacadeWindowInput {
  target: FacadeTarget;
  round: number;
  durationS: number;
  /** 2xx answers to requests scheduled inside the window. */
  httpOk: number;
  latency: LatencyRecorder;
  accepted: number;
  filled: number;
  acceptToFillMs: LatencySummary;
  /** CPU of the process serving HTTP over the window (null: not measured). */
  apiCpuMs: number | null;
  /** papertrade + PostgreSQL (the report's first total row), and the whole machine. */
  totalCpuMs: number | null;
  machineCpuMs: number | null;
  errors: Record<string, number>;
  sides: { buy: number; sell: number };
}

export interface FacadeWindow {
  target: FacadeTarget;
  round: number;
  path: string;
  okPerS: number;
  acceptedPerS: number;
  filledPerS: number;
  latencyMs: LatencySummary;
  acceptToFillMs: LatencySummary;
  apiCpuMsPerOrder: number | null;
  totalCpuMsPerOrder: number | null;
  machineCpuMsPerOrder: number | null;
  errors: Record<string, number>;
  sides: { buy: number; sell: number };
}

/** One side over all its windows: rates over their summed durations, CPU per order as summed CPU ÷ summed orders. */
export interface FacadeSide {
  path: string;
  windows: number;
  httpOk: number;
  accepted: number;
  filled: number;
  okPerS: number;
  acceptedPerS: number;
  filledPerS: number;
  /** HTTP accept latency over every window's samples together. */
  latencyMs: LatencySummary;
  apiCpuMs: number | null;
  apiCpuMsPerOrder: number | null;
  totalCpuMsPerOrder: number | null;
  machineCpuMsPerOrder: number | null;
  errors: Record<string, number>;
}

export interface FacadePart {
  rounds: number;
  /** The windows in the order they ran: "native 1", "facade 1", "facade 2", "native 2", ... */
  order: string[];
  /** The process whose CPU is compared (the api role, or the one process of --all-in-one / --embedded). */
  apiProcess: string;
  requests: { native: string; facade: string };
  native: FacadeSide;
  facade: FacadeSide;
  /** facade api CPU per order ÷ native api CPU per order. */
  cpuPerOrderRatio: number | null;
  /** The same ratio within each round (the spread between rounds). */
  cpuPerOrderRatioByRound: (number | null)[];
  okPerSRatio: number | null;
  target: number;
  /** cpuPerOrderRatio ≤ target (null: no ratio). */
  pass: boolean | null;
  windows: FacadeWindow[];
  notes: string[];
}

const perOrder = (cpuMs: number | null, orders: number) => (cpuMs === null || orders <= 0 ? null : cpuMs / orders);
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b <= 0 ? null : a / b);

function summarize(recorder: LatencyRecorder): LatencySummary {
  const p = recorder.percentiles();
  const r = (v: number) => Math.round(v * 100) / 100;
  return { count: p.count, p50: r(p.p50), p95: r(p.p95), p99: r(p.p99), max: r(p.max), exact: p.exact };
}

function sumOrNull(values: (number | null)[]): number | null {
  return values.some((v) => v === null) ? null : values.reduce<number>((s, v) => s + v!, 0);
}

function side(target: FacadeTarget, inputs: FacadeWindowInput[]): FacadeSide {
  const w = inputs.filter((i) => i.target === target);
  const seconds = w.reduce((s, i) => s + i.durationS, 0);
  const latency = new LatencyRecorder();
  for (const i of w) latency.merge(i.latency);
  const errors: Record<string, number> = {};
  for (const i of w) for (const [k, v] of Object.entries(i.errors)) errors[k] = (errors[k] ?? 0) + v;
  const httpOk = w.reduce((s, i) => s + i.httpOk, 0);
  const accepted = w.reduce((s, i) => s + i.accepted, 0);
  const filled = w.reduce((s, i) => s + i.filled, 0);
  const apiCpuMs = w.length ? sumOrNull(w.map((i) => i.apiCpuMs)) : null;
  return {
    path: target === 'native' ? NATIVE_PATH : FACADE_PATH,
    windows: w.length,
    httpOk,
    accepted,
    filled,
    okPerS: seconds > 0 ? httpOk / seconds : 0,
    acceptedPerS: seconds > 0 ? accepted / seconds : 0,
    filledPerS: seconds > 0 ? filled / seconds : 0,
    latencyMs: summarize(latency),
    apiCpuMs: apiCpuMs === null ? null : Math.round(apiCpuMs),
    apiCpuMsPerOrder: perOrder(apiCpuMs, accepted),
    totalCpuMsPerOrder: perOrder(w.length ? sumOrNull(w.map((i) => i.totalCpuMs)) : null, accepted),
    machineCpuMsPerOrder: perOrder(w.length ? sumOrNull(w.map((i) => i.machineCpuMs)) : null, accepted),
    errors,
  };
}

/** The facade section of the report from its measured windows (in the order they ran). */
export function facadePart(args: {
  inputs: FacadeWindowInput[];
  rounds: number;
  apiProcess: string;
  requests: { native: string; facade: string };
  notes?: string[];
}): FacadePart {
  const { inputs, rounds } = args;
  const native = side('native', inputs);
  const facade = side('facade', inputs);
  const cpuPerOrderRatio = ratio(facade.apiCpuMsPerOrder, native.apiCpuMsPerOrder);
  const byRound: (number | null)[] = [];
  for (let r = 1; r <= rounds; r++) {
    const inRound = inputs.filter((i) => i.round === r);
    byRound.push(ratio(side('facade', inRound).apiCpuMsPerOrder, side('native', inRound).apiCpuMsPerOrder));
  }
  const notes = [...(args.notes ?? [])];
  for (const s of [native, facade]) {
    const n = Object.values(s.errors).reduce((a, b) => a + b, 0);
    if (n > 0) notes.push(`POST ${s.path}: ${n} errors or non-2xx answers in its windows (${Object.entries(s.errors).map(([k, v]) => `${k} ×${v}`).join(', ')}).`);
  }
  return {
    rounds,
    order: inputs.map((i) => `${i.target} ${i.round}`),
    apiProcess: args.apiProcess,
    requests: args.requests,
    native,
    facade,
    cpuPerOrderRatio,
    cpuPerOrderRatioByRound: byRound,
    okPerSRatio: ratio(facade.okPerS, native.okPerS),
    target: FACADE_CPU_RATIO_MAX,
    pass: cpuPerOrderRatio === null ? null : cpuPerOrderRatio <= FACADE_CPU_RATIO_MAX,
    windows: inputs.map((i) => ({
      target: i.target,
      round: i.round,
      path: i.target === 'native' ? NATIVE_PATH : FACADE_PATH,
      okPerS: i.httpOk / i.durationS,
      acceptedPerS: i.accepted / i.durationS,
      filledPerS: i.filled / i.durationS,
      latencyMs: summarize(i.latency),
      acceptToFillMs: i.acceptToFillMs,
      apiCpuMsPerOrder: perOrder(i.apiCpuMs, i.accepted),
      totalCpuMsPerOrder: perOrder(i.totalCpuMs, i.accepted),
      machineCpuMsPerOrder: perOrder(i.machineCpuMs, i.accepted),
      errors: i.errors,
      sides: i.sides,
    })),
    notes,
  };
}

const fmt = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (v: number) => (v >= 100 ? fmt(v, 0) : v >= 10 ? fmt(v, 1) : fmt(v, 2));
const opt = (v: number | null, digits: number) => (v === null ? 'n/a' : fmt(v, digits));

/** The facade section of the markdown report. */
export function renderFacadeMarkdown(f: FacadePart): string[] {
  const lines: string[] = [];
  const n = f.native;
  const a = f.facade;
  const r = (x: number | null, y: number | null) => opt(ratio(x, y), 3);
  lines.push(`## Alpaca facade: POST ${FACADE_PATH} beside POST ${NATIVE_PATH}`);
  lines.push('');
  lines.push(
    `${f.rounds} round(s) of one window each, in this order: ${f.order.join(', ')}; every window is measured like the one above ` +
      '(same users, workload, warm-up and duration). CPU is that of the process serving HTTP' +
      ` (${f.apiProcess}), per order accepted in the window (from the database).`,
  );
  lines.push('');
  lines.push(`| all windows of each side | native POST ${NATIVE_PATH} | facade POST ${FACADE_PATH} | facade / native |`);
  lines.push('|---|---:|---:|---:|');
  lines.push(`| ok orders/s (HTTP 2xx) | ${fmt(n.okPerS)} | ${fmt(a.okPerS)} | ${r(a.okPerS, n.okPerS)} |`);
  lines.push(`| filled orders/s (database) | ${fmt(n.filledPerS)} | ${fmt(a.filledPerS)} | ${r(a.filledPerS, n.filledPerS)} |`);
  lines.push(`| HTTP accept p50 (ms) | ${ms(n.latencyMs.p50)} | ${ms(a.latencyMs.p50)} | ${r(a.latencyMs.p50, n.latencyMs.p50)} |`);
  lines.push(`| HTTP accept p99 (ms) | ${ms(n.latencyMs.p99)} | ${ms(a.latencyMs.p99)} | ${r(a.latencyMs.p99, n.latencyMs.p99)} |`);
  lines.push(
    `| **${f.apiProcess}: CPU ms / order** | **${opt(n.apiCpuMsPerOrder, 3)}** | **${opt(a.apiCpuMsPerOrder, 3)}** | **${opt(f.cpuPerOrderRatio, 3)}** |`,
  );
  lines.push(`| papertrade + PostgreSQL: CPU ms / order | ${opt(n.totalCpuMsPerOrder, 3)} | ${opt(a.totalCpuMsPerOrder, 3)} | ${r(a.totalCpuMsPerOrder, n.totalCpuMsPerOrder)} |`);
  lines.push(`| whole machine: CPU ms / order | ${opt(n.machineCpuMsPerOrder, 3)} | ${opt(a.machineCpuMsPerOrder, 3)} | ${r(a.machineCpuMsPerOrder, n.machineCpuMsPerOrder)} |`);
  lines.push(`| orders accepted / errors | ${fmt(n.accepted)} / ${fmt(Object.values(n.errors).reduce((s, v) => s + v, 0))} | ${fmt(a.accepted)} / ${fmt(Object.values(a.errors).reduce((s, v) => s + v, 0))} | |`);
  lines.push('');
  const verdict = f.pass === null ? 'n/a (no CPU per order)' : f.pass ? 'PASS' : 'FAIL';
  lines.push(
    `**Facade CPU per order ÷ native: ${opt(f.cpuPerOrderRatio, 3)} (target ≤ ${fmt(f.target, 2)}): ${verdict}.** ` +
      `By round: ${f.cpuPerOrderRatioByRound.map((x) => opt(x, 3)).join(', ')}.`,
  );
  lines.push('');
  lines.push(`| window | ok/s | filled/s | accept p50 / p99 (ms) | accept → FILLED p99 (ms) | ${f.apiProcess} CPU ms / order | whole machine CPU ms / order | buy / sell |`);
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const w of f.windows) {
    lines.push(
      `| ${w.target} ${w.round} (POST ${w.path}) | ${fmt(w.okPerS)} | ${fmt(w.filledPerS)} | ${ms(w.latencyMs.p50)} / ${ms(w.latencyMs.p99)} | ` +
        `${ms(w.acceptToFillMs.p99)} | ${opt(w.apiCpuMsPerOrder, 3)} | ${opt(w.machineCpuMsPerOrder, 3)} | ${fmt(w.sides.buy)} / ${fmt(w.sides.sell)} |`,
    );
  }
  lines.push('');
  lines.push(`- Native request: \`${f.requests.native}\`.`);
  lines.push(`- Facade request: \`${f.requests.facade}\`.`);
  for (const note of f.notes) lines.push(`- ${note}`);
  lines.push('');
  return lines;
}
