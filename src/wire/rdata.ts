/**
 * RDATA in presentation format ⇄ uncompressed wire format, driven by one table of field layouts per
 * type (the miekg/dns idea): each type is a list of field kinds, and each kind knows how to read its
 * text, write its bytes, read its bytes and write its text. Names go through our own codec because
 * dns-packet cannot write escaped labels; dns-packet encodes IPv4/IPv6 addresses and serves the tests
 * as an independent decoder.
 */
import { isIPv4, isIPv6 } from 'node:net';
import packet from 'dns-packet';
import { slabCopy } from './bytes.js';
import { TYPE, typeFromText, typeToText } from './constants.js';
import { type Name, NameError, nameFromText, nameToRelativeText, nameToText, readName } from './name.js';
import type { Token } from './presentation.js';

export class RdataError extends Error {
  readonly code = 'POPDNS_E_RDATA';
  constructor(
    message: string,
    readonly token: number,
  ) {
    super(message);
  }
}

type Kind =
  | 'u8'
  | 'u16'
  | 'u32'
  | 'period'
  | 'name'
  | 'ipv4'
  | 'ipv6'
  | 'cstr'
  | 'cstrs'
  | 'hex'
  | 'base64'
  | 'salt'
  | 'b32hex'
  | 'bitmap'
  | 'time'
  | 'type'
  | 'caatag'
  | 'caavalue'
  | 'svcparams';

interface Field {
  name: string;
  kind: Kind;
}

const f = (name: string, kind: Kind): Field => ({ name, kind });

/** Field layout of each supported type (RFC 1035, 2782, 3403, 4034, 5155, 6698, 4255, 8659, 9460, 6672). */
const LAYOUT = new Map<number, Field[]>([
  [TYPE.A, [f('address', 'ipv4')]],
  [TYPE.AAAA, [f('address', 'ipv6')]],
  [TYPE.NS, [f('target', 'name')]],
  [TYPE.CNAME, [f('target', 'name')]],
  [TYPE.DNAME, [f('target', 'name')]],
  [TYPE.PTR, [f('target', 'name')]],
  [
    TYPE.SOA,
    [
      f('mname', 'name'),
      f('rname', 'name'),
      f('serial', 'u32'),
      f('refresh', 'period'),
      f('retry', 'period'),
      f('expire', 'period'),
      f('minimum', 'period'),
    ],
  ],
  [TYPE.MX, [f('preference', 'u16'), f('exchange', 'name')]],
  [TYPE.TXT, [f('strings', 'cstrs')]],
  [TYPE.HINFO, [f('cpu', 'cstr'), f('os', 'cstr')]],
  [TYPE.RP, [f('mbox', 'name'), f('txt', 'name')]],
  [TYPE.SRV, [f('priority', 'u16'), f('weight', 'u16'), f('port', 'u16'), f('target', 'name')]],
  [
    TYPE.NAPTR,
    [
      f('order', 'u16'),
      f('preference', 'u16'),
      f('flags', 'cstr'),
      f('services', 'cstr'),
      f('regexp', 'cstr'),
      f('replacement', 'name'),
    ],
  ],
  [TYPE.DS, [f('keytag', 'u16'), f('algorithm', 'u8'), f('digesttype', 'u8'), f('digest', 'hex')]],
  [TYPE.CDS, [f('keytag', 'u16'), f('algorithm', 'u8'), f('digesttype', 'u8'), f('digest', 'hex')]],
  [TYPE.DNSKEY, [f('flags', 'u16'), f('protocol', 'u8'), f('algorithm', 'u8'), f('key', 'base64')]],
  [TYPE.CDNSKEY, [f('flags', 'u16'), f('protocol', 'u8'), f('algorithm', 'u8'), f('key', 'base64')]],
  [TYPE.SSHFP, [f('algorithm', 'u8'), f('fptype', 'u8'), f('fingerprint', 'hex')]],
  [TYPE.TLSA, [f('usage', 'u8'), f('selector', 'u8'), f('matchingtype', 'u8'), f('data', 'hex')]],
  [TYPE.CAA, [f('flags', 'u8'), f('tag', 'caatag'), f('value', 'caavalue')]],
  [TYPE.SVCB, [f('priority', 'u16'), f('target', 'name'), f('params', 'svcparams')]],
  [TYPE.HTTPS, [f('priority', 'u16'), f('target', 'name'), f('params', 'svcparams')]],
  [TYPE.NSEC, [f('next', 'name'), f('types', 'bitmap')]],
  [
    TYPE.NSEC3,
    [
      f('hash', 'u8'),
      f('flags', 'u8'),
      f('iterations', 'u16'),
      f('salt', 'salt'),
      f('next', 'b32hex'),
      f('types', 'bitmap'),
    ],
  ],
  [TYPE.NSEC3PARAM, [f('hash', 'u8'), f('flags', 'u8'), f('iterations', 'u16'), f('salt', 'salt')]],
  [
    TYPE.RRSIG,
    [
      f('covered', 'type'),
      f('algorithm', 'u8'),
      f('labels', 'u8'),
      f('ttl', 'u32'),
      f('expiration', 'time'),
      f('inception', 'time'),
      f('keytag', 'u16'),
      f('signer', 'name'),
      f('signature', 'base64'),
    ],
  ],
]);

