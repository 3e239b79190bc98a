/**
 * RDATA in presentation format ⇄ uncompressed wire format, driven by the table of RR types in
 * rrtypes.ts (the miekg/dns and Knot idea): each type is a list of field kinds, and each kind knows how
 * to read its text, write its bytes, read its bytes and print its text. Names go through our own codec
 * because dns-packet cannot write escaped labels; dns-packet encodes IPv6 addresses and serves the
 * tests as an independent decoder.
 */
import { isIPv4, isIPv6 } from 'node:net';
import packet from 'dns-packet';
import { slabCopy } from './bytes.js';
import { isMetaType, TYPE, typeFromText, typeToText } from './constants.js';
import { type Name, NameError, nameFromText, nameToRelativeText, nameToText, readName } from './name.js';
import type { Token } from './presentation.js';
import { ALGORITHMS, CERT_TYPES, type Field, type Kind, RRTYPES, SVC_KEYS } from './rrtypes.js';

export class RdataError extends Error {
  readonly code = 'POPDNS_E_RDATA';
  constructor(
    message: string,
    readonly token: number,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/** Cuts a presentation string into tokens: whitespace separates, double quotes group. */
export function tokenize(text: string, line = 1, col = 1): Token[] {
  const out: Token[] = [];
  let i = 0;
  let ln = line;
  let c = col;
  const n = text.length;
  while (i < n) {
    const ch = text[i]!;
    if (ch === '\n') {
      ln++;
      c = 1;
      i++;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\r') {
      i++;
      c++;
      continue;
    }
    const startLine = ln;
    const startCol = c;
    if (ch === '"') {
      let s = '';
      i++;
      c++;
      while (i < n && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < n) {
          s += text[i]! + text[i + 1]!;
          i += 2;
          c += 2;
          continue;
        }
        if (text[i] === '\n') {
          ln++;
          c = 0;
        }
        s += text[i]!;
        i++;
        c++;
      }
      i++;
      c++;
      out.push({ text: s, quoted: true, line: startLine, col: startCol });
      continue;
    }
    let s = '';
    while (i < n) {
      const d = text[i]!;
      if (d === ' ' || d === '\t' || d === '\n' || d === '\r' || d === '"') break;
      if (d === '\\' && i + 1 < n) {
        s += d + text[i + 1]!;
        i += 2;
        c += 2;
        continue;
      }
      s += d;
      i++;
      c++;
    }
    out.push({ text: s, quoted: false, line: startLine, col: startCol });
  }
  return out;
}

/** Decodes the escapes of a character-string (`\X`, `\DDD`) into bytes. */
function unescapeBytes(s: string, tok: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 0x5c) {
      const d = s.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) throw new RdataError(`escape \\${d} is out of range`, tok);
        out.push(v);
        i += 3;
      } else if (/^[0-9]/.test(d)) {
        // RFC 1035 §5.1: a digit after the backslash starts \DDD, exactly three digits.
        throw new RdataError(`escape \\${d} is not \\DDD (three decimal digits)`, tok);
      } else if (i + 1 < s.length) {
        const next = s.codePointAt(i + 1)!;
        if (next > 0x7f) {
          // \X escapes one character: a non-ASCII one is its UTF-8 bytes, as unescaped.
          for (const b of Buffer.from(String.fromCodePoint(next), 'utf8')) out.push(b);
          i += next > 0xffff ? 2 : 1;
        } else {
          out.push(next);
          i++;
        }
      } else {
        throw new RdataError('dangling backslash', tok);
      }
    } else if (ch > 0x7f) {
      // One character (a surrogate pair is one), as its UTF-8 bytes.
      const cp = s.codePointAt(i)!;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out.push(b);
      if (cp > 0xffff) i++;
    } else {
      out.push(ch);
    }
  }
  return out;
}

function escapeBytes(b: Uint8Array): string {
  let s = '';
  for (const x of b) {
    if (x === 0x22 || x === 0x5c) s += `\\${String.fromCharCode(x)}`;
    else if (x < 0x20 || x >= 0x7f) s += `\\${x.toString().padStart(3, '0')}`;
    else s += String.fromCharCode(x);
  }
  return `"${s}"`;
}

const PERIOD_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** A TTL-like period: seconds, or BIND units (`1h30m`, `2w`). Returns undefined when malformed. */
export function parsePeriod(text: string): number | undefined {
  if (/^[0-9]+$/.test(text)) return Number(text);
  const re = /([0-9]+)([smhdw])/giy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * PERIOD_UNITS[m[2]!.toLowerCase()]!;
    pos = re.lastIndex;
  }
  return pos === text.length && pos > 0 ? total : undefined;
}

function parseNumber(text: string, max: number, field: string, type: number, tok: number): number {
  if (!/^[0-9]+$/.test(text) || Number(text) > max) {
    throw new RdataError(`${typeToText(type)} ${field} "${text}" is not a number 0-${max}`, tok);
  }
  return Number(text);
}

const B32HEX = '0123456789ABCDEFGHIJKLMNOPQRSTUV';

function base32hexDecode(s: string, tok: number): number[] {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of s.toUpperCase()) {
    const v = B32HEX.indexOf(ch);
    if (v < 0) throw new RdataError(`"${s}" is not base32hex`, tok);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xff);
    }
  }
  return out;
}

export function base32hexEncode(b: Uint8Array): string {
  let s = '';
  let bits = 0;
  let value = 0;
  for (const x of b) {
    value = (value << 8) | x;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      s += B32HEX[(value >> bits) & 31];
    }
  }
  if (bits > 0) s += B32HEX[(value << (5 - bits)) & 31];
  return s;
}

function parseTime(text: string, tok: number): number {
  if (/^[0-9]{14}$/.test(text)) {
    const ms = Date.UTC(
      Number(text.slice(0, 4)),
      Number(text.slice(4, 6)) - 1,
      Number(text.slice(6, 8)),
      Number(text.slice(8, 10)),
      Number(text.slice(10, 12)),
      Number(text.slice(12, 14)),
    );
    return (ms / 1000) >>> 0;
  }
  if (/^[0-9]{1,10}$/.test(text) && Number(text) <= 0xffffffff) return Number(text);
  throw new RdataError(`"${text}" is not a time (YYYYMMDDHHmmSS or seconds)`, tok);
}

function formatTime(t: number): string {
  const d = new Date(t * 1000);
  const p = (n: number, w = 2): string => n.toString().padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

// ---------------------------------------------------------------------------------------------
// SVCB / HTTPS parameters (RFC 9460 §2.1, §7, §8, Appendix A; RFC 9461; RFC 9540)

const SVC_MANDATORY = 0;
const SVC_ALPN = 1;
const SVC_NO_DEFAULT_ALPN = 2;
const SVC_PORT = 3;
const SVC_IPV4HINT = 4;
const SVC_ECH = 5;
const SVC_IPV6HINT = 6;
const SVC_DOHPATH = 7;
const SVC_OHTTP = 8;
const SVC_TLS_GROUPS = 9;
/** Key 65535 is reserved as "Invalid key" (RFC 9460 §14.3.2). */
const SVC_INVALID = 65535;

function svcKeyFromText(k: string, tok: number): number {
  const i = SVC_KEYS.indexOf(k.toLowerCase());
  if (i >= 0) return i;
  const m = /^key([0-9]{1,5})$/i.exec(k);
  if (m && Number(m[1]) <= 65535) {
    if (Number(m[1]) === SVC_INVALID)
      throw new RdataError('SvcParamKey key65535 is reserved as invalid', tok);
    return Number(m[1]);
  }
  throw new RdataError(`unknown SvcParamKey "${k}" (known: ${SVC_KEYS.join(', ')}; others as keyNNNNN)`, tok);
}

function svcKeyToText(k: number): string {
  return SVC_KEYS[k] ?? `key${k}`;
}

/** Splits a value list on unescaped commas, resolving escapes (RFC 9460 Appendix A.1). */
function splitCommaList(raw: number[]): number[][] {
  const items: number[][] = [[]];
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x5c && i + 1 < raw.length) {
      items[items.length - 1]!.push(raw[i + 1]!);
      i++;
    } else if (b === 0x2c) items.push([]);
    else items[items.length - 1]!.push(b);
  }
  return items;
}

/** Keys whose value must be empty (RFC 9460 §7.1.1; RFC 9540 §4). */
const SVC_EMPTY = new Set([SVC_NO_DEFAULT_ALPN, SVC_OHTTP]);

