-- pgbench SQL floor: accept a market buy in ONE statement, as floor-accept-buy.sql does: hold
-- the cash (refused when the available cash does not cover it) and insert the PENDING order,
-- atomically. A random floor user and ticker are chosen by index; their ids, the ticker's price
-- and the cash to hold come from the helper tables pgbench_floor_users and
-- pgbench_floor_tickers (seeded by src/bench/pgbench-floor.ts). The order id is a UUIDv7 made
-- in SQL (time-ordered, as uuidv7() in the Node floor), the request hash the same SHA-256 of
-- "user|ticker|side|quantity". A refusal inserts a row into pgbench_floor_refusals so the run
-- can count refusals exactly (pgbench does not count statements that change no row).
-- {{users}} floor users, {{tickers}} tickers, {{quantity}} whole shares per order: filled in by
-- pgbenchScripts() before the script is handed to pgbench.
\set user_idx random(1, {{users}})
\set ticker_idx random(1, {{tickers}})
WITH u AS (
  SELECT fu.user_id, t.ticker, t.price, t.reserve
    FROM pgbench_floor_users fu, pgbench_floor_tickers t
   WHERE fu.idx = :user_idx AND t.idx = :ticker_idx
), r AS (
  UPDATE cash_balances cb
     SET available_cash = cb.available_cash - u.reserve, updated_at = now()
    FROM u
   WHERE cb.user_id = u.user_id AND cb.available_cash >= u.reserve
  RETURNING cb.user_id, u.ticker, u.price, u.reserve
), o AS (
  INSERT INTO orders (id, user_id, request_hash, ticker, side, type, quantity, status, reserved_amount, quote_price)
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                  PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                  FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid,
         r.user_id, sha256(convert_to(r.user_id::text || '|' || r.ticker || '|buy|{{quantity}}', 'UTF8')),
         r.ticker, 'buy', 'market', {{quantity}}::numeric, 'PENDING', r.reserve, r.price
    FROM r
  RETURNING id
)
INSERT INTO pgbench_floor_refusals (side, user_idx, ticker_idx)
SELECT 'buy', :user_idx, :ticker_idx WHERE NOT EXISTS (SELECT FROM o);
