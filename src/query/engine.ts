/**
 * The answer engine: RFC 1034 §4.3.2 for one IN-class question, with negative answers per RFC 2308,
 * wildcards per RFC 4592, DNAME per RFC 6672 and ANY per RFC 8482. It decides which RRsets go into
 * which section; encoding them is the server's job.
 *
 * Where the RFCs leave room, popdns answers like Knot DNS (the differential-test oracle):
 * - positive answers carry no authority section;
 * - a CNAME chain is followed inside the answering zone only, at most MAX_CHAIN links, and a loop
 *   ends the chain (NOERROR with the records so far); queries for CNAME, RRSIG and NSEC are not followed;
 * - ANY returns a single RRset: the one with the lowest type number at the name (RFC 8482 §4.2);
 * - RRSIG returns the signatures of one RRset, chosen the same way (RFC 4035 §3.1.5 leaves the choice).
 */
import { RCODE, TYPE } from '../wire/constants.js';
import {
  isSubdomainOf,
  labelOffsets,
  type Name,
  nameEquals,
  replaceSuffix,
  stripLabels,
} from '../wire/name.js';
import { rdataTarget } from '../wire/rdata.js';
import { findNode, type RRset, wildcardFor, type Zone, type ZoneNode } from '../zone/zone.js';
import type { ZoneSet } from '../zone/zoneset.js';
import { proveNodata, proveNxdomain, proveWildcardAnswer, proveWildcardNodata } from './denial.js';
import type { Answer } from './types.js';

/**
 * Most CNAME records (given or DNAME-synthesized) in one answer, like Knot's CNAME_CHAIN_MAX: the data
 * at the end of a chain of 5 is still returned, a 6th CNAME is not.
 */
export const MAX_CHAIN = 5;

function newAnswer(zone: Zone | null, rcode: number, aa: boolean): Answer {
  return { rcode, aa, answer: [], authority: [], additional: [], requiredAdditional: 0, zone, dnssec: false };
}

/**
 * Resolves one IN-class question against the loaded zones. With `dnssecOk` (the DO bit) and a signed
 * zone, the answer carries denial proofs too (RRSIGs travel with their RRsets; the writer adds them).
 */
export function resolve(zones: ZoneSet, qname: Name, qtype: number, dnssecOk = false): Answer {
  // RRTYPE 0 is reserved, never data (RFC 6895 §3.1): NOTIMP for any name, like Knot.
  if (qtype === 0) return newAnswer(null, RCODE.NOTIMP, false);
  let zone = zones.find(qname);
  if (!zone) return newAnswer(null, RCODE.REFUSED, false);
  if (zone.servfail) return newAnswer(zone, RCODE.SERVFAIL, false);
  // A DS record lives in the parent zone: at a zone apex, the parent answers when we serve it too.
  if (qtype === TYPE.DS && zone.originLabels > 0 && nameEquals(qname, zone.origin)) {
    const parent = zones.find(stripLabels(qname, 1));
    if (parent) zone = parent;
  }
  const ans = newAnswer(zone, RCODE.NOERROR, true);
  ans.dnssec = dnssecOk && zone.dnssec !== undefined;
  lookup(zone, qname, qtype, ans, 0);
  return ans;
}

/** Copy of an RRset under another owner (wildcard synthesis). */
function withOwner(set: RRset, owner: Name | null): RRset {
  if (!owner) return set;
  const out: RRset = { owner, type: set.type, class: set.class, ttl: set.ttl, rdatas: set.rdatas };
  // The wildcard's RRSIGs validate for the synthesized owner: their labels field says so (RFC 4035 §5.3.2).
  if (set.sigs) out.sigs = set.sigs;
  return out;
}

function lookup(zone: Zone, qname: Name, qtype: number, ans: Answer, depth: number): void {
  const offs = labelOffsets(qname);
  let node = zone.apex;
  // Labels of qname still to match below `node`: offs[0..i]. i < 0 means node is qname.
  let i = offs.length - zone.originLabels - 1;
  for (;;) {
    if (node.cut) {
      // The parent is authoritative for the DS at a delegation point (RFC 4035 §3.1.4.1).
      if (i < 0 && qtype === TYPE.DS) break;
      referral(zone, node, ans);
      return;
    }
    if (i >= 0 && node.rrsets.has(TYPE.DNAME)) {
      dname(zone, node, qname, qtype, ans, depth);
      return;
    }
    if (i < 0) break;
    const child = node.children.find(qname, offs[i]!);
    if (!child) break;
    node = child;
    i--;
  }
  if (i < 0) {
    answerAt(zone, node, null, qtype, ans, depth);
    return;
  }
  // `node` is the closest encloser; its `*` child is the source of synthesis (RFC 4592 §3.3.1).
  const wild = node.children.get('*');
  if (wild) {
    // NS at the wildcard (RFC 4592 §4.2 discourages it): the `*` node is a zone cut, and a name it
    // would synthesize gets the referral with the NS RRset under its own owner, as Knot answers.
    if (wild.cut) {
      referral(zone, wild, ans);
      return;
    }
    answerAt(zone, wild, qname, qtype, ans, depth);
    return;
  }
  negative(zone, ans, RCODE.NXDOMAIN);
  if (ans.dnssec) proveNxdomain(zone, qname, node.name, ans);
}