function svcValueFromText(key: number, value: string | null, tok: number): number[] {
  const kname = svcKeyToText(key);
  if (SVC_EMPTY.has(key)) {
    if (value !== null && value !== '') throw new RdataError(`${kname} takes no value`, tok);
    return [];
  }
  const need = (): string => {
    if (value === null || value === '') throw new RdataError(`SvcParam ${kname} needs a value`, tok);
    return value;
  };
  const list = (): string[] => {
    const items = need().split(',');
    if (items.some((x) => x === '')) throw new RdataError(`${kname} has an empty item`, tok);
    return items;
  };
  switch (key) {
    case SVC_MANDATORY: {
      if (need().includes('\\'))
        throw new RdataError('mandatory must not contain escapes (RFC 9460 §8)', tok);
      const keys = list().map((k) => svcKeyFromText(k, tok));
      const seen = new Set<number>();
      for (const k of keys) {
        if (k === SVC_MANDATORY) throw new RdataError('mandatory must not list itself (RFC 9460 §8)', tok);
        if (seen.has(k)) throw new RdataError(`mandatory lists ${svcKeyToText(k)} twice (RFC 9460 §8)`, tok);
        seen.add(k);
      }
      const out: number[] = [];
      for (const k of keys.sort((a, b) => a - b)) out.push(k >> 8, k & 0xff);
      return out;
    }
    case SVC_ALPN: {
      const out: number[] = [];
      // Two levels (RFC 9460 Appendix A.1): character-string escapes first, then the value list, in
      // which `\,` is a comma inside an id and `\\` a backslash.
      for (const item of splitCommaList(unescapeBytes(need(), tok))) {
        if (item.length === 0) throw new RdataError('alpn has an empty protocol id', tok);
        if (item.length > 255) throw new RdataError('alpn protocol ids must be 1-255 octets', tok);
        out.push(item.length, ...item);
      }
      return out;
    }
    case SVC_PORT: {
      const p = parseNumber(need(), 65535, 'port', TYPE.SVCB, tok);
      return [p >> 8, p & 0xff];
    }
    case SVC_IPV4HINT:
      return list().flatMap((a) => {
        if (!isIPv4(a)) throw new RdataError(`ipv4hint "${a}" is not an IPv4 address`, tok);
        return a.split('.').map(Number);
      });
    case SVC_IPV6HINT:
      return list().flatMap((a) => {
        if (!isIPv6(a) || a.includes('%'))
          throw new RdataError(`ipv6hint "${a}" is not an IPv6 address`, tok);
        return [...ipv6Bytes(a)];
      });
    case SVC_ECH: {
      const b64 = need();
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0)
        throw new RdataError('ech is not base64', tok);
      return [...Buffer.from(b64, 'base64')];
    }
    case SVC_DOHPATH: {
      // RFC 9461 §5: a URI template, UTF-8, relative, with a "dns" variable.
      const b = unescapeBytes(need(), tok);
      const s = Buffer.from(b).toString('utf8');
      if (!s.startsWith('/') || !/\{\?dns\}|\{dns\}|\{[^}]*\bdns\b[^}]*\}/.test(s))
        throw new RdataError(
          `dohpath "${s}" must be a relative URI template with a dns variable (RFC 9461 §5)`,
          tok,
        );
      return b;
    }
    case SVC_TLS_GROUPS: {
      const out: number[] = [];
      const seen = new Set<number>();
      for (const g of list()) {
        const v = parseNumber(g, 65535, 'tls-supported-groups', TYPE.SVCB, tok);
        if (seen.has(v)) throw new RdataError(`tls-supported-groups lists ${v} twice`, tok);
        seen.add(v);
        out.push(v >> 8, v & 0xff);
      }
      return out;
    }
    default:
      return value === null ? [] : unescapeBytes(value, tok);
  }
}

function svcValueToText(key: number, v: Uint8Array): string {
  switch (key) {
    case SVC_MANDATORY: {
      const keys: string[] = [];
      for (let i = 0; i + 1 < v.length; i += 2) keys.push(svcKeyToText((v[i]! << 8) | v[i + 1]!));
      return keys.join(',');
    }
    case SVC_ALPN: {
      const ids: string[] = [];
      let i = 0;
      while (i < v.length) {
        const len = v[i]!;
        let s = '';
        for (const b of v.subarray(i + 1, i + 1 + len)) {
          // A comma or backslash inside an id: `\,`/`\\` in the list, each backslash escaped again.
          if (b === 0x2c) s += '\\\\,';
          else if (b === 0x5c) s += '\\\\\\\\';
          else if (b === 0x22) s += '\\"';
          else if (b < 0x21 || b >= 0x7f) s += `\\${b.toString().padStart(3, '0')}`;
          else s += String.fromCharCode(b);
        }
        ids.push(s);
        i += 1 + len;
      }
      return `"${ids.join(',')}"`;
    }
    case SVC_PORT:
      return String((v[0]! << 8) | v[1]!);
    case SVC_IPV4HINT: {
      const a: string[] = [];
      for (let i = 0; i + 3 < v.length; i += 4) a.push(`${v[i]}.${v[i + 1]}.${v[i + 2]}.${v[i + 3]}`);
      return a.join(',');
    }
    case SVC_IPV6HINT: {
      const a: string[] = [];
      for (let i = 0; i + 15 < v.length; i += 16) a.push(ipv6Text(v.subarray(i, i + 16)));
      return a.join(',');
    }
    case SVC_ECH:
      return Buffer.from(v).toString('base64');
    case SVC_TLS_GROUPS: {
      const a: string[] = [];
      for (let i = 0; i + 1 < v.length; i += 2) a.push(String((v[i]! << 8) | v[i + 1]!));
      return a.join(',');
    }
    default:
      return escapeBytes(v);
  }
}

/** Checks one SvcParam's wire value (RFC 9460 §7, §8); throws RdataError. */
function validateSvcValue(key: number, v: Uint8Array): void {
  const bad = (why: string): never => {
    throw new RdataError(`malformed SvcParam ${svcKeyToText(key)}: ${why}`, -1);
  };
  if (key === SVC_INVALID) bad('key 65535 is reserved as invalid');
  if (SVC_EMPTY.has(key) && v.length !== 0) bad('it takes no value');
  if (key === SVC_MANDATORY) {
    if (v.length === 0 || v.length % 2 !== 0) bad('not a list of keys');
    let last = -1;
    for (let i = 0; i < v.length; i += 2) {
      const k = (v[i]! << 8) | v[i + 1]!;
      if (k === SVC_MANDATORY) bad('it lists itself');
      if (k <= last) bad('keys not in strictly increasing order');
      last = k;
    }
  }
  if (key === SVC_PORT && v.length !== 2) bad('not 2 octets');
  if (key === SVC_IPV4HINT && (v.length === 0 || v.length % 4 !== 0)) bad('not a list of IPv4 addresses');
  if (key === SVC_IPV6HINT && (v.length === 0 || v.length % 16 !== 0)) bad('not a list of IPv6 addresses');
  if (key === SVC_TLS_GROUPS && (v.length === 0 || v.length % 2 !== 0)) bad('not a list of 16-bit groups');
  if (key === SVC_DOHPATH && v.length === 0) bad('empty');
  if (key === SVC_ALPN) {
    let i = 0;
    while (i < v.length) {
      if (v[i] === 0) bad('an empty protocol id');
      i += 1 + v[i]!;
    }
    if (i !== v.length || v.length === 0) bad('not a list of protocol ids');
  }
}

/**
 * Checks the SvcParams of one SVCB/HTTPS RDATA as a whole (RFC 9460 §2.4.3, §7.1.1, §8): every key
 * that mandatory lists is present, and no-default-alpn comes with alpn. Throws RdataError.
 */
function checkSvcParams(params: ReadonlyMap<number, ArrayLike<number>>, tok: number): void {
  const mandatory = params.get(SVC_MANDATORY);
  if (mandatory) {
    for (let i = 0; i + 1 < mandatory.length; i += 2) {
      const k = (mandatory[i]! << 8) | mandatory[i + 1]!;
      if (!params.has(k)) {
        throw new RdataError(`mandatory lists ${svcKeyToText(k)} which is not present (RFC 9460 §8)`, tok);
      }
    }
  }
  if (params.has(SVC_NO_DEFAULT_ALPN) && !params.has(SVC_ALPN)) {
    throw new RdataError('no-default-alpn without alpn (RFC 9460 §7.1.1)', tok);
  }
}

/** dns-packet's RDATA codecs for addresses (length-prefixed); its typings omit them. */
interface AddressCodec {
  encode(address: string): Buffer;
  decode(rdataWithLength: Buffer): string;
}
const addressCodecs = packet as unknown as { a: AddressCodec; aaaa: AddressCodec };

function ipv6Bytes(a: string): Uint8Array {
  const enc = addressCodecs.aaaa.encode(a);
  return slabCopy(enc.subarray(2));
}

