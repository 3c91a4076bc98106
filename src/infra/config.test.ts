import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_DATABASE_URL, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('uses documented defaults and generates an admin token when none is set', () => {
    const c = loadConfig({});
    expect(c.databaseUrl).toBe(DEFAULT_DATABASE_URL);
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.port).toBe(3000);
    expect(c.adminTokenGenerated).toBe(true);
    expect(c.adminToken.length).toBeGreaterThanOrEqual(32);
    expect(c.reservationBufferBps).toBe(500n);
  });

  it('reads every variable it is given', () => {
    const c = loadConfig({ PORT: '8080', PAPERTRADE_ADMIN_TOKEN: 'x'.repeat(20), LOG_LEVEL: 'debug', PG_POOL_MAX: '4' });
    expect([c.port, c.adminToken, c.adminTokenGenerated, c.logLevel, c.pgPoolMax]).toEqual([8080, 'x'.repeat(20), false, 'debug', 4]);
  });

  it('lists every bad variable at once', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x/y', LOG_LEVEL: 'loud', PAPERTRADE_ADMIN_TOKEN: 'short' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const name of ['PORT', 'DATABASE_URL', 'LOG_LEVEL', 'PAPERTRADE_ADMIN_TOKEN']) expect(problems).toContain(name);
  });
});
