/**
 * Did a zone's content change without its SOA serial being raised? Secondaries compare serials
 * (RFC 1034 §4.3.5, RFC 1996): a change under the same or a lower serial never reaches them.
 */
import { TYPE } from '../wire/constants.js';
import { type Name, nameToLower } from '../wire/name.js';
import { type RRset, walk, type Zone } from './zone.js';

/** True when serial `b` is newer than `a` in RFC 1982 serial-number arithmetic (32 bits). */
export function serialNewer(a: number, b: number): boolean {
  const d = (b - a) >>> 0;
  return d !== 0 && d < 0x80000000;
}

/** Types the signer adds or replaces: not part of what the operator wrote, so not compared. */
const SIGNER_TYPES = new Set<number>([
  TYPE.RRSIG,
  TYPE.NSEC,
  TYPE.NSEC3,
  TYPE.NSEC3PARAM,
  TYPE.DNSKEY,
  TYPE.CDS,
  TYPE.CDNSKEY,
]);

function fnv(h: number, bytes: Uint8Array, from = 0, to = bytes.length): number {
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

function fnvNum(h: number, v: number): number {
  for (let s = 24; s >= 0; s -= 8) h = Math.imul(h ^ ((v >>> s) & 0xff), 0x01000193);
  return h >>> 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** One RRset's hash under `seed`: owner (any case), type, TTL, RDATAs in any order; SOA without serial. */
function rrsetHash(seed: number, owner: Name, set: RRset): number {
  let h = fnv(seed, nameToLower(owner));
  h = fnvNum(fnvNum(h, set.type), set.ttl);
  const rds = set.rdatas.length > 1 ? [...set.rdatas].sort(compareBytes) : set.rdatas;
  for (const rd of rds) {
    h = fnvNum(h, rd.length);
    if (set.type === TYPE.SOA && rd.length >= 20) {
      h = fnv(h, rd, 0, rd.length - 20);
      h = fnv(h, rd, rd.length - 16);
    } else h = fnv(h, rd);
  }
  return h;
}

/**
 * A 64-bit fingerprint (hex) of the zone's content as written: every RRset but the ones the signer
 * makes, the SOA serial left out, independent of record order and owner-name case. Equal content gives
 * equal fingerprints; a change gives a different one but for a 2^-64 chance. Costs one pass over the zone.
 */
export function contentFingerprint(zone: Zone): string {
  let a = 0;
  let b = 0;
  walk(zone.apex, (node) => {
    if (node.size === 0) return;
    const owner = node.name;
    for (const set of node.rrsets.values()) {
      if (SIGNER_TYPES.has(set.type)) continue;
      a = (a + rrsetHash(0x811c9dc5, owner, set)) >>> 0;
      b = (b + rrsetHash(0x050c5d1f, owner, set)) >>> 0;
    }
  });
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

/**
 * The POPDNS_W_SERIAL_NOT_RAISED message when `next` changes `prev`'s content but its serial is not
 * newer (RFC 1982), else null. The content is compared only when the serial did not move forward.
 */
export function serialNotRaised(prev: Zone, next: Zone): string | null {
  if (prev.originText.toLowerCase() !== next.originText.toLowerCase()) return null;
  if (serialNewer(prev.serial, next.serial)) return null;
  if (contentFingerprint(prev) === contentFingerprint(next)) return null;
  return `zone ${next.originText} changed but its SOA serial ${next.serial} is not above the serial ${prev.serial} it replaces; secondaries will not pick up the change (raise the serial) [POPDNS_W_SERIAL_NOT_RAISED]`;
}