function ipv6Text(b: Uint8Array): string {
  return addressCodecs.aaaa.decode(Buffer.concat([Buffer.from([0, 16]), Buffer.from(b)]));
}

// ---------------------------------------------------------------------------------------------
// Text → wire

class Out {
  bytes: number[] = [];
  u8(v: number): void {
    this.bytes.push(v & 0xff);
  }
  u16(v: number): void {
    this.bytes.push((v >> 8) & 0xff, v & 0xff);
  }
  u32(v: number): void {
    this.bytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  add(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]!);
  }
}

function cstr(out: Out, bytes: number[], tok: number): void {
  if (bytes.length > 255) throw new RdataError('character-string longer than 255 octets', tok);
  out.u8(bytes.length);
  out.add(bytes);
}

function bitmapFromTypes(types: number[]): number[] {
  const sorted = [...new Set(types)].sort((a, b) => a - b);
  const out: number[] = [];
  let i = 0;
  while (i < sorted.length) {
    const win = sorted[i]! >> 8;
    const bits = new Array<number>(32).fill(0);
    let max = 0;
    while (i < sorted.length && sorted[i]! >> 8 === win) {
      const low = sorted[i]! & 0xff;
      bits[low >> 3]! |= 0x80 >> (low & 7);
      max = Math.max(max, (low >> 3) + 1);
      i++;
    }
    out.push(win, max, ...bits.slice(0, max));
  }
  return out;
}

/** Types listed in an NSEC/NSEC3 type bitmap. */
export function typesFromBitmap(b: Uint8Array): number[] {
  const types: number[] = [];
  let i = 0;
  while (i + 1 < b.length) {
    const win = b[i]!;
    const len = b[i + 1]!;
    if (len < 1 || len > 32 || i + 2 + len > b.length) throw new RdataError('malformed type bitmap', -1);
    for (let j = 0; j < len; j++) {
      const byte = b[i + 2 + j]!;
      for (let k = 0; k < 8; k++) if (byte & (0x80 >> k)) types.push(win * 256 + j * 8 + k);
    }
    i += 2 + len;
  }
  if (i !== b.length) throw new RdataError('malformed type bitmap', -1);
  return types;
}

/** TXT RDATA for a literal text (UTF-8), split into 255-octet character-strings; "" is one empty string. */
export function txtFromText(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'utf8');
  const parts: number[] = [];
  if (bytes.length === 0) parts.push(0);
  for (let i = 0; i < bytes.length; i += 255) {
    const chunk = bytes.subarray(i, i + 255);
    parts.push(chunk.length, ...chunk);
  }
  return Uint8Array.from(parts);
}

/** Encodes an NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2). */
export function typeBitmap(types: number[]): Uint8Array {
  return Uint8Array.from(bitmapFromTypes(types));
}

function generic(type: number, tokens: Token[]): Uint8Array {
  const lenTok = tokens[1];
  if (!lenTok || !/^[0-9]+$/.test(lenTok.text))
    throw new RdataError('\\# must be followed by the RDATA length', 1);
  const len = Number(lenTok.text);
  if (len > 65535) throw new RdataError(`RDATA length ${len} is over 65535`, 1);
  const hex = tokens
    .slice(2)
    .map((t) => t.text)
    .join('');
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) throw new RdataError('\\# data is not hex', 2);
  if (hex.length / 2 !== len) {
    throw new RdataError(`\\# says ${len} octets but has ${hex.length / 2}`, Math.min(2, tokens.length));
  }
  const b = Uint8Array.from(Buffer.from(hex, 'hex'));
  if (RRTYPES.has(type)) checkRdata(type, b);
  return b;
}

/** Scratch for ipv4Fast: the address is assembled here, then copied to a slab. */
const IPV4 = new Uint8Array(4);

/**
 * A dotted-quad IPv4 address as 4 bytes, exactly as strict as node:net isIPv4 (no leading zeros, no
 * missing parts); null otherwise. The common case of big zones, without the generic path's arrays.
 */
function ipv4Fast(text: string): Uint8Array | null {
  const b = IPV4;
  let part = 0;
  let v = -1;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || part > 3) return null;
      b[part++] = v;
      v = -1;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (v === 0) return null; // leading zero
      v = (v < 0 ? 0 : v * 10) + (c - 0x30);
      if (++digits > 3 || v > 255) return null;
    } else return null;
  }
  return part === 4 ? slabCopy(b) : null;
}

// ---------------------------------------------------------------------------------------------
// Field codecs: each kind reads its text, writes its bytes, reads its bytes and prints its text.

/** Tokens being turned into RDATA. */
interface TextIn {
  tokens: Token[];
  /** Index of the next token. */
  t: number;
  out: Out;
  origin: Name;
  type: number;
  tname: string;
}

/** Wire RDATA being read; `names` collects the offsets of embedded names when set. */
interface Cursor {
  b: Uint8Array;
  p: number;
  type: number;
  names: number[] | null;
}

/** A decoded field, printed later (names print relative to an origin when one is given). */
type Value =
  | number
  | Name
  | Uint8Array
  | Uint8Array[]
  | number[]
  | Map<number, Uint8Array>
  | ((origin?: Name) => string)
  | undefined;

interface Codec {
  parse(p: TextIn, f: Field): void;
  read(c: Cursor, f: Field): Value;
  print(v: Value, origin?: Name): string;
}

function take(p: TextIn, f: Field): Token {
  const tok = p.tokens[p.t];
  if (!tok) throw new RdataError(`${p.tname} is missing its ${f.name}`, p.tokens.length);
  p.t++;
  return tok;
}

/** The rest of the tokens joined (hex and base64 may be split by whitespace). */
function takeRest(p: TextIn): string {
  let s = '';
  for (; p.t < p.tokens.length; p.t++) s += p.tokens[p.t]!.text;
  return s;
}

function need(c: Cursor, n: number): void {
  if (c.p + n > c.b.length) throw new RdataError(`${typeToText(c.type)} RDATA is truncated`, -1);
}

function readU8(c: Cursor): number {
  need(c, 1);
  return c.b[c.p++]!;
}

function readU16(c: Cursor): number {
  need(c, 2);
  const v = (c.b[c.p]! << 8) | c.b[c.p + 1]!;
  c.p += 2;
  return v;
}

function readU32(c: Cursor): number {
  need(c, 4);
  const b = c.b;
  const v = ((b[c.p]! << 24) | (b[c.p + 1]! << 16) | (b[c.p + 2]! << 8) | b[c.p + 3]!) >>> 0;
  c.p += 4;
  return v;
}

function readBytes(c: Cursor, n: number): Uint8Array {
  need(c, n);
  const v = c.b.subarray(c.p, c.p + n);
  c.p += n;
  return v;
}

function readRest(c: Cursor): Uint8Array {
  const v = c.b.subarray(c.p);
  c.p = c.b.length;
  return v;
}

function readWireName(c: Cursor): Name {
  // RDATA names are stored uncompressed: a pointer here is malformed.
  let p = c.p;
  while (p < c.b.length && c.b[p] !== 0) {
    if ((c.b[p]! & 0xc0) !== 0) throw new RdataError(`${typeToText(c.type)} RDATA has a compressed name`, -1);
    p += c.b[p]! + 1;
  }
  if (p >= c.b.length) throw new RdataError(`${typeToText(c.type)} RDATA has a truncated name`, -1);
  try {
    const r = readName(c.b, c.p);
    c.names?.push(c.p);
    c.p = r.next;
    return r.name;
  } catch (e) {
    if (e instanceof NameError) throw new RdataError(`${typeToText(c.type)} RDATA: ${e.message}`, -1);
    throw e;
  }
}

function parseName(p: TextIn, f: Field, text: string): void {
  try {
    p.out.add(nameFromText(text, p.origin));
  } catch (e) {
    if (e instanceof NameError) throw new RdataError(`${p.tname} ${f.name}: ${e.message}`, p.t - 1);
    throw e;
  }
}

function nameText(n: Name, origin?: Name): string {
  return origin ? nameToRelativeText(n, origin) : nameToText(n);
}

function parseBase64(text: string, what: string, tok: number): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new RdataError(`${what} is not base64`, tok);
  }
  return Buffer.from(text, 'base64');
}

function parseHex(text: string, what: string, tok: number): Buffer {
  if (!/^[0-9a-fA-F]*$/.test(text) || text.length % 2 !== 0) throw new RdataError(`${what} is not hex`, tok);
  return Buffer.from(text, 'hex');
}

const hexText = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

