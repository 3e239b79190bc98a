/**
 * After a reload swaps a zone, the old version is unreachable and the server collects it at once
 * (src/server/heap.ts): a WeakRef to the old Zone is cleared without the test running any collection.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../src/server/config.js';
import { PopdnsServer } from '../../src/server/server.js';
import { nameFromText } from '../../src/wire/name.js';
import type { Zone } from '../../src/zone/zone.js';
import { tmpDir } from '../helpers/peers.js';

const zoneText = (n: number, serial: number): string => {
  const lines = [`$ORIGIN r.test.`, '$TTL 300', `@ IN SOA ns hostmaster ${serial} 3600 900 604800 300`];
  lines.push('@ IN NS ns', 'ns IN A 192.0.2.1');
  for (let i = 0; i < n; i++) lines.push(`h${i} IN A 10.0.${(i >> 8) & 255}.${i & 255}`);
  return `${lines.join('\n')}\n`;
};

t.test('the replaced zone version is collected after a stepwise reload', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, 'r.test.zone');
  writeFileSync(file, zoneText(500, 1));
  const cfg = defaultConfig('test', 1);
  cfg.zones = dir;
  cfg.keys = join(dir, 'no-keys');
  const infos: string[] = [];
  const server = new PopdnsServer(cfg, { info: (m) => infos.push(m), error: () => {} });
  t.teardown(() => server.close());
  server.releaseMinRecords = 100;
  server.loadZones();
  // Held only through the WeakRef: the helper's frame is gone when the reload runs.
  const old = ((): WeakRef<Zone> => new WeakRef(server.handler.zones.find(nameFromText('r.test.'))!))();
  t.ok(old.deref(), 'the first version is served');
  // Let the job that made the WeakRef end (a WeakRef keeps its target alive until then).
  await new Promise((r) => setImmediate(r));

  writeFileSync(file, zoneText(501, 2));
  const r = await server.reloadStepwise();
  t.equal(r.loaded, 1);
  t.equal(server.handler.zones.find(nameFromText('r.test.'))?.serial, 2, 'the new version is served');
  t.equal(server.releases, 1, 'one full collection ran after the swap');
  t.ok(
    infos.some((m) => m === 'memory released after the zone swap'),
    'and was logged',
  );
  t.equal(old.deref(), undefined, 'the old version was unreachable and is gone');
});

t.test('a small reload leaves the collection to V8', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, 'r.test.zone');
  writeFileSync(file, zoneText(10, 1));
  const cfg = defaultConfig('test', 1);
  cfg.zones = dir;
  cfg.keys = join(dir, 'no-keys');
  const server = new PopdnsServer(cfg, { info: () => {}, error: () => {} });
  t.teardown(() => server.close());
  server.loadZones();
  writeFileSync(file, zoneText(11, 2));
  await server.reloadStepwise();
  t.equal(server.releases, 0, 'no full collection for 23 records');
});
