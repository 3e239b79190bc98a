/**
 * Re-signing after a dynamic update (RFC 2136 on a zone popdns signs, RFC 4035 §2): the engine
 * builds the new version unsigned (engine.ts: the previous version's RRsets, its NSEC/NSEC3 records
 * left out); this signs it by carrying over everything the update did not touch and signing only
 * what it did:
 *
 * - every RRset whose content is unchanged keeps its signatures (the same RRSIG RDATA objects);
 * - the RRsets the update changed, and the new SOA, are signed anew;
 * - the NSEC chain (RFC 4034 §4) or NSEC3 chain (RFC 5155 §7.1) is patched: names that appeared are
 *   inserted, names that went are taken out, and only the records whose next name/hash or type
 *   bitmap changed (the touched names and their predecessors in the chain) are remade and signed;
 *   for NSEC3 the touched names' ancestors are looked at too (empty non-terminals come and go).
 *
 * `next` is a version zone/edit.ts made by path copying (it shares every unchanged node and RRset,
 * signatures included, with `prev`), so there is no walk of the zone: the cost is per touched name
 * (binary searches in the chain, new versions of the chain that share all but the changed chunk
 * with the old one, zone/chain.ts: O(√n) each, the nodes whose NSEC is remade copied from the apex
 * down) plus the signing. Nothing `prev` can reach is written. An update that changes
 * the zone's structure (a delegation or DNAME added or removed, glue, the SOA TTL or MINIMUM that
 * NSEC TTLs follow), or a `next` that was rebuilt whole, is signed whole with signZone instead, on a
 * version rebuilt to share nothing (the signature cache still keeps unchanged signatures). The
 * result is the zone signZone would make from the same records, signatures aside.
 */
import { CLASS, TYPE } from '../wire/constants.js';
import {
  canonicalCompare,
  labelCount,
  type Name,
  nameKey,
  nameToLower,
  prependLabel,
  stripLabels,
} from '../wire/name.js';
import { base32hexEncode, typeBitmap } from '../wire/rdata.js';
import { type Nsec3Chain, nsec3Hash, type Nsec3Links, type NsecChain } from '../zone/dnssec.js';
import { editableNode, isEdited } from '../zone/edit.js';
import { findNode, negativeTtl, type RRset, type Zone, type ZoneNode } from '../zone/zone.js';
import type { DnssecKey } from '../dnssec/keys.js';
import { type DnssecPolicy, type SignatureCache, signRRsets, signZone } from '../dnssec/signzone.js';
import { rebuildWhole } from './engine.js';

/** What re-signing an update did. */
export interface ResignStats {
  /** Signatures made. */
  signatures: number;
  /** Signatures taken from the cache (an RRset that went back to an earlier content). */
  reused: number;
  /** False when the zone was re-signed whole (`why` says why). */
  incremental: boolean;
  why?: string;
  /** The signed version to publish: `next` itself, or (signed whole) a rebuild of it. */
  zone: Zone;
}

