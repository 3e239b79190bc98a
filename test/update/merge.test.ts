/**
 * Zone-file edits merged with dynamic updates (Knot's `zonefile-load: difference`), without
 * processes: the UpdateService with a stand-in host, zones built from text. Expected behaviour from
 * issue #13: dynamic records survive an edit, the edit lands, the serial goes past both (RFC 1982),
 * conflicting RRsets go the file's way with POPDNS_W_UPDATE_MERGE_CONFLICT, a restart serves the
 * same version, and a crash between the journal and snapshot writes is recovered from.
 */
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseDocument } from 'yaml';
import { parseUpdatesSection } from '../../src/update/config.js';
import { UpdateCounters } from '../../src/update/counters.js';
import { mergeFileEdit, readSnapshot, snapshotPath, zoneDiff } from '../../src/update/merge.js';
import { UpdateService } from '../../src/update/service.js';
import { typeFromText } from '../../src/wire/constants.js';
import { QueryInfo } from '../../src/wire/message.js';
import { nameFromText } from '../../src/wire/name.js';
import { rdataFromText, rdataToText, tokenize } from '../../src/wire/rdata.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, findNode, type Zone } from '../../src/zone/zone.js';
import { tmpDir } from '../helpers/peers.js';

const ORIGIN = nameFromText('example.com.');
const BASE = `@ NS ns1\nns1 A 192.0.2.1\n`;
const file = (serial: number, body: string): Zone => {
  const text = `$TTL 300\n@ SOA ns1 h ${serial} 3600 600 86400 300\n${BASE}${body}`;
  const z = buildZone(parseMasterFile(text, { file: 'example.com.zone', origin: ORIGIN })).zone;
  if (!z) throw new Error('test zone does not build');
  return z;
};
const policies = parseUpdatesSection(parseDocument('example.com:\n  - { key: ops }\n').contents!, (_n, m) => {
  throw new Error(m);
});

interface RR {
  name: string;
  type: string;
  cls?: number;
  ttl?: number;
  rdata?: string;
}

/** An UPDATE with these update-section records (RFC 2136 §2.5; class 255 = delete RRset, 254 = delete RR). */
function update(rrs: RR[]): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(1, 0);
  h.writeUInt16BE(5 << 11, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(rrs.length, 8);
  const body = rrs.map((r) => {
    const type = typeFromText(r.type)!;
    const rd = r.rdata === undefined ? new Uint8Array(0) : rdataFromText(type, tokenize(r.rdata), ORIGIN);
    const head = Buffer.alloc(10);
    head.writeUInt16BE(type, 0);
    head.writeUInt16BE(r.cls ?? 1, 2);
    head.writeUInt32BE(r.ttl ?? 0, 4);
    head.writeUInt16BE(rd.length, 8);
    return Buffer.concat([nameFromText(r.name, ORIGIN), head, rd]);
  });
  return Buffer.concat([h, ORIGIN, Buffer.from([0, 6, 0, 1]), ...body]);
}

function service(dir: string, current: { zone: Zone }, logs: string[]): UpdateService {
  return new UpdateService(
    { policies, dataDir: dir, writer: true },
    {
      fileZone: (o) => (o === 'example.com.' ? current.zone : null),
      otherZone: () => false,
      commit: (_p, n) => {
        current.zone = n;
      },
      busy: () => null,
      info: (m) => logs.push(m),
      error: (m) => logs.push(m),
    },
    new UpdateCounters(),
  );
}

const q = new QueryInfo();
q.opcode = 5;
const tsig = {
  status: 'ok' as const,
  key: { name: 'ops.', algorithm: 'hmac-sha256' as const, secret: Buffer.alloc(32) },
  error: 0,
  origId: 1,
  stripped: Buffer.alloc(0),
};

/** The RRset at `name`/`type` as sorted "TTL RDATA" strings ([] = none). */
function rrset(z: Zone, name: string, type: string): string[] {
  const t = typeFromText(type)!;
  const s = findNode(z, nameFromText(name, ORIGIN))?.rrsets.get(t);
  return s ? s.rdatas.map((r) => `${s.ttl} ${rdataToText(t, r, ORIGIN)}`).sort() : [];
}

const F0 = `www A 192.0.2.10\nmail A 192.0.2.20\ntxt TXT "a"\n`;
// The operator's edit: a new name, www changed (an update changed it too), mail's TTL changed (an
// update deleted it), txt untouched. The serial was not bumped in the file.
const F1 = `www A 192.0.2.11\nmail 600 A 192.0.2.20\ntxt TXT "a"\nnew A 192.0.2.7\n`;