function mnemonicNumber(
  text: string,
  table: ReadonlyMap<string, number>,
  max: number,
  what: string,
  tok: number,
): number {
  if (/^[0-9]+$/.test(text)) {
    if (Number(text) > max) throw new RdataError(`${what} "${text}" is not a number 0-${max}`, tok);
    return Number(text);
  }
  const v = table.get(text.toUpperCase());
  if (v === undefined) {
    throw new RdataError(`${what} "${text}" is neither a number 0-${max} nor a known mnemonic`, tok);
  }
  return v;
}

/** Prints a number field. */
const printNumber = (v: Value): string => String(v);

const num = (bytes: 1 | 2 | 4): Codec => ({
  parse(p, f) {
    const max = bytes === 1 ? 255 : bytes === 2 ? 65535 : 0xffffffff;
    const v = parseNumber(take(p, f).text, max, f.name, p.type, p.t - 1);
    if (bytes === 1) p.out.u8(v);
    else if (bytes === 2) p.out.u16(v);
    else p.out.u32(v);
  },
  read: (c) => (bytes === 1 ? readU8(c) : bytes === 2 ? readU16(c) : readU32(c)),
  print: printNumber,
});

/** Parses an IPv4 address token into 4 bytes. */
function ipv4FromText(text: string, what: string, tok: number): number[] {
  if (!isIPv4(text)) throw new RdataError(`${what} "${text}" is not an IPv4 address`, tok);
  return text.split('.').map(Number);
}

function ipv6FromText(text: string, what: string, tok: number): Uint8Array {
  if (!isIPv6(text) || text.includes('%'))
    throw new RdataError(`${what} "${text}" is not an IPv6 address`, tok);
  return ipv6Bytes(text);
}

