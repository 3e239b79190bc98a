/**
 * The state of every zone the server serves or was asked to serve, in one place: what `/zones` on the
 * metrics listener returns (JSON), what the health probe follows, and what `popdns_zone_*` metrics are
 * made of. The server keeps one ZoneStatus per zone file (server.ts, updated on every load and
 * reload); gatherZoneStatus() turns them into the report, looking at the files on disk at that moment
 * to tell whether a newer version is waiting there.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isZoneFileName } from '../zone/load.js';

/** What the server knows about one zone file, kept across reloads (plain data: it crosses IPC). */
export interface ZoneStatus {
  /** The origin served from this file (`example.com.`); '' while no version of it has loaded. */
  origin: string;
  file: string;
  serial: number;
  records: number;
  /** Unix time (s) of the last successful load of this zone's file. */
  loadedAt: number;
  loadFailures: number;
  /** Signed zones: Unix time (s) when the earliest RRSIG expires; null when unsigned. */
  sigExpiry: number | null;
  /** Signed zones: the denial of existence in use; null when unsigned. */
  denial?: 'nsec' | 'nsec3' | null;
  /** The origin the file declares, also when it failed to load (null when it cannot be read). */
  fileOrigin?: string | null;
  /** The files the served version was read from (the file and its $INCLUDEs) and their stamp. */
  source?: { paths: string[]; stamp: string } | null;
  /** The first error of the last failed load, as `file:line:col: error: message [CODE]`. */
  lastError?: string | null;
  /** Unix time (s) of the last failed load. */
  lastErrorAt?: number | null;
  /** Unix time (s) of the first failed load since the last successful one; null when the last load worked. */
  failingSince?: number | null;
}

/**
 * One zone in the `/zones` report. Times are Unix seconds. `state`:
 * - `served`: a version of the zone is being answered (perhaps an older one: see `disk_newer`);
 * - `failed`: the file is in the zones directory but no version of it ever loaded (nothing served);
 * - `pending`: the file appeared in the zones directory after the last (re)load; a reload will read it.
 */
export interface ZoneReportEntry {
  /** The zone's origin with a trailing dot, lower case as served; null when the file cannot be read. */
  zone: string | null;
  file: string;
  state: 'served' | 'failed' | 'pending';
  /** SOA serial of the served version; null when nothing is served. */
  serial: number | null;
  records: number | null;
  loaded_at: number | null;
  /** The first error of the last failed load (`file:line:col: error: message [CODE]`). */
  last_error: string | null;
  last_error_at: number | null;
  /** Loads have failed since this time without one succeeding (null: the last load worked). */
  failing_since: number | null;
  /** The file (or one of its $INCLUDEs) on disk differs from the version served, or is gone. */
  disk_newer: boolean;
  /** When disk_newer: when the file on disk last changed here (its ctime, Unix s); else null. */
  disk_changed_at: number | null;
  /** Signed zones: when the earliest RRSIG expires. */
  signature_expiry: number | null;
}

/**
 * One zone this server follows as a secondary (src/xfr), in the `/zones` report's `secondaries`: what
 * the health probe needs to judge it against its primaries (`max-serial-lag`) and its expiry. Times
 * are Unix seconds. `state`: `loaded` (served), `pending` (never loaded yet: SERVFAIL), `expired` (no
 * primary reached for the SOA expire: SERVFAIL).
 */
export interface SecondaryReportEntry {
  zone: string;
  role: 'secondary' | 'catalog' | 'member';
  /** The catalog a member belongs to (its primaries and key are the catalog's); else null. */
  catalog: string | null;
  state: 'loaded' | 'pending' | 'expired';
  /** The serial held; null before the first transfer. */
  serial: number | null;
  /** A newer serial a primary announced and that is not transferred yet; null when not behind. */
  primary_serial: number | null;
  /** Since when a primary is known to be ahead; null when not behind. */
  behind_since: number | null;
  /** Last SOA check or transfer that reached a primary; null = never. */
  last_refresh: number | null;
  /** Seconds left before the zone expires without contact; null when never loaded. */
  expires_in: number | null;
}

export interface ZoneReport {
  /** Unix time (s) of the report. */
  now: number;
  zones: ZoneReportEntry[];
  /** The zones followed from primaries (`secondaries:` and catalog members); absent when none. */
  secondaries?: SecondaryReportEntry[];
}

/**
 * A fingerprint (path, size, mtime, inode) of the files a zone was read from; null when one of them
 * cannot be stat()ed. Two equal stamps mean the server would read the same thing again.
 */
export function sourceStamp(paths: readonly string[]): string | null {
  try {
    return paths
      .map((p) => {
        const st = statSync(p);
        return `${p}:${st.size}:${st.mtimeMs}:${st.ino}`;
      })
      .join('|');
  } catch {
    return null;
  }
}

/** Latest ctime (Unix s) among `paths` that exist; null when none does. */
function changedAt(paths: readonly string[]): number | null {
  let latest: number | null = null;
  for (const p of paths) {
    try {
      const c = statSync(p).ctimeMs / 1000;
      latest = latest === null ? c : Math.max(latest, c);
    } catch {
      // gone: the directory changed; its own time is not worth a second stat
    }
  }
  return latest;
}

/** Zone files directly in `dir`, named as the loader names them; empty when it cannot be read. */
function zoneFilesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => isZoneFileName(f))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/**
 * The zone-status report: one entry per zone file the server knows (served, or failed so far), plus
 * the zone files in `zonesDir` it has not read yet. Looks at the files on disk now (a stat per
 * file), so call it per request, not per query. Used by `/zones` (the health probe's source of truth),
 * and meant for any other status view (control socket, secondary zones) so they all agree.
 *
 * @param status   the server's ZoneStatus list (PopdnsServer.zones(), or a worker's over IPC)
 * @param zonesDir the zones directory, to list files not read yet; null to skip that
 * @param now      Unix time (s) to stamp the report with
 */
export function gatherZoneStatus(
  status: readonly ZoneStatus[],
  zonesDir: string | null,
  now = Date.now() / 1000,
): ZoneReport {
  const zones: ZoneReportEntry[] = [];
  const known = new Set<string>();
  for (const s of status) {
    known.add(s.file);
    const served = s.origin !== '';
    let diskNewer = false;
    let diskChangedAt: number | null = null;
    if (served) {
      const paths = s.source?.paths ?? [s.file];
      const stamp = sourceStamp(paths);
      diskNewer = s.source ? stamp !== s.source.stamp : false;
      if (diskNewer) diskChangedAt = changedAt(paths);
    }
    zones.push({
      zone: served ? s.origin.toLowerCase() : (s.fileOrigin?.toLowerCase() ?? null),
      file: s.file,
      state: served ? 'served' : 'failed',
      serial: served ? s.serial : null,
      records: served ? s.records : null,
      loaded_at: served ? s.loadedAt : null,
      last_error: s.lastError ?? null,
      last_error_at: s.lastErrorAt ?? null,
      failing_since: s.failingSince ?? null,
      disk_newer: diskNewer,
      disk_changed_at: diskChangedAt,
      signature_expiry: s.sigExpiry,
    });
  }
  if (zonesDir !== null) {
    for (const file of zoneFilesIn(zonesDir)) {
      if (known.has(file)) continue;
      zones.push({
        zone: null,
        file,
        state: 'pending',
        serial: null,
        records: null,
        loaded_at: null,
        last_error: null,
        last_error_at: null,
        failing_since: null,
        disk_newer: true,
        disk_changed_at: changedAt([file]),
        signature_expiry: null,
      });
    }
  }
  zones.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { now, zones };
}
