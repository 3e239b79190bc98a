/** RFC 1035 §5 master files: every syntax feature, with expected records written by hand. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TYPE, typeToText } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { originFromFileName, parseMasterFile, writeMasterFile } from '../../src/zone/masterfile.js';
import type { ParsedZone } from '../../src/zone/types.js';
import { tmpDir } from '../helpers/peers.js';

const rec = (z: ParsedZone): string[] =>
  z.records.map(
    (r) => `${nameToText(r.owner)} ${r.ttl} ${typeToText(r.type)} ${Buffer.from(r.rdata).toString('hex')}`,
  );
const diags = (z: ParsedZone): string[] =>
  z.diagnostics
    .map((d) => `${d.pos.line}:${d.pos.col} ${d.code}`)
    .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
const parse = (text: string, origin = 'example.com.'): ParsedZone =>
  parseMasterFile(text, { file: 'test.zone', origin: nameFromText(origin) });

t.test('origin, TTL, @, relative names, blank owner, class and TTL in either order', (tt) => {
  const z = parse(`$TTL 1h
@ IN SOA ns1 hm 1 2 3 4 5
  NS ns1 ; blank owner = previous owner (@)
www 300 IN A 192.0.2.1
    IN 60 A 192.0.2.2
mail A 192.0.2.3
$ORIGIN sub.example.com.
x A 192.0.2.4
abs.example.net. A 192.0.2.5
`);
  tt.same(diags(z), []);
  tt.same(rec(z), [
    `example.com. 3600 SOA ${Buffer.from([...nameFromText('ns1.example.com.'), ...nameFromText('hm.example.com.'), 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]).toString('hex')}`,
    `example.com. 3600 NS ${Buffer.from(nameFromText('ns1.example.com.')).toString('hex')}`,
    'www.example.com. 300 A c0000201',
    'www.example.com. 60 A c0000202',
    'mail.example.com. 3600 A c0000203',
    'x.sub.example.com. 3600 A c0000204',
    'abs.example.net. 3600 A c0000205',
  ]);
  tt.equal(z.defaultTtl, 3600);
  tt.same(z.origin, nameFromText('example.com.'), 'the zone origin is the first $ORIGIN-free one');
  tt.end();
});

t.test('parentheses across lines, comments inside them, quoted semicolons, escapes in names', (tt) => {
  const z = parse(`$TTL 60
@ SOA ns1 hm (
      2026112301 ; serial
      2h 1h      ; refresh retry
      2w 5m )    ; expire minimum
txt TXT "a;b" "c\\"d" ( "e" )
esc\\.aped A 192.0.2.1
\\065\\066 A 192.0.2.2
`);
  tt.same(diags(z), []);
  tt.equal(z.records.length, 4);
  tt.same(Buffer.from(z.records[1]!.rdata).toString('latin1'), '\x03a;b\x03c"d\x01e');
  tt.equal(nameToText(z.records[2]!.owner), 'esc\\.aped.example.com.');
  tt.equal(nameToText(z.records[3]!.owner), 'AB.example.com.');
  const soa = z.records[0]!.rdata;
  tt.equal(
    Buffer.from(soa.subarray(soa.length - 20)).toString('hex'),
    '78c4052d00001c2000000e10001275000000012c',
  );
  tt.end();
});

t.test('RFC 3597 TYPEnnn and \\# for unknown types; CLASSnnn', (tt) => {
  const z = parse('$TTL 60\nunk TYPE65280 \\# 4 0a000001\nknown CLASS1 TYPE1 \\# 4 c0000201\n');
  tt.same(diags(z), []);
  tt.same(rec(z), ['unk.example.com. 60 TYPE65280 0a000001', 'known.example.com. 60 A c0000201']);
  tt.end();
});

t.test('$INCLUDE: relative to the including file, with origin, restored after; depth limit; cycles', (tt) => {
  const dir = tmpDir(tt);
  mkdirSync(join(dir, 'inc'));
  writeFileSync(
    join(dir, 'inc', 'hosts.inc'),
    'h1 A 192.0.2.1\n$ORIGIN other.example.com.\nh2 A 192.0.2.2\n',
  );
  writeFileSync(join(dir, 'loop.inc'), '$INCLUDE loop.inc\n');
  const main = join(dir, 'example.com.zone');
  const text = '$TTL 60\n$INCLUDE inc/hosts.inc\nafter A 192.0.2.3\n$INCLUDE inc/hosts.inc sub\n';
  const z = parseMasterFile(text, { file: main, origin: nameFromText('example.com.') });
  tt.same(diags(z), []);
  tt.same(
    z.records.map((r) => nameToText(r.owner)),
    [
      'h1.example.com.',
      'h2.other.example.com.',
      'after.example.com.',
      'h1.sub.example.com.',
      'h2.other.example.com.',
    ],
    '$ORIGIN inside the include does not leak out (RFC 1035 §5.1)',
  );
  tt.equal(z.records[0]!.pos.file, join(dir, 'inc', 'hosts.inc'), 'positions name the included file');
  const cyc = parseMasterFile('$INCLUDE loop.inc\n', {
    file: join(dir, 'c.zone'),
    origin: nameFromText('c.'),
  });
  tt.ok(cyc.diagnostics.some((d) => d.code === 'POPDNS_E_INCLUDE' && /cycle/.test(d.message)));
  const deep = parseMasterFile('$INCLUDE loop.inc\n', {
    file: join(dir, 'd.zone'),
    origin: nameFromText('d.'),
    maxIncludeDepth: 0,
  });
  tt.ok(deep.diagnostics.some((d) => /deeper than 0/.test(d.message)));
  const missing = parseMasterFile('$INCLUDE nope.inc\n', {
    file: join(dir, 'e.zone'),
    origin: nameFromText('e.'),
  });
  tt.same(diags(missing), ['1:10 POPDNS_E_INCLUDE']);
  tt.end();
});

t.test('every problem is a positioned diagnostic, and parsing goes on', (tt) => {
  const z = parse(`$TTL 60
a A 192.0.2.256
b 2147483648 A 192.0.2.1
c BOGUS x
d MX 10
e CH A 192.0.2.1
f TXT "unterminated
`);
  tt.same(diags(z), [
    '2:5 POPDNS_E_RDATA',
    '3:3 POPDNS_E_BAD_TTL',
    '4:3 POPDNS_E_UNKNOWN_TYPE',
    '5:6 POPDNS_E_RDATA',
    '6:1 POPDNS_E_BAD_CLASS',
    '7:7 POPDNS_E_SYNTAX',
  ]);
  const noTtl = parse('a A 192.0.2.1\n');
  tt.same(diags(noTtl), ['1:3 POPDNS_E_NO_TTL']);
  const paren = parse('$TTL 1\na TXT ( "x"\n');
  tt.same(diags(paren), ['2:7 POPDNS_E_UNBALANCED_PAREN']);
  const noOrigin = parseMasterFile('$TTL 1\nwww A 192.0.2.1\n', { file: 'x' });
  tt.ok(noOrigin.diagnostics.some((d) => d.code === 'POPDNS_E_NAME' || d.code === 'POPDNS_E_NO_ORIGIN'));
  tt.end();
});

t.test('origin from the file name', (tt) => {
  tt.same(originFromFileName('zones/example.net.zone'), nameFromText('example.net.'));
  tt.same(originFromFileName('/x/example.com.yaml'), nameFromText('example.com.'));
  tt.same(originFromFileName('a/b/example.org.db'), nameFromText('example.org.'));
  tt.end();
});

t.test('writer: SOA first, canonical order, round trip', (tt) => {
  const z = parse(`$TTL 60
zz A 192.0.2.9
@ SOA ns1 hm 1 2 3 4 5
@ NS ns1
*.w TXT "wild"
a.b MX 10 mail
`);
  const text = writeMasterFile(z.origin, z.records, { defaultTtl: 60 });
  const lines = text.split('\n').filter((l) => l && !l.startsWith('$'));
  tt.match(lines[0], /^@\s+60 IN SOA /);
  const again = parse(text);
  tt.same(diags(again), []);
  tt.same(rec(again).sort(), rec(z).sort());
  tt.equal(z.records.filter((r) => r.type === TYPE.SOA).length, 1);
  tt.end();
});
