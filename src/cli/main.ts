/**
 * The `papertrade` command line. Every subcommand parses the environment into a Config first;
 * a bad variable stops it with the list of everything wrong.
 */
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { closeContext, createContext, type AppContext } from '../app.js';
import { ConfigError, engineInChild, loadConfig, type Config } from '../infra/config.js';
import { ensureDatabase, migrateToLatest } from '../infra/postgres.js';
import { parseCash } from '../core/money.js';
import { createUser } from '../services/users/users.service.js';
import { runApi, runEngine, runEngineChild, runFeed, type StopFn } from './roles.js';
import { AdminTokenFileError, resolveAdminToken } from './admin-token.js';
import { CannotStartError, resolveServers, type CommandKind, type Servers } from './servers.js';
import { createLogger } from '../infra/logger.js';
import { AUDIT_EXIT_FAILED, auditCommand, nonNegativeInt, positiveInt } from './audit.js';
import { addMembersCommand, createClassCommand } from './classes.js';

/** How long a graceful shutdown may take before the process exits anyway. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/** This CLI's compiled entry point: what `start` forks its engine child from. */
const CLI_PATH = fileURLToPath(import.meta.url);

/** Exit code of a command that cannot start: bad configuration or a server it needs is unreachable. */
export const EXIT_CANNOT_START = 2;

function fail(message: string, exitCode = EXIT_CANNOT_START): never {
  process.stderr.write(`papertrade: ${message}\n`);
  process.exit(exitCode);
}

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

/**
 * The servers a command uses (embedded PostgreSQL when DATABASE_URL is unset, Redis or memory);
 * exits 2 with one line per problem. With `banner`, says on stderr which servers are used.
 */
async function servers(cfg: Config, kind: CommandKind, role: string, banner: boolean, exitCode = EXIT_CANNOT_START): Promise<Servers> {
  let resolved: Servers;
  try {
    resolved = await resolveServers(cfg, kind, role, createLogger(cfg.logLevel, role));
  } catch (err) {
    if (err instanceof CannotStartError) fail(err.message, exitCode);
    throw err;
  }
  if (banner) process.stderr.write(`\n${resolved.lines.map((l) => `  ${l}`).join('\n')}\n`);
  return resolved;
}

/**
 * Runs a tool against PostgreSQL (attaching to the embedded server, or starting it for the
 * command); `unreachableExit` is its exit code when PostgreSQL cannot be reached.
 */
async function withTool<T>(role: string, run: (ctx: AppContext) => Promise<T>, unreachableExit = EXIT_CANNOT_START): Promise<T> {
  const { config: cfg, embedded } = await servers(config(), 'tool', role, false, unreachableExit);
  const ctx = createContext(cfg, role);
  try {
    return await run(ctx);
  } finally {
    await closeContext(ctx);
    await embedded?.stop();
  }
}

async function prepareDatabase(ctx: AppContext): Promise<void> {
  if (await ensureDatabase(ctx.config.databaseUrl!)) ctx.logger.info('created database');
  const applied = await migrateToLatest(ctx.db);
  if (applied.length) ctx.logger.info({ applied }, 'applied migrations');
}

/** The admin token, for the roles that check it: from the environment, or the data directory's file. */
async function withAdminToken(cfg: Config): Promise<Config> {
  let resolved;
  try {
    resolved = await resolveAdminToken(cfg);
  } catch (err) {
    if (err instanceof AdminTokenFileError) fail(err.message);
    throw err;
  }
  if (resolved.file) {
    // Printed on stderr, so it is seen but not mixed into piped output.
    process.stderr.write(
      `\nadmin token${resolved.created ? ' (generated now)' : ''}: ${resolved.config.adminToken}\n` +
        `  kept in ${resolved.file}; set PAPERTRADE_ADMIN_TOKEN to use your own\n\n`,
    );
  }
  return resolved.config;
}

