/**
 * popdns as a primary: AXFR (RFC 5936) and IXFR (RFC 1995) out, over TCP for every zone served (IXFR
 * over UDP too), to the clients `transfer.allow` lets in, each message TSIG-signed (RFC 8945 §5.3.1)
 * when the request was; the IXFR history kept from reloads; NOTIFY (RFC 1996) after every serial change.
 *
 * Streaming: a transfer walks the zone version it started with (reloads swap whole zones, never edit
 * one) and builds one message at a time, waiting for the socket to drain and yielding to the event
 * loop between messages, so a 1M-record AXFR never holds a second copy of the zone and queries keep
 * being answered beside it. AXFR (and AXFR-style IXFR) messages come from axfr.ts, which writes
 * records straight from the trie (no per-record objects); IXFR's few records go through `pack`.
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { CLASS, OPCODE, RCODE, TYPE, typeToText } from '../wire/constants.js';
import {
  MessageWriter,
  PARSE,
  parseQuery,
  QueryInfo,
  responseFlags,
  type WireRRset,
} from '../wire/message.js';
import { nameToText, readName } from '../wire/name.js';
import { rdataNames } from '../wire/rdata.js';
import {
  type TsigKey,
  type TsigKeyring,
  tsigMacSize,
  tsigSign,
  tsigSignResponse,
  tsigVerify,
  type TsigVerifyResult,
} from '../wire/tsig.js';
import type { Zone } from '../zone/zone.js';
import type { ZoneSet } from '../zone/zoneset.js';
import { AllowList, type TransferConfig } from './config.js';
import type { XfrCounters } from './counters.js';
import { type Changeset, IxfrHistory, JournalError } from './journal.js';
import { axfrMessages } from './axfr.js';
import { LogThrottle } from './throttle.js';
import { diffZones, soaRecord, type XfrRecord } from './zonedata.js';

/** A transfer claimed from a TCP connection: streams its messages through `send`, resolves when done. */
export type TransferJob = (send: (message: Buffer) => Promise<void>) => Promise<void>;

/** What the query path calls for AXFR/IXFR requests (the Handler and the TCP listener). */
export interface TransferHooks {
  /** A TCP message: a job when it is an AXFR/IXFR request (answered by streaming), else null. */
  tcp(msg: Buffer, peer: string): TransferJob | null;
  /** An AXFR/IXFR request over UDP: the one response (RFC 1995 §2: IXFR fits, or the SOA alone). */
  udp(msg: Buffer, peer: string, limit: number): Buffer;
}

export interface Logger {
  info(msg: string): void;
  error(msg: string): void;
}

export interface PrimaryOptions {
  tsigKeys: TsigKeyring;
  transfer: TransferConfig;
  dataDir: string;
  /** This process writes the IXFR history (one process only: the single server, or worker 0). */
  writer: boolean;
  /** IXFR history bound per zone, bytes. */
  historyBytes?: number;
  /** Bound of the shared IXFR response bodies kept in memory (all zones), bytes. */
  ixfrBodyBytes?: number;
}

/** Messages of a transfer stop growing past this many bytes (the next RRset starts a new one). */
const SOFT_MESSAGE_SIZE = 16 * 1024;

/**
 * Room kept at the end of every message of a shared IXFR body, for any client's TSIG RR: a key name of
 * up to 255 bytes, the longest algorithm name (hmac-sha512., 13), a 64-byte MAC and the fixed fields.
 */
const SHARED_TSIG_RESERVE = 512;
/** Default bound of the shared IXFR bodies in memory, bytes. */
const DEFAULT_IXFR_BODY_BYTES = 4 * 1024 * 1024;

/**
 * An IXFR response (RFC 1995 §4) for one (zone version, client serial, EDNS, DO), built once and
 * shared by every request for it until the zone changes. The messages are unsigned and carry the
 * header and question of the request that built them; each client gets a copy with its own ID,
 * flags and question (the same name, perhaps in another letter case: the same length), then its own
 * TSIG (RFC 8945 §5.3.1).
 */
