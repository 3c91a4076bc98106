/**
 * Cash: balances, holds and the ledger. Leaf service: it moves cash when told to and refuses
 * what its rules forbid (INSUFFICIENT_FUNDS); deciding *when* to move cash is the OMS's and the
 * trading engine's job, which call the `trx`-first functions inside the transaction they own.
 */
import { cashFromDb, cashToSql, formatCash, sum, type Cash } from '../../core/money.js';
import * as portfolios from '../portfolios/portfolios.service.js';
import { assert } from '../../core/errors.js';
import { hash } from 'node:crypto';
import { pgConstraint, pgErrorCode, type Db, type Executor } from '../../infra/postgres.js';
import type { LedgerKind } from '../../infra/schema.js';
import { AccountNotFoundError, IdempotencyKeyReusedError, InsufficientFundsError } from './accounts.errors.js';
import * as repo from './accounts.repository.js';
import type { EventRecord } from '../events/event-log.js';
import * as eventsRepo from '../events/events.repository.js';

/** The event a client-initiated movement appends. */
const MOVEMENT_EVENT = { deposit: 'cash.deposit', withdrawal: 'cash.withdrawal' } as const;

export interface Balance {
  userId: string;
  cashBalance: Cash;
  availableCash: Cash;
}

export interface Activity {
  id: string;
  kind: LedgerKind;
  amount: Cash;
  balanceAfter: Cash;
  orderId: string | null;
  createdAt: Date;
}

export const ACTIVITIES_LIMIT_MAX = 500;

/** The account as clients see it: cash, holds, and the positions valued at the latest prices. */
export interface AccountSummary {
  userId: string;
  cashBalance: Cash;
  availableCash: Cash;
  reservedCash: Cash;
  positionsValue: Cash;
  equity: Cash;
}

/**
 * Sums up an account: its balance (read now, or the one a movement just returned) and its
 * positions valued by portfolios. Values are for display: nothing moves cash from them.
 */
export async function accountSummary(
  db: Executor,
  prices: portfolios.PriceReader,
  userId: string,
  balance?: Balance,
): Promise<AccountSummary> {
  const [b, positions] = await Promise.all([balance ?? getBalance(db, userId), portfolios.valuePortfolio(db, prices, userId)]);
  const positionsValue = sum(positions.map((p) => p.marketValue));
  return {
    userId,
    cashBalance: b.cashBalance,
    availableCash: b.availableCash,
    reservedCash: b.cashBalance - b.availableCash,
    positionsValue,
    equity: b.cashBalance + positionsValue,
  };
}

function toBalance(row: repo.BalanceRow): Balance {
  return {
    userId: row.user_id,
    cashBalance: cashFromDb(row.cash_balance),
    availableCash: cashFromDb(row.available_cash),
  };
}

/** Opens the cash account of a new user, with its initial ledger row (inside the caller's trx). */
export async function openAccount(trx: Executor, userId: string, initialCash: Cash): Promise<void> {
  assert(initialCash >= 0n, 'initial cash is never negative');
  await repo.insertBalance(trx, userId, cashToSql(initialCash));
}

/**
 * Sets the cash of a reset account (inside the caller's transaction, after it ended every order
 * holding cash): the balance, all available, and its 'reset' ledger row. Returns the balance
 * before and the ledger row's id.
 */
export async function resetCash(trx: Executor, userId: string, cash: Cash): Promise<{ cashBefore: Cash; ledgerId: string }> {
  assert(cash >= 0n, 'a reset sets a cash amount that is not negative');
  const row = await repo.resetBalance(trx, userId, cashToSql(cash));
  if (!row) throw new AccountNotFoundError(userId);
  return { cashBefore: cashFromDb(row.cash_before), ledgerId: row.ledger_id };
}

/** The cash the account was opened with (its first 'initial' ledger row). */
export async function initialCash(db: Executor, userId: string): Promise<Cash> {
  const amount = await repo.initialCash(db, userId);
  if (amount === undefined) throw new AccountNotFoundError(userId);
  return cashFromDb(amount);
}

export async function getBalance(db: Executor, userId: string): Promise<Balance> {
  const row = await repo.getBalance(db, userId);
  if (!row) throw new AccountNotFoundError(userId);
  return toBalance(row);
}

/** The balances of many users in one query (an admin's list of users); a user without an account is left out. */
export async function getBalancesMany(db: Executor, userIds: readonly string[]): Promise<Map<string, Balance>> {
  const rows = await repo.getBalancesMany(db, userIds);
  return new Map(rows.map((row) => [row.user_id, toBalance(row)]));
}

/** A deposit or withdrawal, and whether it was a replay of an earlier request with the same key. */
export interface MovementResult {
  balance: Balance;
  /** True when the Idempotency-Key was seen with this same request: nothing moved this time. */
  replayed: boolean;
  /** The cash.deposit or cash.withdrawal event the movement appended (none for a replay). */
  event?: EventRecord;
}