/** The signer of a zone as it was last signed: keys, policy, signature cache. */
export interface ZoneSigner {
  keys: DnssecKey[];
  policy: DnssecPolicy;
  cache?: SignatureCache;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Same TTL and the same RDATAs (as sets of bytes): a signature over one covers the other. */
function sameContent(a: RRset, b: RRset): boolean {
  if (a.ttl !== b.ttl) return false;
  const x = a.rdatas;
  const y = b.rdatas;
  if (x.length !== y.length) return false;
  return x.every((r) => y.some((s) => sameBytes(r, s)));
}

/** RRsets the signer signs at a node (RFC 4035 §2.2): none below a cut; only DS and NSEC at one. */
function signedHere(node: ZoneNode, type: number): boolean {
  if (node.occluded) return false;
  return !node.cut || type === TYPE.DS || type === TYPE.NSEC;
}

/** The NSEC type bitmap signZone gives a node. */
function nsecTypes(node: ZoneNode): number[] {
  const types = [...node.rrsets.keys()].filter(
    (t) => t !== TYPE.NSEC && (!node.cut || t === TYPE.NS || t === TYPE.DS),
  );
  types.push(TYPE.RRSIG, TYPE.NSEC);
  return types;
}

/** The NSEC3 type bitmap signZone gives a node (empty for an empty non-terminal). */
function nsec3Types(node: ZoneNode): number[] {
  if (node.cut) return node.rrsets.has(TYPE.DS) ? [TYPE.NS, TYPE.DS, TYPE.RRSIG] : [TYPE.NS];
  return node.rrsets.size > 0 ? [...node.rrsets.keys(), TYPE.RRSIG] : [];
}

/**
 * Signs `next`, the unsigned version an update made of `prev` (signed by popdns with `signer`'s keys
 * and policy), touching only what changed. `owners`: the owner names of every record the update
 * removed or added (the changeset; the SOA's owner among them). Writes only what `next` does not
 * share with `prev` (it is not published yet); `prev` and what it shares stay as they are. Publish
 * the returned `zone`. `now` in unix seconds. Throws DnssecError [POPDNS_E_SIGN] as signZone does.
 */
export function resignUpdate(
  prev: Zone,
  next: Zone,
  owners: readonly Name[],
  signer: ZoneSigner,
  now: number,
): ResignStats {
  const { keys, policy, cache } = signer;
  const d = prev.dnssec;
  const whole = (why: string): ResignStats => {
    // signZone writes every RRset and node: never into one `prev` shares.
    let zone = next;
    if (isEdited(next)) {
      const b = rebuildWhole(next, true, now);
      if (typeof b === 'string') throw new Error(`rebuilding ${next.originText} to sign it: ${b}`);
      zone = b;
    }
    const r = signZone(zone, keys, policy, { now, ...(cache ? { cache } : {}) });
    zone.negativeSoa.sigs = zone.apex.rrsets.get(TYPE.SOA)?.sigs ?? [];
    return { ...r, incremental: false, why, zone };
  };
  if (!d || d.presigned || !d.signer) return whole('the previous version was not signed by popdns');
  if (!isEdited(next)) return whole('the new version was rebuilt whole');
  const nsec3Mode = policy.denial === 'nsec3';
  if (nsec3Mode !== (d.nsec3 !== null) || (!nsec3Mode && d.nsecChain === null))
    return whole('the denial of existence changed');
  if (negativeTtl(prev.soa) !== negativeTtl(next.soa) || prev.soa.ttl !== next.soa.ttl)
    return whole('the SOA TTL or MINIMUM changed');
  // popdns' signer gives every NSEC3 of a chain the same flags: the first one tells (no chain scan).
  const optOut = ((d.nsec3?.chain.at(0)?.nsec3.rdatas[0]?.[1] ?? 0) & 1) === 1;
  if (nsec3Mode && d.nsec3!.chain.length > 0 && optOut !== policy.nsec3OptOut)
    return whole('NSEC3 opt-out changed');

  // The touched names, once each, with their nodes in both versions.
  const touched = new Map<string, Name>();
  for (const o of owners) touched.set(nameKey(o), o);
  const touchedNext = new Set<ZoneNode>();
  for (const o of touched.values()) {
    const p = findNode(prev, o);
    const n = findNode(next, o);
    for (const x of [p, n]) {
      if (!x) continue;
      if (x.cut || x.occluded || x.rrsets.has(TYPE.DNAME))
        return whole('a delegation, glue or DNAME changed');
    }
    if (n) touchedNext.add(n);
  }

  // 1. The RRsets of the touched names that are new (changed): an unchanged one is the very object
  // of `prev`, signatures and all; one put back with the same content takes the old signatures.
  const toSign: RRset[] = [];
  for (const n of touchedNext) {
    const p = findNode(prev, n.name);
    for (const set of n.rrsets.values()) {
      if (set.sigs || set.type === TYPE.NSEC || !signedHere(n, set.type)) continue;
      const ps = p?.rrsets.get(set.type);
      if (ps?.sigs && sameContent(ps, set)) set.sigs = ps.sigs;
      else toSign.push(set);
    }
  }

  const denialTtl = negativeTtl(next.soa);
  let nsecChain: NsecChain | null = null;
  let nsec3: Nsec3Chain | null = null;
  if (!nsec3Mode) nsecChain = patchNsec(next, d.nsecChain!, touched, denialTtl, toSign);
  else {
    const old = d.nsec3!;
    const params = next.apex.rrsets.get(TYPE.NSEC3PARAM) ?? old.params;
    nsec3 = {
      params,
      salt: old.salt,
      iterations: old.iterations,
      chain: patchNsec3(next, old.chain, old.salt, old.iterations, touched, policy, denialTtl, toSign),
    };
  }

  // 2. Sign what changed.
  const r = signRRsets(next, toSign, keys, policy, { now, ...(cache ? { cache } : {}) });
  next.negativeSoa.sigs = next.apex.rrsets.get(TYPE.SOA)?.sigs ?? [];
  const earliest = r.earliest ?? Infinity;
  const expires = Math.min(d.expires ?? Infinity, earliest);
  next.dnssec = {
    presigned: false,
    nsecChain,
    nsec3,
    expires: expires === Infinity ? null : expires,
    signer: {
      nextRefresh: Math.min(d.signer.nextRefresh, earliest - policy.refresh + 1),
      describe: d.signer.describe,
    },
  };
  return { signatures: r.signatures, reused: r.reused, incremental: true, zone: next };
}

/**
 * The NSEC chain of `next`: a new version of the old one (which stays as it is; its NSEC RRsets are
 * the ones `next` shares), touched names inserted or taken out, and the records of touched names
 * and of their predecessors remade where their next name or bitmap changed (each remade one goes
 * into its node, copied from the apex down, and to `toSign`).
 */
function patchNsec(
  next: Zone,
  old: NsecChain,
  touched: ReadonlyMap<string, Name>,
  ttl: number,
  toSign: RRset[],
): NsecChain {
  let chain = old;
  const inChain = (n: ZoneNode | null): boolean =>
    n !== null && !n.occluded && [...n.rrsets.keys()].some((t) => t !== TYPE.NSEC);
  for (const o of touched.values()) {
    const node = findNode(next, o);
    const at = chain.lowerBound(o);
    const found = at < chain.length && canonicalCompare(chain.at(at)!.owner, o) === 0;
    const want = inChain(node);
    if (!want && node?.rrsets.has(TYPE.NSEC)) editableNode(next, o)!.rrsets.delete(TYPE.NSEC);
    if (found && !want) chain = chain.removeAt(at);
    else if (!found && want)
      chain = chain.insertAt(at, { owner: node!.name, nsec: null as unknown as RRset });
  }
  if (chain.length === 0) return chain;
  const redo = new Set<number>();
  for (const o of touched.values()) {
    const at = chain.lowerBound(o);
    if (at < chain.length && canonicalCompare(chain.at(at)!.owner, o) === 0) redo.add(at);
    redo.add((at - 1 + chain.length) % chain.length);
  }
  for (const i of redo) {
    const e = chain.at(i)!;
    const node = findNode(next, e.owner)!;
    const nextName = nameToLower(chain.at((i + 1) % chain.length)!.owner);
    const bitmap = typeBitmap(nsecTypes(node));
    const rdata = new Uint8Array(nextName.length + bitmap.length);
    rdata.set(nextName, 0);
    rdata.set(bitmap, nextName.length);
    if (e.nsec && e.nsec.ttl === ttl && sameBytes(e.nsec.rdatas[0]!, rdata)) continue;
    const nsec: RRset = { owner: node.name, type: TYPE.NSEC, class: CLASS.IN, ttl, rdatas: [rdata] };
    editableNode(next, e.owner)!.rrsets.set(TYPE.NSEC, nsec);
    chain = chain.setAt(i, { owner: node.name, nsec });
    toSign.push(nsec);
  }
  return chain;
}

/**
 * The NSEC3 chain of `next`: the touched names and their ancestors (empty non-terminals come and
 * go with them) hashed, inserted or taken out, and the records of those names and of their
 * predecessors in hash order remade where their next hash or bitmap changed (each to `toSign`).
 */
function patchNsec3(
  next: Zone,
  old: Nsec3Links,
  salt: Uint8Array,
  iterations: number,
  touched: ReadonlyMap<string, Name>,
  policy: DnssecPolicy,
  ttl: number,
  toSign: RRset[],
): Nsec3Links {
  let chain = old;
  const originLabels = labelCount(next.origin);
  // Touched names and their ancestors up to the apex.
  const names = new Map<string, Name>();
  for (const o of touched.values()) {
    for (let n = o, l = labelCount(o); l >= originLabels; n = stripLabels(n, 1), l--) {
      const k = nameKey(n);
      if (names.has(k)) break;
      names.set(k, n);
    }
  }
  /** Hash (latin1) → the node whose bitmap is to be made fresh. */
  const fresh = new Map<string, ZoneNode>();
  const hashes: Uint8Array[] = [];
  for (const n of names.values()) {
    const node = findNode(next, n);
    const want =
      node !== null && !node.occluded && !(node.cut && !node.rrsets.has(TYPE.DS) && policy.nsec3OptOut);
    const h = nsec3Hash(n, salt, iterations);
    const at = chain.lowerBound(h);
    const found = at < chain.length && sameBytes(chain.at(at)!.hash, h);
    if (found && !want) chain = chain.removeAt(at);
    else if (!found && want) chain = chain.insertAt(at, { hash: h, nsec3: null as unknown as RRset });
    if (want) fresh.set(Buffer.from(h).toString('latin1'), node);
    hashes.push(h);
  }
  if (chain.length === 0) return chain;
  const redo = new Set<number>();
  for (const h of hashes) {
    const at = chain.lowerBound(h);
    if (at < chain.length && sameBytes(chain.at(at)!.hash, h)) redo.add(at);
    redo.add((at - 1 + chain.length) % chain.length);
  }
  const flags = policy.nsec3OptOut ? 1 : 0;
  for (const i of redo) {
    const e = chain.at(i)!;
    const nextHash = chain.at((i + 1) % chain.length)!.hash;
    const node = fresh.get(Buffer.from(e.hash).toString('latin1'));
    let bitmap: Uint8Array;
    if (node) bitmap = typeBitmap(nsec3Types(node));
    else {
      // An untouched predecessor: only its next hash changes.
      const rd = e.nsec3.rdatas[0]!;
      const at = 5 + rd[4]!;
      bitmap = rd.subarray(at + 1 + rd[at]!);
    }
    const rdata = new Uint8Array(6 + salt.length + nextHash.length + bitmap.length);
    rdata.set([1, flags, iterations >> 8, iterations & 0xff, salt.length], 0);
    rdata.set(salt, 5);
    rdata[5 + salt.length] = nextHash.length;
    rdata.set(nextHash, 6 + salt.length);
    rdata.set(bitmap, 6 + salt.length + nextHash.length);
    if (e.nsec3 && e.nsec3.ttl === ttl && sameBytes(e.nsec3.rdatas[0]!, rdata)) continue;
    const owner = prependLabel(Buffer.from(base32hexEncode(e.hash).toLowerCase(), 'latin1'), next.origin);
    const set: RRset = { owner, type: TYPE.NSEC3, class: CLASS.IN, ttl, rdatas: [rdata] };
    chain = chain.setAt(i, { hash: e.hash, nsec3: set });
    toSign.push(set);
  }
  return chain;
}
