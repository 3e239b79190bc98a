/**
 * DNS messages on the wire: a zero-copy query reader that fills a reused structure by offset, and a
 * response writer with name compression. Nothing here knows about zones.
 */
import { EDNS_OPTION, OPCODE, TYPE } from './constants.js';
import type { Name } from './name.js';

/** What parseQuery decided. */
export const PARSE = {
  OK: 0,
  /** Not even a header, or a response (QR=1): send nothing. */
  DROP: 1,
  /** Readable header, malformed rest: answer FORMERR. */
  FORMERR: 2,
  /** An opcode we don't implement: answer NOTIMP. */
  NOTIMP: 3,
} as const;

/** The parsed query, by offsets into the received buffer. One instance is reused for every packet. */
export class QueryInfo {
  id = 0;
  /** Header flags word as received. */
  flags = 0;
  opcode = 0;
  /** Offset just past the question name (the name itself is at 12). */
  qnameEnd = 12;
  /** Offset just past the question (qtype, qclass). 12 when there is no readable question. */
  questionEnd = 12;
  qtype = 0;
  qclass = 0;
  /** FNV-1a hash of the lower-cased question name bytes, cut to 30 bits. */
  qhash = 0;
  hasEdns = false;
  ednsUdpSize = 0;
  ednsVersion = 0;
  dnssecOk = false;
  nsidRequested = false;
  /** Offset of the first COOKIE option's data (RFC 7873), or 0 when there is none. */
  cookieAt = 0;
  /** Length of that option's data (not checked here: the cookie layer answers FORMERR). */
  cookieLen = 0;
  /** Offset of the TSIG RR's owner name (the last record), or -1 when the message carries none. */
  tsigAt = -1;
}

function lower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

/**
 * Reads header, the one question and the OPT record. Bounded: the question name may not be compressed
 * (a pointer can only point back into the header), labels ≤ 63, the name ≤ 255 octets; every record
 * after the question is walked by its lengths; anything that runs past the end is FORMERR.
 *
 * Whatever the verdict, `questionEnd` > 12 says the question was read (the response echoes it) and
 * `hasEdns` says the query carried one valid OPT (the response carries one too: RFC 6891 §7), so
 * FORMERR and NOTIMP answers keep both whenever they could be read. A message that cannot be walked
 * to its end (or has two OPTs, or one outside the additional section) has no valid OPT.
 *
 * Records before the additional section are accepted only where a request carries them: an IXFR
 * query's SOA in the authority section (RFC 1995 §3); NOTIFY and UPDATE (RFC 1996, RFC 2136) are
 * walked whole and reported as NOTIMP for the layer above that handles their opcode. A TSIG RR must
 * be the last record (RFC 8945 §5.2): `tsigAt` is its offset.
 */
