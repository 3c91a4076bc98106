-- SQL floor: accept a market buy in ONE statement: hold the cash (refused, no row, when the
-- available cash does not cover it) and insert the PENDING order, atomically.
-- $1 order id (uuid), $2 user id (uuid), $3 ticker, $4 quantity, $5 reserved amount (cash),
-- $6 quote price, $7 request hash (bytea)
WITH r AS (
  UPDATE cash_balances
     SET available_cash = available_cash - $5::numeric, updated_at = now()
   WHERE user_id = $2::uuid AND available_cash >= $5::numeric
  RETURNING user_id)
INSERT INTO orders (id, user_id, request_hash, ticker, side, type, quantity, status, reserved_amount, quote_price)
SELECT $1::uuid, r.user_id, $7::bytea, $3::text, 'buy', 'market', $4::numeric, 'PENDING', $5::numeric, $6::numeric
  FROM r
RETURNING id
