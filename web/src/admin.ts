/**
 * The admin's page (the admin token), in four tabs: Users (list, create, open an account,
 * deposit), Classes (list, create, open one: the same class page as its teacher's), Audit (run
 * it, read the result in words) and Scenario (set a price, force the market open or closed).
 * Every tab is built the first time it is chosen and kept, so switching back finds it as it
 * was left.
 */
import './class.css';
import type { Unmount, ViewContext } from './context.js';
import { field, h, replace, table } from './dom.js';
import { dateTime, decimal, money, price, time } from './format.js';
import { alertArea, clearArea, facts, keyedTable, onceField, onSubmit, randomKey, showError, showProblem, statusArea, tabId, tabList } from './kit.js';
import { mountClassView, rulesText, type ClassBody } from './class-view.js';
import { parseCash, parsePrice } from '../../src/core/money.js';
import { ORDER_TYPES } from '../../src/core/order-terms.js';
import { validateNewUser } from '../../src/core/roster.js';
import type { Account, Clock } from './trader/types.js';

interface UserRow {
  id: string;
  name: string;
  email: string;
  created_at: string;
  cash_balance: string;
}

interface AuditViolation {
  user_id: string | null;
  ticker: string | null;
  order_id: string | null;
  ledger_id: string | null;
  field: string;
  expected: string | null;
  actual: string | null;
  detail: string | null;
}

interface AuditReport {
  ok: boolean;
  checked_at: string;
  duration_ms: number;
  counts: { users: number; orders: number; fills: number };
  invariants: { id: string; name: string; description: string; violations: number; duration_ms: number; examples: AuditViolation[] }[];
}

/** Rows a page of users or classes shows. */
const PAGE_SIZE = 50;

/**
 * Paging over a list the API pages with `?after=<next>`: it keeps the cursor of every page
 * seen, so Previous goes back without the API needing a `before`.
 */
class Pager {
  private readonly cursors: (string | null)[] = [null];
  private next: string | null = null;
  readonly previousButton = h('button', { type: 'button', class: 'secondary' }, 'Previous page');
  readonly nextButton = h('button', { type: 'button', class: 'secondary' }, 'Next page');

  constructor(load: () => Promise<void>) {
    this.previousButton.addEventListener('click', () => {
      if (this.cursors.length > 1) this.cursors.pop();
      void load();
    });
    this.nextButton.addEventListener('click', () => {
      if (!this.next) return;
      this.cursors.push(this.next);
      void load();
    });
  }

  /** 1 for the first page. */
  get pageNumber(): number {
    return this.cursors.length;
  }

  /** The query's cursor part for the current page ('' on the first). */
  get query(): string {
    const after = this.cursors[this.cursors.length - 1];
    return after ? `&after=${after}` : '';
  }

  /** After a page loaded: where Next goes, and which buttons can be pressed. */
  settle(next: string | null): void {
    this.next = next;
    this.previousButton.disabled = this.cursors.length <= 1;
    this.nextButton.disabled = !next;
  }
}

const count = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/** A mounted tab: its element and what stops its timers. */
interface Panel {
  el: HTMLElement;
  dispose(): void;
}

type TabId = 'users' | 'classes' | 'audit' | 'scenario';
const TABS: { id: TabId; label: string }[] = [
  { id: 'users', label: 'Users' },
  { id: 'classes', label: 'Classes' },
  { id: 'audit', label: 'Audit' },
  { id: 'scenario', label: 'Scenario' },
];

