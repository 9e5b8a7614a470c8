import { MAX_CUMULATIVE_AMOUNT } from './amounts.js';
import {
  EPOCH_FILE_FORMAT,
  epochFileHash,
  epochTree,
  parseEpochFile,
  type EpochFile,
  type EpochReceipt,
} from './epoch-file.js';
import { decodeUtf8 } from './epoch-file-split.js';
import type { LeafPosition, ReceiptFacts } from './epoch-leaves-scan.js';
import { RewardsError } from './errors.js';
import { fundingRootOf } from './funding.js';
import { keccak256Hex } from './keccak.js';
import type { MerkleTree } from './merkle.js';
import { LEAF_ENCODING, type LeafDomain } from './leaf.js';

export type AuditProblemCode =
  | 'INVALID_FILE'
  | 'LEAF_ORDER'
  | 'DUPLICATE_INDEX'
  | 'DUPLICATE_ACCOUNT'
  | 'AMOUNT_MISMATCH'
  | 'AMOUNT_OVERFLOW'
  | 'MISSING_RECEIPTS'
  | 'DUPLICATE_RECEIPT'
  | 'TOTAL_MISMATCH'
  | 'DEBITS_MISMATCH'
  | 'FUNDING_MISMATCH'
  | 'CHAIN_FUNDING_ROOT_MISMATCH'
  | 'ROOT_MISMATCH'
  | 'TREE_MISMATCH'
  | 'DOMAIN_MISMATCH'
  | 'CHAIN_ROOT_MISMATCH'
  | 'CHAIN_FILE_HASH_MISMATCH'
  | 'PREVIOUS_MISMATCH';

export interface AuditProblem {
  readonly code: AuditProblemCode;
  readonly message: string;
}

export interface AuditReport {
  readonly ok: boolean;
  readonly epoch: number | null;
  /** The root recomputed from the leaves (null when the file could not be read). */
  readonly root: string | null;
  readonly fileHash: string | null;
  readonly leafCount: number;
  readonly problems: readonly AuditProblem[];
  /** The file as parsed (null when it could not be read): no need to parse it again. */
  readonly file: EpochFile | null;
  /**
   * Its leaves without their receipts (empty when it could not be read): what the next epoch's audit
   * needs as `previous`, kept without holding every receipt.
   */
  readonly positions: readonly LeafPosition[];
}

/** The previous epoch, as far as the continuity check reads it (an `EpochFile` will do). */
export interface PreviousEpoch {
  readonly epoch: number;
  readonly leaves: readonly Pick<LeafPosition, 'index' | 'account' | 'cumulativeAmount'>[];
}

export interface AuditOptions {
  /** The previous epoch's file (or its positions): checks each provider carries on from where it stood. */
  readonly previous?: PreviousEpoch;
  /** Stop listing problems of one kind after this many (default 20). */
  readonly maxProblemsPerCode?: number;
  /**
   * The chain and distributor the root was read from: a file for another domain is refused
   * (`DOMAIN_MISMATCH`), since its leaves prove nothing here.
   */
  readonly domain?: LeafDomain;
  /**
   * The JobEscrow that funds the distributor: the file's `funding` must name it whenever the epoch
   * debits anything (`FUNDING_MISMATCH`), or the batches could never be debited.
   */
  readonly escrow?: string;
  /** The epoch's `fundingRoot` on chain: it must be the root of the file's batches. */
  readonly chainFundingRoot?: string;
}

/** What the two-thread audit (`EpochAuditor`) knows of a file before `auditParsedEpoch` runs. */
export interface KnownFacts {
  /**
   * The file's tree dump is the tree its leaves give (the worker's check), with this root: the tree
   * is then neither rebuilt nor compared.
   */
  readonly treeRoot?: string;
  /**
   * The leaves scanned from the bytes (`scanEpochLeaves`): their positions, and their receipts summed
   * with no id repeated in the file. The file's `leaves` (and their receipts) are then not read.
   */
  readonly scanned?: { readonly positions: readonly LeafPosition[]; readonly receipts: ReceiptFacts };
}

/**
 * Recomputes an epoch from its file alone and checks it against what is on chain: the leaves'
 * arithmetic (cumulative = previous + epoch amount, totals, debits), that each epoch amount is
 * justified by receipts used once, the Merkle root, and the chain's root and file hash.
 */
