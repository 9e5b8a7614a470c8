// One watcher's audits of an epoch file, in a process of its own as `gpumesh watch` runs them (the
// settlement bench's own heap, a million credits and the epochs built from them, is not what a
// watcher holds). Prints {firstMs, runsMs} as JSON: the first audit (the worker thread starting) and
// `runs` more, on two threads (`two`, EpochAuditor) or on one (`one`, auditEpoch).
import { readFile } from 'node:fs/promises';
import { EpochAuditor, auditEpoch, type AuditReport } from '@gpumesh/rewards';

interface Task {
  readonly file: string;
  readonly root: string;
  readonly fileHash: string;
  readonly domain: { readonly chainId: number; readonly distributor: string };
  readonly mode: 'two' | 'one';
  readonly runs: number;
}

const task = JSON.parse(process.argv[2] ?? '') as Task;
const bytes = await readFile(task.file);
const auditor = new EpochAuditor();
const audit = async (): Promise<number> => {
  const at = performance.now();
  const report: AuditReport =
    task.mode === 'two'
      ? await auditor.audit(bytes, task.root, task.fileHash, { domain: task.domain })
      : auditEpoch(bytes, task.root, task.fileHash, { domain: task.domain });
  const ms = performance.now() - at;
  if (!report.ok) throw new Error(`the epoch file failed its audit: ${report.problems[0]?.message}`);
  return ms;
};
const firstMs = await audit();
const runsMs: number[] = [];
for (let i = 0; i < task.runs; i++) runsMs.push(await audit());
if (task.mode === 'two' && auditor.stats.oneThread !== 0)
  throw new Error('the audit fell back to one thread');
await auditor.close();
process.stdout.write(JSON.stringify({ firstMs, runsMs }));
