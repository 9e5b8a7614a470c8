import { createHash, randomBytes } from 'node:crypto';

import {
  ArtifactError,
  createGpumeshNode,
  fetchArtifact,
  fetchTensor,
  handleArtifactRequests,
  hashArtifact,
  putTensor,
  type HandleArtifactRequestsOptions,
  type GpumeshNode,
  type ModelArtifact,
} from '@gpumesh/p2p';
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TensorFiles } from '../../apps/coordinator/src/tensors/tensor-files.js';

import { connect, stopNodes } from './support.js';

describe('artifact protocol between real nodes', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  const modelJson = {
    format: 'layers-model',
    modelTopology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', units: 4 }] } },
    weightsManifest: [
      { paths: ['group1-shard1of1.bin'], weights: [{ name: 'dense/kernel', shape: [1024, 768] }] },
    ],
  };
  const weights = new Uint8Array(randomBytes(3 * 1024 * 1024 + 123));
  const artifact: ModelArtifact = { format: 'layers', modelJson, weights };
  const hash = hashArtifact(modelJson, weights);

  async function setup(
    serve: (requested: string) => ModelArtifact | undefined,
    options: Partial<Pick<HandleArtifactRequestsOptions, 'mayFetch' | 'onRefused'>> = {},
  ): Promise<GpumeshNode[]> {
    const coordinator = await createGpumeshNode();
    const agent = await createGpumeshNode({ listen: [] });
    nodes = [coordinator, agent];
    await handleArtifactRequests(coordinator, {
      mayFetch: options.mayFetch ?? (() => true),
      getArtifact: async (requested) => serve(requested),
      onRefused: options.onRefused,
    });
    await connect(agent, coordinator);
    return [coordinator, agent];
  }

  it('fetches an artifact by hash and verifies it', async () => {
    const [coordinator, agent] = await setup((requested) => (requested === hash ? artifact : undefined));
    const started = performance.now();
    const fetched = await fetchArtifact(agent, coordinator.peerId, hash);
    const firstMs = performance.now() - started;
    const again = performance.now();
    await fetchArtifact(agent, coordinator.peerId, hash);
    const againMs = performance.now() - again;
    console.info(
      `[p2p] artifact fetch ${weights.byteLength} bytes: first ${firstMs.toFixed(1)} ms, again ${againMs.toFixed(1)} ms`,
    );
    expect(fetched.format).toBe('layers');
    expect(fetched.modelJson).toEqual(modelJson);
    expect(Buffer.from(fetched.weights).equals(Buffer.from(weights))).toBe(true);
  });

  it('rejects a tampered artifact with HASH_MISMATCH', async () => {
    const tampered = new Uint8Array(weights);
    tampered[1000] ^= 0xff;
    const [coordinator, agent] = await setup(() => ({ ...artifact, weights: tampered }));
    const err = await fetchArtifact(agent, coordinator.peerId, hash).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArtifactError);
    expect((err as ArtifactError).code).toBe('HASH_MISMATCH');

    // a tampered model.json is caught the same way
    const [coordinator2, agent2] = await setup(() => ({
      ...artifact,
      modelJson: { ...modelJson, format: 'x' },
    }));
    nodes.push(coordinator, agent);
    const err2 = await fetchArtifact(agent2, coordinator2.peerId, hash).catch((e: unknown) => e);
    expect((err2 as ArtifactError).code).toBe('HASH_MISMATCH');
  });

  it('reports NOT_FOUND and enforces the size cap', async () => {
    const [coordinator, agent] = await setup((requested) => (requested === hash ? artifact : undefined));
    const missing = await fetchArtifact(agent, coordinator.peerId, 'ab'.repeat(32)).catch((e: unknown) => e);
    expect((missing as ArtifactError).code).toBe('NOT_FOUND');
    const tooLarge = await fetchArtifact(agent, coordinator.peerId, hash, { maxBytes: 1024 }).catch(
      (e: unknown) => e,
    );
    expect((tooLarge as ArtifactError).code).toBe('TOO_LARGE');
    // the connection survives both
    expect((await fetchArtifact(agent, coordinator.peerId, hash)).weights.byteLength).toBe(
      weights.byteLength,
    );
  });

  it('refuses a peer that may not fetch (FORBIDDEN), before any lookup, existing artifact or not', async () => {
    const looked: string[] = [];
    const refused: { peer: string; hash: string }[] = [];
    let allowed = false;
    const coordinator = await createGpumeshNode();
    const agent = await createGpumeshNode({ listen: [] });
    nodes = [coordinator, agent];
    await handleArtifactRequests(coordinator, {
      mayFetch: (requested, { remotePeer }) =>
        allowed && remotePeer === agent.peerId.toString() && requested === hash,
      getArtifact: async (requested) => {
        looked.push(requested);
        return requested === hash ? artifact : undefined;
      },
      onRefused: (peer, requested) => refused.push({ peer, hash: requested }),
    });
    await connect(agent, coordinator);
    const stored = await fetchArtifact(agent, coordinator.peerId, hash).catch((e: unknown) => e);
    const missing = await fetchArtifact(agent, coordinator.peerId, 'ab'.repeat(32)).catch((e: unknown) => e);
    for (const err of [stored, missing]) {
      expect(err).toBeInstanceOf(ArtifactError);
      expect((err as ArtifactError).code).toBe('FORBIDDEN');
    }
    // the same answer whether the artifact exists or not, and no lookup was made
    expect((missing as ArtifactError).message).toBe((stored as ArtifactError).message);
    expect(looked).toEqual([]);
    expect(refused).toEqual([
      { peer: agent.peerId.toString(), hash },
      { peer: agent.peerId.toString(), hash: 'ab'.repeat(32) },
    ]);
    allowed = true;
    expect((await fetchArtifact(agent, coordinator.peerId, hash)).weights.byteLength).toBe(
      weights.byteLength,
    );
    expect(looked).toEqual([hash]);
  });
  it('streams a job input by ref: verified while it arrives, tampered or mis-sized bytes refused', async () => {
    const tensor = new Uint8Array(randomBytes(5 * 1024 * 1024 + 8)); // several 1 MiB frames
    const sha256 = createHash('sha256').update(tensor).digest('hex');
    let served = tensor;
    const coordinator = await createGpumeshNode();
    const agent = await createGpumeshNode({ listen: [] });
    nodes = [coordinator, agent];
    await handleArtifactRequests(coordinator, {
      mayFetch: () => false,
      getArtifact: async () => undefined,
      mayFetchTensor: (requested) => requested === sha256,
      openTensor: async (requested) =>
        requested === sha256
          ? {
              bytes: served.byteLength,
              // odd-sized chunks: the server re-frames them
              chunks: (async function* () {
                for (let i = 0; i < served.byteLength; i += 700_000) yield served.subarray(i, i + 700_000);
              })(),
            }
          : undefined,
    });
    await connect(agent, coordinator);

    const fetched = await fetchTensor(agent, coordinator.peerId, { sha256, bytes: tensor.byteLength });
    expect(Buffer.from(fetched).equals(Buffer.from(tensor))).toBe(true);
    expect(fetched.byteOffset % 8).toBe(0);

    const codeOf = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'ok',
        (e: unknown) => (e instanceof ArtifactError ? e.code : String(e)),
      );
    // a length other than dtype × shape implies is refused from the header
    expect(
      await codeOf(fetchTensor(agent, coordinator.peerId, { sha256, bytes: tensor.byteLength - 4 })),
    ).toBe('BAD_FRAME');
    // another tensor, or one the peer may not fetch
    expect(await codeOf(fetchTensor(agent, coordinator.peerId, { sha256: 'ab'.repeat(32), bytes: 8 }))).toBe(
      'FORBIDDEN',
    );
    // bytes that do not hash to the ref
    served = new Uint8Array(tensor);
    served[3_000_000] ^= 1;
    expect(await codeOf(fetchTensor(agent, coordinator.peerId, { sha256, bytes: tensor.byteLength }))).toBe(
      'HASH_MISMATCH',
    );
  });

  it('takes a job output by ref (put-tensor): stored when allowed and whole, refused otherwise', async () => {
    const tensor = new Uint8Array(randomBytes(6 * 1024 * 1024 + 12)); // several 1 MiB frames
    const sha256 = createHash('sha256').update(tensor).digest('hex');
    const dir = await mkdtemp(join(tmpdir(), 'gpumesh-put-'));
    const files = new TensorFiles(dir);
    await files.init();
    let allowed = true;
    const refused: string[] = [];
    const coordinator = await createGpumeshNode();
    const agent = await createGpumeshNode({ listen: [] });
    nodes = [coordinator, agent];
    await handleArtifactRequests(coordinator, {
      mayFetch: () => false,
      getArtifact: async () => undefined,
      mayPutTensor: (upload) => allowed && upload.bytes <= 8 * 1024 * 1024,
      storeTensor: (upload, chunks) =>
        files.writeExpected(chunks, upload.sha256, upload.bytes, (place) => place()),
      onRefused: (_peer, hash) => refused.push(hash),
    });
    await connect(agent, coordinator);
    const codeOf = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'ok',
        (e: unknown) => (e instanceof ArtifactError ? e.code : String(e)),
      );
    try {
      await putTensor(agent, coordinator.peerId, tensor, sha256);
      expect(Buffer.from(await readFile(files.pathOf(sha256))).equals(Buffer.from(tensor))).toBe(true);
      // bytes that do not hash to what was announced are not kept
      const other = 'cd'.repeat(32);
      expect(await codeOf(putTensor(agent, coordinator.peerId, tensor, other))).toBe('REMOTE_ERROR');
      expect(await files.exists(other)).toBe(false);
      // over the size the server allows, or without an open offer: refused before any byte
      const big = new Uint8Array(9 * 1024 * 1024);
      const bigHash = createHash('sha256').update(big).digest('hex');
      expect(await codeOf(putTensor(agent, coordinator.peerId, big, bigHash))).toBe('FORBIDDEN');
      allowed = false;
      expect(await codeOf(putTensor(agent, coordinator.peerId, tensor, sha256))).toBe('FORBIDDEN');
      expect(refused).toEqual([bigHash, sha256]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
