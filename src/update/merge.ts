/**
 * Zone-file edits merged with dynamic updates (Knot's `zonefile-load: difference`): when the operator
 * edits the file of a zone that has taken RFC 2136 updates, the difference between the previous file
 * version and the new one is applied on top of the zone as served (file + update journal), so the
 * dynamic records stay and the edit lands.
 *
 * The previous file version is kept in `data-dir/journal/<zone>file` (the "file snapshot"): every
 * record of the zone as read from its file, with a tag naming the first changeset of the update
 * journal it goes with, and a checksum. Pure logic here apart from reading and writing that file;
 * src/update/service.ts decides when to merge and writes the journal.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CLASS, TYPE, typeToText } from '../wire/constants.js';
import { type Name, nameKey, nameToText, readName } from '../wire/name.js';
import { rdataEquals } from '../wire/rdata.js';
import { serialNewer } from '../zone/serial.js';
import { formatDiagnostic } from '../zone/types.js';
import { walk, type Zone, zoneBuilder } from '../zone/zone.js';
import { zoneFileName } from '../xfr/journal.js';
import { diffZones, soaRecord, type XfrRecord, zoneRRsets } from '../xfr/zonedata.js';
import { nextSerial } from './serial.js';

const MAGIC = Buffer.from('POPDNSF1', 'latin1');

/** The previous file version of a zone and the update-journal changeset it goes with. */
export interface FileSnapshot {
  /** The zone as its file read then (unsigned, no dynamic records). */
  zone: Zone;
  /** journalTag() of the update journal's first changeset when the snapshot was written ('' = none). */
  tag: string;
}

/** Where a zone's file snapshot lives: `<dir>/<zone>file` (dir = data-dir/journal). */
export function snapshotPath(dir: string, origin: string): string {
  return join(dir, `${zoneFileName(origin)}file`);
}

/** A changeset's identity for the snapshot's tag: SHA-256 (hex, 16 chars) of its serials and records; '' for none. */
export function journalTag(
  cs: { fromSerial: number; toSerial: number; removed: XfrRecord[]; added: XfrRecord[] } | undefined,
): string {
  if (!cs) return '';
  const h = createHash('sha256').update(`${cs.fromSerial}>${cs.toSerial}`);
  for (const r of [...cs.removed, null, ...cs.added]) {
    if (r === null) h.update('|');
    else h.update(Buffer.concat([Buffer.from(r.owner), encodeHead(r), Buffer.from(r.rdata)]));
  }
  return h.digest('hex').slice(0, 16);
}

function encodeHead(r: { type: number; class?: number; ttl: number; rdata: Uint8Array }): Buffer {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(r.type, 0);
  b.writeUInt16BE(r.class ?? CLASS.IN, 2);
  b.writeUInt32BE(r.ttl >>> 0, 4);
  b.writeUInt16BE(r.rdata.length, 8);
  return b;
}

/** Every record of a zone (SOA first, RRSIGs included), as records. */
function zoneRecords(zone: Zone): XfrRecord[] {
  const out: XfrRecord[] = [soaRecord(zone)];
  for (const s of zoneRRsets(zone)) {
    if (s === null) continue;
    for (const rd of s.rdatas)
      out.push({ owner: s.owner, type: s.type, class: s.class, ttl: s.ttl, rdata: rd });
  }
  return out;
}

/**
 * Writes the file snapshot of `zone` atomically (temporary file, fsync, rename, fsync of the
 * directory). Format: "POPDNSF1" | u16 tag length | tag | u32 record count | records (owner, type,
 * class, TTL, RDLENGTH, RDATA) | 8 bytes of SHA-256 over all before. Throws on I/O errors.
 */
