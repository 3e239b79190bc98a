/**
 * popdns serve with signed zones, in process: DO=1 gets RRSIGs and DO=0 is unchanged, RRSIGs count
 * toward the UDP size, a reload re-signs only what changed, the refresh timer is set, and the safe
 * behaviours when keys go missing or break.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import t, { type Test } from 'tap';
import { ALGORITHM, generateKey, writeKeyFiles } from '../../src/dnssec/keys.js';
import { defaultConfig } from '../../src/server/config.js';
import { PopdnsServer } from '../../src/server/server.js';
import { nameFromText } from '../../src/wire/name.js';
import { buildQuery, tcpExchange, udpExchange } from '../helpers/dns.js';
import { freePort, tmpDir } from '../helpers/peers.js';

const zone = (serial: number, wwwAddr: string): string => `$ORIGIN signed.test.
$TTL 300
@ IN SOA ns1 hostmaster ${serial} 3600 900 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.53
www IN A ${wwwAddr}
big IN TXT ${Array.from({ length: 2 }, () => `"${'x'.repeat(200)}"`).join(' ')}
${Array.from({ length: 50 }, (_, i) => `h${i} IN A 192.0.2.${i + 1}`).join('\n')}
`;

async function setup(t: Test) {
  const dir = tmpDir(t);
  const zones = join(dir, 'zones');
  const keys = join(dir, 'keys');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(zones);
  mkdirSync(keys);
  const file = join(zones, 'signed.test.zone');
  writeFileSync(file, zone(1, '192.0.2.80'));
  const base = writeKeyFiles(
    keys,
    generateKey(nameFromText('signed.test.'), ALGORITHM.ECDSAP256SHA256, 'csk'),
  );
  const cfg = defaultConfig('test', 1);
  cfg.zones = zones;
  cfg.keys = keys;
  cfg.listen = [{ host: '127.0.0.1', port: await freePort(), family: 4 }];
  cfg.metrics = null;
  const errors: string[] = [];
  const server = new PopdnsServer(cfg, { info: () => {}, error: (m) => errors.push(m) });
  return { dir, zones, keys, file, base, server, errors, port: cfg.listen[0]!.port };
}

const decode = (b: Buffer | null) =>
  dnsPacket.decode(b!) as dnsPacket.Packet & { rcode?: string; flag_tc?: boolean };

t.test('DO=1 answers carry RRSIGs, DO=0 answers do not; RRSIGs count toward truncation', async (t) => {
  const s = await setup(t);
  t.equal(s.server.loadZones().failed, 0);
  await s.server.listen();
  t.teardown(() => s.server.close());
  const plain = decode(await udpExchange(s.port, buildQuery('www.signed.test.', 'A', { edns: true })));
  t.same(
    plain.answers?.map((a) => a.type),
    ['A'],
    'DO=0: exactly as before',
  );
  const signed = decode(
    await udpExchange(s.port, buildQuery('www.signed.test.', 'A', { edns: true, dnssecOk: true })),
  );
  t.same(
    signed.answers?.map((a) => a.type),
    ['A', 'RRSIG'],
    'DO=1: the RRSIG follows its RRset',
  );
  const nx = decode(
    await udpExchange(s.port, buildQuery('nope.signed.test.', 'A', { edns: true, dnssecOk: true })),
  );
  t.equal(nx.rcode, 'NXDOMAIN');
  t.same(
    [...new Set(nx.authorities?.map((a) => a.type))].sort(),
    ['NSEC', 'RRSIG', 'SOA'],
    'NXDOMAIN: SOA and NSEC proofs, each signed',
  );
  // The TXT (~410 bytes) fits 512 unsigned; with its ECDSA RRSIG (~100 bytes more) it does not.
  const small = decode(
    await udpExchange(s.port, buildQuery('big.signed.test.', 'TXT', { edns: true, bufsize: 512 })),
  );
  t.equal(small.flag_tc, false, 'DO=0 fits in 512');
  const tc = decode(
    await udpExchange(
      s.port,
      buildQuery('big.signed.test.', 'TXT', { edns: true, bufsize: 512, dnssecOk: true }),
    ),
  );
  t.equal(tc.flag_tc, true, 'DO=1 with the RRSIG does not fit 512: TC');
  const [viaTcp] = await tcpExchange(s.port, [
    buildQuery('big.signed.test.', 'TXT', { edns: true, bufsize: 512, dnssecOk: true }),
  ]);
  t.same(
    decode(viaTcp!).answers?.map((a) => a.type),
    ['TXT', 'RRSIG'],
    'over TCP the signed answer comes whole',
  );
});

t.test('a reload re-signs only what changed; the refresh timer is set', async (t) => {
  const s = await setup(t);
  s.server.loadZones();
  const first = s.server.signStats.get('signed.test.');
  t.ok(first && first.signatures > 50, `first load signs everything (${first?.signatures})`);
  const expiry = s.server.zones()[0]?.sigExpiry ?? 0;
  const now = Date.now() / 1000;
  t.ok(
    expiry > now + 12 * 86400 && expiry <= now + 14 * 86400,
    'the first RRSIG expires in 12-14 days (jitter)',
  );
  const at = s.server.refreshAt;
  t.ok(
    at !== null && at > Date.now() + 3 * 86400_000,
    'the next re-sign is days away (validity 14 d, refresh at half)',
  );
  writeFileSync(s.file, zone(2, '192.0.2.81'));
  s.server.reload();
  const second = s.server.signStats.get('signed.test.');
  t.ok(
    second && second.signatures <= 3,
    `one changed record: ${second?.signatures} new signatures (the A RRset, the SOA)`,
  );
  t.ok(second && second.reused >= first!.signatures - 3, `${second?.reused} reused`);
  await s.server.close();
});

t.test(
  'keys that vanish keep the signed version; broken keys fail the load; dnssec: false unsigns',
  async (t) => {
    const s = await setup(t);
    s.server.loadZones();
    const signed = s.server.handler.zones.find(nameFromText('signed.test.'));
    t.ok(signed?.dnssec, 'signed');
    rmSync(join(s.keys, `${s.base}.key`));
    rmSync(join(s.keys, `${s.base}.private`));
    writeFileSync(s.file, zone(3, '192.0.2.82'));
    const r = s.server.reload();
    t.equal(r.failed, 1, 'the new version does not load');
    t.match(s.errors.join('\n'), /POPDNS_E_KEYS_MISSING/);
    t.equal(
      s.server.handler.zones.find(nameFromText('signed.test.')),
      signed,
      'the signed version keeps serving',
    );

    writeFileSync(join(s.keys, 'Ksigned.test.+013+00001.key'), 'signed.test. IN DNSKEY 257 3 13 garbage\n');
    writeFileSync(join(s.keys, 'Ksigned.test.+013+00001.private'), 'Private-key-format: v1.3\n');
    s.errors.length = 0;
    t.equal(s.server.reload().failed, 1, 'broken key files fail the load');
    t.match(s.errors.join('\n'), /POPDNS_E_KEY/);
    t.equal(s.server.handler.zones.find(nameFromText('signed.test.')), signed, 'still the signed version');

    s.server.cfg.dnssec.set('signed.test.', false);
    t.equal(s.server.reload().failed, 0, 'dnssec: false: unsigned on purpose');
    t.notOk(s.server.handler.zones.find(nameFromText('signed.test.'))?.dnssec);
    await s.server.close();
  },
);

t.test('a zone that asks for DNSSEC without keys does not load', async (t) => {
  const s = await setup(t);
  rmSync(join(s.keys, `${s.base}.key`));
  rmSync(join(s.keys, `${s.base}.private`));
  s.server.cfg.dnssec.set('signed.test.', { denial: 'nsec3' });
  t.equal(s.server.loadZones().failed, 1);
  t.match(s.errors.join('\n'), /asks for DNSSEC but .* has no keys.*POPDNS_E_KEYS_MISSING/);
});
