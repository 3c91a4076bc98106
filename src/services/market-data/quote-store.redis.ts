/**
 * The quote store in Redis: one hash, ticker -> "<price>|<as_of epoch ms>|<bid>|<ask>|<bid
 * size>|<ask size>" (a value of only the first two, written before quotes had sides, still
 * reads: a quote without a touch). Pricing an order is
 * one HGET (one round trip); a valuation of many tickers is one HMGET. A tick batch is written
 * and PUBLISHed on the ticks channel in one MULTI. Nothing here decides whether a quote is
 * fresh enough.
 */
import type { Redis } from 'ioredis';
import { formatPrice, formatQty, fromDb, PRICE_SCALE, QTY_SCALE } from '../../core/money.js';
import type { Keys } from '../../infra/keys.js';
import { TICK_LOG_LENGTH_MAX, TICK_LOG_START, type Quote, type QuoteStore, type TickBatch, type TickLog, type TickLogEntry, type TickSource, type Unsubscribe } from './quote-store.js';
import { compareStreamIds } from '../../infra/stream-ids.js';

/**
 * The JSON published on the ticks channel, one message per tick batch:
 * `{ "feed": "simulator", "feed_id": "...", "ticks": [ { "ticker", "price", "as_of", "bid",
 * "ask", "bid_size", "ask_size" } ] }`, prices as 4-decimal strings, sizes as share strings and
 * `as_of` ISO-8601, as in the HTTP API. The touch is absent on a quote that has none.
 */
export interface TickMessage {
  feed: string;
  feed_id: string;
  ticks: { ticker: string; price: string; as_of: string; bid?: string; ask?: string; bid_size?: string; ask_size?: string }[];
}

const PRICE_TEXT = /^\d{1,16}(\.\d{1,4})?$/;
const SIZE_TEXT = /^\d{1,18}(\.\d{1,6})?$/;

/** The quote's touch as text, or nothing when it has none (or only part of one). */
function touchText(q: Quote): { bid: string; ask: string; bid_size: string; ask_size: string } | undefined {
  if (q.bid === undefined || q.ask === undefined || q.bidSize === undefined || q.askSize === undefined) return undefined;
  return { bid: formatPrice(q.bid), ask: formatPrice(q.ask), bid_size: formatQty(q.bidSize), ask_size: formatQty(q.askSize) };
}

/** The touch read back from text; undefined when any part is missing or malformed. */
function touchFromText(bid: unknown, ask: unknown, bidSize: unknown, askSize: unknown): Pick<Quote, 'bid' | 'ask' | 'bidSize' | 'askSize'> | undefined {
  if (typeof bid !== 'string' || typeof ask !== 'string' || typeof bidSize !== 'string' || typeof askSize !== 'string') return undefined;
  if (!PRICE_TEXT.test(bid) || !PRICE_TEXT.test(ask) || !SIZE_TEXT.test(bidSize) || !SIZE_TEXT.test(askSize)) return undefined;
  return { bid: fromDb(bid, PRICE_SCALE), ask: fromDb(ask, PRICE_SCALE), bidSize: fromDb(bidSize, QTY_SCALE), askSize: fromDb(askSize, QTY_SCALE) };
}

export function encodeTickMessage(quotes: readonly Quote[], source: TickSource): string {
  const message: TickMessage = {
    feed: source.feed,
    feed_id: source.feedId,
    ticks: quotes.map((q) => ({ ticker: q.ticker, price: formatPrice(q.price), as_of: new Date(q.asOfMs).toISOString(), ...touchText(q) })),
  };
  return JSON.stringify(message);
}

/** Reads a ticks-channel message back into quotes (for subscribers); undefined if malformed. */
export function decodeTickMessage(text: string): TickBatch | undefined {
  let message: TickMessage;
  try {
    message = JSON.parse(text) as TickMessage;
  } catch {
    return undefined;
  }
  if (!message || typeof message !== 'object' || !Array.isArray(message.ticks)) return undefined;
  const quotes: Quote[] = [];
  for (const t of message.ticks) {
    const asOfMs = Date.parse(t?.as_of);
    if (typeof t?.ticker !== 'string' || typeof t.price !== 'string' || !/^\d+\.\d{4}$/.test(t.price) || Number.isNaN(asOfMs)) {
      return undefined;
    }
    quotes.push({ ticker: t.ticker, price: fromDb(t.price, PRICE_SCALE), asOfMs, ...touchFromText(t.bid, t.ask, t.bid_size, t.ask_size) });
  }
  return { source: { feed: String(message.feed), feedId: String(message.feed_id) }, quotes };
}

