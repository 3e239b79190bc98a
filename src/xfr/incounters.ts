/** Counters of the secondary side: transfers in by type and result, bytes, NOTIFYs received by result. */

export type TransferType = 'AXFR' | 'IXFR';
export type TransferResultLabel = 'success' | 'failure' | 'uptodate';
export type NotifyResult = 'accepted' | 'refused' | 'notauth' | 'formerr';

export interface XfrInSnapshot {
  /** `${type}/${result}` → count. */
  transfers: Record<string, number>;
  /** type → bytes received. */
  bytes: Record<string, number>;
  /** result → count. */
  notifies: Record<string, number>;
}

export class XfrInCounters {
  private readonly transfers = new Map<string, number>();
  private readonly bytes = new Map<string, number>();
  private readonly notifies = new Map<string, number>();

  transfer(type: TransferType, result: TransferResultLabel, bytes: number): void {
    const k = `${type}/${result}`;
    this.transfers.set(k, (this.transfers.get(k) ?? 0) + 1);
    this.bytes.set(type, (this.bytes.get(type) ?? 0) + bytes);
  }

  notify(result: NotifyResult): void {
    this.notifies.set(result, (this.notifies.get(result) ?? 0) + 1);
  }

  snapshot(): XfrInSnapshot {
    return {
      transfers: Object.fromEntries(this.transfers),
      bytes: Object.fromEntries(this.bytes),
      notifies: Object.fromEntries(this.notifies),
    };
  }
}
