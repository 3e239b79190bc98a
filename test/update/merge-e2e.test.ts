/**
 * The file-edit merge end to end (issue #13): a record added with nsupdate, then the operator edits
 * the zone file and reloads (SIGHUP, then `popdns ctl reload`): the dynamic record and the edit are
 * both served, the serial goes past both, a conflicting edit goes the file's way with a
 * POPDNS_W_UPDATE_MERGE_CONFLICT line, IXFR from the old serial carries exactly the change, a file
 * that fails to load changes nothing, a restart serves the same version, and the zone file is never
 * written. Also the `update-limits:` (REFUSED + POPDNS_W_UPDATE_LIMIT + metrics) and the OPT record
 * in a TSIG-signed UPDATE response (RFC 6891 §7, RFC 8945 §5.3).
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CLASS, TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { tsigRecordOf, tsigSign } from '../../src/wire/tsig.js';
import { needTool, plainEnv, type Proc, startProcess, stopProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const OPS = Buffer.from('ops-key-for-popdns-merge-tests!!').toString('base64');
const ACME = Buffer.from('acme-key-for-popdns-merge-tests!').toString('base64');
const ops = `hmac-sha256:ops.example.com:${OPS}`;
const acme = `hmac-sha256:acme.example.com:${ACME}`;

/** A port in this test's range (21000-21999) free for TCP and UDP on 127.0.0.1. */
async function port(): Promise<number> {
  const start = 21000 + Math.floor(Math.random() * 900);
  for (let p = start; p < start + 100; p++) {
    const tcp = await new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(p, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (!tcp) continue;
    const udp = await new Promise<boolean>((res) => {
      const s = createSocket('udp4');
      s.once('error', () => res(false));
      s.bind(p, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (udp) return p;
  }
  throw new Error('no free port in 21000-21999');
}

const zoneText = (serial: number, body: string): string => `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster ${serial} 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
${body}`;

interface Setup {
  dir: string;
  zoneFile: string;
  config: string;
  ctl: string;
  port: number;
  metricsPort: number;
}

function start(tt: Test, s: Setup): Promise<Proc> {
  return startProcess(
    tt,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', s.config, '--workers', '1'],
    (o) => o.includes('ready:'),
    40000,
  );
}

function nsupdate(s: Setup, key: string, lines: string[]): { code: number; out: string } {
  const input = [`server 127.0.0.1 ${s.port}`, 'zone example.com', ...lines, 'send', ''].join('\n');
  const r = spawnSync('nsupdate', ['-y', key], { input, encoding: 'utf8', timeout: 20000, env: plainEnv() });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function dig(s: Setup, ...args: string[]): string {
  const r = spawnSync('dig', ['@127.0.0.1', '-p', String(s.port), '+short', '+tries=2', '+time=3', ...args], {
    encoding: 'utf8',
    timeout: 20000,
  });
  return r.stdout.trim();
}

const serial = (s: Setup): number => Number(dig(s, 'example.com', 'SOA').split(' ')[2]);

/** Waits (bounded) until `cond` holds. */
async function until(cond: () => boolean, ms = 15000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return cond();
}

/** A TSIG-signed UPDATE (ops key) adding `name A addr`, with an OPT record (EDNS0, DO set). */
function signedUpdateWithOpt(name: string, addr: string): { msg: Buffer; mac: Buffer } {
  const origin = nameFromText('example.com.');
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x4242, 0);
  h.writeUInt16BE(5 << 11, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(1, 8);
  h.writeUInt16BE(1, 10);
  const rr = Buffer.alloc(14);
  rr.writeUInt16BE(TYPE.A, 0);
  rr.writeUInt16BE(CLASS.IN, 2);
  rr.writeUInt32BE(60, 4);
  rr.writeUInt16BE(4, 8);
  Buffer.from(addr.split('.').map(Number)).copy(rr, 10);
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
  const msg = Buffer.concat([h, origin, Buffer.from([0, 6, 0, 1]), nameFromText(name, origin), rr, opt]);
  const key = {
    name: 'ops.example.com.',
    algorithm: 'hmac-sha256' as const,
    secret: Buffer.from(OPS, 'base64'),
  };
  const r = tsigSign(msg, key);
  return { msg: r.message, mac: r.mac };
}

function udpAsk(p: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('no answer in 10 s'));
    }, 10000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(msg, p, '127.0.0.1');
  });
}

t.test('file edit merged with dynamic updates; limits; OPT in UPDATE responses', async (tt) => {
  if (!needTool(tt, 'nsupdate', 'bind9-dnsutils')) return;
  const dir = tmpDir(tt, 'popdns-merge-e2e-');
  mkdirSync(join(dir, 'zones'));
  const s: Setup = {
    dir,
    zoneFile: join(dir, 'zones', 'example.com.zone'),
    config: join(dir, 'popdns.yaml'),
    ctl: join(dir, 'ctl.sock'),
    port: await port(),
    metricsPort: await port(),
  };
  // A stand-in secondary that records NOTIFYs (and acknowledges them so the primary stops retrying).
  const notifyPort = await port();
  const notified: number[] = [];
  const sock = createSocket('udp4');
  sock.on('message', (m, rinfo) => {
    // The NOTIFY's answer section carries the new SOA (RFC 1996 §3.7): its serial, for the check below.
    if (m.readUInt16BE(6) === 1) notified.push(m.readUInt32BE(m.length - 20));
    const ack = Buffer.from(m);
    ack[2] = ack[2]! | 0x80;
    sock.send(ack, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(notifyPort, '127.0.0.1', () => r()));
  tt.teardown(() => sock.close());
  const v1 = zoneText(7, 'www A 192.0.2.10\nmail A 192.0.2.20\n');
  writeFileSync(s.zoneFile, v1);
  writeFileSync(
    s.config,
    `zones: ${join(dir, 'zones')}
listen: ["127.0.0.1:${s.port}"]
metrics: 127.0.0.1:${s.metricsPort}
control: ${s.ctl}
data-dir: ${join(dir, 'data')}
tsig-keys:
  acme.example.com: { algorithm: hmac-sha256, secret: "${ACME}" }
  ops.example.com: { algorithm: hmac-sha256, secret: "${OPS}" }
transfer:
  allow:
    - { from: 127.0.0.1/32 }
  notify:
    - { to: "127.0.0.1:${notifyPort}" }
updates:
  example.com:
    - { key: acme.example.com, names: ["_acme-challenge", "_acme-challenge.*"], types: [TXT] }
    - { key: ops.example.com }
update-limits:
  max-records-per-update: 3
  max-records-per-type: 3
  rate: 0.001
  burst: 6
`,
  );
  let p = await start(tt, s);

  // Dynamic changes: dyn added, www changed (7 → 8 → 9).
  let r = nsupdate(s, ops, ['update add dyn.example.com. 60 A 192.0.2.5']);
  tt.equal(r.code, 0, `add dyn: ${r.out}`);
  r = nsupdate(s, ops, [
    'update delete www.example.com. A 192.0.2.10',
    'update add www.example.com. 300 A 192.0.2.99',
  ]);
  tt.equal(r.code, 0, `change www: ${r.out}`);
  tt.equal(serial(s), 9);

  // The operator edits the file (serial 8: behind the served 9), adds new, changes www; SIGHUP.
  const v2 = zoneText(8, 'www A 192.0.2.11\nmail A 192.0.2.20\nnew A 192.0.2.7\n');
  writeFileSync(s.zoneFile, v2);
  p.child.kill('SIGHUP');
  tt.ok(await until(() => dig(s, 'new.example.com', 'A') === '192.0.2.7'), 'the edit is served');
  tt.equal(dig(s, 'dyn.example.com', 'A'), '192.0.2.5', 'the dynamic record is still served');
  tt.equal(dig(s, 'www.example.com', 'A'), '192.0.2.11', 'conflict: the file wins');
  tt.equal(serial(s), 10, 'serial past both the file (8) and the served (9)');
  tt.ok(await until(() => notified.includes(10)), 'NOTIFY for the merged version (serial 10)');
  const conflictLine =
    /zone example\.com\.: the file's edit of www\.example\.com\. A conflicts with dynamic updates; the file's version is served \[POPDNS_W_UPDATE_MERGE_CONFLICT\]/;
  tt.ok(await until(() => conflictLine.test(p.output())), 'the conflict is logged (zone, owner, type)');

  // IXFR from 9 carries exactly the edit: www .99 → .11, new added (dyn untouched).
  const ixfr = spawnSync(
    'dig',
    ['@127.0.0.1', '-p', String(s.port), 'example.com', 'IXFR=9', '+noall', '+answer'],
    {
      encoding: 'utf8',
      timeout: 20000,
    },
  ).stdout;
  const recs = ixfr
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith(';'))
    .map((l) =>
      l
        .split(/\s+/)
        .filter((_x, i) => i !== 1 && i !== 2)
        .join(' '),
    );
  const soa = (n: number): string =>
    `example.com. SOA ns1.example.com. hostmaster.example.com. ${n} 3600 600 86400 300`;
  const soaAt = recs.map((l, i) => (l.includes(' SOA ') ? i : -1)).filter((i) => i >= 0);
  tt.same(
    soaAt.map((i) => recs[i]),
    [soa(10), soa(9), soa(10), soa(10)],
    'IXFR 9 → 10: one changeset',
  );
  tt.same(
    recs.slice(soaAt[1]! + 1, soaAt[2]).sort(),
    ['www.example.com. A 192.0.2.99'],
    'removed: the dynamic www',
  );
  tt.same(
    recs.slice(soaAt[2]! + 1, soaAt[3]).sort(),
    ['new.example.com. A 192.0.2.7', 'www.example.com. A 192.0.2.11'],
    'added: exactly the edit',
  );

  // Another edit through `popdns ctl reload` (the serial still 8 in the file).
  writeFileSync(
    s.zoneFile,
    zoneText(8, 'www A 192.0.2.11\nmail A 192.0.2.20\nnew A 192.0.2.7\nctl A 192.0.2.8\n'),
  );
  const c = spawnSync(process.execPath, ['dist/cli.js', 'ctl', '--socket', s.ctl, 'reload'], {
    encoding: 'utf8',
    timeout: 30000,
    env: plainEnv(),
  });
  tt.equal(c.status, 0, `ctl reload: ${c.stdout}${c.stderr}`);
  tt.equal(dig(s, 'ctl.example.com', 'A'), '192.0.2.8');
  tt.equal(dig(s, 'dyn.example.com', 'A'), '192.0.2.5');
  tt.equal(serial(s), 11);
  const good = readFileSync(s.zoneFile, 'utf8');

  // A file that fails to load changes nothing.
  writeFileSync(s.zoneFile, `${good}broken IN A not-an-address\n`);
  spawnSync(process.execPath, ['dist/cli.js', 'ctl', '--socket', s.ctl, 'reload'], {
    encoding: 'utf8',
    timeout: 30000,
    env: plainEnv(),
  });
  tt.equal(serial(s), 11, 'a failing file: the last good version keeps serving');
  tt.equal(dig(s, 'dyn.example.com', 'A'), '192.0.2.5');
  writeFileSync(s.zoneFile, good);

  // OPT: a TSIG-signed UPDATE with EDNS gets a response with an OPT, TSIG last and verifiable.
  const { msg, mac } = signedUpdateWithOpt('edns', '192.0.2.44');
  const resp = await udpAsk(s.port, msg);
  tt.equal(resp[3]! & 0xf, 0, 'NOERROR');
  tt.equal(resp.readUInt16BE(10), 2, 'ARCOUNT 2: OPT and TSIG');
  const zl = nameFromText('example.com.').length + 4;
  const optAt = 12 + zl;
  tt.equal(resp[optAt], 0, 'OPT owner is the root');
  tt.equal(resp.readUInt16BE(optAt + 1), TYPE.OPT, 'the OPT comes first in the additional section');
  tt.equal(resp.readUInt32BE(optAt + 5) & 0x8000, 0x8000, 'DO echoed');
  const rec = tsigRecordOf(resp);
  tt.ok(rec, 'TSIG present');
  // RFC 8945 §5.3: the MAC covers the request MAC, the response without its TSIG (ARCOUNT - 1), and
  // the TSIG variables: signing that again with the response's time must give the same bytes.
  const bare = Buffer.from(resp.subarray(0, optAt + 11));
  bare.writeUInt16BE(1, 10);
  const key = {
    name: 'ops.example.com.',
    algorithm: 'hmac-sha256' as const,
    secret: Buffer.from(OPS, 'base64'),
  };
  const again = tsigSign(bare, key, { requestMac: mac, now: rec!.timeSigned });
  tt.ok(again.message.equals(resp), 'the response TSIG verifies with the OPT in place');
  tt.equal(dig(s, 'edns.example.com', 'A'), '192.0.2.44');

  // Limits (the acme key: burst 6, next token in 1000 s).
  const txt = (v: string): string => `update add _acme-challenge.example.com. 60 TXT "${v}"`;
  for (const v of ['t1', 't2', 't3']) tt.equal(nsupdate(s, acme, [txt(v)]).code, 0, `acme ${v}`);
  r = nsupdate(s, acme, [txt('t4')]);
  tt.match(r.out, /REFUSED/, 'a 4th record in the RRset: REFUSED (max-records-per-type 3)');
  r = nsupdate(
    s,
    acme,
    ['a', 'b', 'c', 'd'].map((x) => `update add _acme-challenge.${x}.example.com. 60 TXT "x"`),
  );
  tt.match(r.out, /REFUSED/, '4 records in one update: REFUSED (max-records-per-update 3)');
  tt.equal(dig(s, '_acme-challenge.a.example.com', 'TXT'), '', 'nothing of it applied');
  tt.equal(nsupdate(s, acme, ['update delete _acme-challenge.example.com. TXT "t1"']).code, 0);
  tt.equal(nsupdate(s, acme, [txt('t5')]).code, 0, 'the 6th update of the burst');
  r = nsupdate(s, acme, ['update delete _acme-challenge.example.com. TXT "t2"']);
  tt.match(r.out, /REFUSED/, 'past the burst: REFUSED (rate)');
  tt.equal(dig(s, '_acme-challenge.example.com', 'TXT').split('\n').sort().join(' '), '"t2" "t3" "t5"');
  for (const re of [
    /update-limits\.max-records-per-type\).*\[POPDNS_W_UPDATE_LIMIT\]/,
    /update-limits\.max-records-per-update\).*\[POPDNS_W_UPDATE_LIMIT\]/,
    /update-limits\.rate\).*\[POPDNS_W_UPDATE_LIMIT\]/,
  ])
    tt.ok(await until(() => re.test(p.output())), `logged: ${re.source}`);
  const metrics = await (await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`)).text();
  tt.match(metrics, /popdns_updates_total\{zone="example.com.",key="acme.example.com.",result="REFUSED"\} 3/);
  tt.match(metrics, /popdns_update_journal_bytes\{zone="example.com."\} [1-9]/);
  const before = serial(s);

  // Restart: the same version is served (the file version and the journal in data-dir).
  await stopProcess(p.child);
  p = await start(tt, s);
  tt.equal(serial(s), before, 'restart: the serial is kept');
  tt.equal(dig(s, 'dyn.example.com', 'A'), '192.0.2.5');
  tt.equal(dig(s, 'new.example.com', 'A'), '192.0.2.7');
  tt.equal(dig(s, 'www.example.com', 'A'), '192.0.2.11');
  tt.equal(dig(s, 'edns.example.com', 'A'), '192.0.2.44');
  tt.notMatch(p.output(), /POPDNS_W_UPDATE_SNAPSHOT|POPDNS_W_UPDATE_JOURNAL_REBASED/);
  tt.equal(readFileSync(s.zoneFile, 'utf8'), good, 'the zone file is never written');
});
