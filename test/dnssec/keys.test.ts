/**
 * DNSSEC keys and signatures. Expected values are copied from the RFC examples (RFC 4034 §5.4,
 * RFC 5702 §6.1, RFC 6605 §6.1, RFC 8080 §6.1 as corrected by erratum 4935), not from our output; BIND's
 * dnssec-keygen / dnssec-dsfromkey / dnssec-signzone / dnssec-verify check interoperability both ways.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  ALGORITHM,
  type Algorithm,
  canonicalRdata,
  canonicalRRsetWire,
  type DnssecKey,
  dsFromDnskey,
  generateKey,
  keyFileBase,
  keyTag,
  loadKeys,
  parseRrsig,
  type RRset,
  rrsigLabels,
  signRRset,
  verifyRRset,
  writeKeyFiles,
} from '../../src/dnssec/keys.js';
import { TYPE, typeToText } from '../../src/wire/constants.js';
import { type Name, nameFromText, nameKey, nameToText } from '../../src/wire/name.js';
import { rdataFromText, rdataToText, tokenize } from '../../src/wire/rdata.js';
import { parseZoneFile } from '../../src/zone/load.js';
import { needTool, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const N = (s: string): Name => nameFromText(s);
const esc = (s: string): string => s.replace(/[.+*]/g, '\\$&');
const rd = (type: number, text: string, origin = '.'): Uint8Array =>
  rdataFromText(type, tokenize(text), nameFromText(origin));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const NOW = 1_800_000_000;
const TIMES = { inception: NOW - 3600, expiration: NOW + 14 * 86400 };

/** Writes a key pair the way the RFCs print it (BIND Private-key-format v1.2) and loads it back. */
function loadRfcKey(dir: string, zone: string, dnskeyText: string, privateText: string): DnssecKey {
  const dnskey = rd(TYPE.DNSKEY, dnskeyText);
  const base = keyFileBase(N(zone), dnskey[3]!, keyTag(dnskey));
  writeFileSync(join(dir, `${base}.key`), `${zone} 3600 IN DNSKEY ${dnskeyText}\n`);
  writeFileSync(join(dir, `${base}.private`), privateText);
  const { keys, errors } = loadKeys(dir, N(zone));
  if (errors.length > 0) throw errors[0];
  const key = keys.find((k) => k.file === base);
  if (!key) throw new Error(`${base} not loaded`);
  return key;
}

t.test('RFC 4034 §5.4: key tag 60485 and the SHA-1 DS of dskey.example.com', (tt) => {
  const dnskey = rd(
    TYPE.DNSKEY,
    `256 3 5 AQOeiiR0GOMYkDshWoSKz9Xz fwJr1AYtsmx3TGkJaNXVbfi/ 2pHm822aJ5iI9BMzNXxeYCmZ
     DRD99WYwYqUSdjMmmAphXdvx egXd/M5+X7OrzKBaMbCVdFLU Uh6DhweJBjEVv5f2wwjM9Xzc
     nOf+EPbtG9DMBmADjFDc2w/r ljwvFw==`,
  );
  tt.equal(keyTag(dnskey), 60485, '"; key id = 60485"');
  tt.equal(
    rdataToText(TYPE.DS, dsFromDnskey(N('dskey.example.com.'), dnskey, 1)),
    '60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118',
  );
  tt.equal(
    rdataToText(TYPE.DS, dsFromDnskey(N('DSKEY.Example.COM.'), dnskey, 1)),
    '60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118',
    'the owner is lower-cased before hashing',
  );
  tt.throws(() => dsFromDnskey(N('dskey.example.com.'), dnskey, 3), /\[POPDNS_E_KEY\]/);
  tt.end();
});

t.test('RFC 5702 §6.1: RSA/SHA-256 key tag 9033 and its RRSIG over www.example.net A', (tt) => {
  const dnskey = rd(
    TYPE.DNSKEY,
    '256 3 8 AwEAAcFcGsaxxdgiuuGmCkVI my4h99CqT7jwY3pexPGcnUFtR2Fh36BponcwtkZ4cAgtvd4Qs8P kxUdp6p/DlUmObdk=',
  );
  tt.equal(keyTag(dnskey), 9033, '";{id = 9033 (zsk), size = 512b}"');
  const rrsig = rd(
    TYPE.RRSIG,
    `A 8 3 3600 20300101000000 20000101000000 9033 example.net. kRCOH6u7l0QGy9qpC9
     l1sLncJcOKFLJ7GhiUOibu4teYp5VE9RncriShZNz85mwlMgNEa cFYK/lPtPiVYP4bwg==`,
  );
  const a: RRset = {
    owner: N('www.example.net.'),
    type: TYPE.A,
    ttl: 3600,
    rdatas: [rd(TYPE.A, '192.0.2.91')],
  };
  tt.ok(verifyRRset(a, rrsig, dnskey), 'the published signature verifies');
  tt.ok(verifyRRset({ ...a, owner: N('WWW.Example.NET.'), ttl: 60 }, rrsig, dnskey), 'any case, any TTL');
  tt.notOk(verifyRRset({ ...a, rdatas: [rd(TYPE.A, '192.0.2.92')] }, rrsig, dnskey), 'other data fails');
  tt.ok(verifyRRset(a, rrsig, dnskey, { now: Date.UTC(2026, 0, 1) / 1000 }), 'valid in 2026');
  tt.notOk(verifyRRset(a, rrsig, dnskey, { now: Date.UTC(2031, 0, 1) / 1000 }), 'expired in 2031');
  tt.end();
});

