/**
 * The in-memory zone: a trie of labels from the apex down, with RRsets per node, built from a parsed
 * zone after the semantic checks of `popdns check`. Empty non-terminals are real nodes. Built once per
 * zone version and never mutated afterwards, so a reload swaps whole zones and queries in flight keep
 * the version they started with.
 */
import { CLASS, MAX_TTL, TYPE, typeToText } from '../wire/constants.js';
import {
  isSubdomainOf,
  isWildcard,
  labelOffsets,
  type Name,
  nameEquals,
  nameFromText,
  nameToRelativeText,
  nameToText,
} from '../wire/name.js';
import { rdataEquals, rdataTarget } from '../wire/rdata.js';
import { Children } from './children.js';
import { attachPresigned, isPresigned, type ZoneDnssec } from './dnssec.js';
import { addressLike, isHostName, looksAbsolute } from './namechecks.js';
import { type Diagnostic, diag, type ParsedZone, type Position, type ZoneRecord } from './types.js';

/** All records of one owner and type, with one TTL. */
export interface RRset {
  /** Owner name in the case the zone wrote it (or the query's, for wildcard-synthesized sets). */
  owner: Name;
  type: number;
  class: number;
  ttl: number;
  /** Uncompressed wire RDATA, in zone order, duplicates removed. Add to a zone's sets with addRdata. */
  rdatas: Uint8Array[];
  /** RRSIG RDATAs over this set (owner = owner, TTL = ttl); absent when unsigned. */
  sigs?: Uint8Array[];
}

export interface Zone {
  origin: Name;
  /** Origin as presentation text, with trailing dot. */
  originText: string;
  file: string;
  serial: number;
  recordCount: number;
  apex: ZoneNode;
  soa: RRset;
  /** The SOA as it goes into negative answers: TTL = min(SOA TTL, MINIMUM) (RFC 2308 §3). */
  negativeSoa: RRset;
  /** Labels in the origin, for walking query names below it. */
  originLabels: number;
  /**
   * The zone's DNSSEC data (signatures travel on each RRset's `sigs`): set by the zone builder for a
   * zone that arrived signed (see zone/dnssec.ts attachPresigned), or by popdns' signer.
   */
  dnssec?: ZoneDnssec;
  /** A zone we are authoritative for but cannot serve (a secondary not loaded yet, or expired): SERVFAIL. */
  servfail?: true;
}

export interface BuildResult {
  /** Null when the zone has errors. */
  zone: Zone | null;
  diagnostics: Diagnostic[];
}

/**
 * The RRsets of one node by type. Nodes hold one to a few, so a small array searched in order costs
 * far less memory than a Map per node (a million-record zone has a million of these) and is as fast.
 */
export class RRsetMap {
  /**
   * Most nodes have one RRset: it is this field itself; more than one are an array (in the order
   * they were added). One field, not two: a million-record zone has a million of these.
   */
  private sets: RRset | RRset[] | undefined = undefined;

  get size(): number {
    const s = this.sets;
    return s === undefined ? 0 : Array.isArray(s) ? s.length : 1;
  }

  get(type: number): RRset | undefined {
    const s = this.sets;
    if (s === undefined) return undefined;
    if (!Array.isArray(s)) return s.type === type ? s : undefined;
    for (let i = 0; i < s.length; i++) if (s[i]!.type === type) return s[i];
    return undefined;
  }

  has(type: number): boolean {
    return this.get(type) !== undefined;
  }

  /** The `i`th RRset (0 ≤ i < size), in the order values() gives them; no allocation (transfer walks). */
  at(i: number): RRset | undefined {
    const s = this.sets;
    if (s === undefined) return undefined;
    if (!Array.isArray(s)) return i === 0 ? s : undefined;
    return s[i];
  }

  /** Adds or replaces the RRset of `type` (which must be the set's own type). */
  set(type: number, set: RRset): this {
    if (set.type !== type) throw new Error(`internal: RRset of type ${set.type} stored as ${type}`);
    const s = this.sets;
    if (s === undefined || (!Array.isArray(s) && s.type === type)) {
      this.sets = set;
      return this;
    }
    if (!Array.isArray(s)) {
      this.sets = [s, set];
      return this;
    }
    const i = s.findIndex((x) => x.type === type);
    if (i >= 0) s[i] = set;
    else s.push(set);
    return this;
  }

  delete(type: number): boolean {
    const s = this.sets;
    if (s === undefined) return false;
    if (!Array.isArray(s)) {
      if (s.type !== type) return false;
      this.sets = undefined;
      return true;
    }
    const i = s.findIndex((x) => x.type === type);
    if (i < 0) return false;
    s.splice(i, 1);
    if (s.length === 1) this.sets = s[0];
    return true;
  }

  private all(): RRset[] {
    const s = this.sets;
    return s === undefined ? [] : Array.isArray(s) ? s.slice() : [s];
  }

