/**
 * RFC 2136 dynamic updates on the server: answers UPDATE messages (opcode 5) handed over by the
 * handler's opcodeHook (UDP and TCP, TSIG already verified there), applies them with the engine,
 * writes the changeset to the update journal (fsync'd) before NOERROR, swaps the new zone version
 * in, and on restart replays the journal on top of the zone file.
 *
 * One writer: updates are applied synchronously in arrival order in one process. With --workers N
 * every worker forwards UPDATEs to the pool's one writer (src/server/updateipc.ts), which runs them
 * through this hook; the other workers catch up with the journal before the answer goes back.
 */
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { CLASS, TYPE } from '../wire/constants.js';
import type { QueryInfo } from '../wire/message.js';
import { type Name, nameToText } from '../wire/name.js';
import type { TsigVerifyResult } from '../wire/tsig.js';
import type { Zone } from '../zone/zone.js';
import { IxfrHistory, JournalError, zoneFileName } from '../xfr/journal.js';
import { serialNewer } from '../zone/serial.js';
import type { UpdatePolicies } from './config.js';
import type { UpdateCounters } from './counters.js';
import { applyChangesets, applyUpdate, parseUpdate, UPDATE_RCODE, updateRcodeText } from './engine.js';
import { UPDATE_LIMIT_DEFAULTS, UpdateRateLimiter, type UpdateLimits } from './limits.js';
import {
  journalTag,
  mergeFileEdit,
  readSnapshot,
  sameVersion,
  snapshotPath,
  writeSnapshot,
  zoneDiff,
} from './merge.js';
import { nextSerial } from './serial.js';
import { soaRecord, type XfrRecord } from '../xfr/zonedata.js';
import { resignUpdate, type ZoneSigner } from './resign.js';

/** What the service needs from the server. */
export interface UpdateHost {
  /** The zone served from a file for this lower-case origin, or null (not ours, or a secondary zone). */
  fileZone(origin: string): Zone | null;
  /** True when zones of `origin` are served but not from a file we may change (a secondary zone). */
  otherZone(origin: string): boolean;
  /** Serves `next` in place of `prev` (IXFR history and NOTIFY follow). */
  commit(prev: Zone, next: Zone): void;
  /**
   * The keys, policy and signature cache a zone popdns signs was last signed with (lower-case
   * origin), or null: an update of a signed zone is re-signed with them (resign.ts).
   */
  signer?(origin: string): ZoneSigner | null;
  /** Null when updates may be applied now; else why not (answered SERVFAIL, e.g. a reload runs). */
  busy(): string | null;
  info(msg: string): void;
  error(msg: string): void;
}

export interface UpdateServiceOptions {
  policies: UpdatePolicies;
  dataDir: string;
  /**
   * Does this process repair (cut a torn tail) and rebase the journal when a zone loads? True for the
   * single server and worker 0 of a pool; the other workers only read it.
   */
  writer: boolean;
  /** Rate and size limits (`update-limits:`, src/update/limits.ts); default UPDATE_LIMIT_DEFAULTS. */
  limits?: UpdateLimits;
  /** Our EDNS UDP payload size, put in the OPT of responses to requests that had one (RFC 6891 §7). */
  ednsUdpSize?: number;
}

export class UpdateService {
  /** The update journal: data-dir/journal/<zone>ixfr, never trimmed (replayed on restart). */
  readonly journal: IxfrHistory;
  private readonly limits: UpdateLimits;
  private readonly rate: UpdateRateLimiter;

  constructor(
    private readonly o: UpdateServiceOptions,
    private readonly host: UpdateHost,
    private readonly counters: UpdateCounters,
  ) {
    this.journal = new IxfrHistory(join(o.dataDir, 'journal'), Number.MAX_SAFE_INTEGER);
    this.limits = o.limits ?? { ...UPDATE_LIMIT_DEFAULTS };
    this.rate = new UpdateRateLimiter(this.limits.rate, this.limits.burst);
  }

  /**
   * Signs `next`, a version a worker replayed from the journal on top of `prev` to catch up with the
   * pool's writer (src/server/updateipc.ts), as the writer signed its own: incrementally, with this
   * process's signer (the journal keeps unsigned changesets). `owners`: every owner the changesets
   * touched. The version to publish (`next` itself when the zone is not signed by popdns here, or a
   * whole re-signing rebuilt it), or why it failed.
   */
  resignReplayed(prev: Zone, next: Zone, owners: readonly Name[]): { zone: Zone } | string {
    if (!prev.dnssec || prev.dnssec.presigned) return { zone: next };
    const signer = this.host.signer?.(prev.originText.toLowerCase()) ?? null;
    if (!signer) return `zone ${prev.originText} is signed but its signer is not at hand`;
    try {
      return { zone: resignUpdate(prev, next, owners, signer, Math.floor(Date.now() / 1000)).zone };
    } catch (e) {
      return (e as Error).message;
    }
  }