t.test('RFC 6605 §6.1: ECDSA P-256 key tag 55648, DS, RRSIG, and the published private key', (tt) => {
  const dir = tmpDir(tt);
  const dnskeyText =
    '257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edb krSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==';
  const dnskey = rd(TYPE.DNSKEY, dnskeyText);
  tt.equal(keyTag(dnskey), 55648);
  tt.equal(
    hex(dsFromDnskey(N('example.net.'), dnskey)),
    hex(rd(TYPE.DS, '55648 13 2 b4c8c1fe2e7477127b27115656ad6256f424625bf5c1 e2770ce6d6e37df61d17')),
  );
  const a: RRset = {
    owner: N('www.example.net.'),
    type: TYPE.A,
    ttl: 3600,
    rdatas: [rd(TYPE.A, '192.0.2.1')],
  };
  const published = rd(
    TYPE.RRSIG,
    `A 13 3 3600 20100909100439 20100812100439 55648 example.net.
     qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXA yGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw==`,
  );
  tt.ok(verifyRRset(a, published, dnskey), 'the published signature verifies');
  const key = loadRfcKey(
    dir,
    'example.net.',
    dnskeyText,
    'Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=\n',
  );
  tt.equal(key.tag, 55648);
  tt.equal(key.role, 'csk', 'a lone SEP key is a CSK');
  const ours = signRRset(a, key, { inception: 1281607479, expiration: 1284026679 });
  tt.equal(
    hex(ours.subarray(0, parseRrsig(ours).headLength)),
    hex(published.subarray(0, parseRrsig(published).headLength)),
    'same RRSIG fields as the RFC',
  );
  tt.equal(parseRrsig(ours).signature.length, 64, 'r || s, 64 octets');
  tt.ok(verifyRRset(a, ours, dnskey), 'our signature with the RFC key verifies');
  tt.end();
});

// RFC 8080 §6.1; the RRSIGs as corrected by erratum 4935 (labels 2; the printed signatures were wrong).
const RFC8080 = [
  {
    priv: 'ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=',
    dnskey: '257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=',
    ds: '3613 15 2 3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79 a304b',
    rrsig:
      'MX 15 2 3600 1440021600 1438207200 3613 example.com. oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3f x8A4M3e23mRZ9VrbpMngwcrqNAg==',
  },
  {
    priv: 'DSSF3o0s0f+ElWzj9E/Osxw8hLpk55chkmx0LYN5WiY=',
    dnskey: '257 3 15 zPnZ/QwEe7S8C5SPz2OfS5RR40ATk2/rYnE9xHIEijs=',
    ds: '35217 15 2 401781b934e392de492ec77ae2e15d70f6575a1c0bc59c5275c04ebe80c 6614c',
    rrsig:
      'MX 15 2 3600 1440021600 1438207200 35217 example.com. zXQ0bkYgQTEFyfLyi9QoiY6D8ZdYo4wyUhVioYZXFdT410QPRITQSqJSnzQ oSm5poJ7gD7AQR0O7KuI5k2pcBg==',
  },
];

t.test('RFC 8080 §6.1: Ed25519 key tags, DS, and byte-identical (deterministic) signatures', (tt) => {
  const dir = tmpDir(tt);
  const mx: RRset = {
    owner: N('example.com.'),
    type: TYPE.MX,
    ttl: 3600,
    rdatas: [rd(TYPE.MX, '10 mail.example.com.')],
  };
  for (const ex of RFC8080) {
    const dnskey = rd(TYPE.DNSKEY, ex.dnskey);
    const ds = rd(TYPE.DS, ex.ds);
    tt.equal(keyTag(dnskey), (ds[0]! << 8) | ds[1]!, `key tag ${(ds[0]! << 8) | ds[1]!}`);
    tt.equal(hex(dsFromDnskey(N('example.com.'), dnskey)), hex(ds), 'DS');
    const published = rd(TYPE.RRSIG, ex.rrsig);
    tt.ok(verifyRRset(mx, published, dnskey), 'the published signature verifies');
    const key = loadRfcKey(
      dir,
      'example.com.',
      ex.dnskey,
      `Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\nPrivateKey: ${ex.priv}\n`,
    );
    const ours = signRRset(mx, key, { inception: 1438207200, expiration: 1440021600 });
    tt.equal(Buffer.from(ours).toString('base64'), Buffer.from(published).toString('base64'), 'same RRSIG');
  }
  tt.end();
});

const ALGS: Algorithm[] = [ALGORITHM.ECDSAP256SHA256, ALGORITHM.ED25519, ALGORITHM.RSASHA256];

