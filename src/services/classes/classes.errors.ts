import { AppError } from '../../core/errors.js';
import type { RuleViolation } from '../../core/class-rules.js';

const SERVICE = 'classes';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type ClassesErrorCode = 'CLASS_NOT_FOUND' | 'CLASS_RULE_VIOLATED' | 'CLASS_CLOSED';

export class ClassNotFoundError extends AppError<ClassesErrorCode> {
  constructor(classId: string) {
    super(SERVICE, 'CLASS_NOT_FOUND', `no class ${classId}`, { details: { class_id: classId } });
  }
}

/** Refusal: a member's order breaks one of the class's rules (the message names it). */
export class ClassRuleViolatedError extends AppError<ClassesErrorCode> {
  constructor(classId: string, violation: RuleViolation) {
    super(SERVICE, 'CLASS_RULE_VIOLATED', violation.message, { details: { class_id: classId, ...violation.details } });
  }
}

/** Refusal: a member's order outside the class's trading window [starts_at, ends_at). */
export class ClassClosedError extends AppError<ClassesErrorCode> {
  constructor(classId: string, startsAt: Date | null, endsAt: Date | null, now: Date) {
    const window = `[${startsAt?.toISOString() ?? 'any time'}, ${endsAt?.toISOString() ?? 'no end'})`;
    const when = startsAt !== null && now < startsAt ? 'has not started' : 'has ended';
    super(SERVICE, 'CLASS_CLOSED', `the class ${when}: members trade only within ${window}`, {
      details: { class_id: classId, starts_at: startsAt?.toISOString() ?? null, ends_at: endsAt?.toISOString() ?? null },
    });
  }
}
