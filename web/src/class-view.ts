/**
 * One class's page, the same for its teacher (a teacher key) and for the admin: the class
 * (window, rules, starting cash), its members with their equity and return, the leaderboard by
 * each metric, adding members from a roster, and resetting a member. A teacher key may not use
 * the live stream, so the page polls: the leaderboard every few seconds, the member list less
 * often (it changes only when members are added, and its cash moves with the leaderboard).
 */
import './class.css';
import type { ViewContext, Unmount } from './context.js';
import { append, field, h, replace } from './dom.js';
import { dateTime, decimal, money, pct, qty, sign, time } from './format.js';
import { alertArea, clearArea, facts, keyedTable, poll, showError, showProblem, statusArea, tabId, tabList } from './kit.js';
import { rosterSection } from './roster.js';
import { parseCash } from '../../src/core/money.js';

export interface ClassRules {
  tickers?: string[];
  order_types?: string[];
  max_position_pct?: string;
  max_orders_per_day?: number;
  commission_per_order: string;
}

/** A class as GET /classes/{id} answers it. */
export interface ClassBody {
  id: string;
  name: string;
  starting_cash: string;
  starts_at: string | null;
  ends_at: string | null;
  rules: ClassRules;
  leaderboard_visible: boolean;
  created_at: string;
}

interface Member {
  user_id: string;
  name: string;
  email: string;
  joined_at: string;
  cash_balance: string;
}

interface Entry {
  rank: number;
  user_id: string;
  name: string;
  equity: string;
  return_pct: string;
  sharpe: string | null;
  max_drawdown_pct: string;
  trades: number;
}

interface Board {
  as_of: string;
  entries: Entry[];
}

interface ResetAnswer {
  user_id: string;
  cash_balance: string;
  equity: string;
  reset: { id: string; cash_before: string; orders_canceled: number; positions_removed: { ticker: string; quantity: string }[] };
}

type Metric = 'return' | 'sharpe' | 'max_drawdown';
const METRICS: { id: Metric; label: string; says: string }[] = [
  { id: 'return', label: 'Return', says: 'highest return first' },
  { id: 'sharpe', label: 'Sharpe ratio', says: 'highest Sharpe ratio first; none yet last' },
  { id: 'max_drawdown', label: 'Max drawdown', says: 'smallest maximum drawdown first' },
];

/**
 * How often the leaderboard is refreshed. The member list comes with it while it is one page;
 * a longer list (several requests) only every so many refreshes.
 */
export const BOARD_REFRESH_MS = 5_000;
const LONG_MEMBERS_EVERY = 6;
/** GET /classes/{id}/members answers at most this many a page. */
const MEMBERS_PAGE = 500;

/** Whether the class is running now, in words (a window's ends are ISO instants). */
function windowText(c: ClassBody): string {
  const now = Date.now();
  const starts = c.starts_at ? Date.parse(c.starts_at) : undefined;
  const ends = c.ends_at ? Date.parse(c.ends_at) : undefined;
  const span = `${c.starts_at ? dateTime(c.starts_at) : 'any time'} to ${c.ends_at ? dateTime(c.ends_at) : 'no end'}`;
  if (starts !== undefined && now < starts) return `${span} (not started yet: orders are refused until it starts)`;
  if (ends !== undefined && now >= ends) return `${span} (ended: orders are refused)`;
  return `${span} (open now)`;
}

/** The class's rules, one line each, in words; `onlySet` leaves out the rules that allow everything. */
export function rulesText(r: ClassRules, onlySet = false): string[] {
  const lines: [boolean, string][] = [
    r.tickers && r.tickers.length > 0 ? [true, `Tickers: only ${r.tickers.join(', ')}`] : [false, 'Tickers: any listed ticker'],
    r.order_types && r.order_types.length > 0 ? [true, `Order types: only ${r.order_types.join(', ')}`] : [false, 'Order types: any'],
    r.max_position_pct ? [true, `A position in one ticker: at most ${decimal(r.max_position_pct, 2)}% of equity`] : [false, 'Position size: no limit'],
    r.max_orders_per_day !== undefined ? [true, `Orders: at most ${r.max_orders_per_day.toLocaleString('en-US')} a market day`] : [false, 'Orders a day: no limit'],
    /[1-9]/.test(r.commission_per_order) ? [true, `Commission: ${money(r.commission_per_order)} on each fill`] : [false, 'Commission: none'],
  ];
  return lines.filter(([set]) => set || !onlySet).map(([, text]) => text);
}