t.test('generate, sign and verify with each algorithm', (tt) => {
  const zone = N('example.com.');
  const txt: RRset = {
    owner: N('www.example.com.'),
    type: TYPE.TXT,
    ttl: 300,
    rdatas: [rd(TYPE.TXT, '"hello"'), rd(TYPE.TXT, '"world"')],
  };
  const sizes = { 13: [64, 64], 15: [32, 64], 8: [260, 256] } as const;
  for (const alg of ALGS) {
    const key = generateKey(zone, alg, 'csk');
    tt.equal(key.flags, 257);
    tt.equal(key.dnskey[2], 3, 'protocol 3');
    tt.equal(key.dnskey[3], alg);
    tt.equal(key.tag, keyTag(key.dnskey));
    tt.equal(key.dnskey.length - 4, sizes[alg][0], `${alg}: public key length`);
    if (alg === ALGORITHM.RSASHA256)
      tt.equal(hex(key.dnskey.subarray(4, 8)), '03010001', 'RFC 3110: e = 65537');
    const sig = signRRset(txt, key, TIMES);
    const f = parseRrsig(sig);
    tt.equal(f.typeCovered, TYPE.TXT);
    tt.equal(f.algorithm, alg);
    tt.equal(f.labels, 3);
    tt.equal(f.originalTtl, 300);
    tt.equal(f.inception, TIMES.inception);
    tt.equal(f.expiration, TIMES.expiration);
    tt.equal(f.keyTag, key.tag);
    tt.equal(nameToText(f.signer), 'example.com.');
    tt.equal(f.signature.length, sizes[alg][1], `${alg}: signature length`);
    tt.ok(verifyRRset(txt, sig, key.dnskey, { now: NOW }), `${alg}: verifies`);
    tt.notOk(verifyRRset(txt, sig, key.dnskey, { now: TIMES.expiration + 1 }), 'not after expiration');
    tt.notOk(verifyRRset(txt, sig, key.dnskey, { now: TIMES.inception - 1 }), 'not before inception');
    tt.notOk(verifyRRset({ ...txt, rdatas: [txt.rdatas[0]!] }, sig, key.dnskey), 'a missing RR fails');
    tt.notOk(verifyRRset({ ...txt, owner: N('ww.example.com.') }, sig, key.dnskey), 'another owner fails');
    const bad = Uint8Array.from(sig);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
    tt.notOk(verifyRRset(txt, bad, key.dnskey), 'a flipped bit fails');
    tt.notOk(verifyRRset(txt, sig, generateKey(zone, alg, 'csk').dnskey), 'another key fails');
    tt.equal(generateKey(zone, alg, 'zsk').flags, 256, 'ZSK flags 256');
    tt.equal(generateKey(zone, alg, 'ksk').flags, 257, 'KSK flags 257');
  }
  tt.throws(() => signRRset({ ...txt, owner: N('www.example.org.') }, generateKey(zone, 13, 'csk'), TIMES), {
    message: /not in zone example\.com\..*\[POPDNS_E_SIGN\]/,
  });
  tt.end();
});