interface IxfrBody {
  zone: Zone;
  messages: Buffer[];
  records: number;
  bytes: number;
  /** Until built: concurrent requests wait for the same build. */
  ready: Promise<void> | null;
  failed: Error | null;
}

/** RFC 1982 serial arithmetic: a is newer than b. */
export function serialNewer(a: number, b: number): boolean {
  return a !== b && (a - b) >>> 0 < 0x80000000;
}

/** Room a TSIG RR needs at the end of a message signed with `key` (BADTIME's Other Data included). */
export function tsigReserve(key: TsigKey | undefined): number {
  if (!key) return 0;
  return key.name.length + 2 + 10 + key.algorithm.length + 2 + 16 + tsigMacSize(key.algorithm) + 6;
}

/** One-record RRsets for a changeset's records. */
function recordSets(records: XfrRecord[]): WireRRset[] {
  return records.map((r) => ({
    owner: r.owner,
    type: r.type,
    class: r.class ?? CLASS.IN,
    ttl: r.ttl,
    rdatas: [r.rdata],
  }));
}

/**
 * Packs RRsets into messages: the question in the first only, AA set, answer section only, OPT when
 * the request had EDNS. Yields each message unsigned (the caller signs) and `null` where the source
 * paused (a chance to yield to the event loop).
 */
function* pack(
  query: Buffer,
  q: QueryInfo,
  sets: Iterable<WireRRset | null>,
  limit: number,
  counts: { records: number },
): Generator<Buffer | null, void, void> {
  const w = new MessageWriter();
  const optLen = q.hasEdns ? 11 : 0;
  let first = true;
  let count = 0;
  const start = (): void => {
    w.begin(query, first ? q.questionEnd : 12, limit - optLen);
    count = 0;
  };
  const finish = (): Buffer => {
    if (q.hasEdns) {
      w.limit += optLen;
      w.writeOpt(1232, 0, q.dnssecOk, null);
    }
    w.setCounts(count, 0, q.hasEdns ? 1 : 0);
    w.setFlags(q.flags, true, false, RCODE.NOERROR);
    first = false;
    counts.records += count;
    return w.result();
  };
  start();
  for (const set of sets) {
    if (set === null) {
      yield null;
      continue;
    }
    let c = w.writeRRset(set, rdataNames);
    if (c < 0 && count > 0) {
      yield finish();
      start();
      c = w.writeRRset(set, rdataNames);
    }
    if (c < 0) {
      // An RRset bigger than a message: one record at a time.
      for (const rd of set.rdatas) {
        const one = { ...set, rdatas: [rd] };
        let c1 = w.writeRRset(one, rdataNames);
        if (c1 < 0 && count > 0) {
          yield finish();
          start();
          c1 = w.writeRRset(one, rdataNames);
        }
        if (c1 < 0)
          throw new Error(
            `a ${typeToText(set.type)} record of ${nameToText(set.owner)} does not fit a message`,
          );
        count += c1;
      }
    } else count += c;
    if (w.pos >= SOFT_MESSAGE_SIZE) {
      yield finish();
      start();
    }
  }
  if (count > 0 || first) yield finish();
}

/** IXFR's incremental form (RFC 1995 §4): new SOA, then per changeset old SOA, deletions, new SOA, additions; new SOA. */
function* ixfrSets(zone: Zone, chain: Changeset[]): Generator<WireRRset, void, void> {
  const soa: WireRRset = {
    owner: zone.origin,
    type: TYPE.SOA,
    class: CLASS.IN,
    ttl: zone.soa.ttl,
    rdatas: zone.soa.rdatas,
  };
  yield soa;
  for (const cs of chain) {
    yield* recordSets(cs.removed);
    yield* recordSets(cs.added);
  }
  yield soa;
}

