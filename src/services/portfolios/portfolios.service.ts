/**
 * Holdings: positions, share reservations for pending sells, and applying fills. Leaf service;
 * the OMS and the trading engine call the `trx`-first functions inside their transactions.
 */
import { assert } from '../../core/errors.js';
import {
  formatQty,
  notional,
  priceFromDb,
  priceToSql,
  qtyFromDb,
  qtyToSql,
  type Cash,
  type Price,
  type Qty,
} from '../../core/money.js';
import type { Executor } from '../../infra/postgres.js';
import { InsufficientHoldingsError } from './portfolios.errors.js';
import * as repo from './portfolios.repository.js';

export interface Holding {
  ticker: string;
  quantity: Qty;
  reservedQuantity: Qty;
  availableQuantity: Qty;
  avgCost: Price;
}

export interface ValuedPosition extends Holding {
  marketPrice: Price;
  marketValue: Cash;
  unrealizedPl: Cash;
}

function toHolding(row: repo.HoldingRow): Holding {
  const quantity = qtyFromDb(row.quantity);
  const reservedQuantity = qtyFromDb(row.reserved_quantity);
  return {
    ticker: row.ticker,
    quantity,
    reservedQuantity,
    availableQuantity: quantity - reservedQuantity,
    avgCost: priceFromDb(row.avg_cost),
  };
}

export async function listHoldings(db: Executor, userId: string): Promise<Holding[]> {
  return (await repo.listHoldings(db, userId)).map(toHolding);
}

/**
 * Removes every holding of a reset account (inside the caller's transaction, after it ended
 * every order reserving shares) and returns what it removed, by ticker.
 */
export async function clearHoldings(trx: Executor, userId: string): Promise<Holding[]> {
  return (await repo.deleteHoldingsOfUser(trx, userId)).map(toHolding);
}

/** The user's holding of `ticker`, or undefined when there is none. */
export async function getHolding(db: Executor, userId: string, ticker: string): Promise<Holding | undefined> {
  const row = await repo.getHolding(db, userId, ticker);
  return row ? toHolding(row) : undefined;
}

/**
 * Values positions at the given prices (a ticker without a known price is valued at its average
 * cost, so equity never silently drops a position). Values round half-up to the cent.
 */
export function valuePositions(holdings: Holding[], prices: ReadonlyMap<string, Price>): ValuedPosition[] {
  return holdings.map((h) => {
    const marketPrice = prices.get(h.ticker) ?? h.avgCost;
    const marketValue = notional(h.quantity, marketPrice, 'half-up');
    return { ...h, marketPrice, marketValue, unrealizedPl: marketValue - notional(h.quantity, h.avgCost, 'half-up') };
  });
}

/** What valuing positions needs of market data: the latest prices of some tickers, in one read. */
export interface PriceReader {
  getMany(tickers: readonly string[]): Promise<Map<string, { price: Price }>>;
}

/** The user's positions valued at the latest prices (see valuePositions). */
export async function valuePortfolio(db: Executor, prices: PriceReader, userId: string): Promise<ValuedPosition[]> {
  const holdings = await listHoldings(db, userId);
  const quotes = await prices.getMany(holdings.map((h) => h.ticker));
  return valuePositions(holdings, new Map([...quotes].map(([t, q]) => [t, q.price])));
}

/** The share hold as a statement to compose (see portfolios.repository); refusal via sharesRefusal. */
/** The reservation of many sells as steps to compose (see the repository's reserveSharesManySteps). */
export function reserveSharesManySteps(name: string, inputStep: string, lockAfter?: string) {
  return repo.reserveSharesManySteps(name, inputStep, lockAfter);
}

export function reserveSharesStatement(userId: string, ticker: string, quantity: Qty) {
  assert(quantity > 0n, 'reserved quantity is positive');
  return repo.reserveSharesStatement(userId, ticker, qtyToSql(quantity));
}

/** Locks holdings rows in the global lock order, for a transaction that will change several. */
export async function lockHoldings(trx: Executor, keys: readonly { userId: string; ticker: string }[]): Promise<void> {
  await repo.lockHoldings(trx, keys);
}

/** Reserves shares for a pending sell in one conditional statement. */
export async function reserveShares(trx: Executor, userId: string, ticker: string, quantity: Qty): Promise<Holding> {
  assert(quantity > 0n, 'reserved quantity is positive');
  const row = await repo.reserveShares(trx, userId, ticker, qtyToSql(quantity));
  if (row) return toHolding(row);
  throw await sharesRefusal(trx, userId, ticker, quantity);
}

/** Why a hold of `quantity` shares was refused, with what is available. */
export async function sharesRefusal(db: Executor, userId: string, ticker: string, quantity: Qty): Promise<InsufficientHoldingsError> {
  const current = await repo.getHolding(db, userId, ticker);
  const available = current ? toHolding(current).availableQuantity : 0n;
  return new InsufficientHoldingsError(userId, ticker, formatQty(quantity), formatQty(available));
}

export async function releaseShares(trx: Executor, userId: string, ticker: string, quantity: Qty): Promise<void> {
  const row = await repo.releaseShares(trx, userId, ticker, qtyToSql(quantity));
  assert(row, `release of ${formatQty(quantity)} ${ticker} matches a reservation of user ${userId}`);
}

/**
 * Steps moving the shares of many filled orders inside a larger statement (at most one order
 * per user and ticker; see repo.moveSharesManySteps), for the orders `appliedStep` returned.
 */
export function fillManySteps(
  name: string,
  fills: readonly { orderId: string; side: 'buy' | 'sell'; userId: string; ticker: string; quantity: Qty; price: Price }[],
  appliedStep: string,
  lockAfter?: string,
) {
  const seen = new Set<string>();
  for (const f of fills) {
    assert(f.quantity > 0n && f.price > 0n, 'a fill has positive quantity and price');
    const key = `${f.userId}/${f.ticker}`;
    assert(!seen.has(key), 'one order per user and ticker in a batch of share movements');
    seen.add(key);
  }
  const moves = fills.map((f) => ({ ...f, quantity: qtyToSql(f.quantity), price: priceToSql(f.price) }));
  return repo.moveSharesManySteps(name, moves, appliedStep, lockAfter);
}

