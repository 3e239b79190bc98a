/**
 * What the transports call after answering, when a query tap is attached (dnstap, src/dnstap, plugs in
 * here from the ops layer; the server does not import it). Null on the server = off: one branch per query.
 */
import type { Socket } from 'node:net';

export interface QueryTap {
  /** A UDP query and its response (null: none sent); `msg` is the datagram's own buffer. */
  udp(
    msg: Buffer,
    out: Buffer | null,
    client: string,
    clientPort: number,
    server: string,
    serverPort: number,
  ): void;
  /** A TCP query (a view of the connection's buffer: copy to keep) and its response. */
  tcp(msg: Buffer, out: Buffer | null, s: Socket): void;
  start(): void;
  /** Flushes what it can and closes; resolves when closed (bounded). */
  stop(): Promise<void>;
}