function sleep0(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** While the event loop has no idle time (queries waiting), transfers together take at most this share. */
const TRANSFER_SHARE = 0.2;
/**
 * What a transfer message really costs the process, as a multiple of what `pace` is told (building,
 * signing, the synchronous part of the write). The rest runs outside those measurements: the write
 * libuv completes later, the kernel's TCP send, collecting the message buffers. Measured on loopback
 * with dnsperf and three 1M AXFRs (bench/xfr.js `queries`, bench/RESULTS.md, 2026-11-30 17:31Z):
 * charging only the measured part let the transfers take ~45% of a busy process instead of 20%,
 * about 3.3× what they were charged; with this factor, queries kept 89% of their rate.
 */
const UNCHARGED = 3;
/** Above this event-loop utilization since the last step, the loop counts as busy. */
const BUSY = 0.9;
/** Less work than this (ms) by others between two transfer steps is just the loop's own overhead. */
const OTHERS_MIN_MS = 0.2;
let eluMark = performance.eventLoopUtilization();
/** Until when transfers owe the busy loop time (ms, performance.now()), shared by all transfers. */
let paceUntil = 0;

/**
 * Called after each transfer message, `spentMs` being what building and signing it took. An idle
 * loop (no queries waiting): the next message follows at once (setImmediate: I/O first). A busy
 * loop: the transfers wait (spentMs × UNCHARGED × 4 for a 20% share, summed over every transfer in
 * flight) so answering keeps most of the process; a lone AXFR on an idle server runs at full speed.
 */
function pace(spentMs: number): Promise<void> {
  const now = performance.now();
  const elu = performance.eventLoopUtilization(eluMark);
  eluMark = performance.eventLoopUtilization();
  // The loop's work since the last step that was not this transfer's own (queries, other transfers).
  const others = Math.max(0, elu.active - spentMs);
  if (others < OTHERS_MIN_MS || others / (others + elu.idle) < BUSY) {
    paceUntil = now;
    return sleep0();
  }
  paceUntil = Math.max(paceUntil, now) + spentMs * UNCHARGED * (1 / TRANSFER_SHARE - 1);
  const wait = paceUntil - now;
  return wait >= 1 ? new Promise((resolve) => setTimeout(resolve, wait)) : sleep0();
}

/** Runs a generator in slices of a few ms, letting I/O through between them. */
async function stepwise<T>(steps: Generator<null, T, void>, sliceMs = 5): Promise<T> {
  let t = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - t >= sliceMs) {
      await sleep0();
      t = performance.now();
    }
  }
}

interface Request {
  q: QueryInfo;
  /** The message without its TSIG RR. */
  msg: Buffer;
  tsig: TsigVerifyResult;
  zoneName: string;
  type: 'AXFR' | 'IXFR';
  /** The zone asked for (set once allowed and found). */
  zone: Zone;
}

export class XfrPrimary implements TransferHooks {
  readonly history: IxfrHistory;
  private readonly allow: AllowList;
  /** Called after a zone's serial changed and its changeset is on disk (NOTIFY goes out from here). */
  onSerialChange: ((zone: Zone) => void) | null = null;
  private readonly chains = new Map<string, Promise<void>>();
  /** Refused transfer requests (anyone can send them, over UDP spoofed): one line a minute per reason. */
  private readonly refusals = new LogThrottle();
  /** Shared IXFR bodies by `zone|from|edns|do`, oldest first (evicted past ixfrBodyBytes). */
  private readonly bodies = new Map<string, IxfrBody>();
  private bodyBytes = 0;
  /** Shared IXFR bodies built so far (each then served to every client asking for the same pair). */
  ixfrBodiesBuilt = 0;

  constructor(
    private readonly opts: PrimaryOptions,
    private readonly zones: () => ZoneSet,
    private readonly counters: XfrCounters,
    private readonly log: Logger,
  ) {
    this.history = new IxfrHistory(join(opts.dataDir, 'ixfr'), opts.historyBytes);
    this.allow = new AllowList(opts.transfer.allow);
  }

  private logRefusal(reason: string, msg: string): void {
    const line = this.refusals.line(reason, msg);
    if (line) this.log.error(line);
  }

