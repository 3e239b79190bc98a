/**
 * Domain names in wire format: an uncompressed sequence of length-prefixed labels ending with the
 * zero-length root label, kept in the case it was written in. This module is the only place that
 * turns presentation text into names and back (RFC 1035 §5.1 escapes, RFC 4343 case rules).
 */

import { domainToASCII } from 'node:url';
import { slabCopy } from './bytes.js';

/** An uncompressed wire-format name, ending with a 0 byte. */
export type Name = Uint8Array;

export class NameError extends Error {
  readonly code = 'POPDNS_E_NAME';
}

export const MAX_NAME = 255;
export const MAX_LABEL = 63;

export const ROOT: Name = Uint8Array.of(0);

const BACKSLASH = 0x5c;
const DOT = 0x2e;
/** Room for one name being built: 255 octets plus a label that overruns before the check. */
const SCRATCH = new Uint8Array(MAX_NAME + MAX_LABEL + 2);

/**
 * Parses a presentation-format name. `@` is the origin; a name without a trailing dot is relative to
 * `origin` (an error when there is none). Escapes: `\.` and `\X` take X literally, `\DDD` is a decimal
 * byte value. Long-lived names go to a shared slab (src/wire/bytes.ts); `transient` gives a copy of
 * its own instead, for names that are let go of soon (a zone file's owner names).
 */
export function nameFromText(text: string, origin?: Name | null, transient = false): Name {
  if (text === '@') {
    if (!origin) throw new NameError('@ used without an origin');
    return origin;
  }
  if (text === '.') return ROOT;
  if (text.length === 0) throw new NameError('empty name');
  // Built in a reused scratch buffer (no arrays per name: zone loads parse millions of names), then
  // copied to a slab. Each label's length byte is reserved first and filled in when the label ends.
  const out = SCRATCH;
  let labelStart = 0;
  let pos = 1;
  let labelLen = 0;
  let absolute = false;
  const put = (b: number): void => {
    if (labelLen >= MAX_LABEL) throw new NameError(`label longer than 63 octets in "${text}"`);
    out[pos++] = b;
    labelLen++;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : -1;
      if (next >= 0x30 && next <= 0x39) {
        const d = text.slice(i + 1, i + 4);
        if (!/^[0-9]{3}$/.test(d))
          throw new NameError(
            `escape "\\${d.replace(/[^0-9].*$/s, '')}" in "${text}" needs three digits (\\DDD, RFC 1035 §5.1)`,
          );
        const v = Number(d);
        if (v > 255) throw new NameError(`escape \\${d} out of range in "${text}"`);
        put(v);
        i += 3;
      } else if (next > 0x7f) {
        throw new NameError(nonAscii(text, i + 1));
      } else if (next >= 0) {
        put(next);
        i += 1;
      } else {
        throw new NameError(`dangling backslash in "${text}"`);
      }
    } else if (c === DOT) {
      if (labelLen === 0) throw new NameError(`empty label in "${text}"`);
      out[labelStart] = labelLen;
      if (pos > MAX_NAME) throw new NameError(`name longer than 255 octets: "${text}"`);
      labelStart = pos++;
      labelLen = 0;
      if (i === text.length - 1) absolute = true;
    } else {
      if (c > 0x7f) throw new NameError(nonAscii(text, i));
      put(c);
    }
  }
  let len: number;
  if (absolute) {
    out[labelStart] = 0;
    len = pos;
  } else {
    out[labelStart] = labelLen;
    if (!origin) throw new NameError(`relative name "${text}" without an origin`);
    if (pos + origin.length > MAX_NAME) throw new NameError(`name longer than 255 octets: "${text}"`);
    out.set(origin, pos);
    len = pos + origin.length;
  }
  if (len > MAX_NAME) throw new NameError(`name longer than 255 octets: "${text}"`);
  // A transient name (a record's owner, which the zone keeps as labels) is young garbage soon: a copy
  // of its own, not slab bytes that would stay allocated as long as any neighbour lives.
  return transient ? out.slice(0, len) : slabCopy(out.subarray(0, len));
}