export function auditEpoch(
  epochFile: EpochFile | Uint8Array | string | unknown,
  chainRoot: string,
  chainFileHash: string,
  options: AuditOptions = {},
): AuditReport {
  // The bytes as fetched are hashed as they are (faster than hashing their text), and decoded once.
  const given = epochFile instanceof Uint8Array ? epochFile : null;
  let file: EpochFile;
  try {
    file = parseEpochFile(given ? decodeUtf8(given) : epochFile);
  } catch (err) {
    return unreadableFileReport(err);
  }
  const rawHash =
    given || typeof epochFile === 'string' ? keccak256Hex(given ?? (epochFile as string)) : null;
  return auditParsedEpoch(file, rawHash, chainRoot, chainFileHash, options);
}

/** The report on a file that could not be parsed. */
export function unreadableFileReport(err: unknown): AuditReport {
  const message = err instanceof RewardsError ? err.message : String(err);
  return {
    ok: false,
    epoch: null,
    root: null,
    fileHash: null,
    leafCount: 0,
    problems: [{ code: 'INVALID_FILE', message }],
    file: null,
    positions: [],
  };
}

/**
 * `auditEpoch` of a parsed file. `rawHash`: keccak256 of the bytes (or text) as given, null for a
 * parsed value. `known`: what `EpochAuditor` already established on its fast path (see `KnownFacts`).
 */
