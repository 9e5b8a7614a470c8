// An agent serves both transports of the job protocol with one set of options.
import { JOB_BATCH_PROTOCOL_ID, JOB_PROTOCOL_ID } from '@gpumesh/protocol';
import type { Libp2p } from 'libp2p';

import { DEFAULT_MAX_JOB_STREAMS } from '../constants.js';
import type { HandleJobOffersOptions } from '../types.js';
import { serveJobBatch } from './serve-batch.js';
import { serveJobOffer } from './serve-offer.js';

/**
 * Serves `JOB_PROTOCOL_ID` (`serveJobOffer`) and `JOB_BATCH_PROTOCOL_ID` (`serveJobBatch`, the same per
 * offer) on an agent. Resolves a function that stops serving.
 */
export async function handleJobOffers(
  node: Libp2p,
  options: HandleJobOffersOptions,
): Promise<() => Promise<void>> {
  const maxInboundStreams = options.maxInboundStreams ?? DEFAULT_MAX_JOB_STREAMS;
  await node.handle(
    JOB_PROTOCOL_ID,
    (stream, connection) => {
      void serveJobOffer(stream, connection, options);
    },
    { maxInboundStreams },
  );
  await node.handle(
    JOB_BATCH_PROTOCOL_ID,
    (stream, connection) => {
      void serveJobBatch(stream, connection, options);
    },
    { maxInboundStreams },
  );
  return async () => {
    await node.unhandle([JOB_PROTOCOL_ID, JOB_BATCH_PROTOCOL_ID]);
  };
}
