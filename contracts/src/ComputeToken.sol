// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title ComputeToken
/// @notice The token gpumesh developers pay with and providers are paid in. Six decimals, like the
/// ledger's integer base units (micro-tokens), so a ledger amount is a token amount unchanged.
/// Burnable: ProviderStaking burns slashed stake that compensates no developer.
contract ComputeToken is ERC20, ERC20Burnable, ERC20Permit, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    constructor(address admin) ERC20("gpumesh Compute", "GPUC") ERC20Permit("gpumesh Compute") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Six decimals: one token is 1,000,000 base units.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints `amount` base units to `to`. Only MINTER_ROLE.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
