/**
 * The zone signer: turns a freshly built (not yet published) Zone into a signed one. It adds the
 * DNSKEY RRset (and CDS/CDNSKEY, RFC 7344/8078, when asked), builds the NSEC (RFC 4034) or NSEC3
 * (RFC 5155 with the RFC 9276 parameters: no extra iterations, empty salt) chain, and signs every
 * authoritative RRset (RFC 4035 §2.2): everything at names that are not occluded, except the NS RRset
 * at a delegation point and glue; the DS at a delegation point is signed.
 *
 * Signing runs once per zone version, off the query path. A SignatureCache carried from one version
 * of a zone to the next keeps every signature whose RRset did not change and that is still fresh, so
 * a reload re-signs only what changed (plus whatever is due for refresh).
 *
 * The result has the same shape a zone that arrives signed gets from the zone builder (`ZoneDnssec`
 * in zone/dnssec.ts: `sigs` on each RRset, the NSEC or NSEC3 chain), so the answer engine reads both
 * the same way; the lookups over the chains (denialNsec, denialNsec3) live there too.
 */
import { createHash } from 'node:crypto';
import { CLASS, TYPE, typeToText } from '../wire/constants.js';
import { type Name, nameEquals, nameToLower, nameToText, prependLabel } from '../wire/name.js';
import { base32hexEncode, rdataToText, typeBitmap } from '../wire/rdata.js';
import {
  canonicalSortKey,
  nsec3Hash,
  nsec3LinksFrom,
  type NsecChain,
  nsecChainFrom,
  type NsecEntry,
  rrsigTime,
  type ZoneDnssec,
} from '../zone/dnssec.js';
import { addRdata, negativeTtl, type RRset, type Zone, type ZoneNode } from '../zone/zone.js';
import {
  canonicalRdata,
  type DnssecKey,
  DnssecError,
  DNSKEY_FLAG,
  dsFromDnskey,
  rrsigHeadLength,
  signRRset,
  writeSignedData,
} from './keys.js';
import { BATCH_BYTES, type BatchResult, type SignPool } from './signpool.js';

const E_SIGN = 'POPDNS_E_SIGN';

// ---------------------------------------------------------------------------------------------
// Policy

export interface DnssecPolicy {
  /** Authenticated denial of existence: NSEC (RFC 4034) or NSEC3 (RFC 5155). */
  denial: 'nsec' | 'nsec3';
  /** NSEC3 opt-out (RFC 5155 §6): insecure delegations get no NSEC3 of their own. */
  nsec3OptOut: boolean;
  /** Signature validity in seconds (expiration - now, before jitter). */
  validity: number;
  /** A signature is re-made when less than this many seconds of it remain. */
  refresh: number;
  /** Up to this many seconds are taken at random off each expiration, so they don't all fall due at once. */
  jitter: number;
  /** Publish CDS and CDNSKEY at the apex for the SEP keys (RFC 7344, RFC 8078). */
  cds: boolean;
}

const DAY = 86400;

export const DEFAULT_POLICY: DnssecPolicy = Object.freeze({
  denial: 'nsec',
  nsec3OptOut: false,
  validity: 14 * DAY,
  refresh: 7 * DAY,
  jitter: Math.floor((14 * DAY) / 10),
  cds: false,
});

/**
 * A full policy from some settings: refresh defaults to validity/2 and jitter to validity/10 of the
 * validity given (not of the default one). Throws DnssecError [POPDNS_E_SIGN] when it cannot work.
 */
export function makePolicy(settings: Partial<DnssecPolicy> = {}): DnssecPolicy {
  const validity = settings.validity ?? DEFAULT_POLICY.validity;
  const policy: DnssecPolicy = {
    denial: settings.denial ?? DEFAULT_POLICY.denial,
    nsec3OptOut: settings.nsec3OptOut ?? DEFAULT_POLICY.nsec3OptOut,
    validity,
    refresh: settings.refresh ?? Math.floor(validity / 2),
    jitter: settings.jitter ?? Math.floor(validity / 10),
    cds: settings.cds ?? DEFAULT_POLICY.cds,
  };
  checkPolicy(policy);
  return policy;
}

