import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { ValidationError } from '../../core/errors.js';
import { readOn } from '../../http/auth.js';
import { parseLimit, UserIdParams } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { assertUserExists } from '../users/users.service.js';
import { EVENTS_PAGE_MAX, EVENT_TYPES, eventJson } from './event-log.js';

/** Events a page holds when the client does not say. */
const EVENTS_PAGE_DEFAULT = 100;

const SeqQuery = Type.String({ pattern: '^[0-9]{1,16}$', description: 'a seq: a whole number from 0 (0: from the first event)' });
const EventsLimitQuery = Type.String({ pattern: '^[0-9]{1,4}$', description: `a whole number from 1 to ${EVENTS_PAGE_MAX} (default ${EVENTS_PAGE_DEFAULT})` });

const EventBody = Type.Object({
  seq: Type.Integer(),
  type: Type.String({ enum: [...EVENT_TYPES] }),
  at: Type.String(),
  user_id: Type.String(),
  data: Type.Object({}, { additionalProperties: true, description: 'the order as GET /orders/{id} shows it (a fill adds fill and position_quantity), or the activity' }),
});

/** A seq from the query string: a safe integer (seqs never come near 2^53). */
function parseSeq(raw: string | undefined, field: string): number {
  if (raw === undefined) return 0;
  const seq = Number(raw);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new ValidationError(`${field} must be a whole number from 0`, { field });
  return seq;
}

export function registerEventRoutes(server: Server, ctx: AppContext): void {
  server.get(
    '/users/:id/events',
    {
      config: { auth: 'user-or-teacher' },
      schema: {
        tags: ['events'],
        summary: 'The user’s events after after_seq, oldest first (410 EVENTS_EXPIRED when retention removed some of them)',
        params: UserIdParams,
        querystring: Type.Object({ after_seq: Type.Optional(SeqQuery), limit: Type.Optional(EventsLimitQuery) }, { additionalProperties: false }),
        response: { 200: Type.Object({ events: Type.Array(EventBody), next_after_seq: Type.Integer() }) },
      },
    },
    async (request, reply) => {
      await readOn(request, request.params.id, ctx.classMembership.isMember);
      const afterSeq = parseSeq(request.query.after_seq, 'after_seq');
      const limit = parseLimit(request.query.limit, EVENTS_PAGE_MAX, EVENTS_PAGE_DEFAULT);
      await assertUserExists(ctx.db, request.params.id);
      const events = await ctx.events.readAfter(request.params.id, afterSeq, limit);
      const next = events.length > 0 ? events[events.length - 1]!.seq : afterSeq;
      // The data is stored as the JSON clients receive: passed through as text, never parsed
      // here (a string payload skips the serializer; the schema above documents its shape).
      const body = `{"events":[${events.map(eventJson).join(',')}],"next_after_seq":${next}}`;
      return reply.type('application/json; charset=utf-8').send(body as never);
    },
  );
}
