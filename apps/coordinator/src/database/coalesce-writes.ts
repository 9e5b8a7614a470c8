import { Socket } from 'node:net';

const coalesced = new WeakSet<Socket>();

/**
 * Makes what a PostgreSQL connection sends within one turn of the event loop leave in one write.
 * pg writes each statement with its own system call, so a pipelined transaction's BEGIN and first
 * statement, or its last writes and COMMIT, woke the server two or three times where once does;
 * on this kind of machine a write to a loopback socket is among the costliest steps of a job. The
 * socket is corked on the first write of a turn and uncorked on the next tick (corks nest, so pg's
 * own cork around a statement changes nothing). Returns false for anything but a TCP or Unix socket.
 */
export function coalesceSocketWrites(socket: unknown): boolean {
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
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
  coalesced.add(socket);
  return true;
}