  keys(): IterableIterator<number> {
    const types = this.all().map((s) => s.type);
    return types[Symbol.iterator]();
  }

  /** A snapshot: deleting while iterating is safe. */
  values(): IterableIterator<RRset> {
    return this.all()[Symbol.iterator]();
  }

  [Symbol.iterator](): IterableIterator<[number, RRset]> {
    const pairs = this.all().map((s): [number, RRset] => [s.type, s]);
    return pairs[Symbol.iterator]();
  }
}

/** The children of every leaf (most nodes of a big zone): one shared empty set that refuses adds. */
class NoChildren extends Children<ZoneNode> {
  override add(): void {
    throw new Error('internal: a leaf node shares NO_CHILDREN; give it its own Children first');
  }
}
const NO_CHILDREN: Children<ZoneNode> = new NoChildren();

/** ZoneNode.flags bits. */
const CUT = 1;
const OCCLUDED = 2;

/**
 * One name of the zone. A big zone is mostly leaves with one RRset, so a node is kept small: its own
 * label as a string (the parent's map key itself when the label has no upper case), its RRsets in the
 * fields it inherits from RRsetMap, and no name bytes: `name` is put together from the labels up to
 * the apex when asked (and kept for nodes with children, which are few and asked often).
 */
export class ZoneNode extends RRsetMap {
  /** The nodes one label below, found by label bytes in any letter case. */
  children: Children<ZoneNode> = NO_CHILDREN;
  /** `cut` and `occluded` as bits of one small integer (one field, not two, per node). */
  private flags = 0;
  private nameCache: Name | null;

  /** A delegation point: NS here and not the apex. */
  get cut(): boolean {
    return (this.flags & CUT) !== 0;
  }
  set cut(v: boolean) {
    this.flags = v ? this.flags | CUT : this.flags & ~CUT;
  }

  /** Strictly below a delegation point or a DNAME owner: not authoritative data (glue, or occluded). */
  get occluded(): boolean {
    return (this.flags & OCCLUDED) !== 0;
  }
  set occluded(v: boolean) {
    this.flags = v ? this.flags | OCCLUDED : this.flags & ~OCCLUDED;
  }

  constructor(
    /** This node's label in the case the zone wrote it, as latin1 bytes; '' at the apex. */
    readonly label: string,
    readonly parent: ZoneNode | null,
    name: Name | null,
  ) {
    super();
    this.nameCache = name;
  }

  /** The RRsets at this node by type (the node itself: it is its own RRsetMap). */
  get rrsets(): RRsetMap {
    return this;
  }

  /** The owner name, in the case the zone wrote it. */
  get name(): Name {
    const cached = this.nameCache;
    if (cached) return cached;
    const up = this.parent!.name;
    const label = this.label;
    const n = label.length;
    const out = new Uint8Array(1 + n + up.length);
    out[0] = n;
    for (let i = 0; i < n; i++) out[1 + i] = label.charCodeAt(i);
    out.set(up, 1 + n);
    if (this.children !== NO_CHILDREN) this.nameCache = out;
    return out;
  }
}

/** Scratch for labelText: a label is at most 63 octets. */
const LABEL_SCRATCH = Buffer.allocUnsafe(64);
/**
 * A copy of `node` for a new zone version (zone/edit.ts copies the nodes from the apex to each node
 * an update changes): same label, flags and RRset objects (shared, never mutated once published),
 * its own children index (`Children.clone`, so the copy's children can change), under `parent`.
 */
export function copyNode(node: ZoneNode, parent: ZoneNode | null): ZoneNode {
  const c = new ZoneNode(node.label, parent, parent === null ? node.name : null);
  for (const s of node.rrsets.values()) c.rrsets.set(s.type, s);
  if (node.children !== NO_CHILDREN) c.children = node.children.clone();
  c.cut = node.cut;
  c.occluded = node.occluded;
  return c;
}

/** Adds `child` below `parent` (an unpublished node), giving a leaf its own children first. */
export function addChild(parent: ZoneNode, child: ZoneNode): void {
  if (parent.children === NO_CHILDREN) parent.children = new Children();
  parent.children.add(child);
}

/** A label's bytes as a flat latin1 string, in its own case. */
function labelText(name: Name, offset: number): string {
  const len = name[offset]!;
  // V8 copies short concatenations into a flat string; longer ones would make a rope. Not through
  // `name.buffer`: a name kept on V8's heap would be moved off it for that.
  if (len > 12) {
    for (let i = 0; i < len; i++) LABEL_SCRATCH[i] = name[offset + 1 + i]!;
    return LABEL_SCRATCH.toString('latin1', 0, len);
  }
  let s = '';
  for (let i = offset + 1; i <= offset + len; i++) s += String.fromCharCode(name[i]!);
  return s;
}

