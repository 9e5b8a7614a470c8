// Garbage, truncated, malformed and oversized length-prefixed frames from a bare libp2p node on the job
// protocol of a real agent process and on the artifact protocol of a real coordinator. Each bad stream
// ends with an error (reset, or a `reject` frame and a close) within seconds; both processes survive,
// a garbage sender is cut off by the coordinator, and honest streams (an artifact fetch, a real job)
// keep working meanwhile.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identify } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import fc from 'fast-check';
import { createLibp2p, type Libp2p } from 'libp2p';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACT_PROTOCOL_ID, JOB_PROTOCOL_ID } from '@gpumesh/protocol';
import { createGpumeshNode, encodeVarint, fetchArtifact, hashArtifact, type GpumeshNode } from '@gpumesh/p2p';
import { ArtifactsService } from '../../apps/coordinator/src/artifacts/artifacts.service.js';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { AGENT_MAIN, assertBuilt, runProcess, startProcess, type Started } from '../helpers/processes.js';
import { matmulSpec } from '../helpers/specs.js';
import { signedOffer } from '../p2p/support.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_108);
const RUNS = Number(process.env.FUZZ_FRAME_RUNS ?? 30);
const PASSPHRASE = 'frames-fuzz-passphrase';
/** A bad stream must be over (reset or closed by the server) within this. */
const STREAM_END_MS = 8_000;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const frame = (body: Uint8Array): Uint8Array => {
  const prefix = encodeVarint(body.byteLength);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix);
  out.set(body, prefix.length);
  return out;
};

/** What a fuzz case writes: chunks, then either a clean end of its write side or nothing more. */
interface Case {
  name: string;
  chunks: Uint8Array[];
  closeWrite: boolean;
}

function caseArb(offerFrame: Uint8Array): fc.Arbitrary<Case> {
  return fc.oneof(
    fc
      .uint8Array({ minLength: 1, maxLength: 300 })
      .map((b) => ({ name: 'random bytes', chunks: [b], closeWrite: true })),
    fc.string({ unit: 'binary', maxLength: 200 }).map((s) => ({
      name: 'frame of random text',
      chunks: [frame(enc(s))],
      closeWrite: fc.sample(fc.boolean(), 1)[0],
    })),
    fc.jsonValue({ maxDepth: 3 }).map((v) => ({
      name: 'frame of random JSON',
      chunks: [frame(enc(JSON.stringify(v)))],
      closeWrite: true,
    })),
    fc.constantFrom<Case>(
      {
        name: 'malformed varint',
        chunks: [new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
        closeWrite: false,
      },
      { name: 'non-minimal varint', chunks: [new Uint8Array([0x85, 0x00])], closeWrite: false },
      { name: 'length prefix of 2^34 bytes', chunks: [encodeVarint(2 ** 34)], closeWrite: false },
      {
        name: 'length prefix just over 96 MiB',
        chunks: [encodeVarint(96 * 1024 * 1024 + 1)],
        closeWrite: false,
      },
      {
        name: 'truncated frame, then end',
        chunks: [encodeVarint(1000), enc('{"type":"get"')],
        closeWrite: true,
      },
      { name: 'prefix only, then end', chunks: [encodeVarint(50)], closeWrite: true },
      { name: 'empty frame', chunks: [frame(new Uint8Array())], closeWrite: true },
      { name: 'not UTF-8', chunks: [frame(new Uint8Array([0xc3, 0x28, 0xa0, 0xa1]))], closeWrite: true },
      {
        name: 'deeply nested JSON',
        chunks: [frame(enc(`${'['.repeat(100_000)}${']'.repeat(100_000)}`))],
        closeWrite: true,
      },
      {
        name: 'prototype pollution',
        chunks: [frame(enc('{"type":"get","hash":"x","__proto__":{"admin":true}}'))],
        closeWrite: true,
      },
      {
        name: 'request for a bad hash',
        chunks: [frame(enc('{"type":"get","hash":"../../etc/passwd"}'))],
        closeWrite: true,
      },
      { name: 'wrong frame type', chunks: [frame(enc('{"type":"accept"}'))], closeWrite: true },
      {
        name: 'two frames where one is expected',
        chunks: [frame(enc('{"type":"cancel"}')), frame(enc('{}'))],
        closeWrite: true,
      },
      {
        name: 'oversized control frame (1 MiB + 1 of JSON)',
        chunks: [frame(enc(JSON.stringify({ type: 'get', pad: 'x'.repeat(1024 * 1024) })))],
        closeWrite: false,
      },
      {
        name: 'a validly shaped offer signed by a key the agent does not trust',
        chunks: [offerFrame],
        closeWrite: false,
      },
    ),
  );
}

/** Opens a stream, writes the case, and waits for the remote to end it. */
async function run(
  node: Libp2p,
  target: string,
  protocol: string,
  c: Case,
): Promise<{ end: 'closed' | 'reset' | 'timeout' | 'refused'; received: string }> {
  let stream;
  try {
    stream = await node.dialProtocol(multiaddr(target), protocol, { signal: AbortSignal.timeout(5_000) });
  } catch {
    return { end: 'refused', received: '' };
  }
  let received = '';
  const reading = (async (): Promise<'closed' | 'reset'> => {
    try {
      for await (const chunk of stream) {
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
        if (received.length < 2000) received += Buffer.from(bytes).toString('latin1');
      }
      return 'closed';
    } catch {
      return 'reset';
    }
  })();
  try {
    for (const chunk of c.chunks) {
      if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(5_000) });
    }
    if (c.closeWrite) await stream.close({ signal: AbortSignal.timeout(5_000) });
  } catch {
    // the remote may reset while we still write
  }
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STREAM_END_MS).unref());
  const end = await Promise.race([reading, timeout]);
  if (end === 'timeout') stream.abort(new Error('test gave up'));
  return { end, received };
}

