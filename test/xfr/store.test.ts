/**
 * The secondary's data-dir writer (src/xfr/store.ts): saves of one zone are serialized, the newest
 * version asked for wins (no queue of every version), each write has a temporary file of its own
 * (never shared with another write), and a write that fails leaves the previous files as they were
 * and no temporary file. The saved file must load back as the zone (RFC 1035 §5 master file).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { loadZone, parseZoneFile } from '../../src/zone/load.js';
import { buildZone, findNode, type Zone } from '../../src/zone/zone.js';
import { type SecondaryState, SecondaryStore, TMP_MARK } from '../../src/xfr/store.js';
import { tmpDir } from '../helpers/peers.js';

const ORIGIN = 's.test.';

/** Serial `serial`, `n` hosts whose addresses carry the serial (so versions differ in every host). */
function version(serial: number, n = 50): Zone {
  const text = [
    `$ORIGIN ${ORIGIN}`,
    '$TTL 300',
    `@ SOA ns1 host ${serial} 3600 600 86400 300`,
    '@ NS ns1',
    'ns1 A 192.0.2.53',
    `v TXT "version ${serial}"`,
    ...Array.from({ length: n }, (_, i) => `h${i} A 10.${serial & 255}.${i >> 8}.${i & 255}`),
  ].join('\n');
  const z = buildZone(parseZoneFile('s.test.zone', { text })).zone;
  if (!z) throw new Error('test zone does not build');
  return z;
}

const state = (serial: number, lastContact = serial): SecondaryState => ({
  zone: ORIGIN,
  serial,
  lastContact,
  transferredAt: serial,
});

const tmpFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes(TMP_MARK));
const savedState = (s: SecondaryStore): SecondaryState =>
  JSON.parse(readFileSync(s.statePath(ORIGIN), 'utf8')) as SecondaryState;

function txtOf(zone: Zone | null | undefined): string {
  const rd = zone ? findNode(zone, nameFromText(`v.${ORIGIN}`))?.rrsets.get(TYPE.TXT)?.rdatas[0] : undefined;
  return rd ? Buffer.from(rd.subarray(1)).toString('latin1') : '';
}

t.test(
  'many saves of different versions at once: the newest is on disk, whole, no temporary file',
  async (tt) => {
    const store = new SecondaryStore(tmpDir(tt));
    store.init();
    const versions = Array.from({ length: 40 }, (_, i) => version(i + 1));
    // All at once, none awaited before the next starts; state-only writes (a successful SOA check
    // moving lastContact) interleaved, as SecondaryManager.contact does in the background.
    const all: Promise<void>[] = [];
    for (const z of versions) {
      all.push(store.save(z, state(z.serial)));
      all.push(store.saveState(state(z.serial, 1000 + z.serial)));
    }
    const results = await Promise.allSettled(all);
    tt.same(
      results.filter((r) => r.status === 'rejected'),
      [],
      'every save resolves: its version or a newer one is on disk',
    );
    tt.same(tmpFiles(store.dir), [], 'no temporary file left');
    tt.same(readdirSync(store.dir).sort(), ['s.test.json', 's.test.zone']);
    const back = loadZone(store.zonePath(ORIGIN)).result.zone;
    tt.ok(back, 'the saved file loads');
    tt.equal(back?.serial, 40, 'the newest version is the one on disk');
    tt.equal(back?.recordCount, versions[39]!.recordCount, 'with all its records');
    tt.equal(txtOf(back), 'version 40');
    tt.same(savedState(store), state(40, 1040), 'the newest state is on disk');

    // Awaited one by one, each version is the one on disk right after its save.
    for (const s of [41, 42]) {
      await store.save(version(s), state(s));
      tt.equal(loadZone(store.zonePath(ORIGIN)).result.zone?.serial, s, `serial ${s} on disk after its save`);
    }
    await store.idle();
    tt.same(tmpFiles(store.dir), []);
  },
);

t.test('a removal queued behind saves wins over them; a save after it writes again', async (tt) => {
  const store = new SecondaryStore(tmpDir(tt));
  store.init();
  const saves = [1, 2, 3].map((s) => store.save(version(s), state(s)));
  const removed = store.remove(ORIGIN);
  const late = store.saveState(state(3, 99)); // waiting behind the removal: dropped with the zone
  await Promise.all([...saves, removed, late]);
  tt.same(readdirSync(store.dir), [], 'nothing left after the removal, no state resurrected');
  await store.save(version(4), state(4));
  tt.equal(loadZone(store.zonePath(ORIGIN)).result.zone?.serial, 4, 'a later save writes the zone again');
  tt.equal(savedState(store).serial, 4);
});

t.test('a write failing part-way leaves the previous files and no temporary file', async (tt) => {
  const store = new SecondaryStore(tmpDir(tt));
  store.init();
  await store.save(version(1), state(1));
  const before = readFileSync(store.zonePath(ORIGIN));
  const stateBefore = readFileSync(store.statePath(ORIGIN));
  // Version 2 with 40,000 hosts (more than one 1 MiB block, so part of it reaches the temporary
  // file), whose RRsets fail to print after 30,000 of them: as a full disk would, part-way.
  const bad = version(2, 40_000);
  let left = 30_000;
  for (let i = 0; i < 40_000; i++) {
    const set = findNode(bad, nameFromText(`h${i}.${ORIGIN}`))!.rrsets.get(TYPE.A)!;
    const rdatas = set.rdatas;
    Object.defineProperty(set, 'rdatas', {
      get: () => {
        if (--left < 0) throw new Error('no space left on device (test)');
        return rdatas;
      },
    });
  }
  await tt.rejects(store.save(bad, state(2)), /no space left on device \(test\)/, 'the save rejects');
  tt.same(readFileSync(store.zonePath(ORIGIN)), before, 'the previous zone file is intact');
  tt.same(readFileSync(store.statePath(ORIGIN)), stateBefore, 'and its state');
  tt.same(tmpFiles(store.dir), [], 'the half-written temporary file is gone');
  await store.save(version(3), state(3));
  tt.equal(loadZone(store.zonePath(ORIGIN)).result.zone?.serial, 3, 'the next save works');
});

t.test('an unusable directory: the save rejects, the previous version stays', async (tt) => {
  const dataDir = tmpDir(tt);
  const store = new SecondaryStore(dataDir);
  store.init();
  await store.save(version(1), state(1));
  // Tests may run as root, where permissions do not stop a write: the directory is moved away and
  // a plain file put in its place, then moved back.
  const aside = join(dataDir, 'aside');
  renameSync(store.dir, aside);
  writeFileSync(store.dir, 'not a directory');
  await tt.rejects(store.save(version(2), state(2)), { code: 'ENOTDIR' }, 'the save rejects');
  renameSync(store.dir, join(dataDir, 'file'));
  renameSync(aside, store.dir);
  tt.equal(loadZone(store.zonePath(ORIGIN)).result.zone?.serial, 1, 'the previous version is intact');
  tt.equal(savedState(store).serial, 1);
  tt.same(tmpFiles(store.dir), []);
});

t.test('init deletes temporary files a crashed process left', (tt) => {
  const store = new SecondaryStore(tmpDir(tt));
  mkdirSync(store.dir, { recursive: true });
  writeFileSync(`${store.zonePath(ORIGIN)}${TMP_MARK}4194305-7`, 'half a zone');
  writeFileSync(store.zonePath(ORIGIN), '$ORIGIN s.test.\n');
  store.init();
  tt.same(readdirSync(store.dir), ['s.test.zone']);
  tt.end();
});
