/**
 * Response rate limiting (RRL) as BIND and Knot define it, for UDP answers: a token bucket per
 * (client prefix, response kind), where the kind is the question name and type for positive answers,
 * the wildcard for synthesized ones, the zone for NXDOMAIN and NODATA, the delegation for referrals,
 * and one bucket per prefix for errors.
 *
 * A bucket is credited `rate` tokens per second up to one second's worth, and each response takes
 * one. While the balance is negative the response is limited: dropped, except every `slip`-th one,
 * which goes out as an empty TC=1 so that a real resolver asks again over TCP (never limited). Like
 * BIND, the balance can fall to −window × rate: a prefix that keeps flooding stays limited, and is
 * forgiven only after it has been quiet for up to `window` seconds.
 *
 * Memory is a fixed table of typed arrays (TABLE_SLOTS, four-way set-associative by a hash of the
 * key): a flood of random prefixes evicts the stalest bucket of a set, the table never grows, and a
 * decision allocates nothing.
 */
import { BlockList, isIP } from 'node:net';
import type { Answer } from '../query/types.js';
import { RCODE } from '../wire/constants.js';
import { parseIp } from '../wire/ipaddr.js';
import { findNode } from '../zone/zone.js';

/** What happened to a response (the index into the popdns_rrl_responses_total counters). */
export const RRL = { PASS: 0, DROP: 1, SLIP: 2 } as const;

/** Response kinds (part of the bucket key). ERROR and NXDOMAIN use errors-per-second. */
export const KIND = { POSITIVE: 1, NODATA: 2, NXDOMAIN: 3, REFERRAL: 4, ERROR: 5 } as const;

export interface RrlConfig {
  responsesPerSecond: number;
  errorsPerSecond: number;
  /** Every slip-th limited response is sent truncated; 0 never, 1 always. */
  slip: number;
  ipv4Prefix: number;
  ipv6Prefix: number;
  /** Seconds a bucket remembers a flood (its debt floor is −window × rate). */
  window: number;
  /** CIDR prefixes never limited, besides 127.0.0.1 and ::1 (validated by parseExempt). */
  exempt: string[];
}

export const RRL_DEFAULTS: RrlConfig = {
  responsesPerSecond: 20,
  errorsPerSecond: 20,
  slip: 2,
  ipv4Prefix: 24,
  ipv6Prefix: 56,
  window: 15,
  exempt: [],
};

/** Buckets per process (a power of two; ~21 bytes each). */
export const TABLE_SLOTS = 1 << 17;
const WAYS = 4;

/**
 * Checks a list of exempt prefixes (`192.0.2.0/24`, `2001:db8::/32`, or a bare address) with Node's
 * own CIDR matcher (net.BlockList); returns an error message for the first bad one, or null.
 */
export function checkExempt(list: string[]): string | null {
  const bl = new BlockList();
  for (const p of list) {
    const [addr = '', len] = p.split('/');
    const fam = isIP(addr);
    if (fam === 0) return `"${p}" is not an address or prefix`;
    const max = fam === 4 ? 32 : 128;
    const n = len === undefined ? max : /^[0-9]{1,3}$/.test(len) ? Number(len) : -1;
    if (n < 0 || n > max) return `"${p}": prefix length must be 0..${max}`;
    try {
      bl.addSubnet(addr, n, fam === 4 ? 'ipv4' : 'ipv6');
    } catch (e) {
      return `"${p}": ${(e as Error).message}`;
    }
  }
  return null;
}

/** Prefixes compiled to bytes for a matcher that allocates nothing (checkExempt validated them). */
class PrefixSet {
  private readonly v4: number[] = []; // pairs: address, mask (as int32)
  private readonly v6: { bytes: Uint8Array; len: number }[] = [];

