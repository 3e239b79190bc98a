/**
 * The AXFR stream (RFC 5936 §2.2) of a zone version, written straight from the trie into messages of
 * up to ~64 KiB: SOA, every record, SOA. Built for a million-record zone:
 *
 * - no per-record objects: RRsets are read in place (RRsetMap.at, packedRdata), owner names are never
 *   put together as bytes (ZoneNode.name would allocate one per leaf);
 * - owner names are compressed by the trie's own shape: a node's owner is its label and a pointer to
 *   where its parent's name already is in this message (RFC 1035 §4.1.4), so there is no table of
 *   name suffixes to build and look up. The ancestors' offsets are kept per depth and forgotten when a
 *   message ends;
 * - names inside RDATA that RFC 1035 lets a server compress (NS, CNAME, MX, SOA, …) are compressed
 *   against the zone's origin only: the labels above it, then a pointer to the origin.
 *
 * Pointers reach only the first 16 KiB of a message; a name written later is written again (its
 * label, then a pointer further up) when needed. A record is never split: one that does not fit starts
 * the next message.
 */
import { CLASS, RCODE, TYPE } from '../wire/constants.js';
import { responseFlags, type QueryInfo } from '../wire/message.js';
import { rdataNames } from '../wire/rdata.js';
import { type PackedRdata, packedRdata, type RRset, type Zone, type ZoneNode } from '../zone/zone.js';

/** Offsets a compression pointer can reach (14 bits). */
const POINTER_LIMIT = 0x4000;
/** A name has at most 127 labels, so a trie at most 128 levels (the apex is level 0). */
const MAX_DEPTH = 128;

const EMPTY = new Uint8Array(0);

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/** A Buffer view of a whole backing store, for copying RDATA out of the zone's slabs. */
let lastSrc: ArrayBufferLike | null = null;
let lastView: Buffer = Buffer.alloc(0);
function viewOf(src: ArrayBufferLike): Buffer {
  if (src !== lastSrc) {
    lastView = Buffer.from(src as ArrayBuffer);
    lastSrc = src;
  }
  return lastView;
}

/**
 * The message being written. `put*` methods write one record and return false (having written
 * nothing) when it does not fit; the caller then ends the message and writes it into the next.
 */
class AxfrWriter {
  /** The message being written: a fresh buffer each time, handed out as is (no copy) when done. */
  buf = Buffer.allocUnsafe(65535);
  pos = 0;
  count = 0;
  /** Where the name of the node at each depth of the current path is in this message; -1 = not yet. */
  readonly nameAt = new Int32Array(MAX_DEPTH).fill(-1);
  /** The nodes from the apex down to the one being written. */
  readonly path: ZoneNode[] = [];
  messages = 0;
  private readonly end: number;
  private readonly optLen: number;
  private readonly ref: PackedRdata = { src: null, off: 0, len: 0 };

  constructor(
    private readonly zone: Zone,
    private readonly query: Uint8Array,
    private readonly q: QueryInfo,
    limit: number,
    private readonly counts: { records: number },
  ) {
    this.optLen = q.hasEdns ? 11 : 0;
    this.end = Math.min(limit, 65535) - this.optLen;
    this.path.push(zone.apex);
  }

  /** Starts a message: the query's header, its question in the first message only. */
  start(): void {
    const b = this.buf;
    const first = this.messages === 0;
    const qEnd = first ? this.q.questionEnd : 12;
    b.set(this.query.subarray(0, qEnd), 0);
    b.writeUInt16BE(qEnd > 12 ? 1 : 0, 4);
    this.pos = qEnd;
    this.count = 0;
    this.nameAt.fill(-1);
    // The question's name is the origin (in the client's letter case): the first message points to it.
    if (first && qEnd > 12) this.nameAt[0] = 12;
  }

  /** Ends the message (OPT when the request had EDNS, counts, flags) and returns it (the writer moves on to a new buffer). */
  finish(): Buffer {
    const b = this.buf;
    let ar = 0;
    if (this.optLen > 0) {
      const p = this.pos;
      b[p] = 0;
      b.writeUInt16BE(TYPE.OPT, p + 1);
      b.writeUInt16BE(1232, p + 3);
      b[p + 5] = 0;
      b[p + 6] = 0;
      b[p + 7] = this.q.dnssecOk ? 0x80 : 0;
      b[p + 8] = 0;
      b.writeUInt16BE(0, p + 9);
      this.pos += 11;
      ar = 1;
    }
    b.writeUInt16BE(this.count, 6);
    b.writeUInt32BE(ar, 8);
    b.writeUInt16BE(responseFlags(this.q.flags, true, false, RCODE.NOERROR), 2);
    this.messages++;
    this.counts.records += this.count;
    // The message is the start of this buffer, which the socket may hold until written: the next
    // message gets a new one (allocUnsafe: no zero fill) instead of this one being copied.
    this.buf = Buffer.allocUnsafe(65535);
    return b.subarray(0, this.pos);
  }

