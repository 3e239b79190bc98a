/**
 * Whole-message reading and plain message building, for the places that handle responses and
 * requests with records in every section (zone transfers, NOTIFY): unlike the query path's
 * zero-copy reader, this decodes every record, with compressed names in owners and RDATA expanded.
 */
import { readName, type Name } from './name.js';

/** One resource record as it came off the wire; RDATA uncompressed (names expanded). */
export interface WireRecord {
  owner: Name;
  type: number;
  class: number;
  ttl: number;
  rdata: Uint8Array;
}

export interface WireQuestion {
  name: Name;
  type: number;
  class: number;
}

/** A decoded message. */
export interface WireMessage {
  id: number;
  flags: number;
  opcode: number;
  /** Header rcode (4 bits; the OPT's extended bits are not merged). */
  rcode: number;
  aa: boolean;
  tc: boolean;
  qr: boolean;
  question: WireQuestion[];
  answer: WireRecord[];
  authority: WireRecord[];
  additional: WireRecord[];
}

export class WireFormatError extends Error {
  readonly code = 'POPDNS_E_WIRE';
}

/** Name fields in RDATA that senders may compress (RFC 1035 §3.3, RFC 3597 §4): a layout per type. */
export type RdataPart = { name: true } | { fixed: number } | { strings: number };
type Part = RdataPart;
const N: Part = { name: true };
/** Per type, the RDATA fields a sender may compress names in (see readRdata); shared with recordstream.ts. */
export const COMPRESSED_LAYOUT: ReadonlyMap<number, readonly RdataPart[]> = new Map<number, Part[]>([
  [2, [N]], // NS
  [3, [N]], // MD
  [4, [N]], // MF
  [5, [N]], // CNAME
  [6, [N, N, { fixed: 20 }]], // SOA
  [7, [N]], // MB
  [8, [N]], // MG
  [9, [N]], // MR
  [12, [N]], // PTR
  [14, [N, N]], // MINFO
  [15, [{ fixed: 2 }, N]], // MX
  [17, [N, N]], // RP
  [18, [{ fixed: 2 }, N]], // AFSDB
  [21, [{ fixed: 2 }, N]], // RT
  [26, [{ fixed: 2 }, N, N]], // PX
  [33, [{ fixed: 6 }, N]], // SRV
  [35, [{ fixed: 4 }, { strings: 3 }, N]], // NAPTR
  [36, [{ fixed: 2 }, N]], // KX
  [39, [N]], // DNAME (must not be compressed, RFC 6672 §2.5, but receivers expand it)
]);

/**
 * The RDATA at msg[start..start+len) with any compressed names expanded, for the types whose names
 * RFC 3597 §4 lets a sender compress; other types are copied as they are. Throws WireFormatError when
 * the RDATA does not match its type's layout or a name is malformed.
 */
export function readRdata(msg: Uint8Array, type: number, start: number, len: number): Uint8Array {
  const end = start + len;
  if (end > msg.length) throw new WireFormatError('RDATA runs past the end of the message');
  const layout = COMPRESSED_LAYOUT.get(type);
  if (!layout) return msg.slice(start, end);
  const parts: Uint8Array[] = [];
  let p = start;
  try {
    for (const part of layout) {
      if ('name' in part) {
        const r = readName(msg.subarray(0, end), p);
        parts.push(r.name);
        p = r.next;
      } else if ('fixed' in part) {
        if (p + part.fixed > end) throw new WireFormatError('RDATA shorter than its type needs');
        parts.push(msg.subarray(p, p + part.fixed));
        p += part.fixed;
      } else {
        for (let i = 0; i < part.strings; i++) {
          if (p >= end || p + 1 + msg[p]! > end)
            throw new WireFormatError('character-string runs past RDATA');
          parts.push(msg.subarray(p, p + 1 + msg[p]!));
          p += 1 + msg[p]!;
        }
      }
    }
  } catch (e) {
    if (e instanceof WireFormatError) throw e;
    throw new WireFormatError(`bad name in RDATA: ${(e as Error).message}`);
  }
  if (p !== end) throw new WireFormatError('RDATA longer than its type allows');
  const total = parts.reduce((n, x) => n + x.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

/**
 * Decodes a whole DNS message (header, questions, every record). Bounded: names follow readName's
 * rules, every length is checked against the message, trailing bytes are an error. Throws
 * WireFormatError. `lastRecordOffset` is where the last record starts (a TSIG, when there is one).
 */
export function readMessage(msg: Uint8Array): WireMessage & { lastRecordOffset: number } {
  if (msg.length < 12) throw new WireFormatError('message shorter than a DNS header');
  const u16 = (o: number): number => (msg[o]! << 8) | msg[o + 1]!;
  const flags = u16(2);
  const counts = [u16(4), u16(6), u16(8), u16(10)];
  const out: WireMessage & { lastRecordOffset: number } = {
    id: u16(0),
    flags,
    opcode: (flags >> 11) & 0xf,
    rcode: flags & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    qr: (flags & 0x8000) !== 0,
    question: [],
    answer: [],
    authority: [],
    additional: [],
    lastRecordOffset: -1,
  };
  let p = 12;
  const name = (): Name => {
    try {
      const r = readName(msg, p);
      p = r.next;
      return r.name;
    } catch (e) {
      throw new WireFormatError(`bad name at offset ${p}: ${(e as Error).message}`);
    }
  };
  for (let i = 0; i < counts[0]!; i++) {
    const n = name();
    if (p + 4 > msg.length) throw new WireFormatError('question runs past the end of the message');
    out.question.push({ name: n, type: u16(p), class: u16(p + 2) });
    p += 4;
  }
  const sections = [out.answer, out.authority, out.additional];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      out.lastRecordOffset = p;
      const owner = name();
      if (p + 10 > msg.length) throw new WireFormatError('record header runs past the end of the message');
      const type = u16(p);
      const klass = u16(p + 2);
      const ttl = ((msg[p + 4]! << 24) >>> 0) + (msg[p + 5]! << 16) + (msg[p + 6]! << 8) + msg[p + 7]!;
      const rdlen = u16(p + 8);
      p += 10;
      const rdata = readRdata(msg, type, p, rdlen);
      p += rdlen;
      sections[s]!.push({ owner, type, class: klass, ttl, rdata });
    }
  }
  if (p !== msg.length) throw new WireFormatError('bytes after the last record');
  return out;
}

