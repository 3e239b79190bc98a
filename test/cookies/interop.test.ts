/**
 * RFC 9018 interoperability with Knot DNS: popdns and knotd (mod-cookies) share one secret, and a
 * server cookie minted by either is accepted by the other, both ways.
 *
 * How acceptance is observed:
 * - by Knot: Knot 3.2's mod-cookies answers BADCOOKIE (rcode 23) to any UDP query whose server
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
import t from 'tap';
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

t.test('server cookies interoperate with Knot (mod-cookies), both ways', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const dir = tmpDir(tt, 'popdns-cookies-');
  const zones = join(dir, 'zones');
  mkdirSync(zones);
  writeFileSync(join(zones, 'example.test.zone'), ZONE);
  writeFileSync(join(dir, 'popdns.yaml'), `cookies:\n  secret: "${SECRET}"\n  require: true\n`);
  const pop = await startPopdns(tt, zones, ['--config', join(dir, 'popdns.yaml'), '--workers', '1']);

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

  // Control: a server cookie neither minted is refused by both.
  const forged = `1111111111111111010000006b000000${'ab'.repeat(8)}`;
  tt.equal((await ask(knotPort, forged)).rcode, BADCOOKIE, 'Knot refuses a forged server cookie');
  tt.equal((await ask(pop.port, forged)).rcode, BADCOOKIE, 'popdns refuses a forged server cookie');

  // popdns mints, Knot accepts.
  const cc1 = '0102030405060708';
  const fromPop = await ask(pop.port, cc1);
  tt.equal(fromPop.rcode, BADCOOKIE, 'popdns (require: true) answers a client cookie alone with BADCOOKIE');
  const popCookie = fromPop.cookie!;
  tt.equal(popCookie.slice(0, 16), cc1);
  const atKnot = await ask(knotPort, popCookie);
  tt.equal(atKnot.rcode, 0, "Knot accepts popdns's server cookie: NOERROR");
  tt.equal(atKnot.answers, 1, '… and answers');

  // Knot mints, popdns accepts.
  const cc2 = 'f0e1d2c3b4a59687';
  const fromKnot = await ask(knotPort, cc2);
  tt.equal(fromKnot.rcode, BADCOOKIE, 'Knot answers a client cookie alone with BADCOOKIE');
  const knotCookie = fromKnot.cookie!;
  tt.equal(knotCookie.length, 48, 'a 16-byte server cookie (RFC 9018)');
  const atPop = await ask(pop.port, knotCookie);
  tt.equal(atPop.rcode, 0, "popdns accepts Knot's server cookie: NOERROR");
  tt.equal(atPop.answers, 1, '… and answers');
  tt.equal(atPop.cookie, knotCookie, '… and sends it back unchanged (valid and fresh)');
  const m = await metrics(pop.metricsPort);
  tt.match(m, /popdns_cookies_total\{outcome="valid"\} 1\n/, 'popdns counted one valid cookie');
  tt.match(m, /popdns_cookies_total\{outcome="badcookie"\} 2\n/, 'and two BADCOOKIE answers');
  tt.match(m, /popdns_queries_total\{transport="udp",qtype="A",rcode="BADCOOKIE",zone="\.none"\} 2\n/);
});