/** Where a committed movement's event is announced (the bus); the log already holds it. */
export type PublishEvents = (events: readonly EventRecord[]) => Promise<void>;

export interface MovementOptions {
  idempotencyKey?: string | undefined;
  publish?: PublishEvents;
}

/**
 * Adds cash. With an Idempotency-Key, the same request again moves nothing and answers
 * `replayed` (the balance as it is now); the key with another request is IDEMPOTENCY_KEY_REUSED.
 */
export async function deposit(db: Db, userId: string, amount: Cash, options: MovementOptions = {}): Promise<MovementResult> {
  assert(amount > 0n, 'deposit amount is positive');
  return idempotentMovement(db, movement(userId, 'deposit', amount, amount, null), options, async (m) => {
    const row = await repo.moveCash(db, m, MOVEMENT_EVENT.deposit, eventsRepo.appendEventsSteps);
    if (!row) throw new AccountNotFoundError(userId);
    return row;
  });
}

/** Withdraws from available cash; refuses with INSUFFICIENT_FUNDS rather than overdraw. Idempotent as deposit. */
export async function withdraw(db: Db, userId: string, amount: Cash, options: MovementOptions = {}): Promise<MovementResult> {
  assert(amount > 0n, 'withdrawal amount is positive');
  return idempotentMovement(db, movement(userId, 'withdrawal', -amount, -amount, null), options, async (m) => {
    const row = await repo.moveCash(db, m, MOVEMENT_EVENT.withdrawal, eventsRepo.appendEventsSteps);
    if (!row) throw await fundsRefusal(db, userId, amount);
    return row;
  });
}

/** The request a retry must repeat, hashed: kind, user and amount. */
function movementHash(m: repo.CashMovement): Buffer {
  return hash('sha256', JSON.stringify([m.kind, m.userId, m.balanceDelta]), 'buffer');
}

/**
 * Runs a movement under an Idempotency-Key: a key already on a ledger row replays (same
 * request) or conflicts (another request); otherwise the movement writes the key on its ledger
 * row, and the unique index on (user_id, key) makes a concurrent twin fail, undoing its
 * movement, so it replays the winner instead.
 */
async function idempotentMovement(
  db: Db,
  m: repo.CashMovement,
  options: MovementOptions,
  move: (m: repo.CashMovement) => Promise<repo.MovedRow>,
): Promise<MovementResult> {
  const key = options.idempotencyKey;
  // Committed: the event is announced (never throws: the log is the record).
  const moved = async (row: repo.MovedRow): Promise<MovementResult> => {
    const type = MOVEMENT_EVENT[m.kind as keyof typeof MOVEMENT_EVENT];
    const event = eventsRepo.toEventRecord({ user_id: row.user_id, seq: row.event_seq, type, at: row.event_at, data: row.event_data });
    await options.publish?.([event]);
    return { balance: toBalance(row), replayed: false, event };
  };
  if (key === undefined) return moved(await move(m));
  const requestHash = movementHash(m);
  const replay = async (): Promise<MovementResult | undefined> => {
    const seen = await repo.getLedgerByIdempotencyKey(db, m.userId, key);
    if (!seen) return undefined;
    if (!seen.request_hash.equals(requestHash)) throw new IdempotencyKeyReusedError(key);
    return { balance: await getBalance(db, m.userId), replayed: true };
  };
  const earlier = await replay();
  if (earlier) return earlier;
  try {
    return await moved(await move({ ...m, idempotency: { key, requestHash } }));
  } catch (err) {
    if (pgErrorCode(err) === '23505' && pgConstraint(err) === 'cash_ledger_idempotency_key_key') {
      const twin = await replay();
      if (twin) return twin;
    }
    throw err;
  }
}

function movement(userId: string, kind: LedgerKind, balanceDelta: Cash, availableDelta: Cash, orderId: string | null): repo.CashMovement {
  return { userId, kind, balanceDelta: cashToSql(balanceDelta), availableDelta: cashToSql(availableDelta), orderId };
}

/**
 * A filled buy as a cash movement: `cost` leaves the balance; the `reserved` hold is released,
 * so the part of it not spent returns to available cash (cost <= reserved, checked by the caller).
 */
export function buySettlement(userId: string, reserved: Cash, cost: Cash, orderId: string): repo.CashMovement {
  assert(cost >= 0n && cost <= reserved, 'a buy settles within its reservation');
  return movement(userId, 'buy', -cost, reserved - cost, orderId);
}

/**
 * A filled sell as a cash movement: the proceeds are credited to the balance and to available
 * cash, and the part of its hold the execution releases (`heldReleased`: a class member's sell
 * holds its commission in cash) returns to available cash.
 */
