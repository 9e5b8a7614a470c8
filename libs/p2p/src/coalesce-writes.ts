import { Socket } from 'node:net';

const coalesced = new WeakSet<Socket>();

/**
 * When the writes piled up on a corked socket leave: at the next tick (what one synchronous run of
 * code wrote), or once the event loop's turn has run its callbacks and promise continuations.
 */
export type CoalesceUntil = 'tick' | 'turn';

/**
 * Makes what `socket` is given to write within one tick (or one turn) of the event loop leave in
 * one write. The socket is corked on the first write and uncorked at `until`, so Node hands the
 * kernel what piled up with one `writev`; corks nest, so a writer's own cork and uncork around a
 * message change nothing. Each write to a loopback socket wakes the reader, which on a small virtual
 * machine costs more than most of the work around it. Flow control is unchanged: a corked write
 * still reports when the socket's buffer is full, and `drain` follows the flush. Returns false,
 * changing nothing, for anything but a `net.Socket` or one already coalesced.
 */
export function coalesceSocketWrites(socket: unknown, until: CoalesceUntil): boolean {
  if (!(socket instanceof Socket) || coalesced.has(socket)) return false;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  const write = socket.write;
  socket.write = function (this: Socket, ...args: unknown[]): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      if (until === 'tick') process.nextTick(uncork);
      else setImmediate(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
  coalesced.add(socket);
  return true;
}

/**
 * Coalesces a libp2p TCP connection's writes for a whole turn (see coalesceSocketWrites).
 * @libp2p/tcp writes each chunk it is handed as its own `socket.write`, and Noise hands it two per
 * message (the length prefix, then the ciphertext), so a small yamux frame cost two system calls and
 * woke the peer twice; several frames in a turn (an offer batch, window updates) cost many. A turn,
 * not a tick: opening a stream, proposing its protocol and sending the first message, three awaits
 * apart, leave together.
 *
 * `connection` is a libp2p `Connection` (its `maConn` is the TCP connection) or the TCP connection
 * itself. Returns false, changing nothing, for anything else (another transport, or a libp2p
 * release that changed these internals: the connection then works as before, only less batched).
 */
export function coalesceTcpWrites(connection: unknown): boolean {
  const maConn = ((connection as { maConn?: unknown } | null)?.maConn ?? connection) as {
    socket?: unknown;
  } | null;
  if (maConn === null || typeof maConn !== 'object') return false;
  return coalesceSocketWrites(maConn.socket, 'turn');
}
