/**
 * DNSSEC keys and signatures with node:crypto only: key generation (ECDSAP256SHA256, ED25519,
 * RSASHA256), DNSKEY public-key encodings (RFC 6605 §4, RFC 8080 §3, RFC 3110 §2), key tags
 * (RFC 4034 Appendix B), DS digests (RFC 4034 §5.1.4), BIND key files (`K<zone>+<alg>+<tag>.key` and
 * `.private`, as dnssec-keygen writes them) and RRSIG creation and checking over the canonical form of
 * an RRset (RFC 4034 §3.1.8.1, §6).
 *
 * Off the query path: signing happens once per zone version, never per query.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLASS, TYPE } from '../wire/constants.js';
import {
  isSubdomainOf,
  isWildcard,
  labelCount,
  type Name,
  nameEquals,
  nameFromText,
  nameToLower,
  nameToText,
  prependLabel,
  readName,
  stripLabels,
  WILDCARD_LABEL,
} from '../wire/name.js';
import { RdataError, rdataCanonical, rdataFromText, tokenize } from '../wire/rdata.js';

/** A DNSSEC problem an operator can cause; `message` ends with the stable code, e.g. `[POPDNS_E_KEY]`. */
export class DnssecError extends Error {
  constructor(
    readonly code: string,
    /** The message without file name and code. */
    readonly detail: string,
    /** The key file concerned, when there is one. */
    readonly file?: string,
  ) {
    super(`${file !== undefined ? `${file}: ` : ''}${detail} [${code}]`);
  }
}

const E_KEY = 'POPDNS_E_KEY';
const E_SIGN = 'POPDNS_E_SIGN';

// ---------------------------------------------------------------------------------------------
// Algorithms and flags

/** The DNSSEC algorithms popdns signs with (IANA numbers). */
export const ALGORITHM = { RSASHA256: 8, ECDSAP256SHA256: 13, ED25519: 15 } as const;
export type Algorithm = (typeof ALGORITHM)[keyof typeof ALGORITHM];

const ALGORITHM_NAME: Record<Algorithm, string> = {
  8: 'RSASHA256',
  13: 'ECDSAP256SHA256',
  15: 'ED25519',
};

export function isSupportedAlgorithm(n: number): n is Algorithm {
  return n === 8 || n === 13 || n === 15;
}

/** `ecdsap256sha256`, `ed25519`, `rsasha256` (any case) or the algorithm number. */
export function algorithmFromText(text: string): Algorithm | undefined {
  const upper = text.toUpperCase();
  for (const [n, name] of Object.entries(ALGORITHM_NAME)) {
    if (name === upper || n === text) return Number(n) as Algorithm;
  }
  return undefined;
}

export function algorithmName(alg: Algorithm): string {
  return ALGORITHM_NAME[alg];
}

/** DNSKEY flag bits (RFC 4034 §2.1.1, RFC 5011 §7). */
export const DNSKEY_FLAG = { ZONE: 0x0100, REVOKE: 0x0080, SEP: 0x0001 } as const;

/**
 * csk: one key signs everything; ksk: signs the DNSKEY RRset, its DS is in the parent; zsk: signs the
 * rest. On disk only the SEP bit tells them apart (257 for csk/ksk, 256 for zsk).
 */
export type KeyRole = 'csk' | 'ksk' | 'zsk';

/** Timing metadata of a key, in seconds since the epoch (BIND's Created/Publish/Activate/...). */
export interface KeyTiming {
  created?: number;
  publish?: number;
  activate?: number;
  inactive?: number;
  delete?: number;
}

export interface DnssecKey {
  /** The zone (owner of the DNSKEY). */
  zone: Name;
  algorithm: Algorithm;
  flags: number;
  role: KeyRole;
  /** Key tag (RFC 4034 Appendix B). */
  tag: number;
  /** The DNSKEY RDATA: flags, protocol 3, algorithm, public key. */
  dnskey: Uint8Array;
  publicKey: KeyObject;
  privateKey: KeyObject;
  timing: KeyTiming;
  /** The key files' base name, `K<zone>+<alg>+<tag>` (no directory), once written or read. */
  file?: string;
}

// ---------------------------------------------------------------------------------------------
// Bytes

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

function fromB64u(s: string | undefined, what: string): Buffer {
  if (s === undefined) throw new DnssecError(E_KEY, `the key has no ${what}`);
  return Buffer.from(s, 'base64url');
}

/** Left-pads (or checks) a big-endian integer to exactly `len` bytes. */
function fixedLength(b: Uint8Array, len: number, what: string): Uint8Array {
  let start = 0;
  while (b.length - start > len && b[start] === 0) start++;
  if (b.length - start > len) throw new DnssecError(E_KEY, `${what} is longer than ${len} octets`);
  const out = new Uint8Array(len);
  out.set(b.subarray(start), len - (b.length - start));
  return out;
}

