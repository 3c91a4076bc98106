/**
 * The README's resuming client, run as written: it is taken from the README, started as its own
 * Node process against a real server, killed, and started again. Whatever happened while it
 * was down must be printed exactly once, in order, after the restart — what the README
 * promises a copy-paste user.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestContext, eventually, newUser, startTestServer, type TestContext, type TestServer } from './harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside the repository, so that the client's `import 'ws'` finds node_modules.
const dir = path.join(root, 'node_modules', '.cache', `readme-client-${process.pid}`);

let ctx: TestContext;
let api: TestServer;

beforeAll(async () => {
  ctx = await createTestContext();
  api = await startTestServer(ctx);
  mkdirSync(dir, { recursive: true });
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await api?.server.close();
  await ctx?.close();
});

/** The js block of the README's events section (the one that says it resumes). */
function readmeClient(): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Events and the live stream'));
  const match = /```js\n([\s\S]*?)```/.exec(section.slice(section.indexOf('A client that resumes')));
  if (!match) throw new Error('the README has no resuming client');
  return match[1]!;
}

/** Runs the client; `lines` collects what it prints. */
function run(file: string, env: Record<string, string>): { child: ChildProcess; lines: string[] } {
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  return { child, lines };
}

/** Waits until the client has recorded `seq` as its position (it prints an event, then records it). */
async function recorded(file: string, seq: number): Promise<void> {
  await eventually(async () => (existsSync(file) && readFileSync(file, 'utf8') === String(seq) ? true : undefined));
}

async function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

async function deposit(userId: string, amount: string) {
  expect((await api.request('POST', `/users/${userId}/deposits`, { body: { amount } })).status).toBe(201);
}

it('prints the history, then live events, and after a kill and restart exactly what it missed', async () => {
  const u = await newUser(ctx, { cash: '100.00' });
  const file = path.join(dir, 'resume.mjs');
  writeFileSync(file, readmeClient());
  const env = { PT_URL: `${api.url.replace('http', 'ws')}/ws`, PT_KEY: u.apiKey, PT_SEQ_FILE: path.join(dir, 'last-seq.txt') };
  await deposit(u.id, '1.00');
  await deposit(u.id, '2.00');

  const first = run(file, env);
  try {
    await eventually(async () => (first.lines.length >= 2 ? true : undefined));
    await deposit(u.id, '3.00');
    await eventually(async () => (first.lines.length >= 3 ? true : undefined));
    await recorded(env.PT_SEQ_FILE, 3);
  } finally {
    await killed(first.child);
  }
  expect(first.lines.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['1 cash.deposit deposit', '2 cash.deposit deposit', '3 cash.deposit deposit']);

  // While it is down.
  await deposit(u.id, '4.00');
  await deposit(u.id, '5.00');
  const second = run(file, env);
  try {
    await eventually(async () => (second.lines.length >= 2 ? true : undefined));
    await deposit(u.id, '6.00');
    await eventually(async () => (second.lines.length >= 3 ? true : undefined));
  } finally {
    await killed(second.child);
  }
  expect(second.lines.map((l) => l.split(' ')[0])).toEqual(['4', '5', '6']);
});
