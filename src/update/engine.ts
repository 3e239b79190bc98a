/**
 * The RFC 2136 engine: pure logic, no I/O. Takes a zone version and a parsed UPDATE, checks the zone
 * section (§3.1), the prerequisites (§2.4, §3.2), the update section's prescan (§3.4.1) and the key's
 * policy, applies the updates (§3.4.2) to the next version — made incrementally by path copying
 * (zone/edit.ts: cost of the change times the trie depth, the zone builder's checks run on what
 * changed) or, where a check is zone-wide, rebuilt whole with zoneBuilder — and returns the new
 * version and the changeset. All or nothing: on any failure the served zone is untouched (it is
 * never written) and the result carries the RFC's rcode.
 */
import { CLASS, RCODE, TYPE, typeToText } from '../wire/constants.js';
import {
  readName,
  isSubdomainOf,
  labelCount,
  type Name,
  nameKey,
  nameToRelativeText,
  nameToText,
} from '../wire/name.js';
import { rdataEquals, rdataToText } from '../wire/rdata.js';
import { readRdata, soaSerial, type WireRecord } from '../wire/records.js';
import { serialNewer } from '../zone/serial.js';
import { formatDiagnostic } from '../zone/types.js';
import { ZoneEdit } from '../zone/edit.js';
import { walk, type Zone, zoneBuilder } from '../zone/zone.js';
import type { XfrRecord } from '../xfr/zonedata.js';
import { zoneRRsets } from '../xfr/zonedata.js';
import { matchPattern, type UpdateRule } from './config.js';
import { nextSerial } from './serial.js';

/** RFC 2136 §2.2 rcodes (beside RFC 1035's). */
export const UPDATE_RCODE = {
  NOERROR: RCODE.NOERROR,
  FORMERR: RCODE.FORMERR,
  SERVFAIL: RCODE.SERVFAIL,
  NXDOMAIN: RCODE.NXDOMAIN,
  NOTIMP: RCODE.NOTIMP,
  REFUSED: RCODE.REFUSED,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
} as const;

const RCODE_NAMES = new Map<number, string>(Object.entries(UPDATE_RCODE).map(([k, v]) => [v, k]));
/** NOERROR, NXRRSET, … for logs and metrics. */
export function updateRcodeText(rc: number): string {
  return RCODE_NAMES.get(rc) ?? `RCODE${rc}`;
}

/** A parsed UPDATE message (RFC 2136 §2): zone section, prerequisites, updates, additional data. */
export interface ParsedUpdate {
  id: number;
  /** The zone section's name, type and class (§2.3). */
  zone: { name: Name; type: number; class: number } | null;
  zoneCount: number;
  prereqs: WireRecord[];
  updates: WireRecord[];
}

/**
 * Decodes an UPDATE (opcode 5). Returns a string (the FORMERR reason) when the message does not
 * decode; compressed names in owners and RDATA are expanded.
 */
export function parseUpdate(msg: Uint8Array): ParsedUpdate | string {
  if (msg.length < 12) return 'message shorter than a DNS header';
  const u16 = (o: number): number => (msg[o]! << 8) | msg[o + 1]!;
  const counts = [u16(4), u16(6), u16(8), u16(10)];
  let p = 12;
  const name = (): Name => {
    const r = readName(msg, p);
    p = r.next;
    return r.name;
  };
  try {
    const zones: { name: Name; type: number; class: number }[] = [];
    for (let i = 0; i < counts[0]!; i++) {
      const n = name();
      if (p + 4 > msg.length) return 'zone section runs past the end of the message';
      zones.push({ name: n, type: u16(p), class: u16(p + 2) });
      p += 4;
    }
    const sections: WireRecord[][] = [[], [], []];
    for (let s = 0; s < 3; s++) {
      for (let i = 0; i < counts[s + 1]!; i++) {
        const owner = name();
        if (p + 10 > msg.length) return 'record runs past the end of the message';
        const type = u16(p);
        const klass = u16(p + 2);
        const ttl = ((msg[p + 4]! << 24) >>> 0) + (msg[p + 5]! << 16) + (msg[p + 6]! << 8) + msg[p + 7]!;
        const rdlen = u16(p + 8);
        p += 10;
        if (p + rdlen > msg.length) return 'RDATA runs past the end of the message';
        // Deletes and prerequisites carry empty RDATA (RFC 2136 §2.4, §2.5), whatever the type.
        const rdata = rdlen === 0 ? new Uint8Array(0) : readRdata(msg, type, p, rdlen);
        p += rdlen;
        sections[s]!.push({ owner, type, class: klass, ttl, rdata });
      }
    }
    if (p !== msg.length) return 'bytes after the last record';
    return {
      id: u16(0),
      zone: zones[0] ?? null,
      zoneCount: zones.length,
      prereqs: sections[0]!,
      updates: sections[1]!,
    };
  } catch (e) {
    return (e as Error).message;
  }
}

