// CPU time of processes and of the whole machine from /proc (Linux): where the cores went during a
// benchmark phase (coordinators, agents, the load generator, and the rest: PostgreSQL, Redis, …).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond = 0;
function clockTicks(): number {
  if (ticksPerSecond === 0) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU seconds a process has used so far (0 when it is gone or /proc is missing). */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine so far (all cores). */
export function machineCpuSeconds(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: (total - idle) / clockTicks(), total: total / clockTicks() };
  } catch {
    return { busy: 0, total: 0 };
  }
}

export interface CpuGroup {
  name: string;
  pids: () => (number | undefined)[];
}

/**
 * Samples the CPU seconds of named process groups at start and stop; `stop()` returns the cores each
 * group used on average (CPU seconds / wall seconds), "other" (everything else busy on the machine:
 * the database, Redis, the kernel), and "idle".
 */
export function cpuMeter(groups: CpuGroup[]): { stop(): Record<string, number> } {
  const t0 = performance.now();
  const m0 = machineCpuSeconds();
  const before = groups.map((g) => g.pids().map((pid) => [pid, processCpuSeconds(pid)] as const));
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const m1 = machineCpuSeconds();
      const out: Record<string, number> = {};
      let known = 0;
      groups.forEach((g, i) => {
        const start = new Map(before[i]);
        let used = 0;
        for (const pid of g.pids()) used += processCpuSeconds(pid) - (start.get(pid) ?? 0);
        known += used;
        out[g.name] = Math.round((used / wall) * 100) / 100;
      });
      const busy = m1.busy - m0.busy;
      const total = m1.total - m0.total;
      out.other = Math.round((Math.max(0, busy - known) / wall) * 100) / 100;
      out.idle = Math.round((Math.max(0, total - busy) / wall) * 100) / 100;
      return out;
    },
  };
}
