/**
 * popdns primary → popdns secondary with hmac-sha256: the first AXFR, then a zone-file edit and
 * SIGHUP at the primary → its NOTIFY → an IXFR of the difference (not a whole zone), and the
 * secondary serves the new record; a zone requested with a key the primary does not know gets
 * NOTAUTH/BADKEY and no data (SERVFAIL at the secondary). After each transfer the secondary answers
 * every query of the differential corpus (test/diff) exactly like the primary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { buildQuery, udpExchange } from '../helpers/dns.js';
import { compareCorpus, loadCorpus } from '../helpers/corpus.js';
import { normalizeWire } from '../helpers/knot.js';
import { freePort, tmpDir } from '../helpers/peers.js';
import {
  httpText,
  KEY_NAME,
  newSecret,
  serialOf,
  smallZone,
  startSecondary,
  waitUntil,
} from '../helpers/secondary.js';

t.test('popdns primary → popdns secondary', async (tt) => {
  const secret = newSecret();
  const keys = ['tsig-keys:', `  ${KEY_NAME}: { algorithm: hmac-sha256, secret: "${secret}" }`];
  const corpus = loadCorpus();
  const secPort = await freePort();
  const pdir = tmpDir(tt, 'popdns-prim-');
  mkdirSync(join(pdir, 'zones'));
  writeFileSync(join(pdir, 'zones', 'pp.test.zone'), smallZone('pp.test', 1));
  writeFileSync(join(pdir, 'zones', 'bad.test.zone'), smallZone('bad.test', 1));
  for (const [z, text] of Object.entries(corpus.zones)) writeFileSync(join(pdir, 'zones', `${z}.zone`), text);
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
  const follow = (z: string, key: string): string =>
    `  - { zone: ${z}, primaries: ["127.0.0.1:${primary.port}"], key: ${key} }`;
  const sec = await startSecondary(
    tt,
    [
      ...keys,
      `  other: { algorithm: hmac-sha256, secret: "${newSecret()}" }`,
      'secondaries:',
      follow('pp.test', KEY_NAME),
      ...Object.keys(corpus.zones).map((z) => follow(z, KEY_NAME)),
      follow('bad.test', 'other'),
    ].join('\n'),
    { port: secPort },
  );
  tt.ok(await waitUntil(async () => (await serialOf(sec.port, 'pp.test')) === 1), 'serial 1 transferred');
  tt.match(sec.output(), `xfr in zone pp.test. from 127.0.0.1:${primary.port} AXFR serial - -> 1`);
  tt.ok(
    await waitUntil(async () => {
      for (const z of Object.keys(corpus.zones))
        if (typeof (await serialOf(sec.port, z)) !== 'number') return false;
      return true;
    }, 15_000),
    `${Object.keys(corpus.zones).length} corpus zones transferred`,
  );
  let cmp = await compareCorpus(corpus, sec.port, primary.port, false);
  tt.equal(
    cmp.mismatches.length,
    0,
    `after the AXFRs, ${cmp.compared} corpus queries: the secondary answers like the primary\n${cmp.mismatches.slice(0, 10).join('\n')}`,
  );

  writeFileSync(
    join(pdir, 'zones', 'pp.test.zone'),
    smallZone('pp.test', 2).replace('www A 192.0.2.1', 'www A 192.0.2.2'),
  );
  // The corpus's example.net changes too (one record, new serial): it goes out by IXFR as well.
  const net = corpus.zones['example.net']!;
  const netSerial = Number(/SOA\s+\S+\s+\S+\s+(\d+)/.exec(net)![1]);
  writeFileSync(
    join(pdir, 'zones', 'example.net.zone'),
    `${net.replace(/(SOA\s+\S+\s+\S+\s+)\d+/, `$1${netSerial + 1}`)}ixfr-added.example.net. 300 IN TXT "changed"\n`,
  );
  primary.child.kill('SIGHUP');
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'pp.test')) === 2, 15000),
    'serial 2 after NOTIFY',
  );
  tt.match(sec.output(), `xfr in zone pp.test. from 127.0.0.1:${primary.port} IXFR serial 1 -> 2`, 'by IXFR');
  tt.match(
    primary.output(),
    /xfr out: zone pp\.test\. peer 127\.0\.0\.1 type IXFR serial 1 → 2 records 6 /,
    "the primary's log: an IXFR of 6 records (SOA, old SOA, -www, new SOA, +www, SOA)",
  );
  const a = await udpExchange(sec.port, buildQuery('www.pp.test', 'A'));
  tt.same(
    normalizeWire(a!).answer.map((s) => s.rdata),
    [['"192.0.2.2"']],
    'new record served',
  );
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'example.net')) === netSerial + 1, 15000),
    'example.net changed too',
  );
  tt.match(sec.output(), /xfr in zone example\.net\. from \S+ IXFR serial \d+ -> \d+/, 'by IXFR');
  cmp = await compareCorpus(corpus, sec.port, primary.port, false);
  tt.equal(
    cmp.mismatches.length,
    0,
    `after the IXFRs, ${cmp.compared} corpus queries: the secondary answers like the primary\n${cmp.mismatches.slice(0, 10).join('\n')}`,
  );

  // TSIG failure: bad.test. is requested with a key the primary does not know.
  tt.ok(
    await waitUntil(() => /zone bad\.test\..*(TSIG|NOTAUTH|BADKEY)/.test(sec.output())),
    'the TSIG failure is logged by the secondary',
  );
  tt.equal(await serialOf(sec.port, 'bad.test'), 'SERVFAIL', 'no data with the wrong key: SERVFAIL');
  tt.match(
    (await httpText(primary.metricsPort, '/metrics')).body,
    /popdns_tsig_failures_total\{error="badkey",kind="(query|xfr)"\} [1-9]/,
    'the primary counted BADKEY',
  );
  tt.notMatch(primary.output(), /xfr out: zone bad\.test\./, 'no data went out for bad.test.');
});
