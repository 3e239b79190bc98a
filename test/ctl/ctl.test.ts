/**
 * `popdns ctl` against a running `popdns serve --workers 2`: status, reload (good, broken, named,
 * unknown zones), zone-dump, --json, exit codes, the socket's mode; and `log-format: json` on the way.
 */
import { spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig, loadConfigFile, parseConfig } from '../../src/server/config.js';
import { parseZoneFile } from '../../src/zone/load.js';
import { freePort, startProcess, tmpDir } from '../helpers/peers.js';

const ZONE = (serial: number, www: string): string =>
  `$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hm ${serial} 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A ${www}\n`;
const OTHER = '$ORIGIN other.test.\n$TTL 300\n@ SOA ns1 hm 7 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.2\n';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `popdns ctl` without blocking the event loop (the server under test shares it in CI). */
function ctl(sock: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['dist/cli.js', 'ctl', '--socket', sock, ...args]);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('deploy/popdns.yaml documents control and log-format', (t) => {
  const cfg = loadConfigFile('deploy/popdns.yaml', defaultConfig('test', 2));
  t.equal(cfg.control, '/run/popdns/popdns.sock');
  t.equal(cfg.controlDefault, false);
  t.equal(cfg.logFormat, 'text');
  t.throws(() => parseConfig('log-format: xml\n', 'x.yaml', defaultConfig('t', 1)), {
    message: /x\.yaml:1:13: error: log-format is text or json/,
  });
  t.equal(parseConfig('control: false\n', 'x.yaml', defaultConfig('t', 1)).control, null);
  t.end();
});

