/**
 * Orders: the open ones (PENDING and OPEN) with Cancel (DELETE /orders/{id}) and Replace
 * (PATCH /orders/{id}, a small form under the table for the new quantity, prices and time in
 * force), and the history of final ones with their fills.
 */
import { ApiError, query, type Api } from '../api.js';
import { button, field, h, replace, table } from '../dom.js';
import { dateTime, money, price, qty, time, toFixedBig } from '../format.js';
import { cashFromDb, formatFixed, parseQty, priceFromDb } from '../../../src/core/money.js';
import { holdFor, parseTerms, TIMES_IN_FORCE, type TimeInForce } from '../../../src/core/order-terms.js';
import { TIF_LABELS, TYPE_LABELS, type DashboardSettings, type FillPage, type Order, type OrderPage, type Quote } from './types.js';
import { describeOrder, outcomeText, plainDecimal, shortDateTime, termsText } from './util.js';
import { clearArea, showError } from '../kit.js';

export interface OrdersDeps {
  api: Api;
  quote(ticker: string): Quote | undefined;
  settings(): DashboardSettings | undefined;
  /** An order was canceled or replaced from here: reload what it affects. */
  onChanged(): void;
  notify(text: string, kind?: 'info' | 'error'): void;
}

/** What makes a row look different: re-rendering only on a change keeps focus where it is. */
const signature = (orders: readonly Order[]) =>
  orders.map((o) => [o.id, o.status, o.updated_at, o.hwm, o.stop_level, o.triggered_at, o.reserved_amount, o.filled_quantity].join('|')).join('\n');

function statusText(o: Order): string {
  if (o.status === 'PARTIALLY_FILLED') return `PARTIALLY FILLED (${qty(o.filled_quantity)} of ${qty(o.quantity)})`;
  if (o.status === 'OPEN' && o.triggered_at) return 'OPEN (triggered)';
  return o.status;
}

/** Whether some of the order's shares have filled (so it has fills to show). */
function hasFills(o: Order): boolean {
  try {
    return toFixedBig(o.filled_quantity, 6) > 0n;
  } catch {
    return false;
  }
}

/** Fills one panel lists at once (an order of many parts shows its first hundred). */
const FILLS_SHOWN_MAX = 100;

/**
 * An order's fills with what explains each price (GET /orders/{id}/fills): the quote it met,
 * the model, the slippage and the reason. One panel per table, opened from a row's Fills button.
 */
class FillsPanel {
  readonly element = h('div', { class: 'fills-panel', role: 'region', 'aria-label': 'Fills of an order', 'aria-live': 'polite' });
  private openFor: { order: Order; trigger: HTMLButtonElement } | undefined;

  constructor(private readonly api: Api) {
    this.element.hidden = true;
  }

  /** The Fills button of a row: shown only for an order that has filled something. */
  button(o: Order): HTMLButtonElement | null {
    if (!hasFills(o)) return null;
    const b = button('Fills', () => this.toggle(o, b), {
      class: 'secondary small',
      'aria-expanded': this.openFor?.order.id === o.id ? 'true' : 'false',
      'aria-label': `Fills of order ${describeOrder(o)}`,
      'data-fills-of': o.id,
    });
    if (this.openFor?.order.id === o.id) this.openFor.trigger = b;
    return b;
  }

  /** The table was re-rendered: reload what is open (a new part may have filled). */
  async refresh(orders: readonly Order[]): Promise<void> {
    const open = this.openFor;
    if (!open) return;
    const now = orders.find((o) => o.id === open.order.id);
    // Gone from this table (an open order that finished): its fills are in the history now.
    if (!now) this.close(false);
    else if (now.filled_quantity !== open.order.filled_quantity || now.status !== open.order.status) await this.load(now);
  }

  private async toggle(o: Order, trigger: HTMLButtonElement): Promise<void> {
    if (this.openFor?.order.id === o.id) {
      this.close();
      return;
    }
    this.openFor?.trigger.setAttribute('aria-expanded', 'false');
    this.openFor = { order: o, trigger };
    trigger.setAttribute('aria-expanded', 'true');
    await this.load(o);
  }

  private close(refocus = true): void {
    this.openFor?.trigger.setAttribute('aria-expanded', 'false');
    if (refocus && this.openFor?.trigger.isConnected) this.openFor.trigger.focus();
    this.openFor = undefined;
    replace(this.element);
    this.element.hidden = true;
  }

