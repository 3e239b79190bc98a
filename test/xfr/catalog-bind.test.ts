/**
 * A catalog zone (RFC 9432, version "2") produced by BIND 9 (named serving the catalog as a primary
 * zone from its file, `ixfr-from-differences` so its changes go out as IXFR), consumed by popdns with
 * hmac-sha256: the members listed are served; a member added to the catalog (file edit, reload →
 * named's NOTIFY) is served within seconds; a member removed stops being served and its data leaves
 * data-dir, the other members untouched.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort, needTool, startProcess, tmpDir } from '../helpers/peers.js';
import { KEY_NAME, newSecret, serialOf, smallZone, startSecondary, waitUntil } from '../helpers/secondary.js';

/** The catalog zone text (RFC 9432 §4): SOA, NS invalid., version "2", one PTR per member. */
function catalog(serial: number, members: Record<string, string>): string {
  return [
    '$ORIGIN catalog.test.',
    '$TTL 0',
    `@ SOA invalid. invalid. ${serial} 3600 600 86400 0`,
    '@ NS invalid.',
    'version TXT "2"',
    ...Object.entries(members).map(([id, zone]) => `${id}.zones PTR ${zone}.`),
    '',
  ].join('\n');
}

t.test('a BIND-produced catalog consumed by popdns', async (tt) => {
  if (!needTool(tt, 'named', 'bind9')) return;
  const secret = newSecret();
  const secPort = await freePort();
  const port = await freePort();
  const dir = tmpDir(tt, 'popdns-catbind-');
  const members = ['m1.test', 'm2.test', 'm3.test'];
  members.forEach((z, i) => writeFileSync(join(dir, `${z}.zone`), smallZone(z, 10 * (i + 1) + 1)));
  writeFileSync(join(dir, 'catalog.test.zone'), catalog(1, { a1: 'm1.test', a2: 'm2.test' }));
  const zoneConf = (z: string): string =>
    `zone "${z}" { type primary; file "${z}.zone"; allow-transfer { key ${KEY_NAME}; };
  also-notify { 127.0.0.1 port ${secPort} key ${KEY_NAME}; }; ixfr-from-differences yes; };`;
  writeFileSync(
    join(dir, 'named.conf'),
    `key "${KEY_NAME}" { algorithm hmac-sha256; secret "${secret}"; };
controls { };
options { directory "${dir}"; pid-file "${dir}/named.pid"; session-keyfile "${dir}/session.key";
  listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; };
  recursion no; dnssec-validation no; notify explicit; };
${['catalog.test', ...members].map(zoneConf).join('\n')}
`,
  );
  const named = await startProcess(tt, 'named', ['-g', '-c', join(dir, 'named.conf')], (o) =>
    o.includes('running'),
  );
  const sec = await startSecondary(
    tt,
    [
      'tsig-keys:',
      `  ${KEY_NAME}: { algorithm: hmac-sha256, secret: "${secret}" }`,
      'catalogs:',
      `  - { zone: catalog.test, primaries: ["127.0.0.1:${port}"], key: ${KEY_NAME} }`,
    ].join('\n'),
    { port: secPort },
  );
  tt.ok(
    await waitUntil(
      async () =>
        (await serialOf(sec.port, 'm1.test')) === 11 && (await serialOf(sec.port, 'm2.test')) === 21,
      15_000,
    ),
    'both members served',
  );
  tt.equal(await serialOf(sec.port, 'm3.test'), 'REFUSED', 'm3 (not in the catalog yet) is not served');
  tt.equal(await serialOf(sec.port, 'catalog.test'), 'REFUSED', 'the catalog itself is not served');

  // A member added: the catalog file gets m3's PTR and a new serial; named reloads and NOTIFYs.
  writeFileSync(join(dir, 'catalog.test.zone'), catalog(2, { a1: 'm1.test', a2: 'm2.test', a3: 'm3.test' }));
  named.child.kill('SIGHUP');
  const t0 = Date.now();
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'm3.test')) === 31, 15_000),
    'the new member is served',
  );
  tt.comment(`m3.test served ${Date.now() - t0} ms after the reload`);
  tt.match(sec.output(), 'catalog catalog.test.: member m3.test. added (id a3)');
  tt.match(
    sec.output(),
    `xfr in zone catalog.test. from 127.0.0.1:${port} IXFR serial 1 -> 2`,
    'the catalog change came by IXFR',
  );
  tt.match(named.output(), /transfer of 'catalog\.test\/IN': IXFR started: TSIG xfr/, "named's log agrees");

  // A member removed: its PTR leaves the catalog.
  const m1File = join(sec.dataDir, 'secondary', 'm1.test.zone');
  tt.ok(existsSync(m1File), 'm1 is kept in data-dir');
  writeFileSync(join(dir, 'catalog.test.zone'), catalog(3, { a2: 'm2.test', a3: 'm3.test' }));
  named.child.kill('SIGHUP');
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'm1.test')) === 'REFUSED', 15_000),
    'm1 is no longer served',
  );
  tt.match(sec.output(), 'catalog catalog.test.: member m1.test. removed');
  tt.ok(await waitUntil(() => !existsSync(m1File), 5000), "m1's data is deleted");
  tt.equal(await serialOf(sec.port, 'm2.test'), 21, 'm2 still served');
  tt.equal(await serialOf(sec.port, 'm3.test'), 31, 'm3 still served');
});
