/** Sending queries from tests: raw bytes or dns-packet-built, over UDP or TCP, with bounded timeouts. */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import packet from 'dns-packet';
import { typeFromText } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';

export interface QueryOpts {
  edns?: boolean;
  bufsize?: number;
  dnssecOk?: boolean;
  nsid?: boolean;
  klass?: 'IN' | 'CH';
  id?: number;
  rd?: boolean;
}

/**
 * A query message, built by hand: dns-packet cannot encode escaped labels (`a\\.b`) or types it does
 * not know (HTTPS, TYPEnnn), and both occur in the corpus. Responses are decoded with dns-packet.
 */
export function buildQuery(name: string, type: string, o: QueryOpts = {}): Buffer {
  const qname = nameFromText(name.endsWith('.') ? name : `${name}.`);
  const qtype = typeFromText(type);
  if (qtype === undefined) throw new Error(`unknown type ${type}`);
  const edns = o.edns !== false && (o.edns || o.bufsize || o.dnssecOk || o.nsid);
  const opt = edns
    ? Buffer.from([
        0,
        0,
        41,
        ((o.bufsize || 1232) >> 8) & 0xff,
        (o.bufsize || 1232) & 0xff,
        0,
        0,
        o.dnssecOk ? 0x80 : 0,
        0,
      ])
    : Buffer.alloc(0);
  const nsid = edns && o.nsid ? Buffer.from([0, 3, 0, 0]) : Buffer.alloc(0);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(o.id ?? Math.floor(Math.random() * 65535), 0);
  header.writeUInt16BE(o.rd ? 0x0100 : 0, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(edns ? 1 : 0, 10);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(qtype, 0);
  q.writeUInt16BE(o.klass === 'CH' ? 3 : 1, 2);
  const parts = [header, Buffer.from(qname), q];
  if (edns) parts.push(opt, Buffer.from([nsid.length >> 8, nsid.length & 0xff]), nsid);
  return Buffer.concat(parts);
}

/** Offset just past the question of a message with one uncompressed question. */
export function questionEnd(msg: Buffer): number {
  let p = 12;
  while (msg[p] !== 0) p += msg[p]! + 1;
  return p + 5;
}

export function udpExchange(
  port: number,
  msg: Buffer,
  timeoutMs = 2000,
  host = '127.0.0.1',
): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(null);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(msg, port, host);
  });
}

/** Sends each message on one TCP connection (pipelined) and collects the responses in order. */
export function tcpExchange(
  port: number,
  msgs: Buffer[],
  timeoutMs = 3000,
  host = '127.0.0.1',
): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host });
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`TCP: ${out.length}/${msgs.length} responses before timeout`));
    }, timeoutMs);
    sock.on('connect', () => {
      sock.write(
        Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]))),
      );
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        out.push(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
      }
      if (out.length === msgs.length) {
        clearTimeout(timer);
        sock.destroy();
        resolve(out);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export async function queryUdp(
  port: number,
  name: string,
  type: string,
  o: QueryOpts = {},
): Promise<packet.Packet> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await udpExchange(port, buildQuery(name, type, o));
    if (r) return packet.decode(r);
  }
  throw new Error(`no UDP answer for ${name} ${type}`);
}

export async function queryTcp(
  port: number,
  name: string,
  type: string,
  o: QueryOpts = {},
): Promise<packet.Packet> {
  const [r] = await tcpExchange(port, [buildQuery(name, type, o)]);
  if (!r) throw new Error(`no TCP answer for ${name} ${type}`);
  return packet.decode(r);
}
