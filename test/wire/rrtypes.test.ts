/**
 * Every RR type of the table (src/wire/rrtypes.ts), checked against the peers' own RDATA codecs:
 * 1. Knot: a zone written with one record of each type Knot 3.2 reads is loaded in knotd, each record
 *    is queried over TCP, and the RDATA Knot sends is compared with popdns's bytes (then the same with
 *    the zone as popdns prints it, so Knot also reads our presentation output);
 * 2. BIND: `named-rrchecker -u` turns each record into RFC 3597 hex (BIND 9.18 reads every type here
 *    except the obsolete MD/MF, whose bytes are written by hand from RFC 1035);
 * 3. round trips text → wire → text → wire for every type, and the table against the type registry.
 */
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { isMetaType, TYPE, typeFromText, typeToText } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import {
  isKnownType,
  rdataCanonical,
  rdataEquals,
  rdataFromText,
  rdataNames,
  rdataToText,
  tokenize,
} from '../../src/wire/rdata.js';
import { RRTYPES } from '../../src/wire/rrtypes.js';
import { parseMasterFile, writeMasterFile } from '../../src/zone/masterfile.js';
import { parseYamlZone, writeYamlZone } from '../../src/zone/yamlzone.js';
import { buildZone } from '../../src/zone/zone.js';
import { buildQuery, questionEnd, tcpExchange } from '../helpers/dns.js';
import { startKnot, startKnotText } from '../helpers/knot.js';
import { needTool } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const O = nameFromText('example.com.');

/**
 * One record of every type, in the forms the RFCs and BIND's genzone.sh use. Names in RDATA live under
 * other suffixes than the owner's so a peer has nothing to compress them against (MINFO's two names
 * differ too: Knot compresses RFC 1035 types).
 */
