/**
 * The health state machine behind `popdns health`. Every interval it runs one round of checks (SOA of
 * every zone on every listener over UDP and TCP, an optional canary, the serial against the zone file
 * on disk), applies rise/fall hysteresis, and makes BIRD announce or withdraw the anycast prefixes.
 *
 * The zones it checks are the ones the server serves, learnt again every round from the server's
 * `/zones` report (server/zonestatus.ts): a zone removed on purpose (file deleted, server reloaded) is
 * no longer probed, a zone added is, and a zone file the server failed to load (nothing served) or
 * whose newer version it cannot load (stale) makes the round fail.
 *
 * Fail safe: the probe starts withdrawn and announces only after `rise` good rounds; anything it
 * cannot judge (a timeout, a /readyz or /zones it cannot reach, an exception in a check) counts as a
 * failure. The maintenance file and a draining server (/readyz 503) withdraw at once, without hysteresis.
 */
import { existsSync, statSync } from 'node:fs';
import { formatListen } from '../server/listen.js';
import type { ZoneReport, ZoneReportEntry } from '../server/zonestatus.js';
import { TYPE } from '../wire/constants.js';
import { loadZoneFile } from '../zone/load.js';
import type { AnycastPrefix, HealthConfig } from './config.js';
import type { ProbeResult, ProbeTarget } from './probe.js';

export type ProbeFn = (
  target: ProbeTarget,
  transport: 'udp' | 'tcp',
  qname: string,
  qtype: number,
  timeoutMs: number,
) => Promise<ProbeResult>;

/** What /readyz said: ready, draining (503), or unreachable/other (a failure). */
export type ReadyState = { state: 'ready' } | { state: 'draining' } | { state: 'error'; detail: string };

/** What /zones said: the server's zone-status report, or why it could not be had (a failure). */
export type ZoneStatusResult = { ok: true; report: ZoneReport } | { ok: false; detail: string };

/** Makes BIRD match the wanted state; throws when it could not. */
export interface AnycastControl {
  apply(announce: boolean): Promise<string[]>;
}

export interface CheckerDeps {
  probe: ProbeFn;
  readyz: (() => Promise<ReadyState>) | null;
  bird: AnycastControl;
  /** One log line (level defaults to info). */
  log: (msg: string, level?: 'info' | 'warn' | 'error') => void;
  now: () => number;
  maintenance: (path: string) => boolean;
  /** The server's zone-status report (`/zones`); null when the server has no metrics listener. */
  zoneStatus: (() => Promise<ZoneStatusResult>) | null;
  /**
   * Origin → zone file in the zones directory: the fallback zone list (and serial-lag source) when
   * there is no `/zones` to ask.
   */
  zoneFiles: () => Map<string, string>;
  /**
   * Asks a secondary zone's primaries, in order, for the zone's SOA serial (signed with the zone's TSIG
   * key); the first answer wins. Absent: secondary zones are not compared with their primaries.
   */
  primarySerial?: (zone: FollowedZone) => Promise<PrimarySerial>;
}

/** A zone the server follows: `secondaries:` entries and catalog members (with the catalog's primaries). */
export interface FollowedZone {
  /** Lower case, trailing dot. */
  zone: string;
  primaries: { host: string; port: number }[];
  /** TSIG key name from tsig-keys, or null: unsigned. */
  key: string | null;
}

/** What the primaries said: a serial, or null when none answered. */
export interface PrimarySerial {
  serial: number | null;
  /** The primary that answered (`192.0.2.1:53`), or why none did. */
  detail: string;
}

/** The `secondaries:` and `catalogs:` of the config (the probe reads the server's config file). */
export interface FollowConfig {
  secondaries: FollowedZone[];
  catalogs: FollowedZone[];
}

export interface ProbeStat {
  target: string;
  transport: 'udp' | 'tcp';
  zone: string;
  ok: boolean;
  ms: number;
}

export interface RoundReport {
  healthy: boolean;
  /** Why the round failed, or why it withdraws at once. */
  reasons: string[];
  immediate: 'maintenance' | 'draining' | null;
  probes: ProbeStat[];
}

