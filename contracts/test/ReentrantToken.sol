// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Test mock: an ERC20 that, when armed, calls back into `target` with `data` in the middle
/// of a transfer (before balances move) and bubbles up the revert, so a re-entrancy attempt makes
/// the outer call fail with the guard's error.
contract ReentrantToken is ERC20 {
    address private _target;
    bytes private _data;
    bool private _armed;

    constructor() ERC20("Reentrant", "REE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target, bytes calldata data) external {
        _target = target;
        _data = data;
        _armed = true;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (_armed && from != address(0)) {
            _armed = false;
            (bool ok, bytes memory ret) = _target.call(_data);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        super._update(from, to, value);
    }
}
