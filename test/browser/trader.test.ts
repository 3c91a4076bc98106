/**
 * The trader's view in a real Chromium against the real API, engine and stream: an order placed
 * from the ticket fills and its position appears without a reload; a resting limit is replaced
 * and canceled from the open orders; a refusal is shown with its whole cause chain; a price set
 * by the admin fills a resting order while the page watches; and the view fits a phone's width.
 * Each test uses its own user and its own ticker, so the tests do not see each other's orders.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { adminPrice, apiUser, browserOnly, eventually, screenshot, signIn, startBrowserStack, type BrowserStack, type PageProblems } from './harness.js';

let stack: BrowserStack;

beforeAll(async () => {
  if (browserOnly.skip) return;
  stack = await startBrowserStack();
});
afterAll(async () => stack?.close());

/** A user's page, signed in, with the trader view loaded (the watchlist has its instruments) and live. */
async function traderPage(key: string, options: { width?: number; height?: number } = {}): Promise<{ page: Page; problems: PageProblems }> {
  const { page, problems } = await stack.newPage(options);
  await signIn(page, stack.url, key);
  await page.getByRole('table', { name: /^Watchlist/ }).waitFor();
  // Live: from here on every event reaches the page over the stream (an event written before
  // the subscription would only show through the snapshots, without its notification).
  await page.locator('#conn[data-status="live"]').waitFor();
  return { page, problems };
}

/** Chooses a ticker in the watchlist, as a person would. */
async function choose(page: Page, ticker: string): Promise<void> {
  await page.getByRole('button', { name: ticker, exact: true }).click();
  await expect.poll(() => tickerSelect(page).inputValue()).toBe(ticker);
}

const ticket = (page: Page) => page.getByRole('form', { name: 'Order ticket' });
const tickerSelect = (page: Page) => ticket(page).getByRole('combobox', { name: 'Ticker', exact: true });
const openOrders = (page: Page) => page.getByRole('table', { name: /^Open orders/ });
const positions = (page: Page) => page.getByRole('table', { name: /^Positions/ });
const history = (page: Page) => page.getByRole('table', { name: /^Order history/ });
const rowText = (page: Page, table: ReturnType<typeof positions>, name: RegExp) => table.getByRole('row', { name }).first().textContent();
const statText = (page: Page, label: string) => page.locator('.account-stats .stat', { has: page.getByText(label, { exact: true }) }).locator('dd').textContent();

/** Nothing went wrong on the page but what the test expects (the HTTP statuses it provoked). */
function expectClean(problems: PageProblems, httpErrors: number[] = []): void {
  expect(problems.errors).toEqual([]);
  expect(problems.httpErrors).toEqual(httpErrors);
  expect(problems.connectionErrors).toEqual([]);
  expect(problems.failedRequests).toEqual([]);
}

