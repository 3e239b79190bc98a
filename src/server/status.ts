/**
 * What the server is serving, in one place: `popdns ctl status` and any other status view (an HTTP
 * zone-status endpoint, say) read it from here so they never disagree.
 */
import type { PopdnsServer, ZoneStatus } from './server.js';

/** Where a zone comes from. Later sources (a secondary's primary) add their own kind. */
export type ZoneSource = { kind: 'file'; path: string };

/** One zone as served. Times are ISO 8601 UTC strings (JSON-friendly); null when not applicable. */
export interface ZoneReport {
  /** Origin with trailing dot (from the file name when the file never loaded). */
  zone: string;
  source: ZoneSource;
  /** Serial served now; null when the zone is not served (its file never loaded). */
  serial: number | null;
  records: number | null;
  /** When the served version was loaded. */
  loadedAt: string | null;
  /** Signed zones: denial of existence and when the earliest RRSIG expires; null when unsigned. */
  signed: { denial: 'nsec' | 'nsec3'; earliestExpiry: string } | null;
  /** The first error of the last failed load (file:line:col: error: … [CODE]); null after a good one. */
  lastError: string | null;
  lastErrorAt: string | null;
  /** Failed loads since the process started. */
  loadFailures: number;
}

/** The process serving the zones. */
export interface ServerReport {
  identity: string;
  version: string;
  /** Process start, ISO 8601 UTC, and seconds since. */
  startedAt: string;
  uptimeSeconds: number;
  /** Processes answering queries (1 without --workers). */
  workers: number;
  /** True after SIGTERM, while the drain runs. */
  draining: boolean;
  pid: number;
}

/** What the process around the server knows and the server does not (set by `popdns serve`). */
export interface ProcessInfo {
  /** Unix time (ms) the serving process (the primary, with workers) started. */
  startedAt: number;
  workers: number;
  draining: boolean;
  pid: number;
  version: string;
}

const iso = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString();

/** The report of one zone from the server's per-file status. */
export function zoneReport(s: ZoneStatus): ZoneReport {
  const served = s.loadedAt > 0;
  return {
    zone: s.origin || s.file,
    source: { kind: 'file', path: s.file },
    serial: served ? s.serial : null,
    records: served ? s.records : null,
    loadedAt: served ? iso(s.loadedAt) : null,
    signed: s.sigExpiry !== null && s.denial ? { denial: s.denial, earliestExpiry: iso(s.sigExpiry) } : null,
    lastError: s.lastError ?? null,
    lastErrorAt: s.lastErrorAt ? iso(s.lastErrorAt) : null,
    loadFailures: s.loadFailures,
  };
}

/**
 * Every zone's report, sorted by name, or only the zones named (case-insensitive, trailing dot
 * optional); names that match no zone come back in `unknown`.
 */
export function zoneReports(
  server: PopdnsServer,
  names: readonly string[] = [],
): { zones: ZoneReport[]; unknown: string[] } {
  const all = server
    .zones()
    .map(zoneReport)
    .sort((a, b) => (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0));
  if (names.length === 0) return { zones: all, unknown: [] };
  const key = (n: string): string => (n.endsWith('.') ? n : `${n}.`).toLowerCase();
  const zones: ZoneReport[] = [];
  const unknown: string[] = [];
  for (const n of names) {
    const z = all.find((r) => r.zone.toLowerCase() === key(n));
    if (z) zones.push(z);
    else unknown.push(n);
  }
  return { zones, unknown };
}

/** The server part of a status report. */
export function serverReport(server: PopdnsServer, proc: ProcessInfo): ServerReport {
  return {
    identity: server.cfg.identity,
    version: proc.version,
    startedAt: new Date(proc.startedAt).toISOString(),
    uptimeSeconds: Math.round((Date.now() - proc.startedAt) / 1000),
    workers: proc.workers,
    draining: proc.draining || server.draining,
    pid: proc.pid,
  };
}