t.test('canonical form: case, order, duplicates, wildcards (RFC 4034 §3.1.3, §6)', (tt) => {
  tt.equal(rrsigLabels(N('www.example.com.')), 3);
  tt.equal(rrsigLabels(N('*.example.com.')), 2, 'a leading * is not counted');
  tt.equal(rrsigLabels(N('.')), 0, 'the root has none');
  const o = 'example.com.';
  const lower = (type: number, text: string): string =>
    rdataToText(type, canonicalRdata(type, rd(type, text, o)));
  tt.equal(lower(TYPE.MX, '10 MAIL.Example.COM.'), '10 mail.example.com.');
  tt.equal(lower(TYPE.NS, 'NS1.EXAMPLE.com.'), 'ns1.example.com.');
  tt.equal(lower(TYPE.SOA, 'NS1 HostMaster 1 2 3 4 5'), 'ns1.example.com. hostmaster.example.com. 1 2 3 4 5');
  tt.equal(lower(TYPE.SRV, '0 5 5060 SIP.Example.com.'), '0 5 5060 sip.example.com.');
  tt.equal(lower(TYPE.NAPTR, '1 2 "U" "E2U" "!^A$!B!" X.Example.'), '1 2 "U" "E2U" "!^A$!B!" x.example.');
  tt.equal(lower(TYPE.RP, 'Mbox.X. TXT.X.'), 'mbox.x. txt.x.');
  tt.equal(lower(TYPE.CNAME, 'WWW.X.'), 'www.x.');
  tt.equal(lower(TYPE.DNAME, 'WWW.X.'), 'www.x.');
  tt.equal(lower(TYPE.PTR, 'WWW.X.'), 'www.x.');
  tt.equal(
    lower(TYPE.RRSIG, 'A 13 2 300 20300101000000 20200101000000 1 EXAMPLE.com. AAAA'),
    'A 13 2 300 20300101000000 20200101000000 1 example.com. AAAA',
  );
  tt.equal(lower(TYPE.TXT, '"ABC"'), '"ABC"', 'TXT is data, not a name');
  tt.equal(lower(TYPE.HINFO, '"INTEL" "LINUX"'), '"INTEL" "LINUX"');
  tt.equal(lower(TYPE.SVCB, '1 SVC.Example.'), '1 SVC.Example.', 'SVCB is not in the RFC 4034 list');
  tt.equal(lower(TYPE.NSEC, 'Mail.Example.com. A RRSIG'), 'Mail.Example.com. A RRSIG', 'NSEC: RFC 6840 §5.1');
  // Types popdns keeps as RFC 3597 data are still canonicalized: AFSDB (18), KX (36), MINFO (14), PX (26).
  const afsdb = Uint8Array.from([0, 1, 3, 0x41, 0x42, 0x43, 1, 0x58, 0]);
  tt.equal(hex(canonicalRdata(18, afsdb)), hex(Uint8Array.from([0, 1, 3, 0x61, 0x62, 0x63, 1, 0x78, 0])));
  tt.equal(hex(canonicalRdata(36, afsdb)), hex(canonicalRdata(18, afsdb)));
  const minfo = Uint8Array.from([1, 0x41, 0, 1, 0x42, 0]);
  tt.equal(hex(canonicalRdata(14, minfo)), '016100016200');
  tt.equal(hex(canonicalRdata(26, Uint8Array.from([0, 9, 1, 0x41, 0, 1, 0x42, 0]))), '0009016100016200');
  tt.equal(hex(canonicalRdata(99, afsdb)), hex(afsdb), 'an unknown type is left alone');

  // The wire form: sorted RDATA, duplicates once, the original TTL, the lower-cased owner.
  const set: RRset = {
    owner: N('WWW.Example.com.'),
    type: TYPE.A,
    ttl: 5,
    rdatas: [rd(TYPE.A, '192.0.2.2'), rd(TYPE.A, '192.0.2.1'), rd(TYPE.A, '192.0.2.2')],
  };
  const owner = '03777777076578616d706c6503636f6d00';
  tt.equal(
    hex(canonicalRRsetWire(set, 3600, 3)),
    `${owner}0001000100000e100004c0000201${owner}0001000100000e100004c0000202`,
  );
  tt.equal(
    hex(canonicalRRsetWire({ ...set, owner: N('a.B.example.com.') }, 60, 3)).slice(0, 34),
    '012a0162076578616d706c6503636f6d00',
    'labels < owner labels: the owner becomes *.<the rightmost labels> (RFC 4035 §5.3.2)',
  );
  // Longer RDATA that shares a prefix sorts after the shorter one (RFC 4034 §6.3).
  const txt = canonicalRRsetWire(
    { owner: N('x.'), type: TYPE.TXT, ttl: 1, rdatas: [rd(TYPE.TXT, '"ab"'), rd(TYPE.TXT, '"a"')] },
    1,
    1,
  );
  tt.ok(hex(txt).indexOf('000201610') < hex(txt).indexOf('0003026162'), '"a" before "ab"');

  // A signature over one spelling verifies over any other: order, case and duplicates do not matter.
  const key = generateKey(N('example.com.'), ALGORITHM.ED25519, 'csk');
  const mx: RRset = {
    owner: N('Mail.Example.com.'),
    type: TYPE.MX,
    ttl: 300,
    rdatas: [rd(TYPE.MX, '20 B.EXAMPLE.com.'), rd(TYPE.MX, '10 a.example.com.')],
  };
  const sig = signRRset(mx, key, TIMES);
  const respelled: RRset = {
    owner: N('mail.example.COM.'),
    type: TYPE.MX,
    ttl: 300,
    rdatas: [
      rd(TYPE.MX, '10 A.example.com.'),
      rd(TYPE.MX, '20 b.example.com.'),
      rd(TYPE.MX, '10 a.example.com.'),
    ],
  };
  tt.ok(verifyRRset(respelled, sig, key.dnskey));
  // Wildcards: signed at *.example.com (labels 2), checked on an expanded name.
  const wild = signRRset(
    { owner: N('*.example.com.'), type: TYPE.A, ttl: 60, rdatas: [rd(TYPE.A, '192.0.2.9')] },
    key,
    TIMES,
  );
  tt.equal(parseRrsig(wild).labels, 2);
  tt.ok(
    verifyRRset(
      { owner: N('a.b.example.com.'), type: TYPE.A, ttl: 60, rdatas: [rd(TYPE.A, '192.0.2.9')] },
      wild,
      key.dnskey,
    ),
    'a wildcard expansion verifies',
  );
  tt.end();
});

