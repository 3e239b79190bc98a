/**
 * Counters of the primary side: transfers out, NOTIFYs sent, TSIG failures. Typed arrays bumped where
 * things happen and turned into Prometheus metrics at scrape time (registerXfrMetrics), like the
 * query counters.
 */
import { Counter, type Registry } from 'prom-client';

/**
 * Label values shared by both directions (popdns_xfr_out_total and popdns_xfr_in_total): type is the
 * lower-case request type (`ixfr-udp` = IXFR over UDP, RFC 1995 §2, primary side only); result is
 * one of XFR_RESULTS.
 */
export const XFR_TYPES = ['axfr', 'ixfr', 'ixfr-udp'] as const;
export type XfrType = (typeof XFR_TYPES)[number];
/**
 * success: sent (or received) whole. failure: the peer went away, the data did not check, or it could
 * not be written. refused: REFUSED (not allowed by transfer.allow). notauth: NOTAUTH (TSIG failed, or
 * the primary is not authoritative). notfound: a zone not served here (primary side). uptodate: the
 * primary had nothing newer (secondary side, IXFR). The `ixfr` type also counts IXFRs answered with
 * the whole zone (AXFR-style, RFC 1995 §4) under `success`; popdns_xfr_out_axfr_style_ixfr_total
 * counts those.
 */
export const XFR_RESULTS = ['success', 'failure', 'refused', 'notauth', 'notfound', 'uptodate'] as const;
export type XfrResult = (typeof XFR_RESULTS)[number];
/** NOTIFY sent: success = acknowledged (NOERROR, signature good); failure = an error answer; timeout. */
export const NOTIFY_RESULTS = ['success', 'failure', 'timeout'] as const;
export const TSIG_ERRORS = ['badsig', 'badkey', 'badtime', 'formerr'] as const;
/** The kind of request whose TSIG failed: a query, a NOTIFY, a zone transfer or a dynamic update. */
export const TSIG_KINDS = ['query', 'notify', 'xfr', 'update'] as const;
export type TsigKind = (typeof TSIG_KINDS)[number];

/** The TSIG failure kind of a request, from its opcode and qtype (RFC 1035 §4.1.1, RFC 1996, RFC 2136). */
export function tsigKindOf(opcode: number, qtype: number): TsigKind {
  if (opcode === 4) return 'notify';
  if (opcode === 5) return 'update';
  return qtype === 251 || qtype === 252 ? 'xfr' : 'query';
}

export interface XfrSnapshot {
  /** transfers[type * results + result] */
  transfers: number[];
  /** Bytes sent (DNS messages, without the TCP length prefix) by type. */
  bytes: number[];
  /** IXFRs answered AXFR-style (history did not cover the serial, or was larger than the zone). */
  fallback: number;
  notify: number[];
  /** tsig[kind * errors + error] */
  tsig: number[];
}

export class XfrCounters {
  readonly transfers = new Float64Array(XFR_TYPES.length * XFR_RESULTS.length);
  readonly bytes = new Float64Array(XFR_TYPES.length);
  fallback = 0;
  readonly notify = new Float64Array(NOTIFY_RESULTS.length);
  readonly tsig = new Float64Array(TSIG_KINDS.length * TSIG_ERRORS.length);

  transfer(type: XfrType, result: XfrResult, bytes = 0): void {
    const t = XFR_TYPES.indexOf(type);
    this.transfers[t * XFR_RESULTS.length + XFR_RESULTS.indexOf(result)]! += 1;
    this.bytes[t]! += bytes;
  }

  notified(result: (typeof NOTIFY_RESULTS)[number]): void {
    this.notify[NOTIFY_RESULTS.indexOf(result)]! += 1;
  }

  /** A TSIG verification failure of a request by its status (badsig, badkey, badtime, formerr). */
  tsigFailure(status: string, kind: TsigKind): void {
    const i = TSIG_ERRORS.indexOf(status as (typeof TSIG_ERRORS)[number]);
    if (i >= 0) this.tsig[TSIG_KINDS.indexOf(kind) * TSIG_ERRORS.length + i]! += 1;
  }

