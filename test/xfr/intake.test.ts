/**
 * The secondary's streaming intake (issue #12): AXFR records go into the zone builder as each message
 * arrives. A transfer that breaks part-way — the primary closing the connection after some messages,
 * or a later message failing TSIG (RFC 8945 §5.3.1) — must leave the version being served and its copy
 * in data-dir exactly as they were, for AXFR and for an AXFR-style IXFR answer (RFC 1995 §4), and
 * leave no temporary files behind. Also: the record reader expands compressed names (RFC 1035 §4.1.4)
 * and rejects a forward pointer, and the saved master file spells escaped labels back correctly.
 */
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import t from 'tap';
import { ALGORITHM, generateKey } from '../../src/dnssec/keys.js';
import { makePolicy, signedZoneText, signZone } from '../../src/dnssec/signzone.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { buildMessage, readMessage, soaSerial, type WireRecord } from '../../src/wire/records.js';
import { readTransferMessage } from '../../src/wire/recordstream.js';
import { type TsigKey, tsigSign, tsigVerify } from '../../src/wire/tsig.js';
import { loadZone, parseZoneFile } from '../../src/zone/load.js';
import { buildZone, type Zone } from '../../src/zone/zone.js';
import { type Publish, SecondaryManager } from '../../src/xfr/secondary.js';
import { SecondaryStore } from '../../src/xfr/store.js';
import { zoneRecords } from '../../src/xfr/versions.js';
import { addressesAt, tcpDnsServer, zoneRecords as zoneText } from '../helpers/fakeprimary.js';
import { tmpDir } from '../helpers/peers.js';

const ORIGIN = 's.test.';
const KEY: TsigKey = { name: 'xfr.s.test.', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 7) };

const recs = (text: string): WireRecord[] => zoneText(ORIGIN, text);
const soa = (serial: number): WireRecord => recs(`@ SOA ns1 host ${serial} 3600 600 86400 300`)[0]!;

/** A zone of `n` hosts with `tag` in every address's third octet, the SOA first (no closing SOA). */
function version(serial: number, n: number, tag: number): WireRecord[] {
  const hosts = Array.from({ length: n }, (_, i) => `h${i} A 10.${i >> 8}.${tag}.${i & 255}`);
  return [soa(serial), ...recs(['@ NS ns1', 'ns1 A 192.0.2.53', 'mail MX 10 ns1', ...hosts].join('\n'))];
}

/** What the primary does with the next transfer request. */
interface Plan {
  /** The messages' answer sections, in order. */
  messages: WireRecord[][];
  /** Close the connection after this many messages (the rest never sent). */
  cutAfter?: number;
  /** Send message number `badMacAt` (0-based) with a MAC made with another secret. */
  badMacAt?: number;
  /** Answer IXFR with this rcode instead (e.g. 5 REFUSED). */
  ixfrRcode?: number;
}

/** A TSIG-signing primary in this process: SOA queries get `soa(serial)`, transfers follow `plan`. */
async function primary(t0: Test): Promise<{ port: number; state: { serial: number; plan: Plan } }> {
  const state = { serial: 1, plan: { messages: [] } as Plan };
  const wrong: TsigKey = { ...KEY, secret: Buffer.alloc(32, 9) };
  const { port } = await tcpDnsServer(t0, ({ raw, send, sock }) => {
    const v = tsigVerify(raw, new Map([[KEY.name, KEY]]));
    const req = readMessage(v.stripped);
    const q = req.question[0]!;
    if (q.type === TYPE.SOA) {
      const m = buildMessage({ id: req.id, flags: 0x8400, question: q, answer: [soa(state.serial)] });
      send(tsigSign(m, KEY, { requestMac: v.mac! }).message);
      return;
    }
    const plan = state.plan;
    if (q.type === TYPE.IXFR && plan.ixfrRcode !== undefined) {
      const m = buildMessage({ id: req.id, flags: 0x8400 | plan.ixfrRcode, question: q });
      send(tsigSign(m, KEY, { requestMac: v.mac! }).message);
      return;
    }
    let mac = v.mac!;
    plan.messages.forEach((answer, i) => {
      if (plan.cutAfter !== undefined && i >= plan.cutAfter) return;
      const m = buildMessage({ id: req.id, flags: 0x8400, question: i === 0 ? q : null, answer });
      const signed = tsigSign(
        m,
        i === plan.badMacAt ? wrong : KEY,
        i === 0 ? { requestMac: mac } : { priorMac: mac, timersOnly: true },
      );
      mac = signed.mac;
      send(signed.message);
    });
    if (plan.cutAfter !== undefined) sock.destroy();
  });
  return { port, state };
}