/** Answers from a node that matches: exactly, or as the wildcard for `owner`. */
function answerAt(
  zone: Zone,
  node: ZoneNode,
  owner: Name | null,
  qtype: number,
  ans: Answer,
  depth: number,
): void {
  const cname = node.rrsets.get(TYPE.CNAME);
  // CNAME coexists only with RRSIG and NSEC (RFC 2181 §10.1, RFC 4035 §2.5): those are answered as is.
  if (cname && qtype !== TYPE.CNAME && qtype !== TYPE.RRSIG && qtype !== TYPE.NSEC) {
    if (depth >= MAX_CHAIN) return;
    if (!pushAnswer(ans, withOwner(cname, owner))) return;
    if (owner && ans.dnssec) proveWildcardAnswer(zone, owner, node.parent!.name, ans);
    if (qtype === TYPE.ANY) return;
    follow(zone, rdataTarget(TYPE.CNAME, cname.rdatas[0]!), qtype, ans, depth + 1);
    return;
  }
  let set: RRset | undefined;
  if (qtype === TYPE.ANY) {
    let best = 0x10000;
    for (const [t, s] of node.rrsets) {
      if (t < best && t !== TYPE.RRSIG && t !== TYPE.NSEC && t !== TYPE.NSEC3) {
        best = t;
        set = s;
      }
    }
  } else if (qtype === TYPE.RRSIG) {
    set = rrsigAnswer(node);
  } else {
    set = node.rrsets.get(qtype);
  }
  if (!set) {
    negative(zone, ans, RCODE.NOERROR);
    if (!ans.dnssec) return;
    if (owner) proveWildcardNodata(zone, owner, node.parent!.name, node.name, ans);
    else proveNodata(zone, node.name, ans);
    return;
  }
  const out = withOwner(set, owner);
  if (!pushAnswer(ans, out)) return;
  if (owner && ans.dnssec) proveWildcardAnswer(zone, owner, node.parent!.name, ans);
  additional(zone, out, ans);
}

/**
 * A question for type RRSIG: RFC 4035 §3.1.5 lets the server return all the RRSIGs at the name or
 * some of them. popdns returns the RRSIGs covering one RRset — the signed one with the lowest type
 * number, as for ANY (RFC 8482) and like Knot — with that RRset's TTL (RFC 4034 §3), whatever the DO
 * bit. No RRSIGs at the name (an unsigned zone): no data.
 */
function rrsigAnswer(node: ZoneNode): RRset | undefined {
  let best = 0x10000;
  let covered: RRset | undefined;
  for (const [t, s] of node.rrsets) {
    if (t < best && s.sigs !== undefined && s.sigs.length > 0) {
      best = t;
      covered = s;
    }
  }
  if (!covered?.sigs) return undefined;
  return {
    owner: covered.owner,
    type: TYPE.RRSIG,
    class: covered.class,
    ttl: covered.ttl,
    rdatas: covered.sigs,
  };
}

/** Adds an RRset to the answer section; false if it is already there (a CNAME loop). */
function pushAnswer(ans: Answer, set: RRset): boolean {
  for (const s of ans.answer) {
    if (s.type === set.type && nameEquals(s.owner, set.owner)) return false;
  }
  ans.answer.push(set);
  return true;
}

function follow(zone: Zone, target: Name | null, qtype: number, ans: Answer, depth: number): void {
  if (!target || !isSubdomainOf(target, zone.origin)) return;
  lookup(zone, target, qtype, ans, depth);
}

