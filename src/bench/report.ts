/**
 * The benchmark report: one JSON document (everything measured) and a markdown rendering of
 * it, both saved under bench/results/<timestamp>.{json,md}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderFacadeMarkdown, type FacadePart } from './facade.js';
import type { Percentiles } from './stats.js';

export const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

export interface ProcessCpu {
  process: string;
  cpuMs: number;
  msPerOrder: number | null;
  /** Average cores busy over the window. */
  cores: number;
  /** Peak resident memory (PostgreSQL: summed PSS of the bench's backends), MB. */
  peakMb: number | null;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  exact: boolean;
}

/** PostgreSQL cluster counters over a measured window (null: not measured). */
export interface PgSummary {
  walBytesPerOrder: number | null;
  checkpoints: number | null;
  deadlocks: number | null;
}

export interface BenchReport {
  timestamp: string;
  machine: { cpu: string; cores: number; ramGb: number };
  versions: { node: string; postgres: string; redis: string; papertrade: string };
  settings: {
    /** embedded: one `start` with nothing configured (its own PostgreSQL, the Redis parts in memory). */
    mode: 'roles' | 'all-in-one' | 'embedded';
    /** The papertrade processes started. */
    roles: string[];
    loop: 'open' | 'closed';
    rate: number | 'max';
    concurrency: number;
    durationS: number;
    warmupS: number;
    users: number;
    sellRatio: number;
    quantity: number;
    seedShares: number;
    tickers: string[];
    pgPoolMax: number;
    engineBatchSizeMax: number;
    feed: 'role' | 'seeded by the bench' | 'in the start process';
    database: string;
    postgresSettings: Record<string, string>;
    redisPrefix: string;
    env: Record<string, string>;
  };
  papertrade: {
    http: { sent: number; ok: number; acceptedPerS: number; latencyMs: LatencySummary; unfinished: number };
    db: {
      accepted: number;
      filled: number;
      acceptedPerS: number;
      filledPerS: number;
      rejected: Record<string, number>;
      acceptToFillMs: LatencySummary;
    };
    sides: { buy: number; sell: number };
    /** Per process over the steady window; "per order" = per order accepted in the window. */
    processes: ProcessCpu[];
    /** Cluster-wide over the window (other databases' writes included). */
    postgres: PgSummary;
    errors: Record<string, number>;
    drain: { ms: number; pendingLeft: number };
    audit: { ran: boolean; ok: boolean | null; violations: Record<string, number>; note: string | null };
    logs: string;
  };
  floor: null | {
    acceptConnections: number;
    fillConnections: number;
    batchSize: number;
    durationS: number;
    warmupS: number;
    accepted: number;
    filled: number;
    acceptedPerS: number;
    filledPerS: number;
    acceptLatencyMs: LatencySummary;
    acceptToFillMs: LatencySummary;
    refused: number;
    errors: Record<string, number>;
    unfilled: number;
    processes: ProcessCpu[];
    postgres: PgSummary;
  };
  /**
   * The same SQL run by pgbench (native client, prepared statements): accept alone, fills
   * alone, and the two combined as 1 / (1/accept + 1/fill). The physical floor: no Node in it.
   */
  pgbenchFloor?: null | PgbenchFloorPart;
  /** papertrade filled/s ÷ the pgbench floor's combined orders/s. */
  ratioToPgbenchFloor?: number | null;
  /** Orders per request (--batch; 1: POST /orders). */
  batch?: number;
  /** --embedded only: how long `start` took to answer /ready (initdb included) and its cluster's size. */
  embedded?: null | { firstStartMs: number; clusterProcesses: number };
  /** papertrade filled/s ÷ floor filled/s. */
  ratioToFloor: number | null;
  notes: string[];
  /** --facade only: native POST /orders beside the Alpaca facade's POST /v2/orders (facade.ts). */
  facade?: FacadePart;
}

export interface PgbenchPhase {
  clients: number;
  seconds: number;
  perS: number;
  latencyAvgMs: number | null;
  /** CPU per order of pgbench itself, and of the rest of the machine (PostgreSQL, on a quiet machine). */
  pgbenchMsPerOrder: number | null;
  restOfMachineMsPerOrder: number | null;
}

export interface PgbenchFloorPart {
  version: string;
  users: number;
  accept: PgbenchPhase & { accepted: number; refused: number };
  fill: PgbenchPhase & { batch: number; filled: number; exhausted: boolean };
  combinedPerS: number;
}

export function summarize(p: Percentiles): LatencySummary {
  const r = (v: number) => Math.round(v * 100) / 100;
  return { count: p.count, p50: r(p.p50), p95: r(p.p95), p99: r(p.p99), max: r(p.max), exact: p.exact };
}

const fmt = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (v: number) => (v >= 100 ? fmt(v, 0) : v >= 10 ? fmt(v, 1) : fmt(v, 2));

