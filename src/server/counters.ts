/**
 * Per-worker counters on the query path: plain typed arrays, turned into Prometheus metrics only at
 * scrape time (src/metrics). Incrementing is an index computation and an add — no allocation, no
 * prom-client call per query.
 */
import { sumXfr, XfrCounters, type XfrSnapshot } from '../xfr/counters.js';
import { sumUpdates, UpdateCounters, type UpdateSnapshot } from '../update/counters.js';

export const TRANSPORTS = ['udp', 'tcp'] as const;
export const QTYPE_LABELS = [
  'A',
  'AAAA',
  'CNAME',
  'MX',
  'NS',
  'SOA',
  'TXT',
  'SRV',
  'PTR',
  'CAA',
  'HTTPS',
  'SVCB',
  'DS',
  'DNSKEY',
  'ANY',
  'AXFR',
  'IXFR',
  'other',
] as const;
const QTYPE_NUMBERS = [1, 28, 5, 15, 2, 6, 16, 33, 12, 257, 65, 64, 43, 48, 255, 252, 251];
/** Rcodes 0–15 by number, then BADVERS (16) and BADCOOKIE (23, RFC 7873) as buckets 16 and 17. */
export const RCODE_BUCKETS = 18;
/** RRL decisions on UDP responses (src/rrl), and the cookie outcome of each query (src/cookies). */
export const RRL_ACTION_LABELS = ['passed', 'dropped', 'slipped'] as const;
export const COOKIE_OUTCOME_LABELS = ['none', 'client-only', 'valid', 'invalid', 'badcookie'] as const;
export const DROP_REASONS = ['short', 'response', 'formerr'] as const;
/** Upper bounds (seconds) of the answer-latency histogram buckets. */
export const LATENCY_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1,
];

const QTYPE_BUCKET = new Uint8Array(65536).fill(QTYPE_LABELS.length - 1);
QTYPE_NUMBERS.forEach((t, i) => {
  QTYPE_BUCKET[t] = i;
});

const PER_ZONE = TRANSPORTS.length * QTYPE_LABELS.length * RCODE_BUCKETS;

export interface CountersSnapshot {
  /** Zone labels by index; index 0 is "" (names outside every zone). */
  zones: string[];
  /** queries[zone * PER_ZONE + (transport * qtypes + qtype) * rcodes + rcode] */
  queries: number[];
  truncated: number[];
  dropped: number[];
  tcpOpen: number;
  tcpRefused: number;
  latencyBuckets: number[];
  latencySum: number;
  latencyCount: number;
  rrl: number[];
  cookies: number[];
  /** dnstap messages sent and dropped (src/dnstap). */
  dnstap?: number[];
  /** Transfers out, NOTIFYs sent, TSIG failures. */
  xfr?: XfrSnapshot;
  /** RFC 2136 updates (src/update). */
  updates?: UpdateSnapshot;
}

export class Counters {
  private zoneIndex = new Map<string, number>([['', 0]]);
  private zoneNames: string[] = [''];
  private queries = new Float64Array(PER_ZONE * 8);
  readonly truncated = new Float64Array(TRANSPORTS.length);
  readonly dropped = new Float64Array(DROP_REASONS.length);
  tcpOpen = 0;
  tcpRefused = 0;
  readonly latency = new Float64Array(LATENCY_BUCKETS.length + 1);
  latencySum = 0;
  readonly rrl = new Float64Array(RRL_ACTION_LABELS.length);
  readonly cookies = new Float64Array(COOKIE_OUTCOME_LABELS.length);
  /** dnstap messages: [sent, dropped] (src/dnstap DNSTAP_RESULT_LABELS). */
  readonly dnstap = new Float64Array(2);
  readonly xfr = new XfrCounters();
  readonly updates = new UpdateCounters();

