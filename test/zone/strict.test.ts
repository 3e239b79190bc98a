/**
 * Issue 11: presentation-format strictness (RFC 1035 §5.1 escapes, non-ASCII names, BOM), the zone's
 * name (--origin, file name, first $ORIGIN only for other names), the checks operators expect, and
 * one message per cause. Expected positions are read off the texts below by hand.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { checkZones } from '../../src/cli/check.js';
import { convertZone } from '../../src/cli/convert.js';
import { zoneOrigin } from '../../src/cli/health.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { loadZone } from '../../src/zone/load.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { looksAbsolute } from '../../src/zone/namechecks.js';
import type { Diagnostic } from '../../src/zone/types.js';
import { tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const HEAD = `$ORIGIN example.com.
$TTL 600
@ SOA ns1 hostmaster 1 7200 3600 1209600 3600
@ NS ns1
ns1 A 192.0.2.53
`;

const at = (ds: Diagnostic[]): string[] =>
  ds
    .map((d) => `${d.pos.line}:${d.pos.col} ${d.severity} ${d.code}`)
    .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10) || a.localeCompare(b));

function load(dir: string, name: string, text: string, origin?: string) {
  const f = join(dir, name);
  writeFileSync(f, text);
  return loadZone(f, undefined, origin ? nameFromText(origin) : undefined);
}

t.test('a backslash escapes one character or starts \\DDD; anything else is an error there', (tt) => {
  const z = parseMasterFile(
    `${HEAD}t3 TXT foo\\
www A 192.0.2.1
t4 TXT "a\\1b"
t5 TXT a\\256
n\\12x A 192.0.2.2
ok TXT "a\\"b\\\\c\\065"
q TXT "open\\
www2 A 192.0.2.5
`,
    { file: 'example.com.zone', origin: nameFromText('example.com.') },
  );
  tt.same(at(z.diagnostics), [
    '6:11 error POPDNS_E_ESCAPE',
    '8:10 error POPDNS_E_ESCAPE',
    '9:9 error POPDNS_E_ESCAPE',
    '10:2 error POPDNS_E_ESCAPE',
    '12:12 error POPDNS_E_ESCAPE',
  ]);
  tt.match(z.diagnostics[0]!.message, /backslash at the end of a line/);
  tt.match(z.diagnostics[1]!.message, /needs three digits/);
  tt.match(z.diagnostics[2]!.message, /over 255/);
  const owners = z.records.map((r) => nameToText(r.owner));
  tt.ok(owners.includes('www.example.com.'), 'the line after the trailing backslash is its own record');
  tt.notOk(owners.includes('t3.example.com.'));
  tt.ok(owners.includes('www2.example.com.'), 'also after a backslash ending a line inside quotes');
  const ok = z.records.find((r) => nameToText(r.owner) === 'ok.example.com.')!;
  tt.same(Buffer.from(ok.rdata).toString('latin1'), '\x06a"b\\cA');
  tt.end();
});

t.test('names: \\DDD needs three digits; non-ASCII is refused with the punycode form; BOM skipped', (tt) => {
  tt.throws(() => nameFromText('a\\12.example.'), /needs three digits/);
  tt.throws(() => nameFromText('a\\256.example.'), /out of range/);
  tt.same(nameFromText('a\\065.example.'), nameFromText('aA.example.'));
  const z = parseMasterFile(`\ufeff${HEAD}münchen A 192.0.2.1\n東京 A 192.0.2.2\nt TXT "münchen"\n`, {
    file: 'example.com.zone',
    origin: nameFromText('example.com.'),
  });
  tt.same(at(z.diagnostics), ['6:1 error POPDNS_E_NAME', '7:1 error POPDNS_E_NAME']);
  tt.match(z.diagnostics[0]!.message, /non-ASCII character "ü".*xn--mnchen-3ya/);
  tt.match(z.diagnostics[1]!.message, /non-ASCII character "東".*IDNA\/punycode/);
  tt.equal(z.records[0]!.type, TYPE.SOA, 'the BOM is not part of the first line');
  const txt = z.records.find((r) => r.type === TYPE.TXT)!;
  tt.same(Buffer.from(txt.rdata.subarray(1)).toString('utf8'), 'münchen', 'text keeps its UTF-8 bytes');
  tt.end();
});

t.test("the zone's name: --origin, else the file name; the first $ORIGIN only for other names", (tt) => {
  const dir = tmpDir(tt);
  // Like the PowerDNS/NSD/Knot test-suite files: $ORIGIN is the parent, the owners are relative.
  const text = `$ORIGIN org.
$TTL 600
example SOA ns1.example hostmaster.example 1 7200 3600 1209600 3600
example NS ns1.example
ns1.example A 192.0.2.53
`;
  const a = load(dir, 'example.org.zone', text);
  tt.equal(a.result.zone?.originText, 'example.org.');
  tt.same(at(a.result.diagnostics), ['1:9 warning POPDNS_W_ORIGIN_MISMATCH']);
  tt.match(a.result.diagnostics[0]!.message, /\$ORIGIN org\. is not the zone's name example\.org\./);
  const b = load(dir, 'db.example.com', HEAD);
  tt.equal(b.result.zone?.originText, 'example.com.', 'db.example.com: named by its first $ORIGIN');
  tt.same(b.result.diagnostics, []);
  const c = load(dir, 'whatever.txt', text, 'example.org.');
  tt.equal(c.result.zone?.originText, 'example.org.', '--origin names it');
  const conv = convertZone(join(dir, 'db.example.com'), 'yaml');
  tt.match(conv.text, /^origin: example\.com\.$/m, 'convert keeps example.com., not db.example.com.');
  tt.equal(zoneOrigin(join(dir, 'example.org.zone')), 'example.org.', 'the health probe agrees');
  tt.equal(zoneOrigin(join(dir, 'db.example.com')), 'example.com.');
  tt.end();
});

t.test('the checks operators expect, each at its record', (tt) => {
  const dir = tmpDir(tt);
  const z = load(
    dir,
    'example.com.zone',
    `${HEAD}@ DS 12345 13 2 0000000000000000000000000000000000000000000000000000000000000000
sub NS ns.sub
ns.sub A 192.0.2.1
side NS ns2.sub.example.com.
lame NS nowhere
d DNAME example.net.
a.d A 192.0.2.3
@ MX 10 mail
@ MX 20 192.0.2.25.
_sip._tcp SRV 0 0 5060 sipper
bad_name A 192.0.2.4
alias CNAME www.cdn.example.net
loop CNAME www.example.com
x.d TXT "hidden"
`,
  );
  tt.ok(z.result.zone, 'loads: all of these are warnings');
  tt.same(at(z.result.diagnostics), [
    '6:1 warning POPDNS_W_DS_AT_APEX',
    '9:1 warning POPDNS_W_SIBLING_GLUE',
    '10:1 warning POPDNS_W_LAME_DELEGATION',
    '12:1 warning POPDNS_W_OCCLUDED',
    '13:1 warning POPDNS_W_NO_ADDRESS',
    '14:1 warning POPDNS_W_TARGET_IS_ADDRESS',
    '15:1 warning POPDNS_W_NO_ADDRESS',
    '16:1 warning POPDNS_W_NOT_HOSTNAME',
    '17:1 warning POPDNS_W_RELATIVE_LOOKS_ABSOLUTE',
    '18:1 warning POPDNS_W_RELATIVE_LOOKS_ABSOLUTE',
    '19:1 warning POPDNS_W_OCCLUDED',
  ]);
  const msg = (code: string): string => z.result.diagnostics.find((d) => d.code === code)!.message;
  tt.equal(msg('POPDNS_W_NO_ADDRESS'), "MX 'mail.example.com.' of @ has no address records (A or AAAA)");
  tt.match(msg('POPDNS_W_TARGET_IS_ADDRESS'), /^MX '192\.0\.2\.25\.' of @ is an address/);
  tt.match(msg('POPDNS_W_OCCLUDED'), /^A at a\.d is below the DNAME at d/);
  tt.equal(
    msg('POPDNS_W_RELATIVE_LOOKS_ABSOLUTE'),
    'CNAME target www.cdn.example.net.example.com. ends in example.net.example.com.: a name written without its final dot? (write www.cdn.example.net. if it is absolute)',
  );
  // Names outside the zone, and regional sub-names like de.example.com, are not flagged.
  const o = nameFromText('example.');
  tt.equal(looksAbsolute(nameFromText('ns.example.com.'), o, 1), null);
  tt.equal(looksAbsolute(nameFromText('shop.de.example.com.'), nameFromText('example.com.'), 2), null);
  tt.equal(
    looksAbsolute(nameFromText('www.example.de.example.com.'), nameFromText('example.com.'), 2),
    'example.de',
  );
  tt.end();
});

t.test('an NS target under an apex DNAME needs no address; the apex NS without one is an error', (tt) => {
  const dir = tmpDir(tt);
  const dn = load(
    dir,
    'example.com.zone',
    '$TTL 600\n@ SOA ns1.example.net. h 1 2 3 4 5\n@ NS ns1.example.com.\n@ DNAME example.net.\n',
  );
  tt.ok(dn.result.zone);
  tt.same(at(dn.result.diagnostics), []);
  const apex = load(dir, 'example.org.zone', '$TTL 600\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n');
  tt.equal(apex.result.zone, null);
  tt.same(at(apex.result.diagnostics), ['3:1 error POPDNS_E_MISSING_GLUE']);
  tt.end();
});

t.test('YAML: one cause, one message; hints to quote', (tt) => {
  const dir = tmpDir(tt);
  const f = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const lines = (p: string): string[] =>
    checkZones([p])
      .lines.filter((l) => / (error|warning): /.test(l))
      .map((l) => l.slice(dir.length + 1));
  const tab = f('tab.example.yaml', 'records:\n  "@":\n    NS: ns1\n  ns1:\n\tA: 192.0.2.1\n');
  tt.same(lines(tab), [
    'tab.example.yaml:5:1: error: a tab in the indentation (YAML indents with spaces only) [POPDNS_E_YAML_SYNTAX]',
  ]);
  const v6 = f('v6.example.yaml', 'records:\n  "@":\n    NS: ns1\n  ns1:\n    AAAA: 2001:db8::\n');
  tt.same(lines(v6), [
    `v6.example.yaml:5:11: error: YAML reads the value 2001:db8:: as a mapping because it ends in ":" (an IPv6 address?); quote it: '2001:db8::' [POPDNS_E_YAML_SYNTAX]`,
  ]);
  // The same values inside a flow mapping: YAML's error there is "Block collections are not allowed
  // within flow collections"; the hint names the value.
  const flow = f(
    'flow.example.yaml',
    'records:\n  "@": { NS: ns1 }\n  ns1: { AAAA: 2001:db8:: }\n  t: { TXT: a: b, A: 192.0.2.1 }\n',
  );
  tt.same(lines(flow), [
    `flow.example.yaml:3:16: error: YAML reads the value 2001:db8:: as a mapping because it ends in ":" (an IPv6 address?); quote it: '2001:db8::' [POPDNS_E_YAML_SYNTAX]`,
    `flow.example.yaml:4:13: error: YAML reads the value a: b as a mapping because of the ": " in it; quote it: 'a: b' [POPDNS_E_YAML_SYNTAX]`,
  ]);
  const q = f(
    'q.example.yaml',
    `soa: { serial: 1 }\nrecords:\n  "@":\n    NS: ns1\n    TXT: '"v=spf1 -all"'\n  ns1:\n    A: 192.0.2.1\n    AAAA: [2001:db8::]\n`,
  );
  tt.same(lines(q), [
    `q.example.yaml:5:10: warning: TXT value starts and ends with a literal " (the quotes become part of the text, which breaks SPF and DKIM); in YAML write the text itself: 'v=spf1 -all' [POPDNS_W_TXT_QUOTES]`,
    `q.example.yaml:8:12: error: AAAA value reads as a YAML mapping (the key "2001:db8:" with no value), not a string: quote it: '2001:db8::' [POPDNS_E_YAML_TYPE]`,
  ]);
  tt.end();
});

t.test('check /nonexistent says the path does not exist and nothing else', (tt) => {
  const r = spawnSync(process.execPath, ['dist/cli.js', 'check', '/nonexistent/zones'], { encoding: 'utf8' });
  tt.equal(r.status, 1);
  tt.equal(
    r.stdout,
    '/nonexistent/zones: error: no such file or directory: the path does not exist [POPDNS_E_NOT_FOUND]\n',
  );
  tt.equal(r.stderr, '');
  tt.end();
});

t.test('a file that is not UTF-8 is refused at its first bad byte, not served as U+FFFD', (tt) => {
  const dir = tmpDir(tt);
  // A Latin-1 é (0xe9) in a TXT: line 6 (HEAD has 5 lines), column 11 counting characters.
  const f = join(dir, 'example.com.zone');
  writeFileSync(
    f,
    Buffer.concat([Buffer.from(HEAD), Buffer.from('t TXT "caf'), Buffer.from([0xe9, 0x22, 0x0a])]),
  );
  const r = loadZone(f).result;
  tt.equal(r.zone, null);
  tt.same(at(r.diagnostics), ['6:11 error POPDNS_E_ENCODING']);
  tt.match(r.diagnostics[0]!.message, /0xe9 is not UTF-8.*\\233/);
  // The same byte written as \233, or é as UTF-8, loads.
  writeFileSync(f, `${HEAD}t TXT "caf\\233" "café"\n`);
  tt.same(at(loadZone(f).result.diagnostics), []);
  tt.end();
});
