import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keccak256Hex } from '@gpumesh/rewards';
import { afterEach, describe, expect, it } from 'vitest';

import { EpochFileStore } from './epoch-store.js';

const HOLDER = `0x${'1a'.repeat(20)}`;
const DISTRIBUTOR = `0x${'d0'.repeat(20)}`;

function file(epoch: number, accounts: string[]): { bytes: Uint8Array; hash: string } {
  const bytes = new TextEncoder().encode(
    JSON.stringify({ epoch, leaves: accounts.map((account) => ({ account })) }),
  );
  return { bytes, hash: keccak256Hex(bytes) };
}

describe('EpochFileStore', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps only bytes that hash to the file hash, finds them again after a restart, and drops corrupted ones', async () => {
    dir = await mkdtemp(join(tmpdir(), 'epoch-store-'));
    const store = await EpochFileStore.open(dir, HOLDER);
    const one = file(1, [HOLDER]);
    await expect(store.put(DISTRIBUTOR, 1, `0x${'00'.repeat(32)}`, one.bytes)).rejects.toThrow(/hashes to/);
    await store.put(DISTRIBUTOR, 1, one.hash, one.bytes);
    const reopened = await EpochFileStore.open(dir, HOLDER);
    expect(reopened.list()).toMatchObject([
      { distributor: DISTRIBUTOR, epoch: 1, fileHash: one.hash, concernsHolder: true },
    ]);
    expect(
      Buffer.from((await reopened.getEpoch(DISTRIBUTOR, 1, one.hash))!).equals(Buffer.from(one.bytes)),
    ).toBe(true);
    expect(await reopened.getEpoch(DISTRIBUTOR, 2, one.hash)).toBeUndefined();
    await writeFile(join(dir, DISTRIBUTOR, '1.json'), '{"tampered":true}');
    expect(await reopened.get(one.hash)).toBeUndefined();
    expect(reopened.has(one.hash)).toBe(false);
  });

  it('keeps every file naming the holder and the newest N of the others', async () => {
    dir = await mkdtemp(join(tmpdir(), 'epoch-store-'));
    const store = await EpochFileStore.open(dir, HOLDER, 2);
    for (let epoch = 1; epoch <= 6; epoch++) {
      const f = file(epoch, epoch % 3 === 0 ? [HOLDER] : [`0x${'2b'.repeat(20)}`]);
      await store.put(DISTRIBUTOR, epoch, f.hash, f.bytes);
    }
    expect(store.list().map((f) => f.epoch)).toEqual([3, 4, 5, 6]);
    expect((await readdir(join(dir, DISTRIBUTOR))).sort()).toEqual(['3.json', '4.json', '5.json', '6.json']);
  });
});
