/**
 * The next version of a zone made from the current one plus a change, at a cost proportional to the
 * change times the depth of the trie (dynamic updates, journal replay: src/update/engine.ts).
 *
 * Copy-on-write by path copying: a `ZoneEdit` starts a new `Zone` whose apex is a copy of the old
 * apex; every node the change reaches is copied together with the nodes from the apex down to it
 * (`copyNode`: same RRset objects, its own children index), so the new version shares every node and
 * RRset it does not change with the old one, and nothing reachable from the old version is ever
 * written. That is why copy-on-write was chosen over mutating the served version in place under a
 * reader pin count: the old version stays whole for as long as anyone holds it — a query in flight,
 * an AXFR streaming it across event-loop turns (xfr/axfr.ts), the secondary store writer, diffZones,
 * the update service's own `prev` (re-signing compares the two) — with no pin to take, forget or
 * wait for, and a rejected update is simply dropped (the served version was never touched). The
 * price: a copied node with many children copies its children index (a flat list and two typed
 * arrays: a few milliseconds at the apex of a million-name zone), and RRsets are never mutated once
 * published (changed ones are new objects).
 *
 * `finish` runs the zone builder's semantic checks (zone.ts zoneBuilder.finish) on what changed —
 * the touched names, their ancestors, and the subtrees whose delegation/DNAME status changed — and
 * reaches the accept/reject outcome a full rebuild would (errors only: warnings of a rebuild are
 * dropped by the update engine too). Checks that are not local (a zone that would turn pre-signed,
 * RRSIG/NSEC/NSEC3 records in the change) are the caller's to route to a full rebuild instead.
 */
import { MAX_TTL, TYPE, typeToText } from '../wire/constants.js';
import {
  isSubdomainOf,
  labelOffsets,
  type Name,
  nameEquals,
  nameKey,
  nameToRelativeText,
  nameToText,
} from '../wire/name.js';
import { rdataTarget } from '../wire/rdata.js';
import { addressLike } from './namechecks.js';
import {
  addChild,
  addRdata,
  copyNode,
  findNode,
  newRRset,
  type RRset,
  setZoneSoa,
  wildcardFor,
  type Zone,
  ZoneNode,
} from './zone.js';

/** The copied (unpublished, writable) nodes of each version a ZoneEdit made, until it is published. */
const OWNED = new WeakMap<Zone, Set<ZoneNode>>();

/** A label's bytes (length byte first, at `off` in `name`) as latin1 text, in its own case. */
function labelAt(name: Name, off: number): string {
  return Buffer.from(name.buffer, name.byteOffset + off + 1, name[off]!).toString('latin1');
}

/** A new version of a zone in the making: see the module comment. */
export class ZoneEdit {
  /** The new version: shares everything with `base` that was not changed through this edit. */
  readonly zone: Zone;
  /** Each name a change reached (lower-case key → name), for the checks and the re-signer. */
  readonly touched = new Map<string, Name>();
  private readonly owned = new Set<ZoneNode>();
  /** The first name put outside the zone (an error of finish). */
  private outside: Name | null = null;
  /** For each copied node: whether its children were hidden (cut, occluded, DNAME) in `base`. */
  private readonly hidBelow = new Map<ZoneNode, boolean>();

  /**
   * Starts the next version of `base`. `chain`: `base` is a zone popdns signs, whose NSEC records
   * live in the trie (they do not keep a name in the zone; the re-signer remakes them). The new
   * version has no `dnssec` until the re-signer (update/resign.ts) gives it one.
   */
  constructor(
    readonly base: Zone,
    private readonly chain = false,
  ) {
    const apex = this.copy(base.apex, null);
    this.zone = {
      origin: base.origin,
      originText: base.originText,
      file: base.file,
      serial: base.serial,
      recordCount: base.recordCount,
      apex,
      soa: base.soa,
      negativeSoa: base.negativeSoa,
      originLabels: base.originLabels,
    };
    OWNED.set(this.zone, this.owned);
  }

  private copy(node: ZoneNode, parent: ZoneNode | null): ZoneNode {
    const c = copyNode(node, parent);
    this.owned.add(c);
    this.hidBelow.set(c, node.occluded || node.cut || node.rrsets.has(TYPE.DNAME));
    return c;
  }

  /** The node of `name` in the new version as it stands (read only), or null. */
  get(name: Name): ZoneNode | null {
    return findNode(this.zone, name);
  }

  /**
   * The node of `name` in the new version, writable: copied (with the path above it) if it is still
   * shared with `base`; created with any empty non-terminals above it when `create` is set.
   */
  node(name: Name, create: boolean): ZoneNode | null {
    return writableNode(this.zone, name, create, (n, p) => this.copy(n, p));
  }

