/** Where tests find PostgreSQL and Redis: TEST_DATABASE_URL / TEST_REDIS_URL, else the local ones. */
export const TEMPLATE_DB = 'pt_template';

export function adminUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function urlFor(database: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

export function redisUrl(): string {
  return process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}
