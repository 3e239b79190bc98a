/**
 * Bytes in, bytes out: the one place that turns a query into a response, shared by UDP and TCP.
 *
 * Fast path: read header and question by offset → look the question up in the answer cache (keyed by
 * a hash of the lower-cased name, qtype and DO) → copy the query's header and question, patch flags
 * and counts, copy the precomputed sections, append OPT → send. The sections are laid out for a
 * question at offset 12, so compression pointers into the question are valid for any query with the
 * same name in any letter case. A miss runs the engine once and fills the cache.
 */
import { performance } from 'node:perf_hooks';
import { COOKIE, COOKIE_OPTION_BYTES, type Cookies } from '../cookies/cookies.js';
import { chaosAnswer } from '../query/chaos.js';
import { resolve } from '../query/engine.js';
import type { Answer } from '../query/types.js';
import { CLASS, RCODE, TYPE } from '../wire/constants.js';
import {
  MessageWriter,
  PARSE,
  parseQuery,
  QueryInfo,
  responseFlags,
  type WireRRset,
} from '../wire/message.js';
import { nameToText } from '../wire/name.js';
import { rdataNames } from '../wire/rdata.js';
import { type TsigKeyring, tsigSignResponse, tsigVerify, type TsigVerifyResult } from '../wire/tsig.js';
import type { TransferHooks } from '../xfr/primary.js';
import { tsigReserve } from '../xfr/primary.js';
import { tsigKindOf } from '../xfr/counters.js';
import type { RRset } from '../zone/zone.js';
import { CoarseClock } from '../rrl/clock.js';
import { answerNameKey, RateLimiter, responseKind, RRL, slipped } from '../rrl/rrl.js';
import { parseIp } from '../wire/ipaddr.js';
import type { ZoneSet } from '../zone/zoneset.js';
import type { Counters } from './counters.js';

export interface HandlerConfig {
  identity: string;
  /** NSID payload (RFC 5001), or null to never send one. */
  nsid: Uint8Array | null;
  /** Version string for version.server/version.bind, or null to refuse. */
  version: string | null;
  /** Our EDNS UDP payload size (default 1232). */
  ednsUdpSize: number;
  /** DNS cookies (RFC 7873/9018), when configured. */
  cookies?: Cookies | null;
  /** Response rate limiting of UDP answers, when configured. */
  rrl?: RateLimiter | null;
  /** TSIG keys for verifying signed requests (RFC 8945 §5.2); none = every signed request is BADKEY. */
  tsigKeys?: TsigKeyring;
}

/**
 * Answers a request whose opcode the query path does not handle (NOTIFY, UPDATE), after its TSIG (if
 * any) verified: `tsig` is the verification (status 'unsigned' or 'ok'). Null = NOTIMP.
 */
export type OpcodeHook = (msg: Buffer, q: QueryInfo, peer: string, tsig: TsigVerifyResult) => Buffer | null;

const NO_KEYS: TsigKeyring = new Map();

interface CacheEntry {
  qname: Uint8Array;
  qtype: number;
  dnssecOk: boolean;
  flagsAa: boolean;
  rcode: number;
  an: number;
  ns: number;
  ar: number;
  body: Buffer;
  zone: number;
  /** The answer's RRL bucket name (answerNameKey). */
  rrl: number;
}

/** One query in this many (a power of two) is timed for popdns_query_duration_seconds. */
export const LATENCY_SAMPLE = 16;

/**
 * Slots of the answer cache (a power of two): two-way set-associative, indexed by the question's
 * hash, so a lookup is one array index and a flood of random names only replaces entries.
 */
const CACHE_SLOTS = 1 << 18;

const TRANSPORT_UDP = 0;
const TRANSPORT_TCP = 1;

function lower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