  private journalSize(origin: string): void {
    try {
      const st = statSync(join(this.journal.dir, `${zoneFileName(origin)}ixfr`));
      this.counters.journalBytes.set(origin, st.size);
    } catch {
      this.counters.journalBytes.set(origin, 0);
    }
  }

  /**
   * A zone file was (re)loaded (start, SIGHUP, `popdns ctl reload`): returns the version to serve, or
   * an error message (the caller then keeps serving the last good version, nothing is written).
   *
   * With the previous file version kept in data-dir (src/update/merge.ts) the zone as served is that
   * version plus the update journal; when the file changed, the edit (old file → new file) is
   * merged on top of it (mergeFileEdit: dynamic records stay, conflicts go the file's way and are
   * logged as POPDNS_W_UPDATE_MERGE_CONFLICT, serial past both), and the journal starts over from
   * the new file's serial with one changeset to the merged version. Without a snapshot (first start
   * with a journal, or a snapshot that does not match the journal) the journal is replayed on the
   * file (replayOnFile). Either way the new file becomes the snapshot.
   */
  loaded(zone: Zone, now?: number): Zone | string {
    const origin = zone.originText.toLowerCase();
    if (!this.o.policies.has(origin)) return zone;
    if (this.o.writer) this.journal.repair(origin);
    const dir = this.journal.dir;
    const snap = zone.dnssec?.presigned ? null : readSnapshot(dir, zone.origin, zone.file);
    if (typeof snap === 'string')
      this.host.error(
        `zone ${zone.originText}: the previous file version in ${snapshotPath(dir, origin)} is unreadable (${snap}); the update journal is replayed on the file instead [POPDNS_W_UPDATE_SNAPSHOT]`,
      );
    const all = this.journal.all(origin);
    if (snap !== null && typeof snap !== 'string') {
      const first = all[0];
      const matches =
        snap.tag === journalTag(first) ||
        (snap.tag === '' && first !== undefined && first.fromSerial === snap.zone.serial);
      if (matches) {
        const r = this.mergeOnSnapshot(zone, snap.zone, all, now);
        this.journalSize(origin);
        return r;
      }
      this.host.error(
        `zone ${zone.originText}: the previous file version does not go with the update journal (a crash during a merge?); the journal is replayed on the file [POPDNS_W_UPDATE_SNAPSHOT]`,
      );
    }
    const r = this.replayOnFile(zone);
    if (typeof r !== 'string' && this.o.writer && !zone.dnssec?.presigned) {
      try {
        writeSnapshot(dir, zone, journalTag(this.journal.all(origin)[0]));
      } catch (e) {
        return `cannot keep the file version of ${zone.originText} in ${dir}: ${(e as Error).message} [POPDNS_E_UPDATE_JOURNAL]`;
      }
    }
    return r;
  }

