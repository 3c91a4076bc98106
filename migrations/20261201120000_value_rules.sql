-- Rules against value from nothing, and idempotent cash movements.
--
-- 1. A fill's amount is quantity x price brought to the cent AGAINST the account from now on:
--    a buy pays the exact value rounded up, a sell receives it rounded down. Fills written
--    before this migration were rounded half-up; `rounding` records which rule produced each
--    amount, so the audit checks every row against its own rule. Existing rows get 'half_up';
--    the default then changes, so every later fill is 'against_account'.
ALTER TABLE fills
  ADD COLUMN rounding text NOT NULL DEFAULT 'half_up'
    CONSTRAINT fills_rounding_known CHECK (rounding IN ('half_up', 'against_account'));
ALTER TABLE fills ALTER COLUMN rounding SET DEFAULT 'against_account';

-- 2. No fill moves shares for nothing. NOT VALID: enforced for every new row without scanning
--    the old ones (a zero-amount fill written before this rule is the audit's to report).
ALTER TABLE fills ADD CONSTRAINT fills_amount_positive CHECK (amount > 0) NOT VALID;

-- 3. Deposits and withdrawals take an Idempotency-Key: the key and a hash of the request are
--    kept on the ledger row the movement wrote. A repeat with the same key finds the row (and
--    replays); the unique index makes two concurrent requests with one key write one row.
ALTER TABLE cash_ledger
  ADD COLUMN idempotency_key text CONSTRAINT cash_ledger_idempotency_key_length CHECK (length(idempotency_key) BETWEEN 1 AND 128),
  ADD COLUMN request_hash bytea,
  ADD CONSTRAINT cash_ledger_idempotency_key_hashed CHECK ((idempotency_key IS NULL) = (request_hash IS NULL));
CREATE UNIQUE INDEX cash_ledger_idempotency_key_key ON cash_ledger (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
