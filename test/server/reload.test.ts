/**
 * Reload skips what did not change: an unsigned zone whose file and $INCLUDEs are as they were keeps
 * its loaded version (no parse), so SIGHUP after editing one small zone does not stall on a big one;
 * and a zone that did change is parsed in slices, with queries answered in between.
 */
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import packet from 'dns-packet';
import t from 'tap';
import { defaultConfig } from '../../src/server/config.js';
import { parseListen } from '../../src/server/listen.js';
import { PopdnsServer } from '../../src/server/server.js';
import { nameFromText } from '../../src/wire/name.js';
import { parseMasterFile, parseMasterFileSteps } from '../../src/zone/masterfile.js';
import { buildQuery, udpExchange } from '../helpers/dns.js';
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

t.test('a SIGHUP reload parses in slices: queries are answered while a big zone loads', async (t) => {
  const dir = tmpDir(t);
  const big = join(dir, 'big.test.zone');
  const hosts = (n: number, last: string): string => {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`h${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    return `$ORIGIN big.test.\n$TTL 300\n${SOA}${lines.join('\n')}\nlast IN A ${last}\n`;
  };
  writeFileSync(big, hosts(100_000, '192.0.2.1'));
  writeFileSync(join(dir, 'small.test.zone'), `$ORIGIN small.test.\n$TTL 300\n${SOA}www IN A 192.0.2.7\n`);
  const cfg = defaultConfig('test', 1);
  cfg.zones = dir;
  cfg.keys = join(dir, 'no-keys');
  cfg.listen = [parseListen('127.0.0.1:0')];
  cfg.listenDefault = false;
  const server = new PopdnsServer(cfg, { info: () => {}, error: () => {} });
  t.teardown(() => server.close());
  await server.start();
  const port = server.bound[0]!.addr.port;
  const ask = async (name: string): Promise<string | undefined> => {
    const r = await udpExchange(port, buildQuery(name, 'A'), 5000);
    return r ? ((packet.decode(r).answers?.[0] as { data?: string } | undefined)?.data ?? 'none') : undefined;
  };
  t.equal(await ask('last.big.test.'), '192.0.2.1');

  writeFileSync(big, hosts(100_001, '192.0.2.2'));
  let done = false;
  const reload = server.reloadStepwise().then((r) => {
    done = true;
    return r;
  });
  // A second SIGHUP while the first is running: coalesced into one more reload after it.
  const again = server.reloadStepwise();
  // Answers that arrive while the reload is still running (a blocking reload would give none).
  let answeredDuring = 0;
  let wrong = 0;
  for (let i = 0; i < 50 && !done; i++) {
    const a = await ask('www.small.test.');
    if (a !== '192.0.2.7') wrong++;
    else if (!done) answeredDuring++;
  }
  const r = await reload;
  await again;
  t.ok(answeredDuring > 0, `${answeredDuring} answers came while the reload ran`);
  t.equal(wrong, 0, 'every answer during the reload is right');
  t.equal(r.failed, 0);
  t.equal(await ask('last.big.test.'), '192.0.2.2', 'the new version is served after it');
  t.equal(server.reloads.success, 2, 'the SIGHUP that came during the reload ran one more after it');
});

t.test('the stepwise parser yields along the way and gives what the one-go parser gives', (t) => {
  const text = `$ORIGIN s.test.\n$TTL 60\n${SOA}${Array.from({ length: 5000 }, (_, i) => `n${i} A 192.0.2.${i % 250}`).join('\n')}\n`;
  const steps = parseMasterFileSteps(text, { file: 's.test.zone' });
  let yields = 0;
  let r = steps.next();
  while (!r.done) {
    yields++;
    r = steps.next();
  }
  t.ok(yields >= 4, `yielded ${yields} times for 5,003 entries`);
  const once = parseMasterFile(text, { file: 's.test.zone' });
  t.equal(r.value.records.length, 5003);
  t.same(r.value.records, once.records);
  t.same(r.value.diagnostics, once.diagnostics);
  t.end();
});