export class HealthChecker {
  /** What the probe wants BIRD to do. Starts withdrawn (fail safe). */
  announced = false;
  okStreak = 0;
  failStreak = 0;
  lastTransition = 0;
  transitions = { up: 0, down: 0 };
  /** Whether BIRD confirmed the current wanted state. */
  birdInSync = false;
  birdErrors = 0;
  lastBirdError = '';
  lastRound: RoundReport | null = null;
  /** The zones probed in the last round. */
  probedZones: string[] = [];
  private readonly diskSerial = new Map<string, { stamp: string; serial: number | null }>();
  /** Secondary zone → since when (Unix ms) this probe has seen its primary ahead of the served serial. */
  private readonly behindSeen = new Map<string, number>();
  /** Secondary zone → the primary's serial and when it was asked (Unix ms): asked again after a while. */
  private readonly primaryAsked = new Map<string, { at: number; answer: PrimarySerial }>();
  /** The last zone-status report that could be read: its zones are probed while /zones is unreachable. */
  private lastReport: ZoneReport | null = null;

  /**
   * @param zones the zones to probe, from `health.zones`; null = follow the server (its `/zones`
   *              report, or without one the zone files in the zones directory, read every round)
   */
  constructor(
    private readonly cfg: HealthConfig,
    private readonly targets: ProbeTarget[],
    private readonly zones: string[] | null,
    private readonly deps: CheckerDeps,
    private readonly follow: FollowConfig = { secondaries: [], catalogs: [] },
  ) {}

  /** The served zones of a report, by origin. */
  private static served(report: ZoneReport): Map<string, ZoneReportEntry> {
    const m = new Map<string, ZoneReportEntry>();
    for (const z of report.zones) if (z.state === 'served' && z.zone !== null) m.set(z.zone, z);
    return m;
  }

  get prefixes(): AnycastPrefix[] {
    return this.cfg.prefixes;
  }

  /** One round of checks; never throws. */
  async check(): Promise<RoundReport> {
    const reasons: string[] = [];
    const probes: ProbeStat[] = [];
    let immediate: RoundReport['immediate'] = null;
    if (this.cfg.maintenanceFile && this.deps.maintenance(this.cfg.maintenanceFile)) {
      immediate = 'maintenance';
      reasons.push(`maintenance file ${this.cfg.maintenanceFile} exists`);
    }
    const jobs: Promise<void>[] = [];
    if (this.deps.readyz) {
      jobs.push(
        this.deps.readyz().then((r) => {
          if (r.state === 'draining') {
            immediate ??= 'draining';
            reasons.push('server is draining (/readyz 503)');
          } else if (r.state === 'error') reasons.push(`readyz: ${r.detail}`);
        }),
      );
    }
    // Which zones: the operator's list, else what the server says it serves (asked every round).
    let report: ZoneReport | null = null;
    if (this.deps.zoneStatus) {
      try {
        const s = await this.deps.zoneStatus();
        if (s.ok) report = this.lastReport = s.report;
        else reasons.push(`zone status: ${s.detail}`);
      } catch (e) {
        reasons.push(`zone status: ${(e as Error).message}`);
      }
    }
    const following = this.zones === null;
    const known = report ?? this.lastReport;
    let zones: string[];
    if (this.zones !== null) zones = this.zones;
    else if (known) zones = [...HealthChecker.served(known).keys()];
    else {
      // No report yet (or no /zones at all): the zone files in the directory and the config's secondaries.
      zones = [...new Set([...this.deps.zoneFiles().keys(), ...this.follow.secondaries.map((f) => f.zone)])];
    }
    this.probedZones = zones;
    if (following && zones.length === 0 && !this.cfg.canary && (report || !this.deps.zoneStatus)) {
      reasons.push('the server serves no zones');
    }
    if (following && report) {
      // A zone file the server should serve but never loaded: it answers REFUSED for the whole zone.
      for (const z of report.zones) {
        if (z.state !== 'failed') continue;
        reasons.push(
          `${z.file}: zone ${z.zone ?? '(unreadable)'} is not served: ${z.last_error ?? 'failed to load'}`,
        );
      }
    }
    const served = new Map<string, number>();
    /** Zone → why its SOA probes failed (kept apart: a zone removed meanwhile is not a failure). */
    const zoneFailures = new Map<string, string[]>();
    for (const target of this.targets) {
      for (const transport of this.cfg.transports) {
        const where = `${transport} ${formatListen(target)}`;
        for (const zone of zones) {
          jobs.push(
            this.deps.probe(target, transport, zone, TYPE.SOA, this.cfg.timeoutMs).then((r) => {
              probes.push({ target: formatListen(target), transport, zone, ok: r.ok, ms: r.ms });
              if (!r.ok) {
                const list = zoneFailures.get(zone) ?? [];
                list.push(`${where} ${zone} SOA: ${r.detail}`);
                zoneFailures.set(zone, list);
              } else if (r.serial !== null) {
                const prev = served.get(zone);
                served.set(zone, prev === undefined ? r.serial : Math.min(prev, r.serial));
              }
            }),
          );
        }
        if (this.cfg.canary) {
          const canary = this.cfg.canary;
          jobs.push(
            this.deps.probe(target, transport, canary, TYPE.A, this.cfg.timeoutMs).then((r) => {
              probes.push({ target: formatListen(target), transport, zone: canary, ok: r.ok, ms: r.ms });
              if (!r.ok) reasons.push(`${where} canary ${canary} A: ${r.detail}`);
            }),
          );
        }
      }
    }
    try {
      await Promise.all(jobs);
      if (zoneFailures.size > 0 && following && report && this.deps.zoneStatus) {
        // The server may have dropped a zone (file removed, reloaded) between the report and the
        // probe: ask again, and forget the failures of zones it no longer serves.
        const again = await this.deps.zoneStatus();
        if (again.ok) {
          this.lastReport = again.report;
          const still = HealthChecker.served(again.report);
          for (const zone of [...zoneFailures.keys()]) if (!still.has(zone)) zoneFailures.delete(zone);
        }
      }
      for (const list of zoneFailures.values()) reasons.push(...list);
      if (known) this.checkExpired(known, reasons);
      if (this.cfg.maxSerialLagMs !== null) {
        if (known) this.checkStale(known, served, reasons);
        else if (!this.deps.zoneStatus) this.checkSerials(served, reasons);
        await this.checkPrimaries(known, served, reasons);
      }
    } catch (e) {
      reasons.push(`probe error: ${(e as Error).message}`);
    }
    const round = { healthy: reasons.length === 0, reasons, immediate, probes };
    this.lastRound = round;
    return round;
  }

