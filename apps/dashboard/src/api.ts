// The dashboard's only link to the coordinator: its REST API under /v1/admin and its live streams.
import type { AuditLogEntryDto, HistoryDto, JobChargesDto } from '../../../libs/sdk/src/generated';

export type History = HistoryDto;
export type HistoryRange = '30m' | '24h' | '7d';

/** The address of a CSV export (the browser downloads it with the session cookie). */
export function exportUrl(table: 'jobs' | 'ledger' | 'epochs', filters?: URLSearchParams): string {
  const query = new URLSearchParams(filters);
  query.set('format', 'csv');
  return `/v1/admin/export/${table}?${query.toString()}`;
}

export const CSRF_HEADER = 'x-gpumesh-csrf';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

let onUnauthenticated: (() => void) | null = null;

/** Called when a request finds the session gone (expired, signed out elsewhere). */
export function setUnauthenticatedHandler(handler: (() => void) | null): void {
  onUnauthenticated = handler;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers[CSRF_HEADER] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The coordinator cannot be reached.');
  }
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const err = (parsed as ErrorBody | null)?.error;
    if (response.status === 401 && !path.endsWith('/session')) onUnauthenticated?.();
    throw new ApiError(response.status, err?.code ?? 'HTTP_ERROR', err?.message ?? `HTTP ${response.status}`);
  }
  return parsed as T;
}

/** After a live stream was refused: when the session is gone, the sign-in page shows. */
export async function confirmSession(): Promise<void> {
  try {
    await request('GET', '/v1/admin/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) onUnauthenticated?.();
  }
}

export const get = <T>(path: string): Promise<T> => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown): Promise<T> => request<T>('POST', path, body);
export const del = <T>(path: string, body?: unknown): Promise<T> => request<T>('DELETE', path, body);
export const put = <T>(path: string, body?: unknown): Promise<T> => request<T>('PUT', path, body);

// ---- wire types (mirrors of the coordinator's admin DTOs) ----

export interface Session {
  accountId: string;
  address: string;
  role: string;
  scopes: string[];
  via: string;
  canAct: boolean;
  expiresAt: string | null;
}

export interface CountByLabel {
  label: string;
  count: number;
}

export interface Overview {
  at: string;
  providersOnline: number;
  providersByStatus: CountByLabel[];
  gpusByModel: CountByLabel[];
  slots: number;
  freeSlots: number;
  jobsPerMinute: number;
  jobsPerMinuteSeries: { minute: string; submitted: number; completed: number }[];
  windowSeconds: number;
  finished: number;
  successRate: number | null;
  verificationFailureRate: number | null;
  queueDepth: number;
  activeJobs: number;
  dispatchQueue: Record<string, number> | null;
  latencyP50Seconds: number | null;
  latencyP99Seconds: number | null;
  epoch: number | null;
  epochStartedAt: string;
  earningsThisEpoch: string;
  feesThisEpoch: string;
  feesChargedThisEpoch: string;
  canaryShareThisEpoch: string;
}

export interface Provider {
  peerId: string;
  operatorId: string;
  address: string;
  status: string;
  backend: string;
  gpus: { model?: string; vramMiB?: number }[];
  gflops: number;
  pricePerUnit: string;
  slots: number;
  freeSlots: number;
  reputation: number;
  region: string | null;
  /** Usable stake (base units) placement counts; null when stake does not gate placement. */
  usableStake: string | null;
  /** Base units of work offered to or running on it. */
  inFlightValue: string;
  lastSeenAt: string;
  live: boolean;
}

export interface ProviderDetail extends Provider {
  advert: unknown;
  createdAt: string;
  earned: string;
  attemptCounts: Record<string, number>;
  recentAttempts: {
    jobId: string;
    kind: string;
    jobState: string;
    attempt: number;
    state: string;
    error: string | null;
    offeredAt: string;
    finishedAt: string | null;
  }[];
  bannedAt: string | null;
  banReason: string | null;
  stake: Stake;
  slashes: Slash[];
  reputationHistory: ReputationEvent[];
  placement: ProviderPlacement;
}

