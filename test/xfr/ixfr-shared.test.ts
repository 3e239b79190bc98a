/**
 * IXFR out from a shared body: concurrent clients asking from the same serial get one response built
 * once, each with its own message ID, flags, question (letter case) and TSIG (RFC 8945 §5.3.1: the
 * first message's MAC over the request MAC, later ones over the prior MAC); after a further change the
 * old body is not reused. Expected sequences from RFC 1995 §4: new SOA, then per changeset old SOA,
 * deletions, new SOA, additions; new SOA last. And the IXFR history's in-memory tail: serials older
 * than what memory holds are read from the file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import packet from 'dns-packet';
import t, { type Test } from 'tap';
import { defaultConfig, parseConfig } from '../../src/server/config.js';
import { parseListen } from '../../src/server/listen.js';
import { PopdnsServer } from '../../src/server/server.js';
import { type TsigKey, TsigStreamVerifier, tsigSign, tsigVerify } from '../../src/wire/tsig.js';
import { IxfrHistory } from '../../src/xfr/journal.js';
import { nameFromText } from '../../src/wire/name.js';
import type { XfrRecord } from '../../src/xfr/zonedata.js';
import { buildQuery } from '../helpers/dns.js';
import { tmpDir } from '../helpers/peers.js';
import { answerSoaCount, tcpStream } from '../helpers/xfr.js';

const KEY_A: TsigKey = { name: 'a.xfr.example.', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 1) };
const KEY_B: TsigKey = {
  name: 'second-key.xfr.example.',
  algorithm: 'hmac-sha512',
  secret: Buffer.alloc(64, 2),
};

const YAML = [
  'tsig-keys:',
  `  a.xfr.example: { algorithm: hmac-sha256, secret: "${KEY_A.secret.toString('base64')}" }`,
  `  second-key.xfr.example: { algorithm: hmac-sha512, secret: "${KEY_B.secret.toString('base64')}" }`,
  'transfer:',
  '  allow:',
  '    - { from: 127.0.0.0/8, key: a.xfr.example }',
  '    - { from: 127.0.0.0/8, key: second-key.xfr.example }',
  '',
].join('\n');

/** Version `serial`: www moves with the serial; host v2 exists from serial 2, v3 from serial 3. */
function zone(serial: number): string {
  const lines = [
    '$ORIGIN example.com.',
    '$TTL 600',
    `@ SOA ns1.example.net. hostmaster.example.com. ${serial} 900 180 1209600 180`,
    '@ NS ns1.example.net.',
    `www A 192.0.2.${serial}`,
  ];
  if (serial >= 2) lines.push('v2 A 198.51.100.2');
  if (serial >= 3) lines.push('v3 A 198.51.100.3');
  for (let i = 0; i < 40; i++) lines.push(`h${i} TXT "host ${i} padding padding padding padding"`);
  return `${lines.join('\n')}\n`;
}