function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

// ---------------------------------------------------------------------------------------------
// Public keys ⇄ DNSKEY

/** The DNSKEY public-key field of a node:crypto key (RFC 6605 §4, RFC 8080 §3, RFC 3110 §2). */
export function publicKeyField(alg: Algorithm, key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  switch (alg) {
    case ALGORITHM.ECDSAP256SHA256: {
      if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new DnssecError(E_KEY, 'not a P-256 key');
      const x = fixedLength(fromB64u(jwk.x, 'x'), 32, 'x');
      const y = fixedLength(fromB64u(jwk.y, 'y'), 32, 'y');
      return Buffer.concat([x, y]);
    }
    case ALGORITHM.ED25519:
      if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new DnssecError(E_KEY, 'not an Ed25519 key');
      return fixedLength(fromB64u(jwk.x, 'x'), 32, 'x');
    case ALGORITHM.RSASHA256: {
      if (jwk.kty !== 'RSA') throw new DnssecError(E_KEY, 'not an RSA key');
      const e = stripZeros(fromB64u(jwk.e, 'exponent'));
      const n = stripZeros(fromB64u(jwk.n, 'modulus'));
      const len =
        e.length <= 255 ? Uint8Array.of(e.length) : Uint8Array.of(0, e.length >> 8, e.length & 0xff);
      return Buffer.concat([len, e, n]);
    }
  }
}

/** The DNSKEY RDATA for a public key: flags, protocol 3, algorithm, key (RFC 4034 §2.1). */
export function dnskeyRdata(flags: number, alg: Algorithm, publicKey: KeyObject): Uint8Array {
  return Buffer.concat([Uint8Array.of(flags >> 8, flags & 0xff, 3, alg), publicKeyField(alg, publicKey)]);
}

/** The public-key parameters of a DNSKEY RDATA as a JWK (without the private part). */
function dnskeyJwk(dnskey: Uint8Array): JsonWebKey {
  if (dnskey.length < 5) throw new DnssecError(E_KEY, 'DNSKEY RDATA is too short');
  const alg = dnskey[3]!;
  const key = dnskey.subarray(4);
  switch (alg) {
    case ALGORITHM.ECDSAP256SHA256:
      if (key.length !== 64)
        throw new DnssecError(E_KEY, `ECDSA P-256 public key is ${key.length} octets, not 64`);
      return { kty: 'EC', crv: 'P-256', x: b64u(key.subarray(0, 32)), y: b64u(key.subarray(32)) };
    case ALGORITHM.ED25519:
      if (key.length !== 32)
        throw new DnssecError(E_KEY, `Ed25519 public key is ${key.length} octets, not 32`);
      return { kty: 'OKP', crv: 'Ed25519', x: b64u(key) };
    case ALGORITHM.RSASHA256: {
      let p = 1;
      let elen = key[0]!;
      if (elen === 0) {
        if (key.length < 3) throw new DnssecError(E_KEY, 'RSA public key is truncated');
        elen = (key[1]! << 8) | key[2]!;
        p = 3;
      }
      if (elen === 0 || key.length <= p + elen) throw new DnssecError(E_KEY, 'RSA public key is truncated');
      return { kty: 'RSA', e: b64u(key.subarray(p, p + elen)), n: b64u(key.subarray(p + elen)) };
    }
    default:
      throw new DnssecError(E_KEY, `algorithm ${alg} is not supported (popdns knows 8, 13 and 15)`);
  }
}

/** A node:crypto public key from DNSKEY RDATA (algorithms 8, 13, 15). */
export function publicKeyFromDnskey(dnskey: Uint8Array): KeyObject {
  return createPublicKey({ key: dnskeyJwk(dnskey), format: 'jwk' });
}

/** Key tag of a DNSKEY RDATA (RFC 4034 Appendix B; B.1 for algorithm 1). */
export function keyTag(dnskey: Uint8Array): number {
  if (dnskey[3] === 1) {
    return dnskey.length >= 7 ? (dnskey[dnskey.length - 3]! << 8) | dnskey[dnskey.length - 2]! : 0;
  }
  let ac = 0;
  for (let i = 0; i < dnskey.length; i++) ac += i & 1 ? dnskey[i]! : dnskey[i]! << 8;
  ac += (ac >>> 16) & 0xffff;
  return ac & 0xffff;
}

const DIGEST: Record<number, string> = { 1: 'sha1', 2: 'sha256', 4: 'sha384' };

/**
 * DS RDATA for a DNSKEY (RFC 4034 §5.1.4): key tag, algorithm, digest type, and the digest of the
 * canonical (lower-cased wire) owner name followed by the DNSKEY RDATA. Digest types 1 (SHA-1),
 * 2 (SHA-256, the default; RFC 4509) and 4 (SHA-384; RFC 6605).
 */
