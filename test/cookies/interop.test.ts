/**
 * RFC 9018 interoperability with Knot DNS and BIND: popdns and knotd (mod-cookies), and popdns and
 * named (cookie-algorithm siphash24), share one secret, and a
 * server cookie minted by either is accepted by the other, both ways.
 *
 * How acceptance is observed:
 * - by Knot and BIND: Knot 3.2's mod-cookies (and BIND with require-server-cookie) answer BADCOOKIE (rcode 23) to any UDP query whose server
 *   cookie it does not accept, and a normal answer (NOERROR, the A record) when it does. A made-up
 *   server cookie is the control: it gets BADCOOKIE.
 * - by popdns: popdns runs with `require: true`, so a query without a valid server cookie gets
 *   BADCOOKIE and one with a valid one gets its answer; besides, a valid cookie younger than half an
 *   hour comes back byte for byte (an invalid one would be replaced), and popdns_cookies_total counts
 *   it as `valid`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { cookieOf, withCookie } from '../helpers/cookies.js';
import { udpExchange } from '../helpers/dns.js';
import { freePort, needTool, startPopdns, startProcess, tmpDir } from '../helpers/peers.js';

const SECRET = 'e5e973e5a6b2a43f48e7dc849e37bfcf';
const ZONE = `$ORIGIN example.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 900 604800 60
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.80
`;
const BADCOOKIE = 23;

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

async function ask(port: number, cookie: string): Promise<ReturnType<typeof cookieOf>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await udpExchange(port, withCookie('www.example.test.', 'A', cookie));
    if (r) return cookieOf(r);
  }
  throw new Error(`no answer from port ${port}`);
}

/**
 * Both directions against a peer with the same secret that answers BADCOOKIE to a UDP query whose
 * server cookie it does not accept; popdns runs with `require: true`.
 */
async function bothWays(
  tt: Test,
  pop: { port: number; metricsPort: number },
  peerPort: number,
  peer: string,
): Promise<void> {
  // Control: a server cookie neither minted is refused by both.
  const forged = `1111111111111111010000006b000000${'ab'.repeat(8)}`;
  tt.equal((await ask(peerPort, forged)).rcode, BADCOOKIE, `${peer} refuses a forged server cookie`);
  tt.equal((await ask(pop.port, forged)).rcode, BADCOOKIE, 'popdns refuses a forged server cookie');

  // popdns mints, the peer accepts.
  const cc1 = '0102030405060708';
  const fromPop = await ask(pop.port, cc1);
  tt.equal(fromPop.rcode, BADCOOKIE, 'popdns (require: true) answers a client cookie alone with BADCOOKIE');
  const popCookie = fromPop.cookie!;
  tt.equal(popCookie.slice(0, 16), cc1);
  const atPeer = await ask(peerPort, popCookie);
  tt.equal(atPeer.rcode, 0, `${peer} accepts popdns's server cookie: NOERROR`);
  tt.equal(atPeer.answers, 1, '… and answers');

  // The peer mints, popdns accepts.
  const cc2 = 'f0e1d2c3b4a59687';
  const fromPeer = await ask(peerPort, cc2);
  tt.equal(fromPeer.rcode, BADCOOKIE, `${peer} answers a client cookie alone with BADCOOKIE`);
  const peerCookie = fromPeer.cookie!;
  tt.equal(peerCookie.length, 48, 'a 16-byte server cookie (RFC 9018)');
  const atPop = await ask(pop.port, peerCookie);
  tt.equal(atPop.rcode, 0, `popdns accepts ${peer}'s server cookie: NOERROR`);
  tt.equal(atPop.answers, 1, '… and answers');
  tt.equal(atPop.cookie, peerCookie, '… and sends it back unchanged (valid and fresh)');
  const m = await metrics(pop.metricsPort);
  tt.match(m, /popdns_cookies_total\{outcome="valid"\} 1\n/, 'popdns counted one valid cookie');
  tt.match(m, /popdns_cookies_total\{outcome="badcookie"\} 2\n/, 'and two BADCOOKIE answers');
  tt.match(m, /popdns_queries_total\{transport="udp",qtype="A",rcode="BADCOOKIE",zone="\.none"\} 2\n/);
}

async function startPop(tt: Test): Promise<{ port: number; metricsPort: number }> {
  const dir = tmpDir(tt, 'popdns-cookies-');
  const zones = join(dir, 'zones');
  mkdirSync(zones);
  writeFileSync(join(zones, 'example.test.zone'), ZONE);
  writeFileSync(join(dir, 'popdns.yaml'), `cookies:\n  secret: "${SECRET}"\n  require: true\n`);
  return startPopdns(tt, zones, ['--config', join(dir, 'popdns.yaml'), '--workers', '1']);
}

t.test('server cookies interoperate with Knot (mod-cookies), both ways', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const pop = await startPop(tt);
  const dir = tmpDir(tt, 'popdns-knot-');
  const knotPort = await freePort();
  writeFileSync(join(dir, 'example.test.zone'), ZONE);
  writeFileSync(
    join(dir, 'knot.conf'),
    [
      'server:',
      `    listen: 127.0.0.1@${knotPort}`,
      `    rundir: ${dir}`,
      'database:',
      `    storage: ${dir}`,
      'log:',
      '  - target: stderr',
      '    any: warning',
      'mod-cookies:',
      '  - id: c',
      `    secret: 0x${SECRET}`,
      'template:',
      '  - id: default',
      `    storage: ${dir}`,
      '    zonefile-sync: -1',
      '    journal-content: none',
      '    global-module: mod-cookies/c',
      'zone:',
      '  - domain: example.test.',
      '    file: example.test.zone',
      '',
    ].join('\n'),
  );
  await startProcess(tt, 'knotd', ['-c', join(dir, 'knot.conf')], async () => {
    const r = await udpExchange(knotPort, withCookie('www.example.test.', 'A', '0000000000000001'), 500);
    return r !== null;
  });

  await bothWays(tt, pop, knotPort, 'Knot');
});

t.test('server cookies interoperate with BIND (cookie-algorithm siphash24), both ways', async (tt) => {
  if (!needTool(tt, 'named', 'bind9')) return;
  const pop = await startPop(tt);
  const dir = tmpDir(tt, 'popdns-named-');
  const port = await freePort();
  writeFileSync(join(dir, 'example.test.zone'), ZONE);
  // require-server-cookie: BIND answers BADCOOKIE to UDP queries without a server cookie it accepts.
  writeFileSync(
    join(dir, 'named.conf'),
    [
      'options {',
      `  directory "${dir}";`,
      `  pid-file "${dir}/named.pid";`,
      `  listen-on port ${port} { 127.0.0.1; };`,
      '  listen-on-v6 { none; };',
      '  recursion no;',
      '  cookie-algorithm siphash24;',
      `  cookie-secret "${SECRET}";`,
      '  require-server-cookie yes;',
      '};',
      'controls { };',
      `zone "example.test" { type primary; file "${dir}/example.test.zone"; };`,
      '',
    ].join('\n'),
  );
  await startProcess(tt, 'named', ['-g', '-n', '1', '-c', join(dir, 'named.conf')], (o) =>
    o.includes('running'),
  );
  await bothWays(tt, pop, port, 'BIND');
});
