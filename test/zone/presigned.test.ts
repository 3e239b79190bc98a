/**
 * Zones that arrive signed (zone/dnssec.ts attachPresigned), without validators: which RRSIG goes on
 * which RRset (RFC 4034 §3: by type covered; RFC 4035 §2.2: not on the delegation NS nor on glue), the
 * NSEC and NSEC3 chains taken from the zone's own records (RFC 4034 §6.1 order, RFC 5155 hashes), the
 * warnings `popdns check` prints (expired and expiring signatures, broken chains), and what the server
 * does when it also has keys for such a zone. Signatures here are placeholders: nothing is verified.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { checkZones } from '../../src/cli/check.js';
import { ALGORITHM, generateKey, writeKeyFiles } from '../../src/dnssec/keys.js';
import { signZone, makePolicy } from '../../src/dnssec/signzone.js';
import { resolve } from '../../src/query/engine.js';
import { defaultConfig } from '../../src/server/config.js';
import { PopdnsServer } from '../../src/server/server.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { base32hexEncode } from '../../src/wire/rdata.js';
import { denialNsec3, nsec3Hash } from '../../src/zone/dnssec.js';
import { loadZoneFile } from '../../src/zone/load.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, findNode, type Zone } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';
import { needTool, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const N = (s: string) => nameFromText(s);
/** 2026-12-01T00:00:00Z */
const NOW = Date.UTC(2026, 11, 1) / 1000;
const KEY = 'mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==';
const sig = (covered: string, labels: number, exp: string, signer = 'example.com.', inc = '20261101000000') =>
  `RRSIG ${covered} 13 ${labels} 600 ${exp} ${inc} 12345 ${signer} c2lnbmF0dXJl`;
const OK = '20261231000000';

const ZONE = `$ORIGIN example.com.
$TTL 600
@ SOA ns1.example.net. hostmaster.example.com. 1 900 180 1209600 180
@ ${sig('SOA', 2, OK)}
@ NS ns1.example.net.
@ ${sig('NS', 2, OK)}
@ 3600 DNSKEY 257 3 13 ${KEY}
@ 3600 ${sig('DNSKEY', 2, OK)}
@ 180 NSEC old.example.com. NS SOA RRSIG NSEC DNSKEY
@ 180 ${sig('NSEC', 2, OK)}
old TXT "stale"
old ${sig('TXT', 3, '20261130000000')}
old 180 NSEC sub.example.com. TXT RRSIG NSEC
old 180 ${sig('NSEC', 3, OK)}
sub NS ns.sub
sub ${sig('NS', 3, OK)}
sub DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE1A3D0F8D8B9AB4B8FD7EDD1E
sub ${sig('DS', 3, OK)}
sub 180 NSEC www.example.com. NS DS RRSIG NSEC
sub 180 ${sig('NSEC', 3, OK)}
ns.sub A 192.0.2.53
www A 192.0.2.1
www ${sig('A', 3, '20261202120000')}
www ${sig('MX', 3, OK)}
www ${sig('A', 3, OK, 'other.example.')}
www AAAA 2001:db8::1
www ${sig('AAAA', 3, OK, 'example.com.', '20261205000000')}
www 180 NSEC example.com. A AAAA RRSIG NSEC
www 180 ${sig('NSEC', 3, OK)}
ghost.deep ${sig('A', 4, OK)}
`;

function build(text: string, now = NOW) {
  return buildZone(parseMasterFile(text, { file: 'example.com.zone', origin: N('example.com.') }), { now });
}

