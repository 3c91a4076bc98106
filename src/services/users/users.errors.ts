import { AppError } from '../../core/errors.js';

const SERVICE = 'users';

export class UserNotFoundError extends AppError {
  constructor(userId: string) {
    super(SERVICE, 'USER_NOT_FOUND', `no user ${userId}`, { details: { user_id: userId } });
  }
}

export class EmailTakenError extends AppError {
  constructor(email: string) {
    super(SERVICE, 'EMAIL_TAKEN', `a user with email ${email} already exists`);
  }
}

export class ApiKeyNotFoundError extends AppError {
  constructor(keyId: string) {
    super(SERVICE, 'API_KEY_NOT_FOUND', `no active API key ${keyId} for this user`, { details: { key_id: keyId } });
  }
}

export class UserCreationFailedError extends AppError {
  constructor(cause: AppError) {
    super(SERVICE, 'USER_CREATION_FAILED', 'the user could not be created', { cause });
  }
}
