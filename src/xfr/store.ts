/**
 * Secondary zones on disk, in `data-dir/secondary/`: each version as an RFC 1035 master file
 * (`example.org.zone`, readable by `popdns check` and any DNS tool) and a small state file beside it
 * (`example.org.json`: serial, last contact with a primary, the catalog that owns it). Files are
 * written to a temporary name, fsynced and renamed, so a crash leaves the old version or the new one.
 */
import { mkdirSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { WireRecord } from '../wire/records.js';
import { writeMasterFile } from '../zone/masterfile.js';
import type { Zone } from '../zone/zone.js';

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

async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export class SecondaryStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'secondary');
  }

  /** Creates the directory; throws with POPDNS_E_DATA_DIR when it cannot. */
  init(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new Error(`cannot create ${this.dir}: ${(e as Error).message} [POPDNS_E_DATA_DIR]`, { cause: e });
    }
  }

  zonePath(origin: string): string {
    return join(this.dir, `${zoneFileStem(origin)}.zone`);
  }

  statePath(origin: string): string {
    return join(this.dir, `${zoneFileStem(origin)}.json`);
  }

  /** Writes a version (zone file first, then its state), each atomically. */
  async save(zone: Zone, records: readonly WireRecord[], state: SecondaryState): Promise<void> {
    const text = writeMasterFile(
      zone.origin,
      records.map((r) => ({ ...r, pos: { file: '', line: 0, col: 0 } })),
    );
    await writeAtomic(this.zonePath(zone.originText), text);
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
