/**
 * Recognizes failures that mean "a dependency (PostgreSQL or Redis) is not reachable right
 * now" as opposed to a bug or a bad request: callers answer 503 or retry later instead of
 * failing the work item.
 */
const CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300']);
const MESSAGES =
  /timeout exceeded when trying to connect|Connection terminated|Command timed out|Connection is closed|Client has encountered a connection error|the database system is (starting up|shutting down)|terminating connection/i;

export function isUnavailableError(err: unknown): boolean {
  const e = err as { code?: unknown; name?: string; message?: string } | undefined;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code && (CODES.has(code) || code.startsWith('08'))) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  return MESSAGES.test(e.message ?? '');
}
