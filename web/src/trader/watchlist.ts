/**
 * The watchlist: every listed instrument with its latest price, updated in place by the live
 * stream (a tick changes two cells, never the table, so focus and scroll stay where they are).
 * Choosing a ticker drives the chart and the order ticket.
 */
import { priceFromDb } from '../../../src/core/money.js';
import { field, h, replace, table } from '../dom.js';
import { price, time } from '../format.js';
import type { Instrument, Quote } from './types.js';

interface Cells {
  row: HTMLTableRowElement;
  button: HTMLButtonElement;
  price: HTMLElement;
  asOf: HTMLElement;
  last: bigint | undefined;
}

export class Watchlist {
  readonly element: HTMLElement;
  private readonly body = h('div', { class: 'watchlist-body' });
  private readonly filter = h('input', { type: 'search', name: 'watchlist-filter', autocomplete: 'off', spellcheck: 'false', placeholder: 'AAPL' });
  private readonly cells = new Map<string, Cells>();
  private selected: string | undefined;
  private shown: string | undefined;

  constructor(private readonly onSelect: (ticker: string) => void) {
    this.filter.addEventListener('input', () => this.applyFilter());
    this.element = h('div', { class: 'watchlist' }, field('Filter tickers', this.filter), this.body);
    replace(this.body, h('p', { class: 'muted' }, 'Loading instruments…'));
  }

  setInstruments(instruments: readonly Instrument[], quotes: ReadonlyMap<string, Quote>): void {
    // The same list again (a reload after the stream reconnected) keeps the table as it is: a
    // rebuilt one would take the keyboard focus away from the ticker someone is on.
    const sig = instruments.map((i) => `${i.ticker}\t${i.name}`).join('\n');
    if (sig === this.shown) {
      for (const quote of quotes.values()) this.setQuote(quote);
      return;
    }
    this.shown = sig;
    this.cells.clear();
    const rendered = table<Instrument>(
      [
        {
          header: 'Ticker',
          cell: (i) => {
            const button = h('button', { type: 'button', class: 'ticker-button', 'aria-pressed': 'false', title: i.name }, i.ticker);
            button.addEventListener('click', () => this.onSelect(i.ticker));
            const priceCell = h('span', {}, '—');
            const asOf = h('span', { class: 'muted' }, '');
            this.cells.set(i.ticker, { row: undefined as unknown as HTMLTableRowElement, button, price: priceCell, asOf, last: undefined });
            return h('span', { class: 'ticker-cell' }, button, h('small', { class: 'muted ticker-name' }, i.name));
          },
        },
        { header: 'Price', numeric: true, cell: (i) => this.cells.get(i.ticker)!.price },
        { header: 'As of', numeric: true, cell: (i) => this.cells.get(i.ticker)!.asOf },
      ],
      instruments,
      'No instruments are listed.',
      'Watchlist: every instrument with its latest price',
    );
    replace(this.body, rendered);
    for (const cells of this.cells.values()) cells.row = cells.button.closest('tr')!;
    for (const quote of quotes.values()) this.setQuote(quote);
    if (this.selected) this.setSelected(this.selected);
    this.applyFilter();
  }

  /** A price from GET /prices or the stream: the cell shows it, coloured by the move since the last one. */
  setQuote(quote: Quote): void {
    const cells = this.cells.get(quote.ticker);
    if (!cells) return;
    const value = priceFromDb(quote.price);
    const move = cells.last === undefined ? 0 : value > cells.last ? 1 : value < cells.last ? -1 : 0;
    cells.last = value;
    cells.price.textContent = price(quote.price);
    cells.price.className = move > 0 ? 'up' : move < 0 ? 'down' : '';
    cells.asOf.textContent = time(quote.as_of);
  }

  setSelected(ticker: string): void {
    this.selected = ticker;
    for (const [t, cells] of this.cells) {
      const on = t === ticker;
      cells.button.setAttribute('aria-pressed', String(on));
      cells.row.classList.toggle('selected', on);
    }
  }

  private applyFilter(): void {
    const needle = this.filter.value.trim().toUpperCase();
    for (const [ticker, cells] of this.cells) {
      const name = cells.button.title.toUpperCase();
      cells.row.hidden = needle !== '' && !ticker.includes(needle) && !name.includes(needle);
    }
  }
}
