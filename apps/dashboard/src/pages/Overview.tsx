import { useMemo, useState } from 'react';
import { get, type Overview } from '../api';
import { BarChart, TimeChart } from '../charts';
import { ErrorBox, Loading, Stat } from '../components';
import { percent, seconds, tokens } from '../format';
import { useEventStream, useLoad } from '../hooks';

const HISTORY = 90; // points of live history (~3 minutes at one every 2 s)

interface Point {
  t: number;
  providers: number;
  queue: number;
  active: number;
  jpm: number;
}

export function OverviewPage(): React.JSX.Element {
  const initial = useLoad(() => get<Overview>('/v1/admin/overview'), []);
  const [live, setLive] = useState<Overview | null>(null);
  const [history, setHistory] = useState<Point[]>([]);
  const status = useEventStream('/v1/admin/stream', {
    stats: (data) => {
      const o = data as Overview;
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
              label={o.epoch === null ? 'earnings (all time)' : `earnings, epoch ${o.epoch}`}
              value={tokens(o.earningsThisEpoch)}
              hint={`platform fees ${tokens(o.feesThisEpoch)}`}
            />
          </div>
          <div className="charts">
            <TimeChart
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
              title="Jobs per minute (30 min)"
              x={minuteChart.x}
              ys={minuteChart.ys}
              series={[
                { label: 'submitted', color: '#0ea5e9' },
                { label: 'completed', color: '#16a34a' },
              ]}
            />
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