  /** Cheap test: a standard query for AXFR or IXFR (question type at its fixed place). */
  private static isTransfer(msg: Buffer): boolean {
    if (msg.length < 17 || msg[2]! & 0x80 || ((msg[2]! >> 3) & 0xf) !== OPCODE.QUERY) return false;
    let p = 12;
    while (p < msg.length && msg[p] !== 0) {
      if (msg[p]! > 63) return false;
      p += msg[p]! + 1;
    }
    if (p + 3 > msg.length) return false;
    const t = (msg[p + 1]! << 8) | msg[p + 2]!;
    return t === TYPE.AXFR || t === TYPE.IXFR;
  }

  /**
   * Verifies TSIG, then checks transfer.allow and the zone. Returns either the request to serve or
   * the error response to send (already signed as RFC 8945 §5.3.2 says).
   */
  private prepare(msg: Buffer, peer: string, transport: 'tcp' | 'udp'): Request | Buffer {
    const q = new QueryInfo();
    const st = parseQuery(msg, q);
    if (st !== PARSE.OK) return this.error(msg, q, RCODE.FORMERR, null);
    const type = q.qtype === TYPE.AXFR ? 'AXFR' : 'IXFR';
    let zoneName: string;
    let qname: Uint8Array;
    try {
      qname = readName(msg, 12).name;
      zoneName = nameToText(qname);
    } catch {
      return this.error(msg, q, RCODE.FORMERR, null);
    }
    let tsig: TsigVerifyResult = { status: 'unsigned', error: 0, origId: q.id, stripped: msg };
    if (q.tsigAt >= 0) {
      tsig = tsigVerify(msg, this.opts.tsigKeys);
      if (tsig.status !== 'ok') {
        this.counters.tsigFailure(tsig.status, 'xfr');
        this.counters.transfer(
          type === 'AXFR' ? 'axfr' : transport === 'udp' ? 'ixfr-udp' : 'ixfr',
          'notauth',
        );
        const keyName = tsig.record ? nameToText(tsig.record.keyName) : '?';
        this.logRefusal(
          `tsig ${tsig.status}`,
          `xfr refused: zone ${zoneName} peer ${peer} type ${type} key ${keyName}: TSIG ${tsig.status} [POPDNS_W_XFR_TSIG]`,
        );
        return this.error(msg, q, tsig.status === 'formerr' ? RCODE.FORMERR : RCODE.NOTAUTH, tsig);
      }
    }
    const base = { q, msg: tsig.stripped, tsig, zoneName, type } as Request;
    const keyName = tsig.key?.name ?? null;
    const counterType = type === 'AXFR' ? 'axfr' : transport === 'udp' ? 'ixfr-udp' : 'ixfr';
    if (transport === 'udp' && type === 'AXFR') {
      // AXFR over UDP is not a thing (RFC 5936 §4.2).
      this.counters.transfer(counterType, 'refused');
      return this.error(tsig.stripped, q, RCODE.REFUSED, tsig);
    }
    if (!this.allow.allows(peer, keyName)) {
      this.counters.transfer(counterType, 'refused');
      this.logRefusal(
        'refused',
        `xfr refused: zone ${zoneName} peer ${peer} type ${type}${keyName ? ` key ${keyName}` : ' unsigned'}: not allowed by transfer.allow [POPDNS_W_XFR_REFUSED]`,
      );
      return this.error(tsig.stripped, q, RCODE.REFUSED, tsig);
    }
    const served = q.qclass === CLASS.IN ? this.zones().get(qname) : null;
    if (served?.servfail) {
      // A secondary zone not loaded yet, or expired: no data to give (RFC 5936 §2.2.1: SERVFAIL).
      this.counters.transfer(counterType, 'failure');
      return this.error(tsig.stripped, q, RCODE.SERVFAIL, tsig);
    }
    if (!served) {
      this.counters.transfer(counterType, 'notfound');
      this.logRefusal(
        'notauth',
        `xfr refused: zone ${zoneName} peer ${peer} type ${type}: not a zone served here [POPDNS_W_XFR_NOTAUTH]`,
      );
      return this.error(tsig.stripped, q, RCODE.NOTAUTH, tsig);
    }
    base.zone = served;
    return base;
  }

