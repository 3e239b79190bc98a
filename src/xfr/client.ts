/**
 * The secondary's side of the wire: one DNS-over-TCP exchange (RFC 7766 framing) whose response may
 * span many messages (AXFR/IXFR, RFC 5936 §2.2), with bounded timeouts and sizes.
 */
import { connect, type Socket } from 'node:net';

export interface Peer {
  host: string;
  port: number;
}

export function formatPeer(p: Peer): string {
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;
}

/** A connection error, a timeout or a peer that closed early; the message ends with `[POPDNS_E_XFR_NET]`. */
export class XfrNetError extends Error {
  readonly code = 'POPDNS_E_XFR_NET';
  constructor(message: string) {
    super(`${message} [POPDNS_E_XFR_NET]`);
  }
}

export interface TcpExchangeOptions {
  /** Give up when nothing arrives for this long (ms). Default 10 s. */
  idleMs?: number;
  /** Give up after this long in total (ms). Default 15 min. */
  totalMs?: number;
  /** Local address to send from (the primary checks it against its ACL). */
  localAddress?: string;
}

/**
 * Sends `request` over a new TCP connection and hands each response message to `onMessage` until it
 * returns true (done). Resolves with the bytes received; rejects with XfrNetError on a connection
 * error, a timeout, or the peer closing before `onMessage` said done. An exception thrown by
 * `onMessage` closes the connection and rejects with it.
 */
export function tcpExchange(
  peer: Peer,
  request: Uint8Array,
  onMessage: (msg: Buffer) => boolean,
  o: TcpExchangeOptions = {},
): Promise<{ bytes: number; messages: number }> {
  const idleMs = o.idleMs ?? 10_000;
  const totalMs = o.totalMs ?? 15 * 60_000;
  return new Promise((resolve, reject) => {
    let settled = false;
    let bytes = 0;
    let messages = 0;
    let buf: Buffer = Buffer.alloc(0);
    const sock: Socket = connect({
      host: peer.host,
      port: peer.port,
      noDelay: true,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    });
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(total);
      sock.destroy();
      if (err) reject(err);
      else resolve({ bytes, messages });
    };
    const total = setTimeout(
      () => finish(new XfrNetError(`${formatPeer(peer)}: no complete answer within ${totalMs / 1000} s`)),
      totalMs,
    );
    sock.setTimeout(idleMs, () =>
      finish(new XfrNetError(`${formatPeer(peer)}: timed out after ${idleMs / 1000} s idle`)),
    );
    sock.on('error', (e) => finish(new XfrNetError(`${formatPeer(peer)}: ${e.message}`)));
    sock.on('close', () =>
      finish(new XfrNetError(`${formatPeer(peer)}: connection closed before the answer was complete`)),
    );
    sock.on('connect', () => {
      const frame = Buffer.alloc(2 + request.length);
      frame.writeUInt16BE(request.length, 0);
      frame.set(request, 2);
      sock.write(frame);
    });
    sock.on('data', (d: Buffer) => {
      bytes += d.length;
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      while (!settled && buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        messages++;
        let done: boolean;
        try {
          done = onMessage(msg);
        } catch (e) {
          finish(e as Error);
          return;
        }
        if (done) {
          finish(null);
          return;
        }
      }
    });
  });
}
