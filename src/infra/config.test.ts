import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, engineInChild, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('runs the engine of start in a child with Redis and two cores, unless told otherwise', () => {
    const redis = { REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(engineInChild(loadConfig(redis), 2)).toBe(true);
    expect(engineInChild(loadConfig(redis), 1)).toBe(false);
    expect(engineInChild(loadConfig({ ...redis, START_ENGINE: 'child' }), 1)).toBe(true);
    expect(engineInChild(loadConfig({ ...redis, START_ENGINE: 'in-process' }), 8)).toBe(false);
    expect(engineInChild(loadConfig({}), 8)).toBe(false);
    expect(() => loadConfig({ START_ENGINE: 'child' })).toThrow(/START_ENGINE: child needs REDIS_URL/);
    expect(() => loadConfig({ START_ENGINE: 'threads' })).toThrow(/START_ENGINE: must be one of auto, child, in-process/);
    expect(loadConfig({ ORDER_STREAM_PARTITIONS: '4', REDIS_CLUSTER: 'true' })).toMatchObject({ orderStreamPartitions: 4, redisCluster: true });
    expect(() => loadConfig({ ORDER_STREAM_PARTITIONS: '65' })).toThrow(/ORDER_STREAM_PARTITIONS: must be an integer from 1 to 64/);
  });

  it('uses documented defaults and leaves the admin token to the data directory when none is set', () => {
    const c = loadConfig({});
    // Unset: an embedded PostgreSQL in the data directory and in-memory stand-ins for Redis.
    expect(c.databaseUrl).toBeUndefined();
    expect(c.redisUrl).toBeUndefined();
    expect(c.port).toBe(3000);
    expect(c.adminTokenSource).toBe('file');
    expect(c.dataDir).toBe(path.resolve('.papertrade'));
    expect(c.reservationBufferBps).toBe(500n);
    expect(c.orderNotionalMin).toBe(100n);
    expect(c.corsOrigins).toEqual([]);
  });

  it('reads every variable it is given', () => {
    const c = loadConfig({ PORT: '8080', PAPERTRADE_ADMIN_TOKEN: 'x'.repeat(20), LOG_LEVEL: 'debug', PG_POOL_MAX: '4' });
    expect([c.port, c.adminToken, c.adminTokenSource, c.logLevel, c.pgPoolMax]).toEqual([8080, 'x'.repeat(20), 'env', 'debug', 4]);
  });

  it('lists every bad variable at once', () => {
    let err: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x/y',
        LOG_LEVEL: 'loud',
        PAPERTRADE_ADMIN_TOKEN: 'short',
        MIN_ORDER_NOTIONAL: '0.001',
        CORS_ORIGINS: 'https://ok.example.com, https://bad.example.com/path',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const name of ['PORT', 'DATABASE_URL', 'LOG_LEVEL', 'PAPERTRADE_ADMIN_TOKEN', 'MIN_ORDER_NOTIONAL', 'bad.example.com/path']) {
      expect(problems).toContain(name);
    }
    expect(problems).not.toContain('ok.example.com');
  });

  it('reads the fill model, its latency, the commission schedule and the spread per tier', () => {
    const d = loadConfig({});
    expect(d.fills).toEqual({ model: 'ideal', seed: 42, latencyMs: 0, latencyJitterMs: 0 });
    expect(d.commission).toBeNull();
    expect(d.feedSpreadBps).toEqual({ large: 2n, mid: 10n, small: 40n });
    const c = loadConfig({
      FILL_MODEL: 'realistic',
      FILL_SEED: '7',
      FILL_LATENCY_MS: '150',
      FILL_LATENCY_JITTER_MS: '50',
      COMMISSION_PER_SHARE: '0.005',
      COMMISSION_MIN: '1.00',
      FEED_SPREAD_BPS: 'small=80, mid=12',
    });
    expect(c.fills).toEqual({ model: 'realistic', seed: 7, latencyMs: 150, latencyJitterMs: 50 });
    expect(c.commission).toEqual({ perOrder: 0n, perShare: 50n, bps: 0n, minimum: 100n, maximum: null });
    expect(c.feedSpreadBps).toEqual({ large: 2n, mid: 12n, small: 80n });
  });

  it('refuses a bad fill model, latency, commission or spread, naming the variable and what is allowed', () => {
    let err: unknown;
    try {
      loadConfig({ FILL_MODEL: 'perfect', FILL_LATENCY_MS: '20000', COMMISSION_BPS: '5000', FEED_SPREAD_BPS: 'huge=3,mid=2000' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const words of ['FILL_MODEL', 'FILL_LATENCY_MS', 'COMMISSION_BPS', 'FEED_SPREAD_BPS: "huge=3"', 'FEED_SPREAD_BPS: "mid=2000"', 'from 0 to 1000']) {
      expect(problems).toContain(words);
    }
  });

  it('reads the minimum notional exactly and the allowed CORS origins', () => {
    const c = loadConfig({ MIN_ORDER_NOTIONAL: '0.05', CORS_ORIGINS: 'http://localhost:5173,https://app.example.com' });
    expect(c.orderNotionalMin).toBe(5n);
    expect(c.corsOrigins).toEqual(['http://localhost:5173', 'https://app.example.com']);
  });
});
