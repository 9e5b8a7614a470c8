// The SDK's signatures as the coordinator checks them: the sign-in message parsed and verified by
// `siwe` (the coordinator's own verifier), the spending cap recovered with ethers' EIP-712 code.
import { Wallet, verifyTypedData } from 'ethers';
import { SiweMessage } from 'siwe';
import { describe, expect, it } from 'vitest';
import type { SpendingCapTypedDataDto } from './generated.js';
import { SIGN_IN_STATEMENT, signSignIn } from './sign-in.js';
import { signSpendingCap } from './spending-cap.js';

const wallet = new Wallet('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');

describe('wallet signatures', () => {
  it('signs a Sign-In with Ethereum message that siwe parses and verifies', async () => {
    const nonce = {
      nonce: 'abcdef0123456789',
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      domain: '127.0.0.1:8080',
      chainId: 31337,
      uri: 'http://127.0.0.1:8080',
    };
    const { message, signature } = await signSignIn(wallet, nonce);
    const siwe = new SiweMessage(message);
    expect(siwe).toMatchObject({
      domain: nonce.domain,
      address: wallet.address,
      statement: SIGN_IN_STATEMENT,
      chainId: 31337,
      nonce: nonce.nonce,
      uri: nonce.uri,
    });
    const verified = await siwe.verify({ signature, domain: nonce.domain }, { suppressExceptions: true });
    expect(verified.success, JSON.stringify(verified.error)).toBe(true);
  });

  it("signs a spending cap in the coordinator's typed data, and refuses another wallet's", async () => {
    const typedData: SpendingCapTypedDataDto = {
      domain: {
        name: 'GpumeshJobEscrow',
        version: '1',
        chainId: 31337,
        verifyingContract: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
      },
      types: {
        EIP712Domain: [{ name: 'name', type: 'string' }],
        SpendingCap: [
          { name: 'account', type: 'address' },
          { name: 'cap', type: 'uint256' },
        ],
      },
      primaryType: 'SpendingCap',
      message: { account: wallet.address, cap: '0' },
    };
    const signed = await signSpendingCap(wallet, typedData, 5_000_000n);
    expect(signed.cap).toBe('5000000');
    const { EIP712Domain: _domain, ...types } = typedData.types;
    expect(
      verifyTypedData(
        typedData.domain,
        types,
        { account: wallet.address, cap: 5_000_000n },
        signed.signature,
      ),
    ).toBe(wallet.address);
    await expect(signSpendingCap(Wallet.createRandom(), typedData, 1n)).rejects.toThrow(/account's wallet/);
    await expect(signSpendingCap(wallet, typedData, -1n)).rejects.toThrow(RangeError);
  });
});
