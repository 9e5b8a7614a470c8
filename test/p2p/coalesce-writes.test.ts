// Two real libp2p nodes on loopback: what a burst of stream messages costs in socket writes.
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';

import { coalesceTcpWrites } from '../../libs/p2p/src/coalesce-writes.js';
import type { GpumeshNode } from '@gpumesh/p2p';
import { connect, startNodes, stopNodes, waitFor } from './support.js';

const PROTOCOL = '/gpumesh-test/burst/1.0.0';

/** Counts the write requests Node hands the kernel for `socket` (one per write or writev call). */
function countWrites(socket: Socket): { count: () => number } {
  let count = 0;
  const s = socket as unknown as {
    _write: (...args: unknown[]) => unknown;
    _writev: (...args: unknown[]) => unknown;
  };
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (...args) => {
    count += 1;
    return write(...args);
  };
  s._writev = (...args) => {
    count += 1;
    return writev(...args);
  };
  return { count: () => count };
}

describe('coalesced TCP writes', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  it('sends a burst of stream messages in one socket write, in order and intact', async () => {
    nodes = await startNodes(2);
    const [sender, receiver] = nodes;
    const received: Uint8Array[] = [];
    await receiver.handle(PROTOCOL, (stream) => {
      stream.addEventListener('message', (event) => {
        received.push(event.data.subarray());
      });
    });
    await connect(sender, receiver);
    const connection = sender.getConnections(receiver.peerId)[0];
    // Already applied by createGpumeshNode when the connection opened: a second call changes nothing.
    expect(coalesceTcpWrites(connection)).toBe(false);
    const socket = (connection as unknown as { maConn: { socket: Socket } }).maConn.socket;
    const stream = await sender.dialProtocol(receiver.peerId, PROTOCOL);
    await new Promise((resolve) => setTimeout(resolve, 100)); // let the stream's opening frames go out
    const writes = countWrites(socket);
    const messages = Array.from({ length: 20 }, (_, i) => new TextEncoder().encode(`message ${i} `));
    for (const m of messages) stream.send(m);
    await new Promise((resolve) => setImmediate(resolve));
    // 20 yamux frames, each a Noise message of two chunks: 40 writes without coalescing.
    expect(writes.count()).toBe(1);
    const expected = messages.map((m) => new TextDecoder().decode(m)).join('');
    await waitFor(() => received.reduce((n, r) => n + r.byteLength, 0) >= expected.length, 5000, 'burst');
    expect(received.map((r) => new TextDecoder().decode(r)).join('')).toBe(expected);
    await stream.close();
  });

  it('opens a stream and sends its first message in two socket writes, not three', async () => {
    nodes = await startNodes(2);
    const [sender, receiver] = nodes;
    const received: string[] = [];
    await receiver.handle(PROTOCOL, (stream) => {
      stream.addEventListener('message', (event) => {
        received.push(new TextDecoder().decode(event.data.subarray()));
      });
    });
    await connect(sender, receiver);
    const connection = sender.getConnections(receiver.peerId)[0];
    const socket = (connection as unknown as { maConn: { socket: Socket } }).maConn.socket;
    await new Promise((resolve) => setTimeout(resolve, 100)); // identify and other opening traffic
    const writes = countWrites(socket);
    // As an offer goes out: a new stream, the protocol proposed with the first message (lazy).
    const stream = await sender.dialProtocol(receiver.peerId, PROTOCOL, { negotiateFully: false });
    stream.send(new TextEncoder().encode('offer'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The stream's opening frame, then the protocol proposal with the message: dialProtocol resolves
    // an event-loop turn after the opening frame left. Uncorked at the next tick instead, the
    // proposal and the message went apart too (3 writes).
    expect(writes.count()).toBe(2);
    await waitFor(() => received.join('') === 'offer', 5000, 'first message');
    await stream.close();
  });

  it('leaves anything but a TCP connection alone', () => {
    expect(coalesceTcpWrites(null)).toBe(false);
    expect(coalesceTcpWrites({ maConn: { socket: {}, sendData: () => undefined } })).toBe(false);
    expect(coalesceTcpWrites({ sendData: () => undefined })).toBe(false);
  });
});
