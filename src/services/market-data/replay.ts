/**
 * The replay feed: historical bars from a CSV file, published in timestamp order at a speed
 * multiplier. The file has a header line and one bar per line:
 *
 *   timestamp,ticker,open,high,low,close,volume
 *   2024-01-02T14:30:00Z,AAPL,187.1500,188.4400,186.9000,188.0100,1234567
 *
 * `timestamp` is ISO-8601 (no offset means UTC; a date alone is midnight UTC) or epoch
 * milliseconds; prices are plain decimals (more than 4 decimals are rounded half-up to 4, exactly);
 * `volume` is a plain decimal or empty, and is checked but not used. No quoting, no other columns
 * than these, but two optional groups after `volume`: `bid,ask` (the touch at the close, bid at
 * most ask) and then `bid_size,ask_size` (whole shares displayed at each). A row that leaves
 * bid and ask empty, or a file without the columns, gets its tier's spread around the close,
 * as a simulated tick does; bid and ask without sizes display the tier's least size.
 * Each bar publishes its close; the bars of one timestamp are one tick batch. A quote's `as_of` is
 * when it was published (wall clock), so replayed prices are fresh by the same rule as simulated
 * ones; the bar's own timestamp only sets the pacing: at speed N the wall-clock gap between two
 * batches is their data gap / N.
 */
import { readFile, stat } from 'node:fs/promises';
import { assert, ValidationError } from '../../core/errors.js';
import { divRound, parseDecimal, PRICE_MAX, PRICE_SCALE, QTY_SCALE, type Price, type Qty } from '../../core/money.js';
import { sleepUntil, TICK_BATCH_SIZE_MAX, type EmitFn, type PriceFeed } from './feed.js';
import { TICKER_PATTERN } from './instruments.js';
import { ReplayFileInvalidError } from './market-data.errors.js';

export const REPLAY_FILE_BYTES_MAX = 64 * 1024 * 1024;
export const REPLAY_ROWS_MAX = 1_000_000;
export const REPLAY_HEADER = ['timestamp', 'ticker', 'open', 'high', 'low', 'close', 'volume'] as const;
/** The optional columns, in this order after `volume`: bid and ask, then their sizes. */
export const REPLAY_TOUCH_COLUMNS = ['bid', 'ask', 'bid_size', 'ask_size'] as const;
const SHARES = /^\d{1,12}$/;
/** Input prices may carry this many decimals; they are rounded to the price scale (4). */
export const REPLAY_PRICE_DECIMALS_MAX = 10;
/** Data time between the last batch and the first one again when a one-batch file loops. */
export const REPLAY_SINGLE_BATCH_LOOP_GAP_MS = 1_000;
/** Latest timestamp accepted (the largest a JavaScript Date can hold). */
const TIMESTAMP_MS_MAX = 8_640_000_000_000_000;

const EXTRA_DECIMALS = REPLAY_PRICE_DECIMALS_MAX - PRICE_SCALE;
const EXTRA_DIVISOR = 10n ** BigInt(EXTRA_DECIMALS);
const EPOCH_MS = /^\d{1,16}$/;
const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const VOLUME = /^\d{1,20}(?:\.\d{1,10})?$/;

export interface ReplayRow {
  /** Line number in the file (1-based, the header is line 1). */
  line: number;
  tsMs: number;
  ticker: string;
  open: Price;
  high: Price;
  low: Price;
  close: Price;
  /** The touch at the close, when the file gives one. */
  touch?: ReplayTouch;
}

export interface ReplayTouch {
  bid: Price;
  ask: Price;
  bidSize?: Qty;
  askSize?: Qty;
}

export interface ReplayBatch {
  tsMs: number;
  prices: { ticker: string; price: Price; touch?: ReplayTouch }[];
}

/** Whole shares from a size column (empty: undefined). */
function parseShares(text: string, field: string, line: number): Qty | undefined {
  if (text === '') return undefined;
  if (!SHARES.test(text)) throw invalid(line, `${field} ${JSON.stringify(text.slice(0, 30))} is not a whole number of shares`);
  return BigInt(text) * 10n ** BigInt(QTY_SCALE);
}

