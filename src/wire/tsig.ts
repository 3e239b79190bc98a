/**
 * TSIG, RFC 8945: HMAC transaction signatures on DNS messages. Signs a finished message by appending
 * the TSIG RR (§4.2) and verifies the TSIG RR at the end of a received one (§5.2, §5.4), including
 * multi-message TCP responses (§5.3.1). Works on wire bytes only; imports nothing of ours outside
 * src/wire. MACs are compared in constant time.
 *
 * Digest input (§4.3): [request MAC or prior MAC, each prefixed by its 2-byte length] | the message
 * without its TSIG RR (ARCOUNT one less, the original ID in the header) | the TSIG variables (§4.3.3:
 * key name and algorithm name in canonical lower-case uncompressed form, class ANY, TTL 0, time signed,
 * fudge, error, other len, other data) — or, for the later messages of a multi-message response, the
 * TSIG timers only (time signed and fudge, §4.3.1 / §5.3.1).
 */
import { createHmac, timingSafeEqual, type Hmac } from 'node:crypto';
import { nameFromText, nameToLower, nameToText, readName, type Name } from './name.js';

/** HMAC algorithms popdns signs and verifies with (RFC 8945 §6; hmac-md5 and GSS-TSIG are not). */
export type TsigAlgorithm = 'hmac-sha1' | 'hmac-sha256' | 'hmac-sha384' | 'hmac-sha512';