  /** Forgets the name offsets at or past `mark` (a record that did not fit is rolled back). */
  private rollback(mark: number, depth: number): false {
    this.pos = mark;
    for (let d = 0; d <= depth; d++) if (this.nameAt[d]! >= mark) this.nameAt[d] = -1;
    return false;
  }

  /** Writes the name of path[depth]: a pointer when it is in the message already, else label + parent. */
  private owner(depth: number): boolean {
    const at = this.nameAt[depth]!;
    const b = this.buf;
    if (at >= 0) {
      if (this.pos + 2 > this.end) return false;
      b[this.pos] = 0xc0 | (at >> 8);
      b[this.pos + 1] = at & 0xff;
      this.pos += 2;
      return true;
    }
    const start = this.pos;
    if (depth === 0) {
      const o = this.zone.origin;
      if (start + o.length > this.end) return false;
      b.set(o, start);
      this.pos += o.length;
    } else {
      const label = this.path[depth]!.label;
      const n = label.length;
      if (start + 1 + n > this.end) return false;
      b[start] = n;
      for (let i = 0; i < n; i++) b[start + 1 + i] = label.charCodeAt(i);
      this.pos += 1 + n;
      if (!this.owner(depth - 1)) return false;
    }
    if (start < POINTER_LIMIT) this.nameAt[depth] = start;
    return true;
  }

  /**
   * Writes the uncompressed name at `off` in `src`, compressed against the zone origin when it ends
   * in it (labels above the origin, then the origin's pointer). Returns the offset after the name in
   * `src`, or -1 when it does not fit.
   */
  private nameIn(src: Uint8Array, off: number): number {
    let p = off;
    while (src[p] !== 0) p += src[p]! + 1;
    const len = p + 1 - off;
    const o = this.zone.origin;
    // The origin's start in src, if the name ends in it at a label boundary.
    let cut = -1;
    if (len >= o.length) {
      const from = off + len - o.length;
      let q = off;
      while (q < from) q += src[q]! + 1;
      if (q === from) {
        cut = from;
        for (let i = 0; i < o.length; i++)
          if (lower(src[from + i]!) !== lower(o[i]!)) {
            cut = -1;
            break;
          }
      }
    }
    const b = this.buf;
    if (cut < 0) {
      if (this.pos + len > this.end) return -1;
      for (let i = 0; i < len; i++) b[this.pos + i] = src[off + i]!;
      this.pos += len;
      return off + len;
    }
    const head = cut - off;
    if (this.pos + head > this.end) return -1;
    for (let i = 0; i < head; i++) b[this.pos + i] = src[off + i]!;
    this.pos += head;
    return this.owner(0) ? off + len : -1;
  }

  /** Type, class, TTL and a length placeholder; returns where RDLENGTH goes, or -1. */
  private fixed(type: number, cls: number, ttl: number): number {
    const p = this.pos;
    if (p + 10 > this.end) return -1;
    const b = this.buf;
    b[p] = type >> 8;
    b[p + 1] = type & 0xff;
    b[p + 2] = cls >> 8;
    b[p + 3] = cls & 0xff;
    b.writeUInt32BE(ttl >>> 0, p + 4);
    this.pos = p + 10;
    return p + 8;
  }

  /**
   * The RDATA: `len` bytes at `off` in `src`, names compressed where RFC 1035 allows. `view` is
   * `src` as a Buffer when the caller has one (the packed case), for a native copy.
   */
  private rdata(type: number, src: Uint8Array, off: number, len: number, view: Buffer | null): boolean {
    const lenAt = this.pos - 2;
    const b = this.buf;
    if (type !== TYPE.A && type !== TYPE.AAAA) {
      const rd = off === 0 && len === src.length ? src : src.subarray(off, off + len);
      const names = rdataNames(type, rd);
      let compressible = false;
      for (let i = 0; i < names.length; i++) if (names[i]!.compress) compressible = true;
      if (compressible) {
        const start = this.pos;
        let from = 0;
        for (const e of names) {
          if (!e.compress) continue;
          const n = e.offset - from;
          if (this.pos + n > this.end) return false;
          b.set(rd.subarray(from, e.offset), this.pos);
          this.pos += n;
          from = this.nameIn(rd, e.offset);
          if (from < 0) return false;
        }
        const n = rd.length - from;
        if (this.pos + n > this.end) return false;
        b.set(rd.subarray(from), this.pos);
        this.pos += n;
        b.writeUInt16BE(this.pos - start, lenAt);
        return true;
      }
    }
    if (this.pos + len > this.end) return false;
    if (view !== null && len > 16) view.copy(b, this.pos, off, off + len);
    else for (let i = 0; i < len; i++) b[this.pos + i] = src[off + i]!;
    this.pos += len;
    b[lenAt] = len >> 8;
    b[lenAt + 1] = len & 0xff;
    return true;
  }

  /** One record owned by path[depth]. */
  putAt(depth: number, type: number, cls: number, ttl: number, rd: Uint8Array): boolean {
    const mark = this.pos;
    if (!this.owner(depth) || this.fixed(type, cls, ttl) < 0 || !this.rdata(type, rd, 0, rd.length, null))
      return this.rollback(mark, depth);
    this.count++;
    return true;
  }