  /** A stable index for a zone label; grows the arrays the first time a zone is seen. */
  zone(origin: string): number {
    let i = this.zoneIndex.get(origin);
    if (i === undefined) {
      i = this.zoneNames.length;
      this.zoneIndex.set(origin, i);
      this.zoneNames.push(origin);
      if ((i + 1) * PER_ZONE > this.queries.length) {
        const bigger = new Float64Array(this.queries.length * 2);
        bigger.set(this.queries);
        this.queries = bigger;
      }
    }
    return i;
  }

  query(transport: number, qtype: number, rcode: number, zone: number): void {
    const r = rcode === 23 ? 17 : rcode > 15 ? 16 : rcode;
    this.queries[
      zone * PER_ZONE + (transport * QTYPE_LABELS.length + QTYPE_BUCKET[qtype]!) * RCODE_BUCKETS + r
    ]! += 1;
  }

  observeLatency(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.latency[i]! += 1;
    this.latencySum += seconds;
  }

  snapshot(): CountersSnapshot {
    let count = 0;
    for (const v of this.latency) count += v;
    return {
      zones: [...this.zoneNames],
      queries: Array.from(this.queries.subarray(0, this.zoneNames.length * PER_ZONE)),
      truncated: Array.from(this.truncated),
      dropped: Array.from(this.dropped),
      tcpOpen: this.tcpOpen,
      tcpRefused: this.tcpRefused,
      latencyBuckets: Array.from(this.latency),
      latencySum: this.latencySum,
      latencyCount: count,
      rrl: Array.from(this.rrl),
      cookies: Array.from(this.cookies),
      dnstap: Array.from(this.dnstap),
      xfr: this.xfr.snapshot(),
      updates: this.updates.snapshot(),
    };
  }
}

/** Sums snapshots from several workers into one (zones matched by label). */
export function sumSnapshots(snaps: CountersSnapshot[]): CountersSnapshot {
  const zones: string[] = [''];
  const index = new Map<string, number>([['', 0]]);
  for (const s of snaps) for (const z of s.zones) if (!index.has(z)) index.set(z, zones.push(z) - 1);
  const out: CountersSnapshot = {
    zones,
    queries: new Array<number>(zones.length * PER_ZONE).fill(0),
    truncated: new Array<number>(TRANSPORTS.length).fill(0),
    dropped: new Array<number>(DROP_REASONS.length).fill(0),
    tcpOpen: 0,
    tcpRefused: 0,
    latencyBuckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0),
    latencySum: 0,
    latencyCount: 0,
    rrl: new Array<number>(RRL_ACTION_LABELS.length).fill(0),
    cookies: new Array<number>(COOKIE_OUTCOME_LABELS.length).fill(0),
    dnstap: [0, 0],
    xfr: sumXfr(snaps.map((s) => s.xfr)),
    updates: sumUpdates(snaps.map((s) => s.updates)),
  };
  for (const s of snaps) {
    s.zones.forEach((z, zi) => {
      const to = index.get(z)! * PER_ZONE;
      for (let k = 0; k < PER_ZONE; k++) out.queries[to + k]! += s.queries[zi * PER_ZONE + k] ?? 0;
    });
    s.truncated.forEach((v, i) => {
      out.truncated[i]! += v;
    });
    s.dropped.forEach((v, i) => {
      out.dropped[i]! += v;
    });
    s.latencyBuckets.forEach((v, i) => {
      out.latencyBuckets[i]! += v;
    });
    s.rrl.forEach((v, i) => {
      out.rrl[i]! += v;
    });
    s.cookies.forEach((v, i) => {
      out.cookies[i]! += v;
    });
    s.dnstap?.forEach((v, i) => {
      out.dnstap![i]! += v;
    });
    out.tcpOpen += s.tcpOpen;
    out.tcpRefused += s.tcpRefused;
    out.latencySum += s.latencySum;
    out.latencyCount += s.latencyCount;
  }
  return out;
}

export const COUNTERS_LAYOUT = { perZone: PER_ZONE, qtypes: QTYPE_LABELS.length, rcodes: RCODE_BUCKETS };