const ipv4Text = (b: Uint8Array): string => `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;

/** Hex groups of `size` octets each, `groups` of them, joined by `sep` (EUI-48/64, ILNP). */
function groupedHex(groups: number, size: number, sep: string, what: string): Codec {
  const digits = size * 2;
  const re = new RegExp(
    `^[0-9a-fA-F]{${digits}}(${sep === '-' ? '-' : ':'}[0-9a-fA-F]{${digits}}){${groups - 1}}$`,
  );
  return {
    parse(p, f) {
      const text = take(p, f).text;
      if (!re.test(text)) throw new RdataError(`${p.tname} ${f.name} "${text}" is not ${what}`, p.t - 1);
      p.out.add(Buffer.from(text.split(sep).join(''), 'hex'));
    },
    read: (c) => readBytes(c, groups * size),
    print(v) {
      const h = Buffer.from(v as Uint8Array).toString('hex');
      const parts: string[] = [];
      for (let i = 0; i < h.length; i += digits) parts.push(h.slice(i, i + digits));
      return parts.join(sep);
    },
  };
}

// LOC (RFC 1876 §3 and Appendix A) ------------------------------------------------------------

/** A size or precision in centimetres as RFC 1876's mantissa/exponent byte (truncating, like BIND). */
function locSize(cm: number): number {
  let e = 0;
  while (e < 9 && cm >= 10 ** (e + 1)) e++;
  const m = Math.floor(cm / 10 ** e);
  return (Math.min(m, 9) << 4) | e;
}

function locSizeText(b: number): string {
  const cm = (b >> 4) * 10 ** (b & 0x0f);
  return `${(cm / 100).toFixed(2)}m`;
}

/** Metres with up to two decimals (and an optional `m`) → centimetres; undefined when malformed. */
function metresToCm(text: string, signed: boolean): number | undefined {
  const m = (signed ? /^(-?)([0-9]+)(?:\.([0-9]{1,2}))?m?$/ : /^()([0-9]+)(?:\.([0-9]{1,2}))?m?$/).exec(text);
  if (!m) return undefined;
  const cm = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'));
  return m[1] === '-' ? -cm : cm;
}

const LOC_EQUATOR = 2 ** 31;
const LOC_ALT_BASE = 10000000; // 100,000 m below the WGS 84 spheroid, in cm

const locCodec: Codec = {
  parse(p, f) {
    const angle = (maxDeg: number, hemis: string): number => {
      const what = maxDeg === 90 ? 'latitude' : 'longitude';
      const dTok = take(p, f).text;
      if (!/^[0-9]{1,3}$/.test(dTok) || Number(dTok) > maxDeg) {
        throw new RdataError(`LOC ${what} degrees "${dTok}" is not 0-${maxDeg}`, p.t - 1);
      }
      let ms = Number(dTok) * 3600000;
      let tok = take(p, f).text;
      if (/^[0-9]{1,2}$/.test(tok)) {
        if (Number(tok) > 59) throw new RdataError(`LOC ${what} minutes "${tok}" is not 0-59`, p.t - 1);
        ms += Number(tok) * 60000;
        tok = take(p, f).text;
        const s = /^([0-9]{1,2})(?:\.([0-9]{1,3}))?$/.exec(tok);
        if (s) {
          if (Number(s[1]) > 59)
            throw new RdataError(`LOC ${what} seconds "${tok}" is not 0-59.999`, p.t - 1);
          ms += Number(s[1]) * 1000 + Number((s[2] ?? '').padEnd(3, '0'));
          tok = take(p, f).text;
        }
      }
      const h = tok.toUpperCase();
      if (h.length !== 1 || !hemis.includes(h)) {
        throw new RdataError(`LOC ${what} needs ${hemis[0]} or ${hemis[1]}, not "${tok}"`, p.t - 1);
      }
      if (ms > maxDeg * 3600000) throw new RdataError(`LOC ${what} is over ${maxDeg} degrees`, p.t - 1);
      return h === hemis[0] ? LOC_EQUATOR + ms : LOC_EQUATOR - ms;
    };
    const lat = angle(90, 'NS');
    const lon = angle(180, 'EW');
    const altTok = take(p, f).text;
    const alt = metresToCm(altTok, true);
    if (alt === undefined || alt < -LOC_ALT_BASE || alt + LOC_ALT_BASE > 0xffffffff) {
      throw new RdataError(`LOC altitude "${altTok}" is not -100000.00 to 42849672.95 metres`, p.t - 1);
    }
    const sizes = [100, 1000000, 1000]; // defaults: 1 m, 10,000 m, 10 m (RFC 1876 Appendix A)
    for (let i = 0; i < 3 && p.t < p.tokens.length; i++) {
      const text = p.tokens[p.t]!.text;
      const cm = metresToCm(text, false);
      if (cm === undefined || cm > 9000000000) {
        throw new RdataError(`LOC size/precision "${text}" is not 0 to 90000000.00 metres`, p.t);
      }
      sizes[i] = cm;
      p.t++;
    }
    p.out.u8(0);
    for (const s of sizes) p.out.u8(locSize(s));
    p.out.u32(lat);
    p.out.u32(lon);
    p.out.u32(alt + LOC_ALT_BASE);
  },
  read(c) {
    const version = readU8(c);
    if (version !== 0) throw new RdataError(`LOC version ${version} is not 0`, -1);
    const sizes = [readU8(c), readU8(c), readU8(c)];
    for (const s of sizes)
      if (s >> 4 > 9 || (s & 0x0f) > 9) throw new RdataError('LOC size is malformed', -1);
    const lat = readU32(c);
    const lon = readU32(c);
    const alt = readU32(c);
    const angle = (v: number, hemis: string): string => {
      const off = v - LOC_EQUATOR;
      const h = off >= 0 ? hemis[0] : hemis[1];
      let ms = Math.abs(off);
      const d = Math.floor(ms / 3600000);
      ms -= d * 3600000;
      const m = Math.floor(ms / 60000);
      ms -= m * 60000;
      return `${d} ${m} ${(ms / 1000).toFixed(3)} ${h}`;
    };
    return () =>
      `${angle(lat, 'NS')} ${angle(lon, 'EW')} ${((alt - LOC_ALT_BASE) / 100).toFixed(2)}m ${sizes.map(locSizeText).join(' ')}`;
  },
  print: (v) => (v as () => string)(),
};

// APL (RFC 3123 §4, §5) -------------------------------------------------------------------------

const aplCodec: Codec = {
  parse(p) {
    for (; p.t < p.tokens.length; p.t++) {
      const text = p.tokens[p.t]!.text;
      const m = /^(!?)([12]):([^/]+)\/([0-9]{1,3})$/.exec(text);
      if (!m) throw new RdataError(`APL item "${text}" is not [!]afi:address/prefix`, p.t);
      const afi = Number(m[2]);
      const prefix = Number(m[4]);
      const addr =
        afi === 1 ? ipv4FromText(m[3]!, 'APL address', p.t) : [...ipv6FromText(m[3]!, 'APL address', p.t)];
      if (prefix > addr.length * 8) throw new RdataError(`APL prefix /${prefix} is too long`, p.t);
      let len = addr.length;
      while (len > 0 && addr[len - 1] === 0) len--;
      p.out.u16(afi);
      p.out.u8(prefix);
      p.out.u8((m[1] === '!' ? 0x80 : 0) | len);
      p.out.add(addr.slice(0, len));
    }
  },
  read(c) {
    const items: string[] = [];
    while (c.p < c.b.length) {
      const afi = readU16(c);
      const prefix = readU8(c);
      const nl = readU8(c);
      const len = nl & 0x7f;
      const size = afi === 1 ? 4 : afi === 2 ? 16 : 0;
      if (size === 0) throw new RdataError(`APL address family ${afi} is not 1 or 2`, -1);
      if (len > size || prefix > size * 8) throw new RdataError('APL item is malformed', -1);
      const addr = new Uint8Array(size);
      addr.set(readBytes(c, len));
      items.push(`${nl & 0x80 ? '!' : ''}${afi}:${afi === 1 ? ipv4Text(addr) : ipv6Text(addr)}/${prefix}`);
    }
    return () => items.join(' ');
  },
  print: (v) => (v as () => string)(),
};

// WKS (RFC 1035 §3.4.2) -------------------------------------------------------------------------

const PROTOCOLS: ReadonlyMap<string, number> = new Map([
  ['TCP', 6],
  ['UDP', 17],
]);
/** Service names BIND resolves through getservbyname(3) that are common in old zones. */
const SERVICES: ReadonlyMap<string, number> = new Map([
  ['echo', 7],
  ['discard', 9],
  ['daytime', 13],
  ['ftp-data', 20],
  ['ftp', 21],
  ['ssh', 22],
  ['telnet', 23],
  ['smtp', 25],
  ['time', 37],
  ['domain', 53],
  ['finger', 79],
  ['http', 80],
  ['www', 80],
  ['pop3', 110],
  ['sunrpc', 111],
  ['ident', 113],
  ['auth', 113],
  ['nntp', 119],
  ['ntp', 123],
  ['imap', 143],
  ['snmp', 161],
  ['ldap', 389],
  ['https', 443],
  ['submission', 587],
  ['ldaps', 636],
  ['imaps', 993],
  ['pop3s', 995],
]);

const wksCodec: Codec = {
  parse(p, f) {
    const protoTok = take(p, f).text;
    const proto = mnemonicNumber(protoTok, PROTOCOLS, 255, 'WKS protocol', p.t - 1);
    p.out.u8(proto);
    const bits: number[] = [];
    for (; p.t < p.tokens.length; p.t++) {
      const s = p.tokens[p.t]!.text;
      const port = /^[0-9]+$/.test(s) ? Number(s) : SERVICES.get(s.toLowerCase());
      if (port === undefined || port > 65535) {
        throw new RdataError(`WKS service "${s}" is not a port number or a known service name`, p.t);
      }
      while (bits.length <= port >> 3) bits.push(0);
      bits[port >> 3]! |= 0x80 >> (port & 7);
    }
    p.out.add(bits);
  },
  read(c) {
    const proto = readU8(c);
    const map = readRest(c);
    const ports: number[] = [];
    for (let i = 0; i < map.length; i++)
      for (let k = 0; k < 8; k++) if (map[i]! & (0x80 >> k)) ports.push(i * 8 + k);
    return () => [String(proto), ...ports.map(String)].join(' ');
  },
  print: (v) => (v as () => string)(),
};

// A6 (RFC 2874 §3.1) ----------------------------------------------------------------------------

const a6Codec: Codec = {
  parse(p, f) {
    const plenTok = take(p, f).text;
    const plen = parseNumber(plenTok, 128, 'prefix length', p.type, p.t - 1);
    p.out.u8(plen);
    const suffixLen = Math.ceil((128 - plen) / 8);
    if (plen < 128) {
      const addr = ipv6FromText(take(p, f).text, 'A6 address suffix', p.t - 1);
      p.out.add(addr.subarray(16 - suffixLen));
    }
    if (plen > 0) parseName(p, f, take(p, f).text);
  },
  read(c) {
    const plen = readU8(c);
    if (plen > 128) throw new RdataError(`A6 prefix length ${plen} is over 128`, -1);
    const suffixLen = Math.ceil((128 - plen) / 8);
    const addr = new Uint8Array(16);
    addr.set(readBytes(c, suffixLen), 16 - suffixLen);
    const prefix = plen > 0 ? readWireName(c) : null;
    return (origin?: Name) =>
      [
        String(plen),
        ...(plen < 128 ? [ipv6Text(addr)] : []),
        ...(prefix ? [nameText(prefix, origin)] : []),
      ].join(' ');
  },
  print: (v, origin) => (v as (o?: Name) => string)(origin),
};

// IPSECKEY (RFC 4025 §2, §3) and AMTRELAY (RFC 8777 §4) gateways --------------------------------

function parseGateway(p: TextIn, f: Field, gtype: number): void {
  const text = take(p, f).text;
  switch (gtype) {
    case 0:
      if (text !== '.') throw new RdataError(`${p.tname} gateway type 0 takes "." as its gateway`, p.t - 1);
      return;
    case 1:
      p.out.add(ipv4FromText(text, `${p.tname} gateway`, p.t - 1));
      return;
    case 2:
      p.out.add(ipv6FromText(text, `${p.tname} gateway`, p.t - 1));
      return;
    case 3:
      parseName(p, f, text);
      return;
    default:
      throw new RdataError(`${p.tname} gateway type ${gtype} is not 0-3`, p.t - 1);
  }
}

function readGateway(c: Cursor, gtype: number): (origin?: Name) => string {
  switch (gtype) {
    case 0:
      return () => '.';
    case 1: {
      const a = readBytes(c, 4);
      return () => ipv4Text(a);
    }
    case 2: {
      const a = readBytes(c, 16);
      return () => ipv6Text(a);
    }
    case 3: {
      const n = readWireName(c);
      return (origin) => nameText(n, origin);
    }
    default:
      throw new RdataError(`${typeToText(c.type)} gateway type ${gtype} is not 0-3`, -1);
  }
}

const ipseckeyCodec: Codec = {
  parse(p, f) {
    const gtype = parseNumber(take(p, f).text, 255, 'gateway type', p.type, p.t - 1);
    const alg = parseNumber(take(p, f).text, 255, 'algorithm', p.type, p.t - 1);
    p.out.u8(gtype);
    p.out.u8(alg);
    parseGateway(p, f, gtype);
    const key = takeRest(p);
    if (key !== '') p.out.add(parseBase64(key, 'IPSECKEY public key', p.t - 1));
  },
  read(c) {
    const gtype = readU8(c);
    const alg = readU8(c);
    const gw = readGateway(c, gtype);
    const key = readRest(c);
    return (origin?: Name) =>
      [
        String(gtype),
        String(alg),
        gw(origin),
        ...(key.length ? [Buffer.from(key).toString('base64')] : []),
      ].join(' ');
  },
  print: (v, origin) => (v as (o?: Name) => string)(origin),
};

const amtrelayCodec: Codec = {
  parse(p, f) {
    const dTok = take(p, f).text;
    if (dTok !== '0' && dTok !== '1')
      throw new RdataError(`AMTRELAY discovery optional "${dTok}" is not 0 or 1`, p.t - 1);
    const rtype = parseNumber(take(p, f).text, 127, 'type', p.type, p.t - 1);
    p.out.u8((dTok === '1' ? 0x80 : 0) | rtype);
    parseGateway(p, f, rtype);
  },
  read(c) {
    const b = readU8(c);
    const gw = readGateway(c, b & 0x7f);
    return (origin?: Name) => `${b >> 7} ${b & 0x7f} ${gw(origin)}`;
  },
  print: (v, origin) => (v as (o?: Name) => string)(origin),
};

// HIP (RFC 8005 §5) -----------------------------------------------------------------------------

const hipCodec: Codec = {
  parse(p, f) {
    const alg = parseNumber(take(p, f).text, 255, 'PK algorithm', p.type, p.t - 1);
    const hit = parseHex(take(p, f).text, 'HIP HIT', p.t - 1);
    if (hit.length === 0 || hit.length > 255) throw new RdataError('HIP HIT must be 1-255 octets', p.t - 1);
    const pk = parseBase64(take(p, f).text, 'HIP public key', p.t - 1);
    if (pk.length === 0 || pk.length > 65535)
      throw new RdataError('HIP public key is empty or too long', p.t - 1);
    p.out.u8(hit.length);
    p.out.u8(alg);
    p.out.u16(pk.length);
    p.out.add(hit);
    p.out.add(pk);
    while (p.t < p.tokens.length) parseName(p, f, take(p, f).text);
  },
  read(c) {
    const hitLen = readU8(c);
    const alg = readU8(c);
    const pkLen = readU16(c);
    const hit = readBytes(c, hitLen);
    const pk = readBytes(c, pkLen);
    const servers: Name[] = [];
    while (c.p < c.b.length) servers.push(readWireName(c));
    return (origin?: Name) =>
      [
        String(alg),
        hexText(hit),
        Buffer.from(pk).toString('base64'),
        ...servers.map((s) => nameText(s, origin)),
      ].join(' ');
  },
  print: (v, origin) => (v as (o?: Name) => string)(origin),
};

// The codec of each kind --------------------------------------------------------------------------

const CODECS: Record<Kind, Codec> = {
  u8: num(1),
  u16: num(2),
  u32: num(4),
  period: {
    parse(p, f) {
      const text = take(p, f).text;
      const v = parsePeriod(text);
      if (v === undefined || v > 0xffffffff) {
        throw new RdataError(`${p.tname} ${f.name} "${text}" is not a number of seconds`, p.t - 1);
      }
      p.out.u32(v);
    },
    read: readU32,
    print: printNumber,
  },
  time: {
    parse(p, f) {
      p.out.u32(parseTime(take(p, f).text, p.t - 1));
    },
    read: readU32,
    print: (v) => formatTime(v as number),
  },
  alg: {
    parse(p, f) {
      p.out.u8(mnemonicNumber(take(p, f).text, ALGORITHMS, 255, `${p.tname} ${f.name}`, p.t - 1));
    },
    read: readU8,
    print: printNumber,
  },
  certtype: {
    parse(p, f) {
      p.out.u16(mnemonicNumber(take(p, f).text, CERT_TYPES, 65535, `${p.tname} ${f.name}`, p.t - 1));
    },
    read: readU16,
    print: printNumber,
  },
  type: {
    parse(p, f) {
      const text = take(p, f).text;
      const v = typeFromText(text);
      if (v === undefined) throw new RdataError(`"${text}" is not a type (a mnemonic or TYPEnnn)`, p.t - 1);
      p.out.u16(v);
    },
    read: readU16,
    print: (v) => typeToText(v as number),
  },
  name: {
    parse(p, f) {
      parseName(p, f, take(p, f).text);
    },
    read: (c) => readWireName(c),
    print: (v, origin) => nameText(v as Name, origin),
  },
  ipv4: {
    parse(p, f) {
      p.out.add(ipv4FromText(take(p, f).text, `${p.tname} ${f.name}`, p.t - 1));
    },
    read: (c) => readBytes(c, 4),
    print: (v) => ipv4Text(v as Uint8Array),
  },
  ipv6: {
    parse(p, f) {
      p.out.add(ipv6FromText(take(p, f).text, `${p.tname} ${f.name}`, p.t - 1));
    },
    read: (c) => readBytes(c, 16),
    print: (v) => ipv6Text(v as Uint8Array),
  },
  cstr: {
    parse(p, f) {
      const tok = take(p, f);
      if (f.pattern && !f.pattern.re.test(tok.text)) {
        throw new RdataError(`${p.tname} ${f.name} "${tok.text}" is not ${f.pattern.what}`, p.t - 1);
      }
      cstr(p.out, unescapeBytes(tok.text, p.t - 1), p.t - 1);
    },
    read: (c) => readBytes(c, readU8(c)),
    print: (v) => escapeBytes(v as Uint8Array),
  },
  cstrs: {
    parse(p, f) {
      take(p, f);
      for (p.t--; p.t < p.tokens.length; p.t++) {
        const bytes = unescapeBytes(p.tokens[p.t]!.text, p.t);
        // A string over 255 octets is split into consecutive character-strings.
        if (bytes.length === 0) cstr(p.out, [], p.t);
        for (let i = 0; i < bytes.length; i += 255) cstr(p.out, bytes.slice(i, i + 255), p.t);
      }
    },
    read(c) {
      const list: Uint8Array[] = [];
      if (c.p >= c.b.length) throw new RdataError(`${typeToText(c.type)} RDATA is empty`, -1);
      while (c.p < c.b.length) list.push(readBytes(c, readU8(c)));
      return list;
    },
    print: (v) => (v as Uint8Array[]).map(escapeBytes).join(' '),
  },
  hex: {
    parse(p, f) {
      const at = p.t;
      const text = takeRest(p);
      if ((text === '' || text === '-') && !f.optional) {
        throw new RdataError(`${p.tname} is missing its ${f.name}`, p.tokens.length);
      }
      const b = text === '-' ? Buffer.alloc(0) : parseHex(text, `${p.tname} ${f.name}`, at);
      if (f.min !== undefined && b.length < f.min) {
        throw new RdataError(`${p.tname} ${f.name} is shorter than ${f.min} octets`, at);
      }
      p.out.add(b);
    },
    read(c, f) {
      const v = readRest(c);
      if (f.min !== undefined && v.length < f.min) {
        throw new RdataError(`${typeToText(c.type)} ${f.name} is shorter than ${f.min} octets`, -1);
      }
      return v;
    },
    print: (v) => ((v as Uint8Array).length === 0 ? '-' : hexText(v as Uint8Array)),
  },
  base64: {
    parse(p, f) {
      const at = p.t;
      const text = takeRest(p);
      if (text === '' || (text === '-' && f.optional)) {
        if (f.optional) return;
        throw new RdataError(`${p.tname} is missing its ${f.name}`, p.tokens.length);
      }
      p.out.add(parseBase64(text, `${p.tname} ${f.name}`, at));
    },
    read: readRest,
    print: (v) => Buffer.from(v as Uint8Array).toString('base64'),
  },
  salt: {
    parse(p, f) {
      const text = take(p, f).text;
      if (text === '-') p.out.u8(0);
      else {
        if (!/^[0-9a-fA-F]+$/.test(text) || text.length % 2 !== 0 || text.length > 510) {
          throw new RdataError(`salt "${text}" is not hex (or - for none)`, p.t - 1);
        }
        p.out.u8(text.length / 2);
        p.out.add(Buffer.from(text, 'hex'));
      }
    },
    read: (c) => readBytes(c, readU8(c)),
    print: (v) => ((v as Uint8Array).length === 0 ? '-' : hexText(v as Uint8Array)),
  },
  b32hex: {
    parse(p, f) {
      const b = base32hexDecode(take(p, f).text, p.t - 1);
      if (b.length < 1 || b.length > 255) throw new RdataError('next hashed owner has a bad length', p.t - 1);
      p.out.u8(b.length);
      p.out.add(b);
    },
    read(c) {
      const v = readBytes(c, readU8(c));
      if (v.length === 0) throw new RdataError('next hashed owner is empty', -1);
      return v;
    },
    print: (v) => base32hexEncode(v as Uint8Array),
  },
  bitmap: {
    parse(p) {
      p.out.add(bitmapFromTypes(typeList(p)));
    },
    read: (c) => typesFromBitmap(readRest(c)),
    print: (v) => (v as number[]).map(typeToText).join(' '),
  },
  nxtbitmap: {
    parse(p) {
      const types = typeList(p);
      const bits: number[] = [];
      for (const ty of types) {
        if (ty > 127) throw new RdataError(`NXT cannot list type ${typeToText(ty)} (over 127)`, p.t - 1);
        while (bits.length <= ty >> 3) bits.push(0);
        bits[ty >> 3]! |= 0x80 >> (ty & 7);
      }
      p.out.add(bits);
    },
    read(c) {
      const b = readRest(c);
      if (b.length > 16) throw new RdataError('NXT bitmap is longer than 16 octets', -1);
      const types: number[] = [];
      for (let i = 0; i < b.length; i++)
        for (let k = 0; k < 8; k++) if (b[i]! & (0x80 >> k)) types.push(i * 8 + k);
      return types;
    },
    print: (v) => (v as number[]).map(typeToText).join(' '),
  },
  caatag: {
    parse(p, f) {
      const text = take(p, f).text;
      if (!/^[A-Za-z0-9]{1,255}$/.test(text)) {
        throw new RdataError(`CAA tag "${text}" must be letters and digits`, p.t - 1);
      }
      p.out.u8(text.length);
      p.out.add(Buffer.from(text, 'latin1'));
    },
    read(c) {
      const v = readBytes(c, readU8(c));
      if (v.length === 0) throw new RdataError('CAA tag is empty', -1);
      return v;
    },
    print: (v) => Buffer.from(v as Uint8Array).toString('latin1'),
  },
  caavalue: {
    parse(p, f) {
      p.out.add(unescapeBytes(take(p, f).text, p.t - 1));
    },
    read: readRest,
    print: (v) => escapeBytes(v as Uint8Array),
  },
  uri: {
    parse(p, f) {
      p.out.add(unescapeBytes(take(p, f).text, p.t - 1));
    },
    read: readRest,
    print: (v) => escapeBytes(v as Uint8Array),
  },
  svcparams: {
    parse(p) {
      const params = new Map<number, number[]>();
      for (; p.t < p.tokens.length; p.t++) {
        const tok = p.tokens[p.t]!;
        if (tok.quoted) throw new RdataError(`"${tok.text}" is not key=value`, p.t);
        const raw = tok.text;
        const eq = raw.indexOf('=');
        const keyText = eq < 0 ? raw : raw.slice(0, eq);
        let value: string | null = eq < 0 ? null : raw.slice(eq + 1);
        const at = p.t;
        // key="quoted value" arrives as `key=` followed by a quoted token.
        if (value === '' && p.tokens[p.t + 1]?.quoted) {
          value = p.tokens[p.t + 1]!.text;
          p.t++;
        }
        const key = svcKeyFromText(keyText, at);
        if (params.has(key))
          throw new RdataError(`SvcParamKey ${svcKeyToText(key)} appears twice (RFC 9460 §2.1)`, at);
        params.set(key, svcValueFromText(key, value, at));
      }
      checkSvcParams(params, p.tokens.length - 1);
      // Keys may come in any order in text; on the wire they are in strictly increasing order.
      for (const k of [...params.keys()].sort((a, b) => a - b)) {
        const v = params.get(k)!;
        if (v.length > 65535) throw new RdataError(`SvcParam ${svcKeyToText(k)} is too long`, p.t - 1);
        p.out.u16(k);
        p.out.u16(v.length);
        p.out.add(v);
      }
    },
    read(c) {
      const m = new Map<number, Uint8Array>();
      let last = -1;
      while (c.p < c.b.length) {
        const k = readU16(c);
        const v = readBytes(c, readU16(c));
        if (k <= last) throw new RdataError('SvcParams are not in strictly increasing key order', -1);
        last = k;
        validateSvcValue(k, v);
        m.set(k, v);
      }
      checkSvcParams(m, -1);
      return m;
    },
    print(v) {
      const parts: string[] = [];
      for (const [k, x] of v as Map<number, Uint8Array>) {
        parts.push(
          SVC_EMPTY.has(k) || (x.length === 0 && k >= SVC_KEYS.length)
            ? svcKeyToText(k)
            : `${svcKeyToText(k)}=${svcValueToText(k, x)}`,
        );
      }
      return parts.join(' ');
    },
  },
  eui48: groupedHex(6, 1, '-', 'an EUI-48 (xx-xx-xx-xx-xx-xx)'),
  eui64: groupedHex(8, 1, '-', 'an EUI-64 (xx-xx-xx-xx-xx-xx-xx-xx)'),
  ilnp64: groupedHex(4, 2, ':', 'four groups of four hex digits (xxxx:xxxx:xxxx:xxxx)'),
  nsap: {
    parse(p, f) {
      const text = take(p, f).text;
      const m = /^0x([0-9a-fA-F.]+)$/i.exec(text);
      const hex = m ? m[1]!.replace(/\./g, '') : '';
      if (!m || hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
        throw new RdataError(`NSAP "${text}" is not 0x followed by hex`, p.t - 1);
      }
      p.out.add(Buffer.from(hex, 'hex'));
    },
    read(c) {
      const v = readRest(c);
      if (v.length === 0) throw new RdataError('NSAP is empty', -1);
      return v;
    },
    print: (v) => `0x${Buffer.from(v as Uint8Array).toString('hex')}`,
  },
  loc: locCodec,
  apl: aplCodec,
  wks: wksCodec,
  a6: a6Codec,
  ipseckey: ipseckeyCodec,
  hip: hipCodec,
  amtrelay: amtrelayCodec,
};

/** The rest of the tokens as type numbers (mnemonics of the table or TYPEnnn). */
function typeList(p: TextIn): number[] {
  const types: number[] = [];
  for (; p.t < p.tokens.length; p.t++) {
    const v = typeFromText(p.tokens[p.t]!.text);
    if (v === undefined)
      throw new RdataError(`"${p.tokens[p.t]!.text}" is not a type (a mnemonic or TYPEnnn)`, p.t);
    types.push(v);
  }
  return types;
}

// ---------------------------------------------------------------------------------------------
// Text → wire, wire → text, by the table

/** True when popdns knows the type's RDATA layout (others are kept as opaque RFC 3597 data). */
export function isKnownType(type: number): boolean {
  return RRTYPES.has(type);
}

/** True for types whose RDATA is character-strings only (TXT, SPF, …): YAML takes plain text for them. */
export function isTextType(type: number): boolean {
  return RRTYPES.get(type)?.text === true;
}

/** Presentation tokens → uncompressed wire RDATA. Throws RdataError naming the bad token. */
export function rdataFromText(type: number, tokens: Token[], origin: Name): Uint8Array {
  if (type === TYPE.A && tokens.length === 1 && !tokens[0]!.quoted) {
    const fast = ipv4Fast(tokens[0]!.text);
    if (fast) return fast;
  }
  if (tokens[0]?.text === '\\#' && !tokens[0].quoted) return generic(type, tokens);
  const info = RRTYPES.get(type);
  if (!info) {
    throw new RdataError(
      isMetaType(type)
        ? `${typeToText(type)} is a meta type and cannot be zone data`
        : `type ${typeToText(type)} has no known presentation format; write it as \\# <length> <hex>`,
      0,
    );
  }
  const p: TextIn = { tokens, t: 0, out: new Out(), origin, type, tname: typeToText(type) };
  for (const field of info.fields) {
    if (field.optional && p.t >= tokens.length) break;
    CODECS[field.kind].parse(p, field);
  }
  if (p.t < tokens.length) {
    throw new RdataError(`unexpected "${tokens[p.t]!.text}" after the ${p.tname} data`, p.t);
  }
  if (p.out.bytes.length > 65535) throw new RdataError('RDATA longer than 65535 octets', 0);
  return slabCopy(p.out.bytes);
}

