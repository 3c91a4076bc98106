import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { formatCash, parseCash } from '../src/core/money.js';
import * as accounts from '../src/services/accounts/accounts.service.js';
import { createTestContext, newUser, type TestContext } from './harness.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({}, { auditOnClose: { skip: 'service tests hold cash without orders on purpose' } });
});
afterAll(async () => {
  await ctx.close();
});

const cash = (s: string) => parseCash(s, 'amount', { allowZero: true });

async function ledgerSum(userId: string): Promise<string> {
  const { rows } = await sql<{ total: string }>`
    SELECT coalesce(sum(amount), 0)::numeric(20,2)::text AS total FROM cash_ledger WHERE user_id = ${userId}`.execute(ctx.db);
  return rows[0]!.total;
}

describe('accounts service', () => {
  it('opens an account with the initial cash and an initial ledger row', async () => {
    const u = await newUser(ctx, { cash: '10000.00' });
    const b = await accounts.getBalance(ctx.db, u.id);
    expect(formatCash(b.cashBalance)).toBe('10000.00');
    expect(formatCash(b.availableCash)).toBe('10000.00');
    const page = await accounts.listActivities(ctx.db, u.id, 10, undefined);
    expect(page.activities.map((a) => [a.kind, formatCash(a.amount)])).toEqual([['initial', '10000.00']]);
  });

  it('deposits and withdraws, writing a ledger row with the balance after each', async () => {
    const u = await newUser(ctx, { cash: '100.00' });
    await accounts.deposit(ctx.db, u.id, cash('50.25'));
    const after = await accounts.withdraw(ctx.db, u.id, cash('30.00'));
    expect(formatCash(after.balance.cashBalance)).toBe('120.25');
    expect(after.replayed).toBe(false);
    const page = await accounts.listActivities(ctx.db, u.id, 10, undefined);
    expect(page.activities.map((a) => [a.kind, formatCash(a.amount), formatCash(a.balanceAfter)])).toEqual([
      ['withdrawal', '-30.00', '120.25'],
      ['deposit', '50.25', '150.25'],
      ['initial', '100.00', '100.00'],
    ]);
    expect(await ledgerSum(u.id)).toBe('120.25');
  });

  it('refuses a withdrawal above available cash with INSUFFICIENT_FUNDS and changes nothing', async () => {
    const u = await newUser(ctx, { cash: '100.00' });
    await accounts.reserveFunds(ctx.db, u.id, cash('60.00'));
    const err = await accounts.withdraw(ctx.db, u.id, cash('40.01')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INSUFFICIENT_FUNDS', service: 'accounts' });
    const b = await accounts.getBalance(ctx.db, u.id);
    expect([formatCash(b.cashBalance), formatCash(b.availableCash)]).toEqual(['100.00', '40.00']);
    await accounts.withdraw(ctx.db, u.id, cash('40.00'));
    expect(formatCash((await accounts.getBalance(ctx.db, u.id)).availableCash)).toBe('0.00');
  });

  it('reserves and releases funds without touching the balance', async () => {
    const u = await newUser(ctx, { cash: '1000.00' });
    const held = await accounts.reserveFunds(ctx.db, u.id, cash('1575.00')).catch((e: unknown) => e);
    expect(held).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    await accounts.reserveFunds(ctx.db, u.id, cash('157.50'));
    let b = await accounts.getBalance(ctx.db, u.id);
    expect([formatCash(b.cashBalance), formatCash(b.availableCash)]).toEqual(['1000.00', '842.50']);
    await accounts.releaseFunds(ctx.db, u.id, cash('157.50'));
    b = await accounts.getBalance(ctx.db, u.id);
    expect(formatCash(b.availableCash)).toBe('1000.00');
  });

  it('pages activities newest first with a cursor', async () => {
    const u = await newUser(ctx, { cash: '1.00' });
    for (let i = 0; i < 5; i++) await accounts.deposit(ctx.db, u.id, cash('1.00'));
    const first = await accounts.listActivities(ctx.db, u.id, 4, undefined);
    expect(first.activities).toHaveLength(4);
    expect(first.next).not.toBeNull();
    const second = await accounts.listActivities(ctx.db, u.id, 4, first.next!);
    expect(second.activities.map((a) => a.kind)).toEqual(['deposit', 'initial']);
    expect(second.next).toBeNull();
  });

  it('moves cash once per Idempotency-Key, also when 20 requests with the key race', async () => {
    const u = await newUser(ctx, { cash: '100.00' });
    const results = await Promise.all(Array.from({ length: 20 }, () => accounts.deposit(ctx.db, u.id, cash('25.00'), { idempotencyKey: 'dep-1' })));
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(formatCash((await accounts.getBalance(ctx.db, u.id)).cashBalance)).toBe('125.00');
    const again = await accounts.deposit(ctx.db, u.id, cash('25.00'), { idempotencyKey: 'dep-1' });
    expect(again.replayed).toBe(true);
    expect(await ledgerSum(u.id)).toBe('125.00');
  });

  it('refuses an Idempotency-Key reused with another amount or for a withdrawal, and moves nothing', async () => {
    const u = await newUser(ctx, { cash: '100.00' });
    await accounts.withdraw(ctx.db, u.id, cash('10.00'), { idempotencyKey: 'k' });
    await expect(accounts.withdraw(ctx.db, u.id, cash('10.01'), { idempotencyKey: 'k' })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', service: 'accounts' });
    await expect(accounts.deposit(ctx.db, u.id, cash('10.00'), { idempotencyKey: 'k' })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect((await accounts.withdraw(ctx.db, u.id, cash('10.00'), { idempotencyKey: 'k' })).replayed).toBe(true);
    expect(formatCash((await accounts.getBalance(ctx.db, u.id)).cashBalance)).toBe('90.00');
    // Keys are per user: another user's key of the same text is another request.
    const other = await newUser(ctx, { cash: '100.00' });
    expect((await accounts.withdraw(ctx.db, other.id, cash('10.01'), { idempotencyKey: 'k' })).replayed).toBe(false);
  });

  it('never overdraws under 50 concurrent withdrawals, and the ledger sums to the balance', async () => {
    const u = await newUser(ctx, { cash: '1000.00' });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => accounts.withdraw(ctx.db, u.id, cash('70.00'))),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter(
      (r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'INSUFFICIENT_FUNDS',
    ).length;
    expect(ok).toBe(14); // floor(1000 / 70)
    expect(refused).toBe(36);
    const b = await accounts.getBalance(ctx.db, u.id);
    expect(formatCash(b.cashBalance)).toBe('20.00');
    expect(b.availableCash).toBe(b.cashBalance);
    expect(await ledgerSum(u.id)).toBe('20.00');
  });

  it('refuses operations on an account that does not exist', async () => {
    const missing = '01900000-0000-7000-8000-0000000000ff';
    await expect(accounts.deposit(ctx.db, missing, cash('1.00'))).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await expect(accounts.withdraw(ctx.db, missing, cash('1.00'))).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
  });
});
