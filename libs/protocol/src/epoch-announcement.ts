import { z } from 'zod';

import {
  AddressSchema,
  NonNegativeIntSchema,
  PeerIdStringSchema,
  PositiveIntSchema,
  ProtocolVersionSchema,
  TimestampMsSchema,
} from './primitives.js';

/** Largest epoch file announced or served over p2p (a file of ~100,000 leaves is ~25 MiB). */
export const MAX_EPOCH_FILE_BYTES = 64 * 1024 * 1024;
/** An announcement is valid this long after it was issued (it is re-announced, never relied on alone). */
export const MAX_EPOCH_ANNOUNCEMENT_TTL_MS = 10 * 60 * 1000;

const Bytes32HexSchema = z
  .string({ error: 'expected 0x + 64 lower-case hex characters' })
  .regex(/^0x[0-9a-f]{64}$/, { error: 'expected 0x + 64 lower-case hex characters' });

/**
 * "Epoch `epoch` of `distributor` on `chainId` has this root and file hash on chain, and I hold its
 * file (`size` bytes)": gossiped on `EPOCHS_TOPIC` by the coordinator when it posts a root (and again
 * later, for peers that joined since), signed by its wallet. The file itself is fetched by `fileHash`
 * over `EPOCH_FILE_PROTOCOL_ID` from the announcer or any peer that kept it; a receiver keeps only
 * bytes whose keccak256 is `fileHash`, and claims only after the chain says the same. `seq` grows with
 * every announcement of one signer (replays and stale ones are ignored).
 */
export const EpochAnnouncementSchema = z
  .strictObject({
    version: ProtocolVersionSchema,
    /** The libp2p peer that publishes it and serves the file. */
    peerId: PeerIdStringSchema,
    seq: NonNegativeIntSchema,
    issuedAt: TimestampMsSchema,
    expiresAt: TimestampMsSchema,
    chainId: PositiveIntSchema,
    distributor: AddressSchema,
    epoch: PositiveIntSchema,
    root: Bytes32HexSchema,
    fileHash: Bytes32HexSchema,
    size: z
      .number({ error: 'expected a byte count' })
      .int({ error: 'expected a byte count' })
      .min(1, { error: 'expected a byte count' })
      .max(MAX_EPOCH_FILE_BYTES, { error: `expected at most ${MAX_EPOCH_FILE_BYTES} bytes` }),
  })
  .superRefine((a, ctx) => {
    if (a.expiresAt <= a.issuedAt) {
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'expected expiresAt > issuedAt' });
    } else if (a.expiresAt - a.issuedAt > MAX_EPOCH_ANNOUNCEMENT_TTL_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['expiresAt'],
        message: `expected at most ${MAX_EPOCH_ANNOUNCEMENT_TTL_MS} ms after issuedAt`,
      });
    }
  });

export type EpochAnnouncement = z.output<typeof EpochAnnouncementSchema>;
