/**
 * `popdns check --config FILE` and the zone transfer settings (issue 12): every problem of tsig-keys,
 * transfer, secondaries, catalogs and updates at once, each at file:line:col with its key path and
 * code, and a non-zero exit; a good config passes and goes on to check the zones.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { checkTransferConfig } from '../../src/cli/checkconfig.js';
import { formatDiagnostic } from '../../src/zone/types.js';
import { tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const SECRET = Buffer.alloc(32, 7).toString('base64');
const lines = (text: string, zones: Map<string, string> = new Map()): string[] =>
  checkTransferConfig(text, 'pop.yaml', zones).map(formatDiagnostic);

t.test('a good transfer config has no problems', async (t) => {
  const text = `tsig-keys:
  xfr.example.net: { algorithm: hmac-sha256, secret: "${SECRET}" }
  legacy: { algorithm: hmac-sha1, secret: "${SECRET}" }
transfer:
  allow:
    - { from: 192.0.2.0/24, key: xfr.example.net }
    - { from: "2001:db8::/32" }
    - { from: 198.51.100.7 }
  notify:
    - { to: "192.0.2.10:53", key: xfr.example.net. }
    - { to: "[2001:db8::10]:5353" }
secondaries:
  - { zone: example.org, primaries: ["192.0.2.1:53", "[2001:db8::1]:53", "2001:db8::2", 192.0.2.3], key: xfr.example.net }
catalogs:
  - { zone: catalog.example.net, primaries: ["192.0.2.1:53"], key: LEGACY }
updates:
  example.com:
    - { key: xfr.example.net }
`;
  t.same(lines(text, new Map([['example.com.', 'zones/example.com.zone']])), []);
});

t.test('every problem at once, with key path and code', async (t) => {
  const text = `tsig-keys:
  xfr.example.net: { algorithm: hmac-sha257, secret: "${SECRET}" }
  bad64: { secret: "not base64!" }
  nosecret: { algorithm: hmac-sha512 }
  "bad..name": { secret: "${SECRET}" }
transfer:
  allow:
    - { from: 192.0.2.0/33 }
    - { from: 192.0.2.1, key: nokey }
  notify:
    - { to: "2001:db8::10:53" }
    - { to: "192.0.2.10:99999", key: xfr.example.net }
secondaries:
  - { zone: example.org, primaries: ["192.0.2.1:53"], key: missing }
  - { zone: Example.ORG., primaries: ["192.0.2.300"] }
  - { zone: example.com, primaries: [] }
  - { zone: catalog.example.net, primaries: ["[2001:db8::1]:53"] }
catalogs:
  - { zone: catalog.example.net, primaries: ["192.0.2.1:53"] }
updates:
  example.org:
    - { key: gone }
  typo.example:
    - { key: xfr.example.net }
`;
  t.same(lines(text, new Map([['example.com.', 'zones/example.com.zone']])), [
    'pop.yaml:2:33: error: tsig-keys.xfr.example.net.algorithm: unknown TSIG algorithm "hmac-sha257" (known: hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1) [POPDNS_E_TSIG_ALGORITHM]',
    'pop.yaml:3:20: error: tsig-keys.bad64.secret: not base64 (popdns tsig-keygen makes one) [POPDNS_E_TSIG_SECRET]',
    'pop.yaml:4:13: error: tsig-keys.nosecret.secret: missing [POPDNS_E_TSIG_SECRET]',
    'pop.yaml:5:3: error: tsig-keys.bad..name: not a key name: empty label in "bad..name." [POPDNS_E_TSIG_KEY_NAME]',
    'pop.yaml:8:15: error: transfer.allow[0].from: "192.0.2.0/33" is not an address or CIDR prefix like 192.0.2.0/24 or 2001:db8::/32 [POPDNS_E_CONFIG_ADDRESS]',
    'pop.yaml:9:31: error: transfer.allow[1].key: key nokey is not in tsig-keys (known: xfr.example.net., bad64., nosecret.) [POPDNS_E_TSIG_KEY]',
    'pop.yaml:11:13: error: transfer.notify[0].to: "2001:db8::10:53" is not ADDR:PORT ("192.0.2.10:53", IPv6 as "[2001:db8::1]:53") [POPDNS_E_CONFIG_ADDRESS]',
    'pop.yaml:12:13: error: transfer.notify[1].to: "192.0.2.10:99999" is not ADDR:PORT ("192.0.2.10:53", IPv6 as "[2001:db8::1]:53") [POPDNS_E_CONFIG_ADDRESS]',
    'pop.yaml:14:60: error: secondaries[0].key: key missing is not in tsig-keys (known: xfr.example.net., bad64., nosecret.) [POPDNS_E_TSIG_KEY]',
    'pop.yaml:15:13: error: secondaries[1].zone: example.org. is also secondaries[0].zone [POPDNS_E_ZONE_TWICE]',
    'pop.yaml:15:39: error: secondaries[1].primaries[0]: "192.0.2.300" is not ADDR:PORT ("192.0.2.1:53", IPv6 as "[2001:db8::1]:53") [POPDNS_E_CONFIG_ADDRESS]',
    'pop.yaml:16:13: error: secondaries[2].zone: example.com. is also a zone file (zones/example.com.zone); a zone comes from a file or from a primary, not both [POPDNS_E_ZONE_TWICE]',
    'pop.yaml:16:37: error: secondaries[2].primaries: needs at least one primary [POPDNS_E_CONFIG]',
    'pop.yaml:19:13: error: catalogs[0].zone: catalog.example.net. is also secondaries[3].zone [POPDNS_E_ZONE_TWICE]',
    'pop.yaml:21:3: warning: updates.example.org: example.org. is a secondary zone here (secondaries[0].zone): updates are refused; send them to its primary [POPDNS_W_UPDATE_SECONDARY]',
    'pop.yaml:22:14: error: updates.example.org[0].key: key gone is not in tsig-keys (known: xfr.example.net., bad64., nosecret.) [POPDNS_E_TSIG_KEY]',
    'pop.yaml:23:3: warning: updates.typo.example: typo.example. is not a zone file in the zones directory (a typo? these rules apply to nothing) [POPDNS_W_CONFIG_UNKNOWN_ZONE]',
  ]);
});

t.test('the CLI: problems printed, exit 1; a good config goes on to the zones', async (t) => {
  const dir = tmpDir(t);
  mkdirSync(join(dir, 'zones'));
  writeFileSync(
    join(dir, 'zones', 'example.com.zone'),
    '$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hm 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n',
  );
  const cfg = join(dir, 'popdns.yaml');
  const run = (): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, ['dist/cli.js', 'check', '--config', cfg], { encoding: 'utf8' });
  writeFileSync(
    cfg,
    [
      `zones: ${join(dir, 'zones')}`,
      'tsig-keys:',
      '  k: { secret: "%%%" }',
      'transfer:',
      '  allow: [{ from: 10.0.0.0/8, key: k2 }]',
      'secondaries:',
      '  - { zone: example.com, primaries: ["192.0.2.1:53"] }',
      '',
    ].join('\n'),
  );
  let r = run();
  t.equal(r.status, 1);
  t.same(r.stdout.trimEnd().split('\n'), [
    `${cfg}:3:16: error: tsig-keys.k.secret: not base64 (popdns tsig-keygen makes one) [POPDNS_E_TSIG_SECRET]`,
    `${cfg}:5:36: error: transfer.allow[0].key: key k2 is not in tsig-keys (known: k.) [POPDNS_E_TSIG_KEY]`,
    `${cfg}:7:13: error: secondaries[0].zone: example.com. is also a zone file (${join(dir, 'zones', 'example.com.zone')}); a zone comes from a file or from a primary, not both [POPDNS_E_ZONE_TWICE]`,
  ]);
  t.match(r.stderr, /the config file has an error; nothing else checked/);

  writeFileSync(
    cfg,
    [
      `zones: ${join(dir, 'zones')}`,
      'tsig-keys:',
      `  k: { secret: "${SECRET}" }`,
      'transfer:',
      '  allow: [{ from: 10.0.0.0/8, key: k }]',
      'secondaries:',
      '  - { zone: example.org, primaries: ["192.0.2.1:53"], key: k }',
      '',
    ].join('\n'),
  );
  r = run();
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.match(r.stdout, /example\.com\.zone: example\.com\. serial 1/);
});