t.test('key files: write, read back, roles, modes, and clear errors', (tt) => {
  const dir = tmpDir(tt);
  const zone = N('example.com.');
  const written = ALGS.map((alg) => {
    const key = generateKey(zone, alg, 'csk');
    return { key, base: writeKeyFiles(dir, key) };
  });
  for (const { key, base } of written) {
    tt.equal(base, keyFileBase(zone, key.algorithm, key.tag));
    tt.match(base, /^Kexample\.com\.\+0(08|13|15)\+\d{5}$/);
    tt.equal(statSync(join(dir, `${base}.private`)).mode & 0o777, 0o600, '.private is 0600');
    const priv = readFileSync(join(dir, `${base}.private`), 'utf8');
    tt.match(
      priv,
      /^Private-key-format: v1\.3\nAlgorithm: (8 \(RSASHA256\)|13 \(ECDSAP256SHA256\)|15 \(ED25519\))\n/,
    );
    tt.match(priv, /\nCreated: \d{14}\nPublish: \d{14}\nActivate: \d{14}\n$/);
    if (key.algorithm === ALGORITHM.RSASHA256) {
      for (const f of [
        'Modulus',
        'PublicExponent: AQAB',
        'PrivateExponent',
        'Prime1',
        'Prime2',
        'Exponent1',
        'Exponent2',
        'Coefficient',
      ]) {
        tt.ok(priv.includes(`\n${f}`), f);
      }
    } else tt.match(priv, /\nPrivateKey: [A-Za-z0-9+/]{43}=\n/);
    const pub = readFileSync(join(dir, `${base}.key`), 'utf8');
    tt.match(pub, new RegExp(`^; This is a key-signing key, keyid ${key.tag}, for example\\.com\\.\\n`));
    tt.match(pub, new RegExp(`\\nexample\\.com\\. IN DNSKEY 257 3 ${key.algorithm} [A-Za-z0-9+/=]+\\n$`));
    tt.throws(() => writeKeyFiles(dir, key), /EEXIST/, 'never overwrites');
  }
  const loaded = loadKeys(dir, N('EXAMPLE.com.'));
  tt.same(loaded.errors, []);
  tt.equal(loaded.keys.length, 3);
  for (const k of loaded.keys) {
    const orig = written.find((w) => w.key.tag === k.tag && w.key.algorithm === k.algorithm)!.key;
    tt.equal(hex(k.dnskey), hex(orig.dnskey), `${k.file}: same DNSKEY`);
    tt.equal(k.role, 'csk', 'one SEP key per algorithm and no ZSK: CSK');
    tt.same(k.timing, orig.timing);
    const a: RRset = { owner: N('example.com.'), type: TYPE.A, ttl: 1, rdatas: [rd(TYPE.A, '192.0.2.1')] };
    tt.ok(verifyRRset(a, signRRset(a, k, TIMES), orig.dnskey), `${k.file}: the loaded private key signs`);
  }
  tt.same(loadKeys(dir, N('example.org.')).keys, [], 'other zones: no keys');
  tt.same(loadKeys(join(dir, 'nope'), zone), { keys: [], errors: [] }, 'no directory: no keys');

  // KSK + ZSK of one algorithm.
  const dir2 = tmpDir(tt);
  writeKeyFiles(dir2, generateKey(zone, ALGORITHM.ED25519, 'ksk'));
  writeKeyFiles(dir2, generateKey(zone, ALGORITHM.ED25519, 'zsk'));
  tt.same(
    loadKeys(dir2, zone)
      .keys.map((k) => k.role)
      .sort(),
    ['ksk', 'zsk'],
    'a SEP key next to a ZSK is a KSK',
  );

  // Broken files: each is reported with its file name; the good key still loads.
  const dir3 = tmpDir(tt);
  const good = generateKey(zone, ALGORITHM.ECDSAP256SHA256, 'csk');
  writeKeyFiles(dir3, good);
  const other = generateKey(zone, ALGORITHM.ECDSAP256SHA256, 'csk');
  const otherBase = writeKeyFiles(dir3, other);
  // .private of another key of the same algorithm.
  const third = generateKey(zone, ALGORITHM.ECDSAP256SHA256, 'csk');
  const thirdDir = tmpDir(tt);
  const thirdBase = writeKeyFiles(thirdDir, third);
  writeFileSync(join(dir3, `${otherBase}.private`), readFileSync(join(thirdDir, `${thirdBase}.private`)));
  // A .key without .private, a renamed file, garbage, an orphan .private.
  const lonely = generateKey(zone, ALGORITHM.ED25519, 'zsk');
  const lonelyBase = keyFileBase(zone, 15, lonely.tag);
  writeFileSync(
    join(dir3, `${lonelyBase}.key`),
    `example.com. IN DNSKEY ${rdataToText(TYPE.DNSKEY, lonely.dnskey)}\n`,
  );
  writeFileSync(
    join(dir3, 'Kexample.com.+015+00001.key'),
    `example.com. IN DNSKEY ${rdataToText(TYPE.DNSKEY, lonely.dnskey)}\n`,
  );
  writeFileSync(join(dir3, 'Kexample.com.+015+00001.private'), 'Private-key-format: v1.3\n');
  writeFileSync(join(dir3, 'Kexample.com.+013+00002.key'), 'example.com. IN DNSKEY 257 3 13 !!!\n');
  writeFileSync(join(dir3, 'Kexample.com.+013+00002.private'), 'x\n');
  writeFileSync(join(dir3, 'Kexample.com.+013+00003.private'), 'Private-key-format: v1.3\n');
  writeFileSync(join(dir3, 'Kexample.com.+013+00004.key'), 'example.org. IN DNSKEY 257 3 13 AAAA\n');
  writeFileSync(join(dir3, 'Kexample.com.+013+00004.private'), 'x\n');
  writeFileSync(join(dir3, 'README'), 'not a key\n');
  const res = loadKeys(dir3, zone);
  tt.same(
    res.keys.map((k) => k.tag),
    [good.tag],
    'only the good key loads',
  );
  const msgs = res.errors.map((e) => e.message);
  tt.equal(msgs.length, 6, msgs.join('\n'));
  for (const m of msgs) tt.match(m, /\[POPDNS_E_KEY\]$/);
  const has = (re: RegExp, what: string): void => {
    tt.ok(
      msgs.some((m) => re.test(m)),
      what,
    );
  };
  has(
    new RegExp(
      `${esc(otherBase)}\\.private: the private key does not match the public key in ${esc(otherBase)}\\.key`,
    ),
    'mismatched private key',
  );
  has(new RegExp(`${esc(lonelyBase)}\\.private: cannot read: ENOENT`), 'missing .private');
  has(/Kexample\.com\.\+015\+00001\.key: the file name does not match the key inside/, 'renamed files');
  has(/Kexample\.com\.\+013\+00002\.key: bad DNSKEY/, 'garbage in the .key');
  has(/Kexample\.com\.\+013\+00003\.private: has no Kexample\.com\.\+013\+00003\.key/, 'orphan .private');
  has(/Kexample\.com\.\+013\+00004\.key: the key belongs to example\.org\./, 'key of another zone');
  tt.end();
});

