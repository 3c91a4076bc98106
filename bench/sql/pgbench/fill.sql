-- pgbench SQL floor: fill one batch of pending floor orders in ONE transaction, doing what
-- floor-fill.sql, floor-fill-holdings-buy.sql and floor-fill-holdings-sell.sql do together, but
-- picking the batch itself: pgbench cannot hand an array of ids from one statement to the next,
-- so a single statement of data-modifying CTEs takes the batch and settles it.
--
-- Batch: up to {{fill_batch}} PENDING orders, oldest first (the partial index on PENDING orders),
-- of the floor users in this client's partition (user index modulo {{fill_clients}} equals the
-- pgbench client id), locked FOR UPDATE SKIP LOCKED. The user's index is looked up per order in
-- a scalar subquery on purpose: written as IN (...) the planner makes it a join that reads every
-- order of the partition's users, filled ones included, where this walks only the PENDING index
-- (and orders of other users, which have no index, never match). The partition means two clients never touch
-- the same account, so their transactions cannot deadlock on cash or holdings rows; SKIP LOCKED
-- means a client never waits on a row another transaction holds.
--
-- Settlement, as floor-fill.sql: the orders become FILLED at the ticker's price; cash per user
-- (buys: the cost leaves the balance, the unspent hold returns to available cash; sells: the
-- proceeds are credited to both), rounded against the account (buys up, sells down, to the
-- cent); one ledger row per order with its running balance; one fill per order.
--
-- Holdings: floor-fill-holdings-buy.sql and -sell.sql run one after the other; in one statement
-- two CTEs may not modify the same row, so one UPDATE applies both per (user, ticker): buys add
-- their quantity with the same quantity-weighted average cost (computed on the quantity before
-- the batch, as the buy upsert does), sells remove their quantity and its reservation. A buy of a
-- ticker the user does not hold inserts the position. The floor never sells a position to zero.
-- {{fill_batch}} and {{fill_clients}} are filled in by pgbenchScripts(); :client_id is pgbench's.
BEGIN;
WITH pick AS (
  SELECT o.id
    FROM orders o
   WHERE o.status = 'PENDING'
     AND (SELECT fu.idx FROM pgbench_floor_users fu WHERE fu.user_id = o.user_id) % {{fill_clients}} = :client_id
   ORDER BY o.created_at
   LIMIT {{fill_batch}}
     FOR UPDATE OF o SKIP LOCKED
), o AS (
  UPDATE orders o
     SET status = 'FILLED', fill_price = px.price, filled_quantity = o.quantity, filled_at = now(), updated_at = now()
    FROM pick, pgbench_floor_tickers px
   WHERE o.id = pick.id AND o.status = 'PENDING' AND px.ticker = o.ticker
  RETURNING o.id, o.user_id, o.ticker, o.side, o.quantity, o.reserved_amount, px.price,
            -- Rounded against the account, as papertrade rounds: buys up, sells down, to the cent.
            CASE WHEN o.side = 'buy' THEN ceil(o.quantity * px.price * 100) ELSE floor(o.quantity * px.price * 100) END / 100 AS amount
), m AS (
  SELECT o.*,
         CASE WHEN o.side = 'buy' THEN -o.amount ELSE o.amount END AS delta,
         CASE WHEN o.side = 'buy' THEN o.reserved_amount - o.amount ELSE o.amount END AS available_delta
    FROM o
), c AS (
  SELECT user_id, sum(delta) AS delta, sum(available_delta) AS available_delta FROM m GROUP BY user_id
), b AS (
  UPDATE cash_balances cb
     SET cash_balance = cb.cash_balance + c.delta,
         available_cash = cb.available_cash + c.available_delta,
         updated_at = now()
    FROM c
   WHERE cb.user_id = c.user_id
  RETURNING cb.user_id, cb.cash_balance
), l AS (
  INSERT INTO cash_ledger (user_id, kind, amount, balance_after, order_id)
  SELECT m.user_id, m.side, m.delta,
         b.cash_balance - coalesce(sum(m.delta) OVER (PARTITION BY m.user_id ORDER BY m.id DESC
                                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0),
         m.id
    FROM m JOIN b USING (user_id)
), f AS (
  INSERT INTO fills (order_id, price, quantity, amount)
  SELECT id, price, quantity, amount FROM m
), d AS (
  SELECT user_id, ticker,
         coalesce(sum(quantity) FILTER (WHERE side = 'buy'), 0) AS bought,
         round(sum(quantity * price) FILTER (WHERE side = 'buy') / sum(quantity) FILTER (WHERE side = 'buy'), 4) AS buy_cost,
         coalesce(sum(quantity) FILTER (WHERE side = 'sell'), 0) AS sold
    FROM m
   GROUP BY user_id, ticker
), hu AS (
  UPDATE holdings h
     SET avg_cost = CASE WHEN d.bought > 0
                         THEN round((h.quantity * h.avg_cost + d.bought * d.buy_cost) / (h.quantity + d.bought), 4)
                         ELSE h.avg_cost END,
         quantity = h.quantity + d.bought - d.sold,
         reserved_quantity = h.reserved_quantity - d.sold,
         updated_at = now()
    FROM d
   WHERE h.user_id = d.user_id AND h.ticker = d.ticker
  RETURNING h.user_id, h.ticker
), hi AS (
  INSERT INTO holdings AS h (user_id, ticker, quantity, reserved_quantity, avg_cost)
  SELECT d.user_id, d.ticker, d.bought, 0, d.buy_cost
    FROM d
   WHERE d.bought > 0 AND NOT EXISTS (SELECT FROM hu WHERE hu.user_id = d.user_id AND hu.ticker = d.ticker)
  ON CONFLICT (user_id, ticker) DO UPDATE
     SET avg_cost = round((h.quantity * h.avg_cost + excluded.quantity * excluded.avg_cost)
                          / (h.quantity + excluded.quantity), 4),
         quantity = h.quantity + excluded.quantity,
         updated_at = now()
)
SELECT count(*) AS filled FROM m;
COMMIT;