/** The outcome of applying an update. */
export interface UpdateResult {
  rcode: number;
  /** Why it failed (for the log line), or a note ("no change"). */
  reason?: string;
  /** The new zone version; absent when nothing changed or the update failed. */
  zone?: Zone;
  /** The changeset (RFC 1995 §4 order: old SOA first among removed, new SOA first among added). */
  removed: XfrRecord[];
  added: XfrRecord[];
}

/** One RRset of the working copy. */
interface Set_ {
  ttl: number;
  rdatas: Uint8Array[];
}
interface Owner {
  name: Name;
  sets: Map<number, Set_>;
}

/** What the update logic reads and writes: a working copy, or the next version being made. */
interface Store {
  /** The owner's RRsets (RRSIGs, and a signed zone's NSEC/NSEC3, left out); undefined if none. */
  get(name: Name): Owner | undefined;
  set(name: Name, type: number): Set_ | undefined;
  put(name: Name, type: number, set: Set_): void;
  drop(name: Name, type: number): void;
}

/**
 * The zone as a mutable map of owner (lower-case key) → type → RRset. The full-rebuild path
 * (zone-wide: O(zone) to make and to rebuild), kept for what the incremental path cannot check
 * locally (see needsFullRebuild) and as the reference of the differential tests.
 *
 * Signatures are not carried: a zone popdns signs is signed again after the update, a zone that
 * arrived signed refuses updates. RRSIG RRsets of an unsigned zone are: RRSIGs with no DNSKEY at the
 * apex, which the zone builder keeps in the tree as plain data (served in transfers, never in
 * answers; POPDNS_W_RRSIG_NO_DNSKEY). They are kept as they are, like every record the update does
 * not name, so this path gives what the incremental one (ZoneEdit, which shares them) gives. As
 * there, the update logic does not see them: `get` and `set` hide RRSIG (prerequisites, deletions
 * of a name's RRsets and the changeset leave them alone; RRSIG itself is not updatable, REFUSED).
 * Only a journal replay changes them (`raw`), when a changeset lists RRSIG records.
 */
class WorkingCopy implements Store {
  readonly owners = new Map<string, Owner>();

  static of(zone: Zone, chain = zone.dnssec !== undefined): WorkingCopy {
    const w = new WorkingCopy();
    w.put(zone.origin, TYPE.SOA, { ttl: zone.soa.ttl, rdatas: [...zone.soa.rdatas] });
    // A zone popdns signs: its NSEC/NSEC3 chain is the signer's to remake (src/update/resign.ts).
    for (const s of zoneRRsets(zone)) {
      if (s === null || s.type === TYPE.RRSIG) continue;
      if (chain && (s.type === TYPE.NSEC || s.type === TYPE.NSEC3)) continue;
      w.put(s.owner, s.type, { ttl: s.ttl, rdatas: [...s.rdatas] });
    }
    // The RRSIG RRsets in the tree (not the signatures kept beside their RRsets, `sigs`): an
    // unsigned zone's stray RRSIGs. (Signed zones hold none: attachPresigned and the signer take
    // them out of the tree.)
    if (zone.dnssec === undefined)
      walk(zone.apex, (node) => {
        const s = node.rrsets.get(TYPE.RRSIG);
        if (s) w.put(node.name, TYPE.RRSIG, { ttl: s.ttl, rdatas: [...s.rdatas] });
      });
    return w;
  }

