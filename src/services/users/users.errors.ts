import { AppError } from '../../core/errors.js';

const SERVICE = 'users';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type UsersErrorCode = 'USER_NOT_FOUND' | 'EMAIL_TAKEN' | 'API_KEY_NOT_FOUND';

export class UserNotFoundError extends AppError<UsersErrorCode> {
  constructor(userId: string) {
    super(SERVICE, 'USER_NOT_FOUND', `no user ${userId}`, { details: { user_id: userId } });
  }
}

/** Emails named in a message and its details: a bulk refusal may find thousands. */
export const EMAILS_SHOWN_MAX = 20;

/**
 * Refusal: an email is already taken (case-insensitively), or given twice in one bulk request
 * (`inRequest`). A bulk refusal names up to EMAILS_SHOWN_MAX emails and counts the rest.
 */
export class EmailTakenError extends AppError<UsersErrorCode> {
  constructor(emails: string | readonly string[], options: { inRequest?: boolean } = {}) {
    const all = typeof emails === 'string' ? [emails] : [...emails];
    const shown = all.slice(0, EMAILS_SHOWN_MAX);
    const more = all.length > shown.length ? ` and ${all.length - shown.length} more` : '';
    const message = options.inRequest
      ? `the request gives ${all.length === 1 ? 'the email' : 'the emails'} ${shown.join(', ')}${more} more than once`
      : all.length === 1
        ? `a user with email ${all[0]} already exists`
        : `users with the emails ${shown.join(', ')}${more} already exist`;
    super(SERVICE, 'EMAIL_TAKEN', message, { details: { emails: shown, count: all.length, ...(options.inRequest ? { in_request: true } : {}) } });
  }
}

export class ApiKeyNotFoundError extends AppError<UsersErrorCode> {
  constructor(keyId: string) {
    super(SERVICE, 'API_KEY_NOT_FOUND', `no active API key ${keyId} for this user`, { details: { key_id: keyId } });
  }
}
