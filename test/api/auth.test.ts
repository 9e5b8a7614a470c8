import { Wallet, type HDNodeWallet } from 'ethers';
import { SiweMessage } from 'siwe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

interface ErrorBody {
  error: { code: string; message: string };
}

async function signIn(
  c: TestCoordinator,
  wallet: Wallet | HDNodeWallet,
  overrides: Partial<SiweMessage> = {},
) {
  const nonce = await api<{ nonce: string; domain: string; chainId: number; uri: string }>(
    c.url,
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
    ...overrides,
  }).prepareMessage();
  const signature = await wallet.signMessage(message);
  return { message, signature };
}

describe('auth: Sign-In with Ethereum and API keys', () => {
  let c: TestCoordinator;
  beforeAll(async () => {
    c = await startTestCoordinator();
  });
  afterAll(async () => {
    await c?.close();
  });

  it('signs in with a wallet, creates a key shown once, uses it, and revokes it', async () => {
    const wallet = Wallet.createRandom();
    const { message, signature } = await signIn(c, wallet);
    const session = await api<{ token: string; address: string }>(c.url, 'POST', '/v1/auth/siwe', {
      body: { message, signature },
    });
    expect(session.status).toBe(200);
    expect(session.body.address).toBe(wallet.address.toLowerCase());

    const created = await api<{ id: string; secret: string; prefix: string }>(
      c.url,
      'POST',
      '/v1/auth/api-keys',
      {
        key: session.body.token,
        body: { name: 'laptop' },
      },
    );
    expect(created.status).toBe(201);
    expect(created.body.secret.startsWith(created.body.prefix)).toBe(true);

    const listed = await api<Record<string, unknown>[]>(c.url, 'GET', '/v1/auth/api-keys', {
      key: created.body.secret,
    });
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.secret);

    const account = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: created.body.secret });
    expect(account.status).toBe(200);
    expect(account.body.balance).toBe('0');

    const revoked = await api(c.url, 'DELETE', `/v1/auth/api-keys/${created.body.id}`, {
      key: session.body.token,
    });
    expect(revoked.status).toBe(200);
    const after = await api<ErrorBody>(c.url, 'GET', '/v1/account', { key: created.body.secret });
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('INVALID_API_KEY');
  });

  it('refuses a replayed nonce, a wrong domain and a forged signature', async () => {
    const wallet = Wallet.createRandom();
    const first = await signIn(c, wallet);
    expect((await api(c.url, 'POST', '/v1/auth/siwe', { body: first })).status).toBe(200);
    const replay = await api<ErrorBody>(c.url, 'POST', '/v1/auth/siwe', { body: first });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('INVALID_NONCE');

    const wrongDomain = await signIn(c, wallet, { domain: 'evil.example' });
    const res = await api<ErrorBody>(c.url, 'POST', '/v1/auth/siwe', { body: wrongDomain });
    expect(res.status).toBe(401);
    expect(res.body.error.message).toContain('domain');

    const forged = await signIn(c, wallet);
    const other = Wallet.createRandom();
    const forgedRes = await api<ErrorBody>(c.url, 'POST', '/v1/auth/siwe', {
      body: { message: forged.message, signature: await other.signMessage(forged.message) },
    });
    expect(forgedRes.status).toBe(401);
    expect(forgedRes.body.error.code).toBe('INVALID_SIGNATURE');
  });

  it('answers 401 without credentials and with a bad key, 403 for a missing scope or role', async () => {
    const none = await api<ErrorBody>(c.url, 'GET', '/v1/account');
    expect(none.status).toBe(401);
    expect(none.body.error.message).toContain('Authorization');
    const bad = await api<ErrorBody>(c.url, 'GET', '/v1/account', { key: 'gmk_not-a-real-key' });
    expect(bad.status).toBe(401);
    const garbage = await api<ErrorBody>(c.url, 'GET', '/v1/account', {
      headers: { authorization: 'Basic abc' },
    });
    expect(garbage.status).toBe(401);

    const readOnly = await api<{ secret: string }>(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.devKey,
      body: { name: 'read only', scopes: ['jobs:read'] },
    });
    expect(readOnly.status).toBe(201);
    const denied = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', { key: readOnly.body.secret, body: {} });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toContain('jobs:write');

    const escalate = await api<ErrorBody>(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.devKey,
      body: { name: 'sneaky', role: 'ADMIN' },
    });
    expect(escalate.status).toBe(403);
    const admin = await api(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.adminKey,
      body: { name: 'ops', role: 'ADMIN' },
    });
    expect(admin.status).toBe(201);
  });
});
