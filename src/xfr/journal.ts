/**
 * The IXFR history: per zone, the changesets between the versions this server served, appended to a
 * file in `data-dir/ixfr/` and fsync'd before anyone is told of the new serial. What IXFR (RFC 1995)
 * answers from; reloads of changed zone files append to it now, dynamic updates (RFC 2136) later.
 *
 * File format, one entry per changeset: u32 length of the rest | u32 from serial | u32 to serial |
 * u32 removed count | u32 added count | records (uncompressed owner, type, class, TTL, RDLENGTH, RDATA)
 * removed then added, the old SOA first among the removed and the new SOA first among the added |
 * 8 bytes of SHA-256 over the entry. A torn last entry (a crash mid-write) fails its check and is
 * cut off at the next open. The file is bounded: past `maxBytes` the oldest entries are dropped.
 *
 * The newest changesets are also kept in memory (at most `memoryBytes` of entries, by their size on
 * disk): an append adds its entry there instead of re-reading the file, and IXFR requests for recent
 * serials never touch the disk. Older serials, and `all`, read the file (the record of truth; a
 * restart reads it). Another process appending (the writer of a worker pool) is seen by the file's
 * size, mtime and inode, checked on each read.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { TYPE } from '../wire/constants.js';
import { readName } from '../wire/name.js';
import type { XfrRecord } from './zonedata.js';

/** One changeset (RFC 1995 §4's difference sequence): from → to, what went and what came. */
export interface Changeset {
  fromSerial: number;
  toSerial: number;
  /** The old SOA first, then the records deleted. */
  removed: XfrRecord[];
  /** The new SOA first, then the records added. */
  added: XfrRecord[];
  /** Size of the entry on disk (an estimate of its wire size), bytes. */
  bytes: number;
}

export class JournalError extends Error {
  readonly code = 'POPDNS_E_JOURNAL';
}

/** Default bound of one zone's history file. */
export const DEFAULT_HISTORY_BYTES = 16 * 1024 * 1024;

/** Default bound of the changesets one zone's history keeps in memory (entry bytes on disk). */
export const DEFAULT_MEMORY_BYTES = 4 * 1024 * 1024;

/** What is in memory of one zone's history file. */
interface Cached {
  /** The file's size:mtime:inode when it was read or last appended to by this process. */
  stamp: string;
  /** The newest changesets, oldest first: all of the file when `complete`, else its tail. */
  entries: Changeset[];
  complete: boolean;
  /** The serial the file ends at (kept when even its last entry is too big for memory). */
  last: number | null;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function encodeRecord(r: XfrRecord): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt16BE(r.type, 0);
  head.writeUInt16BE(r.class ?? 1, 2);
  head.writeUInt32BE(r.ttl >>> 0, 4);
  head.writeUInt16BE(r.rdata.length, 8);
  return Buffer.concat([r.owner, head, r.rdata]);
}

function checksum(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest().subarray(0, 8);
}

function encodeEntry(from: number, to: number, removed: XfrRecord[], added: XfrRecord[]): Buffer {
  const body = Buffer.concat([
    u32(from),
    u32(to),
    u32(removed.length),
    u32(added.length),
    ...removed.map(encodeRecord),
    ...added.map(encodeRecord),
  ]);
  const entry = Buffer.concat([body, checksum(body)]);
  return Buffer.concat([u32(entry.length), entry]);
}

/** Decodes entries; stops at the first torn or corrupt one and says where the good part ends. */
function decodeEntries(buf: Buffer): { entries: Changeset[]; goodEnd: number } {
  const entries: Changeset[] = [];
  let p = 0;
  while (p + 4 <= buf.length) {
    const len = buf.readUInt32BE(p);
    if (len < 24 || p + 4 + len > buf.length) break;
    const body = buf.subarray(p + 4, p + 4 + len - 8);
    if (!checksum(body).equals(buf.subarray(p + 4 + len - 8, p + 4 + len))) break;
    try {
      const from = body.readUInt32BE(0);
      const to = body.readUInt32BE(4);
      const nr = body.readUInt32BE(8);
      const na = body.readUInt32BE(12);
      let q = 16;
      const read = (): XfrRecord => {
        const { name, next } = readName(body, q);
        const type = body.readUInt16BE(next);
        const cls = body.readUInt16BE(next + 2);
        const ttl = body.readUInt32BE(next + 4);
        const rdlen = body.readUInt16BE(next + 8);
        const rdata = Uint8Array.from(body.subarray(next + 10, next + 10 + rdlen));
        if (rdata.length !== rdlen) throw new JournalError('record runs past its entry');
        q = next + 10 + rdlen;
        return { owner: name, type, class: cls, ttl, rdata };
      };
      const removed: XfrRecord[] = [];
      const added: XfrRecord[] = [];
      for (let i = 0; i < nr; i++) removed.push(read());
      for (let i = 0; i < na; i++) added.push(read());
      entries.push({ fromSerial: from, toSerial: to, removed, added, bytes: 4 + len });
    } catch {
      break;
    }
    p += 4 + len;
  }
  return { entries, goodEnd: p };
}

