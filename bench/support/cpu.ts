// CPU time of processes and of the whole machine from /proc (Linux): where the cores went during a
// benchmark phase (coordinators, agents, the load generator, and the rest: PostgreSQL, Redis, …).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/**
 * Write-type system calls a process has made so far (`syscw` of /proc/<pid>/io: write, writev,
 * send…): each write to a loopback socket wakes the reader, which on a small virtual machine costs
 * more than most of the work around it. 0 when the process is gone or /proc is missing.
 */
export function processWriteCalls(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return Number(/syscw:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Busy and total CPU seconds of the whole machine so far (all cores); of the busy time, what went to
 * interrupts (irq + softirq: loopback networking) and to steal (the hypervisor ran another guest).
 */
export function machineCpuSeconds(): { busy: number; total: number; irq: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const t = clockTicks();
    return {
      busy: (total - idle) / t,
      total: total / t,
      irq: ((v[5] ?? 0) + (v[6] ?? 0)) / t,
      steal: (v[7] ?? 0) / t,
    };
  } catch {
    return { busy: 0, total: 0, irq: 0, steal: 0 };
  }
}

/** CPU seconds and command name of every process on the machine (from /proc), by pid. */
export function allProcessCpu(): Map<number, { command: string; seconds: number }> {
  const out = new Map<number, { command: string; seconds: number }>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(entry), { command, seconds: (Number(fields[11]) + Number(fields[12])) / clockTicks() });
    } catch {
      // exited meanwhile
    }
  }
  return out;
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
export function cpuMeter(groups: CpuGroup[]): {
  stop(): Record<string, number>;
  /** After stop(): the "other" cores by command name (postgres, redis-server, other node, …). */
  otherByCommand(): Record<string, number>;
} {
  let otherByCommand: Record<string, number> = {};
  const t0 = performance.now();
  const m0 = machineCpuSeconds();
  const all0 = allProcessCpu();
  const before = groups.map((g) => g.pids().map((pid) => [pid, processCpuSeconds(pid)] as const));
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const m1 = machineCpuSeconds();
      const all1 = allProcessCpu();
      const cores = (seconds: number): number => Math.round((seconds / wall) * 100) / 100;
      const out: Record<string, number> = {};
      const grouped = new Set<number>();
      let known = 0;
      groups.forEach((g, i) => {
        const start = new Map(before[i]);
        let used = 0;
        for (const pid of g.pids()) {
          if (pid !== undefined) grouped.add(pid);
          used += processCpuSeconds(pid) - (start.get(pid) ?? 0);
        }
        known += used;
        out[g.name] = cores(used);
      });
      const busy = m1.busy - m0.busy;
      const total = m1.total - m0.total;
      out.other = cores(Math.max(0, busy - known));
      // "other" by command name (postgres, redis-server, other node processes, …), interrupts and
      // steal; what is left is kernel time in process context and processes that exited meanwhile.
      const byCommand = new Map<string, number>();
      for (const [pid, now] of all1) {
        if (grouped.has(pid)) continue;
        const used = now.seconds - (all0.get(pid)?.seconds ?? 0);
        if (used > 0) byCommand.set(now.command, (byCommand.get(now.command) ?? 0) + used);
      }
      byCommand.set('(irq, softirq)', m1.irq - m0.irq);
      byCommand.set('(steal)', m1.steal - m0.steal);
      otherByCommand = Object.fromEntries(
        [...byCommand.entries()]
          .sort((a, b) => b[1] - a[1])
          .filter(([, used]) => cores(used) >= 0.01)
          .slice(0, 8)
          .map(([command, used]) => [command, cores(used)]),
      );
      out.idle = cores(Math.max(0, total - busy));
      return out;
    },
    otherByCommand: () => otherByCommand,
  };
}