  /**
   * `max-serial-lag` with the server's report: a served zone is stale when the file on disk is newer
   * than the version served and either the server failed to load it (stale since the first failed
   * load) or it holds a higher serial or does not load (stale since the file changed, its ctime). The
   * times come from the server and the file system, so one round (`--once`) can tell as well as many.
   * A file that is gone is a zone being removed, never stale.
   */
  private checkStale(report: ZoneReport, probed: Map<string, number>, reasons: string[]): void {
    const nowS = this.deps.now() / 1000;
    const lagS = (this.cfg.maxSerialLagMs ?? 0) / 1000;
    for (const z of HealthChecker.served(report).values()) {
      if (z.zone === null || !z.disk_newer || (this.zones !== null && !this.zones.includes(z.zone))) continue;
      if (!existsSync(z.file)) continue;
      const have = probed.get(z.zone) ?? z.serial ?? 0;
      let since: number | null = null;
      let why = '';
      if (z.failing_since !== null) {
        since = z.failing_since;
        why = `${z.zone} serves serial ${have} but the newer ${z.file} fails to load (${z.last_error ?? 'error'})`;
      } else {
        const want = this.serialOnDisk(z.file);
        if (want === null) {
          since = z.disk_changed_at;
          why = `${z.zone} serves serial ${have} but the newer ${z.file} does not load`;
        } else if (serialLess(have, want)) {
          since = z.disk_changed_at;
          why = `${z.zone} serves serial ${have} but ${z.file} has ${want}`;
        }
      }
      if (since !== null && nowS - since > lagS) {
        reasons.push(`${why} since ${Math.round(nowS - since)}s [POPDNS_E_STALE_ZONE]`);
      }
    }
  }

  /** Whether `zone` (lower case) is among `health.zones` (any zone when that is not set). */
  private listed(zone: string): boolean {
    return this.zones === null || this.zones.some((z) => z.toLowerCase() === zone);
  }