t.test('popdns ctl against a server with two workers', async (t) => {
  const dir = tmpDir(t);
  const zones = join(dir, 'zones');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(zones);
  writeFileSync(join(zones, 'example.test.zone'), ZONE(1, '192.0.2.80'));
  writeFileSync(join(zones, 'other.test.zone'), OTHER);
  const sock = join(dir, 'popdns.sock');
  const port = await freePort();
  const cfg = join(dir, 'popdns.yaml');
  writeFileSync(
    cfg,
    `zones: ${zones}\nlisten: [127.0.0.1:${port}]\nmetrics: false\nidentity: ctl-pop\nworkers: 2\ncontrol: ${sock}\nlog-format: json\n`,
  );
  const p = await startProcess(
    t,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', cfg],
    (o) => o.includes('"msg":"ready:'),
    60000,
  );

  t.equal(statSync(sock).mode & 0o777, 0o660, 'the socket is mode 0660');

  // Every line the server wrote is one JSON object with the fields the README promises.
  const lines = p.output().trim().split('\n');
  for (const l of lines) {
    const o = JSON.parse(l) as Record<string, unknown>;
    t.ok(
      typeof o.time === 'string' && typeof o.level === 'string' && typeof o.component === 'string',
      `a JSON log line: ${l}`,
    );
  }
  const loaded = lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((o) => o.msg === 'zone example.test. loaded');
  t.match(
    loaded,
    { level: 'info', component: 'server', serial: 1, records: 4, worker: 0 },
    'one line per zone at load',
  );

  const st = await ctl(sock, 'status');
  t.equal(st.code, 0, st.stderr);
  t.match(st.stdout, /^identity: ctl-pop$/m);
  t.match(st.stdout, /^workers: 2$/m);
  t.match(st.stdout, /^draining: no$/m);
  t.match(
    st.stdout,
    /^example\.test\.\n {2}source: file .*example\.test\.zone\n {2}serial: 1, 4 records, loaded \d{4}-/m,
  );

  const js = await ctl(sock, 'status', 'EXAMPLE.test', '--json');
  t.equal(js.code, 0);
  const data = JSON.parse(js.stdout) as {
    server: { workers: number; version: string };
    zones: { zone: string; serial: number; signed: unknown; lastError: unknown }[];
  };
  t.equal(data.server.workers, 2);
  t.match(data.server.version, /^popdns /);
  t.same(
    data.zones.map((z) => [z.zone, z.serial, z.signed, z.lastError]),
    [['example.test.', 1, null, null]],
    'status ZONE: only that zone',
  );

  // A good change: every worker reloads it; one line per zone with serial old → new.
  writeFileSync(join(zones, 'example.test.zone'), ZONE(2, '192.0.2.81'));
  const good = await ctl(sock, 'reload');
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /^example\.test\. loaded: serial 1 → 2, 4 records, [\d.]+ s$/m);
  t.match(good.stdout, /^other\.test\. unchanged: serial 7, 3 records$/m);
  t.match(good.stdout, /^reload done \(2 workers\)$/m);
  t.notMatch(good.stdout, /worker 1:/, 'both workers did the same');

  // A broken file: exit 1, the first error with file:line:col; the old version keeps serving.
  writeFileSync(join(zones, 'example.test.zone'), `${ZONE(3, '192.0.2.82')}bad A 300.1.2.3\n`);
  const bad = await ctl(sock, 'reload');
  t.equal(bad.code, 1, 'a zone that fails to load fails the reload');
  t.match(
    bad.stderr,
    /^example\.test\. failed: still serving serial 2: \S+example\.test\.zone:7:\d+: error: .*\[POPDNS_E_\w+\]$/m,
  );
  const after = JSON.parse((await ctl(sock, 'status', 'example.test', '--json')).stdout) as typeof data & {
    zones: { lastError: string }[];
  };
  t.equal(after.zones[0]?.serial, 2, 'still serving the last good serial');
  t.match(after.zones[0]?.lastError, /example\.test\.zone:7:\d+: error: /, 'status shows the last error');

  // Named zones: re-read even when unchanged; unknown names fail.
  const named = await ctl(sock, 'reload', 'other.test', '--json');
  t.equal(named.code, 0);
  const nd = JSON.parse(named.stdout) as {
    ok: boolean;
    zones: { zone: string; result: string; serialOld: number; serial: number }[];
  };
  t.same(
    nd.zones.map((z) => [z.zone, z.result, z.serialOld, z.serial]),
    [['other.test.', 'loaded', 7, 7]],
    'only the named zone, re-read',
  );
  const unknown = await ctl(sock, 'reload', 'nope.test');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /^nope\.test failed: no such zone \[POPDNS_E_CTL_ZONE\]$/m);

  // zone-dump: the zone as served, RFC 1035 text our own parser (and the server) reads back.
  const dump = await ctl(sock, 'zone-dump', 'example.test.');
  t.equal(dump.code, 0, dump.stderr);
  const dumped = join(dir, 'dump.zone');
  writeFileSync(dumped, dump.stdout);
  const parsed = parseZoneFile(dumped);
  t.same(parsed.diagnostics, []);
  t.equal(parsed.records.length, 4, 'the four records of the served version');
  t.match(
    dump.stdout,
    /^www\.example\.test\. 300 IN A 192\.0\.2\.81$/m,
    'the served version, not the broken file',
  );
  t.match(
    dump.stdout,
    /^example\.test\. 300 IN SOA ns1\.example\.test\. hm\.example\.test\. 2 3600 900 604800 60$/m,
  );

  const none = await ctl(sock, 'zone-dump', 'nope.test');
  t.equal(none.code, 1);
  const usage = await ctl(sock, 'frobnicate');
  t.equal(usage.code, 2, 'unknown command: exit 2');
  t.match(usage.stderr, /unknown command "frobnicate" \(known: reload, status, zone-dump\)/);
  const noServer = await ctl(join(dir, 'nothing.sock'), 'status');
  t.equal(noServer.code, 2, 'no server: exit 2');
  t.match(noServer.stderr, /cannot reach the server at .*nothing\.sock.*\[POPDNS_E_CONTROL\]/);
});
