/**
 * Zone transfer requests from the secondary's side: the SOA query, IXFR (RFC 1995) and AXFR
 * (RFC 5936) over TCP, each TSIG-signed when the zone has a key, and the response stream read
 * record by record into either a zone being built (xfr/intake.ts) or a list of differences. Nothing
 * here touches the served zones.
 */
import { randomInt } from 'node:crypto';
import { CLASS, OPCODE, RCODE, TYPE, rcodeToText } from '../wire/constants.js';
import { type Name, nameEquals, nameToText } from '../wire/name.js';
import { slabCopy } from '../wire/bytes.js';
import {
  buildMessage,
  readMessage,
  serialGt,
  soaSerial,
  WireFormatError,
  type WireRecord,
} from '../wire/records.js';
import { readTransferMessage, type StreamHead } from '../wire/recordstream.js';
import { signedExchange, type XfrKey } from './auth.js';
import { formatPeer, type Peer, tcpExchange } from './client.js';

/** Where a whole zone's records go as they arrive (xfr/intake.ts ZoneIntake builds the zone). */
export interface FullZoneSink {
  /** One record, in transfer order. `owner` and `rdata` are scratch views: copy what is kept. */
  add(owner: Name, type: number, klass: number, ttl: number, rdata: Uint8Array): void;
}

/** One IXFR difference sequence (RFC 1995 §4): from `fromSoa` to `toSoa`, SOAs not in the lists. */
export interface XfrDiff {
  fromSoa: WireRecord;
  toSoa: WireRecord;
  deleted: WireRecord[];
  added: WireRecord[];
}

export type XfrResult<S extends FullZoneSink = FullZoneSink> =
  /** The primary's serial is not newer than ours: nothing to do. */
  | { kind: 'uptodate'; serial: number; bytes: number; messages: number }
  /**
   * A whole zone (AXFR, or an AXFR-style IXFR answer): every record went into `sink` as it arrived,
   * the opening SOA first (the closing one is not repeated); `records` counts them.
   */
  | { kind: 'full'; serial: number; sink: S; records: number; bytes: number; messages: number }
  /** Differences to apply in order to the version with our serial. */
  | { kind: 'incremental'; serial: number; diffs: XfrDiff[]; bytes: number; messages: number };

/**
 * A transfer or query that did not work. `rcode` is set when the primary answered with an error
 * (REFUSED, NOTAUTH, NOTIMP, …), so the caller can fall back from IXFR to AXFR.
 */
export class XfrError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly rcode?: number,
  ) {
    super(`${message} [${code}]`);
  }
}

function request(zone: Name, qtype: number, authority: WireRecord[] = []): { id: number; msg: Buffer } {
  const id = randomInt(0, 65536);
  return {
    id,
    msg: buildMessage({
      id,
      flags: OPCODE.QUERY << 11,
      question: { name: zone, type: qtype, class: CLASS.IN },
      authority,
    }),
  };
}

/** Checks a response message's header and question: ID, QR, rcode, question (RFC 5936 §2.2.1), TC. */
function checkHead(m: StreamHead, id: number, zone: Name, qtype: number, first: boolean): void {
  if (m.id !== id || !m.qr)
    throw new XfrError('response does not match the request (ID or QR)', 'POPDNS_E_XFR_MALFORMED');
  if (m.rcode !== RCODE.NOERROR) {
    throw new XfrError(`the primary answered ${rcodeToText(m.rcode)}`, 'POPDNS_E_XFR_REFUSED', m.rcode);
  }
  // RFC 5936 §2.2.1: the question may be left out of every message but the first.
  if (first || m.question.length > 0) {
    const q = m.question[0];
    if (!q || m.question.length !== 1 || q.type !== qtype || !nameEquals(q.name, zone))
      throw new XfrError('response question does not match the request', 'POPDNS_E_XFR_MALFORMED');
  }
  if (m.tc) throw new XfrError('truncated response over TCP', 'POPDNS_E_XFR_MALFORMED');
}

export interface XfrRequestOptions {
  key: XfrKey | null;
  idleMs?: number;
  totalMs?: number;
}