const VECTORS = [
  'A 192.0.2.1',
  'NS ns1.example.net.',
  'MD madname.example.net.',
  'MF madname.example.net.',
  'CNAME target.example.net.',
  'MB madname.example.net.',
  'MG mgmname.example.net.',
  'MR mrname.example.net.',
  'WKS 10.0.0.1 tcp telnet ftp 0 1 2',
  'PTR host.example.net.',
  'HINFO "Generic PC clone" "NetBSD-1.4"',
  'MINFO rmailbx.example.net. emailbx.example.org.',
  'MX 10 mail.example.net.',
  'TXT "v=spf1 -all" "second string"',
  'RP mbox.example.net. txt.example.org.',
  'AFSDB 1 afsdb.example.net.',
  'X25 311061700956',
  'ISDN "150862028003217" "004"',
  'RT 10 relay.example.net.',
  'NSAP 0x47.0005.80.005a00.0000.0001.e133.ffffff000161.00',
  'NSAP-PTR foo.example.net.',
  'SIG NXT 1 3 3600 20000102030405 19961211100908 2143 foo.example.net. MxFcby9k/yvedMfQgKzhH5er0Mu/vILz45IkskceFGgiWCn/GxHhai6VAuHAoNUz4YoU1tVfSCSqQYn6//11U6Nld80jEeC8aTrO+KKmCaY=',
  'KEY 256 3 ECDSAP256SHA256 AQMFD5raczCJHViKtLYhWGz8hMY9UGRuniJDBzC7w0aRyzWZriO6i2odGWWQVucZqKVsENW91IOW4vqudngPZsY3GvQ/xVA8/7pyFj6b7Esga60zyGW6LFe9r8n6paHrlG5ojqf0BaqHT+8=',
  'PX 10 map822.example.net. mapx400.example.org.',
  'GPOS -32.6882 116.8652 10.0',
  'AAAA 2001:db8::1',
  'LOC 60 9 0.000 N 24 39 0.000 E 10.00m 20.00m 2000.00m 20.00m',
  'LOC 42 21 54 N 71 06 18 W -24m 30m',
  'NXT a.secure.example.net. NS SOA MX SIG KEY LOC NXT',
  'SRV 0 5 5060 sip.example.net.',
  'NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .',
  'KX 10 kx.example.net.',
  'CERT PGP 0 0 MxFcby9k/yvedMfQgKzhH5er0Mu/vILz45IkskceFGgiWCn/GxHhai6VAuHAoNUz4YoU1tVfSCSqQYn6//11U6Nld80jEeC8aTrO+KKmCaY=',
  'A6 64 ::ffff:ffff:ffff:ffff foo.example.net.',
  'DNAME dname-target.example.net.',
  'SINK 8 0 2 l4ik',
  'APL 1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32',
  'DS 12892 RSASHA256 2 26584835CA80C81C91999F31CFAF2A0E89D4FF1C8FAFD0DDB31A85C719277C13',
  'SSHFP 4 2 C76D8329954DA2835751E371544E963EFDA099080D6C58DD2BFD9A316E162C83',
  'IPSECKEY 10 3 2 gateway.example.net. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==',
  'IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==',
  'IPSECKEY 10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==',
  'IPSECKEY 10 2 2 2001:db8:0:8002::2000:1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==',
  'RRSIG A ECDSAP256SHA256 3 3600 20301231000000 20201231000000 12345 example.com. MxFcby9k/yvedMfQgKzhH5er0Mu/vILz45IkskceFGgiWCn/GxHhai6VAuHAoNUz4YoU1tVfSCSqQYn6//11U6Nld80jEeC8aTrO+KKmCaY=',
  'NSEC next.example.net. A NS SOA MX RRSIG NSEC DNSKEY SPF TYPE1234 CAA L64',
  'DNSKEY 257 3 RSASHA256 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D',
  'DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=',
  'NSEC3 1 1 12 AABBCCDD 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG EUI48',
  'NSEC3PARAM 1 0 12 AABBCCDD',
  'TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6',
  'SMIMEA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6',
  'HIP 2 200100107B1A74DF365639CC39F1D578 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D rvs1.example.net. rvs2.example.net.',
  'NINFO "foo" "bar"',
  'RKEY 0 3 RSASHA256 AQMFD5raczCJHViKtLYhWGz8hMY9UGRuniJDBzC7w0aRyzWZriO6i2odGWWQVucZqKVsENW91IOW4vqudngPZsY3GvQ/xVA8/7pyFj6b7Esga60zyGW6LFe9r8n6paHrlG5ojqf0BaqHT+8=',
  'TALINK prev.example.net. next.example.org.',
  'CDS 30795 ECDSAP256SHA256 2 310D27F4D82C1FC2400704EA9939FE6E1CEAA3B9A3B9A3B9A3B9A3B9A3B9A3B9',
  'CDNSKEY 257 3 ED25519 VyDA1gP9EZEWD2ZRwzx6YzvZ1N7ouqWZV8DUZR5HUfk=',
  'OPENPGPKEY AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnc=',
  'CSYNC 66 3 A NS AAAA',
  'ZONEMD 2018031500 1 1 FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE',
  'SVCB 16 svc.example.net. alpn=h2,h3 port=8443 ipv4hint=192.0.2.1 ech=AEX+DQA= ipv6hint=2001:db8::1 mandatory=alpn,port key65000=foo',
  'HTTPS 1 . alpn=h2 no-default-alpn',
  'SPF "v=spf1 -all"',
  'NID 10 0014:4fff:ff20:ee64',
  'L32 10 10.1.2.0',
  'L64 10 2001:0db8:1140:1000',
  'LP 10 l64-subnet1.example.net.',
  'EUI48 00-00-5e-00-53-2a',
  'EUI64 00-00-5e-ef-10-00-00-2a',
  'URI 10 1 "ftp://ftp1.example.com/public"',
  'CAA 0 issue "ca.example.net; policy=ev"',
  'AVC "app-name:WOLFGANG|app-class:OAM|business=yes"',
  'DOA 0 1 2 "" aHR0cHM6Ly93d3cuaXNjLm9yZy8=',
  'AMTRELAY 10 0 3 amtrelays.example.net.',
  'AMTRELAY 128 1 1 203.0.113.15',
  'AMTRELAY 0 0 0 .',
  'RESINFO qnamemin exterr=15,16,17 infourl=https://resolver.example.com/guide',
  'TA 30795 1 1 310D27F4D82C1FC2400704EA9939FE6E1CEAA3B9',
  'DLV 30795 1 1 310D27F4D82C1FC2400704EA9939FE6E1CEAA3B9',
  'TYPE65280 \\# 3 abcdef',
];

