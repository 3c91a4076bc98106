/**
 * The trader's view: a user's key signed in. Watchlist, chart and order ticket on top; the
 * account, positions, open orders, history, activities, the equity curve and the market clock
 * around them. Everything is read from the public API, then kept current by the live stream:
 * prices update the cells they concern, and order or cash events re-fetch the snapshots they
 * affect (debounced and bounded, see refresh.ts). A stream that had to start over reloads all.
 */
import { cashFromDb } from '../../../src/core/money.js';
import './trader.css';
import { errorChain, query } from '../api.js';
import type { Unmount, ViewContext } from '../context.js';
import { field, h, replace, section } from '../dom.js';
import { fromFixedBig, money, price } from '../format.js';
import { LiveStream, type PriceTick, type StreamEvent } from '../stream.js';
import type { CandleChart, EquityChart } from './chart.js';
import { AccountSummary, Activities, ClockView } from './account.js';
import { OpenOrders, OrderHistory } from './orders.js';
import { Positions } from './positions.js';
import { Refresher } from './refresh.js';
import { Ticket } from './ticket.js';
import type { Account, ActivityPage, Bar, Clock, DashboardSettings, History, Instrument, Order, OrderPage, Portfolio, Quote } from './types.js';
import { describeOrder, ms } from './util.js';
import { Watchlist } from './watchlist.js';

type Key = 'settings' | 'instruments' | 'account' | 'portfolio' | 'open' | 'closed' | 'activities' | 'history' | 'clock';

/** How often the clock is read again (it also is at each open and close it announces). */
const CLOCK_REFRESH_MS = 30_000;
const BARS_LIMIT = 390;
const OPEN_ORDERS_LIMIT = 500;
const PAGE_LIMIT = 50;
const HISTORY_PERIODS = ['1D', '1W', '1M', '3M', '1A', 'all'] as const;
const SELECTED_KEY = 'papertrade.trader.ticker';

