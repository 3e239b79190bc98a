/**
 * Counters of the primary side: transfers out, NOTIFYs sent, TSIG failures. Typed arrays bumped where
 * things happen and turned into Prometheus metrics at scrape time (registerXfrMetrics), like the
 * query counters.
 */
import { Counter, type Registry } from 'prom-client';

export const XFR_TYPES = ['axfr', 'ixfr', 'ixfr-udp'] as const;
/**
 * ok: sent whole. refused: not allowed by transfer.allow. notauth: TSIG failed. failed: the peer went
 * away or the zone could not be written. The `ixfr` type also counts IXFRs answered with the whole
 * zone (AXFR-style, RFC 1995 §4) under `ok`; popdns_xfr_out_fallback_total counts those.
 */
export const XFR_RESULTS = ['ok', 'refused', 'notauth', 'notfound', 'failed'] as const;
export const NOTIFY_RESULTS = ['ok', 'error', 'timeout'] as const;
export const TSIG_ERRORS = ['badsig', 'badkey', 'badtime', 'formerr'] as const;

export interface XfrSnapshot {
  /** transfers[type * results + result] */
  transfers: number[];
  /** Bytes sent (DNS messages, without the TCP length prefix) by type. */
  bytes: number[];
  /** IXFRs answered AXFR-style (history did not cover the serial, or was larger than the zone). */
  fallback: number;
  notify: number[];
  tsig: number[];
}

export class XfrCounters {
  readonly transfers = new Float64Array(XFR_TYPES.length * XFR_RESULTS.length);
  readonly bytes = new Float64Array(XFR_TYPES.length);
  fallback = 0;
  readonly notify = new Float64Array(NOTIFY_RESULTS.length);
  readonly tsig = new Float64Array(TSIG_ERRORS.length);

  transfer(type: (typeof XFR_TYPES)[number], result: (typeof XFR_RESULTS)[number], bytes = 0): void {
    const t = XFR_TYPES.indexOf(type);
    this.transfers[t * XFR_RESULTS.length + XFR_RESULTS.indexOf(result)]! += 1;
    this.bytes[t]! += bytes;
  }

  notified(result: (typeof NOTIFY_RESULTS)[number]): void {
    this.notify[NOTIFY_RESULTS.indexOf(result)]! += 1;
  }

  /** A TSIG verification failure by its status (badsig, badkey, badtime, formerr). */
  tsigFailure(status: string): void {
    const i = TSIG_ERRORS.indexOf(status as (typeof TSIG_ERRORS)[number]);
    if (i >= 0) this.tsig[i]! += 1;
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

/** Registers the primary side's metrics; `take` returns the snapshot of the current scrape. */
export function registerXfrMetrics(reg: Registry, take: () => XfrSnapshot | undefined): void {
  new Counter({
    name: 'popdns_xfr_out_total',
    help: 'Zone transfers served (popdns as primary), by type (axfr, ixfr, ixfr-udp) and result',
    labelNames: ['type', 'result'],
    registers: [reg],
    collect() {
      const s = take() ?? emptyXfrSnapshot();
      this.reset();
      XFR_TYPES.forEach((type, t) =>
        XFR_RESULTS.forEach((result, r) =>
          this.inc({ type, result }, s.transfers[t * XFR_RESULTS.length + r] ?? 0),
        ),
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
    help: 'NOTIFY messages sent to transfer.notify targets, by result (ok = acknowledged)',
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
    help: 'Requests whose TSIG failed verification, by error (badsig, badkey, badtime, formerr)',
    labelNames: ['error'],
    registers: [reg],
    collect() {
      const s = take() ?? emptyXfrSnapshot();
      this.reset();
      TSIG_ERRORS.forEach((error, i) => this.inc({ error }, s.tsig[i] ?? 0));
    },
  });
}