async function runRoles(
  role: string,
  starters: ((ctx: AppContext) => Promise<StopFn>)[],
  opts: { migrate: boolean; adminToken: boolean },
): Promise<void> {
  const resolved = await servers(config(), role === 'all' ? 'all-roles' : 'one-role', role, true);
  let cfg = resolved.config;
  const embedded = resolved.embedded;
  if (opts.adminToken) cfg = await withAdminToken(cfg);
  const ctx = createContext(cfg, role);
  if (opts.migrate) await prepareDatabase(ctx);
  const stops: StopFn[] = [];
  let stopping = false;
  let starting: Promise<void> = Promise.resolve();
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    ctx.logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      ctx.logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    // A signal during start-up lets the role being started finish starting, then stops it too.
    await starting.catch(() => undefined);
    // Stop in reverse start order: stop taking requests before the workers behind them.
    for (const stop of stops.reverse()) await stop().catch((err) => ctx.logger.error({ err }, 'stop failed'));
    await closeContext(ctx);
    // PostgreSQL goes last, once nothing uses it any more.
    await embedded?.stop().catch((err: unknown) => ctx.logger.error({ err }, 'embedded PostgreSQL stop failed'));
    process.exit(0);
  };
  // Installed before anything starts, so a signal at any moment is a graceful stop.
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  starting = (async () => {
    for (const start of starters) {
      if (stopping) return;
      stops.push(await start(ctx));
    }
  })();
  await starting;
}