  get(name: Name): Owner | undefined {
    const o = this.owners.get(nameKey(name));
    if (!o?.sets.has(TYPE.RRSIG)) return o;
    const sets = new Map([...o.sets].filter(([t]) => t !== TYPE.RRSIG));
    return sets.size > 0 ? { name: o.name, sets } : undefined;
  }

  set(name: Name, type: number): Set_ | undefined {
    return type === TYPE.RRSIG ? undefined : this.raw(name, type);
  }

  /** The RRset of `type` at `name`, RRSIG included (a journal replay's view). */
  raw(name: Name, type: number): Set_ | undefined {
    return this.owners.get(nameKey(name))?.sets.get(type);
  }

  put(name: Name, type: number, set: Set_): void {
    const k = nameKey(name);
    let o = this.owners.get(k);
    if (!o) {
      o = { name, sets: new Map() };
      this.owners.set(k, o);
    }
    o.sets.set(type, set);
  }

  drop(name: Name, type: number): void {
    const k = nameKey(name);
    const o = this.owners.get(k);
    if (!o) return;
    o.sets.delete(type);
    if (o.sets.size === 0) this.owners.delete(k);
  }
}

/**
 * The next version made incrementally (zone/edit.ts ZoneEdit: copy-on-write, cost of the change
 * times the trie depth), seen through the working copy's interface.
 */
class EditStore implements Store {
  readonly edit: ZoneEdit;
  private readonly chain: boolean;

  constructor(zone: Zone) {
    this.chain = zone.dnssec !== undefined;
    this.edit = new ZoneEdit(zone, this.chain);
  }

  private hidden(type: number): boolean {
    return type === TYPE.RRSIG || (this.chain && (type === TYPE.NSEC || type === TYPE.NSEC3));
  }

  get(name: Name): Owner | undefined {
    const node = this.edit.get(name);
    if (!node) return undefined;
    const sets = new Map<number, Set_>();
    for (const s of node.rrsets.values())
      if (!this.hidden(s.type)) sets.set(s.type, { ttl: s.ttl, rdatas: s.rdatas });
    return sets.size > 0 ? { name, sets } : undefined;
  }

  set(name: Name, type: number): Set_ | undefined {
    if (this.hidden(type)) return undefined;
    const s = this.edit.get(name)?.rrsets.get(type);
    return s ? { ttl: s.ttl, rdatas: s.rdatas } : undefined;
  }

  put(name: Name, type: number, set: Set_): void {
    this.edit.put(name, type, set.ttl, set.rdatas);
  }

  drop(name: Name, type: number): void {
    this.edit.drop(name, type);
  }
}

/**
 * Types whose change the incremental path does not check locally: they can turn a zone pre-signed
 * (zone.ts isPresigned, attachPresigned: a zone-wide pass), or are a signer's chain. A change with
 * one of them, or to a pre-signed zone, is rebuilt whole (zone-wide by nature).
 */
const FULL_REBUILD_TYPES: ReadonlySet<number> = new Set<number>([
  TYPE.RRSIG,
  TYPE.NSEC,
  TYPE.NSEC3,
  TYPE.NSEC3PARAM,
  TYPE.DNSKEY,
]);

function needsFullRebuild(zone: Zone, records: readonly { type: number }[]): boolean {
  return zone.dnssec?.presigned === true || records.some((r) => FULL_REBUILD_TYPES.has(r.type));
}

/** DNSSEC types of a zone popdns signs that only its signer makes (Knot's knot_rrtype_is_dnssec). */
export const SIGNER_OWNED: ReadonlySet<number> = new Set<number>([
  TYPE.RRSIG,
  TYPE.NSEC,
  TYPE.NSEC3,
  TYPE.NSEC3PARAM,
  TYPE.DNSKEY,
  TYPE.CDS,
  TYPE.CDNSKEY,
]);