  /**
   * The zone as served = `prevFile` + the journal; when `file` differs from `prevFile`, the edit
   * merged on top, persisted (journal restarted, then the snapshot) before it is returned.
   */
  private mergeOnSnapshot(
    file: Zone,
    prevFile: Zone,
    all: { fromSerial: number; toSerial: number; removed: XfrRecord[]; added: XfrRecord[] }[],
    now?: number,
  ): Zone | string {
    const origin = file.originText.toLowerCase();
    let current = prevFile;
    const last = all.at(-1);
    if (last && last.toSerial !== prevFile.serial) {
      const chain = this.journal.readChangesets(origin, prevFile.serial);
      if (chain === null)
        return `the update journal of ${file.originText} does not continue from serial ${prevFile.serial} [POPDNS_E_UPDATE_JOURNAL]`;
      const r = applyChangesets(
        prevFile,
        chain,
        { ttl: last.added[0]!.ttl, rdata: last.added[0]!.rdata },
        now,
      );
      if (typeof r === 'string')
        return `replaying the update journal of ${file.originText} failed: ${r} [POPDNS_E_UPDATE_JOURNAL]`;
      current = r;
    }
    if (sameVersion(prevFile, file)) {
      if (current !== prevFile)
        this.host.info(
          `zone ${file.originText}: ${all.length} journalled update(s) replayed, serial ${file.serial} → ${current.serial}`,
        );
      return current;
    }
    // No dynamic updates since the last file version: the file is served as it is.
    if (all.length === 0) {
      if (this.o.writer) {
        try {
          writeSnapshot(this.journal.dir, file, '');
        } catch (e) {
          return `cannot keep the file version of ${file.originText}: ${(e as Error).message} [POPDNS_E_UPDATE_JOURNAL]`;
        }
      }
      return file;
    }
    const m = mergeFileEdit(current, prevFile, file, now);
    if (typeof m === 'string')
      return `merging the edit of ${file.file} with the dynamic updates of ${file.originText} failed: ${m}; the last good version keeps serving [POPDNS_E_UPDATE_MERGE]`;
    if (this.o.writer) {
      // The journal starts over at the new file's serial with the whole dynamic difference, then the
      // new file becomes the previous version (a crash between the two is detected by the tag).
      const net = zoneDiff(file, m.zone);
      const cs = {
        fromSerial: file.serial,
        toSerial: m.zone.serial,
        removed: [soaRecord(file), ...net.removed],
        added: [soaRecord(m.zone), ...net.added],
      };
      try {
        this.journal.replace(origin, [cs]);
        writeSnapshot(this.journal.dir, file, journalTag(cs));
      } catch (e) {
        return `${(e as Error).message} [POPDNS_E_UPDATE_JOURNAL]`;
      }
    }
    for (const c of m.conflicts)
      this.host.error(
        `zone ${file.originText}: the file's edit of ${c.owner} ${c.type} conflicts with dynamic updates; the file's version is served [POPDNS_W_UPDATE_MERGE_CONFLICT]`,
      );
    this.host.info(
      `zone ${file.originText}: file edit merged with dynamic updates (${m.changed} RRset(s) changed, ${m.conflicts.length} conflict(s)), serial ${current.serial} (file ${file.serial}) → ${m.zone.serial}`,
    );
    return m.zone;
  }

  /**
   * The journal replayed on the file (no usable previous file version): journal changesets starting
   * at the file's serial are replayed in order; a file whose serial the journal does not know (the
   * operator edited and re-serialled it) gets the journal's net change applied on top, a serial above
   * both, and the journal restarted from the file's serial. A torn journal tail (crash mid-write) is
   * cut off first. Returns the zone to serve, or an error message.
   */
  private replayOnFile(zone: Zone): Zone | string {
    const origin = zone.originText.toLowerCase();
    const all = this.journal.all(origin);
    this.journalSize(origin);
    if (all.length === 0) return zone;
    const last = all.at(-1)!;
    const from = this.journal.readChangesets(origin, zone.serial);
    const soaOf = (cs: (typeof all)[number]): { ttl: number; rdata: Uint8Array } => ({
      ttl: cs.added[0]!.ttl,
      rdata: cs.added[0]!.rdata,
    });
    if (from !== null && from.length > 0) {
      const r = applyChangesets(zone, from, soaOf(last));
      if (typeof r === 'string')
        return `replaying the update journal of ${zone.originText} failed: ${r} [POPDNS_E_UPDATE_JOURNAL]`;
      this.host.info(
        `zone ${zone.originText}: ${from.length} journalled update(s) replayed, serial ${zone.serial} → ${r.serial}`,
      );
      return r;
    }
    if (last.toSerial === zone.serial) return zone;
    // The file moved on without the journal: keep every acknowledged change on top of it.
    const to = nextSerial(serialNewer(zone.serial, last.toSerial) ? last.toSerial : zone.serial);
    const soa = Uint8Array.from(zone.soa.rdatas[0]!);
    new DataView(soa.buffer).setUint32(soa.length - 20, to);
    const r = applyChangesets(zone, all, { ttl: zone.soa.ttl, rdata: soa });
    if (typeof r === 'string')
      return `applying the update journal of ${zone.originText} on the edited file failed: ${r} [POPDNS_E_UPDATE_JOURNAL]`;
    if (this.o.writer) {
      try {
        const rec = (
          z: Zone,
        ): { owner: Uint8Array; type: number; class: number; ttl: number; rdata: Uint8Array } => ({
          owner: z.origin,
          type: TYPE.SOA,
          class: CLASS.IN,
          ttl: z.soa.ttl,
          rdata: z.soa.rdatas[0]!,
        });
        // The journal starts over from the file's version, holding the whole dynamic difference.
        const net = netChange(all);
        this.journal.appendChangeset(
          zone.originText,
          zone.serial,
          to,
          [rec(zone), ...net.removed],
          [rec(r), ...net.added],
        );
      } catch (e) {
        return `${(e as Error).message} [POPDNS_E_UPDATE_JOURNAL]`;
      }
    }
    this.host.error(
      `zone ${zone.originText}: the file's serial ${zone.serial} is not where the update journal starts; the journalled updates were applied on top of the file, serial now ${to} [POPDNS_W_UPDATE_JOURNAL_REBASED]`,
    );
    return r;
  }

