/**
 * The account summary (cash, available, held, positions, equity), the market clock and the
 * cash ledger (activities). Equity between snapshots is the cash balance plus the positions as
 * the live prices value them, in exact cents, as the server computes it.
 */
import { cashFromDb } from '../../../src/core/money.js';
import { h, replace, table } from '../dom.js';
import { dateTime, fromFixedBig, money, sign } from '../format.js';
import type { Account, Activity, Clock, Order } from './types.js';
import { clockTime, describeOrder, shortDateTime, until } from './util.js';

const STATS = [
  ['cash_balance', 'Cash'],
  ['available_cash', 'Available'],
  ['reserved_cash', 'Held by orders'],
  ['positions_value', 'Positions'],
  ['equity', 'Equity'],
  ['pl', 'Profit/loss'],
] as const;
type StatKey = (typeof STATS)[number][0];

export class AccountSummary {
  readonly element: HTMLElement;
  private readonly values = new Map<StatKey, HTMLElement>();
  private account: Account | undefined;
  private base: string | undefined;
  private positionsValue: bigint | undefined;

  constructor() {
    this.element = h(
      'dl',
      { class: 'stats account-stats' },
      ...STATS.map(([key, label]) => {
        const value = h('dd', {}, '—');
        this.values.set(key, value);
        const stat = h('div', { class: 'stat' }, h('dt', { class: 'muted' }, label), value);
        if (key === 'pl') stat.title = 'equity minus net contributions (initial cash + deposits − withdrawals)';
        return stat;
      }),
    );
  }

  get current(): Account | undefined {
    return this.account;
  }

  set(account: Account): void {
    this.account = account;
    this.render();
  }

  /** The live value of the positions (cents), or undefined to show the server's. */
  setPositionsValue(value: bigint | undefined): void {
    this.positionsValue = value;
    this.render();
  }

  /** The account's base (net contributions), from the portfolio history. */
  setBase(base: string): void {
    this.base = base;
    this.render();
  }

  private render(): void {
    const a = this.account;
    if (!a) return;
    const positions = this.positionsValue ?? cashFromDb(a.positions_value);
    const equity = cashFromDb(a.cash_balance) + positions;
    const shown: Record<StatKey, string | undefined> = {
      cash_balance: a.cash_balance,
      available_cash: a.available_cash,
      reserved_cash: a.reserved_cash,
      positions_value: fromFixedBig(positions, 2),
      equity: fromFixedBig(equity, 2),
      pl: this.base === undefined ? undefined : fromFixedBig(equity - cashFromDb(this.base), 2),
    };
    for (const [key] of STATS) {
      const el = this.values.get(key)!;
      const value = shown[key];
      el.textContent = value === undefined ? '—' : money(value);
      if (key === 'pl') el.className = value === undefined ? '' : sign(value) > 0 ? 'up' : sign(value) < 0 ? 'down' : '';
    }
  }
}

export class ClockView {
  readonly element = h('div', { class: 'clock' }, h('p', { class: 'muted' }, 'Loading the clock…'));
  private clock: Clock | undefined;

  get current(): Clock | undefined {
    return this.clock;
  }

  set(clock: Clock): void {
    this.clock = clock;
    this.render();
  }

  /** Re-renders the "in 5 min" parts (called by the view's periodic timer). */
  render(): void {
    const c = this.clock;
    if (!c) return;
    const forced = c.forced ? ` (forced ${c.forced} by the admin until it is set back to the calendar)` : '';
    const calendar = c.calendar === 'nyse' ? 'NYSE hours: 09:30–16:00 New York, weekdays' : 'every day, midnight to midnight';
    const edge = (label: string, iso: string) => [h('dt', {}, label), h('dd', {}, h('time', { datetime: iso, title: dateTime(iso) }, clockTime(iso)), h('span', { class: 'muted' }, ` ${until(iso)}`))];
    replace(
      this.element,
      h('p', { class: `clock-state ${c.is_open ? 'up' : 'down'}` }, h('strong', {}, c.is_open ? 'Market open' : 'Market closed'), forced),
      h(
        'dl',
        { class: 'clock-times' },
        // The "always" calendar closes one session and opens the next at the same midnight.
        ...(c.next_open === c.next_close ? edge('Next session', c.next_open) : [...edge('Next close', c.next_close), ...edge('Next open', c.next_open)]),
        h('dt', {}, 'Calendar'),
        h('dd', {}, calendar),
      ),
    );
  }
}

const KIND_TEXT: Record<string, string> = {
  initial: 'Initial cash',
  deposit: 'Deposit',
  withdrawal: 'Withdrawal',
  buy: 'Buy',
  sell: 'Sell',
  commission: 'Commission',
  reset: 'Account reset',
};

export class Activities {
  readonly element = h('div', { class: 'activities' }, h('p', { class: 'muted' }, 'Loading activities…'));
  private shown: string | undefined;

  constructor(private readonly orderById: (id: string) => Order | undefined) {}

  set(activities: readonly Activity[]): void {
    // An order loaded later names the activity's order: that is a change too.
    const sig = activities.map((a) => `${a.id}${a.order_id && this.orderById(a.order_id) ? '+' : ''}`).join(',');
    if (sig === this.shown) return;
    this.shown = sig;
    replace(
      this.element,
      table<Activity>(
        [
          { header: 'Time', cell: (a) => h('time', { datetime: a.created_at, title: dateTime(a.created_at) }, shortDateTime(a.created_at)) },
          { header: 'Kind', cell: (a) => KIND_TEXT[a.kind] ?? a.kind },
          { header: 'Amount', numeric: true, cell: (a) => h('span', { class: sign(a.amount) > 0 ? 'up' : sign(a.amount) < 0 ? 'down' : undefined }, money(a.amount)) },
          { header: 'Balance after', numeric: true, cell: (a) => money(a.balance_after) },
          {
            header: 'Order',
            cell: (a) => {
              if (!a.order_id) return '';
              const order = this.orderById(a.order_id);
              return order ? describeOrder(order) : h('code', { title: a.order_id }, a.order_id.slice(0, 8));
            },
          },
        ],
        activities,
        'No cash movements yet.',
        'Activities: the cash ledger, newest first',
      ),
    );
  }
}
