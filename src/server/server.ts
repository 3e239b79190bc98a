/**
 * The running server: loads the zones, binds UDP and TCP on every listen address, reloads without
 * loss, and drains on shutdown. Transports hand bytes to the Handler; they know nothing of zones.
 */
import cluster from 'node:cluster';
import { createSocket, type Socket } from 'node:dgram';
import { Cookies } from '../cookies/cookies.js';
import { RateLimiter } from '../rrl/rrl.js';
import { mkdirSync, readdirSync } from 'node:fs';
import * as log from '../log/log.js';
import { LogThrottle } from '../xfr/throttle.js';
import type { LogFields } from '../log/log.js';
import { nameToText } from '../wire/name.js';
import { SignPool } from '../dnssec/signpool.js';
import { SignatureCache, signZone, signZoneAsync } from '../dnssec/signzone.js';
import { TYPE } from '../wire/constants.js';
import { listZoneFiles, loadZoneSteps } from '../zone/load.js';
import { originFromFileName } from '../zone/masterfile.js';
import { serialNotRaised } from '../zone/serial.js';
import { signingPlan } from './signingplan.js';
import { formatDiagnostic, type ParsedZone } from '../zone/types.js';
import { type Zone, unavailableZone } from '../zone/zone.js';
import { ZoneSet } from '../zone/zoneset.js';
import type { ServerConfig } from './config.js';
import { Counters } from './counters.js';
import { Handler } from './handler.js';
import type { QueryTap } from './tap.js';
import { formatListen, type ListenAddr } from './listen.js';
import { TcpListener } from './tcp.js';
import { collectGarbage, RELEASE_MIN_RECORDS } from './heap.js';
import { sourceStamp, type ZoneStatus } from './zonestatus.js';
import { XfrPrimary } from '../xfr/primary.js';
import { UpdateService } from '../update/service.js';
import type { ZoneSigner } from '../update/resign.js';

export type { ZoneStatus } from './zonestatus.js';

/**
 * What one reload did to one zone file (for `popdns ctl reload` and the log).
 * `loaded`: parsed and now served; `unchanged`: files untouched, kept as loaded; `failed`: rejected
 * whole (the previous version, if any, keeps serving: `serial` is what is served); `removed`: gone.
 */
export interface ZoneOutcome {
  /** Origin with trailing dot (from the file name when the file never loaded). */
  zone: string;
  file: string;
  result: 'loaded' | 'unchanged' | 'failed' | 'removed';
  /** Serial served before this reload; null when the zone was not served. */
  serialOld: number | null;
  /** Serial served after it; null when none. */
  serial: number | null;
  records: number | null;
  /** Wall time spent on this zone (parse, check, sign), in seconds. */
  seconds: number;
  /** First error, `file:line:col: error: message [CODE]`; null unless failed. */
  error: string | null;
}

export interface ReloadResult {
  ok: boolean;
  loaded: number;
  failed: number;
  removed: number;
  /** One entry per zone file looked at (all of them, or the zones asked for). */
  zones: ZoneOutcome[];
}

/** Where the server's log lines go: by default the process log (src/log), component `server`. */
export interface Logger {
  info(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Optional: loggers without it get warnings through `error`. */
  warn?(msg: string, fields?: LogFields): void;
}

const defaultLogger: Logger = {
  info: (m, f) => log.info('server', m, f),
  warn: (m, f) => log.warn('server', m, f),
  error: (m, f) => log.error('server', m, f),
};

/** Lower-case origin with its trailing dot. */
function originKey(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n : `${n}.`;
}

/**
 * dgram's `lookup` for the listener sockets, which only ever send to rinfo.address, an IP literal:
 * answers at once. (A host name would reach the kernel unresolved and fail the send with an error.)
 */
function literalLookup(
  address: string,
  _family: unknown,
  cb: (err: Error | null, address: string, family: number) => void,
): void {
  cb(null, address, address.includes(':') ? 6 : 4);
}

/** Longest stretch a stepwise reload parses before it lets queries through. */
const RELOAD_SLICE_MS = 5;
/**
 * Turns of the event loop between two slices while queries keep arriving (libuv reads at most 32
 * datagrams per socket per turn): under load, answering gets at least half the time of a reload.
 */
const RELOAD_IO_TURNS = 8;
/** A turn shorter than this found nothing to do: stop yielding and parse on. */
const IDLE_TURN_MS = 0.25;

/**
 * Runs a stepwise job, letting queries through between slices of about RELOAD_SLICE_MS. A step may
 * yield a promise (a zone signing on the signing threads): the job waits for it, answering meanwhile.
 */
async function stepwise<T>(steps: Generator<void | Promise<void>, T, void>): Promise<T> {
  let sliceStart = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (r.value instanceof Promise) {
      await r.value;
      sliceStart = performance.now();
      continue;
    }
    if (performance.now() - sliceStart >= RELOAD_SLICE_MS) {
      for (let turn = 0; turn < RELOAD_IO_TURNS; turn++) {
        const t = performance.now();
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (performance.now() - t < IDLE_TURN_MS) break;
      }
      sliceStart = performance.now();
    }
  }
}