export function parseQuery(msg: Uint8Array, q: QueryInfo): number {
  q.hasEdns = false;
  q.dnssecOk = false;
  q.nsidRequested = false;
  q.cookieAt = 0;
  q.tsigAt = -1;
  q.ednsVersion = 0;
  q.ednsUdpSize = 0;
  q.questionEnd = 12;
  q.qnameEnd = 12;
  q.qtype = 0;
  q.qclass = 0;
  const len = msg.length;
  if (len < 12) return PARSE.DROP;
  q.id = (msg[0]! << 8) | msg[1]!;
  const flags = (msg[2]! << 8) | msg[3]!;
  q.flags = flags;
  if (flags & 0x8000) return PARSE.DROP;
  q.opcode = (flags >> 11) & 0xf;
  const qd = (msg[4]! << 8) | msg[5]!;
  const an = (msg[6]! << 8) | msg[7]!;
  const ns = (msg[8]! << 8) | msg[9]!;
  const ar = (msg[10]! << 8) | msg[11]!;
  let p = 12;
  if (qd === 1) {
    // The question name, hashed as we go.
    let h = 0x811c9dc5;
    for (;;) {
      if (p >= len) return PARSE.FORMERR;
      const l = msg[p]!;
      if (l === 0) {
        p++;
        break;
      }
      if (l > 63) return PARSE.FORMERR; // compression pointers and extended labels
      if (p + 1 + l > len || p + 1 + l - 12 > 254) return PARSE.FORMERR;
      h = Math.imul(h ^ l, 0x01000193);
      for (let i = p + 1; i <= p + l; i++) h = Math.imul(h ^ lower(msg[i]!), 0x01000193);
      p += l + 1;
    }
    if (p + 4 > len) return PARSE.FORMERR;
    q.qnameEnd = p;
    q.qhash = h & 0x3fffffff; // 30 bits: a small integer (Smi) on every V8 build, never a boxed number
    q.qtype = (msg[p]! << 8) | msg[p + 1]!;
    q.qclass = (msg[p + 2]! << 8) | msg[p + 3]!;
    p += 4;
    q.questionEnd = p;
  } else {
    // Several questions (or none): nothing to echo, but an OPT after them still counts.
    for (let i = 0; i < qd; i++) {
      p = skipName(msg, p);
      if (p < 0 || p + 4 > len) return malformed(q);
      p += 4;
    }
  }
  // Every record: walked by its lengths; the OPT (only valid in the additional section) is read.
  let optMisplaced = false;
  const total = an + ns + ar;
  for (let r = 0; r < total; r++) {
    const nameStart = p;
    p = skipName(msg, p);
    if (p < 0 || p + 10 > len) return malformed(q);
    const type = (msg[p]! << 8) | msg[p + 1]!;
    const rdlen = (msg[p + 8]! << 8) | msg[p + 9]!;
    const rdStart = p + 10;
    if (rdStart + rdlen > len) return malformed(q);
    if (type === TYPE.TSIG) {
      // RFC 8945 §5.2: one TSIG RR, the last record of the additional section.
      if (r !== total - 1 || r < an + ns) return PARSE.FORMERR;
      q.tsigAt = nameStart;
    } else if (type === TYPE.OPT) {
      // Two OPTs, an OPT outside the additional section, or one not owned by the root: FORMERR
      // (RFC 6891 §6.1.1), and the reply carries no OPT, there being no valid one to answer.
      if (q.hasEdns || optMisplaced || msg[nameStart] !== 0 || r < an + ns) {
        q.hasEdns = false;
        q.cookieAt = 0;
        optMisplaced = true;
      } else {
        let o = rdStart;
        const end = rdStart + rdlen;
        let nsid = false;
        while (o < end) {
          if (o + 4 > end) return malformed(q);
          const code = (msg[o]! << 8) | msg[o + 1]!;
          const olen = (msg[o + 2]! << 8) | msg[o + 3]!;
          if (o + 4 + olen > end) return malformed(q);
          if (code === EDNS_OPTION.NSID) nsid = true;
          else if (code === EDNS_OPTION.COOKIE && q.cookieAt === 0) {
            q.cookieAt = o + 4;
            q.cookieLen = olen;
          }
          o += 4 + olen;
        }
        q.hasEdns = true;
        q.ednsUdpSize = (msg[p + 2]! << 8) | msg[p + 3]!;
        q.ednsVersion = msg[p + 5]!;
        q.dnssecOk = (msg[p + 6]! & 0x80) !== 0;
        q.nsidRequested = nsid;
      }
    }
    p = rdStart + rdlen;
  }
  if (p !== len || optMisplaced) return malformed(q);
  if (q.opcode !== OPCODE.QUERY) return PARSE.NOTIMP;
  if (qd !== 1) return PARSE.FORMERR;
  // An IXFR query carries the client's SOA in the authority section (RFC 1995 §3); nothing else may.
  if (an !== 0 || (ns !== 0 && q.qtype !== TYPE.IXFR)) return PARSE.FORMERR;
  return PARSE.OK;
}

/**
 * A message whose records cannot be walked (running past the end, bytes left over, OPTs out of place):
 * FORMERR with no OPT, like Knot — the OPT of a malformed message is not trusted to be one.
 */
function malformed(q: QueryInfo): number {
  q.hasEdns = false;
  q.dnssecOk = false;
  q.nsidRequested = false;
  return PARSE.FORMERR;
}

/** The offset just past the (possibly compressed) name at `p`, walked without decoding; -1 if it runs out. */
function skipName(msg: Uint8Array, p: number): number {
  const len = msg.length;
  for (;;) {
    if (p >= len) return -1;
    const l = msg[p]!;
    if (l === 0) return p + 1;
    // A pointer ends the name: at most one per owner name.
    if ((l & 0xc0) === 0xc0) return p + 2 > len ? -1 : p + 2;
    if (l > 63 || p + 1 + l > len) return -1;
    p += l + 1;
  }
}

