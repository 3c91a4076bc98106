/**
 * The teacher's and the admin's pages in a real Chromium, against the real API and engine:
 * a teacher adds members from a CSV (checked line by line in the page first), downloads their
 * keys once, watches the members and the leaderboard, and resets a member; the admin lists
 * users, opens an account, deposits, creates a user and a class, opens the class page, runs the
 * audit, sets a price and forces the market closed and open. Every test ends with no error
 * reported by the page.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/core/csv.js';
import { ADMIN_TOKEN, adminPrice, browserOnly, documentOverflowPx, eventually, screenshot, signIn, startBrowserStack, type BrowserStack } from './harness.js';

let stack: BrowserStack;

beforeAll(async () => {
  if (browserOnly.skip) return;
  // Prices stand still unless a test sets them, so fills and resting orders are certain.
  stack = await startBrowserStack({ FEED: 'manual' });
  await adminPrice(stack.api, 'AAPL', '100.00');
});
afterAll(async () => stack?.close());

const uniq = (): string => randomBytes(4).toString('hex');

/** A class made by the admin through the API, with its teacher key. */
async function createClass(name: string, startingCash = '10000.00'): Promise<{ id: string; teacher_key: string }> {
  const res = await stack.api.request('POST', '/classes', { body: { name, starting_cash: startingCash } });
  expect(res.status).toBe(201);
  return res.body;
}

/** Members made through the API (the admin token), with their keys. */
async function addMembers(classId: string, members: { name: string; email: string }[]): Promise<{ user_id: string; name: string; api_key: string }[]> {
  const res = await stack.api.request('POST', `/classes/${classId}/members`, { body: { members } });
  expect(res.status).toBe(201);
  return res.body.members;
}

