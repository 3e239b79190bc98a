/** The health probe's own Prometheus metrics (its own listener; the probe is not on a hot path). */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { processRegistry } from '../metrics/metrics.js';
import type { HealthChecker, RoundReport } from './checker.js';

export class HealthMetrics {
  readonly registry: Registry = processRegistry('popdns_health_');
  private readonly probes: Counter<'transport' | 'target' | 'result'>;
  private readonly probeSeconds: Histogram<'transport'>;
  private readonly rounds: Counter<'result'>;

  constructor(checker: HealthChecker, version: string) {
    const r = this.registry;
    new Gauge({
      name: 'popdns_health_build_info',
      help: 'Version of the popdns health probe and of Node.js; always 1.',
      labelNames: ['version', 'nodejs'],
      registers: [r],
    }).set({ version, nodejs: process.version }, 1);
    this.probes = new Counter({
      name: 'popdns_health_probes_total',
      help: 'DNS probe queries sent to the local server, by transport, target and result.',
      labelNames: ['transport', 'target', 'result'],
      registers: [r],
    });
    this.probeSeconds = new Histogram({
      name: 'popdns_health_probe_duration_seconds',
      help: 'Time for a probe query to be answered (or time out).',
      labelNames: ['transport'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    this.rounds = new Counter({
      name: 'popdns_health_rounds_total',
      help: 'Probe rounds, by result (healthy or unhealthy).',
      labelNames: ['result'],
      registers: [r],
    });
    new Gauge({
      name: 'popdns_health_healthy',
      help: '1 if the last probe round found the server healthy.',
      registers: [r],
      collect() {
        this.set(checker.lastRound?.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'popdns_health_wanted_announced',
      help: '1 if the probe wants the anycast prefixes announced (after rise/fall hysteresis).',
      registers: [r],
      collect() {
        this.set(checker.announced ? 1 : 0);
      },
    });
    new Gauge({
      name: 'popdns_health_prefix_announced',
      help: 'Per anycast prefix: 1 announced, 0 withdrawn, as last confirmed by BIRD; -1 unknown (BIRD not in sync).',
      labelNames: ['prefix', 'protocol'],
      registers: [r],
      collect() {
        for (const p of checker.prefixes) {
          this.set(
            { prefix: p.prefix, protocol: p.protocol },
            checker.birdInSync ? (checker.announced ? 1 : 0) : -1,
          );
        }
      },
    });
    new Gauge({
      name: 'popdns_health_bird_up',
      help: '1 if the last command round trip to BIRD succeeded.',
      registers: [r],
      collect() {
        this.set(checker.birdInSync ? 1 : 0);
      },
    });
    new Gauge({
      name: 'popdns_health_bird_consecutive_errors',
      help: 'Failed attempts to reach BIRD since the last success.',
      registers: [r],
      collect() {
        this.set(checker.birdErrors);
      },
    });
    new Counter({
      name: 'popdns_health_transitions_total',
      help: 'State changes of the anycast announcement, by new state.',
      labelNames: ['to'],
      registers: [r],
      collect() {
        this.reset();
        this.inc({ to: 'up' }, checker.transitions.up);
        this.inc({ to: 'down' }, checker.transitions.down);
      },
    });
    new Gauge({
      name: 'popdns_health_last_transition_timestamp_seconds',
      help: 'Unix time of the last announce/withdraw transition (0 = none yet).',
      registers: [r],
      collect() {
        this.set(checker.lastTransition / 1000);
      },
    });
  }

  record(round: RoundReport): void {
    this.rounds.inc({ result: round.healthy ? 'healthy' : 'unhealthy' });
    for (const p of round.probes) {
      this.probes.inc({ transport: p.transport, target: p.target, result: p.ok ? 'ok' : 'fail' });
      this.probeSeconds.observe({ transport: p.transport }, p.ms / 1000);
    }
  }

  listen(host: string, port: number): Promise<Server> {
    const srv = createServer((req, res) => {
      if (req.url === '/metrics') {
        this.registry
          .metrics()
          .then((body) => {
            res.writeHead(200, { 'content-type': this.registry.contentType });
            res.end(body);
          })
          .catch((e: unknown) => {
            res.writeHead(500);
            res.end(String(e));
          });
        return;
      }
      res.writeHead(404);
      res.end('not found: try /metrics\n');
    });
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => resolve(srv));
    });
  }
}
