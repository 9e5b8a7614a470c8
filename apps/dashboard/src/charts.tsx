import { useEffect, useEffectEvent, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Counts: integer tick steps only. */
const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000];

export interface Series {
  label: string;
  color: string;
}

/** A value between two gaps draws no line: mark it with a point so it does not vanish. */
function isolatedPoints(u: uPlot, seriesIdx: number): number[] | null {
  const ys = u.data[seriesIdx] as (number | null | undefined)[];
  const isolated: number[] = [];
  for (let i = 0; i < ys.length; i += 1) {
    if (ys[i] == null) continue;
    if ((i === 0 || ys[i - 1] == null) && (i === ys.length - 1 || ys[i + 1] == null)) isolated.push(i);
  }
  return isolated.length > 0 ? isolated : null;
}

function widthOf(box: HTMLDivElement): number {
  return Math.max(200, Math.floor(box.clientWidth));
}

/** A small live line chart (uPlot). `x` is seconds since the epoch. */
export function TimeChart(props: {
  title: string;
  x: number[];
  /** null: no data for that moment (a gap in the line, not a line across it). */
  ys: (number | null)[][];
  series: Series[];
  height?: number;
}): React.JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const { x, ys, series, height = 160, title } = props;

  // the chart is rebuilt only when its shape changes (with the data and labels of that moment);
  // data flows in below
  const createPlot = useEffectEvent(
    (el: HTMLDivElement): uPlot =>
      new uPlot(
        {
          width: widthOf(el),
          height,
          legend: { show: true, live: false },
          cursor: { drag: { x: false, y: false } },
          scales: {
            y: { range: (_u, min, max) => [0, Math.max(1, max * 1.15, min)] },
          },
          axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor', size: 48, incrs: COUNT_INCRS }],
          series: [
            {},
            ...series.map((s) => ({
              label: s.label,
              stroke: s.color,
              width: 2,
              fill: `${s.color}22`,
              points: { filter: isolatedPoints },
            })),
          ],
        },
        [x, ...ys] as uPlot.AlignedData,
        el,
      ),
  );
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const u = createPlot(el);
    plot.current = u;
    const observer = new ResizeObserver(() => u.setSize({ width: widthOf(el), height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [series.length, height]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData([x, ...ys] as uPlot.AlignedData);
    // a single point would otherwise stretch the time axis over years: show at least a minute
    const last = x[x.length - 1];
    if (last !== undefined && x.length < 2) u.setScale('x', { min: last - 60, max: last + 1 });
  }, [x, ys]);

  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title} chart`} />
    </figure>
  );
}

/** A bar chart (uPlot's bars path) of counts by label. */
export function BarChart(props: {
  title: string;
  data: { label: string; count: number }[];
  color?: string;
}): React.JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const { data, title, color = '#6366f1' } = props;
  const key = JSON.stringify(data);

  // drawn again only when the data's content changes (the key), not its identity
  const draw = useEffectEvent((el: HTMLDivElement): (() => void) | undefined => {
    if (data.length === 0) return undefined;
    const labels = data.map((d) => d.label);
    const bars = uPlot.paths.bars?.({ size: [0.6, 80] });
    const opts: uPlot.Options = {
      width: widthOf(el),
      height: 180,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: false, range: [-0.5, data.length - 0.5] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.2)] },
      },
      axes: [
        {
          stroke: 'currentColor',
          splits: () => labels.map((_l, i) => i),
          values: () => labels.map((l) => (l.length > 14 ? `${l.slice(0, 13)}…` : l)),
          gap: 4,
        },
        { stroke: 'currentColor', size: 48, incrs: COUNT_INCRS },
      ],
      series: [
        {},
        { label: 'count', stroke: color, fill: `${color}cc`, paths: bars, points: { show: false } },
      ],
    };
    const u = new uPlot(opts, [labels.map((_l, i) => i), data.map((d) => d.count)], el);
    const observer = new ResizeObserver(() => u.setSize({ width: widthOf(el), height: 180 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      u.destroy();
    };
  });
  useEffect(() => {
    const el = box.current;
    return el ? draw(el) : undefined;
  }, [key]);

  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      {data.length === 0 ? (
        <p className="empty">No online providers.</p>
      ) : (
        <>
          <div
            ref={box}
            role="img"
            aria-label={`${title}: ${data.map((d) => `${d.label} ${d.count}`).join(', ')}`}
          />
        </>
      )}
    </figure>
  );
}

/** A step line of a 0..1 score over time (uPlot), e.g. a provider's reputation history. */
export function ScoreChart(props: {
  title: string;
  /** Seconds since the epoch, ascending. */
  x: number[];
  y: number[];
  color?: string;
  height?: number;
}): React.JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const { x, y, title, color = '#0ea5e9', height = 160 } = props;
  const key = `${x.join(',')}|${y.join(',')}`;

  // drawn again only when the data's content changes (the key), not its identity
  const draw = useEffectEvent((el: HTMLDivElement): (() => void) | undefined => {
    if (x.length === 0) return undefined;
    const opts: uPlot.Options = {
      width: widthOf(el),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        y: { range: [0, 1] },
        // one point (or several at one instant) still gets a visible time span
        x: { range: (_u, min, max) => (max - min < 60 ? [min - 30, max + 30] : [min, max]) },
      },
      axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor', size: 40, incrs: [0.25, 0.5] }],
      series: [
        {},
        {
          label: 'score',
          stroke: color,
          width: 2,
          fill: `${color}22`,
          paths: uPlot.paths.stepped?.({ align: 1 }),
          points: { show: true, size: 5 },
        },
      ],
    };
    const u = new uPlot(opts, [x, y], el);
    const observer = new ResizeObserver(() => u.setSize({ width: widthOf(el), height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      u.destroy();
    };
  });
  useEffect(() => {
    const el = box.current;
    return el ? draw(el) : undefined;
  }, [key, height]);

  const last = y[y.length - 1];
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      {x.length === 0 ? (
        <p className="empty">No reputation events yet.</p>
      ) : (
        <div
          ref={box}
          role="img"
          aria-label={`${title}: ${y.length} events, from ${y[0].toFixed(2)} to ${last.toFixed(2)}`}
        />
      )}
    </figure>
  );
}
