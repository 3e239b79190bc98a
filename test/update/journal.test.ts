/**
 * The update journal (src/update/service.ts): changesets written before NOERROR are replayed on top of
 * the zone file; a file edited and re-serialled gets the journal's net change on top and a serial past
 * both; a torn last entry is cut off, keeping the good prefix.
 */
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseUpdatesSection } from '../../src/update/config.js';
import { UpdateCounters } from '../../src/update/counters.js';
import { UpdateService } from '../../src/update/service.js';
import { QueryInfo } from '../../src/wire/message.js';
import { nameFromText } from '../../src/wire/name.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, findNode, type Zone } from '../../src/zone/zone.js';
import { TYPE } from '../../src/wire/constants.js';
import { tmpDir } from '../helpers/peers.js';
import { parseDocument } from 'yaml';

const ORIGIN = nameFromText('example.com.');
const file = (serial: number, extra = ''): Zone => {
  const text = `$TTL 300\n@ SOA ns1 h ${serial} 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n${extra}`;
  return buildZone(parseMasterFile(text, { file: 'example.com.zone', origin: ORIGIN })).zone!;
};
const policies = parseUpdatesSection(parseDocument('example.com:\n  - { key: ops }\n').contents!, (_n, m) => {
  throw new Error(m);
});

/** An UPDATE adding `name A addr` (no TSIG here: the service is handed the verified key). */
function addA(name: string, addr: string): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(1, 0);
  h.writeUInt16BE(5 << 11, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(1, 8);
  const rr = Buffer.alloc(14);
  rr.writeUInt16BE(TYPE.A, 0);
  rr.writeUInt16BE(1, 2);
  rr.writeUInt32BE(60, 4);
  rr.writeUInt16BE(4, 8);
  Buffer.from(addr.split('.').map(Number)).copy(rr, 10);
  return Buffer.concat([h, ORIGIN, Buffer.from([0, 6, 0, 1]), nameFromText(name, ORIGIN), rr]);
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

const has = (z: Zone, name: string): boolean => !!findNode(z, nameFromText(name, ORIGIN))?.rrsets.get(TYPE.A);
const q = new QueryInfo();
q.opcode = 5;
const tsig = {
  status: 'ok' as const,
  key: { name: 'ops.', algorithm: 'hmac-sha256' as const, secret: Buffer.alloc(32) },
  error: 0,
  origId: 1,
  stripped: Buffer.alloc(0),
};

t.test('replay, rebase after an edit, torn tail', (tt) => {
  const dir = tmpDir(tt, 'popdns-ujournal-');
  const logs: string[] = [];
  const cur = { zone: file(10) };
  const s = service(dir, cur, logs);
  for (const [n, a] of [
    ['a', '192.0.2.10'],
    ['b', '192.0.2.11'],
  ] as const) {
    const out = s.hook(addA(n, a), q, '127.0.0.1', tsig)!;
    tt.equal(out[3]! & 0xf, 0, `${n}: NOERROR`);
  }
  tt.equal(cur.zone.serial, 12);
  // Restart: the file at serial 10 + the journal = serial 12 with a and b.
  const s2 = service(dir, { zone: file(10) }, logs);
  const replayed = s2.loaded(file(10)) as Zone;
  tt.equal(replayed.serial, 12);
  tt.ok(has(replayed, 'a') && has(replayed, 'b'));
  // Torn tail: a half-written entry after the two good ones is cut off.
  const jdir = join(dir, 'journal');
  const jf = join(jdir, readdirSync(jdir)[0]!);
  appendFileSync(jf, Buffer.from([0, 0, 0, 200, 1, 2, 3]));
  const afterTear = service(dir, { zone: file(10) }, logs).loaded(file(10)) as Zone;
  tt.equal(afterTear.serial, 12, 'good prefix kept');
  tt.ok(has(afterTear, 'b'));
  // The operator edits the file (serial 20, a new record c): the dynamic records stay, serial past both.
  const edited = service(dir, { zone: file(20, 'c A 192.0.2.12\n') }, logs).loaded(
    file(20, 'c A 192.0.2.12\n'),
  ) as Zone;
  tt.ok(
    has(edited, 'a') && has(edited, 'b') && has(edited, 'c'),
    'file edit and dynamic records both served',
  );
  tt.equal(edited.serial, 21);
  // The file version loaded at the restart was kept (src/update/merge.ts): the edit is merged as a difference.
  tt.match(logs.join('\n'), /file edit merged with dynamic updates/);
  // And the journal now starts at the file's serial 20: a restart replays it once more to 21.
  const again = service(dir, { zone: file(20, 'c A 192.0.2.12\n') }, logs).loaded(
    file(20, 'c A 192.0.2.12\n'),
  ) as Zone;
  tt.equal(again.serial, 21);
  tt.ok(has(again, 'a') && has(again, 'c'));
  tt.end();
});