  private async load(o: Order): Promise<void> {
    if (this.openFor) this.openFor.order = o;
    const title = h('h3', {}, `Fills of ${describeOrder(o)}`);
    const alert = h('div', { class: 'error', role: 'alert' });
    this.element.hidden = false;
    replace(this.element, title, h('p', { class: 'muted' }, 'Loading fills…'));
    try {
      const page = await this.api.get<FillPage>(`/orders/${encodeURIComponent(o.id)}/fills${query({ limit: FILLS_SHOWN_MAX })}`);
      if (this.openFor?.order.id !== o.id) return;
      replace(
        this.element,
        title,
        table(
          [
            { header: 'Executed', cell: (f) => h('time', { datetime: f.executed_at, title: dateTime(f.executed_at) }, time(f.executed_at)) },
            { header: 'Quantity', numeric: true, cell: (f) => qty(f.quantity) },
            { header: 'Price', numeric: true, cell: (f) => price(f.price) },
            { header: 'Amount', numeric: true, cell: (f) => money(f.amount) },
            { header: 'Commission', numeric: true, cell: (f) => money(f.commission) },
            { header: 'Model', cell: (f) => f.explanation.model },
            { header: 'Slippage', numeric: true, cell: (f) => (f.explanation.slippage_bps === null ? '—' : `${f.explanation.slippage_bps} bps`) },
            {
              header: 'Quote met',
              cell: (f) => {
                const q = f.explanation.quote;
                if (!q) return '—';
                const age = f.explanation.quote_age_ms === null ? '' : `, ${f.explanation.quote_age_ms} ms old`;
                return `${price(q.bid)} × ${price(q.ask)} (${qty(q.bid_size)} × ${qty(q.ask_size)})${age}`;
              },
            },
            { header: 'Why', cell: (f) => h('span', { class: 'fill-reason' }, f.explanation.reason ?? '') },
          ],
          page.fills,
          'No fills yet.',
          `Fills of ${describeOrder(o)}: each execution, the quote it met and why it got its price`,
        ),
        page.next === null ? null : h('p', { class: 'hint' }, `The first ${FILLS_SHOWN_MAX} fills are shown.`),
        h('div', { class: 'row' }, button('Close fills', () => this.close(), { class: 'secondary' })),
      );
    } catch (error) {
      replace(this.element, title, alert);
      showError(alert, error, 'Could not load the fills:');
    }
  }
}

export class OpenOrders {
  readonly element: HTMLElement;
  private readonly list = h('div', {}, h('p', { class: 'muted' }, 'Loading open orders…'));
  private readonly alert = h('div', { class: 'error', role: 'alert' });
  private readonly editor = h('div', { class: 'replace-panel' });
  private readonly fills: FillsPanel;
  private orders: Order[] = [];
  private shown: string | undefined;
  private editing: Order | undefined;
  private editorPreview: (() => void) | undefined;

  constructor(private readonly deps: OrdersDeps) {
    this.editor.hidden = true;
    this.fills = new FillsPanel(deps.api);
    this.element = h('div', { class: 'open-orders' }, this.alert, this.list, this.editor, this.fills.element);
  }

  get current(): readonly Order[] {
    return this.orders;
  }

  set(orders: readonly Order[]): void {
    this.orders = [...orders];
    const sig = signature(orders);
    if (sig !== this.shown) {
      this.shown = sig;
      this.render();
      void this.fills.refresh(this.orders);
    }
    if (this.editing) {
      const now = this.orders.find((o) => o.id === this.editing!.id);
      if (!now) this.editorGone();
    }
  }

  /** A price tick: the replace form's hold preview follows the quote. */
  tick(ticker: string): void {
    if (this.editing?.ticker === ticker) this.editorPreview?.();
  }

