/**
 * popdns primary → popdns secondary with hmac-sha256: the first AXFR, then a zone-file edit and
 * SIGHUP at the primary → its NOTIFY → an IXFR of the difference (not a whole zone), and the
 * secondary serves the new record.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { buildQuery, udpExchange } from '../helpers/dns.js';
import { normalizeWire } from '../helpers/knot.js';
import { freePort, tmpDir } from '../helpers/peers.js';
import { KEY_NAME, newSecret, serialOf, smallZone, startSecondary, waitUntil } from '../helpers/secondary.js';

t.test('popdns primary → popdns secondary', async (tt) => {
  const secret = newSecret();
  const keys = ['tsig-keys:', `  ${KEY_NAME}: { algorithm: hmac-sha256, secret: "${secret}" }`];
  const secPort = await freePort();
  const pdir = tmpDir(tt, 'popdns-prim-');
  mkdirSync(join(pdir, 'zones'));
  writeFileSync(join(pdir, 'zones', 'pp.test.zone'), smallZone('pp.test', 1));
  const primary = await startSecondary(
    tt,
    [
      ...keys,
      'transfer:',
      `  allow: [{ from: 127.0.0.0/8, key: ${KEY_NAME} }]`,
      `  notify: [{ to: "127.0.0.1:${secPort}", key: ${KEY_NAME} }]`,
    ].join('\n'),
    { dir: pdir },
  );
  const sec = await startSecondary(
    tt,
    [
      ...keys,
      'secondaries:',
      `  - { zone: pp.test, primaries: ["127.0.0.1:${primary.port}"], key: ${KEY_NAME} }`,
    ].join('\n'),
    { port: secPort },
  );
  tt.ok(await waitUntil(async () => (await serialOf(sec.port, 'pp.test')) === 1), 'serial 1 transferred');
  tt.match(sec.output(), `xfr in zone pp.test. from 127.0.0.1:${primary.port} AXFR serial - -> 1`);
  writeFileSync(
    join(pdir, 'zones', 'pp.test.zone'),
    smallZone('pp.test', 2).replace('www A 192.0.2.1', 'www A 192.0.2.2'),
  );
  primary.child.kill('SIGHUP');
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'pp.test')) === 2, 15000),
    'serial 2 after NOTIFY',
  );
  tt.match(sec.output(), `xfr in zone pp.test. from 127.0.0.1:${primary.port} IXFR serial 1 -> 2`, 'by IXFR');
  const a = await udpExchange(sec.port, buildQuery('www.pp.test', 'A'));
  tt.same(
    normalizeWire(a!).answer.map((s) => s.rdata),
    [['"192.0.2.2"']],
    'new record served',
  );
});
