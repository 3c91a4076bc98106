/**
 * The error base every service builds on. An error names the service that raised it, a stable
 * machine-readable code, a human message and, when it wraps a failure from a lower layer, that
 * failure as `cause`. Chained causes read like a stack trace:
 * `ORDER_REJECTED (orders) <- INSUFFICIENT_FUNDS (accounts)`.
 *
 * Services subclass this once per rule broken; the HTTP layer maps codes to statuses in one
 * table (src/http/errors.ts). Nothing here knows about HTTP.
 *
 * `AppError` is generic over its code: each errors module declares the union of the codes it
 * raises and its classes extend `AppError<ThatUnion>`, so a code outside the union does not
 * compile and the HTTP table can be checked against the union of all of them.
 */
export interface ErrorJson {
  code: string;
  message: string;
  service: string;
  details?: Record<string, unknown>;
  cause?: ErrorJson;
}

export class AppError<Code extends string = string> extends Error {
  readonly service: string;
  readonly code: Code;
  readonly details: Record<string, unknown> | undefined;
  declare readonly cause: AppError | undefined;

  constructor(
    service: string,
    code: Code,
    message: string,
    options: { cause?: AppError | undefined; details?: Record<string, unknown> | undefined } = {},
  ) {
    super(message, options.cause ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.service = service;
    this.code = code;
    this.details = options.details;
  }

  /** The chain of codes from this error down to the root cause, outermost first. */
  codeChain(): string[] {
    return [this.code, ...(this.cause ? this.cause.codeChain() : [])];
  }

  toJSON(): ErrorJson {
    return {
      code: this.code,
      message: this.message,
      service: this.service,
      ...(this.details ? { details: this.details } : {}),
      ...(this.cause ? { cause: this.cause.toJSON() } : {}),
    };
  }
}

/** The codes core raises. */
export type CoreErrorCode = 'VALIDATION_FAILED';

/** Input that does not meet the contract (bad type, scale, range). Maps to 400. */
export class ValidationError extends AppError<CoreErrorCode> {
  constructor(message: string, details?: Record<string, unknown>) {
    super('core', 'VALIDATION_FAILED', message, { details });
  }
}

/**
 * A programmer error: an invariant the code itself guarantees was broken. Not a refusal;
 * callers never catch it to carry on.
 */
export class AssertionFailed extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionFailed';
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailed(message);
}
