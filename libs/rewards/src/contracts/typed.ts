import type { ContractTransaction, ContractTransactionResponse, Overrides } from 'ethers';

/** A read-only contract method: calling it returns the decoded result. */
export interface ViewMethod<A extends unknown[], R> {
  (...args: A): Promise<R>;
  (...args: [...A, Overrides]): Promise<R>;
  staticCall(...args: A): Promise<R>;
}

/** A state-changing contract method: calling it sends a transaction. */
export interface SendMethod<A extends unknown[], R> {
  (...args: A): Promise<ContractTransactionResponse>;
  (...args: [...A, Overrides]): Promise<ContractTransactionResponse>;
  staticCall(...args: A): Promise<R>;
  staticCall(...args: [...A, Overrides]): Promise<R>;
  estimateGas(...args: A): Promise<bigint>;
  estimateGas(...args: [...A, Overrides]): Promise<bigint>;
  populateTransaction(...args: A): Promise<ContractTransaction>;
  populateTransaction(...args: [...A, Overrides]): Promise<ContractTransaction>;
}
