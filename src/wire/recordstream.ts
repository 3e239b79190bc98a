/**
 * A zone-transfer response read record by record (RFC 5936 §2.2, RFC 1995 §4), without building a
 * record object or a byte array per record: owner names and RDATA are expanded into two reused scratch
 * buffers and handed to a callback, which copies what it keeps (the zone builder keeps the RDATA in a
 * shared slab and the owner only as its labels). The same bounds as records.ts readMessage: names
 * follow readName's rules (pointers strictly backwards, labels ≤ 63, names ≤ 255 octets, ≤ 127 hops),
 * RDATA is checked against its type's layout, every length against the message, trailing bytes are an
 * error.
 */
import { MAX_LABEL, MAX_NAME, type Name } from './name.js';
import { COMPRESSED_LAYOUT, WireFormatError, type WireQuestion } from './records.js';

/** The header and question of one response message. */
export interface StreamHead {
  id: number;
  flags: number;
  opcode: number;
  /** Header rcode (4 bits). */
  rcode: number;
  aa: boolean;
  tc: boolean;
  qr: boolean;
  /** The questions (a transfer response has one in its first message, maybe none later). */
  question: WireQuestion[];
  /** Records in the answer section. */
  answers: number;
}

/**
 * Called per answer record. `owner` and `rdata` are views of scratch buffers that the next record
 * overwrites: copy what must outlive the call. `rdata` has its compressed names expanded.
 */
export type StreamRecordFn = (
  owner: Name,
  type: number,
  klass: number,
  ttl: number,
  rdata: Uint8Array,
) => void;

const OWNER = new Uint8Array(MAX_NAME + MAX_LABEL + 2);
/** RDATA is at most 65535 octets on the wire; each expanded name (≤ 3 per layout) adds < 255. */
const RDATA = new Uint8Array(65_535 + 4 * MAX_NAME);
/** Where the name just read ends in the message (set by readNameInto). */
let nameNext = 0;

/**
 * Expands the (possibly compressed) name at `offset` of `msg[0..end)` into `out` at `at`; returns its
 * length and sets nameNext. Throws WireFormatError on any malformation (readName's rules).
 */
function readNameInto(msg: Uint8Array, end: number, offset: number, out: Uint8Array, at: number): number {
  let pos = offset;
  let next = -1;
  let hops = 0;
  let lowest = offset;
  let n = 0;
  for (;;) {
    if (pos >= end) throw new WireFormatError(`bad name at offset ${offset}: name runs past the end`);
    const len = msg[pos]!;
    if (len === 0) {
      out[at + n++] = 0;
      if (next < 0) next = pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= end) throw new WireFormatError(`bad name at offset ${offset}: truncated pointer`);
      const ptr = ((len & 0x3f) << 8) | msg[pos + 1]!;
      if (ptr >= lowest)
        throw new WireFormatError(`bad name at offset ${offset}: pointer does not point backwards`);
      if (++hops > 127) throw new WireFormatError(`bad name at offset ${offset}: too many pointers`);
      if (next < 0) next = pos + 2;
      lowest = ptr;
      pos = ptr;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new WireFormatError(`bad name at offset ${offset}: unsupported label type`);
    if (pos + 1 + len > end)
      throw new WireFormatError(`bad name at offset ${offset}: label runs past the end`);
    if (n + len + 2 > MAX_NAME)
      throw new WireFormatError(`bad name at offset ${offset}: longer than 255 octets`);
    out[at + n] = len;
    out.set(msg.subarray(pos + 1, pos + 1 + len), at + n + 1);
    n += len + 1;
    pos += len + 1;
  }
  nameNext = next;
  return n;
}

/**
 * The RDATA at msg[start..start+len): a view of the message itself for types without names to expand,
 * else the expanded copy in the RDATA scratch.
 */
function readRdataView(msg: Uint8Array, type: number, start: number, len: number): Uint8Array {
  const end = start + len;
  if (end > msg.length) throw new WireFormatError('RDATA runs past the end of the message');
  const layout = COMPRESSED_LAYOUT.get(type);
  if (!layout) return msg.subarray(start, end);
  let p = start;
  let o = 0;
  for (const part of layout) {
    if ('name' in part) {
      o += readNameInto(msg, end, p, RDATA, o);
      p = nameNext;
    } else if ('fixed' in part) {
      if (p + part.fixed > end) throw new WireFormatError('RDATA shorter than its type needs');
      RDATA.set(msg.subarray(p, p + part.fixed), o);
      o += part.fixed;
      p += part.fixed;
    } else {
      for (let i = 0; i < part.strings; i++) {
        if (p >= end || p + 1 + msg[p]! > end) throw new WireFormatError('character-string runs past RDATA');
        const n = 1 + msg[p]!;
        RDATA.set(msg.subarray(p, p + n), o);
        o += n;
        p += n;
      }
    }
  }
  if (p !== end) throw new WireFormatError('RDATA longer than its type allows');
  return RDATA.subarray(0, o);
}

/**
 * Reads one response message of a transfer: `onHead` sees the header and question first (and may
 * throw to stop), then `onRecord` each answer record in order. Authority and additional records are
 * checked and skipped. Throws WireFormatError on a malformed message; a record handed over before
 * the malformation was already seen by `onRecord`, so the caller discards the whole transfer then.
 */
export function readTransferMessage(
  msg: Uint8Array,
  onHead: (h: StreamHead) => void,
  onRecord: StreamRecordFn,
): void {
  if (msg.length < 12) throw new WireFormatError('message shorter than a DNS header');
  const u16 = (o: number): number => (msg[o]! << 8) | msg[o + 1]!;
  const flags = u16(2);
  const qd = u16(4);
  const an = u16(6);
  const rest = u16(8) + u16(10);
  const end = msg.length;
  let p = 12;
  const question: WireQuestion[] = [];
  for (let i = 0; i < qd; i++) {
    const n = readNameInto(msg, end, p, OWNER, 0);
    p = nameNext;
    if (p + 4 > end) throw new WireFormatError('question runs past the end of the message');
    question.push({ name: OWNER.slice(0, n), type: u16(p), class: u16(p + 2) });
    p += 4;
  }
  onHead({
    id: u16(0),
    flags,
    opcode: (flags >> 11) & 0xf,
    rcode: flags & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    qr: (flags & 0x8000) !== 0,
    question,
    answers: an,
  });
  for (let i = 0; i < an + rest; i++) {
    const n = readNameInto(msg, end, p, OWNER, 0);
    p = nameNext;
    if (p + 10 > end) throw new WireFormatError('record header runs past the end of the message');
    const type = u16(p);
    const klass = u16(p + 2);
    const ttl = ((msg[p + 4]! << 24) >>> 0) + (msg[p + 5]! << 16) + (msg[p + 6]! << 8) + msg[p + 7]!;
    const rdlen = u16(p + 8);
    p += 10;
    const rdata = readRdataView(msg, type, p, rdlen);
    p += rdlen;
    if (i < an) onRecord(OWNER.subarray(0, n), type, klass, ttl, rdata);
  }
  if (p !== end) throw new WireFormatError('bytes after the last record');
}
