/**
 * Issue 11: `popdns check` agrees with `popdns serve` (same config, keys, dnssec decision), and a zone
 * whose content changed without a raised SOA serial is reported: at reload with both serials, and by
 * `check --against` a running server.
 */
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { compareWithServer } from '../../src/cli/against.js';
import { checkZones } from '../../src/cli/check.js';
import { resolveConfig } from '../../src/cli/serve.js';
import { algorithmFromText, generateKey, writeKeyFiles } from '../../src/dnssec/keys.js';
import { defaultConfig } from '../../src/server/config.js';
import { nameFromText } from '../../src/wire/name.js';
import { loadZone } from '../../src/zone/load.js';
import { formatDiagnostic } from '../../src/zone/types.js';
import { PopdnsServer } from '../../src/server/server.js';
import { startPopdns, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const CLI = 'dist/cli.js';
const zone = (serial: number, www: string): string =>
  `$TTL 600\n@ SOA ns1 hostmaster ${serial} 7200 3600 1209600 3600\n@ NS ns1\nns1 A 192.0.2.53\nwww A ${www}\n`;

t.test('check --config loads what serve would: keys, dnssec settings, the config itself', (tt) => {
  const dir = tmpDir(tt);
  mkdirSync(join(dir, 'zones'));
  const keys = join(dir, 'keys');
  writeFileSync(
    join(dir, 'zones', 'signed.example.yaml'),
    'dnssec: nsec3\nsoa: { serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n',
  );
  writeFileSync(join(dir, 'zones', 'plain.example.zone'), zone(1, '192.0.2.80'));
  const cfg = join(dir, 'popdns.yaml');
  writeFileSync(
    cfg,
    `zones: ${dir}/zones\nkeys: ${keys}\ndnssec:\n  plain.example: nsec\n  typo.example: nsec3\n`,
  );
  const run = (): { problems: string[]; ok: string[]; errors: number } => {
    const s = checkZones([`${dir}/zones`], { cfg: resolveConfig({ config: cfg }), configFile: cfg });
    return {
      problems: s.lines.filter((l) => / (error|warning): /.test(l)),
      ok: s.lines.filter((l) => !/ (error|warning): /.test(l)),
      errors: s.errors,
    };
  };
  const r = run();
  tt.same(r.problems, [
    `${dir}/zones/plain.example.zone:1:1: error: plain.example. asks for DNSSEC but ${keys} has no keys for it (popdns keygen plain.example. --keys ${keys}) [POPDNS_E_KEYS_MISSING]`,
    `${dir}/zones/signed.example.yaml:1:1: error: signed.example. asks for DNSSEC but ${keys} has no keys for it (popdns keygen signed.example. --keys ${keys}) [POPDNS_E_KEYS_MISSING]`,
    `${cfg}:5:3: warning: the dnssec: entry for typo.example. names no zone in ${dir}/zones (a typo? the settings apply to nothing) [POPDNS_W_CONFIG_UNKNOWN_ZONE]`,
  ]);
  // With keys, both sign, as serve would sign them.
  mkdirSync(keys, { mode: 0o700 });
  for (const z of ['signed.example.', 'plain.example.']) {
    writeKeyFiles(keys, generateKey(nameFromText(z), algorithmFromText('ecdsap256sha256')!, 'csk'));
  }
  const ok = run();
  tt.equal(ok.errors, 0, ok.problems.join('\n'));
  tt.match(
    ok.ok.join('\n'),
    /signed\.example\.yaml: signed\.example\. serial 1, \d+ records, signed \(NSEC3\), signatures valid until /,
  );
  tt.match(
    ok.ok.join('\n'),
    /plain\.example\.zone: plain\.example\. serial 1, \d+ records, signed \(NSEC\), signatures valid until /,
  );
  // The config itself is checked: an unknown key is an error with its position, and nothing else runs.
  writeFileSync(cfg, `zones: ${dir}/zones\nkeyz: ${keys}\n`);
  const bad = spawnSync(process.execPath, [CLI, 'check', '--config', cfg], { encoding: 'utf8' });
  tt.equal(bad.status, 1);
  tt.match(bad.stdout, new RegExp(`^${cfg}:2:1: error: .*keyz.* \\[POPDNS_E_CONFIG\\]\\n$`));
  tt.end();
});

t.test('reload: changed content under the same serial warns with both serials', async (tt) => {
  const dir = tmpDir(tt);
  const file = join(dir, 'example.com.zone');
  writeFileSync(file, zone(5, '192.0.2.80'));
  const cfg = defaultConfig('test', 1);
  cfg.zones = dir;
  cfg.keys = join(dir, 'no-keys');
  const logged: string[] = [];
  const server = new PopdnsServer(cfg, { info: () => {}, error: (m) => logged.push(m) });
  server.loadZones();
  const rewrite = (text: string, sec: number): void => {
    writeFileSync(file, text);
    utimesSync(file, new Date(), new Date(Date.now() + sec * 1000));
  };
  rewrite(`${zone(5, '192.0.2.80')}; a comment only\n`, 2);
  server.reload();
  tt.same(logged, [], 'same content (a comment added): no warning');
  rewrite(zone(5, '192.0.2.81'), 4);
  server.reload();
  tt.same(logged, [
    `${file}: warning: zone example.com. changed but its SOA serial 5 is not above the serial 5 it replaces; secondaries will not pick up the change (raise the serial) [POPDNS_W_SERIAL_NOT_RAISED]`,
  ]);
  logged.length = 0;
  rewrite(zone(6, '192.0.2.82'), 6);
  server.reload();
  tt.same(logged, [], 'serial raised: no warning');
  await server.close();
});

t.test('check --against a running server', async (tt) => {
  const served = tmpDir(tt);
  writeFileSync(join(served, 'example.com.zone'), zone(7, '192.0.2.80'));
  const srv = await startPopdns(tt, served, ['--workers', '1']);
  const local = tmpDir(tt);
  const f = join(local, 'example.com.zone');
  const check = async (): Promise<string[]> => {
    const z = loadZone(f).result.zone!;
    return (await compareWithServer(`127.0.0.1:${srv.port}`, [{ file: f, zone: z }])).map(formatDiagnostic);
  };
  writeFileSync(f, zone(7, '192.0.2.80'));
  tt.same(await check(), [], 'same content, same serial: fine');
  writeFileSync(f, zone(7, '192.0.2.99'));
  tt.same(await check(), [
    `${f}:1:1: warning: example.com. changed (A at www.example.com. has other data there) but its serial 7 is not above the serial 7 served on 127.0.0.1:${srv.port}; secondaries would not pick up the change (raise the serial) [POPDNS_W_SERIAL_NOT_RAISED]`,
  ]);
  writeFileSync(f, zone(8, '192.0.2.99'));
  tt.same(await check(), [], 'serial raised: fine');
  writeFileSync(f, zone(6, '192.0.2.80'));
  tt.same(await check(), [
    `${f}:1:1: warning: example.com. has serial 6 here but 7 on 127.0.0.1:${srv.port}, which is newer [POPDNS_W_SERIAL_LOWER]`,
  ]);
  // The CLI wires it: a changed zone is a warning, so --strict fails.
  writeFileSync(f, zone(7, '192.0.2.99'));
  const r = spawnSync(process.execPath, [CLI, 'check', '--strict', f, '--against', `127.0.0.1:${srv.port}`], {
    encoding: 'utf8',
  });
  tt.equal(r.status, 1);
  tt.match(r.stdout, /\[POPDNS_W_SERIAL_NOT_RAISED\]/);
});
