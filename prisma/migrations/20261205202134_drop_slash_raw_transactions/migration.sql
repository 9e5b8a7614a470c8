-- The signed transactions of the slash steps are journaled in "ChainTx" (keys slash:<step>:<evidenceHash>)
-- by the shared sendJournaled; the row keeps each step's hash and the execution's nonce (admin API).
-- AlterTable
ALTER TABLE "SlashProposal" DROP COLUMN "cancelNonce",
DROP COLUMN "cancelRawTransaction",
DROP COLUMN "proposeNonce",
DROP COLUMN "proposeRawTransaction",
DROP COLUMN "rawTransaction";
