import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildIsStale, frozenCheckout, medianOverhead, renderStartupMarkdown, summarizeTimes, type StartupReport } from './startup.js';
import { CONFIGURED_VARIABLES, zeroConfigEnv } from './zero-config.js';

describe('summarizeTimes', () => {
  it('gives min, median and max', () => {
    expect(summarizeTimes([300, 100, 200])).toEqual({ n: 3, min: 100, median: 200, max: 300 });
    expect(summarizeTimes([4, 1, 3, 2])).toEqual({ n: 4, min: 1, median: 2.5, max: 4 });
    expect(summarizeTimes([7])).toEqual({ n: 1, min: 7, median: 7, max: 7 });
  });

  it('is null without samples, and leaves its input alone', () => {
    expect(summarizeTimes([])).toBeNull();
    const samples = [3, 1, 2];
    summarizeTimes(samples);
    expect(samples).toEqual([3, 1, 2]);
  });

  it('gives overheads as a difference of medians', () => {
    expect(medianOverhead([1_100, 1_200, 1_150], [1_000, 1_050, 990])).toBe(150);
    expect(medianOverhead([], [1])).toBeNull();
  });
});

describe('zeroConfigEnv', () => {
  it('removes what points start at servers and sets the data directory and port', () => {
    const env = zeroConfigEnv(
      {
        DATABASE_URL: 'postgres://x',
        REDIS_URL: 'redis://x',
        PAPERTRADE_REDIS_PREFIX: 'p:',
        PAPERTRADE_ADMIN_TOKEN: 'secret-secret-secret',
        PG_POOL_MAX: '6',
        PATH: '/usr/bin',
      },
      { dataDir: '/tmp/d', port: 4321 },
    );
    for (const name of CONFIGURED_VARIABLES) expect(env).not.toHaveProperty(name);
    expect(env).toMatchObject({ PAPERTRADE_DATA_DIR: '/tmp/d', PORT: '4321', HOST: '127.0.0.1', LOG_LEVEL: 'warn', PG_POOL_MAX: '6', PATH: '/usr/bin' });
  });
});

describe('buildIsStale', () => {
  let root: string | undefined;
  afterEach(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('matches the stamp scripts/build-if-stale.mjs writes, and sees a changed source', () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'pt-stamp-'));
    mkdirSync(path.join(root, 'src'));
    mkdirSync(path.join(root, 'dist', 'cli'), { recursive: true });
    writeFileSync(path.join(root, 'dist', 'cli', 'main.js'), '');
    mkdirSync(path.join(root, 'dist', 'web'), { recursive: true });
    writeFileSync(path.join(root, 'dist', 'web', 'index.html'), '');
    writeFileSync(path.join(root, 'src', 'a.ts'), 'a');
    writeFileSync(path.join(root, 'src', 'a.test.ts'), 'not an input');
    writeFileSync(path.join(root, 'tsconfig.json'), '{}');
    const newest = Math.max(statSync(path.join(root, 'src', 'a.ts')).mtimeMs, statSync(path.join(root, 'tsconfig.json')).mtimeMs);
    writeFileSync(path.join(root, 'dist', '.build-stamp'), `2 ${newest}\n`);
    expect(buildIsStale(root)).toBe(false);
    writeFileSync(path.join(root, 'src', 'b.ts'), 'b');
    expect(buildIsStale(root)).toBe(true);
  });
});

describe('frozenCheckout', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('is a copy in which scripts/build-if-stale.mjs finds nothing changed and exits at once', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'pt-root-'));
    const into = mkdtempSync(path.join(os.tmpdir(), 'pt-frozen-'));
    dirs.push(root, into);
    mkdirSync(path.join(root, 'scripts'));
    mkdirSync(path.join(root, 'src', 'cli'), { recursive: true });
    copyFileSync(path.join(process.cwd(), 'scripts', 'build-if-stale.mjs'), path.join(root, 'scripts', 'build-if-stale.mjs'));
    writeFileSync(path.join(root, 'package.json'), '{"type":"module"}');
    writeFileSync(path.join(root, 'tsconfig.json'), '{}');
    writeFileSync(path.join(root, 'src', 'cli', 'main.ts'), 'export {};');
    writeFileSync(path.join(root, 'src', 'cli', 'main.test.ts'), 'export {};');
    frozenCheckout(root, into);
    expect(buildIsStale(into)).toBe(false);
    // The real script agrees: it exits 0 without compiling (a build would fail here: no tsconfig.build.json).
    const r = spawnSync(process.execPath, [path.join(into, 'scripts', 'build-if-stale.mjs')], { cwd: into, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(existsSync(path.join(into, 'dist', 'cli', 'main.js'))).toBe(true);
    // A source changed in the copy: stale again.
    writeFileSync(path.join(into, 'src', 'cli', 'other.ts'), 'export {};');
    expect(buildIsStale(into)).toBe(true);
  });
});

describe('renderStartupMarkdown', () => {
  it('renders every table, or says why the npm start overhead was not measured', () => {
    const t = (v: number) => ({ n: 3, min: v, median: v, max: v });
    const report: StartupReport = {
      timestamp: '2026-12-01T00:00:00.000Z',
      machine: { cpu: 'cpu', cores: 2, ramGb: 4 },
      versions: { node: 'v20', postgres: '17', papertrade: 'abc' },
      settings: { runs: 3, readyPollMs: 10, idleSampleMs: 5_000, env: {} },
      startMs: { first: t(4_000), restart: t(1_500), afterKill: t(2_000) },
      stopMs: t(400),
      samples: { first: [4_000], restart: [1_500], afterKill: [2_000], stop: [400] },
      idleMb: { papertrade: t(120), postgres: t(60), total: t(180), papertradeHwm: t(130), postgresProcesses: [7, 7, 7] },
      afterKill: { orphaned: 3, replaced: 3 },
      npmStart: {
        skipped: null,
        buildCheckMs: t(60),
        restartMs: t(1_500),
        npmLikeMs: t(1_560),
        npmMs: t(1_900),
        npmLikeOverheadMs: 60,
        npmOverheadMs: 400,
      },
      notes: ['a note'],
    };
    const md = renderStartupMarkdown(report);
    expect(md).toContain('| **first start** (initdb, server start, migrations) | 3 | 4,000 | 4,000 | 4,000 |');
    expect(md).toContain('| **total: papertrade + its PostgreSQL** | 3 | 180.0 | 180.0 | 180.0 |');
    expect(md).toContain('the build check +60 ms, `npm start` altogether +400 ms');
    expect(md).toContain('- a note');
    const skipped = renderStartupMarkdown({ ...report, npmStart: { ...report.npmStart, skipped: 'sources changed' } });
    expect(skipped).toContain('npm start overhead: not measured — sources changed.');
  });
});