export function encodeQuote(q: Quote): string {
  const touch = touchText(q);
  const head = `${formatPrice(q.price)}|${q.asOfMs}`;
  return touch ? `${head}|${touch.bid}|${touch.ask}|${touch.bid_size}|${touch.ask_size}` : head;
}

export function decodeQuote(ticker: string, raw: string | null | undefined): Quote | undefined {
  if (!raw) return undefined;
  const parts = raw.split('|', 7);
  // Redis is not trusted like PostgreSQL: a value we cannot read is no price (PRICE_UNAVAILABLE
  // for readers), not a crash.
  if (parts.length !== 2 && parts.length !== 6) return undefined;
  const [price, asOf] = parts as [string, string];
  const asOfMs = Number(asOf);
  if (!Number.isSafeInteger(asOfMs) || !PRICE_TEXT.test(price)) return undefined;
  const quote: Quote = { ticker, price: fromDb(price, PRICE_SCALE), asOfMs };
  if (parts.length === 2) return quote;
  const touch = touchFromText(parts[2], parts[3], parts[4], parts[5]);
  return touch ? { ...quote, ...touch } : undefined;
}

/*
 * KEYS[1] prices hash; ARGV[1] as_of epoch ms; ARGV[2] the same as ISO 8601; ARGV[3] the ticks
 * channel (a channel, not a key); ARGV[4] feed; ARGV[5] feed id; ARGV[6..] tickers.
 * Rewrites each ticker's "<price>|<as_of>[|<bid>|<ask>|<bid size>|<ask size>]" with the new
 * as_of, keeping the price and the touch, when the
 * stored as_of is older, and announces the refreshed quotes on the channel in the same script:
 * no price set meanwhile can be overtaken by an announcement of the older one. Returns how many
 * it refreshed.
 */
const REFRESH_SCRIPT = `
local ticks = {}
for i = 6, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local price, asof, rest = string.match(v, '^([^|]*)|([^|]*)(.*)$')
    if price and tonumber(asof) and tonumber(asof) < tonumber(ARGV[1]) then
      redis.call('HSET', KEYS[1], ARGV[i], price .. '|' .. ARGV[1] .. rest)
      local tick = { ticker = ARGV[i], price = price, as_of = ARGV[2] }
      local bid, ask, bid_size, ask_size = string.match(rest, '^|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
      if bid then
        tick.bid = bid
        tick.ask = ask
        tick.bid_size = bid_size
        tick.ask_size = ask_size
      end
      ticks[#ticks + 1] = tick
    end
  end
end
if #ticks > 0 then
  redis.call('PUBLISH', ARGV[3], cjson.encode({ feed = ARGV[4], feed_id = ARGV[5], ticks = ticks }))
end
return #ticks`;

export class RedisQuoteStore implements QuoteStore, TickLog {
  private reader: Redis | undefined;