  snapshot(): XfrSnapshot {
    return {
      transfers: Array.from(this.transfers),
      bytes: Array.from(this.bytes),
      fallback: this.fallback,
      notify: Array.from(this.notify),
      tsig: Array.from(this.tsig),
    };
  }
}

export function emptyXfrSnapshot(): XfrSnapshot {
  return new XfrCounters().snapshot();
}

/** Sums the snapshots of several processes. */
export function sumXfr(snaps: (XfrSnapshot | undefined)[]): XfrSnapshot {
  const out = emptyXfrSnapshot();
  for (const s of snaps) {
    if (!s) continue;
    const add = (to: number[], from: number[]): void => {
      from.forEach((v, i) => {
        to[i] = (to[i] ?? 0) + v;
      });
    };
    add(out.transfers, s.transfers);
    add(out.bytes, s.bytes);
    add(out.notify, s.notify);
    add(out.tsig, s.tsig);
    out.fallback += s.fallback;
  }
  return out;
}

/**
 * Registers the primary side's metrics and the TSIG failures; `take` returns the snapshot of the
 * current scrape, `takeTsigIn` the secondary side's TSIG failures (NOTIFYs are checked there) as
 * `kind/error` → count.
 */
export function registerXfrMetrics(
  reg: Registry,
  take: () => XfrSnapshot | undefined,
  takeTsigIn: () => Readonly<Record<string, number>> | undefined = () => undefined,
): void {
  new Counter({
    name: 'popdns_xfr_out_total',
    help: 'Zone transfers served (popdns as primary), by type (axfr, ixfr, ixfr-udp) and result (success, failure, refused, notauth, notfound)',
    labelNames: ['type', 'result'],
    registers: [reg],
    collect() {
      const s = take() ?? emptyXfrSnapshot();
      this.reset();
      XFR_TYPES.forEach((type, t) =>
        XFR_RESULTS.forEach((result, r) => {
          if (result !== 'uptodate') this.inc({ type, result }, s.transfers[t * XFR_RESULTS.length + r] ?? 0);
        }),
      );
    },
  });
  new Counter({
    name: 'popdns_xfr_out_bytes_total',
    help: 'Bytes of DNS messages sent in zone transfers, by type',
    labelNames: ['type'],
    registers: [reg],
    collect() {
      const s = take() ?? emptyXfrSnapshot();
      this.reset();
      XFR_TYPES.forEach((type, t) => this.inc({ type }, s.bytes[t] ?? 0));
    },
  });
  new Counter({
    name: 'popdns_xfr_out_axfr_style_ixfr_total',
    help: 'IXFR requests answered with the whole zone (history did not cover the serial, RFC 1995 §4)',
    registers: [reg],
    collect() {
      this.reset();
      this.inc(take()?.fallback ?? 0);
    },
  });
  new Counter({
    name: 'popdns_notify_sent_total',
    help: 'NOTIFY messages sent to transfer.notify targets, by result (success = acknowledged, failure, timeout)',
    labelNames: ['result'],
    registers: [reg],
    collect() {
      const s = take() ?? emptyXfrSnapshot();
      this.reset();
      NOTIFY_RESULTS.forEach((result, i) => this.inc({ result }, s.notify[i] ?? 0));
    },
  });
  new Counter({
    name: 'popdns_tsig_failures_total',
    help: 'Requests received whose TSIG failed verification, by error (badsig, badkey, badtime, formerr) and kind (query, notify, xfr, update)',
    labelNames: ['error', 'kind'],
    registers: [reg],
    collect() {
      const s = take() ?? emptyXfrSnapshot();
      const inside = takeTsigIn() ?? {};
      this.reset();
      TSIG_KINDS.forEach((kind, k) =>
        TSIG_ERRORS.forEach((error, i) =>
          this.inc(
            { error, kind },
            (s.tsig[k * TSIG_ERRORS.length + i] ?? 0) + (inside[`${kind}/${error}`] ?? 0),
          ),
        ),
      );
    },
  });
}
