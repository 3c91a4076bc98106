-- SQL floor: add the shares of a batch's filled buys (second statement of the batch), one
-- upsert per (user, ticker) with the quantity-weighted average cost.
-- $1 ids of the orders filled by floor-fill.sql (uuid[])
INSERT INTO holdings AS h (user_id, ticker, quantity, reserved_quantity, avg_cost)
SELECT o.user_id, o.ticker, sum(o.quantity), 0, round(sum(o.quantity * o.fill_price) / sum(o.quantity), 4)
  FROM orders o
 WHERE o.id = ANY ($1::uuid[]) AND o.side = 'buy'
 GROUP BY o.user_id, o.ticker
ON CONFLICT (user_id, ticker) DO UPDATE
   SET avg_cost = round((h.quantity * h.avg_cost + excluded.quantity * excluded.avg_cost)
                        / (h.quantity + excluded.quantity), 4),
       quantity = h.quantity + excluded.quantity,
       updated_at = now()