async function bareNode(): Promise<Libp2p> {
  return createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('stream frame fuzzing from a bare libp2p node', () => {
  let c: TestCoordinator;
  let dir: string;
  let agent: Started & { match: RegExpExecArray };
  let agentAddr: string;
  let coordinatorAddr: string;
  let coordinatorPeer: string;
  let artifactHash: string;
  let honest: GpumeshNode;
  const bare: Libp2p[] = [];

  beforeAll(async () => {
    assertBuilt();
    c = await startTestCoordinator({ DISPATCH_BACKOFF_MS: '200' });
    const network = await api<{ peers: { peerId: string; multiaddrs: string[] }[] }>(
      c.url,
      'GET',
      '/v1/network',
    );
    coordinatorAddr = network.body.peers[0].multiaddrs[0];
    coordinatorPeer = network.body.peers[0].peerId;
    const modelJson = {
      modelTopology: {},
      weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', shape: [2], dtype: 'float32' }] }],
    };
    const weights = Buffer.from(new Float32Array([1.5, -2]).buffer);
    const uploaded = await api<{ hash: string }>(c.url, 'POST', '/v1/artifacts', {
      key: c.devKey,
      body: { format: 'layers', modelJson, weights: weights.toString('base64') },
    });
    expect(uploaded.status).toBe(201);
    artifactHash = uploaded.body.hash;
    expect(artifactHash).toBe(hashArtifact(modelJson, weights));

    dir = await mkdtemp(join(tmpdir(), 'gpumesh-frames-'));
    const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE };
    await runProcess(
      AGENT_MAIN,
      ['init', '--coordinator', c.url, '--data-dir', dir, '--light-kdf', '--slots', '1', '--backend', 'wasm'],
      env,
    );
    const port = await freePort();
    const configPath = join(dir, 'agent.json');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    await writeFile(configPath, JSON.stringify({ ...config, listen: [`/ip4/127.0.0.1/tcp/${port}`] }));
    agent = await startProcess(
      AGENT_MAIN,
      ['start', '--data-dir', dir, '--log-level', 'warn'],
      env,
      /gpumesh-agent ready: peer (\S+)/,
    );
    agentAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${agent.match[1]}`;
    await waitFor('the agent in /v1/providers', async () => {
      const res = await api<{ peerId: string; status: string }[]>(c.url, 'GET', '/v1/providers');
      return res.body.some((p) => p.peerId === agent.match[1]) ? true : undefined;
    });
    honest = await createGpumeshNode();
    // the honest fetcher stands for a provider holding an open offer of a job that uses the model
    c.running.app.get(ArtifactsService).openOffer(honest.peerId.toString(), artifactHash);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(bare.map(async (n) => n.stop()));
    await honest?.stop();
    await agent?.stop();
    await c?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const fuzz = async (
    target: string,
    protocol: string,
  ): Promise<{ ends: Record<string, number>; senders: number }> => {
    const offer = await signedOffer(coordinatorPeer);
    const cases = fc.sample(caseArb(frame(enc(JSON.stringify({ type: 'offer', offer })))), {
      numRuns: RUNS,
      seed: SEED,
    });
    const ends: Record<string, number> = {};
    const hung: string[] = [];
    let node = await bareNode();
    bare.push(node);
    let senders = 1;
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= cases.length) return;
        let result = await run(node, target, protocol, cases[i]);
        if (result.end === 'refused') {
          // cut off by the server's peer penalties: come back as somebody else
          node = await bareNode();
          bare.push(node);
          senders += 1;
          result = await run(node, target, protocol, cases[i]);
        }
        ends[result.end] = (ends[result.end] ?? 0) + 1;
        if (result.end === 'timeout' || result.end === 'refused')
          hung.push(`${cases[i].name}: ${result.end}`);
        if (result.end === 'closed' && protocol === JOB_PROTOCOL_ID && result.received.length > 0) {
          // the only thing an agent may answer a bad offer with is a `reject` frame
          expect(result.received).toContain('"type":"reject"');
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    expect(hung).toEqual([]);
    return { ends, senders };
  };

  it('refuses every stranger job stream at the agent gate; the agent keeps serving real jobs', async () => {
    // a real job placed on the agent while its job protocol is fuzzed
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(3, 3, 3, '1000'),
    });
    expect(job.status).toBe(201);
    // Only the coordinator's peers may connect to an agent (its connection gater): a stranger's bad
    // job stream never reaches the job protocol, every case is refused at the connection.
    const offer = await signedOffer(coordinatorPeer);
    const cases = fc.sample(caseArb(frame(enc(JSON.stringify({ type: 'offer', offer })))), {
      numRuns: RUNS,
      seed: SEED,
    });
    for (const each of cases) {
      const stranger = await bareNode();
      bare.push(stranger);
      expect((await run(stranger, agentAddr, JOB_PROTOCOL_ID, each)).end).toBe('refused');
    }
    expect(agent.child.exitCode).toBeNull();
    const done = await waitFor('the real job to finish', async () => {
      const res = await api<{ state: string; error: { code: string; message: string } | null }>(
        c.url,
        'GET',
        `/v1/jobs/${job.body.id}`,
        {
          key: c.devKey,
        },
      );
      return isTerminal(res.body.state) ? res.body : undefined;
    });
    expect(done.state, `${JSON.stringify(done.error)}\n${agent.output().slice(-2000)}`).toBe('COMPLETED');
    // and one more after the fuzzing
    const after = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '1000'),
    });
    const state = await waitFor('the next job to finish', async () => {
      const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${after.body.id}`, { key: c.devKey });
      return ['COMPLETED', 'FAILED', 'EXPIRED', 'CANCELLED'].includes(res.body.state)
        ? res.body.state
        : undefined;
    });
    expect(state).toBe('COMPLETED');
    expect(agent.child.exitCode).toBeNull();
  }, 180_000);

  it('ends every bad artifact stream on the coordinator, cuts off the sender, and keeps serving artifacts', async () => {
    await honest.dial(multiaddr(coordinatorAddr));
    const [{ ends, senders }, fetched] = await Promise.all([
      fuzz(coordinatorAddr, ARTIFACT_PROTOCOL_ID),
      // an honest fetch while the fuzzing runs
      (async () => {
        await new Promise((r) => setTimeout(r, 300));
        return fetchArtifact(honest, coordinatorPeer, artifactHash, { timeoutMs: 20_000 });
      })(),
    ]);
    expect((ends.reset ?? 0) + (ends.closed ?? 0)).toBe(RUNS);
    expect(fetched.weights.byteLength).toBe(8);
    // bad streams cost -10 each: a sender is disconnected after two and banned after five
    expect(senders).toBeGreaterThan(1);
    const again = await fetchArtifact(honest, coordinatorPeer, artifactHash, { timeoutMs: 20_000 });
    expect(hashArtifact(again.modelJson, again.weights)).toBe(artifactHash);
    expect((await api(c.url, 'GET', '/health/live')).status).toBe(200);
  }, 120_000);
});