  /**
   * A secondary zone that expired (no primary reached for its SOA expire) answers SERVFAIL: the PoP
   * must not stay announced with it (issue 12). /readyz says so too, but it may be switched off.
   */
  private checkExpired(report: ZoneReport, reasons: string[]): void {
    for (const z of report.secondaries ?? []) {
      if (z.state !== 'expired' || !this.listed(z.zone)) continue;
      const last = z.last_refresh === null ? 'never' : `${Math.round(report.now - z.last_refresh)}s ago`;
      reasons.push(
        `${z.zone} expired: no primary reached (last contact ${last}); answering SERVFAIL [POPDNS_E_ZONE_EXPIRED]`,
      );
    }
  }

  /**
   * The secondary zones to compare with their primaries: the config's `secondaries:`, and the members of
   * its catalogs the server reports (they take the catalog's primaries and key), each with the serial
   * the server holds and since when it knows a primary is ahead.
   */
  private followed(
    report: ZoneReport | null,
  ): { spec: FollowedZone; serial: number | null; behindSince: number | null; state: string }[] {
    const byName = new Map((report?.secondaries ?? []).map((z) => [z.zone, z]));
    const out: { spec: FollowedZone; serial: number | null; behindSince: number | null; state: string }[] =
      [];
    const add = (spec: FollowedZone): void => {
      if (!this.listed(spec.zone)) return;
      const r = byName.get(spec.zone);
      out.push({
        spec,
        serial: r?.serial ?? null,
        behindSince: r?.behind_since ?? null,
        state: r?.state ?? 'unknown',
      });
    };
    for (const s of this.follow.secondaries) add(s);
    for (const z of report?.secondaries ?? []) {
      if (z.role !== 'member' || z.catalog === null) continue;
      const cat = this.follow.catalogs.find((c) => c.zone === z.catalog);
      if (cat && !this.follow.secondaries.some((s) => s.zone === z.zone))
        add({ zone: z.zone, primaries: cat.primaries, key: cat.key });
    }
    return out;
  }

  /**
   * `max-serial-lag` for secondary zones: the serial served against the primary's SOA serial (asked
   * by this probe). Unhealthy when the served serial has stayed behind the primary's for longer than
   * the lag — since the server first saw the primary ahead (`behind_since` in /zones, so `--once`
   * can tell) or this probe did, whichever is earlier. A primary that does not answer judges nothing:
   * then the zone's expire timer governs (checkExpired).
   */
  private async checkPrimaries(
    report: ZoneReport | null,
    probed: Map<string, number>,
    reasons: string[],
  ): Promise<void> {
    const ask = this.deps.primarySerial;
    if (!ask) return;
    const now = this.deps.now();
    const lagMs = this.cfg.maxSerialLagMs ?? 0;
    // Each zone's primaries are asked at most every half lag (at least every 10 s, at most every round).
    const every = Math.min(Math.max(lagMs / 2, this.cfg.intervalMs), 10_000);
    const zones = this.followed(report);
    const live = new Set(zones.map((z) => z.spec.zone));
    for (const name of [...this.behindSeen.keys()]) if (!live.has(name)) this.behindSeen.delete(name);
    await Promise.all(
      zones.map(async (z) => {
        if (z.state === 'pending' || z.state === 'expired') return; // /readyz and checkExpired judge these
        const have = probed.get(z.spec.zone) ?? z.serial;
        if (have === null) return;
        const cached = this.primaryAsked.get(z.spec.zone);
        let answer: PrimarySerial;
        if (cached && now - cached.at < every) answer = cached.answer;
        else {
          try {
            answer = await ask(z.spec);
          } catch (e) {
            answer = { serial: null, detail: (e as Error).message };
          }
          this.primaryAsked.set(z.spec.zone, { at: now, answer });
        }
        if (answer.serial === null) return; // unreachable: the expire timer governs
        if (!serialLess(have, answer.serial)) {
          this.behindSeen.delete(z.spec.zone);
          return;
        }
        let since = this.behindSeen.get(z.spec.zone);
        if (since === undefined) this.behindSeen.set(z.spec.zone, (since = now));
        if (z.behindSince !== null) since = Math.min(since, z.behindSince * 1000);
        if (now - since > lagMs) {
          reasons.push(
            `${z.spec.zone} serves serial ${have} but its primary ${answer.detail} has ${answer.serial} since ${Math.round((now - since) / 1000)}s [POPDNS_E_SERIAL_LAG]`,
          );
        }
      }),
    );
  }

