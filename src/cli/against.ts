/**
 * `popdns check --against ADDR:PORT`: compares each checked zone with what a running server serves.
 * A zone whose content changed while its SOA serial did not go up (RFC 1982 arithmetic) would never
 * reach the secondaries (RFC 1996): that is POPDNS_W_SERIAL_NOT_RAISED. The content is compared only
 * when the serial did not move forward, RRset by RRset over DNS queries (UDP, TCP when truncated):
 * every authoritative RRset of the file must be served with the same TTL and RDATA. (Records the
 * server has and the file no longer has are not seen this way: the server refuses AXFR.)
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { parseListen } from '../server/listen.js';
import { CLASS, TYPE, typeToText } from '../wire/constants.js';
import { type Name, nameEquals, nameToText, readName } from '../wire/name.js';
import type { Diagnostic } from '../zone/types.js';
import { serialNewer } from '../zone/serial.js';
import { type RRset, walk, type Zone } from '../zone/zone.js';

const TIMEOUT_MS = 2000;

/** Types the signer makes (not what the operator wrote): not compared. */
const SIGNER_TYPES = new Set<number>([
  TYPE.RRSIG,
  TYPE.NSEC,
  TYPE.NSEC3,
  TYPE.NSEC3PARAM,
  TYPE.DNSKEY,
  TYPE.CDS,
  TYPE.CDNSKEY,
]);

/** Layouts of the RDATA that servers compress (RFC 3597 §4): 'n' a name, a number = fixed octets. */
const COMPRESSED: ReadonlyMap<number, (string | number)[]> = new Map<number, (string | number)[]>([
  [TYPE.NS, ['n']],
  [TYPE.CNAME, ['n']],
  [TYPE.PTR, ['n']],
  [TYPE.DNAME, ['n']],
  [TYPE.MX, [2, 'n']],
  [TYPE.SOA, ['n', 'n', 20]],
  [TYPE.SRV, [6, 'n']],
]);

interface RR {
  name: Name;
  type: number;
  ttl: number;
  rdata: Uint8Array;
}

interface Response {
  rcode: number;
  aa: boolean;
  tc: boolean;
  answer: RR[];
  authority: RR[];
}

function buildQuery(id: number, qname: Name, qtype: number): Buffer {
  const b = Buffer.alloc(12 + qname.length + 4);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(1, 4);
  b.set(qname, 12);
  b.writeUInt16BE(qtype, 12 + qname.length);
  b.writeUInt16BE(CLASS.IN, 14 + qname.length);
  return b;
}

/** RDATA with compressed names expanded, so it compares with the zone's uncompressed RDATA. */
function expandRdata(msg: Uint8Array, type: number, off: number, len: number): Uint8Array {
  const layout = COMPRESSED.get(type);
  if (!layout) return msg.slice(off, off + len);
  const parts: Uint8Array[] = [];
  let p = off;
  for (const f of layout) {
    if (typeof f === 'string') {
      const r = readName(msg, p);
      parts.push(r.name);
      p = r.next;
    } else {
      parts.push(msg.subarray(p, p + f));
      p += f;
    }
  }
  return Uint8Array.from(Buffer.concat(parts));
}

function parseResponse(msg: Uint8Array, id: number): Response | null {
  if (msg.length < 12) return null;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (v.getUint16(0) !== id) return null;
  const flags = v.getUint16(2);
  const counts = [v.getUint16(4), v.getUint16(6), v.getUint16(8)];
  let off = 12;
  for (let i = 0; i < counts[0]!; i++) off = readName(msg, off).next + 4;
  const sections: RR[][] = [[], []];
  for (let s = 0; s < 2; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const { name, next } = readName(msg, off);
      const type = v.getUint16(next);
      const ttl = v.getUint32(next + 4);
      const rdlen = v.getUint16(next + 8);
      sections[s]!.push({ name, type, ttl, rdata: expandRdata(msg, type, next + 10, rdlen) });
      off = next + 10 + rdlen;
    }
  }
  return {
    rcode: flags & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    answer: sections[0]!,
    authority: sections[1]!,
  };
}

function queryUdp(host: string, port: number, family: 4 | 6, q: Buffer, id: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const s = createSocket(family === 6 ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no answer from ${host}:${port} within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    s.on('error', (e) => {
      clearTimeout(timer);
      s.close();
      reject(e);
    });
    s.on('message', (m) => {
      const r = parseResponse(m, id);
      if (!r) return;
      clearTimeout(timer);
      s.close();
      resolve(r);
    });
    s.send(q, port, host);
  });
}

function queryTcp(host: string, port: number, q: Buffer, id: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port} over TCP within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      s.write(Buffer.concat([len, q]));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      clearTimeout(timer);
      s.destroy();
      const r = parseResponse(buf.subarray(2, 2 + buf.readUInt16BE(0)), id);
      if (r) resolve(r);
      else reject(new Error('malformed response over TCP'));
    });
  });
}

