// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title ComputeToken
/// @notice The token gpumesh developers pay with and providers are paid in. Six decimals, like the
/// ledger's integer base units (micro-tokens), so a ledger amount is a token amount unchanged.
///
/// The supply never exceeds `cap()`. Only MINTER_ROLE mints; the default admin (who grants roles)
/// changes only through OpenZeppelin's two-step transfer with a delay set at deployment.
contract ComputeToken is ERC20, ERC20Permit, ERC20Capped, ERC20Burnable, AccessControlDefaultAdminRules {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    error ZeroAddress();

    /// @param admin Default admin (grants and revokes roles; transferable only after `adminDelay`).
    /// @param adminDelay Seconds a default admin transfer waits before it can be accepted.
    /// @param minter Gets MINTER_ROLE.
    /// @param cap_ The maximum total supply in base units (must be > 0).
    constructor(
        address admin,
        uint48 adminDelay,
        address minter,
        uint256 cap_
    )
        ERC20("gpumesh Compute", "GPUC")
        ERC20Permit("gpumesh Compute")
        ERC20Capped(cap_)
        AccessControlDefaultAdminRules(adminDelay, admin)
    {
        if (minter == address(0)) revert ZeroAddress();
        _grantRole(MINTER_ROLE, minter);
    }

    /// @notice Six decimals: one token is 1,000,000 base units.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints `amount` base units to `to`, never beyond the cap. Only MINTER_ROLE.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped) {
        super._update(from, to, value);
    }
}
