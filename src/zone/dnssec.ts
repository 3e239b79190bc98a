/**
 * A zone's DNSSEC data, in the zone layer below both the signer (dnssec/signzone.ts) and the answer
 * engine (query/denial.ts): the RRSIGs of each RRset (`RRset.sigs`), the NSEC chain (RFC 4034 §4),
 * the NSEC3 chain with its NSEC3PARAM (RFC 5155), and the lookups over the chains.
 *
 * Two producers fill the same structure, and the answer engine reads it one way for both:
 * - popdns' own signer, for a zone it has keys for;
 * - `attachPresigned` (run by the zone builder), for a zone that arrives signed by another signer —
 *   a pre-signed file (ldns-signzone, dnssec-signzone, Knot, OpenDNSSEC) or a zone transfer. It moves
 *   each RRSIG onto the RRset it covers, takes the NSEC3 records out of the name tree into the chain,
 *   and never signs anything.
 *
 * This module imports only types from zone.ts, so zone.ts can call it without an import cycle.
 */
import { createHash } from 'node:crypto';
import { TYPE, typeToText } from '../wire/constants.js';
import {
  canonicalCompare,
  labelOffsets,
  type Name,
  nameEquals,
  nameToLower,
  nameToText,
  readName,
} from '../wire/name.js';
import { SortedChain } from './chain.js';
import { type Diagnostic, diag, type Position } from './types.js';
import type { RRset, Zone, ZoneNode } from './zone.js';

/** One link of the NSEC chain: an owner and its NSEC RRset (which also sits in the name tree). */
export interface NsecEntry {
  owner: Name;
  nsec: RRset;
}

/** One link of the NSEC3 chain: the raw owner hash and its NSEC3 RRset (NOT in the name tree). */
export interface Nsec3Entry {
  hash: Uint8Array;
  nsec3: RRset;
}

/**
 * The NSEC chain: entries in canonical order of their owners (RFC 4034 §6.1), searched by name.
 * Shared between zone versions (zone/chain.ts): never written, a change makes a new one.
 */
export type NsecChain = SortedChain<NsecEntry, Name>;

/** The links of an NSEC3 chain, sorted by raw hash, searched by hash; shared like NsecChain. */
export type Nsec3Links = SortedChain<Nsec3Entry, Uint8Array>;

const nsecCmp = (e: NsecEntry, name: Name): number => canonicalCompare(e.owner, name);
const nsec3Cmp = (e: Nsec3Entry, hash: Uint8Array): number => Buffer.compare(e.hash, hash);

/** An NsecChain of entries already in canonical order of their owners (unique). */
export function nsecChainFrom(sorted: readonly NsecEntry[]): NsecChain {
  return SortedChain.from(sorted, nsecCmp);
}

/** NSEC3 links of entries already sorted by hash (unique). */
export function nsec3LinksFrom(sorted: readonly Nsec3Entry[]): Nsec3Links {
  return SortedChain.from(sorted, nsec3Cmp);
}

/** An NSEC3 chain: the NSEC3PARAM RRset at the apex, its parameters, and the links sorted by hash. */
export interface Nsec3Chain {
  params: RRset;
  salt: Uint8Array;
  /** Extra hash iterations (RFC 5155 §5). */
  iterations: number;
  chain: Nsec3Links;
}

/** What popdns' own signer keeps about a zone it signed (absent for a pre-signed zone). */
export interface SignerState {
  /** Unix seconds when the signer should run again (the earliest signature's refresh time). */
  nextRefresh: number;
  /** What signed it, for logs and file headers, e.g. `NSEC3 opt-out; keys 12345/13/csk`. */
  describe: string;
}

