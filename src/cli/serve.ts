/**
 * `popdns serve`: load the config, start the server (one process, or a primary with N workers),
 * reload on SIGHUP, drain on SIGTERM.
 */
import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { availableParallelism } from 'node:os';
import { type MetricsInput, startMetricsServer } from '../metrics/metrics.js';
import { ConfigError, defaultConfig, loadConfigFile, type ServerConfig } from '../server/config.js';
import { formatListen, parseListen } from '../server/listen.js';
import { type Logger, PopdnsServer } from '../server/server.js';
import {
  type PrimaryMessage,
  udpReusePortSupported,
  type WorkerMessage,
  WorkerPool,
} from '../server/workers.js';
import { runLocal } from '../ctl/index.js';
import { type Dispatch, localDispatch, poolDispatch } from '../ctl/dispatch.js';
import { startControlSocket } from '../ctl/socket.js';
import * as log from '../log/log.js';
import type { ProcessInfo } from '../server/status.js';
import { VERSION } from '../version.js';
import { gatherZoneStatus, type ZoneReport } from '../server/zonestatus.js';
import { attachDnstap } from '../dnstap/attach.js';
import { attachSecondaries, attachSecondariesPrimary, attachSecondariesWorker } from '../xfr/host.js';
import { attachUpdatesPrimary, attachUpdatesWorker } from '../server/updateipc.js';
import type { SecondaryManager, SecondaryStatus } from '../xfr/secondary.js';
import { NotifySender } from '../xfr/notify.js';
import { XfrCounters } from '../xfr/counters.js';
import { nameFromText } from '../wire/name.js';

export interface ServeFlags {
  config?: string;
  zones?: string;
  listen?: string[];
  identity?: string;
  metrics?: string;
  workers?: number;
  keys?: string;
  control?: string;
}

/** Defaults, then the config file, then flags. */
export function resolveConfig(flags: ServeFlags): ServerConfig {
  let cfg = defaultConfig(VERSION, availableParallelism());
  if (flags.config) cfg = loadConfigFile(flags.config, cfg);
  if (flags.zones) cfg.zones = flags.zones;
  if (flags.listen && flags.listen.length > 0) {
    cfg.listen = flags.listen.map(parseListen);
    cfg.listenDefault = false;
  }
  if (flags.identity) {
    if (cfg.nsid === cfg.identity) cfg.nsid = flags.identity;
    cfg.identity = flags.identity;
  }
  if (flags.metrics) cfg.metrics = flags.metrics === 'off' ? null : parseListen(flags.metrics);
  if (flags.workers) cfg.workers = flags.workers;
  if (flags.keys) cfg.keys = flags.keys;
  if (flags.control) {
    cfg.control = flags.control === 'off' ? null : flags.control;
    cfg.controlDefault = false;
  }
  return cfg;
}

const C = 'serve';
const out = (m: string, f?: log.LogFields): void => log.info(C, m, f);
const err = (m: string, f?: log.LogFields): void => log.error(C, m, f);

export async function runServe(flags: ServeFlags): Promise<void> {
  let cfg: ServerConfig;
  try {
    cfg = resolveConfig(flags);
  } catch (e) {
    err((e as Error).message);
    process.exitCode = e instanceof ConfigError ? 2 : 1;
    return;
  }
  log.configureLog({ format: cfg.logFormat });
  if (cluster.isWorker) return runWorker(cfg);
  if (cfg.workers > 1) return runPrimary(cfg);
  return runSingle(cfg);
}