export class Handler {
  private readonly q = new QueryInfo();
  private readonly w = new MessageWriter();
  private cache: (CacheEntry | undefined)[] = new Array<CacheEntry | undefined>(CACHE_SLOTS).fill(undefined);
  private zoneSet: ZoneSet;
  /** OPT records as bytes: [DO][NSID]. */
  private readonly opts: Buffer[][];
  /** AXFR/IXFR (src/xfr); null: refused. */
  transfers: TransferHooks | null = null;
  /** NOTIFY / UPDATE handlers (the secondary side, dynamic updates); null: NOTIMP. */
  opcodeHook: OpcodeHook | null = null;
  /**
   * Told of each request whose TSIG failed (kind: query, notify, xfr, update; status: badkey, badsig,
   * badtime, formerr; the key name the request named, or null), for the server's throttled log line:
   * a client with the wrong key or algorithm (an ACME client left on HMAC-MD5, say) is then visible
   * in the log, not only in popdns_tsig_failures_total. Not on the path of unsigned queries.
   */
  onTsigFailure: ((kind: string, status: string, keyName: string | null, peer: string) => void) | null = null;
  /** Bytes kept free at the end of a response for its TSIG RR (non-zero only while answering a signed request). */
  private reserve = 0;
  /** The verified TSIG of the request being answered (status 'unsigned' otherwise). */
  private tsig: TsigVerifyResult | null = null;

  constructor(
    private readonly cfg: HandlerConfig,
    zones: ZoneSet,
    private readonly counters: Counters,
  ) {
    this.zoneSet = zones;
    this.cookies = cfg.cookies ?? null;
    this.rrl = cfg.rrl ?? null;
    this.clock = this.cookies || this.rrl ? new CoarseClock().start() : null;
    this.opts = [false, true].map((d) =>
      [false, true].map((n) => {
        const w = new MessageWriter(600);
        w.limit = 600;
        w.writeOpt(cfg.ednsUdpSize, 0, d, n ? cfg.nsid : null);
        return w.result();
      }),
    );
  }

  get zones(): ZoneSet {
    return this.zoneSet;
  }

  /** Swaps in a new zone set (after a reload). Cached answers belong to the old one and are dropped. */
  set zones(z: ZoneSet) {
    this.zoneSet = z;
    this.cache = new Array<CacheEntry | undefined>(CACHE_SLOTS).fill(undefined);
  }

  /**
   * Answers one message; null means send nothing (unreadable header, or a response). One message in
   * LATENCY_SAMPLE is timed for the latency histogram: two clock reads per query cost about 5% of the
   * UDP throughput, measured.
   */
  handle(msg: Buffer, tcp: boolean, client = ''): Buffer | null {
    this.seq = (this.seq + 1) & (LATENCY_SAMPLE - 1);
    if (this.seq !== 0) return this.limit(this.answer(msg, tcp, client), tcp);
    const t0 = performance.now();
    const out = this.limit(this.answer(msg, tcp, client), tcp);
    this.counters.observeLatency((performance.now() - t0) / 1000);
    return out;
  }

  private seq = 0;

  // Cookies and RRL (src/cookies, src/rrl): the client's address as bytes, the query's cookie
  // outcome, the COOKIE option bytes its response carries, and the RRL bucket name of its answer.
  private readonly cookies: Cookies | null;
  private readonly rrl: RateLimiter | null;
  private readonly clock: CoarseClock | null;
  private readonly ip = new Uint8Array(16);
  private ipLen = 0;
  private cookie: number = COOKIE.NONE;
  private cookieBytes = 0;
  private rrlName = 0;

  /** UDP response rate limiting: pass, drop (null) or slip (TC=1); a valid server cookie always passes. */
  private limit(out: Buffer | null, tcp: boolean): Buffer | null {
    if (this.rrl === null || out === null || tcp || this.ipLen === 0) return out;
    if (this.cookie === COOKIE.VALID) {
      this.counters.rrl[RRL.PASS]! += 1;
      return out;
    }
    const kind = responseKind(out, this.rrlName);
    const a = this.rrl.decide(this.ip, this.ipLen, kind, this.rrlName, this.clock!.ms);
    this.counters.rrl[a]! += 1;
    return a === RRL.PASS ? out : a === RRL.SLIP ? slipped(out, this.q.questionEnd) : null;
  }

