/**
 * A zone version as transfer data: its RRsets in trie order (streamed, never copied), and the
 * difference between two versions as removed and added records (RFC 1995's changeset). Both walk
 * the immutable tries a reload swaps in, so a transfer or a diff keeps the version it started with.
 */
import { CLASS, TYPE } from '../wire/constants.js';
import type { WireRRset } from '../wire/message.js';
import type { Name } from '../wire/name.js';
import { SortedChain } from '../zone/chain.js';
import type { Zone, ZoneNode } from '../zone/zone.js';

/** One resource record of a changeset (class IN unless given). */
export interface XfrRecord {
  owner: Name;
  type: number;
  class?: number;
  ttl: number;
  rdata: Uint8Array;
}

/** The RRSIGs over an RRset as an RRset of their own (owner and TTL of the covered set). */
function sigSet(owner: Name, cls: number, ttl: number, sigs: Uint8Array[]): WireRRset {
  return { owner, type: TYPE.RRSIG, class: cls, ttl, rdatas: sigs };
}

/**
 * Every RRset of the zone except the apex SOA itself (its RRSIGs included), RRSIGs after the set they
 * cover, NSEC3 records (kept beside the trie) last. Depth first with an explicit stack: no recursion
 * and no list of the zone is built. `every` nodes it yields `null` so a caller can pause.
 */
export function* zoneRRsets(zone: Zone, every = 512): Generator<WireRRset | null, void, void> {
  const stack: ZoneNode[] = [zone.apex];
  let n = 0;
  while (stack.length > 0) {
    const node = stack.pop()!;
    const owner = node.name;
    for (const set of node.rrsets.values()) {
      if (node === zone.apex && set.type === TYPE.SOA) {
        if (set.sigs && set.sigs.length > 0) yield sigSet(owner, set.class, set.ttl, set.sigs);
        continue;
      }
      yield { owner, type: set.type, class: set.class, ttl: set.ttl, rdatas: set.rdatas };
      if (set.sigs && set.sigs.length > 0) yield sigSet(owner, set.class, set.ttl, set.sigs);
    }
    const kids = node.children.values();
    for (let i = kids.length - 1; i >= 0; i--) if (kids[i]) stack.push(kids[i]!);
    if (++n % every === 0) yield null;
  }
  const nsec3 = zone.dnssec?.nsec3;
  if (nsec3) {
    const apexParams = zone.apex.rrsets.get(TYPE.NSEC3PARAM);
    if (!apexParams && nsec3.params.rdatas.length > 0) {
      const p = nsec3.params;
      yield { owner: p.owner, type: p.type, class: p.class, ttl: p.ttl, rdatas: p.rdatas };
      if (p.sigs && p.sigs.length > 0) yield sigSet(p.owner, p.class, p.ttl, p.sigs);
    }
    for (const { nsec3: s } of nsec3.chain) {
      yield { owner: s.owner, type: s.type, class: s.class, ttl: s.ttl, rdatas: s.rdatas };
      if (s.sigs && s.sigs.length > 0) yield sigSet(s.owner, s.class, s.ttl, s.sigs);
    }
  }
}

/** The zone's SOA as one record. */
export function soaRecord(zone: Zone): XfrRecord {
  return {
    owner: zone.origin,
    type: TYPE.SOA,
    class: CLASS.IN,
    ttl: zone.soa.ttl,
    rdata: zone.soa.rdatas[0]!,
  };
}

/** A changeset between two versions: the old and new SOA records plus what went and what came. */
export interface ZoneDiff {
  removed: XfrRecord[];
  added: XfrRecord[];
}

const key = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

