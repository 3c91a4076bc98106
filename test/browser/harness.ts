/**
 * Browser tests: the real dashboard (dist/web, built by global-setup) served by the real API
 * server, with an engine, over a test database and key prefix of its own, driven by Debian's
 * Chromium through playwright-core. Browser downloads do not work here; the machine's
 * /usr/bin/chromium does (`.ci/run` installs it when it is missing).
 *
 * Each page collects what the browser reports as an error (console errors, uncaught
 * exceptions, content-security-policy violations, failed requests) so every test can assert
 * that none happened.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { buildServer } from '../../src/http/server.js';
import { ADMIN_TOKEN, adminPrice, apiUser, eventually, startTradingStack, type TestContext, type TestServer } from '../harness.js';

export { ADMIN_TOKEN, adminPrice, apiUser, eventually };

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');

/**
 * Browser tests run where Chromium is installed and are reported as skipped elsewhere (a
 * laptop without it). Under CI=true they always run, so a CI without Chromium fails instead of
 * passing by skipping them.
 */
export const browserOnly = { skip: !existsSync(CHROMIUM_PATH) && process.env.CI !== 'true' };

/** The flags this machine needs: no sandbox as root, and no calls home (the network is closed). */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * What went wrong on a page. Chromium reports every HTTP error status and every refused
 * connection as a console error of its own ("Failed to load resource: … status of 422"), even
 * when the page handles it (a refusal shown in words is the point of some tests). Those are
 * kept apart, as statuses and connection failures that a test asserts exactly; `errors` is
 * everything else: the page's own console errors, uncaught exceptions, policy violations.
 */
export interface PageProblems {
  /** Console errors, uncaught exceptions and CSP violations, in the order they happened. */
  errors: string[];
  /** HTTP error statuses the browser reported for the page's requests, in order. */
  httpErrors: number[];
  /** Connections that could not be made (the server down), as the browser reported them. */
  connectionErrors: string[];

  /** Requests that got no answer at all (connection refused, aborted), with their URL. */
  failedRequests: string[];
}

const HTTP_ERROR_RE = /^Failed to load resource: the server responded with a status of (\d{3})/;
const CONNECTION_ERROR_RE = /^(Failed to load resource: net::ERR_|WebSocket connection to .* failed)/;

export interface BrowserStack {
  url: string;
  api: TestServer;
  /** The context behind the server (its services, to act while the server is down). */
  ctx: TestContext;
  browser: Browser;
  /** A fresh browser context (its own sessionStorage) and page, its problems collected. */
  newPage(options?: { width?: number; height?: number }): Promise<{ page: Page; problems: PageProblems; context: BrowserContext }>;
  /**
   * Stops the API server (every HTTP and WebSocket connection dropped, as when the api process
   * exits) and, once `whileDown` has run, starts a new one on the same port. The engine keeps
   * running, so orders can fill while the page has no server.
   */
  restartApi(whileDown?: () => Promise<void>): Promise<void>;
  /**
   * 503s the pages got while restartApi was closing the server (Fastify answers a request on a
   * kept-alive connection during close with 503): the restart's, kept out of httpErrors.
   */
  closingRefusals: number;
  close(): Promise<void>;
}

export async function startBrowserStack(env: Record<string, string> = {}): Promise<BrowserStack> {
  const { ctx, api, engine } = await startTradingStack(env);
  const port = Number(new URL(api.url).port);
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 });
  } catch (err) {
    await engine.stop();
    await api.server.close();
    await ctx.close();
    throw new Error(`cannot start Chromium at ${CHROMIUM_PATH} (apt-get install -y chromium): ${String(err)}`);
  }
  const contexts: BrowserContext[] = [];
  /** While restartApi runs: a 503 then is the closing server's (BrowserStack.closingRefusals). */
  let restarting = false;
  const stack: BrowserStack = {
    closingRefusals: 0,
    url: api.url,
    api,
    ctx,
    browser,
    async newPage(options = {}) {
      const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: options.height ?? 860 }, acceptDownloads: true });
      contexts.push(context);
      const page = await context.newPage();
      const problems: PageProblems = { errors: [], httpErrors: [], connectionErrors: [], failedRequests: [] };
      page.on('console', (message) => {
        if (message.type() !== 'error') return;
        const text = message.text();
        const status = HTTP_ERROR_RE.exec(text)?.[1];
        if (status === '503' && restarting) stack.closingRefusals += 1;
        else if (status) problems.httpErrors.push(Number(status));
        else if (CONNECTION_ERROR_RE.test(text)) problems.connectionErrors.push(text);
        else problems.errors.push(`console: ${text}`);
      });
      page.on('pageerror', (error) => problems.errors.push(`uncaught: ${error.message}`));
      page.on('requestfailed', (request) => problems.failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText ?? 'failed'}`));
      page.setDefaultTimeout(10_000);
      return { page, problems, context };
    },
    async restartApi(whileDown) {
      restarting = true;
      try {
        await api.server.close();
        await whileDown?.();
        const { server } = await buildServer(ctx);
        await server.listen({ host: '127.0.0.1', port });
        api.server = server;
      } finally {
        restarting = false;
      }
    },
    async close() {
      for (const context of contexts) await context.close().catch(() => undefined);
      await browser.close();
      await engine.stop();
      await api.server.close();
      await ctx.close();
    },
  };
  return stack;
}

/** Opens the dashboard and signs in with `token` as a person would: paste it, press Sign in. */
export async function signIn(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('Key or token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** Saves a screenshot for the README (docs/screenshots/<name>.png): each run keeps them current. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true, animations: 'disabled' });
}

/** The document is no wider than the window: nothing scrolls sideways at this width. */
export async function documentOverflowPx(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}
