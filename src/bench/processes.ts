/**
 * Child processes of a benchmark run and what the bench reads about processes from /proc.
 *
 * Every child is spawned in its own process group (`detached`), so stopping it signals the whole
 * group and nothing it started can outlive the bench. Every child is registered until it exits;
 * `killAllSync` (wired to exit, SIGINT, SIGTERM and uncaught errors by the bench) SIGKILLs
 * whatever is still registered.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { createServer } from 'node:net';

const children = new Set<ManagedProcess>();

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  exited: boolean;
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  /** Resolves when the process has exited. */
  done: Promise<void>;
}

/** Starts `command args` in a new process group with its stdout and stderr appended to `logFile`. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  cwd?: string,
): ManagedProcess {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { env, detached: true, stdio: ['ignore', fd, fd], ...(cwd ? { cwd } : {}) });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  let resolveDone!: () => void;
  const managed: ManagedProcess = {
    name,
    child,
    pid: child.pid,
    logFile,
    exited: false,
    exitCode: null,
    exitSignal: null,
    done: new Promise<void>((resolve) => (resolveDone = resolve)),
  };
  child.on('exit', (code, signal) => {
    managed.exited = true;
    managed.exitCode = code;
    managed.exitSignal = signal;
    children.delete(managed);
    // The group may still hold grandchildren; nothing of ours should outlive its leader.
    signalGroup(managed.pid, 'SIGKILL');
    resolveDone();
  });
  child.on('error', () => {
    managed.exited = true;
    children.delete(managed);
    resolveDone();
  });
  children.add(managed);
  return managed;
}

function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the process group, then SIGKILL after `graceMs` if it is still there. */
export async function stopProcess(p: ManagedProcess, graceMs = 10_000): Promise<void> {
  if (p.exited) return;
  signalGroup(p.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
  const finished = await Promise.race([p.done.then(() => false), timedOut]);
  clearTimeout(timer);
  if (finished) {
    signalGroup(p.pid, 'SIGKILL');
    await Promise.race([p.done, new Promise((r) => setTimeout(r, 2_000))]);
  }
}

/** Synchronous last resort (usable in an 'exit' handler): SIGKILL every registered group. */
export function killAllSync(): void {
  for (const p of children) signalGroup(p.pid, 'SIGKILL');
  children.clear();
}

let cleanupInstalled = false;
/**
 * Once per process: SIGKILL every registered child at exit; on SIGINT or SIGTERM, SIGKILL them,
 * run `onSignal` (bounded to 3 s) and exit 130.
 */
export function installCleanup(onSignal: () => Promise<void>): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAllSync);
  const handler = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${signal}: stopping every child process\n`);
    killAllSync();
    const timer = setTimeout(() => process.exit(130), 3_000);
    void onSignal().finally(() => {
      clearTimeout(timer);
      process.exit(130);
    });
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

export function runningChildren(): ManagedProcess[] {
  return [...children];
}

/** The last `bytes` of a log file, for error messages. */
export function tailFile(file: string, bytes = 4_000): string {
  try {
    const size = statSync(file).size;
    const fd = openSync(file, 'r');
    try {
      const len = Math.min(size, bytes);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// /proc

let clockTicks: number | undefined;

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (`getconf CLK_TCK`, usually 100). */
export function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime, in milliseconds. */
  cpuMs: number;
}

/** utime + stime of a process, or undefined when it is gone. */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself contain spaces or parentheses.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const comm = text.slice(open + 1, close);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15 (1-based).
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { pid, comm, ppid, cpuMs: ((utime + stime) * 1000) / clkTck() };
}

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM), or undefined. */
/**
 * CPU milliseconds of this process's children that have exited and been waited for (cutime +
 * cstime of /proc/self/stat): what a short-lived child such as pgbench used, read after it ends.
 */
export function readReapedChildrenCpuMs(): number | undefined {
  try {
    const text = readFileSync('/proc/self/stat', 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3: cutime is field 16, cstime field 17 (1-based).
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / clkTck();
  } catch {
    return undefined;
  }
}

export function readStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Proportional set size in kB: shared pages (PostgreSQL's shared buffers) are split among the
 * processes mapping them, so summing PSS over backends does not count shared memory N times.
 */
export function readPssKb(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const m = /^Pss:\s+(\d+) kB/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Samples the resident set size of named processes every `intervalMs`, keeping each one's peak. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  readonly peakKb = new Map<string, number>();

  constructor(
    private readonly targets: () => Map<string, number[]>,
    private readonly intervalMs = 250,
    /** Use PSS (for PostgreSQL, whose backends share memory) instead of RSS for these names. */
    private readonly pssFor: ReadonlySet<string> = new Set(),
    /**
     * Sums kept as peaks of their own (name → the names it adds up), from the same sample: the
     * peak of a sum is the highest simultaneous total, not the sum of the separate peaks.
     */
    private readonly sums: ReadonlyMap<string, readonly string[]> = new Map(),
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  sample(): void {
    const now = new Map<string, number>();
    for (const [name, pids] of this.targets()) {
      let total = 0;
      for (const pid of pids) total += (this.pssFor.has(name) ? readPssKb(pid) : readStatusKb(pid, 'VmRSS')) ?? 0;
      now.set(name, total);
      if (total > (this.peakKb.get(name) ?? 0)) this.peakKb.set(name, total);
    }
    for (const [name, members] of this.sums) {
      let total = 0;
      for (const m of members) total += now.get(m) ?? 0;
      if (total > (this.peakKb.get(name) ?? 0)) this.peakKb.set(name, total);
    }
  }

  /** Raises a peak to a value known otherwise (VmHWM read at the end). */
  observe(name: string, kb: number): void {
    if (kb > (this.peakKb.get(name) ?? 0)) this.peakKb.set(name, kb);
  }
}

/** CPU time all processes of the machine spent busy (user, nice, system, irq, softirq, steal), ms. */
export function readMachineBusyMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1000) / clkTck();
  } catch {
    return undefined;
  }
}
