import { useMemo, useState } from 'react';
import type { HistoryDto, OverviewDto } from '@gpumesh/sdk/types';
import { get, type HistoryRange } from '../api';
import { BarChart, TimeChart } from '../charts';
import { ErrorBox, Loading, Stat } from '../components';
import { percent, seconds, tokens } from '../format';
import { useEventStream, useLoad } from '../hooks';

const HISTORY = 90; // points of live history (~3 minutes at one every 2 s)
/** Stored history is refreshed this often (a row is written per minute). */
const STORED_HISTORY_POLL_MS = 60_000;

const RANGES: { key: HistoryRange; label: string; bucket: string }[] = [
  { key: '30m', label: '30 min', bucket: 'minute' },
  { key: '24h', label: '24 h', bucket: '5 minutes' },
  { key: '7d', label: '7 days', bucket: 'hour' },
];

interface Point {
  t: number;
  providers: number;
  queue: number;
  active: number;
  jpm: number;
}

/** Stable empty data while the stored history loads (a new array each render would redraw). */
const NO_X: number[] = [];
const NO_SERIES: (number | null)[][] = [[], [], []];

/**
 * The stored history as chart series over every bucket of its range: a bucket without a stored row
 * (the coordinator was down) is null, so the chart shows a gap instead of a line across it.
 */
function bucketSeries(h: HistoryDto): {
  x: number[];
  gauges: (number | null)[][];
  jobs: (number | null)[][];
} {
  const step = h.bucketSeconds;
  const byAt = new Map(h.points.map((p) => [new Date(p.at).getTime() / 1000, p]));
  const first = Math.floor(new Date(h.since).getTime() / 1000 / step) * step;
  const last = Math.floor(Date.now() / 1000 / step) * step;
  const x: number[] = [];
  for (let t = first; t <= last; t += step) x.push(t);
  // provider figures are null in minutes rebuilt from the stored jobs (they were not recorded): a gap too
  const of = (pick: (p: HistoryDto['points'][number]) => number | null): (number | null)[] =>
    x.map((t) => {
      const p = byAt.get(t);
      return p ? pick(p) : null;
    });
  return {
    x,
    gauges: [of((p) => p.providersOnline), of((p) => p.queueDepth), of((p) => p.activeJobs)],
    jobs: [of((p) => p.submitted), of((p) => p.completed), of((p) => p.failed)],
  };
}