  private render(): void {
    replace(
      this.list,
      table<Order>(
        [
          { header: 'Placed', cell: (o) => h('time', { datetime: o.created_at, title: dateTime(o.created_at) }, time(o.created_at)) },
          { header: 'Order', cell: (o) => h('span', {}, h('strong', {}, o.ticker), ` ${o.side} ${qty(o.quantity)}`) },
          { header: 'Type', cell: (o) => TYPE_LABELS[o.type] },
          { header: 'Terms', cell: (o) => termsText(o) + (o.stop_level ? ` (level ${price(o.stop_level)})` : '') },
          { header: 'TIF', cell: (o) => h('abbr', { title: TIF_LABELS[o.time_in_force] }, o.time_in_force) },
          { header: 'Status', cell: (o) => statusText(o) },
          { header: 'Hold', numeric: true, cell: (o) => (o.side === 'sell' ? `${qty(o.quantity)} sh` : money(o.reserved_amount)) },
          {
            header: 'Actions',
            cell: (o) => {
              const name = describeOrder(o);
              // A partially filled order is canceled and placed anew, not replaced.
              const replaceable = o.status === 'OPEN' && o.type !== 'market';
              const rep = button('Replace', () => this.openEditor(o), {
                class: 'secondary small',
                'aria-label': `Replace order ${name}`,
                'data-order-id': o.id,
                title: replaceable ? undefined : o.type === 'market' ? 'a market order cannot be replaced' : 'only an OPEN order can be replaced',
              });
              rep.disabled = !replaceable;
              const cancel = button('Cancel', () => this.cancel(o), { class: 'danger small', 'aria-label': `Cancel order ${name}` });
              return h('span', { class: 'actions' }, rep, cancel, this.fills.button(o));
            },
          },
        ],
        this.orders,
        'No open orders.',
        'Open orders: pending and resting, with cancel and replace',
      ),
    );
  }

  private async cancel(o: Order): Promise<void> {
    clearArea(this.alert);
    try {
      const done = await this.deps.api.delete<Order>(`/orders/${encodeURIComponent(o.id)}`);
      this.deps.notify(`Canceled: ${describeOrder(done)}.`);
      if (this.editing?.id === o.id) this.closeEditor();
    } catch (error) {
      showError(this.alert, error, `Could not cancel ${describeOrder(o)}:`);
    }
    this.deps.onChanged();
  }

