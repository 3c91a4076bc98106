/**
 * The trader's two charts, drawn with TradingView's lightweight-charts: 1-minute candles of the
 * selected ticker (the live tick updating the last bar or opening the next one) and the equity
 * curve. This module is loaded on demand (`import('./chart.js')`), so the chart library is its
 * own chunk and the rest of the view shows while it arrives.
 *
 * The chart library draws on a canvas and takes coordinates as JavaScript numbers, so this is
 * the one place where prices and amounts become numbers: only to be drawn, never to be added,
 * compared or shown as text. The bar being built from ticks is kept in bigint, so its high and
 * low are exact, and only converted at the hand-over.
 */
import {
  AreaSeries,
  CandlestickSeries,
  ColorType,
  createChart,
  type CandlestickData,
  type DeepPartial,
  type ChartOptions,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from 'lightweight-charts';
import { toFixedBig, fromFixedBig } from '../format.js';
import type { Bar } from './types.js';

const PRICE_SCALE = 4;
const BAR_SECONDS = 60;
const VISIBLE_BARS = 60;

/** The colours of the page's stylesheet (light or dark, as the OS says), for the canvas. */
function palette(): { fg: string; muted: string; line: string; up: string; down: string; accent: string } {
  const css = getComputedStyle(document.documentElement);
  const get = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  return {
    fg: get('--fg', '#1b1f24'),
    muted: get('--muted', '#5b6573'),
    line: get('--line', '#d9dee5'),
    up: get('--up', '#0a7d38'),
    down: get('--down', '#c62828'),
    accent: get('--accent', '#1f6feb'),
  };
}

const localTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const localDay = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const localFull = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** The chart library works in UTC seconds; people read local time. */
function baseOptions(): DeepPartial<ChartOptions> {
  const c = palette();
  return {
    autoSize: true,
    layout: {
      background: { type: ColorType.Solid, color: 'transparent' },
      textColor: c.muted,
      fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      // The library's logo comes with an inline <style> element, which the page's content
      // security policy refuses; the attribution is a plain link under each chart instead.
      attributionLogo: false,
    },
    grid: { vertLines: { color: c.line }, horzLines: { color: c.line } },
    rightPriceScale: { borderColor: c.line },
    timeScale: {
      borderColor: c.line,
      timeVisible: true,
      secondsVisible: false,
      tickMarkFormatter: (time: unknown, type: number) => {
        const date = new Date(Number(time) * 1000);
        // TickMarkType 0–2 are year, month and day marks; 3–4 are times of day.
        return type <= 2 ? localDay.format(date) : localTime.format(date);
      },
    },
    localization: { timeFormatter: (time: unknown) => localFull.format(new Date(Number(time) * 1000)) },
  };
}

/** A decimal string as a chart coordinate (drawing only; see the module comment). */
const coordinate = (value: string): number => Number(value);

interface LiveBar {
  time: number;
  open: bigint;
  high: bigint;
  low: bigint;
  close: bigint;
}

function toCandle(bar: LiveBar): CandlestickData<UTCTimestamp> {
  const draw = (v: bigint) => coordinate(fromFixedBig(v, PRICE_SCALE));
  return { time: bar.time as UTCTimestamp, open: draw(bar.open), high: draw(bar.high), low: draw(bar.low), close: draw(bar.close) };
}

export class CandleChart {
  private readonly chart: IChartApi;
  private readonly series: ISeriesApi<'Candlestick'>;
  private last: LiveBar | undefined;

  constructor(container: HTMLElement) {
    const c = palette();
    this.chart = createChart(container, baseOptions());
    this.series = this.chart.addSeries(CandlestickSeries, {
      upColor: c.up,
      downColor: c.down,
      borderUpColor: c.up,
      borderDownColor: c.down,
      wickUpColor: c.up,
      wickDownColor: c.down,
      priceFormat: { type: 'price', precision: 2, minMove: 0.0001 },
    });
  }

  /** The bars as GET /prices/{ticker}/bars answers them (newest first). */
  setBars(bars: readonly Bar[]): void {
    const seen = new Set<number>();
    const rows: LiveBar[] = [];
    for (const bar of [...bars].reverse()) {
      const time = Math.floor(Date.parse(bar.t) / 1000);
      if (!Number.isFinite(time) || seen.has(time)) continue;
      seen.add(time);
      const p = (v: string) => toFixedBig(v, PRICE_SCALE);
      rows.push({ time, open: p(bar.open), high: p(bar.high), low: p(bar.low), close: p(bar.close) });
    }
    rows.sort((a, b) => a.time - b.time);
    this.series.setData(rows.map(toCandle));
    this.last = rows.at(-1);
    // The last hour, newest at the right: a few bars keep a readable width instead of being
    // stretched across the whole chart; older ones are a scroll away.
    const n = rows.length;
    if (n > 0) this.chart.timeScale().setVisibleLogicalRange({ from: n - VISIBLE_BARS, to: n + 2 });
  }

  /**
   * A live tick: it updates the last bar when it falls in its minute, opens a new bar when it
   * falls in a later one, and is ignored when older (the library refuses to go back in time).
   */
  tick(price: string, asOf: string): void {
    const ms = Date.parse(asOf);
    if (!Number.isFinite(ms)) return;
    const time = Math.floor(ms / 1000 / BAR_SECONDS) * BAR_SECONDS;
    const value = toFixedBig(price, PRICE_SCALE);
    const last = this.last;
    if (last && time < last.time) return;
    if (last && time === last.time) {
      if (value > last.high) last.high = value;
      if (value < last.low) last.low = value;
      last.close = value;
    } else {
      this.last = { time, open: value, high: value, low: value, close: value };
    }
    this.series.update(toCandle(this.last!));
  }

  get hasBars(): boolean {
    return this.last !== undefined;
  }

  dispose(): void {
    this.chart.remove();
  }
}

export class EquityChart {
  private readonly chart: IChartApi;
  private readonly series: ISeriesApi<'Area'>;

  constructor(container: HTMLElement) {
    const c = palette();
    this.chart = createChart(container, baseOptions());
    this.series = this.chart.addSeries(AreaSeries, {
      lineColor: c.accent,
      topColor: `${c.accent}55`,
      bottomColor: `${c.accent}05`,
      lineWidth: 2,
      priceFormat: { type: 'price', precision: 2, minMove: 0.01 },
    });
  }

  /** Points as epoch seconds and cash strings, strictly ascending in time. */
  setPoints(points: readonly { time: number; equity: string }[]): void {
    this.series.setData(points.map((p) => ({ time: p.time as UTCTimestamp, value: coordinate(p.equity) })));
    this.chart.timeScale().fitContent();
  }

  dispose(): void {
    this.chart.remove();
  }
}