  /**
   * RFC 7873 §5.2: checks the query's COOKIE option and prepares the one for the response. Returns
   * an rcode to answer with at once (FORMERR for a malformed option, BADCOOKIE when cookies are
   * required on UDP and the server cookie is missing or invalid), or -1 to answer normally.
   */
  private checkCookie(msg: Buffer, tcp: boolean): number {
    const ck = this.cookies!;
    const q = this.q;
    let c: number = COOKIE.NONE;
    if (q.cookieAt !== 0 && this.ipLen !== 0) {
      c = ck.check(msg, q.cookieAt, q.cookieLen, this.ip, this.ipLen, this.clock!.unix);
      if (c === COOKIE.MALFORMED) return RCODE.FORMERR;
      this.cookieBytes = COOKIE_OPTION_BYTES;
      if (c !== COOKIE.VALID && ck.require && !tcp) c = COOKIE.BADCOOKIE;
    }
    this.cookie = c;
    this.counters.cookies[c]! += 1;
    return c === COOKIE.BADCOOKIE ? RCODE.BADCOOKIE : -1;
  }

  private answer(msg: Buffer, tcp: boolean, client: string): Buffer | null {
    const q = this.q;
    const transport = tcp ? TRANSPORT_TCP : TRANSPORT_UDP;
    const st = parseQuery(msg, q);
    this.cookie = COOKIE.NONE;
    this.cookieBytes = 0;
    this.rrlName = 0;
    this.ipLen =
      (this.rrl !== null && !tcp) || (this.cookies !== null && q.cookieAt !== 0)
        ? parseIp(client, this.ip)
        : 0;
    // Signed requests (RFC 8945 §5.2) leave the fast path here: TSIG is only looked for when the
    // additional section held something besides OPT.
    if (q.tsigAt >= 0 && (st === PARSE.OK || st === PARSE.NOTIMP)) return this.answerSigned(msg, tcp, client);
    if (st === PARSE.DROP) {
      this.counters.dropped[msg.length < 12 ? 0 : 1]! += 1;
      return null;
    }
    const limit =
      (tcp ? 65535 : q.hasEdns ? Math.max(512, Math.min(q.ednsUdpSize, this.cfg.ednsUdpSize)) : 512) -
      this.reserve;
    // Errors echo the question when it could be read, and carry an OPT when the query had a valid
    // one (RFC 6891 §7).
    if (st === PARSE.FORMERR) {
      this.counters.dropped[2]! += 1;
      this.counters.query(transport, q.qtype, RCODE.FORMERR, 0);
      return this.withOpt(msg, limit, RCODE.FORMERR);
    }
    if (st === PARSE.NOTIMP) {
      // Every NOTIFY/UPDATE reaches its handler, even without exactly one question: RFC 2136 §3.1.1
      // and RFC 1996 §3.7 want FORMERR for a zone section that is not one SOA record, not NOTIMP.
      if (this.opcodeHook) {
        const tsig = this.tsig ?? { status: 'unsigned', error: 0, origId: q.id, stripped: msg };
        const out = this.opcodeHook(msg, q, client, tsig);
        if (out) return out;
      }
      this.counters.query(transport, q.qtype, RCODE.NOTIMP, 0);
      return this.withOpt(msg, limit, RCODE.NOTIMP);
    }
    if (q.hasEdns && q.ednsVersion > 0) {
      // RFC 6891 §6.1.3: BADVERS (16) = extended rcode 1 in the OPT, 0 in the header.
      this.counters.query(transport, q.qtype, 16, 0);
      const w = this.w;
      w.begin(msg, q.questionEnd, limit);
      w.writeOpt(this.cfg.ednsUdpSize, 1, q.dnssecOk, null);
      w.setCounts(0, 0, 1);
      w.setFlags(q.flags, false, false, 0);
      return w.result();
    }
    if (this.cookies !== null && st === PARSE.OK) {
      const rc = this.checkCookie(msg, tcp);
      if (rc >= 0) {
        this.counters.query(transport, q.qtype, rc, 0);
        return this.withOpt(msg, limit, rc);
      }
    }
    if (q.qclass === CLASS.IN) {
      if (q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR) {
        // Over UDP: IXFR answered by src/xfr (RFC 1995 §2), AXFR refused. Over TCP the listener hands
        // transfers to src/xfr before they get here; without it, a policy refusal (over UDP, FORMERR
        // would wrongly say the query is malformed).
        if (this.transfers && !tcp && this.tsig === null) {
          this.counters.query(transport, q.qtype, RCODE.NOERROR, 0);
          return this.transfers.udp(msg, client, limit);
        }
        this.counters.query(transport, q.qtype, RCODE.REFUSED, 0);
        return this.withOpt(msg, limit, RCODE.REFUSED);
      }
      const hit = this.lookup(msg);
      if (hit) {
        const res = this.fromEntry(msg, hit, limit);
        if (res) {
          this.counters.query(transport, q.qtype, hit.rcode, hit.zone);
          this.rrlName = hit.rrl;
          return res;
        }
      }
      const qname = msg.subarray(12, q.qnameEnd);
      const ans = resolve(this.zoneSet, qname, q.qtype, q.dnssecOk);
      const zone = ans.zone ? this.counters.zone(ans.zone.originText) : 0;
      this.counters.query(transport, q.qtype, ans.rcode, zone);
      const entry = this.fill(msg, ans, zone);
      this.rrlName = entry ? entry.rrl : this.rrl ? answerNameKey(ans, q.qhash, q.qtype) : 0;
      const res = entry ? this.fromEntry(msg, entry, limit) : null;
      if (res) return res;
      return this.encode(msg, ans, limit, transport);
    }
    if (q.qclass === CLASS.CH) {
      const qname = msg.subarray(12, q.qnameEnd);
      const ch = chaosAnswer(this.cfg, qname, q.qtype);
      this.counters.query(transport, q.qtype, ch.rcode, 0);
      this.rrlName = (q.qhash ^ (q.qtype << 16)) | 1;
      const ans: Answer = {
        rcode: ch.rcode,
        aa: false,
        answer: ch.answer,
        authority: [],
        additional: [],
        requiredAdditional: 0,
        zone: null,
        dnssec: false,
      };
      return this.encode(msg, ans, limit, transport);
    }
    this.counters.query(transport, q.qtype, RCODE.REFUSED, 0);
    return this.withOpt(msg, limit, RCODE.REFUSED);
  }

