// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title ProviderStaking
/// @notice Providers bond stake; unbonding takes `unbondingDelay`, and stake stays slashable while
/// it unbonds. A slasher slashes with the hash of the verification evidence (each evidence hash
/// slashes once); slashed tokens go to the treasury, an explicit address the admin sets.
contract ProviderStaking is AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    struct Stake {
        uint128 bonded;
        uint128 unbonding;
        uint64 unbondingEndsAt;
    }

    IERC20 private immutable _token;
    uint64 private immutable _unbondingDelay;

    address private _treasury;
    mapping(address provider => Stake) private _stakes;
    mapping(bytes32 evidenceHash => bool) private _evidenceUsed;

    error ZeroAddress();
    error ZeroAmount();
    error AmountTooLarge(uint256 amount);
    error InsufficientBond(address provider, uint256 bonded, uint256 amount);
    error NothingUnbonding(address provider);
    error StillUnbonding(address provider, uint64 unbondingEndsAt);
    error EvidenceAlreadyUsed(bytes32 evidenceHash);
    error NothingToSlash(address provider);

    event Staked(address indexed provider, uint256 amount, uint256 bonded);
    event UnbondRequested(address indexed provider, uint256 amount, uint256 unbonding, uint64 unbondingEndsAt);
    event Withdrawn(address indexed provider, uint256 amount);
    event Slashed(
        address indexed provider,
        bytes32 indexed evidenceHash,
        uint256 requested,
        uint256 slashed,
        address treasury
    );
    event TreasuryChanged(address indexed previousTreasury, address indexed newTreasury);

    constructor(IERC20 token_, address admin, address treasury_, uint64 unbondingDelay_) {
        if (address(token_) == address(0) || admin == address(0) || treasury_ == address(0)) revert ZeroAddress();
        _token = token_;
        _unbondingDelay = unbondingDelay_;
        _treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit TreasuryChanged(address(0), treasury_);
    }

    /// @notice Bonds `amount` more of the caller's tokens (approve first).
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Stake storage s = _stakes[msg.sender];
        uint256 bonded = uint256(s.bonded) + amount;
        if (bonded > type(uint128).max) revert AmountTooLarge(amount);
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

    /// @notice Withdraws everything unbonding once the delay has passed.
    function withdraw() external nonReentrant {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert NothingUnbonding(msg.sender);
        uint64 endsAt = s.unbondingEndsAt;
        if (block.timestamp < endsAt) revert StillUnbonding(msg.sender, endsAt);
        s.unbonding = 0;
        s.unbondingEndsAt = 0;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @notice Slashes up to `amount` of `provider`'s stake, bonded first, then unbonding, and sends
    /// it to the treasury. Only SLASHER_ROLE; `evidenceHash` can be used once.
    function slash(
        address provider,
        uint256 amount,
        bytes32 evidenceHash
    ) external onlyRole(SLASHER_ROLE) nonReentrant returns (uint256 slashed) {
        if (amount == 0) revert ZeroAmount();
        if (_evidenceUsed[evidenceHash]) revert EvidenceAlreadyUsed(evidenceHash);
        Stake storage s = _stakes[provider];
        uint256 bonded = s.bonded;
        uint256 unbonding = s.unbonding;
        if (bonded + unbonding == 0) revert NothingToSlash(provider);
        uint256 fromBonded = amount < bonded ? amount : bonded;
        uint256 rest = amount - fromBonded;
        uint256 fromUnbonding = rest < unbonding ? rest : unbonding;
        slashed = fromBonded + fromUnbonding;
        _evidenceUsed[evidenceHash] = true;
        s.bonded = uint128(bonded - fromBonded);
        s.unbonding = uint128(unbonding - fromUnbonding);
        address treasury_ = _treasury;
        emit Slashed(provider, evidenceHash, amount, slashed, treasury_);
        _token.safeTransfer(treasury_, slashed);
    }

    /// @notice Sets where slashed tokens go. Only DEFAULT_ADMIN_ROLE.
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        address previous = _treasury;
        _treasury = treasury_;
        emit TreasuryChanged(previous, treasury_);
    }

    // ---------------------------------------------------------------- views

    function token() external view returns (IERC20) {
        return _token;
    }

    function treasury() external view returns (address) {
        return _treasury;
    }

    function unbondingDelay() external view returns (uint64) {
        return _unbondingDelay;
    }

    function stakeOf(
        address provider
    ) external view returns (uint256 bonded, uint256 unbonding, uint64 unbondingEndsAt) {
        Stake storage s = _stakes[provider];
        return (s.bonded, s.unbonding, s.unbondingEndsAt);
    }

    function isEvidenceUsed(bytes32 evidenceHash) external view returns (bool) {
        return _evidenceUsed[evidenceHash];
    }
}