/** How the answering coordinator process's placement sees a provider (each worker keeps its own). */
export interface ProviderPlacement {
  connected: boolean;
  placeable: boolean;
  breaker: 'closed' | 'open' | 'half-open';
  breakerLosses: number;
  breakerOpenUntil: string | null;
  /** Slow start: jobs it may hold at once. */
  concurrencyWindow: number;
  advertisedSlots: number | null;
}

export interface Stake {
  available: boolean;
  bonded: string | null;
  unbonding: string | null;
  /** Held by pending slash proposals. */
  frozen: string | null;
  unbondingEndsAt: string | null;
  staking: string | null;
  note: string | null;
}

export interface Slash {
  id: string;
  peerId: string;
  operatorAddress: string;
  evidenceId: string;
  evidenceHash: string;
  amount: string;
  reason: string;
  state: string;
  /** Developers compensated (through the escrow), largest first; empty = burnt. */
  beneficiaries: { account: string; weight: string }[];
  executeAfter: string;
  proposeTxHash: string | null;
  /** The execution. */
  txHash: string | null;
  nonce: number | null;
  cancelTxHash: string | null;
  compensated: string | null;
  burnt: string | null;
  error: string | null;
  reviewedBy: string | null;
  createdAt: string;
  frozenAt: string | null;
  executedAt: string | null;
  cancelledAt: string | null;
}

export interface ReputationEvent {
  id: string;
  kind: string;
  delta: number;
  score: number;
  jobId: string | null;
  detail: unknown;
  createdAt: string;
}

export interface Job {
  id: string;
  kind: string;
  state: string;
  workUnits: string;
  pricePerUnit: string;
  /** Deprecated by the API: the same as `reserved`. */
  cost: string;
  /** Held from the balance at submission; what is not charged returns when the job ends. */
  reserved: string;
  /** What the ledger charged so far (0 until it completes). */
  charged: string;
  chargedBreakdown: JobChargesDto;
  redundancy: number;
  deadlineAt: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Why it ended: set on FAILED and EXPIRED. */
  error: { code: string; message: string } | null;
  resultHash: string | null;
  accountId: string;
  accountAddress: string;
}

export interface JobEvent {
  id: string;
  type: string;
  fromState: string | null;
  toState: string | null;
  data: unknown;
  createdAt: string;
}

export interface Attempt {
  attempt: number;
  providerId: string | null;
  state: string;
  outputHash: string | null;
  error: string | null;
  receipt: unknown;
  offeredAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface JobDetail extends Job {
  spec: unknown;
  events: JobEvent[];
  attempts: Attempt[];
  verdict: { outcome: string; detail: string };
  ledger: { account: string; amount: string; kind: string; createdAt: string }[];
  result: unknown;
}

export interface Account {
  id: string;
  address: string;
  role: string;
  balance: string;
  reserved: string;
  apiKeys: number;
  jobs: number;
  openJobs: number;
  createdAt: string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  role: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface AccountDetail extends Account {
  keys: ApiKey[];
}

export interface Epoch {
  id: number;
  total?: string | null;
  state: string;
  startedAt: string;
  closedAt: string | null;
  root: string | null;
  fileHash: string | null;
  txHash: string | null;
  /** Base units the distributor holds for it (FUNDING/FINALIZED). */
  funded?: string | null;
  /** Why its settlement waits for someone (a shortfall, a veto). */
  blockedReason?: string | null;
}

/** An admin audit log entry (GET /v1/admin/audit-log), as the OpenAPI document types it. */
export type AuditLogEntry = AuditLogEntryDto;

export interface Audit {
  ok: boolean;
  at: string;
  entries: number;
  entriesTotal: string;
  unbalancedTransactions: number;
  mismatchedBalances: number;
  negativeDeveloperBalances: number;
  problems: string[];
}

export interface Setting {
  key: string;
  label: string;
  value: string | null;
  note: string;
  editable: boolean;
  current?: unknown;
  default?: unknown;
  overridden?: boolean;
  updatedBy?: string | null;
  updatedAt?: string | null;
}

export interface VerificationPolicy {
  mode: 'none' | 'redundant';
  k: number;
  canaryRate: number;
}
