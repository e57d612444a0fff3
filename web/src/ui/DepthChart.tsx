import { useSignalEffect } from '@preact/signals';
import { AreaSeries, ColorType, createOptionsChart, type IChartApiBase, type ISeriesApi, LineType } from 'lightweight-charts';
import { useEffect, useRef } from 'preact/hooks';
import { decimalsOf } from '../decimal';
import { sampleDepth } from '../depth';
import type { Terminal } from '../terminal';
import { chartColors, theme } from '../theme';

const REDRAW_MS = 200;
const LEVELS = 60;

/**
 * Cumulative depth: lightweight-charts' price-axis chart (`createOptionsChart`) with two
 * stepped areas. Redrawn at most five times a second (a chart redraw is far costlier than the
 * ladder's text, and the eye cannot follow faster).
 */
export function DepthChart({ t }: { t: Terminal }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApiBase<number> | null>(null);
  const bids = useRef<ISeriesApi<'Area', number> | null>(null);
  const asks = useRef<ISeriesApi<'Area', number> | null>(null);
  const inst = t.instrument.value;

  useEffect(() => {
    const c = createOptionsChart(box.current!, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: 'transparent' }, fontSize: 11, attributionLogo: false },
      handleScroll: false,
      handleScale: false,
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0 } },
      crosshair: { mode: 0 },
    });
    const common = { lineType: LineType.WithSteps, lineWidth: 2 as const, lastValueVisible: false, priceLineVisible: false };
    bids.current = c.addSeries(AreaSeries, common);
    asks.current = c.addSeries(AreaSeries, common);
    chart.current = c;
    return () => {
      c.remove();
      chart.current = null;
    };
  }, []);

  useSignalEffect(() => {
    void theme.value;
    const c = chart.current;
    if (!c) return;
    const k = chartColors();
    c.applyOptions({
      // The panel's colour, like the candle chart.
      layout: { textColor: k.text, background: { type: ColorType.Solid, color: k.background } },
      grid: { vertLines: { color: k.grid }, horzLines: { color: k.grid } },
      rightPriceScale: { borderColor: k.border },
      timeScale: { borderColor: k.border },
    });
    bids.current?.applyOptions({ lineColor: k.up, topColor: k.upFill, bottomColor: k.upFill });
    asks.current?.applyOptions({ lineColor: k.down, topColor: k.downFill, bottomColor: k.downFill });
  });

  useEffect(() => {
    if (!inst) return;
    const precision = decimalsOf(inst.tick_size);
    // The horizontal (price) axis' decimals: PriceChartOptions, which applyOptions' type does not carry.
    chart.current?.applyOptions({ localization: { precision } } as unknown as Parameters<IChartApiBase<number>['applyOptions']>[0]);
    let last = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let drawnVersion = -1;
    const draw = () => {
      timer = null;
      last = performance.now();
      const book = t.book;
      if (!book || !book.ready) {
        bids.current?.setData([]);
        asks.current?.setData([]);
        drawnVersion = -1;
        return;
      }
      if (book.version === drawnVersion) return;
      drawnVersion = book.version;
      const levels = book.depthSeries(LEVELS);
      const d = sampleDepth(levels.bids, levels.asks);
      bids.current?.setData(d.bids.map(([p, v]) => ({ time: p, value: v })));
      asks.current?.setData(d.asks.map(([p, v]) => ({ time: p, value: v })));
      chart.current?.timeScale().fitContent();
    };
    const schedule = () => {
      if (timer) return;
      const wait = Math.max(0, REDRAW_MS - (performance.now() - last));
      timer = setTimeout(draw, wait);
    };
    const off = t.onBook(schedule);
    schedule();
    return () => {
      off();
      if (timer) clearTimeout(timer);
    };
  }, [inst?.symbol]);

  return (
    <section class="panel depth" aria-labelledby="depth-title">
      <header class="panel-head">
        <h2 id="depth-title">Depth</h2>
      </header>
      <div class="chart-box" ref={box} role="img" aria-label="Cumulative depth: bids left, asks right" />
    </section>
  );
}