function checkPolicy(p: DnssecPolicy): void {
  const whole = (n: number): boolean => Number.isInteger(n) && n >= 0;
  if (!whole(p.validity) || p.validity < 3600) {
    throw new DnssecError(E_SIGN, `signature validity ${p.validity} s must be a whole number ≥ 3600 (1h)`);
  }
  if (!whole(p.refresh) || !whole(p.jitter)) {
    throw new DnssecError(
      E_SIGN,
      `refresh (${p.refresh}) and jitter (${p.jitter}) must be whole seconds ≥ 0`,
    );
  }
  if (p.refresh + p.jitter >= p.validity) {
    throw new DnssecError(
      E_SIGN,
      `refresh (${p.refresh} s) + jitter (${p.jitter} s) must be less than the validity (${p.validity} s), or new signatures would already be due`,
    );
  }
  if (p.denial !== 'nsec' && p.denial !== 'nsec3') {
    throw new DnssecError(E_SIGN, `denial must be nsec or nsec3, not "${String(p.denial)}"`);
  }
}

// ---------------------------------------------------------------------------------------------
// Signature cache

/**
 * Signatures kept from one version of a zone to the next. Key: the RRset's canonical content (owner
 * lower-cased, type, class, TTL, sorted canonical RDATA) + the key (algorithm, tag, DNSKEY digest);
 * value: the RRSIG RDATA, which holds its expiration. An entry is reused while `expiration - now >=
 * policy.refresh`. After each signZone the cache holds exactly the signatures of the version just
 * signed, so it never grows beyond one zone's worth. One cache per zone.
 */
export class SignatureCache {
  /** key id → RRset content → RRSIG RDATA */
  private entries = new Map<string, Map<string, Uint8Array>>();
  private next: Map<string, Map<string, Uint8Array>> | null = null;

  /** Signatures held. */
  get size(): number {
    let n = 0;
    for (const m of this.entries.values()) n += m.size;
    return n;
  }

  clear(): void {
    this.entries.clear();
    this.next = null;
  }

  /** @internal signZone: starts collecting the signatures of a new version. */
  begin(): void {
    this.next = new Map();
  }

  /** @internal A fresh signature, or undefined; a fresh one moves on to the new version. */
  take(keyId: string, content: string, now: number, policy: DnssecPolicy): Uint8Array | undefined {
    const rrsig = this.entries.get(keyId)?.get(content);
    if (rrsig === undefined) return undefined;
    const left = rrsigTime(rrsig, 8) - now;
    if (left < policy.refresh || left > policy.validity || rrsigTime(rrsig, 12) > now) return undefined;
    this.put(keyId, content, rrsig);
    return rrsig;
  }

  /** @internal */
  put(keyId: string, content: string, rrsig: Uint8Array): void {
    if (!this.next) return;
    let m = this.next.get(keyId);
    if (!m) {
      m = new Map();
      this.next.set(keyId, m);
    }
    m.set(content, rrsig);
  }

  /**
   * @internal A signature made outside signZone (an update re-signing a few RRsets): kept with the
   * current version's, so the next signZone (reload, refresh) reuses it. Superseded entries stay
   * until that signZone's commit drops them.
   */
  add(keyId: string, content: string, rrsig: Uint8Array): void {
    let m = this.entries.get(keyId);
    if (!m) {
      m = new Map();
      this.entries.set(keyId, m);
    }
    m.set(content, rrsig);
  }

  /** @internal signZone finished: the new version's signatures replace the old ones. */
  commit(): void {
    if (this.next) this.entries = this.next;
    this.next = null;
  }
}

// ---------------------------------------------------------------------------------------------
// Names and hashes

/** The owner of an NSEC3 RR: the base32hex hash (lower case) as the first label of the origin. */
function nsec3Owner(hash: Uint8Array, origin: Name): Name {
  return prependLabel(Buffer.from(base32hexEncode(hash).toLowerCase(), 'latin1'), origin);
}

/** The bytes as a one-byte (latin1) JS string: comparable with < in unsigned byte order. */
function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

/**
 * The cache identity of an RRset's content, as one flat string: owner lower-cased, type, class, TTL,
 * and the canonical RDATAs (RFC 4034 §6.2) sorted and deduplicated, each after its length — what an
 * RRSIG over the set covers besides its own fields.
 */
