import { AppError } from '../../core/errors.js';

const SERVICE = 'events';

/** The codes this service raises (src/http/errors.ts gives each its status). */
export type EventsErrorCode = 'EVENTS_EXPIRED' | 'EVENTS_SEQ_AHEAD';

/**
 * Events after the client's position were removed by retention: replaying cannot make the
 * client whole, so it must read its state again from the REST endpoints and resume from the
 * seq it is given.
 */
export class EventsExpiredError extends AppError<EventsErrorCode> {
  constructor(userId: string, afterSeq: number, keptFromSeq: number, retentionDays: number) {
    super(
      SERVICE,
      'EVENTS_EXPIRED',
      `events after seq ${afterSeq} are no longer kept (events are kept ${retentionDays} days; the oldest kept is seq ${keptFromSeq}): ` +
        `read the account, positions and orders again from the REST endpoints, then resume from seq ${keptFromSeq - 1} or later`,
      { details: { user_id: userId, after_seq: afterSeq, kept_from_seq: keptFromSeq, resume_after_seq_min: keptFromSeq - 1 } },
    );
  }
}

/** The client's position is beyond the user's last event: it belongs to another history. */
export class EventsSeqAheadError extends AppError<EventsErrorCode> {
  constructor(userId: string, afterSeq: number, lastSeq: number) {
    super(
      SERVICE,
      'EVENTS_SEQ_AHEAD',
      `seq ${afterSeq} is beyond the user's last event (seq ${lastSeq}); resume from a seq you were given, or from 0 for the whole history`,
      { details: { user_id: userId, after_seq: afterSeq, last_seq: lastSeq } },
    );
  }
}
