import { Readable } from 'node:stream';
import { Injectable } from '@nestjs/common';
import { csvLines } from '../common/csv.js';
import { DomainError } from '../common/domain-error.js';
import { ExportRepository, type JobFilter } from './export.repository.js';

export const EXPORT_TABLES = ['jobs', 'ledger', 'epochs'] as const;
export type ExportTable = (typeof EXPORT_TABLES)[number];

/** The job filters, by the query parameter each comes from. */
const JOB_FILTER_PARAMS = {
  states: 'state',
  kind: 'kind',
  accountId: 'accountId',
  providerId: 'providerId',
} as const;

/** An export ready to send: its file name and its CSV text as a stream. */
export interface CsvExport {
  filename: string;
  body: Readable;
}

/** The admin CSV exports of jobs, ledger entries and epochs, streamed batch by batch. */
@Injectable()
export class ExportService {
  constructor(private readonly repo: ExportRepository) {}

  /**
   * The export of `table` (jobs, ledger or epochs; any other name is a VALIDATION_FAILED). The job
   * filters (states, kind, account, provider) apply to jobs only; with another table they are refused.
   */
  export(name: string, filter: JobFilter, now = new Date()): CsvExport {
    const table = EXPORT_TABLES.find((t) => t === name);
    if (!table) throw new DomainError('VALIDATION_FAILED', `table: expected ${EXPORT_TABLES.join(', ')}`);
    const jobOnly = Object.entries(JOB_FILTER_PARAMS)
      .filter(([key]) => filter[key as keyof typeof JOB_FILTER_PARAMS] !== undefined)
      .map(([, param]) => param);
    if (table !== 'jobs' && jobOnly.length > 0)
      throw new DomainError('VALIDATION_FAILED', `${jobOnly.join(', ')}: filter jobs only, not ${table}`);
    const filename = `gpumesh-${table}-${now.toISOString().slice(0, 19).replace(/:/g, '')}Z.csv`;
    return { filename, body: Readable.from(this.lines(table, filter), { objectMode: false }) };
  }

  private lines(table: ExportTable, filter: JobFilter): AsyncGenerator<string> {
    switch (table) {
      case 'jobs':
        return csvLines(
          [
            'id',
            'state',
            'kind',
            'canary',
            'account_id',
            'account_address',
            'work_units',
            'price_per_unit',
            'reserved',
            'redundancy',
            'priority',
            'created_at',
            'deadline_at',
            'finished_at',
            'result_hash',
            'error',
          ],
          this.repo.jobs(filter),
          (j) => [
            j.id,
            j.state,
            j.kind,
            j.canary,
            j.accountId,
            j.account.address,
            j.workUnits,
            j.pricePerUnit,
            j.cost,
            j.redundancy,
            j.priority,
            j.createdAt,
            j.deadlineAt,
            j.finishedAt,
            j.resultHash,
            j.error,
          ],
        );
      case 'ledger':
        return csvLines(
          [
            'id',
            'created_at',
            'tx_id',
            'kind',
            'account',
            'account_kind',
            'amount',
            'job_id',
            'epoch_id',
            'payee_peer_id',
            'payout_address',
          ],
          this.repo.ledger(filter),
          (e) => [
            e.id,
            e.createdAt,
            e.txId,
            e.kind,
            e.account,
            e.accountKind,
            e.amount,
            e.jobId,
            e.epochId,
            e.payeePeerId,
            e.payoutAddress,
          ],
        );
      case 'epochs':
        return csvLines(
          [
            'id',
            'state',
            'started_at',
            'closed_at',
            'total',
            'funded',
            'root',
            'file_hash',
            'tx_hash',
            'funding_tx_hash',
            'chain_key',
            'posted_at',
            'finalized_at',
            'vetoes',
            'blocked_reason',
          ],
          this.repo.epochs(filter),
          (e) => [
            e.id,
            e.state,
            e.startedAt,
            e.closedAt,
            e.total,
            e.funded,
            e.root,
            e.fileHash,
            e.txHash,
            e.fundingTxHash,
            e.chainKey,
            e.postedAt,
            e.finalizedAt,
            e.vetoes,
            e.blockedReason,
          ],
        );
    }
  }
}
