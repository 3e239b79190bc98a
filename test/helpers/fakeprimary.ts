/**
 * Pieces of the scripted primaries that the transfer tests run in their own process (a real primary
 * cannot be made to send a wrong serial, a bad MAC on message 3, or a cut stream on cue): zone text
 * as wire records, and a DNS-over-TCP listener (RFC 1035 §4.2.2 two-octet length framing) that hands
 * each request to the test and is closed with the test.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Test } from 'tap';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import type { WireRecord } from '../../src/wire/records.js';
import { parseZoneFile } from '../../src/zone/load.js';
import { findNode, type Zone } from '../../src/zone/zone.js';

/** The records of master-file `text` under `$ORIGIN origin` and `$TTL 300`, in file order. */
export function zoneRecords(origin: string, text: string): WireRecord[] {
  return parseZoneFile(`${origin}zone`, { text: `$ORIGIN ${origin}\n$TTL 300\n${text}` }).records.map(
    (r) => ({ owner: r.owner, type: r.type, class: r.class, ttl: r.ttl, rdata: r.rdata }),
  );
}

/** The A addresses at `owner` (relative to `origin`) in `zone`, dotted and sorted; [] when none. */
export function addressesAt(zone: Zone | undefined, owner: string, origin: string): string[] {
  const n = zone ? findNode(zone, nameFromText(`${owner}.${origin}`)) : null;
  return (n?.rrsets.get(TYPE.A)?.rdatas ?? []).map((r) => [...r].join('.')).sort();
}

/** What a request handler gets: the request's bytes (a copy), and how to answer on its connection. */
export interface TcpRequest {
  raw: Buffer;
  /** Writes one DNS message with its two-octet length. */
  send: (message: Buffer) => void;
  sock: Socket;
}

/**
 * A DNS-over-TCP server on 127.0.0.1 (a free port), calling `onRequest` for each complete framed
 * request in arrival order. Connections and the listener are closed by `close()` or the test's
 * teardown, whichever comes first.
 */
export async function tcpDnsServer(
  t: Test,
  onRequest: (req: TcpRequest) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    sock.on('error', () => {});
    const send = (m: Buffer): void => {
      const f = Buffer.alloc(2);
      f.writeUInt16BE(m.length);
      sock.write(Buffer.concat([f, m]));
    };
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (!sock.destroyed && buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const raw = Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + raw.length);
        onRequest({ raw, send, sock });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });
  t.teardown(close);
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, close };
}