t.test('RRSIGs go on the RRset they cover; the delegation NS and glue stay unsigned', (tt) => {
  const { zone, diagnostics } = build(ZONE);
  tt.ok(zone, 'the zone builds');
  if (!zone) return tt.end();
  tt.ok(zone.dnssec?.presigned, 'recognised as pre-signed (DNSKEY at the apex and RRSIGs)');
  tt.equal(zone.dnssec?.signer, null, 'not signed by popdns');
  const node = (n: string) => findNode(zone, N(n))!;
  for (const n of [
    'example.com.',
    'old.example.com.',
    'sub.example.com.',
    'www.example.com.',
    'ns.sub.example.com.',
  ]) {
    tt.notOk(node(n).rrsets.has(TYPE.RRSIG), `${n}: no RRSIG RRset of its own`);
  }
  for (const type of [TYPE.SOA, TYPE.NS, TYPE.DNSKEY, TYPE.NSEC]) {
    tt.equal(zone.apex.rrsets.get(type)?.sigs?.length, 1, `apex ${type}: its one signature`);
  }
  tt.equal(zone.negativeSoa.sigs, zone.soa.sigs, 'the negative-answer SOA carries the SOA signatures');
  tt.equal(node('www.example.com.').rrsets.get(TYPE.A)?.sigs?.length, 1, 'www A: the zone signature only');
  tt.notOk(node('sub.example.com.').rrsets.get(TYPE.NS)?.sigs, 'delegation NS: unsigned (RFC 4035 §2.2)');
  tt.equal(node('sub.example.com.').rrsets.get(TYPE.DS)?.sigs?.length, 1, 'DS at the cut: signed');
  tt.equal(node('sub.example.com.').rrsets.get(TYPE.NSEC)?.sigs?.length, 1, 'NSEC at the cut: signed');
  tt.notOk(node('ns.sub.example.com.').rrsets.get(TYPE.A)?.sigs, 'glue: unsigned');
  tt.same(
    zone.dnssec?.nsecChain?.toArray().map((e) => nameToText(e.owner)),
    ['example.com.', 'old.example.com.', 'sub.example.com.', 'www.example.com.'],
    'the NSEC chain in canonical order',
  );
  tt.equal(zone.dnssec?.expires, Date.UTC(2026, 10, 30) / 1000, 'expires: the earliest expiration');

  const codes = diagnostics.map((d) => d.code);
  const find = (code: string, text: string) =>
    diagnostics.find((d) => d.code === code && d.message.includes(text) && d.severity === 'warning');
  tt.ok(find('POPDNS_W_RRSIG_EXPIRED', 'old.example.com. TXT (key 12345) expired at 2026-11-30T00:00:00Z'));
  tt.ok(
    find(
      'POPDNS_W_RRSIG_EXPIRING',
      'www.example.com. A (key 12345) expires at 2026-12-02T12:00:00Z, in 1.5 days',
    ),
  );
  tt.ok(
    find('POPDNS_W_RRSIG_NOT_YET_VALID', 'www.example.com. AAAA is valid only from 2026-12-05T00:00:00Z'),
  );
  tt.ok(find('POPDNS_W_RRSIG_IGNORED', 'sub.example.com. NS at a delegation point'), 'NS at a cut');
  tt.ok(find('POPDNS_W_RRSIG_IGNORED', 'www.example.com. MX, which the zone does not have'), 'no such RRset');
  tt.ok(find('POPDNS_W_RRSIG_SIGNER', 'by other.example.'), 'another zone signed it');
  tt.ok(find('POPDNS_W_RRSIG_IGNORED', 'ghost.deep.example.com. A, which the zone does not have'));
  tt.equal(findNode(zone, N('deep.example.com.')), null, 'a name with only an RRSIG is no name of the zone');
  tt.notOk(codes.includes('POPDNS_W_TTL_MISMATCH'), 'RRSIGs over RRsets of other TTLs are no TTL mismatch');
  tt.notOk(codes.includes('POPDNS_W_NSEC_CHAIN'), 'the chain is whole');
  tt.notOk(
    diagnostics.some((d) => d.severity === 'error'),
    'no errors',
  );
  const www = diagnostics.find((d) => d.code === 'POPDNS_W_RRSIG_EXPIRING')!;
  tt.equal(www.pos.line, 23, 'the warning points at the RRSIGs of the name');
  tt.end();
});

t.test('DO=1 answers from a pre-signed NSEC zone carry its RRSIGs and NSEC records', (tt) => {
  const zone = build(ZONE).zone!;
  const zones = new ZoneSet([zone]);
  const nx = resolve(zones, N('nx.example.com.'), TYPE.A, true);
  tt.ok(nx.dnssec, 'the answer is signed');
  // nx sorts after example.com. and before old (RFC 4034 §6.1); the wildcard *.example.com. likewise.
  tt.same(
    nx.authority.map((s) => `${nameToText(s.owner)} ${s.type}`),
    [`example.com. ${TYPE.SOA}`, `example.com. ${TYPE.NSEC}`],
    'NXDOMAIN: the SOA and the NSEC that covers both the name and the wildcard',
  );
  const ref = resolve(zones, N('a.sub.example.com.'), TYPE.A, true);
  tt.same(
    ref.authority.map((s) => s.type),
    [TYPE.NS, TYPE.DS],
    'referral to a secure delegation: NS (unsigned) and the signed DS',
  );
  tt.notOk(resolve(zones, N('www.example.com.'), TYPE.A, false).dnssec, 'DO=0: no DNSSEC records');
  tt.end();
});