/** Asks `peer` for the zone's SOA over TCP (signed with the key). Resolves with the SOA record. */
export async function querySoa(peer: Peer, zone: Name, o: XfrRequestOptions): Promise<WireRecord> {
  const { id, msg } = request(zone, TYPE.SOA);
  const ex = signedExchange(msg, o.key);
  let soa: WireRecord | null = null;
  await tcpExchange(
    peer,
    ex.message,
    (raw) => {
      const c = ex.check(raw);
      if (!c.ok) throw new XfrError(c.error ?? 'TSIG check failed', 'POPDNS_E_TSIG');
      const m = readMessage(c.stripped);
      if (m.id !== id || !m.qr)
        throw new XfrError('SOA response does not match the request', 'POPDNS_E_XFR_MALFORMED');
      if (m.rcode !== RCODE.NOERROR)
        throw new XfrError(`SOA query answered ${rcodeToText(m.rcode)}`, 'POPDNS_E_XFR_REFUSED', m.rcode);
      if (!m.aa) throw new XfrError('SOA answer is not authoritative (AA=0)', 'POPDNS_E_XFR_NOT_AUTH');
      soa = m.answer.find((r) => r.type === TYPE.SOA && nameEquals(r.owner, zone)) ?? null;
      if (!soa) throw new XfrError('SOA answer holds no SOA for the zone', 'POPDNS_E_XFR_MALFORMED');
      return true;
    },
    { idleMs: o.idleMs ?? 5000, totalMs: o.totalMs ?? 10_000 },
  );
  return soa!;
}

/** A record the transfer keeps (SOAs, IXFR differences): owner and RDATA copied out of the scratch. */
function own(owner: Name, type: number, klass: number, ttl: number, rdata: Uint8Array): WireRecord {
  return { owner: owner.slice(), type, class: klass, ttl, rdata: slabCopy(rdata) };
}

/**
 * Transfers the zone from `peer`: IXFR from `current` (our SOA) when given, else AXFR. Reads the
 * response stream as RFC 1995 §4 / RFC 5936 §2.2 describe: a single SOA not newer than ours = up to
 * date; SOA, SOA, … = incremental; SOA, records …, SOA = a whole zone, whose records go into a sink
 * made by `newSink` as each message arrives (no list of them is kept here). Every message's TSIG is
 * checked before its records are read (RFC 8945 §5.3.1). Rejects with XfrError on anything malformed,
 * incomplete or refused; the sink then holds part of a zone and must be dropped.
 */