  /** Puts an RRset (replacing the one of that type): a new RRset object, `rdatas` non-empty. */
  put(name: Name, type: number, ttl: number, rdatas: readonly Uint8Array[]): void {
    if (!isSubdomainOf(name, this.zone.origin)) {
      this.outside ??= name;
      return;
    }
    // The same content again (a duplicate add): the RRset stays the very object it was, signatures
    // and all, and nothing is copied. Content back to what `base` had (deleted and added again):
    // `base`'s RRset object again, so the changeset (empty for it) and the signatures agree.
    const have = this.get(name)?.rrsets.get(type);
    if (have && have.ttl === ttl && sameRdatas(have.rdatas, rdatas)) return;
    const was = findNode(this.base, name)?.rrsets.get(type);
    const node = this.node(name, true)!;
    let set: RRset;
    if (was && was.ttl === ttl && sameRdatas(was.rdatas, rdatas)) set = was;
    else {
      set = newRRset(node, type, ttl, rdatas[0]!);
      for (let i = 1; i < rdatas.length; i++) addRdata(set, rdatas[i]!);
    }
    this.zone.recordCount += rdatas.length - (node.rrsets.get(type)?.rdatas.length ?? 0);
    node.rrsets.set(type, set);
    this.touched.set(nameKey(name), name);
  }

  /** Deletes the RRset of `type` at `name`, if there is one. */
  drop(name: Name, type: number): void {
    if (!isSubdomainOf(name, this.zone.origin)) return;
    this.touched.set(nameKey(name), name);
    if (!this.get(name)?.rrsets.has(type)) return;
    const node = this.node(name, false)!;
    this.zone.recordCount -= node.rrsets.get(type)!.rdatas.length;
    node.rrsets.delete(type);
  }

  /**
   * Completes the version: names left without data are taken out (with empty non-terminals above
   * them), delegation/occlusion flags are set where they changed, the SOA fields follow the apex
   * SOA, and the zone builder's checks run on what changed. Returns the version, or the first error
   * (`POPDNS_E_*` text as a rebuild would give).
   */
  finish(): Zone | string {
    const zone = this.zone;
    const apex = zone.apex;
    // 1. Names without data (an NSEC of a signed zone does not count) leave the trie.
    for (const name of this.touched.values()) {
      let node = this.get(name);
      if (!node || node === apex) continue;
      node = this.node(name, false)!;
      while (node !== apex && node.children.size === 0 && this.empty(node)) {
        node.rrsets.delete(TYPE.NSEC);
        const parent: ZoneNode = node.parent!;
        parent.children.delete(node);
        node = parent;
      }
    }
    // 2. Flags, shallowest copied nodes first: a node whose children's hiding changed has its whole
    // subtree copied and marked again (what a full rebuild's mark() would give).
    const remarked: ZoneNode[] = [];
    const nodes = [...this.owned].filter((n) => n === apex || this.attached(n));
    const depth = (n: ZoneNode): number => {
      let d = 0;
      for (let p = n.parent; p; p = p.parent) d++;
      return d;
    };
    nodes.sort((a, b) => depth(a) - depth(b));
    for (const node of nodes) {
      if (node !== apex) {
        const p = node.parent!;
        const occluded = p.occluded || p.cut || p.rrsets.has(TYPE.DNAME);
        const cut = !occluded && node.rrsets.has(TYPE.NS);
        if (occluded !== node.occluded || cut !== node.cut) remarked.push(node);
        node.occluded = occluded;
        node.cut = cut;
      }
      const hides = node.occluded || node.cut || node.rrsets.has(TYPE.DNAME);
      if (hides !== this.hidBelow.get(node) && node.children.size > 0) this.remark(node, remarked);
    }
    // 3. The SOA.
    const soa = apex.rrsets.get(TYPE.SOA);
    if (soa) setZoneSoa(zone, soa);
    // 4. The checks.
    const e = this.check(remarked);
    if (e !== null) return e;
    return zone;
  }

  /** A node reachable from the new apex (not cut off by a prune in step 1). */
  private attached(n: ZoneNode): boolean {
    for (let c = n; c.parent; c = c.parent)
      if (c.parent.children.find(labelBytes(c.label), 0) !== c) return false;
    return true;
  }

  private empty(node: ZoneNode): boolean {
    const size = node.rrsets.size;
    return size === 0 || (this.chain && size === 1 && node.rrsets.has(TYPE.NSEC));
  }