/** The types Knot 3.2's zone parser reads by mnemonic (the others it calls "unsupported record type"). */
const KNOT_32 = new Set(
  (
    'A NS CNAME PTR HINFO MINFO MX TXT RP AFSDB RT KEY AAAA LOC SRV NAPTR KX CERT DNAME APL DS SSHFP ' +
    'IPSECKEY RRSIG NSEC DNSKEY DHCID NSEC3PARAM TLSA SMIMEA CDS CDNSKEY OPENPGPKEY CSYNC ZONEMD ' +
    'SVCB HTTPS SPF NID L32 L64 LP EUI48 EUI64 URI CAA TYPE65280'
  ).split(' '),
);

const mnemonic = (v: string): string => v.split(' ')[0]!;
const typeOf = (v: string): number => typeFromText(mnemonic(v))!;
const ours = (v: string): Buffer =>
  Buffer.from(rdataFromText(typeOf(v), tokenize(v.slice(mnemonic(v).length + 1)), O));
const owner = (i: number, v: string): string => `t${i}-${mnemonic(v).toLowerCase()}.example.com.`;
const zoneText = (records: string[]): string =>
  [
    '$ORIGIN example.com.',
    '$TTL 600',
    '@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300',
    '@ NS ns1.example.net.',
    ...records,
    '',
  ].join('\n');

t.test('the table covers every data mnemonic, and nothing else', (tt) => {
  for (const [name, num] of Object.entries(TYPE)) {
    if (isMetaType(num)) tt.notOk(isKnownType(num), `${name} is a meta type, not data`);
    else tt.ok(RRTYPES.has(num), `${name} has an RDATA layout`);
  }
  for (const num of RRTYPES.keys()) tt.not(typeToText(num), `TYPE${num}`, `type ${num} has a mnemonic`);
  for (const v of VECTORS.slice(0, -1)) tt.ok(isKnownType(typeOf(v)), `${mnemonic(v)} is in the table`);
  tt.equal(typeFromText('NSAP-PTR'), 23);
  tt.equal(typeFromText('spf'), 99, 'mnemonics are case-insensitive');
  tt.equal(typeFromText('FOO'), undefined, 'an unknown mnemonic is not a type');
  tt.equal(typeFromText('NULL'), undefined, 'NULL has no presentation format (RFC 1035 §3.3.10)');
  tt.equal(typeFromText('TYPE10'), 10, 'RFC 3597 names every other type');
  tt.throws(() => rdataFromText(TYPE.OPT, tokenize('0'), O), /meta type/);
  tt.end();
});

t.test('round trip text → wire → text → wire for every vector', (tt) => {
  for (const v of VECTORS) {
    const type = typeOf(v);
    const wire = ours(v);
    const text = rdataToText(type, wire, O);
    tt.equal(
      Buffer.from(rdataFromText(type, tokenize(text), O)).toString('hex'),
      wire.toString('hex'),
      `${mnemonic(v)}: ${text.slice(0, 60)}`,
    );
    const generic = `\\# ${wire.length} ${wire.toString('hex')}`;
    tt.equal(
      Buffer.from(rdataFromText(type, tokenize(generic), O)).toString('hex'),
      wire.toString('hex'),
      `${mnemonic(v)}: the RFC 3597 form is read and checked`,
    );
  }
  tt.end();
});

