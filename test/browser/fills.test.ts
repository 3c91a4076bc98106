/**
 * Explained fills in a real Chromium: under the realistic fill model a 10,000-share market buy
 * of a mid cap fills in parts of the displayed size; the open orders show it PARTIALLY FILLED,
 * its Fills panel lists each part with the quote it met, the model, the slippage and why, and
 * grows as later quotes fill the rest, until the order is FILLED in the history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { apiUser, browserOnly, signIn, startBrowserStack, type BrowserStack } from './harness.js';

let stack: BrowserStack;

beforeAll(async () => {
  if (browserOnly.skip) return;
  stack = await startBrowserStack({ FILL_MODEL: 'realistic', FILL_SEED: '7' });
});
afterAll(async () => stack?.close());

/** ETSY at 60, 4,000 shares displayed on each side: each quote fills at most 4,000 shares. */
async function quote(): Promise<void> {
  const res = await stack.api.request('PUT', '/admin/prices/ETSY', { body: { price: '60', bid: '59.97', ask: '60.03', bid_size: 4000, ask_size: 4000 } });
  if (res.status !== 200) throw new Error(`PUT /admin/prices/ETSY answered ${res.status}`);
}

const openOrders = (page: Page) => page.getByRole('table', { name: /^Open orders/ });
const history = (page: Page) => page.getByRole('table', { name: /^Order history/ });
const fillsTable = (page: Page) => page.getByRole('table', { name: /^Fills of/ });

describe.skipIf(browserOnly.skip)('explained fills', () => {
  it('shows a partially filled order and each fill with its quote, model, slippage and reason, as parts fill', async () => {
    const user = await apiUser(stack.api, '1000000.00');
    const { page, problems } = await stack.newPage();
    await signIn(page, stack.url, user.api_key);
    await page.locator('#conn[data-status="live"]').waitFor();

    await quote();
    const placed = await stack.api.request('POST', '/orders', { token: user.api_key, body: { ticker: 'ETSY', side: 'buy', type: 'market', quantity: 10_000 } });
    expect(placed.status).toBe(201);

    await expect.poll(() => openOrders(page).getByRole('row', { name: /ETSY/ }).textContent()).toContain('PARTIALLY FILLED (4,000 of 10,000)');
    const fillsButton = openOrders(page).getByRole('button', { name: /^Fills of order/ });
    await fillsButton.click();
    await expect.poll(() => fillsButton.getAttribute('aria-expanded')).toBe('true');
    const firstRow = fillsTable(page).getByRole('row').nth(1);
    await expect.poll(() => firstRow.textContent()).toMatch(/4,000\s*60\.\d{4}/);
    const first = (await firstRow.textContent()) ?? '';
    expect(first).toContain('realistic');
    // 300 bps × sqrt(4,000 / 1,000,000), the square root taken down to 1/10,000.
    expect(first).toContain('18.96 bps');
    expect(first).toContain('59.97 × 60.03 (4,000 × 4,000)');
    expect(first).toContain('square-root impact');

    // The next quotes fill the rest: the open panel follows each new part.
    await quote();
    await expect.poll(() => fillsTable(page).getByRole('row').count()).toBe(3);
    await quote();
    // FILLED at the average price of its parts, all 10,000 shares, and no longer open.
    await expect.poll(() => history(page).getByRole('row', { name: /ETSY/ }).textContent()).toMatch(/FILLED\s*60\.\d{4}\s*10,000/);
    await page.getByText('No open orders.').waitFor();
    // The open orders' panel closed with its order; the history has the finished one.
    await expect.poll(() => page.locator('.open-orders .fills-panel').isHidden()).toBe(true);
    // The history's Fills panel shows all three parts of the finished order.
    await history(page).getByRole('button', { name: /^Fills of order/ }).click();
    await expect.poll(() => page.locator('.order-history').getByRole('table', { name: /^Fills of/ }).getByRole('row').count()).toBe(4);
    const parts = await page.locator('.order-history').getByRole('table', { name: /^Fills of/ }).getByRole('row').allTextContents();
    for (const part of parts.slice(1)) expect(part).toMatch(/realistic/);
    // The Quantity column (the second) of each part: the displayed size twice, then the rest.
    const quantities = await page.locator('.order-history .fills-panel tbody tr td:nth-child(2)').allTextContents();
    expect(quantities).toEqual(['4,000', '4,000', '2,000']);
    expect(problems.errors).toEqual([]);
    expect(problems.httpErrors).toEqual([]);
  });
});