function contentKey(set: RRset): string {
  let rdatas = set.rdatas.map((rd) => canonicalRdata(set.type, rd));
  if (rdatas.length > 1) {
    rdatas.sort(compareBytes);
    rdatas = rdatas.filter((rd, i) => i === 0 || compareBytes(rd, rdatas[i - 1]!) !== 0);
  }
  let len = set.owner.length + 8;
  for (const rd of rdatas) len += 2 + rd.length;
  const b = Buffer.allocUnsafe(len);
  let p = 0;
  const owner = set.owner;
  while (p < owner.length) {
    const c = owner[p]!;
    b[p++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c; // lengths are < 0x41, so only letters change
  }
  p = b.writeUInt16BE(set.type, p);
  p = b.writeUInt16BE(set.class, p);
  p = b.writeUInt32BE(set.ttl >>> 0, p);
  for (const rd of rdatas) {
    p = b.writeUInt16BE(rd.length, p);
    b.set(rd, p);
    p += rd.length;
  }
  return b.toString('latin1');
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

// ---------------------------------------------------------------------------------------------
// Signing

/** Types the signer makes itself; any found in the input zone are dropped and made anew. */
const SIGNER_TYPES = new Set<number>([TYPE.RRSIG, TYPE.NSEC, TYPE.NSEC3, TYPE.NSEC3PARAM]);

/** Types at the apex signed by the SEP keys (KSK/CSK). */
const SEP_SIGNED = new Set<number>([TYPE.DNSKEY, TYPE.CDS, TYPE.CDNSKEY]);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Removes signer-made types and every signature (a zone that arrived signed is signed anew, not
 * twice), the zone's chains, and with `cds` the apex CDS/CDNSKEY; drops nodes left empty.
 */
function stripSignerData(zone: Zone, cds: boolean): void {
  delete zone.dnssec;
  delete zone.negativeSoa.sigs;
  const visit = (node: ZoneNode): void => {
    for (const c of [...node.children.values()]) visit(c);
    for (const t of SIGNER_TYPES) node.rrsets.delete(t);
    for (const set of node.rrsets.values()) if (set.sigs) set.sigs = undefined;
    if (node === zone.apex && cds) {
      node.rrsets.delete(TYPE.CDS);
      node.rrsets.delete(TYPE.CDNSKEY);
    }
    if (node.parent && node.rrsets.size === 0 && node.children.size === 0) {
      node.parent.children.delete(node);
    }
  };
  visit(zone.apex);
}

function addApexRRset(zone: Zone, type: number, ttl: number, rdatas: Uint8Array[], merge: boolean): RRset {
  const existing = zone.apex.rrsets.get(type);
  if (existing && merge) {
    for (const rd of rdatas) if (!existing.rdatas.some((r) => sameBytes(r, rd))) addRdata(existing, rd);
    return existing;
  }
  const set: RRset = { owner: zone.origin, type, class: CLASS.IN, ttl, rdatas };
  zone.apex.rrsets.set(type, set);
  return set;
}

/** Which keys sign what: per algorithm, SEP keys sign DNSKEY/CDS/CDNSKEY, the others the rest. */
function signerSets(keys: DnssecKey[]): { sep: DnssecKey[]; zsk: DnssecKey[] } {
  const sep: DnssecKey[] = [];
  const zsk: DnssecKey[] = [];
  for (const alg of [...new Set(keys.map((k) => k.algorithm))]) {
    const ofAlg = keys.filter((k) => k.algorithm === alg);
    const revoked = (k: DnssecKey): boolean => (k.flags & DNSKEY_FLAG.REVOKE) !== 0;
    let s = ofAlg.filter((k) => k.role === 'ksk' || k.role === 'csk');
    let z = ofAlg.filter((k) => (k.role === 'zsk' || k.role === 'csk') && !revoked(k));
    // RFC 6840 §5.11: every algorithm in the DNSKEY RRset signs every RRset. A lone KSK (or ZSK) does both.
    if (z.length === 0) z = s.filter((k) => !revoked(k));
    if (s.length === 0) s = z;
    if (z.length === 0) {
      throw new DnssecError(
        E_SIGN,
        `no usable (unrevoked) key of algorithm ${alg} to sign the zone data with`,
      );
    }
    sep.push(...s);
    zsk.push(...z);
  }
  return { sep, zsk };
}

function keyCacheId(key: DnssecKey): string {
  return `${key.algorithm}/${key.tag}/${createHash('sha256').update(key.dnskey).digest('base64').slice(0, 16)}`;
}

/** An RRset to sign and the keys that sign it. */
interface SignTask {
  set: RRset;
  signers: DnssecKey[];
}

/** What prepareZone leaves for the signing step. */
interface Prepared {
  now: number;
  tasks: SignTask[];
  nsecChain: NsecChain | null;
  nsec3: ZoneDnssec['nsec3'];
}

/** One node of the trie with what the signer needs to know about it. */
interface NodeInfo {
  node: ZoneNode;
  /** canonicalSortKey(node.name) */
  key: string;
}

/**
 * The one RRset signing step of signZone and signRRsets: `signSet(set, signers)` sets `set.sigs` to
 * one RRSIG per signer — a fresh cached signature over the same content when the cache has one
 * (RFC 4035 §2.2; refreshed per `policy`), else a new one (inception an hour back for clock skew,
 * expiration `validity` minus up to `jitter` seconds), kept in the cache by `put` (inside a
 * begin/commit of signZone) or `add` (outside one). `stats` counts as it goes; `earliest` is the
 * soonest expiration set (unix seconds; Infinity before any).
 */
function setSigner(
  keys: DnssecKey[],
  policy: DnssecPolicy,
  now: number,
  cache: SignatureCache | undefined,
  keep: 'put' | 'add',
): {
  signSet: (set: RRset, signers: DnssecKey[]) => void;
  stats: { signatures: number; reused: number; earliest: number };
} {
  const ids = new Map<DnssecKey, string>();
  for (const k of keys) ids.set(k, keyCacheId(k));
  const stats = { signatures: 0, reused: 0, earliest: Infinity };
  const times = { inception: now - 3600, expiration: 0 };
  const signSet = (set: RRset, signers: DnssecKey[]): void => {
    const sigs: Uint8Array[] = [];
    const content = cache ? contentKey(set) : '';
    for (const key of signers) {
      const id = ids.get(key)!;
      const hit = cache?.take(id, content, now, policy);
      if (hit) {
        sigs.push(hit);
        stats.earliest = Math.min(stats.earliest, rrsigTime(hit, 8));
        stats.reused++;
        continue;
      }
      times.expiration = now + policy.validity - Math.floor(Math.random() * (policy.jitter + 1));
      const rrsig = signRRset(set, key, times);
      sigs.push(rrsig);
      stats.earliest = Math.min(stats.earliest, times.expiration);
      stats.signatures++;
      if (keep === 'put') cache?.put(id, content, rrsig);
      else cache?.add(id, content, rrsig);
    }
    set.sigs = sigs;
  };
  return { signSet, stats };
}

/**
 * signZone's steps before the signatures (checks, signer-owned apex records, the NSEC/NSEC3 chain)
 * and the list of RRsets to sign with their keys. Throws DnssecError [POPDNS_E_SIGN] as signZone.
 */
function prepareZone(zone: Zone, keys: DnssecKey[], policy: DnssecPolicy, nowIn: number): Prepared {
  checkPolicy(policy);
  if (keys.length === 0) throw new DnssecError(E_SIGN, `no keys to sign ${zone.originText} with`);
  for (const k of keys) {
    if (!nameEquals(k.zone, zone.origin)) {
      throw new DnssecError(
        E_SIGN,
        `key ${k.tag} (algorithm ${k.algorithm}) belongs to ${nameToText(k.zone)}, not ${zone.originText}`,
      );
    }
  }
  const now = Math.floor(nowIn);
  const origin = zone.origin;
  const apex = zone.apex;
  const soaTtl = zone.soa.ttl;
  const denialTtl = negativeTtl(zone.soa);
  const { sep, zsk } = signerSets(keys);

  // 1. Apex records the signer owns.
  stripSignerData(zone, policy.cds);
  addApexRRset(
    zone,
    TYPE.DNSKEY,
    soaTtl,
    keys.map((k) => k.dnskey),
    true,
  );
  const published = keys.filter((k) => k.flags & DNSKEY_FLAG.SEP && !(k.flags & DNSKEY_FLAG.REVOKE));
  if (policy.cds && published.length > 0) {
    addApexRRset(
      zone,
      TYPE.CDNSKEY,
      soaTtl,
      published.map((k) => k.dnskey),
      false,
    );
    addApexRRset(
      zone,
      TYPE.CDS,
      soaTtl,
      published.map((k) => dsFromDnskey(origin, k.dnskey, 2)),
      false,
    );
  }
  let nsec3Params: RRset | null = null;
  const salt = new Uint8Array(0);
  const iterations = 0;
  if (policy.denial === 'nsec3') {
    nsec3Params = addApexRRset(zone, TYPE.NSEC3PARAM, denialTtl, [Uint8Array.of(1, 0, 0, 0, 0)], false);
  }

  // 2. The authoritative names (not occluded): with data, or empty non-terminals.
  const names: NodeInfo[] = [];
  const collect = (node: ZoneNode): void => {
    if (node.occluded) return;
    names.push({ node, key: '' });
    for (const c of node.children.values()) collect(c);
  };
  collect(apex);

  // 3. Denial chain.
  let nsecChain: NsecChain | null = null;
  let nsec3: ZoneDnssec['nsec3'] = null;
  if (policy.denial === 'nsec') {
    const owners = names.filter((n) => n.node.rrsets.size > 0);
    for (const n of owners) n.key = canonicalSortKey(n.node.name);
    owners.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const links: NsecEntry[] = [];
    for (let i = 0; i < owners.length; i++) {
      const node = owners[i]!.node;
      const next = nameToLower(owners[(i + 1) % owners.length]!.node.name);
      const types = node.cut
        ? [...node.rrsets.keys()].filter((t) => t === TYPE.NS || t === TYPE.DS)
        : [...node.rrsets.keys()];
      types.push(TYPE.RRSIG, TYPE.NSEC);
      const bitmap = typeBitmap(types);
      const rdata = new Uint8Array(next.length + bitmap.length);
      rdata.set(next, 0);
      rdata.set(bitmap, next.length);
      const nsec: RRset = {
        owner: node.name,
        type: TYPE.NSEC,
        class: CLASS.IN,
        ttl: denialTtl,
        rdatas: [rdata],
      };
      node.rrsets.set(TYPE.NSEC, nsec);
      links.push({ owner: node.name, nsec });
    }
    nsecChain = nsecChainFrom(links);
  } else {
    const flags = policy.nsec3OptOut ? 1 : 0;
    const entries: { hash: Uint8Array; key: string; types: number[] }[] = [];
    for (const { node } of names) {
      const hasDs = node.rrsets.has(TYPE.DS);
      if (node.cut && !hasDs && policy.nsec3OptOut) continue;
      let types: number[];
      if (node.cut) types = hasDs ? [TYPE.NS, TYPE.DS, TYPE.RRSIG] : [TYPE.NS];
      else types = node.rrsets.size > 0 ? [...node.rrsets.keys(), TYPE.RRSIG] : [];
      const hash = nsec3Hash(node.name, salt, iterations);
      entries.push({ hash, key: latin1(hash), types });
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const chain: { hash: Uint8Array; nsec3: RRset }[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (i > 0 && entries[i - 1]!.key === e.key) {
        throw new DnssecError(E_SIGN, `NSEC3 hash collision in ${zone.originText}; sign with NSEC`);
      }
      const next = entries[(i + 1) % entries.length]!.hash;
      const bitmap = typeBitmap(e.types);
      const rdata = new Uint8Array(6 + next.length + bitmap.length);
      rdata.set([1, flags, iterations >> 8, iterations & 0xff, salt.length], 0);
      rdata.set(salt, 5);
      rdata[5 + salt.length] = next.length;
      rdata.set(next, 6 + salt.length);
      rdata.set(bitmap, 6 + salt.length + next.length);
      const set: RRset = {
        owner: nsec3Owner(e.hash, origin),
        type: TYPE.NSEC3,
        class: CLASS.IN,
        ttl: denialTtl,
        rdatas: [rdata],
      };
      chain.push({ hash: e.hash, nsec3: set });
    }
    nsec3 = { params: nsec3Params!, salt, iterations, chain: nsec3LinksFrom(chain) };
  }

  // 4. What to sign, in order.
  const tasks: SignTask[] = [];
  for (const { node } of names) {
    for (const set of node.rrsets.values()) {
      if (node.cut && set.type !== TYPE.DS && set.type !== TYPE.NSEC) continue;
      tasks.push({ set, signers: node === apex && SEP_SIGNED.has(set.type) ? sep : zsk });
    }
  }
  if (nsec3) for (const { nsec3: set } of nsec3.chain) tasks.push({ set, signers: zsk });
  return { now, tasks, nsecChain, nsec3 };
}

/** Sets zone.dnssec after the signatures are in (and the SOA's onto the negative-answer copy). */
function finishZone(
  zone: Zone,
  keys: DnssecKey[],
  policy: DnssecPolicy,
  p: Prepared,
  earliest: number,
): void {
  const { now, nsecChain, nsec3 } = p;
  // The negative-answer copy of the SOA (lower TTL) carries the same signatures (RFC 4035 §5.3.3).
  if (zone.soa.sigs) zone.negativeSoa.sigs = zone.soa.sigs;
  const describe = `${nsec3 ? `NSEC3${policy.nsec3OptOut ? ' opt-out' : ''}` : 'NSEC'}; keys ${keys.map((k) => `${k.tag}/${k.algorithm}/${k.role}`).join(' ')}`;
  zone.dnssec = {
    presigned: false,
    nsecChain,
    nsec3,
    expires: earliest === Infinity ? null : earliest,
    signer: {
      nextRefresh: (earliest === Infinity ? now + policy.validity : earliest) - policy.refresh + 1,
      describe,
    },
  };
}

/**
 * Signs a freshly built (not yet published) zone in place: the DNSKEY RRset at the apex (TTL = SOA
 * TTL), CDS/CDNSKEY for the SEP keys when `policy.cds`, the NSEC or NSEC3 chain (TTL = min(SOA
 * MINIMUM, SOA TTL), RFC 9077), RRSIGs (`sigs`) on every authoritative RRset, and `zone.dnssec`.
 * Inception is `now - 3600`; expiration `now + validity - random(0..jitter)`. Signatures from `cache`
 * are reused while at least `policy.refresh` seconds of them remain. Returns how many signatures were
 * made and how many reused. Throws DnssecError [POPDNS_E_SIGN] on keys of another zone, no keys, or
 * an unworkable policy. Signs on this thread; signZoneAsync spreads the work over a SignPool.
 */
export function signZone(
  zone: Zone,
  keys: DnssecKey[],
  policy: DnssecPolicy,
  opts: { now: number; cache?: SignatureCache },
): { signatures: number; reused: number } {
  const p = prepareZone(zone, keys, policy, opts.now);
  const cache = opts.cache;
  cache?.begin();
  const { signSet, stats } = setSigner(keys, policy, p.now, cache, 'put');
  for (const t of p.tasks) signSet(t.set, t.signers);
  cache?.commit();
  finishZone(zone, keys, policy, p, stats.earliest);
  return { signatures: stats.signatures, reused: stats.reused };
}

/** signZoneAsync lets the event loop run at least this often (milliseconds). */
const YIELD_MS = 5;

/** Below this many RRsets signZoneAsync signs on the calling thread (threads would cost more). */
export const POOL_MIN_RRSETS = 2000;

/**
 * signZone with the signatures made on the threads of `pool` (dnssec/signpool.ts): the same zone
 * content, the same cache use (hits are taken here, new signatures put), the same counts. The main
 * thread builds each RRset's signed data into batch buffers of about BATCH_BYTES and keeps at most
 * pool.maxInFlight batches out (bounded memory); between batches the event loop runs, so a server
 * keeps answering while a big zone signs. Zones under `minPooled` (POOL_MIN_RRSETS) RRsets, or no
 * pool, are signed on this thread, as signZone does.
 * Resolves to the counts and `pooled`: whether the pool's threads made the signatures.
 * Rejects with DnssecError [POPDNS_E_SIGN] as signZone throws, or when a signing thread fails; the
 * zone is then half signed and must not be published.
 */
export async function signZoneAsync(
  zone: Zone,
  keys: DnssecKey[],
  policy: DnssecPolicy,
  opts: { now: number; cache?: SignatureCache; pool?: SignPool | null; minPooled?: number },
): Promise<{ signatures: number; reused: number; pooled: boolean }> {
  const p = prepareZone(zone, keys, policy, opts.now);
  const cache = opts.cache;
  const pool = opts.pool ?? null;
  cache?.begin();
  const { signSet, stats } = setSigner(keys, policy, p.now, cache, 'put');
  if (pool === null || p.tasks.length < (opts.minPooled ?? POOL_MIN_RRSETS)) {
    for (const t of p.tasks) signSet(t.set, t.signers);
    cache?.commit();
    finishZone(zone, keys, policy, p, stats.earliest);
    return { signatures: stats.signatures, reused: stats.reused, pooled: false };
  }
  const ids = new Map<DnssecKey, string>();
  for (const k of keys) ids.set(k, keyCacheId(k));
  interface Item {
    sigs: Uint8Array[];
    slot: number;
    key: DnssecKey;
    content: string;
    expiration: number;
  }
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  let buf = Buffer.allocUnsafe(BATCH_BYTES);
  let at = 0;
  let ends: number[] = [];
  let items: Item[] = [];
  const times = { inception: p.now - 3600, expiration: 0 };
  const land = (r: BatchResult, batch: Item[], batchEnds: number[]): void => {
    let start = 0;
    let sigStart = 0;
    for (let i = 0; i < batch.length; i++) {
      const it = batch[i]!;
      const head = rrsigHeadLength(it.key);
      const sigEnd = r.sigEnds[i]!;
      const rrsig = Buffer.allocUnsafe(head + sigEnd - sigStart);
      r.buf.copy(rrsig, 0, start, start + head);
      r.sigs.copy(rrsig, head, sigStart, sigEnd);
      it.sigs[it.slot] = rrsig;
      stats.signatures++;
      if (it.expiration < stats.earliest) stats.earliest = it.expiration;
      cache?.put(ids.get(it.key)!, it.content, rrsig);
      start = batchEnds[i]!;
      sigStart = sigEnd;
    }
  };
  const send = async (): Promise<void> => {
    if (items.length === 0) return;
    const batch = items;
    const batchEnds = ends;
    const job = pool
      .sign(
        buf.subarray(0, at),
        Uint32Array.from(batchEnds),
        batch.map((it) => it.key),
      )
      .then(
        (r) => land(r, batch, batchEnds),
        (e: unknown) => {
          failure ??= e;
        },
      );
    inFlight.add(job);
    void job.finally(() => inFlight.delete(job));
    buf = Buffer.allocUnsafe(BATCH_BYTES);
    at = 0;
    ends = [];
    items = [];
    while (inFlight.size >= pool.maxInFlight) await Promise.race(inFlight);
  };
  let turn = performance.now();
  for (let ti = 0; ti < p.tasks.length; ti++) {
    const { set, signers } = p.tasks[ti]!;
    if (failure !== null) break;
    // Cache hits need no thread: let the event loop run every few milliseconds all the same.
    if ((ti & 255) === 0 && performance.now() - turn >= YIELD_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      turn = performance.now();
    }
    if (set.rdatas.length === 0) throw new DnssecError(E_SIGN, 'cannot sign an empty RRset');
    const content = cache ? contentKey(set) : '';
    const sigs = new Array<Uint8Array>(signers.length);
    for (let j = 0; j < signers.length; j++) {
      const key = signers[j]!;
      const hit = cache?.take(ids.get(key)!, content, p.now, policy);
      if (hit) {
        sigs[j] = hit;
        stats.earliest = Math.min(stats.earliest, rrsigTime(hit, 8));
        stats.reused++;
        continue;
      }
      times.expiration = p.now + policy.validity - Math.floor(Math.random() * (policy.jitter + 1));
      let end = writeSignedData(buf, at, set, key, times);
      if (end < 0 && at > 0) {
        await send();
        end = writeSignedData(buf, at, set, key, times);
      }
      if (end < 0) {
        // One RRset bigger than a batch: on this thread.
        const one = signRRset(set, key, times);
        sigs[j] = one;
        stats.signatures++;
        stats.earliest = Math.min(stats.earliest, times.expiration);
        cache?.put(ids.get(key)!, content, one);
        continue;
      }
      at = end;
      ends.push(end);
      items.push({ sigs, slot: j, key, content, expiration: times.expiration });
    }
    set.sigs = sigs;
  }
  if (failure === null) await send();
  while (inFlight.size > 0) await Promise.race(inFlight);
  if (failure !== null) {
    cache?.begin(); // drop what this run collected: the cache keeps the previous version's
    throw failure instanceof Error ? failure : new DnssecError(E_SIGN, String(failure));
  }
  cache?.commit();
  finishZone(zone, keys, policy, p, stats.earliest);
  return { signatures: stats.signatures, reused: stats.reused, pooled: true };
}

/**
 * Signs some RRsets of a zone popdns signs, in place (`sigs`), with the keys and policy the zone was
 * signed with: what an update changed (RRsets, their NSEC/NSEC3 records, the SOA), without touching
 * the rest (src/update/resign.ts). Apex DNSKEY/CDS/CDNSKEY get the SEP keys, everything else the
 * zone-signing keys, as in signZone; times and the cache work the same way (a fresh cached signature
 * over the same content is reused, new ones are added to the cache). Returns the counts and the
 * earliest expiration among the signatures set (unix seconds; null when `sets` is empty). Throws
 * DnssecError [POPDNS_E_SIGN] as signZone does.
 */
export function signRRsets(
  zone: Zone,
  sets: readonly RRset[],
  keys: DnssecKey[],
  policy: DnssecPolicy,
  opts: { now: number; cache?: SignatureCache },
): { signatures: number; reused: number; earliest: number | null } {
  if (keys.length === 0) throw new DnssecError(E_SIGN, `no keys to sign ${zone.originText} with`);
  const now = Math.floor(opts.now);
  const { sep, zsk } = signerSets(keys);
  const { signSet, stats } = setSigner(keys, policy, now, opts.cache, 'add');
  for (const set of sets)
    signSet(set, SEP_SIGNED.has(set.type) && nameEquals(set.owner, zone.origin) ? sep : zsk);
  const { signatures, reused, earliest } = stats;
  return { signatures, reused, earliest: earliest === Infinity ? null : earliest };
}

// ---------------------------------------------------------------------------------------------
// Export as a master file

/**
 * The whole zone, signed, as an RFC 1035 master file: the SOA first, then owners in canonical order
 * (NSEC3 owners among them), each RRset followed by its RRSIGs. Names are written absolute; glue and
 * delegation NS (unsigned) are included.
 */
export function signedZoneText(zone: Zone): string {
  return [...signedZoneChunks(zone)].join('');
}

/** About this many characters per chunk of signedZoneChunks. */
const CHUNK_CHARS = 1 << 20;

/**
 * signedZoneText in pieces of about a megabyte each (lines whole), so a writer can put them out
 * without building the whole text: what `popdns sign` writes. RRSIG lines are formatted here
 * directly (the times of one signing run repeat, so each is formatted once).
 */
export function* signedZoneChunks(zone: Zone): Generator<string, void, void> {
  const owners: { key: string; owner: Name; sets: RRset[] }[] = [];
  const visit = (node: ZoneNode): void => {
    if (node.rrsets.size > 0) {
      const sets = [...node.rrsets.values()].sort((a, b) =>
        a.type === TYPE.SOA ? -1 : b.type === TYPE.SOA ? 1 : a.type - b.type,
      );
      const name = node.name;
      owners.push({ key: canonicalSortKey(name), owner: name, sets });
    }
    for (const c of node.children.values()) visit(c);
  };
  visit(zone.apex);
  for (const { nsec3 } of zone.dnssec?.nsec3?.chain ?? []) {
    owners.push({ key: canonicalSortKey(nsec3.owner), owner: nsec3.owner, sets: [nsec3] });
  }
  owners.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const d = zone.dnssec;
  let out =
    `; ${zone.originText} serial ${zone.serial}, signed by popdns` +
    (d ? ` (${d.signer?.describe ?? 'signatures as received: pre-signed'})` : ' (unsigned)') +
    '\n';
  const rrsig = rrsigTextFormatter();
  for (const { owner, sets } of owners) {
    const ownerText = nameToText(owner);
    for (const set of sets) {
      const head = `${ownerText} ${set.ttl} IN `;
      const type = typeToText(set.type);
      for (const rd of set.rdatas) out += `${head}${type} ${rdataToText(set.type, rd)}\n`;
      if (set.sigs) for (const sig of set.sigs) out += `${head}RRSIG ${rrsig(sig)}\n`;
    }
    if (out.length >= CHUNK_CHARS) {
      yield out;
      out = '';
    }
  }
  if (out.length > 0) yield out;
}

/**
 * RRSIG RDATA → presentation text (RFC 4034 §3.2), as rdataToText writes it, with the times and
 * signer names of a run cached; falls back to rdataToText for anything unusual.
 */
function rrsigTextFormatter(): (rrsig: Uint8Array) => string {
  const times = new Map<number, string>();
  const signers = new Map<string, string>();
  const time = (t: number): string => {
    let s = times.get(t);
    if (s === undefined) {
      s = new Date(t * 1000).toISOString().replace(/[-T:]/g, '').slice(0, 14);
      times.set(t, s);
    }
    return s;
  };
  return (rrsig) => {
    const b = Buffer.from(rrsig.buffer, rrsig.byteOffset, rrsig.length);
    let p = 18;
    while (p < b.length && b[p]! !== 0 && b[p]! < 0x40) p += b[p]! + 1;
    if (p >= b.length || b[p] !== 0) return rdataToText(TYPE.RRSIG, rrsig);
    p++;
    const key = b.toString('latin1', 18, p);
    let signer = signers.get(key);
    if (signer === undefined) {
      signer = nameToText(rrsig.subarray(18, p));
      signers.set(key, signer);
    }
    return `${typeToText(b.readUInt16BE(0))} ${b[2]} ${b[3]} ${b.readUInt32BE(4)} ${time(b.readUInt32BE(8))} ${time(b.readUInt32BE(12))} ${b.readUInt16BE(16)} ${signer} ${b.toString('base64', p)}`;
  };
}
