/**
 * Prometheus metrics, built at scrape time from the query path's typed-array counters: prom-client
 * collect() callbacks read a snapshot, so nothing on the query path ever calls prom-client. Served with
 * /healthz (the process is alive) and /readyz (zones loaded and listeners bound; 503 while draining).
 */
import { createServer, type Server } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, type Histogram, Registry } from 'prom-client';
import {
  COOKIE_OUTCOME_LABELS,
  COUNTERS_LAYOUT,
  type CountersSnapshot,
  DROP_REASONS,
  LATENCY_BUCKETS,
  QTYPE_LABELS,
  RRL_ACTION_LABELS,
  TRANSPORTS,
} from '../server/counters.js';
import { DNSTAP_RESULT_LABELS } from '../dnstap/config.js';
import type { ZoneStatus } from '../server/server.js';
import type { ZoneReport } from '../server/zonestatus.js';
import { rcodeToText } from '../wire/constants.js';
import { registerXfrMetrics } from '../xfr/counters.js';
import { registerUpdateMetrics } from '../update/counters.js';
import type { XfrInSnapshot } from '../xfr/incounters.js';
import type { SecondaryStatus } from '../xfr/secondary.js';
import { registerSecondaryMetrics } from './secondary.js';

export interface MetricsInput {
  counters: CountersSnapshot;
  zones: ZoneStatus[];
  reloads: { success: number; failure: number };
  /** Secondary zones (src/xfr) and their transfer counters, when the server follows any. */
  secondaries?: SecondaryStatus[];
  xfrIn?: XfrInSnapshot;
}

export interface MetricsSource {
  /** Called once per scrape; with several workers it gathers their counters over IPC. */
  collect(): MetricsInput | Promise<MetricsInput>;
  ready(): boolean;
  draining(): boolean;
  /** What keeps the server from being ready besides listeners (secondary zones not loaded or expired). */
  notReady?(): string[];
  version: string;
  /** The `/zones` report (server/zonestatus.ts gatherZoneStatus); absent: `/zones` answers 404. */
  zoneStatus?: () => ZoneReport | Promise<ZoneReport>;
}

/** Label of names outside every zone. */
export const NO_ZONE = '.none';

/** The snapshot a scrape reads: taken once before prom-client runs the collectors. */
interface Holder {
  current: MetricsInput | null;
}

/**
 * A registry with prom-client's process and Node.js metrics, minus the three gauges it names *_total
 * (that breaks Prometheus naming rules; promtool rejects them). `prefix` namespaces them.
 */
export function processRegistry(prefix = ''): Registry {
  const reg = new Registry();
  collectDefaultMetrics({ register: reg, prefix });
  for (const m of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    reg.removeSingleMetric(`${prefix}${m}`);
  }
  return reg;
}