/** The row's touch from its optional columns; undefined when bid and ask are absent or empty. */
function parseTouch(fields: readonly string[], line: number): ReplayTouch | undefined {
  const [bid = '', ask = '', bidSize = '', askSize = ''] = fields;
  if (bid === '' && ask === '') {
    if (bidSize !== '' || askSize !== '') throw invalid(line, 'bid_size and ask_size need a bid and an ask');
    return undefined;
  }
  if (bid === '' || ask === '') throw invalid(line, 'give bid and ask together, or leave both empty (the tier\'s spread is used)');
  const touch: ReplayTouch = { bid: parseReplayPrice(bid, 'bid', line), ask: parseReplayPrice(ask, 'ask', line) };
  if (touch.bid > touch.ask) throw invalid(line, 'bid is above ask');
  const bs = parseShares(bidSize, 'bid_size', line);
  const as = parseShares(askSize, 'ask_size', line);
  if (bs !== undefined) touch.bidSize = bs;
  if (as !== undefined) touch.askSize = as;
  return touch;
}

function invalid(line: number, message: string): ReplayFileInvalidError {
  return new ReplayFileInvalidError(`replay file line ${line}: ${message}`, { line });
}

/** Epoch ms of an ISO-8601 or epoch-milliseconds timestamp, or undefined when it is neither. */
export function parseReplayTimestamp(text: string): number | undefined {
  if (EPOCH_MS.test(text)) {
    const ms = Number(text);
    return ms <= TIMESTAMP_MS_MAX ? ms : undefined;
  }
  const match = ISO_TIMESTAMP.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, , , zone] = match;
  // Date.parse rolls 2024-02-30 over into March; a real calendar date is required instead.
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  if (date.getUTCMonth() !== Number(month) - 1 || date.getUTCDate() !== Number(day)) return undefined;
  // A date-time without an offset would be read as local time; the file format says UTC.
  const text2 = text.replace(' ', 'T');
  const ms = Date.parse(hour !== undefined && zone === undefined ? `${text2}Z` : text2);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A replay price, exactly: at most 10 decimals in, rounded half-up to 4, positive. */
function parseReplayPrice(text: string, field: string, line: number): Price {
  let value: bigint;
  try {
    value = parseDecimal(text, {
      scale: REPLAY_PRICE_DECIMALS_MAX,
      max: PRICE_MAX * EXTRA_DIVISOR,
      field,
    });
  } catch (err) {
    if (err instanceof ValidationError) throw invalid(line, err.message);
    throw err;
  }
  const price = divRound(value, EXTRA_DIVISOR, 'half-up');
  if (price <= 0n) throw invalid(line, `${field} ${text} rounds to zero at ${PRICE_SCALE} decimals`);
  return price;
}

/** Parses and validates a whole replay file; rows come back sorted by timestamp (stable). */
export function parseReplayCsv(text: string, rowsMax: number = REPLAY_ROWS_MAX): ReplayRow[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase());
  const allowed = [REPLAY_HEADER, [...REPLAY_HEADER, 'bid', 'ask'], [...REPLAY_HEADER, ...REPLAY_TOUCH_COLUMNS]].map((h) => h.join(','));
  if (!allowed.includes(header.join(','))) {
    throw invalid(1, `the header must be ${REPLAY_HEADER.join(',')}, optionally followed by bid,ask or bid,ask,bid_size,ask_size`);
  }
  const columns = header.length;
  const rows: ReplayRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = i + 1;
    const raw = lines[i]!;
    if (raw.trim() === '') continue;
    if (rows.length >= rowsMax) throw invalid(line, `more than ${rowsMax} rows`);
    const fields = raw.split(',').map((f) => f.trim());
    if (fields.length !== columns) {
      throw invalid(line, `expected ${columns} comma-separated fields, got ${fields.length}`);
    }
    const [timestamp, ticker, open, high, low, close, volume] = fields as [string, string, string, string, string, string, string];
    const tsMs = parseReplayTimestamp(timestamp);
    if (tsMs === undefined) throw invalid(line, `timestamp ${JSON.stringify(timestamp.slice(0, 40))} is neither ISO-8601 nor epoch milliseconds`);
    if (!TICKER_PATTERN.test(ticker)) throw invalid(line, `ticker ${JSON.stringify(ticker.slice(0, 20))} is not an uppercase ticker`);
    if (volume !== '' && !VOLUME.test(volume)) throw invalid(line, `volume ${JSON.stringify(volume.slice(0, 30))} is not a plain decimal`);
    const row: ReplayRow = {
      line,
      tsMs,
      ticker,
      open: parseReplayPrice(open, 'open', line),
      high: parseReplayPrice(high, 'high', line),
      low: parseReplayPrice(low, 'low', line),
      close: parseReplayPrice(close, 'close', line),
    };
    if (row.low > row.high) throw invalid(line, 'low is above high');
    const touch = parseTouch(fields.slice(REPLAY_HEADER.length), line);
    if (touch) row.touch = touch;
    rows.push(row);
  }
  if (rows.length === 0) throw invalid(lines.length, 'the file has no rows');
  // Array.prototype.sort is stable: rows with equal timestamps keep their file order.
  return rows.sort((a, b) => a.tsMs - b.tsMs);
}