t.test('RDATA bytes from RFCs, by hand', (tt) => {
  const hex = (s: string): string => s.replace(/\s+/g, '').toLowerCase();
  // RFC 1035 §3.3.4/§3.3.5: MD/MF are one uncompressed name.
  tt.equal(ours('MD a.b.').toString('hex'), hex('01 61 01 62 00'));
  // RFC 7043 §3.2 / §4.2: EUI48 and EUI64 are the 6/8 octets.
  tt.equal(ours('EUI48 00-00-5e-00-53-2a').toString('hex'), '00005e00532a');
  // RFC 1876 Appendix A: version 0, size 1m (0x12), hp 10km (0x16), vp 10m (0x13) by default.
  tt.equal(
    ours('LOC 42 21 54 N 71 06 18 W -24m 30m').toString('hex'),
    hex(`00 33 16 13 ${(2 ** 31 + (42 * 3600 + 21 * 60 + 54) * 1000).toString(16)}
         ${(2 ** 31 - (71 * 3600 + 6 * 60 + 18) * 1000).toString(16)} ${(10000000 - 2400).toString(16).padStart(8, '0')}`),
  );
  // RFC 3123 §4: 1:192.168.32.0/21 → afi 1, prefix 21, N=0 length 3, 192.168.32.
  tt.equal(ours('APL 1:192.168.32.0/21').toString('hex'), hex('0001 15 03 c0a820'));
  tt.equal(ours('APL !1:192.168.38.0/28').toString('hex'), hex('0001 1c 83 c0a826'));
  tt.equal(ours('APL').toString('hex'), '', 'an empty APL is allowed');
  // RFC 8777 §4.2.3: D-bit in the top bit of the type octet.
  tt.equal(ours('AMTRELAY 128 1 1 203.0.113.15').toString('hex'), hex('80 81 cb00710f'));
  // RFC 6742 §2.1: NID = preference + 64-bit node id.
  tt.equal(ours('NID 10 0014:4fff:ff20:ee64').toString('hex'), hex('000a 0014 4fff ff20 ee64'));
  // RFC 7553 §4.5: URI target is the rest of the RDATA, no length octet.
  tt.equal(ours('URI 10 1 "a"').toString('hex'), hex('000a 0001 61'));
  // RFC 8976 §2.2.4: the digest is at least 12 octets.
  tt.throws(() => ours('ZONEMD 1 1 1 0011'), /shorter than 12/);
  tt.end();
});

t.test('mnemonics inside RDATA (RFC 4034 §2.2, §3.2, §5.3; RFC 4398 §2.2)', (tt) => {
  const key = 'AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsu';
  tt.same(ours(`DNSKEY 256 3 RSASHA256 ${key}`), ours(`DNSKEY 256 3 8 ${key}`));
  tt.same(ours(`CDNSKEY 257 3 ecdsap256sha256 ${key}`), ours(`CDNSKEY 257 3 13 ${key}`));
  tt.same(ours('DS 1 ED25519 2 AABB'), ours('DS 1 15 2 AABB'));
  tt.same(ours('CDS 1 ED448 2 AABB'), ours('CDS 1 16 2 AABB'));
  tt.same(ours('DS 1 RSASHA1-NSEC3-SHA1 1 AABB'), ours('DS 1 7 1 AABB'));
  tt.same(
    ours(`RRSIG SPF RSASHA256 2 300 20300101000000 20200101000000 1 example.com. ${key}`),
    ours(`RRSIG TYPE99 8 2 300 20300101000000 20200101000000 1 example.com. ${key}`),
  );
  tt.same(ours('CERT PKIX 1 RSASHA256 AAAA'), ours('CERT 1 1 8 AAAA'));
  tt.same(
    ours('NSEC a.example. LOC URI CAA TYPE65280'),
    ours('NSEC a.example. TYPE29 TYPE256 TYPE257 TYPE65280'),
  );
  tt.same(ours('CSYNC 1 3 A NS AAAA'), ours('CSYNC 1 3 TYPE1 TYPE2 TYPE28'));
  tt.same(
    ours('NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR HIP EUI64'),
    ours('NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR TYPE55 TYPE109'),
  );
  tt.throws(() => ours(`DNSKEY 256 3 RSASHA257 ${key}`), /neither a number 0-255 nor a known mnemonic/);
  tt.throws(() => ours('NSEC a.example. A FOO'), /"FOO" is not a type/);
  tt.end();
});

