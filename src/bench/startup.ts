/**
 * `papertrade bench --startup`: how long `papertrade start` takes to be ready with nothing
 * configured (its own embedded PostgreSQL, the Redis parts in memory), and what it takes in
 * memory once started.
 *
 * Each of `runs` runs gets a fresh temporary data directory and times, from the spawn of
 * `node dist/cli/main.js start` (DATABASE_URL, REDIS_URL and the admin token unset, a free
 * PORT) to the first 200 of GET /ready:
 *
 * - the first start (initdb, the server's start, the migrations);
 * - after a SIGTERM (and the exit, PostgreSQL stopped by papertrade), a restart in the same
 *   directory;
 * - after a SIGKILL of papertrade (its PostgreSQL, in a session of its own, is left running as
 *   an orphan), a start after a crash: the new papertrade stops the orphaned server first,
 *   then starts its own (crash recovery included).
 *
 * After each first start it samples, for IDLE_SAMPLE_MS, papertrade's RSS and the PSS of every
 * process of its PostgreSQL cluster (cluster.ts), and keeps the peaks. Then, in the last run's
 * directory, it alternates restarts with `npm start`-like starts (`node scripts/build-if-stale.mjs
 * && node dist/cli/main.js start`, nothing changed: in a frozen copy of the sources, see
 * frozenCheckout) and real `npm start`s, to give the overhead of the build check (and of npm).
 * Every data directory is removed at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { embeddedCluster, papertradeIn, stopCluster } from './cluster.js';
import { freePort, installCleanup, killAllSync, readStatusKb, RssSampler, startProcess, stopProcess, tailFile, type ManagedProcess } from './processes.js';
import { saveReport } from './report.js';
import { readyStatus, zeroConfigEnv } from './zero-config.js';

/** How often /ready is polled while a start is timed (the resolution of the times). */
export const READY_POLL_MS = 10;
/** A start (initdb, crash recovery included) that is not ready within this is a failure. */
export const STARTUP_TIMEOUT_MS = 180_000;
/** How long the memory of an idle papertrade is sampled after its first start. */
export const IDLE_SAMPLE_MS = 5_000;
const IDLE_SAMPLE_INTERVAL_MS = 100;
/** Restarts, npm start-like starts and npm starts timed (each), at least. */
const NPM_PAIRS_MIN = 5;
/** A graceful stop longer than this is cut short with SIGKILL (and reported). */
const STOP_GRACE_MS = 30_000;

const PAPERTRADE = 'papertrade';
const PG = 'postgres';
const TOTAL = 'total: papertrade + its PostgreSQL';

export interface StartupOptions {
  runs: number;
  jsonOnly: boolean;
  root: string;
  mainJs: string;
  commit: string;
  cpu: string;
}

export interface TimeSummary {
  n: number;
  min: number;
  median: number;
  max: number;
}

/** min / median / max of samples (the median of an even count is the mean of the middle two), or null when there are none. */
export function summarizeTimes(values: readonly number[]): TimeSummary | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n: sorted.length, min: sorted[0]!, median, max: sorted[sorted.length - 1]! };
}

/** `median(a) − median(b)`, or null when either has no sample. */
export function medianOverhead(a: readonly number[], b: readonly number[]): number | null {
  const x = summarizeTimes(a);
  const y = summarizeTimes(b);
  return x && y ? x.median - y.median : null;
}

export interface StartupReport {
  timestamp: string;
  machine: { cpu: string; cores: number; ramGb: number };
  versions: { node: string; postgres: string; papertrade: string };
  settings: { runs: number; readyPollMs: number; idleSampleMs: number; env: Record<string, string> };
  /** Spawn → first 200 of /ready, ms. */
  startMs: { first: TimeSummary | null; restart: TimeSummary | null; afterKill: TimeSummary | null };
  /** SIGTERM → exit (papertrade stops its PostgreSQL before it exits), ms. */
  stopMs: TimeSummary | null;
  samples: { first: number[]; restart: number[]; afterKill: number[]; stop: number[] };
  /** Peaks over IDLE_SAMPLE_MS after each first start, MB. */
  idleMb: {
    papertrade: TimeSummary | null;
    postgres: TimeSummary | null;
    total: TimeSummary | null;
    /** papertrade's VmHWM at the end of the window: its peak since the spawn, the start included. */
    papertradeHwm: TimeSummary | null;
    postgresProcesses: number[];
  };
  /** Runs in which the SIGKILLed papertrade had left its PostgreSQL running, and in which the next start replaced it. */
  afterKill: { orphaned: number; replaced: number };
  npmStart: {
    /** Why it was not measured, or null. */
    skipped: string | null;
    /** `node scripts/build-if-stale.mjs` alone, nothing changed, ms. */
    buildCheckMs: TimeSummary | null;
    /** Restarts paired with the two below, in the same data directory, ms. */
    restartMs: TimeSummary | null;
    npmLikeMs: TimeSummary | null;
    npmMs: TimeSummary | null;
    /** median(npm-like) − median(restart), and median(npm start) − median(restart). */
    npmLikeOverheadMs: number | null;
    npmOverheadMs: number | null;
  };
  notes: string[];
}