/**
 * An RRset as the zone stores it: the owner is its node's name, the class IN, and a set of one
 * record (most of a big zone) keeps its RDATA as an offset into the parser's shared byte slab
 * instead of an array and a view of its own. Read `rdatas` freely; add records with addRdata.
 */
class ZoneRRset implements RRset {
  sigs: Uint8Array[] | undefined = undefined;
  /**
   * Where the zone file wrote the first record, packed by the builder (duplicateTracker) into one
   * small integer so a million-record zone keeps no Position objects; -1 when unknown. Only duplicate
   * warnings read it.
   */
  at = -1;
  /**
   * The single RDATA's backing store (with its offset and length packed into `span`), or the list of
   * RDATAs once the set holds more than one (or one that does not pack). One field for both, and one
   * for offset and length: a million-record zone has a million of these.
   */
  private data: ArrayBufferLike | Uint8Array[];
  /** offset × 2^11 + length of the single RDATA in `data` (a small integer); -1 for a list. */
  private span: number;

  constructor(
    readonly node: ZoneNode,
    readonly type: number,
    public ttl: number,
    rdata: Uint8Array,
  ) {
    const off = rdata.byteOffset;
    const len = rdata.length;
    if (len < SPAN_LEN && off < SPAN_OFF) {
      this.data = rdata.buffer;
      this.span = (off << SPAN_SHIFT) | len;
    } else {
      this.data = [rdata];
      this.span = -1;
    }
  }

  get owner(): Name {
    return this.node.name;
  }

  get class(): number {
    return CLASS.IN;
  }

  /** The RDATAs; a one-record set hands out a frozen array made on the spot (use addRdata to add). */
  get rdatas(): Uint8Array[] {
    const span = this.span;
    if (span < 0) return this.data as Uint8Array[];
    return Object.freeze([
      new Uint8Array(this.data as ArrayBufferLike, span >>> SPAN_SHIFT, span & (SPAN_LEN - 1)),
    ]) as Uint8Array[];
  }

  /** The single RDATA's location (see packedRdata); false once the set holds a list. */
  packed(out: PackedRdata): boolean {
    const span = this.span;
    if (span < 0) return false;
    out.src = this.data as ArrayBufferLike;
    out.off = span >>> SPAN_SHIFT;
    out.len = span & (SPAN_LEN - 1);
    return true;
  }

  add(rdata: Uint8Array): void {
    if (this.span >= 0) {
      this.data = this.rdatas.slice();
      this.span = -1;
    }
    (this.data as Uint8Array[]).push(rdata);
  }
}

/** ZoneRRset.span: lengths below 2^11 (every slab copy) and offsets below 2^20 keep it a small integer. */
const SPAN_SHIFT = 11;
const SPAN_LEN = 1 << SPAN_SHIFT;
const SPAN_OFF = 2 ** 20;

/** Where a one-record RRset keeps its RDATA: `len` bytes at `off` in `src` (see packedRdata). */
export interface PackedRdata {
  src: ArrayBufferLike | null;
  off: number;
  len: number;
}

/**
 * For a one-record RRset stored the compact way: fills `out` with its RDATA's backing store, offset
 * and length and returns true, with no allocation (what a zone transfer walking a million of them
 * needs). False for any other set: read `rdatas` then.
 */
export function packedRdata(set: RRset, out: PackedRdata): boolean {
  return set instanceof ZoneRRset && set.packed(out);
}

/** Adds one RDATA to an RRset, whether the zone stores it or it is a plain object. */
export function addRdata(set: RRset, rdata: Uint8Array): void {
  if (set instanceof ZoneRRset) set.add(rdata);
  else set.rdatas.push(rdata);
}

/** A new RRset of one record at `node`, stored the compact way (owner = the node's name, class IN). */
export function newRRset(node: ZoneNode, type: number, ttl: number, rdata: Uint8Array): RRset {
  return new ZoneRRset(node, type, ttl, rdata);
}

/** Scratch for findNode: a name has at most 127 labels. */
const LABEL_OFFSETS = new Int32Array(128);

/**
 * Finds the node for `name` (which must be at or below the zone origin), creating it and any empty
 * non-terminals above it when `create` is set.
 */
export function findNode(
  zone: { apex: ZoneNode; originLabels: number },
  name: Name,
  create = false,
): ZoneNode | null {
  const offs = LABEL_OFFSETS;
  let count = 0;
  for (let p = 0; p < name.length && name[p] !== 0; p += name[p]! + 1) offs[count++] = p;
  let node = zone.apex;
  for (let i = count - zone.originLabels - 1; i >= 0; i--) {
    const off = offs[i]!;
    let child = node.children.find(name, off);
    if (!child) {
      if (!create) return null;
      child = new ZoneNode(labelText(name, off), node, null);
      if (node.children === NO_CHILDREN) node.children = new Children();
      node.children.add(child);
    }
    node = child;
  }
  return node;
}

