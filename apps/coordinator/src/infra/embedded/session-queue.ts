// The one PGlite session is shared by every wire connection of the socket server, so the order in
// which their protocol messages reach it decides what each client sees. pglite-socket (0.2.17)
// keeps a connection's messages together only inside an SQL transaction; between a Parse and its
// Sync another connection's Parse could replace the unnamed prepared statement, binding one
// client's parameters to another client's query (upstream electric-sql/pglite#1046). Seen here as
// "bind message supplies 3 parameters, but prepared statement requires 4" and as an API-key
// lookup that found nothing. This queue keeps the session with one connection from its first
// extended-protocol message to its Sync, and for the whole of a transaction.
import type { PGlite } from '@electric-sql/pglite';
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';

interface Queued {
  handlerId: number;
  message: Uint8Array;
  resolve: (bytes: number) => void;
  reject: (error: unknown) => void;
  timestamp: number;
  onData: (data: Uint8Array) => void;
}

/** Extended-protocol messages: Parse, Bind, Describe, Execute, Close, Flush. Sync ends the batch. */
const EXTENDED = new Set(['P', 'B', 'D', 'E', 'C', 'H'].map((c) => c.charCodeAt(0)));
const SYNC = 'S'.charCodeAt(0);
const SYNC_MESSAGE = new Uint8Array([SYNC, 0, 0, 0, 4]);

/**
 * A drop-in for pglite-socket's query queue (same method names, which its connection handlers
 * call): first come, first served, except that a connection owns the session while it is in the
 * middle of an extended-protocol batch or of a transaction. A failing message fails only itself.
 */
export class SessionQueryQueue {
  private queue: Queued[] = [];
  private processing = false;
  /** The connection that owns the session, or null when any may go next. */
  private owner: number | null = null;
  /** Whether the owner has sent extended-protocol messages without their Sync yet. */
  private inBatch = false;

  constructor(private readonly db: PGlite) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message, resolve, reject, timestamp: Date.now(), onData });
      void this.processQueue();
    });
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  clearQueueForHandler(handlerId: number): void {
    this.queue = this.queue.filter((item) => {
      if (item.handlerId !== handlerId) return true;
      item.reject(new Error('Handler disconnected'));
      return false;
    });
  }

  /** A connection went away: end its unfinished batch and roll back its open transaction. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.owner !== handlerId) return;
    await this.db.runExclusive(async () => {
      if (this.inBatch) await this.db.execProtocolRawStream(SYNC_MESSAGE, { onRawData: () => undefined });
      if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    });
    this.owner = null;
    this.inBatch = false;
    await this.processQueue();
  }

  async processQueue(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      for (;;) {
        const index = this.owner === null ? 0 : this.queue.findIndex((item) => item.handlerId === this.owner);
        // The owner's next message has not arrived yet: everyone else waits for it.
        if (index === -1 || this.queue.length === 0) return;
        const [item] = this.queue.splice(index, 1);
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
          item.resolve(bytes);
        } catch (error) {
          item.reject(error);
        }
        const type = item.message[0];
        if (EXTENDED.has(type)) this.inBatch = true;
        else if (type === SYNC) this.inBatch = false;
        this.owner = this.inBatch || this.db.isInTransaction() ? item.handlerId : null;
      }
    } finally {
      this.processing = false;
    }
  }
}

/** Puts a SessionQueryQueue in place of the server's own, before it accepts a connection. */
export function useSessionQueue(server: PGLiteSocketServer, db: PGlite): void {
  (server as unknown as { queryQueue: SessionQueryQueue }).queryQueue = new SessionQueryQueue(db);
}
