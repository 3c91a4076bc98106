import { describe, expect, it } from 'vitest';
import { InFlight } from './in-flight.js';

/** A read that resolves when told to, counting how often it was started. */
function controlled() {
  const releases: ((v: string) => void)[] = [];
  return { releases, read: () => new Promise<string>((r) => releases.push(r)) };
}

describe('InFlight', () => {
  it('gives calls for a key in flight the same read, and reads again once it is done', async () => {
    const shared = new InFlight<string>(10);
    const { releases, read } = controlled();
    const calls = [shared.run('a', read), shared.run('a', read), shared.run('b', read)];
    expect(releases).toHaveLength(2);
    releases[0]!('A');
    releases[1]!('B');
    expect(await Promise.all(calls)).toEqual(['A', 'A', 'B']);
    expect(shared.size).toBe(0);
    const again = shared.run('a', read);
    expect(releases).toHaveLength(3);
    releases[2]!('A2');
    expect(await again).toBe('A2');
  });

  it('shares a failure with the calls waiting for it, then forgets it', async () => {
    const shared = new InFlight<string>(10);
    let fail!: (err: Error) => void;
    const failing = () => new Promise<string>((_, reject) => (fail = reject));
    const calls = [shared.run('a', failing), shared.run('a', failing)];
    fail(new Error('down'));
    for (const c of calls) await expect(c).rejects.toThrow('down');
    expect(await shared.run('a', () => Promise.resolve('up'))).toBe('up');
  });

  it('shares at most sharedMax reads at once; past that a call reads on its own', async () => {
    const shared = new InFlight<string>(1);
    const { releases, read } = controlled();
    const calls = [shared.run('a', read), shared.run('b', read), shared.run('b', read)];
    expect(releases).toHaveLength(3);
    expect(shared.size).toBe(1);
    releases.forEach((r, i) => r(String(i)));
    expect(await Promise.all(calls)).toEqual(['0', '1', '2']);
  });
});
