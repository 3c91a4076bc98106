-- Resting orders: limit, stop, stop_limit and trailing_stop, times in force, replace, and the
-- market clock's admin override.
--
-- An order rests OPEN while it waits for its price or its session; PENDING keeps its meaning
-- (accepted, on its way to execution). A replaced order ends REPLACED, pointing at the order
-- that took its place (replaced_by), which points back (replaces).
ALTER TABLE orders DROP CONSTRAINT orders_type_check;
ALTER TABLE orders ADD CONSTRAINT orders_type_check CHECK (type IN ('market', 'limit', 'stop', 'stop_limit', 'trailing_stop'));
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
  CHECK (status IN ('PENDING', 'OPEN', 'FILLED', 'CANCELED', 'EXPIRED', 'REJECTED', 'REPLACED'));

ALTER TABLE orders
  ADD COLUMN time_in_force text NOT NULL DEFAULT 'day'
    CONSTRAINT orders_time_in_force_check CHECK (time_in_force IN ('day', 'gtc', 'ioc', 'fok', 'opg', 'cls')),
  ADD COLUMN limit_price numeric(20, 4) CONSTRAINT orders_limit_price_positive CHECK (limit_price > 0),
  ADD COLUMN stop_price numeric(20, 4) CONSTRAINT orders_stop_price_positive CHECK (stop_price > 0),
  ADD COLUMN trail_price numeric(20, 4) CONSTRAINT orders_trail_price_positive CHECK (trail_price > 0),
  -- Percent with 2 decimals, strictly between 0 and 100.
  ADD COLUMN trail_percent numeric(5, 2) CONSTRAINT orders_trail_percent_range CHECK (trail_percent > 0 AND trail_percent < 100),
  -- Trailing stops: the best price seen since placement (high for a sell, low for a buy) and the
  -- trigger level that follows from it; kept current by the engine watching the order.
  ADD COLUMN hwm numeric(20, 4),
  ADD COLUMN stop_level numeric(20, 4),
  ADD COLUMN filled_quantity numeric(24, 6) NOT NULL DEFAULT 0,
  ADD COLUMN triggered_at timestamptz,
  ADD COLUMN canceled_at timestamptz,
  ADD COLUMN expired_at timestamptz,
  -- Why an order nobody canceled ended CANCELED (an ioc that could not execute at once, ...).
  ADD COLUMN cancel_reason text,
  ADD COLUMN replaces uuid REFERENCES orders (id),
  ADD COLUMN replaced_by uuid REFERENCES orders (id),
  ADD CONSTRAINT orders_fields_match_type CHECK (
    (limit_price IS NOT NULL) = (type IN ('limit', 'stop_limit')) AND
    (stop_price IS NOT NULL) = (type IN ('stop', 'stop_limit')) AND
    ((trail_price IS NOT NULL) OR (trail_percent IS NOT NULL)) = (type = 'trailing_stop') AND
    NOT (trail_price IS NOT NULL AND trail_percent IS NOT NULL)),
  ADD CONSTRAINT orders_session_tif_types CHECK (time_in_force NOT IN ('opg', 'cls') OR type IN ('market', 'limit')),
  ADD CONSTRAINT orders_replaced_has_successor CHECK ((status = 'REPLACED') = (replaced_by IS NOT NULL)),
  ADD CONSTRAINT orders_filled_quantity_matches CHECK (filled_quantity = CASE WHEN status = 'FILLED' THEN quantity ELSE 0 END);

-- Existing filled orders filled all of their quantity.
UPDATE orders SET filled_quantity = quantity WHERE status = 'FILLED';

-- The engine rebuilds its index of resting orders from these, and re-reads the ones changed
-- since its last look; both stay small (only OPEN rows).
CREATE INDEX orders_open_ticker_idx ON orders (ticker) WHERE status = 'OPEN';
CREATE INDEX orders_open_updated_at_idx ON orders (updated_at) WHERE status = 'OPEN';
CREATE UNIQUE INDEX orders_replaces_key ON orders (replaces) WHERE replaces IS NOT NULL;

-- The market clock's admin override (POST /admin/market), in one row: every api and engine
-- process reads the same clock.
CREATE TABLE market_clock (
  id              boolean PRIMARY KEY DEFAULT true CHECK (id),
  forced          text CHECK (forced IN ('open', 'closed')),
  forced_at       timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO market_clock (id) VALUES (true);

-- The sessions the engine has acted on: a row at each open it executed, closed at the close it
-- executed. The engine finds a close it missed (it was down) from the latest row, and the audit
-- checks resting orders only against prices quoted while a session was open (a price moved by
-- an admin while the market is closed executes nothing). One row per session: a few hundred a year.
CREATE TABLE market_sessions (
  opened_at       timestamptz PRIMARY KEY,
  closed_at       timestamptz,
  CONSTRAINT market_sessions_closed_after_open CHECK (closed_at IS NULL OR closed_at >= opened_at)
);
-- At most one session is open at a time.
CREATE UNIQUE INDEX market_sessions_one_open ON market_sessions ((true)) WHERE closed_at IS NULL;
