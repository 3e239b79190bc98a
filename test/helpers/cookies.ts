/** DNS cookies in test queries and responses (RFC 7873 §4: EDNS option 10). */
import packet from 'dns-packet';
import { buildQuery, type QueryOpts } from './dns.js';

/** A query with EDNS and a COOKIE option carrying `cookie` (hex: client cookie, then server cookie). */
export function withCookie(name: string, type: string, cookie: string, o: QueryOpts = {}): Buffer {
  const q = buildQuery(name, type, { ...o, edns: true, nsid: false });
  const data = Buffer.from(cookie, 'hex');
  const opt = Buffer.alloc(4);
  opt.writeUInt16BE(10, 0);
  opt.writeUInt16BE(data.length, 2);
  const rdlen = Buffer.alloc(2);
  rdlen.writeUInt16BE(4 + data.length, 0);
  return Buffer.concat([q.subarray(0, q.length - 2), rdlen, opt, data]);
}

/** A response's COOKIE option (hex, or null), its full rcode (with the OPT's extended bits) and answers. */
export function cookieOf(b: Buffer): {
  cookie: string | null;
  rcode: number;
  extRcode: number;
  answers: number;
} {
  const p = packet.decode(b);
  const opt = p.additionals?.find((a) => a.type === 'OPT') as
    (packet.Answer & { options?: { code: number; data: Buffer }[]; extendedRcode?: number }) | undefined;
  const c = opt?.options?.find((o) => o.code === 10);
  const extRcode = opt?.extendedRcode ?? 0;
  return {
    cookie: c ? c.data.toString('hex') : null,
    rcode: (extRcode << 4) | (b[3]! & 0xf),
    extRcode,
    answers: p.answers?.length ?? 0,
  };
}
