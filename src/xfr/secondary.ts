/**
 * The secondary side of a fleet: every zone of `secondaries` and every member of each catalog of
 * `catalogs` follows its primaries.
 *
 * - Timers from the zone's SOA (RFC 1035 §4.3.5): check the serial every `refresh`; after a failure
 *   every `retry`; with no contact for `expire` the zone stops being served (SERVFAIL) until a primary
 *   answers again.
 * - NOTIFY (RFC 1996) from one of the zone's primaries (TSIG-checked when the zone has a key) makes the
 *   check run at once; anyone else is REFUSED, an unknown zone NOTAUTH.
 * - A check asks each primary in order for the SOA; a newer serial is fetched by IXFR (RFC 1995) when
 *   there is a version to start from, by AXFR (RFC 5936) otherwise or when IXFR is refused or does not
 *   apply. A new version passes the zone-file checks, is written to data-dir (fsynced), and only then
 *   replaces the served one in one swap; anything broken leaves the served version alone.
 * - Catalog zones (RFC 9432): a catalog is transferred like any secondary (and not served); its
 *   members become secondaries with the catalog's primaries and key.
 */
import { CLASS, OPCODE, RCODE, TYPE } from '../wire/constants.js';
import { hasTsig } from '../wire/tsig.js';
import { type Name, nameEquals, nameFromText, nameToText } from '../wire/name.js';
import {
  buildMessage,
  readMessage,
  serialGt,
  soaSerial,
  soaTimers,
  type WireRecord,
} from '../wire/records.js';
import { loadZone } from '../zone/load.js';
import { formatDiagnostic } from '../zone/types.js';
import type { Zone } from '../zone/zone.js';
import type { NotifyTsig, XfrKey } from './auth.js';
import { type CatalogMember, parseCatalog } from './catalog.js';
import { formatPeer, type Peer } from './client.js';
import { XfrInCounters } from './incounters.js';
import { LogThrottle } from './throttle.js';
import { ZoneIntake } from './intake.js';
import { originKey, SecondaryStore } from './store.js';
import { querySoa, transfer, XfrError, type XfrResult } from './transfer.js';
import { applyDiffs, applyIxfr, buildTransferred, ZoneDataError, zoneRecords } from './versions.js';

/** One `secondaries` or `catalogs` entry of the config. */
export interface SecondarySpec {
  /** Zone name, with the trailing dot. */
  zone: string;
  primaries: Peer[];
  /** TSIG key name (a key of `tsig-keys`), or null for unsigned requests. */
  key: string | null;
}

export type SecondaryRole = 'secondary' | 'catalog' | 'member';

/** What the server should serve for a zone: a version, SERVFAIL (not loaded yet, or expired), or nothing. */
export type Publish =
  | { kind: 'zone'; zone: Zone; path: string }
  /** `reason`: why nothing is served (for `/zones`), e.g. not transferred yet, expired. */
  | { kind: 'unavailable'; reason: string }
  | { kind: 'removed' };

export interface SecondaryLogger {
  info(msg: string): void;
  error(msg: string): void;
}

/** Status of one secondary zone, for /metrics, /readyz and logs. */
export interface SecondaryStatus {
  zone: string;
  role: SecondaryRole;
  /** Serial being served; null when no version is loaded. */
  serial: number | null;
  records: number;
  state: 'loaded' | 'pending' | 'expired';
  /** Unix time (s) of the last successful SOA check or transfer; 0 = never. */
  lastRefresh: number;
  /** Unix time (s) of the last transfer that brought a new version; 0 = never. */
  lastTransfer: number;
  /** Seconds until the zone expires without contact; null when unknown (never loaded). */
  expiresIn: number | null;
  catalog: string | null;
  /** The newer serial a primary announced that is not served yet; null when not behind. */
  primarySerial: number | null;
  /** Unix time (s) since when a primary is known to have a newer serial; null when not behind. */
  behindSince: number | null;
}