/** A resource record set to write: owner, type, class, TTL and uncompressed RDATA. */
export interface WireRRset {
  owner: Name;
  type: number;
  class: number;
  ttl: number;
  rdatas: Uint8Array[];
}

/** Finds offsets of names embedded in RDATA that may be compressed. */
export type CompressibleNames = (type: number, rdata: Uint8Array) => { offset: number; compress: boolean }[];

/**
 * Writes a response into a buffer, compressing names against those already written (RFC 1035 §4.1.4).
 * The compression table maps lower-cased name suffixes to their offsets; it is only used when a
 * response is built from scratch (the hot path copies precomputed bytes instead).
 */
export class MessageWriter {
  buf: Buffer;
  pos = 0;
  limit = 0;
  private readonly names = new Map<string, number>();

  constructor(size = 65535 + 2) {
    this.buf = Buffer.alloc(size);
  }

  /** Starts a response: copies the query's header and question (byte for byte, case preserved). */
  begin(query: Uint8Array, questionEnd: number, limit: number): void {
    this.names.clear();
    this.limit = limit;
    this.buf.set(query.subarray(0, questionEnd), 0);
    this.pos = questionEnd;
    this.buf.writeUInt16BE(questionEnd > 12 ? 1 : 0, 4);
    this.buf.writeUInt32BE(0, 6);
    this.buf.writeUInt16BE(0, 10);
    if (questionEnd > 12) this.registerName(12);
  }

  /**
   * Records every suffix of the name written at `offset` (its labels up to the root or a pointer).
   * A key holds one character per name octet, so the key of the suffix at `p` is the name's key from
   * `p - offset` on: one key is built and sliced, not one per suffix. The table holds every suffix of
   * each name it holds (names are registered whole and rolled back whole), so the walk stops at the
   * first suffix already there.
   */
  private registerName(offset: number): void {
    const b = this.buf;
    if (b[offset] === 0 || (b[offset]! & 0xc0) !== 0) return;
    const full = this.keyAt(offset);
    if (full === null) return;
    let p = offset;
    while (b[p] !== 0 && (b[p]! & 0xc0) === 0) {
      const key = p === offset ? full : full.slice(p - offset);
      if (this.names.has(key)) return;
      this.names.set(key, p);
      p += b[p]! + 1;
    }
  }

  /** The lower-cased name starting at `p` (following pointers) as a key: one character per octet. */
  private keyAt(p: number): string | null {
    let s = '';
    const b = this.buf;
    let hops = 0;
    for (;;) {
      const l = b[p]!;
      if (l === 0) return s;
      if ((l & 0xc0) === 0xc0) {
        if (++hops > 64) return null;
        p = ((l & 0x3f) << 8) | b[p + 1]!;
        continue;
      }
      s += String.fromCharCode(l);
      for (let i = p + 1; i <= p + l; i++) s += String.fromCharCode(lower(b[i]!));
      p += l + 1;
    }
  }

  private nameKey(name: Name): string {
    let s = '';
    for (let i = 0; i < name.length - 1; i++) s += String.fromCharCode(lower(name[i]!));
    return s;
  }

  /** Writes a name, compressed where possible; false if it does not fit the limit. */
  writeName(name: Name, compress: boolean): boolean {
    const start = this.pos;
    let i = 0;
    const b = this.buf;
    // The key of the suffix at octet i is the whole name's key from i on (one character per octet).
    const key = compress && name.length > 1 ? this.nameKey(name) : '';
    while (i < name.length && name[i] !== 0) {
      if (compress) {
        const ptr = this.names.get(i === 0 ? key : key.slice(i));
        if (ptr !== undefined) {
          if (this.pos + 2 > this.limit) return false;
          b[this.pos++] = 0xc0 | (ptr >> 8);
          b[this.pos++] = ptr & 0xff;
          this.registerNew(start);
          return true;
        }
      }
      const l = name[i]!;
      if (this.pos + l + 1 > this.limit) return false;
      b.set(name.subarray(i, i + l + 1), this.pos);
      this.pos += l + 1;
      i += l + 1;
    }
    if (this.pos + 1 > this.limit) return false;
    b[this.pos++] = 0;
    this.registerNew(start);
    return true;
  }

  private registerNew(start: number): void {
    if (start < 0x3fff) this.registerName(start);
  }