  /**
   * A request carrying TSIG (RFC 8945 §5.2, §5.3): verified first; a bad one gets NOTAUTH with the TSIG
   * error (BADKEY/BADSIG unsigned, BADTIME signed), a malformed one FORMERR; a good one is answered
   * as usual with room kept for the TSIG RR, and the response signed with the request's MAC.
   */
  private answerSigned(msg: Buffer, tcp: boolean, peer: string): Buffer | null {
    const q = this.q;
    const transport = tcp ? TRANSPORT_TCP : TRANSPORT_UDP;
    if (this.transfers && !tcp && (q.qtype === TYPE.IXFR || q.qtype === TYPE.AXFR) && q.opcode === 0) {
      // src/xfr verifies and signs its own answers.
      this.counters.query(transport, q.qtype, RCODE.NOERROR, 0);
      const limit = q.hasEdns ? Math.max(512, Math.min(q.ednsUdpSize, this.cfg.ednsUdpSize)) : 512;
      return this.transfers.udp(msg, peer, limit);
    }
    const v = tsigVerify(msg, this.cfg.tsigKeys ?? NO_KEYS);
    if (v.status !== 'ok') {
      const kind = tsigKindOf(q.opcode, q.qtype);
      this.counters.xfr.tsigFailure(v.status, kind);
      this.onTsigFailure?.(kind, v.status, v.record ? nameToText(v.record.keyName) : null, peer);
      const rcode = v.status === 'formerr' ? RCODE.FORMERR : RCODE.NOTAUTH;
      this.counters.query(transport, q.qtype, rcode, 0);
      const w = this.w;
      w.begin(v.stripped, q.questionEnd, 65535);
      if (q.hasEdns) w.writeOpt(this.cfg.ednsUdpSize, 0, q.dnssecOk, null);
      w.setCounts(0, 0, q.hasEdns ? 1 : 0);
      w.setFlags(q.flags, false, false, rcode);
      return tsigSignResponse(w.result(), v).message;
    }
    this.reserve = tsigReserve(v.key);
    this.tsig = v;
    let out: Buffer | null;
    try {
      out = this.answer(v.stripped, tcp, peer);
    } finally {
      this.reserve = 0;
      this.tsig = null;
    }
    return out ? tsigSignResponse(out, v).message : null;
  }