export function dsFromDnskey(owner: Name, dnskey: Uint8Array, digestType = 2): Uint8Array {
  const hash = DIGEST[digestType];
  if (hash === undefined) throw new DnssecError(E_KEY, `DS digest type ${digestType} is not supported`);
  const tag = keyTag(dnskey);
  const digest = createHash(hash).update(nameToLower(owner)).update(dnskey).digest();
  return Buffer.concat([Uint8Array.of(tag >> 8, tag & 0xff, dnskey[3]!, digestType), digest]);
}

// ---------------------------------------------------------------------------------------------
// Generation

function flagsForRole(role: KeyRole): number {
  return role === 'zsk' ? DNSKEY_FLAG.ZONE : DNSKEY_FLAG.ZONE | DNSKEY_FLAG.SEP;
}

/**
 * Generates a key pair for `zone`: a P-256 or Ed25519 key, or RSA 2048 bits with exponent 65537.
 * Flags 257 (SEP) for csk and ksk, 256 for zsk. Created, Publish and Activate are `now`.
 */
export function generateKey(zone: Name, alg: Algorithm, role: KeyRole, now = Date.now()): DnssecKey {
  const pair =
    alg === ALGORITHM.ECDSAP256SHA256
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === ALGORITHM.ED25519
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  const flags = flagsForRole(role);
  const dnskey = dnskeyRdata(flags, alg, pair.publicKey);
  const t = Math.floor(now / 1000);
  return {
    zone: nameToLower(zone),
    algorithm: alg,
    flags,
    role,
    tag: keyTag(dnskey),
    dnskey,
    publicKey: pair.publicKey,
    privateKey: pair.privateKey,
    timing: { created: t, publish: t, activate: t },
  };
}

// ---------------------------------------------------------------------------------------------
// BIND key files

