#!/usr/bin/env node
// Builds dist/ from src/ only when a source changed since the last build, so `npm start` does
// not spend seconds in the TypeScript compiler at every start. The last build's inputs are
// kept in dist/.build-stamp (the newest modification time and the number of sources); a
// build is also done when dist/ is missing, and always with --force. Stays plain JavaScript: it runs before anything
// is compiled.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stampFile = path.join(root, 'dist', '.build-stamp');
// Files in these count as inputs of the build (tests are not compiled into dist/). web/ is the
// dashboard, built by Vite into dist/web/.
const inputs = [path.join(root, 'src'), path.join(root, 'web'), path.join(root, 'tsconfig.json'), path.join(root, 'tsconfig.build.json'), path.join(root, 'package-lock.json')];

function scan(entry, acc) {
  const st = statSync(entry, { throwIfNoEntry: false });
  if (!st) return acc;
  if (st.isDirectory()) {
    for (const name of readdirSync(entry)) scan(path.join(entry, name), acc);
  } else if (!entry.endsWith('.test.ts')) {
    acc.count += 1;
    acc.newestMs = Math.max(acc.newestMs, st.mtimeMs);
  }
  return acc;
}

const current = inputs.reduce((acc, entry) => scan(entry, acc), { count: 0, newestMs: 0 });
const stamp = `${current.count} ${current.newestMs}`;
const previous = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : '';
// `--force` (npm run build:force) builds whatever the stamp says, and writes the stamp too.
const force = process.argv.includes('--force');
const built = existsSync(path.join(root, 'dist', 'cli', 'main.js')) && existsSync(path.join(root, 'dist', 'web', 'index.html'));
if (!force && previous === stamp && built) process.exit(0);

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
// The dashboard: a static page (about a second to build), served by the api role at `/`.
const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
const web = spawnSync(process.execPath, [vite, 'build', '--config', path.join(root, 'web', 'vite.config.ts')], { stdio: 'inherit' });
if (web.status !== 0) process.exit(web.status ?? 1);
writeFileSync(stampFile, `${stamp}\n`);
