/**
 * API key format and hashing. A key reads `ptk_<id>_<secret>`: the id (16 hex characters) finds
 * the row, the secret (32 random bytes, base64url) is checked against its stored SHA-256 hash
 * with a constant-time comparison. Only the hash is stored; the key is shown once, at creation.
 * A fast hash is right here (unlike for passwords): the secret has 256 bits of entropy.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_RE = /^ptk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedKey {
  id: string;
  token: string;
  hash: Buffer;
}

export function generateApiKey(): GeneratedKey {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `ptk_${id}_${secret}`, hash: hashSecret(secret) };
}

/**
 * Alpaca's form of a key: `key_id` (the id, `APCA-API-KEY-ID`) and `secret_key` (the secret,
 * `APCA-API-SECRET-KEY`). They are the two halves of the one token, so either form
 * authenticates as the same key and revoking it revokes both.
 */
export function keyPair(token: string): { keyId: string; secretKey: string } {
  const parsed = parseApiKey(token);
  if (!parsed) throw new Error('keyPair takes a token generateApiKey made');
  return { keyId: parsed.id, secretKey: parsed.secret };
}

/** The token a key pair stands for (whatever the halves hold: a bad pair fails like a bad token). */
export function apiKeyFromPair(keyId: string, secretKey: string): string {
  return `ptk_${keyId}_${secretKey}`;
}

export function parseApiKey(token: string): { id: string; secret: string } | undefined {
  const match = KEY_RE.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Constant-time comparison of two secrets of any length (both are hashed to 32 bytes first). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(hashSecret(a), hashSecret(b));
}

export function hashMatches(secret: string, storedHash: Buffer): boolean {
  const hash = hashSecret(secret);
  return storedHash.length === hash.length && timingSafeEqual(hash, storedHash);
}
