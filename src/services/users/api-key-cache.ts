/**
 * A small in-process cache of API key lookups, so an authenticated request does not cost a
 * PostgreSQL round trip. Bounded in size and age: a key revoked through this process is
 * forgotten at once; a key revoked through another api instance stops working here within
 * `ttlMs`. Only successful lookups are cached (a wrong key always goes to the database, so the
 * cache cannot be filled by guessing).
 *
 * The keys in use are revalidated together (users.service revalidateApiKeys: one query for all
 * of them every half `ttlMs`) instead of each being looked up again when it expires: with a
 * thousand active bots that was two hundred queries a second, more than the orders' own
 * statements, and each expiry stalled that key's requests on a round trip. A revalidation
 * that confirms a key renews its time to live from the moment the query was sent; one that
 * does not find it live drops it. The bound on a revocation elsewhere stays `ttlMs`: nothing
 * renews an entry but a database read that saw the key live.
 */
import { InFlight } from '../../infra/in-flight.js';

export const API_KEY_CACHE_TTL_MS = 5_000;
export const API_KEY_CACHE_ENTRIES_MAX = 10_000;
/** How often the keys in use are revalidated: twice per time to live, so none expires in use. */
export const API_KEY_REVALIDATE_INTERVAL_MS = API_KEY_CACHE_TTL_MS / 2;
/** An entry unused for this long is left to expire instead of being revalidated. */
export const API_KEY_REVALIDATE_IDLE_MS = 60_000;
/** Lookups shared at most at once; past this, a miss looks up on its own. */
export const API_KEY_LOOKUPS_SHARED_MAX = 10_000;

/** A verified key: a user's (acts on its user) or a teacher's (reads and resets its class's members). */
export type CachedKey = { role: 'user'; userId: string; keyId: string } | { role: 'teacher'; classId: string; keyId: string };

export class ApiKeyCache {
  private readonly entries = new Map<string, { value: CachedKey; expiresAtMs: number; usedAtMs: number }>();
  /** The lookups in flight, by revocation count and token (see resolve). */
  private readonly lookups = new InFlight<CachedKey | undefined>(API_KEY_LOOKUPS_SHARED_MAX);
  /** Revocations through this process so far: a lookup that one overtook is not cached. */
  private revocations = 0;

  constructor(
    private readonly ttlMs = API_KEY_CACHE_TTL_MS,
    private readonly entriesMax = API_KEY_CACHE_ENTRIES_MAX,
  ) {}

  get(token: string, nowMs = Date.now()): CachedKey | undefined {
    const hit = this.entries.get(token);
    if (!hit) return undefined;
    if (hit.expiresAtMs <= nowMs) {
      this.entries.delete(token);
      return undefined;
    }
    hit.usedAtMs = nowMs;
    return hit.value;
  }

  /**
   * The key behind `token`: cached, or read by `load` — once for all the requests that miss it
   * together (a bot's first burst costs one lookup, not one per request). Only a key found live
   * is cached, and not when a revocation through this process happened while it was read (the
   * read may predate it); requests after a revocation do not join a lookup started before it.
   */
  async resolve(token: string, load: () => Promise<CachedKey | undefined>): Promise<CachedKey | undefined> {
    const hit = this.get(token);
    if (hit) return hit;
    const started = this.revocations;
    return this.lookups.run(`${started}:${token}`, async () => {
      const found = await load();
      if (found && this.revocations === started) this.set(token, found);
      return found;
    });
  }

  set(token: string, value: CachedKey, nowMs = Date.now()): void {
    if (this.entries.size >= this.entriesMax) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, { value, expiresAtMs: nowMs + this.ttlMs, usedAtMs: nowMs });
  }

  /** The ids of the keys cached, unexpired and used within API_KEY_REVALIDATE_IDLE_MS: what to revalidate. */
  keyIdsInUse(nowMs = Date.now()): string[] {
    const ids = new Set<string>();
    for (const { value, expiresAtMs, usedAtMs } of this.entries.values()) {
      if (expiresAtMs > nowMs && nowMs - usedAtMs < API_KEY_REVALIDATE_IDLE_MS) ids.add(value.keyId);
    }
    return [...ids];
  }

  /**
   * The outcome of a revalidation of `checked`, read by a query sent at `checkedAtMs`: the ones
   * in `live` are renewed from then, the others are forgotten (revoked, or gone with their user).
   */
  revalidated(checked: readonly string[], live: ReadonlySet<string>, checkedAtMs: number): void {
    const asked = new Set(checked);
    for (const [token, entry] of this.entries) {
      if (!asked.has(entry.value.keyId)) continue;
      if (live.has(entry.value.keyId)) entry.expiresAtMs = Math.max(entry.expiresAtMs, checkedAtMs + this.ttlMs);
      else this.entries.delete(token);
    }
  }

  forgetKey(keyId: string): void {
    this.revocations++;
    for (const [token, entry] of this.entries) if (entry.value.keyId === keyId) this.entries.delete(token);
  }
}
