/**
 * DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018): the COOKIE option of a query
 * checked, and the one for its response built, without allocating. The server cookie is
 *
 *   Version (1) | Reserved (3 × 0) | Timestamp (4, seconds, serial arithmetic) | Hash (8)
 *   Hash = SipHash-2-4(secret, Client Cookie | Version | Reserved | Timestamp | Client IP)
 *
 * so every PoP with the same secret (and BIND, Knot or NSD configured alike) mints and accepts the
 * same cookies. A second, staging secret is accepted but never used to mint: a new secret is rolled
 * out as staging everywhere, then swapped with the old, then the old dropped, with no BADCOOKIE.
 */
import { SipKey, siphash24 } from './siphash.js';

/** What a query's COOKIE option was, for the response and the metrics. */
export const COOKIE = {
  /** No COOKIE option (or no EDNS). */
  NONE: 0,
  /** A client cookie only (8 bytes): a first contact. */
  CLIENT_ONLY: 1,
  /** A server cookie that we (or a PoP with the same secret) minted for this client, in time. */
  VALID: 2,
  /** A server cookie that does not verify, or is too old or from the future. */
  INVALID: 3,
  /** A BADCOOKIE response was sent (require: true and no valid server cookie). */
  BADCOOKIE: 4,
  /** Not a cookie at all: wrong length (RFC 7873 §5.2.2). Answered FORMERR; not a metrics label. */
  MALFORMED: 5,
} as const;

/** RFC 9018 §4.3: a server cookie older than this (s) is invalid … */
const MAX_AGE = 3600;
/** … and so is one from further in the future than this (s), clock skew between PoPs allowed. */
const MAX_FUTURE = 300;
/** A valid server cookie older than this (s) is replaced by a fresh one in the response (§4.3). */
const REFRESH_AGE = 1800;

/** The option's code (RFC 7873 §4) and the size of what we send: 8-byte client + 16-byte server cookie. */
const OPTION_CODE = 10;
const OUR_LEN = 24;
/** Bytes the COOKIE option adds to an OPT record's RDATA: code, length, cookies. */
export const COOKIE_OPTION_BYTES = 4 + OUR_LEN;

export interface CookieConfig {
  /** 16 bytes: mints and validates. */
  secret: Uint8Array;
  /** 16 bytes or null: validates only (a secret being rolled in or out). */
  stagingSecret: Uint8Array | null;
  /** UDP queries with a client cookie but no valid server cookie get BADCOOKIE. */
  require: boolean;
}