t.test('a broken NSEC chain and a zone without one are reported', (tt) => {
  const broken = build(ZONE.replace('old 180 NSEC sub.example.com.', 'old 180 NSEC www.example.com.'));
  const w = broken.diagnostics.find((d) => d.code === 'POPDNS_W_NSEC_CHAIN');
  tt.match(
    w?.message,
    /broken at old\.example\.com\.: its next name is www\.example\.com\., but the next owner is sub\.example\.com\./,
  );
  const none = build(
    ZONE.split('\n')
      .filter((l) => !/ NSEC /.test(l))
      .join('\n'),
  );
  tt.ok(
    none.diagnostics.some((d) => d.code === 'POPDNS_W_NO_DENIAL'),
    'no NSEC or NSEC3: a warning',
  );
  tt.ok(none.zone?.dnssec, 'still served as signed');
  const unsigned = build(ZONE.replace(/^@ 3600 DNSKEY .*$/m, ''));
  tt.notOk(unsigned.zone?.dnssec, 'RRSIGs without a DNSKEY: served unsigned');
  tt.ok(
    unsigned.diagnostics.some((d) => d.code === 'POPDNS_W_RRSIG_NO_DNSKEY'),
    'and said so',
  );
  tt.end();
});

t.test('popdns check: at most ten warnings of one kind are named, then a count', (tt) => {
  const dir = tmpDir(tt);
  const many = Array.from(
    { length: 15 },
    (_, i) => `h${i} A 192.0.2.${i}\nh${i} ${sig('A', 3, '20200101000000')}`,
  );
  writeFileSync(join(dir, 'example.com.zone'), `${ZONE}${many.join('\n')}\n`);
  const s = checkZones([dir]);
  const expired = s.lines.filter((l) => l.includes('[POPDNS_W_RRSIG_EXPIRED]'));
  tt.equal(expired.length, 11, 'ten named, one line for the rest');
  tt.ok(
    expired.some((l) => /: warning: 6 more with the same problem/.test(l)),
    '16 expired: 6 not listed',
  );
  tt.ok(
    s.lines.some((l) =>
      /example\.com\. serial 1, \d+ records, pre-signed \(NSEC\), signatures valid until 2020-01-01T00:00:00Z$/.test(
        l,
      ),
    ),
    'the zone line says pre-signed, the denial, and the earliest expiry',
  );
  tt.equal(s.errors, 0);
  tt.end();
});

t.test('ldns-signzone NSEC3: the chain comes from the file, out of the name tree', (tt) => {
  if (!needTool(tt, 'ldns-signzone', 'ldnsutils')) return tt.end();
  const dir = tmpDir(tt);
  const text = `$ORIGIN example.org.\n$TTL 300\n@ SOA ns hostmaster 1 3600 900 604800 300\n@ NS ns\nns A 192.0.2.1\na.b.c A 192.0.2.2\n`;
  writeFileSync(join(dir, 'z'), text);
  const key = spawnSync('ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', 'example.org'], {
    cwd: dir,
    encoding: 'utf8',
  }).stdout.trim();
  const r = spawnSync(
    'ldns-signzone',
    ['-n', '-s', 'aabbccdd', '-t', '3', '-o', 'example.org', '-f', 'example.org.zone', 'z', key],
    { cwd: dir, encoding: 'utf8' },
  );
  tt.equal(r.status, 0, r.stderr);
  const signed = readFileSync(join(dir, 'example.org.zone'), 'utf8');
  const owners = signed
    .split('\n')
    .filter((l) => /\sIN\s+NSEC3\s/.test(l))
    .map((l) => l.split(/\s/)[0]!.toLowerCase());
  const res = loadZoneFile(join(dir, 'example.org.zone'));
  const zone = res.zone as Zone;
  tt.ok(zone?.dnssec?.nsec3, 'NSEC3 chain');
  const n3 = zone.dnssec!.nsec3!;
  tt.equal(n3.iterations, 3, 'iterations from the NSEC3PARAM');
  tt.equal(Buffer.from(n3.salt).toString('hex'), 'aabbccdd', 'salt from the NSEC3PARAM');
  tt.same(
    n3.chain
      .toArray()
      .map((e) => nameToText(e.nsec3.owner).toLowerCase())
      .sort(),
    owners.sort(),
    'every NSEC3 of the file',
  );
  tt.notOk(
    [...zone.apex.children.values()].some((c) => c.rrsets.has(TYPE.NSEC3)),
    'none left in the tree',
  );
  tt.ok(
    n3.chain.toArray().every((e) => e.nsec3.sigs?.length === 1),
    'each NSEC3 with its RRSIG',
  );
  // apex, ns, a.b.c and the empty non-terminals b.c and c (RFC 5155 §7.1): five names.
  tt.equal(n3.chain.length, 5);
  for (const name of ['example.org.', 'c.example.org.', 'b.c.example.org.', 'a.b.c.example.org.']) {
    const h = base32hexEncode(nsec3Hash(N(name), Uint8Array.from([0xaa, 0xbb, 0xcc, 0xdd]), 3)).toLowerCase();
    tt.ok(owners.includes(`${h}.example.org.`), `ldns hashed ${name} as RFC 5155 §5 says`);
    tt.ok(denialNsec3(zone, N(name)).match, `${name}: its NSEC3 is found`);
  }
  tt.notOk(
    res.diagnostics.some((d) => d.severity === 'error' || d.code.startsWith('POPDNS_W_NSEC3')),
    'no problems',
  );
  tt.end();
});