interface Entry {
  spec: SecondarySpec;
  origin: Name;
  /** Lower-case text with the trailing dot. */
  name: string;
  role: SecondaryRole;
  catalog: string | null;
  memberId: string | null;
  zone: Zone | null;
  /** Unix ms of the last contact with a primary. */
  lastContact: number;
  lastTransfer: number;
  /** The newer serial a primary's SOA showed, not transferred yet (null: not behind). */
  primarySerial: number | null;
  /** Unix ms since when a primary is known to be ahead; 0 = not behind. */
  behindSince: number;
  expired: boolean;
  timer: NodeJS.Timeout | null;
  expireTimer: NodeJS.Timeout | null;
  running: Promise<void> | null;
  again: boolean;
  removed: boolean;
  failures: number;
}

/** Bounds on the SOA timers, like Knot's refresh-min/max-interval: a zone can't make us spin or sleep for a year. */
const MIN_INTERVAL_S = 2;
const MAX_INTERVAL_S = 86_400;
const NOT_YET = 'secondary zone not transferred yet';
/** Retry interval for a zone we have never loaded (no SOA to take it from). */
const PENDING_RETRY_S = 10;

export interface SecondaryOptions {
  dataDir: string;
  keys: ReadonlyMap<string, XfrKey>;
  log: SecondaryLogger;
  /** Called whenever what should be served for a zone changes. */
  publish: (zone: string, p: Publish) => void;
  /** Zones that are served from files: a catalog member with one of these names is ignored. */
  fileZones?: () => ReadonlySet<string>;
  /**
   * Verifies a signed NOTIFY against the keyring (RFC 8945 §5.2). Null: a zone with a key refuses
   * every NOTIFY, and a signed NOTIFY is answered NOTAUTH.
   */
  verifyNotify?: ((msg: Buffer, keys: ReadonlyMap<string, XfrKey>) => NotifyTsig) | null;
}

export class SecondaryManager {
  private readonly entries = new Map<string, Entry>();
  /** Parsed members of each catalog, by catalog name. */
  private readonly catalogMembers = new Map<string, CatalogMember[]>();
  private readonly catalogOrder: string[] = [];
  readonly store: SecondaryStore;
  readonly counters = new XfrInCounters();
  private stopped = false;

  constructor(private readonly o: SecondaryOptions) {
    this.store = new SecondaryStore(o.dataDir);
  }

  /**
   * Creates the entries of the config, loads what data-dir holds for them (a restart serves the last
   * version at once), and starts their timers. Throws on an unusable data-dir.
   */
  async start(secondaries: SecondarySpec[], catalogs: SecondarySpec[]): Promise<void> {
    this.store.init();
    for (const s of catalogs) {
      this.catalogOrder.push(originKey(s.zone));
      this.add(s, 'catalog', null, null);
    }
    for (const s of secondaries) this.add(s, 'secondary', null, null);
    for (const e of [...this.entries.values()]) await this.loadSaved(e);
    // Members the saved catalogs list (their own files were loaded by the catalog's reconcile).
    for (const e of [...this.entries.values()]) if (e.role !== 'catalog') this.schedule(e, 0);
    for (const e of this.entries.values()) if (e.role === 'catalog') this.schedule(e, 0);
  }

  private add(
    spec: SecondarySpec,
    role: SecondaryRole,
    catalog: string | null,
    memberId: string | null,
  ): Entry {
    const name = originKey(spec.zone);
    const e: Entry = {
      spec,
      origin: nameFromText(name),
      name,
      role,
      catalog,
      memberId,
      zone: null,
      lastContact: 0,
      lastTransfer: 0,
      primarySerial: null,
      behindSince: 0,
      expired: false,
      timer: null,
      expireTimer: null,
      running: null,
      again: false,
      removed: false,
      failures: 0,
    };
    this.entries.set(name, e);
    if (role !== 'catalog') this.o.publish(name, { kind: 'unavailable', reason: NOT_YET });
    return e;
  }

