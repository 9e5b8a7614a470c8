// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {RewardsDistributor} from "./RewardsDistributor.sol";

/// @title JobEscrow
/// @notice Developers' deposits. A deposit credits the developer's off-chain balance (the
/// coordinator watches `Deposited`); what jobs spend is debited here, by the settler only, for
/// epochs whose root is final in the RewardsDistributor, never more than the epoch's posted total,
/// and the debited tokens go to the distributor that pays the providers. A developer withdraws
/// after requesting an unlock and waiting `unlockDelay` (which must exceed an epoch plus the
/// challenge window, so spent funds cannot leave before they are debited).
contract JobEscrow is AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    struct Account {
        uint192 balance;
        uint64 unlockAt;
    }

    IERC20 private immutable _token;
    RewardsDistributor private immutable _distributor;
    uint64 private immutable _unlockDelay;

    mapping(address account => Account) private _accounts;
    mapping(uint64 epoch => uint256) private _debited;

    error ZeroAddress();
    error ZeroAmount();
    error AmountTooLarge(uint256 amount);
    error NotUnlocked(address account, uint64 unlockAt);
    error InsufficientBalance(address account, uint256 balance, uint256 amount);
    error EpochNotFinal(uint64 epoch);
    error LengthMismatch(uint256 accounts, uint256 amounts);
    error DebitExceedsEpochTotal(uint64 epoch, uint256 debited, uint256 total);

    event Deposited(address indexed account, uint256 amount);
    event UnlockRequested(address indexed account, uint64 unlockAt);
    event UnlockCancelled(address indexed account);
    event Withdrawn(address indexed account, uint256 amount);
    event Debited(uint64 indexed epoch, address indexed account, uint256 amount);

    constructor(IERC20 token_, RewardsDistributor distributor_, address admin, uint64 unlockDelay_) {
        if (address(token_) == address(0) || address(distributor_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        _token = token_;
        _distributor = distributor_;
        _unlockDelay = unlockDelay_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Deposits `amount` base units for the caller (approve first). The caller's address
    /// is the account the coordinator credits (the SIWE account).
    function deposit(uint256 amount) external nonReentrant {
        _deposit(msg.sender, amount);
    }

    /// @notice Deposits `amount` base units, pulled from the caller (approve first), for `account`
    /// (ProviderStaking pays slash compensation to developers this way).
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

    /// @notice Debits what `accounts` spent in `epoch` and moves it to the distributor. Only
    /// SETTLER_ROLE, only for a final epoch, and in total never more than the epoch's posted total
    /// (several calls may share an epoch's debits).
    function debit(
        uint64 epoch,
        address[] calldata accounts,
        uint256[] calldata amounts
    ) external onlyRole(SETTLER_ROLE) nonReentrant {
        if (accounts.length != amounts.length) revert LengthMismatch(accounts.length, amounts.length);
        if (!_distributor.isFinal(epoch)) revert EpochNotFinal(epoch);
        uint256 sum;
        for (uint256 i = 0; i < accounts.length; ++i) {
            address account = accounts[i];
            uint256 amount = amounts[i];
            Account storage a = _accounts[account];
            uint256 balance = a.balance;
            if (amount > balance) revert InsufficientBalance(account, balance, amount);
            a.balance = uint192(balance - amount);
            sum += amount;
            emit Debited(epoch, account, amount);
        }
        uint256 debited = _debited[epoch] + sum;
        uint256 total = _distributor.epochTotal(epoch);
        if (debited > total) revert DebitExceedsEpochTotal(epoch, debited, total);
        _debited[epoch] = debited;
        _token.safeTransfer(address(_distributor), sum);
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

    function balanceOf(address account) external view returns (uint256) {
        return _accounts[account].balance;
    }

    function unlockAt(address account) external view returns (uint64) {
        return _accounts[account].unlockAt;
    }

    function debitedIn(uint64 epoch) external view returns (uint256) {
        return _debited[epoch];
    }
}