/** `records` (SOA first) in `parts` messages, the closing SOA at the end of the last. */
function split(records: WireRecord[], parts: number): WireRecord[][] {
  const per = Math.ceil(records.length / parts);
  const out = Array.from({ length: parts }, (_, i) => records.slice(i * per, (i + 1) * per));
  out[parts - 1]!.push(records[0]!);
  return out;
}

const aOf = (zone: Zone | undefined, owner: string): string[] => addressesAt(zone, owner, ORIGIN);

t.test('a transfer that breaks part-way leaves the served version and data-dir alone', async (tt) => {
  const p = await primary(tt);
  const dataDir = tmpDir(tt);
  const served = new Map<string, Publish>();
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(m), error: (m: string) => logs.push(m) };
  const m = new SecondaryManager({
    dataDir,
    keys: new Map([[KEY.name, KEY]]),
    log,
    publish: (z, pub) => served.set(z, pub),
    verifyNotify: null,
  });
  tt.teardown(() => m.stop());
  const zoneNow = (): Zone | undefined => {
    const pub = served.get(ORIGIN);
    return pub?.kind === 'zone' ? pub.zone : undefined;
  };
  /**
   * data-dir once the state writes a successful SOA check starts in the background are done
   * (the store's lanes idle): the zone file's bytes and the state's serial (its contact time moves on each check).
   */
  const files = async (): Promise<Record<string, string>> => {
    await m.store.idle();
    return Object.fromEntries(
      readdirSync(m.store.dir)
        .sort()
        .map((f) => {
          const body = readFileSync(`${m.store.dir}/${f}`, 'latin1');
          return [
            f,
            f.endsWith('.json') ? `serial ${(JSON.parse(body) as { serial: number }).serial}` : body,
          ];
        }),
    );
  };

  // 1. AXFR of 300 hosts in 4 signed messages: served and saved.
  p.state.serial = 1;
  p.state.plan = { messages: split(version(1, 300, 1), 4) };
  await m.start([{ zone: ORIGIN, primaries: [{ host: '127.0.0.1', port: p.port }], key: KEY.name }], []);
  await m.refreshNow(ORIGIN);
  const v1 = zoneNow();
  tt.equal(v1?.serial, 1, 'serial 1 served after a 4-message signed AXFR');
  tt.equal(v1?.recordCount, 304, 'SOA, NS, ns1 A, MX and 300 hosts');
  tt.same(aOf(v1, 'h299'), ['10.1.1.43'], 'the last host of the last message is there');
  const saved = await files();
  tt.same(Object.keys(saved), ['s.test.json', 's.test.zone'], 'zone file and state saved');
  tt.match(saved['s.test.zone'], /^h299 300 IN A 10\.1\.1\.43$/m);

  // 2. IXFR refused, then the AXFR of serial 2 cut after 2 of 4 messages.
  p.state.serial = 2;
  p.state.plan = { messages: split(version(2, 300, 2), 4), cutAfter: 2, ixfrRcode: 5 };
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow(), v1, 'cut AXFR: the same version object is still served');
  tt.same(aOf(zoneNow(), 'h0'), ['10.0.1.0']);
  tt.match(logs.join('\n'), /AXFR serial 1 failed.*closed before the answer was complete/);
  tt.same(await files(), saved, 'data-dir unchanged, no temporary file left');

  // 3. The AXFR of serial 2 with a bad MAC on its third message.
  p.state.plan = { messages: split(version(2, 300, 2), 4), badMacAt: 2, ixfrRcode: 5 };
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow(), v1, 'bad MAC on a later message: still the same version');
  tt.match(
    logs.join('\n'),
    /AXFR serial 1 failed.*fails TSIG with key xfr\.s\.test\.: badsig.*POPDNS_E_TSIG/,
  );
  tt.same(await files(), saved, 'data-dir unchanged');

  // 4. IXFR answered with the whole zone (AXFR-style, RFC 1995 §4), cut after 3 of 4 messages.
  p.state.plan = { messages: split(version(2, 300, 2), 4), cutAfter: 3 };
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow(), v1, 'cut AXFR-style IXFR: still the same version');
  tt.match(logs.join('\n'), /IXFR serial 1 failed.*closed before/);
  tt.same(await files(), saved, 'data-dir unchanged');

  // 5. The same AXFR-style IXFR, complete: the new version is served and saved.
  p.state.plan = { messages: split(version(2, 300, 2), 4) };
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow()?.serial, 2, 'AXFR-style IXFR: serial 2 served');
  tt.same(aOf(zoneNow(), 'h0'), ['10.0.2.0']);
  tt.same(aOf(zoneNow(), 'h299'), ['10.1.2.43']);
  tt.match(logs.join('\n'), /IXFR\(AXFR-style\) serial 1 -> 2: 304 records/);
  const after = await files();
  tt.same(Object.keys(after), ['s.test.json', 's.test.zone']);
  tt.match(after['s.test.zone'], /^h299 300 IN A 10\.1\.2\.43$/m);
  const reloaded = loadZone(m.store.zonePath(ORIGIN)).result.zone;
  tt.equal(reloaded?.serial, 2, 'the saved file loads as serial 2');
  tt.equal(reloaded?.recordCount, 304);
  m.stop();
  await m.store.idle(); // state writes in flight finish before the dir goes
});

