/**
 * What `--embedded` and `--startup` share: the environment of a `papertrade start` with nothing
 * configured (its own PostgreSQL in a data directory, the Redis parts in its memory) and a
 * cheap poll of its /ready.
 */
import http from 'node:http';

/** Variables that would point `start` at servers or at a token of the bench's: all removed. */
export const CONFIGURED_VARIABLES = ['DATABASE_URL', 'REDIS_URL', 'PAPERTRADE_REDIS_PREFIX', 'PAPERTRADE_ADMIN_TOKEN'] as const;

/**
 * The environment of a zero-configuration `papertrade start`: the bench's own environment
 * (tunables such as PG_POOL_MAX pass through) without DATABASE_URL, REDIS_URL, the Redis prefix
 * and the admin token, with the data directory, a loopback address, a port and quiet logs.
 */
export function zeroConfigEnv(base: NodeJS.ProcessEnv, opts: { dataDir: string; port: number; logLevel?: string }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of CONFIGURED_VARIABLES) delete env[name];
  env.PAPERTRADE_DATA_DIR = opts.dataDir;
  env.HOST = '127.0.0.1';
  env.PORT = String(opts.port);
  env.LOG_LEVEL = opts.logLevel ?? 'warn';
  return env;
}

/**
 * One GET /ready on 127.0.0.1:port without keep-alive (a fresh connection each time, as a
 * client that does not know whether the server is up yet): resolves with the status, or 0 when
 * nothing answers (connection refused, timeout).
 */
export function readyStatus(port: number, timeoutMs = 1_000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/ready', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}