async function startMetrics(
  cfg: ServerConfig,
  collect: () => MetricsInput | Promise<MetricsInput>,
  ready: () => boolean,
  draining: () => boolean,
  zoneStatus: () => ZoneReport | Promise<ZoneReport>,
  notReady?: () => string[],
): Promise<Server | null> {
  if (!cfg.metrics) return null;
  try {
    const s = await startMetricsServer(cfg.metrics.host, cfg.metrics.port, {
      version: VERSION,
      collect,
      ready,
      draining,
      zoneStatus,
      ...(notReady ? { notReady } : {}),
    });
    out(`metrics http://${formatListen(cfg.metrics)}/metrics`);
    return s;
  } catch (e) {
    err(`cannot serve metrics on ${formatListen(cfg.metrics)}: ${(e as Error).message}`, {
      code: 'POPDNS_E_LISTEN',
    });
    process.exit(1);
  }
}

/** The `/zones` report with the secondary zones' state (for the health probe's `max-serial-lag`). */
function withSecondaries(report: ZoneReport, status: SecondaryStatus[] | undefined): ZoneReport {
  if (!status) return report;
  report.secondaries = status.map((s) => ({
    zone: s.zone,
    role: s.role,
    catalog: s.catalog,
    state: s.state,
    serial: s.serial,
    primary_serial: s.primarySerial,
    behind_since: s.behindSince,
    last_refresh: s.lastRefresh > 0 ? s.lastRefresh : null,
    expires_in: s.expiresIn,
  }));
  return report;
}

/** When this process started (Unix ms): what `popdns ctl status` reports as the uptime. */
const STARTED = Date.now();

/**
 * Opens the control socket (`control:`). One that cannot be opened is fatal when configured, a
 * warning when it is the default path (the server still serves; `popdns ctl` will not reach it).
 */
async function startControl(cfg: ServerConfig, dispatch: Dispatch): Promise<void> {
  if (!cfg.control) return;
  try {
    const { close } = await startControlSocket(cfg.control, dispatch);
    process.on('exit', close);
    out(`control socket ${cfg.control}`);
  } catch (e) {
    const msg = `cannot open the control socket ${cfg.control}: ${(e as Error).message}`;
    if (cfg.controlDefault) {
      log.warn(C, `${msg}; popdns ctl will not reach this server (set control: in the config)`, {
        code: 'POPDNS_W_CONTROL',
      });
      return;
    }
    err(msg, { code: 'POPDNS_E_CONTROL' });
    process.exit(1);
  }
}

/**
 * SIGTERM: readyz 503 at once, keep answering for the drain period (so the health probe withdraws
 * the anycast prefix first), then close and exit 0. A second SIGTERM, or SIGINT (Ctrl-C: an
 * interactive user wants the server gone now, not in 5 s), exits at once, without a drain.
 */
function onDrain(cfg: ServerConfig, setDraining: () => void, close: () => Promise<void>): void {
  let draining = false;
  const now = (why: string): void => {
    out(`${why}: stopping now, no drain`);
    process.exit(0);
  };
  process.on('SIGTERM', () => {
    if (draining) return now('SIGTERM again');
    draining = true;
    setDraining();
    out(`SIGTERM: draining for ${cfg.drainSeconds}s (readyz 503, still answering)`);
    setTimeout(() => {
      void close().then(() => {
        out('drained, exiting');
        process.exit(0);
      });
    }, cfg.drainSeconds * 1000);
  });
  process.on('SIGINT', () => now('SIGINT'));
}

/**
 * NOTIFY out (RFC 1996) lives in one process: the single server, or the primary of a worker pool (worker
 * 0 writes the IXFR history and reports each serial change; the primary sends once the rolling reload
 * is done, so every worker serves the new version when the secondary comes for it).
 */
function notifier(cfg: ServerConfig, counters: XfrCounters): NotifySender | null {
  if (cfg.transfer.notify.length === 0) return null;
  return new NotifySender(cfg.transfer.notify, cfg.tsigKeys, counters, { info: out, error: err });
}

