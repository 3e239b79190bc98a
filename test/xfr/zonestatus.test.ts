/**
 * Secondary zones in the zone-status report (`/zones`, what `popdns health` follows): a served
 * version is `served` with its serial; a zone not transferred yet or expired (SERVFAIL) stays in the
 * report as `failed` with the reason the secondary side gave, so the probe sees it is not served;
 * a zone no longer followed (catalog member removed) leaves the report.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../src/server/config.js';
import { PopdnsServer } from '../../src/server/server.js';
import { gatherZoneStatus } from '../../src/server/zonestatus.js';
import { loadZoneFile } from '../../src/zone/load.js';
import { tmpDir } from '../helpers/peers.js';
import { smallZone } from '../helpers/secondary.js';

t.test('secondary zones in the zone-status report', (tt) => {
  const dir = tmpDir(tt);
  const cfg = defaultConfig('test', 1);
  cfg.zones = join(dir, 'zones');
  cfg.keys = join(dir, 'no-keys');
  const server = new PopdnsServer(cfg, { info: () => {}, error: () => {} });
  const file = join(dir, 's.test.zone');
  writeFileSync(file, smallZone('s.test', 5));
  const zone = loadZoneFile(file).zone!;
  const entry = (): unknown => gatherZoneStatus(server.zones(), null).zones.find((z) => z.zone === 's.test.');

  server.setSecondaryZone('s.test.', 'unavailable', 'secondary zone not transferred yet');
  tt.match(
    entry(),
    { state: 'failed', serial: null, last_error: 'secondary zone not transferred yet' },
    'not transferred yet: failed, with the reason',
  );
  server.setSecondaryZone('s.test.', zone);
  tt.match(entry(), { state: 'served', serial: 5, file, last_error: null }, 'transferred: served');
  server.setSecondaryZone('s.test.', 'unavailable', 'expired: no primary reached [POPDNS_E_ZONE_EXPIRED]');
  tt.match(
    entry(),
    { state: 'failed', serial: null, file, last_error: /POPDNS_E_ZONE_EXPIRED/ },
    'expired: failed, same file, with the reason',
  );
  tt.equal(
    server.zones().find((z) => z.fileOrigin === 's.test.')?.loadFailures,
    0,
    'no zone-file load failure counted',
  );
  server.setSecondaryZone('s.test.', null);
  tt.equal(entry(), undefined, 'removed: gone from the report');
  tt.end();
});
