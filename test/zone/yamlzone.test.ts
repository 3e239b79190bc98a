/** The YAML zone format's rules, with expected records and exact diagnostic positions. */
import t from 'tap';
import { TYPE, typeToText } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import type { ParsedZone } from '../../src/zone/types.js';
import { mailToName, parseYamlZone, writeYamlZone } from '../../src/zone/yamlzone.js';

const O = nameFromText('example.com.');
const parse = (text: string): ParsedZone => parseYamlZone(text, { file: 'z.yaml', origin: O });
const recs = (z: ParsedZone): string[] =>
  z.records.map(
    (r) => `${nameToText(r.owner)} ${r.ttl} ${typeToText(r.type)} ${Buffer.from(r.rdata).toString('hex')}`,
  );
const diags = (z: ParsedZone): string[] => z.diagnostics.map((d) => `${d.pos.line}:${d.pos.col} ${d.code}`);

t.test('values: presentation strings, structured forms, lists, TTL overrides, TXT literal', (tt) => {
  const z = parse(`ttl: 600
soa: { mname: ns1, serial: 5 }
records:
  "@":
    NS: ns1
  www:
    ttl: 60
    A: [192.0.2.1, { address: 192.0.2.2 }, { value: 192.0.2.3, ttl: 5 }]
    TXT: "v=spf1 -all"
  mx: { MX: { preference: 10, exchange: mail.example.net. } }
`);
  tt.same(diags(z), []);
  tt.same(recs(z).slice(1), [
    `example.com. 600 NS ${Buffer.from(nameFromText('ns1.example.com.')).toString('hex')}`,
    'www.example.com. 60 A c0000201',
    'www.example.com. 60 A c0000202',
    'www.example.com. 5 A c0000203',
    `www.example.com. 60 TXT 0b${Buffer.from('v=spf1 -all').toString('hex')}`,
    `mx.example.com. 600 MX 000a${Buffer.from(nameFromText('mail.example.net.')).toString('hex')}`,
  ]);
  const soa = z.records[0]!;
  tt.equal(soa.type, TYPE.SOA);
  // mname ns1, rname hostmaster (default), serial 5, refresh 7200, retry 3600, expire 1209600, minimum 3600
  tt.equal(
    Buffer.from(soa.rdata).toString('hex'),
    Buffer.concat([
      Buffer.from(nameFromText('ns1.example.com.')),
      Buffer.from(nameFromText('hostmaster.example.com.')),
      Buffer.from('00000005' + '00001c20' + '00000e10' + '00127500' + '00000e10', 'hex'),
    ]).toString('hex'),
  );
  tt.end();
});

t.test('SOA defaults: mname from the first apex NS; rname from an e-mail address', (tt) => {
  const z = parse('soa: { rname: host.master@example.com }\nrecords:\n  "@": { NS: [ns9.example.net.] }\n');
  tt.same(diags(z), []);
  const rd = z.records[0]!.rdata;
  tt.same(Buffer.from(rd.subarray(0, 17)), Buffer.from(nameFromText('ns9.example.net.')));
  tt.equal(nameToText(mailToName('host.master@example.com')), 'host\\.master.example.com.');
  tt.end();
});

t.test('diagnostics with line:col for each mistake', (tt) => {
  const z = parse(`ttl: forever
soa: { serial: 1, mname: ns1, colour: red }
records:
  "@": { NS: ns1 }
  www:
    a: 192.0.2.1
    A: 192.0.2.300
    SOA: x
    TXT: true
  empty:
  x..y: { A: 192.0.2.1 }
extra: 1
`);
  tt.same(diags(z).sort(), [
    '10:3 POPDNS_E_YAML_TYPE',
    '11:3 POPDNS_E_NAME',
    '12:1 POPDNS_E_YAML_UNKNOWN_KEY',
    '1:6 POPDNS_E_BAD_TTL',
    '2:31 POPDNS_E_YAML_UNKNOWN_KEY',
    '6:5 POPDNS_E_YAML_UNKNOWN_KEY',
    '7:8 POPDNS_E_RDATA',
    '8:5 POPDNS_E_YAML_UNKNOWN_KEY',
    '9:10 POPDNS_E_YAML_TYPE',
  ]);
  const dup = parse('records:\n  www: { A: 192.0.2.1 }\n  www: { A: 192.0.2.2 }\n');
  tt.same(diags(dup), ['3:3 POPDNS_E_YAML_DUPLICATE_KEY'], 'duplicate keys are errors');
  tt.match(dup.diagnostics[0]?.message, /duplicate key "www" \(first at line 2\)/);
  tt.end();
});

t.test('writer: lossless for every record, readable for the common ones', (tt) => {
  const z = parse(`ttl: 300
soa: { mname: ns1, serial: 9, minimum: 60 }
records:
  "@": { NS: [ns1, ns2], MX: 10 mail, TXT: [plain, { strings: [a, b] }, { value: '"\\\\001x"' }] }
  ns1: { A: 192.0.2.1 }
  ns2: { A: { value: 192.0.2.2, ttl: 30 } }
  unk: { TYPE65280: '\\# 2 abcd' }
  long: { TXT: "${'x'.repeat(300)}" }
`);
  tt.same(diags(z), []);
  const text = writeYamlZone(O, z.records, { defaultTtl: 300 });
  const again = parse(text);
  tt.same(diags(again), []);
  tt.same(recs(again).sort(), recs(z).sort());
  tt.match(text, /TXT:\n\s+- plain/);
  tt.end();
});

t.test('dnssec: short forms, settings, errors with positions, and the writer keeps it', (tt) => {
  const body = 'soa: { serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n';
  tt.same(parse(`dnssec: nsec3\n${body}`).dnssec, { denial: 'nsec3' });
  tt.same(parse(`dnssec: true\n${body}`).dnssec, {});
  tt.equal(parse(`dnssec: false\n${body}`).dnssec, false);
  tt.equal(parse(body).dnssec, undefined);
  const full = parse(`dnssec: { denial: nsec3, opt-out: true, validity: 7d, cds: true }\n${body}`);
  tt.same(full.dnssec, { denial: 'nsec3', optOut: true, validity: 7 * 86400, cds: true });
  tt.same(diags(parse(`dnssec: maybe\n${body}`)), ['1:9 POPDNS_E_DNSSEC']);
  tt.same(diags(parse(`dnssec: { denial: nsec5 }\n${body}`)), ['1:19 POPDNS_E_DNSSEC']);
  tt.same(diags(parse(`dnssec: { validity: 1h }\n${body}`)), ['1:21 POPDNS_E_DNSSEC']);
  tt.same(diags(parse(`dnssec: { salt: ab }\n${body}`)), ['1:11 POPDNS_E_YAML_UNKNOWN_KEY']);
  const text = writeYamlZone(full.origin, full.records, { dnssec: full.dnssec });
  tt.same(parseYamlZone(text, { file: 'w.yaml' }).dnssec, full.dnssec, 'round trip');
  tt.end();
});
