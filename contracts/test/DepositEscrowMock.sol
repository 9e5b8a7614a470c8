// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice Test mock: the `depositFor` side of JobEscrow only. Pulls `amount` from the caller and
/// credits `account`, emitting `Deposited(account, amount)` as JobEscrow does.
contract DepositEscrowMock {
    using SafeERC20 for IERC20;

    IERC20 private immutable _token;
    mapping(address account => uint256) private _balances;

    event Deposited(address indexed account, uint256 amount);

    constructor(IERC20 token_) {
        _token = token_;
    }

    function depositFor(address account, uint256 amount) external {
        _balances[account] += amount;
        emit Deposited(account, amount);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }
}
