/**
 * The page's client of the public API: the same endpoints and error envelope as any bot. A
 * refusal becomes an ApiError that keeps the server's cause chain, so the page can show it in
 * words, layer by layer.
 */
export interface ErrorBody {
  code: string;
  message: string;
  service?: string;
  request_id?: string;
  cause?: ErrorBody;
  [detail: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message);
    this.name = 'ApiError';
  }
  get code(): string {
    return this.body.code;
  }
}

/** Every request gives up after this long: a hung server must not leave a button spinning. */
const REQUEST_TIMEOUT_MS = 15_000;

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export class Api {
  constructor(private readonly token: () => string | undefined) {}

  async request<T>(method: Method, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (cause) {
      const timedOut = cause instanceof DOMException && cause.name === 'TimeoutError';
      throw new ApiError(0, {
        code: timedOut ? 'TIMEOUT' : 'NETWORK_ERROR',
        service: 'dashboard',
        message: timedOut ? `the server did not answer ${method} ${path} within ${REQUEST_TIMEOUT_MS / 1000} s` : `could not reach the server for ${method} ${path}`,
      });
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const envelope = (parsed as { error?: ErrorBody } | undefined)?.error;
      throw new ApiError(res.status, envelope ?? { code: `HTTP_${res.status}`, service: 'dashboard', message: `${method} ${path} answered ${res.status}` });
    }
    return parsed as T;
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, undefined, options);
  }
  post<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, body ?? {}, options);
  }
  put<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, body ?? {}, options);
  }
  patch<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, body ?? {}, options);
  }
  delete<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, undefined, options);
  }
}

/** The cause chain in words, outermost first: `["ORDER_REJECTED (orders): …", "INSUFFICIENT_FUNDS (accounts): …"]`. */
export function errorChain(error: unknown): string[] {
  if (!(error instanceof ApiError)) return [error instanceof Error ? error.message : String(error)];
  const lines: string[] = [];
  let body: ErrorBody | undefined = error.body;
  for (let depth = 0; body && depth < 10; depth++, body = body.cause) {
    lines.push(`${body.code}${body.service ? ` (${body.service})` : ''}: ${body.message}${body.request_id ? ` [request ${body.request_id}]` : ''}`);
  }
  return lines;
}

/** A query string from the defined values of `params`. */
export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}
