-- SQL floor: remove the shares (and their reservation) of a batch's filled sells (third
-- statement of the batch). The floor's workload never sells a position down to zero, so the
-- delete-at-zero rule of papertrade is not needed here.
-- $1 ids of the orders filled by floor-fill.sql (uuid[])
UPDATE holdings h
   SET quantity = h.quantity - s.quantity,
       reserved_quantity = h.reserved_quantity - s.quantity,
       updated_at = now()
  FROM (SELECT user_id, ticker, sum(quantity) AS quantity
          FROM orders
         WHERE id = ANY ($1::uuid[]) AND side = 'sell'
         GROUP BY user_id, ticker) s
 WHERE h.user_id = s.user_id AND h.ticker = s.ticker
