// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @notice What ProviderStaking needs of the JobEscrow: credit a developer with tokens pulled from
/// the caller (the escrow emits `Deposited(account, amount)`, which the coordinator credits).
interface IEscrowDeposits {
    function depositFor(address account, uint256 amount) external;
}

/// @title ProviderStaking
/// @notice Providers bond stake; unbonding takes `unbondingDelay`. Slashing has two steps so it cannot
/// be dodged by unbonding: a slasher *proposes* a slash citing the keccak256 of a public evidence
/// bundle, which at once freezes up to the proposed amount of the provider's stake (bonded and
/// unbonding alike: `withdraw` never pays frozen stake); after `slashReviewDelay` the slasher
/// *executes* it: the frozen tokens are taken, paid into the JobEscrow for the developers named in
/// the proposal (pro rata to their weights) and the rest is burnt. A slasher or a reviewer may cancel a
/// pending proposal; anyone may expire one left unexecuted for `SLASH_EXECUTION_WINDOW` after it
/// became executable, so no key can freeze stake forever. Each evidence hash is used once.
contract ProviderStaking is AccessControlDefaultAdminRules, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    bytes32 public constant SLASH_REVIEWER_ROLE = keccak256("SLASH_REVIEWER_ROLE");

    /// @notice How long an executable proposal may wait for execution before anyone can expire it.
    uint64 public constant SLASH_EXECUTION_WINDOW = 30 days;
    /// @notice The longest configurable delay (unbonding, slash review, admin transfer).
    uint256 public constant MAX_DELAY = 365 days;
    /// @notice The most developers one slash compensates.
    uint256 public constant MAX_BENEFICIARIES = 64;

    enum SlashState {
        None,
        Pending,
        Executed,
        Cancelled,
        Expired
    }

    struct Stake {
        uint128 bonded;
        uint128 unbonding;
        uint64 unbondingEndsAt;
    }

    struct Proposal {
        address provider;
        uint64 executableAt;
        SlashState state;
        /// The frozen amount (what the execution takes).
        uint256 amount;
        /// keccak256(abi.encode(beneficiaries, weights)).
        bytes32 beneficiariesHash;
    }

    IERC20 private immutable _token;
    IEscrowDeposits private immutable _escrow;
    uint64 private immutable _unbondingDelay;
    uint64 private immutable _slashReviewDelay;

    mapping(address provider => Stake) private _stakes;
    mapping(address provider => uint256) private _frozen;
    mapping(bytes32 evidenceHash => Proposal) private _proposals;

    error ZeroAddress();
    error ZeroAmount();
    error AmountTooLarge(uint256 amount);
    error DurationOutOfRange(uint256 value, uint256 max);
    error InsufficientBond(address provider, uint256 bonded, uint256 amount);
    error NothingUnbonding(address provider);
    error StillUnbonding(address provider, uint64 unbondingEndsAt);
    error StakeFrozen(address provider, uint256 frozen);
    error EvidenceAlreadyUsed(bytes32 evidenceHash);
    error NothingToSlash(address provider);
    error LengthMismatch(uint256 beneficiaries, uint256 weights);
    error TooManyBeneficiaries(uint256 count, uint256 max);
    error ZeroWeight(uint256 index);
    error SlashNotPending(bytes32 evidenceHash, SlashState state);
    error SlashNotExecutable(bytes32 evidenceHash, uint64 executableAt);
    error SlashWindowClosed(bytes32 evidenceHash, uint64 closedAt);
    error SlashNotExpired(bytes32 evidenceHash, uint64 expiresAt);
    error BeneficiariesMismatch(bytes32 evidenceHash);

    event Staked(address indexed provider, uint256 amount, uint256 bonded);
    event UnbondRequested(address indexed provider, uint256 amount, uint256 unbonding, uint64 unbondingEndsAt);
    event Withdrawn(address indexed provider, uint256 amount);
    event SlashProposed(
        bytes32 indexed evidenceHash,
        address indexed provider,
        uint256 amount,
        uint64 executableAt,
        address[] beneficiaries,
        uint256[] weights
    );
    event Slashed(
        address indexed provider,
        bytes32 indexed evidenceHash,
        uint256 slashed,
        uint256 compensated,
        uint256 burnt
    );
    event SlashCancelled(bytes32 indexed evidenceHash, address indexed by);
    event SlashExpired(bytes32 indexed evidenceHash);

    constructor(
        IERC20 token_,
        address escrow_,
        address admin,
        uint48 adminDelay,
        address slasher,
        address reviewer,
        uint64 unbondingDelay_,
        uint64 slashReviewDelay_
    ) AccessControlDefaultAdminRules(_checkedDelay48(adminDelay), admin) {
        if (address(token_) == address(0) || escrow_ == address(0) || slasher == address(0) || reviewer == address(0)) {
            revert ZeroAddress();
        }
        _token = token_;
        _escrow = IEscrowDeposits(escrow_);
        _unbondingDelay = uint64(_checkedDelay(unbondingDelay_));
        _slashReviewDelay = uint64(_checkedDelay(slashReviewDelay_));
        _grantRole(SLASHER_ROLE, slasher);
        _grantRole(SLASH_REVIEWER_ROLE, reviewer);
    }

    // ---------------------------------------------------------------- providers

    /// @notice Bonds `amount` more of the caller's tokens (approve first).
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Stake storage s = _stakes[msg.sender];
        uint256 bonded = uint256(s.bonded) + amount;
        if (bonded + s.unbonding > type(uint128).max) revert AmountTooLarge(amount);
        s.bonded = uint128(bonded);
        emit Staked(msg.sender, amount, bonded);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Moves `amount` from bonded to unbonding; the unbonding delay (re)starts for all of it.
    function requestUnbond(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Stake storage s = _stakes[msg.sender];
        uint256 bonded = s.bonded;
        if (amount > bonded) revert InsufficientBond(msg.sender, bonded, amount);
        uint256 unbonding = uint256(s.unbonding) + amount;
        uint64 endsAt = uint64(block.timestamp) + _unbondingDelay;
        s.bonded = uint128(bonded - amount);
        s.unbonding = uint128(unbonding);
        s.unbondingEndsAt = endsAt;
        emit UnbondRequested(msg.sender, amount, unbonding, endsAt);
    }

    /// @notice Once the unbonding delay has passed, withdraws what is unbonding and not frozen:
    /// `min(unbonding, bonded + unbonding - frozen)`. What is not paid stays unbonding.
    function withdraw() external nonReentrant {
        Stake storage s = _stakes[msg.sender];
        uint256 unbonding = s.unbonding;
        if (unbonding == 0) revert NothingUnbonding(msg.sender);
        uint64 endsAt = s.unbondingEndsAt;
        if (block.timestamp < endsAt) revert StillUnbonding(msg.sender, endsAt);
        uint256 frozen = _frozen[msg.sender];
        uint256 free = uint256(s.bonded) + unbonding - frozen; // frozen <= bonded + unbonding always
        uint256 amount = Math.min(unbonding, free);
        if (amount == 0) revert StakeFrozen(msg.sender, frozen);
        uint256 left = unbonding - amount;
        s.unbonding = uint128(left);
        if (left == 0) s.unbondingEndsAt = 0;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- slashing

    /// @notice Proposes a slash of up to `amount` of `provider`'s stake citing `evidenceHash` (the
    /// keccak256 of the public evidence bundle), and freezes `min(amount, unfrozen stake)` at once.
    /// On execution the slashed tokens go to `beneficiaries` pro rata to `weights` (paid into the
    /// escrow) and the rest is burnt. Only SLASHER_ROLE; each evidence hash once.
    function proposeSlash(
        address provider,
        uint256 amount,
        bytes32 evidenceHash,
        address[] calldata beneficiaries,
        uint256[] calldata weights
    ) external onlyRole(SLASHER_ROLE) {
        if (_proposals[evidenceHash].state != SlashState.None) revert EvidenceAlreadyUsed(evidenceHash);
        if (amount == 0) revert ZeroAmount();
        _checkBeneficiaries(beneficiaries, weights);
        Stake storage s = _stakes[provider];
        uint256 frozen = _frozen[provider];
        uint256 free = uint256(s.bonded) + s.unbonding - frozen;
        if (free == 0) revert NothingToSlash(provider);
        uint256 freezing = Math.min(amount, free);
        uint64 executableAt = uint64(block.timestamp) + _slashReviewDelay;
        _frozen[provider] = frozen + freezing;
        _proposals[evidenceHash] = Proposal({
            provider: provider,
            executableAt: executableAt,
            state: SlashState.Pending,
            amount: freezing,
            beneficiariesHash: keccak256(abi.encode(beneficiaries, weights))
        });
        emit SlashProposed(evidenceHash, provider, freezing, executableAt, beneficiaries, weights);
    }

    /// @notice Executes a pending proposal once its review delay has passed (and before its
    /// execution window closes), with the beneficiaries it was proposed with. Takes the frozen
    /// amount (bonded first, then unbonding), pays each beneficiary `slashed * weight / totalWeight`
    /// into the escrow and burns the rest. Only SLASHER_ROLE.
    function executeSlash(
        bytes32 evidenceHash,
        address[] calldata beneficiaries,
        uint256[] calldata weights
    ) external onlyRole(SLASHER_ROLE) nonReentrant returns (uint256 slashed) {
        Proposal storage p = _pendingProposal(evidenceHash);
        uint64 executableAt = p.executableAt;
        if (block.timestamp < executableAt) revert SlashNotExecutable(evidenceHash, executableAt);
        uint64 closedAt = executableAt + SLASH_EXECUTION_WINDOW;
        if (block.timestamp >= closedAt) revert SlashWindowClosed(evidenceHash, closedAt);
        if (keccak256(abi.encode(beneficiaries, weights)) != p.beneficiariesHash) {
            revert BeneficiariesMismatch(evidenceHash);
        }
        address provider = p.provider;
        slashed = _take(provider, p.amount);
        p.state = SlashState.Executed;
        (uint256[] memory shares, uint256 compensated) = _shares(slashed, weights);
        uint256 burnt = slashed - compensated;
        emit Slashed(provider, evidenceHash, slashed, compensated, burnt);
        if (compensated > 0) {
            _token.forceApprove(address(_escrow), compensated);
            for (uint256 i = 0; i < beneficiaries.length; ++i) {
                if (shares[i] > 0) _escrow.depositFor(beneficiaries[i], shares[i]);
            }
        }
        if (burnt > 0) ERC20Burnable(address(_token)).burn(burnt);
    }

    /// @notice Cancels a pending proposal and unfreezes its stake. SLASHER_ROLE or SLASH_REVIEWER_ROLE.
    function cancelSlash(bytes32 evidenceHash) external {
        if (!hasRole(SLASHER_ROLE, msg.sender) && !hasRole(SLASH_REVIEWER_ROLE, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, SLASH_REVIEWER_ROLE);
        }
        Proposal storage p = _pendingProposal(evidenceHash);
        _frozen[p.provider] -= p.amount;
        p.state = SlashState.Cancelled;
        emit SlashCancelled(evidenceHash, msg.sender);
    }

    /// @notice Expires a pending proposal left unexecuted for `SLASH_EXECUTION_WINDOW` after it became
    /// executable, and unfreezes its stake. Anyone.
    function expireSlash(bytes32 evidenceHash) external {
        Proposal storage p = _pendingProposal(evidenceHash);
        uint64 expiresAt = p.executableAt + SLASH_EXECUTION_WINDOW;
        if (block.timestamp < expiresAt) revert SlashNotExpired(evidenceHash, expiresAt);
        _frozen[p.provider] -= p.amount;
        p.state = SlashState.Expired;
        emit SlashExpired(evidenceHash);
    }

    // ---------------------------------------------------------------- views

    function token() external view returns (IERC20) {
        return _token;
    }

    function escrow() external view returns (address) {
        return address(_escrow);
    }

    function unbondingDelay() external view returns (uint64) {
        return _unbondingDelay;
    }

    function slashReviewDelay() external view returns (uint64) {
        return _slashReviewDelay;
    }

    function stakeOf(
        address provider
    ) external view returns (uint256 bonded, uint256 unbonding, uint64 unbondingEndsAt) {
        Stake storage s = _stakes[provider];
        return (s.bonded, s.unbonding, s.unbondingEndsAt);
    }

    /// @notice Stake held by pending slash proposals: never withdrawn while they are pending.
    function frozenOf(address provider) external view returns (uint256) {
        return _frozen[provider];
    }

    function slashProposal(
        bytes32 evidenceHash
    ) external view returns (address provider, uint256 amount, uint64 executableAt, SlashState state) {
        Proposal storage p = _proposals[evidenceHash];
        return (p.provider, p.amount, p.executableAt, p.state);
    }

    function isEvidenceUsed(bytes32 evidenceHash) external view returns (bool) {
        return _proposals[evidenceHash].state != SlashState.None;
    }

    // ---------------------------------------------------------------- internal

    function _pendingProposal(bytes32 evidenceHash) private view returns (Proposal storage p) {
        p = _proposals[evidenceHash];
        if (p.state != SlashState.Pending) revert SlashNotPending(evidenceHash, p.state);
    }

    /// @dev Takes `min(frozenAmount, bonded + unbonding)`, bonded first, and unfreezes `frozenAmount`.
    function _take(address provider, uint256 frozenAmount) private returns (uint256 slashed) {
        Stake storage s = _stakes[provider];
        uint256 bonded = s.bonded;
        uint256 unbonding = s.unbonding;
        slashed = Math.min(frozenAmount, bonded + unbonding);
        uint256 fromBonded = Math.min(slashed, bonded);
        s.bonded = uint128(bonded - fromBonded);
        s.unbonding = uint128(unbonding - (slashed - fromBonded));
        _frozen[provider] -= frozenAmount;
    }

    /// @dev Each beneficiary's share `slashed * weight / totalWeight` (rounded down) and their sum.
    function _shares(
        uint256 slashed,
        uint256[] calldata weights
    ) private pure returns (uint256[] memory shares, uint256 sum) {
        shares = new uint256[](weights.length);
        uint256 totalWeight;
        for (uint256 i = 0; i < weights.length; ++i) totalWeight += weights[i];
        for (uint256 i = 0; i < weights.length; ++i) {
            shares[i] = Math.mulDiv(slashed, weights[i], totalWeight);
            sum += shares[i];
        }
    }

    function _checkBeneficiaries(address[] calldata beneficiaries, uint256[] calldata weights) private pure {
        uint256 n = beneficiaries.length;
        if (n != weights.length) revert LengthMismatch(n, weights.length);
        if (n > MAX_BENEFICIARIES) revert TooManyBeneficiaries(n, MAX_BENEFICIARIES);
        uint256 totalWeight;
        for (uint256 i = 0; i < n; ++i) {
            if (beneficiaries[i] == address(0)) revert ZeroAddress();
            if (weights[i] == 0) revert ZeroWeight(i);
            totalWeight += weights[i]; // reverts on overflow, so execution's sum cannot
        }
    }

    function _checkedDelay(uint256 value) private pure returns (uint256) {
        if (value > MAX_DELAY) revert DurationOutOfRange(value, MAX_DELAY);
        return value;
    }

    function _checkedDelay48(uint48 value) private pure returns (uint48) {
        return uint48(_checkedDelay(value));
    }
}
