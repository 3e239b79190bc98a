/**
 * Zone versions on the secondary: a transferred record list built into a zone with the same semantic
 * checks as a zone file, IXFR differences applied to a copy of the current version (RFC 1995 §4), and
 * the current version read back out of the trie as records.
 */
import { CLASS, TYPE } from '../wire/constants.js';
import { type Name, nameToLower, nameToText } from '../wire/name.js';
import type { WireRecord } from '../wire/records.js';
import { ZoneEdit } from '../zone/edit.js';
import { formatDiagnostic, type ZoneRecord } from '../zone/types.js';
import { type RRset, walk, type Zone, zoneBuilder } from '../zone/zone.js';
import type { XfrDiff } from './transfer.js';

export class ZoneDataError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(`${message} [${code}]`);
  }
}

/**
 * Every record of a built zone, the SOA first. RRSIGs kept beside their RRsets (`sigs`) come out as
 * RRSIG records too, unless the node holds an RRSIG RRset of its own.
 */
export function zoneRecords(zone: Zone): WireRecord[] {
  const out: WireRecord[] = [];
  const soa = zone.apex.rrsets.get(TYPE.SOA);
  if (soa)
    for (const rd of soa.rdatas)
      out.push({ owner: soa.owner, type: TYPE.SOA, class: CLASS.IN, ttl: soa.ttl, rdata: rd });
  walk(zone.apex, (node) => {
    const hasRrsigSet = node.rrsets.has(TYPE.RRSIG);
    for (const set of node.rrsets.values()) {
      const owner = node.name;
      // The apex SOA came first; its signatures (below) still belong to the list.
      if (!(set.type === TYPE.SOA && node === zone.apex))
        for (const rd of set.rdatas)
          out.push({ owner, type: set.type, class: CLASS.IN, ttl: set.ttl, rdata: rd });
      if (set.sigs && !hasRrsigSet)
        for (const rd of set.sigs)
          out.push({ owner, type: TYPE.RRSIG, class: CLASS.IN, ttl: set.ttl, rdata: rd });
    }
  });
  // The NSEC3 chain is kept beside the trie (its owners are not names of the zone), as AXFR sends it.
  for (const set of nsec3Sets(zone)) {
    for (const rd of set.rdatas)
      out.push({ owner: set.owner, type: set.type, class: CLASS.IN, ttl: set.ttl, rdata: rd });
    for (const rd of set.sigs ?? [])
      out.push({ owner: set.owner, type: TYPE.RRSIG, class: CLASS.IN, ttl: set.ttl, rdata: rd });
  }
  return out;
}

/**
 * The RRsets a signed zone keeps outside its name tree: the NSEC3 records of its chain (RFC 5155), and
 * the chain's NSEC3PARAM when the apex does not hold it. Empty for an unsigned or NSEC zone.
 */
export function nsec3Sets(zone: Zone): RRset[] {
  const nsec3 = zone.dnssec?.nsec3;
  if (!nsec3) return [];
  const out: RRset[] = [];
  if (!zone.apex.rrsets.has(TYPE.NSEC3PARAM) && nsec3.params.rdatas.length > 0) out.push(nsec3.params);
  for (const link of nsec3.chain) out.push(link.nsec3);
  return out;
}

function rrKey(r: WireRecord): string {
  return `${Buffer.from(nameToLower(r.owner)).toString('latin1')}/${r.type}/${r.class}`;
}

