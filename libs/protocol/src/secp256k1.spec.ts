import { Signature, Wallet, hashMessage, verifyMessage } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { personalMessageDigest, recoverPersonalSigner, signPersonalMessage } from './secp256k1.js';

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

describe('EIP-191 signatures on libsecp256k1', () => {
  it('produces exactly the signature ethers produces, and recovers what ethers recovers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        async (msg, seed) => {
          const key = `0x${Buffer.from(seed).toString('hex')}`;
          let wallet: Wallet;
          try {
            wallet = new Wallet(key);
          } catch {
            return; // not a valid private key (0 or ≥ n)
          }
          const ours = await signPersonalMessage(wallet, msg);
          expect(ours).toBe((await wallet.signMessage(msg)).toLowerCase());
          expect(recoverPersonalSigner(msg, ours)).toBe(verifyMessage(msg, ours).toLowerCase());
        },
      ),
      { numRuns: 60 },
    );
  });

  it('hashes a message to the digest ethers’ hashMessage gives, bytes or text, large or empty', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ unit: 'binary' })), (msg) => {
        expect(Buffer.from(personalMessageDigest(msg)).toString('hex')).toBe(hashMessage(msg).slice(2));
      }),
      { numRuns: 200 },
    );
    for (const msg of [new Uint8Array(), '']) {
      expect(Buffer.from(personalMessageDigest(msg)).toString('hex')).toBe(hashMessage(msg).slice(2));
    }
    const large = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31) & 0xff);
    expect(Buffer.from(personalMessageDigest(large)).toString('hex')).toBe(hashMessage(large).slice(2));
  });

  it('falls back to the signer’s own signMessage when it holds no local key', async () => {
    const wallet = Wallet.createRandom();
    const remote = {
      getAddress: () => wallet.getAddress(),
      signMessage: (m: Uint8Array | string) => wallet.signMessage(m),
    };
    const sig = await signPersonalMessage(remote, 'hello');
    expect(recoverPersonalSigner('hello', sig)).toBe(wallet.address.toLowerCase());
  });

  it('rejects malformed and non-canonical signatures', async () => {
    const wallet = Wallet.createRandom();
    const sig = await signPersonalMessage(wallet, 'm');
    expect(recoverPersonalSigner('m', sig)).toBe(wallet.address.toLowerCase());
    expect(recoverPersonalSigner('other', sig)).not.toBe(wallet.address.toLowerCase());
    expect(recoverPersonalSigner('m', sig.toUpperCase().replace('0X', '0x'))).toBeNull();
    expect(recoverPersonalSigner('m', sig.slice(0, -2) + '1d')).toBeNull(); // v = 29
    expect(recoverPersonalSigner('m', '0x' + '00'.repeat(65))).toBeNull();
    expect(recoverPersonalSigner('m', sig.slice(0, 100))).toBeNull();
    // The high-s twin of a valid signature recovers the same key, and must still be refused (EIP-2).
    const parsed = Signature.from(sig);
    const highS = (N - BigInt(parsed.s)).toString(16).padStart(64, '0');
    const flippedV = parsed.v === 27 ? '1c' : '1b';
    expect(recoverPersonalSigner('m', `${sig.slice(0, 66)}${highS}${flippedV}`)).toBeNull();
  });
});
