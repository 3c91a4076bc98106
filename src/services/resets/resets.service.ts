/**
 * Account resets: an orchestrator, like the OMS, because a reset touches every service's rows
 * of one user. In ONE transaction every live order is canceled (its hold goes with it), the
 * holdings are removed (recorded in reset_positions), the cash is set (a 'reset' ledger row of
 * the difference; net_contributions restarts there), the portfolio history is marked and its
 * metrics restart, and the events are appended. The user's API keys are untouched.
 *
 * Locks: the balance first, then the holdings (by ticker). Every way an order comes into being
 * takes one of those (a buy's hold, a sell's shares, a class member's lock), so from then on no
 * new order of the user can commit: canceling what is live then leaves nothing live. The live
 * orders are locked after them, against papertrade's lock order (orders, balances, holdings), so
 * that lock never waits: NOWAIT, and an order the engine is filling right now makes the reset
 * roll back and try again a moment later. Waiting only for rows that come before in the order,
 * a reset cannot close a deadlock cycle. History and the event counter come last.
 */
import { CANCEL_REASONS } from '../../core/orders.js';
import { cashToSql, formatCash, formatQty, priceToSql, qtyToSql, type Cash } from '../../core/money.js';
import type { Channel } from '../../infra/channel.js';
import type { Logger } from '../../infra/logger.js';
import { pgErrorCode, type Db } from '../../infra/postgres.js';
import { sleep } from '../../infra/sleep.js';
import * as accounts from '../accounts/accounts.service.js';
import * as portfolios from '../portfolios/portfolios.service.js';
import type { MemberClass } from '../classes/class-membership.js';
import type { EventBus, EventRecord } from '../events/event-log.js';
import * as eventsRepo from '../events/events.repository.js';
import { publishEvents } from '../events/events.service.js';
import { recordReset } from '../history/history.repository.js';
import { orderEvent } from '../orders/order-events.js';
import { announce } from '../orders/order-updates.js';
import * as ordersRepo from '../orders/orders.repository.js';
import { toOrder, type Order } from '../orders/orders.service.js';
import { assertUserExists } from '../users/users.service.js';
import { ResetRetriesExhaustedError } from './resets.errors.js';
import * as repo from './resets.repository.js';

/** Tries of a reset that lost a race (an order being filled at that moment, a serialization failure). */
export const RESET_TRIES_MAX = 10;
/** The pause before try n is n times this: the engine's transaction holding an order is short. */
export const RESET_RETRY_BACKOFF_MS = 5;

export interface ResetsDeps {
  db: Db;
  orderUpdates: Channel;
  eventBus: EventBus;
  logger: Logger;
  classes: { memberClass(userId: string): Promise<MemberClass | undefined> };
}

export interface ResetResult {
  userId: string;
  resetId: string;
  cashBefore: Cash;
  cash: Cash;
  ordersCanceled: number;
  positionsRemoved: { ticker: string; quantity: string }[];
}

/** Thrown inside the transaction to roll it back and try again. */
class ResetRaced extends Error {}

export class ResetsService {
  constructor(private readonly deps: ResetsDeps) {}

  /** The cash a reset sets when none is given: the class's starting cash, else the account's initial cash. */
  async defaultCash(userId: string): Promise<Cash> {
    const member = await this.deps.classes.memberClass(userId);
    return member ? member.startingCash : accounts.initialCash(this.deps.db, userId);
  }

  async resetAccount(userId: string, cash?: Cash): Promise<ResetResult> {
    await assertUserExists(this.deps.db, userId);
    const target = cash ?? (await this.defaultCash(userId));
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) await sleep(RESET_RETRY_BACKOFF_MS * attempt);
      try {
        const done = await this.resetOnce(userId, target);
        await publishEvents(this.deps.eventBus, done.events, this.deps.logger);
        await announce(this.deps.orderUpdates, done.canceled, (err) => this.deps.logger.warn({ err }, 'order update announcement failed'));
        return done.result;
      } catch (err) {
        const code = pgErrorCode(err);
        const raced = err instanceof ResetRaced || code === '55P03' || code === '40P01' || code === '40001';
        if (!raced) throw err;
        if (attempt >= RESET_TRIES_MAX) throw new ResetRetriesExhaustedError(userId, RESET_TRIES_MAX);
        this.deps.logger.debug({ err, userId, attempt }, 'account reset raced; trying again');
      }
    }
  }

  private async resetOnce(userId: string, cash: Cash): Promise<{ result: ResetResult; events: EventRecord[]; canceled: Order[] }> {
    return this.deps.db.transaction().execute(async (trx) => {
      await accounts.lockBalances(trx, [userId]);
      const removed = await portfolios.clearHoldings(trx, userId);
      const canceled = (await ordersRepo.cancelLiveOrdersOfUser(trx, userId, CANCEL_REASONS.accountReset)).map(toOrder);
      // Nothing can be live now (see the locks above); checked, as every hold depends on it.
      if (await ordersRepo.hasLiveOrders(trx, userId)) throw new ResetRaced();
      const { cashBefore, ledgerId } = await accounts.resetCash(trx, userId, cash);
      const resetId = await repo.insertReset(trx, {
        userId,
        ledgerId,
        cashBefore: cashToSql(cashBefore),
        cashAfter: cashToSql(cash),
        ordersCanceled: canceled.length,
        positions: removed.map((h) => ({ ticker: h.ticker, quantity: qtyToSql(h.quantity), avgCost: priceToSql(h.avgCost) })),
      });
      await recordReset(trx, userId, cash);
      const result: ResetResult = {
        userId,
        resetId,
        cashBefore,
        cash,
        ordersCanceled: canceled.length,
        positionsRemoved: removed.map((h) => ({ ticker: h.ticker, quantity: formatQty(h.quantity) })),
      };
      const events = await eventsRepo.appendEvents(trx, [
        ...canceled.map((o) => orderEvent('order.canceled', o)),
        { userId, type: 'account.reset', dataJson: JSON.stringify(resetEventData(result)) },
      ]);
      return { result, events, canceled };
    });
  }
}

/** The account after a reset (all cash, nothing held) and what the reset did: the account.reset event's data. */
export function resetEventData(r: ResetResult) {
  const cash = formatCash(r.cash);
  return {
    user_id: r.userId,
    cash_balance: cash,
    available_cash: cash,
    reserved_cash: '0.00',
    positions_value: '0.00',
    equity: cash,
    reset: {
      id: r.resetId,
      cash_before: formatCash(r.cashBefore),
      orders_canceled: r.ordersCanceled,
      positions_removed: r.positionsRemoved,
    },
  };
}