t.test('name compression and canonical case follow the table', (tt) => {
  const compress = (v: string): boolean[] => rdataNames(typeOf(v), ours(v)).map((x) => x.compress);
  // RFC 3597 §4: only RFC 1035 types compress.
  tt.same(compress('MINFO a.example. b.example.'), [true, true]);
  tt.same(compress('MB a.example.'), [true]);
  tt.same(compress('RP a.example. b.example.'), [false, false]);
  tt.same(compress('AFSDB 1 a.example.'), [false]);
  tt.same(compress('PX 1 a.example. b.example.'), [false, false]);
  tt.same(compress('HIP 2 2001 AAAA rvs.example.'), [false]);
  tt.same(
    rdataNames(TYPE.NAPTR, ours('NAPTR 1 2 "a" "bc" "" r.example.')).map((x) => x.offset),
    [4 + 2 + 3 + 1],
  );
  tt.same(
    rdataNames(TYPE.IPSECKEY, ours('IPSECKEY 1 3 2 gw.example. AAAA')).map((x) => x.offset),
    [3],
  );
  // RFC 4034 §6.2 (less NSEC, RFC 6840 §5.1): lower-cased types.
  const lower = (v: string): string => rdataToText(typeOf(v), rdataCanonical(typeOf(v), ours(v)));
  tt.equal(lower('MX 10 MAIL.Example.NET.'), '10 mail.example.net.');
  tt.equal(lower('KX 10 KX.Example.NET.'), '10 kx.example.net.');
  tt.equal(lower('PX 1 A.EXAMPLE. B.EXAMPLE.'), '1 a.example. b.example.');
  tt.equal(lower('A6 64 ::1 PREFIX.EXAMPLE.'), '64 ::1 prefix.example.');
  tt.equal(lower('NSEC NEXT.example. A'), 'NEXT.example. A', 'NSEC keeps its case');
  tt.equal(lower('SVCB 1 SVC.example.'), '1 SVC.example.', 'SVCB is not on the list');
  tt.equal(lower('NAPTR 1 2 "A" "B" "C" R.EXAMPLE.'), '1 2 "A" "B" "C" r.example.', 'only names fold');
  tt.ok(rdataEquals(TYPE.MX, ours('MX 10 Some.Domain.'), ours('MX 10 some.domain.')));
  tt.notOk(rdataEquals(TYPE.HTTPS, ours('HTTPS 1 Svc.Example.'), ours('HTTPS 1 svc.example.')));
  tt.notOk(rdataEquals(TYPE.TXT, ours('TXT ABC'), ours('TXT abc')));
  tt.notOk(
    rdataEquals(TYPE.SOA, ours('SOA a. b. 65 1 1 1 1'), ours('SOA a. b. 97 1 1 1 1')),
    'numbers never fold',
  );
  tt.end();
});