  /** Loads the saved version of a zone from data-dir, if any, and serves it unless it has expired. */
  private async loadSaved(e: Entry): Promise<void> {
    const st = await this.store.loadState(e.name);
    if (!st) return;
    const path = this.store.zonePath(e.name);
    const { result } = loadZone(path);
    if (!result.zone) {
      const first = result.diagnostics.find((d) => d.severity === 'error');
      this.o.log.error(
        `${e.name}: the saved version in ${path} does not load (${first ? formatDiagnostic(first) : 'unreadable'}); transferring it again [POPDNS_E_XFR_SAVED]`,
      );
      return;
    }
    if (e.role === 'member' && st.memberId !== undefined && st.memberId !== e.memberId) {
      // Saved under another unique ID: a reset happened while we were down (RFC 9432 §5.6).
      await this.store.remove(e.name);
      return;
    }
    e.zone = result.zone;
    e.lastContact = st.lastContact * 1000;
    e.lastTransfer = st.transferredAt * 1000;
    this.o.log.info(`zone ${e.name} serial ${e.zone.serial} loaded from ${path} (secondary, saved)`);
    this.checkExpired(e);
    if (!e.expired) this.servable(e, path);
    if (e.role === 'catalog') await this.catalogChanged(e);
  }

  private servable(e: Entry, path: string): void {
    if (e.role === 'catalog' || !e.zone) return;
    this.o.publish(e.name, { kind: 'zone', zone: e.zone, path });
  }

  private timersOf(e: Entry): { refresh: number; retry: number; expire: number } {
    if (!e.zone) return { refresh: PENDING_RETRY_S, retry: PENDING_RETRY_S, expire: Infinity };
    const t = soaTimers(e.zone.soa.rdatas[0]!);
    const clamp = (v: number): number => Math.min(Math.max(v, MIN_INTERVAL_S), MAX_INTERVAL_S);
    return { refresh: clamp(t.refresh), retry: clamp(t.retry), expire: Math.max(t.expire, MIN_INTERVAL_S) };
  }

  /** Expires the zone when `expire` has passed since the last contact; arms the expire timer otherwise. */
  private checkExpired(e: Entry): void {
    if (e.expireTimer) clearTimeout(e.expireTimer);
    e.expireTimer = null;
    if (!e.zone || e.removed || this.stopped) return;
    const left = e.lastContact + this.timersOf(e).expire * 1000 - Date.now();
    if (left <= 0) {
      if (!e.expired) {
        e.expired = true;
        this.o.log.error(
          `zone ${e.name} expired: no primary reached for ${this.timersOf(e).expire} s (SOA expire); answering SERVFAIL until one answers [POPDNS_E_ZONE_EXPIRED]`,
        );
        if (e.role !== 'catalog')
          this.o.publish(e.name, {
            kind: 'unavailable',
            reason: `expired: no primary reached for ${this.timersOf(e).expire} s (SOA expire) [POPDNS_E_ZONE_EXPIRED]`,
          });
      }
      return;
    }
    e.expireTimer = setTimeout(() => this.checkExpired(e), Math.min(left + 5, 0x7fffffff));
    e.expireTimer.unref();
  }

  private schedule(e: Entry, seconds: number): void {
    if (e.timer) clearTimeout(e.timer);
    if (e.removed || this.stopped) return;
    e.timer = setTimeout(() => void this.refresh(e), seconds * 1000);
    e.timer.unref();
  }