  /**
   * @param redis the shared command connection
   * @param subscriberFor a new connection for a subscription (pub/sub takes a connection over)
   */
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly subscriberFor: () => Redis = () => redis.duplicate(),
  ) {}

  async get(ticker: string): Promise<Quote | undefined> {
    return decodeQuote(ticker, await this.redis.hget(this.keys.prices(), ticker));
  }

  async getMany(tickers: readonly string[]): Promise<Map<string, Quote>> {
    const out = new Map<string, Quote>();
    if (tickers.length === 0) return out;
    const raws = await this.redis.hmget(this.keys.prices(), ...tickers);
    tickers.forEach((ticker, i) => {
      const quote = decodeQuote(ticker, raws[i]);
      if (quote) out.set(ticker, quote);
    });
    return out;
  }

  async getAll(): Promise<Quote[]> {
    const all = await this.redis.hgetall(this.keys.prices());
    return Object.entries(all)
      .map(([ticker, raw]) => decodeQuote(ticker, raw))
      .filter((q): q is Quote => q !== undefined)
      .sort((a, b) => (a.ticker < b.ticker ? -1 : 1));
  }

  /**
   * Writes a batch of quotes, appends it to the tick log and publishes it on the ticks channel
   * in one MULTI: one round trip, and nobody hears of a price the store does not hold yet.
   */
  async publish(quotes: readonly Quote[], source: TickSource): Promise<void> {
    if (quotes.length === 0) return;
    const fields: string[] = [];
    for (const q of quotes) fields.push(q.ticker, encodeQuote(q));
    const message = encodeTickMessage(quotes, source);
    const results = await this.redis
      .multi()
      .hset(this.keys.prices(), ...fields)
      .xadd(this.keys.tickLog(), 'MAXLEN', '~', TICK_LOG_LENGTH_MAX, '*', 'batch', message)
      .publish(this.keys.ticksChannel(), message)
      .exec();
    // exec() reports a failed command inside the transaction as [error, result] instead of throwing.
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  /** Writes many quotes in one round trip. */
  async setMany(quotes: readonly Quote[]): Promise<void> {
    if (quotes.length === 0) return;
    const fields: string[] = [];
    for (const q of quotes) fields.push(q.ticker, encodeQuote(q));
    await this.redis.hset(this.keys.prices(), ...fields);
  }

  async subscribe(onBatch: (batch: TickBatch) => void): Promise<Unsubscribe> {
    const subscriber = this.subscriberFor();
    // A lost connection is reconnected by ioredis; what was published meanwhile is missed
    // (pub/sub is best effort by contract).
    subscriber.on('error', () => {});
    const channel = this.keys.ticksChannel();
    subscriber.on('message', (from: string, text: string) => {
      if (from !== channel) return;
      const batch = decodeTickMessage(text);
      if (batch) onBatch(batch);
    });
    await subscriber.subscribe(channel);
    return async () => {
      await subscriber.unsubscribe(channel).catch(() => undefined);
      subscriber.disconnect();
    };
  }

  async refresh(tickers: readonly string[], asOfMs: number, source: TickSource): Promise<void> {
    if (tickers.length === 0) return;
    const iso = new Date(asOfMs).toISOString();
    await this.redis.eval(REFRESH_SCRIPT, 1, this.keys.prices(), String(asOfMs), iso, this.keys.ticksChannel(), source.feed, source.feedId, ...tickers);
  }

  async readTicks(cursor: string | undefined, countMax: number, blockMs: number) {
    // XREAD BLOCK holds its connection while it waits: a connection of its own.
    if (!this.reader) {
      this.reader = this.subscriberFor();
      this.reader.on('error', () => {});
    }
    const reader = this.reader;
    const log = this.keys.tickLog();
    // Without a position: the newest entry now, read BEFORE waiting, so that a batch published
    // while this read runs is read (from '$' it could fall between the read and the answer).
    const newest = async () => ((await this.redis.xrevrange(log, '+', '-', 'COUNT', 1)) as [string, string[]][])[0]?.[0] ?? '0-0';
    const from = cursor ?? (await newest());
    // A gap: the oldest entry kept is past the position, so what lay between was trimmed. Asked on
    // the other connection while the read waits, so it adds no round trip to the read's time.
    const gapAnswer: Promise<boolean> =
      cursor !== undefined && cursor !== TICK_LOG_START
        ? this.redis.xrange(log, '-', '+', 'COUNT', 1).then(([first]) => first !== undefined && compareStreamIds(first[0], cursor) > 0)
        : Promise.resolve(false);
    // Settled below in every path; a failure of the probe is not left unhandled meanwhile.
    gapAnswer.catch(() => undefined);
    let reply: [string, [string, string[]][]][] | null;
    try {
      // BLOCK 0 would wait forever: no wait at all is asked without BLOCK.
      reply = (
        blockMs > 0
          ? await reader.xread('COUNT', countMax, 'BLOCK', Math.ceil(blockMs), 'STREAMS', log, from)
          : await reader.xread('COUNT', countMax, 'STREAMS', log, from)
      ) as typeof reply;
    } catch (err) {
      // closeReader() ended the wait: an empty read, not a failure.
      if (reader !== this.reader) return { cursor: from, entries: [], gap: await gapAnswer };
      throw err;
    }
    const gap = await gapAnswer;
    const entries: TickLogEntry[] = [];
    for (const [id, flat] of reply?.[0]?.[1] ?? []) {
      const i = flat.indexOf('batch');
      const batch = i >= 0 ? decodeTickMessage(flat[i + 1] ?? '') : undefined;
      if (batch) entries.push({ cursor: id, batch });
    }
    return { cursor: reply?.[0]?.[1]?.at(-1)?.[0] ?? from, entries, gap };
  }

  async closeReader(): Promise<void> {
    const reader = this.reader;
    this.reader = undefined;
    reader?.disconnect();
  }

  async saveCursor(reader: string, cursor: string): Promise<void> {
    await this.redis.set(this.keys.tickCursor(reader), cursor, 'PX', TICK_CURSOR_TTL_MS);
  }

  async loadCursor(reader: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.tickCursor(reader))) ?? undefined;
  }
}

/** A reader's saved position outlives it a day at most (an abandoned reader leaves no key forever). */
const TICK_CURSOR_TTL_MS = 86_400_000;