/** Visits every node below and including `node`, depth first. */
export function walk(node: ZoneNode, fn: (n: ZoneNode) => void): void {
  fn(node);
  for (const c of node.children.values()) walk(c, fn);
}

/**
 * Positions for duplicate-record warnings (RFC 2181 §5), kept small: the first record of a set as one
 * packed integer on the set (file index in the low 6 bits, line above), later records of multi-record
 * sets in a side map. Columns are not kept: the warning names the earlier record by file and line.
 */
function duplicateTracker(
  file: string,
  warn: (code: string, msg: string, pos: Position) => void,
  rel: (n: Name) => string,
): {
  pack(pos: Position): number;
  added(set: ZoneRRset, pos: Position): void;
  positionOf(set: ZoneRRset, index: number): string | null;
  report(rec: ZoneRecord, first: Position | string | null): void;
  /** Lets go of the positions of later records once the zone is built. */
  clear(): void;
} {
  const files = [file];
  let lastFile = file;
  let lastIndex = 0;
  const later = new Map<ZoneRRset, number[]>();
  const pack = (pos: Position): number => {
    let fi = lastIndex;
    if (pos.file !== lastFile) {
      fi = files.indexOf(pos.file);
      if (fi < 0) fi = files.push(pos.file) - 1;
      lastFile = pos.file;
      lastIndex = fi;
    }
    return fi < 64 && pos.line < 2 ** 24 ? pos.line * 64 + fi : -1;
  };
  const unpack = (v: number | undefined): string | null =>
    v === undefined || v < 0 ? null : `${files[v % 64]}:${Math.floor(v / 64)}`;
  return {
    pack,
    added(set, pos) {
      let list = later.get(set);
      if (!list) later.set(set, (list = []));
      list.push(pack(pos));
    },
    positionOf(set, index) {
      return unpack(index === 0 ? set.at : later.get(set)?.[index - 1]);
    },
    report(rec, first) {
      const where = typeof first === 'string' ? first : first ? `${first.file}:${first.line}` : null;
      warn(
        'POPDNS_W_DUPLICATE',
        `duplicate ${typeToText(rec.type)} record at ${rel(rec.owner)} ignored: the same record as ${where ? `the one at ${where}` : 'an earlier one'} (RFC 2181 §5)`,
        rec.pos,
      );
    },
    clear() {
      later.clear();
    },
  };
}

/**
 * Builds a zone from parsed records and runs the semantic checks. Errors make `zone` null; warnings
 * do not. The parser's own diagnostics come first in the result. With `consume`, each record is let go
 * once it is in the trie, so a big zone is never held twice. `now` as in zoneBuilder.
 */
export function buildZone(parsed: ParsedZone, opts: { consume?: boolean; now?: number } = {}): BuildResult {
  const builder = zoneBuilder(parsed.origin, parsed.file, opts.now !== undefined ? { now: opts.now } : {});
  const records = parsed.records;
  for (let i = 0; i < records.length; i++) {
    const rec = records[i]!;
    if (opts.consume) records[i] = undefined as unknown as ZoneRecord;
    builder.add(rec);
  }
  return builder.finish(parsed.diagnostics, parsed);
}

/**
 * Builds a zone one record at a time, as a parser hands them over (a master file streams its records
 * straight into the trie), then runs the semantic checks in `finish`.
 */
export interface ZoneBuilder {
  /**
   * Adds one parsed record to the trie (or reports why it cannot go in). `rec.rdata` and `rec.pos`
   * are kept; `rec.owner` is not (a transfer hands a scratch buffer it reuses for the next record).
   */
  add(rec: ZoneRecord): void;
  /** Runs the zone-wide checks; the parser's diagnostics come first in the result. Call once. */
  finish(
    parserDiagnostics: Diagnostic[],
    parsed?: Pick<ParsedZone, 'incomplete' | 'failedTypes'>,
  ): BuildResult;
}

/**
 * A zone that arrives signed (a DNSKEY RRset at the apex and RRSIG records: a pre-signed file, or a
 * transfer from a signing primary) is detected in `finish` and served as it is: see attachPresigned.
 * `opts.now` (unix seconds, default the clock) is when its signatures' expiry is judged.
 */
