-- Market data: the tradable instruments (seeded with a universe of US large caps) and the
-- 1-minute price history the feed aggregates from its ticks.
-- Prices are NUMERIC(20, 4), the price scale used everywhere else.

CREATE TABLE instruments (
  ticker             text PRIMARY KEY CHECK (ticker ~ '^[A-Z][A-Z0-9.]{0,9}$'),
  name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- Where the simulator starts when it has neither a cached price nor a stored bar.
  reference_price    numeric(20, 4) NOT NULL CHECK (reference_price > 0),
  -- Annualized volatility of the simulated random walk (0.25 = 25 % a year).
  annual_volatility  numeric(6, 4) NOT NULL CHECK (annual_volatility > 0 AND annual_volatility <= 10),
  created_at         timestamptz NOT NULL DEFAULT now()
);

-- One row per ticker and minute. The feed upserts the current minute every few seconds, merging
-- with what is stored (open kept, high/low widened, close replaced, tick_count added), so a
-- restart or a leader change inside a minute extends the bar instead of replacing it.
CREATE TABLE price_bars (
  ticker      text NOT NULL REFERENCES instruments (ticker),
  bucket      timestamptz NOT NULL CHECK (date_trunc('minute', bucket) = bucket),
  open        numeric(20, 4) NOT NULL,
  high        numeric(20, 4) NOT NULL,
  low         numeric(20, 4) NOT NULL,
  close       numeric(20, 4) NOT NULL,
  tick_count  integer NOT NULL DEFAULT 0 CHECK (tick_count >= 0),
  PRIMARY KEY (ticker, bucket),
  CONSTRAINT price_bars_ohlc_consistent
    CHECK (0 < low AND low <= open AND low <= close AND open <= high AND close <= high)
);

INSERT INTO instruments (ticker, name, reference_price, annual_volatility) VALUES
  ('AAPL',  'Apple Inc.',                         230.0000, 0.2500),
  ('MSFT',  'Microsoft Corporation',              420.0000, 0.2400),
  ('NVDA',  'NVIDIA Corporation',                 135.0000, 0.5000),
  ('AMZN',  'Amazon.com, Inc.',                   200.0000, 0.3200),
  ('GOOGL', 'Alphabet Inc. Class A',              175.0000, 0.3000),
  ('META',  'Meta Platforms, Inc.',               580.0000, 0.3800),
  ('TSLA',  'Tesla, Inc.',                        250.0000, 0.6000),
  ('JPM',   'JPMorgan Chase & Co.',               220.0000, 0.2200),
  ('BRK.B', 'Berkshire Hathaway Inc. Class B',    460.0000, 0.1600),
  ('V',     'Visa Inc. Class A',                  290.0000, 0.2000),
  ('MA',    'Mastercard Incorporated',            500.0000, 0.2100),
  ('UNH',   'UnitedHealth Group Incorporated',    560.0000, 0.2500),
  ('JNJ',   'Johnson & Johnson',                  155.0000, 0.1600),
  ('XOM',   'Exxon Mobil Corporation',            115.0000, 0.2400),
  ('WMT',   'Walmart Inc.',                        80.0000, 0.1800),
  ('PG',    'The Procter & Gamble Company',       165.0000, 0.1500),
  ('HD',    'The Home Depot, Inc.',               390.0000, 0.2200),
  ('COST',  'Costco Wholesale Corporation',       900.0000, 0.2000),
  ('LLY',   'Eli Lilly and Company',              850.0000, 0.3200),
  ('ABBV',  'AbbVie Inc.',                        190.0000, 0.2200),
  ('AVGO',  'Broadcom Inc.',                      170.0000, 0.4500),
  ('ORCL',  'Oracle Corporation',                 170.0000, 0.3200),
  ('KO',    'The Coca-Cola Company',               68.0000, 0.1400),
  ('PEP',   'PepsiCo, Inc.',                      165.0000, 0.1500),
  ('BAC',   'Bank of America Corporation',         42.0000, 0.2600),
  ('CVX',   'Chevron Corporation',                155.0000, 0.2300),
  ('MRK',   'Merck & Co., Inc.',                  100.0000, 0.2200),
  ('ADBE',  'Adobe Inc.',                         500.0000, 0.3300),
  ('CRM',   'Salesforce, Inc.',                   290.0000, 0.3400),
  ('NFLX',  'Netflix, Inc.',                      750.0000, 0.3800),
  ('AMD',   'Advanced Micro Devices, Inc.',       150.0000, 0.5000),
  ('INTC',  'Intel Corporation',                   22.0000, 0.4500),
  ('CSCO',  'Cisco Systems, Inc.',                 58.0000, 0.2000),
  ('DIS',   'The Walt Disney Company',             95.0000, 0.2700),
  ('MCD',   'McDonald''s Corporation',            295.0000, 0.1700),
  ('NKE',   'NIKE, Inc.',                          78.0000, 0.3000),
  ('IBM',   'International Business Machines',    220.0000, 0.2200),
  ('QCOM',  'QUALCOMM Incorporated',              160.0000, 0.3500),
  ('GS',    'The Goldman Sachs Group, Inc.',      520.0000, 0.2600),
  ('CAT',   'Caterpillar Inc.',                   370.0000, 0.2800);