t.test('the record reader expands compressed names and rejects forward pointers', (tt) => {
  // Header (ID 1, QR AA, QD 1, AN 1), question s.test. AXFR, then "mail" + pointer to the question
  // name (offset 12), MX 10 with its exchange as "ns1" + pointer to offset 12 (RFC 1035 §4.1.4).
  const msg = Buffer.from(
    [
      '0001 8400 0001 0001 0000 0000', // header
      '0173 0474657374 00 00fc 0001', // question at offset 12: s.test. AXFR IN
      '046d61696c c00c', // owner mail + pointer to offset 12
      '000f 0001 0000012c 0008', // MX IN TTL 300, RDLENGTH 8
      '000a 036e7331 c00c', // preference 10, exchange ns1 + pointer to offset 12
    ]
      .join('')
      .replace(/ /g, ''),
    'hex',
  );
  const seen: string[] = [];
  readTransferMessage(
    msg,
    (h) => seen.push(`head ${h.id} ${h.question.length} ${h.answers}`),
    (owner, type, klass, ttl, rdata) =>
      seen.push(`${nameToText(owner)} ${type} ${klass} ${ttl} ${[...rdata].join(',')}`),
  );
  tt.same(seen, [
    'head 1 1 1',
    // MX RDATA: preference 10, then ns1.s.test. uncompressed.
    'mail.s.test. 15 1 300 0,10,3,110,115,49,1,115,4,116,101,115,116,0',
  ]);
  const forward = Uint8Array.from(msg);
  forward[msg.length - 1] = msg.length - 2; // the exchange's pointer now points at itself
  tt.throws(
    () =>
      readTransferMessage(
        forward,
        () => {},
        () => {},
      ),
    /pointer does not point backwards/,
  );
  const trailing = Uint8Array.from([...msg, 0]);
  tt.throws(
    () =>
      readTransferMessage(
        trailing,
        () => {},
        () => {},
      ),
    /bytes after the last record/,
  );
  tt.end();
});

t.test('the saved master file spells escaped and nested labels back to the same zone', async (tt) => {
  const text = [
    '@ SOA ns1 host 7 3600 600 86400 300',
    '@ NS ns1',
    'ns1 A 192.0.2.53',
    'a\\.b A 192.0.2.1',
    'sp\\032ace.deep A 192.0.2.2',
    'x.y.z TXT "hi"',
    '*.w A 192.0.2.3',
    'at\\@sign.q\\$ A 192.0.2.4',
    'MiXeD.Case A 192.0.2.5',
  ].join('\n');
  const zone = buildZone(
    parseZoneFile('s.test.zone', { text: `$ORIGIN ${ORIGIN}\n$TTL 300\n${text}` }),
  ).zone!;
  tt.ok(zone, 'the zone builds');
  const dir = tmpDir(tt);
  const store = new SecondaryStore(dir);
  store.init();
  await store.save(zone, { zone: ORIGIN, serial: 7, lastContact: 0, transferredAt: 0 });
  const back = loadZone(store.zonePath(ORIGIN)).result.zone;
  tt.ok(back, 'the saved file loads');
  const list = (z: Zone): string[] =>
    zoneRecords(z)
      .map((r) => `${nameToText(r.owner)} ${r.type} ${r.ttl} ${Buffer.from(r.rdata).toString('hex')}`)
      .sort();
  tt.same(list(back!), list(zone), 'the same records, owner names in their case');
  tt.equal(soaSerial(zoneRecords(back!)[0]!.rdata), 7);
});