/**
 * Builds a message without name compression: header fields, one question (or none), and records in
 * each section. `flags` is the whole 16-bit flags word (opcode included).
 */
export function buildMessage(m: {
  id: number;
  flags: number;
  question?: WireQuestion | null;
  answer?: readonly WireRecord[];
  authority?: readonly WireRecord[];
  additional?: readonly WireRecord[];
}): Buffer {
  const recs = [m.answer ?? [], m.authority ?? [], m.additional ?? []];
  let size = 12;
  if (m.question) size += m.question.name.length + 4;
  for (const sec of recs) for (const r of sec) size += r.owner.length + 10 + r.rdata.length;
  const b = Buffer.alloc(size);
  b.writeUInt16BE(m.id & 0xffff, 0);
  b.writeUInt16BE(m.flags & 0xffff, 2);
  b.writeUInt16BE(m.question ? 1 : 0, 4);
  b.writeUInt16BE(recs[0]!.length, 6);
  b.writeUInt16BE(recs[1]!.length, 8);
  b.writeUInt16BE(recs[2]!.length, 10);
  let p = 12;
  if (m.question) {
    b.set(m.question.name, p);
    p += m.question.name.length;
    b.writeUInt16BE(m.question.type, p);
    b.writeUInt16BE(m.question.class, p + 2);
    p += 4;
  }
  for (const sec of recs) {
    for (const r of sec) {
      b.set(r.owner, p);
      p += r.owner.length;
      b.writeUInt16BE(r.type, p);
      b.writeUInt16BE(r.class, p + 2);
      b.writeUInt32BE(r.ttl >>> 0, p + 4);
      b.writeUInt16BE(r.rdata.length, p + 8);
      b.set(r.rdata, p + 10);
      p += 10 + r.rdata.length;
    }
  }
  return b;
}

/** SOA serial from SOA RDATA (the first of its five trailing 32-bit numbers); null when too short. */
export function soaSerial(rdata: Uint8Array): number | null {
  if (rdata.length < 22) return null;
  const o = rdata.length - 20;
  return ((rdata[o]! << 24) >>> 0) + (rdata[o + 1]! << 16) + (rdata[o + 2]! << 8) + rdata[o + 3]!;
}

/** SOA timers (seconds) from SOA RDATA: refresh, retry, expire, minimum (RFC 1035 §3.3.13). */
export function soaTimers(rdata: Uint8Array): {
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
} {
  const o = rdata.length - 16;
  const dv = new DataView(rdata.buffer, rdata.byteOffset + o, 16);
  return {
    refresh: dv.getUint32(0),
    retry: dv.getUint32(4),
    expire: dv.getUint32(8),
    minimum: dv.getUint32(12),
  };
}

/** RFC 1982 serial number arithmetic: true when `a` is newer than `b`. */
export function serialGt(a: number, b: number): boolean {
  return a !== b && ((a > b && a - b < 0x80000000) || (a < b && b - a > 0x80000000));
}
