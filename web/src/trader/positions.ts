/**
 * Positions with their market value and unrealized P&L. The snapshot comes from
 * GET /users/{id}/portfolio (re-fetched after fills); between snapshots every price tick revalues
 * the position it concerns exactly as the server does (src/services/portfolios: quantity × price
 * rounded half-up to the cent, minus quantity × average cost rounded the same way), in bigint.
 */
import { h, replace, table } from '../dom.js';
import { fromFixedBig, money, price, qty, sign } from '../format.js';
import { cashFromDb, notional, priceFromDb, qtyFromDb } from '../../../src/core/money.js';
import type { Position } from './types.js';

interface LiveCells {
  price: HTMLElement;
  value: HTMLElement;
  pl: HTMLElement;
}

/** A position revalued at `marketPrice` (a decimal string with 4 places). */
export function revalue(p: Position, marketPrice: string): Position {
  const quantity = qtyFromDb(p.quantity);
  const value = notional(quantity, priceFromDb(marketPrice), 'half-up');
  const cost = notional(quantity, priceFromDb(p.avg_cost), 'half-up');
  return { ...p, market_price: marketPrice, market_value: fromFixedBig(value, 2), unrealized_pl: fromFixedBig(value - cost, 2) };
}

const signClass = (value: string) => (sign(value) > 0 ? 'up' : sign(value) < 0 ? 'down' : undefined);

export class Positions {
  readonly element = h('div', { class: 'positions' }, h('p', { class: 'muted' }, 'Loading positions…'));
  private positions: Position[] = [];
  private readonly cells = new Map<string, LiveCells>();
  private loaded = false;

  constructor(private readonly onSell: (ticker: string, quantity: string) => void) {}

  get current(): readonly Position[] {
    return this.positions;
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  find(ticker: string): Position | undefined {
    return this.positions.find((p) => p.ticker === ticker);
  }

  /**
   * A fresh snapshot. Prices newer than the snapshot (ticks that arrived while it was on its way)
   * are applied by the caller right after, through `tick`.
   */
  set(positions: readonly Position[]): void {
    this.loaded = true;
    this.positions = [...positions];
    this.cells.clear();
    const rendered = table<Position>(
      [
        { header: 'Ticker', cell: (p) => h('strong', {}, p.ticker) },
        { header: 'Quantity', numeric: true, cell: (p) => qty(p.quantity) },
        { header: 'Available', numeric: true, cell: (p) => qty(p.available_quantity) },
        { header: 'Avg cost', numeric: true, cell: (p) => price(p.avg_cost) },
        { header: 'Price', numeric: true, cell: (p) => this.cell(p.ticker, 'price', price(p.market_price)) },
        { header: 'Market value', numeric: true, cell: (p) => this.cell(p.ticker, 'value', money(p.market_value)) },
        { header: 'Unrealized P&L', numeric: true, cell: (p) => this.cell(p.ticker, 'pl', money(p.unrealized_pl), signClass(p.unrealized_pl)) },
        {
          header: 'Actions',
          cell: (p) => {
            const b = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Sell ${p.ticker}: fill the ticket with ${qty(p.available_quantity)} shares` }, 'Sell…');
            b.addEventListener('click', () => this.onSell(p.ticker, p.available_quantity));
            b.disabled = qtyFromDb(p.available_quantity) === 0n;
            return b;
          },
        },
      ],
      this.positions,
      'No positions yet: a filled buy shows here.',
      'Positions: quantity, average cost, market value and unrealized profit or loss',
    );
    replace(this.element, rendered);
  }

  /** A tick: revalue the position of that ticker, in place. Answers whether one changed. */
  tick(ticker: string, marketPrice: string): boolean {
    const index = this.positions.findIndex((p) => p.ticker === ticker);
    if (index < 0) return false;
    const next = revalue(this.positions[index]!, marketPrice);
    this.positions[index] = next;
    const cells = this.cells.get(ticker);
    if (cells) {
      cells.price.textContent = price(next.market_price);
      cells.value.textContent = money(next.market_value);
      cells.pl.textContent = money(next.unrealized_pl);
      cells.pl.className = signClass(next.unrealized_pl) ?? '';
    }
    return true;
  }

  /** The positions' value at the prices shown, exactly (cents). */
  totalValue(): bigint {
    return this.positions.reduce((sum, p) => sum + cashFromDb(p.market_value), 0n);
  }

  private cell(ticker: string, key: keyof LiveCells, text: string, className?: string): HTMLElement {
    const span = h('span', { class: className }, text);
    const cells = this.cells.get(ticker) ?? ({} as LiveCells);
    cells[key] = span;
    this.cells.set(ticker, cells);
    return span;
  }
}
