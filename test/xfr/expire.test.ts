/**
 * Expire while running (RFC 1035 §4.3.5, RFC 1996 §2): a popdns secondary whose primary becomes
 * unreachable keeps serving until the SOA expire passes since the last contact, then answers SERVFAIL
 * for the zone, /readyz turns 503 naming it, /zones reports it failed, and `popdns health --once`
 * counts the PoP unhealthy; when the primary comes back the next retry reaches it and the zone is
 * served again (and the probe is healthy again). The zone's SOA timers are tiny: refresh 2, retry 2,
 * expire 8 seconds. The secondary runs two workers, so `/zones` comes from a worker told over IPC.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort, stopProcess, tmpDir } from '../helpers/peers.js';
import { httpText, KEY_NAME, newSecret, serialOf, startSecondary, waitUntil } from '../helpers/secondary.js';

const ZONE = [
  '$ORIGIN ex.test.',
  '$TTL 60',
  '@ SOA ns1 hostmaster 7 2 2 8 60',
  '@ NS ns1',
  'ns1 A 192.0.2.53',
  'www A 192.0.2.1',
  '',
].join('\n');

interface ZonesReport {
  zones: { zone: string | null; state: string; serial: number | null; last_error: string | null }[];
}

t.test('a secondary expires while its primary is away, and comes back', async (tt) => {
  const secret = newSecret();
  const keys = ['tsig-keys:', `  ${KEY_NAME}: { algorithm: hmac-sha256, secret: "${secret}" }`];
  const pdir = tmpDir(tt, 'popdns-exp-prim-');
  mkdirSync(join(pdir, 'zones'));
  writeFileSync(join(pdir, 'zones', 'ex.test.zone'), ZONE);
  const primaryYaml = [...keys, 'transfer:', `  allow: [{ from: 127.0.0.0/8, key: ${KEY_NAME} }]`].join('\n');
  const primaryPort = await freePort();
  const primary = await startSecondary(tt, primaryYaml, { dir: pdir, port: primaryPort });

  const secPort = await freePort();
  const sec = await startSecondary(
    tt,
    [
      ...keys,
      'secondaries:',
      `  - { zone: ex.test, primaries: ["127.0.0.1:${primaryPort}"], key: ${KEY_NAME} }`,
      'health:',
      '  interval: 3s',
      '  timeout: 2s',
      '  transports: [udp]',
      '  maintenance-file: false',
      '  zones: [ex.test]',
    ].join('\n'),
    // Two workers: /zones comes from a worker, told by the primary process (IPC) why nothing is served.
    { port: secPort, workers: 2 },
  );
  const once = (): Promise<{ status: number; stdout: string }> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        ['dist/cli.js', 'health', '--config', sec.config, '--once'],
        { encoding: 'utf8', timeout: 40_000 },
        (err, stdout) =>
          resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout }),
      );
    });
  const zonesReport = async (): Promise<ZonesReport> =>
    JSON.parse((await httpText(sec.metricsPort, '/zones')).body) as ZonesReport;
  const entry = async (): Promise<ZonesReport['zones'][number] | undefined> =>
    (await zonesReport()).zones.find((z) => z.zone === 'ex.test.');

  tt.ok(await waitUntil(async () => (await serialOf(sec.port, 'ex.test')) === 7), 'transferred: serial 7');
  tt.equal((await httpText(sec.metricsPort, '/readyz')).status, 200, '/readyz 200');
  tt.match(await entry(), { state: 'served', serial: 7 }, '/zones: served, serial 7');

  // The primary goes away. The zone is still served: expire (8 s) has not passed since the last contact.
  await stopProcess(primary.child);
  tt.equal(await serialOf(sec.port, 'ex.test'), 7, 'still served right after the primary left');
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'ex.test')) === 'SERVFAIL', 20_000),
    'SERVFAIL once expire has passed',
  );
  tt.match(sec.output(), /zone ex\.test\. expired: .*\[POPDNS_E_ZONE_EXPIRED\]/, 'logged with its code');
  const ready = await httpText(sec.metricsPort, '/readyz');
  tt.equal(ready.status, 503, '/readyz 503');
  tt.match(ready.body, 'ex.test. (expired)', '/readyz names the expired zone');
  tt.match(await entry(), { state: 'failed', last_error: /expired/ }, '/zones: failed, expired');
  let h = await once();
  tt.equal(h.status, 1, 'health --once: unhealthy');
  tt.match(h.stdout, /ex\.test\. SOA: rcode SERVFAIL/, 'the probe saw SERVFAIL for the zone');

  // The primary comes back (same address): the next retry (2 s) reaches it and serving resumes.
  await startSecondary(tt, primaryYaml, { dir: pdir, port: primaryPort });
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'ex.test')) === 7, 15_000),
    'served again once the primary answers',
  );
  tt.match(sec.output(), 'zone ex.test.: a primary answers again; serving serial 7');
  // The answer above can come from a worker that took the zone back a moment before the process
  // behind /readyz heard of it: readiness follows within a few seconds, not necessarily at once.
  tt.ok(
    await waitUntil(async () => (await httpText(sec.metricsPort, '/readyz')).status === 200, 10_000),
    '/readyz 200 again',
  );
  tt.match(await entry(), { state: 'served', serial: 7 }, '/zones: served again');
  h = await once();
  tt.equal(h.status, 0, `health --once: healthy again (${h.stdout.trim()})`);
});