  private key(qtype: number, dnssecOk: boolean): number {
    // 30 bits, so the Map key is a small integer (Smi) rather than a boxed number.
    return (this.q.qhash ^ Math.imul(qtype + 1, 0x9e3779b1) ^ (dnssecOk ? 0x5bd1e995 : 0)) & 0x3fffffff;
  }

  private lookup(msg: Buffer): CacheEntry | null {
    const q = this.q;
    const i = this.key(q.qtype, q.dnssecOk) & (CACHE_SLOTS - 2);
    const a = this.cache[i];
    if (a !== undefined && this.matches(a, msg)) return a;
    const b = this.cache[i + 1];
    if (b !== undefined && this.matches(b, msg)) return b;
    return null;
  }

  private matches(e: CacheEntry, msg: Buffer): boolean {
    const q = this.q;
    const n = q.qnameEnd - 12;
    if (e.qtype !== q.qtype || e.dnssecOk !== q.dnssecOk || e.qname.length !== n) return false;
    const name = e.qname;
    for (let i = 0; i < n; i++) if (name[i] !== lower(msg[12 + i]!)) return false;
    return true;
  }

  /** Encodes the full answer (no size limit) and stores its sections in the cache. */
  private fill(msg: Buffer, ans: Answer, zone: number): CacheEntry | null {
    const q = this.q;
    const w = this.w;
    w.begin(msg, q.questionEnd, 65535);
    const an = this.writeSets(ans.answer, ans.dnssec);
    const ns = this.writeSets(ans.authority, ans.dnssec);
    const ar = this.writeSets(ans.additional, ans.dnssec);
    if (an < 0 || ns < 0 || ar < 0) return null;
    const qname = new Uint8Array(q.qnameEnd - 12);
    for (let i = 0; i < qname.length; i++) qname[i] = lower(msg[12 + i]!);
    const entry: CacheEntry = {
      qname,
      qtype: q.qtype,
      dnssecOk: q.dnssecOk,
      flagsAa: ans.aa,
      rcode: ans.rcode,
      an,
      ns,
      ar,
      body: Buffer.from(w.buf.subarray(q.questionEnd, w.pos)),
      zone,
      rrl: this.rrl ? answerNameKey(ans, q.qhash, q.qtype) : 0,
    };
    // The newer entry takes the first way; the one it displaces moves to the second.
    const i = this.key(q.qtype, q.dnssecOk) & (CACHE_SLOTS - 2);
    this.cache[i + 1] = this.cache[i];
    this.cache[i] = entry;
    return entry;
  }

  /** Builds the response from cached sections; null when it would not fit (the slow path truncates). */
  private fromEntry(msg: Buffer, e: CacheEntry, limit: number): Buffer | null {
    const q = this.q;
    const opt = q.hasEdns ? this.opts[q.dnssecOk ? 1 : 0]![q.nsidRequested && this.cfg.nsid ? 1 : 0]! : null;
    const total = q.questionEnd + e.body.length + (opt ? opt.length + this.cookieBytes : 0);
    if (total > limit) return null;
    const out = Buffer.allocUnsafe(total);
    // ID and question from the query (a few dozen bytes: a loop beats a native copy call).
    const qEnd = q.questionEnd;
    out[0] = msg[0]!;
    out[1] = msg[1]!;
    for (let i = 12; i < qEnd; i++) out[i] = msg[i]!;
    const flags = responseFlags(q.flags, e.flagsAa, false, e.rcode);
    out[2] = flags >> 8;
    out[3] = flags & 0xff;
    out[4] = 0;
    out[5] = 1;
    out[6] = e.an >> 8;
    out[7] = e.an & 0xff;
    out[8] = e.ns >> 8;
    out[9] = e.ns & 0xff;
    const ar = e.ar + (opt ? 1 : 0);
    out[10] = ar >> 8;
    out[11] = ar & 0xff;
    out.set(e.body, qEnd);
    if (opt) out.set(opt, qEnd + e.body.length);
    if (opt && this.cookieBytes) this.cookies!.appendTo(out, qEnd + e.body.length, total - this.cookieBytes);
    return out;
  }