/**
 * The stamp scripts/build-if-stale.mjs compares with dist/.build-stamp, computed the same way:
 * the number of files in src/ and web/ (tests excepted), tsconfig.json, tsconfig.build.json and
 * package-lock.json, and their newest modification time.
 */
export function buildStamp(root: string): string {
  const acc = { count: 0, newestMs: 0 };
  const scan = (entry: string) => {
    let st;
    try {
      st = statSync(entry);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(entry)) scan(path.join(entry, name));
    } else if (!entry.endsWith('.test.ts')) {
      acc.count += 1;
      acc.newestMs = Math.max(acc.newestMs, st.mtimeMs);
    }
  };
  for (const entry of ['src', 'web', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json']) scan(path.join(root, entry));
  return `${acc.count} ${acc.newestMs}`;
}

/** Whether scripts/build-if-stale.mjs would rebuild `root` now (its stamp does not match, or dist/ is missing). */
export function buildIsStale(root: string): boolean {
  const stampFile = path.join(root, 'dist', '.build-stamp');
  const previous = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : '';
  const built = existsSync(path.join(root, 'dist', 'cli', 'main.js')) && existsSync(path.join(root, 'dist', 'web', 'index.html'));
  return previous !== buildStamp(root) || !built;
}

/**
 * A frozen copy of what `npm start` reads before it starts papertrade — package.json,
 * scripts/build-if-stale.mjs and every input it scans (src/, web/, the tsconfigs, the lock file) —
 * with a matching dist/.build-stamp, and dist/cli/main.js a one-line module that imports the
 * real one. The build check runs there exactly as in the working tree when nothing changed (the
 * same script over the same files), and never rebuilds the real dist/ when a source changes
 * meanwhile (someone editing the tree while the bench runs).
 */
export function frozenCheckout(root: string, into: string): string {
  mkdirSync(path.join(into, 'scripts'), { recursive: true });
  mkdirSync(path.join(into, 'dist', 'cli'), { recursive: true });
  copyFileSync(path.join(root, 'scripts', 'build-if-stale.mjs'), path.join(into, 'scripts', 'build-if-stale.mjs'));
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json']) {
    if (existsSync(path.join(root, file))) copyFileSync(path.join(root, file), path.join(into, file));
  }
  cpSync(path.join(root, 'src'), path.join(into, 'src'), { recursive: true });
  if (existsSync(path.join(root, 'web'))) cpSync(path.join(root, 'web'), path.join(into, 'web'), { recursive: true });
  // The build check wants the dashboard built too; the page itself is served from the real dist/web.
  mkdirSync(path.join(into, 'dist', 'web'), { recursive: true });
  writeFileSync(path.join(into, 'dist', 'web', 'index.html'), '');
  writeFileSync(path.join(into, 'dist', 'cli', 'main.js'), `import ${JSON.stringify(pathToFileURL(path.join(root, 'dist', 'cli', 'main.js')).href)};\n`);
  writeFileSync(path.join(into, 'dist', '.build-stamp'), `${buildStamp(into)}\n`);
  return into;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export async function runStartup(o: StartupOptions): Promise<number> {
  const say = o.jsonOnly ? () => undefined : (s: string) => void process.stderr.write(`${s}\n`);
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'papertrade-startup-logs-'));
  const dataDirs: string[] = [];
  const live = new Set<ManagedProcess>();
  const notes: string[] = [];
  const cleanup = async () => {
    for (const dir of dataDirs) {
      if (!existsSync(dir)) continue;
      if (await stopCluster(dir, 2_000)) rmSync(dir, { recursive: true, force: true });
      else say(`warning: the embedded PostgreSQL of ${dir} is still running; the directory is kept`);
    }
  };
  installCleanup(cleanup);

  let seq = 0;
  /** Spawns a start and resolves once /ready answers 200, with the time since the spawn. */
  const timedStart = async (
    dataDir: string,
    label: string,
    command: string = process.execPath,
    args: string[] = [o.mainJs, 'start'],
    cwd = o.root,
  ): Promise<{ proc: ManagedProcess; ms: number }> => {
    const port = await freePort();
    const env = zeroConfigEnv(process.env, { dataDir, port });
    const logFile = path.join(logDir, `${String(++seq).padStart(2, '0')}-${label.replace(/[^a-z0-9]+/gi, '-')}.log`);
    const t0 = performance.now();
    const proc = startProcess(`papertrade (${label})`, command, args, env, logFile, cwd);
    live.add(proc);
    for (;;) {
      if ((await readyStatus(port)) === 200) return { proc, ms: performance.now() - t0 };
      if (proc.exited) {
        throw new Error(`${label}: papertrade exited (code ${proc.exitCode}, signal ${proc.exitSignal}) before /ready; log:\n${tailFile(logFile)}`);
      }
      if (performance.now() - t0 > STARTUP_TIMEOUT_MS) throw new Error(`${label}: /ready not 200 within ${STARTUP_TIMEOUT_MS} ms; log:\n${tailFile(logFile)}`);
      await sleep(READY_POLL_MS);
    }
  };
  /**
   * SIGTERM to papertrade itself and the wait for the exit of what was spawned; resolves with how
   * long it took. Only papertrade is signalled, not its process group: npm (and a shell) around
   * it would end at once, and the end of the group's leader SIGKILLs the group.
   */
  const timedStop = async (proc: ManagedProcess, dataDir: string): Promise<number> => {
    const t0 = performance.now();
    const target = papertradeIn(proc.pid) ?? proc.pid;
    try {
      process.kill(target, 'SIGTERM');
    } catch {
      // Gone already.
    }
    const ended = await Promise.race([proc.done.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    const ms = performance.now() - t0;
    stops.total += 1;
    if (!ended) {
      stops.cutShort += 1;
      await stopProcess(proc, 2_000);
    } else if (proc.exitCode !== 0) {
      stops.failed.push(`${proc.exitCode ?? proc.exitSignal} after ${fmt(ms)} ms`);
    }
    live.delete(proc);
    if (embeddedCluster(dataDir).pids.length > 0) {
      // papertrade exited before its PostgreSQL was gone: wait for it (or end it) before the next start.
      stops.leftPostgres += 1;
      await stopCluster(dataDir);
    }
    return ms;
  };

  const samples = { first: [] as number[], restart: [] as number[], afterKill: [] as number[], stop: [] as number[] };
  const idle = { papertrade: [] as number[], postgres: [] as number[], total: [] as number[], hwm: [] as number[], procs: [] as number[] };
  const afterKill = { orphaned: 0, replaced: 0 };
  const stops = { total: 0, cutShort: 0, failed: [] as string[], leftPostgres: 0 };
  const npm = {
    skipped: null as string | null,
    check: [] as number[],
    restart: [] as number[],
    npmLike: [] as number[],
    npm: [] as number[],
  };
  let pgVersion = 'unknown';

  try {
    for (let run = 1; run <= o.runs; run++) {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'papertrade-startup-'));
      dataDirs.push(dataDir);
      say(`run ${run}/${o.runs}: data directory ${dataDir}`);

      const first = await timedStart(dataDir, `run ${run} first start`);
      samples.first.push(first.ms);
      pgVersion = readPgVersion(dataDir) ?? pgVersion;
      // Idle: nothing but the feed's ticks. papertrade RSS, its cluster's PSS, and their simultaneous sum.
      const sampler = new RssSampler(
        () =>
          new Map([
            [PAPERTRADE, [first.proc.pid]],
            [PG, embeddedCluster(dataDir).pids],
          ]),
        IDLE_SAMPLE_INTERVAL_MS,
        new Set([PG]),
        new Map([[TOTAL, [PAPERTRADE, PG]]]),
      );
      sampler.start();
      await sleep(IDLE_SAMPLE_MS);
      sampler.sample();
      sampler.stop();
      const mb = (kb: number | undefined) => Math.round((kb ?? 0) / 102.4) / 10;
      idle.papertrade.push(mb(sampler.peakKb.get(PAPERTRADE)));
      idle.postgres.push(mb(sampler.peakKb.get(PG)));
      idle.total.push(mb(sampler.peakKb.get(TOTAL)));
      // (The kernel updates VmHWM lazily: it can lag the RSS just sampled.)
      idle.hwm.push(Math.max(mb(readStatusKb(first.proc.pid, 'VmHWM')), idle.papertrade.at(-1)!));
      idle.procs.push(embeddedCluster(dataDir).pids.length);
      say(
        `  first start ${fmt(first.ms)} ms; idle: papertrade ${idle.papertrade.at(-1)} MB + PostgreSQL ${idle.postgres.at(-1)} MB ` +
          `(${idle.procs.at(-1)} processes) = ${idle.total.at(-1)} MB`,
      );
      samples.stop.push(await timedStop(first.proc, dataDir));

      const restart = await timedStart(dataDir, `run ${run} restart`);
      samples.restart.push(restart.ms);
      say(`  restart ${fmt(restart.ms)} ms`);

      // A crash: papertrade SIGKILLed; its PostgreSQL runs on, orphaned.
      const orphan = embeddedCluster(dataDir).postmaster;
      process.kill(-restart.proc.pid, 'SIGKILL');
      await restart.proc.done;
      live.delete(restart.proc);
      const orphanAlive = orphan !== undefined && embeddedCluster(dataDir).postmaster === orphan;
      if (orphanAlive) afterKill.orphaned += 1;
      const crash = await timedStart(dataDir, `run ${run} start after SIGKILL`);
      samples.afterKill.push(crash.ms);
      const now = embeddedCluster(dataDir).postmaster;
      if (orphanAlive && now !== undefined && now !== orphan) afterKill.replaced += 1;
      say(`  start after SIGKILL ${fmt(crash.ms)} ms${orphanAlive ? ' (the orphaned PostgreSQL was stopped by it first)' : ''}`);
      samples.stop.push(await timedStop(crash.proc, dataDir));
    }

    // npm start: the build check in front of the same restart, nothing changed (in a frozen copy).
    const dataDir = dataDirs[dataDirs.length - 1]!;
    const checkout = frozenCheckout(o.root, mkdtempSync(path.join(os.tmpdir(), 'papertrade-startup-checkout-')));
    dataDirs.push(checkout); // removed at the end with the data directories
    if (buildIsStale(o.root)) {
      notes.push('The working tree had changed since the last build (someone editing it): the build check was timed on the frozen copy only, as always.');
    }
    say('npm start overhead: the build check alone, then restarts, npm start-like starts and npm starts, alternating...');
    const built = () => existsSync(path.join(checkout, 'dist', 'app.js'));
    const script = path.join(checkout, 'scripts', 'build-if-stale.mjs');
    for (let i = 0; i < Math.max(5, o.runs); i++) {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [script], { cwd: checkout, stdio: 'ignore' });
      const ms = performance.now() - t0;
      if (r.status !== 0 || built()) throw new Error(`the build check in ${checkout} did not exit at once (status ${r.status}): it rebuilt`);
      npm.check.push(ms);
    }
    const npmBin = whichNpm();
    if (!npmBin) notes.push('npm is not on PATH: `npm start` itself was not timed.');
    const node = JSON.stringify(process.execPath);
    // Starts vary by ±100 ms or more here: at least NPM_PAIRS_MIN of each, alternating.
    for (let i = 0; i < Math.max(NPM_PAIRS_MIN, o.runs); i++) {
      const plain = await timedStart(dataDir, `pair ${i + 1} restart`);
      npm.restart.push(plain.ms);
      await timedStop(plain.proc, dataDir);
      // The `start` script of package.json, with this node.
      const like = await timedStart(dataDir, `pair ${i + 1} npm-start-like`, '/bin/sh', ['-c', `${node} scripts/build-if-stale.mjs && exec ${node} dist/cli/main.js start`], checkout);
      npm.npmLike.push(like.ms);
      await timedStop(like.proc, dataDir);
      if (npmBin) {
        const real = await timedStart(dataDir, `pair ${i + 1} npm start`, npmBin, ['start', '--silent'], checkout);
        npm.npm.push(real.ms);
        await timedStop(real.proc, dataDir);
      }
      if (built()) throw new Error(`the build check in ${checkout} rebuilt during the measurement`);
    }
  } finally {
    await Promise.all([...live].map((p) => stopProcess(p, 10_000)));
    killAllSync();
    await cleanup();
  }

  if (stops.failed.length) {
    notes.push(
      `${stops.failed.length} of ${stops.total} graceful stops (SIGTERM to papertrade) ended with a non-zero exit: ${stops.failed.join('; ')} — ` +
        'papertrade exits 1 when its shutdown takes longer than SHUTDOWN_TIMEOUT_MS (10 s); see the logs. Its exit handler still sends ' +
        'PostgreSQL a fast shutdown.',
    );
  }
  if (stops.cutShort) notes.push(`${stops.cutShort} graceful stop(s) took over ${STOP_GRACE_MS / 1000} s and were cut short with SIGKILL.`);
  if (stops.leftPostgres) {
    notes.push(
      `After ${stops.leftPostgres} of ${stops.total} graceful stops papertrade had exited with its PostgreSQL still running (shutting down): ` +
        'the bench waited for it before the next start.',
    );
  }
  notes.push(
    'Each start: `node dist/cli/main.js start` spawned with DATABASE_URL, REDIS_URL, PAPERTRADE_REDIS_PREFIX and PAPERTRADE_ADMIN_TOKEN ' +
      `removed from the environment, PAPERTRADE_DATA_DIR the run's temporary directory, a free PORT and LOG_LEVEL=warn; the time runs ` +
      `from the spawn to the first 200 of GET /ready, polled every ${READY_POLL_MS} ms on a new connection each time.`,
  );
  notes.push(
    'First start: initdb of a new cluster, the server start, the database and the migrations. Restart: after SIGTERM and the exit ' +
      '(papertrade stops its PostgreSQL, a fast shutdown, before it exits). Start after SIGKILL: papertrade was SIGKILLed and its ' +
      `PostgreSQL, in a session of its own, was left running (${afterKill.orphaned} of ${o.runs} runs); the new start stops the orphaned ` +
      `server first (fast shutdown), then starts its own, with crash recovery (${afterKill.replaced} of ${o.runs} replaced).`,
  );
  notes.push(
    `Idle memory: peaks over ${IDLE_SAMPLE_MS / 1000} s after each first start, sampled every ${IDLE_SAMPLE_INTERVAL_MS} ms: papertrade's RSS, ` +
      'the PSS of every process of its cluster (the postmaster `postgres -D <dataDir>/pg` and all its children, from /proc; PSS ' +
      'counts shared buffers once), and the highest simultaneous sum of the two. Nothing but the feed ran (no orders).',
  );
  notes.push(`Logs of every start: ${logDir}. The data directories were removed.`);

  const report: StartupReport = {
    timestamp: new Date().toISOString(),
    machine: { cpu: o.cpu, cores: os.cpus().length, ramGb: os.totalmem() / 1024 ** 3 },
    versions: { node: process.version, postgres: pgVersion, papertrade: o.commit },
    settings: {
      runs: o.runs,
      readyPollMs: READY_POLL_MS,
      idleSampleMs: IDLE_SAMPLE_MS,
      env: Object.fromEntries(
        Object.entries(process.env).filter(
          (e): e is [string, string] => /^(PG_POOL_MAX|ENGINE_|FEED_|UV_THREADPOOL_SIZE|NODE_OPTIONS)/.test(e[0]) && e[1] !== undefined,
        ),
      ),
    },
    startMs: { first: summarizeTimes(samples.first), restart: summarizeTimes(samples.restart), afterKill: summarizeTimes(samples.afterKill) },
    stopMs: summarizeTimes(samples.stop),
    samples: {
      first: samples.first.map(Math.round),
      restart: samples.restart.map(Math.round),
      afterKill: samples.afterKill.map(Math.round),
      stop: samples.stop.map(Math.round),
    },
    idleMb: {
      papertrade: summarizeTimes(idle.papertrade),
      postgres: summarizeTimes(idle.postgres),
      total: summarizeTimes(idle.total),
      papertradeHwm: summarizeTimes(idle.hwm),
      postgresProcesses: idle.procs,
    },
    afterKill,
    npmStart: {
      skipped: npm.skipped,
      buildCheckMs: summarizeTimes(npm.check),
      restartMs: summarizeTimes(npm.restart),
      npmLikeMs: summarizeTimes(npm.npmLike),
      npmMs: summarizeTimes(npm.npm),
      npmLikeOverheadMs: medianOverhead(npm.npmLike, npm.restart),
      npmOverheadMs: medianOverhead(npm.npm, npm.restart),
    },
    notes,
  };
  const markdown = renderStartupMarkdown(report);
  const files = saveReport(report, markdown, '-startup');
  if (o.jsonOnly) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    process.stdout.write(`\n${markdown}\n`);
    say(`saved ${files.md} and ${files.json}`);
  }
  return 0;
}

