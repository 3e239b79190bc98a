/**
 * One DNS probe: a query over UDP or TCP to a local listener, judged the way a resolver would judge
 * an authoritative server (answered, ID matches, NOERROR, AA set) plus, for SOA, the serial served.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { CLASS, RCODE, rcodeToText, TYPE } from '../wire/constants.js';
import { nameFromText, readName } from '../wire/name.js';

export interface ProbeTarget {
  host: string;
  port: number;
  family: 4 | 6;
}

export interface ProbeResult {
  ok: boolean;
  /** Why it failed (or "ok"). */
  detail: string;
  /** SOA serial when the query was for SOA and it answered. */
  serial: number | null;
  ms: number;
}

export function buildProbeQuery(id: number, qname: string, qtype: number): Buffer {
  const name = nameFromText(qname);
  const b = Buffer.alloc(12 + name.length + 4);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(1, 4); // QDCOUNT
  b.set(name, 12);
  b.writeUInt16BE(qtype, 12 + name.length);
  b.writeUInt16BE(CLASS.IN, 14 + name.length);
  return b;
}

/** Judges a response; exported for tests. */
export function judgeResponse(
  msg: Uint8Array,
  id: number,
  qtype: number,
): { ok: boolean; detail: string; serial: number | null } {
  if (msg.length < 12) return { ok: false, detail: 'short response', serial: null };
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (v.getUint16(0) !== id) return { ok: false, detail: 'response ID does not match', serial: null };
  const flags = v.getUint16(2);
  if ((flags & 0x8000) === 0) return { ok: false, detail: 'QR not set', serial: null };
  const rcode = flags & 0xf;
  if (rcode !== RCODE.NOERROR) return { ok: false, detail: `rcode ${rcodeToText(rcode)}`, serial: null };
  if ((flags & 0x0400) === 0) return { ok: false, detail: 'AA not set (not authoritative)', serial: null };
  if ((flags & 0x0200) !== 0) return { ok: false, detail: 'truncated', serial: null };
  const qd = v.getUint16(4);
  const an = v.getUint16(6);
  let off = 12;
  try {
    for (let i = 0; i < qd; i++) off = readName(msg, off).next + 4;
    for (let i = 0; i < an; i++) {
      off = readName(msg, off).next;
      const type = v.getUint16(off);
      const rdlen = v.getUint16(off + 8);
      const rdata = off + 10;
      if (rdata + rdlen > msg.length) return { ok: false, detail: 'malformed response', serial: null };
      if (type === qtype) {
        if (type !== TYPE.SOA) return { ok: true, detail: 'ok', serial: null };
        const afterMname = readName(msg, rdata).next;
        const afterRname = readName(msg, afterMname).next;
        return { ok: true, detail: 'ok', serial: v.getUint32(afterRname) };
      }
      off = rdata + rdlen;
    }
  } catch {
    return { ok: false, detail: 'malformed response', serial: null };
  }
  return { ok: false, detail: `no ${qtype === TYPE.SOA ? 'SOA' : 'data'} in the answer`, serial: null };
}

/** Sends one query and resolves (never rejects) with the verdict within `timeoutMs`. */
export function probe(
  target: ProbeTarget,
  transport: 'udp' | 'tcp',
  qname: string,
  qtype: number,
  timeoutMs: number,
): Promise<ProbeResult> {
  const id = randomInt(0, 0x10000);
  const query = buildProbeQuery(id, qname, qtype);
  const start = performance.now();
  return new Promise((resolve) => {
    let done = false;
    let cleanup = (): void => {};
    const finish = (r: { ok: boolean; detail: string; serial: number | null }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      resolve({ ...r, ms: performance.now() - start });
    };
    const timer = setTimeout(
      () => finish({ ok: false, detail: `timeout after ${timeoutMs} ms`, serial: null }),
      timeoutMs,
    );
    if (transport === 'udp') {
      const s = createSocket(target.family === 6 ? 'udp6' : 'udp4');
      cleanup = () => s.close();
      // A connected socket hears the ICMP port-unreachable of a closed port (ECONNREFUSED at once)
      // instead of waiting out the timeout, and accepts answers from that address only.
      s.on('error', (e: NodeJS.ErrnoException) =>
        finish({
          ok: false,
          detail:
            e.code === 'ECONNREFUSED' ? 'connection refused (nothing listens on that UDP port)' : e.message,
          serial: null,
        }),
      );
      s.on('message', (m) => {
        if (m.length >= 2 && m.readUInt16BE(0) === id) finish(judgeResponse(m, id, qtype));
      });
      s.connect(target.port, target.host, () => s.send(query));
    } else {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      const s = connect({ host: target.host, port: target.port });
      cleanup = () => s.destroy();
      let buf = Buffer.alloc(0);
      s.on('error', (e) => finish({ ok: false, detail: e.message, serial: null }));
      s.on('connect', () => s.write(Buffer.concat([len, query])));
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          finish(judgeResponse(buf.subarray(2, 2 + buf.readUInt16BE(0)), id, qtype));
        }
      });
      s.on('end', () => finish({ ok: false, detail: 'connection closed without an answer', serial: null }));
    }
  });
}