  /** Copies and marks every node below `node` again (zone.ts mark()); each node whose flags changed to `out`. */
  private remark(node: ZoneNode, out: ZoneNode[]): void {
    const below = node.occluded || node.cut || node.rrsets.has(TYPE.DNAME);
    for (const c of [...node.children.values()]) {
      let child = c;
      if (!this.owned.has(child)) {
        child = this.copy(c, node);
        node.children.replace(c, child);
      }
      const cut = !below && child.rrsets.has(TYPE.NS);
      if (child.occluded !== below || child.cut !== cut) out.push(child);
      child.occluded = below;
      child.cut = cut;
      // Marked here with its final flags (and its subtree below): nothing left to redo for it.
      this.hidBelow.set(child, child.occluded || cut || child.rrsets.has(TYPE.DNAME));
      this.remark(child, out);
    }
  }

  /**
   * The zone builder's error checks (zoneBuilder.add and finish), on the touched names, their
   * ancestors and the re-marked nodes. Null when the version is valid.
   */
  private check(remarked: readonly ZoneNode[]): string | null {
    const zone = this.zone;
    const apex = zone.apex;
    const origin = zone.origin;
    const rel = (n: Name): string => nameToRelativeText(n, origin);
    if (this.outside)
      return `POPDNS_E_OUT_OF_ZONE: ${nameToText(this.outside)} is outside the zone ${zone.originText}`;
    if (!apex.rrsets.has(TYPE.SOA))
      return `POPDNS_E_NO_SOA: zone ${zone.originText} has no SOA record at the apex`;
    if (!apex.rrsets.has(TYPE.NS))
      return `POPDNS_E_NO_APEX_NS: zone ${zone.originText} has no NS records at the apex`;
    if (apex.rrsets.has(TYPE.CNAME)) return 'POPDNS_E_CNAME_AT_APEX: a CNAME at the zone apex is not allowed';
    /** NS sets to check for glue: the touched names' nodes and ancestors, and the re-marked nodes. */
    const nsNodes = new Set<ZoneNode>(remarked);
    nsNodes.add(apex);
    for (const name of this.touched.values()) {
      const node = this.get(name);
      // Ancestors (existing ones) of the name: an NS there may point at it (glue below a cut).
      const offs = labelOffsets(name);
      let n: ZoneNode | undefined = apex;
      for (let i = offs.length - zone.originLabels - 1; n && i >= 0; i--) {
        n = n.children.find(name, offs[i]!);
        if (n) nsNodes.add(n);
      }
      if (!node) continue;
      for (const set of node.rrsets.values()) {
        if (set.ttl < 0 || set.ttl > MAX_TTL)
          return `POPDNS_E_BAD_TTL: TTL ${set.ttl} is outside 0..2147483647`;
        if (set.type === TYPE.SOA && node !== apex)
          return `POPDNS_E_SOA_NOT_AT_APEX: SOA at ${rel(name)}; the SOA belongs at the apex`;
      }
      if ((apex.rrsets.get(TYPE.SOA)?.rdatas.length ?? 0) > 1)
        return 'POPDNS_E_SOA_MULTIPLE: more than one SOA record';
      const cname = node.rrsets.get(TYPE.CNAME);
      if (cname && cname.rdatas.length > 1)
        return `POPDNS_E_CNAME_MULTIPLE: ${rel(name)} has more than one CNAME`;
      if ((node.rrsets.get(TYPE.DNAME)?.rdatas.length ?? 0) > 1)
        return `POPDNS_E_DNAME_MULTIPLE: ${rel(name)} has more than one DNAME`;
      if (cname && node !== apex) {
        const others = [...node.rrsets.keys()].filter(
          (t) => t !== TYPE.CNAME && t !== TYPE.RRSIG && t !== TYPE.NSEC,
        );
        if (others.length > 0)
          return `POPDNS_E_CNAME_AND_OTHER: ${rel(name)} has a CNAME and other data (${others.map(typeToText).join(', ')})`;
      }
    }
    for (const node of nsNodes) {
      const e = this.checkNs(node);
      if (e !== null) return e;
    }
    return null;
  }

