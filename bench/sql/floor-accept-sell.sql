-- SQL floor: accept a market sell in ONE statement: reserve the shares (refused, no row, when
-- fewer are unreserved) and insert the PENDING order, atomically.
-- $1 order id (uuid), $2 user id (uuid), $3 ticker, $4 quantity, $5 request hash (bytea)
WITH r AS (
  UPDATE holdings
     SET reserved_quantity = reserved_quantity + $4::numeric, updated_at = now()
   WHERE user_id = $2::uuid AND ticker = $3::text AND quantity - reserved_quantity >= $4::numeric
  RETURNING user_id)
INSERT INTO orders (id, user_id, request_hash, ticker, side, type, quantity, status, reserved_amount)
SELECT $1::uuid, r.user_id, $5::bytea, $3::text, 'sell', 'market', $4::numeric, 'PENDING', 0
  FROM r
RETURNING id