  /**
   * The handler's opcodeHook part for UPDATE: the response, or null for other opcodes. `msg` is the
   * request without its TSIG RR; the handler signs the response (RFC 8945 §5.3).
   */
  hook(msg: Buffer, q: QueryInfo, peer: string, tsig: TsigVerifyResult): Buffer | null {
    if (q.opcode !== 5) return null;
    const key = tsig.status === 'ok' && tsig.key ? tsig.key.name : null;
    const u = parseUpdate(msg);
    let zoneText = '';
    const answer = (rcode: number, reason: string | null, extra = ''): Buffer => {
      this.counters.count(zoneText || '.none', key ?? '', rcode);
      const line = `update zone=${zoneText || '-'} key=${key ?? '-'} client=${peer} result=${updateRcodeText(rcode)}${extra}${reason ? ` reason="${reason}"` : ''}`;
      if (rcode === UPDATE_RCODE.NOERROR) this.host.info(line);
      else this.host.error(line);
      return response(msg, typeof u === 'string' ? null : u, rcode, q, this.o.ednsUdpSize ?? 1232);
    };
    if (typeof u === 'string') return answer(UPDATE_RCODE.FORMERR, u);
    // RFC 6891 §6.1.3: an EDNS version we do not speak gets BADVERS (16) and nothing else is done.
    if (q.hasEdns && q.ednsVersion > 0) return answer(16, `EDNS version ${q.ednsVersion}`);
    // §3.1.1: exactly one zone record, type SOA.
    if (u.zoneCount !== 1 || !u.zone || u.zone.type !== TYPE.SOA)
      return answer(UPDATE_RCODE.FORMERR, 'the zone section must hold one SOA record');
    zoneText = nameToText(u.zone.name).toLowerCase();
    const lim = this.limits;
    if (u.prereqs.length + u.updates.length > lim.maxRecordsPerUpdate)
      return answer(
        UPDATE_RCODE.REFUSED,
        `${u.prereqs.length + u.updates.length} records in one update, above the limit of ${lim.maxRecordsPerUpdate} (update-limits.max-records-per-update) [POPDNS_W_UPDATE_LIMIT]`,
      );
    const zone = this.host.fileZone(zoneText);
    if (!zone) {
      if (this.host.otherZone(zoneText))
        return answer(UPDATE_RCODE.REFUSED, 'a secondary zone: send updates to its primary');
      return answer(UPDATE_RCODE.NOTAUTH, 'not a zone this server is authoritative for');
    }
    if (u.zone.class !== CLASS.IN) return answer(UPDATE_RCODE.NOTAUTH, `zone class ${u.zone.class}`);
    const rules = this.o.policies.get(zoneText);
    if (!rules) return answer(UPDATE_RCODE.REFUSED, 'no updates: policy for this zone');
    if (key === null) return answer(UPDATE_RCODE.REFUSED, 'unsigned: updates must be signed with TSIG');
    if (!this.rate.take(key))
      return answer(
        UPDATE_RCODE.REFUSED,
        `key ${key} sends more than ${lim.rate} updates per second (burst ${lim.burst}; update-limits.rate) [POPDNS_W_UPDATE_LIMIT]`,
      );
    const busy = this.host.busy();
    if (busy) return answer(UPDATE_RCODE.SERVFAIL, busy);
    const r = applyUpdate(zone, u, {
      key,
      rules,
      maxRecords: lim.maxRecords,
      maxRecordsPerType: lim.maxRecordsPerType,
    });
    if (r.rcode !== UPDATE_RCODE.NOERROR) return answer(r.rcode, r.reason ?? null);
    if (!r.zone)
      return answer(UPDATE_RCODE.NOERROR, null, ` added=0 removed=0 serial=${zone.serial} (no change)`);
    // A zone popdns signs: the new version is re-signed where the update touched it, before it is
    // journalled (the journal keeps the unsigned changeset; a replay is signed like a load).
    let signedNote = '';
    let next = r.zone;
    if (zone.dnssec && !zone.dnssec.presigned) {
      const signer = this.host.signer?.(zoneText) ?? null;
      if (!signer)
        return answer(
          UPDATE_RCODE.SERVFAIL,
          `zone ${zone.originText} is signed but its signer is not at hand [POPDNS_E_SIGN]`,
        );
      try {
        const t0 = performance.now();
        const owners = [...r.removed, ...r.added].map((x) => x.owner);
        const st = resignUpdate(zone, r.zone, owners, signer, Math.floor(Date.now() / 1000));
        next = st.zone;
        signedNote = ` signatures=${st.signatures} sign_ms=${(performance.now() - t0).toFixed(1)}${st.incremental ? '' : ` whole_zone_signed="${st.why ?? ''}"`}`;
      } catch (e) {
        return answer(
          UPDATE_RCODE.SERVFAIL,
          `re-signing ${zone.originText} failed: ${(e as Error).message} [POPDNS_E_SIGN]`,
        );
      }
    }
    // Durable before acknowledged: the changeset is fsync'd to the journal, then served.
    try {
      this.journal.appendChangeset(zone.originText, zone.serial, next.serial, r.removed, r.added);
    } catch (e) {
      const m = e instanceof JournalError ? e.message : String(e);
      return answer(UPDATE_RCODE.SERVFAIL, `${m} [POPDNS_E_UPDATE_JOURNAL]`);
    }
    this.journalSize(zoneText);
    this.host.commit(zone, next);
    return answer(
      UPDATE_RCODE.NOERROR,
      null,
      ` added=${r.added.length - 1} removed=${r.removed.length - 1} serial=${next.serial}${signedNote}`,
    );
  }
}

