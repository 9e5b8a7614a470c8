import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { join } from 'node:path';
import type { ReadStream } from 'node:fs';
import type { Job, Tensor } from '#prisma';
import {
  DTYPES,
  MAX_REF_TENSOR_BYTES,
  MAX_TENSOR_RANK,
  NPY_MEDIA_TYPE,
  encodeTensor,
  isTensorRef,
  refTensorByteLength,
  tensorView,
  type DecodedTensor,
  type DType,
  type JobSpec,
  type ResultTensor,
  type TensorRef,
  type TensorWire,
} from '@gpumesh/protocol';
import { expectedOutputs, type TensorSource, type TensorUpload } from '@gpumesh/p2p';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { DomainError } from '../common/domain-error.js';
import type { Principal } from '../auth/principal.js';
import { LOGGER } from '../logging/logger.js';
import { TensorsRepository, type OwnedOutput } from './tensors.repository.js';
import { TensorFiles, TensorUploadError, type UploadFraming } from './tensor-files.js';
import { OutputUploads, UPLOAD_CLAIM_TTL_MS, UPLOAD_PRUNE_EVERY_MS } from './output-uploads.js';
import { startTensorWriter } from './tensor-writer.js';
import { decodePageCursor, encodePageCursor } from '../common/page-cursor.js';

/**
 * An output as the coordinator checks it: inline, decoded from the store (an output by ref within
 * RESULT_CHECK_MAX_BYTES), or still by ref (larger: compared by hash only).
 */
export type CheckedTensor = TensorWire | DecodedTensor | TensorRef;

export const RAW_MEDIA_TYPE = 'application/octet-stream';
/** Media types `POST /v1/tensors` takes. */
export const TENSOR_UPLOAD_MEDIA_TYPES = [NPY_MEDIA_TYPE, RAW_MEDIA_TYPE] as const;

const REF = /^sha256:([0-9a-f]{64})$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** `sha256:<hex>`: how the API names a tensor's element bytes. */
export function tensorRef(sha256: string): string {
  return `sha256:${sha256}`;
}

/** An uploaded tensor (or an output by ref of one of its jobs) as its account sees it. */
export interface TensorView {
  readonly ref: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: number;
  readonly createdAt: Date;
  /** When the retention sweep may delete it (null: kept until deleted); later if a job names it. */
  readonly expiresAt: Date | null;
  /** The job whose output by ref this is; null for an upload. */
  readonly jobId: string | null;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** A page of `GET /v1/tensors` holds at most this many when no limit is asked for. */
const DEFAULT_PAGE = 50;

/**
 * Uploaded tensors: the bytes stream into the content-addressed store (`TensorFiles`), one row per
 * account says who may use them. A ref is usable only by the accounts that uploaded its bytes or
 * whose job returned them as an output by ref (a row marked with the job, which goes with it).
 */
@Injectable()
export class TensorsService implements OnModuleInit {
  readonly files: TensorFiles;
  private readonly uploads = new OutputUploads();
  private lastPrune = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly tensors: TensorsRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.files = new TensorFiles(join(config.DATA_DIR, 'tensors'), { directIo: config.TENSOR_DIRECT_IO });
  }

  async onModuleInit(): Promise<void> {
    startTensorWriter();
    const removed = await this.files.init();
    if (removed > 0) this.logger.info({ removed }, 'removed unfinished tensor uploads');
  }

  /** Streams one upload (`.npy`, or raw bytes with `dtype` and `shape`) into the store. */
  async upload(
    principal: Principal,
    body: AsyncIterable<Uint8Array>,
    contentType: string | undefined,
    query: { dtype?: unknown; shape?: unknown },
  ): Promise<{ tensor: TensorView; created: boolean }> {
    const framing = uploadFraming(contentType, query);
    const quota = this.config.TENSOR_QUOTA_BYTES;
    let max = this.config.MAX_TENSOR_UPLOAD_BYTES;
    if (quota > 0) {
      const used = Number(await this.tensors.bytesOf(principal.accountId));
      max = Math.min(max, Math.max(0, quota - used));
    }
    let result;
    try {
      result = await this.files.write(body, framing, max, (stored, place) =>
        this.tensors.upsert({ accountId: principal.accountId, ...stored }, place),
      );
    } catch (err) {
      if (!(err instanceof TensorUploadError)) throw err;
      if (err.code === 'BAD_TENSOR') throw new DomainError('VALIDATION_FAILED', `body: ${err.message}`);
      const overQuota = max < this.config.MAX_TENSOR_UPLOAD_BYTES;
      throw new DomainError(
        'PAYLOAD_TOO_LARGE',
        overQuota
          ? `${err.message.replace(/; the largest.*$/, '')}; this account has ${max} bytes left of its TENSOR_QUOTA_BYTES (${quota})`
          : err.message,
      );
    }
    const { tensor, created } = result;
    this.logger.debug(
      { accountId: principal.accountId, sha256: tensor.sha256, bytes: Number(tensor.bytes) },
      'tensor uploaded',
    );
    return { tensor: this.viewOf(tensor), created };
  }