/**
 * The error for a non-ASCII character in a name. Names in zone files are ASCII (RFC 1035 §2.3.1,
 * RFC 5890): an internationalized name is written in its IDNA A-label (punycode) form, which the
 * message suggests; `\DDD` escapes remain for raw octets.
 */
function nonAscii(text: string, i: number): string {
  const ch = String.fromCodePoint(text.codePointAt(i)!);
  const alabel = domainToASCII(text.replace(/\\/g, ''));
  const hint = alabel && alabel !== text ? `: write ${alabel}` : '';
  return `non-ASCII character "${ch}" in the name "${text}" (names are ASCII; use the IDNA/punycode form${hint})`;
}

function escapeByte(b: number): string {
  // RFC 1035 §5.1 specials plus those that change meaning in a master file.
  if (b === 0x2e || b === 0x5c || b === 0x28 || b === 0x29 || b === 0x3b || b === 0x22 || b === 0x40) {
    return `\\${String.fromCharCode(b)}`;
  }
  if (b === 0x24) return '\\$';
  if (b <= 0x20 || b >= 0x7f) return `\\${b.toString().padStart(3, '0')}`;
  return String.fromCharCode(b);
}

/** Formats a name as absolute presentation text with a trailing dot, escaping as needed. */
export function nameToText(name: Name): string {
  if (name.length <= 1) return '.';
  let s = '';
  let i = 0;
  while (i < name.length) {
    const len = name[i]!;
    if (len === 0) break;
    for (let j = i + 1; j <= i + len; j++) s += escapeByte(name[j]!);
    s += '.';
    i += len + 1;
  }
  return s;
}

/** Presentation text relative to `origin` when the name is at or below it (`@` for the origin). */
export function nameToRelativeText(name: Name, origin: Name): string {
  if (nameEquals(name, origin)) return '@';
  if (origin.length > 1 && isSubdomainOf(name, origin)) {
    const prefix = name.subarray(0, name.length - origin.length);
    return nameToText(Uint8Array.from([...prefix, 0])).slice(0, -1);
  }
  return nameToText(name);
}

function lowerByte(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

/** A lower-cased copy of a name (RFC 4343: ASCII letters only). */
export function nameToLower(name: Name): Name {
  const out = new Uint8Array(name.length);
  let i = 0;
  while (i < name.length) {
    const len = name[i]!;
    out[i] = len;
    for (let j = i + 1; j <= i + len; j++) out[j] = lowerByte(name[j]!);
    i += len + 1;
    if (len === 0) break;
  }
  return out;
}

/** A string key for maps: the lower-cased wire bytes as latin1. Two names are equal iff keys are. */
export function nameKey(name: Name): string {
  return Buffer.from(nameToLower(name)).toString('latin1');
}

/** Case-insensitive equality. */
export function nameEquals(a: Name, b: Name): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (lowerByte(a[i]!) !== lowerByte(b[i]!)) return false;
  return true;
}

/** Number of labels, not counting the root. */
export function labelCount(name: Name): number {
  let n = 0;
  let i = 0;
  while (i < name.length && name[i] !== 0) {
    n++;
    i += name[i]! + 1;
  }
  return n;
}

/** Offsets at which each label starts, leftmost first (the root's 0 byte is not included). */
export function labelOffsets(name: Name): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < name.length && name[i] !== 0) {
    out.push(i);
    i += name[i]! + 1;
  }
  return out;
}

/** The name with its leftmost `n` labels removed (a view into the same bytes). */
export function stripLabels(name: Name, n: number): Name {
  let i = 0;
  for (let k = 0; k < n && name[i] !== 0; k++) i += name[i]! + 1;
  return name.subarray(i);
}