function sameRdata(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/**
 * Applies IXFR differences in order to a copy of `records` (which is not changed). A deletion of a
 * record that is not there is an error: the two sides disagree on the zone, and only a full transfer
 * can fix that. Returns the new record list, the last diff's SOA first.
 */
export function applyDiffs(records: readonly WireRecord[], diffs: readonly XfrDiff[]): WireRecord[] {
  const sets = new Map<string, WireRecord[]>();
  let soa: WireRecord | null = null;
  for (const r of records) {
    if (r.type === TYPE.SOA) {
      soa = r;
      continue;
    }
    const k = rrKey(r);
    const l = sets.get(k);
    if (l) l.push(r);
    else sets.set(k, [r]);
  }
  for (const d of diffs) {
    for (const r of d.deleted) {
      const l = sets.get(rrKey(r));
      const i = l ? l.findIndex((x) => sameRdata(x.rdata, r.rdata)) : -1;
      if (!l || i < 0)
        throw new ZoneDataError(
          `IXFR deletes ${nameToText(r.owner)} type ${r.type}, which this version does not hold`,
          'POPDNS_E_IXFR_MISMATCH',
        );
      l.splice(i, 1);
    }
    for (const r of d.added) {
      const k = rrKey(r);
      const l = sets.get(k);
      if (!l) sets.set(k, [r]);
      else if (!l.some((x) => sameRdata(x.rdata, r.rdata))) l.push(r);
    }
    soa = d.toSoa;
  }
  const out: WireRecord[] = soa ? [soa] : [];
  for (const l of sets.values()) out.push(...l);
  return out;
}

/**
 * Builds a zone from transferred records with the checks `popdns check` runs on a file (SOA, apex NS,
 * CNAME rules, glue, …). `label` names the source in diagnostics (e.g. `AXFR from 192.0.2.1:53`).
 * Throws ZoneDataError with the first errors when the version must not be served.
 */
export function buildTransferred(origin: Name, records: readonly WireRecord[], label: string): Zone {
  const b = zoneBuilder(origin, label);
  let i = 0;
  for (const r of records) {
    i++;
    const rec: ZoneRecord = { ...r, pos: { file: label, line: i, col: 1 } };
    b.add(rec);
  }
  const res = b.finish([]);
  if (!res.zone) {
    const errors = res.diagnostics.filter((d) => d.severity === 'error').slice(0, 5);
    throw new ZoneDataError(
      `${nameToText(origin)} from ${label} fails the zone checks: ${errors.map(formatDiagnostic).join('; ')}`,
      'POPDNS_E_XFR_ZONE',
    );
  }
  return res.zone;
}

/** DNSSEC types: differences carrying them go through the full rebuild (see applyIxfr). */
const DNSSEC_TYPES: ReadonlySet<number> = new Set<number>([
  TYPE.RRSIG,
  TYPE.NSEC,
  TYPE.NSEC3,
  TYPE.NSEC3PARAM,
  TYPE.DNSKEY,
]);

/**
 * The next version of a secondary zone from IXFR differences (RFC 1995 §4, applied in order), made
 * by path copying (zone/edit.ts): cost proportional to the change, not to the zone, and `zone` itself
 * is not changed. Same semantics as `buildTransferred(origin, applyDiffs(zoneRecords(zone), diffs))`:
 * a deleted record must be present (byte-equal RDATA); an added record joins its RRset, whose TTL stays
 * unless the set was emptied first; the last difference's SOA ends it; the zone checks run on what
 * changed. Returns null when the change needs that full rebuild instead: a zone that arrived signed
 * (its NSEC/NSEC3 chains and signatures are rebuilt from the records) or DNSSEC records in the
 * differences. Throws ZoneDataError: `POPDNS_E_IXFR_MISMATCH` (a deletion of a record this version
 * does not hold: only a full transfer can fix that), `POPDNS_E_XFR_ZONE` (the result fails the checks).
 */
export function applyIxfr(zone: Zone, diffs: readonly XfrDiff[], label: string): Zone | null {
  const last = diffs[diffs.length - 1];
  if (!last || zone.dnssec !== undefined) return null;
  for (const d of diffs)
    if (d.deleted.some((r) => DNSSEC_TYPES.has(r.type)) || d.added.some((r) => DNSSEC_TYPES.has(r.type)))
      return null;
  const edit = new ZoneEdit(zone);
  for (const d of diffs) {
    for (const r of d.deleted) {
      const cur = r.type === TYPE.SOA ? undefined : edit.get(r.owner)?.rrsets.get(r.type);
      const rdatas = cur?.rdatas;
      const i = rdatas ? rdatas.findIndex((x) => sameRdata(x, r.rdata)) : -1;
      if (!cur || !rdatas || i < 0)
        throw new ZoneDataError(
          `IXFR deletes ${nameToText(r.owner)} type ${r.type}, which this version does not hold`,
          'POPDNS_E_IXFR_MISMATCH',
        );
      if (rdatas.length === 1) edit.drop(r.owner, r.type);
      else
        edit.put(
          r.owner,
          r.type,
          cur.ttl,
          rdatas.filter((_, j) => j !== i),
        );
    }
    for (const r of d.added) {
      if (r.type === TYPE.SOA) continue;
      if (r.class !== CLASS.IN)
        throw new ZoneDataError(
          `${nameToText(zone.origin)} from ${label} fails the zone checks: ${nameToText(r.owner)} has class ${r.class}; only IN is served`,
          'POPDNS_E_XFR_ZONE',
        );
      const cur = edit.get(r.owner)?.rrsets.get(r.type);
      if (!cur) edit.put(r.owner, r.type, r.ttl, [r.rdata]);
      else {
        const rdatas = cur.rdatas;
        if (!rdatas.some((x) => sameRdata(x, r.rdata)))
          edit.put(r.owner, r.type, cur.ttl, [...rdatas, r.rdata]);
      }
    }
  }
  edit.put(zone.origin, TYPE.SOA, last.toSoa.ttl, [last.toSoa.rdata]);
  const next = edit.finish();
  if (typeof next === 'string')
    throw new ZoneDataError(
      `${nameToText(zone.origin)} from ${label} fails the zone checks: ${next}`,
      'POPDNS_E_XFR_ZONE',
    );
  return next;
}