export function mountAdmin(root: HTMLElement, ctx: ViewContext): Unmount {
  const panelId = (id: string): string => `admin-panel-${id}`;
  const panels = new Map<TabId, Panel>();
  const holders = new Map<TabId, HTMLElement>(
    TABS.map((t) => [t.id, h('div', { role: 'tabpanel', id: panelId(t.id), 'aria-labelledby': tabId('admin', t.id), tabindex: '-1', hidden: true })]),
  );
  const build: Record<TabId, (visible: () => boolean) => Panel> = {
    users: () => usersPanel(ctx),
    classes: (visible) => classesPanel(ctx, visible),
    audit: () => auditPanel(ctx),
    scenario: () => scenarioPanel(ctx),
  };
  const show = (id: string): void => {
    for (const [tab, holder] of holders) {
      holder.hidden = tab !== id;
      if (tab === id && !panels.has(tab)) {
        const panel = build[tab](() => !holder.hidden);
        panels.set(tab, panel);
        holder.append(panel.el);
      }
    }
  };
  const tabs = tabList({ label: 'Admin', idPrefix: 'admin', tabs: TABS, panelFor: panelId, select: show });
  replace(root, h('div', { class: 'admin-view' }, h('h1', {}, 'Admin'), tabs.el, ...holders.values()));
  show('users');
  return () => {
    for (const panel of panels.values()) panel.dispose();
  };
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

function usersPanel(ctx: ViewContext): Panel {
  // Create a user.
  const nameInput = h('input', { type: 'text', autocomplete: 'off', required: true, maxlength: 200 });
  const emailInput = h('input', { type: 'email', autocomplete: 'off', required: true, maxlength: 320 });
  const cashInput = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00' });
  const createAlert = alertArea();
  const created = h('div');
  const createForm = h(
    'form',
    { class: 'stack', 'aria-label': 'Create a user' },
    h('div', { class: 'row top' }, field('Name', nameInput), field('Email', emailInput), field('Initial cash (optional)', cashInput, '0 or more, at most 2 decimals; empty: 0')),
    createAlert,
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Create user')),
  );
  onSubmit(createForm, async () => {
    clearArea(createAlert);
    let person: { name: string; email: string };
    try {
      person = validateNewUser({ name: nameInput.value, email: emailInput.value }, 'the user');
      if (cashInput.value.trim() !== '') parseCash(cashInput.value.trim(), 'initial cash', { allowZero: true });
    } catch (error) {
      showProblem(createAlert, `Not created: ${(error as Error).message}.`);
      return;
    }
    const body: Record<string, string> = { ...person };
    if (cashInput.value.trim() !== '') body.initial_cash = cashInput.value.trim();
    try {
      const user = await ctx.api.post<UserRow & { api_key: string; key_id: string; secret_key: string }>('/users', body);
      createForm.reset();
      showCreated(user);
      void loadPage();
    } catch (error) {
      showError(createAlert, error, `${person.name} was not created.`);
    }
  });

  const showCreated = (user: { id: string; name: string; email: string; api_key: string; key_id: string; secret_key: string }): void => {
    const headingId = `created-${user.id}`;
    const card = h(
      'section',
      { class: 'keys-once', 'aria-labelledby': headingId },
      h('h3', { id: headingId, tabindex: '-1' }, `${user.name} was created: the key is shown only this once`),
      h('p', {}, 'Copy the key now and hand it to its owner. papertrade keeps only a fingerprint of it and cannot show it again.'),
      field(`API key of ${user.name}`, onceField(user.api_key), 'Authorization: Bearer <this key>'),
      h('div', { class: 'row top' }, field('Alpaca key ID', onceField(user.key_id)), field('Alpaca secret key', onceField(user.secret_key))),
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', class: 'secondary', onclick: () => void openAccount(user) }, `Open the account of ${user.name}`),
        h('button', { type: 'button', class: 'secondary', onclick: () => created.replaceChildren() }, 'I have saved the key: hide it'),
      ),
    );
    replace(created, card);
    card.querySelector<HTMLElement>('h3')!.focus();
  };

  // The list, a page at a time.
  const listAlert = alertArea();
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading the users…'));
  const pageInfo = h('p', { class: 'muted small' });
  const pager = new Pager(() => loadPage());
  const refreshButton = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const loadPage = async (): Promise<void> => {
    try {
      const page = await ctx.api.get<{ users: UserRow[]; next: string | null }>(`/users?limit=${PAGE_SIZE}${pager.query}`);
      clearArea(listAlert);
      const users = keyedTable<UserRow>(
        [
          {
            header: 'Name',
            cell: (u) => h('button', { type: 'button', class: 'link-button', 'aria-label': `Account of ${u.name} (${u.email})`, onclick: () => void openAccount(u) }, u.name),
          },
          { header: 'Email', cell: (u) => u.email, className: 'wide-only' },
          { header: 'Cash balance', cell: (u) => money(u.cash_balance), numeric: true },
          { header: 'Created', cell: (u) => dateTime(u.created_at), className: 'wide-only' },
        ],
        (u) => u.id,
        'Users, in the order they were created',
        pager.pageNumber > 1 ? 'No more users.' : 'No users yet: create one above.',
      );
      users.update(page.users);
      replace(list, users.el);
      pageInfo.textContent = page.users.length === 0 ? '' : `Page ${pager.pageNumber}: ${count(page.users.length, 'user')}${page.next ? '; more on the next page' : ''}.`;
      pager.settle(page.next);
    } catch (error) {
      showError(listAlert, error, 'Could not list the users.');
    }
  };
  refreshButton.addEventListener('click', () => void loadPage());

  // One user's account, with the deposit form.
  const account = h('div', { class: 'stack' }, h('p', { class: 'muted' }, 'Choose a user in the list to see their account and make a deposit.'));
  let pendingDeposit: { userId: string; amount: string; key: string } | undefined;
  const openAccount = async (user: { id: string; name: string; email: string }): Promise<void> => {
    const numbers = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    const accountAlert = alertArea();
    const amountInput = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', required: true, placeholder: '1000.00' });
    const depositAlert = alertArea();
    const depositDone = statusArea();
    const headingId = `account-h-${user.id}`;
    const load = async (): Promise<void> => {
      try {
        const a = await ctx.api.get<Account>(`/users/${user.id}/account`);
        clearArea(accountAlert);
        replace(
          numbers,
          facts([
            ['Cash balance', money(a.cash_balance)],
            ['Available cash', money(a.available_cash)],
            ['Held for open orders', money(a.reserved_cash)],
            ['Positions value', money(a.positions_value)],
            ['Equity', money(a.equity)],
          ]),
        );
      } catch (error) {
        showError(accountAlert, error, `Could not read the account of ${user.name}.`);
      }
    };
    const depositForm = h(
      'form',
      { class: 'stack', 'aria-label': `Deposit to ${user.name}` },
      field('Deposit amount', amountInput, 'more than 0, at most 2 decimals'),
      h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Deposit')),
      depositAlert,
      depositDone,
    );
    onSubmit(depositForm, async () => {
      clearArea(depositAlert);
      replace(depositDone, '');
      const amount = amountInput.value.trim();
      try {
        parseCash(amount, 'amount');
      } catch (error) {
        showProblem(depositAlert, `Not deposited: ${(error as Error).message}.`);
        return;
      }
      // One key per deposit meant: a retry of the same amount after a failure sends the same key,
      // so a deposit whose answer was lost on the way is not made a second time.
      if (!pendingDeposit || pendingDeposit.userId !== user.id || pendingDeposit.amount !== amount) pendingDeposit = { userId: user.id, amount, key: randomKey('deposit') };
      try {
        const after = await ctx.api.post<Account>(`/users/${user.id}/deposits`, { amount }, { idempotencyKey: pendingDeposit.key });
        pendingDeposit = undefined;
        amountInput.value = '';
        replace(depositDone, `Deposited ${money(amount)} to ${user.name}. Cash balance now ${money(after.cash_balance)}.`);
        await load();
        void loadPage();
      } catch (error) {
        showError(depositAlert, error, `${money(amount)} was not deposited to ${user.name}; trying again sends the same deposit, not a second one.`);
      }
    });
    replace(
      account,
      h('h3', { id: headingId, tabindex: '-1' }, `Account of ${user.name}`),
      h('p', { class: 'muted' }, user.email, ' · ', h('code', {}, user.id)),
      accountAlert,
      numbers,
      h('div', { class: 'row' }, h('button', { type: 'button', class: 'secondary', onclick: () => void load() }, 'Refresh the account')),
      depositForm,
    );
    account.querySelector<HTMLElement>('h3')!.focus();
    await load();
  };

  const el = h(
    'div',
    { class: 'grid' },
    h('section', { class: 'card span-12', 'aria-labelledby': 'users-create-h' }, h('h2', { id: 'users-create-h' }, 'Create a user'), createForm, created),
    h(
      'section',
      { class: 'card span-7', 'aria-labelledby': 'users-list-h' },
      h('h2', { id: 'users-list-h' }, 'Users'),
      listAlert,
      list,
      pageInfo,
      h('div', { class: 'row' }, pager.previousButton, pager.nextButton, refreshButton),
    ),
    h('section', { class: 'card span-5', 'aria-labelledby': 'users-account-h' }, h('h2', { id: 'users-account-h' }, 'Account'), account),
  );
  void loadPage();
  return { el, dispose: () => undefined };
}