  /** A header-and-question error response, signed per RFC 8945 §5.3.2 when the request carried TSIG. */
  private error(msg: Buffer, q: QueryInfo, rcode: number, tsig: TsigVerifyResult | null): Buffer {
    const w = new MessageWriter();
    const qEnd = q.questionEnd > 12 ? q.questionEnd : 12;
    w.begin(msg, qEnd, 65535);
    w.setCounts(0, 0, 0);
    w.setFlags(q.flags, false, false, rcode);
    const out = w.result();
    if (q.questionEnd <= 12) out.writeUInt16BE(0, 4);
    return tsig ? tsigSignResponse(out, tsig).message : out;
  }

  /** The client's serial from the SOA in an IXFR request's authority section (RFC 1995 §3), or null. */
  private static clientSerial(msg: Buffer, q: QueryInfo): number | null {
    const ns = msg.readUInt16BE(8);
    let p = q.questionEnd;
    for (let i = 0; i < ns; i++) {
      const { next } = readName(msg, p);
      const type = msg.readUInt16BE(next);
      const rdlen = msg.readUInt16BE(next + 8);
      const rd = next + 10;
      if (type === TYPE.SOA && rdlen >= 22) return msg.readUInt32BE(rd + rdlen - 20);
      p = rd + rdlen;
    }
    return null;
  }

  /** What to send for a request: the RRsets (null: the whole zone, AXFR) and a description for the log. */
  private plan(
    req: Request,
    zone: Zone,
  ): {
    sets: Iterable<WireRRset | null> | null;
    style: string;
    from: number | null;
    fallback: boolean;
    chain?: Changeset[];
  } {
    if (req.type === 'AXFR') return { sets: null, style: 'AXFR', from: null, fallback: false };
    const from = XfrPrimary.clientSerial(req.msg, req.q);
    if (from === null) return { sets: null, style: 'AXFR-style IXFR', from, fallback: true };
    if (!serialNewer(zone.serial, from)) {
      // Up to date (or ahead): the current SOA alone (RFC 1995 §2).
      const soa = {
        owner: zone.origin,
        type: TYPE.SOA,
        class: CLASS.IN,
        ttl: zone.soa.ttl,
        rdatas: zone.soa.rdatas,
      };
      return { sets: [soa], style: 'IXFR (up to date)', from, fallback: false };
    }
    const chain = this.history.readChangesets(zone.originText, from);
    if (chain && chain.length > 0 && chain.at(-1)!.toSerial === zone.serial) {
      const records = chain.reduce((n, c) => n + c.removed.length + c.added.length, 0);
      if (records < zone.recordCount)
        return { sets: ixfrSets(zone, chain), style: 'IXFR', from, fallback: false, chain };
    }
    return { sets: null, style: 'AXFR-style IXFR', from, fallback: true };
  }

  /** The cache key of an IXFR body: zone, client serial, EDNS and DO (what the bytes depend on). */
  private static bodyKey(zone: Zone, from: number, q: QueryInfo): string {
    return `${zone.originText.toLowerCase()}|${from}|${q.hasEdns ? 1 : 0}|${q.dnssecOk ? 1 : 0}`;
  }

  /** A shared body for this request when one is built or being built for the zone version served. */
  private cachedBody(req: Request, zone: Zone): IxfrBody | null {
    if (req.type !== 'IXFR') return null;
    let from: number | null;
    try {
      from = XfrPrimary.clientSerial(req.msg, req.q);
    } catch {
      return null;
    }
    if (from === null || !serialNewer(zone.serial, from)) return null;
    const k = XfrPrimary.bodyKey(zone, from, req.q);
    const b = this.bodies.get(k);
    if (!b) return null;
    if (b.zone !== zone || b.failed) {
      this.dropBody(k, b);
      return null;
    }
    return b;
  }