  /** The replace form for `o`: quantity, the prices its type has, and the time in force. */
  private openEditor(o: Order): void {
    this.editing = o;
    const quantity = h('input', { name: 'replace-quantity', inputmode: 'decimal', autocomplete: 'off', value: plainDecimal(o.quantity) });
    const limit = h('input', { name: 'replace-limit', inputmode: 'decimal', autocomplete: 'off', value: plainDecimal(o.limit_price) });
    const stop = h('input', { name: 'replace-stop', inputmode: 'decimal', autocomplete: 'off', value: plainDecimal(o.stop_price) });
    const trailPrice = h('input', { name: 'replace-trail-price', inputmode: 'decimal', autocomplete: 'off', value: plainDecimal(o.trail_price) });
    const trailPercent = h('input', { name: 'replace-trail-percent', inputmode: 'decimal', autocomplete: 'off', value: plainDecimal(o.trail_percent) });
    const sessionAllowed = o.type === 'market' || o.type === 'limit';
    const tif = h(
      'select',
      { name: 'replace-tif' },
      ...TIMES_IN_FORCE.filter((t) => sessionAllowed || (t !== 'opg' && t !== 'cls')).map((t) => h('option', { value: t }, `${t} — ${TIF_LABELS[t]}`)),
    );
    tif.value = o.time_in_force;
    const preview = h('p', { class: 'hint', id: 'replace-hold' });
    const alert = h('div', { class: 'error', role: 'alert' });
    const name = describeOrder(o);

    /** The fields that differ from the order, as typed. */
    const changes = (): Record<string, string> => {
      const body: Record<string, string> = {};
      const differs = (typed: string, current: string | null, scale: number) => {
        if (typed === '' || current === null) return typed !== '' && current === null;
        try {
          return toFixedBig(typed, scale) !== toFixedBig(current, scale);
        } catch {
          return true;
        }
      };
      if (differs(quantity.value.trim(), o.quantity, 6)) body.quantity = quantity.value.trim();
      if (o.limit_price !== null && differs(limit.value.trim(), o.limit_price, 4)) body.limit_price = limit.value.trim();
      if (o.stop_price !== null && differs(stop.value.trim(), o.stop_price, 4)) body.stop_price = stop.value.trim();
      if (o.trail_price !== null && differs(trailPrice.value.trim(), o.trail_price, 4)) body.trail_price = trailPrice.value.trim();
      if (o.trail_percent !== null && differs(trailPercent.value.trim(), o.trail_percent, 2)) body.trail_percent = trailPercent.value.trim();
      if (tif.value !== o.time_in_force) body.time_in_force = tif.value;
      return body;
    };

    const renderPreview = () => {
      const body = changes();
      if (Object.keys(body).length === 0) {
        preview.textContent = 'Change a field to replace the order.';
        return;
      }
      try {
        const terms = parseTerms(o.side, parseQty(body.quantity ?? o.quantity.trim()), {
          type: o.type,
          time_in_force: (body.time_in_force ?? o.time_in_force) as TimeInForce,
          limit_price: body.limit_price ?? o.limit_price ?? undefined,
          stop_price: body.stop_price ?? o.stop_price ?? undefined,
          trail_price: body.trail_price ?? o.trail_price ?? undefined,
          trail_percent: body.trail_percent ?? o.trail_percent ?? undefined,
        });
        if (o.side === 'sell') {
          preview.textContent = `The replacement holds ${qty(formatFixed(terms.quantity, 6))} shares (now ${qty(o.quantity)}).`;
          return;
        }
        const quote = this.deps.quote(o.ticker);
        const settings = this.deps.settings();
        if (!quote || !settings) {
          preview.textContent = `No price for ${o.ticker} yet: the new hold is shown once one arrives.`;
          return;
        }
        const hold = holdFor(terms, priceFromDb(quote.price), BigInt(settings.reservation_buffer_bps));
        const diff = hold - cashFromDb(o.reserved_amount);
        const delta = diff === 0n ? 'the same' : diff > 0n ? `${money(formatFixed(diff, 2))} more` : `${money(formatFixed(-diff, 2))} released`;
        preview.textContent = `The replacement holds ${money(formatFixed(hold, 2))} (now ${money(o.reserved_amount)}: ${delta}).`;
      } catch (error) {
        preview.textContent = `Not a replacement yet: ${error instanceof Error ? error.message : String(error)}.`;
      }
    };
    this.editorPreview = renderPreview;

    const form = h(
      'form',
      { class: 'replace-form', novalidate: true, 'aria-labelledby': 'replace-title' },
      h('h3', { id: 'replace-title' }, `Replace ${name}`),
      h(
        'div',
        { class: 'row' },
        field('New quantity', quantity),
        o.stop_price !== null ? field('New stop price', stop) : null,
        o.limit_price !== null ? field('New limit price', limit) : null,
        o.trail_price !== null ? field('New trail amount', trailPrice) : null,
        o.trail_percent !== null ? field('New trail percent', trailPercent) : null,
        field('New time in force', tif),
      ),
      preview,
      alert,
      h('div', { class: 'row' }, h('button', { type: 'submit', 'aria-describedby': 'replace-hold' }, 'Send replacement'), button('Close', () => this.closeEditor(), { class: 'secondary' })),
    );
    form.addEventListener('input', renderPreview);
    form.addEventListener('change', renderPreview);
    let sending = false;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (sending) return;
      const body = changes();
      if (Object.keys(body).length === 0) {
        showError(alert, new Error('nothing changed: change the quantity, a price or the time in force first'), 'Not sent:');
        return;
      }
      sending = true;
      const submit = form.querySelector('button[type="submit"]') as HTMLButtonElement;
      submit.disabled = true;
      void this.deps.api
        .patch<Order>(`/orders/${encodeURIComponent(o.id)}`, body)
        .then((next) => {
          this.deps.notify(`Replaced: ${name} → ${describeOrder(next)}, ${next.status}.`);
          this.closeEditor();
        })
        .catch((error: unknown) => {
          const gone = error instanceof ApiError && error.code === 'ORDER_NOT_REPLACEABLE';
          showError(alert, error, gone ? 'The order can no longer be replaced:' : 'The replacement was refused; the order stays as it was:');
        })
        .finally(() => {
          sending = false;
          submit.disabled = false;
          this.deps.onChanged();
        });
    });
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.closeEditor();
    });
    replace(this.editor, form);
    this.editor.hidden = false;
    renderPreview();
    quantity.focus();
  }

  private editorGone(): void {
    const o = this.editing!;
    const alert = this.editor.querySelector('[role="alert"]');
    if (alert && !alert.textContent) alert.textContent = `${describeOrder(o)} is no longer open: there is nothing to replace.`;
    const submit = this.editor.querySelector('button[type="submit"]') as HTMLButtonElement | null;
    if (submit) submit.disabled = true;
  }

  private closeEditor(): void {
    const id = this.editing?.id;
    this.editing = undefined;
    this.editorPreview = undefined;
    replace(this.editor);
    this.editor.hidden = true;
    const back = [...this.list.querySelectorAll<HTMLButtonElement>('button[data-order-id]')].find((b) => b.dataset.orderId === id);
    if (back && !back.disabled) back.focus();
  }
}

