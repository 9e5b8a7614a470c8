// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title RewardsDistributor
/// @notice Pays providers from per-epoch Merkle roots of their **cumulative** earnings.
///
/// Each epoch the settler posts one root (epoch = last + 1, never skipped) with the hash of the
/// epoch file that rebuilds it. A root becomes claimable once its challenge window has passed;
/// until then a guardian can veto it, which rolls the settled epoch back to the one before, so the
/// settler re-posts a corrected root for the same epoch. A claim proves
/// `(index, account, cumulativeAmount)` against any claimable root and pays
/// `cumulativeAmount - alreadyClaimed`: one claim pays everything owed so far.
///
/// Leaf: `keccak256(bytes.concat(keccak256(abi.encode(index, account, cumulativeAmount))))`, tree
/// of sorted pairs (OpenZeppelin MerkleProof). `index` is the provider's permanent slot, so the
/// claimed amounts pack four to a storage word (uint64 each; the ledger caps a balance at 2^63-1).
contract RewardsDistributor is AccessControl, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    uint256 private constant _AMOUNT_MASK = type(uint64).max;

    struct EpochRoot {
        bytes32 root;
        bytes32 fileHash;
        uint64 claimableAt;
        uint192 total;
    }

    IERC20 private immutable _token;
    uint64 private immutable _challengeWindow;

    /// @dev These two pack into the slot of Pausable's `_paused`, which every claim reads anyway, so a
    /// claim against the newest root checks its window without another cold storage read.
    uint64 private _lastEpoch;
    uint64 private _lastClaimableAt;
    mapping(uint256 epoch => EpochRoot) private _epochs;
    /// @dev Four uint64 claimed amounts per word: word `index >> 2`, bits `(index & 3) * 64`.
    mapping(uint256 word => uint256) private _claimedWords;

    error ZeroAddress();
    error EmptyRoot();
    error EpochOutOfOrder(uint64 expected, uint64 given);
    error EpochTotalTooLarge(uint256 total);
    error UnknownEpoch(uint64 epoch);
    error ChallengeWindowOpen(uint64 epoch, uint64 claimableAt);
    error ChallengeWindowClosed(uint64 epoch);
    error CumulativeAmountTooLarge(uint256 cumulativeAmount);
    error NothingToClaim(uint256 index, uint256 cumulativeAmount, uint256 alreadyClaimed);
    error InvalidProof();

    event RootPosted(uint64 indexed epoch, bytes32 root, bytes32 fileHash, uint256 total, uint64 claimableAt);
    event RootVetoed(uint64 indexed epoch, bytes32 root, bytes32 reason, uint64 rolledBackFrom);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount);

    constructor(IERC20 token_, address admin, uint64 challengeWindow_) {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        _token = token_;
        _challengeWindow = challengeWindow_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------- settlement

    /// @notice Posts the root of `epoch` (must be `lastEpoch() + 1`) with the hash of its epoch file
    /// and `total`, the sum of the earnings the epoch adds. Only SETTLER_ROLE.
    function postRoot(uint64 epoch, bytes32 root, bytes32 fileHash, uint256 total) external onlyRole(SETTLER_ROLE) {
        uint64 expected = _lastEpoch + 1;
        if (epoch != expected) revert EpochOutOfOrder(expected, epoch);
        if (root == bytes32(0)) revert EmptyRoot();
        if (total > type(uint192).max) revert EpochTotalTooLarge(total);
        uint64 claimableAt = uint64(block.timestamp) + _challengeWindow;
        _epochs[epoch] = EpochRoot({root: root, fileHash: fileHash, claimableAt: claimableAt, total: uint192(total)});
        _lastEpoch = epoch;
        _lastClaimableAt = claimableAt;
        emit RootPosted(epoch, root, fileHash, total, claimableAt);
    }

    /// @notice Vetoes the root of `epoch` during its challenge window. The settled epoch rolls back
    /// to `epoch - 1`: later roots, all still in their windows, are dropped with it and the settler
    /// re-posts from `epoch`. Only GUARDIAN_ROLE. `reason` is a hash of the evidence.
    function vetoRoot(uint64 epoch, bytes32 reason) external onlyRole(GUARDIAN_ROLE) {
        uint64 last = _lastEpoch;
        if (epoch == 0 || epoch > last) revert UnknownEpoch(epoch);
        EpochRoot storage vetoed = _epochs[epoch];
        if (block.timestamp >= vetoed.claimableAt) revert ChallengeWindowClosed(epoch);
        bytes32 root = vetoed.root;
        _lastEpoch = epoch - 1;
        _lastClaimableAt = _epochs[epoch - 1].claimableAt;
        emit RootVetoed(epoch, root, reason, last);
    }

    /// @notice Stops claims. Only GUARDIAN_ROLE.
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @notice Resumes claims. Only DEFAULT_ADMIN_ROLE.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    // ---------------------------------------------------------------- claims

    /// @notice Pays `account` everything it has earned up to `epoch` and not claimed yet. Anyone may
    /// submit it: the tokens always go to `account`.
    function claim(
        uint64 epoch,
        uint256 index,
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external whenNotPaused nonReentrant {
        // Checks.
        EpochRoot storage settled = _epochs[epoch];
        {
            uint64 last = _lastEpoch;
            if (epoch == 0 || epoch > last) revert UnknownEpoch(epoch);
            uint64 claimableAt = epoch == last ? _lastClaimableAt : settled.claimableAt;
            if (block.timestamp < claimableAt) revert ChallengeWindowOpen(epoch, claimableAt);
        }
        if (cumulativeAmount > _AMOUNT_MASK) revert CumulativeAmountTooLarge(cumulativeAmount);
        uint256 word = _claimedWords[index >> 2];
        uint256 alreadyClaimed = (word >> ((index & 3) << 6)) & _AMOUNT_MASK;
        if (cumulativeAmount <= alreadyClaimed) revert NothingToClaim(index, cumulativeAmount, alreadyClaimed);
        // Proof.
        {
            bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(index, account, cumulativeAmount))));
            if (!MerkleProof.verifyCalldata(proof, settled.root, leaf)) revert InvalidProof();
        }
        // Effects.
        {
            uint256 shift = (index & 3) << 6;
            _claimedWords[index >> 2] = (word & ~(_AMOUNT_MASK << shift)) | (cumulativeAmount << shift);
        }
        // Interaction, then the event.
        _token.safeTransfer(account, cumulativeAmount - alreadyClaimed);
        emit Claimed(account, cumulativeAmount - alreadyClaimed, cumulativeAmount);
    }

    // ---------------------------------------------------------------- views

    function token() external view returns (IERC20) {
        return _token;
    }

    function challengeWindow() external view returns (uint64) {
        return _challengeWindow;
    }

    /// @notice The newest posted (not vetoed) epoch; 0 before the first root.
    function lastEpoch() external view returns (uint64) {
        return _lastEpoch;
    }

    /// @notice The root, file hash, claimable time and total of `epoch` (zeros when not posted).
    function epochRoot(
        uint64 epoch
    ) external view returns (bytes32 root, bytes32 fileHash, uint64 claimableAt, uint256 total) {
        if (epoch == 0 || epoch > _lastEpoch) return (bytes32(0), bytes32(0), 0, 0);
        EpochRoot storage r = _epochs[epoch];
        return (r.root, r.fileHash, r.claimableAt, r.total);
    }

    /// @notice True once `epoch` is posted, not vetoed and past its challenge window.
    function isFinal(uint64 epoch) public view returns (bool) {
        return epoch != 0 && epoch <= _lastEpoch && block.timestamp >= _epochs[epoch].claimableAt;
    }

    /// @notice The sum of earnings `epoch` adds, as posted with its root (0 when not posted).
    function epochTotal(uint64 epoch) external view returns (uint256) {
        if (epoch == 0 || epoch > _lastEpoch) return 0;
        return _epochs[epoch].total;
    }

    /// @notice The leaf the tree commits to for `(index, account, cumulativeAmount)`.
    function leafHash(uint256 index, address account, uint256 cumulativeAmount) external pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(index, account, cumulativeAmount))));
    }

    /// @notice The cumulative amount already paid to the provider at `index`.
    function claimedAmount(uint256 index) external view returns (uint256) {
        return (_claimedWords[index >> 2] >> ((index & 3) << 6)) & _AMOUNT_MASK;
    }
}
