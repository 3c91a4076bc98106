import { AppError } from '../../core/errors.js';

const SERVICE = 'users';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type UsersErrorCode = 'USER_NOT_FOUND' | 'EMAIL_TAKEN' | 'API_KEY_NOT_FOUND';

export class UserNotFoundError extends AppError<UsersErrorCode> {
  constructor(userId: string) {
    super(SERVICE, 'USER_NOT_FOUND', `no user ${userId}`, { details: { user_id: userId } });
  }
}

export class EmailTakenError extends AppError<UsersErrorCode> {
  constructor(email: string) {
    super(SERVICE, 'EMAIL_TAKEN', `a user with email ${email} already exists`);
  }
}

export class ApiKeyNotFoundError extends AppError<UsersErrorCode> {
  constructor(keyId: string) {
    super(SERVICE, 'API_KEY_NOT_FOUND', `no active API key ${keyId} for this user`, { details: { key_id: keyId } });
  }
}
