/**
 * The roles papertrade can run. Each returns a stop function; `start` runs them all in one
 * process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createEngine, createFeedRunner, type AppContext } from '../app.js';
import { buildServer } from '../http/server.js';
import { loadReplay, manualFactory, replayFactory, simulatorFactory, type FeedFactory } from '../services/market-data/feeds.js';

export type StopFn = () => Promise<void>;

/** Starts the feed role; resolves once it runs (as leader or standby) with its stop function. */
export async function runFeed(ctx: AppContext): Promise<StopFn> {
  const { config } = ctx;
  let createFeed: FeedFactory;
  if (config.feed === 'manual') {
    createFeed = manualFactory();
  } else if (config.feed === 'replay') {
    // loadConfig guarantees the file is set when FEED=replay.
    const batches = await loadReplay(config.feedReplayFile ?? '', await ctx.market.listInstruments(), ctx.logger);
    createFeed = replayFactory(batches, config);
  } else {
    createFeed = simulatorFactory(config);
  }
  await ctx.clock.start();
  const runner = createFeedRunner(ctx, createFeed);
  runner.start();
  ctx.logger.info({ feed: config.feed, feed_id: runner.feedId, tick_ms: config.feedTickMs }, 'feed role started');
  return () => runner.stop();
}

export async function runApi(ctx: AppContext): Promise<StopFn> {
  const { server } = await buildServer(ctx);
  await server.listen({ host: ctx.config.host, port: ctx.config.port });
  ctx.logger.info({ host: ctx.config.host, port: ctx.config.port }, 'api listening');
  // Where a person goes next; on stderr, like the admin token, so piped output stays clean.
  const host = ctx.config.host === '0.0.0.0' || ctx.config.host === '::' ? 'localhost' : ctx.config.host;
  const shown = host.includes(':') ? `[${host}]` : host;
  process.stderr.write(`\n  dashboard: http://${shown}:${ctx.config.port}/   (sign in with an API key, a teacher key or the admin token)\n  API docs:  http://${shown}:${ctx.config.port}/docs\n\n`);
  return async () => {
    await server.close();
  };
}

export async function runEngine(ctx: AppContext): Promise<StopFn> {
  const engine = createEngine(ctx);
  await engine.start();
  ctx.logger.info({ consumer: engine.loop.consumerName }, 'trading engine consuming the order stream');
  return () => engine.stop();
}

/** A child engine that dies is started again after this long, doubling up to the maximum. */
export const ENGINE_CHILD_RESTART_MS_MIN = 500;
export const ENGINE_CHILD_RESTART_MS_MAX = 10_000;
/** How long a stopping child engine may take to finish its batch before it is killed. */
export const ENGINE_CHILD_STOP_MS = 15_000;

/**
 * The engine role in a child process of `start` (the same CLI, `engine` command), so that the
 * api's and the engine's JavaScript run on two cores instead of one. Only with Redis: the child
 * and the parent share the order pipe, the quote store and the channels through it (the
 * in-process implementations cannot be shared). The child gets the servers the parent resolved
 * (an embedded PostgreSQL's address included); one that exits unexpectedly is started again with
 * a capped back-off, and it stops when the parent stops.
 */
export async function runEngineChild(ctx: AppContext, cliPath: string): Promise<StopFn> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: ctx.config.databaseUrl, REDIS_URL: ctx.config.redisUrl };
  let child: ChildProcess | undefined;
  let stopping = false;
  let restartMs = ENGINE_CHILD_RESTART_MS_MIN;
  let timer: NodeJS.Timeout | undefined;
  const spawnChild = () => {
    const started = Date.now();
    const c = fork(cliPath, ['engine'], { env, stdio: 'inherit' });
    child = c;
    ctx.logger.info({ engine_pid: c.pid }, 'trading engine started in a child process');
    c.on('exit', (code, signal) => {
      if (child === c) child = undefined;
      if (stopping) return;
      // A child that ran a while starts again quickly; one that keeps failing, ever more slowly.
      if (Date.now() - started > ENGINE_CHILD_RESTART_MS_MAX) restartMs = ENGINE_CHILD_RESTART_MS_MIN;
      ctx.logger.error({ code, signal, restart_in_ms: restartMs }, 'the engine child process exited; starting it again');
      timer = setTimeout(spawnChild, restartMs);
      restartMs = Math.min(restartMs * 2, ENGINE_CHILD_RESTART_MS_MAX);
    });
  };
  spawnChild();
  return async () => {
    stopping = true;
    clearTimeout(timer);
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => c.kill('SIGKILL'), ENGINE_CHILD_STOP_MS);
      c.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      c.kill('SIGTERM');
    });
  };
}
