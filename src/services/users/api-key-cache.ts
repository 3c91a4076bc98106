/**
 * A small in-process cache of API key lookups, so an authenticated request does not cost a
 * PostgreSQL round trip. Bounded in size and age: a key revoked through this process is
 * forgotten at once; a key revoked through another api instance stops working here within
 * `ttlMs`. Only successful lookups are cached (a wrong key always goes to the database, so the
 * cache cannot be filled by guessing).
 */
export const API_KEY_CACHE_TTL_MS = 5_000;
export const API_KEY_CACHE_ENTRIES_MAX = 10_000;

/** A verified key: a user's (acts on its user) or a teacher's (reads and resets its class's members). */
export type CachedKey = { role: 'user'; userId: string; keyId: string } | { role: 'teacher'; classId: string; keyId: string };

export class ApiKeyCache {
  private readonly entries = new Map<string, { value: CachedKey; expiresAtMs: number }>();

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
    return hit.value;
  }

  set(token: string, value: CachedKey, nowMs = Date.now()): void {
    if (this.entries.size >= this.entriesMax) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, { value, expiresAtMs: nowMs + this.ttlMs });
  }

  forgetKey(keyId: string): void {
    for (const [token, entry] of this.entries) if (entry.value.keyId === keyId) this.entries.delete(token);
  }
}
