// Spending caps: the developer signs (EIP-712) the most that may ever be debited from its escrow
// deposit. GET /v1/account shows the typed data to sign (domain: the JobEscrow on its chain) with the
// current cap; the signature of a higher cap goes to PUT /v1/account/spending-cap.
import type { PutSpendingCapDto, SpendingCapTypedDataDto } from './generated.js';
import type { TypedDataField, WalletSigner } from './wallet.js';

/** The largest cap the escrow takes (uint256). */
export const MAX_SPENDING_CAP = 2n ** 256n - 1n;

/** Signs `cap` (base units) in the coordinator's typed data; returns the body for PUT /v1/account/spending-cap. */
export async function signSpendingCap(
  signer: WalletSigner,
  typedData: SpendingCapTypedDataDto,
  cap: bigint,
): Promise<PutSpendingCapDto> {
  if (cap < 0n || cap > MAX_SPENDING_CAP) throw new RangeError(`spending cap out of range: ${cap}`);
  const account = await signer.getAddress();
  if (account.toLowerCase() !== typedData.message.account.toLowerCase()) {
    throw new Error(`the signer is ${account}, but the account's wallet is ${typedData.message.account}`);
  }
  // The domain's own type is implied by the domain (ethers refuses it among the types).
  const types: Record<string, TypedDataField[]> = {};
  for (const [name, fields] of Object.entries(typedData.types)) {
    if (name !== 'EIP712Domain') types[name] = fields;
  }
  const signature = await signer.signTypedData(typedData.domain, types, {
    ...typedData.message,
    cap: cap.toString(),
  });
  return { cap: cap.toString(), signature };
}