/** Meta types that never appear in an update's data (RFC 2136 §3.4.1.3: AXFR, IXFR, MAILA, MAILB, ANY …). */
function isMeta(type: number): boolean {
  return type >= 128 && type <= 255;
}

const fail = (rcode: number, reason: string): UpdateResult => ({ rcode, reason, removed: [], added: [] });

/** Same RDATA set (order-free, RFC 2136 §3.2.3), DNS comparison of names. */
function sameRdatas(type: number, a: Uint8Array[], b: Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  return (
    a.every((x) => b.some((y) => rdataEquals(type, x, y))) &&
    b.every((y) => a.some((x) => rdataEquals(type, x, y)))
  );
}

function rrText(r: WireRecord, origin: Name): string {
  const owner = nameToRelativeText(r.owner, origin);
  return r.rdata.length > 0
    ? `${owner} ${typeToText(r.type)} ${rdataToText(r.type, r.rdata, origin)}`
    : `${owner} ${typeToText(r.type)}`;
}

/** The leftmost `n` labels of `name`, lower-case, as latin1 text. */
function relativeLabels(name: Name, n: number): string[] {
  const out: string[] = [];
  let p = 0;
  for (let i = 0; i < n; i++) {
    const len = name[p]!;
    out.push(
      Buffer.from(name.subarray(p + 1, p + 1 + len))
        .toString('latin1')
        .toLowerCase(),
    );
    p += 1 + len;
  }
  return out;
}

/**
 * May `rule` make this update-section change (RFC 3007 §3: the server's policy decides)? A rule
 * without names/types may touch any record except the apex SOA; "delete all RRsets at a name" needs
 * a rule without a type list.
 */
export function ruleAllows(rule: UpdateRule, r: WireRecord, origin: Name): boolean {
  const n = labelCount(r.owner) - labelCount(origin);
  const rel = relativeLabels(r.owner, n);
  if (rule.names !== null && !rule.names.some((p) => matchPattern(rel, p))) return false;
  const apex = n === 0;
  if (r.type === TYPE.ANY) return rule.types === null;
  if (rule.types === null) return !(apex && r.type === TYPE.SOA);
  return rule.types.has(r.type);
}

/** Options of applyUpdate. */
export interface ApplyOptions {
  /** The TSIG key that signed the request (keyring form), null when unsigned. */
  key: string | null;
  /** The zone's update rules (from `updates:`). */
  rules: UpdateRule[];
  /** Unix seconds, for the serial and signature checks. */
  now?: number;
  /** Most records the zone may hold after the update (size limit); default no limit. */
  maxRecords?: number;
  /** Most records an RRset the update added to may hold (src/update/limits.ts); default no limit. */
  maxRecordsPerType?: number;
  /**
   * Rebuild the whole zone with zoneBuilder instead of making the next version incrementally (the
   * reference the differential tests and the benchmark compare against). Default false.
   */
  full?: boolean;
}

/**
 * Applies an UPDATE to `zone` (RFC 2136 §3). The caller has matched the zone section's name to
 * `zone` and verified TSIG; this checks everything else. Returns the rcode and, on NOERROR with a
 * change, the new zone version (serial raised, nextSerial) and the changeset.
 */