  /** `max-serial-lag` without a report: the served serial against the zone file in the directory. */
  private checkSerials(served: Map<string, number>, reasons: string[]): void {
    const files = this.deps.zoneFiles();
    const nowS = this.deps.now() / 1000;
    const lagS = (this.cfg.maxSerialLagMs ?? 0) / 1000;
    for (const [zone, file] of files) {
      const have = served.get(zone);
      if (have === undefined) continue;
      const want = this.serialOnDisk(file);
      if (want !== null && !serialLess(have, want)) continue;
      let since: number;
      try {
        since = statSync(file).ctimeMs / 1000;
      } catch {
        continue;
      }
      if (nowS - since > lagS) {
        reasons.push(
          `${zone} serves serial ${have} but ${file} ${want === null ? 'does not load' : `has ${want}`} since ${Math.round(nowS - since)}s [POPDNS_E_STALE_ZONE]`,
        );
      }
    }
  }

  private serialOnDisk(file: string): number | null {
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch {
      return null;
    }
    const cached = this.diskSerial.get(file);
    if (cached && cached.stamp === stamp) return cached.serial;
    const serial = loadZoneFile(file).zone?.serial ?? null;
    this.diskSerial.set(file, { stamp, serial });
    return serial;
  }

  /** Applies one round's verdict to the wanted state; returns true when the state changed. */
  decide(r: RoundReport): boolean {
    if (r.healthy) {
      this.okStreak++;
      this.failStreak = 0;
    } else {
      this.failStreak++;
      this.okStreak = 0;
    }
    let change: { to: boolean; why: string } | null = null;
    if (this.announced && r.immediate) change = { to: false, why: r.reasons.join('; ') };
    else if (this.announced && this.failStreak >= this.cfg.fall) {
      change = { to: false, why: `${this.failStreak} failed rounds, last: ${r.reasons.join('; ')}` };
    } else if (!this.announced && !r.immediate && this.okStreak >= this.cfg.rise) {
      change = { to: true, why: `${this.okStreak} good rounds` };
    }
    if (!change) return false;
    this.announced = change.to;
    this.birdInSync = false;
    this.lastTransition = this.deps.now();
    this.transitions[change.to ? 'up' : 'down']++;
    this.deps.log(
      `${change.to ? 'DOWN -> UP, announcing' : 'UP -> DOWN, withdrawing'}: ${change.why}`,
      change.to ? 'info' : 'warn',
    );
    return true;
  }

  /** Pushes the wanted state to BIRD (every round, so a restarted BIRD is corrected too). */
  async reconcile(): Promise<void> {
    try {
      const said = await this.deps.bird.apply(this.announced);
      if (!this.birdInSync || this.birdErrors > 0) {
        if (this.birdErrors > 0)
          this.deps.log(`BIRD reachable again after ${this.birdErrors} failed attempts`);
        this.deps.log(`BIRD: ${said.join('; ')}`);
      }
      this.birdInSync = true;
      this.birdErrors = 0;
      this.lastBirdError = '';
    } catch (e) {
      const msg = (e as Error).message;
      if (this.birdErrors === 0 || msg !== this.lastBirdError)
        this.deps.log(`BIRD: ${msg}; retrying every round [POPDNS_E_BIRD]`, 'error');
      this.birdErrors++;
      this.birdInSync = false;
      this.lastBirdError = msg;
    }
  }

  /** A full round: check, decide, reconcile. */
  async round(): Promise<RoundReport> {
    const r = await this.check();
    this.decide(r);
    await this.reconcile();
    return r;
  }
}

/** RFC 1982 serial number arithmetic: a < b. */
export function serialLess(a: number, b: number): boolean {
  return a !== b && ((a < b && b - a < 2 ** 31) || (a > b && a - b > 2 ** 31));
}

export const fileExists = (path: string): boolean => existsSync(path);