export function OverviewPage(): React.JSX.Element {
  const initial = useLoad(() => get<OverviewDto>('/v1/admin/overview'), []);
  const [live, setLive] = useState<OverviewDto | null>(null);
  const [history, setHistory] = useState<Point[]>([]);
  const status = useEventStream('/v1/admin/stream', {
    stats: (data) => {
      const o = data as OverviewDto;
      setLive(o);
      setHistory((h) =>
        [
          ...h,
          {
            t: new Date(o.at).getTime() / 1000,
            providers: o.providersOnline,
            queue: o.queueDepth,
            active: o.activeJobs,
            jpm: o.jobsPerMinute,
          },
        ].slice(-HISTORY),
      );
    },
  });
  const o = live ?? initial.data ?? null;
  const [range, setRange] = useState<HistoryRange>('30m');
  const stored = useLoad(
    () => (range === '30m' ? Promise.resolve(null) : get<HistoryDto>(`/v1/admin/history?range=${range}`)),
    [range],
    STORED_HISTORY_POLL_MS,
  );
  const storedChart = useMemo(() => (stored.data ? bucketSeries(stored.data) : null), [stored.data]);
  const rangeInfo = RANGES.find((r) => r.key === range) ?? RANGES[0];

  const liveChart = useMemo(
    () => ({
      x: history.map((p) => p.t),
      ys: [history.map((p) => p.providers), history.map((p) => p.queue), history.map((p) => p.active)],
    }),
    [history],
  );
  const minuteChart = useMemo(() => {
    const s = o?.jobsPerMinuteSeries ?? [];
    return {
      x: s.map((p) => new Date(p.minute).getTime() / 1000),
      ys: [s.map((p) => p.submitted), s.map((p) => p.completed)],
    };
  }, [o?.jobsPerMinuteSeries]);

  return (
    <section aria-labelledby="overview-title">
      <div className="page-head">
        <h1 id="overview-title">Overview</h1>
        <span className={`live live-${status}`} role="status" aria-live="polite">
          {status === 'live'
            ? 'live'
            : status === 'connecting'
              ? 'connecting…'
              : status === 'ended'
                ? 'not live'
                : 'reconnecting…'}
        </span>
      </div>
      {!o && initial.status === 'error' && <ErrorBox error={initial.error} retry={initial.reload} />}
      {!o && initial.status !== 'error' && <Loading what="marketplace figures" />}
      {o && (
        <>
          <div className="stats" data-testid="stats">
            <Stat
              label="providers online"
              value={<span data-testid="providers-online">{o.providersOnline}</span>}
            />
            <Stat label="free / total slots" value={`${o.freeSlots} / ${o.slots}`} />
            <Stat label="jobs per minute" value={o.jobsPerMinute} />
            <Stat label="queue depth" value={o.queueDepth} hint="jobs waiting for a provider" />
            <Stat label="running" value={o.activeJobs} hint="dispatched, running or verifying" />
            <Stat
              label="success rate (1 h)"
              value={percent(o.successRate)}
              hint={`${o.finished} finished jobs`}
            />
            <Stat label="verification failures (1 h)" value={percent(o.verificationFailureRate)} />
            <Stat
              label="latency p50 / p99"
              value={`${seconds(o.latencyP50Seconds)} / ${seconds(o.latencyP99Seconds)}`}
            />
            <Stat
              label={
                o.epoch === null || o.epoch === undefined
                  ? 'earnings (all time)'
                  : `earnings, epoch ${o.epoch}`
              }
              value={tokens(o.earningsThisEpoch)}
            />
            <Stat
              label={
                o.epoch === null || o.epoch === undefined
                  ? 'platform fees charged (all time)'
                  : `platform fees charged, epoch ${o.epoch}`
              }
              value={<span data-testid="fees-charged">{tokens(o.feesChargedThisEpoch)}</span>}
              hint="the fee taken on provider payments, including fees held until their credits vest"
            />
            <Stat
              label="of which funds canaries"
              value={<span data-testid="canary-share">{tokens(o.canaryShareThisEpoch)}</span>}
              hint="the canary share of the completed jobs' fees: it pays the known-answer jobs that check providers"
            />
          </div>
          <div className="page-head history-head">
            <h2 id="history-title">History</h2>
            <div className="range" role="group" aria-label="History range">
              {RANGES.map((r) => (
                <button
                  key={r.key}
                  type="button"
                  className="secondary"
                  aria-pressed={range === r.key}
                  onClick={() => setRange(r.key)}
                >
                  {r.label}
                </button>
              ))}
            </div>
            {range !== '30m' && stored.status === 'loading' && <Loading what="history" />}
            {range !== '30m' && stored.status === 'error' && (
              <ErrorBox error={stored.error} retry={stored.reload} />
            )}
          </div>
          <div className="charts" data-testid="history" data-range={range}>
            {range === '30m' ? (
              <>
                <TimeChart
                  key="live"
                  title="Live: providers, queue, running"
                  x={liveChart.x}
                  ys={liveChart.ys}
                  series={[
                    { label: 'providers online', color: '#16a34a' },
                    { label: 'queued', color: '#f59e0b' },
                    { label: 'running', color: '#6366f1' },
                  ]}
                />
                <TimeChart
                  key="minutes"
                  title="Jobs per minute (30 min)"
                  x={minuteChart.x}
                  ys={minuteChart.ys}
                  series={[
                    { label: 'submitted', color: '#0ea5e9' },
                    { label: 'completed', color: '#16a34a' },
                  ]}
                />
              </>
            ) : (
              <>
                <TimeChart
                  key={`gauges-${range}`}
                  title={`Providers, queue, running (${rangeInfo.label}, average per ${rangeInfo.bucket})`}
                  x={storedChart?.x ?? NO_X}
                  ys={storedChart?.gauges ?? NO_SERIES}
                  series={[
                    { label: 'providers online', color: '#16a34a' },
                    { label: 'queued', color: '#f59e0b' },
                    { label: 'running', color: '#6366f1' },
                  ]}
                />
                <TimeChart
                  key={`jobs-${range}`}
                  title={`Jobs per ${rangeInfo.bucket} (${rangeInfo.label})`}
                  x={storedChart?.x ?? NO_X}
                  ys={storedChart?.jobs ?? NO_SERIES}
                  series={[
                    { label: 'submitted', color: '#0ea5e9' },
                    { label: 'completed', color: '#16a34a' },
                    { label: 'failed or expired', color: '#dc2626' },
                  ]}
                />
              </>
            )}
            <BarChart title="GPUs by model (online providers)" data={o.gpusByModel} />
          </div>
          <p className="muted small">
            Providers by status:{' '}
            {o.providersByStatus.length === 0
              ? 'none yet'
              : o.providersByStatus.map((s) => `${s.label.toLowerCase()} ${s.count}`).join(' · ')}
            {o.dispatchQueue &&
              ` — dispatch queue: ${Object.entries(o.dispatchQueue)
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')}`}
          </p>
        </>
      )}
    </section>
  );
}