async function runSingle(cfg: ServerConfig): Promise<void> {
  const server = new PopdnsServer(cfg);
  attachDnstap(server, cfg, { info: out, error: err });
  let secondaries: SecondaryManager | null = null;
  const notify = notifier(cfg, server.counters.xfr);
  if (notify) {
    server.xfr.onSerialChange = (z) =>
      void notify.notify(z.origin, z.serial, { ttl: z.soa.ttl, rdata: z.soa.rdatas[0]! });
  }
  try {
    secondaries = await attachSecondaries(server, cfg, { info: out, error: err });
    await server.start();
  } catch (e) {
    err((e as Error).message);
    process.exit(1);
  }
  let draining = false;
  await startMetrics(
    cfg,
    () => ({
      counters: server.counters.snapshot(),
      zones: server.zones(),
      reloads: server.reloads,
      ...(secondaries ? { secondaries: secondaries.status(), xfrIn: secondaries.counters.snapshot() } : {}),
    }),
    () => server.ready,
    () => draining,
    () => withSecondaries(gatherZoneStatus(server.zones(), cfg.zones), secondaries?.status()),
    () => secondaries?.unready() ?? [],
  );
  const proc = (): ProcessInfo => ({
    startedAt: STARTED,
    workers: 1,
    draining,
    pid: process.pid,
    version: `popdns ${VERSION}`,
  });
  await startControl(
    cfg,
    localDispatch(() => ({ server, proc: proc() })),
  );
  out(`ready: identity ${cfg.identity}, ${server.handler.zones.zones.length} zones, 1 process`);
  process.on('SIGHUP', () => void server.reloadStepwise());
  onDrain(
    cfg,
    () => {
      draining = true;
      server.draining = true;
    },
    () => server.close(),
  );
}

async function runPrimary(cfg: ServerConfig): Promise<void> {
  const pool = new WorkerPool();
  const notifyCounters = new XfrCounters();
  const notify = notifier(cfg, notifyCounters);
  // RFC 2136 updates: one writer for the pool (src/server/updateipc.ts).
  const updates = attachUpdatesPrimary(pool, cfg, { info: out, error: err });
  // Registered before the workers start: worker 0 reports the zones it loads at start too.
  if (notify) {
    cluster.on('message', (_w, m: WorkerMessage) => {
      if (m.kind !== 'xfr-serial') return;
      void (async () => {
        // Wait (bounded) for the rolling reload to reach every worker.
        for (let i = 0; i < 6000 && pool.reloading; i++) await new Promise((r) => setTimeout(r, 100));
        // An update's serial: once every worker serves it (bounded).
        await updates?.settled();
        await notify.notify(Uint8Array.from(m.origin), m.serial, {
          ttl: m.ttl,
          rdata: Uint8Array.from(m.rdata),
        });
      })();
    });
  }
  if (notify && updates) {
    // Worker 0 reports its serial changes (xfr-serial, above); after it died the writer is another
    // worker, and the NOTIFY for its updates goes from here.
    updates.onCommitted = (c, first) => {
      if (!first)
        void notify.notify(nameFromText(c.origin), c.serial, { ttl: c.ttl, rdata: Uint8Array.from(c.rdata) });
    };
  }
  let lines: string[];
  let secondaries: Awaited<ReturnType<typeof attachSecondariesPrimary>> = null;
  try {
    secondaries = await attachSecondariesPrimary(pool, cfg, { info: out, error: err });
    lines = await pool.start(cfg.workers);
    secondaries?.sendAll();
  } catch (e) {
    err((e as Error).message);
    await pool.close();
    process.exit(1);
  }
  for (const l of lines) out(l);
  let draining = false;
  await startMetrics(
    cfg,
    async () => {
      const all = await pool.collect();
      // NOTIFY counters live here, in the primary.
      const x = all.counters.xfr;
      if (x) notifyCounters.notify.forEach((v, i) => (x.notify[i] = (x.notify[i] ?? 0) + v));
      if (secondaries) {
        all.secondaries = secondaries.manager.status();
        all.xfrIn = secondaries.manager.counters.snapshot();
      }
      return all;
    },
    () => pool.alive === cfg.workers,
    () => draining,
    // The first worker's zones: the workers load the same files (and reload one after another).
    async () =>
      withSecondaries(
        gatherZoneStatus((await pool.collect()).zones, cfg.zones),
        secondaries?.manager.status(),
      ),
    () => secondaries?.notReady() ?? [],
  );
  const proc = (): ProcessInfo => ({
    startedAt: STARTED,
    workers: pool.alive,
    draining,
    pid: process.pid,
    version: `popdns ${VERSION}`,
  });
  await startControl(cfg, poolDispatch(pool, proc));
  const mode = udpReusePortSupported() ? 'SO_REUSEPORT sockets' : 'shared sockets (node:cluster)';
  out(`ready: identity ${cfg.identity}, ${cfg.workers} workers on ${mode}`);
  process.on('SIGHUP', () => pool.reloadRolling());
  cluster.on('exit', (w, code, signal) => {
    if (!draining)
      err(`worker ${w.process.pid} died (${signal ?? code}); readyz now 503`, { code: 'POPDNS_E_WORKER' });
  });
  onDrain(
    cfg,
    () => {
      draining = true;
    },
    () => pool.close(),
  );
}