/** DNAME substitution (RFC 6672 §3.2): the DNAME, a synthesized CNAME, then the new name. */
function dname(zone: Zone, node: ZoneNode, qname: Name, qtype: number, ans: Answer, depth: number): void {
  const d = node.rrsets.get(TYPE.DNAME)!;
  if (depth >= MAX_CHAIN) return;
  // The same DNAME met again further down a chain is not a loop: it is in the answer once, and the
  // new synthesized CNAME goes in (a real loop repeats a CNAME owner, or hits MAX_CHAIN).
  pushAnswer(ans, d);
  const target = rdataTarget(TYPE.DNAME, d.rdatas[0]!);
  if (!target) return;
  const next = replaceSuffix(qname, node.name, target);
  if (!next) {
    ans.rcode = RCODE.YXDOMAIN;
    return;
  }
  const cname: RRset = { owner: qname, type: TYPE.CNAME, class: d.class, ttl: d.ttl, rdatas: [next] };
  if (!pushAnswer(ans, cname)) return;
  if (qtype === TYPE.CNAME) return;
  follow(zone, next, qtype, ans, depth + 1);
}

function negative(zone: Zone, ans: Answer, rcode: number): void {
  ans.rcode = rcode;
  ans.authority.push(zone.negativeSoa);
}

function inSections(ans: Answer, set: RRset): boolean {
  for (const sec of [ans.answer, ans.authority, ans.additional]) {
    for (const s of sec) if (s.type === set.type && nameEquals(s.owner, set.owner)) return true;
  }
  return false;
}

/**
 * A and AAAA RRsets for an in-zone target name: exact node, or synthesized from a wildcard; with
 * `sameType`, the target's RRset of that type too (SVCB/HTTPS, RFC 9460 §4.1).
 */
function addressSets(zone: Zone, target: Name, glue: boolean, sameType = 0): RRset[] {
  if (!isSubdomainOf(target, zone.origin)) return [];
  let node = findNode(zone, target);
  let owner: Name | null = null;
  if (!node) {
    node = wildcardFor(zone, target);
    owner = target;
  }
  if (!node || (node.occluded && !glue)) return [];
  const out: RRset[] = [];
  const a = node.rrsets.get(TYPE.A);
  if (a) out.push(withOwner(a, owner));
  const aaaa = node.rrsets.get(TYPE.AAAA);
  if (aaaa) out.push(withOwner(aaaa, owner));
  const same = sameType ? node.rrsets.get(sameType) : undefined;
  if (same) out.push(withOwner(same, owner));
  return out;
}

/**
 * Additional-section processing (RFC 1034 §4.3.2 step 6) for NS, MX and SRV answers: the targets'
 * addresses; for SVCB and HTTPS (RFC 9460 §4.1) the targets' A, AAAA and SVCB/HTTPS RRsets, one level
 * deep, like Knot (an AliasMode answer thus carries the ServiceMode record it points to). A target
 * of "." (the owner itself) adds nothing: the owner is the question.
 */
function additional(zone: Zone, set: RRset, ans: Answer): void {
  const svc = set.type === TYPE.SVCB || set.type === TYPE.HTTPS;
  if (set.type !== TYPE.NS && set.type !== TYPE.MX && set.type !== TYPE.SRV && !svc) return;
  for (const rd of set.rdatas) {
    const target = rdataTarget(set.type, rd);
    if (!target || target.length === 1) continue;
    for (const a of addressSets(zone, target, set.type === TYPE.NS, svc ? set.type : 0)) {
      if (!inSections(ans, a)) ans.additional.push(a);
    }
  }
}

/** A referral to the delegation at `cut`: NS in authority, glue in additional, not authoritative. */
function referral(zone: Zone, cut: ZoneNode, ans: Answer): void {
  const ns = cut.rrsets.get(TYPE.NS)!;
  if (ans.answer.length === 0) ans.aa = false;
  ans.authority.push(ns);
  if (ans.dnssec) {
    // A secure delegation shows its signed DS; an insecure one proves there is none (RFC 4035 §3.1.4).
    const ds = cut.rrsets.get(TYPE.DS);
    if (ds) ans.authority.push(ds);
    else proveNodata(zone, cut.name, ans);
  }
  const required: RRset[] = [];
  const optional: RRset[] = [];
  for (const rd of ns.rdatas) {
    const target = rdataTarget(TYPE.NS, rd);
    if (!target) continue;
    const inDomain = isSubdomainOf(target, cut.name);
    for (const a of addressSets(zone, target, true)) {
      if (inSections(ans, a) || required.includes(a) || optional.includes(a)) continue;
      (inDomain ? required : optional).push(a);
    }
  }
  ans.additional.unshift(...required);
  ans.requiredAdditional += required.length;
  ans.additional.push(...optional);
}