function sameList(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

/** Adds the record-level difference of two RDATA lists of one owner/type to the diff. */
function diffRdatas(
  owner: Name,
  type: number,
  oldTtl: number,
  oldR: readonly Uint8Array[],
  newTtl: number,
  newR: readonly Uint8Array[],
  d: ZoneDiff,
): void {
  if (oldTtl === newTtl && sameList(oldR, newR)) return;
  if (oldTtl !== newTtl) {
    // A TTL change is a delete of every old record and an add of every new one (RFC 1995 has no other way).
    for (const r of oldR) d.removed.push({ owner, type, ttl: oldTtl, rdata: r });
    for (const r of newR) d.added.push({ owner, type, ttl: newTtl, rdata: r });
    return;
  }
  const olds = new Set(oldR.map(key));
  const news = new Set(newR.map(key));
  for (const r of oldR) if (!news.has(key(r))) d.removed.push({ owner, type, ttl: oldTtl, rdata: r });
  for (const r of newR) if (!olds.has(key(r))) d.added.push({ owner, type, ttl: newTtl, rdata: r });
}

/** Scratch for labelBytes: a length byte and up to 63 label bytes. */
const LABEL = new Uint8Array(64);

/** A node's label as a length byte and its bytes, in a reused scratch buffer (valid until the next call). */
function labelBytes(label: string): Uint8Array {
  LABEL[0] = label.length;
  for (let i = 0; i < label.length; i++) LABEL[1 + i] = label.charCodeAt(i);
  return LABEL;
}

/**
 * The record-level difference of two nodes with the same owner. The owner name (built from the labels
 * up to the apex for most nodes) is only made when something differs.
 */
function diffNode(o: ZoneNode, nw: ZoneNode, apex: boolean, d: ZoneDiff): void {
  const before = d.removed.length + d.added.length;
  let owner: Name | null = null;
  const name = (): Name => (owner ??= nw.name);
  for (const so of o.rrsets.values()) {
    const sn = nw.rrsets.get(so.type);
    if (sn && sn.ttl === so.ttl && sameList(so.rdatas, sn.rdatas) && sameList(so.sigs ?? [], sn.sigs ?? []))
      continue;
    const own = name();
    if (!(apex && so.type === TYPE.SOA))
      diffRdatas(own, so.type, so.ttl, so.rdatas, sn?.ttl ?? 0, sn?.rdatas ?? [], d);
    diffRdatas(own, TYPE.RRSIG, so.ttl, so.sigs ?? [], sn?.ttl ?? 0, sn?.sigs ?? [], d);
  }
  if (
    nw.rrsets.size !== o.rrsets.size ||
    d.removed.length + d.added.length !== before ||
    nw.rrsets.size > 1
  ) {
    for (const sn of nw.rrsets.values()) {
      if (o.rrsets.has(sn.type)) continue;
      const own = name();
      if (!(apex && sn.type === TYPE.SOA)) diffRdatas(own, sn.type, 0, [], sn.ttl, sn.rdatas, d);
      diffRdatas(own, TYPE.RRSIG, 0, [], sn.ttl, sn.sigs ?? [], d);
    }
  }
}

function allOf(node: ZoneNode, into: XfrRecord[], apex: ZoneNode | null): void {
  const stack = [node];
  while (stack.length > 0) {
    const n = stack.pop()!;
    const owner = n.name;
    for (const set of n.rrsets.values()) {
      if (n !== apex || set.type !== TYPE.SOA)
        for (const r of set.rdatas) into.push({ owner, type: set.type, ttl: set.ttl, rdata: r });
      if (set.sigs) for (const r of set.sigs) into.push({ owner, type: TYPE.RRSIG, ttl: set.ttl, rdata: r });
    }
    for (const c of n.children.values()) if (c) stack.push(c);
  }
}

/**
 * The difference between two versions of a zone (the SOAs are not in it: the changeset carries them
 * apart). Walks both tries side by side — nodes matched by label — so its cost is the size of the
 * zone, not of a sort; yields `null` every few hundred nodes so a caller can let queries through.
 * Returns null as soon as the diff grows past `maxRecords` (the caller then keeps no history: an
 * AXFR is cheaper).
 */
export function* diffZones(
  oldZ: Zone,
  newZ: Zone,
  maxRecords: number,
): Generator<null, ZoneDiff | null, void> {
  const d: ZoneDiff = { removed: [], added: [] };
  const stack: [ZoneNode, ZoneNode][] = [[oldZ.apex, newZ.apex]];
  let n = 0;
  while (stack.length > 0) {
    const [o, nw] = stack.pop()!;
    // Versions made by copy-on-write edits (zone/edit.ts: updates, journal replay, IXFR) share every
    // node off the paths to the changes, and a shared node is the same subtree in both.
    if (o === nw) continue;
    diffNode(o, nw, o === oldZ.apex, d);
    const newKids = nw.children;
    const candidates = newKids.maybeChangedVersus(o.children);
    if (candidates !== null) {
      // A wide node's children as an overlay: only the children the overlays hold can differ.
      const seen = new Set<string>();
      for (const x of candidates) {
        const lower = x.label.toLowerCase();
        if (seen.has(lower)) continue;
        seen.add(lower);
        const lb = labelBytes(x.label);
        const oc = o.children.find(lb, 0);
        const nc = newKids.find(lb, 0);
        if (oc && nc && oc.label === nc.label) stack.push([oc, nc]);
        else {
          if (oc) allOf(oc, d.removed, null);
          if (nc) allOf(nc, d.added, null);
        }
      }
      if (d.removed.length + d.added.length > maxRecords) return null;
      if (++n % 256 === 0) yield null;
      continue;
    }
    // Children matched by label bytes (no allocation per lookup); the new side is only walked for
    // additions when some of its children had no match.
    let matched = 0;
    for (const oc of o.children.values()) {
      if (!oc) continue;
      const nc = newKids.size > 0 ? newKids.find(labelBytes(oc.label), 0) : undefined;
      if (nc && nc.label === oc.label) {
        matched++;
        stack.push([oc, nc]);
      } else allOf(oc, d.removed, null);
    }
    if (matched < newKids.size) {
      for (const nc of newKids.values()) {
        if (!nc) continue;
        const oc = o.children.size > 0 ? o.children.find(labelBytes(nc.label), 0) : undefined;
        if (!oc || oc.label !== nc.label) allOf(nc, d.added, null);
      }
    }
    if (d.removed.length + d.added.length > maxRecords) return null;
    if (++n % 256 === 0) yield null;
  }
  // NSEC3 records live beside the trie. Two versions of one chain share most of its chunks
  // (zone/chain.ts); only the entries of the chunks they do not share can differ.
  const oc = oldZ.dnssec?.nsec3?.chain;
  const nc = newZ.dnssec?.nsec3?.chain;
  if ((oc?.length ?? 0) > 0 || (nc?.length ?? 0) > 0) {
    const both = oc && nc ? SortedChain.unshared(oc, nc) : null;
    const on = both ? both.onlyA : (oc?.toArray() ?? []);
    const nn = both ? both.onlyB : (nc?.toArray() ?? []);
    const byOwner = new Map(on.map((e) => [key(e.nsec3.owner), e.nsec3]));
    const seen = new Set<string>();
    for (const { nsec3: s } of nn) {
      const k = key(s.owner);
      seen.add(k);
      const o = byOwner.get(k);
      diffRdatas(s.owner, s.type, o?.ttl ?? 0, o?.rdatas ?? [], s.ttl, s.rdatas, d);
      diffRdatas(s.owner, TYPE.RRSIG, o?.ttl ?? 0, o?.sigs ?? [], s.ttl, s.sigs ?? [], d);
    }
    for (const { nsec3: o } of on) {
      if (seen.has(key(o.owner))) continue;
      diffRdatas(o.owner, o.type, o.ttl, o.rdatas, 0, [], d);
      diffRdatas(o.owner, TYPE.RRSIG, o.ttl, o.sigs ?? [], 0, [], d);
    }
    if (d.removed.length + d.added.length > maxRecords) return null;
  }
  return d;
}
