/**
 * ClassMembership's reads against a real PostgreSQL: requests that miss a user's membership
 * together share one read, and the answer is kept afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../src/infra/postgres.js';
import { ClassMembership } from '../src/services/classes/class-membership.js';
import { createTestContext, newUser, type TestContext } from './harness.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => {
  await ctx.close();
});

/** A property of `target`, methods bound to it (Kysely's classes have private fields). */
function own(target: object, prop: string | symbol): unknown {
  const v: unknown = Reflect.get(target, prop, target);
  return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
}

/** The test database, counting the queries sent through it. */
function counted(db: Executor): { db: Executor; queries: () => number } {
  let n = 0;
  const proxy = new Proxy(db, {
    get(target, prop) {
      if (prop !== 'getExecutor') return own(target, prop);
      return () => {
        const executor = target.getExecutor();
        return new Proxy(executor, {
          get(e, p) {
            if (p !== 'executeQuery') return own(e, p);
            return (...args: Parameters<typeof executor.executeQuery>) => {
              n++;
              return executor.executeQuery(...args);
            };
          },
        });
      };
    },
  });
  return { db: proxy, queries: () => n };
}

describe('ClassMembership', () => {
  it('reads a user missed by many requests at once once, and not again', async () => {
    const u = await newUser(ctx, { cash: '1000.00' });
    const { db, queries } = counted(ctx.db);
    const membership = new ClassMembership(db);
    const answers = await Promise.all(Array.from({ length: 8 }, () => membership.memberClass(u.id)));
    expect(answers).toEqual(Array.from({ length: 8 }, () => undefined));
    expect(queries()).toBe(1);
    expect(await membership.isMember('01900000-0000-7000-8000-000000000000', u.id)).toBe(false);
    expect(queries()).toBe(1);
  });
});