/** Parses "32 hex digits" into 16 bytes; null when it is not that. */
export function parseSecret(text: string): Uint8Array | null {
  const s = text.startsWith('0x') ? text.slice(2) : text;
  if (!/^[0-9a-fA-F]{32}$/.test(s)) return null;
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export class Cookies {
  private readonly key: SipKey;
  private readonly staging: SipKey | null;
  readonly require: boolean;
  /** The COOKIE option payload for the response: client cookie (8) then server cookie (16). */
  readonly out = new Uint8Array(OUR_LEN);
  /** Hash input: client cookie | version | reserved | timestamp | client IP (4 or 16 bytes). */
  private readonly input = new Uint8Array(8 + 8 + 16);
  private readonly mac = new Uint8Array(8);

  constructor(cfg: CookieConfig) {
    this.key = new SipKey(cfg.secret);
    this.staging = cfg.stagingSecret ? new SipKey(cfg.stagingSecret) : null;
    this.require = cfg.require;
  }

  /**
   * Checks the COOKIE option whose data is msg[at..at+len) from a client at `ip[0..ipLen)` (ipLen 4
   * or 16), at `now` (Unix seconds), and prepares `out` for the response: the client cookie with our
   * server cookie — the received one again when it is valid and younger than half an hour, a fresh
   * one otherwise (RFC 9018 §4.3). Returns COOKIE.CLIENT_ONLY, VALID, INVALID or MALFORMED (RFC 7873
   * §5.2.2: shorter than 8, 9–15, or longer than 40 bytes).
   */
  check(msg: Uint8Array, at: number, len: number, ip: Uint8Array, ipLen: number, now: number): number {
    if (len < 8 || (len > 8 && len < 16) || len > 40) return COOKIE.MALFORMED;
    const out = this.out;
    for (let i = 0; i < 8; i++) out[i] = msg[at + i]!;
    if (len === 8) {
      this.mint(ip, ipLen, now);
      return COOKIE.CLIENT_ONLY;
    }
    // Ours are exactly 16 bytes of version 1 (RFC 9018 §4.1); any other server cookie is a stranger's.
    let verdict: number = COOKIE.INVALID;
    if (len === 24 && msg[at + 8] === 1) {
      const ts = ((msg[at + 12]! << 24) | (msg[at + 13]! << 16) | (msg[at + 14]! << 8) | msg[at + 15]!) >>> 0;
      // Serial-number arithmetic (RFC 1982) on 32 bits: age in (-2^31, 2^31).
      const age = ((now >>> 0) - ts) | 0;
      if (age <= MAX_AGE && age >= -MAX_FUTURE) {
        const input = this.input;
        for (let i = 0; i < 16; i++) input[i] = msg[at + i]!;
        for (let i = 0; i < ipLen; i++) input[16 + i] = ip[i]!;
        if (this.verify(this.key, msg, at, 16 + ipLen)) {
          verdict = COOKIE.VALID;
          if (age <= REFRESH_AGE) {
            for (let i = 8; i < 24; i++) out[i] = msg[at + i]!;
            return verdict;
          }
        } else if (this.staging !== null && this.verify(this.staging, msg, at, 16 + ipLen)) {
          // Valid under the staging secret: answer with one minted under the current secret.
          verdict = COOKIE.VALID;
        }
      }
    }
    this.mint(ip, ipLen, now);
    return verdict;
  }

  private verify(key: SipKey, msg: Uint8Array, at: number, inputLen: number): boolean {
    siphash24(key, this.input, 0, inputLen, this.mac, 0);
    const mac = this.mac;
    let diff = 0;
    for (let i = 0; i < 8; i++) diff |= mac[i]! ^ msg[at + 16 + i]!;
    return diff === 0;
  }

  /** out[8..24) = a fresh server cookie for the client cookie in out[0..8) (RFC 9018 §4.2, §4.4). */
  private mint(ip: Uint8Array, ipLen: number, now: number): void {
    const out = this.out;
    const input = this.input;
    for (let i = 0; i < 8; i++) input[i] = out[i]!;
    input[8] = 1;
    input[9] = 0;
    input[10] = 0;
    input[11] = 0;
    input[12] = (now >>> 24) & 0xff;
    input[13] = (now >>> 16) & 0xff;
    input[14] = (now >>> 8) & 0xff;
    input[15] = now & 0xff;
    for (let i = 0; i < ipLen; i++) input[16 + i] = ip[i]!;
    for (let i = 8; i < 16; i++) out[i] = input[i]!;
    siphash24(this.key, input, 0, 16 + ipLen, out, 16);
  }

  /**
   * Appends the COOKIE option (from `out`) to the OPT record that starts at buf[optStart] and ends at
   * `end`, raising its RDATA length. Returns the new end. The caller reserved COOKIE_OPTION_BYTES.
   */
  appendTo(buf: Uint8Array, optStart: number, end: number): number {
    const rdlen = ((buf[optStart + 9]! << 8) | buf[optStart + 10]!) + COOKIE_OPTION_BYTES;
    buf[optStart + 9] = rdlen >> 8;
    buf[optStart + 10] = rdlen & 0xff;
    buf[end] = 0;
    buf[end + 1] = OPTION_CODE;
    buf[end + 2] = 0;
    buf[end + 3] = OUR_LEN;
    buf.set(this.out, end + 4);
    return end + COOKIE_OPTION_BYTES;
  }
}
