// No secret in any log line: a real coordinator process (--dev, LOG_LEVEL=debug, a password in its
// DATABASE_URL) and a real agent process (debug logs) are put through SIWE sign-in, API key creation
// and use, bad keys, and the admin dashboard sign-in; every line they print is captured and searched for
// API key secrets, session tokens, the admin cookie, private keys, the keystore passphrase and the DB
// password. Also: API keys and sessions are stored as hashes only, and a key's secret is shown once.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Wallet } from 'ethers';
import pg from 'pg';
import { SiweMessage } from 'siwe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKeystore, unlockKeystore } from '../../apps/provider-agent/src/keystore.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_REDIS_URL, api } from '../helpers/coordinator.js';
import {
  AGENT_MAIN,
  COORDINATOR_MAIN,
  assertBuilt,
  runProcess,
  startProcess,
  type Started,
} from '../helpers/processes.js';

const PASSPHRASE = `agent-passphrase-${randomBytes(6).toString('hex')}`;
const DB_PASSWORD = `dbpw-${randomBytes(8).toString('hex')}`;

/** The banner `--dev` prints on purpose (the dev keys are for the operator's terminal); not log lines. */
const BANNER_LINE = /^\s+(dev key|admin key|try)\s/;

describe('no secret in any log line', () => {
  let db: TestDatabase;
  let dir: string;
  let coordinator: Started;
  let agent: Started | undefined;
  let url: string;
  let devKey: string;
  let adminKey: string;
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    assertBuilt();
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-logs-'));
    const dbUrl = new URL(db.url);
    dbUrl.password = DB_PASSWORD; // trust auth ignores it; it must not leak either way
    coordinator = await startProcess(
      COORDINATOR_MAIN,
      ['--dev', '--agents', '0', '--port', '0', '--data-dir', join(dir, 'coordinator')],
      {
        ...process.env,
        DATABASE_URL: dbUrl.toString(),
        REDIS_URL: TEST_REDIS_URL,
        QUEUE_PREFIX: `logs${randomBytes(4).toString('hex')}`,
        LOG_LEVEL: 'debug',
        SETTLEMENT_ENABLED: 'false',
      },
      /gpumesh ready/,
    );
    url = /API\s+(http:\/\/\S+)\/v1/.exec(coordinator.output())?.[1] ?? '';
    devKey = /dev key\s+(gmk_\S+)/.exec(coordinator.output())?.[1] ?? '';
    adminKey = /admin key\s+(gmk_\S+)/.exec(coordinator.output())?.[1] ?? '';
    expect(url && devKey && adminKey).toBeTruthy();
    secrets.set('dev API key', devKey);
    secrets.set('admin API key', adminKey);
    secrets.set('DB password', DB_PASSWORD);
    const identity = JSON.parse(
      await readFile(join(dir, 'coordinator', 'coordinator-identity.json'), 'utf8'),
    ) as {
      signerPrivateKey: string;
      peerKey: string;
    };
    secrets.set('coordinator signing key', identity.signerPrivateKey.replace(/^0x/, ''));
    secrets.set('coordinator peer key', identity.peerKey.replace(/^0x/, ''));
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await coordinator?.stop();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('exercises auth end to end and finds no secret in the coordinator or agent logs', async () => {
    // SIWE sign-in → session token
    const wallet = Wallet.createRandom();
    secrets.set('SIWE wallet private key', wallet.privateKey.replace(/^0x/, ''));
    const nonce = await api<{ nonce: string; domain: string; chainId: number; uri: string }>(
      url,
      'GET',
      '/v1/auth/nonce',
    );
    const message = new SiweMessage({
      domain: nonce.body.domain,
      address: wallet.address,
      statement: 'Sign in to gpumesh',
      uri: nonce.body.uri,
      version: '1',
      chainId: nonce.body.chainId,
      nonce: nonce.body.nonce,
      issuedAt: new Date().toISOString(),
    }).prepareMessage();
    const session = await api<{ token: string }>(url, 'POST', '/v1/auth/siwe', {
      body: { message, signature: await wallet.signMessage(message) },
    });
    expect(session.status).toBe(200);
    secrets.set('session token', session.body.token);
    // a replayed SIWE message (its nonce is spent) is refused
    const replay = await api(url, 'POST', '/v1/auth/siwe', {
      body: { message, signature: await wallet.signMessage(message) },
    });
    expect(replay.status).toBe(401);

    // API key: created with the session, shown once, used, listed without its secret
    const created = await api<{ id: string; secret: string; prefix: string }>(
      url,
      'POST',
      '/v1/auth/api-keys',
      {
        key: session.body.token,
        body: { name: 'ci' },
      },
    );
    expect(created.status).toBe(201);
    const secret = created.body.secret;
    secrets.set('new API key', secret);
    expect((await api(url, 'GET', '/v1/account', { key: secret })).status).toBe(200);
    expect((await api(url, 'GET', '/v1/account', { headers: { 'x-api-key': secret } })).status).toBe(200);
    const listed = await api<unknown[]>(url, 'GET', '/v1/auth/api-keys', { key: secret });
    expect(JSON.stringify(listed.body)).not.toContain(secret.slice(10));
    // near misses and bad headers (logged as failures at debug level, perhaps)
    for (const bad of [`${secret}x`, secret.slice(0, -2), `${session.body.token}zz`]) {
      expect((await api(url, 'GET', '/v1/account', { key: bad })).status).toBe(401);
    }
    expect(
      (await api(url, 'GET', '/v1/account', { headers: { authorization: `Basic ${secret}` } })).status,
    ).toBe(401);
    // a failing request that carries a secret in its body
    expect(
      (await api(url, 'POST', '/v1/admin/session', { body: { apiKey: `${secret}`, extra: secret } })).status,
    ).toBeGreaterThanOrEqual(400);

    // admin dashboard sign-in → cookie, used, then signed out
    const signIn = await fetch(`${url}/v1/admin/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-gpumesh-csrf': '1' },
      body: JSON.stringify({ apiKey: adminKey }),
    });
    expect(signIn.status).toBeLessThan(300);
    const cookie = /gpumesh_admin=([^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')?.[1] ?? '';
    expect(cookie.length).toBeGreaterThan(10);
    secrets.set('admin cookie', decodeURIComponent(cookie));
    const me = await api(url, 'GET', '/v1/admin/overview', {
      headers: { cookie: `gpumesh_admin=${cookie}` },
    });
    expect(me.status).toBe(200);
    await api(url, 'DELETE', '/v1/admin/session', {
      headers: { cookie: `gpumesh_admin=${cookie}`, 'x-gpumesh-csrf': '1', origin: url },
    });

    // stored as hashes only
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const keys = await client.query('SELECT * FROM "ApiKey"');
      const sessions = await client.query('SELECT * FROM "Session"').catch(() => ({ rows: [] as unknown[] }));
      const stored = JSON.stringify([keys.rows, sessions.rows]);
      for (const s of [secret, devKey, adminKey, session.body.token])
        expect(stored).not.toContain(s.slice(4));
      expect(stored).toContain(createHash('sha256').update(secret).digest('hex'));
    } finally {
      await client.end();
    }

    // the agent: init and start with debug logs; its passphrase and keys must not show
    const agentDir = join(dir, 'agent');
    const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE };
    const initOut = await runProcess(
      AGENT_MAIN,
      [
        'init',
        '--coordinator',
        url,
        '--data-dir',
        agentDir,
        '--light-kdf',
        '--slots',
        '1',
        '--backend',
        'wasm',
      ],
      env,
    );
    agent = await startProcess(
      AGENT_MAIN,
      ['start', '--data-dir', agentDir, '--log-level', 'debug'],
      env,
      /gpumesh-agent ready/,
    );
    const unlocked = await unlockKeystore(await readKeystore(join(agentDir, 'keystore.json')), PASSPHRASE);
    const agentSecrets = new Map<string, string>([
      ['keystore passphrase', PASSPHRASE],
      ['agent wallet private key', unlocked.wallet.privateKey.replace(/^0x/, '')],
      ['agent peer key', Buffer.from(unlocked.peerKey.raw).toString('hex')],
      ['agent peer key (base64)', Buffer.from(unlocked.peerKey.raw).toString('base64')],
    ]);
    // let it advertise and log a while at debug level
    await new Promise((r) => setTimeout(r, 1500));
    await agent.stop();
    const agentOutput = `${initOut}\n${agent.output()}`;
    const agentLeaks = [...agentSecrets].filter(([, s]) => agentOutput.includes(s)).map(([name]) => name);
    expect(agentLeaks, 'secrets in the agent output').toEqual([]);

    await coordinator.stop();
    const lines = coordinator.output().split('\n');
    const logLines = lines.filter((l) => l.trim().startsWith('{'));
    expect(logLines.length).toBeGreaterThan(20);
    const leaks: string[] = [];
    for (const line of lines) {
      if (BANNER_LINE.test(line)) continue;
      for (const [name, value] of secrets) {
        // the prefix of a key (gmk_ + 4) is meant to be shown; the rest is not
        const needle = value.startsWith('gm') ? value.slice(8) : value;
        if (line.includes(needle)) leaks.push(`${name}: ${line.slice(0, 200)}`);
      }
    }
    expect(leaks).toEqual([]);
  }, 120_000);
});