export function buildRegistry(src: MetricsSource, holder: Holder = { current: null }): Registry {
  const reg = processRegistry();
  const take = (): MetricsInput => {
    if (!holder.current) throw new Error('metrics snapshot not taken');
    return holder.current;
  };
  registerXfrMetrics(
    reg,
    () => take().counters.xfr,
    () => take().xfrIn?.tsig,
  );
  registerUpdateMetrics(reg, () => take().counters.updates);
  new Gauge({
    name: 'popdns_build_info',
    help: 'popdns version and the Node.js running it (always 1)',
    labelNames: ['version', 'node_version'],
    registers: [reg],
    collect() {
      this.set({ version: src.version, node_version: process.version }, 1);
    },
  });
  new Counter({
    name: 'popdns_queries_total',
    help: 'Queries answered, by transport, question type, response code and zone',
    labelNames: ['transport', 'qtype', 'rcode', 'zone'],
    registers: [reg],
    collect() {
      const c = take().counters;
      this.reset();
      const { perZone, qtypes, rcodes } = COUNTERS_LAYOUT;
      c.zones.forEach((zone, zi) => {
        for (let t = 0; t < TRANSPORTS.length; t++) {
          for (let q = 0; q < qtypes; q++) {
            for (let r = 0; r < rcodes; r++) {
              const v = c.queries[zi * perZone + (t * qtypes + q) * rcodes + r] ?? 0;
              if (v > 0) {
                this.inc(
                  {
                    transport: TRANSPORTS[t]!,
                    qtype: QTYPE_LABELS[q]!,
                    rcode: r === 16 ? 'BADVERS' : r === 17 ? 'BADCOOKIE' : rcodeToText(r),
                    zone: zone === '' ? NO_ZONE : zone,
                  },
                  v,
                );
              }
            }
          }
        }
      });
    },
  });
  new Counter({
    name: 'popdns_responses_truncated_total',
    help: 'Responses sent with TC=1 because they did not fit',
    labelNames: ['transport'],
    registers: [reg],
    collect() {
      const c = take().counters;
      this.reset();
      TRANSPORTS.forEach((t, i) => {
        this.inc({ transport: t }, c.truncated[i] ?? 0);
      });
    },
  });
  new Counter({
    name: 'popdns_packets_dropped_total',
    help: 'Packets not answered normally: short (no header, dropped), response (QR=1, dropped), formerr (answered FORMERR)',
    labelNames: ['reason'],
    registers: [reg],
    collect() {
      const c = take().counters;
      this.reset();
      DROP_REASONS.forEach((r, i) => {
        this.inc({ reason: r }, c.dropped[i] ?? 0);
      });
    },
  });
  new Counter({
    name: 'popdns_rrl_responses_total',
    help: 'UDP responses by response rate limiting action: passed, dropped, slipped (sent truncated); zero unless rrl is configured',
    labelNames: ['action'],
    registers: [reg],
    collect() {
      const c = take().counters;
      this.reset();
      RRL_ACTION_LABELS.forEach((a, i) => {
        this.inc({ action: a }, c.rrl[i] ?? 0);
      });
    },
  });
  new Counter({
    name: 'popdns_cookies_total',
    help: 'Queries by DNS cookie outcome (RFC 7873): none, client-only, valid, invalid, badcookie (BADCOOKIE sent); zero unless cookies is configured',
    labelNames: ['outcome'],
    registers: [reg],
    collect() {
      const c = take().counters;
      this.reset();
      COOKIE_OUTCOME_LABELS.forEach((o, i) => {
        this.inc({ outcome: o }, c.cookies[i] ?? 0);
      });
    },
  });
  new Counter({
    name: 'popdns_dnstap_messages_total',
    help: 'dnstap messages by result: sent (written to the collector), dropped (queue full, collector absent or slow); zero unless dnstap is configured',
    labelNames: ['result'],
    registers: [reg],
    collect() {
      const c = take().counters;
      this.reset();
      DNSTAP_RESULT_LABELS.forEach((r, i) => {
        this.inc({ result: r }, c.dnstap?.[i] ?? 0);
      });
    },
  });
  new Gauge({
    name: 'popdns_tcp_connections',
    help: 'TCP connections open now',
    registers: [reg],
    collect() {
      this.set(take().counters.tcpOpen);
    },
  });
  new Counter({
    name: 'popdns_tcp_connections_refused_total',
    help: 'TCP connections refused or closed early because of the connection cap',
    registers: [reg],
    collect() {
      this.reset();
      this.inc(take().counters.tcpRefused);
    },
  });
  const zoneGauge = (name: string, help: string, pick: (z: ZoneStatus) => number | null): void => {
    new Gauge({
      name,
      help,
      labelNames: ['zone'],
      registers: [reg],
      collect() {
        this.reset();
        for (const z of take().zones) {
          const v = z.origin !== '' ? pick(z) : null;
          if (v !== null) this.set({ zone: z.origin }, v);
        }
      },
    });
  };
  zoneGauge('popdns_zone_serial', 'SOA serial of the zone version being served', (z) => z.serial);
  zoneGauge('popdns_zone_records', 'Records in the zone version being served', (z) => z.records);
  zoneGauge(
    'popdns_zone_last_load_timestamp_seconds',
    'Unix time of the last successful load of the zone',
    (z) => z.loadedAt,
  );
  zoneGauge(
    'popdns_dnssec_signature_expiry_timestamp_seconds',
    'Unix time when the first RRSIG of the signed zone expires (signed zones only; re-signing moves it on)',
    (z) => z.sigExpiry,
  );
  new Counter({
    name: 'popdns_zone_load_failures_total',
    help: 'Failed loads of a zone file (the previous version stays in service)',
    labelNames: ['file'],
    registers: [reg],
    collect() {
      this.reset();
      for (const z of take().zones) this.inc({ file: z.file }, z.loadFailures);
    },
  });
  new Counter({
    name: 'popdns_reloads_total',
    help: 'Zone reloads, by result (failure: at least one zone failed and kept its previous version)',
    labelNames: ['result'],
    registers: [reg],
    collect() {
      const r = take().reloads;
      this.reset();
      this.inc({ result: 'success' }, r.success);
      this.inc({ result: 'failure' }, r.failure);
    },
  });
  // A histogram whose buckets are counted on the query path: prom-client formats it, our typed
  // array supplies the values (prom-client's Histogram can only observe(), not be set at scrape time).
  const name = 'popdns_query_duration_seconds';
  const help =
    'Time from a query being read to its answer being ready, in the server; one query in 16 is timed';
  reg.registerMetric({
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      const c = take().counters;
      let cum = 0;
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      LATENCY_BUCKETS.forEach((le, i) => {
        cum += c.latencyBuckets[i] ?? 0;
        values.push({ labels: { le }, value: cum, metricName: `${name}_bucket` });
      });
      cum += c.latencyBuckets[LATENCY_BUCKETS.length] ?? 0;
      values.push({ labels: { le: '+Inf' }, value: cum, metricName: `${name}_bucket` });
      values.push({ labels: {}, value: c.latencySum, metricName: `${name}_sum` });
      values.push({ labels: {}, value: c.latencyCount, metricName: `${name}_count` });
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
    reset: () => {},
  } as unknown as Histogram);
  registerSecondaryMetrics(reg, take);
  return reg;
}

/** Serves /metrics, /healthz, /readyz and /zones (JSON: the zone-status report). */
export function startMetricsServer(host: string, port: number, src: MetricsSource): Promise<Server> {
  const holder: Holder = { current: null };
  const reg = buildRegistry(src, holder);
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/metrics') {
      Promise.resolve(src.collect())
        .then((snap) => {
          holder.current = snap;
          return reg.metrics();
        })
        .then((body) => {
          res.writeHead(200, { 'content-type': reg.contentType });
          res.end(body);
        })
        .catch((e: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${String(e)}\n`);
        });
      return;
    }
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    if (url === '/readyz') {
      const draining = src.draining();
      const missing = src.notReady?.() ?? [];
      const ready = src.ready() && !draining && missing.length === 0;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(
        ready
          ? 'ready\n'
          : draining
            ? 'draining\n'
            : missing.length > 0
              ? `not ready: zones not served: ${missing.join(', ')}\n`
              : 'not ready: zones or listeners not up yet\n',
      );
      return;
    }
    if (url === '/zones' && src.zoneStatus) {
      Promise.resolve(src.zoneStatus())
        .then((report) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(`${JSON.stringify(report, null, 1)}\n`);
        })
        .catch((e: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`zone status failed: ${String(e)}\n`);
        });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /metrics, /healthz, /readyz, /zones\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