function readPgVersion(dataDir: string): string | undefined {
  try {
    return readFileSync(path.join(dataDir, 'pg', 'PG_VERSION'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

function whichNpm(): string | undefined {
  try {
    return execFileSync('/bin/sh', ['-c', 'command -v npm'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function timeRow(name: string, t: TimeSummary | null, digits = 0): string {
  if (!t) return `| ${name} | 0 | n/a | n/a | n/a |`;
  return `| ${name} | ${t.n} | ${fmt(t.min, digits)} | ${fmt(t.median, digits)} | ${fmt(t.max, digits)} |`;
}

export function renderStartupMarkdown(r: StartupReport): string {
  const lines: string[] = [];
  lines.push(`# papertrade start times — ${r.timestamp}`);
  lines.push('');
  lines.push(
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${fmt(r.machine.ramGb, 1)} GB RAM. Node ${r.versions.node}, ` +
      `embedded PostgreSQL ${r.versions.postgres}, papertrade ${r.versions.papertrade}. ${r.settings.runs} run(s), each in a fresh data directory; ` +
      `\`papertrade start\` with nothing configured.` +
      (Object.keys(r.settings.env).length ? ` Environment: ${Object.entries(r.settings.env).map(([k, v]) => `${k}=${v}`).join(' ')}.` : ''),
  );
  lines.push('');
  lines.push('| spawn → `/ready` 200 (ms) | runs | min | median | max |');
  lines.push('|---|---:|---:|---:|---:|');
  lines.push(timeRow('**first start** (initdb, server start, migrations)', r.startMs.first));
  lines.push(timeRow('**restart** (after SIGTERM, same data directory)', r.startMs.restart));
  lines.push(timeRow('**start after SIGKILL** (stops the orphaned PostgreSQL first, crash recovery)', r.startMs.afterKill));
  lines.push(timeRow('graceful stop (SIGTERM → exit, PostgreSQL stopped)', r.stopMs));
  lines.push('');
  lines.push(`| idle after the first start, peak (MB) | runs | min | median | max |`);
  lines.push('|---|---:|---:|---:|---:|');
  lines.push(timeRow('papertrade (RSS)', r.idleMb.papertrade, 1));
  lines.push(timeRow(`its PostgreSQL (PSS of all ${[...new Set(r.idleMb.postgresProcesses)].join('/')} processes)`, r.idleMb.postgres, 1));
  lines.push(timeRow('**total: papertrade + its PostgreSQL**', r.idleMb.total, 1));
  lines.push(timeRow('papertrade VmHWM (its peak since the spawn, the start included)', r.idleMb.papertradeHwm, 1));
  lines.push('');
  const n = r.npmStart;
  if (n.skipped) lines.push(`npm start overhead: not measured — ${n.skipped}.`);
  else {
    lines.push('| `npm start` overhead, nothing changed (ms) | runs | min | median | max |');
    lines.push('|---|---:|---:|---:|---:|');
    lines.push(timeRow('`node scripts/build-if-stale.mjs` alone (exits at once)', n.buildCheckMs));
    lines.push(timeRow('restart: `node dist/cli/main.js start` → `/ready`', n.restartMs));
    lines.push(timeRow('`node scripts/build-if-stale.mjs && node dist/cli/main.js start` → `/ready`', n.npmLikeMs));
    lines.push(timeRow('`npm start` → `/ready` (npm itself too)', n.npmMs));
    lines.push('');
    const sign = (v: number | null) => (v === null ? 'n/a' : `${v >= 0 ? '+' : ''}${fmt(v)} ms`);
    lines.push(
      `Overhead on the median restart: the build check ${sign(n.npmLikeOverheadMs)}, \`npm start\` altogether ${sign(n.npmOverheadMs)} ` +
        '(restarts and both kinds of start alternate in the same data directory).',
    );
  }
  lines.push('');
  lines.push(
    `Samples (ms): first ${r.samples.first.join(', ')}; restart ${r.samples.restart.join(', ')}; after SIGKILL ${r.samples.afterKill.join(', ')}; ` +
      `stop ${r.samples.stop.join(', ')}.`,
  );
  lines.push('');
  for (const note of r.notes) lines.push(`- ${note}`);
  lines.push('');
  return lines.join('\n');
}