  /** The tensor `ref` names, if `principal` uploaded it (anything else is TENSOR_NOT_FOUND). */
  async get(principal: Principal, ref: string): Promise<TensorView> {
    const match = REF.exec(ref);
    const row = match ? await this.tensors.find(principal.accountId, match[1]) : null;
    if (!row) throw notFound(ref);
    return this.viewOf(row);
  }

  /** The account's tensors (uploads and outputs by ref of its jobs), newest first. */
  async list(
    principal: Principal,
    query: { limit?: number; cursor?: string },
  ): Promise<{ items: TensorView[]; nextCursor: string | null }> {
    const limit = query.limit ?? DEFAULT_PAGE;
    const at = query.cursor ? decodePageCursor(query.cursor, SHA256_HEX) : undefined;
    if (at === null) throw new DomainError('VALIDATION_FAILED', 'cursor: is not a cursor this API returned');
    const before = at && { createdAt: at.createdAt, sha256: at.key };
    const rows = await this.tensors.page(principal.accountId, limit + 1, before);
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return {
      items: items.map((row) => this.viewOf(row)),
      nextCursor: rows.length > limit && last ? encodePageCursor(last.createdAt, last.sha256) : null,
    };
  }

  /**
   * Deletes the account's tensor `ref` (an upload, or an output by ref of one of its jobs): its row
   * first, then its file unless something else still names those bytes (another account's row, a job
   * that has not finished). TENSOR_NOT_FOUND as `get`; TENSOR_IN_USE while a job of the account that
   * has not finished names it as an input.
   */
  async delete(principal: Principal, ref: string): Promise<void> {
    const match = REF.exec(ref);
    const outcome = match ? await this.tensors.deleteOwn(principal.accountId, match[1]) : null;
    if (outcome === null) throw notFound(ref);
    if ('inUse' in outcome) {
      throw new DomainError(
        'TENSOR_IN_USE',
        `tensor ${ref} is an input of job ${outcome.inUse.join(', ')}, which has not finished; delete it once the job ends (or cancel the job)`,
        { jobIds: outcome.inUse },
      );
    }
    const { deleted } = outcome;
    const removed = await this.removeFileIfUnreferenced(deleted.sha256).catch((err: unknown) => {
      // The row is gone: the retention sweep deletes the file as an orphan later.
      this.logger.warn({ err, sha256: deleted.sha256 }, 'could not delete a deleted tensor file');
      return undefined;
    });
    this.logger.info(
      {
        accountId: principal.accountId,
        sha256: deleted.sha256,
        bytes: Number(deleted.bytes),
        fileRemoved: removed !== undefined,
      },
      'tensor deleted by its account',
    );
  }

  /**
   * Deletes the file of `sha256` if nothing references it, deciding under the hash's file lock: no
   * `Tensor` row of any account, no job that has not finished naming it as an input, and not written
   * since the oldest such job was submitted (it could be an output that job holds, named by no row
   * yet), nor after `writtenBefore` when given. Resolves the bytes deleted (undefined: kept, or none).
   */
  removeFileIfUnreferenced(sha256: string, writtenBefore?: Date): Promise<number | undefined> {
    return this.tensors.underFileLock(sha256, async (refs) => {
      if (refs.tensorRow || refs.liveInput) return undefined;
      const modifiedAt = await this.files.modifiedAt(sha256);
      if (modifiedAt === undefined) return undefined;
      if (refs.oldestLiveJobAt !== null && modifiedAt >= refs.oldestLiveJobAt) return undefined;
      if (writtenBefore !== undefined && modifiedAt >= writtenBefore) return undefined;
      return this.files.remove(sha256);
    });
  }

