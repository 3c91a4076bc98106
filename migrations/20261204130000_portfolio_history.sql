-- Portfolio history: each user's equity over time, and the running performance metrics a
-- leaderboard ranks by, so that no leaderboard ever scans history.
--
-- None of these tables has a foreign key. A foreign key check takes FOR KEY SHARE on the
-- referenced users row, and the snapshot round must take no row lock outside these tables: an
-- account reset locks orders, cash_balances, holdings, then these rows, then event counters,
-- and a round that also locked users rows could close a deadlock cycle with it. Users are never
-- deleted, so nothing is lost by checking the user in the writers instead.

-- One point per user per snapshot round at most, written only when the user's equity or base
-- changed since its last point (a missing point means "unchanged"), plus a point at each reset.
-- `base` is cash_balances.net_contributions at that instant (what the user put in), so
-- profit = equity - base and a deposit is never a gain. Old points are downsampled by the
-- snapshot leader: past a day the last point of each 15 minutes is kept, past 30 days the last
-- point of each UTC day; reset points are never removed.
CREATE TABLE portfolio_history (
  user_id  uuid NOT NULL,
  at       timestamptz NOT NULL,
  equity   numeric(20, 2) NOT NULL,
  base     numeric(20, 2) NOT NULL,
  -- 'round': a periodic snapshot; 'close': the round run at a session close; 'reset': written
  -- by an account reset (equity = base = the cash the reset set), never downsampled away.
  kind     text NOT NULL DEFAULT 'round' CHECK (kind IN ('round', 'close', 'reset')),
  PRIMARY KEY (user_id, at)
);
-- Downsampling walks history by time window. Points are appended in time order, so a BRIN
-- index (a few pages, next to nothing per insert) finds a window.
CREATE INDEX portfolio_history_at_brin ON portfolio_history USING brin (at);

-- Per user: the latest point (what the next round compares with), the state the next return is
-- measured from, and the running sums of the returns since the user's start (its first point or
-- its last reset). Returns are fixed point with 12 decimals (units of 1e-12), their squares with
-- 24: stored as integers so that sums stay exact however long they run.
CREATE TABLE portfolio_metrics (
  user_id        uuid PRIMARY KEY,
  -- Bumped by every write. A round writes a row only if it still has the version the round read:
  -- a reset (or an overlapping round) that committed meanwhile is never overwritten.
  version        bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  resets         integer NOT NULL DEFAULT 0 CHECK (resets >= 0),
  started_at     timestamptz NOT NULL,
  -- history_rounds.period_no at the start: returns counted = period_no now - start_period (an
  -- interval in which the user's equity did not move counts as a zero return without a write).
  start_period   bigint NOT NULL CHECK (start_period >= 0),
  point_at       timestamptz NOT NULL,
  point_equity   numeric(20, 2) NOT NULL,
  point_base     numeric(20, 2) NOT NULL,
  -- Equity and base at the last counted period: the next return is measured from them.
  period_equity  numeric(20, 2) NOT NULL,
  period_base    numeric(20, 2) NOT NULL,
  sum_r          numeric(40, 0) NOT NULL DEFAULT 0,
  sum_r2         numeric(60, 0) NOT NULL DEFAULT 0 CHECK (sum_r2 >= 0),
  -- The performance index prod(1 + r), its running peak, and the largest fall from a peak, in
  -- units of 1e-12 (the index starts at 1 = 1000000000000).
  perf_index     numeric(40, 0) NOT NULL DEFAULT 1000000000000 CHECK (perf_index >= 0),
  peak_index     numeric(40, 0) NOT NULL DEFAULT 1000000000000 CHECK (peak_index > 0),
  max_drawdown   numeric(40, 0) NOT NULL DEFAULT 0 CHECK (max_drawdown >= 0 AND max_drawdown <= 1000000000000)
);

-- The snapshot rounds, one row: a round is claimed by one conditional update of this row, so two
-- engines that both believe they lead (a lease handed over under a slow round) never both run a
-- round in one interval. round_no counts every round; period_no only the rounds that count as a
-- return interval (market open by the clock, or a session close), so that closed-market rounds
-- of the nyse calendar do not dilute the Sharpe ratio. The downsampling watermarks say up to
-- where each stage has been applied, so a pass never rescans what is done.
CREATE TABLE history_rounds (
  id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
  round_no           bigint NOT NULL DEFAULT 0,
  period_no          bigint NOT NULL DEFAULT 0,
  last_round_at      timestamptz,
  last_round_close   boolean NOT NULL DEFAULT false,
  -- The latest market_sessions.closed_at a round has been run for.
  last_close_at      timestamptz,
  compacted_15m_until timestamptz,
  compacted_1d_until  timestamptz
);
INSERT INTO history_rounds DEFAULT VALUES;