/** Names that may be compressed in responses (RFC 3597 §4: the RFC 1035 types only). */
const COMPRESSIBLE = new Set<number>([TYPE.NS, TYPE.CNAME, TYPE.SOA, TYPE.PTR, TYPE.MX]);

/** True when popdns knows the type's RDATA layout (others are kept as opaque RFC 3597 data). */
export function isKnownType(type: number): boolean {
  return LAYOUT.has(type);
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
      } else if (i + 1 < s.length) {
        out.push(s.charCodeAt(i + 1) & 0xff);
        i++;
      } else {
        throw new RdataError('dangling backslash', tok);
      }
    } else if (ch > 0x7f) {
      for (const b of Buffer.from(s[i]!, 'utf8')) out.push(b);
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
// SVCB / HTTPS parameters (RFC 9460 §2.1, §7)

const SVC_KEYS = ['mandatory', 'alpn', 'no-default-alpn', 'port', 'ipv4hint', 'ech', 'ipv6hint'];

function svcKeyFromText(k: string, tok: number): number {
  const i = SVC_KEYS.indexOf(k.toLowerCase());
  if (i >= 0) return i;
  const m = /^key([0-9]{1,5})$/i.exec(k);
  if (m && Number(m[1]) <= 65535) return Number(m[1]);
  throw new RdataError(`unknown SvcParamKey "${k}"`, tok);
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

function svcValueFromText(key: number, value: string | null, tok: number): number[] {
  const need = (): string => {
    if (value === null || value === '')
      throw new RdataError(`SvcParam ${svcKeyToText(key)} needs a value`, tok);
    return value;
  };
  switch (key) {
    case 0: {
      const out: number[] = [];
      const keys = need()
        .split(',')
        .map((k) => svcKeyFromText(k, tok))
        .sort((a, b) => a - b);
      for (const k of keys) out.push(k >> 8, k & 0xff);
      return out;
    }
    case 1: {
      const out: number[] = [];
      // Two levels (RFC 9460 Appendix A.1): character-string escapes first, then the value list, in
      // which `\,` is a comma inside an id and `\\` a backslash.
      for (const item of splitCommaList(unescapeBytes(need(), tok))) {
        if (item.length === 0 || item.length > 255)
          throw new RdataError('alpn ids must be 1-255 octets', tok);
        out.push(item.length, ...item);
      }
      return out;
    }
    case 2:
      if (value !== null && value !== '') throw new RdataError('no-default-alpn takes no value', tok);
      return [];
    case 3: {
      const p = parseNumber(need(), 65535, 'port', TYPE.SVCB, tok);
      return [p >> 8, p & 0xff];
    }
    case 4:
      return need()
        .split(',')
        .flatMap((a) => {
          if (!isIPv4(a)) throw new RdataError(`ipv4hint "${a}" is not an IPv4 address`, tok);
          return a.split('.').map(Number);
        });
    case 6:
      return need()
        .split(',')
        .flatMap((a) => {
          if (!isIPv6(a)) throw new RdataError(`ipv6hint "${a}" is not an IPv6 address`, tok);
          return [...ipv6Bytes(a)];
        });
    case 5:
      return [...Buffer.from(need(), 'base64')];
    default:
      return value === null ? [] : unescapeBytes(value, tok);
  }
}

function svcValueToText(key: number, v: Uint8Array): string {
  switch (key) {
    case 0: {
      const keys: string[] = [];
      for (let i = 0; i + 1 < v.length; i += 2) keys.push(svcKeyToText((v[i]! << 8) | v[i + 1]!));
      return keys.join(',');
    }
    case 1: {
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
    case 3:
      return String((v[0]! << 8) | v[1]!);
    case 4: {
      const a: string[] = [];
      for (let i = 0; i + 3 < v.length; i += 4) a.push(`${v[i]}.${v[i + 1]}.${v[i + 2]}.${v[i + 3]}`);
      return a.join(',');
    }
    case 6: {
      const a: string[] = [];
      for (let i = 0; i + 15 < v.length; i += 16) a.push(ipv6Text(v.subarray(i, i + 16)));
      return a.join(',');
    }
    case 5:
      return Buffer.from(v).toString('base64');
    default:
      return escapeBytes(v);
  }
}

function validateSvcValue(key: number, v: Uint8Array): void {
  const bad = (): never => {
    throw new RdataError(`malformed SvcParam ${svcKeyToText(key)}`, -1);
  };
  if (key === 0 && (v.length === 0 || v.length % 2 !== 0)) bad();
  if (key === 2 && v.length !== 0) bad();
  if (key === 3 && v.length !== 2) bad();
  if (key === 4 && (v.length === 0 || v.length % 4 !== 0)) bad();
  if (key === 6 && (v.length === 0 || v.length % 16 !== 0)) bad();
  if (key === 1) {
    let i = 0;
    while (i < v.length) {
      if (v[i] === 0) bad();
      i += 1 + v[i]!;
    }
    if (i !== v.length || v.length === 0) bad();
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
  if (LAYOUT.has(type)) checkRdata(type, b);
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

/** Presentation tokens → uncompressed wire RDATA. Throws RdataError naming the bad token. */
export function rdataFromText(type: number, tokens: Token[], origin: Name): Uint8Array {
  if (type === TYPE.A && tokens.length === 1 && !tokens[0]!.quoted) {
    const fast = ipv4Fast(tokens[0]!.text);
    if (fast) return fast;
  }
  if (tokens[0]?.text === '\\#' && !tokens[0].quoted) return generic(type, tokens);
  const layout = LAYOUT.get(type);
  if (!layout) {
    throw new RdataError(
      `type ${typeToText(type)} has no known presentation format; write it as \\# <length> <hex>`,
      0,
    );
  }
  const out = new Out();
  let t = 0;
  const tname = typeToText(type);
  for (const field of layout) {
    const tok = tokens[t];
    const missing = (): never => {
      throw new RdataError(`${tname} is missing its ${field.name}`, tokens.length);
    };
    switch (field.kind) {
      case 'u8':
        out.u8(parseNumber(tok?.text ?? missing(), 255, field.name, type, t++));
        break;
      case 'u16':
        out.u16(parseNumber(tok?.text ?? missing(), 65535, field.name, type, t++));
        break;
      case 'u32':
        out.u32(parseNumber(tok?.text ?? missing(), 0xffffffff, field.name, type, t++));
        break;
      case 'period': {
        const v = parsePeriod(tok?.text ?? missing());
        if (v === undefined || v > 0xffffffff) {
          throw new RdataError(`${tname} ${field.name} "${tok?.text}" is not a number of seconds`, t);
        }
        out.u32(v);
        t++;
        break;
      }
      case 'type': {
        const v = typeFromText(tok?.text ?? missing());
        if (v === undefined) throw new RdataError(`"${tok?.text}" is not a type`, t);
        out.u16(v);
        t++;
        break;
      }
      case 'time':
        out.u32(parseTime(tok?.text ?? missing(), t++));
        break;
      case 'name': {
        const text = tok?.text ?? missing();
        try {
          out.add(nameFromText(text, origin));
        } catch (e) {
          if (e instanceof NameError) throw new RdataError(`${tname} ${field.name}: ${e.message}`, t);
          throw e;
        }
        t++;
        break;
      }
      case 'ipv4': {
        const text = tok?.text ?? missing();
        if (!isIPv4(text)) throw new RdataError(`"${text}" is not an IPv4 address`, t);
        out.add(addressCodecs.a.encode(text).subarray(2));
        t++;
        break;
      }
      case 'ipv6': {
        const text = tok?.text ?? missing();
        if (!isIPv6(text) || text.includes('%')) throw new RdataError(`"${text}" is not an IPv6 address`, t);
        out.add(ipv6Bytes(text));
        t++;
        break;
      }
      case 'cstr':
        cstr(out, unescapeBytes(tok?.text ?? missing(), t), t);
        t++;
        break;
      case 'cstrs': {
        if (!tok) missing();
        for (; t < tokens.length; t++) {
          const bytes = unescapeBytes(tokens[t]!.text, t);
          // A string over 255 octets is split into consecutive character-strings.
          if (bytes.length === 0) cstr(out, [], t);
          for (let i = 0; i < bytes.length; i += 255) cstr(out, bytes.slice(i, i + 255), t);
        }
        break;
      }
      case 'hex': {
        const rest = tokens.slice(t).map((x) => x.text);
        const hex = rest.join('');
        if (hex === '' || hex === '-') {
          if (type === TYPE.TLSA || type === TYPE.SSHFP || type === TYPE.DS || type === TYPE.CDS) missing();
        }
        if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) {
          throw new RdataError(`${tname} ${field.name} is not hex`, t);
        }
        out.add(Buffer.from(hex, 'hex'));
        t = tokens.length;
        break;
      }
      case 'base64': {
        const b64 = tokens
          .slice(t)
          .map((x) => x.text)
          .join('');
        if (b64 === '') missing();
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
          throw new RdataError(`${tname} ${field.name} is not base64`, t);
        }
        out.add(Buffer.from(b64, 'base64'));
        t = tokens.length;
        break;
      }
      case 'salt': {
        const text = tok?.text ?? missing();
        if (text === '-') out.u8(0);
        else {
          if (!/^[0-9a-fA-F]+$/.test(text) || text.length % 2 !== 0 || text.length > 510) {
            throw new RdataError(`salt "${text}" is not hex (or - for none)`, t);
          }
          out.u8(text.length / 2);
          out.add(Buffer.from(text, 'hex'));
        }
        t++;
        break;
      }
      case 'b32hex': {
        const b = base32hexDecode(tok?.text ?? missing(), t);
        if (b.length < 1 || b.length > 255) throw new RdataError('next hashed owner has a bad length', t);
        out.u8(b.length);
        out.add(b);
        t++;
        break;
      }
      case 'bitmap': {
        const types: number[] = [];
        for (; t < tokens.length; t++) {
          const v = typeFromText(tokens[t]!.text);
          if (v === undefined) throw new RdataError(`"${tokens[t]!.text}" is not a type`, t);
          types.push(v);
        }
        out.add(bitmapFromTypes(types));
        break;
      }
      case 'caatag': {
        const text = tok?.text ?? missing();
        if (!/^[A-Za-z0-9]{1,255}$/.test(text))
          throw new RdataError(`CAA tag "${text}" must be letters and digits`, t);
        out.u8(text.length);
        out.add(Buffer.from(text, 'latin1'));
        t++;
        break;
      }
      case 'caavalue':
        out.add(unescapeBytes(tok?.text ?? missing(), t));
        t++;
        break;
      case 'svcparams': {
        const params = new Map<number, number[]>();
        for (; t < tokens.length; t++) {
          const raw = tokens[t]!.text;
          const eq = raw.indexOf('=');
          let keyText = eq < 0 ? raw : raw.slice(0, eq);
          let value: string | null = eq < 0 ? null : raw.slice(eq + 1);
          // key="quoted value" arrives as `key=` followed by a quoted token.
          if (value === '' && tokens[t + 1]?.quoted) {
            value = tokens[t + 1]!.text;
            t++;
          }
          keyText = keyText.trim();
          const key = svcKeyFromText(keyText, t);
          if (params.has(key)) throw new RdataError(`SvcParamKey ${keyText} appears twice`, t);
          params.set(key, svcValueFromText(key, value, t));
        }
        const mandatory = params.get(0);
        if (mandatory) {
          for (let i = 0; i < mandatory.length; i += 2) {
            const k = (mandatory[i]! << 8) | mandatory[i + 1]!;
            if (k === 0 || !params.has(k)) {
              throw new RdataError(
                `mandatory lists ${svcKeyToText(k)} which is not present`,
                tokens.length - 1,
              );
            }
          }
        }
        for (const k of [...params.keys()].sort((a, b) => a - b)) {
          const v = params.get(k)!;
          out.u16(k);
          out.u16(v.length);
          out.add(v);
        }
        break;
      }
    }
  }
  if (t < tokens.length) throw new RdataError(`unexpected "${tokens[t]!.text}" after the ${tname} data`, t);
  if (out.bytes.length > 65535) throw new RdataError('RDATA longer than 65535 octets', 0);
  return slabCopy(out.bytes);
}

// ---------------------------------------------------------------------------------------------
// Wire → fields

interface Cursor {
  b: Uint8Array;
  p: number;
}

function need(c: Cursor, n: number, type: number): void {
  if (c.p + n > c.b.length) throw new RdataError(`${typeToText(type)} RDATA is truncated`, -1);
}

function readWireName(c: Cursor, type: number): Name {
  // RDATA names are stored uncompressed: a pointer here is malformed.
  let p = c.p;
  while (p < c.b.length && c.b[p] !== 0) {
    if ((c.b[p]! & 0xc0) !== 0) throw new RdataError(`${typeToText(type)} RDATA has a compressed name`, -1);
    p += c.b[p]! + 1;
  }
  if (p >= c.b.length) throw new RdataError(`${typeToText(type)} RDATA has a truncated name`, -1);
  try {
    const r = readName(c.b, c.p);
    c.p = r.next;
    return r.name;
  } catch (e) {
    if (e instanceof NameError) throw new RdataError(`${typeToText(type)} RDATA: ${e.message}`, -1);
    throw e;
  }
}

type Value = number | Name | Uint8Array | Uint8Array[] | number[] | Map<number, Uint8Array>;

function readFields(type: number, rdata: Uint8Array): { field: Field; value: Value; offset: number }[] {
  const layout = LAYOUT.get(type);
  if (!layout) return [];
  const c: Cursor = { b: rdata, p: 0 };
  const out: { field: Field; value: Value; offset: number }[] = [];
  for (const field of layout) {
    const offset = c.p;
    let value: Value;
    switch (field.kind) {
      case 'u8':
        need(c, 1, type);
        value = rdata[c.p++]!;
        break;
      case 'u16':
      case 'type':
        need(c, 2, type);
        value = (rdata[c.p]! << 8) | rdata[c.p + 1]!;
        c.p += 2;
        break;
      case 'u32':
      case 'period':
      case 'time':
        need(c, 4, type);
        value =
          ((rdata[c.p]! << 24) | (rdata[c.p + 1]! << 16) | (rdata[c.p + 2]! << 8) | rdata[c.p + 3]!) >>> 0;
        c.p += 4;
        break;
      case 'name':
        value = readWireName(c, type);
        break;
      case 'ipv4':
        need(c, 4, type);
        value = rdata.subarray(c.p, c.p + 4);
        c.p += 4;
        break;
      case 'ipv6':
        need(c, 16, type);
        value = rdata.subarray(c.p, c.p + 16);
        c.p += 16;
        break;
      case 'cstr':
      case 'salt':
      case 'b32hex':
      case 'caatag': {
        need(c, 1, type);
        const len = rdata[c.p]!;
        need(c, 1 + len, type);
        value = rdata.subarray(c.p + 1, c.p + 1 + len);
        c.p += 1 + len;
        if (field.kind === 'caatag' && len === 0) throw new RdataError('CAA tag is empty', -1);
        break;
      }
      case 'cstrs': {
        const list: Uint8Array[] = [];
        if (c.p >= rdata.length) throw new RdataError('TXT RDATA is empty', -1);
        while (c.p < rdata.length) {
          const len = rdata[c.p]!;
          need(c, 1 + len, type);
          list.push(rdata.subarray(c.p + 1, c.p + 1 + len));
          c.p += 1 + len;
        }
        value = list;
        break;
      }
      case 'hex':
      case 'base64':
      case 'caavalue':
        value = rdata.subarray(c.p);
        c.p = rdata.length;
        break;
      case 'bitmap':
        value = typesFromBitmap(rdata.subarray(c.p));
        c.p = rdata.length;
        break;
      case 'svcparams': {
        const m = new Map<number, Uint8Array>();
        let last = -1;
        while (c.p < rdata.length) {
          need(c, 4, type);
          const k = (rdata[c.p]! << 8) | rdata[c.p + 1]!;
          const len = (rdata[c.p + 2]! << 8) | rdata[c.p + 3]!;
          need(c, 4 + len, type);
          if (k <= last) throw new RdataError('SvcParams are not in strictly increasing key order', -1);
          last = k;
          const v = rdata.subarray(c.p + 4, c.p + 4 + len);
          validateSvcValue(k, v);
          m.set(k, v);
          c.p += 4 + len;
        }
        value = m;
        break;
      }
    }
    out.push({ field, value, offset });
  }
  if (c.p !== rdata.length) throw new RdataError(`${typeToText(type)} RDATA has trailing bytes`, -1);
  return out;
}

/** Validates wire RDATA for a type; throws RdataError. Unknown types are opaque and always valid. */
export function checkRdata(type: number, rdata: Uint8Array): void {
  if (rdata.length > 65535) throw new RdataError('RDATA longer than 65535 octets', -1);
  readFields(type, rdata);
}

function nameText(n: Name, origin?: Name): string {
  return origin ? nameToRelativeText(n, origin) : nameToText(n);
}

/** Wire RDATA → presentation text; unknown types as RFC 3597 `\# len hex`. */
export function rdataToText(type: number, rdata: Uint8Array, origin?: Name): string {
  if (!LAYOUT.has(type)) {
    return rdata.length === 0 ? '\\# 0' : `\\# ${rdata.length} ${Buffer.from(rdata).toString('hex')}`;
  }
  const parts: string[] = [];
  for (const { field, value } of readFields(type, rdata)) {
    switch (field.kind) {
      case 'u8':
      case 'u16':
      case 'u32':
      case 'period':
        parts.push(String(value));
        break;
      case 'type':
        parts.push(typeToText(value as number));
        break;
      case 'time':
        parts.push(formatTime(value as number));
        break;
      case 'name':
        parts.push(nameText(value as Name, origin));
        break;
      case 'ipv4': {
        const b = value as Uint8Array;
        parts.push(`${b[0]}.${b[1]}.${b[2]}.${b[3]}`);
        break;
      }
      case 'ipv6':
        parts.push(ipv6Text(value as Uint8Array));
        break;
      case 'cstr':
      case 'caavalue':
        parts.push(escapeBytes(value as Uint8Array));
        break;
      case 'caatag':
        parts.push(Buffer.from(value as Uint8Array).toString('latin1'));
        break;
      case 'cstrs':
        for (const s of value as Uint8Array[]) parts.push(escapeBytes(s));
        break;
      case 'hex': {
        const h = Buffer.from(value as Uint8Array)
          .toString('hex')
          .toUpperCase();
        parts.push(h === '' ? '-' : h);
        break;
      }
      case 'base64':
        parts.push(Buffer.from(value as Uint8Array).toString('base64'));
        break;
      case 'salt': {
        const b = value as Uint8Array;
        parts.push(b.length === 0 ? '-' : Buffer.from(b).toString('hex').toUpperCase());
        break;
      }
      case 'b32hex':
        parts.push(base32hexEncode(value as Uint8Array));
        break;
      case 'bitmap':
        for (const ty of value as number[]) parts.push(typeToText(ty));
        break;
      case 'svcparams':
        for (const [k, v] of value as Map<number, Uint8Array>) {
          parts.push(k === 2 ? svcKeyToText(k) : `${svcKeyToText(k)}=${svcValueToText(k, v)}`);
        }
        break;
    }
  }
  return parts.join(' ');
}

/** Embedded names: where each starts in the RDATA, and whether responses may compress it. */
export function rdataNames(type: number, rdata: Uint8Array): { offset: number; compress: boolean }[] {
  const layout = LAYOUT.get(type);
  if (!layout?.some((x) => x.kind === 'name')) return [];
  const compress = COMPRESSIBLE.has(type);
  return readFields(type, rdata)
    .filter((x) => x.field.kind === 'name')
    .map((x) => ({ offset: x.offset, compress }));
}

const TARGET_FIELD = new Map<number, string>([
  [TYPE.NS, 'target'],
  [TYPE.CNAME, 'target'],
  [TYPE.DNAME, 'target'],
  [TYPE.PTR, 'target'],
  [TYPE.MX, 'exchange'],
  [TYPE.SRV, 'target'],
  [TYPE.SVCB, 'target'],
  [TYPE.HTTPS, 'target'],
]);

/** The name an NS, CNAME, DNAME, PTR, MX, SRV, SVCB or HTTPS record points to; null for other types. */
export function rdataTarget(type: number, rdata: Uint8Array): Name | null {
  const field = TARGET_FIELD.get(type);
  if (!field) return null;
  // The target is at a fixed offset for all of these: 0, or after a 16-bit number (MX, SVCB) or three (SRV).
  const off = type === TYPE.MX || type === TYPE.SVCB || type === TYPE.HTTPS ? 2 : type === TYPE.SRV ? 6 : 0;
  try {
    return readName(rdata, off).name;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Structured fields (YAML)

type FieldValue = string | number | string[];

/** A structured view of the RDATA for YAML output; null where presentation text reads better. */
export function rdataToFields(
  type: number,
  rdata: Uint8Array,
  origin?: Name,
): Record<string, FieldValue> | null {
  if (!LAYOUT.has(type) || type === TYPE.SVCB || type === TYPE.HTTPS) return null;
  const out: Record<string, FieldValue> = {};
  for (const { field, value } of readFields(type, rdata)) {
    switch (field.kind) {
      case 'u8':
      case 'u16':
      case 'u32':
      case 'period':
      case 'time':
        out[field.name] = value as number;
        break;
      case 'type':
        out[field.name] = typeToText(value as number);
        break;
      case 'name':
        out[field.name] = nameText(value as Name, origin);
        break;
      case 'cstrs':
        out[field.name] = (value as Uint8Array[]).map((s) => Buffer.from(s).toString('latin1'));
        break;
      case 'cstr':
      case 'caatag':
      case 'caavalue':
        out[field.name] = Buffer.from(value as Uint8Array).toString('latin1');
        break;
      default:
        out[field.name] = rdataToText(type, rdata, origin).split(' ').slice(-1)[0] ?? '';
    }
  }
  return out;
}

function quoteIfNeeded(s: string): string {
  return /^[^\s"\\;()]+$/.test(s) ? s : `"${s.replace(/["\\]/g, (m) => `\\${m}`)}"`;
}

/** Structured fields (from YAML) → wire RDATA. Field names are those of rdataToFields. */
export function rdataFromFields(type: number, fields: Record<string, unknown>, origin: Name): Uint8Array {
  const layout = LAYOUT.get(type);
  if (!layout || type === TYPE.NSEC || type === TYPE.NSEC3 || type === TYPE.RRSIG) {
    throw new RdataError(`${typeToText(type)} has no structured form; write it as a presentation string`, -1);
  }
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
      for (const s of list) parts.push(`"${String(s).replace(/["\\]/g, (m) => `\\${m}`)}"`);
      continue;
    }
    if (Array.isArray(v) || typeof v === 'object') {
      throw new RdataError(`${typeToText(type)} ${field.name} must be a single value`, -1);
    }
    const s = String(v);
    parts.push(
      field.kind === 'cstr' || field.kind === 'caavalue' ? `"${s.replace(/["\\]/g, (m) => `\\${m}`)}"` : s,
    );
  }
  try {
    return rdataFromText(type, tokenize(parts.join(' ')), origin);
  } catch (e) {
    if (e instanceof RdataError) throw new RdataError(e.message, -1);
    throw e;
  }
}