/** The changesets folded into one difference (a record added then removed appears in neither). */
function netChange(all: { removed: XfrRecordLike[]; added: XfrRecordLike[] }[]): {
  removed: XfrRecordLike[];
  added: XfrRecordLike[];
} {
  const k = (r: XfrRecordLike): string =>
    `${Buffer.from(r.owner).toString('latin1').toLowerCase()}/${r.type}/${Buffer.from(r.rdata).toString('hex')}`;
  const rem = new Map<string, XfrRecordLike>();
  const add = new Map<string, XfrRecordLike>();
  for (const cs of all) {
    for (const r of cs.removed) {
      if (r.type === TYPE.SOA) continue;
      if (add.has(k(r))) add.delete(k(r));
      else rem.set(k(r), r);
    }
    for (const r of cs.added) {
      if (r.type === TYPE.SOA) continue;
      if (rem.has(k(r))) rem.delete(k(r));
      add.set(k(r), r);
    }
  }
  return { removed: [...rem.values()], added: [...add.values()] };
}

type XfrRecordLike = { owner: Uint8Array; type: number; class?: number; ttl: number; rdata: Uint8Array };

/**
 * The response to an UPDATE (RFC 2136 §3.8): header with QR, opcode UPDATE and the rcode, the zone
 * section echoed when it could be read, and an OPT (our UDP payload size, the DO bit echoed, EDNS
 * version 0) when the request had one (RFC 6891 §7). The handler appends the TSIG RR after it when
 * the request was signed (RFC 8945 §5.3: TSIG is the last record).
 */
function response(
  msg: Buffer,
  u: { zone: { name: Uint8Array; type: number; class: number } | null } | null,
  rcode: number,
  q: Pick<QueryInfo, 'hasEdns' | 'dnssecOk'>,
  udpSize: number,
): Buffer {
  const zone = u?.zone ?? null;
  const zl = zone ? zone.name.length + 4 : 0;
  const out = Buffer.alloc(12 + zl + (q.hasEdns ? 11 : 0));
  out.writeUInt16BE(msg.readUInt16BE(0), 0);
  out.writeUInt16BE(0x8000 | (5 << 11) | (rcode & 0xf), 2);
  out.writeUInt16BE(zone ? 1 : 0, 4);
  if (zone) {
    out.set(zone.name, 12);
    out.writeUInt16BE(zone.type, 12 + zone.name.length);
    out.writeUInt16BE(zone.class, 14 + zone.name.length);
  }
  if (q.hasEdns) {
    // OPT: root owner, TYPE 41, CLASS = payload size, TTL = ext-rcode | version | DO, RDLENGTH 0.
    const p = 12 + zl;
    out[p] = 0;
    out.writeUInt16BE(TYPE.OPT, p + 1);
    out.writeUInt16BE(udpSize, p + 3);
    out.writeUInt32BE(((((rcode >> 4) & 0xff) << 24) | (q.dnssecOk ? 0x8000 : 0)) >>> 0, p + 5);
    out.writeUInt16BE(0, p + 9);
    out.writeUInt16BE(1, 10);
  }
  return out;
}