/** Places an order with a member's own key and waits until it reaches `status`. */
async function order(apiKey: string, body: Record<string, unknown>, status: 'FILLED' | 'OPEN'): Promise<string> {
  const res = await stack.api.request('POST', '/orders', { token: apiKey, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  await eventually(async () => ((await stack.api.request('GET', `/orders/${res.body.id}`, { token: apiKey })).body.status === status ? true : undefined));
  return res.body.id;
}

/** The row of the table named `tableName` that holds an element whose whole text is `name`. */
function rowOf(page: Page, tableName: RegExp, name: string) {
  return page.getByRole('table', { name: tableName }).getByRole('row').filter({ has: page.getByText(name, { exact: true }) });
}

describe.skipIf(browserOnly.skip)('teacher view', () => {
  it('adds members from a CSV after checking it, offers their keys once, and shows members and the leaderboard', async () => {
    const cls = await createClass(`Finance 101 ${uniq()}`);
    const tag = uniq();
    const { page, problems } = await stack.newPage();
    await signIn(page, stack.url, cls.teacher_key);
    await page.getByRole('heading', { level: 1, name: /^Finance 101/ }).waitFor();
    await page.getByText('No members yet').waitFor();
    await expect.poll(() => page.getByText('Starting cash').locator('xpath=following-sibling::dd[1]').textContent()).toBe('$10,000.00');

    // A roster with mistakes: every line's problem is named before anything is sent.
    const roster = page.getByLabel(/^Roster \(CSV text\)/);
    await roster.fill(`name,email\nAda Lovelace,ada-${tag}@school.example\nBob,not-an-email\nCy,ADA-${tag}@school.example\nDee\n`);
    await page.getByText('3 problems in the roster').waitFor();
    await page.getByText('Line 3: email must be an address').waitFor();
    await page.getByText(`Line 4: the email ADA-${tag}@school.example is also on line 2`).waitFor();
    await page.getByText('Line 5: expected 2 fields (name,email), found 1').waitFor();
    await page.getByRole('button', { name: 'Add members' }).click();
    await expect.poll(() => page.getByRole('alert').filter({ hasText: 'The roster has 3 problems' }).count()).toBe(1);
    expect((await stack.api.request('GET', `/classes/${cls.id}/members`)).body.members).toEqual([]);

    // The file replaces the text; quoted fields are read as the command line reads them.
    const csv = `name,email\r\nAda Lovelace,ada-${tag}@school.example\r\n"Turing, Alan",alan-${tag}@school.example\r\nGrace Hopper,grace-${tag}@school.example\r\n`;
    await page.getByLabel(/^Roster file \(CSV\)/).setInputFiles({ name: 'students.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByText('3 members ready to add.').waitFor();
    await rowOf(page, /Preview of the members to add/, 'Turing, Alan').waitFor();
    await page.getByRole('button', { name: 'Add members' }).click();

    // The keys: offered once as a download made in the page, said plainly to be shown only now.
    await page.getByRole('heading', { name: 'Keys of 3 new members: shown only this once' }).waitFor();
    await page.getByText('neither this page nor the server can show them again').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: /Download the keys of 3 new members/ }).click()]);
    expect(download.suggestedFilename()).toMatch(/^finance-101-[0-9a-f]{8}-keys-.*\.csv$/);
    const text = (await readFile((await download.path())!, 'utf8')).replace(/^\ufeff/, '');
    const rows = parseCsv(text).map((r) => r.fields);
    expect(rows[0]).toEqual(['name', 'email', 'user_id', 'api_key']);
    expect(rows.slice(1).map((r) => [r[0], r[1]])).toEqual([
      ['Ada Lovelace', `ada-${tag}@school.example`],
      ['Turing, Alan', `alan-${tag}@school.example`],
      ['Grace Hopper', `grace-${tag}@school.example`],
    ]);
    // Each key in the file is that member's own working key.
    for (const [, , userId, apiKey] of rows.slice(1)) {
      expect(apiKey).toMatch(/^ptk_/);
      expect((await stack.api.request('GET', '/me', { token: apiKey! })).body.user_id).toBe(userId);
    }
    const ada = rows[1]!;

    // The members, with their cash from the class's starting cash.
    await expect.poll(() => page.getByRole('table', { name: /Members of the class/ }).getByRole('row').count()).toBe(4);
    await expect.poll(() => rowOf(page, /Members of the class/, 'Ada Lovelace').textContent()).toContain('$10,000.00');

    // Ada trades through the API; the leaderboard, refreshed every few seconds, shows her fill.
    await order(ada[3]!, { ticker: 'AAPL', quantity: '5', type: 'market', side: 'buy' }, 'FILLED');
    const adaOnBoard = rowOf(page, /Leaderboard by return/, 'Ada Lovelace');
    await expect.poll(() => adaOnBoard.getByRole('cell').last().textContent(), { timeout: 15_000 }).toBe('1');
    await expect.poll(() => rowOf(page, /Members of the class/, 'Ada Lovelace').textContent(), { timeout: 15_000 }).toContain('$9,500.00');

    // The metric tabs, by keyboard: the arrow key moves to the Sharpe ratio and ranks by it.
    await page.getByRole('tab', { name: 'Return' }).focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.getByRole('tab', { name: 'Sharpe ratio' }).getAttribute('aria-selected')).toBe('true');
    await page.getByRole('table', { name: /Leaderboard by sharpe ratio/ }).waitFor();
    await expect.poll(() => rowOf(page, /Leaderboard by sharpe ratio/, 'Ada Lovelace').textContent()).toContain('not yet');
    await page.getByRole('tab', { name: 'Max drawdown' }).click();
    await page.getByRole('table', { name: /Leaderboard by max drawdown/ }).waitFor();

    // Adding an email that is taken: refused by the server, in words, with the line it is on.
    await roster.fill(`name,email\nAda Again,ada-${tag}@school.example\n`);
    await page.getByRole('button', { name: 'Add members' }).click();
    const refusal = page.getByRole('alert').filter({ hasText: 'EMAIL_TAKEN' });
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain(`Already taken: ada-${tag}@school.example (line 2)`);
    expect(await refusal.textContent()).toContain('No member was added');
    expect(problems.httpErrors).toEqual([409]);

    await page.getByRole('button', { name: 'I have saved the keys: hide them' }).click();
    await page.getByRole('heading', { name: /shown only this once/ }).waitFor({ state: 'detached' });
    await roster.fill('');
    await page.getByRole('tab', { name: 'Return' }).click();
    // The picture from the top of the page, without a focus ring on the tab just clicked.
    await page.evaluate(() => {
      (document.activeElement as HTMLElement | null)?.blur();
      window.scrollTo(0, 0);
    });
    await screenshot(page, 'teacher');
    expect(problems.errors).toEqual([]);
    expect(problems.failedRequests).toEqual([]);

    // On a phone: everything reflows, nothing scrolls sideways.
    const phone = await stack.newPage({ width: 390, height: 844 });
    await signIn(phone.page, stack.url, cls.teacher_key);
    await rowOf(phone.page, /Members of the class/, 'Grace Hopper').waitFor();
    expect(await documentOverflowPx(phone.page)).toBeLessThanOrEqual(0);
    expect(phone.problems.errors).toEqual([]);
  });

  it('resets a member after a confirmation and shows what the reset did', async () => {
    const cls = await createClass(`Reset class ${uniq()}`, '5000.00');
    const tag = uniq();
    const [bob] = await addMembers(cls.id, [
      { name: 'Bob Builder', email: `bob-${tag}@school.example` },
      { name: 'Cy Young', email: `cy-${tag}@school.example` },
    ]);
    await order(bob!.api_key, { ticker: 'AAPL', quantity: '5', type: 'market', side: 'buy' }, 'FILLED');
    await order(bob!.api_key, { ticker: 'AAPL', quantity: '1', type: 'limit', side: 'buy', limit_price: '50.00', time_in_force: 'gtc' }, 'OPEN');

    const { page, problems } = await stack.newPage();
    await signIn(page, stack.url, cls.teacher_key);
    const resetBob = page.getByRole('button', { name: `Reset Bob Builder (bob-${tag}@school.example)` });
    await resetBob.click();

    // The confirmation says what will happen; Cancel (or Escape) leaves everything as it was.
    await page.getByRole('heading', { name: 'Reset Bob Builder?' }).waitFor();
    await page.getByText('It cannot be undone').waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('heading', { name: 'Reset Bob Builder?' }).waitFor({ state: 'detached' });
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(`Reset Bob Builder (bob-${tag}@school.example)`);
    expect((await stack.api.request('GET', `/users/${bob!.user_id}/account`)).body.cash_balance).toBe('4500.00');

    await resetBob.click();
    await page.getByRole('button', { name: 'Confirm reset of Bob Builder' }).click();
    const done = page.getByRole('region', { name: 'Bob Builder was reset' });
    await done.waitFor();
    const doneText = await done.textContent();
    expect(doneText).toContain('Cash before$4,500.00');
    expect(doneText).toContain('Cash now$5,000.00');
    expect(doneText).toContain('Orders canceled1');
    expect(doneText).toContain('Positions removedAAPL 5');

    const account = (await stack.api.request('GET', `/users/${bob!.user_id}/account`, { token: cls.teacher_key })).body;
    expect(account).toMatchObject({ cash_balance: '5000.00', reserved_cash: '0.00', positions_value: '0.00' });
    await expect.poll(() => rowOf(page, /Members of the class/, 'Bob Builder').textContent()).toContain('$5,000.00');
    expect(problems.errors).toEqual([]);
    expect(problems.httpErrors).toEqual([]);
  });
});