/** Final orders, newest first, with their fills; older pages on request. */
export class OrderHistory {
  readonly element: HTMLElement;
  private readonly list = h('div', {}, h('p', { class: 'muted' }, 'Loading the order history…'));
  private readonly more: HTMLButtonElement;
  private readonly alert = h('div', { class: 'error', role: 'alert' });
  private readonly fills: FillsPanel;
  private first: Order[] = [];
  private older: Order[] = [];
  private next: string | null = null;
  private shown: string | undefined;

  constructor(private readonly api: Api) {
    this.more = button('Show older orders', () => this.loadOlder(), { class: 'secondary' });
    this.more.hidden = true;
    this.fills = new FillsPanel(api);
    this.element = h('div', { class: 'order-history' }, this.list, this.alert, this.more, this.fills.element);
  }

  /** Every order this view knows of, for naming the order of an activity. */
  byId(id: string): Order | undefined {
    return this.first.find((o) => o.id === id) ?? this.older.find((o) => o.id === id);
  }

  /** The newest page (final orders never change, so older pages stay valid). */
  setFirstPage(page: OrderPage): void {
    this.first = page.orders;
    const ids = new Set(this.first.map((o) => o.id));
    this.older = this.older.filter((o) => !ids.has(o.id));
    if (this.older.length === 0) this.next = page.next;
    this.render();
  }

  private async loadOlder(): Promise<void> {
    if (!this.next) return;
    clearArea(this.alert);
    try {
      const page = await this.api.get<OrderPage>(`/orders${query({ status: 'closed', limit: 50, before: this.next })}`);
      const known = new Set([...this.first, ...this.older].map((o) => o.id));
      this.older.push(...page.orders.filter((o) => !known.has(o.id)));
      this.next = page.next;
      this.render();
    } catch (error) {
      showError(this.alert, error, 'Could not load older orders:');
    }
  }

  private render(): void {
    const orders = [...this.first, ...this.older];
    this.more.hidden = this.next === null;
    const sig = signature(orders) + String(this.next);
    if (sig === this.shown) return;
    this.shown = sig;
    replace(
      this.list,
      table<Order>(
        [
          { header: 'Updated', cell: (o) => h('time', { datetime: o.updated_at, title: dateTime(o.updated_at) }, shortDateTime(o.updated_at)) },
          { header: 'Order', cell: (o) => h('span', {}, h('strong', {}, o.ticker), ` ${o.side} ${qty(o.quantity)}`) },
          { header: 'Type', cell: (o) => `${TYPE_LABELS[o.type]}${o.type === 'market' ? '' : `, ${termsText(o)}`}` },
          { header: 'TIF', cell: (o) => o.time_in_force },
          { header: 'Status', cell: (o) => h('span', { class: o.status === 'FILLED' ? 'up' : o.status === 'REJECTED' ? 'down' : undefined }, o.status) },
          { header: 'Fill price', numeric: true, cell: (o) => (o.fill_price ? price(o.fill_price) : '—') },
          { header: 'Filled qty', numeric: true, cell: (o) => qty(o.filled_quantity) },
          { header: 'Filled at', cell: (o) => (o.filled_at ? h('time', { datetime: o.filled_at, title: dateTime(o.filled_at) }, shortDateTime(o.filled_at)) : '—') },
          { header: 'Detail', cell: (o) => outcomeText(o) ?? (o.triggered_at ? `triggered ${time(o.triggered_at)}` : '') },
          { header: 'Fills', cell: (o) => this.fills.button(o) ?? '—' },
        ],
        orders,
        'No finished orders yet: filled, canceled, expired, rejected and replaced orders show here.',
        'Order history: final orders with their fills',
      ),
    );
  }
}
