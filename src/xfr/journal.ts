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
 * The on-disk IXFR history of every zone, under `dir` (data-dir/ixfr). Reads go to the file each time
 * (cached by size and mtime), so several worker processes can serve IXFR from what one wrote.
 */
export class IxfrHistory {
  private readonly cache = new Map<string, { stamp: string; entries: Changeset[] }>();

  constructor(
    readonly dir: string,
    readonly maxBytes = DEFAULT_HISTORY_BYTES,
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
    const last = this.read(zone).at(-1);
    const fresh = last !== undefined && last.toSerial !== fromSerial;
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
        if (statSync(p).size > this.maxBytes) this.trim(zone);
      }
    } catch (e) {
      throw new JournalError(`cannot write the IXFR history ${p}: ${(e as Error).message}`);
    }
    this.cache.delete(zone.toLowerCase());
  }

  /**
   * The changesets that lead from `fromSerial` to the newest version, oldest first; null when the
   * history does not hold `fromSerial` (the caller answers with the whole zone, RFC 1995 §4).
   */
  readChangesets(zone: string, fromSerial: number): Changeset[] | null {
    const all = this.read(zone);
    const i = all.findIndex((c) => c.fromSerial === fromSerial);
    if (i < 0) return null;
    const out = all.slice(i);
    for (let k = 1; k < out.length; k++) if (out[k]!.fromSerial !== out[k - 1]!.toSerial) return null;
    return out;
  }

  /** Every changeset the history holds, oldest first (the update journal replays them: src/update). */
  all(zone: string): Changeset[] {
    return this.read(zone);
  }

  /** The serial the history ends at, or null when there is none. */
  lastSerial(zone: string): number | null {
    return this.read(zone).at(-1)?.toSerial ?? null;
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

  private read(zone: string): Changeset[] {
    const p = this.path(zone);
    let stamp: string;
    try {
      const st = statSync(p);
      stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch {
      return [];
    }
    const k = zone.toLowerCase();
    const c = this.cache.get(k);
    if (c && c.stamp === stamp) return c.entries;
    let buf: Buffer;
    try {
      buf = readFileSync(p);
    } catch {
      return [];
    }
    const { entries } = decodeEntries(buf);
    this.cache.set(k, { stamp, entries });
    return entries;
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
