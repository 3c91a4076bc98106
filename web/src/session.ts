/**
 * Who is signed in. The key lives in sessionStorage only (this tab, until it closes or signs
 * out): never in a URL, a cookie or localStorage.
 */
const STORAGE_KEY = 'papertrade.token';

export type Me =
  | { kind: 'user'; user_id: string; name: string; email: string; key_id: string }
  | { kind: 'teacher'; class_id: string; key_id: string }
  | { kind: 'admin' };

export function storedToken(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function storeToken(token: string): void {
  sessionStorage.setItem(STORAGE_KEY, token);
}

/** Signing out forgets the key and whatever else the views kept for this tab (the selected ticker). */
export function forgetToken(): void {
  sessionStorage.clear();
}

/** `GET /me`'s three shapes as one tagged union. */
export function toMe(body: Record<string, unknown>): Me {
  if (body.admin === true) return { kind: 'admin' };
  if (body.teacher === true) return { kind: 'teacher', class_id: String(body.class_id), key_id: String(body.key_id) };
  return { kind: 'user', user_id: String(body.user_id), name: String(body.name), email: String(body.email), key_id: String(body.key_id) };
}