  /**
   * Writes one RRset into the current section. All or nothing: on overflow the position is rolled
   * back and false returned. Returns the number of records written via `count`.
   */
  writeRRset(set: WireRRset, names: CompressibleNames | null): number {
    const mark = this.pos;
    const b = this.buf;
    for (const rd of set.rdatas) {
      if (!this.writeName(set.owner, true) || this.pos + 10 > this.limit) {
        this.rollback(mark);
        return -1;
      }
      b.writeUInt16BE(set.type, this.pos);
      b.writeUInt16BE(set.class, this.pos + 2);
      b.writeUInt32BE(set.ttl >>> 0, this.pos + 4);
      const lenAt = this.pos + 8;
      this.pos += 10;
      const rdStart = this.pos;
      const embedded = names ? names(set.type, rd) : [];
      if (embedded.length === 0) {
        if (this.pos + rd.length > this.limit) {
          this.rollback(mark);
          return -1;
        }
        b.set(rd, this.pos);
        this.pos += rd.length;
      } else {
        let from = 0;
        for (const e of embedded) {
          if (this.pos + (e.offset - from) > this.limit) {
            this.rollback(mark);
            return -1;
          }
          b.set(rd.subarray(from, e.offset), this.pos);
          this.pos += e.offset - from;
          let end = e.offset;
          while (rd[end] !== 0) end += rd[end]! + 1;
          end++;
          if (!this.writeName(rd.subarray(e.offset, end), e.compress)) {
            this.rollback(mark);
            return -1;
          }
          from = end;
        }
        if (this.pos + (rd.length - from) > this.limit) {
          this.rollback(mark);
          return -1;
        }
        b.set(rd.subarray(from), this.pos);
        this.pos += rd.length - from;
      }
      b.writeUInt16BE(this.pos - rdStart, lenAt);
    }
    return set.rdatas.length;
  }

  /**
   * Drops everything written from `mark` on, and the compression targets inside it: a later name
   * must never point into bytes that are no longer (or differently) there.
   */
  rollback(mark: number): void {
    this.pos = mark;
    for (const [key, off] of this.names) if (off >= mark) this.names.delete(key);
  }

  /** Writes an OPT record (RFC 6891 §6.1.2); false if it does not fit. */
  writeOpt(udpSize: number, extRcode: number, dnssecOk: boolean, nsid: Uint8Array | null): boolean {
    const optLen = nsid ? 4 + nsid.length : 0;
    if (this.pos + 11 + optLen > this.limit) return false;
    const b = this.buf;
    b[this.pos] = 0;
    b.writeUInt16BE(TYPE.OPT, this.pos + 1);
    b.writeUInt16BE(udpSize, this.pos + 3);
    b[this.pos + 5] = extRcode;
    b[this.pos + 6] = 0; // version 0
    b[this.pos + 7] = dnssecOk ? 0x80 : 0;
    b[this.pos + 8] = 0;
    b.writeUInt16BE(optLen, this.pos + 9);
    this.pos += 11;
    if (nsid) {
      b.writeUInt16BE(EDNS_OPTION.NSID, this.pos);
      b.writeUInt16BE(nsid.length, this.pos + 2);
      b.set(nsid, this.pos + 4);
      this.pos += 4 + nsid.length;
    }
    return true;
  }

  setCounts(an: number, ns: number, ar: number): void {
    this.buf.writeUInt16BE(an, 6);
    this.buf.writeUInt16BE(ns, 8);
    this.buf.writeUInt16BE(ar, 10);
  }

  /**
   * Sets the response header flags: QR, the query's opcode, RD and CD copied (RFC 4035 §3.1.6),
   * AA and TC as given, RA never (authoritative only), and the low 4 bits of the rcode.
   */
  setFlags(queryFlags: number, aa: boolean, tc: boolean, rcode: number): void {
    this.buf.writeUInt16BE(responseFlags(queryFlags, aa, tc, rcode), 2);
  }

  /** A copy of the bytes written so far. */
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

/** Response flags word from the query's: QR, opcode, RD, CD kept; AA, TC, rcode set; RA and AD clear. */
export function responseFlags(queryFlags: number, aa: boolean, tc: boolean, rcode: number): number {
  return 0x8000 | (queryFlags & 0x7910) | (aa ? 0x0400 : 0) | (tc ? 0x0200 : 0) | (rcode & 0xf);
}