/** dnssec-dsfromkey -2 FILE → the DS RDATA text (`tag alg 2 HEX`). */
function bindDs(file: string): string {
  const out = spawnSync('dnssec-dsfromkey', ['-2', file], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`dnssec-dsfromkey ${file}: ${out.stderr}`);
  const m = /\sDS\s+(\d+ \d+ 2 [0-9A-F]+)\s*$/i.exec(out.stdout);
  if (!m) throw new Error(`unexpected dnssec-dsfromkey output: ${out.stdout}`);
  return m[1]!.toUpperCase();
}

t.test('BIND → popdns: dnssec-keygen keys load with the same key tag and DS', (tt) => {
  if (!needTool(tt, 'dnssec-keygen', 'bind9-utils')) return tt.end();
  const dir = tmpDir(tt);
  const made: string[] = [];
  for (const args of [
    ['-a', 'ECDSAP256SHA256'],
    ['-a', 'ED25519'],
    ['-a', 'ECDSAP256SHA256', '-f', 'KSK'],
    ['-a', 'RSASHA256', '-b', '2048'],
  ]) {
    const r = spawnSync('dnssec-keygen', [...args, '-K', dir, 'example.com'], { encoding: 'utf8' });
    tt.equal(r.status, 0, r.stderr);
    made.push(r.stdout.trim());
  }
  const { keys, errors } = loadKeys(dir, N('example.com.'));
  tt.same(errors, []);
  tt.equal(keys.length, 4);
  for (const base of made) {
    const k = keys.find((x) => x.file === base);
    if (!tt.ok(k, `${base} loaded`) || !k) continue;
    tt.equal(base, keyFileBase(N('example.com.'), k.algorithm, k.tag), 'same key tag as BIND');
    tt.equal(
      rdataToText(TYPE.DS, dsFromDnskey(N('example.com.'), k.dnskey)),
      bindDs(join(dir, `${base}.key`)),
      'same DS',
    );
    const a: RRset = {
      owner: N('www.example.com.'),
      type: TYPE.A,
      ttl: 60,
      rdatas: [rd(TYPE.A, '192.0.2.1')],
    };
    tt.ok(verifyRRset(a, signRRset(a, k, TIMES), k.dnskey), 'the BIND private key signs in popdns');
  }
  tt.same(
    keys
      .filter((k) => k.algorithm === ALGORITHM.ECDSAP256SHA256)
      .map((k) => k.role)
      .sort(),
    ['ksk', 'zsk'],
  );
  tt.end();
});

const ZONE = `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 1 3600 900 604800 60
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.80
www A 192.0.2.81
Mail MX 10 MAIL.Example.com.
*.wild TXT "wildcard"
`;

/** The RRsets of a parsed zone, grouped by owner and type (RRSIGs by type covered). */
function rrsets(path: string): {
  sets: Map<string, RRset>;
  sigs: { key: string; rdata: Uint8Array }[];
  dnskeys: Uint8Array[];
} {
  // dnssec-signzone writes absolute names and no $ORIGIN, to a file not named after the zone.
  const parsed = parseZoneFile(path, { origin: nameFromText('example.com.') });
  const errs = parsed.diagnostics.filter((d) => d.severity === 'error');
  if (errs.length > 0) throw new Error(errs.map((e) => e.message).join('; '));
  const sets = new Map<string, RRset>();
  const sigs: { key: string; rdata: Uint8Array }[] = [];
  const dnskeys: Uint8Array[] = [];
  for (const r of parsed.records) {
    if (r.type === TYPE.RRSIG) {
      sigs.push({ key: `${nameKey(r.owner)}/${(r.rdata[0]! << 8) | r.rdata[1]!}`, rdata: r.rdata });
      continue;
    }
    if (r.type === TYPE.DNSKEY) dnskeys.push(r.rdata);
    const k = `${nameKey(r.owner)}/${r.type}`;
    const s = sets.get(k);
    if (s) (s.rdatas as Uint8Array[]).push(r.rdata);
    else sets.set(k, { owner: r.owner, type: r.type, ttl: r.ttl, rdatas: [r.rdata] });
  }
  return { sets, sigs, dnskeys };
}