/** A shared secret: `name` lower-case, absolute, with the trailing dot (`xfr.example.net.`). */
export interface TsigKey {
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** Keys by name (the same lower-case absolute form as TsigKey.name). */
export type TsigKeyring = ReadonlyMap<string, TsigKey>;

/** TSIG error codes (RFC 8945 §3, the extended RCODEs carried in the TSIG RR's Error field). */
export const TSIG_ERR = { BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

/** The TSIG RR type (RFC 8945 §4.2). */
export const TYPE_TSIG = 250;
const CLASS_ANY = 255;
/** The fudge popdns signs with: 300 s, the RFC 8945 §10 recommendation. */
export const DEFAULT_FUDGE = 300;

const HASH: Record<TsigAlgorithm, { hash: string; size: number }> = {
  'hmac-sha1': { hash: 'sha1', size: 20 },
  'hmac-sha256': { hash: 'sha256', size: 32 },
  'hmac-sha384': { hash: 'sha384', size: 48 },
  'hmac-sha512': { hash: 'sha512', size: 64 },
};

/** The algorithm names accepted in config, in order of preference. */
export const TSIG_ALGORITHMS: readonly TsigAlgorithm[] = [
  'hmac-sha256',
  'hmac-sha384',
  'hmac-sha512',
  'hmac-sha1',
];

/** The algorithm for a name as written in config or on the wire (`hmac-sha256`, `HMAC-SHA256.`), or undefined. */
export function tsigAlgorithmFromText(text: string): TsigAlgorithm | undefined {
  const t = text.toLowerCase().replace(/\.$/, '');
  return t in HASH ? (t as TsigAlgorithm) : undefined;
}

/** Output size of the algorithm's hash in octets (the full MAC size). */
export function tsigMacSize(alg: TsigAlgorithm): number {
  return HASH[alg].size;
}

/**
 * Normalises a key name as written by an operator (`xfr`, `XFR.example.`, `xfr.example.net`) to the
 * keyring form: lower-case, absolute, trailing dot. Throws NameError for a name that cannot be one.
 */
export function tsigKeyName(text: string): string {
  const abs = text.endsWith('.') ? text : `${text}.`;
  return nameToText(nameToLower(nameFromText(abs))).toLowerCase();
}

function nameWire(text: string): Name {
  return nameToLower(nameFromText(text));
}

// --- walking a message ------------------------------------------------------------------------------

/** Offset just past the (possibly compressed) name at `p`; -1 when it runs past `end`. */
function skipName(msg: Uint8Array, p: number, end: number): number {
  for (;;) {
    if (p >= end) return -1;
    const l = msg[p]!;
    if (l === 0) return p + 1;
    if ((l & 0xc0) === 0xc0) return p + 2 <= end ? p + 2 : -1;
    if (l > 63) return -1;
    p += l + 1;
  }
}

/**
 * Finds the last record of a message: returns its start offset and whether it is a TSIG RR, or -1
 * start when the message is malformed. `tsigElsewhere` is true when a TSIG RR appears anywhere else
 * (RFC 8945 §5.2: it must be the last record of the additional section, and only one).
 */
function findLast(msg: Uint8Array): {
  /** False when the message is malformed. */
  ok: boolean;
  /** Offset of the last record's owner name; -1 when there are no records. */
  start: number;
  isTsig: boolean;
  tsigElsewhere: boolean;
  arcount: number;
} {
  const bad = { ok: false, start: -1, isTsig: false, tsigElsewhere: false, arcount: 0 };
  const len = msg.length;
  if (len < 12) return bad;
  const qd = (msg[4]! << 8) | msg[5]!;
  const rr = ((msg[6]! << 8) | msg[7]!) + ((msg[8]! << 8) | msg[9]!) + ((msg[10]! << 8) | msg[11]!);
  const arcount = (msg[10]! << 8) | msg[11]!;
  let p = 12;
  for (let i = 0; i < qd; i++) {
    p = skipName(msg, p, len);
    if (p < 0 || p + 4 > len) return bad;
    p += 4;
  }
  let last = -1;
  let lastType = -1;
  let elsewhere = false;
  for (let i = 0; i < rr; i++) {
    const start = p;
    p = skipName(msg, p, len);
    if (p < 0 || p + 10 > len) return bad;
    const type = (msg[p]! << 8) | msg[p + 1]!;
    const rdlen = (msg[p + 8]! << 8) | msg[p + 9]!;
    p += 10 + rdlen;
    if (p > len) return bad;
    if (lastType === TYPE_TSIG) elsewhere = true;
    last = start;
    lastType = type;
  }
  if (p !== len) return bad;
  return { ok: true, start: last, isTsig: lastType === TYPE_TSIG, tsigElsewhere: elsewhere, arcount };
}

/** Whether the message carries a TSIG RR as its last record (cheap enough for a routing decision). */
export function hasTsig(msg: Uint8Array): boolean {
  if (msg.length < 12 || ((msg[10]! << 8) | msg[11]!) === 0) return false;
  const f = findLast(msg);
  return f.ok && f.isTsig;
}

/** The fields of a TSIG RR (RFC 8945 §4.2). */
export interface TsigRecord {
  /** Key name as received (wire form, possibly mixed case). */
  keyName: Name;
  /** Algorithm name as received (wire form). */
  algorithmName: Name;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  origId: number;
  error: number;
  otherData: Buffer;
}

/** Parses the TSIG RR starting at `start` (its owner name); null when malformed. */
function parseTsigRR(msg: Uint8Array, start: number): TsigRecord | null {
  try {
    const owner = readName(msg, start);
    let p = owner.next;
    if (p + 10 > msg.length) return null;
    const cls = (msg[p + 2]! << 8) | msg[p + 3]!;
    const ttl = ((msg[p + 4]! << 24) | (msg[p + 5]! << 16) | (msg[p + 6]! << 8) | msg[p + 7]!) >>> 0;
    const rdlen = (msg[p + 8]! << 8) | msg[p + 9]!;
    p += 10;
    const end = p + rdlen;
    if (cls !== CLASS_ANY || ttl !== 0 || end !== msg.length) return null;
    // The algorithm name must not be compressed (RFC 8945 §4.2); readName would follow a pointer, so
    // check the bytes it consumed are a plain name.
    const alg = readName(msg, p);
    if (alg.next - p !== alg.name.length) return null;
    p = alg.next;
    if (p + 10 > end) return null;
    const timeSigned = readU48(msg, p);
    const fudge = (msg[p + 6]! << 8) | msg[p + 7]!;
    const macSize = (msg[p + 8]! << 8) | msg[p + 9]!;
    p += 10;
    if (p + macSize + 6 > end) return null;
    const mac = Buffer.from(msg.subarray(p, p + macSize));
    p += macSize;
    const origId = (msg[p]! << 8) | msg[p + 1]!;
    const error = (msg[p + 2]! << 8) | msg[p + 3]!;
    const otherLen = (msg[p + 4]! << 8) | msg[p + 5]!;
    p += 6;
    if (p + otherLen !== end) return null;
    return {
      keyName: owner.name,
      algorithmName: alg.name,
      timeSigned,
      fudge,
      mac,
      origId,
      error,
      otherData: Buffer.from(msg.subarray(p, end)),
    };
  } catch {
    return null;
  }
}

function readU48(b: Uint8Array, p: number): number {
  return (
    ((b[p]! << 8) | b[p + 1]!) * 2 ** 32 +
    (((b[p + 2]! << 24) | (b[p + 3]! << 16) | (b[p + 4]! << 8) | b[p + 5]!) >>> 0)
  );
}

function u48(n: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(n / 2 ** 32) & 0xffff, 0);
  b.writeUInt32BE((n % 2 ** 32) >>> 0, 2);
  return b;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff, 0);
  return b;
}

