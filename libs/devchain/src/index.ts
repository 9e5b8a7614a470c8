export { rpcReady, startAnvil, type AnvilInstance } from './anvil.js';