export function applyUpdate(zone: Zone, u: ParsedUpdate, o: ApplyOptions): UpdateResult {
  const origin = zone.origin;
  const cls = CLASS.IN;
  // §3.2: prerequisites, against the zone as it is. The next version is made incrementally (nothing
  // visible changes: the served `zone` is never written) unless a full rebuild is needed.
  const w: Store = o.full || needsFullRebuild(zone, u.updates) ? WorkingCopy.of(zone) : new EditStore(zone);
  const valueDependent = new Map<string, { name: Name; type: number; rdatas: Uint8Array[] }>();
  for (const r of u.prereqs) {
    if (r.ttl !== 0)
      return fail(UPDATE_RCODE.FORMERR, `prerequisite ${rrText(r, origin)} has TTL ${r.ttl}, not 0`);
    if (!isSubdomainOf(r.owner, origin))
      return fail(UPDATE_RCODE.NOTZONE, `prerequisite name ${nameToText(r.owner)} is outside the zone`);
    const owner = w.get(r.owner);
    if (r.class === CLASS.ANY) {
      if (r.rdata.length !== 0) return fail(UPDATE_RCODE.FORMERR, 'a class ANY prerequisite carries RDATA');
      if (r.type === TYPE.ANY) {
        if (!owner) return fail(UPDATE_RCODE.NXDOMAIN, `name not in use: ${rrText(r, origin)}`);
      } else if (!owner?.sets.has(r.type))
        return fail(UPDATE_RCODE.NXRRSET, `RRset does not exist: ${rrText(r, origin)}`);
    } else if (r.class === CLASS.NONE) {
      if (r.rdata.length !== 0) return fail(UPDATE_RCODE.FORMERR, 'a class NONE prerequisite carries RDATA');
      if (r.type === TYPE.ANY) {
        if (owner) return fail(UPDATE_RCODE.YXDOMAIN, `name in use: ${rrText(r, origin)}`);
      } else if (owner?.sets.has(r.type))
        return fail(UPDATE_RCODE.YXRRSET, `RRset exists: ${rrText(r, origin)}`);
    } else if (r.class === cls) {
      if (isMeta(r.type))
        return fail(UPDATE_RCODE.FORMERR, `prerequisite of meta type ${typeToText(r.type)}`);
      const k = `${nameKey(r.owner)}/${r.type}`;
      let t = valueDependent.get(k);
      if (!t) {
        t = { name: r.owner, type: r.type, rdatas: [] };
        valueDependent.set(k, t);
      }
      if (!t.rdatas.some((x) => rdataEquals(r.type, x, r.rdata))) t.rdatas.push(r.rdata);
    } else return fail(UPDATE_RCODE.FORMERR, `prerequisite of class ${r.class}`);
  }
  for (const t of valueDependent.values()) {
    const have = w.set(t.name, t.type);
    if (!have || !sameRdatas(t.type, have.rdatas, t.rdatas))
      return fail(
        UPDATE_RCODE.NXRRSET,
        `RRset ${nameToText(t.name)} ${typeToText(t.type)} is not as required`,
      );
  }
  // §3.4.1: prescan of the update section; then the policy (anything not allowed: REFUSED).
  for (const r of u.updates) {
    if (!isSubdomainOf(r.owner, origin))
      return fail(UPDATE_RCODE.NOTZONE, `update name ${nameToText(r.owner)} is outside the zone`);
    if (r.class === cls) {
      if (isMeta(r.type))
        return fail(UPDATE_RCODE.FORMERR, `cannot add a record of meta type ${typeToText(r.type)}`);
    } else if (r.class === CLASS.ANY) {
      if (r.ttl !== 0 || r.rdata.length !== 0 || (isMeta(r.type) && r.type !== TYPE.ANY))
        return fail(UPDATE_RCODE.FORMERR, `malformed delete (class ANY) ${rrText(r, origin)}`);
    } else if (r.class === CLASS.NONE) {
      if (r.ttl !== 0 || isMeta(r.type))
        return fail(UPDATE_RCODE.FORMERR, `malformed delete (class NONE) ${rrText(r, origin)}`);
    } else return fail(UPDATE_RCODE.FORMERR, `update of class ${r.class}`);
    if (r.type === TYPE.RRSIG || r.type === TYPE.NSEC || r.type === TYPE.NSEC3)
      return fail(UPDATE_RCODE.REFUSED, `${typeToText(r.type)} records are the signer's, not updatable`);
    // In a zone popdns signs, the keys and chain parameters are the signer's too (as Knot does).
    if (zone.dnssec && SIGNER_OWNED.has(r.type))
      return fail(
        UPDATE_RCODE.REFUSED,
        `${typeToText(r.type)} records of a signed zone are the signer's, not updatable [POPDNS_E_UPDATE_DNSSEC]`,
      );
    const keyRules = o.key === null ? [] : o.rules.filter((x) => x.key === o.key);
    if (!keyRules.some((x) => ruleAllows(x, r, origin)))
      return fail(UPDATE_RCODE.REFUSED, `key ${o.key ?? '(none)'} may not change ${rrText(r, origin)}`);
  }
  // §3.4.2: the updates, in order, on the working copy.
  const isApex = (n: Name): boolean => labelCount(n) === labelCount(origin);
  /** Each touched name with its RRsets before the first change (sets are replaced, never mutated). */
  const touched = new Map<string, { name: Name; before: Map<number, Set_> }>();
  let soaReplaced = false;
  const oldSoa = zone.soa.rdatas[0]!;
  for (const r of u.updates) {
    const owner = w.get(r.owner);
    const tk = nameKey(r.owner);
    if (!touched.has(tk)) touched.set(tk, { name: r.owner, before: new Map(owner?.sets ?? []) });
    if (r.class === cls) {
      if (r.type === TYPE.SOA) {
        // Only at the apex, and only with a newer serial (RFC 1982).
        const cur = w.set(origin, TYPE.SOA)!;
        const ns = soaSerial(r.rdata);
        const os = soaSerial(cur.rdatas[0]!);
        if (!isApex(r.owner) || ns === null || os === null || !serialNewer(os, ns)) continue;
        w.put(origin, TYPE.SOA, { ttl: r.ttl, rdatas: [r.rdata] });
        soaReplaced = true;
        continue;
      }
      // CNAME and other data never share a name (RFC 2136 §3.4.2.2; RFC 4035 lets DNSSEC types in).
      if (owner) {
        const others = [...owner.sets.keys()].filter(
          (t) => t !== TYPE.CNAME && t !== TYPE.RRSIG && t !== TYPE.NSEC && t !== TYPE.NSEC3,
        );
        if (r.type === TYPE.CNAME && others.length > 0) continue;
        if (r.type !== TYPE.CNAME && owner.sets.has(TYPE.CNAME)) continue;
      }
      const cur = w.set(r.owner, r.type);
      if (r.type === TYPE.CNAME && cur) {
        // A CNAME replaces the one there (§3.4.2.2: "replace", not add).
        w.put(r.owner, r.type, { ttl: r.ttl, rdatas: [r.rdata] });
        continue;
      }
      if (!cur) w.put(r.owner, r.type, { ttl: r.ttl, rdatas: [r.rdata] });
      else {
        // Duplicates are ignored; the RRset takes the TTL of the record added (RFC 2181 §5.2).
        const rdatas = cur.rdatas.some((x) => rdataEquals(r.type, x, r.rdata))
          ? cur.rdatas
          : [...cur.rdatas, r.rdata];
        w.put(r.owner, r.type, { ttl: r.ttl, rdatas });
      }
    } else if (r.class === CLASS.ANY) {
      if (!owner) continue;
      if (r.type === TYPE.ANY) {
        for (const t of [...owner.sets.keys()]) {
          if (isApex(r.owner) && (t === TYPE.SOA || t === TYPE.NS)) continue;
          if (zone.dnssec && SIGNER_OWNED.has(t)) continue;
          w.drop(r.owner, t);
        }
      } else {
        if (isApex(r.owner) && (r.type === TYPE.SOA || r.type === TYPE.NS)) continue;
        w.drop(r.owner, r.type);
      }
    } else {
      // class NONE: delete one RR. Never the SOA; never the apex's last NS.
      if (r.type === TYPE.SOA) continue;
      const cur = w.set(r.owner, r.type);
      if (!cur) continue;
      const rest = cur.rdatas.filter((x) => !rdataEquals(r.type, x, r.rdata));
      if (rest.length === cur.rdatas.length) continue;
      if (rest.length === 0) {
        if (isApex(r.owner) && r.type === TYPE.NS) continue;
        w.drop(r.owner, r.type);
      } else w.put(r.owner, r.type, { ttl: cur.ttl, rdatas: rest });
    }
  }
  // The changeset, from the touched names only.
  const removed: XfrRecord[] = [];
  const added: XfrRecord[] = [];
  for (const { name, before } of touched.values()) {
    const after = w.get(name)?.sets ?? new Map<number, Set_>();
    const types = new Set([...before.keys(), ...after.keys()]);
    for (const t of types) {
      if (t === TYPE.SOA && isApex(name)) continue;
      const b = before.get(t);
      const a = after.get(t);
      const ttlChanged = b !== undefined && a !== undefined && b.ttl !== a.ttl;
      for (const rd of b?.rdatas ?? [])
        if (ttlChanged || !a?.rdatas.some((x) => rdataEquals(t, x, rd)))
          removed.push({ owner: name, type: t, class: cls, ttl: b!.ttl, rdata: rd });
      for (const rd of a?.rdatas ?? [])
        if (ttlChanged || !b?.rdatas.some((x) => rdataEquals(t, x, rd)))
          added.push({ owner: name, type: t, class: cls, ttl: a!.ttl, rdata: rd });
    }
  }
  if (removed.length === 0 && added.length === 0 && !soaReplaced)
    return { rcode: UPDATE_RCODE.NOERROR, reason: 'no change', removed: [], added: [] };
  // A zone that arrived signed: popdns has none of its signer's keys (a zone popdns signs is
  // re-signed by the service, src/update/resign.ts).
  if (zone.dnssec?.presigned)
    return fail(
      UPDATE_RCODE.REFUSED,
      `zone ${zone.originText} is pre-signed (signed elsewhere, no keys here): update it where it is signed [POPDNS_E_UPDATE_PRESIGNED]`,
    );
  // The serial: the one the update set, or the next in the zone's style.
  const soaSet = w.set(origin, TYPE.SOA)!;
  let newSoa = soaSet.rdatas[0]!;
  if (!soaReplaced) {
    newSoa = Uint8Array.from(oldSoa);
    const to = nextSerial(zone.serial, o.now);
    new DataView(newSoa.buffer, newSoa.byteOffset, newSoa.length).setUint32(newSoa.length - 20, to);
    w.put(origin, TYPE.SOA, { ttl: soaSet.ttl, rdatas: [newSoa] });
  }
  // Rebuilt with the checks of a zone file: an update that would make it invalid is refused whole.
  if (o.maxRecords !== undefined) {
    let count = 0;
    if (w instanceof WorkingCopy) {
      for (const own of w.owners.values()) for (const s of own.sets.values()) count += s.rdatas.length;
    } else count = (w as EditStore).edit.zone.recordCount;
    if (count > o.maxRecords)
      return fail(
        UPDATE_RCODE.REFUSED,
        `zone would hold ${count} records, above the limit of ${o.maxRecords} (update-limits.max-records) [POPDNS_W_UPDATE_LIMIT]`,
      );
  }
  if (o.maxRecordsPerType !== undefined) {
    for (const { name, before } of touched.values())
      for (const [t, s] of w.get(name)?.sets ?? []) {
        if (s.rdatas.length > o.maxRecordsPerType && s.rdatas.length > (before.get(t)?.rdatas.length ?? 0))
          return fail(
            UPDATE_RCODE.REFUSED,
            `RRset ${nameToText(name)} ${typeToText(t)} would hold ${s.rdatas.length} records, above the limit of ${o.maxRecordsPerType} (update-limits.max-records-per-type) [POPDNS_W_UPDATE_LIMIT]`,
          );
      }
  }
  const built = w instanceof WorkingCopy ? rebuild(zone, w, o.now) : (w as EditStore).edit.finish();
  if (typeof built === 'string')
    return fail(UPDATE_RCODE.REFUSED, `the update would make the zone invalid: ${built}`);
  const soaTtl = w.set(origin, TYPE.SOA)!.ttl;
  removed.unshift({ owner: origin, type: TYPE.SOA, class: cls, ttl: zone.soa.ttl, rdata: oldSoa });
  added.unshift({ owner: origin, type: TYPE.SOA, class: cls, ttl: soaTtl, rdata: newSoa });
  return { rcode: UPDATE_RCODE.NOERROR, zone: built, removed, added };
}

