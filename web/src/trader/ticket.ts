/**
 * The order ticket: side, quantity, each order type with only the fields it takes, and the time
 * in force. Before anything is sent it shows what the order will hold, computed by the same pure
 * rule the server applies (src/core/order-terms.ts's holdFor, with the current quote and the
 * server's buffer): cash for a buy, shares for a sell. A refusal is shown in words, with every
 * layer of its cause chain, in an alert.
 */
import { ApiError, type Api } from '../api.js';
import { button, field, h, replace } from '../dom.js';
import { decimal, money, price, qty } from '../format.js';
import { cashFromDb, formatFixed, notionalAtLeast, parseCash, parseQty, priceFromDb, qtyFromDb } from '../../../src/core/money.js';
import { holdFor, ORDER_TYPES, parseTerms, TIMES_IN_FORCE, type OrderTerms, type OrderType, type Side, type TimeInForce } from '../../../src/core/order-terms.js';
import { TIF_LABELS, TYPE_LABELS, type Account, type DashboardSettings, type Instrument, type Order, type Position, type Quote } from './types.js';
import { describeOrder } from './util.js';
import { clearArea, randomKey, showError } from '../kit.js';

export interface TicketDeps {
  api: Api;
  quote(ticker: string): Quote | undefined;
  settings(): DashboardSettings | undefined;
  account(): Account | undefined;
  position(ticker: string): Position | undefined;
  /** Whether the positions have been read at all (until then a sell's shares are unknown). */
  positionsLoaded(): boolean;
  /** The ticket's ticker changed from its own select: the view selects it everywhere. */
  onTickerChange(ticker: string): void;
  onPlaced(order: Order, created: boolean): void;
}

/** Times in force that only market and limit orders may have. */
const SESSION_TIFS: readonly TimeInForce[] = ['opg', 'cls'];

const option = (value: string, label: string) => h('option', { value }, label);

export class Ticket {
  readonly element: HTMLFormElement;
  private readonly ticker = h('select', { name: 'ticker' });
  private readonly side = h('select', { name: 'side' }, option('buy', 'Buy'), option('sell', 'Sell'));
  private readonly quantity = h('input', { name: 'quantity', inputmode: 'decimal', autocomplete: 'off', value: '1', required: true });
  private readonly type = h('select', { name: 'type' }, ...ORDER_TYPES.map((t) => option(t, TYPE_LABELS[t])));
  private readonly limit = h('input', { name: 'limit_price', inputmode: 'decimal', autocomplete: 'off' });
  private readonly stop = h('input', { name: 'stop_price', inputmode: 'decimal', autocomplete: 'off' });
  private readonly trailBy = h('select', { name: 'trail_by' }, option('trail_price', 'An amount'), option('trail_percent', 'A percent'));
  private readonly trailPrice = h('input', { name: 'trail_price', inputmode: 'decimal', autocomplete: 'off' });
  private readonly trailPercent = h('input', { name: 'trail_percent', inputmode: 'decimal', autocomplete: 'off' });
  private readonly tif = h('select', { name: 'time_in_force' }, ...TIMES_IN_FORCE.map((t) => option(t, `${t} — ${TIF_LABELS[t]}`)));
  private readonly fields: Record<'limit' | 'stop' | 'trailBy' | 'trailPrice' | 'trailPercent', HTMLElement>;
  private readonly quoteLine = h('p', { class: 'muted quote-line' });
  // Not a live region: it follows every tick. The submit button names it as its description,
  // so the hold is read out where it matters, before sending.
  private readonly preview = h('div', { class: 'hint hold-preview', id: 'ticket-hold' });
  private readonly alert = h('div', { class: 'error', role: 'alert' });
  private readonly result = h('p', { class: 'muted', role: 'status' });
  private readonly submit = h('button', { type: 'submit', 'aria-describedby': 'ticket-hold' }, 'Place order');
  /** Kept across retries of one request that got no answer, so a retry can never place it twice. */
  private idempotencyKey: string | undefined;
  private sending = false;