export async function transfer<S extends FullZoneSink>(
  peer: Peer,
  zone: Name,
  current: WireRecord | null,
  o: XfrRequestOptions,
  newSink: () => S,
): Promise<XfrResult<S>> {
  const qtype = current ? TYPE.IXFR : TYPE.AXFR;
  const { id, msg } = request(zone, qtype, current ? [current] : []);
  const ex = signedExchange(msg, o.key);
  const ourSerial = current ? soaSerial(current.rdata) : null;
  const label = `${nameToText(zone)} from ${formatPeer(peer)}`;

  let first: WireRecord | null = null;
  let newSerial = 0;
  /** second: after the first SOA; full: AXFR body; del/add: inside an IXFR sequence. */
  let state = 'start' as 'start' | 'second' | 'full' | 'del' | 'add' | 'done';
  let sink: S | null = null;
  let records = 0;
  const diffs: XfrDiff[] = [];
  let diff: XfrDiff | null = null;
  let messages = 0;
  let uptodate = false;
  let answers = 0;

  const toSink = (owner: Name, type: number, klass: number, ttl: number, rdata: Uint8Array): void => {
    records++;
    sink!.add(owner, type, klass, ttl, rdata);
  };

  const take = (owner: Name, type: number, klass: number, ttl: number, rdata: Uint8Array): void => {
    const isSoa = type === TYPE.SOA;
    if (isSoa && !nameEquals(owner, zone))
      throw new XfrError(`${label}: SOA for another zone in the transfer`, 'POPDNS_E_XFR_MALFORMED');
    switch (state) {
      case 'full':
        if (isSoa) {
          if (soaSerial(rdata) !== newSerial)
            throw new XfrError(
              `${label}: the closing SOA's serial differs from the opening one`,
              'POPDNS_E_XFR_MALFORMED',
            );
          state = 'done';
          return;
        }
        toSink(owner, type, klass, ttl, rdata);
        return;
      case 'start':
        if (!isSoa)
          throw new XfrError(`${label}: the transfer does not start with the SOA`, 'POPDNS_E_XFR_MALFORMED');
        first = own(owner, type, klass, ttl, rdata);
        newSerial = soaSerial(first.rdata) ?? 0;
        state = 'second';
        return;
      case 'second': {
        if (isSoa && qtype === TYPE.IXFR) {
          const r = own(owner, type, klass, ttl, rdata);
          diff = { fromSoa: r, toSoa: r, deleted: [], added: [] };
          state = 'del';
          return;
        }
        // A whole zone: the opening SOA is its first record.
        sink = newSink();
        const f = first!;
        toSink(f.owner, f.type, f.class, f.ttl, f.rdata);
        if (isSoa) {
          // AXFR of a zone that is only its SOA: not a valid zone, the builder will say so.
          state = 'done';
          return;
        }
        toSink(owner, type, klass, ttl, rdata);
        state = 'full';
        return;
      }
      case 'del':
        if (isSoa) {
          diff!.toSoa = own(owner, type, klass, ttl, rdata);
          state = 'add';
          return;
        }
        diff!.deleted.push(own(owner, type, klass, ttl, rdata));
        return;
      case 'add':
        if (isSoa) {
          diffs.push(diff!);
          if (soaSerial(rdata) === newSerial) {
            state = 'done';
            return;
          }
          const r = own(owner, type, klass, ttl, rdata);
          diff = { fromSoa: r, toSoa: r, deleted: [], added: [] };
          state = 'del';
          return;
        }
        diff!.added.push(own(owner, type, klass, ttl, rdata));
        return;
      case 'done':
        throw new XfrError(`${label}: records after the closing SOA`, 'POPDNS_E_XFR_MALFORMED');
    }
  };

  const onHead = (h: StreamHead): void => {
    checkHead(h, id, zone, qtype, messages === 0);
    answers = h.answers;
  };

  const { bytes } = await tcpExchange(
    peer,
    ex.message,
    (raw) => {
      const c = ex.check(raw);
      if (!c.ok) throw new XfrError(`${label}: ${c.error ?? 'TSIG check failed'}`, 'POPDNS_E_TSIG');
      try {
        readTransferMessage(c.stripped, onHead, take);
      } catch (e) {
        if (e instanceof WireFormatError)
          throw new XfrError(`malformed response: ${e.message}`, 'POPDNS_E_XFR_MALFORMED');
        throw e;
      }
      messages++;
      // One SOA alone in the first message, not newer than ours: up to date (RFC 1995 §2).
      if (messages === 1 && state === 'second' && answers === 1 && ourSerial !== null) {
        if (!serialGt(newSerial, ourSerial)) {
          uptodate = true;
          return true;
        }
      }
      return state === 'done';
    },
    { idleMs: o.idleMs ?? 10_000, totalMs: o.totalMs ?? 15 * 60_000 },
  );
  if (!ex.finish())
    throw new XfrError(`${label}: the last message of the transfer is not signed`, 'POPDNS_E_TSIG');
  if (uptodate) return { kind: 'uptodate', serial: newSerial, bytes, messages };
  if ((state as string) !== 'done')
    throw new XfrError(`${label}: transfer ended early`, 'POPDNS_E_XFR_TRUNCATED');
  if (sink) return { kind: 'full', serial: newSerial, sink, records, bytes, messages };
  // The chain must start at our version and end at the announced one.
  let at = ourSerial;
  for (const d of diffs) {
    const from = soaSerial(d.fromSoa.rdata);
    if (from !== at)
      throw new XfrError(
        `${label}: IXFR sequence starts at serial ${from}, expected ${at}`,
        'POPDNS_E_XFR_MALFORMED',
      );
    at = soaSerial(d.toSoa.rdata);
  }
  if (at !== newSerial)
    throw new XfrError(
      `${label}: IXFR ends at serial ${at}, announced ${newSerial}`,
      'POPDNS_E_XFR_MALFORMED',
    );
  return { kind: 'incremental', serial: newSerial, diffs, bytes, messages };
}