export function sellSettlement(userId: string, proceeds: Cash, orderId: string, heldReleased: Cash = 0n): repo.CashMovement {
  assert(proceeds >= 0n && heldReleased >= 0n, 'sell proceeds and the released hold are not negative');
  return movement(userId, 'sell', proceeds, proceeds + heldReleased, orderId);
}

/**
 * A commission charged on an execution: it leaves the balance and available cash alike, paid
 * from what the execution's settlement just released or credited (its hold, a sell's proceeds;
 * core/executions checks that they cover it).
 */
export function commissionCharge(userId: string, commission: Cash, orderId: string): repo.CashMovement {
  assert(commission > 0n, 'a charged commission is positive');
  return movement(userId, 'commission', -commission, -commission, orderId);
}

/**
 * Steps applying many settlements (several per user allowed) inside a larger statement, for
 * the orders `appliedStep` returned; the ledger rows follow the order of `settlements`.
 */
export function settlementManySteps(name: string, settlements: readonly repo.CashMovement[], appliedStep: string) {
  assert(settlements.every((m) => m.orderId !== null), 'a settlement belongs to an order');
  return repo.cashMovementManySteps(name, settlements, appliedStep);
}

/** The hold of `amount` as a statement to compose (see accounts.repository); refusal via fundsRefusal. */
/** The hold of many buys as steps to compose (see accounts.repository.reserveFundsManySteps). */
export function reserveFundsManySteps(name: string, inputStep: string) {
  return repo.reserveFundsManySteps(name, inputStep);
}

export function reserveFundsStatement(userId: string, amount: Cash) {
  assert(amount > 0n, 'reservation is positive');
  return repo.reserveFundsStatement(userId, cashToSql(amount));
}

/** Locks users' balance rows in the global lock order, for a transaction that will change several. */
export async function lockBalances(trx: Executor, userIds: readonly string[]): Promise<void> {
  await repo.lockBalances(trx, userIds);
}

/** Holds cash for a pending buy. One conditional UPDATE: two racing holds cannot both pass. */
export async function reserveFunds(trx: Executor, userId: string, amount: Cash): Promise<Balance> {
  assert(amount > 0n, 'reservation is positive');
  const row = await repo.reserveFunds(trx, userId, cashToSql(amount));
  if (!row) throw await fundsRefusal(trx, userId, amount);
  return toBalance(row);
}

export async function releaseFunds(trx: Executor, userId: string, amount: Cash): Promise<Balance> {
  assert(amount >= 0n, 'released amount is not negative');
  const row = await repo.releaseFunds(trx, userId, cashToSql(amount));
  if (!row) throw new AccountNotFoundError(userId);
  return toBalance(row);
}

export async function listActivities(
  db: Executor,
  userId: string,
  limit: number,
  beforeId: string | undefined,
): Promise<{ activities: Activity[]; next: string | null }> {
  assert(limit >= 1 && limit <= ACTIVITIES_LIMIT_MAX, 'activities limit within bounds');
  const rows = await repo.listLedger(db, userId, limit + 1, beforeId);
  const page = rows.slice(0, limit);
  return {
    activities: page.map((r) => ({
      id: r.id,
      kind: r.kind,
      amount: cashFromDb(r.amount),
      balanceAfter: cashFromDb(r.balance_after),
      orderId: r.order_id,
      createdAt: r.created_at,
    })),
    next: rows.length > limit ? page[page.length - 1]!.id : null,
  };
}

/** Why a hold of `requested` was refused: INSUFFICIENT_FUNDS, or ACCOUNT_NOT_FOUND. */
export async function fundsRefusal(db: Executor, userId: string, requested: Cash): Promise<Error> {
  const row = await repo.getBalance(db, userId);
  if (!row) return new AccountNotFoundError(userId);
  return new InsufficientFundsError(userId, formatCash(requested), formatCash(cashFromDb(row.available_cash)));
}

/** A ledger row as an activity of the Alpaca facade, with its activity id (see the repository). */
export interface LedgerActivity extends Activity {
  activityId: string;
}

export type ActivityPageFilter = repo.ActivityPageFilter;

/** The user's ledger rows of `kinds`, one page in activity id order (at most LEDGER_ACTIVITIES_LIMIT_MAX). */
export async function listLedgerActivities(db: Executor, kinds: readonly LedgerKind[], filter: ActivityPageFilter): Promise<LedgerActivity[]> {
  assert(filter.limit >= 1 && filter.limit <= repo.LEDGER_ACTIVITIES_LIMIT_MAX, 'ledger activities limit within bounds');
  const rows = await repo.listLedgerActivities(db, kinds, filter);
  return rows.map((r) => ({
    activityId: r.activity_id,
    id: r.id,
    kind: r.kind,
    amount: cashFromDb(r.amount),
    balanceAfter: cashFromDb(r.balance_after),
    orderId: r.order_id,
    createdAt: r.created_at,
  }));
}