  constructor(private readonly deps: TicketDeps) {
    this.fields = {
      limit: field('Limit price', this.limit),
      stop: field('Stop price', this.stop),
      trailBy: field('Trail by', this.trailBy),
      trailPrice: field('Trail amount', this.trailPrice, 'distance from the best price, in dollars'),
      trailPercent: field('Trail percent', this.trailPercent, 'above 0 and below 100, 2 decimals'),
    };
    this.element = h(
      'form',
      { class: 'ticket', novalidate: true, 'aria-label': 'Order ticket' },
      h('div', { class: 'row' }, field('Ticker', this.ticker), field('Side', this.side)),
      this.quoteLine,
      h('div', { class: 'row' }, field('Quantity', this.quantity), field('Order type', this.type)),
      h('div', { class: 'row' }, this.fields.stop, this.fields.limit),
      h('div', { class: 'row' }, this.fields.trailBy, this.fields.trailPrice, this.fields.trailPercent),
      field('Time in force', this.tif),
      this.preview,
      this.alert,
      h('div', { class: 'row' }, this.submit, button('Clear', () => this.clear(), { class: 'secondary' })),
      this.result,
    );
    this.element.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.send();
    });
    this.element.addEventListener('input', () => this.changed());
    this.element.addEventListener('change', () => this.changed());
    this.ticker.addEventListener('change', () => this.deps.onTickerChange(this.ticker.value));
    this.layout();
  }

  setInstruments(instruments: readonly Instrument[]): void {
    const current = this.ticker.value;
    const same = this.ticker.options.length === instruments.length && instruments.every((i, n) => this.ticker.options[n]!.value === i.ticker);
    if (!same) {
      replace(this.ticker, ...instruments.map((i) => option(i.ticker, i.ticker)));
      if (instruments.some((i) => i.ticker === current)) this.ticker.value = current;
    }
    this.update();
  }

  setTicker(ticker: string): void {
    if (this.ticker.value !== ticker) {
      this.ticker.value = ticker;
      this.changed();
    }
  }

  /** Fills the ticket for selling a position (the Sell button of a position). */
  prefillSell(ticker: string, quantity: string): void {
    this.setTicker(ticker);
    this.side.value = 'sell';
    this.quantity.value = quantity;
    this.type.value = 'market';
    this.changed();
    this.quantity.focus();
  }

  /** The quote, the account or a position changed: the preview follows. */
  update(): void {
    const ticker = this.ticker.value;
    const quote = ticker ? this.deps.quote(ticker) : undefined;
    this.quoteLine.textContent = !ticker ? '' : quote ? `${ticker} last ${price(quote.price)}` : `${ticker}: no price yet`;
    this.renderPreview();
  }

  private changed(): void {
    // Another request from here on: a retry of the previous one is no longer possible.
    this.idempotencyKey = undefined;
    this.layout();
    this.update();
  }

  private clear(): void {
    this.side.value = 'buy';
    this.quantity.value = '1';
    this.type.value = 'market';
    for (const input of [this.limit, this.stop, this.trailPrice, this.trailPercent]) input.value = '';
    this.tif.value = 'day';
    clearArea(this.alert);
    this.result.textContent = '';
    this.changed();
  }

  /** Shows only the fields the type takes, and the times in force it may have. */
  private layout(): void {
    const type = this.type.value as OrderType;
    const takesLimit = type === 'limit' || type === 'stop_limit';
    const takesStop = type === 'stop' || type === 'stop_limit';
    const trailing = type === 'trailing_stop';
    this.fields.limit.hidden = !takesLimit;
    this.fields.stop.hidden = !takesStop;
    this.fields.trailBy.hidden = !trailing;
    this.fields.trailPrice.hidden = !trailing || this.trailBy.value !== 'trail_price';
    this.fields.trailPercent.hidden = !trailing || this.trailBy.value !== 'trail_percent';
    const sessionAllowed = type === 'market' || type === 'limit';
    for (const opt of this.tif.options) if (SESSION_TIFS.includes(opt.value as TimeInForce)) opt.disabled = !sessionAllowed;
    if (!sessionAllowed && SESSION_TIFS.includes(this.tif.value as TimeInForce)) this.tif.value = 'day';
    this.submit.textContent = `Place ${this.side.value} order`;
  }

  /** The request body as typed: only the fields the type takes, as the decimal strings typed. */
  private body(): Record<string, string> {
    const type = this.type.value as OrderType;
    const value = (input: HTMLInputElement, shown: boolean): string | undefined => (shown && input.value.trim() !== '' ? input.value.trim() : undefined);
    const body: Record<string, string | undefined> = {
      ticker: this.ticker.value,
      side: this.side.value,
      type,
      quantity: this.quantity.value.trim(),
      time_in_force: this.tif.value,
      limit_price: value(this.limit, !this.fields.limit.hidden),
      stop_price: value(this.stop, !this.fields.stop.hidden),
      trail_price: value(this.trailPrice, !this.fields.trailPrice.hidden),
      trail_percent: value(this.trailPercent, !this.fields.trailPercent.hidden),
    };
    return Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => e[1] !== undefined));
  }

  /** The order's terms by the server's own parser, or the reason they are not an order yet. */
  private terms(): { terms: OrderTerms } | { problem: string } {
    const body = this.body();
    try {
      const quantity = parseQty(body.quantity ?? '');
      return { terms: parseTerms(this.side.value as Side, quantity, body as unknown as Parameters<typeof parseTerms>[2]) };
    } catch (error) {
      return { problem: error instanceof Error ? error.message : String(error) };
    }
  }

  private renderPreview(): void {
    const ticker = this.ticker.value;
    const parsed = this.terms();
    if ('problem' in parsed) {
      replace(this.preview, h('span', {}, `Not an order yet: ${parsed.problem}.`));
      return;
    }
    const { terms } = parsed;
    const quote = this.deps.quote(ticker);
    const settings = this.deps.settings();
    const lines: (string | HTMLElement)[] = [];
    if (terms.side === 'sell') {
      const position = this.deps.position(ticker);
      const shares = qty(formatFixed(terms.quantity, 6));
      lines.push(h('strong', {}, `Holds ${shares} ${ticker} shares`), ' (a sell holds its shares, no cash).');
      if (!this.deps.positionsLoaded()) lines.push(' Reading your positions…');
      else if (!position) lines.push(h('span', { class: 'warn' }, ` You hold no ${ticker}: the server will refuse it (INSUFFICIENT_HOLDINGS).`));
      else {
        lines.push(` You hold ${qty(position.quantity)}, ${qty(position.available_quantity)} available.`);
        if (qtyFromDb(position.available_quantity) < terms.quantity) lines.push(h('span', { class: 'warn' }, ' That is more than available: the server will refuse it (INSUFFICIENT_HOLDINGS).'));
      }
    } else if (!quote || !settings) {
      lines.push(!quote ? `No price for ${ticker} yet: the hold is shown once one arrives (the server refuses an order without a fresh price).` : 'Loading the hold rule…');
    } else {
      const bps = BigInt(settings.reservation_buffer_bps);
      const quotePrice = priceFromDb(quote.price);
      const hold = holdFor(terms, quotePrice, bps);
      const text = formatFixed(hold, 2);
      lines.push(h('strong', {}, `Holds ${money(text)}`), ` ${holdRule(terms, quote.price, bps)}.`);
      const account = this.deps.account();
      if (account && hold > cashFromDb(account.available_cash)) {
        lines.push(h('span', { class: 'warn' }, ` That is more than your available cash (${money(account.available_cash)}): the server will refuse it (INSUFFICIENT_FUNDS).`));
      }
    }
    if (quote && settings && !notionalAtLeast(terms.quantity, priceFromDb(quote.price), parseCash(settings.min_order_notional))) {
      lines.push(h('span', { class: 'warn' }, ` Worth less than the minimum order value of ${money(settings.min_order_notional)} at the quote.`));
    }
    replace(this.preview, ...lines);
  }

  private async send(): Promise<void> {
    if (this.sending) return;
    const parsed = this.terms();
    if ('problem' in parsed) {
      showError(this.alert, new Error(`VALIDATION_FAILED (dashboard): ${parsed.problem}`), 'Not sent: the order is not complete.');
      return;
    }
    const body = this.body();
    this.idempotencyKey ??= randomKey('order');
    this.sending = true;
    this.submit.disabled = true;
    this.result.textContent = 'Sending…';
    try {
      const order = await this.deps.api.post<Order>('/orders', body, { idempotencyKey: this.idempotencyKey });
      // Answered: this request is done, the next one is another order.
      this.idempotencyKey = undefined;
      clearArea(this.alert);
      this.result.textContent = `Sent: ${describeOrder(order)}, ${order.status}.`;
      this.deps.onPlaced(order, true);
    } catch (error) {
      // No answer (network, timeout) or a server fault: the order may exist, so a retry keeps
      // the key and the server answers it as a replay. A refusal is final: the next try is new.
      const unanswered = !(error instanceof ApiError) || error.status === 0 || error.status >= 500;
      if (!unanswered) this.idempotencyKey = undefined;
      this.result.textContent = '';
      showError(this.alert, error, unanswered ? 'No answer from the server: sending again is safe (it cannot place the order twice).' : 'The order was refused:');
    } finally {
      this.sending = false;
      this.submit.disabled = false;
    }
  }
}

/** The hold rule in numbers ("10 × 160.00 × 1.05, rounded up to the cent"). */
function holdRule(terms: OrderTerms, quote: string, bps: bigint): string {
  const n = qty(formatFixed(terms.quantity, 6));
  const buffer = decimal(formatFixed(10_000n + bps, 4), 2);
  const p = (v: bigint | null) => price(formatFixed(v ?? 0n, 4));
  switch (terms.type) {
    case 'market':
      return `= ${n} × ${price(quote)} (the quote) × ${buffer}, rounded up to the cent`;
    case 'limit':
    case 'stop_limit':
      return `= ${n} × ${p(terms.limitPrice)} (the limit: it never pays more)`;
    case 'stop':
      return `= ${n} × the higher of the stop ${p(terms.stopPrice)} and the quote ${price(quote)} × ${buffer}, rounded up`;
    case 'trailing_stop':
      return `= ${n} × (the quote ${price(quote)} + the trail) × ${buffer}, rounded up`;
  }
}