export function auditParsedEpoch(
  file: EpochFile,
  rawHash: string | null,
  chainRoot: string,
  chainFileHash: string,
  options: AuditOptions = {},
  known: KnownFacts = {},
): AuditReport {
  const problems: AuditProblem[] = [];
  const counts = new Map<AuditProblemCode, number>();
  const limit = options.maxProblemsPerCode ?? 20;
  const report = (code: AuditProblemCode, message: string): void => {
    const n = (counts.get(code) ?? 0) + 1;
    counts.set(code, n);
    if (n <= limit) problems.push({ code, message });
  };
  if (file.format !== EPOCH_FILE_FORMAT) report('INVALID_FILE', `unsupported format ${file.format}`);
  if (
    options.domain &&
    (options.domain.chainId !== file.chainId || options.domain.distributor.toLowerCase() !== file.distributor)
  ) {
    report(
      'DOMAIN_MISMATCH',
      `file is for distributor ${file.distributor} on chain ${file.chainId}, not ${options.domain.distributor.toLowerCase()} on chain ${options.domain.chainId}`,
    );
  }

  const indices = new Set<number>();
  const accounts = new Set<string>();
  const receipts = new Set<string>();
  const facts = known.scanned?.receipts;
  const leaves = known.scanned?.positions ?? file.leaves;
  let total = 0n;
  let cumulativeTotal = 0n;
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i];
    if (i > 0 && leaf.index <= leaves[i - 1].index)
      report('LEAF_ORDER', `leaf ${i}: index ${leaf.index} out of order`);
    if (indices.has(leaf.index)) report('DUPLICATE_INDEX', `index ${leaf.index} appears twice`);
    indices.add(leaf.index);
    if (accounts.has(leaf.account)) report('DUPLICATE_ACCOUNT', `${leaf.account} appears twice`);
    accounts.add(leaf.account);
    const cumulative = BigInt(leaf.cumulativeAmount);
    const previous = BigInt(leaf.previousAmount);
    const added = BigInt(leaf.epochAmount);
    if (previous + added !== cumulative) {
      report('AMOUNT_MISMATCH', `${leaf.account}: ${previous} + ${added} ≠ ${cumulative}`);
    }
    if (cumulative > MAX_CUMULATIVE_AMOUNT)
      report('AMOUNT_OVERFLOW', `${leaf.account}: ${cumulative} exceeds uint64`);
    let receipted: bigint;
    let zero: boolean;
    let receiptCount: number;
    if (facts) {
      receipted = facts.sums[i];
      zero = facts.zero[i] === 1;
      receiptCount = facts.counts[i];
    } else {
      const leafReceipts = file.leaves[i].receipts;
      ({ sum: receipted, zero } = sumReceipts(leafReceipts));
      receiptCount = leafReceipts.length;
      for (const { id } of leafReceipts) {
        const before = receipts.size;
        receipts.add(id);
        if (receipts.size === before) report('DUPLICATE_RECEIPT', `receipt ${id} credited twice`);
      }
    }
    if (receipted !== added || zero) {
      report(
        'MISSING_RECEIPTS',
        `${leaf.account}: epoch amount ${added}, its ${receiptCount} receipt(s) pay ${receipted}`,
      );
    }
    total += added;
    cumulativeTotal += cumulative;
  }
  if (total.toString() !== file.total)
    report('TOTAL_MISMATCH', `epoch amounts add up to ${total}, file says ${file.total}`);
  if (cumulativeTotal.toString() !== file.cumulativeTotal) {
    report(
      'TOTAL_MISMATCH',
      `cumulative amounts add up to ${cumulativeTotal}, file says ${file.cumulativeTotal}`,
    );
  }
  if (file.debits.length > 0) {
    const debitTotal = file.debits.reduce((s, d) => s + BigInt(d.amount), 0n);
    if (debitTotal !== total)
      report('DEBITS_MISMATCH', `debits add up to ${debitTotal}, credits to ${total}`);
  }
  checkFunding(file, options, report);

  if (options.previous) {
    const prev = options.previous;
    if (prev.epoch + 1 !== file.epoch)
      report('PREVIOUS_MISMATCH', `previous file is epoch ${prev.epoch}, not ${file.epoch - 1}`);
    const byAccount = new Map(leaves.map((l) => [l.account, l]));
    let maxIndex = -1;
    for (const p of prev.leaves) {
      maxIndex = Math.max(maxIndex, p.index);
      const now = byAccount.get(p.account);
      if (!now) report('PREVIOUS_MISMATCH', `${p.account} dropped from the tree`);
      else if (now.index !== p.index || now.previousAmount !== p.cumulativeAmount) {
        report(
          'PREVIOUS_MISMATCH',
          `${p.account}: was index ${p.index} at ${p.cumulativeAmount}, now index ${now.index} from ${now.previousAmount}`,
        );
      }
    }
    const paidBefore = new Set(prev.leaves.map((l) => l.account));
    for (const l of leaves) {
      if (!paidBefore.has(l.account) && (l.previousAmount !== '0' || l.index <= maxIndex)) {
        report(
          'PREVIOUS_MISMATCH',
          `${l.account}: new provider with previous ${l.previousAmount} at index ${l.index}`,
        );
      }
    }
  }

  let root: string;
  if (known.treeRoot === undefined) {
    const tree = epochTree(file);
    root = tree.root;
    if (root !== file.root) report('ROOT_MISMATCH', `leaves give root ${root}, file says ${file.root}`);
    checkTreeDump(file, tree, report);
  } else {
    root = known.treeRoot;
    if (root !== file.root) report('ROOT_MISMATCH', `leaves give root ${root}, file says ${file.root}`);
  }
  if (root !== chainRoot.toLowerCase())
    report('CHAIN_ROOT_MISMATCH', `leaves give root ${root}, chain has ${chainRoot}`);
  // The text as given is the committed bytes when its hash is the chain's (what a coordinator serves):
  // no need to encode the parsed file again. Otherwise the canonical form decides (a pretty-printed copy).
  const fileHash = rawHash === chainFileHash.toLowerCase() ? rawHash : epochFileHash(file);
  if (fileHash !== chainFileHash.toLowerCase()) {
    report('CHAIN_FILE_HASH_MISMATCH', `file hashes to ${fileHash}, chain has ${chainFileHash}`);
  }
  return {
    ok: counts.size === 0,
    epoch: file.epoch,
    root,
    fileHash,
    leafCount: leaves.length,
    problems,
    file,
    positions: known.scanned?.positions ?? file.leaves.map(({ receipts: _, ...position }) => position),
  };
}

/** 2^53: below it a sum of numbers is exact. */
const EXACT = Number.MAX_SAFE_INTEGER + 1;

/**
 * The sum of receipt amounts (decimal strings), and whether one is zero. Amounts of up to 15 digits
 * add up as numbers while the sum stays exact, and only then as a bigint: a million receipts add up
 * in milliseconds rather than a bigint each.
 */
