// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title RewardsDistributor
/// @notice Pays providers from per-epoch Merkle roots of their **cumulative** earnings, only out of
/// money funded for those epochs.
///
/// Each epoch the settler posts one root (epoch = last + 1, never skipped) with the hash of the
/// epoch file that rebuilds it and the epoch's `total`. A root becomes final once its challenge
/// window has passed; until then a guardian can veto it, which rolls the settled epoch back to the
/// one before, so the settler re-posts a corrected root for the same epoch.
///
/// A final epoch is then funded, in epoch order, by anyone (the JobEscrow's debits, or a treasury)
/// with exactly its `total`; `fundedEpoch()` is the newest epoch funded together with all the
/// epochs before it. A claim proves `(index, account, cumulativeAmount)` against any funded root
/// and pays `cumulativeAmount - alreadyClaimed`: one claim pays everything owed so far. All claims
/// together never exceed the cumulative total of the root they are made against, so a root with a
/// wrong `total` can only draw on money funded for its own and earlier epochs, never on later ones.
///
/// Leaf: `keccak256(bytes.concat(keccak256(abi.encode(block.chainid, address(this), index, account,
/// cumulativeAmount))))`, in OpenZeppelin's standard Merkle tree (the merkle-tree library
/// `standard-v1`, leaf encoding `uint256, address, uint256, address, uint256`; sorted pairs, as
/// MerkleProof folds them). The chain id and this contract's address bind every leaf to this
/// distributor: a ticket proves nothing on another distributor or chain. `index` is the provider's
/// permanent slot, so the claimed amounts pack four to a storage word (uint64 each; the ledger caps a
/// balance at 2^63-1).
contract RewardsDistributor is AccessControlDefaultAdminRules, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @notice The shortest challenge window accepted (except on the local dev chain, id 31337).
    uint64 public constant MIN_CHALLENGE_WINDOW = 1 hours;
    /// @notice The longest challenge window accepted.
    uint64 public constant MAX_CHALLENGE_WINDOW = 30 days;

    uint256 private constant _DEV_CHAIN_ID = 31337;
    uint256 private constant _AMOUNT_MASK = type(uint64).max;

    struct EpochRoot {
        bytes32 root;
        uint64 claimableAt;
        /// Σ totals of epochs 1..this one (at most type(uint184).max).
        uint192 cumulativeTotal;
        bytes32 fileHash;
        uint192 total;
        /// The root of the escrow debits that fund this epoch (see `fundingRoot`).
        bytes32 fundingRoot;
    }

    IERC20 private immutable _token;
    uint64 private immutable _challengeWindow;

    /// @dev These two pack into the slot of Pausable's `_paused` (AccessControlDefaultAdminRules fills
    /// the slots before it), which every claim reads anyway: a claim checks that its epoch is funded
    /// (which implies final and never vetoed) and that it stays within the money funded so far, with
    /// no other read of that kind. `_claimableFunds` is `cumulativeTotal(_fundedEpoch)` less everything
    /// claimed: it grows by an epoch's total when the epoch is fully funded and shrinks by each payout,
    /// so it never goes below 0 and fits in uint184 (`postRoot` keeps cumulative totals within it).
    uint64 private _fundedEpoch;
    uint184 private _claimableFunds;
    uint64 private _lastEpoch;
    mapping(uint256 epoch => EpochRoot) private _epochs;
    mapping(uint256 epoch => uint256) private _funded;
    /// @dev Four uint64 claimed amounts per word: word `index >> 2`, bits `(index & 3) * 64`.
    mapping(uint256 word => uint256) private _claimedWords;

    error ZeroAddress();
    error ZeroAmount();
    error ChallengeWindowOutOfRange(uint64 window, uint64 min, uint64 max);
    error EmptyRoot();
    error EpochOutOfOrder(uint64 expected, uint64 given);
    error EpochTotalTooLarge(uint256 total);
    error CumulativeTotalTooLarge(uint256 cumulativeTotal);
    error UnknownEpoch(uint64 epoch);
    error ChallengeWindowOpen(uint64 epoch, uint64 claimableAt);
    error ChallengeWindowClosed(uint64 epoch);
    error EpochNotFinal(uint64 epoch);
    error EpochFundedOutOfOrder(uint64 expected, uint64 given);
    error FundingExceedsTotal(uint64 epoch, uint256 funded, uint256 total);
    error EpochUnderfunded(uint64 epoch, uint256 funded, uint256 total);
    error EpochNotFunded(uint64 epoch);
    error ClaimExceedsFunded(uint64 epoch, uint256 totalClaimed, uint256 cumulativeTotal);
    error CumulativeAmountTooLarge(uint256 cumulativeAmount);
    error NothingToClaim(uint256 index, uint256 cumulativeAmount, uint256 alreadyClaimed);
    error InvalidProof();

    event RootPosted(
        uint64 indexed epoch,
        bytes32 root,
        bytes32 fileHash,
        uint256 total,
        uint64 claimableAt,
        bytes32 fundingRoot
    );
    event RootVetoed(uint64 indexed epoch, bytes32 root, bytes32 reason, uint64 rolledBackFrom);
    event EpochFunded(uint64 indexed epoch, address indexed funder, uint256 amount, uint256 funded, uint256 total);
    event EpochFullyFunded(uint64 indexed epoch, uint256 cumulativeTotal);

    /// @param token_ The token rewards are paid in.
    /// @param admin Default admin (grants roles, unpauses; transferable only after `adminDelay`).
    /// @param adminDelay Seconds a default admin transfer waits before it can be accepted.
    /// @param settler Gets SETTLER_ROLE (posts roots).
    /// @param guardian Gets GUARDIAN_ROLE (vetoes roots in their window, pauses claims).
    /// @param challengeWindow_ Seconds between a root's posting and its finality: at least
    /// MIN_CHALLENGE_WINDOW (any value on chain 31337), at most MAX_CHALLENGE_WINDOW.
    constructor(
        IERC20 token_,
        address admin,
        uint48 adminDelay,
        address settler,
        address guardian,
        uint64 challengeWindow_
    ) AccessControlDefaultAdminRules(adminDelay, admin) {
        if (address(token_) == address(0) || settler == address(0) || guardian == address(0)) revert ZeroAddress();
        if (
            challengeWindow_ > MAX_CHALLENGE_WINDOW ||
            (challengeWindow_ < MIN_CHALLENGE_WINDOW && block.chainid != _DEV_CHAIN_ID)
        ) {
            revert ChallengeWindowOutOfRange(challengeWindow_, MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW);
        }
        _token = token_;
        _challengeWindow = challengeWindow_;
        _grantRole(SETTLER_ROLE, settler);
        _grantRole(GUARDIAN_ROLE, guardian);
    }

    // ---------------------------------------------------------------- settlement

    /// @notice Posts the root of `epoch` (must be `lastEpoch() + 1`) with the hash of its epoch file,
    /// `total`, the sum of the earnings the epoch adds, and `fundingRoot_`, the Merkle root of the
    /// escrow debit batches that fund it (zero when nothing is debited). The funding root is vetoed
    /// and becomes final with the root: once final, anyone can make the escrow debit exactly those
    /// batches (`JobEscrow.debit`), so a posted epoch gets funded even if the settler never comes
    /// back. Only SETTLER_ROLE.
    function postRoot(
        uint64 epoch,
        bytes32 root,
        bytes32 fileHash,
        uint256 total,
        bytes32 fundingRoot_
    ) external onlyRole(SETTLER_ROLE) {
        uint64 expected = _lastEpoch + 1;
        if (epoch != expected) revert EpochOutOfOrder(expected, epoch);
        if (root == bytes32(0)) revert EmptyRoot();
        if (total > type(uint192).max) revert EpochTotalTooLarge(total);
        uint256 cumulative = uint256(_epochs[epoch - 1].cumulativeTotal) + total;
        if (cumulative > type(uint184).max) revert CumulativeTotalTooLarge(cumulative);
        uint64 claimableAt = uint64(block.timestamp) + _challengeWindow;
        _epochs[epoch] = EpochRoot({
            root: root,
            claimableAt: claimableAt,
            cumulativeTotal: uint192(cumulative),
            fileHash: fileHash,
            total: uint192(total),
            fundingRoot: fundingRoot_
        });
        _lastEpoch = epoch;
        emit RootPosted(epoch, root, fileHash, total, claimableAt, fundingRoot_);
    }

    /// @notice Vetoes the root of `epoch` during its challenge window. The settled epoch rolls back
    /// to `epoch - 1`: later roots, all still in their windows, are dropped with it and the settler
    /// re-posts from `epoch`. Only GUARDIAN_ROLE. `reason` is a hash of the evidence. (An epoch in
    /// its window is never funded, so no funding is dropped.)
    function vetoRoot(uint64 epoch, bytes32 reason) external onlyRole(GUARDIAN_ROLE) {
        uint64 last = _lastEpoch;
        if (epoch == 0 || epoch > last) revert UnknownEpoch(epoch);
        EpochRoot storage vetoed = _epochs[epoch];
        if (block.timestamp >= vetoed.claimableAt) revert ChallengeWindowClosed(epoch);
        bytes32 root = vetoed.root;
        _lastEpoch = epoch - 1;
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

    // ---------------------------------------------------------------- funding

    /// @notice Pulls `amount` tokens from the caller (approve first) for `epoch`. Anyone may fund.
    /// The epoch must be final, every earlier epoch fully funded (`epoch == fundedEpoch() + 1`), and
    /// the epoch's funding never exceeds its posted total. Once it reaches the total the epoch is
    /// fully funded and its root becomes claimable.
    function fund(uint64 epoch, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        _checkFundable(epoch);
        uint256 total = _epochs[epoch].total;
        uint256 funded = _funded[epoch] + amount;
        if (funded > total) revert FundingExceedsTotal(epoch, funded, total);
        _funded[epoch] = funded;
        emit EpochFunded(epoch, msg.sender, amount, funded, total);
        if (funded == total) _markFullyFunded(epoch);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Marks the next final epoch fully funded when its funding already covers its total,
    /// which is how an epoch with total 0 (nothing to fund) becomes claimable. Anyone may call it.
    function markFunded(uint64 epoch) external {
        _checkFundable(epoch);
        uint256 total = _epochs[epoch].total;
        uint256 funded = _funded[epoch];
        if (funded < total) revert EpochUnderfunded(epoch, funded, total);
        _markFullyFunded(epoch);
    }

    // ---------------------------------------------------------------- claims

    /// @notice Pays `account` everything it has earned up to `epoch` and not claimed yet. Anyone may
    /// submit it: the tokens always go to `account`. `epoch` must be funded (`isFunded`); all claims
    /// together never exceed `cumulativeTotal(epoch)`, so claim against the newest funded epoch.
    function claim(
        uint64 epoch,
        uint256 index,
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external whenNotPaused nonReentrant {
        // Checks. Funded implies final, and a final root can no longer be vetoed.
        if (epoch == 0 || epoch > _fundedEpoch) _revertNotClaimable(epoch);
        if (cumulativeAmount > _AMOUNT_MASK) revert CumulativeAmountTooLarge(cumulativeAmount);
        uint256 word = _claimedWords[index >> 2];
        uint256 alreadyClaimed = (word >> ((index & 3) << 6)) & _AMOUNT_MASK;
        if (cumulativeAmount <= alreadyClaimed) revert NothingToClaim(index, cumulativeAmount, alreadyClaimed);
        // Proof.
        {
            bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(block.chainid, address(this), index, account, cumulativeAmount))));
            if (_processProof(proof, leaf) != _epochs[epoch].root) revert InvalidProof();
        }
        uint256 payout = cumulativeAmount - alreadyClaimed;
        uint256 claimable = _claimableFunds;
        if (payout > claimable) {
            uint256 fundedTotal = _epochs[_fundedEpoch].cumulativeTotal;
            revert ClaimExceedsFunded(epoch, fundedTotal - claimable + payout, fundedTotal);
        }
        // Against an older funded root, claims together stay within that root's own cumulative total
        // too (a root can only draw on money funded for its own and earlier epochs).
        if (epoch != _fundedEpoch) _checkWithinRoot(epoch, claimable, payout);
        // Effects.
        {
            uint256 shift = (index & 3) << 6;
            _claimedWords[index >> 2] = (word & ~(_AMOUNT_MASK << shift)) | (cumulativeAmount << shift);
        }
        _claimableFunds = uint184(claimable - payout);
        // Interaction. The token's Transfer(this, account, payout) is the claim's record on chain (no
        // event of its own: it would repeat the Transfer, and costs ~1.8k gas a claim);
        // `claimedAmount(index)` gives the cumulative amount paid.
        _token.safeTransfer(account, payout);
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

    /// @notice The newest epoch that is fully funded together with every epoch before it; 0 before.
    function fundedEpoch() external view returns (uint64) {
        return _fundedEpoch;
    }

    /// @notice True once `epoch` and every epoch before it are fully funded: its root is claimable.
    function isFunded(uint64 epoch) public view returns (bool) {
        return epoch != 0 && epoch <= _fundedEpoch;
    }

    /// @notice The tokens funded so far for `epoch`.
    function fundedIn(uint64 epoch) external view returns (uint256) {
        return _funded[epoch];
    }

    /// @notice Σ of the totals of epochs 1..`epoch` (0 when `epoch` is not posted).
    function cumulativeTotal(uint64 epoch) external view returns (uint256) {
        if (epoch == 0 || epoch > _lastEpoch) return 0;
        return _epochs[epoch].cumulativeTotal;
    }

    /// @notice Everything paid out by claims so far.
    function totalClaimed() external view returns (uint256) {
        uint64 funded = _fundedEpoch;
        return funded == 0 ? 0 : _epochs[funded].cumulativeTotal - _claimableFunds;
    }

    /// @notice The root, file hash, claimable time and total of `epoch` (zeros when not posted).
    function epochRoot(
        uint64 epoch
    ) external view returns (bytes32 root, bytes32 fileHash, uint64 claimableAt, uint256 total) {
        if (epoch == 0 || epoch > _lastEpoch) return (bytes32(0), bytes32(0), 0, 0);
        EpochRoot storage r = _epochs[epoch];
        return (r.root, r.fileHash, r.claimableAt, r.total);
    }

    /// @notice The root of the escrow debit batches that fund `epoch`, as posted with its root (zero
    /// when not posted or when nothing is debited).
    function fundingRoot(uint64 epoch) external view returns (bytes32) {
        if (epoch == 0 || epoch > _lastEpoch) return bytes32(0);
        return _epochs[epoch].fundingRoot;
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

    /// @notice The leaf the tree commits to for `(index, account, cumulativeAmount)` on this
    /// distributor and chain.
    function leafHash(uint256 index, address account, uint256 cumulativeAmount) external view returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(block.chainid, address(this), index, account, cumulativeAmount))));
    }

    /// @notice The cumulative amount already paid to the provider at `index`.
    function claimedAmount(uint256 index) external view returns (uint256) {
        return (_claimedWords[index >> 2] >> ((index & 3) << 6)) & _AMOUNT_MASK;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Reverts unless `epoch` is final and the next epoch to fund.
    function _checkFundable(uint64 epoch) private view {
        if (!isFinal(epoch)) revert EpochNotFinal(epoch);
        uint64 expected = _fundedEpoch + 1;
        if (epoch != expected) revert EpochFundedOutOfOrder(expected, epoch);
    }

    function _markFullyFunded(uint64 epoch) private {
        _fundedEpoch = epoch;
        _claimableFunds += uint184(_epochs[epoch].total);
        emit EpochFullyFunded(epoch, _epochs[epoch].cumulativeTotal);
    }

    /// @dev Folds `proof` over `leaf` in sorted pairs, exactly as OpenZeppelin's
    /// `MerkleProof.processProofCalldata` does (`keccak256(min ‖ max)` at each level), in a loop that
    /// costs ~50 gas less per sibling (no bounds check per element: the ABI decoder has already
    /// checked that the whole array lies in calldata; no internal call per level). Scratch space only.
    function _processProof(bytes32[] calldata proof, bytes32 leaf) private pure returns (bytes32 computed) {
        assembly ("memory-safe") {
            computed := leaf
            let end := add(proof.offset, shl(5, proof.length))
            for { let p := proof.offset } lt(p, end) { p := add(p, 0x20) } {
                let sibling := calldataload(p)
                let both := xor(computed, sibling)
                // The smaller of the two first.
                let smaller := xor(computed, mul(both, gt(computed, sibling)))
                mstore(0x00, smaller)
                mstore(0x20, xor(both, smaller))
                computed := keccak256(0x00, 0x40)
            }
        }
    }

    /// @dev Reverts unless everything claimed, with `payout`, stays within `cumulativeTotal(epoch)`
    /// (`epoch` is funded but older than `_fundedEpoch`; `claimable` is `_claimableFunds`).
    function _checkWithinRoot(uint64 epoch, uint256 claimable, uint256 payout) private view {
        uint256 claimedAfter = uint256(_epochs[_fundedEpoch].cumulativeTotal) - claimable + payout;
        uint256 rootTotal = _epochs[epoch].cumulativeTotal;
        if (claimedAfter > rootTotal) revert ClaimExceedsFunded(epoch, claimedAfter, rootTotal);
    }

    /// @dev Says why a claim against `epoch` (not funded) is refused.
    function _revertNotClaimable(uint64 epoch) private view {
        if (epoch == 0 || epoch > _lastEpoch) revert UnknownEpoch(epoch);
        uint64 claimableAt = _epochs[epoch].claimableAt;
        if (block.timestamp < claimableAt) revert ChallengeWindowOpen(epoch, claimableAt);
        revert EpochNotFunded(epoch);
    }
}