export async function loadReplayFile(path: string, rowsMax: number = REPLAY_ROWS_MAX): Promise<ReplayRow[]> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new ReplayFileInvalidError(`cannot read replay file ${path}: ${(err as Error).message}`, { path });
  }
  if (size > REPLAY_FILE_BYTES_MAX) {
    throw new ReplayFileInvalidError(`replay file ${path} is ${size} bytes, over the ${REPLAY_FILE_BYTES_MAX} allowed`, { path });
  }
  return parseReplayCsv(await readFile(path, 'utf8'), rowsMax);
}

/**
 * Groups sorted rows into tick batches: one per timestamp (split past TICK_BATCH_SIZE_MAX), the
 * last row winning when a ticker repeats within a timestamp. Rows of tickers outside `listed`
 * are dropped and reported, so a data set with extra symbols still replays the ones we trade.
 */
export function toReplayBatches(
  rows: readonly ReplayRow[],
  listed?: ReadonlySet<string>,
): { batches: ReplayBatch[]; skippedTickers: string[] } {
  const skipped = new Set<string>();
  const batches: ReplayBatch[] = [];
  let i = 0;
  while (i < rows.length) {
    const tsMs = rows[i]!.tsMs;
    const latest = new Map<string, { price: Price; touch?: ReplayTouch }>();
    for (; i < rows.length && rows[i]!.tsMs === tsMs; i++) {
      const row = rows[i]!;
      if (i > 0) assert(row.tsMs >= rows[i - 1]!.tsMs, 'replay rows are sorted by timestamp');
      if (listed && !listed.has(row.ticker)) {
        skipped.add(row.ticker);
        continue;
      }
      latest.set(row.ticker, row.touch ? { price: row.close, touch: row.touch } : { price: row.close });
    }
    const prices = [...latest].map(([ticker, p]) => ({ ticker, ...p }));
    for (let start = 0; start < prices.length; start += TICK_BATCH_SIZE_MAX) {
      batches.push({ tsMs, prices: prices.slice(start, start + TICK_BATCH_SIZE_MAX) });
    }
  }
  return { batches, skippedTickers: [...skipped].sort() };
}

export interface ReplayOptions {
  /** Data time per wall-clock time: 60 replays one minute of data per second. */
  speed: number;
  /** Start over after the last batch (true) or finish (false). */
  loop: boolean;
}

export class ReplayFeed implements PriceFeed {
  readonly kind = 'replay';
  private readonly firstMs: number;
  private readonly spanMs: number;
  private readonly loopGapMs: number;

  constructor(
    private readonly batches: readonly ReplayBatch[],
    private readonly options: ReplayOptions,
  ) {
    assert(batches.length > 0, 'a replay has at least one batch');
    assert(options.speed > 0 && Number.isFinite(options.speed), 'replay speed is positive');
    this.firstMs = batches[0]!.tsMs;
    this.spanMs = batches[batches.length - 1]!.tsMs - this.firstMs;
    // Looping, the last batch is followed by the first after the data's average spacing.
    this.loopGapMs = batches.length > 1 ? this.spanMs / (batches.length - 1) : REPLAY_SINGLE_BATCH_LOOP_GAP_MS;
  }

  async run(emit: EmitFn, signal: AbortSignal): Promise<void> {
    const { speed, loop } = this.options;
    let wallStartMs = Date.now();
    for (;;) {
      for (const batch of this.batches) {
        // Due times are computed from the pass's start, so waits do not accumulate drift.
        await sleepUntil(wallStartMs + (batch.tsMs - this.firstMs) / speed, signal);
        if (signal.aborted) return;
        const asOfMs = Date.now();
        await emit(batch.prices.map((p) => ({ ticker: p.ticker, price: p.price, asOfMs, ...p.touch })));
      }
      if (!loop) return;
      // A pass that fell behind does not carry its lag into the next one.
      wallStartMs = Math.max(wallStartMs + (this.spanMs + this.loopGapMs) / speed, Date.now());
    }
  }
}