export function zoneBuilder(origin: Name, file: string, opts: { now?: number } = {}): ZoneBuilder {
  const diagnostics: Diagnostic[] = [];
  const rel = (n: Name): string => nameToRelativeText(n, origin);
  const filePos: Position = { file, line: 1, col: 1 };
  const err = (code: string, msg: string, pos: Position): void => {
    diagnostics.push(diag('error', code, msg, pos));
  };
  const warn = (code: string, msg: string, pos: Position): void => {
    diagnostics.push(diag('warning', code, msg, pos));
  };

  const zone: Zone = {
    origin,
    originText: nameToText(origin),
    file,
    serial: 0,
    recordCount: 0,
    apex: new ZoneNode('', null, origin),
    soa: { owner: origin, type: TYPE.SOA, class: CLASS.IN, ttl: 0, rdatas: [] },
    negativeSoa: { owner: origin, type: TYPE.SOA, class: CLASS.IN, ttl: 0, rdatas: [] },
    originLabels: labelOffsets(origin).length,
  };
  /** First record seen per node+type, for positions in later checks. */
  const firstPos = new Map<RRset, Position>();
  let soaRecord: ZoneRecord | null = null;
  let rrsigCount = 0;
  /** Positions of each NS, MX and SRV record, in the order of the RRset's RDATAs. */
  const recPos = new Map<RRset, Position[]>();
  /** DNAME owners seen so far: an address record added below one keeps its position for the warning. */
  const dnameOwners: Name[] = [];
  const originLabels = zone.originLabels;
  /** Warns once per record about a relative name that was likely meant to be absolute. */
  const checkAbsolute = (name: Name, what: string, pos: Position): void => {
    const hint = looksAbsolute(name, origin, originLabels);
    if (hint === null) return;
    warn(
      'POPDNS_W_RELATIVE_LOOKS_ABSOLUTE',
      `${what} ${nameToText(name)} ends in ${hint}.${zone.originText}: a name written without its final dot? (write ${nameToText(name).slice(0, -zone.originText.length)} if it is absolute)`,
      pos,
    );
  };
  const dup = duplicateTracker(file, warn, rel);

  const add = (rec: ZoneRecord): void => {
    if (!isSubdomainOf(rec.owner, origin)) {
      err('POPDNS_E_OUT_OF_ZONE', `${nameToText(rec.owner)} is outside the zone ${zone.originText}`, rec.pos);
      return;
    }
    if (rec.class !== CLASS.IN) {
      err('POPDNS_E_BAD_CLASS', `${rel(rec.owner)} has class ${rec.class}; only IN is served`, rec.pos);
      return;
    }
    if (rec.ttl < 0 || rec.ttl > MAX_TTL) {
      err('POPDNS_E_BAD_TTL', `TTL ${rec.ttl} is outside 0..2147483647`, rec.pos);
      return;
    }
    if (rec.type === TYPE.SOA) {
      if (!nameEquals(rec.owner, origin)) {
        err('POPDNS_E_SOA_NOT_AT_APEX', `SOA at ${rel(rec.owner)}; the SOA belongs at the apex`, rec.pos);
        return;
      }
      if (soaRecord) {
        if (rdataEquals(TYPE.SOA, (soaRecord as ZoneRecord).rdata, rec.rdata)) {
          dup.report(rec, (soaRecord as ZoneRecord).pos);
          return;
        }
        err('POPDNS_E_SOA_MULTIPLE', 'more than one SOA record', rec.pos);
        return;
      }
      soaRecord = rec;
    }
    if (rec.type === TYPE.RRSIG) rrsigCount++;
    const node = findNode(zone, rec.owner, true)!;
    let set = node.rrsets.get(rec.type);
    const target = TARGET_TYPES.has(rec.type) ? rdataTarget(rec.type, rec.rdata) : null;
    if (target) checkAbsolute(target, `${typeToText(rec.type)} target`, rec.pos);
    if (target && (rec.type === TYPE.NS || rec.type === TYPE.MX)) {
      const ip = addressLike(target, isSubdomainOf(target, origin) ? originLabels : 0);
      if (ip !== null) {
        const tn = typeToText(rec.type);
        warn(
          'POPDNS_W_TARGET_IS_ADDRESS',
          `${tn} '${nameToText(target)}' of ${rel(rec.owner)} is an address (${ip}); ${tn} needs a host name`,
          rec.pos,
        );
      }
    }
    if (!set) {
      if (node.size === 0) checkAbsolute(rec.owner, 'owner', rec.pos);
      const created = new ZoneRRset(node, rec.type, rec.ttl, rec.rdata);
      created.at = dup.pack(rec.pos);
      set = created;
      node.rrsets.set(rec.type, set);
      const address = rec.type === TYPE.A || rec.type === TYPE.AAAA;
      // Positions serve later diagnostics; an A or AAAA RRset keeps one only below a DNAME seen so
      // far, so a million-address zone does not hold a million positions.
      if (!address || dnameOwners.some((d) => isSubdomainOf(rec.owner, d) && !nameEquals(rec.owner, d)))
        firstPos.set(set, rec.pos);
      if (rec.type === TYPE.DNAME) dnameOwners.push(rec.owner.slice());
      if (rec.type === TYPE.NS || rec.type === TYPE.MX || rec.type === TYPE.SRV) recPos.set(set, [rec.pos]);
      if ((address || rec.type === TYPE.MX) && !isHostName(rec.owner)) {
        warn(
          'POPDNS_W_NOT_HOSTNAME',
          `${rel(rec.owner)} has ${typeToText(rec.type)} records but is not a host name (RFC 952/1123: letters, digits, inner hyphens) (check-names)`,
          rec.pos,
        );
      }
      zone.recordCount++;
      return;
    } else {
      // RFC 2181 §5: records equal under DNS comparison (owner in any case, which findNode already
      // folds; RDATA names of the RFC 4034 §6.2 types in any case) are one record.
      const rdatas = set.rdatas;
      for (let i = 0; i < rdatas.length; i++) {
        if (rdataEquals(rec.type, rdatas[i]!, rec.rdata)) {
          dup.report(rec, dup.positionOf(set as ZoneRRset, i));
          return;
        }
      }
      if (rec.type === TYPE.CNAME) {
        err('POPDNS_E_CNAME_MULTIPLE', `${rel(rec.owner)} has more than one CNAME`, rec.pos);
        return;
      }
      if (rec.type === TYPE.DNAME) {
        err('POPDNS_E_DNAME_MULTIPLE', `${rel(rec.owner)} has more than one DNAME`, rec.pos);
        return;
      }
      // RRSIGs at one name cover different RRsets, each with its own TTL (RFC 4034 §3).
      if (rec.ttl !== set.ttl && rec.type !== TYPE.RRSIG) {
        warn(
          'POPDNS_W_TTL_MISMATCH',
          `${typeToText(rec.type)} at ${rel(rec.owner)} has TTL ${rec.ttl} but its RRset has ${set.ttl} (RFC 2181 §5.2); using ${set.ttl}`,
          rec.pos,
        );
      }
    }
    addRdata(set, rec.rdata);
    dup.added(set as ZoneRRset, rec.pos);
    recPos.get(set)?.push(rec.pos);
    zone.recordCount++;
  };

  const finish = (
    parserDiagnostics: Diagnostic[],
    parsed?: Pick<ParsedZone, 'incomplete' | 'failedTypes'>,
  ): BuildResult => {
    dup.clear();
    // One cause, one message: what is missing because the file could not be read (or a record of
    // that type could not be parsed) is not reported again as missing.
    if (parsed?.incomplete) return { zone: null, diagnostics: [...parserDiagnostics, ...diagnostics] };
    const failedTypes = parsed?.failedTypes;
    const missing = (type: number): boolean => !failedTypes?.has(type);
    const addressesComplete = missing(TYPE.A) && missing(TYPE.AAAA);
    const apex = zone.apex;
    const soa = apex.rrsets.get(TYPE.SOA);
    if (!soa || !soaRecord) {
      if (missing(TYPE.SOA))
        err('POPDNS_E_NO_SOA', `zone ${zone.originText} has no SOA record at the apex`, filePos);
    } else {
      setZoneSoa(zone, soa);
    }
    const apexNs = apex.rrsets.get(TYPE.NS);
    if (!apexNs && missing(TYPE.NS))
      err(
        'POPDNS_E_NO_APEX_NS',
        `zone ${zone.originText} has no NS records at the apex`,
        soaRecord?.pos ?? filePos,
      );
    const apexDs = apex.rrsets.get(TYPE.DS);
    if (apexDs) {
      warn(
        'POPDNS_W_DS_AT_APEX',
        `DS at the apex of ${zone.originText}: a DS belongs in the parent zone (RFC 4035 §2.4); it is not served from here`,
        firstPos.get(apexDs) ?? filePos,
      );
    }
    if (apex.rrsets.has(TYPE.CNAME)) {
      const set = apex.rrsets.get(TYPE.CNAME)!;
      err('POPDNS_E_CNAME_AT_APEX', 'a CNAME at the zone apex is not allowed', firstPos.get(set) ?? filePos);
    }

    // Flags (delegation points, occluded names) and per-node consistency checks.
    /** The DNAME node that hides each node below a DNAME (nodes below a zone cut only are absent). */
    const underDname = new Map<ZoneNode, ZoneNode>();
    const mark = (node: ZoneNode, occluded: boolean, dname: ZoneNode | null): void => {
      node.occluded = occluded;
      if (dname) underDname.set(node, dname);
      node.cut = node !== apex && !occluded && node.rrsets.has(TYPE.NS);
      const below = occluded || node.cut || node.rrsets.has(TYPE.DNAME);
      const d = dname ?? (!occluded && node.rrsets.has(TYPE.DNAME) ? node : null);
      for (const c of node.children.values()) mark(c, below, d);
    };
    mark(apex, false, null);

    // A zone that arrived signed: its RRSIGs onto their RRsets, its NSEC/NSEC3 chain (never re-signed).
    if (isPresigned(zone, rrsigCount)) {
      const posOf = (set: RRset): Position => firstPos.get(set) ?? filePos;
      diagnostics.push(...attachPresigned(zone, posOf, opts.now ?? Math.floor(Date.now() / 1000)));
    } else if (rrsigCount > 0) {
      const rrsigs = [...firstPos.keys()].find((s) => s.type === TYPE.RRSIG);
      warn(
        'POPDNS_W_RRSIG_NO_DNSKEY',
        `${rrsigCount} RRSIG records but no DNSKEY at the apex: the zone is served unsigned`,
        (rrsigs && firstPos.get(rrsigs)) ?? filePos,
      );
    }

    walk(apex, (node) => {
      const cname = node.rrsets.get(TYPE.CNAME);
      if (cname && node !== apex) {
        const others = [...node.rrsets.keys()].filter(
          (t) => t !== TYPE.CNAME && t !== TYPE.RRSIG && t !== TYPE.NSEC,
        );
        if (others.length > 0) {
          err(
            'POPDNS_E_CNAME_AND_OTHER',
            `${rel(node.name)} has a CNAME and other data (${others.map(typeToText).join(', ')})`,
            firstPos.get(cname) ?? filePos,
          );
        }
      }
      const dname = node.rrsets.get(TYPE.DNAME);
      if (dname && cname) {
        err(
          'POPDNS_E_CNAME_AND_OTHER',
          `${rel(node.name)} has a CNAME and a DNAME`,
          firstPos.get(cname) ?? filePos,
        );
      }
      if (node.occluded) {
        const dnode = underDname.get(node);
        for (const set of node.rrsets.values()) {
          // Addresses below a zone cut are glue; below a DNAME nothing is served (RFC 6672 §2.3).
          if (!dnode && (set.type === TYPE.A || set.type === TYPE.AAAA)) continue;
          const dset = dnode?.rrsets.get(TYPE.DNAME);
          warn(
            'POPDNS_W_OCCLUDED',
            dnode
              ? `${typeToText(set.type)} at ${rel(node.name)} is below the DNAME at ${rel(dnode.name)} and will not be served (occluded, RFC 6672 §2.3)`
              : `${typeToText(set.type)} at ${rel(node.name)} is below a delegation and will not be served (occluded)`,
            firstPos.get(set) ?? (dset ? firstPos.get(dset) : undefined) ?? filePos,
          );
        }
      }
      if (isWildcard(node.name) && node.rrsets.has(TYPE.NS) && !node.occluded) {
        const set = node.rrsets.get(TYPE.NS)!;
        warn(
          'POPDNS_W_WILDCARD_NS',
          `NS records at the wildcard ${rel(node.name)}: RFC 4592 §4.2 discourages them and resolvers treat them inconsistently`,
          firstPos.get(set) ?? filePos,
        );
      }
    });

    // Target checks: NS/MX/SRV pointing at an in-zone CNAME or at names without addresses; glue.
    const hasAddress = (name: Name): boolean => {
      const n = findNode(zone, name);
      if (n) return n.rrsets.has(TYPE.A) || n.rrsets.has(TYPE.AAAA);
      const wc = wildcardFor(zone, name);
      return wc !== null && !wc.occluded && (wc.rrsets.has(TYPE.A) || wc.rrsets.has(TYPE.AAAA));
    };
    /** The zone cut or DNAME node at or above `name` (strictly below the apex, or the apex DNAME). */
    const hiddenBy = (name: Name): { node: ZoneNode; dname: boolean } | null => {
      const offs = labelOffsets(name);
      let node = apex;
      if (apex.rrsets.has(TYPE.DNAME) && !nameEquals(name, origin)) return { node: apex, dname: true };
      for (let i = offs.length - originLabels - 1; i >= 0; i--) {
        const child = node.children.find(name, offs[i]!);
        if (!child) return null;
        node = child;
        if (node.cut) return { node, dname: false };
        if (node.rrsets.has(TYPE.DNAME) && i > 0) return { node, dname: true };
      }
      return null;
    };
    walk(apex, (node) => {
      if (node.occluded) return;
      for (const set of node.rrsets.values()) {
        const type = set.type;
        if (type !== TYPE.NS && type !== TYPE.MX && type !== TYPE.SRV) continue;
        const setPos = firstPos.get(set) ?? filePos;
        const tn = typeToText(type);
        const positions = recPos.get(set);
        const rdatas = set.rdatas;
        for (let k = 0; k < rdatas.length; k++) {
          const pos = positions?.[k] ?? setPos;
          const target = rdataTarget(type, rdatas[k]!);
          if (!target) continue;
          if (type === TYPE.SRV && target.length === 1) continue; // "." = service not available
          if (type === TYPE.MX && target.length === 1) continue; // RFC 7505 null MX
          if (type !== TYPE.SRV && addressLike(target, isSubdomainOf(target, origin) ? originLabels : 0))
            continue; // reported when the record was added
          if (!isSubdomainOf(target, origin)) continue;
          const tnode = findNode(zone, target);
          if (tnode?.rrsets.has(TYPE.CNAME)) {
            warn(
              'POPDNS_W_TARGET_IS_CNAME',
              `${tn} target ${rel(target)} of ${rel(node.name)} is a CNAME (RFC 2181 §10.3)`,
              pos,
            );
            continue;
          }
          if (hasAddress(target) || !addressesComplete) continue;
          const hidden = hiddenBy(target);
          // Below a DNAME the name is not in this zone (RFC 6672 §2.4): the resolver follows the DNAME.
          if (hidden?.dname) continue;
          if (type !== TYPE.NS) {
            // Below a zone cut the addresses live in the child zone.
            if (hidden) continue;
            warn(
              'POPDNS_W_NO_ADDRESS',
              `${tn} '${nameToText(target)}' of ${rel(node.name)} has no address records (A or AAAA)`,
              pos,
            );
          } else if (node === apex) {
            // The zone's own name servers must be reachable (BIND refuses this too).
            err(
              'POPDNS_E_MISSING_GLUE',
              hidden
                ? `NS target ${rel(target)} of the apex is below the delegation ${rel(hidden.node.name)} and has no glue A/AAAA`
                : `NS target ${rel(target)} of the apex is inside the zone but has no A/AAAA records`,
              pos,
            );
          } else if (isSubdomainOf(target, node.name)) {
            // RFC 9471: glue for a name below the delegation itself is required.
            err(
              'POPDNS_E_MISSING_GLUE',
              `delegation ${rel(node.name)} has NS ${rel(target)} below it but no glue A/AAAA for it`,
              pos,
            );
          } else if (hidden) {
            // Sibling glue is optional (RFC 9471 §2.2): the resolver asks the other delegation.
            warn(
              'POPDNS_W_SIBLING_GLUE',
              `delegation ${rel(node.name)} has NS ${rel(target)} below the delegation ${rel(hidden.node.name)}, with no glue for it (optional; resolvers will follow ${rel(hidden.node.name)})`,
              pos,
            );
          } else {
            warn(
              'POPDNS_W_LAME_DELEGATION',
              `delegation ${rel(node.name)} has NS ${rel(target)}, which is in this zone but has no address records (A or AAAA): a lame delegation`,
              pos,
            );
          }
        }
      }
    });

    const all = [...parserDiagnostics, ...diagnostics];
    const failed = all.some((d) => d.severity === 'error');
    return { zone: failed ? null : zone, diagnostics: all };
  };
  return { add, finish };
}