/** The TSIG variables of §4.3.3 (or the timers of §4.3.1 when `timersOnly`). */
function variables(
  keyName: Name,
  algName: Name,
  timeSigned: number,
  fudge: number,
  error: number,
  otherData: Buffer,
  timersOnly: boolean,
): Buffer {
  const timers = Buffer.concat([u48(timeSigned), u16(fudge)]);
  if (timersOnly) return timers;
  const cls = Buffer.from([CLASS_ANY >> 8, CLASS_ANY & 0xff, 0, 0, 0, 0]);
  return Buffer.concat([
    nameToLower(keyName),
    cls,
    nameToLower(algName),
    timers,
    u16(error),
    u16(otherData.length),
    otherData,
  ]);
}

function withLength(mac: Buffer): Buffer {
  return Buffer.concat([u16(mac.length), mac]);
}

/** Builds the TSIG RR bytes (owner = key name, uncompressed). */
function tsigRR(
  keyName: Name,
  algName: Name,
  timeSigned: number,
  fudge: number,
  mac: Buffer,
  origId: number,
  error: number,
  otherData: Buffer,
): Buffer {
  const rdata = Buffer.concat([
    algName,
    u48(timeSigned),
    u16(fudge),
    u16(mac.length),
    mac,
    u16(origId),
    u16(error),
    u16(otherData.length),
    otherData,
  ]);
  const head = Buffer.alloc(10);
  head.writeUInt16BE(TYPE_TSIG, 0);
  head.writeUInt16BE(CLASS_ANY, 2);
  head.writeUInt32BE(0, 4);
  head.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([keyName, head, rdata]);
}