  /** zoneBuilder.finish's glue errors for the NS RRset at `node` (POPDNS_E_MISSING_GLUE). */
  private checkNs(node: ZoneNode): string | null {
    const zone = this.zone;
    const origin = zone.origin;
    const apex = zone.apex;
    const ns = node.rrsets.get(TYPE.NS);
    if (!ns || node.occluded) return null;
    const rel = (n: Name): string => nameToRelativeText(n, origin);
    for (const rd of ns.rdatas) {
      const target = rdataTarget(TYPE.NS, rd);
      if (!target) continue;
      if (addressLike(target, isSubdomainOf(target, origin) ? zone.originLabels : 0)) continue;
      if (!isSubdomainOf(target, origin)) continue;
      const tnode = findNode(zone, target);
      if (tnode?.rrsets.has(TYPE.CNAME)) continue;
      if (hasAddress(zone, target)) continue;
      const hidden = hiddenBy(zone, target);
      if (hidden?.dname) continue;
      if (node === apex)
        return hidden
          ? `POPDNS_E_MISSING_GLUE: NS target ${rel(target)} of the apex is below the delegation ${rel(hidden.node.name)} and has no glue A/AAAA`
          : `POPDNS_E_MISSING_GLUE: NS target ${rel(target)} of the apex is inside the zone but has no A/AAAA records`;
      if (isSubdomainOf(target, node.name))
        return `POPDNS_E_MISSING_GLUE: delegation ${rel(node.name)} has NS ${rel(target)} below it but no glue A/AAAA for it`;
    }
    return null;
  }
}

/** The same RDATAs byte for byte, in any order (an RRset holds no duplicates). */
function sameRdatas(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (Buffer.compare(x, b[i]!) === 0) continue;
    if (!b.some((y) => Buffer.compare(x, y) === 0)) return false;
  }
  return true;
}

/** Scratch: a label as a length byte and its bytes (Children.find's form). */
const LABEL = new Uint8Array(64);
function labelBytes(label: string): Uint8Array {
  LABEL[0] = label.length;
  for (let i = 0; i < label.length; i++) LABEL[i + 1] = label.charCodeAt(i);
  return LABEL;
}

/** As zone.ts finish's hasAddress: an A/AAAA at the name, or at the wildcard that would make it. */
function hasAddress(zone: Zone, name: Name): boolean {
  const n = findNode(zone, name);
  if (n) return n.rrsets.has(TYPE.A) || n.rrsets.has(TYPE.AAAA);
  const wc = wildcardFor(zone, name);
  return wc !== null && !wc.occluded && (wc.rrsets.has(TYPE.A) || wc.rrsets.has(TYPE.AAAA));
}

/** As zone.ts finish's hiddenBy: the zone cut or DNAME node at or above `name`. */
function hiddenBy(zone: Zone, name: Name): { node: ZoneNode; dname: boolean } | null {
  const offs = labelOffsets(name);
  const apex = zone.apex;
  let node = apex;
  if (apex.rrsets.has(TYPE.DNAME) && !nameEquals(name, zone.origin)) return { node: apex, dname: true };
  for (let i = offs.length - zone.originLabels - 1; i >= 0; i--) {
    const child = node.children.find(name, offs[i]!);
    if (!child) return null;
    node = child;
    if (node.cut) return { node, dname: false };
    if (node.rrsets.has(TYPE.DNAME) && i > 0) return { node, dname: true };
  }
  return null;
}

/**
 * The node of `name` in `zone`, writable: nodes still shared with an older version are copied by
 * `copy` (from the apex down); created (with empty non-terminals) when `create` is set.
 */
function writableNode(
  zone: Zone,
  name: Name,
  create: boolean,
  copy: (n: ZoneNode, parent: ZoneNode) => ZoneNode,
): ZoneNode | null {
  const owned = OWNED.get(zone);
  if (!owned) throw new Error(`internal: zone ${zone.originText} is not a version being made`);
  const offs = labelOffsets(name);
  let node = zone.apex;
  for (let i = offs.length - zone.originLabels - 1; i >= 0; i--) {
    const off = offs[i]!;
    let child = node.children.find(name, off);
    if (!child) {
      if (!create) return null;
      child = new ZoneNode(labelAt(name, off), node, null);
      owned.add(child);
      addChild(node, child);
    } else if (!owned.has(child)) {
      const c = copy(child, node);
      node.children.replace(child, c);
      child = c;
    }
    node = child;
  }
  return node;
}

/**
 * For the re-signer (update/resign.ts): the node of `name` in `zone`, a version a ZoneEdit made that
 * is not published yet, made writable (copied from the apex down if still shared). Null if absent.
 */
export function editableNode(zone: Zone, name: Name): ZoneNode | null {
  const owned = OWNED.get(zone);
  return writableNode(zone, name, false, (n, p) => {
    const c = copyNode(n, p);
    owned!.add(c);
    return c;
  });
}

/** Is `zone` a version a ZoneEdit made (so editableNode works on it)? */
export function isEdited(zone: Zone): boolean {
  return OWNED.has(zone);
}