export function writeSnapshot(dir: string, zone: Zone, tag: string): void {
  mkdirSync(dir, { recursive: true });
  const recs = zoneRecords(zone);
  const t = Buffer.from(tag, 'latin1');
  const head = Buffer.alloc(2);
  head.writeUInt16BE(t.length, 0);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(recs.length, 0);
  const body = Buffer.concat([
    MAGIC,
    head,
    t,
    count,
    ...recs.flatMap((r) => [Buffer.from(r.owner), encodeHead(r), Buffer.from(r.rdata)]),
  ]);
  const sum = createHash('sha256').update(body).digest().subarray(0, 8);
  const p = snapshotPath(dir, zone.originText);
  const tmp = `${p}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, body);
    writeSync(fd, sum);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, p);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/**
 * Reads a zone's file snapshot: null when there is none, a string (why) when it is damaged or does
 * not build, else the snapshot with the zone rebuilt from its records.
 */
export function readSnapshot(dir: string, origin: Name, file: string): FileSnapshot | null | string {
  let buf: Buffer;
  try {
    buf = readFileSync(snapshotPath(dir, nameToText(origin)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return (e as Error).message;
  }
  if (buf.length < 22 || !buf.subarray(0, 8).equals(MAGIC)) return 'not a popdns file snapshot';
  const body = buf.subarray(0, buf.length - 8);
  if (
    !createHash('sha256')
      .update(body)
      .digest()
      .subarray(0, 8)
      .equals(buf.subarray(buf.length - 8))
  )
    return 'checksum mismatch (a torn write?)';
  try {
    const tl = body.readUInt16BE(8);
    const tag = body.subarray(10, 10 + tl).toString('latin1');
    let p = 10 + tl;
    const n = body.readUInt32BE(p);
    p += 4;
    const b = zoneBuilder(origin, file);
    const pos = { file: `${file} (previous version)`, line: 1, col: 1 };
    for (let i = 0; i < n; i++) {
      const { name, next } = readName(body, p);
      const type = body.readUInt16BE(next);
      const cls = body.readUInt16BE(next + 2);
      const ttl = body.readUInt32BE(next + 4);
      const len = body.readUInt16BE(next + 8);
      const rdata = Uint8Array.from(body.subarray(next + 10, next + 10 + len));
      if (rdata.length !== len) return 'record runs past the end';
      p = next + 10 + len;
      b.add({ owner: name, type, class: cls, ttl, rdata, pos });
    }
    const built = b.finish([]);
    const bad = built.diagnostics.find((d) => d.severity === 'error');
    if (!built.zone || bad) return bad ? formatDiagnostic(bad) : 'does not build';
    return { zone: built.zone, tag };
  } catch (e) {
    return (e as Error).message;
  }
}

/** Runs a diff generator to its end (the merge runs while the zone loads, which already steps). */
function run<T>(g: Generator<null, T, void>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/** The difference between two versions, SOAs excluded (diffZones without a bound). */
export function zoneDiff(a: Zone, b: Zone): { removed: XfrRecord[]; added: XfrRecord[] } {
  return run(diffZones(a, b, Number.MAX_SAFE_INTEGER))!;
}

/** True when both versions hold the same records and the same SOA. */
export function sameVersion(a: Zone, b: Zone): boolean {
  const sa = a.soa.rdatas[0]!;
  const sb = b.soa.rdatas[0]!;
  if (a.soa.ttl !== b.soa.ttl || !Buffer.from(sa).equals(Buffer.from(sb))) return false;
  const d = zoneDiff(a, b);
  return d.removed.length === 0 && d.added.length === 0;
}

interface Set_ {
  ttl: number;
  rdatas: Uint8Array[];
}

/**
 * owner key → { name, type → RRset }: a zone's data. Signatures are left out (a signer adds them
 * again), but not the RRSIG RRsets an unsigned zone holds in its tree (RRSIGs with no DNSKEY, kept
 * by the zone builder as plain data): those are file data like any other, as in update/engine.ts.
 */
type Sets = Map<string, { name: Name; sets: Map<number, Set_> }>;

function setsOf(zone: Zone): Sets {
  const m: Sets = new Map();
  const put = (name: Name, type: number, s: Set_): void => {
    const k = nameKey(name);
    let o = m.get(k);
    if (!o) m.set(k, (o = { name, sets: new Map() }));
    o.sets.set(type, s);
  };
  put(zone.origin, TYPE.SOA, { ttl: zone.soa.ttl, rdatas: [...zone.soa.rdatas] });
  for (const s of zoneRRsets(zone)) {
    if (s === null || s.type === TYPE.RRSIG) continue;
    put(s.owner, s.type, { ttl: s.ttl, rdatas: [...s.rdatas] });
  }
  if (zone.dnssec === undefined)
    walk(zone.apex, (node) => {
      const s = node.rrsets.get(TYPE.RRSIG);
      if (s) put(node.name, TYPE.RRSIG, { ttl: s.ttl, rdatas: [...s.rdatas] });
    });
  return m;
}

/** Same TTL and the same RDATA set (order-free; names in RDATA compared as DNS does). */
function sameSet(type: number, a: Set_ | undefined, b: Set_ | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.ttl !== b.ttl || a.rdatas.length !== b.rdatas.length) return false;
  return (
    a.rdatas.every((x) => b.rdatas.some((y) => rdataEquals(type, x, y))) &&
    b.rdatas.every((y) => a.rdatas.some((x) => rdataEquals(type, x, y)))
  );
}

/** An RRset where the file's edit and dynamic updates disagreed; the file's version is served. */
export interface MergeConflict {
  owner: string;
  type: string;
}

/** The outcome of a merge: the version to serve and the conflicts resolved in the file's favour. */
export interface MergeResult {
  zone: Zone;
  conflicts: MergeConflict[];
  /** RRsets the file's edit changed. */
  changed: number;
}

const DNSSEC_TYPES = new Set<number>([TYPE.RRSIG, TYPE.NSEC, TYPE.NSEC3]);

/**
 * Applies the operator's edit (the difference `oldFile` → `newFile`) on top of `current` (the zone
 * as served: `oldFile` plus dynamic updates). Per RRset (owner and type) the edit touched:
 * - if dynamic updates left it as `oldFile` had it, or made it what `newFile` has, the file's RRset is served;
 * - otherwise both changed it (the file re-adds what an update deleted, or changes or deletes what
 *   an update changed): a conflict, resolved in the file's favour (its RRset, as a whole, is served).
 * A CNAME and other data meeting at a name the edit touched are resolved the same way (the file's
 * content at that name). RRsets the edit did not touch keep their served (dynamic) state.
 *
 * The SOA is the new file's, with a serial past both the file's and the served one (nextSerial of
 * the newer by RFC 1982, keeping date and Unix-time styles). Returns the new version, or a string
 * when the merged zone fails the zone-file checks (the caller keeps serving the last good version).
 */
export function mergeFileEdit(
  current: Zone,
  oldFile: Zone,
  newFile: Zone,
  now?: number,
): MergeResult | string {
  const d = zoneDiff(oldFile, newFile);
  const cur = setsOf(current);
  const olds = setsOf(oldFile);
  const news = setsOf(newFile);
  const touched = new Map<string, { name: Name; types: Set<number> }>();
  // RRSIGs in the edit are signatures (left to a signer) unless the zone is unsigned (both file
  // versions and the served one): then they are stray RRSIGs, file data (see setsOf).
  const signatures =
    oldFile.dnssec !== undefined || newFile.dnssec !== undefined || current.dnssec !== undefined;
  for (const r of [...d.removed, ...d.added]) {
    if (r.type === TYPE.RRSIG && signatures) continue;
    const k = nameKey(r.owner);
    let t = touched.get(k);
    if (!t) touched.set(k, (t = { name: r.owner, types: new Set() }));
    t.types.add(r.type);
  }
  const conflicts: MergeConflict[] = [];
  const put = (name: Name, type: number, s: Set_ | undefined): void => {
    const k = nameKey(name);
    let o = cur.get(k);
    if (!s) {
      o?.sets.delete(type);
      if (o && o.sets.size === 0) cur.delete(k);
      return;
    }
    if (!o) cur.set(k, (o = { name, sets: new Map() }));
    o.sets.set(type, { ttl: s.ttl, rdatas: [...s.rdatas] });
  };
  const conflict = (name: Name, type: number): void => {
    conflicts.push({ owner: nameToText(name), type: typeToText(type) });
  };
  let changed = 0;
  for (const [k, { name, types }] of touched) {
    for (const type of types) {
      changed++;
      const o = olds.get(k)?.sets.get(type);
      const n = news.get(k)?.sets.get(type);
      const c = cur.get(k)?.sets.get(type);
      if (!sameSet(type, o, c) && !sameSet(type, c, n)) conflict(name, type);
      put(name, type, n);
    }
    // CNAME and other data at one name (RFC 1034 §3.6.2): the file's content at that name wins.
    const here = cur.get(k)?.sets;
    if (here?.has(TYPE.CNAME) && [...here.keys()].some((t) => t !== TYPE.CNAME && !DNSSEC_TYPES.has(t))) {
      const f = news.get(k)?.sets ?? new Map<number, Set_>();
      for (const t of new Set([...here.keys(), ...f.keys()])) {
        if (sameSet(t, here.get(t), f.get(t))) continue;
        conflict(name, t);
        put(name, t, f.get(t));
      }
    }
  }
  // The SOA: the file's, serial past both.
  const base = serialNewer(newFile.serial, current.serial) ? current.serial : newFile.serial;
  const to = nextSerial(base, now);
  const soa = Uint8Array.from(newFile.soa.rdatas[0]!);
  new DataView(soa.buffer).setUint32(soa.length - 20, to);
  put(newFile.origin, TYPE.SOA, { ttl: newFile.soa.ttl, rdatas: [soa] });
  const b = zoneBuilder(newFile.origin, newFile.file, now !== undefined ? { now } : {});
  const pos = { file: `${newFile.file} (merged with dynamic updates)`, line: 1, col: 1 };
  for (const own of cur.values())
    for (const [t, s] of own.sets)
      for (const rd of s.rdatas)
        b.add({ owner: own.name, type: t, class: CLASS.IN, ttl: s.ttl, rdata: rd, pos });
  const built = b.finish([]);
  const bad = built.diagnostics.find((x) => x.severity === 'error');
  if (!built.zone || bad) return bad ? formatDiagnostic(bad) : 'the merged zone does not build';
  return { zone: built.zone, conflicts, changed };
}