interface Decoded {
  field: Field;
  value: Value;
}

function readFields(type: number, rdata: Uint8Array, names: number[] | null = null): Decoded[] {
  const info = RRTYPES.get(type);
  if (!info) return [];
  const c: Cursor = { b: rdata, p: 0, type, names };
  const out: Decoded[] = [];
  for (const field of info.fields) {
    if (field.optional && c.p >= rdata.length) break;
    out.push({ field, value: CODECS[field.kind].read(c, field) });
  }
  if (c.p !== rdata.length) throw new RdataError(`${typeToText(type)} RDATA has trailing bytes`, -1);
  return out;
}

/** Validates wire RDATA for a type; throws RdataError. Unknown types are opaque and always valid. */
export function checkRdata(type: number, rdata: Uint8Array): void {
  if (rdata.length > 65535) throw new RdataError('RDATA longer than 65535 octets', -1);
  readFields(type, rdata);
}

/** Wire RDATA → presentation text (names relative to `origin` when given); unknown types as RFC 3597 `\# len hex`. */
export function rdataToText(type: number, rdata: Uint8Array, origin?: Name): string {
  if (!RRTYPES.has(type)) {
    return rdata.length === 0 ? '\\# 0' : `\\# ${rdata.length} ${Buffer.from(rdata).toString('hex')}`;
  }
  return readFields(type, rdata)
    .map(({ field, value }) => CODECS[field.kind].print(value, origin))
    .filter((s) => s !== '')
    .join(' ');
}

