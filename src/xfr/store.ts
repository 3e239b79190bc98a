/**
 * Secondary zones on disk, in `data-dir/secondary/`: each version as an RFC 1035 master file
 * (`example.org.zone`, readable by `popdns check` and any DNS tool) and a small state file beside it
 * (`example.org.json`: serial, last contact with a primary, the catalog that owns it). Files are
 * written to a temporary name of their own (`<file>.tmp-PID-N`, N counting every write of this
 * process), fsynced, renamed over the old one, and the directory fsynced: a crash leaves the old
 * version or the new one, never a mix, and a failed write leaves the old file as it was.
 *
 * The writes of one zone are serialized: at most one is in flight, and what is asked while it runs
 * waits in a single slot where the newest request replaces an older one (latest wins; the queue never
 * grows). A version passed over that way counts as saved once a newer one is on disk.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { type FileHandle, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TYPE, typeToText } from '../wire/constants.js';
import { nameToRelativeText } from '../wire/name.js';
import { rdataToText } from '../wire/rdata.js';
import type { Zone, ZoneNode } from '../zone/zone.js';
import { nsec3Sets } from './versions.js';

export interface SecondaryState {
  zone: string;
  serial: number;
  /** Unix time (s) of the last successful contact with a primary (SOA check or transfer). */
  lastContact: number;
  /** Unix time (s) the version was transferred. */
  transferredAt: number;
  /** For catalog members: the catalog and the member's unique ID (RFC 9432 §4.1). */
  catalog?: string;
  memberId?: string;
}