  private writeSets(sets: RRset[], dnssec: boolean): number {
    let n = 0;
    for (const s of sets) {
      const c = this.writeSet(s, dnssec);
      if (c < 0) return -1;
      n += c;
    }
    return n;
  }

  /** One RRset and, for DO=1 answers from signed zones, its RRSIGs right after it; all or nothing. */
  private writeSet(set: RRset, dnssec: boolean): number {
    const w = this.w;
    const mark = w.pos;
    const c = w.writeRRset(set, rdataNames);
    if (c < 0 || !dnssec || !set.sigs || set.sigs.length === 0) return c;
    const sigs: WireRRset = {
      owner: set.owner,
      type: TYPE.RRSIG,
      class: set.class,
      ttl: set.ttl,
      rdatas: set.sigs,
    };
    const d = w.writeRRset(sigs, rdataNames);
    if (d < 0) {
      w.rollback(mark);
      return -1;
    }
    return c + d;
  }

  /**
   * The slow path with truncation (like Knot): answer and authority must fit whole, and so must the
   * required glue (RFC 9471); other additional RRsets are added while they fit. Otherwise TC=1 with
   * the question (and OPT) only.
   */
  private encode(msg: Buffer, ans: Answer, limit: number, transport: number): Buffer {
    const q = this.q;
    const w = this.w;
    const opt = q.hasEdns ? this.opts[q.dnssecOk ? 1 : 0]![q.nsidRequested && this.cfg.nsid ? 1 : 0]! : null;
    const room = limit - (opt ? opt.length + this.cookieBytes : 0);
    w.begin(msg, q.questionEnd, room);
    let tc = false;
    const an = this.writeSets(ans.answer, ans.dnssec);
    const ns = an < 0 ? -1 : this.writeSets(ans.authority, ans.dnssec);
    let ar = 0;
    if (an < 0 || ns < 0) tc = true;
    else {
      for (let i = 0; i < ans.additional.length; i++) {
        const c = this.writeSet(ans.additional[i]!, ans.dnssec);
        if (c < 0) {
          if (i < ans.requiredAdditional) {
            tc = true;
            break;
          }
          continue;
        }
        ar += c;
      }
    }
    if (tc) {
      this.counters.truncated[transport]! += 1;
      w.begin(msg, q.questionEnd, room);
    }
    if (opt) {
      w.buf.set(opt, w.pos);
      w.pos += opt.length;
      if (this.cookieBytes) w.pos = this.cookies!.appendTo(w.buf, w.pos - opt.length, w.pos);
    }
    w.setCounts(tc ? 0 : an, tc ? 0 : ns, (tc ? 0 : ar) + (opt ? 1 : 0));
    w.setFlags(q.flags, ans.aa, tc, ans.rcode);
    return w.result();
  }

  /** The question, an rcode (extended ones in the OPT), and OPT (and COOKIE) when the query had EDNS. */
  private withOpt(msg: Buffer, limit: number, rcode: number): Buffer {
    const q = this.q;
    const w = this.w;
    w.begin(msg, q.questionEnd, limit);
    const optAt = w.pos;
    if (q.hasEdns)
      w.writeOpt(this.cfg.ednsUdpSize, rcode >> 4, q.dnssecOk, q.nsidRequested ? this.cfg.nsid : null);
    if (q.hasEdns && this.cookieBytes && w.pos > optAt) w.pos = this.cookies!.appendTo(w.buf, optAt, w.pos);
    w.setCounts(0, 0, q.hasEdns ? 1 : 0);
    w.setFlags(q.flags, false, false, rcode);
    return w.result();
  }
}
