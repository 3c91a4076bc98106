-- Users, API keys, cash and holdings: the foundation tables.
-- Money is NUMERIC with a fixed scale per kind: cash 2 decimals, prices 4, share quantities 6.
-- Cash balances live apart from users because they are small rows updated on every trade.

CREATE TABLE users (
  id          uuid PRIMARY KEY,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE api_keys (
  id          text PRIMARY KEY,
  user_id     uuid NOT NULL REFERENCES users (id),
  key_hash    bytea NOT NULL,
  role        text NOT NULL DEFAULT 'user' CHECK (role IN ('user')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE cash_balances (
  user_id         uuid PRIMARY KEY REFERENCES users (id),
  cash_balance    numeric(20, 2) NOT NULL DEFAULT 0,
  available_cash  numeric(20, 2) NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT cash_balances_available_within_balance
    CHECK (0 <= available_cash AND available_cash <= cash_balance)
);

-- Every movement of cash is a row; a user's balance is the sum of its amounts.
CREATE TABLE cash_ledger (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id        uuid NOT NULL REFERENCES users (id),
  kind           text NOT NULL CHECK (kind IN ('initial', 'deposit', 'withdrawal', 'buy', 'sell')),
  amount         numeric(20, 2) NOT NULL,
  balance_after  numeric(20, 2) NOT NULL,
  order_id       uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT cash_ledger_amount_sign CHECK (
    (kind IN ('initial') AND amount >= 0) OR
    (kind IN ('deposit', 'sell') AND amount > 0) OR
    (kind IN ('withdrawal', 'buy') AND amount < 0))
);
CREATE INDEX cash_ledger_user_id_id_idx ON cash_ledger (user_id, id DESC);

CREATE TABLE holdings (
  user_id            uuid NOT NULL REFERENCES users (id),
  ticker             text NOT NULL,
  quantity           numeric(24, 6) NOT NULL,
  reserved_quantity  numeric(24, 6) NOT NULL DEFAULT 0,
  avg_cost           numeric(20, 4) NOT NULL,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, ticker),
  -- A position that reaches zero is deleted, so a stored quantity is always positive.
  CONSTRAINT holdings_quantity_positive CHECK (quantity > 0),
  CONSTRAINT holdings_reserved_within_quantity CHECK (0 <= reserved_quantity AND reserved_quantity <= quantity)
);
