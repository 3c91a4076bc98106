/**
 * Which servers a command uses, decided once before it starts:
 *
 * - PostgreSQL: DATABASE_URL when set; otherwise papertrade's own embedded server in the data
 *   directory — owned and started by `papertrade start`, attached to (or started for the
 *   command) by the tools (`migrate`, `user create`, `audit`).
 * - Redis: REDIS_URL when set; otherwise none — the parts Redis serves live in memory, which
 *   only works when every role runs in one process (`papertrade start`). `api`, `engine` and
 *   `feed` alone meet their peers through Redis and refuse to start without it.
 *
 * A server that is configured but does not answer is named with its address and what to do.
 */
import type { Config } from '../infra/config.js';
import {
  describeEmbedded,
  EmbeddedPostgresBusyError,
  EmbeddedPostgresError,
  startEmbeddedPostgres,
  type EmbeddedServer,
} from '../infra/embedded-postgres.js';
import type { Logger } from '../infra/logger.js';
import { addressOf, preflight, UnreachableError } from './preflight.js';

/** What a command is: every role in one process, one role alone, or a tool that needs only PostgreSQL. */
export type CommandKind = 'all-roles' | 'one-role' | 'tool';

export class CannotStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CannotStartError';
  }
}

export interface Servers {
  /** The configuration with DATABASE_URL resolved (the embedded server's URL when it was unset). */
  config: Config;
  /** The embedded PostgreSQL this command uses, when DATABASE_URL is unset. */
  embedded: EmbeddedServer | undefined;
  /** One line per server, for the start-up banner. */
  lines: string[];
}

export async function resolveServers(config: Config, kind: CommandKind, role: string, logger: Logger): Promise<Servers> {
  if (kind === 'one-role' && config.redisUrl === undefined) {
    throw new CannotStartError(
      `papertrade ${role} alone needs Redis, through which roles in separate processes meet: set REDIS_URL ` +
        '(and DATABASE_URL), or run `papertrade start`, which runs every role in one process without it',
    );
  }
  if (kind === 'one-role' && config.databaseUrl === undefined) {
    throw new CannotStartError(
      `papertrade ${role} alone needs a PostgreSQL server its peers share: set DATABASE_URL, or run \`papertrade start\``,
    );
  }
  try {
    await preflight(config, { postgres: config.databaseUrl !== undefined, redis: kind !== 'tool' && config.redisUrl !== undefined });
  } catch (err) {
    if (err instanceof UnreachableError) throw new CannotStartError(err.message);
    throw err;
  }
  const lines: string[] = [];
  let embedded: EmbeddedServer | undefined;
  let databaseUrl = config.databaseUrl;
  if (databaseUrl === undefined) {
    try {
      embedded = await startEmbeddedPostgres({
        dataDir: config.dataDir,
        mode: kind === 'tool' ? 'attach-or-start' : 'own',
        logger,
      });
    } catch (err: unknown) {
      if (err instanceof EmbeddedPostgresBusyError || err instanceof EmbeddedPostgresError) throw new CannotStartError((err as Error).message);
      throw err;
    }
    databaseUrl = embedded.url;
    lines.push(describeEmbedded(embedded));
  } else {
    lines.push(`PostgreSQL: ${addressOf(databaseUrl, 5432)}${new URL(databaseUrl).pathname} (DATABASE_URL)`);
  }
  if (kind !== 'tool') {
    lines.push(
      config.redisUrl === undefined
        ? 'Redis: none — the order pipe, price cache, channels and locks live in this process (set REDIS_URL to run roles apart)'
        : `Redis: ${addressOf(config.redisUrl, 6379)} (REDIS_URL)`,
    );
  }
  return { config: { ...config, databaseUrl }, embedded, lines };
}