// ---------------------------------------------------------------------------------------------
// Classes
// ---------------------------------------------------------------------------------------------

function classesPanel(ctx: ViewContext, visible: () => boolean): Panel {
  const nameInput = h('input', { type: 'text', autocomplete: 'off', required: true, maxlength: 200 });
  const cashInput = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', required: true, placeholder: '100000.00' });
  const startsInput = h('input', { type: 'datetime-local' });
  const endsInput = h('input', { type: 'datetime-local' });
  const tickersInput = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'AAPL, MSFT' });
  const typeBoxes = ORDER_TYPES.map((t) => h('input', { type: 'checkbox', value: t }));
  const positionInput = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', placeholder: '25' });
  const ordersInput = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', placeholder: '20' });
  const commissionInput = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00' });
  const visibleBox = h('input', { type: 'checkbox', checked: true });
  const createAlert = alertArea();
  const created = h('div');
  const createForm = h(
    'form',
    { class: 'stack', 'aria-label': 'Create a class' },
    h('div', { class: 'row top' }, field('Class name', nameInput), field('Starting cash', cashInput, 'each member starts with it; 0 or more, at most 2 decimals')),
    h('div', { class: 'row top' }, field('Starts at (optional)', startsInput, 'your local time; empty: already open'), field('Ends at (optional)', endsInput, 'your local time; empty: no end')),
    h(
      'fieldset',
      { class: 'rules-fieldset' },
      h('legend', {}, 'Rules (each optional: a rule left empty allows everything)'),
      h(
        'div',
        { class: 'row top' },
        field('Tickers', tickersInput, 'listed tickers, separated by commas or spaces'),
        field('Max position (% of equity)', positionInput, 'above 0, at most 100'),
        field('Max orders a day', ordersInput, 'a whole number'),
        field('Commission per fill', commissionInput, 'cash, at most 2 decimals'),
      ),
      h('fieldset', { class: 'checks' }, h('legend', {}, 'Order types allowed (none ticked: all)'), ...typeBoxes.map((box) => h('label', { class: 'check' }, box, ` ${box.value}`))),
    ),
    h('label', { class: 'check' }, visibleBox, ' Members see the leaderboard'),
    createAlert,
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Create class')),
  );
  onSubmit(createForm, async () => {
    clearArea(createAlert);
    const problems: string[] = [];
    const name = nameInput.value.trim();
    if (name === '') problems.push('The class needs a name.');
    const cash = cashInput.value.trim();
    try {
      parseCash(cash, 'starting cash', { allowZero: true });
    } catch (error) {
      problems.push(`Starting cash: ${(error as Error).message}.`);
    }
    const body: Record<string, unknown> = { name, starting_cash: cash, leaderboard_visible: visibleBox.checked };
    // datetime-local is the viewer's wall-clock time; the API wants an instant with its offset.
    for (const [input, key, label] of [
      [startsInput, 'starts_at', 'Starts at'],
      [endsInput, 'ends_at', 'Ends at'],
    ] as const) {
      if (input.value === '') continue;
      const at = new Date(input.value);
      if (Number.isNaN(at.getTime())) problems.push(`${label} is not a date and time.`);
      else body[key] = at.toISOString();
    }
    const rules: Record<string, unknown> = {};
    const tickers = tickersInput.value.split(/[\s,]+/).filter(Boolean);
    if (tickers.length > 0) rules.tickers = tickers.map((t) => t.toUpperCase());
    const types = typeBoxes.filter((b) => b.checked).map((b) => b.value);
    if (types.length > 0) rules.order_types = types;
    if (positionInput.value.trim() !== '') rules.max_position_pct = positionInput.value.trim();
    const orders = ordersInput.value.trim();
    if (orders !== '') {
      // A count of orders, not money: an integer is checked by its digits.
      if (!/^[0-9]{1,7}$/.test(orders) || orders === '0' || /^0+$/.test(orders)) problems.push('Max orders a day must be a whole number from 1 to 1,000,000.');
      else rules.max_orders_per_day = Number(orders);
    }
    const commission = commissionInput.value.trim();
    if (commission !== '') {
      try {
        parseCash(commission, 'commission', { allowZero: true });
        rules.commission_per_order = commission;
      } catch (error) {
        problems.push(`Commission: ${(error as Error).message}.`);
      }
    }
    if (Object.keys(rules).length > 0) body.rules = rules;
    if (problems.length > 0) {
      showProblem(createAlert, 'The class was not created:', ...problems);
      return;
    }
    try {
      const cls = await ctx.api.post<ClassBody & { teacher_key: string }>('/classes', body);
      createForm.reset();
      visibleBox.checked = true;
      showCreated(cls);
      void loadPage();
    } catch (error) {
      showError(createAlert, error, `${name} was not created.`);
    }
  });

  const showCreated = (cls: ClassBody & { teacher_key: string }): void => {
    const headingId = `class-created-${cls.id}`;
    const card = h(
      'section',
      { class: 'keys-once', 'aria-labelledby': headingId },
      h('h3', { id: headingId, tabindex: '-1' }, `${cls.name} was created: its teacher key is shown only this once`),
      h('p', {}, 'Copy the teacher key now and give it to the teacher. papertrade keeps only a fingerprint of it and cannot show it again.'),
      field(`Teacher key of ${cls.name}`, onceField(cls.teacher_key), 'the teacher signs in with it'),
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', class: 'secondary', onclick: () => openClass(cls) }, `Open ${cls.name}`),
        h('button', { type: 'button', class: 'secondary', onclick: () => created.replaceChildren() }, 'I have saved the key: hide it'),
      ),
    );
    replace(created, card);
    card.querySelector<HTMLElement>('h3')!.focus();
  };

  // The list of classes, a page at a time.
  const listAlert = alertArea();
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading the classes…'));
  const pager = new Pager(() => loadPage());
  const openButtons = new Map<string, HTMLButtonElement>();
  const loadPage = async (): Promise<void> => {
    try {
      const page = await ctx.api.get<{ classes: ClassBody[]; next: string | null }>(`/classes?limit=${PAGE_SIZE}${pager.query}`);
      clearArea(listAlert);
      openButtons.clear();
      const classes = keyedTable<ClassBody>(
        [
          { header: 'Name', cell: (c) => c.name },
          { header: 'Starting cash', cell: (c) => money(c.starting_cash), numeric: true },
          { header: 'Window', cell: (c) => `${c.starts_at ? dateTime(c.starts_at) : 'any time'} to ${c.ends_at ? dateTime(c.ends_at) : 'no end'}`, className: 'wide-only' },
          { header: 'Rules', cell: (c) => rulesSummary(c), className: 'wide-only' },
          { header: 'Leaderboard', cell: (c) => (c.leaderboard_visible ? 'visible' : 'hidden'), className: 'wide-only' },
          {
            header: 'Open',
            cell: (c) => {
              const b = h('button', { type: 'button', class: 'secondary small-button', 'aria-label': `Open ${c.name}`, onclick: () => openClass(c) }, 'Open');
              openButtons.set(c.id, b);
              return b;
            },
          },
        ],
        (c) => c.id,
        'Classes, in the order they were created',
        pager.pageNumber > 1 ? 'No more classes.' : 'No classes yet: create one above.',
      );
      classes.update(page.classes);
      replace(list, classes.el);
      pager.settle(page.next);
    } catch (error) {
      showError(listAlert, error, 'Could not list the classes.');
    }
  };

  const listView = h(
    'div',
    { class: 'grid' },
    h('section', { class: 'card span-12', 'aria-labelledby': 'classes-create-h' }, h('h2', { id: 'classes-create-h' }, 'Create a class'), createForm, created),
    h(
      'section',
      { class: 'card span-12', 'aria-labelledby': 'classes-list-h' },
      h('h2', { id: 'classes-list-h' }, 'Classes'),
      listAlert,
      list,
      h('div', { class: 'row' }, pager.previousButton, pager.nextButton, h('button', { type: 'button', class: 'secondary', onclick: () => void loadPage() }, 'Refresh')),
    ),
  );
  const el = h('div', {}, listView);
  let closeClass: Unmount | undefined;

  // An open class replaces the list (kept as it was) until "Back to the classes".
  function openClass(c: ClassBody): void {
    closeClass?.();
    const holder = h('div');
    const back = h('button', { type: 'button', class: 'secondary' }, '← Back to the classes');
    const page = h('div', { class: 'stack' }, h('div', { class: 'row' }, back), holder);
    back.addEventListener('click', () => {
      closeClass?.();
      closeClass = undefined;
      replace(el, listView);
      (openButtons.get(c.id) ?? listView.querySelector<HTMLElement>('h2'))?.focus();
    });
    replace(el, page);
    closeClass = mountClassView(holder, ctx, c.id, { titleTag: 'h2', visible: () => visible() && holder.isConnected });
    back.focus();
  }

  void loadPage();
  return { el, dispose: () => closeClass?.() };
}

