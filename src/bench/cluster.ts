/**
 * The processes of an embedded PostgreSQL cluster, found in /proc: the postmaster is the
 * `postgres` binary whose command line names the cluster directory (`postgres -D <dataDir>/pg
 * …`, as src/infra/embedded-postgres.ts spawns it); every other process of the cluster (the
 * checkpointer, the WAL writer, every backend) is its child, renamed "postgres: papertrade: …".
 *
 * The parsing is pure (tested in cluster.test.ts); `readProcs` is the only part that reads /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { clusterDirOf } from '../infra/embedded-postgres.js';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** argv, from /proc/<pid>/cmdline (NUL-separated). */
  argv: string[];
}

/** /proc/<pid>/cmdline as argv: NUL-separated, with a trailing NUL. */
export function parseCmdline(raw: string): string[] {
  if (raw === '') return [];
  const parts = raw.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** The parent PID from the text of /proc/<pid>/stat (the command name may hold spaces and parentheses). */
export function parsePpid(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const ppid = Number(stat.slice(close + 2).split(' ')[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/** The data directory a postgres command line names with -D / --pgdata, or undefined. */
export function pgDataDirOf(argv: readonly string[]): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '-D' || a === '--pgdata') && i + 1 < argv.length) return argv[i + 1];
    if (a.startsWith('--pgdata=')) return a.slice('--pgdata='.length);
    if (a.startsWith('-D') && a.length > 2) return a.slice(2);
  }
  return undefined;
}

/** Whether `argv` is a postmaster (the `postgres` binary, not a renamed child) of the cluster in `pgDir`. */
export function isPostmasterOf(argv: readonly string[], pgDir: string): boolean {
  if (argv.length === 0 || path.basename(argv[0]!) !== 'postgres') return false;
  const dir = pgDataDirOf(argv);
  return dir !== undefined && path.resolve(dir) === path.resolve(pgDir);
}

export interface ClusterProcesses {
  /** The postmaster, when one runs. */
  postmaster: number | undefined;
  /** The postmaster and all its children (background processes and backends), sorted. */
  pids: number[];
}

/** The processes of the cluster in `pgDir` among `procs`. */
export function clusterProcesses(procs: readonly ProcInfo[], pgDir: string): ClusterProcesses {
  const postmasters = procs.filter((p) => isPostmasterOf(p.argv, pgDir)).map((p) => p.pid);
  if (postmasters.length === 0) return { postmaster: undefined, pids: [] };
  const roots = new Set(postmasters);
  const pids = procs.filter((p) => roots.has(p.pid) || roots.has(p.ppid)).map((p) => p.pid);
  pids.sort((a, b) => a - b);
  // Two postmasters of one directory cannot both run; a second one is a start that is failing.
  return { postmaster: Math.min(...postmasters), pids };
}

/** Every process of this machine with its parent and command line (the ones gone meanwhile are skipped). */
export function readProcs(): ProcInfo[] {
  const procs: ProcInfo[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return procs;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = parsePpid(readFileSync(`/proc/${name}/stat`, 'utf8'));
      if (ppid === undefined) continue;
      procs.push({ pid: Number(name), ppid, argv: parseCmdline(readFileSync(`/proc/${name}/cmdline`, 'utf8')) });
    } catch {
      // Ended between readdir and read.
    }
  }
  return procs;
}

/** The processes of the embedded cluster of a papertrade data directory (`<dataDir>/pg`, or where pg-location says), now. */
export function embeddedCluster(dataDir: string): ClusterProcesses {
  return clusterProcesses(readProcs(), clusterDirOf(dataDir));
}

function isPostgresProcess(pid: number): boolean {
  try {
    const argv0 = parseCmdline(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))[0] ?? '';
    return path.basename(argv0) === 'postgres' || argv0.startsWith('postgres:');
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

/**
 * Stops what is left of the embedded cluster of `dataDir` (a server orphaned by a papertrade
 * process that was killed): a fast shutdown (SIGINT to the postmaster), then SIGKILL of every
 * process of the cluster after `graceMs`. Resolves with whether none is left.
 */
export async function stopCluster(dataDir: string, graceMs = 5_000): Promise<boolean> {
  const first = embeddedCluster(dataDir);
  if (first.postmaster === undefined) return true;
  signal(first.postmaster, 'SIGINT');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (embeddedCluster(dataDir).pids.length === 0) return true;
    await sleep(50);
  }
  // The children of a postmaster that died first are no longer found by their parent: the ones
  // seen at the start go too, if they still run the postgres binary (never a reused PID).
  for (const pid of new Set([...first.pids, ...embeddedCluster(dataDir).pids])) {
    if (isPostgresProcess(pid)) signal(pid, 'SIGKILL');
  }
  await sleep(500);
  return embeddedCluster(dataDir).pids.length === 0;
}

/** `root` and every process below it (children, grandchildren, …) among `procs`. */
export function processTree(procs: readonly ProcInfo[], root: number): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of procs) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const self = procs.find((p) => p.pid === root);
  if (self) out.push(self);
  const queue = [root];
  const seen = new Set(queue);
  while (queue.length) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      if (seen.has(child.pid)) continue;
      seen.add(child.pid);
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** Whether argv is `node … dist/cli/main.js start` (the papertrade process itself, not npm or a shell around it). */
export function isPapertradeStart(argv: readonly string[]): boolean {
  const i = argv.findIndex((a) => a === 'dist/cli/main.js' || a.endsWith('/dist/cli/main.js'));
  return i > 0 && argv[i + 1] === 'start';
}

/** The papertrade process in the tree of `root` (root itself when it is one), now. */
export function papertradeIn(root: number): number | undefined {
  return processTree(readProcs(), root).find((p) => isPapertradeStart(p.argv))?.pid;
}
