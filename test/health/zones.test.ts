/**
 * `/zones` on the server's metrics listener and `popdns health --once` following it, end to end with
 * a real `popdns serve --workers 2` (the primary answers /zones from its workers): a zone removed on
 * purpose stops being probed, a new zone is probed, a zone file that never loaded fails the check, and
 * a newer zone file that fails to load is stale after `max-serial-lag`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { ZoneReport } from '../../src/server/zonestatus.js';
import { freePort, startProcess, tmpDir } from '../helpers/peers.js';

const head = (origin: string, serial: number): string =>
  [
    `$ORIGIN ${origin}`,
    '$TTL 600',
    `@ SOA ns1.example. hostmaster.${origin} ${serial} 900 180 1209600 180`,
    '@ NS ns1.example.',
    'www A 192.0.2.1',
    '',
  ].join('\n');

t.test('/zones and popdns health --once follow the zones the server serves', async (t) => {
  const dir = tmpDir(t);
  const zones = join(dir, 'zones');
  mkdirSync(zones);
  writeFileSync(join(zones, 'example.com.zone'), head('example.com.', 1));
  writeFileSync(join(zones, 'example.org.zone'), head('example.org.', 1));
  const port = await freePort();
  const metrics = await freePort();
  const config = join(dir, 'pop.yaml');
  writeFileSync(
    config,
    [
      `zones: ${zones}`,
      `listen: [127.0.0.1:${port}]`,
      `metrics: 127.0.0.1:${metrics}`,
      'health:',
      '  timeout: 500ms',
      '  transports: [udp]',
      '  max-serial-lag: 1s',
      '  maintenance-file: false',
      '',
    ].join('\n'),
  );
  const server = await startProcess(
    t,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', config, '--workers', '2'],
    (o) => o.includes('ready:'),
  );
  const report = async (): Promise<ZoneReport> =>
    (await (await fetch(`http://127.0.0.1:${metrics}/zones`)).json()) as ZoneReport;
  const until = async (ok: (r: ZoneReport) => boolean, what: string): Promise<ZoneReport> => {
    const deadline = Date.now() + 10000;
    let r = await report();
    while (!ok(r) && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
      r = await report();
    }
    t.ok(ok(r), what);
    return r;
  };
  // Asynchronously: the test's event loop keeps its HTTP connections alive meanwhile.
  const once = (): Promise<{ status: number | null; stdout: string }> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        ['dist/cli.js', 'health', '--config', config, '--once'],
        { encoding: 'utf8' },
        (err, stdout) =>
          resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout }),
      );
    });

  let r = await report();
  t.same(
    r.zones.map((z) => [z.zone, z.state, z.serial, z.disk_newer, z.failing_since]),
    [
      ['example.com.', 'served', 1, false, null],
      ['example.org.', 'served', 1, false, null],
    ],
  );
  t.ok(r.zones.every((z) => typeof z.loaded_at === 'number' && z.loaded_at > 0));
  let h = await once();
  t.equal(h.status, 0, `healthy: ${h.stdout}`);
  t.match(h.stdout, /healthy: 2 probes answered/);

  // A zone removed on purpose: file deleted, reload. Not probed any more, still healthy.
  rmSync(join(zones, 'example.org.zone'));
  server.child.kill('SIGHUP');
  await until((x) => x.zones.length === 1, 'the removed zone leaves the report');
  h = await once();
  t.equal(h.status, 0, `a removed zone is no failure: ${h.stdout}`);
  t.match(h.stdout, /healthy: 1 probes answered/);

  // A new zone is probed after the reload that loads it; before, it is pending.
  writeFileSync(join(zones, 'example.net.zone'), head('example.net.', 5));
  r = await report();
  t.match(
    r.zones.find((z) => z.file.endsWith('example.net.zone')),
    { state: 'pending', zone: null },
    'a file not read yet is pending',
  );
  server.child.kill('SIGHUP');
  await until((x) => x.zones.some((z) => z.zone === 'example.net.' && z.state === 'served'), 'loaded');
  h = await once();
  t.match(h.stdout, /healthy: 2 probes answered/, 'the new zone is probed');

  // The newer version of a served zone fails to load: the old serial keeps serving, /zones says so,
  // and after max-serial-lag (1 s) the probe calls it stale — in a single --once round.
  writeFileSync(join(zones, 'example.net.zone'), `${head('example.net.', 6)}bad A 192.0.2.300\n`);
  server.child.kill('SIGHUP');
  r = await until((x) => x.zones.some((z) => z.failing_since !== null), 'the failed reload shows');
  const net = r.zones.find((z) => z.zone === 'example.net.')!;
  t.match(net, { state: 'served', serial: 5, disk_newer: true });
  t.match(net.last_error, /example\.net\.zone:6:\d+: error: .*\[POPDNS_E_/);
  await new Promise((res) => setTimeout(res, 1300));
  h = await once();
  t.equal(h.status, 1, 'stale after the lag');
  t.match(h.stdout, /example\.net\. serves serial 5 but the newer .* fails to load .*POPDNS_E_STALE_ZONE/);

  // A zone file that never loaded: nothing served for it, the check fails at once.
  writeFileSync(join(zones, 'example.net.zone'), head('example.net.', 6));
  writeFileSync(join(zones, 'broken.example.zone'), '$ORIGIN broken.example.\n@ A 192.0.2.1\n');
  server.child.kill('SIGHUP');
  r = await until((x) => x.zones.some((z) => z.state === 'failed'), 'the broken file is listed');
  t.match(
    r.zones.find((z) => z.state === 'failed'),
    {
      zone: 'broken.example.',
      serial: null,
      last_error: /broken\.example\.zone:\d+:\d+: error: .*POPDNS_E_/,
    },
  );
  t.equal(r.zones.find((z) => z.zone === 'example.net.')?.serial, 6, 'the fixed file loaded');
  h = await once();
  t.equal(h.status, 1);
  t.match(h.stdout, /broken\.example\.zone: zone broken\.example\. is not served: /);
  rmSync(join(zones, 'broken.example.zone'));
  server.child.kill('SIGHUP');
  await until((x) => !x.zones.some((z) => z.state === 'failed'), 'removed again');
  h = await once();
  t.equal(h.status, 0, `healthy again: ${h.stdout}`);
});
