import { isWellFormedTreeDump } from './epoch-file.js';
import { LEAF_ENCODING, leafHasher } from './leaf.js';
import { buildMerkleTree } from './merkle.js';

/**
 * What the audit's worker makes of an epoch file's tree dump on its own, without the leaves: either
 * the dump is exactly the tree its own values give (`faithful`, with that root and the values as one
 * string), or something is off (`unsure`: the audit then runs in full on one thread, which names it).
 *
 * A faithful dump whose `values` string equals `leafValues(file)` is the tree the file's leaves give:
 * each value holds the chain id, distributor, index, account and cumulative amount of the leaf hashed
 * (decimal strings and lower-case addresses, none containing `,` or a newline once well-formed), so
 * the leaf hashes, the tree, its root and the dump's positions are the same, and `auditEpoch`'s tree
 * checks would find nothing.
 */
export type TreeDumpVerdict =
  | { readonly kind: 'faithful'; readonly root: string; readonly values: string }
  | { readonly kind: 'unsure'; readonly why: string };

/** One leaf's value as the dump writes it, in the form `TreeDumpVerdict.values` joins. */
function valueKey(
  chainId: string,
  distributor: string,
  index: string,
  account: string,
  amount: string,
): string {
  return `${chainId},${distributor},${index},${account},${amount}`;
}

/** The values the file's leaves give, joined as a faithful verdict's `values`. */
export function leafValues(file: {
  readonly chainId: number;
  readonly distributor: string;
  readonly leaves: readonly { index: number; account: string; cumulativeAmount: string }[];
}): string {
  const chainId = String(file.chainId);
  const keys = new Array<string>(file.leaves.length);
  for (let i = 0; i < keys.length; i++) {
    const l = file.leaves[i];
    keys[i] = valueKey(chainId, file.distributor, String(l.index), l.account, l.cumulativeAmount);
  }
  return keys.join('\n');
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
  const keys = new Array<string>(n);
  try {
    const hash = leafHasher({ chainId: Number(chainId), distributor });
    for (let i = 0; i < n; i++) {
      const v = dump.values[i].value;
      if (v[0] !== chainId || v[1] !== distributor) return unsure('values of several domains');
      leaves[i] = hash(Number(v[2]), v[3], BigInt(v[4]));
      keys[i] = valueKey(v[0], v[1], v[2], v[3], v[4]);
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
  return { kind: 'faithful', root: tree.root, values: keys.join('\n') };
}