t.test('edit merged over dynamic updates; conflicts go the file way; restart; crash between writes', (tt) => {
  const dir = tmpDir(tt, 'popdns-merge-');
  const logs: string[] = [];
  const cur = { zone: file(10, F0) };
  const s = service(dir, cur, logs);
  cur.zone = s.loaded(file(10, F0)) as Zone;
  tt.equal(cur.zone.serial, 10, 'no journal yet: the file as it is');
  tt.ok(
    existsSync(snapshotPath(join(dir, 'journal'), 'example.com.')),
    'the file version is kept in data-dir',
  );
  const ok = (rrs: RR[], what: string): void => {
    const out = s.hook(update(rrs), q, '127.0.0.1', tsig)!;
    tt.equal(out[3]! & 0xf, 0, `${what}: NOERROR`);
  };
  ok([{ name: 'dyn', type: 'A', ttl: 60, rdata: '192.0.2.5' }], 'add dyn');
  ok(
    [
      { name: 'www', type: 'A', cls: 254, rdata: '192.0.2.10' },
      { name: 'www', type: 'A', ttl: 300, rdata: '192.0.2.99' },
    ],
    'change www',
  );
  ok([{ name: 'mail', type: 'A', cls: 255 }], 'delete mail');
  tt.equal(cur.zone.serial, 13);

  // The operator edits the file and reloads.
  const merged = s.loaded(file(10, F1)) as Zone;
  tt.type(merged, 'object', 'merged');
  tt.same(rrset(merged, 'dyn', 'A'), ['60 192.0.2.5'], 'the dynamic record survives');
  tt.same(rrset(merged, 'new', 'A'), ['300 192.0.2.7'], 'the edit lands');
  tt.same(rrset(merged, 'www', 'A'), ['300 192.0.2.11'], 'conflict (both changed www A): the file wins');
  tt.same(
    rrset(merged, 'mail', 'A'),
    ['600 192.0.2.20'],
    'conflict (file re-adds what an update deleted): the file wins',
  );
  tt.same(rrset(merged, 'txt', 'TXT'), ['300 "a"']);
  tt.equal(merged.serial, 14, 'serial past the served 13 and the file 10');
  const log = logs.join('\n');
  tt.match(
    log,
    /zone example\.com\.: the file's edit of www\.example\.com\. A conflicts with dynamic updates.*\[POPDNS_W_UPDATE_MERGE_CONFLICT\]/,
  );
  tt.match(log, /mail\.example\.com\. A conflicts.*POPDNS_W_UPDATE_MERGE_CONFLICT/);
  tt.notMatch(log, /new\.example\.com\. A conflicts/, 'a plain edit is no conflict');
  tt.notMatch(log, /dyn\.example\.com\. A conflicts/);
  cur.zone = merged;

  // Updates go on from the merged version.
  ok([{ name: 'dyn2', type: 'A', ttl: 60, rdata: '192.0.2.6' }], 'add dyn2 after the merge');
  tt.equal(cur.zone.serial, 15);

  // Restart: the same file, the kept file version and the journal give the same zone.
  const snapCopy = join(dir, 'snapshot-before');
  const restarted = service(dir, { zone: file(10, F1) }, logs).loaded(file(10, F1)) as Zone;
  tt.equal(restarted.serial, 15, 'restart: serial kept');
  tt.same(zoneDiff(cur.zone, restarted), { removed: [], added: [] }, 'restart: same records');

  // A second edit (serial bumped far ahead): merged again, serial past the file's.
  const F2 = F1.replace('new A 192.0.2.7', 'new A 192.0.2.8');
  copyFileSync(snapshotPath(join(dir, 'journal'), 'example.com.'), snapCopy);
  const second = s.loaded(file(100, F2)) as Zone;
  tt.equal(second.serial, 101);
  tt.same(rrset(second, 'new', 'A'), ['300 192.0.2.8']);
  tt.same(
    rrset(second, 'dyn2', 'A'),
    ['60 192.0.2.6'],
    'dynamic records of before and after the first merge stay',
  );

  // Crash between the journal rewrite and the snapshot write: the old snapshot is back, the journal
  // already starts at the new file's serial. Detected; the journal is replayed on the file.
  copyFileSync(snapCopy, snapshotPath(join(dir, 'journal'), 'example.com.'));
  const logs2: string[] = [];
  const recovered = service(dir, { zone: file(100, F2) }, logs2).loaded(file(100, F2)) as Zone;
  tt.match(logs2.join('\n'), /POPDNS_W_UPDATE_SNAPSHOT/);
  tt.equal(recovered.serial, 101);
  tt.same(zoneDiff(second, recovered), { removed: [], added: [] }, 'the same version as before the crash');
  const snap = readSnapshot(join(dir, 'journal'), ORIGIN, 'example.com.zone');
  tt.ok(snap && typeof snap !== 'string' && snap.zone.serial === 100, 'the snapshot is the file again');
  tt.end();
});

t.test('no dynamic updates: an edit is served as the file has it', (tt) => {
  const dir = tmpDir(tt, 'popdns-merge-');
  const logs: string[] = [];
  const s = service(dir, { zone: file(10, F0) }, logs);
  s.loaded(file(10, F0));
  const z = s.loaded(file(11, F1)) as Zone;
  tt.equal(z.serial, 11, 'the file serial');
  tt.same(zoneDiff(z, file(11, F1)), { removed: [], added: [] });
  tt.equal(
    readdirSync(join(dir, 'journal')).filter((f) => f.endsWith('ixfr')).length,
    0,
    'no journal written',
  );
  tt.end();
});

t.test('mergeFileEdit: CNAME against dynamic data, date serials', (tt) => {
  const old = file(2026113001, F0);
  // An update added dyn A; the file now makes dyn a CNAME: the file's content at dyn wins.
  const current = file(2026113003, `${F0}dyn A 192.0.2.5\n`);
  const edited = file(2026113001, `${F0}dyn CNAME www\n`);
  const now = Date.UTC(2026, 11, 2, 12) / 1000; // 2 December 2026
  const m = mergeFileEdit(current, old, edited, now);
  if (typeof m === 'string') throw new Error(m);
  tt.same(rrset(m.zone, 'dyn', 'A'), []);
  tt.same(rrset(m.zone, 'dyn', 'CNAME'), ['300 www']);
  tt.same(
    m.conflicts.map((c) => `${c.owner} ${c.type}`),
    ['dyn.example.com. A'],
    'the dropped dynamic A is the conflict',
  );
  tt.equal(m.zone.serial, 2026120200, 'date serial: today, nn = 00 (newer than both)');
  const same = mergeFileEdit(current, old, file(2026120299, `${F0}x A 192.0.2.9\n`), now);
  if (typeof same === 'string') throw new Error(same);
  tt.equal(same.zone.serial, 2026120300, 'past a file serial already at today: counts up');
  tt.end();
});
