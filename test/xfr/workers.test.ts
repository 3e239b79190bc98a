/**
 * `--workers 2` as a secondary: the primary process transfers each version once (one log line, one
 * transfer at Knot), and every worker serves it; NOTIFY received by any worker reaches the one place
 * that handles it; /readyz waits until every worker serves the version.
 */
import t from 'tap';
import { freePort, needTool } from '../helpers/peers.js';
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

t.test('popdns --workers 2 as a secondary of knotd', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const secret = newSecret();
  const secPort = await freePort();
  const knot = await startKnotPrimary(tt, secret, secPort, { 'w.test': smallZone('w.test', 5) });
  const sec = await startSecondary(
    tt,
    [
      'tsig-keys:',
      `  ${KEY_NAME}: { algorithm: hmac-sha256, secret: "${secret}" }`,
      'secondaries:',
      `  - { zone: w.test, primaries: ["127.0.0.1:${knot.port}"], key: ${KEY_NAME} }`,
    ].join('\n'),
    { port: secPort, workers: 2 },
  );
  tt.ok(
    await waitUntil(async () => (await httpText(sec.metricsPort, '/readyz')).status === 200),
    '/readyz 200 once every worker serves the zone',
  );
  knot.set('w.test', 'www', 300, 'A', '192.0.2.77');
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'w.test')) === 6, 8000),
    'serial 6 after NOTIFY',
  );
  await waitUntil(async () => (await httpText(sec.metricsPort, '/readyz')).status === 200);
  const serials = new Set<number | string | null>();
  for (let i = 0; i < 40; i++) serials.add(await serialOf(sec.port, 'w.test'));
  tt.same([...serials], [6], 'every answer (from either worker) has the new serial');
  const lines = sec
    .output()
    .split('\n')
    .filter((l) => l.includes('xfr in zone w.test.'));
  tt.equal(lines.length, 2, `one AXFR and one IXFR, each once:\n${lines.join('\n')}`);
  tt.equal(
    (knot.log().match(/\[w\.test\.\] IXFR, outgoing.*started/g) ?? []).length,
    1,
    'Knot sent one IXFR',
  );
});
