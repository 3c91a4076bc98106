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
  user_id: string;
  key_hash: Buffer;
  role: ColumnType<string, string | undefined, string>;
  created_at: Timestamp;
  revoked_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface CashBalancesTable {
  user_id: string;
  cash_balance: NumericDefault;
  available_cash: NumericDefault;
  updated_at: Timestamp;
}

export type LedgerKind = 'initial' | 'deposit' | 'withdrawal' | 'buy' | 'sell';

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

export interface OrdersTable {
  id: string;
  user_id: string;
  client_order_id: string | null;
  request_hash: Buffer;
  ticker: string;
  side: 'buy' | 'sell';
  type: 'market';
  quantity: Numeric;
  status: 'PENDING' | 'FILLED' | 'REJECTED' | 'CANCELED';
  reserved_amount: NumericDefault;
  quote_price: string | null;
  fill_price: ColumnType<string | null, string | null | undefined, string | null>;
  filled_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  reject_reason: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
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
}

export interface InstrumentsTable {
  ticker: string;
  name: string;
  reference_price: Numeric;
  annual_volatility: Numeric;
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
}