t.test('malformed wire RDATA in RFC 3597 form is refused', (tt) => {
  const bad = (type: string, hexData: string): void => {
    tt.throws(
      () => rdataFromText(typeFromText(type)!, tokenize(`\\# ${hexData.length / 2} ${hexData}`), O),
      { code: 'POPDNS_E_RDATA' },
      `${type} ${hexData}`,
    );
  };
  bad('LOC', '01' + '00'.repeat(15));
  bad('APL', '0003150300000000');
  bad('EUI48', '0000');
  bad('AMTRELAY', '0a04');
  bad('HIP', '10020084');
  bad('ZONEMD', '0000000101010011');
  bad('MINFO', '0161');
  tt.end();
});

t.test('every type against BIND 9.18 (named-rrchecker -u)', (tt) => {
  if (!needTool(tt, 'named-rrchecker', 'bind9')) return tt.end();
  for (const v of VECTORS) {
    if (v.startsWith('MD ') || v.startsWith('MF ')) continue; // BIND refuses the obsolete types
    const r = spawnSync('named-rrchecker', ['-o', 'example.com', '-u'], {
      input: `IN ${v}\n`,
      encoding: 'utf8',
    });
    tt.equal(r.status, 0, `${mnemonic(v)}: BIND reads it\n${r.stderr}`);
    const m = /\\# ([0-9]+)(.*)$/.exec(r.stdout.trim());
    tt.ok(m, `${mnemonic(v)}: RFC 3597 output`);
    tt.equal(
      ours(v).toString('hex'),
      (m?.[2] ?? '').replace(/\s+/g, '').toLowerCase(),
      `${mnemonic(v)} as BIND`,
    );
  }
  tt.end();
});

/**
 * The first RR's RDATA after the question (the answer, or the NS of a referral), with the names of RFC
 * 1035 types decompressed (Knot compresses them).
 */
function answerRdata(msg: Buffer, type: number): Buffer | null {
  if (msg.readUInt16BE(6) + msg.readUInt16BE(8) === 0) return null;
  let p = questionEnd(msg);
  const skipName = (q: number): number => {
    while (msg[q] !== 0) {
      if ((msg[q]! & 0xc0) === 0xc0) return q + 2;
      q += msg[q]! + 1;
    }
    return q + 1;
  };
  const expand = (q: number): Buffer => {
    const out: number[] = [];
    for (let hops = 0; hops < 64; hops++) {
      const len = msg[q]!;
      if ((len & 0xc0) === 0xc0) {
        q = ((len & 0x3f) << 8) | msg[q + 1]!;
        continue;
      }
      out.push(len, ...msg.subarray(q + 1, q + 1 + len));
      if (len === 0) break;
      q += len + 1;
    }
    return Buffer.from(out);
  };
  p = skipName(p);
  const rdlen = msg.readUInt16BE(p + 8);
  const start = p + 10;
  const raw = msg.subarray(start, start + rdlen);
  // Where RFC 1035 types carry names (hand-written layouts, independent of src/wire/rrtypes.ts).
  const names: Record<number, { lead: number; count: number; tail: number }> = {
    [TYPE.NS]: { lead: 0, count: 1, tail: 0 },
    [TYPE.CNAME]: { lead: 0, count: 1, tail: 0 },
    [TYPE.PTR]: { lead: 0, count: 1, tail: 0 },
    [TYPE.MX]: { lead: 2, count: 1, tail: 0 },
    [TYPE.MINFO]: { lead: 0, count: 2, tail: 0 },
    [TYPE.SOA]: { lead: 0, count: 2, tail: 20 },
  };
  const layout = names[type];
  if (!layout) return raw;
  const parts = [raw.subarray(0, layout.lead)];
  let q = start + layout.lead;
  for (let i = 0; i < layout.count; i++) {
    parts.push(expand(q));
    q = skipName(q);
  }
  parts.push(msg.subarray(q, q + layout.tail));
  return Buffer.concat(parts);
}