t.test('popdns → BIND: keygen keys sign with dnssec-signzone; dnssec-verify passes', (tt) => {
  if (!needTool(tt, 'dnssec-signzone', 'bind9-utils')) return tt.end();
  const root = tmpDir(tt);
  const zonefile = join(root, 'example.com.zone');
  writeFileSync(zonefile, ZONE);
  const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8' });
  const setups: [string, string[][], string[]][] = [
    ['ecdsap256sha256 csk', [['--algorithm', 'ecdsap256sha256']], ['-z']],
    ['ed25519 csk', [['--algorithm', 'ed25519']], ['-z']],
    ['rsasha256 csk', [['--algorithm', 'rsasha256']], ['-z']],
    ['default (ecdsap256sha256 csk)', [[]], ['-z']],
    [
      'ed25519 ksk + zsk',
      [
        ['--algorithm', 'ed25519', '--role', 'ksk'],
        ['--algorithm', 'ed25519', '--role', 'zsk'],
      ],
      [],
    ],
  ];
  for (const [label, keygens, zflag] of setups) {
    const keys = join(root, label.replace(/\W+/g, '-'));
    for (const extra of keygens) {
      const r = cli('keygen', 'example.com', '--keys', keys, ...extra);
      tt.equal(r.status, 0, `${label}: keygen ${r.stderr}`);
      tt.match(r.stdout, /^Kexample\.com\.\+0(08|13|15)\+\d{5}\n$/);
    }
    const signed = join(root, `${label.replace(/\W+/g, '-')}.signed`);
    const s = spawnSync(
      'dnssec-signzone',
      ['-K', keys, '-d', root, '-o', 'example.com', '-S', ...zflag, '-f', signed, zonefile],
      {
        encoding: 'utf8',
      },
    );
    tt.equal(s.status, 0, `${label}: dnssec-signzone accepts the keys\n${s.stderr}`);
    const v = spawnSync('dnssec-verify', [...zflag, '-o', 'example.com', signed], { encoding: 'utf8' });
    tt.equal(v.status, 0, `${label}: dnssec-verify passes\n${v.stderr}`);
    // popdns ds prints what dnssec-dsfromkey prints, for the SEP keys only.
    const ds = cli('ds', 'example.com', '--keys', keys);
    tt.equal(ds.status, 0, ds.stderr);
    const sep = readdirSync(keys).filter(
      (f) => f.endsWith('.key') && / DNSKEY 257 /.test(readFileSync(join(keys, f), 'utf8')),
    );
    tt.equal(sep.length, 1);
    tt.equal(
      ds.stdout.split('\n')[0],
      `example.com. 3600 IN DS ${bindDs(join(keys, sep[0]!))}`,
      `${label}: popdns ds = dnssec-dsfromkey -2`,
    );
    tt.match(ds.stdout, /\nexample\.com\. 3600 IN DNSKEY 257 3 (8|13|15) [A-Za-z0-9+/=]+\n$/);
    // And BIND's signatures verify in popdns (canonical form of Mail/MAIL.Example, NSEC kept in case).
    const z = rrsets(signed);
    let checked = 0;
    for (const sig of z.sigs) {
      const set = z.sets.get(sig.key);
      if (!tt.ok(set, `an RRset for ${sig.key}`) || !set) continue;
      const ok = z.dnskeys.some((k) =>
        verifyRRset(set, sig.rdata, k, { now: Math.floor(Date.now() / 1000) }),
      );
      tt.ok(ok, `${label}: BIND's RRSIG ${nameToText(set.owner)} ${typeToText(set.type)} verifies in popdns`);
      checked++;
    }
    tt.ok(checked >= 10, `${label}: ${checked} signatures checked`);
  }
  tt.end();
});

