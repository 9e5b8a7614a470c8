import { Socket } from 'node:net';

interface SendResult {
  sentBytes: number;
  canSendMore: boolean;
}

/** The part of @libp2p/tcp's connection (its `MultiaddrConnection`) this module relies on. */
interface TcpConnectionShape {
  socket?: unknown;
  sendData?: (data: Iterable<Uint8Array>) => SendResult;
}

const coalesced = new WeakSet<object>();

function uncork(socket: Socket): void {
  socket.uncork();
}

/**
 * Makes everything a libp2p TCP connection sends within one turn of the event loop leave in one
 * write. @libp2p/tcp writes each chunk it is handed as its own `socket.write`, and Noise hands it
 * two per message (the length prefix, then the ciphertext), so a small yamux frame cost two system
 * calls and woke the peer twice; several frames in a turn (an offer batch, window updates) cost many.
 * The socket is corked on the first send of a turn and uncorked once the turn's callbacks and
 * promise continuations have run (`setImmediate`), so Node writes what piled up with one `writev`:
 * opening a stream, proposing its protocol and sending the first message, three awaits apart, leave
 * together. Flow control is unchanged: a corked write still reports when the socket's buffer is
 * full, and `drain` follows the flush.
 *
 * `connection` is a libp2p `Connection` (its `maConn` is the TCP connection) or the TCP connection
 * itself. Returns false, changing nothing, for anything else (another transport, or a libp2p
 * release that changed these internals: the connection then works as before, only less batched).
 */
export function coalesceTcpWrites(connection: unknown): boolean {
  const maConn = ((connection as { maConn?: unknown } | null)?.maConn ??
    connection) as TcpConnectionShape | null;
  if (maConn === null || typeof maConn !== 'object' || coalesced.has(maConn)) return false;
  const socket = maConn.socket;
  const send = maConn.sendData;
  if (!(socket instanceof Socket) || typeof send !== 'function') return false;
  maConn.sendData = (data: Iterable<Uint8Array>): SendResult => {
    if (socket.writableCorked === 0 && !socket.destroyed) {
      socket.cork();
      setImmediate(uncork, socket);
    }
    return send.call(maConn, data);
  };
  coalesced.add(maConn);
  return true;
}
