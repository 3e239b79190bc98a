/**
 * Metrics of the secondary side (src/xfr), read from the scrape's snapshot: per zone role, serial,
 * last refresh and transfer, seconds until expire; transfers in by type and result, bytes, NOTIFYs
 * received by result.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { NotifyResult, TransferResultLabel, TransferType } from '../xfr/incounters.js';
import type { MetricsInput } from './metrics.js';

export function registerSecondaryMetrics(reg: Registry, take: () => MetricsInput): void {
  const perZone = (
    name: string,
    help: string,
    pick: (s: NonNullable<MetricsInput['secondaries']>[number]) => number | null,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: ['zone'],
      registers: [reg],
      collect() {
        this.reset();
        for (const s of take().secondaries ?? []) {
          const v = pick(s);
          if (v !== null) this.set({ zone: s.zone }, v);
        }
      },
    });
  };
  new Gauge({
    name: 'popdns_zone_role',
    help: 'How the server gets each zone (always 1): role file, secondary, catalog member (member) or catalog',
    labelNames: ['zone', 'role'],
    registers: [reg],
    collect() {
      this.reset();
      const snap = take();
      const secondary = new Set((snap.secondaries ?? []).map((s) => s.zone));
      for (const z of snap.zones) {
        if (z.origin !== '' && !secondary.has(z.origin.toLowerCase()))
          this.set({ zone: z.origin, role: 'file' }, 1);
      }
      for (const s of snap.secondaries ?? []) this.set({ zone: s.zone, role: s.role }, 1);
    },
  });
  perZone(
    'popdns_secondary_serial',
    'SOA serial of the secondary zone version held (served unless expired); absent before the first transfer',
    (s) => s.serial,
  );
  perZone(
    'popdns_secondary_loaded',
    'Whether the secondary zone is being served: 1 loaded, 0 not loaded yet or expired (SERVFAIL)',
    (s) => (s.state === 'loaded' ? 1 : 0),
  );
  perZone(
    'popdns_secondary_last_refresh_timestamp_seconds',
    'Unix time of the last successful SOA check or transfer from a primary',
    (s) => (s.lastRefresh > 0 ? s.lastRefresh : null),
  );
  perZone(
    'popdns_secondary_last_transfer_timestamp_seconds',
    'Unix time of the last transfer that brought a new version',
    (s) => (s.lastTransfer > 0 ? s.lastTransfer : null),
  );
  perZone(
    'popdns_secondary_expire_seconds',
    'Seconds until the zone expires (stops being served) unless a primary is reached; 0 = expired',
    (s) => s.expiresIn,
  );
  // Every label combination from the first scrape (zeros included), like the primary side's counters.
  new Counter({
    name: 'popdns_xfr_in_total',
    help: 'Zone transfers requested from primaries, by type (axfr, ixfr) and result (success, failure, refused, notauth, uptodate)',
    labelNames: ['type', 'result'],
    registers: [reg],
    collect() {
      this.reset();
      const got = take().xfrIn?.transfers ?? {};
      for (const type of IN_TYPES)
        for (const result of IN_RESULTS) this.inc({ type, result }, got[`${type}/${result}`] ?? 0);
    },
  });
  new Counter({
    name: 'popdns_xfr_in_bytes_total',
    help: 'Bytes received in zone transfers from primaries, by type',
    labelNames: ['type'],
    registers: [reg],
    collect() {
      this.reset();
      const got = take().xfrIn?.bytes ?? {};
      for (const type of IN_TYPES) this.inc({ type }, got[type] ?? 0);
    },
  });
  new Counter({
    name: 'popdns_notify_received_total',
    help: 'NOTIFY messages received, by result (success: accepted, refused: not from a primary, notauth: unknown zone or bad TSIG, formerr)',
    labelNames: ['result'],
    registers: [reg],
    collect() {
      this.reset();
      const got = take().xfrIn?.notifies ?? {};
      for (const result of NOTIFY_IN_RESULTS) this.inc({ result }, got[result] ?? 0);
    },
  });
}

const IN_TYPES: readonly TransferType[] = ['axfr', 'ixfr'];
const IN_RESULTS: readonly TransferResultLabel[] = ['success', 'failure', 'refused', 'notauth', 'uptodate'];
const NOTIFY_IN_RESULTS: readonly NotifyResult[] = ['success', 'refused', 'notauth', 'formerr'];
