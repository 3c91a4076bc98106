/**
 * A local Redis Cluster for tests: three masters (no replicas) on loopback ports, each a
 * `redis-server --cluster-enabled yes` in a temporary directory, joined with `redis-cli
 * --cluster create`. Nothing is kept on disk beyond the run; stop() kills the servers and
 * removes the directory.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './harness.js';

const run = promisify(execFile);
/** A cluster node's bus listens on its port + 10000: both must be free. */
const BUS_PORT_OFFSET = 10_000;
const CLUSTER_READY_MS = 20_000;
const COMMAND_TIMEOUT_MS = 15_000;

export interface LocalCluster {
  ports: number[];
  /** A seed URL (one node): the client finds the others. */
  url: string;
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` ports, each free with its bus port, from a random base between 20000 and 29999. */
async function freePorts(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 9_000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    const free = await Promise.all(ports.flatMap((p) => [portFree(p), portFree(p + BUS_PORT_OFFSET)]));
    if (free.every(Boolean)) return ports;
  }
  throw new Error('no free loopback ports for a Redis Cluster');
}

export async function startLocalCluster(nodes = 3): Promise<LocalCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'papertrade-redis-cluster-'));
  const ports = await freePorts(nodes);
  const children: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '5000',
        '--dir', dir,
        '--save', '',
        '--appendonly', 'no',
        '--logfile', path.join(dir, `redis-${port}.log`),
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await eventually(async () => ((await run('redis-cli', ['-p', String(port), 'ping'], { timeout: COMMAND_TIMEOUT_MS })).stdout.trim() === 'PONG' ? true : undefined), CLUSTER_READY_MS, 50);
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: COMMAND_TIMEOUT_MS,
    });
    // Every node must agree that all 16384 slots are served before a client can rely on it.
    for (const port of ports) {
      await eventually(async () => {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'], { timeout: COMMAND_TIMEOUT_MS });
        return /cluster_state:ok/.test(stdout) && /cluster_slots_ok:16384/.test(stdout) ? true : undefined;
      }, CLUSTER_READY_MS, 50);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, url: `redis://127.0.0.1:${ports[0]}`, stop };
}
