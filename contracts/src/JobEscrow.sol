// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {RewardsDistributor} from "./RewardsDistributor.sol";

/// @title JobEscrow
/// @notice Developers' deposits. A deposit credits the developer's off-chain balance (the
/// coordinator watches `Deposited`); what jobs spend is debited here in batches committed on chain
/// with the epoch's root (`RewardsDistributor.fundingRoot`), and the debited tokens fund the epoch
/// in the RewardsDistributor (which accepts them only for a final epoch, in epoch order, never
/// beyond the epoch's total).
///
/// Nobody holds a role here. A debit is open to anyone, and takes effect only for a batch of the
/// epoch's funding root, once that root is final (past its challenge window, not vetoed), at most
/// once per batch: the settler sends them, and if the settler is gone a provider or anyone holding
/// the epoch file sends the same batches. No key can move a developer's tokens any other way.
///
/// A developer withdraws after requesting an unlock and waiting `unlockDelay`, which is at least
/// `maxEpochSeconds + distributor.challengeWindow() + fundingMargin`: an epoch lasts at most
/// `maxEpochSeconds`, its root is final one challenge window after it closes, and its batches are
/// debited within `fundingMargin` of finality. So everything an account spent before it requested an
/// unlock can be debited before the unlock comes.
///
/// What may be debited from an account is also bounded by the account itself: a developer signs an
/// EIP-712 `SpendingCap(address account, uint256 cap)`, a cap on everything ever debited from it
/// (cumulative, so a signature cannot be replayed into more spending; a higher cap supersedes a lower
/// one). Anyone may submit the signature (`authorize`), the account may set it directly
/// (`setSpendingCap`), and a debit never takes an account beyond it.
contract JobEscrow is ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;
    using BitMaps for BitMaps.BitMap;

    /// @notice The longest accepted value of every duration (unlock delay, epoch, funding margin).
    uint64 public constant MAX_DELAY = 365 days;
    /// @notice The shortest accepted funding margin (except on the local dev chain, id 31337).
    uint64 public constant MIN_FUNDING_MARGIN = 1 hours;

    uint256 private constant _DEV_CHAIN_ID = 31337;

    /// @notice The EIP-712 type a developer signs to bound what may ever be debited from it.
    bytes32 public constant SPENDING_CAP_TYPEHASH = keccak256("SpendingCap(address account,uint256 cap)");

    struct Account {
        uint192 balance;
        uint64 unlockAt;
    }

    /// @dev One slot, so a debit reads and writes a single extra word. A signed cap above
    /// `type(uint128).max` is stored as that (more tokens than can ever exist).
    struct Allowance {
        uint128 spent;
        uint128 cap;
    }

    IERC20 private immutable _token;
    RewardsDistributor private immutable _distributor;
    uint64 private immutable _unlockDelay;
    uint64 private immutable _maxEpochSeconds;
    uint64 private immutable _fundingMargin;

    mapping(address account => Account) private _accounts;
    mapping(address account => Allowance) private _allowances;
    mapping(uint64 epoch => uint256) private _debited;
    /// @dev Key `(uint256(epoch) << 32) | batch`.
    BitMaps.BitMap private _debitedBatches;

    error ZeroAddress();
    error ZeroAmount();
    error TokenMismatch(address token, address distributorToken);
    error DurationOutOfRange(uint256 value, uint256 max);
    error MaxEpochSecondsZero();
    error FundingMarginTooShort(uint64 fundingMargin, uint64 min);
    error UnlockDelayTooShort(uint64 unlockDelay, uint256 minimum);
    error AmountTooLarge(uint256 amount);
    error NotUnlocked(address account, uint64 unlockAt);
    error InsufficientBalance(address account, uint256 balance, uint256 amount);
    error LengthMismatch(uint256 accounts, uint256 amounts);
    error BatchAlreadyDebited(uint64 epoch, uint32 batch);
    error InvalidDebitProof(uint64 epoch, uint32 batch);
    error StaleSpendingCap(address account, uint256 cap, uint256 current);
    error InvalidSpendingCapSignature(address account);

    event Deposited(address indexed account, uint256 amount);
    event UnlockRequested(address indexed account, uint64 unlockAt);
    event UnlockCancelled(address indexed account);
    event Withdrawn(address indexed account, uint256 amount);
    event Debited(uint64 indexed epoch, address indexed account, uint256 amount);
    event BatchDebited(uint64 indexed epoch, uint32 indexed batch, uint256 amount);
    /// @notice An account of a batch held less than it owed (balance or spending cap): `debited` was
    /// taken, the rest is the epoch's shortfall (anyone may fund it with `RewardsDistributor.fund`).
    event DebitShort(uint64 indexed epoch, address indexed account, uint256 owed, uint256 debited);
    event SpendingCapAuthorized(address indexed account, uint256 cap);

    /// @param token_ The token deposits are made in (the distributor's token).
    /// @param distributor_ The RewardsDistributor debits fund.
    /// @param unlockDelay_ Seconds between an unlock request and the withdrawal; at least
    /// `maxEpochSeconds_ + distributor_.challengeWindow() + fundingMargin_`.
    /// @param maxEpochSeconds_ The longest epoch the settler will run (≥ 1 s).
    /// @param fundingMargin_ How long after an epoch's finality the settler takes to debit it
    /// (≥ MIN_FUNDING_MARGIN except on chain 31337).
    constructor(
        IERC20 token_,
        RewardsDistributor distributor_,
        uint64 unlockDelay_,
        uint64 maxEpochSeconds_,
        uint64 fundingMargin_
    ) EIP712("gpumesh JobEscrow", "1") {
        if (address(token_) == address(0) || address(distributor_) == address(0)) revert ZeroAddress();
        address distributorToken = address(distributor_.token());
        if (distributorToken != address(token_)) revert TokenMismatch(address(token_), distributorToken);
        if (unlockDelay_ > MAX_DELAY) revert DurationOutOfRange(unlockDelay_, MAX_DELAY);
        if (maxEpochSeconds_ > MAX_DELAY) revert DurationOutOfRange(maxEpochSeconds_, MAX_DELAY);
        if (fundingMargin_ > MAX_DELAY) revert DurationOutOfRange(fundingMargin_, MAX_DELAY);
        if (maxEpochSeconds_ == 0) revert MaxEpochSecondsZero();
        if (fundingMargin_ < MIN_FUNDING_MARGIN && block.chainid != _DEV_CHAIN_ID) {
            revert FundingMarginTooShort(fundingMargin_, MIN_FUNDING_MARGIN);
        }
        uint256 minimum = uint256(maxEpochSeconds_) + distributor_.challengeWindow() + fundingMargin_;
        if (unlockDelay_ < minimum) revert UnlockDelayTooShort(unlockDelay_, minimum);
        _token = token_;
        _distributor = distributor_;
        _unlockDelay = unlockDelay_;
        _maxEpochSeconds = maxEpochSeconds_;
        _fundingMargin = fundingMargin_;
    }

    /// @notice Deposits `amount` base units for the caller (approve first). The caller's address
    /// is the account the coordinator credits (the SIWE account).
    function deposit(uint256 amount) external nonReentrant {
        _deposit(msg.sender, amount);
    }

    /// @notice Deposits `amount` base units from the caller (approve first) for `account`, which the
    /// coordinator credits (`Deposited(account, amount)`); only `account` can withdraw them.
    function depositFor(address account, uint256 amount) external nonReentrant {
        if (account == address(0)) revert ZeroAddress();
        _deposit(account, amount);
    }

    /// @notice Starts the unlock delay; `withdraw` works once it has passed.
    function requestUnlock() external {
        uint64 unlockAt = uint64(block.timestamp) + _unlockDelay;
        _accounts[msg.sender].unlockAt = unlockAt;
        emit UnlockRequested(msg.sender, unlockAt);
    }

    /// @notice Cancels a pending unlock.
    function cancelUnlock() external {
        _accounts[msg.sender].unlockAt = 0;
        emit UnlockCancelled(msg.sender);
    }

    /// @notice Withdraws `amount` after the unlock delay. The unlock is spent by the withdrawal.
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        uint64 unlockAt = a.unlockAt;
        if (unlockAt == 0 || block.timestamp < unlockAt) revert NotUnlocked(msg.sender, unlockAt);
        uint256 balance = a.balance;
        if (amount > balance) revert InsufficientBalance(msg.sender, balance, amount);
        a.balance = uint192(balance - amount);
        a.unlockAt = 0;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @notice Records `cap` as the caller's spending cap: the most that may ever be debited from it,
    /// in total. Only raises it (a cap at or below the current one reverts as stale).
    function setSpendingCap(uint256 cap) external {
        _authorize(msg.sender, cap);
    }

    /// @notice Records the spending cap `account` signed (EIP-712 `SpendingCap(account, cap)` in this
    /// contract's domain): an EOA's ECDSA signature, or an ERC-1271 contract's approval. Open to
    /// anyone (the settler submits the caps developers gave the coordinator): it can only raise the
    /// bound to what the account itself signed. A cap at or below the current one reverts as stale.
    function authorize(address account, uint256 cap, bytes calldata signature) external {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(SPENDING_CAP_TYPEHASH, account, cap)));
        if (!SignatureChecker.isValidSignatureNow(account, digest, signature)) {
            revert InvalidSpendingCapSignature(account);
        }
        _authorize(account, cap);
    }

    /// @notice Debits batch `batch` of `epoch`'s committed debits (`accounts[i]` owes `amounts[i]`)
    /// and funds the epoch in the distributor with the sum. Open to anyone: the batch must be a leaf
    /// of the epoch's funding root (`proof`), and the distributor refuses the funding (and so the
    /// debit) unless the epoch is final, every earlier epoch is funded and the funding stays within
    /// the epoch's total. Each `(epoch, batch)` lands once. Each account is debited what it owes, or
    /// less when its balance or its spending cap does not cover it (`DebitShort`: the rest is the
    /// epoch's shortfall), so one account can never hold up the others of its batch.
    ///
    /// Leaf: `keccak256(bytes.concat(keccak256(abi.encode(block.chainid, address(this), epoch, batch,
    /// accounts, amounts))))` in OpenZeppelin's standard Merkle tree (leaf encoding `uint256, address,
    /// uint64, uint32, address[], uint256[]`), so a batch is bound to this escrow on this chain.
    function debit(
        uint64 epoch,
        uint32 batch,
        address[] calldata accounts,
        uint256[] calldata amounts,
        bytes32[] calldata proof
    ) external nonReentrant {
        if (accounts.length != amounts.length) revert LengthMismatch(accounts.length, amounts.length);
        uint256 key = (uint256(epoch) << 32) | batch;
        if (_debitedBatches.get(key)) revert BatchAlreadyDebited(epoch, batch);
        bytes32 leaf = keccak256(
            bytes.concat(keccak256(abi.encode(block.chainid, address(this), epoch, batch, accounts, amounts)))
        );
        bytes32 root = _distributor.fundingRoot(epoch);
        if (root == bytes32(0) || !MerkleProof.verifyCalldata(proof, root, leaf)) {
            revert InvalidDebitProof(epoch, batch);
        }
        _debitedBatches.set(key);
        uint256 sum;
        for (uint256 i = 0; i < accounts.length; ++i) {
            sum += _debitAccount(epoch, accounts[i], amounts[i]);
        }
        _debited[epoch] += sum;
        emit BatchDebited(epoch, batch, sum);
        if (sum != 0) {
            _token.forceApprove(address(_distributor), sum);
            _distributor.fund(epoch, sum);
        }
    }

    /// @notice The leaf of batch `batch` of `epoch` in this escrow's funding trees (see `debit`).
    function debitLeaf(
        uint64 epoch,
        uint32 batch,
        address[] calldata accounts,
        uint256[] calldata amounts
    ) external view returns (bytes32) {
        return keccak256(
            bytes.concat(keccak256(abi.encode(block.chainid, address(this), epoch, batch, accounts, amounts)))
        );
    }

    // ---------------------------------------------------------------- views

    function token() external view returns (IERC20) {
        return _token;
    }

    function distributor() external view returns (RewardsDistributor) {
        return _distributor;
    }

    function unlockDelay() external view returns (uint64) {
        return _unlockDelay;
    }

    function maxEpochSeconds() external view returns (uint64) {
        return _maxEpochSeconds;
    }

    function fundingMargin() external view returns (uint64) {
        return _fundingMargin;
    }

    function balanceOf(address account) external view returns (uint256) {
        return _accounts[account].balance;
    }

    function unlockAt(address account) external view returns (uint64) {
        return _accounts[account].unlockAt;
    }

    /// @notice The highest spending cap `account` authorized (0: nothing may be debited from it).
    function spendingCapOf(address account) external view returns (uint256) {
        return _allowances[account].cap;
    }

    /// @notice Everything ever debited from `account` (never more than its spending cap).
    function spentBy(address account) external view returns (uint256) {
        return _allowances[account].spent;
    }

    /// @notice The EIP-712 domain separator `SpendingCap` signatures are made in.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Everything debited for `epoch` so far (all its batches).
    function debitedIn(uint64 epoch) external view returns (uint256) {
        return _debited[epoch];
    }

    /// @notice True once batch `batch` of `epoch` has been debited.
    function isBatchDebited(uint64 epoch, uint32 batch) external view returns (bool) {
        return _debitedBatches.get((uint256(epoch) << 32) | batch);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Takes what `account` owes off its balance, as far as its balance and its spending cap
    /// allow, adds it to what it spent, and returns what was taken.
    function _debitAccount(uint64 epoch, address account, uint256 owed) private returns (uint256 amount) {
        Account storage a = _accounts[account];
        uint256 balance = a.balance;
        Allowance storage allowance = _allowances[account];
        uint256 spent = allowance.spent;
        // spent <= cap always holds: caps only rise and every debit stays within one.
        uint256 headroom = allowance.cap - spent;
        amount = owed;
        if (amount > balance) amount = balance;
        if (amount > headroom) amount = headroom;
        if (amount != owed) emit DebitShort(epoch, account, owed, amount);
        if (amount == 0) return 0;
        a.balance = uint192(balance - amount);
        allowance.spent = uint128(spent + amount);
        emit Debited(epoch, account, amount);
    }

    function _authorize(address account, uint256 cap) private {
        uint256 stored = cap > type(uint128).max ? type(uint128).max : cap;
        Allowance storage allowance = _allowances[account];
        uint256 current = allowance.cap;
        if (stored <= current) revert StaleSpendingCap(account, cap, current);
        allowance.cap = uint128(stored);
        emit SpendingCapAuthorized(account, cap);
    }

    function _deposit(address account, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[account];
        uint256 balance = uint256(a.balance) + amount;
        if (balance > type(uint192).max) revert AmountTooLarge(amount);
        a.balance = uint192(balance);
        emit Deposited(account, amount);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }
}