/** The DNSSEC data of a signed zone (`Zone.dnssec`); an unsigned zone has none. */
export interface ZoneDnssec {
  /** True when the signatures came with the zone (file or transfer) and popdns cannot re-sign it. */
  presigned: boolean;
  /** NSEC: owners in canonical order (RFC 4034 §6.1); null when the zone uses NSEC3 (or has no chain). */
  nsecChain: NsecChain | null;
  /** NSEC3: null when the zone uses NSEC (or has no chain). */
  nsec3: Nsec3Chain | null;
  /** The earliest RRSIG expiration in the zone (unix seconds), or null when it has no signatures. */
  expires: number | null;
  /** Set by popdns' signer; null for a pre-signed zone. */
  signer: SignerState | null;
}

// ---------------------------------------------------------------------------------------------
// Names, hashes and RRSIG fields

/**
 * A string that sorts (with < on JS strings) in canonical DNS name order (RFC 4034 §6.1): labels
 * from the root, each lower-cased byte b as the char b+1 and a 0 char after each label.
 */
export function canonicalSortKey(name: Name): string {
  const offs = labelOffsets(name);
  let s = '';
  for (let i = offs.length - 1; i >= 0; i--) {
    const o = offs[i]!;
    const len = name[o]!;
    const codes: number[] = new Array<number>(len + 1);
    for (let j = 0; j < len; j++) {
      const b = name[o + 1 + j]!;
      codes[j] = (b >= 0x41 && b <= 0x5a ? b | 0x20 : b) + 1;
    }
    codes[len] = 0;
    s += String.fromCharCode(...codes);
  }
  return s;
}

/**
 * The NSEC3 hash of a name (RFC 5155 §5): IH(salt, x, 0) = SHA-1(x || salt), IH(salt, x, k) =
 * SHA-1(IH(salt, x, k-1) || salt), with x the lower-cased wire name; `iterations` extra rounds.
 */
export function nsec3Hash(name: Name, salt: Uint8Array, iterations: number): Uint8Array {
  let h = createHash('sha1').update(nameToLower(name)).update(salt).digest();
  for (let i = 0; i < iterations; i++) h = createHash('sha1').update(h).update(salt).digest();
  return new Uint8Array(h.buffer, h.byteOffset, h.length);
}

const B32HEX = '0123456789abcdefghijklmnopqrstuv';