  /** Checks the zone's serial now (NOTIFY, a timer, a new catalog member). Coalesces with a check in flight. */
  refresh(e: Entry): Promise<void> {
    if (e.running) {
      e.again = true;
      return e.running;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          e.again = false;
          await this.check(e);
        } while (e.again && !e.removed && !this.stopped);
      } finally {
        e.running = null;
      }
    };
    e.running = run();
    return e.running;
  }

  private async check(e: Entry): Promise<void> {
    if (e.removed || this.stopped) return;
    const key = this.keyOf(e);
    if (key === undefined) {
      this.o.log.error(`zone ${e.name}: TSIG key ${e.spec.key} is not in tsig-keys [POPDNS_E_TSIG_KEY]`);
      this.schedule(e, this.timersOf(e).retry);
      return;
    }
    for (const peer of e.spec.primaries) {
      if (e.removed || this.stopped) return;
      let soa: WireRecord;
      try {
        soa = await querySoa(peer, e.origin, { key });
      } catch (err) {
        this.o.log.error(
          `zone ${e.name}: SOA query to ${formatPeer(peer)} failed: ${(err as Error).message}`,
        );
        continue;
      }
      const serial = soaSerial(soa.rdata) ?? 0;
      if (e.zone && !serialGt(serial, e.zone.serial)) {
        this.caughtUp(e);
        this.contact(e);
        e.failures = 0;
        this.schedule(e, this.timersOf(e).refresh);
        return;
      }
      // Behind this primary from now on (or since earlier), until a transfer reaches its serial.
      if (e.primarySerial === null || serialGt(serial, e.primarySerial)) e.primarySerial = serial;
      if (e.behindSince === 0) e.behindSince = Date.now();
      if (await this.fetch(e, peer, key)) {
        if (e.zone && !serialGt(e.primarySerial, e.zone.serial)) this.caughtUp(e);
        e.failures = 0;
        this.schedule(e, this.timersOf(e).refresh);
        return;
      }
    }
    e.failures++;
    this.checkExpired(e);
    this.schedule(e, this.timersOf(e).retry);
  }

  /** The zone holds the primaries' serial: not behind any more. */
  private caughtUp(e: Entry): void {
    e.primarySerial = null;
    e.behindSince = 0;
  }

  /** A primary answered: the expire clock starts again; an expired zone is served again. */
  private contact(e: Entry): void {
    e.lastContact = Date.now();
    if (e.expired && e.zone) {
      e.expired = false;
      this.o.log.info(`zone ${e.name}: a primary answers again; serving serial ${e.zone.serial}`);
      this.servable(e, this.store.zonePath(e.name));
    }
    this.checkExpired(e);
    if (e.zone) {
      void this.store
        .saveState(this.stateOf(e))
        .catch((err: unknown) =>
          this.o.log.error(`zone ${e.name}: ${(err as Error).message} [POPDNS_E_DATA_DIR]`),
        );
    }
  }

  private stateOf(e: Entry): import('./store.js').SecondaryState {
    return {
      zone: e.name,
      serial: e.zone?.serial ?? 0,
      lastContact: Math.floor(e.lastContact / 1000),
      transferredAt: Math.floor(e.lastTransfer / 1000),
      ...(e.catalog ? { catalog: e.catalog } : {}),
      ...(e.memberId ? { memberId: e.memberId } : {}),
    };
  }

  private keyOf(e: Entry): XfrKey | null | undefined {
    if (e.spec.key === null) return null;
    return this.o.keys.get(originKey(e.spec.key));
  }

  /**
   * Transfers a newer version from `peer` and installs it: IXFR when there is a version to start from
   * (falling back to AXFR when the primary refuses it or the differences do not apply), AXFR otherwise.
   * Returns false when nothing usable came (logged).
   */
  private async fetch(e: Entry, peer: Peer, key: XfrKey | null): Promise<boolean> {
    const from = e.zone?.serial ?? null;
    const t0 = performance.now();
    let type: 'IXFR' | 'AXFR' = e.zone ? 'IXFR' : 'AXFR';
    const fail = (err: unknown): false => {
      const msg = (err as Error).message;
      this.counters.transfer(type === 'AXFR' ? 'axfr' : 'ixfr', inResult(err), 0);
      this.o.log.error(
        `xfr in zone ${e.name} from ${formatPeer(peer)} ${type} serial ${from ?? '-'} failed after ${((performance.now() - t0) / 1000).toFixed(3)} s: ${msg}`,
      );
      return false;
    };
    let res: XfrResult<ZoneIntake> | null = null;
    let zone: Zone | null = null;
    if (e.zone) {
      try {
        res = await transfer(
          peer,
          e.origin,
          this.soaRecord(e.zone),
          { key },
          () => new ZoneIntake(e.origin, `IXFR from ${formatPeer(peer)}`),
        );
        if (res.kind === 'uptodate') {
          this.counters.transfer('ixfr', 'uptodate', res.bytes);
          this.contact(e);
          return true;
        }
        // IXFR: the differences applied to a copy-on-write version of the current one (applyIxfr;
        // a signed zone instead lists its records from the trie and rebuilds). An AXFR-style answer
        // was built into a new trie as it arrived; its zone-wide checks run now.
        zone =
          res.kind === 'incremental'
            ? (applyIxfr(e.zone, res.diffs, `IXFR from ${formatPeer(peer)}`) ??
              buildTransferred(
                e.origin,
                applyDiffs(zoneRecords(e.zone), res.diffs),
                `IXFR from ${formatPeer(peer)}`,
              ))
            : res.sink.finish();
        if (zone.serial !== res.serial)
          throw new ZoneDataError(
            `IXFR result has serial ${zone.serial}, the primary announced ${res.serial}`,
            'POPDNS_E_IXFR_MISMATCH',
          );
      } catch (err) {
        // An IXFR the primary answered but that cannot be used (refused, malformed, not ending at the
        // announced serial, differences that do not apply) is retried as AXFR at once, as Knot and
        // BIND do: a primary with a broken IXFR history must not leave its secondaries stuck.
        const fallback =
          (err instanceof XfrError &&
            ((err.rcode !== undefined && err.rcode !== RCODE.NOTAUTH) ||
              err.code === 'POPDNS_E_XFR_MALFORMED')) ||
          (err instanceof ZoneDataError && err.code === 'POPDNS_E_IXFR_MISMATCH');
        fail(err);
        if (!fallback) return false;
        type = 'AXFR';
        res = null;
        zone = null;
      }
    }
    if (!zone) {
      type = 'AXFR';
      try {
        // The records go into the new trie as each message arrives; the zone-wide checks run at the end.
        res = await transfer(
          peer,
          e.origin,
          null,
          { key },
          () => new ZoneIntake(e.origin, `AXFR from ${formatPeer(peer)}`),
        );
        if (res.kind !== 'full')
          throw new XfrError('AXFR answered with differences', 'POPDNS_E_XFR_MALFORMED');
        zone = res.sink.finish();
      } catch (err) {
        return fail(err);
      }
    }
    if (e.removed || this.stopped) return true;
    const kind =
      res!.kind === 'incremental'
        ? 'IXFR'
        : res!.kind === 'full' && type === 'IXFR'
          ? 'IXFR(AXFR-style)'
          : 'AXFR';
    e.lastTransfer = Date.now();
    e.lastContact = Date.now();
    const prev = e.zone;
    e.zone = zone;
    try {
      // Serialized with the zone's other writes (the background state writes of contact(), a
      // catalog's removal); resolves once this version or a newer one is on disk. The whole zone
      // is written again, after an IXFR too.
      await this.store.save(zone, this.stateOf(e));
    } catch (err) {
      // Not on disk: keep serving it (it passed every check), say so; the next transfer writes again.
      this.o.log.error(
        `zone ${e.name}: cannot save serial ${zone.serial}: ${(err as Error).message} [POPDNS_E_DATA_DIR]`,
      );
    }
    e.expired = false;
    this.checkExpired(e);
    this.servable(e, this.store.zonePath(e.name));
    this.counters.transfer(type === 'AXFR' ? 'axfr' : 'ixfr', 'success', res!.bytes);
    this.o.log.info(
      `xfr in zone ${e.name} from ${formatPeer(peer)} ${kind} serial ${prev?.serial ?? '-'} -> ${zone.serial}: ${zone.recordCount} records, ${res!.bytes} bytes, ${res!.messages} messages, ${((performance.now() - t0) / 1000).toFixed(3)} s`,
    );
    if (e.role === 'catalog') await this.catalogChanged(e);
    return true;
  }

  private soaRecord(zone: Zone): WireRecord {
    return {
      owner: zone.origin,
      type: TYPE.SOA,
      class: CLASS.IN,
      ttl: zone.soa.ttl,
      rdata: zone.soa.rdatas[0]!,
    };
  }

  /** A catalog got a new version: add, reset, move and remove members (RFC 9432 §5). */
  private async catalogChanged(cat: Entry): Promise<void> {
    if (!cat.zone) return;
    const parsed = parseCatalog(cat.zone);
    for (const p of parsed.problems) this.o.log.error(`${p}`);
    if (!parsed.ok) return;
    this.catalogMembers.set(cat.name, parsed.members);
    await this.reconcile();
  }

  private async reconcile(): Promise<void> {
    const fileZones = this.o.fileZones?.() ?? new Set<string>();
    const claimed = new Set<string>();
    for (const catName of this.catalogOrder) {
      const cat = this.entries.get(catName);
      const members = this.catalogMembers.get(catName);
      if (!cat || !members) continue;
      for (const m of members) {
        if (m.zone === catName || this.catalogOrder.includes(m.zone)) continue;
        const cur = this.entries.get(m.zone);
        if (fileZones.has(m.zone)) {
          this.warnOnce(
            `${catName}/${m.zone}`,
            `catalog ${catName}: member ${m.zone} is also a zone file here; the file wins [POPDNS_W_CATALOG_CONFLICT]`,
          );
          continue;
        }
        if (!cur) {
          const e = this.add(
            { zone: m.zone, primaries: cat.spec.primaries, key: cat.spec.key },
            'member',
            catName,
            m.id,
          );
          this.o.log.info(`catalog ${catName}: member ${m.zone} added (id ${m.id})`);
          await this.loadSaved(e);
          claimed.add(m.zone);
          this.schedule(e, 0);
          continue;
        }
        if (cur.role !== 'member') {
          this.warnOnce(
            `${catName}/${m.zone}`,
            `catalog ${catName}: member ${m.zone} is configured in secondaries; that entry wins [POPDNS_W_CATALOG_CONFLICT]`,
          );
          continue;
        }
        if (claimed.has(m.zone)) {
          this.warnOnce(
            `${catName}/${m.zone}`,
            `catalog ${catName}: member ${m.zone} is listed by another catalog too; ignored here [POPDNS_W_CATALOG_CONFLICT]`,
          );
          continue;
        }
        if (cur.catalog === catName) {
          // §5.4: our own coo names another catalog that lists it: that one takes it over.
          if (m.coo && m.coo !== catName && this.catalogMembers.get(m.coo)?.some((x) => x.zone === m.zone))
            continue;
        } else {
          // §5.4: another catalog owns it; it moves only when the owner's coo points here.
          const owner = this.catalogMembers.get(cur.catalog ?? '')?.find((x) => x.zone === m.zone);
          if (owner && owner.coo !== catName) {
            this.warnOnce(
              `${catName}/${m.zone}`,
              `catalog ${catName}: member ${m.zone} belongs to catalog ${cur.catalog} (no coo to ${catName}); ignored [POPDNS_W_CATALOG_CONFLICT]`,
            );
            continue;
          }
          this.o.log.info(`catalog ${catName}: member ${m.zone} moves here from ${cur.catalog}`);
          cur.catalog = catName;
          cur.spec = { zone: m.zone, primaries: cat.spec.primaries, key: cat.spec.key };
        }
        claimed.add(m.zone);
        if (cur.memberId !== m.id) {
          // §5.6: a new unique ID resets the member: its data goes and it is transferred afresh.
          this.o.log.info(
            `catalog ${catName}: member ${m.zone} reset (id ${cur.memberId} -> ${m.id}): transferring afresh`,
          );
          cur.memberId = m.id;
          cur.zone = null;
          cur.expired = false;
          await this.store.remove(m.zone);
          this.o.publish(m.zone, { kind: 'unavailable', reason: NOT_YET });
          this.schedule(cur, 0);
        }
      }
    }
    for (const e of [...this.entries.values()]) {
      if (e.role !== 'member' || claimed.has(e.name)) continue;
      const members = this.catalogMembers.get(e.catalog ?? '');
      if (!members) continue; // its catalog has not loaded yet
      this.o.log.info(`catalog ${e.catalog}: member ${e.name} removed: no longer served, data deleted`);
      e.removed = true;
      if (e.timer) clearTimeout(e.timer);
      if (e.expireTimer) clearTimeout(e.expireTimer);
      this.entries.delete(e.name);
      this.o.publish(e.name, { kind: 'removed' });
      await this.store.remove(e.name);
    }
  }

  /** Refused NOTIFYs: at most one log line a minute per zone (one we follow) and reason. */
  private readonly refusals = new LogThrottle();

  private logRefusal(zone: string, reason: string, msg: string): void {
    const line = this.refusals.line(`${zone} ${reason}`, msg);
    if (line) this.o.log.error(line);
  }

  private readonly warned = new Set<string>();
  private warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.o.log.error(msg);
  }

  /**
   * Answers a NOTIFY (RFC 1996 §3): NOERROR with AA for a zone we follow, sent by one of its primaries
   * (and signed with its key when it has one), and a check runs at once; REFUSED from anyone else,
   * NOTAUTH for a zone we do not follow or a bad signature. Null: not a NOTIFY we can read (dropped).
   */
  notify(msg: Buffer, from: string): Buffer | null {
    let m;
    try {
      m = readMessage(msg);
    } catch {
      this.counters.notify('formerr');
      return msg.length >= 12 ? reply(msg, RCODE.FORMERR) : null;
    }
    if (m.qr || m.opcode !== OPCODE.NOTIFY) return null;
    const q = m.question[0];
    if (m.question.length !== 1 || !q || q.type !== TYPE.SOA) {
      this.counters.notify('formerr');
      return reply(msg, RCODE.FORMERR);
    }
    // RFC 8945 §5.2: a signed NOTIFY is verified first, whatever its zone; a failure is NOTAUTH with
    // the TSIG error (FORMERR for a malformed TSIG), signed as §5.3.2 says.
    let tsig: NotifyTsig | null = null;
    if (hasTsig(msg)) {
      tsig = this.o.verifyNotify ? this.o.verifyNotify(msg, this.o.keys) : null;
      if (!tsig || tsig.status !== 'ok') {
        const status = tsig?.status ?? 'badkey';
        this.counters.tsigFailure(status, 'notify');
        this.counters.notify(status === 'formerr' ? 'formerr' : 'notauth');
        // Anyone can send these: throttled, keyed by the TSIG error (bounded), not by the name asked.
        this.logRefusal(
          '*',
          `tsig-${status}`,
          `NOTIFY for ${nameToText(q.name)} from ${from}: TSIG ${status}${tsig?.keyName ? ` (key ${tsig.keyName})` : ''} [POPDNS_E_NOTIFY_TSIG]`,
        );
        const r = reply(msg, status === 'formerr' ? RCODE.FORMERR : RCODE.NOTAUTH);
        return tsig ? tsig.response(r) : r;
      }
    }
    const respond = (b: Buffer): Buffer => (tsig ? tsig.response(b) : b);
    const e = this.entries.get(originKey(nameToText(q.name)));
    if (!e) {
      this.counters.notify('notauth');
      return respond(reply(msg, RCODE.NOTAUTH));
    }
    const addr = from.startsWith('::ffff:') ? from.slice(7) : from;
    if (!e.spec.primaries.some((p) => p.host === addr)) {
      this.counters.notify('refused');
      this.logRefusal(
        e.name,
        'refused',
        `NOTIFY for ${e.name} from ${addr} refused: not one of its primaries [POPDNS_E_NOTIFY_REFUSED]`,
      );
      return respond(reply(msg, RCODE.REFUSED));
    }
    const key = this.keyOf(e);
    if (key && tsig?.keyName !== key.name) {
      this.counters.notify('notauth');
      this.logRefusal(
        e.name,
        'tsig',
        `NOTIFY for ${e.name} from ${addr} refused: not signed with key ${key.name} [POPDNS_E_NOTIFY_TSIG]`,
      );
      return respond(reply(msg, RCODE.NOTAUTH));
    }
    this.counters.notify('success');
    const soa = m.answer.find((r) => r.type === TYPE.SOA && nameEquals(r.owner, e.origin));
    const serial = soa ? soaSerial(soa.rdata) : null;
    if (serial === null || !e.zone || serialGt(serial, e.zone.serial) || e.expired) void this.refresh(e);
    return respond(reply(msg, RCODE.NOERROR, true));
  }

  /** Every zone's state, for metrics and /readyz. */
  status(): SecondaryStatus[] {
    const now = Date.now();
    return [...this.entries.values()].map((e) => ({
      zone: e.name,
      role: e.role,
      serial: e.zone ? e.zone.serial : null,
      records: e.zone ? e.zone.recordCount : 0,
      state: !e.zone ? 'pending' : e.expired ? 'expired' : 'loaded',
      lastRefresh: Math.floor(e.lastContact / 1000),
      lastTransfer: Math.floor(e.lastTransfer / 1000),
      expiresIn: e.zone
        ? Math.max(0, Math.round((e.lastContact + this.timersOf(e).expire * 1000 - now) / 1000))
        : null,
      catalog: e.catalog,
      primarySerial: e.primarySerial,
      behindSince: e.behindSince > 0 ? Math.floor(e.behindSince / 1000) : null,
    }));
  }

  /** Names of the zones this manager serves (members and plain secondaries, not catalogs). */
  servedNames(): string[] {
    return [...this.entries.values()].filter((e) => e.role !== 'catalog').map((e) => e.name);
  }

  /** Zones not serving yet or any more (for /readyz), as `zone (state)` strings. */
  unready(): string[] {
    return this.status()
      .filter((s) => s.state !== 'loaded')
      .map((s) => `${s.zone} (${s.state === 'pending' ? 'not loaded yet' : 'expired'})`);
  }

  /** Runs a check of a zone now (tests, and a control command later). */
  async refreshNow(zone: string): Promise<void> {
    const e = this.entries.get(originKey(zone));
    if (e) await this.refresh(e);
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) {
      if (e.timer) clearTimeout(e.timer);
      if (e.expireTimer) clearTimeout(e.expireTimer);
    }
  }
}

/**
 * The popdns_xfr_in_total result of a failed transfer: the primary's REFUSED or NOTAUTH (a TSIG error
 * included), anything else a failure.
 */
function inResult(err: unknown): 'refused' | 'notauth' | 'failure' {
  if (err instanceof XfrError) {
    if (err.rcode === RCODE.REFUSED) return 'refused';
    if (err.rcode === RCODE.NOTAUTH || err.code === 'POPDNS_E_TSIG') return 'notauth';
  }
  return 'failure';
}

/** The NOTIFY response (RFC 1996 §4.7): the request's header and question, QR=1, the rcode. */
function reply(msg: Buffer, rcode: number, aa = false): Buffer {
  let m;
  try {
    m = readMessage(msg);
  } catch {
    const h = Buffer.from(msg.subarray(0, 12));
    h.writeUInt16BE(((msg.readUInt16BE(2) | 0x8000) & 0xfff0 & ~0x0400) | rcode, 2);
    h.writeUInt32BE(0, 4);
    h.writeUInt32BE(0, 8);
    return h;
  }
  const flags = (m.flags & 0x7900) | 0x8000 | (aa ? 0x0400 : 0) | rcode;
  return buildMessage({ id: m.id, flags, question: m.question[0] ?? null });
}
