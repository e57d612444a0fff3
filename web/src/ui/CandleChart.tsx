import { useSignalEffect } from '@preact/signals';
import {
  CandlestickSeries,
  ColorType,
  createChart,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from 'lightweight-charts';
import { useEffect, useRef, useState } from 'preact/hooks';
import { decimalsOf, display, toNumber } from '../decimal';
import type { Interval, Terminal } from '../terminal';
import { chartColors, theme } from '../theme';
import type { Candle, Instrument } from '../types';

const INTERVALS: Interval[] = ['1m', '5m', '1h'];

/** Candles with volume (TradingView lightweight-charts); numbers only for drawing. */
export function CandleChart({ t }: { t: Terminal }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const candles = useRef<ISeriesApi<'Candlestick'> | null>(null);
  const volume = useRef<ISeriesApi<'Histogram'> | null>(null);
  const [last, setLast] = useState<Candle | null>(null);
  const [count, setCount] = useState(0);
  const inst = t.instrument.value;
  const interval = t.interval.value;

  useEffect(() => {
    const c = createChart(box.current!, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: 'transparent' }, attributionLogo: true, fontSize: 11 },
      timeScale: { timeVisible: true, secondsVisible: false, rightOffset: 4 },
      rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.28 } },
      crosshair: { mode: 0 },
    });
    candles.current = c.addSeries(CandlestickSeries, {});
    volume.current = c.addSeries(HistogramSeries, { priceFormat: { type: 'volume' }, priceScaleId: 'volume', lastValueVisible: false, priceLineVisible: false });
    c.priceScale('volume').applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
    chart.current = c;
    return () => {
      c.remove();
      chart.current = null;
    };
  }, []);

  // Colours follow the theme.
  useSignalEffect(() => {
    void theme.value;
    const c = chart.current;
    if (!c) return;
    const k = chartColors();
    c.applyOptions({
      // A solid background (not transparent): the TradingView attribution picks its colour from it.
      layout: { textColor: k.text, background: { type: ColorType.Solid, color: k.background } },
      grid: { vertLines: { color: k.grid }, horzLines: { color: k.grid } },
      rightPriceScale: { borderColor: k.border },
      timeScale: { borderColor: k.border },
    });
    candles.current?.applyOptions({
      upColor: k.up, downColor: k.down, borderUpColor: k.up, borderDownColor: k.down, wickUpColor: k.up, wickDownColor: k.down,
    });
  });

  // Load history for the market and interval, then follow the live candle.
  useEffect(() => {
    if (!inst) return;
    let cancelled = false;
    const precision = decimalsOf(inst.tick_size);
    candles.current?.applyOptions({ priceFormat: { type: 'price', precision, minMove: toNumber(inst.tick_size) } });
    // Axis labels grouped like the rest of the screen (drawing only).
    const grouped = new Intl.NumberFormat('en-US', { minimumFractionDigits: precision, maximumFractionDigits: precision });
    chart.current?.applyOptions({ localization: { priceFormatter: (p: number) => grouped.format(p) } });
    const k = chartColors();
    const bar = (c: Candle) => ({
      time: c.start as UTCTimestamp,
      open: toNumber(c.open), high: toNumber(c.high), low: toNumber(c.low), close: toNumber(c.close),
    });
    const vol = (c: Candle) => ({
      time: c.start as UTCTimestamp, value: toNumber(c.volume),
      color: toNumber(c.close) >= toNumber(c.open) ? k.volumeUp : k.volumeDown,
    });
    const buffered: Candle[] = [];
    let loaded = false;
    let newest = 0;
    const apply = (c: Candle) => {
      if (c.start < newest) return;
      newest = c.start;
      candles.current?.update(bar(c));
      volume.current?.update(vol(c));
      setLast(c);
    };
    const offCandle = t.onCandle((symbol, iv, c) => {
      if (symbol !== inst.symbol || iv !== interval) return;
      if (loaded) apply(c);
      else buffered.push(c);
    });
    const load = () => {
      loaded = false;
      t.loadCandles(inst.symbol, interval).then((list) => {
        if (cancelled) return;
        candles.current?.setData(list.map(bar));
        volume.current?.setData(list.map(vol));
        newest = list.length ? list[list.length - 1].start : 0;
        setLast(list.length ? list[list.length - 1] : null);
        setCount(list.length);
        loaded = true;
        for (const c of buffered.splice(0)) apply(c);
      }).catch(() => {
        loaded = true;
      });
    };
    load();
    const offReset = t.onReset(load);
    return () => {
      cancelled = true;
      offCandle();
      offReset();
    };
  }, [inst?.symbol, interval]);

  return (
    <section class="panel chart" aria-labelledby="chart-title">
      <header class="panel-head">
        <h2 id="chart-title">Chart</h2>
        <div class="seg" role="group" aria-label="Candle interval">
          {INTERVALS.map((iv) => (
            <button type="button" aria-pressed={iv === interval} onClick={() => t.setInterval(iv)}>{iv}</button>
          ))}
        </div>
        <CandleLegend candle={last} inst={inst} />
      </header>
      <div class="chart-box" ref={box} data-candles={count} />
    </section>
  );
}

function CandleLegend({ candle, inst }: { candle: Candle | null; inst: Instrument | null }) {
  if (!candle || !inst) return <p class="legend muted" data-testid="candle-legend">No trades yet</p>;
  const p = (s: string) => display(s, inst.tick_size);
  return (
    <p class="legend num" data-testid="candle-legend" data-start={candle.start}>
      <span>O <b>{p(candle.open)}</b></span> <span>H <b>{p(candle.high)}</b></span>{' '}
      <span>L <b>{p(candle.low)}</b></span> <span>C <b>{p(candle.close)}</b></span>{' '}
      <span>V <b data-testid="candle-volume">{display(candle.volume, inst.lot_size)}</b></span>
    </p>
  );
}