t.test(
  'the server: keys for a pre-signed zone refuse it; dnssec: false or no keys serve it as it is',
  (tt) => {
    const dir = tmpDir(tt);
    const zones = join(dir, 'zones');
    const keys = join(dir, 'keys');
    mkdirSync(zones);
    mkdirSync(keys);
    writeFileSync(join(zones, 'example.com.zone'), ZONE.replace(/2026123/g, '2099123'));
    const errors: string[] = [];
    const cfg = defaultConfig('test', 1);
    cfg.zones = zones;
    cfg.keys = keys;
    cfg.metrics = null;
    const log = { info: () => {}, error: (m: string) => errors.push(m) };
    let server = new PopdnsServer(cfg, log);
    tt.equal(server.loadZones().failed, 0, 'no keys: loads');
    tt.ok(server.handler.zones.find(N('example.com.'))?.dnssec?.presigned, 'served as it is');
    tt.ok(
      errors.some((e) => e.includes('[POPDNS_W_RRSIG_EXPIRED]')),
      'the log names the expired signature',
    );

    writeKeyFiles(keys, generateKey(N('example.com.'), ALGORITHM.ECDSAP256SHA256, 'csk'));
    errors.length = 0;
    tt.equal(server.reload().failed, 1, 'keys appear: the new version is refused');
    tt.ok(
      errors.some((e) => e.includes('[POPDNS_E_PRESIGNED_KEYS]') && e.includes('already signed')),
      'with a clear error',
    );
    tt.ok(
      server.handler.zones.find(N('example.com.'))?.dnssec?.presigned,
      'the previous version keeps serving',
    );

    server = new PopdnsServer(cfg, log);
    tt.equal(server.loadZones().failed, 1, 'a fresh start with keys: refused too');
    cfg.dnssec.set('example.com.', false);
    server = new PopdnsServer(cfg, log);
    tt.equal(server.loadZones().failed, 0, 'dnssec: false (popdns never signs it): loads');
    tt.ok(server.handler.zones.find(N('example.com.'))?.dnssec?.presigned, 'and serves its own signatures');

    // The signer ships a file without signatures: never unsigned by accident.
    cfg.dnssec.delete('example.com.');
    rmSync(keys, { recursive: true });
    server = new PopdnsServer(cfg, log);
    tt.equal(server.loadZones().failed, 0);
    const unsigned = ZONE.split('\n').filter((l) => !/ (RRSIG|NSEC|DNSKEY) /.test(l));
    writeFileSync(join(zones, 'example.com.zone'), unsigned.join('\n'));
    errors.length = 0;
    tt.equal(server.reload().failed, 1, 'an unsigned version of a pre-signed zone is refused');
    tt.ok(errors.some((e) => e.includes('was served pre-signed') && e.includes('[POPDNS_E_KEYS_MISSING]')));
    tt.ok(
      server.handler.zones.find(N('example.com.'))?.dnssec?.presigned,
      'the signed version keeps serving',
    );
    tt.end();
  },
);

t.test('popdns signs a pre-signed zone anew, not on top of the old signatures', (tt) => {
  const zone = build(ZONE).zone!;
  const key = generateKey(N('example.com.'), ALGORITHM.ECDSAP256SHA256, 'csk');
  signZone(zone, [key], makePolicy({ denial: 'nsec3' }), { now: NOW });
  tt.equal(zone.dnssec?.presigned, false);
  tt.ok(zone.dnssec?.nsec3, 'its own chain');
  tt.equal(zone.dnssec?.nsecChain, null, 'the old NSEC chain is gone');
  const www = findNode(zone, N('www.example.com.'))!;
  tt.equal(www.rrsets.get(TYPE.A)?.sigs?.length, 1, 'one signature: the new one');
  tt.notOk(www.rrsets.has(TYPE.NSEC), 'no NSEC left over');
  tt.end();
});
