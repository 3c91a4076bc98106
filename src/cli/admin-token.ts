/**
 * The admin token when PAPERTRADE_ADMIN_TOKEN is not set: kept in the data directory
 * (`<PAPERTRADE_DATA_DIR>/admin-token`, mode 0600), generated on the first start and read on
 * every later one, so it survives restarts and every api process of one data directory accepts
 * the same token. Only the roles that check it (the api) resolve it; the engine and the feed
 * never need it and never print one.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../infra/config.js';

export const ADMIN_TOKEN_FILE = 'admin-token';
/** The same bound as PAPERTRADE_ADMIN_TOKEN: a token shorter than this is refused. */
export const ADMIN_TOKEN_LENGTH_MIN = 16;

export class AdminTokenFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdminTokenFileError';
  }
}

export interface ResolvedAdminToken {
  config: Config;
  /** The file it was read from or written to; undefined when it came from the environment. */
  file: string | undefined;
  created: boolean;
}

/** Returns the config with its admin token filled in, reading or creating the token file. */
export async function resolveAdminToken(config: Config): Promise<ResolvedAdminToken> {
  if (config.adminTokenSource === 'env') return { config, file: undefined, created: false };
  const file = path.join(config.dataDir, ADMIN_TOKEN_FILE);
  let token = await readToken(file);
  let created = false;
  if (token === undefined) {
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const fresh = `pta_${randomBytes(24).toString('base64url')}`;
    // Written whole to a file of our own, then linked into place: link() creates the name
    // only if it does not exist, atomically, so two processes starting together agree on one
    // token, and none ever reads a file that is still being written.
    const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(draft, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
    try {
      await link(draft, file);
      token = fresh;
      created = true;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      token = await readToken(file);
    } finally {
      await unlink(draft).catch(() => undefined);
    }
  }
  if (token === undefined || token.length < ADMIN_TOKEN_LENGTH_MIN || !/^[\x21-\x7e]+$/.test(token)) {
    throw new AdminTokenFileError(
      `the admin token file ${file} does not hold a token of at least ${ADMIN_TOKEN_LENGTH_MIN} printable characters; ` +
        'delete it to have a new one generated, or set PAPERTRADE_ADMIN_TOKEN',
    );
  }
  return { config: { ...config, adminToken: token }, file, created };
}

async function readToken(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}