  private dropBody(k: string, b: IxfrBody): void {
    if (this.bodies.get(k) === b) {
      this.bodies.delete(k);
      // A body still being built is not counted yet (it is counted when done, if still kept).
      if (b.ready === null && b.failed === null) this.bodyBytes -= b.bytes;
    }
  }

  /**
   * Starts building the shared body for an incremental IXFR (when its changesets fit the memory bound),
   * in slices of a few ms; concurrent requests for the same pair wait for it. Null: too big to keep,
   * the caller streams it itself.
   */
  private buildBody(req: Request, zone: Zone, from: number, chain: Changeset[]): IxfrBody | null {
    const limit = this.opts.ixfrBodyBytes ?? DEFAULT_IXFR_BODY_BYTES;
    const estimate = chain.reduce((n, c) => n + c.bytes, 0);
    if (estimate > limit / 2) return null;
    const k = XfrPrimary.bodyKey(zone, from, req.q);
    const b: IxfrBody = { zone, messages: [], records: 0, bytes: 0, ready: null, failed: null };
    this.ixfrBodiesBuilt++;
    const counts = { records: 0 };
    const steps = pack(req.msg, req.q, ixfrSets(zone, chain), 65535 - SHARED_TSIG_RESERVE, counts);
    const build = function* (): Generator<null, void, void> {
      for (const m of steps) {
        if (m === null) {
          yield null;
          continue;
        }
        b.messages.push(m);
        b.bytes += m.length;
        yield null;
      }
    };
    b.ready = stepwise(build()).then(
      () => {
        b.records = counts.records;
        b.ready = null;
        if (this.bodies.get(k) !== b) return; // dropped while built (the zone changed): not kept
        this.bodyBytes += b.bytes;
        // Oldest first out, until the bound holds (a zone's stale bodies go first in practice).
        for (const [ok, ob] of this.bodies) {
          if (this.bodyBytes <= limit || ob === b) break;
          this.dropBody(ok, ob);
        }
      },
      (e: unknown) => {
        b.failed = e as Error;
        b.ready = null;
        if (this.bodies.get(k) === b) this.bodies.delete(k);
      },
    );
    const old = this.bodies.get(k);
    if (old) this.dropBody(k, old);
    this.bodies.set(k, b);
    return b;
  }

  /**
   * A shared body's messages for one client: its ID and flags in the header, its question in the
   * first message (RFC 1995 §4's sequence is the same for every client asking from the same serial).
   */
  private static *forClient(b: IxfrBody, req: Request): Generator<Buffer, void, void> {
    const flags = responseFlags(req.q.flags, true, false, RCODE.NOERROR);
    const qEnd = req.q.questionEnd;
    for (let i = 0; i < b.messages.length; i++) {
      const src = b.messages[i]!;
      const m = Buffer.allocUnsafe(src.length);
      src.copy(m, 0);
      m.writeUInt16BE(req.q.id, 0);
      m.writeUInt16BE(flags, 2);
      if (i === 0) req.msg.copy(m, 12, 12, qEnd);
      yield m;
    }
  }

