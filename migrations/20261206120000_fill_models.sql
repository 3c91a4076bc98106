-- Fill models, partial fills, commission schedules and explained fills.
--
-- 1. Instruments have a liquidity tier (large, mid, small): how wide their spread is, how many
--    shares a quote displays, how much trades in a day. Every instrument so far is a large cap;
--    a few mid and small caps join them, so size-aware fills have something to bite on.
ALTER TABLE instruments
  ADD COLUMN liquidity_tier text NOT NULL DEFAULT 'large'
    CONSTRAINT instruments_liquidity_tier_check CHECK (liquidity_tier IN ('large', 'mid', 'small'));
INSERT INTO instruments (ticker, name, reference_price, annual_volatility, liquidity_tier) VALUES
  ('ETSY', 'Etsy, Inc.',                60.0000, 0.4500, 'mid'),
  ('CROX', 'Crocs, Inc.',              105.0000, 0.4500, 'mid'),
  ('SFIX', 'Stitch Fix, Inc.',           4.5000, 0.7500, 'small')
ON CONFLICT (ticker) DO NOTHING;

-- 2. An order may fill in several executions. It stays OPEN between them (clients see
--    PARTIALLY_FILLED: OPEN with filled_quantity > 0), so every "still live" guard stays one
--    comparison. filled_value is the exact sum of quantity x price over its fills (scale 10): the
--    average fill price and a cumulative commission are computed from it without rounding drift.
--    reserved_amount is the hold of the part still open; commission is the commission held at
--    acceptance (the most the schedule can charge at the hold's prices) and commission_charged
--    what its fills have charged so far.
ALTER TABLE orders DROP CONSTRAINT orders_filled_quantity_matches;
ALTER TABLE orders DROP CONSTRAINT orders_fill_matches_status;
ALTER TABLE orders DROP CONSTRAINT orders_commission_within_hold;
ALTER TABLE orders
  ADD COLUMN filled_value numeric(38, 10) NOT NULL DEFAULT 0,
  ADD COLUMN commission_charged numeric(20, 2) NOT NULL DEFAULT 0,
  -- The fill model that prices the order (the class's rule, else the deployment's), fixed at
  -- acceptance, and the commission schedule it pays (NULL: none), as decimal strings.
  ADD COLUMN fill_model text NOT NULL DEFAULT 'ideal'
    CONSTRAINT orders_fill_model_check CHECK (fill_model IN ('ideal', 'spread', 'realistic')),
  ADD COLUMN commission_schedule jsonb,
  -- The as_of of the quote its last execution used: an order meets each quote at most once.
  ADD COLUMN last_fill_quote_at timestamptz,
  ADD CONSTRAINT orders_filled_quantity_within CHECK (
    filled_quantity >= 0 AND filled_quantity <= quantity AND
    (status <> 'FILLED' OR filled_quantity = quantity) AND
    (status NOT IN ('PENDING', 'REJECTED', 'REPLACED') OR filled_quantity = 0)),
  ADD CONSTRAINT orders_fill_price_matches_fills CHECK (
    (fill_price IS NOT NULL) = (filled_quantity > 0) AND
    (filled_at IS NOT NULL) = (status = 'FILLED')),
  ADD CONSTRAINT orders_commission_not_negative CHECK (commission >= 0 AND commission_charged >= 0);
-- Existing fills each filled a whole order at its fill price.
UPDATE orders SET filled_value = filled_quantity * fill_price WHERE filled_quantity > 0;

-- 3. Several fills per order, each with its explanation: the quote it used (bid, ask, last,
--    sizes, as_of), its age at execution, the model with its version and parameters, the
--    slippage from the reference price in basis points, why, and the commission it charged.
ALTER TABLE fills DROP CONSTRAINT fills_order_id_key;
CREATE INDEX fills_order_id_idx ON fills (order_id, id);
ALTER TABLE fills
  ADD COLUMN commission numeric(20, 2) NOT NULL DEFAULT 0 CONSTRAINT fills_commission_not_negative CHECK (commission >= 0),
  ADD COLUMN model text NOT NULL DEFAULT 'ideal' CONSTRAINT fills_model_check CHECK (model IN ('ideal', 'spread', 'realistic')),
  ADD COLUMN model_version integer NOT NULL DEFAULT 1 CONSTRAINT fills_model_version_positive CHECK (model_version > 0),
  ADD COLUMN model_params jsonb,
  ADD COLUMN quote jsonb,
  ADD COLUMN quote_age_ms integer CONSTRAINT fills_quote_age_not_negative CHECK (quote_age_ms >= 0),
  ADD COLUMN slippage_bps numeric(12, 2),
  ADD COLUMN reason text CONSTRAINT fills_reason_length CHECK (length(reason) <= 500);
