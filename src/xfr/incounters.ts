/**
 * Counters of the secondary side: transfers in by type and result, bytes, NOTIFYs received by result,
 * TSIG failures of the NOTIFYs received. Label values are the primary side's (src/xfr/counters.ts).
 */
import type { TsigKind, XfrResult } from './counters.js';

export type TransferType = 'axfr' | 'ixfr';
export type TransferResultLabel = Exclude<XfrResult, 'notfound'>;
/** success = accepted (from a primary of the zone, signed when it has a key). */
export type NotifyResult = 'success' | 'refused' | 'notauth' | 'formerr';

export interface XfrInSnapshot {
  /** `${type}/${result}` → count. */
  transfers: Record<string, number>;
  /** type → bytes received. */
  bytes: Record<string, number>;
  /** result → count. */
  notifies: Record<string, number>;
  /** `${kind}/${error}` → count (popdns_tsig_failures_total). */
  tsig: Record<string, number>;
}

export class XfrInCounters {
  private readonly transfers = new Map<string, number>();
  private readonly bytes = new Map<string, number>();
  private readonly notifies = new Map<string, number>();
  private readonly tsig = new Map<string, number>();

  transfer(type: TransferType, result: TransferResultLabel, bytes: number): void {
    const k = `${type}/${result}`;
    this.transfers.set(k, (this.transfers.get(k) ?? 0) + 1);
    this.bytes.set(type, (this.bytes.get(type) ?? 0) + bytes);
  }

  notify(result: NotifyResult): void {
    this.notifies.set(result, (this.notifies.get(result) ?? 0) + 1);
  }

  /** A request whose TSIG failed (status badsig, badkey, badtime or formerr). */
  tsigFailure(status: string, kind: TsigKind): void {
    const k = `${kind}/${status}`;
    this.tsig.set(k, (this.tsig.get(k) ?? 0) + 1);
  }

  snapshot(): XfrInSnapshot {
    return {
      transfers: Object.fromEntries(this.transfers),
      bytes: Object.fromEntries(this.bytes),
      notifies: Object.fromEntries(this.notifies),
      tsig: Object.fromEntries(this.tsig),
    };
  }
}
