import { randomUUID } from 'node:crypto';
import { Wallet, type HDNodeWallet } from 'ethers';
import pg from 'pg';
import { SiweMessage } from 'siwe';
import { api, type TestCoordinator } from './coordinator.js';

export interface TestDeveloper {
  accountId: string;
  /** An API key with the developer scopes. */
  key: string;
}

/** A new developer account (signed in with a fresh wallet) with `credits` minted to it, and an API key. */
export async function fundedDeveloper(
  c: Pick<TestCoordinator, 'url' | 'databaseUrl'>,
  credits: bigint,
  wallet: Wallet | HDNodeWallet = Wallet.createRandom(),
): Promise<TestDeveloper> {
  const nonce = await api<{ nonce: string; domain: string; chainId: number; uri: string }>(
    c.url,
    'GET',
    '/v1/auth/nonce',
  );
  const message = new SiweMessage({
    domain: nonce.body.domain,
    address: wallet.address,
    uri: nonce.body.uri,
    version: '1',
    chainId: nonce.body.chainId,
    nonce: nonce.body.nonce,
  }).prepareMessage();
  const session = await api<{ token: string; accountId: string }>(c.url, 'POST', '/v1/auth/siwe', {
    body: { message, signature: await wallet.signMessage(message) },
  });
  if (session.status >= 300) throw new Error(`siwe: ${session.status} ${JSON.stringify(session.body)}`);
  const key = await api<{ secret: string }>(c.url, 'POST', '/v1/auth/api-keys', {
    key: session.body.token,
    body: { name: 'test developer' },
  });
  if (key.status >= 300) throw new Error(`api key: ${key.status} ${JSON.stringify(key.body)}`);
  const client = new pg.Client({ connectionString: c.databaseUrl });
  await client.connect();
  try {
    const account = `acct:${session.body.accountId}:available`;
    await client.query(
      `INSERT INTO "LedgerEntry" ("txId", account, amount, kind) VALUES
         ($4, 'system:mint', $1, 'mint'), ($4, $2, $3, 'mint')`,
      [(-credits).toString(), account, credits.toString(), randomUUID()],
    );
    await client.query(
      `INSERT INTO "LedgerBalance" (account, balance, "updatedAt") VALUES ($1, $2, now())
       ON CONFLICT (account) DO UPDATE SET balance = "LedgerBalance".balance + EXCLUDED.balance`,
      [account, credits.toString()],
    );
  } finally {
    await client.end();
  }
  return { accountId: session.body.accountId, key: key.body.secret };
}