  /** How long a row is kept after its last use (null: forever), by kind. */
  retentionMs(kind: 'upload' | 'output'): number | null {
    const days = kind === 'upload' ? this.config.TENSOR_RETENTION_DAYS : this.config.OUTPUT_RETENTION_DAYS;
    return days > 0 ? days * DAY_MS : null;
  }

  private viewOf(row: Tensor): TensorView {
    const keep = this.retentionMs(row.jobId === null ? 'upload' : 'output');
    return {
      ref: tensorRef(row.sha256),
      dtype: row.dtype as DType,
      shape: row.shape,
      bytes: Number(row.bytes),
      createdAt: row.createdAt,
      expiresAt: keep === null ? null : new Date(row.lastUsedAt.getTime() + keep),
      jobId: row.jobId,
    };
  }

  /** The element bytes of a tensor `get` returned, streamed from the store. */
  open(tensor: TensorView): ReadStream {
    return this.files.openRead(tensor.ref.slice('sha256:'.length));
  }

  /**
   * A job's `inputs` with every `{ name, ref }` completed from the caller's tensor row into the
   * stored form `{ name, ref, dtype, shape, sha256 }`: the spec keeps the ref (its hash is that of
   * the same job sent inline, since specs hash inputs by digest), agents fetch the bytes over the
   * artifact protocol. A ref is bounded by `MAX_TENSOR_UPLOAD_BYTES` (and the protocol's
   * `MAX_REF_TENSOR_BYTES`), not by the inline caps; its file must still be there, and a float32
   * one must hold finite numbers only. Errors name the field. Anything else is left for the job spec
   * schema to judge.
   */
  async resolveInputs(accountId: string, inputs: unknown): Promise<unknown> {
    if (!Array.isArray(inputs)) return inputs;
    // Checked at once; the error reported is the first input's that fails.
    const settled = await Promise.allSettled(
      inputs.map(async (input: unknown, i) => {
        if (typeof input !== 'object' || input === null || !('ref' in input)) return input;
        const field = `inputs[${i}]`;
        const { name, ref, ...rest } = input as Record<string, unknown>;
        if (Object.keys(rest).length > 0) {
          throw new DomainError(
            'VALIDATION_FAILED',
            `${field}: an input by ref is { name, ref }; unexpected ${Object.keys(rest).join(', ')}`,
          );
        }
        const match = typeof ref === 'string' ? REF.exec(ref) : null;
        if (!match)
          throw new DomainError('VALIDATION_FAILED', `${field}.ref: expected "sha256:<64 hex digits>"`);
        // marked used: the retention sweep keeps it (and a job naming it keeps it until it ends)
        const row = await this.tensors.touch(accountId, match[1]);
        if (!row) {
          throw new DomainError(
            'VALIDATION_FAILED',
            `${field}.ref: no tensor ${ref as string} of this account (uploaded with POST /v1/tensors, or an output by ref of one of its jobs)`,
          );
        }
        const limit = Math.min(this.config.MAX_TENSOR_UPLOAD_BYTES, MAX_REF_TENSOR_BYTES);
        if (row.bytes > BigInt(limit)) {
          throw new DomainError(
            'VALIDATION_FAILED',
            `${field}.ref: the tensor is ${row.bytes} bytes; a job input by ref is at most ${limit} bytes (MAX_TENSOR_UPLOAD_BYTES; the inline caps do not apply to refs)`,
            { code: 'TENSOR_TOO_LARGE' },
          );
        }
        // float32 bytes are read for NaN/Infinity only when their upload did not check them already
        const scan = row.dtype === 'float32' && row.finite !== true;
        const nonFinite = scan
          ? await this.files.firstNonFiniteFloat32(row.sha256).catch(() => undefined)
          : (await this.files.size(row.sha256)) === undefined
            ? undefined
            : null;
        if (nonFinite === undefined) {
          throw new DomainError(
            'VALIDATION_FAILED',
            `${field}.ref: the bytes of ${ref as string} are gone; upload it again`,
          );
        }
        if (nonFinite !== null) {
          throw new DomainError(
            'VALIDATION_FAILED',
            `${field}.ref: element ${nonFinite.index} is ${nonFinite.value}; job inputs must be finite numbers (NaN and Infinity are refused)`,
          );
        }
        if (scan && row.finite === null) await this.tensors.markFinite(row.sha256);
        const stored: TensorRef = {
          name: name as string,
          ref: tensorRef(row.sha256),
          dtype: row.dtype as DType,
          shape: row.shape,
          sha256: row.sha256,
        };
        return stored;
      }),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value);
  }

