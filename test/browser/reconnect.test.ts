/**
 * The page survives its server: when the api process goes away, the top bar says it is
 * reconnecting; when a new one answers, the stream resumes from the last event it applied
 * (`since_seq`), so an order that filled meanwhile shows as filled, with its position, without
 * a reload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { marketOrder } from '../harness.js';
import { adminPrice, apiUser, browserOnly, eventually, signIn, startBrowserStack, type BrowserStack } from './harness.js';

let stack: BrowserStack;

beforeAll(async () => {
  if (browserOnly.skip) return;
  stack = await startBrowserStack();
});
afterAll(async () => stack?.close());

describe.skipIf(browserOnly.skip)('dashboard across an api restart', () => {
  it('shows that it is reconnecting, then catches up on what happened meanwhile without a reload', async () => {
    await adminPrice(stack.api, 'MSFT', '410.0000');
    const user = await apiUser(stack.api, '50000.00');
    const { page, problems } = await stack.newPage();
    await signIn(page, stack.url, user.api_key);
    const conn = page.locator('#conn');
    await expect.poll(() => conn.getAttribute('data-status')).toBe('live');
    const positions = page.getByRole('region', { name: 'Positions' });
    await positions.waitFor();
    expect(await positions.textContent()).not.toContain('MSFT');
    const loads = await page.evaluate(() => performance.getEntriesByType('navigation').length);

    let filledWhileDown: string | undefined;
    await stack.restartApi(async () => {
      await expect.poll(() => conn.getAttribute('data-status')).toBe('reconnecting');
      expect(await conn.textContent()).toMatch(/^Reconnecting…/);
      // The engine goes on without the api: an order accepted by the OMS fills meanwhile.
      const { order } = await stack.ctx.orders.placeOrder(marketOrder(user.id, 'MSFT', 'buy', '3'));
      filledWhileDown = order.id;
      await eventually(async () => ((await stack.ctx.orders.getOrder(order.id)).status === 'FILLED' ? true : undefined));
    });

    await expect.poll(() => conn.getAttribute('data-status'), { timeout: 15_000 }).toBe('live');
    await expect.poll(() => positions.textContent(), { timeout: 10_000 }).toContain('MSFT');
    expect(filledWhileDown).toBeDefined();
    // Still the same document: nothing reloaded the page.
    expect(await page.evaluate(() => performance.getEntriesByType('navigation').length)).toBe(loads);
    expect(page.url()).toBe(`${stack.url}/`);
    expect(problems.errors).toEqual([]);
    expect(problems.httpErrors).toEqual([]);
    // The only failures are the browser's own reports of the connections the restart broke:
    // refused while no server listened, or reset as the closing server dropped them — the
    // situation under test.
    for (const report of problems.connectionErrors) {
      expect(report).toMatch(/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws' failed/);
    }
    // A restart, the backoff (up to 5 s a retry) and a replay take their time on a loaded
    // machine: the steps have their own deadlines; the whole gets a minute, not the default 30 s.
  }, 60_000);
});
