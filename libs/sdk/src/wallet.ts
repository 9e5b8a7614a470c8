// What the SDK needs of a wallet: an address, EIP-191 message signing (Sign-In with Ethereum) and
// EIP-712 typed-data signing (spending caps). An ethers v6 `Signer` (Wallet, JsonRpcSigner,
// NonceManager) has this shape; so can any other wallet, through a small adapter.

export interface TypedDataField {
  name: string;
  type: string;
}

export interface TypedDataDomain {
  name?: string;
  version?: string;
  chainId?: number | bigint;
  verifyingContract?: string;
}

export interface WalletSigner {
  getAddress(): Promise<string>;
  signMessage(message: string): Promise<string>;
  signTypedData(
    domain: TypedDataDomain,
    types: Record<string, TypedDataField[]>,
    value: Record<string, unknown>,
  ): Promise<string>;
}