/** The zone as it appears in key file names: lower case, absolute, `/` escaped. */
function zoneFileText(zone: Name): string {
  return nameToText(nameToLower(zone)).replace(/\//g, '\\047');
}

/** `K<zone>+<alg, 3 digits>+<tag, 5 digits>`, e.g. `Kexample.com.+013+09292` (no extension). */
export function keyFileBase(zone: Name, alg: number, tag: number): string {
  return `K${zoneFileText(zone)}+${String(alg).padStart(3, '0')}+${String(tag).padStart(5, '0')}`;
}

function timeText(t: number): string {
  const d = new Date(t * 1000);
  const p = (n: number, w = 2): string => n.toString().padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

function ctimeText(t: number): string {
  const d = new Date(t * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => n.toString().padStart(2, '0');
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${d.getUTCDate().toString().padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

function parseTimeText(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
}

const TIMING_FIELDS: [keyof KeyTiming, string][] = [
  ['created', 'Created'],
  ['publish', 'Publish'],
  ['activate', 'Activate'],
  ['inactive', 'Inactive'],
  ['delete', 'Delete'],
];

/** The `.key` file: comment lines as BIND writes them, then the DNSKEY record. */
export function keyFileText(key: DnssecKey): string {
  const kind = key.flags & DNSKEY_FLAG.SEP ? 'key-signing' : 'zone-signing';
  const zone = nameToText(key.zone);
  let s = `; This is a ${kind} key, keyid ${key.tag}, for ${zone}\n`;
  for (const [field, label] of TIMING_FIELDS) {
    const t = key.timing[field];
    if (t !== undefined) s += `; ${label}: ${timeText(t)} (${ctimeText(t)})\n`;
  }
  const pub = Buffer.from(key.dnskey.subarray(4)).toString('base64');
  return `${s}${zone} IN DNSKEY ${key.flags} 3 ${key.algorithm} ${pub}\n`;
}

/** The `.private` file, `Private-key-format: v1.3` as BIND 9 writes it. */
export function privateFileText(key: DnssecKey): string {
  const jwk = key.privateKey.export({ format: 'jwk' });
  const lines = [
    'Private-key-format: v1.3',
    `Algorithm: ${key.algorithm} (${ALGORITHM_NAME[key.algorithm]})`,
  ];
  const b64 = (s: string | undefined, what: string): string => fromB64u(s, what).toString('base64');
  if (key.algorithm === ALGORITHM.RSASHA256) {
    lines.push(
      `Modulus: ${b64(jwk.n, 'modulus')}`,
      `PublicExponent: ${b64(jwk.e, 'public exponent')}`,
      `PrivateExponent: ${b64(jwk.d, 'private exponent')}`,
      `Prime1: ${b64(jwk.p, 'prime 1')}`,
      `Prime2: ${b64(jwk.q, 'prime 2')}`,
      `Exponent1: ${b64(jwk.dp, 'exponent 1')}`,
      `Exponent2: ${b64(jwk.dq, 'exponent 2')}`,
      `Coefficient: ${b64(jwk.qi, 'coefficient')}`,
    );
  } else {
    const d = fixedLength(fromB64u(jwk.d, 'private key'), 32, 'private key');
    lines.push(`PrivateKey: ${Buffer.from(d).toString('base64')}`);
  }
  for (const [field, label] of TIMING_FIELDS) {
    const t = key.timing[field];
    if (t !== undefined) lines.push(`${label}: ${timeText(t)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes `K<zone>+<alg>+<tag>.key` and `.private` (mode 0600) into `dir`; never overwrites a file.
 * Returns the base name and sets `key.file`.
 */
export function writeKeyFiles(dir: string, key: DnssecKey): string {
  const base = keyFileBase(key.zone, key.algorithm, key.tag);
  const priv = join(dir, `${base}.private`);
  writeFileSync(priv, privateFileText(key), { mode: 0o600, flag: 'wx' });
  chmodSync(priv, 0o600);
  writeFileSync(join(dir, `${base}.key`), keyFileText(key), { mode: 0o644, flag: 'wx' });
  key.file = base;
  return base;
}

/** Parses the DNSKEY record of a `.key` file: `owner [ttl] [class] DNSKEY flags 3 alg base64`. */
function parseKeyFile(text: string, file: string, zone: Name): { owner: Name; dnskey: Uint8Array } {
  const body = text
    .split('\n')
    .map((line) => line.replace(/;.*$/, ''))
    .join(' ')
    .replace(/[()]/g, ' ');
  const words = body.split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) throw new DnssecError(E_KEY, 'no DNSKEY record in the file', file);
  let owner: Name;
  try {
    owner = nameFromText(words[0]!, zone);
  } catch (e) {
    throw new DnssecError(E_KEY, `bad owner name: ${(e as Error).message}`, file);
  }
  let i = 1;
  while (i < words.length && i <= 3 && words[i]!.toUpperCase() !== 'DNSKEY') {
    const w = words[i]!.toUpperCase();
    if (!/^[0-9]+$/.test(w) && w !== 'IN') break;
    i++;
  }
  if (words[i]?.toUpperCase() !== 'DNSKEY') {
    throw new DnssecError(
      E_KEY,
      `expected a DNSKEY record, found "${words.slice(0, i + 1).join(' ')}"`,
      file,
    );
  }
  try {
    const dnskey = rdataFromText(TYPE.DNSKEY, tokenize(words.slice(i + 1).join(' ')), zone);
    return { owner, dnskey };
  } catch (e) {
    throw new DnssecError(E_KEY, `bad DNSKEY: ${(e as Error).message}`, file);
  }
}

function parsePrivateFile(text: string, file: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith(';')) continue;
    const m = /^\s*([A-Za-z0-9-]+)\s*:\s*(.*?)\s*$/.exec(line);
    if (!m) throw new DnssecError(E_KEY, `cannot read the line "${line.slice(0, 40)}"`, file);
    fields.set(m[1]!, m[2]!);
  }
  const format = fields.get('Private-key-format');
  if (format === undefined || !/^v1\.\d+$/.test(format)) {
    throw new DnssecError(E_KEY, 'not a BIND private key file (Private-key-format: v1.x)', file);
  }
  return fields;
}

function privateJwk(
  alg: Algorithm,
  fields: Map<string, string>,
  dnskey: Uint8Array,
  file: string,
): JsonWebKey {
  const get = (name: string): Buffer => {
    const v = fields.get(name);
    if (v === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(v)) {
      throw new DnssecError(E_KEY, `missing or malformed ${name}`, file);
    }
    return Buffer.from(v, 'base64');
  };
  const pub = dnskeyJwk(dnskey);
  if (alg === ALGORITHM.RSASHA256) {
    const n = b64u(stripZeros(get('Modulus')));
    const e = b64u(stripZeros(get('PublicExponent')));
    if (n !== pub.n || e !== pub.e) {
      throw new DnssecError(
        E_KEY,
        'the modulus or exponent does not match the public key in the .key file',
        file,
      );
    }
    return {
      kty: 'RSA',
      n,
      e,
      d: b64u(get('PrivateExponent')),
      p: b64u(get('Prime1')),
      q: b64u(get('Prime2')),
      dp: b64u(get('Exponent1')),
      dq: b64u(get('Exponent2')),
      qi: b64u(get('Coefficient')),
    };
  }
  // ECDSA and Ed25519: the private scalar (seed) alone; x (and y) come from the DNSKEY.
  const d = b64u(fixedLength(get('PrivateKey'), 32, 'PrivateKey'));
  return { ...pub, d };
}

const PROBE = Buffer.from('popdns key check');

/**
 * Reads one key pair from `<dir>/<base>.key` and `.private`. Throws DnssecError naming the file when
 * either cannot be read, disagrees with the file name or with the other file, or is not a zone key of
 * `zone` with an algorithm popdns signs with. The role is provisional (set by loadKeys).
 */
export function readKeyPair(dir: string, base: string, zone: Name): DnssecKey {
  const keyFile = join(dir, `${base}.key`);
  const privFile = join(dir, `${base}.private`);
  let keyText: string;
  let privText: string;
  try {
    keyText = readFileSync(keyFile, 'utf8');
  } catch (e) {
    throw new DnssecError(E_KEY, `cannot read: ${(e as Error).message}`, keyFile);
  }
  try {
    privText = readFileSync(privFile, 'utf8');
  } catch (e) {
    throw new DnssecError(E_KEY, `cannot read: ${(e as Error).message}`, privFile);
  }
  const { owner, dnskey } = parseKeyFile(keyText, keyFile, zone);
  if (!nameEquals(owner, zone)) {
    throw new DnssecError(E_KEY, `the key belongs to ${nameToText(owner)}, not ${nameToText(zone)}`, keyFile);
  }
  const flags = (dnskey[0]! << 8) | dnskey[1]!;
  const alg = dnskey[3]!;
  if (!(flags & DNSKEY_FLAG.ZONE)) throw new DnssecError(E_KEY, 'not a zone key (flags lack 256)', keyFile);
  if (dnskey[2] !== 3) throw new DnssecError(E_KEY, `protocol is ${dnskey[2]}, not 3`, keyFile);
  if (!isSupportedAlgorithm(alg)) {
    throw new DnssecError(
      E_KEY,
      `algorithm ${alg} is not supported (popdns signs with 8, 13 and 15)`,
      keyFile,
    );
  }
  const tag = keyTag(dnskey);
  const m = /\+(\d{3})\+(\d{5})$/.exec(base);
  if (!m || Number(m[1]) !== alg || Number(m[2]) !== tag) {
    throw new DnssecError(
      E_KEY,
      `the file name does not match the key inside (algorithm ${alg}, key tag ${tag}: ${keyFileBase(zone, alg, tag)})`,
      keyFile,
    );
  }
  const fields = parsePrivateFile(privText, privFile);
  const privAlg = /^(\d+)/.exec(fields.get('Algorithm') ?? '');
  if (!privAlg || Number(privAlg[1]) !== alg) {
    throw new DnssecError(
      E_KEY,
      `Algorithm is "${fields.get('Algorithm') ?? ''}", the .key file says ${alg}`,
      privFile,
    );
  }
  let publicKey: KeyObject;
  let privateKey: KeyObject;
  try {
    publicKey = publicKeyFromDnskey(dnskey);
    privateKey = preparedPrivateKey(
      createPrivateKey({ key: privateJwk(alg, fields, dnskey, privFile), format: 'jwk' }),
    );
  } catch (e) {
    if (e instanceof DnssecError) throw e.file === undefined ? new DnssecError(E_KEY, e.detail, privFile) : e;
    throw new DnssecError(E_KEY, `cannot use the private key: ${(e as Error).message}`, privFile);
  }
  // A private key that does not belong to the DNSKEY would make signatures no validator accepts.
  if (!rawVerify(alg, publicKey, PROBE, rawSign(alg, privateKey, PROBE))) {
    throw new DnssecError(E_KEY, `the private key does not match the public key in ${base}.key`, privFile);
  }
  const timing: KeyTiming = {};
  for (const [field, label] of TIMING_FIELDS) {
    const v = fields.get(label);
    const t = v === undefined ? undefined : parseTimeText(v);
    if (t !== undefined) timing[field] = t;
  }
  return {
    zone: nameToLower(zone),
    algorithm: alg,
    flags,
    role: flags & DNSKEY_FLAG.SEP ? 'ksk' : 'zsk',
    tag,
    dnskey,
    publicKey,
    privateKey,
    timing,
    file: base,
  };
}

export interface LoadedKeys {
  /** Sorted by algorithm, then key tag. */
  keys: DnssecKey[];
  /** One per file that could not be used; the message names the file and ends with [POPDNS_E_KEY]. */
  errors: DnssecError[];
}

/**
 * Finds every `K<zone>+NNN+NNNNN.key` in `dir` (zone name case-insensitive) with its `.private` and
 * loads them. A directory that does not exist holds no keys; one that cannot be read is an error.
 * Roles come from the SEP bit: per algorithm, SEP keys are KSKs when there is a ZSK (no SEP bit) and
 * CSKs when there is none.
 */
export function loadKeys(dir: string, zone: Name): LoadedKeys {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { keys: [], errors: [] };
    return { keys: [], errors: [new DnssecError(E_KEY, `cannot read: ${(e as Error).message}`, dir)] };
  }
  const prefix = `K${zoneFileText(zone)}+`.toLowerCase();
  const pattern = /^\d{3}\+\d{5}\.(key|private)$/;
  const bases = new Map<string, Set<string>>();
  for (const f of files) {
    if (!f.toLowerCase().startsWith(prefix)) continue;
    const rest = f.slice(prefix.length);
    const m = pattern.exec(rest);
    if (!m) continue;
    const base = f.slice(0, f.length - m[1]!.length - 1);
    const exts = bases.get(base) ?? new Set<string>();
    exts.add(m[1]!);
    bases.set(base, exts);
  }
  const keys: DnssecKey[] = [];
  const errors: DnssecError[] = [];
  for (const [base, exts] of [...bases].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!exts.has('key')) {
      errors.push(new DnssecError(E_KEY, `has no ${base}.key next to it`, join(dir, `${base}.private`)));
      continue;
    }
    try {
      keys.push(readKeyPair(dir, base, zone));
    } catch (e) {
      if (e instanceof DnssecError) errors.push(e);
      else errors.push(new DnssecError(E_KEY, (e as Error).message, join(dir, `${base}.key`)));
    }
  }
  for (const k of keys) {
    if (!(k.flags & DNSKEY_FLAG.SEP)) continue;
    const hasZsk = keys.some((z) => z.algorithm === k.algorithm && !(z.flags & DNSKEY_FLAG.SEP));
    k.role = hasZsk ? 'ksk' : 'csk';
  }
  keys.sort((a, b) => a.algorithm - b.algorithm || a.tag - b.tag);
  return { keys, errors };
}

// ---------------------------------------------------------------------------------------------
// Signatures

/**
 * The same private key re-imported from its PKCS#8 DER form. OpenSSL 3 signs about a third slower
 * with a key imported from a JWK (a legacy EC_KEY behind the EVP_PKEY, exported to the provider on
 * every use) than with one decoded from PKCS#8, so keys read from files are re-imported once.
 */
export function preparedPrivateKey(key: KeyObject): KeyObject {
  return createPrivateKey({
    key: key.export({ format: 'der', type: 'pkcs8' }),
    format: 'der',
    type: 'pkcs8',
  });
}

/**
 * The raw signature of the algorithm over `data` (RFC 6605 §4 r||s, RFC 8080 §4, RFC 5702 §3):
 * what the RRSIG's Signature field holds. Exported for the signing workers (dnssec/signworker.ts).
 */
export function rawSign(alg: Algorithm, key: KeyObject, data: Uint8Array): Buffer {
  switch (alg) {
    case ALGORITHM.ECDSAP256SHA256:
      return sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }); // r || s, RFC 6605 §4
    case ALGORITHM.ED25519:
      return sign(null, data, key); // RFC 8080 §4
    case ALGORITHM.RSASHA256:
      return sign('sha256', data, key); // PKCS#1 v1.5, RFC 5702 §3
  }
}

function rawVerify(alg: number, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    switch (alg) {
      case ALGORITHM.ECDSAP256SHA256:
        return (
          signature.length === 64 && verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
        );
      case ALGORITHM.ED25519:
        return verify(null, data, key, signature);
      case ALGORITHM.RSASHA256:
        return verify('sha256', data, key, signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

/**
 * The canonical form of one RDATA (RFC 4034 §6.2, less NSEC per RFC 6840 §5.1): the domain-name
 * fields lower-cased for the listed types (the `lower` flag of the type table in wire/rrtypes.ts),
 * every other byte unchanged. Returns the same array when nothing changes.
 */
export function canonicalRdata(type: number, rdata: Uint8Array): Uint8Array {
  try {
    return rdataCanonical(type, rdata);
  } catch (e) {
    if (e instanceof RdataError)
      throw new DnssecError(E_SIGN, `a name in the RDATA is malformed: ${e.message}`);
    throw e;
  }
}

/** An RRset to sign or check; class defaults to IN. */
export interface RRset {
  owner: Name;
  type: number;
  class?: number;
  ttl: number;
  rdatas: readonly Uint8Array[];
}

/** RRSIG Labels field (RFC 4034 §3.1.3): owner labels, not counting the root or a leading `*`. */
export function rrsigLabels(owner: Name): number {
  const n = labelCount(owner);
  return isWildcard(owner) ? n - 1 : n;
}

/**
 * The RRs of an RRset in canonical form and order (RFC 4034 §6.2, §6.3): owner lower-cased (and
 * restored to `*.<closest encloser>` when `labels` is below its label count, RFC 4035 §5.3.2), TTL =
 * original TTL, RDATA canonical, sorted as unsigned octet strings, duplicates removed.
 */
export function canonicalRRsetWire(rrset: RRset, originalTtl: number, labels: number): Buffer {
  let owner = nameToLower(rrset.owner);
  const count = labelCount(owner);
  if (labels < count) owner = prependLabel(WILDCARD_LABEL, stripLabels(owner, count - labels));
  const rdatas = rrset.rdatas.map((rd) => Buffer.from(canonicalRdata(rrset.type, rd)));
  rdatas.sort(Buffer.compare);
  const parts: Uint8Array[] = [];
  const head = Buffer.alloc(10);
  head.writeUInt16BE(rrset.type, 0);
  head.writeUInt16BE(rrset.class ?? CLASS.IN, 2);
  head.writeUInt32BE(originalTtl >>> 0, 4);
  let prev: Buffer | undefined;
  for (const rd of rdatas) {
    if (prev !== undefined && prev.equals(rd)) continue;
    prev = rd;
    if (rd.length > 0xffff) throw new DnssecError(E_SIGN, 'RDATA longer than 65535 octets');
    const h = Buffer.from(head);
    h.writeUInt16BE(rd.length, 8);
    parts.push(owner, h, rd);
  }
  return Buffer.concat(parts);
}

export interface SignatureTimes {
  /** Seconds since the epoch; written modulo 2^32 (RFC 4034 §3.1.5 serial arithmetic). */
  inception: number;
  expiration: number;
}

/** The key fields an RRSIG names: algorithm, key tag, signer (the zone, lower case). */
export interface SigningKeyId {
  algorithm: number;
  tag: number;
  zone: Name;
}

/** Length of the RRSIG RDATA before the signature for this signer: 18 octets + the signer name. */
export function rrsigHeadLength(key: SigningKeyId): number {
  return 18 + key.zone.length;
}

/**
 * Writes what an RRSIG signs (RFC 4034 §3.1.8.1) into `buf` at `at`: the RRSIG RDATA up to the
 * signer name (type covered, algorithm, labels, original TTL = the RRset TTL, expiration, inception,
 * key tag, signer lower-cased), then the RRs in canonical form and order (§6.2, §6.3: owner
 * lower-cased, canonical RDATA sorted as octet strings, duplicates removed). Its first
 * rrsigHeadLength(key) octets are the RRSIG's own head. Returns the end offset, or -1 when it would
 * not fit in `buf` (nothing useful written). No allocation for an RRset of one RDATA whose
 * canonical form is its wire form. Throws DnssecError [POPDNS_E_SIGN] on an RDATA over 65535 octets
 * or a malformed name inside one.
 */
export function writeSignedData(
  buf: Buffer,
  at: number,
  rrset: RRset,
  key: SigningKeyId,
  times: SignatureTimes,
): number {
  const owner = rrset.owner;
  const type = rrset.type;
  const signer = key.zone;
  const ttl = rrset.ttl >>> 0;
  let rdatas: readonly Uint8Array[];
  if (rrset.rdatas.length === 1) rdatas = [canonicalRdata(type, rrset.rdatas[0]!)];
  else {
    const c = rrset.rdatas.map((rd) => canonicalRdata(type, rd));
    c.sort(compareOctets);
    rdatas = c.filter((rd, i) => i === 0 || compareOctets(rd, c[i - 1]!) !== 0);
  }
  let len = 18 + signer.length;
  for (const rd of rdatas) {
    if (rd.length > 0xffff) throw new DnssecError(E_SIGN, 'RDATA longer than 65535 octets');
    len += owner.length + 10 + rd.length;
  }
  if (at + len > buf.length) return -1;
  let p = at;
  buf.writeUInt16BE(type, p);
  buf[p + 2] = key.algorithm;
  buf[p + 3] = rrsigLabels(owner);
  buf.writeUInt32BE(ttl, p + 4);
  buf.writeUInt32BE(times.expiration >>> 0, p + 8);
  buf.writeUInt32BE(times.inception >>> 0, p + 12);
  buf.writeUInt16BE(key.tag, p + 16);
  p += 18;
  for (let i = 0; i < signer.length; i++) {
    const c = signer[i]!;
    buf[p++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c; // length octets are < 0x41: only letters change
  }
  const cls = rrset.class ?? CLASS.IN;
  for (const rd of rdatas) {
    for (let i = 0; i < owner.length; i++) {
      const c = owner[i]!;
      buf[p++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    buf.writeUInt16BE(type, p);
    buf.writeUInt16BE(cls, p + 2);
    buf.writeUInt32BE(ttl, p + 4);
    buf.writeUInt16BE(rd.length, p + 8);
    p += 10;
    buf.set(rd, p);
    p += rd.length;
  }
  return p;
}

function compareOctets(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** The scratch buffer signRRset writes the signed data into (grown when an RRset needs more). */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Signs an RRset with a zone key and returns the RRSIG RDATA (RFC 4034 §3.1): type covered,
 * algorithm, labels, original TTL = the RRset TTL, expiration, inception, key tag, signer = the zone,
 * and the signature over RRSIG_RDATA (without the signature) || the RRs in canonical form (§3.1.8.1).
 * The signed data is built in a reused buffer (writeSignedData); one allocation per signature.
 */
export function signRRset(rrset: RRset, key: DnssecKey, times: SignatureTimes): Uint8Array {
  if (!isSubdomainOf(rrset.owner, key.zone)) {
    throw new DnssecError(
      E_SIGN,
      `${nameToText(rrset.owner)} is not in zone ${nameToText(key.zone)} of key ${key.tag}`,
    );
  }
  if (rrset.rdatas.length === 0) throw new DnssecError(E_SIGN, 'cannot sign an empty RRset');
  let end = writeSignedData(scratch, 0, rrset, key, times);
  while (end < 0) {
    scratch = Buffer.allocUnsafe(scratch.length * 2);
    end = writeSignedData(scratch, 0, rrset, key, times);
  }
  const head = rrsigHeadLength(key);
  const sig = rawSign(key.algorithm, key.privateKey, scratch.subarray(0, end));
  const out = Buffer.allocUnsafe(head + sig.length);
  scratch.copy(out, 0, 0, head);
  out.set(sig, head);
  return out;
}

/** The fields of an RRSIG RDATA. */
export interface RrsigFields {
  typeCovered: number;
  algorithm: number;
  labels: number;
  originalTtl: number;
  expiration: number;
  inception: number;
  keyTag: number;
  signer: Name;
  signature: Uint8Array;
  /** Length of the RDATA before the signature. */
  headLength: number;
}

export function parseRrsig(rrsig: Uint8Array): RrsigFields {
  if (rrsig.length < 20) throw new DnssecError(E_SIGN, 'RRSIG RDATA is too short');
  const b = Buffer.from(rrsig.buffer, rrsig.byteOffset, rrsig.length);
  const { name: signer, next } = readName(rrsig, 18);
  return {
    typeCovered: b.readUInt16BE(0),
    algorithm: b[2]!,
    labels: b[3]!,
    originalTtl: b.readUInt32BE(4),
    expiration: b.readUInt32BE(8),
    inception: b.readUInt32BE(12),
    keyTag: b.readUInt16BE(16),
    signer,
    signature: rrsig.subarray(next),
    headLength: next,
  };
}

/** RFC 1982 serial comparison of 32-bit times: a ≤ b. */
function serialLessOrEqual(a: number, b: number): boolean {
  return (b - a) >>> 0 < 0x80000000;
}

/**
 * Checks an RRSIG (its RDATA) over an RRset with one DNSKEY (its RDATA), as a validator would
 * (RFC 4035 §5.3): type covered, algorithm, key tag and labels must agree, the key must be a zone key
 * with protocol 3, and the signature must verify over the canonical RRset with the original TTL. With
 * `now` (seconds), the validity period is checked too; `signer`, when given, must equal the RRSIG's.
 */
export function verifyRRset(
  rrset: RRset,
  rrsig: Uint8Array,
  dnskey: Uint8Array,
  opts: { now?: number; signer?: Name } = {},
): boolean {
  let f: RrsigFields;
  let publicKey: KeyObject;
  try {
    f = parseRrsig(rrsig);
    publicKey = publicKeyFromDnskey(dnskey);
  } catch {
    return false;
  }
  const flags = (dnskey[0]! << 8) | dnskey[1]!;
  if (!(flags & DNSKEY_FLAG.ZONE) || dnskey[2] !== 3) return false;
  if (f.typeCovered !== rrset.type || f.algorithm !== dnskey[3] || f.keyTag !== keyTag(dnskey)) return false;
  if (f.labels > labelCount(rrset.owner)) return false;
  if (!isSubdomainOf(rrset.owner, f.signer)) return false;
  if (opts.signer !== undefined && !nameEquals(opts.signer, f.signer)) return false;
  if (opts.now !== undefined) {
    if (!serialLessOrEqual(f.inception, opts.now) || !serialLessOrEqual(opts.now, f.expiration)) return false;
  }
  const head = Buffer.concat([rrsig.subarray(0, 18), nameToLower(f.signer)]);
  const data = Buffer.concat([head, canonicalRRsetWire(rrset, f.originalTtl, f.labels)]);
  return rawVerify(f.algorithm, publicKey, data, f.signature);
}
