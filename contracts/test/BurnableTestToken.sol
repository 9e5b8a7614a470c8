// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";

/// @notice Test mock: a burnable ERC20 anyone can mint, the token ProviderStaking's tests stake.
contract BurnableTestToken is ERC20, ERC20Burnable {
    constructor() ERC20("Burnable Test", "BURN") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