t.test('popdns signatures pass dnssec-verify (and a broken one fails it)', (tt) => {
  if (!needTool(tt, 'dnssec-verify', 'bind9-utils')) return tt.end();
  const root = tmpDir(tt);
  const zone = N('example.com.');
  const origin = 'example.com.';
  const now = Math.floor(Date.now() / 1000);
  const times = { inception: now - 3600, expiration: now + 14 * 86400 };
  // The zone plus its NSEC chain, in canonical order: apex, Mail, ns1, *.wild, www (wild is empty).
  const data: [string, number, string][] = [
    ['example.com.', TYPE.SOA, 'ns1 hostmaster 1 3600 900 604800 60'],
    ['example.com.', TYPE.NS, 'ns1'],
    ['example.com.', TYPE.NSEC, 'Mail.example.com. NS SOA RRSIG NSEC DNSKEY'],
    ['Mail.example.com.', TYPE.MX, '10 MAIL.Example.com.'],
    ['Mail.example.com.', TYPE.NSEC, 'ns1.example.com. MX RRSIG NSEC'],
    ['ns1.example.com.', TYPE.A, '192.0.2.1'],
    ['ns1.example.com.', TYPE.NSEC, '*.wild.example.com. A RRSIG NSEC'],
    ['*.wild.example.com.', TYPE.TXT, '"wildcard"'],
    ['*.wild.example.com.', TYPE.NSEC, 'www.example.com. TXT RRSIG NSEC'],
    ['www.example.com.', TYPE.A, '192.0.2.80'],
    ['www.example.com.', TYPE.A, '192.0.2.81'],
    ['www.example.com.', TYPE.NSEC, 'example.com. A RRSIG NSEC'],
  ];
  for (const alg of ALGS) {
    const key = generateKey(zone, alg, 'csk');
    const sets = new Map<string, RRset>();
    for (const [owner, type, text] of data) {
      const k = `${owner}/${type}`;
      const ttl = type === TYPE.NSEC ? 60 : 300;
      const set = sets.get(k) ?? { owner: N(owner), type, ttl, rdatas: [] };
      (set.rdatas as Uint8Array[]).push(rd(type, text, origin));
      sets.set(k, set);
    }
    sets.set('dnskey', { owner: zone, type: TYPE.DNSKEY, ttl: 300, rdatas: [key.dnskey] });
    const lines: string[] = [];
    const sigs: string[] = [];
    for (const set of sets.values()) {
      const owner = nameToText(set.owner);
      for (const r of set.rdatas)
        lines.push(`${owner} ${set.ttl} IN ${typeToText(set.type)} ${rdataToText(set.type, r)}`);
      const sig = `${owner} ${set.ttl} IN RRSIG ${rdataToText(TYPE.RRSIG, signRRset(set, key, times))}`;
      lines.push(sig);
      sigs.push(sig);
    }
    const file = join(root, `signed-${alg}.zone`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const v = spawnSync('dnssec-verify', ['-z', '-o', 'example.com', file], { encoding: 'utf8' });
    tt.equal(v.status, 0, `algorithm ${alg}: dnssec-verify accepts popdns signatures\n${v.stderr}`);
    // Negative control: one bad signature (the MX's) and the same check fails.
    const mxSig = sigs.find((s) => / RRSIG MX /.test(s))!;
    const b64 = mxSig.split(' ').pop()!;
    const raw = Buffer.from(b64, 'base64');
    raw[raw.length - 2] = raw[raw.length - 2]! ^ 0x55;
    const broken = join(root, `broken-${alg}.zone`);
    writeFileSync(broken, `${lines.join('\n').replace(b64, raw.toString('base64'))}\n`);
    const vb = spawnSync('dnssec-verify', ['-z', '-o', 'example.com', broken], { encoding: 'utf8' });
    tt.not(vb.status, 0, `algorithm ${alg}: a broken signature fails dnssec-verify`);
  }
  tt.end();
});

t.test('popdns keygen / ds command line', (tt) => {
  const root = tmpDir(tt);
  const keys = join(root, 'new', 'keys');
  const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8' });
  const r = cli('keygen', 'Example.COM', '--keys', keys);
  tt.equal(r.status, 0, r.stderr);
  const base = r.stdout.trim();
  tt.match(base, /^Kexample\.com\.\+013\+\d{5}$/, 'default: ECDSAP256SHA256, name lower-cased');
  tt.equal(statSync(keys).mode & 0o777, 0o700, 'the keys directory is created 0700');
  tt.equal(statSync(join(keys, `${base}.private`)).mode & 0o777, 0o600);
  tt.match(
    readFileSync(join(keys, `${base}.key`), 'utf8'),
    / IN DNSKEY 257 3 13 /,
    'default role: csk (257)',
  );
  const z = cli('keygen', 'example.com.', '--keys', keys, '--algorithm', 'ED25519', '--role', 'zsk');
  tt.equal(z.status, 0, z.stderr);
  tt.match(readFileSync(join(keys, `${z.stdout.trim()}.key`), 'utf8'), / IN DNSKEY 256 3 15 /);
  const ds = cli('ds', 'example.com', '--keys', keys);
  tt.equal(ds.status, 0, ds.stderr);
  const lines = ds.stdout.trimEnd().split('\n');
  tt.equal(lines.length, 2, 'one SEP key: its DS and DNSKEY (not the ZSK)');
  const tag = Number(base.slice(-5));
  tt.match(lines[0], new RegExp(`^example\\.com\\. 3600 IN DS ${tag} 13 2 [0-9A-F]{64}$`));
  tt.match(lines[1], /^example\.com\. 3600 IN DNSKEY 257 3 13 [A-Za-z0-9+/]{86}==$/);

  const badAlg = cli('keygen', 'example.com', '--keys', keys, '--algorithm', 'dsa');
  tt.equal(badAlg.status, 2);
  tt.match(badAlg.stderr, /unknown algorithm "dsa".*\[POPDNS_E_USAGE\]/);
  const badRole = cli('keygen', 'example.com', '--keys', keys, '--role', 'boss');
  tt.equal(badRole.status, 2);
  tt.match(badRole.stderr, /unknown role "boss".*\[POPDNS_E_USAGE\]/);
  const none = cli('ds', 'example.org', '--keys', keys);
  tt.equal(none.status, 1);
  tt.match(none.stderr, /no key-signing \(SEP\) key for example\.org\. in .*\[POPDNS_E_NO_KEYS\]/);
  writeFileSync(join(keys, `${base}.private`), 'Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\n');
  const broken = cli('ds', 'example.com', '--keys', keys);
  tt.equal(broken.status, 1);
  tt.match(
    broken.stderr,
    new RegExp(`${esc(base)}\\.private: missing or malformed PrivateKey \\[POPDNS_E_KEY\\]`),
  );
  tt.end();
});
