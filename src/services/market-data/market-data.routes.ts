/**
 * Market data over HTTP: instruments, latest prices and 1-minute bars. Any authenticated
 * caller (a user's key or the admin token) may read them; nothing here is per user.
 */
import { Type } from 'typebox';
import type { AppContext } from '../../app.js';
import { formatPrice, formatQty, parsePrice, parseQty, QTY_SCALE } from '../../core/money.js';
import type { Touch } from '../../core/liquidity.js';
import { ValidationError } from '../../core/errors.js';
import { LimitQuery, parseLimit, PriceString, QtyString, Timestamp } from '../../http/schemas.js';
import type { Server } from '../../http/server.js';
import { normalizeTicker, TICKER_INPUT_LENGTH_MAX } from './instruments.js';
import type { Quote } from './quote-store.js';

const TAGS = ['market-data'];

const QuoteBody = Type.Object({
  ticker: Type.String(),
  /** The last price. */
  price: PriceString,
  bid: PriceString,
  ask: PriceString,
  bid_size: QtyString,
  ask_size: QtyString,
  as_of: Timestamp,
});

const PriceField = (what: string) => Type.Union([Type.String({ maxLength: 40 }), Type.Number()], { description: `${what}: a positive price with at most 4 decimals` });
const SizeField = (what: string) => Type.Union([Type.String({ maxLength: 40 }), Type.Number()], { description: `${what}: whole shares, 0 or more` });

/**
 * The admin's touch: bid and ask together (bid at most ask), sizes only with them. Without a
 * bid and an ask the price gets its tier's spread, as a feed tick does.
 */
function touchInput(body: { bid?: string | number; ask?: string | number; bid_size?: string | number; ask_size?: string | number }): Partial<Touch> {
  if ((body.bid === undefined) !== (body.ask === undefined)) throw new ValidationError('give bid and ask together, or neither (the tier\'s spread is used)', { field: body.bid === undefined ? 'bid' : 'ask' });
  if (body.bid === undefined) {
    if (body.bid_size !== undefined || body.ask_size !== undefined) throw new ValidationError('bid_size and ask_size need a bid and an ask', { field: 'bid_size' });
    return {};
  }
  const bid = parsePrice(body.bid, 'bid');
  const ask = parsePrice(body.ask, 'ask');
  if (bid > ask) throw new ValidationError(`bid (${formatPrice(bid)}) must not be above ask (${formatPrice(ask)})`, { field: 'bid' });
  const size = (raw: string | number | undefined, field: string) => {
    if (raw === undefined) return undefined;
    const q = raw === 0 || raw === '0' ? 0n : parseQty(raw, field);
    if (q % 10n ** BigInt(QTY_SCALE) !== 0n) throw new ValidationError(`${field} must be whole shares`, { field });
    return q;
  };
  const bidSize = size(body.bid_size, 'bid_size');
  const askSize = size(body.ask_size, 'ask_size');
  return { bid, ask, ...(bidSize !== undefined ? { bidSize } : {}), ...(askSize !== undefined ? { askSize } : {}) };
}

/**
 * The path accepts any short string: a ticker is read in any case (`aapl` is AAPL), and one
 * that is not listed, whatever its shape, is UNKNOWN_TICKER (404), as the API contract says.
 */
const TickerParams = Type.Object(
  { ticker: Type.String({ minLength: 1, maxLength: TICKER_INPUT_LENGTH_MAX, examples: ['AAPL'] }) },
  { additionalProperties: false },
);

/** The listed form of a ticker typed in any case; a malformed one stays as given (and is unknown). */
const tickerParam = (raw: string) => normalizeTicker(raw) ?? raw;

const toQuoteBody = (q: Quote & Touch) => ({
  ticker: q.ticker,
  price: formatPrice(q.price),
  bid: formatPrice(q.bid),
  ask: formatPrice(q.ask),
  bid_size: formatQty(q.bidSize),
  ask_size: formatQty(q.askSize),
  as_of: new Date(q.asOfMs).toISOString(),
});

export function registerMarketDataRoutes(server: Server, ctx: AppContext): void {
  const market = ctx.market;

  server.get(
    '/instruments',
    {
      schema: {
        tags: TAGS,
        summary: 'Tradable instruments',
        response: {
          200: Type.Object({
            instruments: Type.Array(
              Type.Object({
                ticker: Type.String(),
                name: Type.String(),
                reference_price: PriceString,
              }),
            ),
          }),
        },
      },
    },
    async () => ({
      instruments: (await market.listInstruments()).map((i) => ({
        ticker: i.ticker,
        name: i.name,
        reference_price: formatPrice(i.referencePrice),
      })),
    }),
  );

  server.get(
    '/prices',
    {
      schema: {
        tags: TAGS,
        summary: 'Latest cached price of every instrument that has one (as_of tells its age)',
        response: { 200: Type.Object({ prices: Type.Array(QuoteBody) }) },
      },
    },
    async () => ({ prices: (await market.getPrices()).map(toQuoteBody) }),
  );

  server.get(
    '/prices/:ticker',
    {
      schema: {
        tags: TAGS,
        summary: 'Latest price of a ticker; 503 PRICE_UNAVAILABLE when none is fresh',
        params: TickerParams,
        response: { 200: QuoteBody },
      },
    },
    async (request) => toQuoteBody(await market.getPrice(tickerParam(request.params.ticker))),
  );

  server.put(
    '/admin/prices/:ticker',
    {
      config: { auth: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'Set a price now (admin): published as a feed tick is (quote, tick log, bars); resting orders meet it',
        params: TickerParams,
        body: Type.Object(
          {
            price: PriceField('the last price'),
            bid: Type.Optional(PriceField('the best bid (with ask)')),
            ask: Type.Optional(PriceField('the best ask (with bid)')),
            bid_size: Type.Optional(SizeField('shares displayed at the bid')),
            ask_size: Type.Optional(SizeField('shares displayed at the ask')),
          },
          { additionalProperties: false },
        ),
        response: { 200: QuoteBody },
      },
    },
    async (request) => toQuoteBody(await market.setPrice(tickerParam(request.params.ticker), parsePrice(request.body.price), touchInput(request.body))),
  );

  server.get(
    '/prices/:ticker/bars',
    {
      schema: {
        tags: TAGS,
        summary: '1-minute OHLC bars, newest first',
        params: TickerParams,
        querystring: Type.Object(
          {
            interval: Type.Optional(Type.Literal('1m', { description: 'bar interval; only 1m for now' })),
            limit: Type.Optional(LimitQuery),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            bars: Type.Array(
              Type.Object({
                t: Timestamp,
                open: PriceString,
                high: PriceString,
                low: PriceString,
                close: PriceString,
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const limit = parseLimit(request.query.limit);
      const bars = await market.listBars(tickerParam(request.params.ticker), request.query.interval ?? '1m', limit);
      return {
        bars: bars.map((b) => ({
          t: new Date(b.bucketMs).toISOString(),
          open: formatPrice(b.open),
          high: formatPrice(b.high),
          low: formatPrice(b.low),
          close: formatPrice(b.close),
        })),
      };
    },
  );
}