  constructor(list: string[]) {
    const buf = new Uint8Array(16);
    for (const p of list) {
      const [addr = '', lenText] = p.split('/');
      const n = parseIp(addr, buf);
      if (n === 4) {
        const len = lenText === undefined ? 32 : Number(lenText);
        const mask = len === 0 ? 0 : (-1 << (32 - len)) | 0;
        this.v4.push(((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) & mask, mask);
      } else if (n === 16) {
        this.v6.push({ bytes: Uint8Array.from(buf), len: lenText === undefined ? 128 : Number(lenText) });
      }
    }
  }

  has(ip: Uint8Array, ipLen: number): boolean {
    if (ipLen === 4) {
      const a = (ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!;
      for (let i = 0; i < this.v4.length; i += 2) if ((a & this.v4[i + 1]!) === this.v4[i]) return true;
      return false;
    }
    for (const p of this.v6) {
      let ok = true;
      let bits = p.len;
      for (let i = 0; ok && bits > 0; i++, bits -= 8) {
        const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
        if (((ip[i]! ^ p.bytes[i]!) & mask) !== 0) ok = false;
      }
      if (ok) return true;
    }
    return false;
  }
}

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x5bd1e995);
  return h ^ (h >>> 15);
}

/** Lower-cased name bytes hashed (FNV-1a, like the query reader's qhash), for bucket keys. */
export function hashName(name: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    const b = name[i]!;
    h = Math.imul(h ^ (b >= 0x41 && b <= 0x5a ? b | 0x20 : b), 0x01000193);
  }
  return h | 0;
}

export class RateLimiter {
  private readonly tagA = new Int32Array(TABLE_SLOTS);
  private readonly tagB = new Int32Array(TABLE_SLOTS);
  private readonly balance = new Float32Array(TABLE_SLOTS);
  /** Last update (ms of the caller's clock); 0 = empty slot. */
  private readonly stamp = new Float64Array(TABLE_SLOTS);
  private readonly slips = new Uint8Array(TABLE_SLOTS);
  private readonly okRate: number;
  private readonly errRate: number;
  private readonly slip: number;
  private readonly v4Mask: number;
  private readonly v6Bits: number;
  private readonly window: number;
  private readonly exempt: PrefixSet;

  /**
   * `shares`: how many processes share the server's limit (--workers N). Each takes 1/N of the rate:
   * the workers are separate processes with nothing shared, and the kernel spreads a flood (many
   * source ports) over them, so the server as a whole sends at most the configured rate.
   */
  constructor(cfg: RrlConfig, shares = 1) {
    this.okRate = cfg.responsesPerSecond / shares;
    this.errRate = cfg.errorsPerSecond / shares;
    this.slip = cfg.slip;
    this.v4Mask = cfg.ipv4Prefix === 0 ? 0 : (-1 << (32 - cfg.ipv4Prefix)) | 0;
    this.v6Bits = cfg.ipv6Prefix;
    this.window = cfg.window;
    this.exempt = new PrefixSet(['127.0.0.1/32', '::1/128', ...cfg.exempt]);
  }

