/**
 * Reload skips what did not change: an unsigned zone whose file and $INCLUDEs are as they were keeps
 * its loaded version (no parse), so SIGHUP after editing one small zone does not stall on a big one.
 */
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../src/server/config.js';
import { PopdnsServer } from '../../src/server/server.js';
import { nameFromText } from '../../src/wire/name.js';
import { tmpDir } from '../helpers/peers.js';

const SOA = '@ IN SOA ns hostmaster 1 3600 900 604800 300\n@ IN NS ns\nns IN A 192.0.2.1\n';

t.test('unchanged zones are not parsed again; a changed file or $INCLUDE is', async (t) => {
  const dir = tmpDir(t);
  const a = join(dir, 'a.test.zone');
  const b = join(dir, 'b.test.zone');
  const inc = join(dir, 'b-hosts.inc');
  writeFileSync(a, `$ORIGIN a.test.\n$TTL 300\n${SOA}www IN A 192.0.2.10\n`);
  writeFileSync(inc, 'www IN A 192.0.2.20\n');
  writeFileSync(b, `$ORIGIN b.test.\n$TTL 300\n${SOA}$INCLUDE b-hosts.inc\n`);
  const cfg = defaultConfig('test', 1);
  cfg.zones = dir;
  cfg.keys = join(dir, 'no-keys');
  const server = new PopdnsServer(cfg, { info: () => {}, error: () => {} });
  server.loadZones();
  const zone = (o: string) => server.handler.zones.find(nameFromText(o));
  const a1 = zone('a.test.');
  const b1 = zone('b.test.');
  t.ok(a1 && b1);
  t.equal(server.reload().loaded, 2);
  t.equal(zone('a.test.'), a1, 'a.test. unchanged: the same loaded version');
  t.equal(zone('b.test.'), b1, 'b.test. unchanged: the same loaded version');
  writeFileSync(inc, 'www IN A 192.0.2.21\n');
  utimesSync(inc, new Date(), new Date(Date.now() + 2000));
  server.reload();
  t.not(zone('b.test.'), b1, 'b.test.: its $INCLUDE changed, so it was loaded again');
  t.equal(zone('a.test.'), a1, 'a.test. still the same version');
  t.equal(server.loadZones(true).loaded, 2);
  t.not(zone('a.test.'), a1, 'force re-reads everything');
  await server.close();
});