/** Octets of the fixed-size kinds (for walking to the names without decoding everything). */
const FIXED_SIZE: Partial<Record<Kind, number>> = {
  u8: 1,
  u16: 2,
  u32: 4,
  period: 4,
  time: 4,
  alg: 1,
  certtype: 2,
  type: 2,
  ipv4: 4,
  ipv6: 16,
};

interface NameLayout {
  compress: boolean;
  /** The one name sits at this offset whatever the RDATA (NS, MX, SRV, …); null otherwise. */
  fixed: { offset: number; compress: boolean }[] | null;
  /** The fields up to the last name are fixed-size, character-strings or names: walk them. */
  walk: readonly Kind[] | null;
}

/** Per type with names in its RDATA: how to find them quickly. */
const NAME_LAYOUT = new Map<number, NameLayout>();
for (const [type, info] of RRTYPES) {
  const complex = info.fields.some(
    (x) => x.kind === 'a6' || x.kind === 'ipseckey' || x.kind === 'hip' || x.kind === 'amtrelay',
  );
  const last = info.fields.map((x) => x.kind).lastIndexOf('name');
  if (!complex && last < 0) continue;
  const compress = info.compress === true;
  const head = info.fields.slice(0, last + 1).map((x) => x.kind);
  const walkable = !complex && head.every((k) => k === 'name' || k === 'cstr' || FIXED_SIZE[k] !== undefined);
  let fixed: NameLayout['fixed'] = null;
  if (walkable && head.filter((k) => k === 'name').length === 1 && !head.includes('cstr')) {
    const offset = head.slice(0, -1).reduce((n, k) => n + FIXED_SIZE[k]!, 0);
    fixed = [{ offset, compress }];
  }
  NAME_LAYOUT.set(type, { compress, fixed, walk: walkable ? head : null });
}

