/**
 * The roles papertrade can run. Each returns a stop function; `start` runs them all in one
 * process.
 */
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