export function sumReceipts(receipts: readonly EpochReceipt[]): { sum: bigint; zero: boolean } {
  let big = 0n;
  let small = 0;
  let zero = false;
  for (const { amount } of receipts) {
    if (amount === '0') zero = true;
    if (amount.length <= 15) {
      small += Number(amount);
      if (small >= EXACT / 2) {
        big += BigInt(small);
        small = 0;
      }
    } else {
      big += BigInt(amount);
    }
  }
  return { sum: big + BigInt(small), zero };
}

/**
 * Checks the file's `standard-v1` dump is the tree its leaves give, node for node, so
 * OpenZeppelin's `StandardMerkleTree.load(file.tree)` yields the same root and proofs.
 */
function checkTreeDump(
  file: EpochFile,
  tree: MerkleTree,
  report: (code: AuditProblemCode, message: string) => void,
): void {
  const dump = file.tree;
  if (dump === null) {
    if (file.leaves.length > 0) report('TREE_MISMATCH', 'the file has leaves but no tree');
    return;
  }
  if (dump.leafEncoding.join(',') !== LEAF_ENCODING.join(',')) {
    report(
      'TREE_MISMATCH',
      `leaf encoding ${dump.leafEncoding.join(',')}, expected ${LEAF_ENCODING.join(',')}`,
    );
  }
  const nodeCount = tree.leafCount === 0 ? 0 : 2 * tree.leafCount - 1;
  if (dump.tree.length !== nodeCount) {
    report('TREE_MISMATCH', `the tree has ${dump.tree.length} nodes, the leaves give ${nodeCount}`);
  } else {
    const i = tree.firstNodeMismatch(dump.tree);
    if (i >= 0)
      report('TREE_MISMATCH', `tree node ${i} is ${dump.tree[i]}, the leaves give ${tree.nodes()[i]}`);
  }
  if (dump.values.length !== file.leaves.length) {
    report('TREE_MISMATCH', `the tree has ${dump.values.length} values for ${file.leaves.length} leaves`);
    return;
  }
  const chainId = String(file.chainId);
  for (let i = 0; i < file.leaves.length; i++) {
    const leaf = file.leaves[i];
    const { value, treeIndex } = dump.values[i];
    if (
      value[0] !== chainId ||
      value[1] !== file.distributor ||
      value[2] !== String(leaf.index) ||
      value[3] !== leaf.account ||
      value[4] !== leaf.cumulativeAmount ||
      treeIndex !== tree.treeIndex(i)
    ) {
      report('TREE_MISMATCH', `tree value ${i} does not match leaf ${leaf.account}`);
    }
  }
}

/**
 * The file's funding: its batches give its funding root, the root is the chain's, and it names the
 * watched escrow when the epoch debits anything (otherwise the epoch could only be funded by the
 * settler's goodwill, which is what the funding root exists to remove).
 */
function checkFunding(
  file: EpochFile,
  options: AuditOptions,
  report: (code: AuditProblemCode, message: string) => void,
): void {
  const funding = file.funding;
  let root = ZERO_HASH;
  if (funding === null) {
    if (options.escrow !== undefined && file.debits.length > 0)
      report(
        'FUNDING_MISMATCH',
        `the epoch debits ${file.debits.length} accounts but the file names no escrow funding`,
      );
  } else {
    if (options.escrow !== undefined && funding.escrow !== options.escrow.toLowerCase())
      report('FUNDING_MISMATCH', `the file's debits go to escrow ${funding.escrow}, not ${options.escrow}`);
    root = fundingRootOf(
      { chainId: file.chainId, escrow: funding.escrow },
      file.epoch,
      file.debits,
      funding.batchSize,
    );
    if (root !== funding.root)
      report('FUNDING_MISMATCH', `the debits give funding root ${root}, the file says ${funding.root}`);
  }
  if (options.chainFundingRoot !== undefined && root !== options.chainFundingRoot.toLowerCase()) {
    report(
      'CHAIN_FUNDING_ROOT_MISMATCH',
      `the debits give funding root ${root}, chain has ${options.chainFundingRoot}`,
    );
  }
}

const ZERO_HASH = `0x${'0'.repeat(64)}`;