  tcp(msg: Buffer, peer: string): TransferJob | null {
    if (!XfrPrimary.isTransfer(msg)) return null;
    return async (send) => {
      const req = this.prepare(msg, peer, 'tcp');
      if (Buffer.isBuffer(req)) return send(req);
      const zone = req.zone;
      const t0 = performance.now();
      const type = req.type === 'AXFR' ? 'axfr' : 'ixfr';
      // An incremental IXFR another client asked for already (or is being built): shared.
      let body = this.cachedBody(req, zone);
      let p: ReturnType<XfrPrimary['plan']>;
      if (body) {
        p = {
          sets: [],
          style: 'IXFR',
          from: XfrPrimary.clientSerial(req.msg, req.q),
          fallback: false,
        };
      } else {
        try {
          p = this.plan(req, zone);
        } catch {
          this.counters.transfer(type, 'failure');
          return send(this.error(req.msg, req.q, RCODE.FORMERR, req.tsig));
        }
        if (p.chain && p.from !== null) body = this.buildBody(req, zone, p.from, p.chain);
      }
      if (p.fallback) this.counters.fallback++;
      const key = req.tsig.status === 'ok' ? req.tsig.key : undefined;
      const counts = { records: 0 };
      let bytes = 0;
      let messages = 0;
      let mac = req.tsig.mac;
      try {
        if (body?.ready) await body.ready;
        if (body?.failed) throw body.failed;
        const limit = 65535 - tsigReserve(key);
        if (body) counts.records = body.records;
        const stream = body
          ? XfrPrimary.forClient(body, req)
          : p.sets === null
            ? axfrMessages(zone, req.msg, req.q, limit, counts)
            : pack(req.msg, req.q, p.sets, limit, counts);
        // One message ahead: the last one goes out and the transfer is logged without another turn
        // of the event loop. What a message owes the pacing is its building and signing plus the
        // previous one's write (on loopback the kernel delivers to the client inside that write).
        let b0 = performance.now();
        let r = stream.next();
        let owed = performance.now() - b0;
        while (!r.done) {
          const m = r.value;
          if (m === null) {
            await sleep0();
            b0 = performance.now();
            r = stream.next();
            owed += performance.now() - b0;
            continue;
          }
          let out = m;
          if (key) {
            const s0 = performance.now();
            const s = tsigSign(
              m,
              key,
              messages === 0 ? { requestMac: mac! } : { priorMac: mac!, timersOnly: true },
            );
            out = s.message;
            mac = s.mac;
            owed += performance.now() - s0;
          }
          // Paced before sending (not after), so the last message goes out at once.
          if (messages > 0) await pace(owed);
          const w0 = performance.now();
          const sent = send(out);
          owed = performance.now() - w0;
          await sent;
          bytes += out.length;
          messages++;
          b0 = performance.now();
          r = stream.next();
          owed += performance.now() - b0;
          if (!r.done) await sleep0();
        }
      } catch (e) {
        this.counters.transfer(type, 'failure', bytes);
        this.log.error(
          `xfr failed: zone ${zone.originText} peer ${peer} type ${p.style} serial ${zone.serial}: ${(e as Error).message} [POPDNS_E_XFR_OUT]`,
        );
        return;
      }
      this.counters.transfer(type, 'success', bytes);
      const secs = (performance.now() - t0) / 1000;
      this.log.info(
        `xfr out: zone ${zone.originText} peer ${peer} type ${p.style} serial ${p.from ?? '-'} → ${zone.serial} records ${counts.records} messages ${messages} bytes ${bytes} seconds ${secs.toFixed(3)}${key ? ` key ${key.name}` : ''}`,
      );
    };
  }

  udp(msg: Buffer, peer: string, limit: number): Buffer {
    const req = this.prepare(msg, peer, 'udp');
    if (Buffer.isBuffer(req)) return req;
    const zone = req.zone;
    const key = req.tsig.status === 'ok' ? req.tsig.key : undefined;
    const room = limit - tsigReserve(key);
    let p: ReturnType<XfrPrimary['plan']>;
    try {
      p = this.plan(req, zone);
    } catch {
      return this.error(req.msg, req.q, RCODE.FORMERR, req.tsig);
    }
    let out: Buffer | null = null;
    const counts = { records: 0 };
    const body = p.chain ? this.cachedBody(req, zone) : null;
    if (body && !body.ready && body.messages.length === 1 && body.messages[0]!.length <= room) {
      out = XfrPrimary.forClient(body, req).next().value ?? null;
      counts.records = body.records;
    } else if (!p.fallback && p.sets !== null) {
      const msgs: Buffer[] = [];
      for (const m of pack(req.msg, req.q, p.sets, room, counts)) {
        if (m) msgs.push(m);
        if (msgs.length > 1) break;
      }
      if (msgs.length === 1) out = msgs[0]!;
    }
    const soaOnly = !out;
    if (!out) {
      // Too big for UDP (or the whole zone): the SOA alone, so the client retries over TCP (RFC 1995 §2).
      const soa = {
        owner: zone.origin,
        type: TYPE.SOA,
        class: CLASS.IN,
        ttl: zone.soa.ttl,
        rdatas: zone.soa.rdatas,
      };
      out = [...pack(req.msg, req.q, [soa], room, counts)][0]!;
    }
    const signed = key ? tsigSign(out, key, { requestMac: req.tsig.mac! }).message : out;
    this.counters.transfer('ixfr-udp', 'success', signed.length);
    const sent = soaOnly ? `${p.style} too big: SOA only` : p.style;
    if (soaOnly) counts.records = 1;
    this.log.info(
      `xfr out: zone ${zone.originText} peer ${peer} type ${sent} over UDP serial ${p.from ?? '-'} → ${zone.serial} records ${counts.records} messages 1 bytes ${signed.length} seconds 0.000${key ? ` key ${key.name}` : ''}`,
    );
    return signed;
  }