export class PopdnsServer {
  readonly counters = new Counters();
  readonly handler: Handler;
  private readonly zoneFiles = new Map<string, Zone>();
  private readonly status = new Map<string, ZoneStatus>();
  private readonly udp: Socket[] = [];
  private readonly tcp: TcpListener[] = [];
  readonly bound: { transport: 'udp' | 'tcp'; addr: ListenAddr }[] = [];
  reloads = { success: 0, failure: 0 };
  /** How listening sockets are shared between worker processes: not at all, SO_REUSEPORT, or via cluster. */
  shared: 'none' | 'reuseport' | 'cluster' = 'none';
  draining = false;
  ready = false;
  /** The primary side: transfers out, IXFR history (see src/xfr/primary.ts). */
  readonly xfr: XfrPrimary;
  /** dnstap writer of this process (attached by src/dnstap/attach.ts before start()); null = off. */
  dnstap: QueryTap | null = null;

  constructor(
    readonly cfg: ServerConfig,
    private readonly log: Logger = defaultLogger,
  ) {
    this.handler = new Handler(
      {
        identity: cfg.identity,
        nsid: cfg.nsid === null ? null : Buffer.from(cfg.nsid, 'utf8'),
        version: cfg.version,
        ednsUdpSize: cfg.ednsUdpSize,
        cookies: cfg.cookies ? new Cookies(cfg.cookies) : null,
        // With --workers N each process takes 1/N of the rate (README: "Abuse and amplification").
        rrl: cfg.rrl ? new RateLimiter(cfg.rrl, cluster.isWorker ? cfg.workers : 1) : null,
        tsigKeys: cfg.tsigKeys,
      },
      new ZoneSet([]),
      this.counters,
    );
    // One process writes the IXFR history: the single server, or worker 0 (src/cli/serve.ts).
    const worker = process.env.POPDNS_WORKER;
    this.xfr = new XfrPrimary(
      {
        tsigKeys: cfg.tsigKeys,
        transfer: cfg.transfer,
        dataDir: cfg.dataDir,
        writer: worker === undefined || worker === '0',
      },
      () => this.handler.zones,
      this.counters.xfr,
      log,
    );
    this.handler.transfers = this.xfr;
    // A request whose TSIG fails is logged (throttled per kind and error: anyone can send them).
    const tsigLog = new LogThrottle();
    this.handler.onTsigFailure = (kind, status, key, peer) => {
      const line = tsigLog.line(
        `${kind} ${status}`,
        `${kind} from ${peer} refused: TSIG ${status.toUpperCase()}${key ? ` (key ${key})` : ''} [POPDNS_E_TSIG]`,
      );
      if (line) log.error(line);
    };
    // RFC 2136 updates (src/update): chained before any other opcode handler.
    if (cfg.updates.size > 0) {
      const updates = new UpdateService(
        {
          policies: cfg.updates,
          dataDir: cfg.dataDir,
          // Journal repair and the file-edit merge's writes at load: one process (with --workers N,
          // worker 0; updates reach the pool's one writer through src/server/updateipc.ts).
          writer: !cluster.isWorker || process.env.POPDNS_WORKER === '0',
          limits: cfg.updateLimits,
          ednsUdpSize: cfg.ednsUdpSize,
        },
        {
          fileZone: (o) => this.fileZone(o),
          otherZone: (o) => this.secondaryZones.has(o),
          commit: (prev, next) => this.commitUpdate(prev, next),
          busy: () => (this.reloading ? 'a zone reload is running; retry' : null),
          signer: (o) => this.signers.get(o) ?? null,
          info: (m) => log.info(m),
          error: (m) => log.error(m),
        },
        this.counters.updates,
      );
      this.updates = updates;
      const other = this.handler.opcodeHook;
      this.handler.opcodeHook = (m, q, p, t) =>
        updates.hook(m, q, p, t) ?? (other ? other(m, q, p, t) : null);
    }
  }

  /** Dynamic updates (src/update), when `updates:` lists any zone. */
  readonly updates: UpdateService | null = null;

  /** The zone loaded from a file for this lower-case origin (trailing dot), or null. */
  fileZone(origin: string): Zone | null {
    for (const z of this.zoneFiles.values()) if (z.originText.toLowerCase() === origin) return z;
    return null;
  }