describe.skipIf(browserOnly.skip)('trader view', () => {
  it('buys at the market from the ticket and shows the fill and the position without a reload', async () => {
    await adminPrice(stack.api, 'AAPL', '190.00');
    const user = await apiUser(stack.api, '100000.00');
    const { page, problems } = await traderPage(user.api_key);
    // Marks this document: were the page reloaded, the mark would be gone.
    await page.evaluate(() => ((globalThis as unknown as { mark: number }).mark = 42));
    await choose(page, 'AAPL');

    await ticket(page).getByLabel('Quantity').fill('5');
    // The hold shown before sending: 5 × 190.00 × 1.05 (the buffer of 500 bps), as the server holds.
    await expect.poll(() => page.locator('#ticket-hold').textContent()).toContain('Holds $997.50');
    await ticket(page).getByRole('button', { name: 'Place buy order' }).click();

    await expect.poll(() => rowText(page, positions(page), /AAPL/)).toMatch(/AAPL\s*5\s*5\s*190\.00\s*190\.00\s*\$950\.00\s*\$0\.00/);
    await expect.poll(() => rowText(page, history(page), /AAPL/)).toMatch(/FILLED\s*190\.00\s*5/);
    await expect.poll(() => statText(page, 'Cash')).toBe('$99,050.00');
    await expect.poll(() => page.getByRole('table', { name: /^Activities/ }).getByRole('row', { name: /Buy/ }).textContent()).toContain('−$950.00');

    // A tick revalues the position live (exactly: 5 × 200.00 − 5 × 190.00).
    await adminPrice(stack.api, 'AAPL', '200.00');
    await expect.poll(() => rowText(page, positions(page), /AAPL/)).toMatch(/\$1,000\.00\s*\$50\.00/);
    await expect.poll(() => statText(page, 'Equity')).toBe('$100,050.00');
    expect(await page.evaluate(() => (globalThis as unknown as { mark?: number }).mark)).toBe(42);
    expectClean(problems);
  });

  it('places a resting limit, replaces it from the open orders, and cancels it', async () => {
    await adminPrice(stack.api, 'MSFT', '420.00');
    const user = await apiUser(stack.api, '100000.00');
    const { page, problems } = await traderPage(user.api_key);
    await choose(page, 'MSFT');

    const form = ticket(page);
    await form.getByLabel('Order type').selectOption('limit');
    // Only the fields a limit takes are shown.
    await expect.poll(() => form.getByLabel('Stop price').isVisible()).toBe(false);
    await form.getByLabel('Limit price').fill('400');
    await form.getByLabel('Quantity').fill('2');
    await form.getByLabel('Time in force').selectOption('gtc');
    await expect.poll(() => page.locator('#ticket-hold').textContent()).toContain('Holds $800.00');
    await form.getByRole('button', { name: 'Place buy order' }).click();

    const cancelFirst = openOrders(page).getByRole('button', { name: 'Cancel order MSFT buy 2 limit 400.00' });
    await cancelFirst.waitFor();
    await expect.poll(() => rowText(page, openOrders(page), /MSFT/)).toMatch(/OPEN/);
    await expect.poll(() => statText(page, 'Held by orders')).toBe('$800.00');

    await openOrders(page).getByRole('button', { name: 'Replace order MSFT buy 2 limit 400.00' }).click();
    const replaceForm = page.getByRole('form', { name: /^Replace MSFT/ });
    await replaceForm.getByLabel('New quantity').fill('3');
    await replaceForm.getByLabel('New limit price').fill('410');
    await expect.poll(() => replaceForm.locator('.hint').textContent()).toContain('holds $1,230.00 (now $800.00: $430.00 more)');
    await replaceForm.getByRole('button', { name: 'Send replacement' }).click();

    const cancelSecond = openOrders(page).getByRole('button', { name: 'Cancel order MSFT buy 3 limit 410.00' });
    await cancelSecond.waitFor();
    await cancelFirst.waitFor({ state: 'detached' });
    await expect.poll(() => rowText(page, history(page), /MSFT/)).toMatch(/REPLACED/);
    await expect.poll(() => statText(page, 'Held by orders')).toBe('$1,230.00');

    await cancelSecond.click();
    await page.getByText('No open orders.').waitFor();
    await expect.poll(() => history(page).getByRole('row', { name: /CANCELED/ }).count()).toBe(1);
    await expect.poll(() => statText(page, 'Held by orders')).toBe('$0.00');
    const open = await stack.api.request('GET', '/orders?status=open', { token: user.api_key });
    expect(open.body.orders).toEqual([]);
    expectClean(problems);
  });

  it('shows a refusal in words with its whole cause chain for an order above the cash', async () => {
    await adminPrice(stack.api, 'NVDA', '135.00');
    const user = await apiUser(stack.api, '1000.00');
    const { page, problems } = await traderPage(user.api_key);
    await choose(page, 'NVDA');

    await ticket(page).getByLabel('Quantity').fill('100');
    // The ticket already says so before sending (100 × 135.00 × 1.05 against $1,000.00).
    await expect.poll(() => page.locator('#ticket-hold').textContent()).toContain('more than your available cash ($1,000.00)');
    await ticket(page).getByRole('button', { name: 'Place buy order' }).click();

    const alert = ticket(page).getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('INSUFFICIENT_FUNDS');
    const lines = await alert.getByRole('listitem').allTextContents();
    expect(lines[0]).toMatch(/^ORDER_REJECTED \(orders\): /);
    expect(lines[1]).toMatch(/^← INSUFFICIENT_FUNDS \(accounts\): /);
    await page.getByText('No open orders.').waitFor();
    expect(await statText(page, 'Available')).toBe('$1,000.00');
    // The refusal is the one failed request of the page.
    expectClean(problems, [422]);
  });

  it('fills a resting order on the page when the admin sets a price', async () => {
    await adminPrice(stack.api, 'AMZN', '200.00');
    const user = await apiUser(stack.api, '100000.00');
    const { page, problems } = await traderPage(user.api_key);
    // Placed elsewhere (a bot with the same key): the page learns of it from the stream.
    const placed = await stack.api.request('POST', '/orders', { token: user.api_key, body: { ticker: 'AMZN', quantity: '3', type: 'limit', limit_price: '195' } });
    expect(placed.status).toBe(201);
    await openOrders(page).getByRole('button', { name: 'Cancel order AMZN buy 3 limit 195.00' }).waitFor();
    await expect.poll(() => rowText(page, openOrders(page), /AMZN/)).toMatch(/OPEN/);

    await adminPrice(stack.api, 'AMZN', '194.50');
    await page.getByText('No open orders.').waitFor();
    await expect.poll(() => rowText(page, positions(page), /AMZN/)).toMatch(/AMZN\s*3\s*3\s*194\.50\s*194\.50\s*\$583\.50/);
    await expect.poll(() => rowText(page, history(page), /AMZN/)).toMatch(/FILLED\s*194\.50\s*3/);
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Filled:' }).textContent()).toContain('Filled: AMZN buy 3 limit 195.00 at 194.50');
    expectClean(problems);
  });

  it('shows a position, a chart and an open order (screenshot), is keyboard operable, and fits 390 px', async () => {
    for (const p of ['172.00', '174.50', '173.25', '175.00']) await adminPrice(stack.api, 'GOOGL', p);
    const user = await apiUser(stack.api, '100000.00');
    const buy = await stack.api.request('POST', '/orders', { token: user.api_key, body: { ticker: 'GOOGL', quantity: '20', type: 'market' } });
    expect(buy.status).toBe(201);
    // The sell below holds the bought shares: it waits for the fill.
    await eventually(async () => {
      const order = await stack.api.request('GET', `/orders/${buy.body.id}`, { token: user.api_key });
      return order.body.status === 'FILLED' ? true : undefined;
    });
    const rest = await stack.api.request('POST', '/orders', {
      token: user.api_key,
      body: { ticker: 'GOOGL', quantity: '10', side: 'sell', type: 'trailing_stop', trail_percent: '2.5', time_in_force: 'gtc' },
    });
    expect(rest.status).toBe(201);

    const { page, problems } = await traderPage(user.api_key);
    // Keyboard only: focus the watchlist's GOOGL and press Enter.
    await page.getByRole('button', { name: 'GOOGL', exact: true }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => tickerSelect(page).inputValue()).toBe('GOOGL');
    await expect.poll(() => rowText(page, positions(page), /GOOGL/)).toMatch(/GOOGL\s*20\s*10/);
    await openOrders(page).getByRole('button', { name: /^Cancel order GOOGL sell 10 trail 2\.50%/ }).waitFor();
    await page.locator('.chart canvas').first().waitFor();
    await page.locator('.chart-empty').first().waitFor({ state: 'hidden' });
    await expect.poll(() => page.getByRole('img', { name: /^Candlestick chart of GOOGL/ }).getAttribute('aria-label')).toContain('last price 175.00');
    // A sell shows the shares it will hold, not cash.
    await ticket(page).getByLabel('Side').selectOption('sell');
    await ticket(page).getByLabel('Quantity').fill('4');
    await expect.poll(() => page.locator('#ticket-hold').textContent()).toContain('Holds 4 GOOGL shares');
    await expect.poll(() => page.locator('#ticket-hold').textContent()).toContain('You hold 20, 10 available');
    await ticket(page).getByLabel('Side').selectOption('buy');
    await ticket(page).getByLabel('Quantity').fill('1');
    await expect.poll(() => page.locator('#ticket-hold').textContent()).toContain('Holds $183.75');
    // The pointer away from the chart, so the picture has no crosshair in it.
    await page.mouse.move(0, 0);
    await screenshot(page, 'trader');

    const phone = await traderPage(user.api_key, { width: 390, height: 844 });
    await expect.poll(() => rowText(phone.page, positions(phone.page), /GOOGL/)).toMatch(/GOOGL\s*20/);
    await openOrders(phone.page).getByRole('button', { name: /^Cancel order GOOGL sell 10/ }).waitFor();
    await phone.page.locator('.chart canvas').first().waitFor();
    // Evaluated in the page (as text: the test's own TypeScript has no DOM types).
    expect(await phone.page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await ticket(phone.page).getByRole('button', { name: 'Place buy order' }).waitFor();
    expectClean(problems);
    expectClean(phone.problems);
  });
});
