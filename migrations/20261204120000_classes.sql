-- Classes and competitions: a class with starting cash, a window and rules; its members (each a
-- user in at most one class); teacher keys; commissions; and account resets that keep keys.

CREATE TABLE classes (
  id                   uuid PRIMARY KEY,
  name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  starting_cash        numeric(20, 2) NOT NULL CHECK (starting_cash >= 0),
  starts_at            timestamptz,
  ends_at              timestamptz,
  -- The rules as the admin wrote them, validated by the classes service (tickers, order_types,
  -- max_position_pct, max_orders_per_day, commission_per_order; amounts as decimal strings).
  -- jsonb: read whole with the class, and new rules need no migration.
  rules                jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(rules) = 'object'),
  leaderboard_visible  boolean NOT NULL DEFAULT true,
  created_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT classes_window_ordered CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);

-- A user belongs to at most one class: the class's rules are the user's rules.
CREATE TABLE class_members (
  user_id    uuid PRIMARY KEY REFERENCES users (id),
  class_id   uuid NOT NULL REFERENCES classes (id),
  joined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX class_members_class_id_idx ON class_members (class_id, user_id);

-- A teacher key belongs to a class, not to a user: it reads the class's members and resets
-- them, and never trades. One table for both kinds keeps one lookup and one revocation path.
ALTER TABLE api_keys ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE api_keys ADD COLUMN class_id uuid REFERENCES classes (id);
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_owner CHECK (
  (role = 'user' AND user_id IS NOT NULL AND class_id IS NULL) OR
  (role = 'teacher' AND class_id IS NOT NULL AND user_id IS NULL));
CREATE INDEX api_keys_class_id_idx ON api_keys (class_id) WHERE class_id IS NOT NULL;

-- A commission is fixed when the order is accepted (the class's rule then) and held with it:
-- a buy's reserved_amount covers its cost and its commission, a sell's reserved_amount is its
-- commission. The fill charges it as a ledger row of its own kind.
ALTER TABLE orders ADD COLUMN commission numeric(20, 2) NOT NULL DEFAULT 0
  CONSTRAINT orders_commission_within_hold CHECK (commission >= 0 AND commission <= reserved_amount);

-- New ledger kinds: 'commission' (< 0, with its order) and 'reset' (any sign: the difference
-- between the balance before a reset and the cash it sets; balance_after is that cash).
ALTER TABLE cash_ledger DROP CONSTRAINT cash_ledger_kind_check;
ALTER TABLE cash_ledger ADD CONSTRAINT cash_ledger_kind_check
  CHECK (kind IN ('initial', 'deposit', 'withdrawal', 'buy', 'sell', 'commission', 'reset'));
ALTER TABLE cash_ledger DROP CONSTRAINT cash_ledger_amount_sign;
ALTER TABLE cash_ledger ADD CONSTRAINT cash_ledger_amount_sign CHECK (
  (kind IN ('initial', 'reset') AND amount IS NOT NULL AND (kind = 'reset' OR amount >= 0)) OR
  (kind IN ('deposit', 'sell') AND amount > 0) OR
  (kind IN ('withdrawal', 'buy', 'commission') AND amount < 0));
ALTER TABLE cash_ledger ADD CONSTRAINT cash_ledger_commission_has_order
  CHECK (kind <> 'commission' OR order_id IS NOT NULL);

-- What the user put in: initial cash, deposits, withdrawals, restarted by a reset at the cash it
-- sets. Portfolio history measures profit against it, so a deposit is not a gain. Kept on the
-- balance row, in the statement that moves the cash, so it is read with the balance at one instant.
ALTER TABLE cash_balances ADD COLUMN net_contributions numeric(20, 2) NOT NULL DEFAULT 0;
UPDATE cash_balances cb
   SET net_contributions = l.total
  FROM (SELECT user_id, sum(amount) AS total FROM cash_ledger
         WHERE kind IN ('initial', 'deposit', 'withdrawal') GROUP BY user_id) l
 WHERE l.user_id = cb.user_id;

-- One row per reset, written in the reset's transaction. reset_positions records each holding
-- the reset removed, so the audit's share invariant reads: holdings = fills bought - sold -
-- shares removed by resets, across any number of resets.
CREATE TABLE account_resets (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id      uuid NOT NULL REFERENCES users (id),
  ledger_id    bigint NOT NULL UNIQUE REFERENCES cash_ledger (id),
  cash_before  numeric(20, 2) NOT NULL,
  cash_after   numeric(20, 2) NOT NULL CHECK (cash_after >= 0),
  orders_canceled integer NOT NULL CHECK (orders_canceled >= 0),
  reset_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_resets_user_id_idx ON account_resets (user_id, id);

CREATE TABLE reset_positions (
  reset_id  bigint NOT NULL REFERENCES account_resets (id),
  user_id   uuid NOT NULL REFERENCES users (id),
  ticker    text NOT NULL,
  quantity  numeric(24, 6) NOT NULL CHECK (quantity > 0),
  avg_cost  numeric(20, 4) NOT NULL,
  PRIMARY KEY (reset_id, ticker)
);
CREATE INDEX reset_positions_user_ticker_idx ON reset_positions (user_id, ticker);