  /** Serves an updated version of a file zone (journalled already): swap, IXFR history, NOTIFY. */
  commitUpdate(prev: Zone, next: Zone): void {
    for (const [file, z] of this.zoneFiles) {
      if (z !== prev) continue;
      this.zoneFiles.set(file, next);
      const st = this.status.get(file);
      if (st) {
        st.serial = next.serial;
        st.records = next.recordCount;
        st.loadedAt = Date.now() / 1000;
        st.sigExpiry = next.dnssec?.expires ?? null;
      }
    }
    this.handler.zones = this.composeZones(this.zoneFiles.values());
    this.xfr.zoneChanged(prev, next);
  }

  /** What each loaded zone was read from: file and $INCLUDEs, with size and mtime. */
  private readonly sources = new Map<string, { paths: string[]; stamp: string }>();

  /**
   * Loads every zone file; on a reload a failing file keeps its previous zone. An unsigned zone whose
   * files did not change (and that has no keys now) keeps its loaded version without being parsed
   * again, so a SIGHUP after editing one small zone does not stall on a big one. `force` re-reads all.
   */
  loadZones(force = false): ReloadResult {
    const steps = this.loadZonesSteps(force);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /**
   * loadZones in steps: yields between chunks of each RFC 1035 file it parses (see reloadStepwise).
   * `only` (lower-case origins with trailing dot) limits the reload to those zones, re-reading them
   * even when their files did not change; every other zone stays as it is. With `threads`, a zone
   * to sign is signed on the signing threads (`signing-threads`): the step yields the promise.
   */
  private *loadZonesSteps(
    force: boolean,
    only: Set<string> | null = null,
    threads = false,
  ): Generator<void | Promise<void>, ReloadResult, void> {
    let files: string[];
    try {
      files = listZoneFiles(this.cfg.zones);
    } catch (e) {
      // A server with only secondary zones may have no zone directory at all.
      const onlySecondaries = this.hasSecondaries() && this.zoneFiles.size === 0;
      if (!onlySecondaries || (e as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.log.error(`cannot read zone directory ${this.cfg.zones}: ${(e as Error).message}`, {
          code: 'POPDNS_E_ZONES_DIR',
        });
        return { ok: false, loaded: 0, failed: 1, removed: 0, zones: [] };
      }
      files = [];
    }
    const outcomes: ZoneOutcome[] = [];
    const wanted = (file: string): boolean => {
      if (only === null) return true;
      const prevOrigin = this.zoneFiles.get(file)?.originText ?? this.status.get(file)?.origin;
      if (prevOrigin) return only.has(originKey(prevOrigin));
      const o = originFromFileName(file);
      return o !== null && only.has(originKey(nameToText(o)));
    };
    let loaded = 0;
    let failed = 0;
    let removed = 0;
    const next = new Map<string, Zone>();
    const byOrigin = new Map<string, string>();
    let keyFiles: string[] = [];
    try {
      keyFiles = readdirSync(this.cfg.keys);
    } catch {
      // no keys directory: no zone has keys
    }
    for (const file of files) {
      const prevZone = this.zoneFiles.get(file);
      if (!wanted(file)) {
        // Not asked for: served as it is (a new file waits for a full reload).
        if (prevZone) {
          next.set(file, prevZone);
          byOrigin.set(prevZone.originText.toLowerCase(), file);
        }
        continue;
      }
      const src = this.sources.get(file);
      // A zone popdns signs is re-read (its signatures may be due); one that arrived signed is not.
      if (
        !force &&
        only === null &&
        prevZone &&
        (!prevZone.dnssec || prevZone.dnssec.presigned) &&
        src !== undefined
      ) {
        const keyPrefix = `k${prevZone.originText.toLowerCase()}+`; // compared lower-cased
        if (
          sourceStamp(src.paths) === src.stamp &&
          !keyFiles.some((k) => k.toLowerCase().startsWith(keyPrefix))
        ) {
          next.set(file, prevZone);
          byOrigin.set(prevZone.originText.toLowerCase(), file);
          loaded++;
          outcomes.push({
            zone: prevZone.originText,
            file,
            result: 'unchanged',
            serialOld: prevZone.serial,
            serial: prevZone.serial,
            records: prevZone.recordCount,
            seconds: 0,
            error: null,
          });
          continue;
        }
      }
      const started = performance.now();
      const included: string[] = [];
      const before = sourceStamp([file]);
      const { parsed, result: res } = yield* loadZoneSteps(file, included);
      const errors: string[] = [];
      for (const d of res.diagnostics) {
        if (d.severity === 'error') errors.push(formatDiagnostic(d));
        // Signatures of a pre-signed zone running out (the other signer may have stopped).
        else if (d.code.startsWith('POPDNS_W_RRSIG_EXPIR'))
          (this.log.warn ?? this.log.error)(formatDiagnostic(d));
      }
      const prev = this.zoneFiles.get(file);
      let zone = res.zone;
      if (zone && this.updates) {
        // The update journal replayed on top of the file (src/update): nothing acknowledged is lost.
        const r = this.updates.loaded(zone);
        if (typeof r === 'string') {
          errors.push(`${file}:1:1: error: ${r}`);
          zone = null;
        } else zone = r;
      }
      if (zone && prev) {
        const w = serialNotRaised(prev, zone);
        if (w) this.log.error(`${file}: warning: ${w}`);
      }
      if (zone) {
        const problem = yield* this.sign(zone, parsed, prev, threads);
        if (problem) {
          errors.push(`${file}:1:1: error: ${problem}`);
          zone = null;
        }
      }
      if (zone) {
        const key = zone.originText.toLowerCase();
        const other = byOrigin.get(key);
        if (other) {
          errors.push(
            `${file}:1:1: error: zone ${zone.originText} is also defined in ${other} [POPDNS_E_DUPLICATE_ZONE]`,
          );
          zone = null;
        } else byOrigin.set(key, file);
      }
      for (const e of errors) this.log.error(e);
      const seconds = Math.round(performance.now() - started) / 1000;
      if (zone) {
        next.set(file, zone);
        loaded++;
        outcomes.push({
          zone: zone.originText,
          file,
          result: 'loaded',
          serialOld: prev?.serial ?? null,
          serial: zone.serial,
          records: zone.recordCount,
          seconds,
          error: null,
        });
        this.log.info(`zone ${zone.originText} loaded`, {
          serial_old: prev?.serial ?? null,
          serial: zone.serial,
          records: zone.recordCount,
          seconds,
          source: file,
        });
        // Stamped as it was before reading: a change made while parsing is picked up next time.
        const incl = sourceStamp(included);
        if (before !== null && incl !== null) {
          this.sources.set(file, {
            paths: [file, ...included],
            stamp: included.length ? `${before}|${incl}` : before,
          });
        } else this.sources.delete(file);
        const was = this.status.get(file);
        this.status.set(file, {
          origin: zone.originText,
          file,
          serial: zone.serial,
          records: zone.recordCount,
          loadedAt: Date.now() / 1000,
          loadFailures: was?.loadFailures ?? 0,
          sigExpiry: zone.dnssec?.expires ?? null,
          denial: zone.dnssec ? (zone.dnssec.nsec3 ? 'nsec3' : zone.dnssec.nsecChain ? 'nsec' : null) : null,
          fileOrigin: zone.originText,
          lastError: null,
          lastErrorAt: was?.lastErrorAt ?? null,
          failingSince: null,
        });
      } else {
        failed++;
        const firstError = errors[0] ?? `${file}:1:1: error: zone not loaded [POPDNS_E_ZONE]`;
        const o = originFromFileName(file);
        const name = prev?.originText ?? this.status.get(file)?.origin ?? (o ? nameToText(o) : file);
        outcomes.push({
          zone: name || file,
          file,
          result: 'failed',
          serialOld: prev?.serial ?? null,
          serial: prev?.serial ?? null,
          records: prev?.recordCount ?? null,
          seconds,
          error: firstError,
        });
        const now = Date.now() / 1000;
        const st = this.status.get(file) ?? {
          origin: '',
          file,
          serial: 0,
          records: 0,
          loadedAt: 0,
          loadFailures: 0,
          sigExpiry: null,
          denial: null,
        };
        st.loadFailures++;
        st.fileOrigin = parsed.origin.length > 1 ? nameToText(parsed.origin) : (st.fileOrigin ?? null);
        st.lastError = firstError;
        st.lastErrorAt = now;
        st.failingSince ??= now;
        this.status.set(file, st);
        this.log.error(
          prev
            ? `zone ${prev.originText} failed to load: keeping the previous version`
            : `zone ${name || file} failed to load: not served`,
          { serial: prev?.serial ?? null, seconds, source: file, code: 'POPDNS_E_ZONE_LOAD' },
        );
        if (prev) next.set(file, prev);
      }
    }
    for (const [file, z] of this.zoneFiles) {
      if (!files.includes(file) && (only === null || only.has(originKey(z.originText)))) {
        removed++;
        this.status.delete(file);
        outcomes.push({
          zone: z.originText,
          file,
          result: 'removed',
          serialOld: z.serial,
          serial: null,
          records: null,
          seconds: 0,
          error: null,
        });
        this.log.info(`zone ${z.originText} removed: its file is gone`, { source: file });
      } else if (!files.includes(file)) next.set(file, z);
    }
    for (const file of [...this.status.keys()])
      if (!files.includes(file) && !next.has(file)) this.status.delete(file);
    for (const file of [...this.sources.keys()]) if (!next.has(file)) this.sources.delete(file);
    const before = new Map(this.zoneFiles);
    this.zoneFiles.clear();
    for (const [f, z] of next) this.zoneFiles.set(f, z);
    // One assignment: queries in flight finish on the set they started with.
    this.handler.zones = this.composeZones(next.values());
    // New versions: IXFR history and NOTIFY (src/xfr).
    for (const [f, z] of next) if (before.get(f) !== z) this.xfr.zoneChanged(before.get(f) ?? null, z);
    // Versions let go of (replaced or removed) and versions parsed: their memory is garbage now.
    for (const [f, z] of before) if (next.get(f) !== z) this.garbageRecords += z.recordCount;
    for (const [f, z] of next) if (before.get(f) !== z) this.garbageRecords += z.recordCount;
    before.clear();
    this.scheduleRefresh();
    return { ok: failed === 0, loaded, failed, removed, zones: outcomes };
  }

  /** Signature caches by origin: a reload re-signs only what changed (and what is due for refresh). */
  private readonly sigCaches = new Map<string, SignatureCache>();
  private refreshTimer: NodeJS.Timeout | null = null;
  /** When the next automatic re-sign runs (Unix ms), or null when no zone is signed. */
  refreshAt: number | null = null;
  /** Keys, policy and cache each zone popdns signs was last signed with (an update re-signs with them). */
  private readonly signers = new Map<string, ZoneSigner>();
  /** The signing threads (`signing-threads`), started at the first big zone signed stepwise. */
  private signPool: SignPool | null = null;
  /** Signatures made and reused by the last signing of each zone (for logs and tests). */
  readonly signStats = new Map<string, { signatures: number; reused: number }>();

  /**
   * Signs a freshly built zone when the keys directory has keys for it. Returns a problem that must
   * keep this version from being served, or null. The safe choice throughout: a zone that was signed
   * is never served unsigned by accident — unreadable keys, or keys that vanished, keep the previous
   * (signed) version; only `dnssec: false` unsigns a zone on purpose.
   */
  private *sign(
    zone: Zone,
    parsed: ParsedZone,
    prev: Zone | undefined,
    threads: boolean,
  ): Generator<Promise<void>, string | null, void> {
    const origin = zone.originText.toLowerCase();
    const plan = signingPlan(
      zone,
      parsed,
      this.cfg,
      prev?.dnssec ? (prev.dnssec.presigned ? 'presigned' : 'signed') : false,
    );
    if (plan.kind === 'refuse') return plan.message;
    if (plan.kind === 'unsigned') {
      if (plan.disabled) this.sigCaches.delete(origin);
      this.signers.delete(origin);
      return null;
    }
    const { keys, policy } = plan;
    let cache = this.sigCaches.get(origin);
    if (!cache) {
      cache = new SignatureCache();
      this.sigCaches.set(origin, cache);
    }
    try {
      const now = Math.floor(Date.now() / 1000);
      let r: { signatures: number; reused: number };
      if (threads && this.cfg.signingThreads > 0) {
        // On the signing threads; the stepwise reload answers queries until the promise settles.
        this.signPool ??= new SignPool(this.cfg.signingThreads);
        const box: { r?: { signatures: number; reused: number }; e?: unknown } = {};
        yield signZoneAsync(zone, keys, policy, { now, cache, pool: this.signPool }).then(
          (v) => {
            box.r = v;
          },
          (e: unknown) => {
            box.e = e;
          },
        );
        if (box.e !== undefined || !box.r) throw box.e ?? new Error('signing did not finish');
        r = box.r;
      } else r = signZone(zone, keys, policy, { now, cache });
      zone.negativeSoa.sigs = zone.apex.rrsets.get(TYPE.SOA)?.sigs ?? [];
      this.signStats.set(origin, r);
      this.signers.set(origin, { keys, policy, cache });
      this.log.info(
        `zone ${zone.originText} signed (${policy.denial}${policy.denial === 'nsec3' && policy.nsec3OptOut ? ' opt-out' : ''}, keys ${keys.map((k) => k.tag).join(' ')}): ${r.signatures} new signatures, ${r.reused} reused`,
      );
      return null;
    } catch (e) {
      return `signing ${zone.originText} failed: ${(e as Error).message} [POPDNS_E_SIGN]`;
    }
  }

  /**
   * Re-signs (by reloading) when the earliest signature is due for refresh; no restart needed. A
   * refresh already due (signing keeps failing, say, and the old version stays) retries each minute,
   * not in a loop; popdns_dnssec_signature_expiry_timestamp_seconds shows the time running out.
   */
  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.refreshAt = null;
    let next = Infinity;
    for (const z of this.zoneFiles.values()) {
      if (z.dnssec?.signer) next = Math.min(next, z.dnssec.signer.nextRefresh);
    }
    if (next === Infinity) return;
    const ms = Math.min(Math.max(60_000, next * 1000 - Date.now()), 0x7fffffff);
    this.refreshAt = Date.now() + ms;
    this.refreshTimer = setTimeout(() => {
      this.log.info('signatures due for refresh: re-signing');
      void this.reloadStepwise();
    }, ms);
    this.refreshTimer.unref();
  }

  /**
   * Every zone file's status: the zones served and the files that failed to load so far, each with
   * the files its served version came from (what gatherZoneStatus compares with the disk).
   */
  zones(): ZoneStatus[] {
    return [
      ...[...this.status.values()]
        .filter((s) => s.origin !== '' || s.loadFailures > 0)
        .map((s) => ({ ...s, source: this.sources.get(s.file) ?? null })),
      ...this.secondaryStatus.values(),
    ];
  }

  /** Secondary zones (src/xfr) served beside the files: lower-case origin → zone (or SERVFAIL stand-in). */
  private readonly secondaryZones = new Map<string, Zone>();
  private readonly secondaryStatus = new Map<string, ZoneStatus>();
  /** Answers a NOTIFY (src/xfr): bytes to send back, or null. Set when the server follows secondaries. */
  notifyHook: ((msg: Buffer, from: string) => Buffer | null | Promise<Buffer | null>) | null = null;

  /**
   * Sends UPDATE messages (opcode 5) elsewhere instead of to the handler: a worker of a pool forwards
   * them to the one writer (src/server/updateipc.ts). Resolves with the response bytes, or null.
   */
  updateHook: ((msg: Buffer, from: string, tcp: boolean) => Promise<Buffer | null>) | null = null;
  /** Called after every reload (the pool's workers catch up with the update journal then). */
  onReloaded: (() => void) | null = null;

  private hasSecondaries(): boolean {
    return this.cfg.secondaries.length > 0 || this.cfg.catalogs.length > 0;
  }

  /** Lower-case origins of the zones loaded from files. */
  fileZoneNames(): Set<string> {
    return new Set([...this.zoneFiles.values()].map((z) => z.originText.toLowerCase()));
  }

  /** The zone set to serve: the files' zones, then secondary zones whose names no file took. */
  private composeZones(files: Iterable<Zone>): ZoneSet {
    const all = [...files];
    const taken = new Set(all.map((z) => z.originText.toLowerCase()));
    for (const [name, z] of this.secondaryZones) if (!taken.has(name)) all.push(z);
    return new ZoneSet(all);
  }

  /**
   * Serves a secondary zone's new version (`zone`), a SERVFAIL stand-in (`'unavailable'`: not loaded
   * yet, or expired), or stops serving it (null), in one swap of the zone set. An unavailable zone
   * stays in zones() (so `/zones` and the health probe see it) as failed, with `reason` as its error.
   */
  setSecondaryZone(name: string, zone: Zone | 'unavailable' | null, reason?: string): void {
    const key = name.toLowerCase();
    if (zone === null) {
      this.secondaryZones.delete(key);
      this.secondaryStatus.delete(key);
    } else if (zone === 'unavailable') {
      this.secondaryZones.set(key, unavailableZone(key));
      const prev = this.secondaryStatus.get(key);
      const now = Date.now() / 1000;
      this.secondaryStatus.set(key, {
        origin: '',
        fileOrigin: key,
        file: prev?.file ?? `secondary:${key}`,
        serial: 0,
        records: 0,
        loadedAt: 0,
        loadFailures: 0, // not a zone file: popdns_zone_load_failures_total counts files only
        sigExpiry: null,
        lastError: reason ?? 'secondary zone not served',
        lastErrorAt: now,
        failingSince: prev && prev.origin === '' ? (prev.failingSince ?? now) : now,
      });
    } else {
      const prev = this.secondaryZones.get(key);
      // New version: IXFR history and NOTIFY downstream, as for a file zone (src/xfr).
      if (prev !== zone) this.xfr.zoneChanged(prev && !prev.servfail ? prev : null, zone);
      this.secondaryZones.set(key, zone);
      this.secondaryStatus.set(key, {
        origin: zone.originText,
        file: zone.file,
        serial: zone.serial,
        records: zone.recordCount,
        loadedAt: Date.now() / 1000,
        loadFailures: 0,
        sigExpiry: null,
      });
    }
    this.handler.zones = this.composeZones(this.zoneFiles.values());
  }

  /** Reloads at once, blocking until done (tests, and the tools that want the result now). */
  reload(): ReloadResult {
    return this.reloaded(this.loadZones());
  }

  /**
   * Reloads while answering: parsing runs in slices of about RELOAD_SLICE_MS, and between slices the
   * event loop serves the queries that arrived. A SIGHUP during a reload runs one more reload after it
   * (the files may have changed again), never two at once. What SIGHUP and the refresh timer use.
   */
  reloadStepwise(zones?: readonly string[]): Promise<ReloadResult> {
    if (zones && zones.length > 0) {
      // A reload of named zones (popdns ctl reload ZONE…) runs on its own, after any running one.
      const only = new Set(zones.map(originKey));
      const after = this.reloading ?? Promise.resolve(null);
      return after.then(() => this.reloadOnly(only));
    }
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    const run = async (): Promise<ReloadResult> => {
      let r: ReloadResult;
      try {
        do {
          this.reloadAgain = false;
          r = this.reloaded(await stepwise(this.loadZonesSteps(false, null, true)));
        } while (this.reloadAgain);
        await this.releaseMemory();
      } catch (e) {
        // Nothing was swapped: the zones in service stay as they were.
        this.reloads.failure++;
        this.log.error(`reload failed: ${(e as Error).message}`, { code: 'POPDNS_E_RELOAD' });
        r = { ok: false, loaded: 0, failed: 0, removed: 0, zones: [] };
      } finally {
        this.reloading = null;
      }
      return r;
    };
    this.reloading = run();
    return this.reloading;
  }

  private reloading: Promise<ReloadResult> | null = null;
  private reloadAgain = false;

  /** Records of zone versions parsed or let go of since the last full collection (see src/server/heap.ts). */
  private garbageRecords = 0;
  /** What a reload must have parsed or replaced before the server collects (tests lower it). */
  releaseMinRecords = RELEASE_MIN_RECORDS;
  /** Longest wait for pending IXFR-history work (which still holds the old version) before collecting. */
  private static readonly RELEASE_WAIT_MS = 10_000;

  /**
   * After a reload that swapped big zones: waits (bounded) for the IXFR history to let go of the old
   * versions, then runs one full collection so their memory goes back to the OS now, not when V8 next
   * collects on its own (src/server/heap.ts says why that can take minutes). Logs what it took.
   */
  private async releaseMemory(): Promise<void> {
    if (this.garbageRecords < this.releaseMinRecords) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.xfr.settled(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, PopdnsServer.RELEASE_WAIT_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    // Queries that arrived meanwhile first: the collection stops the event loop.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const records = this.garbageRecords;
    this.garbageRecords = 0;
    const seconds = collectGarbage();
    if (seconds === null) return;
    this.releases++;
    const m = process.memoryUsage();
    this.log.info('memory released after the zone swap', {
      records,
      seconds: Math.round(seconds * 1000) / 1000,
      heap_used_mib: Math.round(m.heapUsed / 1048576),
      rss_mib: Math.round(m.rss / 1048576),
    });
  }

  /** Full collections run after reloads (tests). */
  releases = 0;

  /** Reloads the zones in `only` (re-read even when unchanged), as the stepwise reload does. */
  private reloadOnly(only: Set<string>): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      try {
        const r = this.reloaded(await stepwise(this.loadZonesSteps(true, only, true)));
        await this.releaseMemory();
        return r;
      } catch (e) {
        this.reloads.failure++;
        this.log.error(`reload failed: ${(e as Error).message}`, { code: 'POPDNS_E_RELOAD' });
        return { ok: false, loaded: 0, failed: 0, removed: 0, zones: [] };
      } finally {
        this.reloading = null;
        // A SIGHUP that came meanwhile was folded into this run: give it its full reload now.
        if (this.reloadAgain) void this.reloadStepwise();
      }
    };
    this.reloading = run();
    return this.reloading;
  }