const toned = (value: string | null | undefined): string | undefined => (sign(value) > 0 ? 'up' : sign(value) < 0 ? 'down' : undefined);

export interface ClassViewOptions {
  /** The class name's heading: h1 on the teacher's page, h2 inside the admin's tabs. */
  titleTag?: 'h1' | 'h2';
  /** Whether the page is on screen (the admin's tabs hide it): polling waits while it is not. */
  visible?: () => boolean;
}

export function mountClassView(root: HTMLElement, ctx: ViewContext, classId: string, options: ClassViewOptions = {}): Unmount {
  const titleTag = options.titleTag ?? 'h1';
  let cls: ClassBody | undefined;
  let members: Member[] = [];
  const boards = new Map<Metric, Board>();
  let metric: Metric = 'return';
  let ticks = 0;
  let memberPages = 1;

  // The class card.
  const title = h(titleTag, { class: 'class-title' }, 'Class');
  const classFacts = h('div', {}, h('p', { class: 'muted' }, 'Loading the class…'));
  const loadAlert = alertArea();
  const updated = h('p', { class: 'muted small' });

  // Members, merged with the return leaderboard (equity, return, trades).
  const resetButtons = new Map<string, HTMLButtonElement>();
  const memberCount = h('p', { class: 'muted' });
  const membersTable = keyedTable<Member>(
    [
      { header: 'Name', cell: (m) => m.name },
      { header: 'Email', cell: (m) => m.email, className: 'wide-only' },
      { header: 'Cash', cell: (m) => money(m.cash_balance), numeric: true, className: 'wide-only' },
      { header: 'Equity', cell: (m) => money(entryOf(m.user_id)?.equity), numeric: true },
      { header: 'Return', cell: (m) => pct(entryOf(m.user_id)?.return_pct), numeric: true, tone: (m) => toned(entryOf(m.user_id)?.return_pct), className: 'wide-only' },
      { header: 'Trades', cell: (m) => entryOf(m.user_id)?.trades ?? '—', numeric: true, className: 'wide-only' },
      { header: 'Joined', cell: (m) => dateTime(m.joined_at), className: 'wide-only' },
      {
        header: 'Actions',
        stable: true,
        cell: (m) => {
          const b = h('button', { type: 'button', class: 'danger small-button', 'aria-label': `Reset ${m.name} (${m.email})`, onclick: () => askReset(m) }, 'Reset…');
          resetButtons.set(m.user_id, b);
          return b;
        },
      },
    ],
    (m) => m.user_id,
    'Members of the class with their cash, equity, return and trades',
    'No members yet: add them from a roster below.',
  );
  const entryOf = (userId: string): Entry | undefined => boards.get('return')?.entries.find((e) => e.user_id === userId);

  // The leaderboard, one tab per metric.
  const boardPanel = h('div', { role: 'tabpanel', id: `board-panel-${classId}`, tabindex: '0' });
  const boardSays = h('p', { class: 'muted small' });
  const boardTable = keyedTable<Entry>(
    [
      { header: 'Rank', cell: (e) => e.rank, numeric: true },
      { header: 'Name', cell: (e) => e.name },
      { header: 'Equity', cell: (e) => money(e.equity), numeric: true, className: 'wide-only' },
      { header: 'Return', cell: (e) => pct(e.return_pct), numeric: true, tone: (e) => toned(e.return_pct) },
      { header: 'Sharpe', cell: (e) => (e.sharpe === null ? 'not yet' : decimal(e.sharpe, 2)), numeric: true, className: 'col-sharpe' },
      { header: 'Max drawdown', cell: (e) => `${decimal(e.max_drawdown_pct, 2)}%`, numeric: true, className: 'col-drawdown' },
      { header: 'Trades', cell: (e) => e.trades, numeric: true, className: 'wide-only' },
    ],
    (e) => e.user_id,
    'Leaderboard of the class',
    'No one to rank yet: the class has no members.',
  );
  const boardCaption = boardTable.el.querySelector('caption')!;
  append(boardPanel, boardSays, boardTable.el);
  const describeBoard = (): void => {
    const m = METRICS.find((x) => x.id === metric)!;
    boardPanel.setAttribute('aria-labelledby', tabId(boardPanel.id, metric));
    // On a phone the panel shows the chosen metric's column and the return only (class.css).
    boardPanel.dataset.metric = metric;
    boardCaption.textContent = `Leaderboard by ${m.label.toLowerCase()} (${m.says})`;
    boardSays.textContent = `Ranked by ${m.label.toLowerCase()}: ${m.says}.`;
  };
  const tabs = tabList({
    label: 'Rank by',
    idPrefix: boardPanel.id,
    tabs: METRICS.map((m) => ({ id: m.id, label: m.label })),
    // The three tabs show one panel, whose table is refilled for the metric chosen.
    panelFor: () => boardPanel.id,
    select: (id) => {
      metric = id as Metric;
      describeBoard();
      renderBoard();
      void refreshBoards().catch((error: unknown) => showError(loadAlert, error, 'Could not load the leaderboard.'));
    },
  });
  describeBoard();

  // Reset: a confirmation step, then the result.
  const resetBox = h('div', { class: 'reset-box' });
  const resetResult = statusArea('reset-result');
  const resetAlert = alertArea();

  const roster = rosterSection(ctx, classId, () => cls?.name ?? 'class', () => void refreshMembers().then(refreshBoards).catch(() => undefined));

  const renderClass = (): void => {
    if (!cls) return;
    title.textContent = cls.name;
    replace(
      classFacts,
      facts([
        ['Starting cash', money(cls.starting_cash)],
        ['Window', windowText(cls)],
        ['Leaderboard', cls.leaderboard_visible ? 'members see it' : 'hidden from members (you always see it)'],
        ['Rules', h('ul', { class: 'rules' }, ...rulesText(cls.rules).map((line) => h('li', {}, line)))],
        ['Class id', h('code', {}, cls.id)],
      ]),
    );
  };

  const renderMembers = (): void => {
    memberCount.textContent = members.length === 0 ? '' : `${members.length.toLocaleString('en-US')} member${members.length === 1 ? '' : 's'}.`;
    membersTable.update(members);
  };

  function renderBoard(): void {
    boardTable.update(boards.get(metric)?.entries ?? []);
  }

  const loadClass = async (): Promise<void> => {
    cls = await ctx.api.get<ClassBody>(`/classes/${classId}`);
    renderClass();
  };

  async function refreshMembers(): Promise<void> {
    const all: Member[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: { members: Member[]; next: string | null } = await ctx.api.get(`/classes/${classId}/members?limit=${MEMBERS_PAGE}${after ? `&after=${after}` : ''}`);
      all.push(...page.members);
      after = page.next;
      pages += 1;
    } while (after);
    members = all;
    memberPages = pages;
    renderMembers();
  }

  async function refreshBoards(): Promise<void> {
    const wanted: Metric[] = metric === 'return' ? ['return'] : ['return', metric];
    const answers = await Promise.all(wanted.map((m) => ctx.api.get<Board>(`/classes/${classId}/leaderboard?metric=${m}`)));
    wanted.forEach((m, i) => boards.set(m, answers[i]!));
    renderBoard();
    renderMembers();
    updated.textContent = `Updated ${time(answers[0]!.as_of)}; refreshed every ${BOARD_REFRESH_MS / 1000} s.`;
  }

  const tick = async (): Promise<void> => {
    try {
      if (!cls) await loadClass();
      const members = memberPages <= 1 || ticks % LONG_MEMBERS_EVERY === 0;
      await Promise.all([refreshBoards(), members ? refreshMembers() : undefined]);
      ticks += 1;
      clearArea(loadAlert);
    } catch (error) {
      showError(loadAlert, error, cls ? 'Could not refresh the class; trying again in a few seconds.' : 'Could not load the class; trying again in a few seconds.');
    }
  };

  function askReset(m: Member): void {
    clearArea(resetAlert);
    resetResult.replaceChildren();
    const cashInput = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', spellcheck: 'false', placeholder: cls?.starting_cash ?? '' });
    const headingId = `reset-h-${m.user_id}`;
    const cancel = (): void => {
      resetBox.replaceChildren();
      resetButtons.get(m.user_id)?.focus();
    };
    const confirm = h('button', { type: 'submit', class: 'danger' }, `Confirm reset of ${m.name}`);
    const form = h(
      'form',
      { class: 'card reset-confirm stack', 'aria-labelledby': headingId },
      h('h3', { id: headingId, tabindex: '-1' }, `Reset ${m.name}?`),
      h(
        'p',
        {},
        `This cancels every open order of ${m.name} (${m.email}), removes every holding and sets the cash to `,
        h('strong', {}, cls ? money(cls.starting_cash) : 'the starting cash'),
        ' unless you give another amount. Their API key stays the same. It cannot be undone.',
      ),
      field('Cash after the reset (optional)', cashInput, `empty: the class's starting cash${cls ? `, ${money(cls.starting_cash)}` : ''}; 0 or more, at most 2 decimals`),
      resetAlert,
      h('div', { class: 'row' }, confirm, h('button', { type: 'button', class: 'secondary', onclick: cancel }, 'Cancel')),
    );
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') cancel();
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (confirm.disabled) return;
      const raw = cashInput.value.trim();
      if (raw !== '') {
        try {
          parseCash(raw, 'cash', { allowZero: true });
        } catch (error) {
          showProblem(resetAlert, `The cash is not an amount: ${(error as Error).message}.`);
          cashInput.focus();
          return;
        }
      }
      confirm.disabled = true;
      void doReset(m, raw === '' ? undefined : raw).finally(() => (confirm.disabled = false));
    });
    replace(resetBox, form);
    form.querySelector<HTMLElement>('h3')!.focus();
  }

  async function doReset(m: Member, cash: string | undefined): Promise<void> {
    clearArea(resetAlert);
    let answer: ResetAnswer;
    try {
      answer = await ctx.api.post<ResetAnswer>(`/users/${m.user_id}/reset`, cash === undefined ? {} : { cash });
    } catch (error) {
      showError(resetAlert, error, `${m.name} was not reset.`);
      return;
    }
    resetBox.replaceChildren();
    const removed = answer.reset.positions_removed;
    const headingId = `reset-done-${answer.reset.id}`;
    replace(
      resetResult,
      h(
        'section',
        { class: 'card reset-done', 'aria-labelledby': headingId },
        h('h3', { id: headingId, tabindex: '-1' }, `${m.name} was reset`),
        facts([
          ['Cash before', money(answer.reset.cash_before)],
          ['Cash now', money(answer.cash_balance)],
          ['Orders canceled', String(answer.reset.orders_canceled)],
          ['Positions removed', removed.length === 0 ? 'none' : removed.map((p) => `${p.ticker} ${qty(p.quantity)}`).join(', ')],
        ]),
      ),
    );
    resetResult.querySelector<HTMLElement>('h3')?.focus();
    await Promise.all([refreshMembers(), refreshBoards()]).catch(() => undefined);
  }

  // The class and its leaderboard side by side on a wide screen; the members (a wide table
  // with a button a row) and the roster below them at full width.
  const layout = h(
    'div',
    { class: 'grid class-view' },
    h('section', { class: 'card span-4', 'aria-label': 'The class' }, title, loadAlert, classFacts, updated),
    h('section', { class: 'card span-8', 'aria-labelledby': `board-h-${classId}` }, h('h2', { id: `board-h-${classId}` }, 'Leaderboard'), tabs.el, boardPanel),
    h('section', { class: 'card span-12', 'aria-labelledby': `members-h-${classId}` }, h('h2', { id: `members-h-${classId}` }, 'Members'), memberCount, membersTable.el, resetBox, resetResult),
    h('section', { class: 'card span-12', 'aria-labelledby': `add-h-${classId}` }, h('h2', { id: `add-h-${classId}` }, 'Add members'), roster.el),
  );
  replace(root, layout);

  const stop = poll(tick, BOARD_REFRESH_MS, options.visible);
  return () => {
    stop();
    roster.dispose();
  };
}
