/**
 * Secondary zones on disk, in `data-dir/secondary/`: each version as an RFC 1035 master file
 * (`example.org.zone`, readable by `popdns check` and any DNS tool) and a small state file beside it
 * (`example.org.json`: serial, last contact with a primary, the catalog that owns it). Files are
 * written to a temporary name, fsynced and renamed, so a crash leaves the old version or the new one.
 */
import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { type FileHandle, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
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

async function writeAtomic(path: string, data: string | ((fh: FileHandle) => Promise<void>)): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    if (typeof data === 'string') await fh.writeFile(data);
    else await data(fh);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
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

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'secondary');
  }

  /**
   * Creates the directory; throws with POPDNS_E_DATA_DIR when it cannot. Removes the temporary files
   * (`NAME.tmp-PID`) of writers that are gone: a process killed mid-write leaves one, as big as the
   * zone, that nothing else would ever remove. A live process's file is left alone.
   */
  init(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new Error(`cannot create ${this.dir}: ${(e as Error).message} [POPDNS_E_DATA_DIR]`, { cause: e });
    }
    for (const f of readdirSync(this.dir)) {
      const m = /\.tmp-(\d+)$/.exec(f);
      if (!m || processAlive(Number(m[1]))) continue;
      try {
        unlinkSync(join(this.dir, f));
      } catch {
        // removed meanwhile, or not ours to remove: harmless either way
      }
    }
  }

  zonePath(origin: string): string {
    return join(this.dir, `${zoneFileStem(origin)}.zone`);
  }

  statePath(origin: string): string {
    return join(this.dir, `${zoneFileStem(origin)}.json`);
  }

  /** Writes a version (zone file first, streamed from the trie, then its state), each atomically. */
  async save(zone: Zone, state: SecondaryState): Promise<void> {
    await writeAtomic(this.zonePath(zone.originText), (fh) => writeZone(fh, zone));
    await this.saveState(state);
  }

  async saveState(state: SecondaryState): Promise<void> {
    await writeAtomic(this.statePath(state.zone), `${JSON.stringify(state, null, 2)}\n`);
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

  /** Deletes a zone's files (a catalog member that was removed or reset). */
  async remove(origin: string): Promise<void> {
    await rm(this.zonePath(origin), { force: true });
    await rm(this.statePath(origin), { force: true });
  }
}

export function originKey(origin: string): string {
  const o = origin.toLowerCase();
  return o.endsWith('.') ? o : `${o}.`;
}