  private reloaded(r: ReloadResult): ReloadResult {
    this.onReloaded?.();
    if (r.ok) this.reloads.success++;
    else this.reloads.failure++;
    const unchanged = r.zones.filter((z) => z.result === 'unchanged').length;
    const fields = { loaded: r.loaded - unchanged, unchanged, failed: r.failed, removed: r.removed };
    if (r.ok) this.log.info('reload done', fields);
    else this.log.error('reload done with errors', { ...fields, code: 'POPDNS_E_RELOAD' });
    return r;
  }

  private bindUdp(addr: ListenAddr): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createSocket({
        type: addr.family === 6 ? 'udp6' : 'udp4',
        ipv6Only: addr.family === 6,
        // Every send() resolves its address; ours are always rinfo's IP literals, so skip dns.lookup's
        // nextTick round per answer and hand the literal straight back.
        lookup: literalLookup,
        // One socket per worker where Node has SO_REUSEPORT for UDP (22.12+); ignored otherwise.
        ...(this.shared === 'reuseport' ? { reusePort: true } : {}),
      });
      const handler = this.handler;
      const tap = this.dnstap;
      let bound = addr.port;
      s.on('message', (msg, rinfo) => {
        // NOTIFY (opcode 4, QR=0) goes to the secondary side when this server follows zones, UPDATE
        // (opcode 5) to the one writer of a worker pool (src/server/updateipc.ts).
        if (msg.length >= 12 && (msg[2]! & 0xf0) === 0x20) {
          const hook = (msg[2]! & 0x08) === 0 ? this.notifyHook : this.updateHook;
          if (hook !== null) {
            void Promise.resolve(hook(msg, rinfo.address, false)).then((r) => {
              if (r) s.send(r, rinfo.port, rinfo.address);
            });
            return;
          }
        }
        const out = handler.handle(msg, false, rinfo.address);
        if (out) s.send(out, rinfo.port, rinfo.address);
        if (tap !== null) tap.udp(msg, out, rinfo.address, rinfo.port, addr.host, bound);
      });
      s.once('error', reject);
      // In a cluster worker without reusePort, exclusive: false shares the primary's socket.
      s.bind({ address: addr.host, port: addr.port, exclusive: this.shared !== 'cluster' }, () => {
        s.off('error', reject);
        bound = s.address().port;
        s.on('error', (e) => this.log.error(`udp ${formatListen(addr)}: ${e.message}`));
        try {
          s.setRecvBufferSize(4 * 1024 * 1024);
          s.setSendBufferSize(4 * 1024 * 1024);
        } catch {
          // the kernel caps these; the defaults still work
        }
        resolve(s);
      });
    });
  }

  /** Binds every listener (UDP and TCP on each address). Rejects with a clear message on failure. */
  async listen(): Promise<void> {
    for (const want of this.cfg.listen) {
      const addr = { ...want };
      try {
        // Port 0 picks a free UDP port, and TCP must then get the same one: retry (bounded) when
        // another socket already holds that TCP port.
        for (let attempt = 0; ; attempt++) {
          const s = await this.bindUdp({ ...want });
          addr.port = s.address().port;
          const t = new TcpListener(() => this.handler, this.counters, this.cfg.tcp);
          t.notifyHook = this.notifyHook;
          t.updateHook = this.updateHook;
          t.dnstap = this.dnstap;
          try {
            await t.listen(addr);
          } catch (e) {
            s.close();
            if (want.port === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20)
              continue;
            throw e;
          }
          this.udp.push(s);
          this.tcp.push(t);
          this.bound.push({ transport: 'udp', addr }, { transport: 'tcp', addr });
          break;
        }
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (
          this.cfg.listenDefault &&
          addr.family === 6 &&
          (err.code === 'EADDRNOTAVAIL' || err.code === 'EAFNOSUPPORT')
        ) {
          (this.log.warn ?? this.log.error).call(
            this.log,
            `${formatListen(addr)} is not available on this host (no IPv6?); skipped`,
            {
              code: 'POPDNS_W_LISTEN_SKIPPED',
            },
          );
          continue;
        }
        throw new Error(`cannot listen on ${formatListen(addr)}: ${err.message} [POPDNS_E_LISTEN]`, {
          cause: e,
        });
      }
    }
  }

  /** Loads zones and binds listeners, printing one line per zone and per listener. */
  async start(): Promise<void> {
    try {
      mkdirSync(this.cfg.dataDir, { recursive: true });
    } catch (e) {
      throw new Error(
        `cannot create data-dir ${this.cfg.dataDir}: ${(e as Error).message} [POPDNS_E_DATA_DIR]`,
        {
          cause: e,
        },
      );
    }
    // Stepwise, so a big zone signs on the signing threads (nothing is listening yet).
    const r = await stepwise(this.loadZonesSteps(false, null, true));
    if (r.loaded === 0 && !this.hasSecondaries()) {
      throw new Error(`no zone loaded from ${this.cfg.zones} [POPDNS_E_NO_ZONES]`);
    }
    this.dnstap?.start();
    try {
      await this.listen();
    } catch (e) {
      await this.close();
      throw e;
    }
    for (const b of this.bound) this.log.info(`listening ${b.transport} ${formatListen(b.addr)}`);
    this.ready = true;
    // The parse's garbage of a big first load, while no reload runs yet (not before listening: the
    // first answer would wait for it).
    if (!this.reloading) void this.releaseMemory();
  }

  /** Closes every listener and connection. */
  async close(): Promise<void> {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.ready = false;
    const pool = this.signPool;
    this.signPool = null;
    void pool?.close();
    for (const s of this.udp) s.close();
    await Promise.all(this.tcp.map((t) => t.shutdown()));
    this.udp.length = 0;
    this.tcp.length = 0;
    await this.dnstap?.stop();
  }

  get tcpConnections(): number {
    return this.tcp.reduce((n, t) => n + t.connections, 0);
  }
}
