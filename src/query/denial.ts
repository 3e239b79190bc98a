/**
 * Authenticated denial for DO=1 answers (RFC 4035 §3.1.3, RFC 5155 §7.2): which NSEC or NSEC3 RRsets
 * (each with its RRSIGs) prove an NXDOMAIN, a NODATA, a wildcard answer or an insecure delegation.
 * The chains and the lookups over them are zone data (zone/dnssec.ts), made by popdns' signer or taken
 * from a zone that arrived signed; this module only picks the records each case needs, the same way
 * for both. All of it is precomputed data: no hashing of zone data, no signing.
 */
import { labelCount, type Name, prependLabel, stripLabels, WILDCARD_LABEL } from '../wire/name.js';
import { denialNsec, denialNsec3 } from '../zone/dnssec.js';
import type { RRset, Zone } from '../zone/zone.js';
import type { Answer } from './types.js';

function push(ans: Answer, set: RRset | null): void {
  if (!set) return;
  for (const s of ans.authority) if (s === set) return;
  ans.authority.push(set);
}

const nsec3 = (zone: Zone): boolean => zone.dnssec?.nsec3 != null;

/** qname cut down to one label more than its closest encloser (RFC 5155 §1.3 "next closer name"). */
function nextCloser(qname: Name, ce: Name): Name {
  return stripLabels(qname, labelCount(qname) - labelCount(ce) - 1);
}

/**
 * RFC 5155 §7.2.1: the closest encloser's NSEC3 and the NSEC3 covering the next closer name. For a
 * name without an NSEC3 of its own (opt-out, §7.2.4), walks up to the closest provable encloser.
 */
function closestEncloserProof(zone: Zone, name: Name, ans: Answer): Name {
  let ce = name;
  let below = name;
  while (labelCount(ce) > labelCount(zone.origin)) {
    const d = denialNsec3(zone, ce);
    if (d.match) break;
    below = ce;
    ce = stripLabels(ce, 1);
  }
  push(ans, denialNsec3(zone, ce).match);
  if (below !== ce) push(ans, denialNsec3(zone, below).covering);
  return ce;
}

/** NXDOMAIN: the name does not exist and neither does the wildcard at its closest encloser `ce`. */
export function proveNxdomain(zone: Zone, qname: Name, ce: Name, ans: Answer): void {
  const wildcard = prependLabel(WILDCARD_LABEL, ce);
  if (nsec3(zone)) {
    push(ans, denialNsec3(zone, ce).match);
    push(ans, denialNsec3(zone, nextCloser(qname, ce)).covering);
    push(ans, denialNsec3(zone, wildcard).covering);
    return;
  }
  push(ans, denialNsec(zone, qname).covering);
  push(ans, denialNsec(zone, wildcard).covering);
}

/** NODATA at an existing name (also an empty non-terminal, and "no DS" at a delegation). */
export function proveNodata(zone: Zone, name: Name, ans: Answer): void {
  if (nsec3(zone)) {
    const d = denialNsec3(zone, name);
    if (d.match) push(ans, d.match);
    else closestEncloserProof(zone, name, ans);
    return;
  }
  const d = denialNsec(zone, name);
  push(ans, d.match ?? d.covering);
}

/** A wildcard answer: no closer match for qname exists below the closest encloser `ce`. */
export function proveWildcardAnswer(zone: Zone, qname: Name, ce: Name, ans: Answer): void {
  if (nsec3(zone)) push(ans, denialNsec3(zone, nextCloser(qname, ce)).covering);
  else push(ans, denialNsec(zone, qname).covering);
}

/** NODATA from a wildcard: qname does not exist, and the wildcard `wild` has no data of the type. */
export function proveWildcardNodata(zone: Zone, qname: Name, ce: Name, wild: Name, ans: Answer): void {
  if (nsec3(zone)) {
    push(ans, denialNsec3(zone, ce).match);
    push(ans, denialNsec3(zone, nextCloser(qname, ce)).covering);
    push(ans, denialNsec3(zone, wild).match);
    return;
  }
  push(ans, denialNsec(zone, qname).covering);
  push(ans, denialNsec(zone, wild).match);
}