t.test('a version that cannot be saved is logged and leaves the saved one intact', async (tt) => {
  const p = await primary(tt);
  const dataDir = tmpDir(tt);
  const served = new Map<string, Publish>();
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(m), error: (m: string) => logs.push(m) };
  const m = new SecondaryManager({
    dataDir,
    keys: new Map([[KEY.name, KEY]]),
    log,
    publish: (z, pub) => served.set(z, pub),
    verifyNotify: null,
  });
  tt.teardown(() => m.stop());
  p.state.serial = 1;
  p.state.plan = { messages: split(version(1, 20, 1), 2) };
  await m.start([{ zone: ORIGIN, primaries: [{ host: '127.0.0.1', port: p.port }], key: KEY.name }], []);
  await m.refreshNow(ORIGIN);
  await m.store.idle();
  tt.equal(loadZone(m.store.zonePath(ORIGIN)).result.zone?.serial, 1, 'serial 1 saved');
  // data-dir/secondary made unusable (a plain file in its place: permissions do not stop root).
  const aside = `${dataDir}/aside`;
  renameSync(m.store.dir, aside);
  writeFileSync(m.store.dir, 'not a directory');
  p.state.serial = 2;
  p.state.plan = { messages: split(version(2, 20, 2), 2), ixfrRcode: 5 };
  await m.refreshNow(ORIGIN);
  await m.store.idle();
  tt.match(
    logs.join('\n'),
    /zone s\.test\.: cannot save serial 2: .*ENOTDIR.*\[POPDNS_E_DATA_DIR\]/,
    'the failed save is logged with its code',
  );
  const pub = served.get(ORIGIN);
  tt.equal(pub?.kind === 'zone' ? pub.zone.serial : null, 2, 'the checked version is served anyway');
  rmSync(m.store.dir);
  renameSync(aside, m.store.dir);
  tt.equal(loadZone(m.store.zonePath(ORIGIN)).result.zone?.serial, 1, 'the saved version is still serial 1');
  tt.same(
    readdirSync(m.store.dir).filter((f) => f.includes('.tmp-')),
    [],
    'no temporary file',
  );
  m.stop();
  await m.store.idle();
});

t.test('a zone that arrived NSEC3-signed: listed and saved with its NSEC3 chain', async (tt) => {
  const unsigned = buildZone(
    parseZoneFile('s.test.zone', {
      text: `$ORIGIN ${ORIGIN}\n$TTL 300\n@ SOA ns1 host 7 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\na.b.c TXT "deep"\n`,
    }),
  ).zone!;
  signZone(
    unsigned,
    [generateKey(nameFromText(ORIGIN), ALGORITHM.ED25519, 'csk')],
    makePolicy({ denial: 'nsec3' }),
    { now: Math.floor(Date.now() / 1000) },
  );
  // What a secondary holds: the signer's output as received (pre-signed, never re-signed).
  const signedText = signedZoneText(unsigned);
  const zone = buildZone(parseZoneFile('s.test.zone', { text: `$ORIGIN ${ORIGIN}\n${signedText}` })).zone!;
  tt.ok(zone.dnssec?.nsec3, 'the copy has an NSEC3 chain');
  // RFC 5155 §7.1: one NSEC3 per name of the zone, empty non-terminals included:
  // apex, ns1, www, c, b.c, a.b.c = 6, each with its RRSIG.
  const listed = zoneRecords(zone);
  tt.equal(listed.filter((r) => r.type === TYPE.NSEC3).length, 6, 'zoneRecords lists the 6 NSEC3 records');
  tt.equal(
    listed.filter((r) => r.type === TYPE.RRSIG && r.rdata[0] === 0 && r.rdata[1] === TYPE.NSEC3).length,
    6,
    'and their RRSIGs',
  );
  const dir = tmpDir(tt);
  const store = new SecondaryStore(dir);
  store.init();
  await store.save(zone, { zone: ORIGIN, serial: 7, lastContact: 0, transferredAt: 0 });
  const back = loadZone(store.zonePath(ORIGIN)).result.zone;
  tt.ok(back, 'the saved file loads');
  tt.equal(back!.dnssec?.nsec3?.chain.length, 6, 'the saved file keeps the NSEC3 chain');
  const list = (z: Zone): string[] =>
    zoneRecords(z)
      .map((r) => `${nameToText(r.owner)} ${r.type} ${r.ttl} ${Buffer.from(r.rdata).toString('hex')}`)
      .sort();
  tt.same(list(back!), list(zone), 'the same records after a restart');
});

t.test("init removes a dead writer's temporary file and keeps a live one's", (tt) => {
  const dir = tmpDir(tt);
  const store = new SecondaryStore(dir);
  store.init();
  // Above Linux's largest pid_max (2^22): no process can have this PID.
  const dead = join(store.dir, 'a.test.zone.tmp-4194305');
  const live = join(store.dir, `b.test.zone.tmp-${process.pid}`);
  const zone = join(store.dir, 'a.test.zone');
  for (const f of [dead, live, zone]) writeFileSync(f, 'x');
  store.init();
  tt.same(readdirSync(store.dir).sort(), ['a.test.zone', `b.test.zone.tmp-${process.pid}`]);
  tt.end();
});