  /**
   * The inputs by ref of a job just stored whose row the account no longer has: deleted by a
   * `DELETE /v1/tensors/:ref` that checked for jobs naming it before this one was stored. Read after
   * the job's row committed, so a deletion either saw the job (and refused) or is seen here.
   */
  async inputsGone(accountId: string, spec: JobSpec): Promise<TensorRef[]> {
    const refs = spec.inputs.filter(isTensorRef);
    if (refs.length === 0) return [];
    const held = await this.tensors.stillHeld(
      accountId,
      refs.map((r) => r.sha256),
    );
    return refs.filter((r) => !held.has(r.sha256));
  }

  /**
   * The tensor `sha256` names, streamed, if some account uploaded it and its file is whole (the
   * artifact protocol serves job inputs by ref with it; who may fetch is the caller's check).
   */
  async source(sha256: string): Promise<TensorSource | undefined> {
    const bytes = await this.files.size(sha256);
    if (bytes === undefined) return undefined;
    return { bytes, chunks: this.files.openRead(sha256) };
  }

  /**
   * Opens uploads of outputs by ref for one offer to `peerId` (ended by the returned function): as
   * many tensors as the job may return, each at most its largest honest output and
   * MAX_RESULT_TENSOR_BYTES.
   */
  grantOutputs(peerId: string, spec: JobSpec): () => void {
    const { bytes, tensors } = expectedOutputs(spec);
    return this.uploads.grant(peerId, Math.min(bytes, this.config.MAX_RESULT_TENSOR_BYTES), tensors);
  }

  /** Whether `peerId` may upload `upload` now (uses one upload of an open offer). */
  mayStoreOutput(peerId: string, upload: TensorUpload): boolean {
    return upload.bytes <= this.config.MAX_RESULT_TENSOR_BYTES && this.uploads.take(peerId, upload.bytes);
  }

  /**
   * Streams an uploaded output into the store, checked against its announced hash and length, and
   * records who uploaded it (in PostgreSQL, before the agent hears `stored`: a result it sends, or
   * replays from its journal after a restart of this coordinator, finds the record).
   */
  async storeOutput(peerId: string, upload: TensorUpload, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const now = Date.now();
    await this.files.writeExpected(chunks, upload.sha256, upload.bytes, (place) =>
      this.tensors.recordUpload(peerId, upload.sha256, new Date(now), place),
    );
    this.logger.debug({ peerId, sha256: upload.sha256, bytes: upload.bytes }, 'job output stored');
    if (now - this.lastPrune >= UPLOAD_PRUNE_EVERY_MS) {
      this.lastPrune = now;
      void this.tensors
        .pruneUploads(new Date(now - UPLOAD_CLAIM_TTL_MS))
        .catch((err: unknown) => this.logger.warn({ err }, 'could not prune old output uploads'));
    }
  }

  /**
   * Gives a completed job's account its outputs by ref, as tensors it may name (a later job's input
   * by ref, `GET /v1/tensors/:ref`) like its uploads; the rows go with the job. Canaries' outputs are
   * the platform's and stay unowned.
   */
  async adoptOutputs(
    job: Pick<Job, 'id' | 'accountId' | 'canary' | 'result' | 'finishedAt'>,
  ): Promise<number> {
    if (job.canary) return 0;
    const outputs = (job.result as unknown as { outputs?: readonly ResultTensor[] } | null)?.outputs ?? [];
    const owned: OwnedOutput[] = outputs.filter(isTensorRef).map((o) => ({
      sha256: o.sha256,
      dtype: o.dtype,
      shape: o.shape,
      bytes: refTensorByteLength(o.dtype, o.shape),
    }));
    return this.tensors.adoptOutputs(job.accountId, job.id, owned, job.finishedAt ?? new Date());
  }