export function mountTrader(root: HTMLElement, ctx: ViewContext): Unmount {
  if (ctx.me.kind !== 'user') {
    replace(root, h('p', { class: 'error' }, 'The trader view needs a user’s API key.'));
    return () => undefined;
  }
  const { api } = ctx;
  const userId = ctx.me.user_id;
  const userPath = `/users/${encodeURIComponent(userId)}`;
  let disposed = false;

  // ---- state shared by the sections -------------------------------------------------------
  let settings: DashboardSettings | undefined;
  let instruments: Instrument[] = [];
  const quotes = new Map<string, Quote>();
  /** When each quote arrived here (local clock), to tell a snapshot from a newer tick. */
  const quoteArrived = new Map<string, number>();
  let selected: string | undefined;
  let historyPeriod: (typeof HISTORY_PERIODS)[number] = '1D';
  let history: History | undefined;

  // ---- sections ---------------------------------------------------------------------------
  const errors = new Map<Key | 'bars', HTMLElement>();
  const loadError = (key: Key | 'bars') => {
    const el = h('p', { class: 'error load-error' });
    errors.set(key, el);
    return el;
  };
  const setLoadError = (key: Key | 'bars', what: string, error: unknown) => {
    const el = errors.get(key);
    if (el) el.textContent = error === undefined ? '' : `Could not load ${what}: ${errorChain(error).join(' ← ')}`;
  };

  const account = new AccountSummary();
  const clock = new ClockView();
  const watchlist = new Watchlist((ticker) => select(ticker));
  const positions = new Positions((ticker, quantity) => {
    select(ticker);
    ticket.prefillSell(ticker, quantity);
  });
  const history$ = new OrderHistory(api);
  const activities = new Activities((id) => history$.byId(id) ?? openOrders.current.find((o) => o.id === id));
  const openOrders = new OpenOrders({
    api,
    quote: (t) => quotes.get(t),
    settings: () => settings,
    onChanged: () => refresher.schedule('open', 'closed', 'account', 'portfolio'),
    notify: ctx.notify,
  });
  const ticket = new Ticket({
    api,
    quote: (t) => quotes.get(t),
    settings: () => settings,
    account: () => account.current,
    position: (t) => positions.find(t),
    positionsLoaded: () => positions.isLoaded,
    onTickerChange: (t) => select(t),
    onPlaced: (order) => {
      ctx.notify(`Order placed: ${describeOrder(order)} (${order.status}).`);
      refresher.schedule('open', 'closed', 'account', 'portfolio');
    },
  });

  const chartTitle = h('p', { class: 'chart-title' }, 'Choose a ticker in the watchlist.');
  const chartBox = h('div', { class: 'chart', role: 'img', 'aria-label': 'Candlestick chart' });
  const chartEmpty = h('p', { class: 'muted chart-empty' }, 'Loading the chart…');
  const equityBox = h('div', { class: 'chart small', role: 'img', 'aria-label': 'Equity curve' });
  const equityNote = h('p', { class: 'muted' });
  const periodSelect = h('select', { name: 'history-period' }, ...HISTORY_PERIODS.map((p) => h('option', { value: p }, p)));
  periodSelect.value = historyPeriod;
  periodSelect.addEventListener('change', () => {
    historyPeriod = periodSelect.value as typeof historyPeriod;
    void refresher.now('history');
  });
  const attribution = () => h('p', { class: 'muted attribution' }, 'Charts by ', h('a', { href: 'https://www.tradingview.com/', rel: 'noopener noreferrer', target: '_blank' }, 'TradingView'));

  const place = (span: number, el: HTMLElement, extra = '') => {
    el.classList.add(`span-${span}`);
    if (extra) el.classList.add(...extra.split(' '));
    return el;
  };
  replace(
    root,
    h(
      'div',
      { class: 'trader grid' },
      place(8, section('Account', account.element, loadError('account'))),
      place(4, section('Market clock', clock.element, loadError('clock'))),
      place(3, section('Watchlist', loadError('instruments'), watchlist.element)),
      place(5, section('Chart', chartTitle, h('div', { class: 'chart-wrap' }, chartBox, chartEmpty), loadError('bars'), attribution())),
      place(4, section('Order ticket', loadError('settings'), ticket.element)),
      place(12, section('Positions', loadError('portfolio'), positions.element)),
      place(12, section('Open orders', loadError('open'), openOrders.element)),
      place(6, section('Equity curve', h('div', { class: 'row' }, field('Period', periodSelect)), h('div', { class: 'chart-wrap' }, equityBox), equityNote, loadError('history'), attribution())),
      place(6, section('Activities', loadError('activities'), activities.element)),
      place(12, section('Order history', loadError('closed'), history$.element)),
    ),
  );

  // ---- charts (their own chunk, loaded while the rest shows) ------------------------------
  let candles: CandleChart | undefined;
  let equity: EquityChart | undefined;
  const charts = import('./chart.js').then((m) => {
    if (disposed) return;
    candles = new m.CandleChart(chartBox);
    equity = new m.EquityChart(equityBox);
    if (selected) void loadBars(selected);
    renderEquity();
  });
  charts.catch((error: unknown) => {
    chartEmpty.textContent = `The chart could not be loaded: ${errorChain(error).join(' ← ')}`;
  });

  let barsRequest = 0;
  async function loadBars(ticker: string): Promise<void> {
    const mine = ++barsRequest;
    try {
      const { bars } = await api.get<{ bars: Bar[] }>(`/prices/${encodeURIComponent(ticker)}/bars${query({ limit: BARS_LIMIT })}`);
      if (disposed || mine !== barsRequest || !candles) return;
      candles.setBars(bars);
      // A tick that arrived while the bars were on their way is newer than them.
      const quote = quotes.get(ticker);
      if (quote) candles.tick(quote.price, quote.as_of);
      setLoadError('bars', '', undefined);
      updateChartText();
    } catch (error) {
      if (mine === barsRequest) setLoadError('bars', `the bars of ${ticker}`, error);
    }
  }

  function updateChartText(): void {
    if (!selected) return;
    const quote = quotes.get(selected);
    const name = instruments.find((i) => i.ticker === selected)?.name;
    replace(chartTitle, h('strong', {}, selected), name ? ` ${name}` : '', ' · 1-minute bars', quote ? ` · last ${price(quote.price)}` : '');
    chartBox.setAttribute('aria-label', `Candlestick chart of ${selected}, 1-minute bars${quote ? `, last price ${price(quote.price)}` : ''}`);
    chartEmpty.hidden = candles?.hasBars === true;
    if (!chartEmpty.hidden && candles) chartEmpty.textContent = `No bars for ${selected} yet: one forms with each minute that has a price.`;
  }

  function renderEquity(): void {
    if (!equity) return;
    const points: { time: number; equity: string }[] = [];
    if (history) history.timestamp.forEach((t, i) => points.push({ time: t, equity: history!.equity[i]! }));
    // The curve ends at the equity now (live), so it shows even before the first recording.
    const a = account.current;
    const nowSeconds = Math.floor(Date.now() / 1000);
    const liveEquity = a && positions.isLoaded ? fromFixedBig(cashFromDb(a.cash_balance) + positions.totalValue(), 2) : a?.equity;
    if (liveEquity !== undefined && (points.length === 0 || points.at(-1)!.time < nowSeconds)) points.push({ time: nowSeconds, equity: liveEquity });
    equity.setPoints(points);
    const recorded = history?.timestamp.length ?? 0;
    equityNote.textContent =
      recorded === 0
        ? `Nothing recorded in this period yet${liveEquity ? `; equity now ${money(liveEquity)}` : ''}. Equity is recorded about every minute when it changes.`
        : `${recorded} recorded point${recorded === 1 ? '' : 's'} (${history!.timeframe})${liveEquity ? `, ending at the equity now, ${money(liveEquity)}` : ''}; base ${money(history!.base_value)}.`;
  }

  // ---- loaders ----------------------------------------------------------------------------
  const load = <T>(key: Key, what: string, path: string, apply: (body: T, startedAt: number) => void) => async () => {
    const startedAt = Date.now();
    try {
      const body = await api.get<T>(path);
      if (disposed) return;
      apply(body, startedAt);
      setLoadError(key, what, undefined);
    } catch (error) {
      if (!disposed) setLoadError(key, what, error);
      throw error;
    }
  };

  const refresher = new Refresher<Key>({
    settings: load<DashboardSettings>('settings', 'the order settings', '/dashboard/settings', (body) => {
      settings = body;
      ticket.update();
    }),
    instruments: async () => {
      const startedAt = Date.now();
      try {
        const [list, prices] = await Promise.all([api.get<{ instruments: Instrument[] }>('/instruments'), api.get<{ prices: Quote[] }>('/prices')]);
        if (disposed) return;
        instruments = list.instruments;
        for (const quote of prices.prices) acceptQuote(quote, startedAt, false);
        watchlist.setInstruments(instruments, quotes);
        ticket.setInstruments(instruments);
        stream.setTickers(instruments.map((i) => i.ticker));
        const remembered = rememberedTicker();
        const initial = selected ?? (instruments.some((i) => i.ticker === remembered) ? remembered : instruments[0]?.ticker);
        if (initial) select(initial, true);
        setLoadError('instruments', '', undefined);
      } catch (error) {
        if (!disposed) setLoadError('instruments', 'the instruments', error);
        throw error;
      }
    },
    account: load<Account>('account', 'the account', `${userPath}/account`, (body) => {
      account.set(body);
      ticket.update();
      renderEquity();
    }),
    portfolio: load<Portfolio>('portfolio', 'the positions', `${userPath}/portfolio`, (body, startedAt) => {
      positions.set(body.positions);
      // Ticks that arrived after the request left are newer than the snapshot's prices.
      for (const p of body.positions) {
        const quote = quotes.get(p.ticker);
        if (quote && (quoteArrived.get(p.ticker) ?? 0) > startedAt) positions.tick(p.ticker, quote.price);
      }
      account.setPositionsValue(positions.totalValue());
      ticket.update();
      renderEquity();
    }),
    open: load<OrderPage>('open', 'the open orders', `/orders${query({ status: 'open', limit: OPEN_ORDERS_LIMIT })}`, (body) => openOrders.set(body.orders)),
    closed: load<OrderPage>('closed', 'the order history', `/orders${query({ status: 'closed', limit: PAGE_LIMIT })}`, (body) => history$.setFirstPage(body)),
    activities: load<ActivityPage>('activities', 'the activities', `${userPath}/activities${query({ limit: PAGE_LIMIT })}`, (body) => activities.set(body.activities)),
    history: async () => {
      // The period can change while a request is out; the path is read when it leaves.
      await load<History>('history', 'the equity history', `${userPath}/portfolio/history${query({ period: historyPeriod })}`, (body) => {
        history = body;
        account.setBase(body.base_value);
        renderEquity();
      })();
    },
    clock: load<Clock>('clock', 'the market clock', '/clock', (body) => {
      clock.set(body);
      scheduleSessionEdge(body);
    }),
  });

  // ---- selection --------------------------------------------------------------------------
  function rememberedTicker(): string | undefined {
    try {
      return sessionStorage.getItem(SELECTED_KEY) ?? undefined;
    } catch {
      return undefined;
    }
  }

  function select(ticker: string, force = false): void {
    if (ticker === selected && !force) return;
    const changed = ticker !== selected;
    selected = ticker;
    try {
      sessionStorage.setItem(SELECTED_KEY, ticker);
    } catch {
      // Storage refused (private mode, quota): the selection just is not remembered.
    }
    watchlist.setSelected(ticker);
    ticket.setTicker(ticker);
    if (changed || !candles?.hasBars) {
      updateChartText();
      if (candles) void loadBars(ticker);
    }
  }

  // ---- live -------------------------------------------------------------------------------
  /** Takes a quote unless an older one than what is shown (a snapshot racing the stream). */
  function acceptQuote(quote: Quote, arrivedAt: number, live: boolean): boolean {
    const known = quotes.get(quote.ticker);
    if (known && ms(known.as_of) > ms(quote.as_of)) return false;
    quotes.set(quote.ticker, quote);
    quoteArrived.set(quote.ticker, live ? arrivedAt : Math.min(arrivedAt, quoteArrived.get(quote.ticker) ?? arrivedAt));
    return true;
  }

  function onPrice(tick: PriceTick): void {
    if (disposed || !acceptQuote(tick, Date.now(), true)) return;
    watchlist.setQuote(tick);
    if (tick.ticker === selected) {
      candles?.tick(tick.price, tick.as_of);
      updateChartText();
      ticket.update();
    }
    if (positions.tick(tick.ticker, tick.price)) {
      account.setPositionsValue(positions.totalValue());
    }
    openOrders.tick(tick.ticker);
  }

  function onEvent(event: StreamEvent): void {
    if (disposed) return;
    const data = event.data as Partial<Order> & { fill?: { price: string; quantity: string } };
    if (event.type.startsWith('order.')) {
      const keys: Key[] = ['open', 'closed', 'account', 'portfolio'];
      if (event.type === 'order.fill') keys.push('activities', 'history');
      // A session ended or began: day orders expire at the close, opg and cls orders execute.
      if (event.type === 'order.expired' || data.cancel_reason === 'NOT_FILLED_AT_SESSION' || data.cancel_reason === 'MARKET_CLOSED') keys.push('clock');
      refresher.schedule(...keys);
      const order = data as Order;
      if (event.type === 'order.fill' && data.fill && order.ticker) ctx.notify(`Filled: ${describeOrder(order)} at ${price(data.fill.price)}.`);
      if (event.type === 'order.rejected' && order.ticker) ctx.notify(`Rejected: ${describeOrder(order)} (${order.reject_reason ?? 'no reason given'}).`, 'error');
    } else if (event.type.startsWith('cash.')) {
      refresher.schedule('account', 'activities', 'history');
    } else {
      // account.reset, and anything newer than this page: reload everything.
      refresher.schedule(...refresher.all);
    }
  }

  const stream = new LiveStream(
    ctx.token,
    {
      onEvent,
      onPrice,
      onStatus: (status, detail) => ctx.setConnection(status, detail),
      onResync: () => {
        refresher.schedule(...refresher.all);
        if (selected && candles) void loadBars(selected);
      },
    },
    undefined,
    true,
  );

  // ---- the clock's timers -----------------------------------------------------------------
  let edgeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Reads the clock (and what a session change touches) just after the next open or close. */
  function scheduleSessionEdge(c: Clock): void {
    clearTimeout(edgeTimer);
    const next = Math.min(ms(c.next_open), ms(c.next_close)) - Date.now();
    // Beyond the periodic refresh the periodic one will get there first; a timer that far
    // would only be replaced.
    if (!Number.isFinite(next) || next > CLOCK_REFRESH_MS * 2) return;
    edgeTimer = setTimeout(() => refresher.schedule('clock', 'open', 'closed', 'account'), Math.max(0, next) + 1_000);
  }
  const clockTimer = setInterval(() => {
    clock.render();
    refresher.schedule('clock');
  }, CLOCK_REFRESH_MS);

  stream.start();
  void refresher.now(...refresher.all);

  return () => {
    disposed = true;
    clearInterval(clockTimer);
    clearTimeout(edgeTimer);
    refresher.dispose();
    stream.close();
    candles?.dispose();
    equity?.dispose();
    candles = undefined;
    equity = undefined;
  };
}