/** A file name for a zone: its lower-case name without the trailing dot, unsafe bytes as %XX. */
export function zoneFileStem(origin: string): string {
  const o = origin.toLowerCase().replace(/\.$/, '');
  if (o === '') return 'root';
  return o.replace(/[^a-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Temporary files written by this process so far: each write gets a name of its own. */
let tmpSeq = 0;

/** The marker of a temporary file's name (what `init` clears and the tests look for). */
export const TMP_MARK = '.tmp-';

/**
 * Replaces `path` atomically: writes a temporary file beside it (unique to this write), fsyncs it,
 * renames it over `path` and fsyncs the directory (the rename itself durable). On any error the
 * temporary file is removed, `path` is left as it was, and the error is thrown.
 */
async function writeAtomic(path: string, data: string | ((fh: FileHandle) => Promise<void>)): Promise<void> {
  const tmp = `${path}${TMP_MARK}${process.pid}-${++tmpSeq}`;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      if (typeof data === 'string') await fh.writeFile(data);
      else await data(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
  await syncDir(dirname(path));
}

/** Makes a renamed file's directory entry durable (fsync of the directory). */
async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Someone waiting for a write (or a newer one that replaced it) to be on disk. */
interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * One write of a zone's files: the zone file (when `zone` is set) then the state (when `state` is
 * set), or the deletion of both (`remove`).
 */
interface Job {
  zone: Zone | null;
  state: SecondaryState | null;
  remove: boolean;
  waiters: Waiter[];
}

/** The writes of one zone: the one in flight (if any) and the one slot waiting behind it. */
interface Lane {
  busy: boolean;
  next: Job | null;
  /** Resolved when the lane is idle (nothing in flight, nothing waiting). */
  idle: Array<() => void>;
}

/** Bytes per write while a zone file is streamed out. */
const WRITE_BYTES = 1 << 20;

/**
 * Text appended straight into a reused byte buffer (no string per line, no joined block), written
 * out by `flush` once `full`. UTF-8, though zone text is ASCII (names and RDATA are escaped).
 */
class TextOut {
  private buf = Buffer.allocUnsafe(WRITE_BYTES + 65_536);
  private n = 0;

  constructor(private readonly fh: FileHandle) {}

  put(s: string): void {
    if (this.n + 3 * s.length > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.n + 3 * s.length));
      this.buf.copy(bigger, 0, 0, this.n);
      this.buf = bigger;
    }
    this.n += this.buf.write(s, this.n, 'utf8');
  }

  get full(): boolean {
    return this.n >= WRITE_BYTES;
  }

  async flush(): Promise<void> {
    let at = 0;
    while (at < this.n) at += (await this.fh.write(this.buf, at, this.n - at)).bytesWritten;
    this.n = 0;
  }
}

/**
 * Writes a zone version as an RFC 1035 master file: `$ORIGIN`, the SOA, then every record of the trie
 * depth first (an RRset's RRSIGs after it, unless the node holds an RRSIG RRset of its own), the
 * records zone/versions.ts zoneRecords lists, in its order. Streamed in blocks of about 1 MiB straight
 * from the trie: no list of the zone's records, no string per line and no whole-file string is built,
 * and the event loop runs between blocks.
 */
async function writeZone(fh: FileHandle, zone: Zone): Promise<void> {
  const origin = zone.origin;
  const out = new TextOut(fh);
  out.put(`$ORIGIN ${zone.originText}\n`);
  const soa = zone.apex.rrsets.get(TYPE.SOA);
  if (soa) for (const rd of soa.rdatas) out.put(`@ ${soa.ttl} IN SOA ${rdataToText(TYPE.SOA, rd, origin)}\n`);
  /** " TTL IN TYPE " of the last RRset written: consecutive sets mostly share it. */
  let midTtl = -1;
  let midType = -1;
  let mid = '';
  const middle = (ttl: number, type: number): string => {
    if (ttl !== midTtl || type !== midType) {
      midTtl = ttl;
      midType = type;
      mid = ` ${ttl} IN ${typeToText(type)} `;
    }
    return mid;
  };
  // Each node's owner text relative to the origin, made from its parent's and its own label (no
  // name bytes put together per node); a label that needs escapes goes through nameToRelativeText.
  const stack: ZoneNode[] = [zone.apex];
  const owners: string[] = ['@'];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const owner = owners.pop()!;
    if (node.rrsets.size > 0) {
      const hasRrsigSet = node.rrsets.has(TYPE.RRSIG);
      for (const set of node.rrsets.values()) {
        if (!(set.type === TYPE.SOA && node === zone.apex)) {
          for (const rd of set.rdatas) {
            out.put(owner);
            out.put(middle(set.ttl, set.type));
            out.put(rdataToText(set.type, rd, origin));
            out.put('\n');
          }
        }
        if (set.sigs && !hasRrsigSet)
          for (const rd of set.sigs) {
            out.put(owner);
            out.put(middle(set.ttl, TYPE.RRSIG));
            out.put(rdataToText(TYPE.RRSIG, rd, origin));
            out.put('\n');
          }
      }
      if (out.full) await out.flush();
    }
    const kids = node.children.values();
    for (let i = kids.length - 1; i >= 0; i--) {
      const kid = kids[i];
      if (!kid) continue;
      stack.push(kid);
      owners.push(
        plainLabel(kid.label)
          ? node === zone.apex
            ? kid.label
            : `${kid.label}.${owner}`
          : nameToRelativeText(kid.name, origin),
      );
    }
  }
  // The NSEC3 chain, kept beside the trie: without it a restart would serve no NSEC3 proofs.
  for (const set of nsec3Sets(zone)) {
    const owner = nameToRelativeText(set.owner, origin);
    for (const rd of set.rdatas)
      out.put(`${owner}${middle(set.ttl, set.type)}${rdataToText(set.type, rd, origin)}\n`);
    for (const rd of set.sigs ?? [])
      out.put(`${owner}${middle(set.ttl, TYPE.RRSIG)}${rdataToText(TYPE.RRSIG, rd, origin)}\n`);
    if (out.full) await out.flush();
  }
  await out.flush();
}

/** True when a label (latin1 text) is written as it is: no RFC 1035 §5.1 special, space or non-ASCII. */
function plainLabel(label: string): boolean {
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
    // . \ ( ) ; " @ $ : the bytes nameToText escapes.
    if (
      c === 0x2e ||
      c === 0x5c ||
      c === 0x28 ||
      c === 0x29 ||
      c === 0x3b ||
      c === 0x22 ||
      c === 0x40 ||
      c === 0x24
    )
      return false;
  }
  return label.length > 0;
}