function rulesSummary(c: ClassBody): string {
  const set = rulesText(c.rules, true);
  return set.length === 0 ? 'none' : set.join('; ');
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

function auditPanel(ctx: ViewContext): Panel {
  const runAlert = alertArea();
  const result = statusArea();
  const details = h('div');
  const runButton = h('button', { type: 'button' }, 'Run the audit');
  const run = async (): Promise<void> => {
    clearArea(runAlert);
    replace(result, 'Checking every invariant over one snapshot of the database…');
    details.replaceChildren();
    let report: AuditReport;
    try {
      report = await ctx.api.get<AuditReport>('/admin/audit');
    } catch (error) {
      replace(result, '');
      showError(runAlert, error, 'The audit could not run.');
      return;
    }
    const broken = report.invariants.filter((i) => i.violations > 0);
    const total = broken.reduce((n, i) => n + i.violations, 0);
    const checked = `Checked ${count(report.counts.users, 'user')}, ${count(report.counts.orders, 'order')} and ${count(report.counts.fills, 'fill')} in ${report.duration_ms} ms, at ${dateTime(report.checked_at)}.`;
    replace(
      result,
      h(
        'p',
        { class: report.ok ? 'verdict ok' : 'verdict broken' },
        h('strong', {}, report.ok ? `Clean: all ${report.invariants.length} invariants hold.` : `Not clean: ${count(total, 'violation')} of ${count(broken.length, 'invariant')}.`),
        ' ',
        checked,
      ),
    );
    replace(
      details,
      ...broken.map((inv) =>
        h(
          'section',
          { class: 'violations', 'aria-labelledby': `inv-${inv.id}` },
          h('h3', { id: `inv-${inv.id}` }, `Invariant ${inv.id} (${inv.name}): ${count(inv.violations, 'violation')}`),
          h('p', {}, inv.description),
          table<AuditViolation>(
            [
              { header: 'User', cell: (v) => (v.user_id ? h('code', {}, v.user_id) : '—') },
              { header: 'Ticker', cell: (v) => v.ticker ?? '—' },
              { header: 'Order', cell: (v) => (v.order_id ? h('code', {}, v.order_id) : '—') },
              { header: 'Ledger row', cell: (v) => v.ledger_id ?? '—' },
              { header: 'Field', cell: (v) => v.field },
              { header: 'Expected', cell: (v) => v.expected ?? 'no row', numeric: true },
              { header: 'Actual', cell: (v) => v.actual ?? 'no row', numeric: true },
              { header: 'Detail', cell: (v) => v.detail ?? '' },
            ],
            inv.examples,
            'No example listed.',
            `Violations of invariant ${inv.id}`,
          ),
          inv.examples.length < inv.violations ? h('p', { class: 'muted' }, `Showing ${inv.examples.length} of ${inv.violations}.`) : null,
        ),
      ),
      h(
        'details',
        {},
        h('summary', {}, 'Every invariant checked'),
        table(
          [
            { header: '#', cell: (i: AuditReport['invariants'][number]) => i.id },
            { header: 'Invariant', cell: (i) => i.description },
            { header: 'Violations', cell: (i) => i.violations, numeric: true },
            { header: 'Time (ms)', cell: (i) => i.duration_ms, numeric: true },
          ],
          report.invariants,
          'No invariant was checked.',
          'Every invariant and its violations',
        ),
      ),
    );
  };
  runButton.addEventListener('click', () => {
    if (runButton.disabled) return;
    runButton.disabled = true;
    void run().finally(() => (runButton.disabled = false));
  });
  const el = h(
    'section',
    { class: 'card', 'aria-labelledby': 'audit-h' },
    h('h2', { id: 'audit-h' }, 'Audit'),
    h(
      'p',
      { class: 'muted' },
      'Checks every invariant of the books (cash, holds, ledger, holdings, fills, events, commissions) over one read-only snapshot; safe while the system trades. It reads whole tables, so on a large database it takes seconds.',
    ),
    h('div', { class: 'row' }, runButton),
    runAlert,
    result,
    details,
  );
  return { el, dispose: () => undefined };
}

// ---------------------------------------------------------------------------------------------
// Scenario
// ---------------------------------------------------------------------------------------------

function clockFacts(c: Clock): HTMLElement {
  return facts([
    ['Market', c.is_open ? 'open' : 'closed'],
    ['Control', c.forced ? `forced ${c.forced} (until set back to the calendar)` : `following the ${c.calendar === 'nyse' ? 'NYSE' : 'always-open'} calendar`],
    ['Next open', dateTime(c.next_open)],
    ['Next close', dateTime(c.next_close)],
    ['As of', dateTime(c.timestamp)],
  ]);
}

function scenarioPanel(ctx: ViewContext): Panel {
  // The clock and the market override.
  const clockBox = h('div', { class: 'clock' }, h('p', { class: 'muted' }, 'Loading the clock…'));
  const clockAlert = alertArea();
  const clockDone = statusArea();
  const showClock = (c: Clock): void => replace(clockBox, clockFacts(c));
  const loadClock = async (): Promise<void> => {
    try {
      showClock(await ctx.api.get<Clock>('/clock'));
      clearArea(clockAlert);
    } catch (error) {
      showError(clockAlert, error, 'Could not read the clock.');
    }
  };
  const force = (state: 'open' | 'closed' | 'auto') => async (): Promise<void> => {
    clearArea(clockAlert);
    replace(clockDone, '');
    try {
      const c = await ctx.api.post<Clock>('/admin/market', { state });
      showClock(c);
      replace(
        clockDone,
        state === 'auto'
          ? `The market follows the calendar again: it is ${c.is_open ? 'open' : 'closed'} now.`
          : `The market is forced ${state}${state === 'closed' ? ': the close ran (cls orders executed, day orders expired)' : ': the open ran (opg and waiting market orders executed)'}.`,
      );
    } catch (error) {
      showError(clockAlert, error, state === 'auto' ? 'The market was not set back to the calendar.' : `The market was not forced ${state}.`);
    }
  };
  const stateButton = (label: string, state: 'open' | 'closed' | 'auto', cls: string): HTMLButtonElement => {
    const b = h('button', { type: 'button', class: cls }, label);
    b.addEventListener('click', () => {
      if (b.disabled) return;
      b.disabled = true;
      void force(state)().finally(() => (b.disabled = false));
    });
    return b;
  };

  // Set a price.
  const tickerInput = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', required: true, maxlength: 10, list: 'scenario-tickers', placeholder: 'AAPL' });
  const priceInput = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', required: true, placeholder: '104.50' });
  const tickers = h('datalist', { id: 'scenario-tickers' });
  const priceAlert = alertArea();
  const priceDone = statusArea();
  const priceForm = h(
    'form',
    { class: 'stack', 'aria-label': 'Set a price' },
    h('div', { class: 'row top' }, field('Ticker', tickerInput), field('Price', priceInput, 'above 0, at most 4 decimals')),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Set price')),
    tickers,
    priceAlert,
    priceDone,
  );
  onSubmit(priceForm, async () => {
    clearArea(priceAlert);
    replace(priceDone, '');
    const ticker = tickerInput.value.trim();
    const value = priceInput.value.trim();
    const problems: string[] = [];
    if (!/^[A-Za-z][A-Za-z0-9.]{0,9}$/.test(ticker)) problems.push('The ticker must be one such as AAPL or BRK.B.');
    try {
      parsePrice(value, 'price');
    } catch (error) {
      problems.push(`Price: ${(error as Error).message}.`);
    }
    if (problems.length > 0) {
      showProblem(priceAlert, 'No price was set:', ...problems);
      return;
    }
    try {
      const q = await ctx.api.put<{ ticker: string; price: string; as_of: string }>(`/admin/prices/${encodeURIComponent(ticker)}`, { price: value });
      replace(priceDone, `${q.ticker} is now ${price(q.price)} (${decimal(q.price, 4)} exactly), as of ${time(q.as_of)}. Resting orders it reaches execute at it.`);
    } catch (error) {
      showError(priceAlert, error, `No price was set for ${ticker.toUpperCase()}.`);
    }
  });
  // The tickers the server lists, offered while typing; the field takes any text without them.
  void ctx.api.get<{ instruments: { ticker: string; name: string }[] }>('/instruments').then(
    (answer) => replace(tickers, ...answer.instruments.map((i) => h('option', { value: i.ticker }, i.name))),
    () => undefined,
  );

  const el = h(
    'div',
    { class: 'grid' },
    h(
      'section',
      { class: 'card span-6', 'aria-labelledby': 'scenario-clock-h' },
      h('h2', { id: 'scenario-clock-h' }, 'Market clock'),
      clockBox,
      h(
        'p',
        { class: 'muted' },
        'Forcing the market closed runs the close (cls orders execute, day orders expire); forcing it open runs the open. The override holds for every process until set back to the calendar.',
      ),
      h(
        'div',
        { class: 'row' },
        stateButton('Force the market open', 'open', ''),
        stateButton('Force the market closed', 'closed', 'danger'),
        stateButton('Back to the calendar', 'auto', 'secondary'),
        h('button', { type: 'button', class: 'secondary', onclick: () => void loadClock() }, 'Refresh the clock'),
      ),
      clockAlert,
      clockDone,
    ),
    h(
      'section',
      { class: 'card span-6', 'aria-labelledby': 'scenario-price-h' },
      h('h2', { id: 'scenario-price-h' }, 'Set a price'),
      h('p', { class: 'muted' }, 'Published now as a feed tick is: quotes, the tick log resting orders are checked against, and the minute bar. A live feed overwrites it at its next tick.'),
      priceForm,
    ),
  );
  void loadClock();
  return { el, dispose: () => undefined };
}