/** A file-name-safe form of a zone origin: lower-case, escapes and slashes percent-encoded. */
export function zoneFileName(origin: string): string {
  const o = origin.toLowerCase();
  return (o === '.' ? 'root.' : o).replace(
    /[^a-z0-9.\-_]/g,
    (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/**
 * The on-disk IXFR history of every zone, under `dir` (data-dir/ixfr), with its newest changesets in
 * memory (`memoryBytes` per zone). Reads check the file's stamp, so several worker processes can serve
 * IXFR from what one wrote.
 */
export class IxfrHistory {
  private readonly cache = new Map<string, Cached>();

  constructor(
    readonly dir: string,
    readonly maxBytes = DEFAULT_HISTORY_BYTES,
    readonly memoryBytes = DEFAULT_MEMORY_BYTES,
  ) {}

  private path(zone: string): string {
    return join(this.dir, `${zoneFileName(zone)}ixfr`);
  }

  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true });
  }

  /**
   * Appends one changeset for `zone` (origin text) and fsyncs it. `removed` must start with the old
   * SOA (serial `fromSerial`) and `added` with the new one (serial `toSerial`), as IXFR sends them
   * (RFC 1995 §4); the rest are the records deleted and added. A changeset that does not continue the
   * history (its from ≠ the last to) starts the history over. Throws JournalError when it cannot write.
   */
  appendChangeset(
    zone: string,
    fromSerial: number,
    toSerial: number,
    removed: XfrRecord[],
    added: XfrRecord[],
  ): void {
    const soaSerial = (r: XfrRecord | undefined): number | null =>
      r && r.type === TYPE.SOA && r.rdata.length >= 20
        ? Buffer.from(r.rdata).readUInt32BE(r.rdata.length - 20)
        : null;
    if (soaSerial(removed[0]) !== fromSerial || soaSerial(added[0]) !== toSerial) {
      throw new JournalError(
        `changeset ${fromSerial} → ${toSerial} of ${zone} must start with the old SOA among the removed and the new SOA among the added`,
      );
    }
    this.ensureDir();
    const p = this.path(zone);
    const k = zone.toLowerCase();
    const last = this.lastSerial(zone);
    const before = this.cache.get(k);
    const fresh = last !== null && last !== fromSerial;
    const entry = encodeEntry(fromSerial, toSerial, removed, added);
    try {
      if (fresh) this.rewrite(p, [entry]);
      else {
        const created = !existsSync(p);
        const fd = openSync(p, 'a');
        try {
          writeSync(fd, entry);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        if (created) this.syncDir();
        if (statSync(p).size > this.maxBytes) {
          this.trim(zone);
          this.cache.delete(k);
          return;
        }
      }
    } catch (e) {
      this.cache.delete(k);
      throw new JournalError(`cannot write the IXFR history ${p}: ${(e as Error).message}`);
    }
    // The new entry joins what is in memory (decoded from its bytes: copies, nothing of the zone's
    // slabs is kept alive) instead of the whole file being read again.
    const stamp = this.stamp(p);
    const added1 = decodeEntries(entry).entries;
    if (stamp === null || added1.length !== 1) {
      this.cache.delete(k);
      return;
    }
    const kept = fresh || !before ? { entries: [], complete: true } : before;
    this.cache.set(k, this.bounded(stamp, [...kept.entries, added1[0]!], kept.complete));
  }

  /** The newest entries within memoryBytes (at least none), as a cache entry. */
  private bounded(stamp: string, entries: Changeset[], complete: boolean): Cached {
    const last = entries.at(-1)?.toSerial ?? null;
    let total = 0;
    let start = entries.length;
    while (start > 0 && total + entries[start - 1]!.bytes <= this.memoryBytes)
      total += entries[--start]!.bytes;
    return {
      stamp,
      entries: start > 0 ? entries.slice(start) : entries,
      complete: complete && start === 0,
      last,
    };
  }

  /** A file's size:mtime:inode, or null when it does not exist. */
  private stamp(p: string): string | null {
    try {
      const st = statSync(p);
      return `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch {
      return null;
    }
  }

  /**
   * The changesets that lead from `fromSerial` to the newest version, oldest first; null when the
   * history does not hold `fromSerial` (the caller answers with the whole zone, RFC 1995 §4).
   */
  readChangesets(zone: string, fromSerial: number): Changeset[] | null {
    const c = this.read(zone);
    let all = c?.entries ?? [];
    let i = all.findIndex((e) => e.fromSerial === fromSerial);
    if (i < 0 && c && !c.complete) {
      // Older than what memory holds: the file.
      all = this.readFile(zone);
      i = all.findIndex((e) => e.fromSerial === fromSerial);
    }
    if (i < 0) return null;
    const out = all.slice(i);
    for (let k = 1; k < out.length; k++) if (out[k]!.fromSerial !== out[k - 1]!.toSerial) return null;
    return out;
  }

  /** Every changeset the history holds, oldest first (the update journal replays them: src/update). */
  all(zone: string): Changeset[] {
    const c = this.read(zone);
    if (!c) return [];
    return c.complete ? c.entries : this.readFile(zone);
  }

  /** The serial the history ends at, or null when there is none. */
  lastSerial(zone: string): number | null {
    return this.read(zone)?.last ?? null;
  }

  /** Forgets a zone's history (its file is removed): the next IXFR request gets the whole zone. */
  reset(zone: string): void {
    const p = this.path(zone);
    this.cache.delete(zone.toLowerCase());
    try {
      if (existsSync(p)) unlinkSync(p);
    } catch {
      // nothing to forget
    }
  }

  /** What memory holds of the file (refreshed when its stamp changed), or null when there is none. */
  private read(zone: string): Cached | null {
    const p = this.path(zone);
    const stamp = this.stamp(p);
    if (stamp === null) return null;
    const k = zone.toLowerCase();
    const c = this.cache.get(k);
    if (c && c.stamp === stamp) return c;
    let buf: Buffer;
    try {
      buf = readFileSync(p);
    } catch {
      return null;
    }
    const fresh = this.bounded(stamp, decodeEntries(buf).entries, true);
    this.cache.set(k, fresh);
    return fresh;
  }

  /** Every entry of the file, decoded (not kept: memory holds only the tail). */
  private readFile(zone: string): Changeset[] {
    try {
      return decodeEntries(readFileSync(this.path(zone))).entries;
    } catch {
      return [];
    }
  }

  /**
   * Replaces a zone's whole history with `changesets` (oldest first) in one atomic step (temporary
   * file, fsync, rename): the update journal starting over after a zone-file merge (src/update/merge.ts).
   * Throws JournalError when it cannot write.
   */
  replace(
    zone: string,
    changesets: { fromSerial: number; toSerial: number; removed: XfrRecord[]; added: XfrRecord[] }[],
  ): void {
    this.ensureDir();
    const p = this.path(zone);
    try {
      this.rewrite(
        p,
        changesets.map((c) => encodeEntry(c.fromSerial, c.toSerial, c.removed, c.added)),
      );
    } catch (e) {
      throw new JournalError(`cannot write the IXFR history ${p}: ${(e as Error).message}`);
    }
    this.cache.delete(zone.toLowerCase());
  }

  /** Cuts a torn tail off every history file (at start; only the writing process calls this). */
  repair(zone: string): void {
    const p = this.path(zone);
    if (!existsSync(p)) return;
    const buf = readFileSync(p);
    const { entries, goodEnd } = decodeEntries(buf);
    if (goodEnd === buf.length) return;
    this.rewrite(
      p,
      entries.map((e) => encodeEntry(e.fromSerial, e.toSerial, e.removed, e.added)),
    );
    this.cache.delete(zone.toLowerCase());
  }

  /** Drops the oldest entries until the file holds at most half of maxBytes. */
  private trim(zone: string): void {
    const p = this.path(zone);
    const entries = decodeEntries(readFileSync(p)).entries;
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    let start = 0;
    while (start < entries.length - 1 && total > this.maxBytes / 2) total -= entries[start++]!.bytes;
    this.rewrite(
      p,
      entries.slice(start).map((e) => encodeEntry(e.fromSerial, e.toSerial, e.removed, e.added)),
    );
  }

  /** Replaces a file atomically: a temporary file, fsync, rename, fsync of the directory. */
  private rewrite(p: string, entries: Buffer[]): void {
    const tmp = `${p}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      for (const e of entries) writeSync(fd, e);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, p);
    this.syncDir();
  }

  /** Makes a new or renamed file's directory entry durable. */
  private syncDir(): void {
    const dfd = openSync(this.dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}