/** True when `name` equals `parent` or is below it (case-insensitive). */
export function isSubdomainOf(name: Name, parent: Name): boolean {
  if (parent.length > name.length) return false;
  const off = name.length - parent.length;
  // The suffix must start on a label boundary.
  let i = 0;
  while (i < off) {
    if (name[i] === 0) return false;
    i += name[i]! + 1;
  }
  if (i !== off) return false;
  for (let j = 0; j < parent.length; j++)
    if (lowerByte(name[off + j]!) !== lowerByte(parent[j]!)) return false;
  return true;
}

/** `label` + `parent`, e.g. prepend(`*`, example.com.) = *.example.com. */
export function prependLabel(label: Uint8Array, parent: Name): Name {
  if (label.length > MAX_LABEL) throw new NameError('label longer than 63 octets');
  if (label.length + 1 + parent.length > MAX_NAME) throw new NameError('name longer than 255 octets');
  const out = new Uint8Array(label.length + 1 + parent.length);
  out[0] = label.length;
  out.set(label, 1);
  out.set(parent, label.length + 1);
  return out;
}

/** Replaces the `oldSuffix` of `name` by `newSuffix`; null when the result exceeds 255 octets. */
export function replaceSuffix(name: Name, oldSuffix: Name, newSuffix: Name): Name | null {
  const prefixLen = name.length - oldSuffix.length;
  const len = prefixLen + newSuffix.length;
  if (len > MAX_NAME) return null;
  const out = new Uint8Array(len);
  out.set(name.subarray(0, prefixLen), 0);
  out.set(newSuffix, prefixLen);
  return out;
}

export const WILDCARD_LABEL = Uint8Array.of(0x2a);

/** True when the leftmost label is `*`. */
export function isWildcard(name: Name): boolean {
  return name[0] === 1 && name[1] === 0x2a;
}

/**
 * Canonical DNS name order (RFC 4034 §6.1): compare label by label from the root, each label as
 * lower-cased bytes. Returns <0, 0 or >0.
 */
export function canonicalCompare(a: Name, b: Name): number {
  const la = labelOffsets(a);
  const lb = labelOffsets(b);
  let ia = la.length - 1;
  let ib = lb.length - 1;
  while (ia >= 0 && ib >= 0) {
    const oa = la[ia]!;
    const ob = lb[ib]!;
    const na = a[oa]!;
    const nb = b[ob]!;
    const n = Math.min(na, nb);
    for (let k = 1; k <= n; k++) {
      const d = lowerByte(a[oa + k]!) - lowerByte(b[ob + k]!);
      if (d !== 0) return d;
    }
    if (na !== nb) return na - nb;
    ia--;
    ib--;
  }
  return ia - ib;
}

/**
 * Reads a possibly compressed name from a message. Returns the uncompressed name and the offset just
 * past the name's bytes at `offset`. Throws NameError on any malformation: pointers must point strictly
 * backwards, labels ≤ 63, total ≤ 255, at most 127 pointer hops.
 */
export function readName(msg: Uint8Array, offset: number): { name: Name; next: number } {
  const out: number[] = [];
  let pos = offset;
  let next = -1;
  let hops = 0;
  let lowest = offset;
  for (;;) {
    if (pos >= msg.length) throw new NameError('name runs past the end of the message');
    const len = msg[pos]!;
    if (len === 0) {
      out.push(0);
      if (next < 0) next = pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= msg.length) throw new NameError('truncated compression pointer');
      const ptr = ((len & 0x3f) << 8) | msg[pos + 1]!;
      if (ptr >= lowest) throw new NameError('compression pointer does not point backwards');
      if (++hops > 127) throw new NameError('too many compression pointers');
      if (next < 0) next = pos + 2;
      lowest = ptr;
      pos = ptr;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new NameError('unsupported label type');
    if (pos + 1 + len > msg.length) throw new NameError('label runs past the end of the message');
    if (out.length + len + 2 > MAX_NAME) throw new NameError('name longer than 255 octets');
    out.push(len);
    for (let j = pos + 1; j <= pos + len; j++) out.push(msg[j]!);
    pos += len + 1;
  }
  return { name: Uint8Array.from(out), next };
}
