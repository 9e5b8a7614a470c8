import { describe, expect, it } from 'vitest';
import { KeystoreError, createKeystore, unlockKeystore } from './keystore.js';

describe('agent keystore', () => {
  it('round-trips the wallet and the libp2p key under the passphrase', async () => {
    const { file, identity } = await createKeystore('correct horse battery', { light: true });
    expect(JSON.stringify(file)).not.toContain(identity.wallet.privateKey.slice(2));
    const unlocked = await unlockKeystore(JSON.parse(JSON.stringify(file)), 'correct horse battery');
    expect(unlocked.address).toBe(identity.address);
    expect(unlocked.peerId).toBe(identity.peerId);
    expect(unlocked.wallet.privateKey).toBe(identity.wallet.privateKey);
  });

  it('says when the passphrase is wrong or the file was tampered with', async () => {
    const { file } = await createKeystore('correct horse battery', { light: true });
    await expect(unlockKeystore(file, 'wrong passphrase')).rejects.toMatchObject({
      code: 'WRONG_PASSPHRASE',
    });
    // Flip every bit of the first byte (overwriting it with a constant left the file intact whenever
    // the ciphertext already began with that byte: one run in 256).
    const ct = file.secrets.ciphertext;
    const flipped = (parseInt(ct.slice(0, 2), 16) ^ 0xff).toString(16).padStart(2, '0');
    const tampered = { ...file, secrets: { ...file.secrets, ciphertext: `${flipped}${ct.slice(2)}` } };
    await expect(unlockKeystore(tampered, 'correct horse battery')).rejects.toBeInstanceOf(KeystoreError);
    await expect(unlockKeystore({ version: 2 }, 'x')).rejects.toMatchObject({ code: 'MALFORMED' });
  });

  it('refuses a short passphrase', async () => {
    await expect(createKeystore('short')).rejects.toMatchObject({ code: 'WEAK_PASSPHRASE' });
  });
});