/** True when a process with this PID exists (ours, or one we may not signal). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class SecondaryStore {
  readonly dir: string;
  /** The write lane of each zone, by zoneFileStem; deleted when the lane goes idle. */
  private readonly lanes = new Map<string, Lane>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'secondary');
  }

  /**
   * Creates the directory; throws with POPDNS_E_DATA_DIR when it cannot. Removes the temporary files
   * (`NAME.tmp-PID-N`) of writers that are gone: a process killed mid-write leaves one, as big as the
   * zone, that nothing else would ever remove. A live process's file is left alone.
   */
  init(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new Error(`cannot create ${this.dir}: ${(e as Error).message} [POPDNS_E_DATA_DIR]`, { cause: e });
    }
    try {
      for (const f of readdirSync(this.dir)) {
        const m = /\.tmp-(\d+)(?:-\d+)?$/.exec(f);
        if (m && !processAlive(Number(m[1]))) rmSync(join(this.dir, f), { force: true });
      }
    } catch {
      // Leftovers are only litter: a directory that cannot be listed fails on the first write.
    }
  }

  zonePath(origin: string): string {
    return join(this.dir, `${zoneFileStem(origin)}.zone`);
  }

  statePath(origin: string): string {
    return join(this.dir, `${zoneFileStem(origin)}.json`);
  }

  /**
   * Writes a version (zone file first, streamed from the trie, then its state), each atomically, in
   * the zone's lane. Resolves once this version, or a newer one asked for meanwhile, is on disk;
   * rejects (the previous files intact) when the write that was to carry it failed.
   */
  save(zone: Zone, state: SecondaryState): Promise<void> {
    return this.enqueue(zone.originText, { zone, state, remove: false, waiters: [] });
  }

  /**
   * Writes the state file alone (a successful SOA check moves `lastContact`), in the zone's lane:
   * waiting behind a zone write, it rides along with it (the newer state replaces the older).
   */
  saveState(state: SecondaryState): Promise<void> {
    return this.enqueue(state.zone, { zone: null, state, remove: false, waiters: [] });
  }

  /** Resolves when no write of any zone is in flight or waiting (tests; shutting down). */
  async idle(): Promise<void> {
    while (this.lanes.size > 0) {
      const lane = this.lanes.values().next().value as Lane;
      await new Promise<void>((r) => lane.idle.push(r));
    }
  }

  /**
   * Puts a job in the zone's lane: run now when the lane is free, else into the waiting slot,
   * merged with what waits there (latest wins: a newer zone replaces an older, a newer state an
   * older, a removal everything; a state waiting behind a removal is dropped with it).
   */
  private enqueue(origin: string, job: Job): Promise<void> {
    const key = zoneFileStem(origin);
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { busy: false, next: null, idle: [] }));
    const done = new Promise<void>((resolve, reject) => job.waiters.push({ resolve, reject }));
    const prev = lane.next;
    if (prev) {
      if (job.remove) lane.next = { ...job, waiters: [...prev.waiters, ...job.waiters] };
      else if (prev.remove && !job.zone) prev.waiters.push(...job.waiters);
      else
        lane.next = {
          zone: job.zone ?? (prev.remove ? null : prev.zone),
          state: job.state,
          remove: false,
          waiters: [...prev.waiters, ...job.waiters],
        };
    } else lane.next = job;
    if (!lane.busy) void this.drain(key, origin, lane);
    return done;
  }

  /** Runs the lane's jobs one at a time until its slot is empty, then retires the lane. */
  private async drain(key: string, origin: string, lane: Lane): Promise<void> {
    lane.busy = true;
    while (lane.next) {
      const job = lane.next;
      lane.next = null;
      try {
        if (job.remove) {
          await rm(this.zonePath(origin), { force: true });
          await rm(this.statePath(origin), { force: true });
        } else {
          if (job.zone) {
            const z = job.zone;
            await writeAtomic(this.zonePath(origin), (fh) => writeZone(fh, z));
          }
          if (job.state) await writeAtomic(this.statePath(origin), `${JSON.stringify(job.state, null, 2)}\n`);
        }
        for (const w of job.waiters) w.resolve();
      } catch (e) {
        for (const w of job.waiters) w.reject(e as Error);
      }
    }
    lane.busy = false;
    this.lanes.delete(key);
    for (const r of lane.idle) r();
  }

  /** The saved state of a zone, or null when there is none (or it is unreadable). */
  async loadState(origin: string): Promise<SecondaryState | null> {
    try {
      const s = JSON.parse(await readFile(this.statePath(origin), 'utf8')) as SecondaryState;
      if (typeof s.serial !== 'number' || typeof s.lastContact !== 'number') return null;
      return s;
    } catch {
      return null;
    }
  }

  /**
   * Deletes a zone's files (a catalog member that was removed or reset), in the zone's lane: after
   * the write in flight, replacing any waiting one, so no write lands after the deletion.
   */
  remove(origin: string): Promise<void> {
    return this.enqueue(origin, { zone: null, state: null, remove: true, waiters: [] });
  }
}

export function originKey(origin: string): string {
  const o = origin.toLowerCase();
  return o.endsWith('.') ? o : `${o}.`;
}