describe.skipIf(browserOnly.skip)('admin view', () => {
  it('lists users, opens an account, deposits once, and creates a user whose key is shown once', async () => {
    const tag = uniq();
    const grace = (await stack.api.request('POST', '/users', { body: { name: `Grace ${tag}`, email: `grace-${tag}@example.com`, initial_cash: '1000.00' } })).body;
    const { page, problems } = await stack.newPage();
    await signIn(page, stack.url, ADMIN_TOKEN);
    await page.getByRole('tab', { name: 'Users', selected: true }).waitFor();

    await page.getByRole('button', { name: `Account of Grace ${tag} (grace-${tag}@example.com)` }).click();
    await page.getByRole('heading', { name: `Account of Grace ${tag}` }).waitFor();
    await page.getByText('$1,000.00').first().waitFor();

    await page.getByLabel(/^Deposit amount/).fill('250.50');
    await page.getByRole('button', { name: 'Deposit', exact: true }).click();
    await page.getByText(`Deposited $250.50 to Grace ${tag}. Cash balance now $1,250.50.`).waitFor();
    expect((await stack.api.request('GET', `/users/${grace.id}/account`)).body.cash_balance).toBe('1250.50');
    // The list shows the new balance too.
    await expect.poll(() => rowOf(page, /^Users/, `Grace ${tag}`).textContent()).toContain('$1,250.50');

    // A mistake is caught in the page, in words, and nothing is sent.
    await page.getByLabel(/^Deposit amount/).fill('12.345');
    await page.getByRole('button', { name: 'Deposit', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'Not deposited' }).waitFor();
    expect((await stack.api.request('GET', `/users/${grace.id}/account`)).body.cash_balance).toBe('1250.50');

    // Create a user: its key is shown once, and it works.
    await page.getByLabel(/^Name/).fill(`Hedy ${tag}`);
    await page.getByLabel(/^Email/).fill(`hedy-${tag}@example.com`);
    await page.getByLabel(/^Initial cash/).fill('2000');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('heading', { name: `Hedy ${tag} was created: the key is shown only this once` }).waitFor();
    const key = await page.getByLabel(`API key of Hedy ${tag}`).inputValue();
    expect(key).toMatch(/^ptk_/);
    const me = (await stack.api.request('GET', '/me', { token: key })).body;
    expect(me).toMatchObject({ name: `Hedy ${tag}`, email: `hedy-${tag}@example.com` });
    await rowOf(page, /^Users/, `Hedy ${tag}`).waitFor();

    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'admin');
    expect(problems.errors).toEqual([]);
    expect(problems.httpErrors).toEqual([]);
  });

  it('creates a class (teacher key shown once), opens its page, and lists an existing class', async () => {
    const existing = await createClass(`Existing ${uniq()}`);
    const tag = uniq();
    await addMembers(existing.id, [{ name: 'Eve Member', email: `eve-${tag}@school.example` }]);
    const { page, problems } = await stack.newPage();
    await signIn(page, stack.url, ADMIN_TOKEN);
    await page.getByRole('tab', { name: 'Classes' }).click();

    await page.getByLabel(/^Class name/).fill(`UI class ${tag}`);
    await page.getByLabel(/^Starting cash/).fill('2500.00');
    await page.getByLabel(/^Tickers/).fill('aapl, msft');
    await page.getByLabel('market', { exact: true }).check();
    await page.getByLabel(/^Max orders a day/).fill('20');
    await page.getByRole('button', { name: 'Create class' }).click();
    await page.getByRole('heading', { name: `UI class ${tag} was created: its teacher key is shown only this once` }).waitFor();
    const teacherKey = await page.getByLabel(`Teacher key of UI class ${tag}`).inputValue();
    const me = (await stack.api.request('GET', '/me', { token: teacherKey })).body;
    expect(me.teacher).toBe(true);
    const cls = (await stack.api.request('GET', `/classes/${me.class_id}`)).body;
    expect(cls).toMatchObject({ name: `UI class ${tag}`, starting_cash: '2500.00', rules: { tickers: ['AAPL', 'MSFT'], order_types: ['market'], max_orders_per_day: 20 } });

    await page.getByRole('button', { name: `Open UI class ${tag}` }).first().click();
    await page.getByRole('heading', { level: 2, name: `UI class ${tag}` }).waitFor();
    await page.getByText('Tickers: only AAPL, MSFT').waitFor();
    await page.getByRole('button', { name: '← Back to the classes' }).click();

    // The same class page as the teacher's, for a class made elsewhere.
    await page.getByRole('button', { name: /^Open Existing/ }).click();
    await rowOf(page, /Members of the class/, 'Eve Member').waitFor();
    await rowOf(page, /Leaderboard by return/, 'Eve Member').waitFor();
    await page.getByRole('button', { name: '← Back to the classes' }).click();
    await page.getByRole('table', { name: /^Classes/ }).waitFor();
    expect(problems.errors).toEqual([]);
    expect(problems.httpErrors).toEqual([]);
  });

  it('runs the audit and shows it clean, sets a price, and forces the market closed and open', async () => {
    const { page, problems } = await stack.newPage();
    await signIn(page, stack.url, ADMIN_TOKEN);

    await page.getByRole('tab', { name: 'Audit' }).click();
    await page.getByRole('button', { name: 'Run the audit' }).click();
    await page.getByText(/^Clean: all \d+ invariants hold\./).waitFor();
    await page.getByText(/Checked \d+ users?, \d+ orders? and \d+ fills? in \d+ ms/).waitFor();

    await page.getByRole('tab', { name: 'Scenario' }).click();
    await page.getByText('following the always-open calendar').waitFor();
    await page.getByLabel(/^Ticker/).fill('aapl');
    await page.getByLabel(/^Price/).fill('123.4567');
    await page.getByRole('button', { name: 'Set price' }).click();
    await page.getByText(/^AAPL is now 123\.4567/).waitFor();
    expect((await stack.api.request('GET', '/prices/AAPL')).body.price).toBe('123.4567');

    await page.getByRole('button', { name: 'Force the market closed' }).click();
    await page.getByText('The market is forced closed').waitFor();
    await page.getByText('forced closed (until set back to the calendar)').waitFor();
    expect((await stack.api.request('GET', '/clock')).body).toMatchObject({ is_open: false, forced: 'closed' });

    await page.getByRole('button', { name: 'Force the market open' }).click();
    await page.getByText('The market is forced open').waitFor();
    await page.getByText('forced open (until set back to the calendar)').waitFor();
    expect((await stack.api.request('GET', '/clock')).body).toMatchObject({ is_open: true, forced: 'open' });

    await page.getByRole('button', { name: 'Back to the calendar' }).click();
    await page.getByText('The market follows the calendar again').waitFor();
    expect((await stack.api.request('GET', '/clock')).body.forced).toBeNull();
    await adminPrice(stack.api, 'AAPL', '100.00');
    expect(problems.errors).toEqual([]);
    expect(problems.httpErrors).toEqual([]);

    // On a phone, every tab reflows without scrolling sideways.
    const phone = await stack.newPage({ width: 390, height: 844 });
    await signIn(phone.page, stack.url, ADMIN_TOKEN);
    for (const tab of ['Users', 'Classes', 'Audit', 'Scenario']) {
      await phone.page.getByRole('tab', { name: tab }).click();
      await phone.page.getByRole('tabpanel', { name: tab }).waitFor();
      expect(await documentOverflowPx(phone.page), tab).toBeLessThanOrEqual(0);
    }
    expect(phone.problems.errors).toEqual([]);
  });
});
