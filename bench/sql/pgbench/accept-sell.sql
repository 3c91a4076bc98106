-- pgbench SQL floor: accept a market sell in ONE statement, as floor-accept-sell.sql does:
-- reserve the shares (refused when fewer are unreserved) and insert the PENDING order,
-- atomically. A random floor user and ticker are chosen by index and looked up in the helper
-- tables pgbench_floor_users and pgbench_floor_tickers (seeded by src/bench/pgbench-floor.ts).
-- The order id is a UUIDv7 made in SQL, the request hash the SHA-256 of
-- "user|ticker|side|quantity". A refusal inserts a row into pgbench_floor_refusals so the run
-- can count refusals exactly.
-- {{users}} floor users, {{tickers}} tickers, {{quantity}} whole shares per order: filled in by
-- pgbenchScripts() before the script is handed to pgbench.
\set user_idx random(1, {{users}})
\set ticker_idx random(1, {{tickers}})
WITH u AS (
  SELECT fu.user_id, t.ticker
    FROM pgbench_floor_users fu, pgbench_floor_tickers t
   WHERE fu.idx = :user_idx AND t.idx = :ticker_idx
), r AS (
  UPDATE holdings h
     SET reserved_quantity = h.reserved_quantity + {{quantity}}::numeric, updated_at = now()
    FROM u
   WHERE h.user_id = u.user_id AND h.ticker = u.ticker AND h.quantity - h.reserved_quantity >= {{quantity}}::numeric
  RETURNING h.user_id, h.ticker
), o AS (
  INSERT INTO orders (id, user_id, request_hash, ticker, side, type, quantity, status, reserved_amount)
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                  PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                  FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid,
         r.user_id, sha256(convert_to(r.user_id::text || '|' || r.ticker || '|sell|{{quantity}}', 'UTF8')),
         r.ticker, 'sell', 'market', {{quantity}}::numeric, 'PENDING', 0
    FROM r
  RETURNING id
)
INSERT INTO pgbench_floor_refusals (side, user_idx, ticker_idx)
SELECT 'sell', :user_idx, :ticker_idx WHERE NOT EXISTS (SELECT FROM o);
