-- Orders and fills: the OMS writes orders PENDING together with their hold; the trading engine
-- moves them to a terminal status exactly once (the `status = 'PENDING'` guard) and writes at
-- most one fill per order (UNIQUE (order_id)).

CREATE TABLE orders (
  id               uuid PRIMARY KEY,
  user_id          uuid NOT NULL REFERENCES users (id),
  client_order_id  text CHECK (length(client_order_id) BETWEEN 1 AND 128),
  -- SHA-256 of the canonical request: a retry with the same key must carry the same request.
  request_hash     bytea NOT NULL,
  ticker           text NOT NULL,
  side             text NOT NULL CHECK (side IN ('buy', 'sell')),
  type             text NOT NULL CHECK (type IN ('market')),
  quantity         numeric(24, 6) NOT NULL CHECK (quantity > 0),
  status           text NOT NULL CHECK (status IN ('PENDING', 'FILLED', 'REJECTED', 'CANCELED')),
  -- Cash held for a pending buy (quantity x quote x (1 + buffer), rounded up); 0 for sells.
  reserved_amount  numeric(20, 2) NOT NULL DEFAULT 0 CHECK (reserved_amount >= 0),
  quote_price      numeric(20, 4),
  fill_price       numeric(20, 4),
  filled_at        timestamptz,
  reject_reason    text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT orders_client_order_id_key UNIQUE (user_id, client_order_id),
  CONSTRAINT orders_fill_matches_status CHECK ((status = 'FILLED') = (fill_price IS NOT NULL AND filled_at IS NOT NULL)),
  CONSTRAINT orders_reject_reason_matches_status CHECK ((status = 'REJECTED') = (reject_reason IS NOT NULL))
);
CREATE INDEX orders_user_id_id_idx ON orders (user_id, id DESC);
-- The reconciler and the audit look for pending orders by age; the partial index stays tiny.
CREATE INDEX orders_pending_created_at_idx ON orders (created_at) WHERE status = 'PENDING';

CREATE TABLE fills (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id     uuid NOT NULL REFERENCES orders (id),
  price        numeric(20, 4) NOT NULL CHECK (price > 0),
  quantity     numeric(24, 6) NOT NULL CHECK (quantity > 0),
  -- Cash moved: quantity x price rounded half-up to the cent.
  amount       numeric(20, 2) NOT NULL CHECK (amount >= 0),
  executed_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT fills_order_id_key UNIQUE (order_id)
);

ALTER TABLE cash_ledger ADD CONSTRAINT cash_ledger_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id);
CREATE INDEX cash_ledger_order_id_idx ON cash_ledger (order_id) WHERE order_id IS NOT NULL;
