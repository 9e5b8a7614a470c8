// Weighted fair queuing across (account, priority class) flows. Each job gets virtual start and finish
// tags when it is queued (start = max(virtual time, the flow's last finish), finish = start + cost /
// weight) and jobs leave in finish-tag order; virtual time advances to the start tag of the job that
// leaves. A flow that floods only pushes its own tags into the future, so every other backlogged flow
// keeps receiving its weighted share: for two backlogged flows the served cost per weight differs by at
// most one job's cost per weight of each.
import { MinHeap } from './heap.js';
import type { PriorityClass } from './types.js';

export interface FairQueueItem {
  jobId: string;
  accountId: string;
  priority: PriorityClass;
}

export const DEFAULT_CLASS_WEIGHTS: Readonly<Record<PriorityClass, number>> = { high: 4, normal: 2, low: 1 };

export interface FairQueueOptions<T extends FairQueueItem> {
  classWeights?: Partial<Record<PriorityClass, number>>;
  /** Weight of an account (default 1), multiplied by the class weight. */
  accountWeight?: (accountId: string) => number;
  /** Cost of a job in the flow's budget (default 1 per job). */
  cost?: (item: T) => number;
}

interface Tagged<T> {
  item: T;
  flow: Flow;
  start: number;
  finish: number;
  seq: number;
  removed: boolean;
}

interface Flow {
  key: string;
  lastFinish: number;
  queued: number;
}

export class FairQueue<T extends FairQueueItem> {
  private readonly heap = new MinHeap<Tagged<T>>(
    (a, b) => a.finish < b.finish || (a.finish === b.finish && a.seq < b.seq),
  );
  private readonly flows = new Map<string, Flow>();
  private readonly byJob = new Map<string, Tagged<T>>();
  private readonly classWeights: Record<PriorityClass, number>;
  private seq = 0;
  private vtime = 0;
  private dequeues = 0;

  constructor(private readonly options: FairQueueOptions<T> = {}) {
    this.classWeights = { ...DEFAULT_CLASS_WEIGHTS, ...options.classWeights };
  }

  get size(): number {
    return this.byJob.size;
  }

  /** Current virtual time. */
  get virtualTime(): number {
    return this.vtime;
  }

  has(jobId: string): boolean {
    return this.byJob.has(jobId);
  }

  /** Queued jobs of one flow. */
  sizeOf(accountId: string, priority: PriorityClass): number {
    return this.flows.get(flowKey(accountId, priority))?.queued ?? 0;
  }

  /** Queues a job; throws if the job id is already queued. */
  enqueue(item: T): void {
    if (this.byJob.has(item.jobId)) throw new Error(`job ${item.jobId} is already queued`);
    const key = flowKey(item.accountId, item.priority);
    let flow = this.flows.get(key);
    if (flow === undefined) {
      flow = { key, lastFinish: 0, queued: 0 };
      this.flows.set(key, flow);
    }
    const weight = this.weight(item);
    const cost = this.options.cost?.(item) ?? 1;
    if (!(cost >= 0) || !Number.isFinite(cost)) throw new RangeError('job cost must be a finite number >= 0');
    const start = Math.max(this.vtime, flow.lastFinish);
    const finish = start + cost / weight;
    flow.lastFinish = finish;
    flow.queued++;
    const t: Tagged<T> = { item, flow, start, finish, seq: this.seq++, removed: false };
    this.byJob.set(item.jobId, t);
    this.heap.push(t);
  }

  /** Next job by finish tag, or undefined when empty. */
  dequeue(): T | undefined {
    const t = this.popLive();
    if (t === undefined) return undefined;
    this.byJob.delete(t.item.jobId);
    t.flow.queued--;
    if (t.start > this.vtime) this.vtime = t.start;
    if (++this.dequeues % 4096 === 0) this.forgetIdleFlows();
    return t.item;
  }

  peek(): T | undefined {
    for (;;) {
      const t = this.heap.peek();
      if (t === undefined) return undefined;
      if (!t.removed) return t.item;
      this.heap.pop();
    }
  }

  /** Removes a queued job (cancelled); false when not queued. */
  remove(jobId: string): boolean {
    const t = this.byJob.get(jobId);
    if (t === undefined) return false;
    t.removed = true;
    t.flow.queued--;
    this.byJob.delete(jobId);
    return true;
  }

  private popLive(): Tagged<T> | undefined {
    for (;;) {
      const t = this.heap.pop();
      if (t === undefined || !t.removed) return t;
    }
  }

  private weight(item: T): number {
    const w = (this.classWeights[item.priority] ?? 1) * (this.options.accountWeight?.(item.accountId) ?? 1);
    if (!(w > 0) || !Number.isFinite(w)) throw new RangeError('flow weight must be a finite number > 0');
    return w;
  }

  /** A flow with nothing queued whose last finish is behind virtual time carries no state worth keeping. */
  private forgetIdleFlows(): void {
    for (const [key, f] of this.flows) {
      if (f.queued === 0 && f.lastFinish <= this.vtime) this.flows.delete(key);
    }
  }
}

function flowKey(accountId: string, priority: PriorityClass): string {
  return `${accountId}\u0000${priority}`;
}
