/**
 * Counters of RFC 2136 updates: per zone and key, one Float64Array slot per result, and the journal
 * size per zone; turned into Prometheus metrics at scrape time (registerUpdateMetrics).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Results counted: the response's rcode name (NOERROR, REFUSED, NXRRSET, …). */
export const UPDATE_RESULTS = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
] as const;

export interface UpdateSnapshot {
  /** One row per zone and key: counts indexed like UPDATE_RESULTS. */
  rows: { zone: string; key: string; counts: number[] }[];
  /** Update journal size per zone, bytes. */
  journalBytes: { zone: string; bytes: number }[];
}

export class UpdateCounters {
  private readonly rows = new Map<string, { zone: string; key: string; counts: Float64Array }>();
  readonly journalBytes = new Map<string, number>();

  /** Counts one update of `zone` signed with `key` ('' when unsigned) answered with `rcode`. */
  count(zone: string, key: string, rcode: number): void {
    const k = `${zone}\u0000${key}`;
    let r = this.rows.get(k);
    if (!r) {
      r = { zone, key, counts: new Float64Array(UPDATE_RESULTS.length) };
      this.rows.set(k, r);
    }
    if (rcode >= 0 && rcode < UPDATE_RESULTS.length) r.counts[rcode]! += 1;
  }

  snapshot(): UpdateSnapshot {
    return {
      rows: [...this.rows.values()].map((r) => ({ zone: r.zone, key: r.key, counts: Array.from(r.counts) })),
      journalBytes: [...this.journalBytes].map(([zone, bytes]) => ({ zone, bytes })),
    };
  }
}

/** Sums worker snapshots (rows matched by zone and key; journal sizes: the largest reported). */
export function sumUpdates(snaps: (UpdateSnapshot | undefined)[]): UpdateSnapshot {
  const rows = new Map<string, { zone: string; key: string; counts: number[] }>();
  const jb = new Map<string, number>();
  for (const s of snaps) {
    if (!s) continue;
    for (const r of s.rows) {
      const k = `${r.zone}\u0000${r.key}`;
      const have = rows.get(k);
      if (!have) rows.set(k, { zone: r.zone, key: r.key, counts: [...r.counts] });
      else r.counts.forEach((v, i) => (have.counts[i] = (have.counts[i] ?? 0) + v));
    }
    for (const j of s.journalBytes) jb.set(j.zone, Math.max(jb.get(j.zone) ?? 0, j.bytes));
  }
  return { rows: [...rows.values()], journalBytes: [...jb].map(([zone, bytes]) => ({ zone, bytes })) };
}

/** popdns_updates_total{zone,key,result} and popdns_update_journal_bytes{zone}. */
export function registerUpdateMetrics(reg: Registry, take: () => UpdateSnapshot | undefined): void {
  new Counter({
    name: 'popdns_updates_total',
    help: 'RFC 2136 dynamic updates answered, by zone, TSIG key and result (response code)',
    labelNames: ['zone', 'key', 'result'],
    registers: [reg],
    collect() {
      this.reset();
      for (const r of take()?.rows ?? [])
        r.counts.forEach((v, i) => {
          if (v > 0) this.inc({ zone: r.zone, key: r.key, result: UPDATE_RESULTS[i]! }, v);
        });
    },
  });
  new Gauge({
    name: 'popdns_update_journal_bytes',
    help: 'Size of the update journal in data-dir, by zone, bytes',
    labelNames: ['zone'],
    registers: [reg],
    collect() {
      this.reset();
      for (const j of take()?.journalBytes ?? []) this.set({ zone: j.zone }, j.bytes);
    },
  });
}
