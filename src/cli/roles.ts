/**
 * The roles papertrade can run. Each returns a stop function; `start` runs them all in one
 * process. Later roles (engine, feed) plug in here without restructuring the CLI.
 */
import { createEngine, type AppContext } from '../app.js';
import { buildServer } from '../http/server.js';

export type StopFn = () => Promise<void>;

export { runFeed } from '../services/market-data/feed.role.js';

export async function runApi(ctx: AppContext): Promise<StopFn> {
  const { server } = await buildServer(ctx);
  await server.listen({ host: ctx.config.host, port: ctx.config.port });
  ctx.logger.info({ host: ctx.config.host, port: ctx.config.port }, 'api listening');
  return async () => {
    await server.close();
  };
}

export async function runEngine(ctx: AppContext): Promise<StopFn> {
  const engine = createEngine(ctx);
  await engine.start();
  ctx.logger.info({ consumer: engine.engine.consumer }, 'trading engine consuming the order stream');
  return () => engine.stop();
}