  /** The `i`th record of `set` (owned by path[depth]); the packed single RDATA read in place. */
  putSet(depth: number, set: RRset, i: number): boolean {
    const mark = this.pos;
    if (!this.owner(depth) || this.fixed(set.type, set.class, set.ttl) < 0) return this.rollback(mark, depth);
    let ok: boolean;
    const ref = this.ref;
    if (i === 0 && packedRdata(set, ref)) {
      const view = viewOf(ref.src!);
      ok = this.rdata(set.type, view, ref.off, ref.len, view);
    } else {
      const rd = set.rdatas[i]!;
      ok = this.rdata(set.type, rd, 0, rd.length, null);
    }
    if (!ok) return this.rollback(mark, depth);
    this.count++;
    return true;
  }

  /** A record whose owner is a full name (NSEC3 chain): compressed against the origin. */
  putNamed(owner: Uint8Array, type: number, cls: number, ttl: number, rd: Uint8Array): boolean {
    const mark = this.pos;
    if (
      this.nameIn(owner, 0) < 0 ||
      this.fixed(type, cls, ttl) < 0 ||
      !this.rdata(type, rd, 0, rd.length, null)
    )
      return this.rollback(mark, 0);
    this.count++;
    return true;
  }
}

function tooBig(what: string): Error {
  return new Error(`a ${what} record does not fit a message`);
}

/**
 * The AXFR response to `query` as messages (each unsigned: the caller signs), for the zone version
 * given. `limit` is the largest message allowed (65535 less the TSIG reserve). The trie is walked
 * depth first, children in insertion order, an RRset's RRSIGs after it, NSEC3 records last — the
 * order zone/zonedata.ts's zoneRRsets gives. `counts.records` is increased by the records written.
 */
export function* axfrMessages(
  zone: Zone,
  query: Uint8Array,
  q: QueryInfo,
  limit: number,
  counts: { records: number },
): Generator<Buffer, void, void> {
  const w = new AxfrWriter(zone, query, q, limit, counts);
  const ref: PackedRdata = { src: null, off: 0, len: 0 };
  const soa = zone.soa;
  const soaRd = soa.rdatas[0] ?? EMPTY;
  w.start();
  if (!w.putAt(0, TYPE.SOA, CLASS.IN, soa.ttl, soaRd)) throw tooBig('SOA');
  const path = w.path;
  /** Next child index at each depth. */
  const next: number[] = [0];
  let depth = 0;
  let node: ZoneNode | undefined = zone.apex;
  while (node !== undefined) {
    // The node's own records.
    const apex = depth === 0;
    for (let s = 0; s < node.size; s++) {
      const set = node.at(s)!;
      if (!(apex && set.type === TYPE.SOA)) {
        const n = packedRdata(set, ref) ? 1 : set.rdatas.length;
        for (let i = 0; i < n; i++) {
          if (!w.putSet(depth, set, i)) {
            yield w.finish();
            w.start();
            if (!w.putSet(depth, set, i)) throw tooBig(`type ${set.type}`);
          }
        }
      }
      const sigs = set.sigs;
      if (sigs)
        for (const rd of sigs) {
          if (!w.putAt(depth, TYPE.RRSIG, set.class, set.ttl, rd)) {
            yield w.finish();
            w.start();
            if (!w.putAt(depth, TYPE.RRSIG, set.class, set.ttl, rd)) throw tooBig('RRSIG');
          }
        }
    }
    // The next node: the first child, else the next sibling of the nearest ancestor that has one.
    node = undefined;
    for (;;) {
      const kids = path[depth]!.children.values();
      let i = next[depth]!;
      while (i < kids.length && kids[i] === undefined) i++;
      if (i < kids.length) {
        next[depth] = i + 1;
        node = kids[i]!;
        depth++;
        path[depth] = node;
        next[depth] = 0;
        w.nameAt[depth] = -1;
        break;
      }
      if (depth === 0) break;
      depth--;
    }
  }
  const nsec3 = zone.dnssec?.nsec3;
  if (nsec3) {
    const sets: RRset[] = [];
    if (!zone.apex.rrsets.get(TYPE.NSEC3PARAM) && nsec3.params.rdatas.length > 0) sets.push(nsec3.params);
    for (const e of nsec3.chain) sets.push(e.nsec3);
    for (const set of sets) {
      const all = [
        ...set.rdatas.map((rd) => [set.type, rd] as const),
        ...(set.sigs ?? []).map((rd) => [TYPE.RRSIG, rd] as const),
      ];
      for (const [type, rd] of all) {
        if (!w.putNamed(set.owner, type, set.class, set.ttl, rd)) {
          yield w.finish();
          w.start();
          if (!w.putNamed(set.owner, type, set.class, set.ttl, rd)) throw tooBig('NSEC3');
        }
      }
    }
  }
  if (!w.putAt(0, TYPE.SOA, CLASS.IN, soa.ttl, soaRd)) {
    yield w.finish();
    w.start();
    if (!w.putAt(0, TYPE.SOA, CLASS.IN, soa.ttl, soaRd)) throw tooBig('SOA');
  }
  yield w.finish();
}
