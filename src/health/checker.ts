/**
 * The health state machine behind `popdns health`. Every interval it runs one round of checks (SOA of
 * every zone on every listener over UDP and TCP, an optional canary, the serial against the zone file
 * on disk), applies rise/fall hysteresis, and makes BIRD announce or withdraw the anycast prefixes.
 *
 * Fail safe: the probe starts withdrawn and announces only after `rise` good rounds; anything it
 * cannot judge (a timeout, a /readyz it cannot reach, an exception in a check) counts as a failure.
 * The maintenance file and a draining server (/readyz 503) withdraw at once, without hysteresis.
 */
import { existsSync, statSync } from 'node:fs';
import { formatListen } from '../server/listen.js';
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
  /** Origin → zone file, for the serial-lag check (empty when unused). */
  zoneFiles: () => Map<string, string>;
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
  private readonly behindSince = new Map<string, number>();
  private readonly diskSerial = new Map<string, { mtimeMs: number; serial: number | null }>();

  constructor(
    private readonly cfg: HealthConfig,
    private readonly targets: ProbeTarget[],
    private readonly zones: string[],
    private readonly deps: CheckerDeps,
  ) {}

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
    const served = new Map<string, number>();
    for (const target of this.targets) {
      for (const transport of this.cfg.transports) {
        const where = `${transport} ${formatListen(target)}`;
        for (const zone of this.zones) {
          jobs.push(
            this.deps.probe(target, transport, zone, TYPE.SOA, this.cfg.timeoutMs).then((r) => {
              probes.push({ target: formatListen(target), transport, zone, ok: r.ok, ms: r.ms });
              if (!r.ok) reasons.push(`${where} ${zone} SOA: ${r.detail}`);
              else if (r.serial !== null) {
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
      if (this.cfg.maxSerialLagMs !== null) this.checkSerials(served, reasons);
    } catch (e) {
      reasons.push(`probe error: ${(e as Error).message}`);
    }
    const report = { healthy: reasons.length === 0, reasons, immediate, probes };
    this.lastRound = report;
    return report;
  }

  private checkSerials(served: Map<string, number>, reasons: string[]): void {
    const files = this.deps.zoneFiles();
    const now = this.deps.now();
    for (const [zone, file] of files) {
      const have = served.get(zone);
      if (have === undefined) continue;
      const want = this.serialOnDisk(file);
      if (want === null || !serialLess(have, want)) {
        this.behindSince.delete(zone);
        continue;
      }
      const since = this.behindSince.get(zone) ?? now;
      this.behindSince.set(zone, since);
      if (now - since > (this.cfg.maxSerialLagMs ?? 0)) {
        reasons.push(
          `${zone} serves serial ${have} but ${file} has ${want} since ${Math.round((now - since) / 1000)}s`,
        );
      }
    }
  }

  private serialOnDisk(file: string): number | null {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      return null;
    }
    const cached = this.diskSerial.get(file);
    if (cached && cached.mtimeMs === mtimeMs) return cached.serial;
    const serial = loadZoneFile(file).zone?.serial ?? null; // a broken file: the server keeps the old one too
    this.diskSerial.set(file, { mtimeMs, serial });
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