const NO_NAMES: { offset: number; compress: boolean }[] = [];

/**
 * Embedded names: where each starts in the RDATA, and whether responses may compress it (RFC 3597 §4:
 * the RFC 1035 types only). Called for every RR a response writes, so the common shapes are precomputed;
 * the arrays returned are shared and must not be changed.
 */
export function rdataNames(type: number, rdata: Uint8Array): { offset: number; compress: boolean }[] {
  const layout = NAME_LAYOUT.get(type);
  if (!layout) return NO_NAMES;
  if (layout.fixed) return layout.fixed;
  const out: { offset: number; compress: boolean }[] = [];
  if (layout.walk) {
    let p = 0;
    for (const k of layout.walk) {
      if (p >= rdata.length) break;
      if (k === 'name') {
        out.push({ offset: p, compress: layout.compress });
        while (p < rdata.length && rdata[p] !== 0) p += rdata[p]! + 1;
        p++;
      } else if (k === 'cstr') p += 1 + rdata[p]!;
      else p += FIXED_SIZE[k]!;
    }
    return out;
  }
  const offsets: number[] = [];
  readFields(type, rdata, offsets);
  for (const offset of offsets) out.push({ offset, compress: layout.compress });
  return out;
}

/** The name an NS, CNAME, DNAME, PTR, MX, SRV, SVCB or HTTPS record points to; null for other types. */
export function rdataTarget(type: number, rdata: Uint8Array): Name | null {
  // The target is at a fixed offset for all of these: 0, or after a 16-bit number (MX, SVCB) or three (SRV).
  let off: number;
  if (type === TYPE.NS || type === TYPE.CNAME || type === TYPE.DNAME || type === TYPE.PTR) off = 0;
  else if (type === TYPE.MX || type === TYPE.SVCB || type === TYPE.HTTPS) off = 2;
  else if (type === TYPE.SRV) off = 6;
  else return null;
  try {
    return readName(rdata, off).name;
  } catch {
    return null;
  }
}

/** Lower-cases the ASCII letters of the uncompressed name at `off` in place. */
function lowerNameAt(b: Uint8Array, off: number): void {
  let p = off;
  while (p < b.length && b[p] !== 0) {
    const len = b[p]!;
    for (let j = p + 1; j <= p + len && j < b.length; j++) {
      const c = b[j]!;
      if (c >= 0x41 && c <= 0x5a) b[j] = c | 0x20;
    }
    p += len + 1;
  }
}

/**
 * The canonical form of one RDATA (RFC 4034 §6.2; RFC 6840 §5.1 leaves NSEC out): the names of the
 * listed types lower-cased, every other byte unchanged. Returns the same array when nothing changes.
 * Throws RdataError on malformed RDATA of a listed type.
 */
export function rdataCanonical(type: number, rdata: Uint8Array): Uint8Array {
  if (RRTYPES.get(type)?.lower !== true) return rdata;
  const offsets = rdataNames(type, rdata).map((x) => x.offset);
  let out: Uint8Array | null = null;
  for (const off of offsets) {
    for (let p = off; p < rdata.length && rdata[p] !== 0; p += rdata[p]! + 1) {
      let upper = false;
      for (let j = p + 1; j <= p + rdata[p]! && j < rdata.length; j++) {
        const c = rdata[j]!;
        if (c >= 0x41 && c <= 0x5a) upper = true;
      }
      if (upper) {
        out ??= Uint8Array.from(rdata);
        lowerNameAt(out, off);
        break;
      }
    }
  }
  return out ?? rdata;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * True when two RDATAs of `type` are the same record under DNS comparison (RFC 2181 §5, RFC 4034
 * §6.2): byte for byte, except that names inside the RDATA of the §6.2 types compare without regard to
 * ASCII case. Names of other types (SVCB/HTTPS TargetName, NSEC next name, …) keep their case.
 */
export function rdataEquals(type: number, a: Uint8Array, b: Uint8Array): boolean {
  if (sameBytes(a, b)) return true;
  if (a.length !== b.length || RRTYPES.get(type)?.lower !== true) return false;
  try {
    return sameBytes(rdataCanonical(type, a), rdataCanonical(type, b));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Structured fields (YAML)

type FieldValue = string | number | string[];

const NUMBER_KINDS = new Set<Kind>(['u8', 'u16', 'u32', 'period', 'time', 'alg', 'certtype']);

/** A structured view of the RDATA for YAML output; null where presentation text reads better. */
export function rdataToFields(
  type: number,
  rdata: Uint8Array,
  origin?: Name,
): Record<string, FieldValue> | null {
  const info = RRTYPES.get(type);
  if (!info || info.textOnly) return null;
  const out: Record<string, FieldValue> = {};
  for (const { field, value } of readFields(type, rdata)) {
    if (NUMBER_KINDS.has(field.kind)) out[field.name] = value as number;
    else if (field.kind === 'cstrs')
      out[field.name] = (value as Uint8Array[]).map((s) => Buffer.from(s).toString('latin1'));
    else if (
      field.kind === 'cstr' ||
      field.kind === 'caatag' ||
      field.kind === 'caavalue' ||
      field.kind === 'uri'
    )
      out[field.name] = Buffer.from(value as Uint8Array).toString('latin1');
    else out[field.name] = CODECS[field.kind].print(value, origin);
  }
  return out;
}

function quoteIfNeeded(s: string): string {
  return /^[^\s"\\;()]+$/.test(s) ? s : `"${s.replace(/["\\]/g, (m) => `\\${m}`)}"`;
}

const quoted = (s: string): string => `"${s.replace(/["\\]/g, (m) => `\\${m}`)}"`;

/** Structured fields (from YAML) → wire RDATA. Field names are those of rdataToFields. */
export function rdataFromFields(type: number, fields: Record<string, unknown>, origin: Name): Uint8Array {
  const info = RRTYPES.get(type);
  if (
    !info ||
    info.fields.some((x) => x.kind === 'bitmap' || x.kind === 'nxtbitmap') ||
    type === TYPE.RRSIG ||
    type === TYPE.SIG
  ) {
    throw new RdataError(`${typeToText(type)} has no structured form; write it as a presentation string`, -1);
  }
  const layout = info.fields;
  const known = new Set(layout.map((x) => x.name));
  for (const k of Object.keys(fields)) {
    if (!known.has(k)) {
      throw new RdataError(
        `${typeToText(type)} has no field "${k}" (fields: ${layout.map((x) => x.name).join(', ')})`,
        -1,
      );
    }
  }
  const parts: string[] = [];
  for (const field of layout) {
    const v = fields[field.name];
    if (v === undefined || v === null) {
      if (field.optional) continue;
      throw new RdataError(`${typeToText(type)} is missing its ${field.name}`, -1);
    }
    if (field.kind === 'svcparams') {
      if (typeof v !== 'object' || Array.isArray(v)) throw new RdataError('params must be a mapping', -1);
      for (const [k, pv] of Object.entries(v as Record<string, unknown>)) {
        if (pv === true || pv === null || pv === '') parts.push(k);
        else if (Array.isArray(pv)) parts.push(`${k}=${quoteIfNeeded(pv.map(String).join(','))}`);
        else parts.push(`${k}=${quoteIfNeeded(String(pv))}`);
      }
      continue;
    }
    if (field.kind === 'cstrs') {
      const list = Array.isArray(v) ? v : [v];
      for (const s of list) parts.push(quoted(String(s)));
      continue;
    }
    if (Array.isArray(v) || typeof v === 'object') {
      throw new RdataError(`${typeToText(type)} ${field.name} must be a single value`, -1);
    }
    const s = String(v);
    parts.push(field.kind === 'cstr' || field.kind === 'caavalue' || field.kind === 'uri' ? quoted(s) : s);
  }
  try {
    return rdataFromText(type, tokenize(parts.join(' ')), origin);
  } catch (e) {
    if (e instanceof RdataError) throw new RdataError(e.message, -1);
    throw e;
  }
}
