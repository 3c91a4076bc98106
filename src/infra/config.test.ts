import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
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

  it('reads the minimum notional exactly and the allowed CORS origins', () => {
    const c = loadConfig({ MIN_ORDER_NOTIONAL: '0.05', CORS_ORIGINS: 'http://localhost:5173,https://app.example.com' });
    expect(c.orderNotionalMin).toBe(5n);
    expect(c.corsOrigins).toEqual(['http://localhost:5173', 'https://app.example.com']);
  });
});