function latencyRow(name: string, l: LatencySummary): string {
  return `| ${name} | ${fmt(l.count)} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.max)} |`;
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([k, v]) => `${k}: ${fmt(v)}`).join('; ') : 'none';
}

/** The report's line on the machine and the versions (every scenario's report has it). */
export function machineLine(r: Pick<BenchReport, 'machine' | 'versions'>): string {
  return (
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${fmt(r.machine.ramGb, 1)} GB RAM. ` +
    `Node ${r.versions.node}, PostgreSQL ${r.versions.postgres}, Redis ${r.versions.redis}, papertrade ${r.versions.papertrade}.`
  );
}

export function renderMarkdown(r: BenchReport): string {
  const s = r.settings;
  const p = r.papertrade;
  const lines: string[] = [];
  lines.push(`# papertrade benchmark — ${r.timestamp}`);
  lines.push('');
  lines.push(machineLine(r));
  lines.push('');
  lines.push(
    `Settings: ${
      s.mode === 'embedded'
        ? 'embedded (one `papertrade start` with nothing configured: its own PostgreSQL, the Redis parts in its memory)'
        : s.mode === 'all-in-one'
          ? 'all-in-one (`papertrade start`)'
          : `separate roles (${s.roles.join(', ')})`
    }, ` +
      `${s.loop === 'open' ? `open loop at ${fmt(s.rate as number)} orders/s over ${s.concurrency} connections` : `closed loop, ${s.concurrency} requests in flight`}, ` +
      `${s.durationS} s measured after ${s.warmupS} s warm-up, ${fmt(s.users)} users, sell ratio ${s.sellRatio}, ` +
      `${s.quantity} share(s) per order, tickers ${s.tickers.join(' ')}, PG_POOL_MAX ${s.pgPoolMax}, ` +
      `ENGINE_BATCH_SIZE_MAX ${s.engineBatchSizeMax}, prices: ${s.feed}` +
      (r.floor ? `; floor: ${r.floor.acceptConnections} accepting + ${r.floor.fillConnections} filling connections, ${r.floor.batchSize} orders per fill transaction, ${r.floor.durationS} s after ${r.floor.warmupS} s.` : '.'),
  );
  lines.push(`PostgreSQL: ${Object.entries(s.postgresSettings).map(([k, v]) => `${k}=${v}`).join(' ')}.`);
  if (Object.keys(s.env).length) lines.push(`Environment: ${Object.entries(s.env).map(([k, v]) => `${k}=${v}`).join(' ')}.`);
  lines.push('');
  lines.push('| throughput (steady window, from the database) | orders/s |');
  lines.push('|---|---:|');
  lines.push(`| papertrade accepted (2xx) | ${fmt(p.db.acceptedPerS)} |`);
  lines.push(`| papertrade filled | ${fmt(p.db.filledPerS)} |`);
  if (r.floor) {
    lines.push(`| SQL floor accepted | ${fmt(r.floor.acceptedPerS)} |`);
    lines.push(`| SQL floor filled | ${fmt(r.floor.filledPerS)} |`);
    lines.push(`| **ratio papertrade filled / floor filled** | **${r.ratioToFloor === null ? 'n/a' : fmt(r.ratioToFloor, 3)}** |`);
  }
  const pgb = r.pgbenchFloor;
  if (pgb) {
    lines.push(`| pgbench floor: accept alone (${pgb.accept.clients} clients) | ${fmt(pgb.accept.perS)} |`);
    lines.push(`| pgbench floor: fill alone (${pgb.fill.clients} clients, ${pgb.fill.batch} a batch) | ${fmt(pgb.fill.perS)} |`);
    lines.push(`| pgbench floor: combined, 1 / (1/accept + 1/fill) | ${fmt(pgb.combinedPerS)} |`);
    lines.push(`| **ratio papertrade filled / pgbench floor** | **${r.ratioToPgbenchFloor == null ? 'n/a' : fmt(r.ratioToPgbenchFloor, 3)}** |`);
  }
  lines.push('');
  lines.push('| latency (ms) | samples | p50 | p95 | p99 | max |');
  lines.push('|---|---:|---:|---:|---:|---:|');
  lines.push(latencyRow(`HTTP accept${s.loop === 'open' ? ' (from scheduled send)' : ''}`, p.http.latencyMs));
  lines.push(latencyRow('accept → FILLED (filled_at − created_at)', p.db.acceptToFillMs));
  if (r.floor) {
    lines.push(latencyRow('floor accept statement', r.floor.acceptLatencyMs));
    lines.push(latencyRow('floor accept → FILLED', r.floor.acceptToFillMs));
  }
  lines.push('');
  lines.push('| process | CPU ms / order | cores busy | peak memory (MB; RSS, PostgreSQL PSS) |');
  lines.push('|---|---:|---:|---:|');
  for (const c of p.processes) {
    // "total: …" rows add up the rows above them: bold, so the sum a reader looks for stands out.
    const b = c.process.startsWith('total:') ? '**' : '';
    lines.push(
      `| ${b}${c.process}${b} | ${b}${c.msPerOrder === null ? 'n/a' : fmt(c.msPerOrder, 3)}${b} | ${fmt(c.cores, 2)} | ${c.peakMb === null ? '' : `${b}${fmt(c.peakMb, 0)}${b}`} |`,
    );
  }
  if (r.floor && r.floor.processes.length) {
    lines.push('');
    lines.push('| SQL floor: process | CPU ms / order | cores busy |');
    lines.push('|---|---:|---:|');
    for (const c of r.floor.processes) {
      lines.push(`| ${c.process} | ${c.msPerOrder === null ? 'n/a' : fmt(c.msPerOrder, 3)} | ${fmt(c.cores, 2)} |`);
    }
  }
  if (pgb) {
    lines.push('');
    lines.push('| pgbench floor: phase | orders/s | seconds | avg latency (ms) | pgbench CPU ms / order | rest of the machine (PostgreSQL) CPU ms / order |');
    lines.push('|---|---:|---:|---:|---:|---:|');
    const cell = (v: number | null, d: number) => (v === null ? 'n/a' : fmt(v, d));
    for (const [name, ph] of [['accept', pgb.accept], ['fill', pgb.fill]] as const) {
      lines.push(`| ${name} | ${fmt(ph.perS)} | ${fmt(ph.seconds, 1)} | ${cell(ph.latencyAvgMs, 2)} | ${cell(ph.pgbenchMsPerOrder, 3)} | ${cell(ph.restOfMachineMsPerOrder, 3)} |`);
    }
  }
  lines.push('');
  lines.push(`- HTTP: ${fmt(p.http.sent)} sent, ${fmt(p.http.ok)} 2xx (${fmt(p.http.acceptedPerS)}/s 2xx in the window), ${fmt(p.http.unfinished)} unfinished.`);
  lines.push(`- Orders in the window (database): ${fmt(p.db.accepted)} accepted, ${fmt(p.db.filled)} filled; sides sent: ${fmt(p.sides.buy)} buy, ${fmt(p.sides.sell)} sell.`);
  const wal = (w: PgSummary) =>
    `${w.walBytesPerOrder === null ? 'n/a' : fmt(w.walBytesPerOrder)} WAL bytes per order, ${w.checkpoints ?? 'n/a'} checkpoint(s) ` +
    `and ${w.deadlocks ?? 'n/a'} deadlock(s) in the window`;
  lines.push(`- PostgreSQL (whole cluster): papertrade ${wal(p.postgres)}${r.floor ? `; floor ${wal(r.floor.postgres)}` : ''}.`);
  lines.push(`- Errors and non-2xx: ${counts(p.errors)}. Rejected orders: ${counts(p.db.rejected)}.`);
  lines.push(`- Drain: ${p.drain.pendingLeft === 0 ? `no order PENDING ${fmt(p.drain.ms)} ms after the end` : `${fmt(p.drain.pendingLeft)} orders still PENDING after ${fmt(p.drain.ms)} ms`}.`);
  const audit = p.audit;
  lines.push(
    `- Audit: ${!audit.ran ? `not run (${audit.note ?? 'unavailable'})` : audit.ok ? 'ok, every invariant holds' : `VIOLATIONS: ${counts(audit.violations)}`}.`,
  );
  if (r.floor) {
    lines.push(
      `- Floor: ${fmt(r.floor.accepted)} accepted, ${fmt(r.floor.filled)} filled in the window; ${fmt(r.floor.refused)} refused; errors: ${counts(r.floor.errors)}; ${fmt(r.floor.unfilled)} left unfilled.`,
    );
  }
  if (pgb) {
    lines.push(
      `- pgbench floor (${pgb.version}, ${fmt(pgb.users)} users, \`-M prepared\`): ${fmt(pgb.accept.accepted)} accepted, ${fmt(pgb.accept.refused)} refused; ` +
        `${fmt(pgb.fill.filled)} filled${pgb.fill.exhausted ? ' (a partition ran dry: the fill rate is taken up to then)' : ''}.`,
    );
  }
  for (const note of r.notes) lines.push(`- ${note}`);
  lines.push('');
  if (r.facade) lines.push(...renderFacadeMarkdown(r.facade));
  return lines.join('\n');
}

/** Writes <timestamp><suffix>.json and .md under bench/results/; returns their paths. */
export function saveReport(r: { timestamp: string }, markdown: string, suffix = ''): { json: string; md: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const base = r.timestamp.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z') + suffix;
  const json = `${RESULTS_DIR}${base}.json`;
  const md = `${RESULTS_DIR}${base}.md`;
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(md, markdown);
  return { json, md };
}
