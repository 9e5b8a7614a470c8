// Sign-In with Ethereum (EIP-4361) against the coordinator: GET /v1/auth/nonce names the domain,
// URI, chain and a one-time nonce; the wallet signs the message (EIP-191); POST /v1/auth/siwe answers
// a session token, which creates an API key (POST /v1/auth/api-keys) that the client then uses.
import type { NonceResponseDto } from './generated.js';
import type { WalletSigner } from './wallet.js';

/** The statement every gpumesh sign-in message carries (EIP-4361 `statement`). */
export const SIGN_IN_STATEMENT = 'Sign in to gpumesh.';

/** The EIP-4361 message for `address` (checksummed) and the coordinator's nonce answer. */
export function signInMessage(address: string, nonce: NonceResponseDto, issuedAt: Date = new Date()): string {
  return [
    `${nonce.domain} wants you to sign in with your Ethereum account:`,
    address,
    '',
    SIGN_IN_STATEMENT,
    '',
    `URI: ${nonce.uri}`,
    'Version: 1',
    `Chain ID: ${nonce.chainId}`,
    `Nonce: ${nonce.nonce}`,
    `Issued At: ${issuedAt.toISOString()}`,
    `Expiration Time: ${nonce.expiresAt}`,
  ].join('\n');
}

/** A signed sign-in message, ready for POST /v1/auth/siwe. */
export async function signSignIn(
  signer: WalletSigner,
  nonce: NonceResponseDto,
): Promise<{ message: string; signature: string }> {
  const message = signInMessage(await signer.getAddress(), nonce);
  return { message, signature: await signer.signMessage(message) };
}