async function query(
  host: string,
  port: number,
  family: 4 | 6,
  qname: Name,
  qtype: number,
): Promise<Response> {
  const id = randomInt(0, 0x10000);
  const q = buildQuery(id, qname, qtype);
  const r = await queryUdp(host, port, family, q, id);
  return r.tc ? queryTcp(host, port, q, id) : r;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

/** The first difference between the file's RRset and what the server returned, or null. */
function rrsetDiff(set: RRset, owner: Name, served: RR[]): string | null {
  const mine = served.filter((r) => r.type === set.type && nameEquals(r.name, owner));
  const what = `${typeToText(set.type)} at ${nameToText(owner)}`;
  if (mine.length === 0) return `${what} is not served there`;
  if (mine[0]!.ttl !== set.ttl) return `${what} has TTL ${set.ttl} here, ${mine[0]!.ttl} there`;
  // The SOA serial is compared apart: blank it here.
  const norm = (rd: Uint8Array): Uint8Array =>
    set.type === TYPE.SOA ? Uint8Array.from(rd).fill(0, rd.length - 20, rd.length - 16) : rd;
  const theirs = mine.map((r) => norm(r.rdata));
  const ours = set.rdatas.map(norm);
  if (theirs.length !== ours.length || !ours.every((o) => theirs.some((t) => sameBytes(t, o))))
    return `${what} has other data there`;
  return null;
}

/**
 * Compares each zone with the server at `addr` (IPv4:PORT or [IPv6]:PORT); returns the diagnostics:
 * POPDNS_W_SERIAL_NOT_RAISED (content changed, serial not raised), POPDNS_W_SERIAL_LOWER (the file's
 * serial is below the served one), POPDNS_W_AGAINST (the server could not be asked).
 */
export async function compareWithServer(
  addr: string,
  zones: { file: string; zone: Zone }[],
): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  let target: { host: string; port: number; family: 4 | 6 };
  try {
    const l = parseListen(addr);
    target = { host: l.host, port: l.port, family: l.family === 6 ? 6 : 4 };
  } catch (e) {
    return [
      {
        severity: 'error',
        code: 'POPDNS_E_USAGE',
        message: `--against: ${(e as Error).message.replace(/ \[POPDNS_E_CONFIG\]$/, '')}`,
        pos: { file: addr, line: 1, col: 1 },
      },
    ];
  }
  const { host, port, family } = target;
  for (const { file, zone } of zones) {
    const pos = { file, line: 1, col: 1 };
    let soa: Response;
    try {
      soa = await query(host, port, family, zone.origin, TYPE.SOA);
    } catch (e) {
      out.push({
        severity: 'warning',
        code: 'POPDNS_W_AGAINST',
        message: `cannot compare ${zone.originText} with ${addr}: ${(e as Error).message}`,
        pos,
      });
      continue;
    }
    const served = soa.answer.find((r) => r.type === TYPE.SOA && nameEquals(r.name, zone.origin));
    if (!soa.aa || !served || served.rdata.length < 20) continue; // not served there yet: nothing to raise
    const theirSerial = new DataView(
      served.rdata.buffer,
      served.rdata.byteOffset + served.rdata.length - 20,
    ).getUint32(0);
    if (serialNewer(theirSerial, zone.serial)) continue;
    let diff: string | null = null;
    const sets: { owner: Name; set: RRset; cut: boolean }[] = [];
    walk(zone.apex, (node) => {
      if (node.occluded) return;
      for (const set of node.rrsets.values()) {
        if (SIGNER_TYPES.has(set.type)) continue;
        if (node.cut && set.type !== TYPE.NS && set.type !== TYPE.DS) continue;
        sets.push({ owner: node.name, set, cut: node.cut });
      }
    });
    for (const { owner, set, cut } of sets) {
      let r: Response;
      try {
        r = await query(host, port, family, owner, set.type);
      } catch (e) {
        diff = `no answer for ${typeToText(set.type)} at ${nameToText(owner)}: ${(e as Error).message}`;
        break;
      }
      diff = rrsetDiff(set, owner, cut && set.type === TYPE.NS ? r.authority : r.answer);
      if (diff) break;
    }
    if (diff === null) {
      if (theirSerial !== zone.serial) {
        out.push({
          severity: 'warning',
          code: 'POPDNS_W_SERIAL_LOWER',
          message: `${zone.originText} has serial ${zone.serial} here but ${theirSerial} on ${addr}, which is newer`,
          pos,
        });
      }
      continue;
    }
    out.push({
      severity: 'warning',
      code: 'POPDNS_W_SERIAL_NOT_RAISED',
      message: `${zone.originText} changed (${diff}) but its serial ${zone.serial} is not above the serial ${theirSerial} served on ${addr}; secondaries would not pick up the change (raise the serial)`,
      pos,
    });
  }
  return out;
}
