/**
 * popdns as a secondary of Knot (hmac-sha256 TSIG on every request): the first AXFR, a change at the
 * primary → NOTIFY → IXFR (Knot's own log says IXFR went out, and the SOA refresh of 3600 s rules out
 * the timer), NOTIFY refusals (not a primary, unknown zone, unsigned), a key the primary does not know
 * (SERVFAIL, /readyz 503), and after the transfers the secondary answers every query of the
 * differential corpus like the primary.
 */
import { createSocket } from 'node:dgram';
import t from 'tap';
import { typeFromText } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { buildMessage, readMessage } from '../../src/wire/records.js';
import { compareCorpus, loadCorpus } from '../helpers/corpus.js';
import { buildQuery, udpExchange } from '../helpers/dns.js';
import { normalizeWire } from '../helpers/knot.js';
import { freePort, hasTool, needTool } from '../helpers/peers.js';
import {
  httpText,
  KEY_NAME,
  newSecret,
  serialOf,
  smallZone,
  startKnotPrimary,
  startSecondary,
  waitUntil,
} from '../helpers/secondary.js';
import { spawnSync } from '../helpers/spawn.js';

function notifyMsg(zone: string): Buffer {
  return buildMessage({
    id: 777,
    flags: (4 << 11) | 0x0400,
    question: { name: nameFromText(`${zone}.`), type: typeFromText('SOA')!, class: 1 },
  });
}

function sendFrom(addr: string, port: number, msg: Buffer): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(null);
    }, 2000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.bind(0, addr, () => s.send(msg, port, '127.0.0.1'));
  });
}

t.test('popdns secondary of knotd', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const secret = newSecret();
  const secPort = await freePort();
  const corpus = loadCorpus();
  const corpusZones = corpus.zones;
  const knot = await startKnotPrimary(tt, secret, secPort, {
    'p.test': smallZone('p.test', 1),
    'bad.test': smallZone('bad.test', 1),
    ...corpusZones,
  });
  const entries = ['p.test', ...Object.keys(corpusZones)].map(
    (z) => `  - { zone: ${z}, primaries: ["127.0.0.1:${knot.port}"], key: ${KEY_NAME} }`,
  );
  const sec = await startSecondary(
    tt,
    [
      'tsig-keys:',
      `  ${KEY_NAME}: { algorithm: hmac-sha256, secret: "${secret}" }`,
      `  other: { algorithm: hmac-sha256, secret: "${newSecret()}" }`,
      'secondaries:',
      ...entries,
      `  - { zone: bad.test, primaries: ["127.0.0.1:${knot.port}"], key: other }`,
    ].join('\n'),
    { port: secPort },
  );

  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'p.test')) === 1),
    'initial transfer: serial 1 served',
  );
  tt.match(
    sec.output(),
    `xfr in zone p.test. from 127.0.0.1:${knot.port} AXFR serial - -> 1`,
    'logged as AXFR',
  );
  tt.match(
    knot.log(),
    /\[p\.test\.\] AXFR, outgoing, remote 127\.0\.0\.1@\d+, started/,
    'Knot sent an AXFR (its ACL allows only requests signed with the key)',
  );

  // A change at the primary: Knot journals it and sends NOTIFY; popdns must fetch it by IXFR.
  knot.set('p.test', 'www', 300, 'A', '192.0.2.99');
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'p.test')) === 2, 8000),
    'serial 2 after NOTIFY',
  );
  tt.match(
    sec.output(),
    `xfr in zone p.test. from 127.0.0.1:${knot.port} IXFR serial 1 -> 2`,
    'logged as IXFR',
  );
  tt.match(
    knot.log(),
    /\[p\.test\.\] IXFR, outgoing, remote 127\.0\.0\.1@\d+, started, serial 1 -> 2/,
    'Knot sent an IXFR',
  );
  const a = await udpExchange(sec.port, buildQuery('www.p.test', 'A'));
  tt.same(
    normalizeWire(a!).answer.map((s) => s.rdata),
    [['"192.0.2.99"']],
    'the changed record is served',
  );

  // NOTIFY refusals (RFC 1996 §3.10 and the zone's key).
  const refused = await sendFrom('127.0.0.2', sec.port, notifyMsg('p.test'));
  tt.equal(refused && readMessage(refused).rcode, 5, 'NOTIFY from an address that is no primary: REFUSED');
  const unknown = await sendFrom('127.0.0.1', sec.port, notifyMsg('nowhere.test'));
  tt.equal(unknown && readMessage(unknown).rcode, 9, 'NOTIFY for a zone we do not follow: NOTAUTH');
  const unsigned = await sendFrom('127.0.0.1', sec.port, notifyMsg('p.test'));
  tt.equal(unsigned && readMessage(unsigned).rcode, 9, 'unsigned NOTIFY for a zone with a key: NOTAUTH');

  // A key the primary does not know: no data, SERVFAIL, /readyz says which zone.
  tt.ok(
    await waitUntil(() => /zone bad\.test\..*(TSIG|NOTAUTH)/.test(sec.output())),
    'the TSIG failure is logged',
  );
  tt.equal(await serialOf(sec.port, 'bad.test'), 'SERVFAIL', 'a zone never transferred answers SERVFAIL');
  const ready = await httpText(sec.metricsPort, '/readyz');
  tt.equal(ready.status, 503, '/readyz 503 while a zone is not loaded');
  tt.match(ready.body, 'bad.test. (not loaded yet)', '/readyz names it');
  const metrics = (await httpText(sec.metricsPort, '/metrics')).body;
  tt.match(metrics, /popdns_notify_received_total\{result="success"\} [1-9]/, 'NOTIFY counted');
  tt.match(metrics, /popdns_xfr_in_total\{type="ixfr",result="success"\} [1-9]/, 'IXFR counted');
  tt.match(metrics, /popdns_zone_role\{zone="p\.test\.",role="secondary"\} 1/, 'role secondary');
  if (hasTool('promtool')) {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    tt.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}`);
  }

  // Every corpus zone transferred: the secondary answers like the primary.
  const names = Object.keys(corpusZones);
  tt.ok(
    await waitUntil(async () => {
      for (const z of names) if (typeof (await serialOf(sec.port, z)) !== 'number') return false;
      return true;
    }, 15000),
    `${names.length} corpus zones transferred`,
  );
  const cmp = await compareCorpus(corpus, sec.port, knot.port, true);
  tt.equal(
    cmp.mismatches.length,
    0,
    `${cmp.compared} queries compared; mismatches:\n${cmp.mismatches.slice(0, 10).join('\n')}`,
  );
});
