/**
 * `popdns health --config FILE`: the anycast health probe, a separate process from the server (a
 * checker inside the server would die or hang with it). It reads the same config file as
 * `popdns serve` (listen addresses, zones, metrics) plus its `health:` section.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Server } from 'node:http';
import { BirdAnycast } from '../health/anycast.js';
import {
  type CheckerDeps,
  fileExists,
  type FollowedZone,
  HealthChecker,
  type PrimarySerial,
  type ReadyState,
  type ZoneStatusResult,
} from '../health/checker.js';
import { HealthMetrics } from '../health/metrics.js';
import { probe, type ProbeTarget } from '../health/probe.js';
import { ConfigError, defaultConfig, loadConfigFile, type ServerConfig } from '../server/config.js';
import { formatListen, type ListenAddr } from '../server/listen.js';
import type { ZoneReport } from '../server/zonestatus.js';
import { configureLog, write as logWrite } from '../log/log.js';
import { VERSION } from '../version.js';
import { listZoneFiles, zoneNameFromHead } from '../zone/load.js';
import { nameFromText, nameToText } from '../wire/name.js';
import { soaSerial } from '../wire/records.js';
import type { TsigKeyring } from '../wire/tsig.js';
import { formatPeer } from '../xfr/client.js';
import { querySoa } from '../xfr/transfer.js';

export interface HealthFlags {
  config: string;
  once?: boolean;
}

const log = (m: string, level: 'info' | 'warn' | 'error' = 'info'): void => {
  logWrite(level, 'health', m);
};

/** A wildcard listen address is probed on loopback. */
function probeTarget(a: ListenAddr): ProbeTarget {
  if (a.host === '0.0.0.0') return { host: '127.0.0.1', port: a.port, family: 4 };
  if (a.host === '::') return { host: '::1', port: a.port, family: 6 };
  return { host: a.host, port: a.port, family: a.family };
}

/**
 * The origin the server gives a zone file, read from the head of the file only (the probe must not
 * load a million-record zone to learn its name): the server's own rule (zoneNameFromHead).
 */
export function zoneOrigin(path: string): string | null {
  let head: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      head = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  const o = zoneNameFromHead(path, head);
  return o ? nameToText(o) : null;
}

/** Origin (with trailing dot, lower case) → zone file, for every zone file in the zones directory. */
export function zoneFileMap(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  let files: string[];
  try {
    files = listZoneFiles(dir);
  } catch {
    return m;
  }
  for (const f of files) {
    const origin = zoneOrigin(f);
    if (origin) m.set(origin.toLowerCase(), f);
  }
  return m;
}

async function fetchReady(url: string, timeoutMs: number): Promise<ReadyState> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    if (res.status === 200) return { state: 'ready' };
    if (res.status === 503 && body.startsWith('draining')) return { state: 'draining' };
    return { state: 'error', detail: `${url} answered ${res.status} ${body.trim()}` };
  } catch (e) {
    return { state: 'error', detail: `${url}: ${(e as Error).message}` };
  }
}

/** GET the server's `/zones` report; anything but a 200 with a report in it is a failure. */
export async function fetchZoneStatus(url: string, timeoutMs: number): Promise<ZoneStatusResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    if (res.status !== 200) return { ok: false, detail: `${url} answered ${res.status} ${body.trim()}` };
    const report = JSON.parse(body) as ZoneReport;
    if (!Array.isArray(report.zones)) return { ok: false, detail: `${url}: no zones in the answer` };
    return { ok: true, report };
  } catch (e) {
    return { ok: false, detail: `${url}: ${(e as Error).message}` };
  }
}

/**
 * Asks a secondary zone's primaries in order for its SOA over TCP, signed with the zone's TSIG key
 * (the same request the server's refresh sends); the first that answers wins. Never rejects.
 */
export async function askPrimaries(
  z: FollowedZone,
  keys: TsigKeyring,
  timeoutMs: number,
): Promise<PrimarySerial> {
  const key = z.key === null ? null : (keys.get(z.key) ?? undefined);
  if (key === undefined) return { serial: null, detail: `TSIG key ${z.key} is not in tsig-keys` };
  const why: string[] = [];
  for (const p of z.primaries) {
    try {
      const soa = await querySoa(p, nameFromText(z.zone), { key, idleMs: timeoutMs, totalMs: timeoutMs });
      const serial = soaSerial(soa.rdata);
      if (serial !== null) return { serial, detail: formatPeer(p) };
      why.push(`${formatPeer(p)}: SOA without a serial`);
    } catch (e) {
      why.push(`${formatPeer(p)}: ${(e as Error).message}`);
    }
  }
  return { serial: null, detail: why.join('; ') || 'no primaries' };
}