/** An IXFR query for `qname` with the client's SOA (serial) in the authority section (RFC 1995 §3). */
function ixfrQuery(qname: string, serial: number, id: number, rd: boolean): Buffer {
  const q = buildQuery(qname, 'IXFR', { id, edns: false, rd });
  const rr = Buffer.alloc(12);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(6, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(600, 6);
  const rdata = Buffer.concat([Buffer.from([0, 0]), Buffer.alloc(20)]);
  rdata.writeUInt32BE(serial, 2);
  rr.writeUInt16BE(rdata.length, 10);
  const out = Buffer.concat([q, rr, rdata]);
  out.writeUInt16BE(1, 8);
  return out;
}

async function server(t: Test): Promise<{ s: PopdnsServer; port: number; file: string }> {
  const dir = tmpDir(t, 'popdns-ixfr-shared-');
  mkdirSync(join(dir, 'zones'));
  const file = join(dir, 'zones', 'example.com.zone');
  writeFileSync(file, zone(1));
  let cfg = defaultConfig('test', 1);
  cfg = parseConfig(`data-dir: ${join(dir, 'data')}\n${YAML}`, 'test.yaml', cfg);
  cfg.zones = join(dir, 'zones');
  cfg.keys = join(dir, 'no-keys');
  cfg.listen = [parseListen('127.0.0.1:0')];
  cfg.listenDefault = false;
  const s = new PopdnsServer(cfg, { info: () => {}, error: () => {} });
  t.teardown(() => s.close());
  await s.start();
  return { s, port: s.bound[0]!.addr.port, file };
}

const doneAfter =
  (soas: number) =>
  (msgs: Buffer[]): boolean =>
    msgs.reduce((n, m) => n + answerSoaCount(m), 0) >= soas || (msgs.at(-1)!.readUInt16BE(2) & 0xf) !== 0;

/** One signed IXFR over TCP: every message checked against `key` and the request's MAC. */
async function signedIxfr(
  t: Test,
  port: number,
  key: TsigKey,
  qname: string,
  from: number,
  id: number,
  rd: boolean,
  soas: number,
): Promise<{ records: string[]; first: Buffer }> {
  const req = tsigSign(ixfrQuery(qname, from, id, rd), key);
  const msgs = await tcpStream(port, req.message, doneAfter(soas));
  const v = new TsigStreamVerifier(key, req.mac);
  const stripped: Buffer[] = [];
  for (const m of msgs) {
    t.equal(m.readUInt16BE(0), id, `${key.name}: message ID ${id}`);
    const r = v.next(m);
    t.equal(r.status, 'ok', `${key.name}: message signed with ${key.algorithm}`);
    stripped.push(r.stripped);
  }
  t.ok(v.finish(), `${key.name}: the last message is signed`);
  const records = stripped.flatMap((m) =>
    (packet.decode(m).answers ?? []).map((r) => {
      const data = (r as { data: unknown }).data;
      return `${r.name} ${r.type} ${r.type === 'SOA' ? (data as packet.SoaData).serial : String(data)}`;
    }),
  );
  return { records: normalized(records), first: stripped[0]! };
}

/**
 * Names lower-cased (owners may be compressed against the client's question, in its letter case) and
 * each run of records between two SOAs sorted: RFC 1995 fixes where the SOAs go, not the order of
 * the deletions or additions among themselves.
 */
function normalized(records: string[]): string[] {
  const out: string[] = [];
  let run: string[] = [];
  for (const r of records.map((x) => x.toLowerCase())) {
    if (r.includes(' soa ')) {
      out.push(...run.sort(), r);
      run = [];
    } else run.push(r);
  }
  return [...out, ...run.sort()];
}

t.test(
  'concurrent IXFR clients share one body, each signed with its own key; a change ends the sharing',
  async (tt) => {
    const { s, port, file } = await server(tt);
    writeFileSync(file, zone(2));
    await s.reloadStepwise();
    await s.xfr.settled();
    const built0 = s.xfr.ixfrBodiesBuilt;

    // RFC 1995 §4: SOA 2, SOA 1, deletions (www .1), SOA 2, additions (www .2, v2), SOA 2.
    const oneToTwo = normalized([
      'example.com SOA 2',
      'example.com SOA 1',
      'www.example.com A 192.0.2.1',
      'example.com SOA 2',
      'www.example.com A 192.0.2.2',
      'v2.example.com A 198.51.100.2',
      'example.com SOA 2',
    ]);
    const [a, b, a2] = await Promise.all([
      signedIxfr(tt, port, KEY_A, 'example.com.', 1, 0x1111, false, 4),
      signedIxfr(tt, port, KEY_B, 'EXAMPLE.Com.', 1, 0x2222, true, 4),
      signedIxfr(tt, port, KEY_A, 'example.com.', 1, 0x3333, true, 4),
    ]);
    tt.same(a.records, oneToTwo, 'client A: the RFC 1995 sequence');
    tt.equal(packet.decode(b.first).answers![0]!.name, 'EXAMPLE.Com', 'B: owners point into its question');
    tt.same(b.records, oneToTwo, 'client B: the same sequence');
    tt.same(a2.records, oneToTwo, 'client A again: the same sequence');
    tt.equal(s.xfr.ixfrBodiesBuilt - built0, 1, 'one body built for the three requests');
    // Each client's own question (its letter case) and flags: QR, AA, its RD, NOERROR.
    tt.equal(packet.decode(b.first).questions![0]!.name, 'EXAMPLE.Com', 'B: its question echoed as sent');
    tt.equal(packet.decode(a.first).questions![0]!.name, 'example.com');
    tt.equal(a.first.readUInt16BE(2), 0x8400, 'A: QR AA, no RD');
    tt.equal(b.first.readUInt16BE(2), 0x8500, 'B: QR AA RD');

    // Later requests reuse it too.
    const later = await signedIxfr(tt, port, KEY_B, 'example.com.', 1, 0x4444, false, 4);
    tt.same(later.records, oneToTwo);
    tt.equal(s.xfr.ixfrBodiesBuilt - built0, 1, 'a later request: still the one body');

    // A further change: the body of serial 2 must not be reused.
    writeFileSync(file, zone(3));
    await s.reloadStepwise();
    await s.xfr.settled();
    const [c, d] = await Promise.all([
      signedIxfr(tt, port, KEY_A, 'example.com.', 1, 0x5555, false, 6),
      signedIxfr(tt, port, KEY_B, 'example.com.', 1, 0x6666, false, 6),
    ]);
    const oneToThree = normalized([
      'example.com SOA 3',
      'example.com SOA 1',
      'www.example.com A 192.0.2.1',
      'example.com SOA 2',
      'www.example.com A 192.0.2.2',
      'v2.example.com A 198.51.100.2',
      'example.com SOA 2',
      'www.example.com A 192.0.2.2',
      'example.com SOA 3',
      'www.example.com A 192.0.2.3',
      'v3.example.com A 198.51.100.3',
      'example.com SOA 3',
    ]);
    tt.same(c.records, oneToThree, 'from 1 after the second change: both changesets, to serial 3');
    tt.same(d.records, oneToThree);
    tt.equal(s.xfr.ixfrBodiesBuilt - built0, 2, 'a new body for serial 3');
    const e = await signedIxfr(tt, port, KEY_A, 'example.com.', 2, 0x7777, false, 4);
    tt.same(
      e.records,
      normalized([
        'example.com SOA 3',
        'example.com SOA 2',
        'www.example.com A 192.0.2.2',
        'example.com SOA 3',
        'www.example.com A 192.0.2.3',
        'v3.example.com A 198.51.100.3',
        'example.com SOA 3',
      ]),
    );
    tt.equal(s.xfr.ixfrBodiesBuilt - built0, 3, 'another client serial, another body');
    // Unsigned-looking leftovers: no message of the shared body carries a TSIG of its own.
    tt.equal(tsigVerify(c.first, new Map()).status, 'unsigned');
  },
);

t.test('IXFR history: the newest changesets in memory, older serials from the file', async (tt) => {
  const dir = tmpDir(tt, 'popdns-ixfr-mem-');
  const soa = (n: number): XfrRecord => {
    const rdata = Buffer.alloc(22);
    rdata.writeUInt32BE(n, 2);
    return { owner: nameFromText('example.com.'), type: 6, class: 1, ttl: 600, rdata };
  };
  // Memory holds about one entry (each is a few hundred bytes).
  const h = new IxfrHistory(join(dir, 'ixfr'), 1 << 20, 200);
  for (let n = 1; n < 4; n++) h.appendChangeset('example.com.', n, n + 1, [soa(n)], [soa(n + 1)]);
  const chain = (from: number) =>
    h.readChangesets('example.com.', from)?.map((c) => [c.fromSerial, c.toSerial]);
  tt.same(chain(3), [[3, 4]], 'the newest, from memory');
  tt.same(
    chain(1),
    [
      [1, 2],
      [2, 3],
      [3, 4],
    ],
    'the oldest, read from the file',
  );
  tt.equal(h.all('example.com.').length, 3, 'all: the whole file');
  tt.equal(h.lastSerial('example.com.'), 4);
  // A fresh object (a restart) reads the same from disk.
  const again = new IxfrHistory(join(dir, 'ixfr'), 1 << 20, 200);
  tt.same(
    again.readChangesets('example.com.', 2)?.map((c) => c.toSerial),
    [3, 4],
  );
  // Another process appends: seen through the file's stamp.
  again.appendChangeset('example.com.', 4, 5, [soa(4)], [soa(5)]);
  tt.equal(h.lastSerial('example.com.'), 5, 'an append by another writer is seen');
  tt.same(chain(4), [[4, 5]]);
});