  /**
   * Decides for one UDP response to a client at ip[0..ipLen) (4 or 16 bytes): RRL.PASS, DROP or
   * SLIP. `kind` is a KIND, `name` a hash naming what was answered (0 with KIND.ERROR), `nowMs` a
   * monotonic time in milliseconds.
   */
  decide(ip: Uint8Array, ipLen: number, kind: number, name: number, nowMs: number): number {
    // The key: the client's prefix, the kind and the name, as two independent 32-bit hashes.
    let a = mix(0x9747b28c, kind);
    let b = mix(0x1b873593, kind);
    a = mix(a, name);
    b = mix(b, name ^ 0x2f1e3d4c);
    if (ipLen === 4) {
      const w = ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) & this.v4Mask;
      a = mix(a, w);
      b = mix(b, w);
    } else {
      let bits = this.v6Bits;
      for (let i = 0; i < 16 && bits > 0; i += 4, bits -= 32) {
        let w = (ip[i]! << 24) | (ip[i + 1]! << 16) | (ip[i + 2]! << 8) | ip[i + 3]!;
        if (bits < 32) w &= (-1 << (32 - bits)) | 0;
        a = mix(a, w);
        b = mix(b, w ^ 0x6b43a9b5);
      }
      a = mix(a, 6);
    }
    const rate = kind === KIND.ERROR || kind === KIND.NXDOMAIN ? this.errRate : this.okRate;
    const set = (a >>> 0) & (TABLE_SLOTS - WAYS);
    const stamp = this.stamp;
    let slot = -1;
    let oldest = set;
    for (let i = set; i < set + WAYS; i++) {
      if (stamp[i] !== 0 && this.tagA[i] === a && this.tagB[i] === b) {
        slot = i;
        break;
      }
      if (stamp[i]! < stamp[oldest]!) oldest = i;
    }
    let bal: number;
    const now = nowMs > 0 ? nowMs : 1;
    if (slot < 0) {
      // A new bucket (evicting the stalest of the set): one second's worth of tokens.
      slot = oldest;
      this.tagA[slot] = a;
      this.tagB[slot] = b;
      this.slips[slot] = 0;
      bal = rate;
    } else {
      bal = this.balance[slot]! + ((now - stamp[slot]!) * rate) / 1000;
      if (bal > rate) bal = rate;
    }
    stamp[slot] = now;
    bal -= 1;
    if (bal >= 0) {
      this.balance[slot] = bal;
      return RRL.PASS;
    }
    const floor = -this.window * rate;
    this.balance[slot] = bal < floor ? floor : bal;
    if (this.exempt.has(ip, ipLen)) return RRL.PASS;
    if (this.slip > 0 && ++this.slips[slot]! >= this.slip) {
      this.slips[slot] = 0;
      return RRL.SLIP;
    }
    return RRL.DROP;
  }
}

/**
 * The name part of an answer's bucket key (computed once per answer-cache fill, not per query):
 * positive answers by question name and type, wildcard-synthesized ones by zone and type (so a
 * random-subdomain flood under a wildcard shares one bucket, as in BIND and Knot), referrals by the
 * delegation, NXDOMAIN/NODATA by the zone. 0 for answers from no zone (REFUSED: an error).
 */
export function answerNameKey(ans: Answer, qhash: number, qtype: number): number {
  const zone = ans.zone;
  if (zone === null) return 0;
  const first = ans.answer[0];
  if (ans.rcode === RCODE.NOERROR && first !== undefined) {
    const node = findNode(zone, first.owner);
    const synthesized = node === null || node.rrsets.get(first.type) !== first;
    return (synthesized ? mix(mix(hashName(zone.origin), qtype), 0x2a) : mix(qhash, qtype)) || 1;
  }
  if (ans.rcode === RCODE.NOERROR && !ans.aa && ans.authority[0] !== undefined) {
    return hashName(ans.authority[0].owner) || 1;
  }
  return hashName(zone.origin) || 1;
}

/**
 * The kind of a response from its header (rcode, AA, answer count) and its name key (0 = an error
 * with no name: REFUSED, FORMERR, BADVERS, BADCOOKIE, …).
 */
export function responseKind(resp: Uint8Array, name: number): number {
  if (name === 0 || resp.length < 12) return KIND.ERROR;
  const rcode = resp[3]! & 0xf;
  if (rcode === RCODE.NXDOMAIN) return KIND.NXDOMAIN;
  if (rcode !== RCODE.NOERROR) return KIND.ERROR;
  if (resp[6] !== 0 || resp[7] !== 0) return KIND.POSITIVE;
  return (resp[2]! & 0x04) !== 0 ? KIND.NODATA : KIND.REFERRAL;
}

/** Rewrites a response in place into its slipped form: header and question, TC=1, nothing else. */
export function slipped(resp: Buffer, questionEnd: number): Buffer {
  resp[2] = resp[2]! | 0x02;
  resp[6] = 0;
  resp[7] = 0;
  resp[8] = 0;
  resp[9] = 0;
  resp[10] = 0;
  resp[11] = 0;
  return resp.subarray(0, questionEnd);
}
