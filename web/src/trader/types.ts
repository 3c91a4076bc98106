/**
 * The shapes the trader view reads, as the route files under src/services/ answer them. Money,
 * prices and quantities stay the API's decimal strings: they are shown as they are, and any
 * arithmetic on them goes through bigint (format.ts's toFixedBig, src/core/money.ts).
 */
import type { OrderType, Side, TimeInForce } from '../../../src/core/order-terms.js';

export interface Instrument {
  ticker: string;
  name: string;
  reference_price: string;
}

export interface Quote {
  ticker: string;
  price: string;
  as_of: string;
}

export interface Bar {
  t: string;
  open: string;
  high: string;
  low: string;
  close: string;
}

/** PARTIALLY_FILLED: an OPEN order some of whose shares have filled (the API shows it so). */
export type OrderStatus = 'PENDING' | 'OPEN' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELED' | 'EXPIRED' | 'REJECTED' | 'REPLACED';

export interface Order {
  id: string;
  user_id: string;
  client_order_id: string | null;
  ticker: string;
  side: Side;
  type: OrderType;
  time_in_force: TimeInForce;
  quantity: string;
  limit_price: string | null;
  stop_price: string | null;
  trail_price: string | null;
  trail_percent: string | null;
  hwm: string | null;
  stop_level: string | null;
  status: OrderStatus;
  reserved_amount: string;
  commission: string;
  commission_charged?: string;
  fill_model?: 'ideal' | 'spread' | 'realistic';
  fill_price: string | null;
  filled_quantity: string;
  filled_at: string | null;
  triggered_at: string | null;
  canceled_at: string | null;
  expired_at: string | null;
  reject_reason: string | null;
  cancel_reason: string | null;
  replaces: string | null;
  replaced_by: string | null;
  created_at: string;
  updated_at: string;
}

/** One execution of an order and why it got its price (GET /orders/{id}/fills). */
export interface Fill {
  id: string;
  order_id: string;
  price: string;
  quantity: string;
  amount: string;
  commission: string;
  executed_at: string;
  explanation: {
    model: 'ideal' | 'spread' | 'realistic';
    model_version: number;
    params: Record<string, string>;
    quote: { bid: string; ask: string; last: string; bid_size: string; ask_size: string; as_of: string } | null;
    quote_age_ms: number | null;
    slippage_bps: string | null;
    reason: string | null;
  };
}

export interface FillPage {
  order_id: string;
  fills: Fill[];
  next: string | null;
}

export interface OrderPage {
  orders: Order[];
  next: string | null;
}

export interface Position {
  ticker: string;
  quantity: string;
  available_quantity: string;
  avg_cost: string;
  market_price: string;
  market_value: string;
  unrealized_pl: string;
}

export interface Portfolio {
  user_id: string;
  positions: Position[];
}

export interface Account {
  user_id: string;
  cash_balance: string;
  available_cash: string;
  reserved_cash: string;
  positions_value: string;
  equity: string;
}

export interface Activity {
  id: string;
  kind: string;
  amount: string;
  balance_after: string;
  order_id: string | null;
  created_at: string;
}

export interface ActivityPage {
  activities: Activity[];
  next: string | null;
}

export interface Clock {
  timestamp: string;
  is_open: boolean;
  next_open: string;
  next_close: string;
  calendar: 'always' | 'nyse';
  forced: 'open' | 'closed' | null;
}

export interface History {
  timestamp: number[];
  equity: string[];
  profit_loss: string[];
  profit_loss_pct: (string | null)[];
  base_value: string;
  timeframe: string;
}

export interface DashboardSettings {
  reservation_buffer_bps: number;
  min_order_notional: string;
}

export const TYPE_LABELS: Record<OrderType, string> = {
  market: 'Market',
  limit: 'Limit',
  stop: 'Stop',
  stop_limit: 'Stop limit',
  trailing_stop: 'Trailing stop',
};

export const TIF_LABELS: Record<TimeInForce, string> = {
  day: 'Day',
  gtc: 'Good till canceled',
  ioc: 'Immediate or cancel',
  fok: 'Fill or kill',
  opg: 'At the open',
  cls: 'At the close',
};
