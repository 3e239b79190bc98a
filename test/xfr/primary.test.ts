/**
 * The primary side in one process: transfer.allow (REFUSED by default, keyed entries), AXFR and IXFR
 * framing (RFC 5936 §2.2, RFC 1995 §4), AXFR-style IXFR when history does not cover the serial, IXFR
 * over UDP (fits → IXFR, else the SOA alone), TSIG on ordinary queries (RFC 8945 §5.2: BADKEY, BADSIG,
 * BADTIME answers; signed answers for good ones, checked with dig), the IXFR history on disk, the
 * diff of a 1-record change in a big zone, a transfer streaming while queries are answered, config
 * errors, and `popdns tsig-keygen` output loading in popdns and named-checkconf.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import packet from 'dns-packet';
import t, { type Test } from 'tap';
import { tsigKeygen } from '../../src/cli/tsigkeygen.js';
import { ConfigError, defaultConfig, parseConfig } from '../../src/server/config.js';
import { parseListen } from '../../src/server/listen.js';
import { PopdnsServer } from '../../src/server/server.js';
import { PARSE, parseQuery, QueryInfo } from '../../src/wire/message.js';
import { nameFromText } from '../../src/wire/name.js';
import {
  TSIG_ERR,
  type TsigKey,
  TsigStreamVerifier,
  tsigRecordOf,
  tsigSign,
  tsigVerify,
} from '../../src/wire/tsig.js';
import { IxfrHistory } from '../../src/xfr/journal.js';
import { diffZones } from '../../src/xfr/zonedata.js';
import { loadZoneFile } from '../../src/zone/load.js';
import { buildQuery, udpExchange } from '../helpers/dns.js';
import { needTool, tmpDir } from '../helpers/peers.js';
import { answerSoaCount, tcpStream } from '../helpers/xfr.js';
import { spawnSync } from '../helpers/spawn.js';

const SECRET = Buffer.alloc(32, 7);
const KEY: TsigKey = { name: 'xfr.example.net.', algorithm: 'hmac-sha256', secret: SECRET };
const KEYS = new Map([[KEY.name, KEY]]);

function zone(serial: number, www: string, hosts = 50): string {
  const lines = [
    '$ORIGIN example.com.',
    '$TTL 600',
    `@ SOA ns1.example.net. hostmaster.example.com. ${serial} 900 180 1209600 180`,
    '@ NS ns1.example.net.',
    `www A ${www}`,
  ];
  for (let i = 0; i < hosts; i++) lines.push(`h${i} TXT "host ${i} padding padding padding padding"`);
  return `${lines.join('\n')}\n`;
}

async function server(
  t: Test,
  yaml: string,
  text = zone(1, '192.0.2.1'),
): Promise<{ s: PopdnsServer; port: number; file: string; logs: string[] }> {
  const dir = tmpDir(t, 'popdns-xfr-');
  mkdirSync(join(dir, 'zones'));
  const file = join(dir, 'zones', 'example.com.zone');
  writeFileSync(file, text);
  let cfg = defaultConfig('test', 1);
  cfg = parseConfig(`data-dir: ${join(dir, 'data')}\n${yaml}`, 'test.yaml', cfg);
  cfg.zones = join(dir, 'zones');
  cfg.keys = join(dir, 'no-keys');
  cfg.listen = [parseListen('127.0.0.1:0')];
  cfg.listenDefault = false;
  const logs: string[] = [];
  const s = new PopdnsServer(cfg, { info: (m) => logs.push(m), error: (m) => logs.push(m) });
  t.teardown(() => s.close());
  await s.start();
  return { s, port: s.bound[0]!.addr.port, file, logs };
}

const KEYED = `tsig-keys:\n  xfr.example.net: { algorithm: hmac-sha256, secret: "${SECRET.toString('base64')}" }\n`;
const ALLOW_KEYED = `${KEYED}transfer:\n  allow:\n    - { from: 127.0.0.0/8, key: xfr.example.net }\n`;

/** An IXFR query with the client's SOA (serial) in the authority section (RFC 1995 §3). */
function ixfrQuery(serial: number, id = 1): Buffer {
  const q = buildQuery('example.com.', 'IXFR', { id, edns: false });
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

const doneAfter =
  (soas: number) =>
  (msgs: Buffer[]): boolean =>
    msgs.reduce((n, m) => n + answerSoaCount(m), 0) >= soas || (msgs.at(-1)!.readUInt16BE(2) & 0xf) !== 0;

function rrs(msgs: Buffer[]): packet.Answer[] {
  return msgs.flatMap((m) => packet.decode(m).answers ?? []);
}

t.test('parseQuery accepts an IXFR query with its SOA, and finds the TSIG RR', (tt) => {
  const q = new QueryInfo();
  tt.equal(parseQuery(ixfrQuery(5), q), PARSE.OK, 'IXFR with NSCOUNT 1 is a query, not FORMERR');
  tt.equal(q.tsigAt, -1);
  const signed = tsigSign(ixfrQuery(5), KEY).message;
  tt.equal(parseQuery(signed, q), PARSE.OK);
  tt.ok(q.tsigAt > 0, 'TSIG found');
  const a = buildQuery('example.com.', 'A', { edns: false });
  const withNs = Buffer.concat([a, ixfrQuery(5).subarray(a.length)]);
  withNs.writeUInt16BE(1, 8);
  tt.equal(parseQuery(withNs, q), PARSE.FORMERR, 'an A query with an authority record is still FORMERR');
  tt.end();
});

t.test('no transfer.allow: AXFR and IXFR are REFUSED', async (tt) => {
  const { port, logs } = await server(tt, '');
  const [r] = await tcpStream(port, buildQuery('example.com.', 'AXFR'), () => true);
  tt.equal(r!.readUInt16BE(2) & 0xf, 5, 'REFUSED');
  tt.equal(r!.readUInt16BE(6), 0, 'no records');
  const u = await udpExchange(port, ixfrQuery(1));
  tt.equal(u!.readUInt16BE(2) & 0xf, 5, 'IXFR over UDP REFUSED');
  tt.match(
    logs.join('\n'),
    /xfr refused: zone example\.com\. peer 127\.0\.0\.1 type AXFR unsigned: not allowed by transfer\.allow \[POPDNS_W_XFR_REFUSED\]/,
  );
});

t.test('AXFR, IXFR, AXFR-style IXFR, UDP IXFR; all signed and verified message by message', async (tt) => {
  const { s, port, file, logs } = await server(tt, ALLOW_KEYED);
  // Unsigned request while the entry wants a key: REFUSED.
  const [ref] = await tcpStream(port, buildQuery('example.com.', 'AXFR'), () => true);
  tt.equal(ref!.readUInt16BE(2) & 0xf, 5);
  // Signed AXFR: SOA … SOA, every message verifies (RFC 8945 §5.3.1).
  const ax = tsigSign(buildQuery('example.com.', 'AXFR', { id: 7 }), KEY);
  const msgs = await tcpStream(port, ax.message, doneAfter(2));
  const v = new TsigStreamVerifier(KEY, ax.mac);
  for (const m of msgs) tt.equal(v.next(m).status, 'ok');
  tt.ok(v.finish());
  const all = rrs(msgs.map((m) => tsigVerify(m, new Map()).stripped));
  tt.equal(all[0]!.type, 'SOA');
  tt.equal(all.at(-1)!.type, 'SOA');
  tt.equal(all.length, 2 + 2 + 50, 'SOA, NS, www, 50 TXT, SOA');
  tt.equal(all.filter((r) => r.type === 'SOA').length, 2);

  // A one-record change: serial 1 → 2; IXFR from 1 is incremental.
  writeFileSync(file, zone(2, '192.0.2.2'));
  await s.reloadStepwise();
  await s.xfr.settled();
  const ix = tsigSign(ixfrQuery(1, 8), KEY);
  const im = await tcpStream(port, ix.message, doneAfter(4));
  const iv = new TsigStreamVerifier(KEY, ix.mac);
  for (const m of im) iv.next(m);
  tt.ok(iv.finish(), 'IXFR signed');
  const inc = rrs(im.map((m) => tsigVerify(m, new Map()).stripped)).map((r) => {
    const data = (r as { data: unknown }).data;
    return `${r.name} ${r.type} ${r.type === 'SOA' ? (data as packet.SoaData).serial : String(data)}`;
  });
  tt.same(inc, [
    'example.com SOA 2',
    'example.com SOA 1',
    'www.example.com A 192.0.2.1',
    'example.com SOA 2',
    'www.example.com A 192.0.2.2',
    'example.com SOA 2',
  ]);
  tt.match(
    logs.join('\n'),
    /xfr out: zone example\.com\. peer 127\.0\.0\.1 type IXFR serial 1 → 2 records 6 /,
  );

  // Up to date: the SOA alone.
  const up = await tcpStream(port, tsigSign(ixfrQuery(2), KEY).message, () => true);
  tt.same(
    rrs(up.map((m) => tsigVerify(m, new Map()).stripped)).map((r) => r.type),
    ['SOA'],
  );

  // An older serial the history never had (0): AXFR-style (the whole zone between two SOAs).
  const old = await tcpStream(port, tsigSign(ixfrQuery(0), KEY).message, doneAfter(2));
  const oldRrs = rrs(old.map((m) => tsigVerify(m, new Map()).stripped));
  tt.equal(oldRrs.length, 54, 'AXFR-style IXFR');

  // UDP: the IXFR fits; the AXFR-style answer does not, so the SOA alone.
  const uq = tsigSign(ixfrQuery(1, 9), KEY);
  const u = (await udpExchange(port, uq.message))!;
  tt.equal(tsigVerify(u, KEYS, { requestMac: uq.mac }).status, 'ok');
  tt.equal(
    packet.decode(tsigVerify(u, KEYS, { requestMac: uq.mac }).stripped).answers!.length,
    6,
    'IXFR over UDP',
  );
  const u2 = (await udpExchange(port, tsigSign(ixfrQuery(0), KEY).message))!;
  tt.same(
    packet.decode(tsigVerify(u2, new Map()).stripped).answers!.map((r) => r.type),
    ['SOA'],
    'SOA alone over UDP',
  );

  // Bad MAC on a transfer: NOTAUTH + BADSIG, no data.
  const bad = Buffer.from(tsigSign(buildQuery('example.com.', 'AXFR'), KEY).message);
  bad[bad.length - 10]! ^= 1;
  const [nb] = await tcpStream(port, bad, () => true);
  tt.equal(nb!.readUInt16BE(2) & 0xf, 9, 'NOTAUTH');
  tt.equal(nb!.readUInt16BE(6), 0);
  tt.equal(tsigRecordOf(nb!)!.error, TSIG_ERR.BADSIG);

  // The history survives: a new IxfrHistory object reads what the server wrote.
  const h = new IxfrHistory(join(s.cfg.dataDir, 'ixfr'));
  tt.same(
    h.readChangesets('example.com.', 1)?.map((c) => [c.fromSerial, c.toSerial]),
    [[1, 2]],
  );
});

t.test('TSIG on ordinary queries (RFC 8945 §5.2), checked with dig', async (tt) => {
  const { port } = await server(tt, KEYED);
  const now = Math.floor(Date.now() / 1000);
  const q = tsigSign(buildQuery('www.example.com.', 'A', { id: 3 }), KEY);
  const r = (await udpExchange(port, q.message))!;
  tt.equal(r.readUInt16BE(2) & 0xf, 0);
  tt.equal(tsigVerify(r, KEYS, { requestMac: q.mac }).status, 'ok', 'a signed answer');
  const late = tsigSign(buildQuery('www.example.com.', 'A', { id: 4 }), KEY, { now: now - 1000 });
  const rl = (await udpExchange(port, late.message))!;
  tt.equal(rl.readUInt16BE(2) & 0xf, 9, 'NOTAUTH');
  const rec = tsigRecordOf(rl)!;
  tt.equal(rec.error, TSIG_ERR.BADTIME);
  tt.equal(rec.timeSigned, now - 1000, 'Time Signed echoed');
  tt.ok(Math.abs(rec.otherData.readUIntBE(0, 6) - now) < 5, "Other Data: the server's time");
  tt.equal(
    tsigVerify(rl, KEYS, { requestMac: late.mac, now: now - 1000 }).status,
    'ok',
    'BADTIME answer signed',
  );
  if (!needTool(tt, 'dig', 'bind9-dnsutils')) return;
  // dig runs beside this process (the server answers from this event loop: no spawnSync).
  const dig = (y: string): Promise<string> =>
    new Promise((resolve) => {
      const c = spawn('dig', ['-p', String(port), '@127.0.0.1', 'www.example.com', 'A', '-y', y, '+tries=1']);
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => resolve(out));
    });
  const good = await dig(`hmac-sha256:xfr.example.net:${SECRET.toString('base64')}`);
  tt.match(good, /status: NOERROR/);
  tt.match(good, /www\.example\.com\.\s+600\s+IN\s+A\s+192\.0\.2\.1/);
  tt.notMatch(good, /could not be validated|Couldn't verify/, 'dig verifies the signed answer');
  const unknown = await dig(`hmac-sha256:nokey:${SECRET.toString('base64')}`);
  tt.match(unknown, /status: NOTAUTH/);
  tt.match(unknown, /nokey\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY/);
  const wrong = await dig(`hmac-sha256:xfr.example.net:${Buffer.alloc(32, 8).toString('base64')}`);
  tt.match(wrong, /status: NOTAUTH/);
  tt.match(wrong, /BADSIG/);
});

t.test('the diff of a one-record change in a big zone is one record each way', (tt) => {
  const dir = tmpDir(tt);
  const f = join(dir, 'big.test.zone');
  const big = (serial: number, last: string): string => {
    const lines = [
      `$ORIGIN big.test.`,
      '$TTL 300',
      `@ SOA ns h ${serial} 3600 900 604800 300`,
      '@ NS ns',
      'ns A 192.0.2.1',
    ];
    for (let i = 0; i < 100_000; i++)
      lines.push(`h${i} A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    lines.push(`last A ${last}`);
    return `${lines.join('\n')}\n`;
  };
  writeFileSync(f, big(1, '192.0.2.1'));
  const a = loadZoneFile(f).zone!;
  writeFileSync(f, big(2, '192.0.2.2'));
  const b = loadZoneFile(f).zone!;
  const steps = diffZones(a, b, 1000);
  let r = steps.next();
  let pauses = 0;
  while (!r.done) {
    pauses++;
    r = steps.next();
  }
  tt.ok(pauses > 10, `yielded ${pauses} times`);
  tt.equal(r.value!.removed.length, 1);
  tt.equal(r.value!.added.length, 1);
  tt.same(Array.from(r.value!.added[0]!.rdata), [192, 0, 2, 2]);
  // A change bigger than the bound: null (no history; AXFR-style IXFR).
  writeFileSync(f, big(3, '192.0.2.3').replace(/ A 10\./g, ' A 11.'));
  const c = diffZones(a, loadZoneFile(f).zone!, 1000);
  let rc = c.next();
  while (!rc.done) rc = c.next();
  tt.equal(rc.value, null);
  tt.end();
});

t.test('IXFR history file: chain, restart, torn tail, bound', (tt) => {
  const dir = tmpDir(tt);
  const h = new IxfrHistory(dir, 4000);
  const soa = (serial: number) => {
    const rdata = Buffer.concat([nameFromText('ns.'), nameFromText('h.'), Buffer.alloc(20)]);
    rdata.writeUInt32BE(serial, rdata.length - 20);
    return { owner: nameFromText('z.test.'), type: 6, ttl: 300, rdata };
  };
  const a = (n: number) => ({
    owner: nameFromText('a.z.test.'),
    type: 1,
    ttl: 300,
    rdata: Uint8Array.of(10, 0, 0, n),
  });
  tt.throws(() => h.appendChangeset('z.test.', 1, 2, [a(1)], [a(2)]), /must start with the old SOA/);
  h.appendChangeset('z.test.', 1, 2, [soa(1), a(1)], [soa(2), a(2)]);
  h.appendChangeset('z.test.', 2, 3, [soa(2), a(2)], [soa(3), a(3)]);
  tt.same(
    new IxfrHistory(dir).readChangesets('z.test.', 1)?.map((c) => c.toSerial),
    [2, 3],
  );
  tt.same(
    new IxfrHistory(dir).readChangesets('z.test.', 2)?.map((c) => c.toSerial),
    [3],
  );
  tt.equal(new IxfrHistory(dir).readChangesets('z.test.', 9), null);
  // A torn last entry is ignored (and cut off by repair).
  const p = join(dir, 'z.test.ixfr');
  appendFileSync(p, Buffer.from([0, 0, 1, 0, 1, 2, 3]));
  tt.same(
    new IxfrHistory(dir).readChangesets('z.test.', 1)?.map((c) => c.toSerial),
    [2, 3],
  );
  const before = statSync(p).size;
  new IxfrHistory(dir).repair('z.test.');
  tt.equal(statSync(p).size, before - 7);
  // A changeset that does not continue the chain starts the history over.
  h.appendChangeset('z.test.', 10, 11, [soa(10)], [soa(11)]);
  tt.equal(h.readChangesets('z.test.', 1), null);
  tt.same(
    h.readChangesets('z.test.', 10)?.map((c) => c.toSerial),
    [11],
  );
  // Bounded: many changesets keep the file under the bound, newest kept.
  for (let s = 11; s < 200; s++)
    h.appendChangeset('z.test.', s, s + 1, [soa(s), a(s & 255)], [soa(s + 1), a((s + 1) & 255)]);
  tt.ok(statSync(p).size <= 4000, `history ${statSync(p).size} bytes`);
  tt.same(
    h.readChangesets('z.test.', 199)?.map((c) => c.toSerial),
    [200],
  );
  tt.equal(h.readChangesets('z.test.', 11), null, 'the oldest were dropped');
  tt.end();
});

t.test('config: keys, allow, notify and their errors', (tt) => {
  const base = defaultConfig('test', 1);
  const c = parseConfig(
    `${ALLOW_KEYED}  notify:\n    - { to: "127.0.0.1:5300", key: xfr.example.net }\n    - { to: "[::1]:53" }\n`,
    'x.yaml',
    base,
  );
  tt.equal(c.tsigKeys.get('xfr.example.net.')?.secret.length, 32);
  tt.equal(c.transfer.allow[0]!.key, 'xfr.example.net.');
  tt.same(
    c.transfer.notify.map((n) => [n.host, n.port, n.key]),
    [
      ['127.0.0.1', 5300, 'xfr.example.net.'],
      ['::1', 53, null],
    ],
  );
  tt.equal(c.dataDir, 'data');
  const bad = (y: string, re: RegExp): void => {
    tt.throws(() => parseConfig(y, 'x.yaml', base), re);
    try {
      parseConfig(y, 'x.yaml', base);
    } catch (e) {
      tt.ok(e instanceof ConfigError);
    }
  };
  bad(
    'tsig-keys:\n  k: { algorithm: hmac-md5, secret: "AAAA" }\n',
    /x\.yaml:2:\d+: .*unknown TSIG algorithm "hmac-md5"/,
  );
  bad('tsig-keys:\n  k: { secret: "not base64!" }\n', /not base64/);
  bad('transfer:\n  allow:\n    - { from: 192.0.2.0/33 }\n', /x\.yaml:3:\d+: .*not an address or CIDR/);
  bad(
    'transfer:\n  allow:\n    - { from: 10.0.0.0/8, key: nokey }\n',
    /x\.yaml:3:\d+: .*key nokey\. is not in tsig-keys/,
  );
  bad('transfer:\n  notify:\n    - { to: "host.example:53" }\n', /is not ADDR:PORT/);
  bad('transfer:\n  allowed: []\n', /unknown transfer setting "allowed"/);
  tt.end();
});

t.test('popdns tsig-keygen: the YAML loads in popdns, the key block in named-checkconf', (tt) => {
  const r = tsigKeygen('xfr.example.net', { algorithm: 'hmac-sha512' });
  if ('error' in r) return tt.fail(r.error);
  const [yaml, bind] = r.text.split('\n\n');
  const c = parseConfig(yaml!, 'keygen.yaml', defaultConfig('test', 1));
  tt.equal(c.tsigKeys.get('xfr.example.net.')?.algorithm, 'hmac-sha512');
  tt.equal(c.tsigKeys.get('xfr.example.net.')?.secret.length, 64);
  tt.match(bind!, /key "xfr\.example\.net" \{\n\talgorithm hmac-sha512;\n\tsecret "[A-Za-z0-9+/=]+";\n\};/);
  tt.ok('error' in tsigKeygen('x', { algorithm: 'hmac-md5' }));
  if (!needTool(tt, 'named-checkconf', 'bind9')) return tt.end();
  const dir = tmpDir(tt);
  writeFileSync(join(dir, 'k.conf'), bind!);
  const chk = spawnSync('named-checkconf', [join(dir, 'k.conf')], { encoding: 'utf8' });
  tt.equal(chk.status, 0, chk.stderr);
  tt.end();
});

t.test('a big AXFR streams while queries are answered', async (tt) => {
  const { port } = await server(
    tt,
    `transfer:\n  allow:\n    - { from: 127.0.0.1 }\n`,
    zone(1, '192.0.2.1', 60_000),
  );
  let answered = 0;
  let finished = false;
  const xfr = tcpStream(port, buildQuery('example.com.', 'AXFR'), doneAfter(2), 60_000).then((m) => {
    finished = true;
    return m;
  });
  while (!finished) {
    const r = await udpExchange(port, buildQuery('www.example.com.', 'A'), 2000);
    if (r && packet.decode(r).answers?.length === 1 && !finished) answered++;
  }
  const msgs = await xfr;
  tt.ok(msgs.length > 10, `${msgs.length} messages`);
  tt.equal(rrs(msgs).length, 60_000 + 4);
  tt.ok(answered > 0, `${answered} queries answered during the transfer`);
});
