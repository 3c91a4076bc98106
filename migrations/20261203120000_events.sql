-- The event log: every change a client cares about (an order's transitions, a deposit or a
-- withdrawal, later an account reset), written by the transaction that made the change (the
-- transactional outbox), so nothing a client was told about can be lost and nothing can be
-- missed. Events are numbered per user 1, 2, 3, ... without gaps; clients resume from the last
-- seq they saw.
--
-- event_counters holds each user's last seq. A writer takes the next numbers with one upsert,
-- which locks the user's counter row until its transaction ends: a concurrent writer for the
-- same user waits, then numbers after it, so seqs follow commit order and an aborted
-- transaction gives its numbers back. Writers append their events once, at the end of their
-- transaction, taking the counter rows in user_id order, so the counters are always the last
-- locks a transaction takes and cannot close a deadlock cycle.
CREATE TABLE event_counters (
  user_id   uuid PRIMARY KEY REFERENCES users (id),
  last_seq  bigint NOT NULL CHECK (last_seq > 0)
);

-- `data` is the JSON clients receive, rendered once when the event is written (`json`, not
-- `jsonb`: it is stored and returned as written, never queried inside). Rows are never
-- updated; retention deletes the oldest (EVENTS_RETENTION_DAYS).
CREATE TABLE events (
  user_id  uuid NOT NULL,
  seq      bigint NOT NULL CHECK (seq > 0),
  type     text NOT NULL CHECK (type IN (
             'order.new', 'order.open', 'order.triggered', 'order.fill', 'order.canceled', 'order.expired',
             'order.rejected', 'order.replaced', 'cash.deposit', 'cash.withdrawal', 'account.reset')),
  -- When the event was written. clock_timestamp(), not the transaction's start: a user's next
  -- event is written only after the previous one committed (the counter lock), so `at` grows
  -- with seq and retention, deleting by age, removes a prefix of each user's events.
  at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  data     json NOT NULL,
  PRIMARY KEY (user_id, seq)
);

-- Retention deletes by age. Events are appended in time order, so a BRIN index (a few pages
-- for millions of rows, next to nothing per insert) finds the old ones.
CREATE INDEX events_at_brin ON events USING brin (at);

CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events are immutable: % of seq % of user % refused', TG_OP, OLD.seq, OLD.user_id;
END $$;
CREATE TRIGGER events_immutable BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