/** A base32hex label (RFC 4648 §7, no padding, any case) as bytes, or null when it is not one. */
function base32hexLabel(label: string): Uint8Array | null {
  const out: number[] = [];
  let value = 0;
  let bits = 0;
  for (const ch of label.toLowerCase()) {
    const v = B32HEX.indexOf(ch);
    if (v < 0) return null;
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

/** Type covered by an RRSIG RDATA (RFC 4034 §3.1). */
export function rrsigTypeCovered(rrsig: Uint8Array): number {
  return (rrsig[0]! << 8) | rrsig[1]!;
}

/** Signature expiration (offset 8) or inception (offset 12) of an RRSIG RDATA, unix seconds. */
export function rrsigTime(rrsig: Uint8Array, offset: 8 | 12): number {
  return (
    ((rrsig[offset]! << 24) | (rrsig[offset + 1]! << 16) | (rrsig[offset + 2]! << 8) | rrsig[offset + 3]!) >>>
    0
  );
}

/** Key tag of an RRSIG RDATA. */
function rrsigKeyTag(rrsig: Uint8Array): number {
  return (rrsig[16]! << 8) | rrsig[17]!;
}

/** The uncompressed name at `offset` of an RDATA, or null when there is none. */
function nameAt(rdata: Uint8Array, offset: number): Name | null {
  if (offset >= rdata.length) return null;
  try {
    return readName(rdata, offset).name;
  } catch {
    return null;
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

// ---------------------------------------------------------------------------------------------
// Denial lookups (used by the answer path: no hashing of zone data beyond the query name)

/**
 * The NSEC owned by `name` (match, case-insensitive), or else the one whose owner < name < next owner
 * in canonical order (covering), wrapping at the end of the chain. Both null in an unsigned or NSEC3
 * zone. Returns the RRsets of the zone itself (same objects as in the trie).
 */
export function denialNsec(zone: Zone, name: Name): { match: RRset | null; covering: RRset | null } {
  const e = zone.dnssec?.nsecChain?.floorWrap(name);
  if (!e) return { match: null, covering: null };
  // The entry with that owner, else the last one below it (or the last of all: wrapping).
  if (canonicalCompare(e.owner, name) === 0) return { match: e.nsec, covering: null };
  return { match: null, covering: e.nsec };
}

/**
 * The NSEC3 whose hash is H(name) (match), or else the one whose hash < H(name) < next hash
 * (covering), wrapping. The hash uses the chain's salt and iterations. Both null in an unsigned or
 * NSEC zone.
 */
export function denialNsec3(zone: Zone, name: Name): { match: RRset | null; covering: RRset | null } {
  const n3 = zone.dnssec?.nsec3;
  if (!n3 || n3.chain.length === 0) return { match: null, covering: null };
  const h = nsec3Hash(name, n3.salt, n3.iterations);
  const e = n3.chain.floorWrap(h)!;
  if (compareBytes(e.hash, h) === 0) return { match: e.nsec3, covering: null };
  return { match: null, covering: e.nsec3 };
}

// ---------------------------------------------------------------------------------------------
// Pre-signed zones

/** Signatures that expire within this many seconds draw POPDNS_W_RRSIG_EXPIRING (3 days). */
export const EXPIRY_WARNING_SECONDS = 3 * 86400;

/** At most this many warnings of one code name an RRset; one more line counts the rest. */
const MAX_NAMED = 10;

/**
 * Takes a node left with no RRsets and no children out of the tree, and its parents that are left
 * empty by that (names that only held RRSIGs or NSEC3s are not names of the zone).
 */
function prune(node: ZoneNode): void {
  let n: ZoneNode | null = node;
  while (n?.parent && n.rrsets.size === 0 && n.children.size === 0) {
    n.parent.children.delete(n);
    n = n.parent;
  }
}

/** A zone that popdns did not sign itself but that arrived signed: a DNSKEY at the apex and RRSIGs. */
export function isPresigned(zone: Zone, rrsigCount: number): boolean {
  return rrsigCount > 0 && zone.apex.rrsets.has(TYPE.DNSKEY);
}

function isoTime(t: number): string {
  return new Date(t * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * For `popdns check`'s line about a loaded zone: '' for an unsigned zone, else e.g. `, pre-signed
 * (NSEC3 opt-out), signatures valid until 2026-12-28T08:33:33Z` (the earliest expiration).
 */
export function dnssecSummary(zone: Zone): string {
  const d = zone.dnssec;
  if (!d) return '';
  let optOut = '';
  for (const e of d.nsec3?.chain ?? []) {
    if ((e.nsec3.rdatas[0]?.[1] ?? 0) & 1) {
      optOut = ' opt-out';
      break;
    }
  }
  const denial = d.nsec3 ? `NSEC3${optOut}` : d.nsecChain ? 'NSEC' : 'no NSEC/NSEC3 chain';
  const until = d.expires !== null ? `, signatures valid until ${isoTime(d.expires)}` : '';
  return `, ${d.presigned ? 'pre-signed' : 'signed'} (${denial})${until}`;
}

/**
 * Turns a freshly built zone that arrived signed (a DNSKEY RRset at the apex and RRSIG records;
 * see isPresigned) into a signed zone served as it is, with the same structure popdns' signer makes:
 *
 * - each RRSIG moves from the node's RRSIG RRset onto the RRset at that name of its type covered
 *   (RFC 4034 §3, RFC 4035 §2.2); the RRSIG RRset itself is never signed, nor served as one;
 * - signatures that cannot be authoritative are dropped with a warning: over the NS (or any other
 *   type but DS and NSEC) at a delegation point, below a zone cut (glue) or DNAME, over a type not
 *   at that name, or by another zone (signer name not the origin); RRSIGs over RRSIG;
 * - NSEC3 records leave the name tree (their owners are not names of the zone): those matching the
 *   apex NSEC3PARAM (hash algorithm, iterations, salt; RFC 5155 §4) become the NSEC3 chain, sorted by
 *   hash; without an NSEC3PARAM there is no usable NSEC3 chain (RFC 5155 §7.3);
 * - otherwise the NSEC records (which stay in the tree) become the NSEC chain in canonical order;
 * - `zone.negativeSoa` gets the SOA's signatures, and `zone.dnssec` is set with `presigned: true`.
 *
 * Warnings (never errors: the zone is served as the other signer made it): expired, expiring within
 * EXPIRY_WARNING_SECONDS of `now` and not yet valid signatures (naming the RRset and the time),
 * authoritative RRsets without signatures, breaks in the chain, no chain at all. `posOf` gives the
 * position of an RRset's first record (the RRSIG RRset's for signature problems). `now` in unix
 * seconds. Expects the builder's flags (`cut`, `occluded`) to be set already.
 */
export function attachPresigned(zone: Zone, posOf: (set: RRset) => Position, now: number): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  /** Per code: how many, and where the first one not named is. */
  const counts = new Map<string, { n: number; pos: Position | null }>();
  const warn = (code: string, message: string, pos: Position): void => {
    const c = counts.get(code) ?? { n: 0, pos: null };
    c.n++;
    counts.set(code, c);
    if (c.n <= MAX_NAMED) diagnostics.push(diag('warning', code, message, pos));
    else c.pos ??= pos;
  };
  const origin = zone.origin;
  const apex = zone.apex;
  const setName = (node: ZoneNode, type: number): string => `${nameToText(node.name)} ${typeToText(type)}`;

  const nodes: ZoneNode[] = [];
  const collect = (n: ZoneNode): void => {
    nodes.push(n);
    for (const c of n.children.values()) collect(c);
  };
  collect(apex);

  // 1. RRSIGs onto the RRsets they cover; expiry per RRset.
  let earliest = Infinity;
  const nsec3Nodes: ZoneNode[] = [];
  for (const node of nodes) {
    const rrsigs = node.rrsets.get(TYPE.RRSIG);
    if (node.rrsets.has(TYPE.NSEC3)) nsec3Nodes.push(node);
    if (!rrsigs) continue;
    node.rrsets.delete(TYPE.RRSIG);
    prune(node);
    if (node.occluded) continue; // below a cut or DNAME: not authoritative, never served
    const pos = posOf(rrsigs);
    const signed: RRset[] = [];
    for (const rd of rrsigs.rdatas) {
      const covered = rrsigTypeCovered(rd);
      const signer = nameAt(rd, 18);
      if (!signer || !nameEquals(signer, origin)) {
        warn(
          'POPDNS_W_RRSIG_SIGNER',
          `RRSIG over ${setName(node, covered)} is by ${signer ? nameToText(signer) : '?'}, not by the zone ${zone.originText}; not served`,
          pos,
        );
        continue;
      }
      if (covered === TYPE.RRSIG) {
        warn('POPDNS_W_RRSIG_IGNORED', `RRSIG over the RRSIGs of ${nameToText(node.name)} ignored`, pos);
        continue;
      }
      if (node.cut && covered !== TYPE.DS && covered !== TYPE.NSEC) {
        warn(
          'POPDNS_W_RRSIG_IGNORED',
          `RRSIG over ${setName(node, covered)} at a delegation point ignored: only DS and NSEC are signed there (RFC 4035 §2.2)`,
          pos,
        );
        continue;
      }
      const set = node.rrsets.get(covered);
      if (!set) {
        warn(
          'POPDNS_W_RRSIG_IGNORED',
          `RRSIG over ${setName(node, covered)}, which the zone does not have, ignored`,
          pos,
        );
        continue;
      }
      if (!set.sigs) {
        set.sigs = [];
        signed.push(set);
      }
      set.sigs.push(rd);
    }
    for (const set of signed) {
      let exp = Infinity;
      let inc = 0;
      let tag = 0;
      for (const s of set.sigs!) {
        const e = rrsigTime(s, 8);
        if (e < exp) {
          exp = e;
          tag = rrsigKeyTag(s);
        }
        inc = Math.max(inc, rrsigTime(s, 12));
      }
      earliest = Math.min(earliest, exp);
      const what = `the signature over ${setName(node, set.type)} (key ${tag})`;
      if (exp < now) {
        warn('POPDNS_W_RRSIG_EXPIRED', `${what} expired at ${isoTime(exp)}`, pos);
      } else if (exp - now < EXPIRY_WARNING_SECONDS) {
        const days = ((exp - now) / 86400).toFixed(1);
        warn('POPDNS_W_RRSIG_EXPIRING', `${what} expires at ${isoTime(exp)}, in ${days} days`, pos);
      }
      if (inc > now) {
        warn(
          'POPDNS_W_RRSIG_NOT_YET_VALID',
          `a signature over ${setName(node, set.type)} is valid only from ${isoTime(inc)}`,
          pos,
        );
      }
    }
  }

  // 2. NSEC3 records out of the name tree; the chain the NSEC3PARAM names.
  const paramSet = apex.rrsets.get(TYPE.NSEC3PARAM);
  const param = paramSet?.rdatas.find((p) => p.length >= 5 && p[0] === 1 && p.length === 5 + p[4]!);
  let nsec3: Nsec3Chain | null = null;
  /** The chain's parameters and its links while they are collected. */
  let params: { salt: Uint8Array; iterations: number; links: Nsec3Entry[] } | null = null;
  if (paramSet && param) {
    params = {
      salt: param.subarray(5, 5 + param[4]!),
      iterations: (param[2]! << 8) | param[3]!,
      links: [],
    };
  } else if (paramSet) {
    warn(
      'POPDNS_W_NSEC3PARAM',
      'no NSEC3PARAM with hash algorithm 1 (SHA-1): NSEC3 is not used',
      posOf(paramSet),
    );
  }
  const sameParams = (rd: Uint8Array, c: { salt: Uint8Array; iterations: number }): boolean =>
    rd.length > 5 &&
    rd[0] === 1 &&
    ((rd[2]! << 8) | rd[3]!) === c.iterations &&
    rd[4] === c.salt.length &&
    compareBytes(rd.subarray(5, 5 + c.salt.length), c.salt) === 0;
  let otherParams = 0;
  for (const node of nsec3Nodes) {
    const set = node.rrsets.get(TYPE.NSEC3)!;
    node.rrsets.delete(TYPE.NSEC3);
    prune(node);
    if (node.occluded) continue;
    const hash = node.parent === apex ? base32hexLabel(node.label) : null;
    if (!hash || hash.length === 0) {
      warn(
        'POPDNS_W_NSEC3_OWNER',
        `NSEC3 at ${nameToText(node.name)}: an NSEC3 owner is one base32hex hash label under the apex; ignored`,
        posOf(set),
      );
      continue;
    }
    const c = params;
    if (!c) continue;
    if (!set.rdatas.some((rd) => sameParams(rd, c))) {
      otherParams++;
      continue;
    }
    c.links.push({ hash, nsec3: set });
  }
  if (nsec3Nodes.length > 0 && !paramSet) {
    warn(
      'POPDNS_W_NSEC3PARAM',
      `${nsec3Nodes.length} NSEC3 records but no NSEC3PARAM at the apex: the NSEC3 chain is not used (RFC 5155 §7.3)`,
      posOf(nsec3Nodes[0]!.rrsets.get(TYPE.NSEC3) ?? zone.soa),
    );
  }
  if (params && otherParams > 0) {
    warn(
      'POPDNS_W_NSEC3_CHAIN',
      `${otherParams} NSEC3 records have other parameters than the NSEC3PARAM; not used`,
      posOf(paramSet!),
    );
  }
  if (params) {
    const c = params;
    c.links.sort((a, b) => compareBytes(a.hash, b.hash));
    const chain = c.links;
    for (let i = 0; i < chain.length; i++) {
      const e = chain[i]!;
      const want = chain[(i + 1) % chain.length]!.hash;
      const rd = e.nsec3.rdatas.find((r) => sameParams(r, c))!;
      const saltLen = rd[4]!;
      const hashLen = rd[5 + saltLen] ?? 0;
      const next = rd.subarray(6 + saltLen, 6 + saltLen + hashLen);
      if (compareBytes(next, want) !== 0) {
        warn(
          'POPDNS_W_NSEC3_CHAIN',
          `the NSEC3 chain is broken at ${nameToText(e.nsec3.owner)}: its next hash is not the next NSEC3 owner's; some negative answers will not validate`,
          posOf(e.nsec3),
        );
      }
    }
    if (chain.length > 0) {
      nsec3 = { params: paramSet!, salt: c.salt, iterations: c.iterations, chain: nsec3LinksFrom(chain) };
    }
  }

  // 3. Otherwise the NSEC chain.
  let nsecChain: NsecChain | null = null;
  if (!nsec3) {
    const owners: { key: string; owner: Name; nsec: RRset }[] = [];
    for (const node of nodes) {
      if (node.occluded) continue;
      const nsec = node.rrsets.get(TYPE.NSEC);
      if (nsec) owners.push({ key: canonicalSortKey(node.name), owner: node.name, nsec });
    }
    owners.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (let i = 0; i < owners.length; i++) {
      const rd = owners[i]!.nsec.rdatas[0]!;
      const next = nameAt(rd, 0);
      const want = owners[(i + 1) % owners.length]!;
      if (!next || canonicalSortKey(next) !== want.key) {
        warn(
          'POPDNS_W_NSEC_CHAIN',
          `the NSEC chain is broken at ${nameToText(owners[i]!.owner)}: its next name is ${next ? nameToText(next) : '?'}, but the next owner is ${nameToText(want.owner)}; some negative answers will not validate`,
          posOf(owners[i]!.nsec),
        );
      }
    }
    if (owners.length > 0) nsecChain = nsecChainFrom(owners.map(({ owner, nsec }) => ({ owner, nsec })));
  }
  if (!nsec3 && !nsecChain) {
    warn(
      'POPDNS_W_NO_DENIAL',
      `zone ${zone.originText} is signed but has no NSEC or NSEC3 chain: its negative answers will not validate`,
      posOf(zone.soa),
    );
  }

  // 4. Authoritative RRsets that arrived without a signature.
  for (const node of nodes) {
    if (node.occluded) continue;
    for (const set of node.rrsets.values()) {
      if (set.sigs || (node.cut && set.type !== TYPE.DS && set.type !== TYPE.NSEC)) continue;
      warn(
        'POPDNS_W_RRSIG_MISSING',
        `${setName(node, set.type)} has no signature: validating resolvers will reject it`,
        posOf(set),
      );
    }
  }
  for (const e of nsec3?.chain ?? []) {
    if (!e.nsec3.sigs) {
      warn('POPDNS_W_RRSIG_MISSING', `${nameToText(e.nsec3.owner)} NSEC3 has no signature`, posOf(e.nsec3));
    }
  }

  for (const [code, { n, pos }] of counts) {
    if (pos) {
      const more = `${n - MAX_NAMED} more with the same problem, from here on, not listed`;
      diagnostics.push(diag('warning', code, more, pos));
    }
  }

  if (zone.soa.sigs) zone.negativeSoa.sigs = zone.soa.sigs;
  zone.dnssec = {
    presigned: true,
    nsecChain,
    nsec3,
    expires: earliest === Infinity ? null : earliest,
    signer: null,
  };
  return diagnostics;
}