/** Types whose RDATA holds a target name, checked for relative names that look absolute. */
const TARGET_TYPES = new Set<number>([
  TYPE.NS,
  TYPE.CNAME,
  TYPE.DNAME,
  TYPE.PTR,
  TYPE.MX,
  TYPE.SRV,
  TYPE.SVCB,
  TYPE.HTTPS,
]);

/** The wildcard node `*.<closest encloser>` that would synthesize `name`, if there is one. */
export function wildcardFor(zone: { apex: ZoneNode; originLabels: number }, name: Name): ZoneNode | null {
  const offs = labelOffsets(name);
  let node = zone.apex;
  for (let i = offs.length - zone.originLabels - 1; i >= 0; i--) {
    const child = node.children.find(name, offs[i]!);
    if (!child) return node.children.get('*') ?? null;
    node = child;
  }
  return null;
}

/** A stand-in for a zone that is configured but has no servable version: every query gets SERVFAIL. */
export function unavailableZone(originText: string): Zone {
  const origin = nameFromText(originText);
  const soa: RRset = { owner: origin, type: TYPE.SOA, class: CLASS.IN, ttl: 0, rdatas: [] };
  return {
    origin,
    originText: nameToText(origin),
    file: '',
    serial: 0,
    recordCount: 0,
    apex: new ZoneNode('', null, origin),
    soa,
    negativeSoa: soa,
    originLabels: labelOffsets(origin).length,
    servfail: true,
  };
}

/** Negative-answer TTL of the SOA (RFC 2308 §3): min(SOA TTL, SOA MINIMUM). */
export function negativeTtl(soa: RRset): number {
  const rd = soa.rdatas[0];
  if (!rd || rd.length < 4) return soa.ttl;
  const minimum = new DataView(rd.buffer, rd.byteOffset + rd.length - 4).getUint32(0);
  return Math.min(soa.ttl, minimum);
}

/**
 * Makes `soa` (the apex SOA RRset) the zone's SOA: `zone.soa`, the negative-answer copy with TTL =
 * min(SOA TTL, MINIMUM) (RFC 2308 §3), and `zone.serial` from its RDATA (RFC 1035 §3.3.13).
 */
export function setZoneSoa(zone: Zone, soa: RRset): void {
  zone.soa = soa;
  zone.negativeSoa = {
    owner: soa.owner,
    type: TYPE.SOA,
    class: CLASS.IN,
    ttl: negativeTtl(soa),
    rdatas: soa.rdatas,
  };
  const rd = soa.rdatas[0]!;
  zone.serial = rd.length >= 20 ? new DataView(rd.buffer, rd.byteOffset + rd.length - 20).getUint32(0) : 0;
}