export function buildCli(): Command {
  const program = new Command('papertrade')
    .description('Self-hosted paper-trading brokerage (configuration: environment variables, see README)')
    .showHelpAfterError();

  program
    .command('start')
    .description('create the database if needed, migrate, and run every role in one process')
    .action(() =>
      runRoles(
        'all',
        // With Redis, the engine runs in a child process: its JavaScript and the api's then use two cores.
        [runFeed, (ctx) => (engineInChild(ctx.config) ? runEngineChild(ctx, CLI_PATH) : runEngine(ctx)), runApi],
        { migrate: true, adminToken: true },
      ),
    );

  program
    .command('api')
    .description('run the HTTP API role')
    .option('--migrate', 'create the database and run migrations first', false)
    .action((opts: { migrate: boolean }) => runRoles('api', [runApi], { migrate: opts.migrate, adminToken: true }));

  program
    .command('engine')
    .description('run the trading engine role: consume the order stream, execute trades, reconcile')
    .action(() => runRoles('engine', [runEngine], { migrate: false, adminToken: false }));

  program
    .command('feed')
    .description('run the market data feed role (FEED=simulator|replay); one instance leads, others stand by')
    .action(() => runRoles('feed', [runFeed], { migrate: false, adminToken: false }));

  program
    .command('migrate')
    .description('create the database if it does not exist and apply pending migrations')
    .action(() =>
      withTool('migrate', async (ctx) => {
        await prepareDatabase(ctx);
        process.stdout.write('migrations up to date\n');
      }),
    );

  const user = program.command('user').description('manage users');
  user
    .command('create')
    .description('create a user with a cash account; prints the user and its API key as JSON')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--email <email>', 'unique email')
    .addOption(new Option('--cash <amount>', 'initial cash, e.g. 10000.00').default('0.00'))
    .action((opts: { name: string; email: string; cash: string }) =>
      withTool('cli', async (ctx) => {
        // A fresh embedded server has no tables yet: migrating is a no-op when they exist.
        await prepareDatabase(ctx);
        const created = await createUser(ctx.db, {
          name: opts.name,
          email: opts.email,
          initialCash: parseCash(opts.cash, 'cash', { allowZero: true }),
        });
        process.stdout.write(
          `${JSON.stringify(
            {
              id: created.user.id,
              name: created.user.name,
              email: created.user.email,
              api_key: created.apiKey,
              api_key_id: created.apiKeyId,
            },
            null,
            2,
          )}\n`,
        );
      }),
    );

  const cls = program.command('class').description('manage classes and their members');
  cls
    .command('create')
    .description('create a class; prints it as JSON with its teacher key (shown once)')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--starting-cash <amount>', "each member's starting cash, e.g. 100000.00")
    .option('--starts-at <iso>', 'when members may start trading, e.g. 2026-09-01T13:30:00Z')
    .option('--ends-at <iso>', 'when trading ends (after --starts-at)')
    .option('--rules <json>', 'rules as JSON: tickers, order_types, max_position_pct, max_orders_per_day, commission_per_order')
    .option('--hide-leaderboard', 'members do not see the leaderboard (the teacher does)', false)
    .action((opts: { name: string; startingCash: string; startsAt?: string; endsAt?: string; rules?: string; hideLeaderboard: boolean }) =>
      withTool('cli', async (ctx) => {
        await prepareDatabase(ctx);
        process.stdout.write(await createClassCommand(ctx.db, ctx.market, opts));
      }),
    );
  cls
    .command('add-members')
    .description(
      'create members from a CSV file with the header name,email (quoted fields allowed; at most 10 MiB, 100,000 rows), ' +
        '500 per transaction; prints user_id,name,email,api_key as CSV on stdout',
    )
    .requiredOption('--class <id>', 'the class id (papertrade class create prints it)')
    .requiredOption('--csv <file>', 'the members, one per line')
    .action((opts: { class: string; csv: string }) =>
      withTool('cli', async (ctx) => {
        await prepareDatabase(ctx);
        const started = Date.now();
        const result = await addMembersCommand(ctx.db, opts.class.toLowerCase(), opts.csv, (text) => process.stdout.write(text));
        process.stderr.write(`created ${result.created} member(s) in ${Date.now() - started} ms\n`);
      }),
    );

  program
    .command('audit')
    .description(
      'check every invariant of the design (docs/DESIGN.md) over the whole database in one read-only snapshot; ' +
        'exit 0 when all hold, 1 on any violation, 2 on bad configuration, 3 when the audit could not run',
    )
    .option('--json', 'print the report as JSON (the same as GET /admin/audit)', false)
    .option('--pending-max-age-ms <ms>', 'a PENDING order older than this is a violation', nonNegativeInt, 60_000)
    .option('--trigger-settle-ms <ms>', 'a minute bar younger than this cannot be a missed trigger yet', nonNegativeInt, 120_000)
    .option('--limit <n>', 'violations listed per invariant (all are counted)', positiveInt, 1_000)
    .action((opts: { json: boolean; pendingMaxAgeMs: number; triggerSettleMs: number; limit: number }) =>
      withTool(
        'audit',
        async (ctx) => {
          process.exitCode = await auditCommand(ctx, opts);
        },
        AUDIT_EXIT_FAILED,
      ),
    );

  program
    .command('bench')
    .description(
      'benchmark: start the roles as separate processes on a scratch database (papertrade_bench), drive market ' +
        'orders over HTTP, measure throughput, latency, CPU and memory, run the SQL floor, write bench/results/',
    )
    .option('--duration <s>', 'measured seconds (after the warm-up)', '60')
    .option('--warmup <s>', 'warm-up seconds, not measured', '5')
    .option('--rate <n|max>', 'open loop at n orders/s (latency from the scheduled send), or max: closed loop', 'max')
    .option('--concurrency <c>', 'requests in flight (closed loop) / HTTP connections (open loop)', '64')
    .option('--users <n>', 'funded users placing orders', '1000')
    .option('--sell-ratio <r>', 'share of orders that are sells (of shares bought in the seed phase), 0..1', '0.5')
    .option('--quantity <shares>', 'shares per order', '1')
    .option('--seed-shares <n>', 'shares of each ticker every user buys before the run', '100')
    .option('--all-in-one', 'run one `papertrade start` process instead of separate roles', false)
    .option(
      '--embedded',
      'one `papertrade start` with nothing configured (DATABASE_URL and REDIS_URL unset, a temporary data directory): ' +
        'its own embedded PostgreSQL, the Redis parts in memory (implies --all-in-one)',
      false,
    )
    .option('--startup', 'measure start times instead: first start, restart, start after SIGKILL, npm start overhead, idle memory', false)
    .option('--runs <n>', 'runs of --startup, each in a fresh data directory (default 3)')
    .option(
      '--resting',
      'resting-orders scenario (needs --all-in-one or --embedded): market orders without, then with --resting-orders resting ' +
        'orders; tick evaluation time, a tick crossing --resting-cross limit buys, index memory per order (no SQL floor)',
      false,
    )
    .option('--resting-orders <n>', 'resting orders placed through POST /orders on every listed ticker (default 100000)')
    .option('--resting-cross <n>', 'limit buys the crossing tick crosses (default 1000)')
    .option('--resting-cross-repeats <n>', 'crossings made one after the other, each with fresh limit buys (default 3)')
    .option('--resting-idle <s>', 'seconds of each idle window, before and after the placement (default 20)')
    .option(
      '--stream',
      'live-stream scenario (separate roles, --all-in-one or --embedded): the market-order load without WebSocket clients, then with ' +
        'each --stream-clients count of clients (one user each, its events and --stream-tickers tickers): commit → delivery and tick → delivery ' +
        'p50/p99, memory per connection, fan-out CPU, no event lost (no SQL floor)',
      false,
    )
    .option('--stream-clients <list>', 'client counts of the --stream phases, comma-separated, one phase each (default 1000,5000)')
    .option('--stream-tickers <n>', 'tickers each --stream client subscribes to (default 5)')
    .option(
      '--facade',
      'Alpaca facade: after the native window, the same workload through POST /v2/orders (Alpaca body, APCA-API-* headers), windows ' +
        'alternating native/facade: ok orders/s, p50/p99, filled/s and api CPU per order side by side, ratio against 1.15',
      false,
    )
    .option('--facade-rounds <n>', 'rounds of --facade, one native and one facade window each, ABBA order (default 2)')
    .option(
      '--fill-models',
      'the market-order run twice, under FILL_MODEL=ideal and FILL_MODEL=realistic, side by side (target: realistic at most 15 % fewer fills/s), ' +
        "and each model's CPU per fill in process",
      false,
    )
    .option('--no-feed', 'do not start the feed role: the bench writes the prices itself (ignored with --all-in-one, refused with --embedded)')
    .option('--no-floor', 'skip the SQL floor')
    .option('--floor-duration <s>', 'measured seconds of the SQL floor', '20')
    .option('--floor-warmup <s>', 'warm-up seconds of the SQL floor', '3')
    .option('--floor-connections <n>', 'PostgreSQL connections of the floor (default 2 x PG_POOL_MAX)')
    .option('--floor-fill-connections <n>', 'of which fill batches (default a fifth)')
    .option('--floor-batch <n>', 'orders per fill transaction in the floor', '100')
    .option('--no-pgbench-floor', 'skip the floor SQL run by pgbench (native client, prepared statements)')
    .option('--batch <n>', 'orders per request: more than 1 sends POST /orders/batch (as the admin, orders of many users), at most 1000', '1')
    .option('--api <n>', 'api processes (separate roles), each on its own port; the load spreads over them', '1')
    .option('--engines <n>', 'engine processes (separate roles): members of the consumer group', '1')
    .option('--db-name <name>', 'scratch database, dropped and recreated', 'papertrade_bench')
    .option('--json-only', 'print only the JSON report on stdout (no progress, no table)', false)
    .action(async (opts: import('../bench/bench.js').RawBenchOptions) => {
      const { runBench, BenchUsageError } = await import('../bench/bench.js');
      try {
        if (opts.fillModels) {
          const { runFillModels } = await import('../bench/fill-models-bench.js');
          const say = (s: string) => void process.stderr.write(`${s}\n`);
          const { code, markdown } = await runFillModels((sink) => runBench({ ...opts, fillModels: false }, sink), say);
          process.stdout.write(`\n${markdown}\n`);
          process.exitCode = code;
          return;
        }
        process.exitCode = await runBench(opts);
      } catch (err) {
        if (err instanceof BenchUsageError) {
          process.stderr.write(`papertrade bench: ${err.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
      // Sockets of the load generator may linger in keep-alive: the report is out, leave.
      process.exit(process.exitCode ?? 0);
    });

  return program;
}

const invokedDirectly = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '');
if (invokedDirectly || process.env.PAPERTRADE_CLI === '1') {
  buildCli()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      const e = err as { code?: string; message?: string };
      process.stderr.write(`papertrade: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
      process.exit(1);
    });
}