async function runWorker(cfg: ServerConfig): Promise<void> {
  const send = (m: WorkerMessage): void => {
    process.send?.(m);
  };
  // The primary decides when to stop (after the drain): a Ctrl-C or SIGTERM sent to the whole process
  // group must not end the workers early.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('disconnect', () => process.exit(0));
  // Every worker loads the same zones: worker 0 speaks for all of them, the others only say what
  // went wrong before they were ready (a failure there is theirs alone).
  const first = process.env.POPDNS_WORKER === '0';
  log.configureLog({ context: { worker: Number(process.env.POPDNS_WORKER ?? 0) } });
  // Every worker loads the same zones, so only worker 0 prints what they all would; transfers are
  // served by whichever worker took the connection, so every worker prints its own.
  const own = (m: string): boolean => m.startsWith('xfr ') || m.startsWith('update');
  const wlog: Logger = {
    info: (m, f) => {
      if (first || own(m)) log.info('server', m, f);
    },
    warn: (m, f) => {
      if (first || !server.ready || own(m)) log.warn('server', m, f);
    },
    error: (m, f) => {
      if (first || !server.ready || own(m)) log.error('server', m, f);
    },
  };
  const server = new PopdnsServer(cfg, wlog);
  attachDnstap(server, cfg, wlog);
  server.shared = udpReusePortSupported() ? 'reuseport' : 'cluster';
  attachSecondariesWorker(server, cfg, send);
  attachUpdatesWorker(server, cfg, send, wlog);
  if (first && cfg.transfer.notify.length > 0) {
    server.xfr.onSerialChange = (z) =>
      send({
        kind: 'xfr-serial',
        origin: Array.from(z.origin),
        serial: z.serial,
        ttl: z.soa.ttl,
        rdata: Array.from(z.soa.rdatas[0]!),
      });
  }
  try {
    await server.start();
  } catch (e) {
    send({ kind: 'failed', error: (e as Error).message });
    process.exit(1);
  }
  process.on('message', (m: PrimaryMessage) => {
    if (m.kind === 'snapshot') {
      send({
        kind: 'snapshot',
        id: m.id,
        data: { counters: server.counters.snapshot(), zones: server.zones(), reloads: server.reloads },
      });
    } else if (m.kind === 'reload') {
      void server.reloadStepwise().then(() => send({ kind: 'reloaded' }));
    } else if (m.kind === 'ctl') {
      void runLocal({ server, proc: m.proc as ProcessInfo }, m.verb, m.args).then((o) =>
        send({ kind: 'ctl', id: m.id, out: o }),
      );
    } else if (m.kind === 'close') {
      void server.close().then(() => process.exit(0));
    }
  });
  send({ kind: 'ready', lines: [], zones: server.handler.zones.zones.length });
}