export async function runHealth(flags: HealthFlags): Promise<void> {
  let cfg: ServerConfig;
  try {
    cfg = loadConfigFile(flags.config, defaultConfig(VERSION, availableParallelism()));
  } catch (e) {
    log((e as Error).message, 'error');
    process.exitCode = e instanceof ConfigError ? 2 : 1;
    return;
  }
  configureLog({ format: cfg.logFormat });
  const h = cfg.health;
  const targets = (h.targets ?? cfg.listen).map(probeTarget);
  const readyUrl = h.readyzOff
    ? null
    : (h.readyz ?? (cfg.metrics ? `http://${formatListen(cfg.metrics)}/readyz` : null));
  // The zone list comes from the server itself: /zones beside /readyz on its metrics listener.
  const statusUrl = h.readyz
    ? new URL('/zones', h.readyz).href
    : cfg.metrics
      ? `http://${formatListen(cfg.metrics)}/zones`
      : null;
  const bird = new BirdAnycast(h.birdSocket, h.stateFile, h.prefixes, Math.max(h.timeoutMs, 1000));
  const deps: CheckerDeps = {
    probe,
    // A local HTTP call; it gets the whole round, not just the DNS query timeout.
    readyz: readyUrl ? () => fetchReady(readyUrl, h.intervalMs) : null,
    bird,
    log,
    now: () => Date.now(),
    maintenance: fileExists,
    zoneStatus: statusUrl ? () => fetchZoneStatus(statusUrl, h.intervalMs) : null,
    zoneFiles: () => zoneFileMap(cfg.zones),
    primarySerial: (z) => askPrimaries(z, cfg.tsigKeys, Math.max(h.timeoutMs, 1000)),
  };
  const checker = new HealthChecker(h, targets, h.zones, deps, {
    secondaries: cfg.secondaries,
    catalogs: cfg.catalogs,
  });

  if (flags.once) {
    const r = await checker.check();
    for (const reason of r.reasons) process.stdout.write(`unhealthy: ${reason}\n`);
    if (r.healthy) process.stdout.write(`healthy: ${r.probes.length} probes answered\n`);
    // Exit now: fetch's idle keep-alive connections to /readyz and /zones would hold the process for
    // seconds more (stdout to a pipe or file is written synchronously on Linux and macOS).
    process.exit(r.healthy ? 0 : 1);
  }

  const metrics = new HealthMetrics(checker, VERSION);
  let metricsServer: Server | null = null;
  if (h.metrics) {
    try {
      metricsServer = await metrics.listen(h.metrics.host, h.metrics.port);
    } catch (e) {
      log(
        `cannot listen for metrics on ${formatListen(h.metrics)}: ${(e as Error).message} [POPDNS_E_LISTEN]`,
        'error',
      );
      process.exitCode = 1;
      return;
    }
  }
  log(
    `probing ${targets.map(formatListen).join(', ')} (${h.transports.join('+')}) for ` +
      `${h.zones?.join(', ') ?? (statusUrl ? `the zones ${statusUrl} lists` : `the zone files in ${cfg.zones}`)} every ${h.intervalMs} ms; rise ${h.rise}, fall ${h.fall}; prefixes ` +
      `${h.prefixes.map((p) => `${p.prefix} (${p.protocol})`).join(', ') || 'none'} via ${h.birdSocket}`,
  );

  let stopping = false;
  let timer: NodeJS.Timeout | null = null;
  let wake: (() => void) | null = null;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: withdrawing and exiting`);
    if (timer) clearTimeout(timer);
    wake?.();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  // Withdrawn until proven healthy: make BIRD agree before the first round.
  await checker.reconcile();
  while (!stopping) {
    const started = Date.now();
    const r = await checker.round();
    metrics.record(r);
    if (stopping) break;
    const delay = Math.max(0, h.intervalMs - (Date.now() - started));
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, delay);
    });
  }
  checker.announced = false;
  await checker.reconcile();
  metricsServer?.close();
  process.exit(0);
}
