-- SQL floor: fill a batch of pending orders in ONE statement (first of three in the batch's
-- transaction): mark them FILLED at the batch's prices (the status guard makes it idempotent),
-- settle cash per user (buys: the cost leaves the balance, the unspent hold returns to available
-- cash; sells: the proceeds are credited to both), one ledger row per order with its running
-- balance, and one fill per order. Returns the ids filled.
-- $1 order ids (uuid[]), $2 tickers (text[]), $3 prices (numeric[], same order as $2)
WITH px AS (
  SELECT * FROM unnest($2::text[], $3::numeric[]) AS p (ticker, price)
), o AS (
  UPDATE orders o
     SET status = 'FILLED', fill_price = px.price, filled_quantity = o.quantity, filled_at = now(), updated_at = now()
    FROM px
   WHERE o.id = ANY ($1::uuid[]) AND o.status = 'PENDING' AND px.ticker = o.ticker
  RETURNING o.id, o.user_id, o.side, o.quantity, o.reserved_amount, px.price,
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
)
SELECT id FROM m