function appendRR(msg: Buffer, rr: Buffer): Buffer {
  const out = Buffer.concat([msg, rr]);
  out.writeUInt16BE((out.readUInt16BE(10) + 1) & 0xffff, 10);
  return out;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Options of tsigSign. Times are seconds since the epoch; MACs are raw bytes (no length prefix). */
export interface TsigSignOptions {
  /** Signing a response: the request's MAC (§4.3.2). */
  requestMac?: Buffer;
  /** A later message of a multi-message response: the previous message's MAC (§5.3.1). */
  priorMac?: Buffer;
  /** Digest only the timers, not all TSIG variables (later messages of a multi-message response). */
  timersOnly?: boolean;
  /** Time Signed; default the current time. */
  now?: number;
  /** Default 300 s. */
  fudge?: number;
  /** TSIG error field (e.g. TSIG_ERR.BADTIME); default 0. */
  error?: number;
  /** Other Data (BADTIME: the server's 48-bit time); default empty. */
  otherData?: Buffer;
}

/**
 * Signs a complete DNS message (RFC 8945 §4.3, §5.3): appends a TSIG RR with a MAC made with `key`,
 * increments ARCOUNT, and returns the new message with its MAC. The message's ID becomes the TSIG's
 * Original ID. For a response pass the request's MAC; for the 2nd… message of a multi-message response
 * pass the prior MAC and `timersOnly: true`.
 */
export function tsigSign(
  msg: Buffer,
  key: TsigKey,
  o: TsigSignOptions = {},
): { message: Buffer; mac: Buffer } {
  const keyName = nameWire(key.name);
  const algName = nameWire(`${key.algorithm}.`);
  const timeSigned = o.now ?? nowSeconds();
  const fudge = o.fudge ?? DEFAULT_FUDGE;
  const error = o.error ?? 0;
  const otherData = o.otherData ?? Buffer.alloc(0);
  const h = createHmac(HASH[key.algorithm].hash, key.secret);
  if (o.priorMac) h.update(withLength(o.priorMac));
  else if (o.requestMac) h.update(withLength(o.requestMac));
  h.update(msg);
  h.update(variables(keyName, algName, timeSigned, fudge, error, otherData, o.timersOnly === true));
  const mac = h.digest();
  const origId = msg.readUInt16BE(0);
  return {
    message: appendRR(msg, tsigRR(keyName, algName, timeSigned, fudge, mac, origId, error, otherData)),
    mac,
  };
}

/**
 * Appends an unsigned TSIG RR (MAC size 0) carrying an error: the answer to a request whose key is
 * unknown (BADKEY) or whose MAC is wrong (BADSIG, BADTRUNC), RFC 8945 §5.3.2. Key and algorithm names
 * and Time Signed/fudge are echoed from the request's TSIG.
 */
export function tsigAppendError(msg: Buffer, request: TsigRecord, error: number): Buffer {
  return appendRR(
    msg,
    tsigRR(
      request.keyName,
      request.algorithmName,
      request.timeSigned,
      request.fudge,
      Buffer.alloc(0),
      msg.readUInt16BE(0),
      error,
      Buffer.alloc(0),
    ),
  );
}

/** Result of tsigVerify. */
export interface TsigVerifyResult {
  /**
   * unsigned: no TSIG RR. ok: MAC and time good. formerr: the TSIG RR is malformed or misplaced
   * (§5.2: answer FORMERR). badkey: unknown key or algorithm, or a key/algorithm mismatch. badsig: wrong
   * MAC (also a truncated MAC: error BADTRUNC). badtime: MAC good, Time Signed outside the fudge.
   */
  status: 'unsigned' | 'ok' | 'formerr' | 'badkey' | 'badsig' | 'badtime';
  key?: TsigKey;
  /** The received MAC (for signing the response: its requestMac). */
  mac?: Buffer;
  timeSigned?: number;
  /** The TSIG error to put in the response (0, or one of TSIG_ERR). */
  error: number;
  /** The TSIG RR's Original ID (the header ID when unsigned). */
  origId: number;
  /** The message without the TSIG RR, ARCOUNT decremented, the original ID restored. */
  stripped: Buffer;
  /** The parsed TSIG RR (absent when unsigned or unparsable). */
  record?: TsigRecord;
}

/** Options of tsigVerify (see TsigSignOptions for the MAC chaining). */
export interface TsigVerifyOptions {
  requestMac?: Buffer;
  priorMac?: Buffer;
  timersOnly?: boolean;
  /** The verifier's clock, seconds since the epoch; default the current time. */
  now?: number;
}

/** Strips the TSIG RR at `start`: a copy of the message before it, ARCOUNT − 1, ID = origId. */
function strip(msg: Uint8Array, start: number, origId: number): Buffer {
  const out = Buffer.from(msg.subarray(0, start));
  out.writeUInt16BE(((out.readUInt16BE(10) - 1) & 0xffff) >>> 0, 10);
  out.writeUInt16BE(origId, 0);
  return out;
}

/**
 * Verifies the TSIG RR at the end of `msg` against `keys` (RFC 8945 §5.2 order: key and algorithm →
 * BADKEY, MAC → BADSIG/BADTRUNC, then time → BADTIME, so an attacker cannot provoke BADTIME). The
 * MAC must be full length (truncation, §5.2.2.1, is refused: a MAC longer than the hash or shorter
 * than max(10, hash/2) is FORMERR, a shorter valid-size one BADTRUNC).
 */
export function tsigVerify(msg: Buffer, keys: TsigKeyring, o: TsigVerifyOptions = {}): TsigVerifyResult {
  const headerId = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
  const f = findLast(msg);
  if (!f.ok) return { status: 'formerr', error: 0, origId: headerId, stripped: msg };
  if (f.tsigElsewhere) return { status: 'formerr', error: 0, origId: headerId, stripped: msg };
  if (!f.isTsig) return { status: 'unsigned', error: 0, origId: headerId, stripped: msg };
  if (f.arcount === 0) return { status: 'formerr', error: 0, origId: headerId, stripped: msg };
  const rec = parseTsigRR(msg, f.start);
  if (!rec) return { status: 'formerr', error: 0, origId: headerId, stripped: msg };
  const stripped = strip(msg, f.start, rec.origId);
  const base = { origId: rec.origId, stripped, record: rec, timeSigned: rec.timeSigned, mac: rec.mac };
  let keyName: string;
  try {
    keyName = nameToText(nameToLower(rec.keyName)).toLowerCase();
  } catch {
    return { status: 'formerr', error: 0, origId: rec.origId, stripped };
  }
  const key = keys.get(keyName);
  const alg = tsigAlgorithmFromText(nameToText(rec.algorithmName));
  if (!key || alg !== key.algorithm) return { ...base, status: 'badkey', error: TSIG_ERR.BADKEY };
  const full = HASH[alg].size;
  if (rec.mac.length > full || rec.mac.length < Math.max(10, full / 2)) {
    return { ...base, key, status: 'formerr', error: 0 };
  }
  const h = createHmac(HASH[alg].hash, key.secret);
  if (o.priorMac) h.update(withLength(o.priorMac));
  else if (o.requestMac) h.update(withLength(o.requestMac));
  h.update(stripped);
  h.update(
    variables(
      rec.keyName,
      rec.algorithmName,
      rec.timeSigned,
      rec.fudge,
      rec.error,
      rec.otherData,
      o.timersOnly === true,
    ),
  );
  const want = h.digest();
  if (!timingSafeEqual(want.subarray(0, rec.mac.length), rec.mac)) {
    return { ...base, key, status: 'badsig', error: TSIG_ERR.BADSIG };
  }
  if (rec.mac.length < full) return { ...base, key, status: 'badsig', error: TSIG_ERR.BADTRUNC };
  const now = o.now ?? nowSeconds();
  if (Math.abs(now - rec.timeSigned) > rec.fudge)
    return { ...base, key, status: 'badtime', error: TSIG_ERR.BADTIME };
  return { ...base, key, status: 'ok', error: 0 };
}

/**
 * Signs the response to a verified request (RFC 8945 §5.3, §5.3.2): status ok → signed with the
 * request MAC; badtime → signed, error BADTIME, Time Signed echoed from the request, Other Data = the
 * server's time; badkey/badsig → an unsigned TSIG RR carrying the error. Returns the message unchanged
 * for an unsigned request. `response` must already carry the right RCODE (NOTAUTH for the errors).
 */
export function tsigSignResponse(
  response: Buffer,
  req: TsigVerifyResult,
  now: number = nowSeconds(),
): { message: Buffer; mac?: Buffer } {
  if (req.status === 'unsigned' || req.status === 'formerr' || !req.record) return { message: response };
  if (req.status === 'ok' && req.key) return tsigSign(response, req.key, { requestMac: req.mac!, now });
  if (req.status === 'badtime' && req.key) {
    return tsigSign(response, req.key, {
      requestMac: req.mac!,
      now: req.record.timeSigned,
      fudge: req.record.fudge,
      error: TSIG_ERR.BADTIME,
      otherData: u48(now),
    });
  }
  return { message: tsigAppendError(response, req.record, req.error) };
}

/**
 * Verifies the messages of one multi-message response (AXFR/IXFR over TCP, RFC 8945 §5.3.1): the first
 * must be signed (digest with the request MAC), later ones may be unsigned — at most 99 in a row — and
 * are folded into the next signed message's digest (prior MAC, the unsigned messages, the signed one,
 * the timers). `next` returns `pending` for an accepted unsigned message; `finish` says whether the
 * stream ended on a valid signed message.
 */
export class TsigStreamVerifier {
  private priorMac: Buffer;
  private first = true;
  private unsigned = 0;
  private hmac: Hmac | null = null;
  private failed = false;
  private lastSigned = false;

  constructor(
    private readonly key: TsigKey,
    requestMac: Buffer,
    private readonly clock: () => number = nowSeconds,
  ) {
    this.priorMac = requestMac;
  }

  /** Checks the next received message; `stripped` is it without its TSIG RR (or itself, unsigned). */
  next(msg: Buffer): { status: 'ok' | 'pending' | 'badsig' | 'badtime' | 'formerr'; stripped: Buffer } {
    if (this.failed) return { status: 'formerr', stripped: msg };
    const f = findLast(msg);
    if (!f.ok || f.tsigElsewhere) return this.fail('formerr', msg);
    if (!f.isTsig) {
      if (this.first || this.unsigned >= 99) return this.fail('formerr', msg);
      this.unsigned++;
      this.lastSigned = false;
      this.digest().update(msg);
      return { status: 'pending', stripped: msg };
    }
    const rec = parseTsigRR(msg, f.start);
    if (!rec) return this.fail('formerr', msg);
    const stripped = strip(msg, f.start, rec.origId);
    const alg = tsigAlgorithmFromText(nameToText(rec.algorithmName));
    if (nameToText(nameToLower(rec.keyName)).toLowerCase() !== this.key.name || alg !== this.key.algorithm) {
      return this.fail('badsig', stripped);
    }
    if (rec.error !== 0) return this.fail(rec.error === TSIG_ERR.BADTIME ? 'badtime' : 'badsig', stripped);
    const h = this.digest();
    h.update(stripped);
    h.update(
      variables(
        rec.keyName,
        rec.algorithmName,
        rec.timeSigned,
        rec.fudge,
        rec.error,
        rec.otherData,
        !this.first,
      ),
    );
    const want = h.digest();
    this.hmac = null;
    if (rec.mac.length !== want.length || !timingSafeEqual(want, rec.mac))
      return this.fail('badsig', stripped);
    if (Math.abs(this.clock() - rec.timeSigned) > rec.fudge) return this.fail('badtime', stripped);
    this.priorMac = rec.mac;
    this.first = false;
    this.unsigned = 0;
    this.lastSigned = true;
    return { status: 'ok', stripped };
  }

  /** True when every message so far verified and the last one was signed. */
  finish(): boolean {
    return !this.failed && this.lastSigned;
  }

  private digest(): Hmac {
    if (!this.hmac) {
      this.hmac = createHmac(HASH[this.key.algorithm].hash, this.key.secret);
      this.hmac.update(withLength(this.priorMac));
    }
    return this.hmac;
  }

  private fail(
    status: 'badsig' | 'badtime' | 'formerr',
    stripped: Buffer,
  ): { status: 'badsig' | 'badtime' | 'formerr'; stripped: Buffer } {
    this.failed = true;
    return { status, stripped };
  }
}

/** Reads the TSIG RR of a message, or null (unsigned or malformed); for logs and tests. */
export function tsigRecordOf(msg: Uint8Array): TsigRecord | null {
  const f = findLast(msg);
  return f.ok && f.isTsig ? parseTsigRR(msg, f.start) : null;
}

/** The 48-bit time encoding (for Other Data of a BADTIME answer). */
export function tsigTime48(seconds: number): Buffer {
  return u48(seconds);
}
