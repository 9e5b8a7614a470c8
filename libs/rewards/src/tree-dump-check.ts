import { isWellFormedTreeDump } from './epoch-file.js';
import { LEAF_ENCODING, leafHasher } from './leaf.js';
import { buildMerkleTree } from './merkle.js';

/**
 * What the audit's worker makes of an epoch file's tree dump on its own, without the leaves: either
 * the dump is exactly the tree its own values give (`faithful`, with that root and the values in the
 * compact form `DumpValues`), or something is off (`unsure`: the audit then runs in full on one
 * thread, which names it).
 *
 * A faithful dump whose values equal `leafValues(file)` (`sameValues`) is the tree the file's leaves
 * give: each value holds the chain id, distributor, index, account and cumulative amount of the leaf
 * hashed, so the leaf hashes, the tree, its root and the dump's positions are the same, and
 * `auditEpoch`'s tree checks would find nothing.
 */
export type TreeDumpVerdict =
  | ({ readonly kind: 'faithful'; readonly root: string } & DumpValues)
  | { readonly kind: 'unsure'; readonly why: string };

/**
 * The dump's values, or a file's leaves, in a form two threads compare in a few milliseconds: one
 * domain; the indices as numbers (each a safe integer, written in decimal without leading zeros, so
 * its number gives back its string); the accounts joined (each 42 characters); the amounts joined
 * with commas (decimal digits only).
 */
export interface DumpValues {
  readonly chainId: string;
  readonly distributor: string;
  readonly indices: Float64Array;
  readonly accounts: string;
  readonly amounts: string;
}

/** The values the file's leaves give (a well-formed file's), to compare with a faithful verdict's. */
export function leafValues(file: {
  readonly chainId: number;
  readonly distributor: string;
  readonly leaves: readonly { index: number; account: string; cumulativeAmount: string }[];
}): DumpValues {
  const n = file.leaves.length;
  const indices = new Float64Array(n);
  const accounts = new Array<string>(n);
  const amounts = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const l = file.leaves[i];
    indices[i] = l.index;
    accounts[i] = l.account;
    amounts[i] = l.cumulativeAmount;
  }
  return {
    chainId: String(file.chainId),
    distributor: file.distributor,
    indices,
    accounts: accounts.join(''),
    amounts: amounts.join(','),
  };
}

/** The two are the same values, leaf for leaf. */
export function sameValues(a: DumpValues, b: DumpValues): boolean {
  if (
    a.chainId !== b.chainId ||
    a.distributor !== b.distributor ||
    a.indices.length !== b.indices.length ||
    a.accounts !== b.accounts ||
    a.amounts !== b.amounts
  ) {
    return false;
  }
  for (let i = 0; i < a.indices.length; i++) if (a.indices[i] !== b.indices[i]) return false;
  return true;
}

/** Parses the dump's text and checks it is the tree of its own values (see `TreeDumpVerdict`). */
export function checkTreeDumpText(text: string): TreeDumpVerdict {
  const unsure = (why: string): TreeDumpVerdict => ({ kind: 'unsure', why });
  let dump: unknown;
  try {
    dump = JSON.parse(text);
  } catch {
    return unsure('the tree is not JSON');
  }
  if (!isWellFormedTreeDump(dump)) return unsure('the tree is not well-formed');
  if (dump.leafEncoding.join(',') !== LEAF_ENCODING.join(',')) return unsure('another leaf encoding');
  const n = dump.values.length;
  if (n === 0) return unsure('the tree has no values');
  const [chainId, distributor] = dump.values[0].value;
  const leaves = new Array<Uint8Array>(n);
  const indices = new Float64Array(n);
  const accounts = new Array<string>(n);
  const amounts = new Array<string>(n);
  try {
    const hash = leafHasher({ chainId: Number(chainId), distributor });
    for (let i = 0; i < n; i++) {
      const v = dump.values[i].value;
      if (v[0] !== chainId || v[1] !== distributor) return unsure('values of several domains');
      // A safe integer (or the hasher throws) in canonical decimal (well-formed): its number is exact.
      indices[i] = Number(v[2]);
      leaves[i] = hash(indices[i], v[3], BigInt(v[4]));
      accounts[i] = v[3];
      amounts[i] = v[4];
    }
  } catch (err) {
    return unsure(`a value cannot be encoded: ${(err as Error).message}`);
  }
  const tree = buildMerkleTree(leaves);
  if (dump.tree.length !== 2 * n - 1 || tree.firstNodeMismatch(dump.tree) !== -1)
    return unsure('the nodes are not the values’ tree');
  for (let i = 0; i < n; i++) {
    if (dump.values[i].treeIndex !== tree.treeIndex(i)) return unsure('a value is misplaced');
  }
  return {
    kind: 'faithful',
    root: tree.root,
    chainId,
    distributor,
    indices,
    accounts: accounts.join(''),
    amounts: amounts.join(','),
  };
}