  /**
   * A zone was (re)loaded: `prev` is the version served until now (null at first load). The writer
   * computes the changeset (stepwise, queries go on meanwhile), appends it to the history, and then
   * calls onSerialChange so NOTIFYs go out. Changes of one zone are handled in order.
   */
  zoneChanged(prev: Zone | null, next: Zone): void {
    const k = next.originText.toLowerCase();
    // The shared IXFR bodies of the version served until now are of no use any more.
    for (const [bk, b] of this.bodies) if (b.zone.originText.toLowerCase() === k) this.dropBody(bk, b);
    const run = async (): Promise<void> => {
      // History only where someone may ask for IXFR: a server without transfer.allow keeps none.
      if (this.opts.writer && this.opts.transfer.allow.length > 0) await this.record(prev, next);
      if (!prev || prev.serial !== next.serial) this.onSerialChange?.(next);
    };
    const p = (this.chains.get(k) ?? Promise.resolve()).then(run).catch((e: unknown) => {
      this.log.error(`IXFR history of ${next.originText}: ${(e as Error).message} [POPDNS_E_JOURNAL]`);
    });
    this.chains.set(k, p);
  }

  /** Waits until every pending zone change is recorded (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }

  private async record(prev: Zone | null, next: Zone): Promise<void> {
    const h = this.history;
    const name = next.originText;
    if (!prev) {
      // A history that does not end at the version now served is of no use: start over.
      if (h.lastSerial(name) !== null && h.lastSerial(name) !== next.serial) h.reset(name);
      else h.repair(name);
      return;
    }
    if (prev.serial === next.serial) return;
    if (!serialNewer(next.serial, prev.serial)) {
      this.log.error(
        `zone ${name} serial went from ${prev.serial} back to ${next.serial}: IXFR history reset, secondaries need a new AXFR [POPDNS_W_SERIAL_BACKWARDS]`,
      );
      h.reset(name);
      return;
    }
    const t0 = performance.now();
    const diff = await stepwise(diffZones(prev, next, Math.max(16, Math.floor(next.recordCount / 2))));
    if (!diff) {
      h.reset(name);
      this.log.info(
        `zone ${name} serial ${prev.serial} → ${next.serial}: changed too much for IXFR; history reset (AXFR-style IXFR)`,
      );
      return;
    }
    try {
      h.appendChangeset(
        name,
        prev.serial,
        next.serial,
        [soaRecord(prev), ...diff.removed],
        [soaRecord(next), ...diff.added],
      );
    } catch (e) {
      if (e instanceof JournalError) {
        h.reset(name);
        throw e;
      }
      throw e;
    }
    this.log.info(
      `zone ${name} serial ${prev.serial} → ${next.serial}: changeset ${diff.removed.length} removed, ${diff.added.length} added, in the IXFR history (${((performance.now() - t0) / 1000).toFixed(3)} s)`,
    );
  }
}