/** A record's identity in a changeset: owner (any case), type, RDATA bytes. */
function recordKey(r: XfrRecord): string {
  return `${nameKey(r.owner)}/${r.type}/${Buffer.from(r.rdata).toString('hex')}`;
}

/**
 * Applies journalled changesets to `zone` (a replay after a restart, RFC 1995 §4 sequences) and
 * rebuilds it: each record removed is taken out if present, each added is put in (its TTL becomes
 * the RRset's), SOA records are skipped and `soa` (the last changeset's new SOA) is set at the end.
 * `net` first folds the changesets into one (a record added then removed is neither). Returns the
 * built zone or the first error.
 */
export function applyChangesets(
  zone: Zone,
  changesets: { removed: XfrRecord[]; added: XfrRecord[] }[],
  soa: { ttl: number; rdata: Uint8Array },
  now?: number,
  full = false,
): Zone | string {
  const rem = new Map<string, XfrRecord>();
  const add = new Map<string, XfrRecord>();
  for (const cs of changesets) {
    for (const r of cs.removed) {
      if (r.type === TYPE.SOA) continue;
      const k = recordKey(r);
      if (add.has(k)) add.delete(k);
      else rem.set(k, r);
    }
    for (const r of cs.added) {
      if (r.type === TYPE.SOA) continue;
      const k = recordKey(r);
      if (rem.has(k)) rem.delete(k);
      add.set(k, r);
    }
  }
  const w: Store =
    full || needsFullRebuild(zone, [...rem.values(), ...add.values()])
      ? WorkingCopy.of(zone)
      : new EditStore(zone);
  // RRSIG records in a changeset (an unsigned zone's stray RRSIGs, see WorkingCopy) always take the
  // full path (needsFullRebuild), whose `raw` view holds them.
  const setOf = (r: XfrRecord): Set_ | undefined =>
    w instanceof WorkingCopy ? w.raw(r.owner, r.type) : w.set(r.owner, r.type);
  for (const r of rem.values()) {
    const cur = setOf(r);
    if (!cur) continue;
    const rest = cur.rdatas.filter((x) => !rdataEquals(r.type, x, r.rdata));
    if (rest.length === 0) w.drop(r.owner, r.type);
    else w.put(r.owner, r.type, { ttl: cur.ttl, rdatas: rest });
  }
  for (const r of add.values()) {
    const cur = setOf(r);
    const rdatas = cur
      ? cur.rdatas.some((x) => rdataEquals(r.type, x, r.rdata))
        ? cur.rdatas
        : [...cur.rdatas, r.rdata]
      : [r.rdata];
    w.put(r.owner, r.type, { ttl: r.ttl, rdatas });
  }
  w.put(zone.origin, TYPE.SOA, { ttl: soa.ttl, rdatas: [soa.rdata] });
  return w instanceof WorkingCopy ? rebuild(zone, w, now) : (w as EditStore).edit.finish();
}

/**
 * `zone` rebuilt whole from its records with zoneBuilder: a version that shares nothing with any
 * other (what signZone may write into). `chain`: leave NSEC/NSEC3 records out (a zone popdns signs,
 * whether or not `zone.dnssec` is set yet). The zone or the first error.
 */
export function rebuildWhole(zone: Zone, chain: boolean, now?: number): Zone | string {
  return rebuild(zone, WorkingCopy.of(zone, chain), now);
}

/** Builds a zone from the working copy with the zone-file checks; the zone or the first error. */
function rebuild(zone: Zone, w: WorkingCopy, now?: number): Zone | string {
  const b = zoneBuilder(zone.origin, zone.file, now !== undefined ? { now } : {});
  const pos = { file: `${zone.file} (update)`, line: 1, col: 1 };
  for (const own of w.owners.values())
    for (const [t, s] of own.sets)
      for (const rd of s.rdatas)
        b.add({ owner: own.name, type: t, class: CLASS.IN, ttl: s.ttl, rdata: rd, pos });
  const built = b.finish([]);
  const firstError = built.diagnostics.find((d) => d.severity === 'error');
  if (!built.zone || firstError) return firstError ? formatDiagnostic(firstError) : 'zone not built';
  return built.zone;
}
