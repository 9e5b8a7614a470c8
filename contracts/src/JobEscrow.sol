// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {RewardsDistributor} from "./RewardsDistributor.sol";

/// @title JobEscrow
/// @notice Developers' deposits. A deposit credits the developer's off-chain balance (the
/// coordinator watches `Deposited`); what jobs spend is debited here by the settler, in batches
/// that each land at most once, and the debited tokens fund the epoch in the RewardsDistributor
/// (which accepts them only for a final epoch, in epoch order, never beyond the epoch's total).
///
/// A developer withdraws after requesting an unlock and waiting `unlockDelay`, which is at least
/// `maxEpochSeconds + distributor.challengeWindow() + fundingMargin`: an epoch lasts at most
/// `maxEpochSeconds`, its root is final one challenge window after it closes, and the settler debits
/// it within `fundingMargin` of finality. So as long as the settler follows that protocol,
/// everything an account spent before it requested an unlock is debited before the unlock comes.
///
/// What the settler may debit from an account is bounded by the account itself: a developer signs an
/// EIP-712 `SpendingCap(address account, uint256 cap)`, a cap on everything ever debited from it
/// (cumulative, so a signature cannot be replayed into more spending; a higher cap supersedes a lower
/// one). Anyone may submit the signature (`authorize`), the account may set it directly
/// (`setSpendingCap`), and `debit` reverts with `CapExceeded` beyond it. The settler's key alone can
/// no longer take more than a developer agreed to.
contract JobEscrow is AccessControlDefaultAdminRules, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;
    using BitMaps for BitMaps.BitMap;

    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

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
    error CapExceeded(address account, uint256 spent, uint256 amount, uint256 cap);
    error StaleSpendingCap(address account, uint256 cap, uint256 current);
    error InvalidSpendingCapSignature(address account);

    event Deposited(address indexed account, uint256 amount);
    event UnlockRequested(address indexed account, uint64 unlockAt);
    event UnlockCancelled(address indexed account);
    event Withdrawn(address indexed account, uint256 amount);
    event Debited(uint64 indexed epoch, address indexed account, uint256 amount);
    event BatchDebited(uint64 indexed epoch, uint32 indexed batch, uint256 amount);
    event SpendingCapAuthorized(address indexed account, uint256 cap);

    /// @param token_ The token deposits are made in (the distributor's token).
    /// @param distributor_ The RewardsDistributor debits fund.
    /// @param admin Default admin (grants roles; transferable only after `adminDelay`).
    /// @param adminDelay Seconds a default admin transfer waits before it can be accepted.
    /// @param settler Gets SETTLER_ROLE (debits).
    /// @param unlockDelay_ Seconds between an unlock request and the withdrawal; at least
    /// `maxEpochSeconds_ + distributor_.challengeWindow() + fundingMargin_`.
    /// @param maxEpochSeconds_ The longest epoch the settler will run (≥ 1 s).
    /// @param fundingMargin_ How long after an epoch's finality the settler takes to debit it
    /// (≥ MIN_FUNDING_MARGIN except on chain 31337).
    constructor(
        IERC20 token_,
        RewardsDistributor distributor_,
        address admin,
        uint48 adminDelay,
        address settler,
        uint64 unlockDelay_,
        uint64 maxEpochSeconds_,
        uint64 fundingMargin_
    ) AccessControlDefaultAdminRules(adminDelay, admin) EIP712("gpumesh JobEscrow", "1") {
        if (address(token_) == address(0) || address(distributor_) == address(0) || settler == address(0)) {
            revert ZeroAddress();
        }
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
        _grantRole(SETTLER_ROLE, settler);
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

    /// @notice Debits what `accounts` spent in `epoch` (batch `batch` of its debits) and funds the
    /// epoch in the distributor with the sum. Only SETTLER_ROLE; each `(epoch, batch)` lands once,
    /// so a retried batch cannot debit twice. The distributor refuses the funding (and so the
    /// debit) unless the epoch is final, every earlier epoch is funded and the epoch's funding stays
    /// within its posted total. No account is debited beyond the spending cap it signed: everything
    /// ever debited from it stays within its cap, or the batch reverts (`CapExceeded`).
    function debit(
        uint64 epoch,
        uint32 batch,
        address[] calldata accounts,
        uint256[] calldata amounts
    ) external onlyRole(SETTLER_ROLE) nonReentrant {
        if (accounts.length != amounts.length) revert LengthMismatch(accounts.length, amounts.length);
        uint256 key = (uint256(epoch) << 32) | batch;
        if (_debitedBatches.get(key)) revert BatchAlreadyDebited(epoch, batch);
        _debitedBatches.set(key);
        uint256 sum;
        for (uint256 i = 0; i < accounts.length; ++i) {
            uint256 amount = amounts[i];
            _debitAccount(epoch, accounts[i], amount);
            sum += amount;
        }
        if (sum == 0) revert ZeroAmount();
        _debited[epoch] += sum;
        emit BatchDebited(epoch, batch, sum);
        _token.forceApprove(address(_distributor), sum);
        _distributor.fund(epoch, sum);
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

    /// @dev Takes `amount` off `account`'s balance and adds it to what it spent, within its cap.
    function _debitAccount(uint64 epoch, address account, uint256 amount) private {
        Account storage a = _accounts[account];
        uint256 balance = a.balance;
        if (amount > balance) revert InsufficientBalance(account, balance, amount);
        Allowance storage allowance = _allowances[account];
        uint256 spent = allowance.spent;
        uint256 cap = allowance.cap;
        // spent <= cap always holds: caps only rise and every debit stays within one.
        if (amount > cap - spent) revert CapExceeded(account, spent, amount, cap);
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
