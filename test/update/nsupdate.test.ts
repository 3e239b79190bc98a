/**
 * Dynamic updates end to end with BIND's nsupdate as the client (TSIG hmac-sha256, -y): adds and
 * deletes over UDP and TCP, the policy refusals, prerequisite failures, unsigned and wrongly signed
 * updates, NOTIFY to transfer.notify after a change, IXFR carrying exactly the change, metrics, and
 * the crash test: kill -9 right after NOERROR, restart, the record is still served; a journal cut
 * mid-write is detected and its good prefix kept.
 */
import { createSocket } from 'node:dgram';
import { appendFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { freePort, needTool, type Proc, startProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const ACME = Buffer.from('acme-key-for-popdns-update-tests').toString('base64');
const OPS = Buffer.from('ops-key-for-popdns-update-tests!').toString('base64');
const ZONE = `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
`;

interface Setup {
  dir: string;
  config: string;
  port: number;
  metricsPort: number;
  notifyPort: number;
}

async function setup(tt: Test): Promise<Setup> {
  const dir = tmpDir(tt, 'popdns-update-');
  mkdirSync(join(dir, 'zones'));
  writeFileSync(join(dir, 'zones', 'example.com.zone'), ZONE);
  const port = await freePort();
  const metricsPort = await freePort();
  const notifyPort = await freePort();
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    `zones: ${join(dir, 'zones')}
listen: ["127.0.0.1:${port}"]
metrics: 127.0.0.1:${metricsPort}
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
`,
  );
  return { dir, config, port, metricsPort, notifyPort };
}

function start(tt: Test, s: Setup): Promise<Proc> {
  return startProcess(
    tt,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', s.config, '--workers', '1'],
    (o) => o.includes('ready:'),
  );
}

/** Runs nsupdate with `lines` (server and zone added); its exit code and output. */
function nsupdate(s: Setup, key: string | null, lines: string[], tcp = false): { code: number; out: string } {
  const args = [...(tcp ? ['-v'] : []), ...(key ? ['-y', key] : [])];
  const input = [`server 127.0.0.1 ${s.port}`, 'zone example.com', ...lines, 'send', ''].join('\n');
  const r = spawnSync('nsupdate', args, { input, encoding: 'utf8', timeout: 20000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function dig(s: Setup, ...args: string[]): string {
  const r = spawnSync('dig', [`@127.0.0.1`, '-p', String(s.port), '+short', '+tries=2', '+time=3', ...args], {
    encoding: 'utf8',
    timeout: 20000,
  });
  return r.stdout.trim();
}

const acme = `hmac-sha256:acme.example.com:${ACME}`;
const ops = `hmac-sha256:ops.example.com:${OPS}`;

t.test('nsupdate: updates, policy, prerequisites, NOTIFY, IXFR, metrics, kill -9', async (tt) => {
  if (!needTool(tt, 'nsupdate', 'bind9-dnsutils')) return;
  const s = await setup(tt);
  const notifies: Buffer[] = [];
  const sock = createSocket('udp4');
  sock.on('message', (m, r) => {
    notifies.push(m);
    // Acknowledge (QR set) so the primary stops retrying.
    const ack = Buffer.from(m);
    ack[2] = ack[2]! | 0x80;
    sock.send(ack, r.port, r.address);
  });
  await new Promise<void>((r) => sock.bind(s.notifyPort, '127.0.0.1', () => r()));
  tt.teardown(() => sock.close());
  let p = await start(tt, s);

  // The ACME key adds its TXT (UDP) and the serial goes up by one.
  let r = nsupdate(s, acme, ['update add _acme-challenge.example.com. 60 TXT "token-1"']);
  tt.equal(r.code, 0, `acme add: ${r.out}`);
  tt.equal(dig(s, '_acme-challenge.example.com', 'TXT'), '"token-1"');
  tt.match(dig(s, 'example.com', 'SOA'), / 8 3600 600 86400 300$/, 'serial 7 → 8');
  // Below it too (the pattern _acme-challenge.*), over TCP.
  r = nsupdate(s, acme, ['update add _acme-challenge.shop.example.com. 60 TXT "token-2"'], true);
  tt.equal(r.code, 0, `acme add over TCP: ${r.out}`);
  tt.equal(dig(s, '_acme-challenge.shop.example.com', 'TXT'), '"token-2"');

  // Policy: the ACME key may not touch anything else; nothing of a mixed update is applied.
  r = nsupdate(s, acme, ['update add www.example.com. 60 A 192.0.2.99']);
  tt.match(r.out, /REFUSED/, 'acme key adding an A: REFUSED');
  r = nsupdate(s, acme, [
    'update add _acme-challenge.example.com. 60 TXT "token-3"',
    'update add evil.example.com. 60 TXT "x"',
  ]);
  tt.match(r.out, /REFUSED/, 'mixed update: REFUSED');
  tt.equal(dig(s, '_acme-challenge.example.com', 'TXT'), '"token-1"', 'all or nothing');
  // Unsigned: REFUSED; a wrong secret: NOTAUTH (BADSIG).
  r = nsupdate(s, null, ['update add x.example.com. 60 A 192.0.2.5']);
  tt.match(r.out, /REFUSED/, 'unsigned: REFUSED');
  r = nsupdate(s, `hmac-sha256:ops.example.com:${ACME}`, ['update add x.example.com. 60 A 192.0.2.5']);
  tt.match(r.out, /NOTAUTH|BADSIG/, 'wrong secret: NOTAUTH');
  // Prerequisites.
  r = nsupdate(s, ops, ['prereq nxdomain www.example.com.', 'update add x.example.com. 60 A 192.0.2.5']);
  tt.match(r.out, /YXDOMAIN/);
  r = nsupdate(s, ops, ['prereq yxrrset www.example.com. MX', 'update add x.example.com. 60 A 192.0.2.5']);
  tt.match(r.out, /NXRRSET/);
  r = nsupdate(s, ops, [
    'prereq yxrrset www.example.com. A 192.0.2.10',
    'update add x.example.com. 60 A 192.0.2.5',
  ]);
  tt.equal(r.code, 0, `value-dependent prerequisite holds: ${r.out}`);
  tt.equal(dig(s, 'x.example.com', 'A'), '192.0.2.5');
  // The ops key may not change the apex SOA; apex NS is never emptied.
  r = nsupdate(s, ops, [
    'update add example.com. 300 SOA ns1.example.com. h.example.com. 100 3600 600 86400 300',
  ]);
  tt.match(r.out, /REFUSED/, 'apex SOA: REFUSED for a key without types');
  r = nsupdate(s, ops, ['update delete example.com. NS']);
  tt.equal(r.code, 0);
  tt.equal(dig(s, 'example.com', 'NS'), 'ns1.example.com.', 'apex NS kept');
  tt.match(
    dig(s, 'example.com', 'SOA'),
    / 10 3600 600 86400 300$/,
    'an update that changes nothing leaves the serial',
  );

  // NOTIFY went to transfer.notify; IXFR from serial 7 carries exactly the changes.
  const until = Date.now() + 10000;
  while (notifies.length === 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
  tt.ok(notifies.length > 0, 'NOTIFY sent to transfer.notify');
  const ixfr = spawnSync(
    'dig',
    ['@127.0.0.1', '-p', String(s.port), 'example.com', 'IXFR=8', '+noall', '+answer'],
    {
      encoding: 'utf8',
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
  tt.same(
    recs.filter((l) => !l.includes(' SOA ')),
    ['_acme-challenge.shop.example.com. TXT "token-2"', 'x.example.com. A 192.0.2.5'],
    'IXFR from 8: the two records added since, nothing else',
  );

  // Metrics: updates by zone, key and result.
  const metrics = await (await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`)).text();
  tt.match(metrics, /popdns_updates_total\{zone="example.com.",key="acme.example.com.",result="NOERROR"\} 2/);
  tt.match(metrics, /popdns_updates_total\{zone="example.com.",key="acme.example.com.",result="REFUSED"\} 2/);
  tt.match(metrics, /popdns_update_journal_bytes\{zone="example.com."\} [1-9]/);
  tt.match(
    p.output(),
    /update zone=example.com. key=acme.example.com. client=127.0.0.1 result=NOERROR added=1 removed=0 serial=8/,
  );

  // kill -9 right after NOERROR: the record is there after a restart.
  r = nsupdate(s, ops, ['update add crash.example.com. 60 A 192.0.2.77']);
  tt.equal(r.code, 0);
  p.child.kill('SIGKILL');
  await new Promise((res) => p.child.once('exit', res));
  p = await start(tt, s);
  tt.equal(dig(s, 'crash.example.com', 'A'), '192.0.2.77', 'acknowledged update survives kill -9');
  tt.equal(dig(s, '_acme-challenge.example.com', 'TXT'), '"token-1"');
  tt.match(p.output(), /journalled update\(s\) replayed, serial 7 → 11/);

  // A journal cut mid-write (a torn last entry): detected, the good prefix kept.
  p.child.kill('SIGKILL');
  await new Promise((res) => p.child.once('exit', res));
  const jdir = join(s.dir, 'data', 'journal');
  const jfile = join(
    jdir,
    readdirSync(jdir).find((f) => f.endsWith('ixfr'))!,
  );
  appendFileSync(jfile, Buffer.from([0, 0, 1, 0, 0, 0, 0, 12, 0, 0]));
  p = await start(tt, s);
  tt.equal(dig(s, 'crash.example.com', 'A'), '192.0.2.77', 'good prefix replayed');
  tt.match(dig(s, 'example.com', 'SOA'), / 11 3600 600 86400 300$/);
  r = nsupdate(s, acme, ['update delete _acme-challenge.example.com. TXT']);
  tt.equal(r.code, 0, 'updates go on after the repair');
  tt.equal(dig(s, '_acme-challenge.example.com', 'TXT'), '');
});