  /**
   * Why a result's outputs by ref cannot be taken (null: they can): each must have been uploaded by
   * `peerId` and be whole in the store, as long as its dtype and shape say.
   */
  async outputsMissing(peerId: string, outputs: readonly ResultTensor[]): Promise<string | null> {
    for (const output of outputs) {
      if (!isTensorRef(output)) continue;
      const since = new Date(Date.now() - UPLOAD_CLAIM_TTL_MS);
      if (!(await this.tensors.uploadedSince(peerId, output.sha256, since))) {
        return `OUTPUT_NOT_UPLOADED: output ${output.name} names ${output.ref}, which this provider did not upload`;
      }
      const size = await this.files.size(output.sha256);
      const expected = refTensorByteLength(output.dtype, output.shape);
      if (size !== expected) {
        return `OUTPUT_NOT_UPLOADED: output ${output.name} (${output.ref}) is ${size ?? 'not'} stored; its dtype and shape need ${expected} bytes`;
      }
    }
    return null;
  }

  /**
   * `outputs` with every output by ref read back from the store and decoded, for the sanity check
   * and comparisons within tolerance; unchanged (still by ref) when they total more than
   * RESULT_CHECK_MAX_BYTES or their file is gone.
   */
  async forCheck(outputs: readonly CheckedTensor[]): Promise<CheckedTensor[]> {
    const refBytes = outputs.reduce(
      (n, t) => n + (isTensorRef(t) ? refTensorByteLength(t.dtype, t.shape) : 0),
      0,
    );
    if (refBytes === 0 || refBytes > this.config.RESULT_CHECK_MAX_BYTES) return [...outputs];
    return Promise.all(
      outputs.map(async (t): Promise<CheckedTensor> => {
        if (!isTensorRef(t)) return t;
        // in shared memory: large checks run on the check thread (verification/check-thread.ts)
        const bytes = await this.files
          .readShared(t.sha256, refTensorByteLength(t.dtype, t.shape))
          .catch(() => undefined);
        if (bytes === undefined) return t;
        // its sha256 stays with it: bit-identical copies agree without a comparison (compare.ts)
        return Object.assign(tensorView(t.name, t.dtype, t.shape, bytes), { sha256: t.sha256 });
      }),
    );
  }

  /**
   * `outputs` as wire tensors (what evidence bundles and the training-loss check carry): outputs by
   * ref read back and encoded; null when one cannot be (too large to read back or to inline, gone).
   */
  async wireFor(outputs: readonly CheckedTensor[]): Promise<TensorWire[] | null> {
    const loaded = await this.forCheck(outputs);
    try {
      const wire = loaded.map((t) => {
        if (isTensorRef(t)) return null;
        if (!('values' in t)) return t;
        return encodeTensor(t.name, t.dtype, t.shape, t.values as Float32Array);
      });
      return wire.every((t) => t !== null) ? (wire as TensorWire[]) : null;
    } catch {
      return null; // over the inline cap (MAX_TENSOR_BYTES)
    }
  }

  /** The element bytes of a job output by ref, streamed from the store (undefined: gone). */
  async openOutput(sha256: string): Promise<TensorSource | undefined> {
    return this.source(sha256);
  }
}

function notFound(ref: string): DomainError {
  return new DomainError('TENSOR_NOT_FOUND', `no tensor ${ref.slice(0, 80)} of this account`);
}

/** How an upload's body is framed, from its Content-Type and (raw bytes) its `dtype` and `shape`. */
export function uploadFraming(
  contentType: string | undefined,
  query: { dtype?: unknown; shape?: unknown },
): UploadFraming {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === NPY_MEDIA_TYPE) return { kind: 'npy' };
  if (type !== RAW_MEDIA_TYPE) {
    throw new DomainError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Type must be ${NPY_MEDIA_TYPE} (a .npy file) or ${RAW_MEDIA_TYPE} (raw little-endian bytes with ?dtype=&shape=), got ${type ? type.slice(0, 100) : 'none'}`,
    );
  }
  const { dtype, shape } = query;
  if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype)) {
    throw new DomainError('VALIDATION_FAILED', `dtype: expected one of ${DTYPES.join(', ')} for raw bytes`);
  }
  const dims = typeof shape === 'string' && shape.length > 0 ? shape.split(',') : null;
  if (!dims || dims.length > MAX_TENSOR_RANK || !dims.every((d) => /^[1-9]\d{0,9}$/.test(d.trim()))) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `shape: expected 1 to ${MAX_TENSOR_RANK} comma-separated positive integers (e.g. shape=1024,1024)`,
    );
  }
  return { kind: 'raw', dtype: dtype as DType, shape: dims.map((d) => Number(d.trim())) };
}
