// Outputs by ref uploaded with `put-tensor` are recorded in PostgreSQL (OutputUpload), not only in
// the coordinator's memory: after a restart on the same database and data directory, a result naming
// an output the provider uploaded before (an agent replays it from its journal) is taken, while one
// naming an output another peer uploaded, or an upload older than UPLOAD_CLAIM_TTL_MS, is still
// OUTPUT_NOT_UPLOADED. Real coordinators (PostgreSQL, Redis, libp2p), a bare libp2p node as provider.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGpumeshNode, putTensor, type GpumeshNode } from '@gpumesh/p2p';
import { parseJobSpec, type TensorRef } from '@gpumesh/protocol';
import { startCoordinatorOn, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { pollUntil, query } from '../helpers/poll.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TensorsService } from '../../apps/coordinator/src/tensors/tensors.service.js';
import { UPLOAD_CLAIM_TTL_MS } from '../../apps/coordinator/src/tensors/output-uploads.js';

/** A bare libp2p node connected to the coordinator `c`, as a provider would be. */
async function providerOf(c: TestCoordinator): Promise<{ node: GpumeshNode; coordinatorPeer: string }> {
  const network = (await (await fetch(`${c.url}/v1/network`)).json()) as {
    peers: { peerId: string; multiaddrs: string[] }[];
  };
  const coordinator = network.peers[0];
  const node = await createGpumeshNode({ listen: [], bootstrap: coordinator.multiaddrs });
  await pollUntil(
    'the provider connected',
    async () => (node.getPeers().some((p) => p.toString() === coordinator.peerId) ? true : undefined),
    10_000,
  );
  return { node, coordinatorPeer: coordinator.peerId };
}

describe('output uploads survive a coordinator restart (real PostgreSQL, Redis, libp2p)', () => {
  let db: TestDatabase;
  let dataDir: string;
  let c: TestCoordinator | undefined;
  const nodes: GpumeshNode[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'gpumesh-output-uploads-'));
  });
  afterAll(async () => {
    for (const node of nodes) await node.stop();
    await c?.close();
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('takes a result naming an output uploaded before the restart, and only from its uploader', async () => {
    // One offer's worth of grant: a 48×40 float32 product (7,680 bytes) may be uploaded.
    const spec = parseJobSpec(matmulSpec(48, 40, 40, '5'));
    const product = Float32Array.from({ length: 48 * 40 }, (_, i) => ((i % 17) - 8) / 16);
    const bytes = new Uint8Array(product.buffer);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const output: TensorRef = {
      name: 'c',
      ref: `sha256:${sha256}`,
      dtype: 'float32',
      shape: [48, 40],
      sha256,
    };

    c = await startCoordinatorOn(db.url, { DATA_DIR: dataDir });
    const provider = await providerOf(c);
    nodes.push(provider.node);
    const peerId = provider.node.peerId.toString();
    const before = c.running.app.get(TensorsService);
    // the coordinator opens the grant when it sends an offer (P2pService.offer); here, directly
    const release = before.grantOutputs(peerId, spec);
    await putTensor(provider.node, provider.coordinatorPeer, bytes, sha256);
    release();
    expect(await before.outputsMissing(peerId, [output])).toBeNull();
    const rows = await query<{ peerId: string; sha256: string }>(
      db.url,
      'SELECT "peerId", sha256 FROM "OutputUpload"',
    );
    expect(rows).toEqual([{ peerId, sha256 }]);

    // Restart: a new process's memory, the same database and tensor store.
    await c.close();
    c = undefined;
    c = await startCoordinatorOn(db.url, { DATA_DIR: dataDir });
    const after = c.running.app.get(TensorsService);
    expect(await after.outputsMissing(peerId, [output])).toBeNull();

    // Still only the uploader's: another peer naming the same bytes did not upload them.
    const other = await providerOf(c);
    nodes.push(other.node);
    expect(await after.outputsMissing(other.node.peerId.toString(), [output])).toMatch(
      /^OUTPUT_NOT_UPLOADED: output c names sha256:[0-9a-f]{64}, which this provider did not upload$/,
    );
    // A shape the bytes do not fill is not taken either.
    expect(await after.outputsMissing(peerId, [{ ...output, shape: [48, 41] }])).toMatch(
      /^OUTPUT_NOT_UPLOADED: output c \(sha256:[0-9a-f]{64}\) is 7680 stored; its dtype and shape need 7872 bytes$/,
    );
    // An upload older than the claim window is forgotten, as it was in memory.
    await query(db.url, `UPDATE "OutputUpload" SET "storedAt" = now() - make_interval(secs => $1)`, [
      UPLOAD_CLAIM_TTL_MS / 1000 + 60,
    ]);
    expect(await after.outputsMissing(peerId, [output])).toMatch(/which this provider did not upload$/);
  }, 120_000);
});
