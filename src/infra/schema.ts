/**
 * Row types of the PostgreSQL tables, as the `pg` driver returns them: NUMERIC and BIGINT as
 * strings (converted exactly by src/core/money.ts), timestamps as Date. Repositories map rows to
 * domain objects; nothing else sees these shapes.
 */
import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** NUMERIC: read as a string, written as a string (never a JS number). */
type Numeric = ColumnType<string, string, string>;
type NumericDefault = ColumnType<string, string | undefined, string>;

export interface UsersTable {
  id: string;
  name: string;
  email: string;
  created_at: Timestamp;
}

export interface ApiKeysTable {
  id: string;
  /** A user's key: its user. A teacher key: null (it has class_id). */
  user_id: ColumnType<string | null, string | null | undefined, string | null>;
  class_id: ColumnType<string | null, string | null | undefined, string | null>;
  key_hash: Buffer;
  role: ColumnType<string, string | undefined, string>;
  created_at: Timestamp;
  revoked_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface CashBalancesTable {
  user_id: string;
  cash_balance: NumericDefault;
  available_cash: NumericDefault;
  /** Initial cash + deposits - withdrawals, restarted at the cash a reset sets. */
  net_contributions: NumericDefault;
  updated_at: Timestamp;
}

export type LedgerKind = 'initial' | 'deposit' | 'withdrawal' | 'buy' | 'sell' | 'commission' | 'reset';

export interface CashLedgerTable {
  id: Generated<string>;
  user_id: string;
  kind: LedgerKind;
  amount: Numeric;
  balance_after: Numeric;
  order_id: string | null;
  /** The Idempotency-Key of the deposit or withdrawal that wrote the row, with its request's hash. */
  idempotency_key: ColumnType<string | null, string | null | undefined, never>;
  request_hash: ColumnType<Buffer | null, Buffer | null | undefined, never>;
  created_at: Timestamp;
}

export interface HoldingsTable {
  user_id: string;
  ticker: string;
  quantity: Numeric;
  reserved_quantity: NumericDefault;
  avg_cost: Numeric;
  updated_at: Timestamp;
}

type Nullable<T> = ColumnType<T | null, T | null | undefined, T | null>;

export interface OrdersTable {
  id: string;
  user_id: string;
  client_order_id: string | null;
  request_hash: Buffer;
  /** The commission held at acceptance (part of reserved_amount); commission_charged what fills charged. */
  commission: NumericDefault;
  commission_charged: NumericDefault;
  /** Σ quantity × price over the order's fills, exact (scale 10). */
  filled_value: NumericDefault;
  fill_model: ColumnType<'ideal' | 'spread' | 'realistic', string | undefined, string>;
  /** The commission schedule fixed at acceptance, as decimal strings; null for none. */
  commission_schedule: ColumnType<unknown, string | null | undefined, string | null>;
  last_fill_quote_at: Nullable<Date>;
  ticker: string;
  side: 'buy' | 'sell';
  type: 'market' | 'limit' | 'stop' | 'stop_limit' | 'trailing_stop';
  time_in_force: ColumnType<'day' | 'gtc' | 'ioc' | 'fok' | 'opg' | 'cls', string | undefined, string>;
  quantity: Numeric;
  limit_price: Nullable<string>;
  stop_price: Nullable<string>;
  trail_price: Nullable<string>;
  trail_percent: Nullable<string>;
  hwm: Nullable<string>;
  stop_level: Nullable<string>;
  status: 'PENDING' | 'OPEN' | 'FILLED' | 'CANCELED' | 'EXPIRED' | 'REJECTED' | 'REPLACED';
  reserved_amount: NumericDefault;
  quote_price: string | null;
  fill_price: Nullable<string>;
  filled_quantity: NumericDefault;
  filled_at: Nullable<Date>;
  triggered_at: Nullable<Date>;
  canceled_at: Nullable<Date>;
  expired_at: Nullable<Date>;
  reject_reason: Nullable<string>;
  cancel_reason: Nullable<string>;
  replaces: Nullable<string>;
  replaced_by: Nullable<string>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MarketClockTable {
  id: ColumnType<boolean, boolean | undefined, never>;
  forced: Nullable<'open' | 'closed'>;
  forced_at: Nullable<Date>;
  updated_at: Timestamp;
}

export interface MarketSessionsTable {
  opened_at: Date;
  closed_at: Nullable<Date>;
}

export interface FillsTable {
  id: Generated<string>;
  order_id: string;
  price: Numeric;
  quantity: Numeric;
  amount: Numeric;
  /** How `amount` was rounded from quantity × price: 'against_account' since 0.2, 'half_up' before. */
  rounding: ColumnType<'half_up' | 'against_account', undefined, never>;
  executed_at: Timestamp;
  commission: NumericDefault;
  model: ColumnType<'ideal' | 'spread' | 'realistic', string | undefined, never>;
  model_version: ColumnType<number, number | undefined, never>;
  model_params: ColumnType<unknown, string | null | undefined, never>;
  quote: ColumnType<unknown, string | null | undefined, never>;
  quote_age_ms: ColumnType<number | null, number | null | undefined, never>;
  slippage_bps: ColumnType<string | null, string | null | undefined, never>;
  reason: ColumnType<string | null, string | null | undefined, never>;
}

export interface InstrumentsTable {
  ticker: string;
  name: string;
  reference_price: Numeric;
  annual_volatility: Numeric;
  liquidity_tier: ColumnType<string, string | undefined, string>;
  created_at: Timestamp;
}

export interface PriceBarsTable {
  ticker: string;
  bucket: Timestamp;
  open: Numeric;
  high: Numeric;
  low: Numeric;
  close: Numeric;
  tick_count: ColumnType<number, number | undefined, number>;
}

export interface EventCountersTable {
  user_id: string;
  last_seq: ColumnType<string, string | number, string | number>;
}

export interface EventsTable {
  user_id: string;
  seq: ColumnType<string, string | number, never>;
  type: string;
  at: ColumnType<Date, Date | string | undefined, never>;
  /** The JSON clients receive, as text (the column is `json`; read it with `data::text`). */
  data: ColumnType<unknown, string, never>;
}

export interface Database {
  users: UsersTable;
  api_keys: ApiKeysTable;
  cash_balances: CashBalancesTable;
  cash_ledger: CashLedgerTable;
  holdings: HoldingsTable;
  orders: OrdersTable;
  fills: FillsTable;
  instruments: InstrumentsTable;
  price_bars: PriceBarsTable;
  market_clock: MarketClockTable;
  market_sessions: MarketSessionsTable;
  event_counters: EventCountersTable;
  events: EventsTable;
  classes: ClassesTable;
  class_members: ClassMembersTable;
  account_resets: AccountResetsTable;
  reset_positions: ResetPositionsTable;
  portfolio_history: PortfolioHistoryTable;
  portfolio_metrics: PortfolioMetricsTable;
  history_rounds: HistoryRoundsTable;
}

export interface ClassesTable {
  id: string;
  name: string;
  starting_cash: Numeric;
  starts_at: Nullable<Date>;
  ends_at: Nullable<Date>;
  /** As validated by core/class-rules (classRulesJson). */
  rules: ColumnType<Record<string, unknown>, string | undefined, string>;
  leaderboard_visible: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Timestamp;
}

export interface ClassMembersTable {
  user_id: string;
  class_id: string;
  joined_at: Timestamp;
}

export interface AccountResetsTable {
  id: Generated<string>;
  user_id: string;
  ledger_id: string;
  cash_before: Numeric;
  cash_after: Numeric;
  orders_canceled: number;
  reset_at: Timestamp;
}

export interface ResetPositionsTable {
  reset_id: string;
  user_id: string;
  ticker: string;
  quantity: Numeric;
  avg_cost: Numeric;
}

export interface PortfolioHistoryTable {
  user_id: string;
  at: Timestamp;
  equity: Numeric;
  base: Numeric;
  kind: ColumnType<'round' | 'close' | 'reset', 'round' | 'close' | 'reset' | undefined, never>;
}

/** Sums and indexes are integers in units of 1e-12 (sum_r2: 1e-24), read as NUMERIC text. */
export interface PortfolioMetricsTable {
  user_id: string;
  version: ColumnType<string, string | number | undefined, string | number>;
  resets: ColumnType<number, number | undefined, number>;
  started_at: Timestamp;
  start_period: ColumnType<string, string | number, string | number>;
  point_at: Timestamp;
  point_equity: Numeric;
  point_base: Numeric;
  period_equity: Numeric;
  period_base: Numeric;
  sum_r: NumericDefault;
  sum_r2: NumericDefault;
  perf_index: NumericDefault;
  peak_index: NumericDefault;
  max_drawdown: NumericDefault;
}

export interface HistoryRoundsTable {
  id: ColumnType<boolean, boolean | undefined, never>;
  round_no: ColumnType<string, string | number | undefined, string | number>;
  period_no: ColumnType<string, string | number | undefined, string | number>;
  last_round_at: Nullable<Date>;
  last_round_close: ColumnType<boolean, boolean | undefined, boolean>;
  last_close_at: Nullable<Date>;
  compacted_15m_until: Nullable<Date>;
  compacted_1d_until: Nullable<Date>;
}