async function compareWithKnot(tt: Test, port: number, vectors: [number, string][]): Promise<void> {
  const queries = vectors.map(([i, v]) => buildQuery(owner(i, v), mnemonic(v)));
  const answers = await tcpExchange(port, queries, 10000);
  vectors.forEach(([i, v], k) => {
    const got = answerRdata(answers[k]!, typeOf(v));
    tt.equal(
      got?.toString('hex'),
      ours(v).toString('hex'),
      `${mnemonic(v)} (${owner(i, v)}) as Knot serves it`,
    );
  });
}

t.test('every type Knot 3.2 reads, against knotd', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const vectors = VECTORS.map((v, i): [number, string] => [i, v]).filter(([, v]) => KNOT_32.has(mnemonic(v)));
  tt.ok(vectors.length >= 45, `${vectors.length} types`);
  const records = vectors.map(([i, v]) => `${owner(i, v)} ${v}`);
  // Knot reads the vectors as written…
  const knot = await startKnotText(tt, [{ origin: 'example.com.', text: zoneText(records) }]);
  await compareWithKnot(tt, knot.port, vectors);
  // …and popdns's own presentation output of them.
  const parsed = parseMasterFile(zoneText(records), { file: 'every-type.zone', origin: O });
  tt.same(parsed.diagnostics, [], 'popdns reads the vectors');
  const printed = await startKnot(tt, [parsed]);
  await compareWithKnot(tt, printed.port, vectors);
});

t.test('docs/zone-format.md lists exactly the types of the table', (tt) => {
  const doc = readFileSync('docs/zone-format.md', 'utf8');
  const section = doc.slice(doc.indexOf('## Record types'), doc.indexOf('### Duplicate records'));
  const listed = [...section.matchAll(/^\| ([A-Z0-9-]+) +\| ([0-9]+) +\|/gm)].map((m) => [
    m[1]!,
    Number(m[2]),
  ]);
  tt.same(
    listed,
    [...RRTYPES.keys()].sort((a, b) => a - b).map((n) => [typeToText(n), n]),
  );
  tt.end();
});

t.test('every type through both zone formats: master file → YAML → master file', (tt) => {
  const records = VECTORS.map((v, i) => `${owner(i, v)} ${v}`);
  const first = parseMasterFile(zoneText(records), { file: 'every-type.zone', origin: O });
  tt.same(first.diagnostics, [], 'the master file loads');
  const key = (r: { owner: Uint8Array; type: number; rdata: Uint8Array }): string =>
    `${Buffer.from(r.owner).toString('hex')}/${r.type}/${Buffer.from(r.rdata).toString('hex')}`;
  const want = first.records.map(key).sort();
  const yaml = writeYamlZone(O, first.records);
  const fromYaml = parseYamlZone(yaml, { file: 'every-type.yaml', origin: O });
  tt.same(fromYaml.diagnostics, [], 'the YAML popdns writes loads');
  tt.same(fromYaml.records.map(key).sort(), want, 'YAML keeps every RDATA');
  const again = parseMasterFile(writeMasterFile(O, fromYaml.records), { file: 'again.zone', origin: O });
  tt.same(again.diagnostics, []);
  tt.same(again.records.map(key).sort(), want, 'and so does the master file written from it');
  const built = buildZone(first);
  tt.ok(built.zone, 'the zone builds');
  // The vectors hold an RRSIG but no DNSKEY at the apex: the zone is (rightly) not taken as signed.
  tt.same(
    built.diagnostics.map((d) => d.code),
    ['POPDNS_W_RRSIG_NO_DNSKEY'],
  );
  tt.end();
});

t.test('character-string types with a syntax of their own (RFC 1183 §3.1, RFC 1712 §3)', (tt) => {
  tt.throws(() => ours('X25 12a4'), /at least four decimal digits/);
  tt.throws(() => ours('X25 123'), /at least four decimal digits/);
  tt.throws(() => ours('GPOS north 116.8652 10.0'), /longitude "north" is not a real number/);
  tt.equal(ours('GPOS -22.6882 116.8652 250.0').length, 3 + 8 + 8 + 5);
  tt.end();
});
