/**
 * Duplicate records (RFC 2181 §5): RRs equal under DNS comparison are one record. The owner compares
 * without case; names inside the RDATA of the RFC 4034 §6.2 types compare without case; the RFC 3597
 * form of an RDATA equals its typed form. popdns keeps the first, warns with both positions and never
 * serves the copies. Where case is significant (SVCB/HTTPS TargetName, TXT) the records differ, which
 * is also what Knot does: each case is checked against knotd.
 */
import t from 'tap';
import { resolve } from '../../src/query/engine.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { rdataToText } from '../../src/wire/rdata.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import type { Diagnostic } from '../../src/zone/types.js';
import { parseYamlZone } from '../../src/zone/yamlzone.js';
import { buildZone, type Zone } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';
import { queryTcp } from '../helpers/dns.js';
import { startKnotText } from '../helpers/knot.js';
import { needTool } from '../helpers/peers.js';

const O = nameFromText('example.com.');
const HEADER = [
  '$ORIGIN example.com.',
  '$TTL 600',
  '@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300',
  '@ NS ns1.example.net.',
];
/** The example: `dupl MX 10 some.domain.` written seven ways (lines 5-11). */
const SEVEN_WAYS = [
  'dupl MX 10 some.domain.',
  'DUPL MX 10 some.domain.',
  'dupl MX 10 SOME.DOMAIN.',
  'Dupl MX 10 Some.Domain.',
  'dupl MX \\# 15 000a04534f4d4506444f4d41494e00',
  'dupl MX \\# 15 000a04736f6d6506646f6d61696e00',
  'dUpL MX 10 sOmE.dOmAiN.',
];
const CASES = [
  ...SEVEN_WAYS,
  'svc HTTPS 1 Svc.Example.net. alpn=h2', // 12: TargetName case is significant (not on the §6.2 list)
  'svc HTTPS 1 svc.example.net. alpn=h2',
  'c CNAME Target.example.net.', // 14
  'C CNAME target.example.net.',
  't TXT "abc"', // 16: character-strings keep their case
  't TXT "ABC"',
  'n NSEC next.example.com. A', // 18: NSEC is not lowered (RFC 6840 §5.1)
  'n NSEC NEXT.example.com. A',
  'a A 192.0.2.1', // 20
  'A A 192.0.2.1',
  'a A 192.0.2.2',
  'a A 192.0.2.1',
];
const TEXT = [...HEADER, ...CASES, ''].join('\n');

function build(text: string): { zone: Zone; diagnostics: Diagnostic[] } {
  const r = buildZone(parseMasterFile(text, { file: 'dup.zone', origin: O }));
  if (!r.zone) throw new Error(JSON.stringify(r.diagnostics));
  return { zone: r.zone, diagnostics: r.diagnostics };
}

function served(zone: Zone, name: string, type: number): string[] {
  const a = resolve(new ZoneSet([zone]), nameFromText(name), type);
  return a.answer.filter((s) => s.type === type).flatMap((s) => s.rdatas.map((rd) => rdataToText(type, rd)));
}

t.test('the seven ways of one MX are one MX', (tt) => {
  const { zone, diagnostics } = build(TEXT);
  tt.same(served(zone, 'dupl.example.com.', TYPE.MX), ['10 some.domain.'], 'one MX, as first written');
  tt.same(served(zone, 'DUPL.example.com.', TYPE.MX), ['10 some.domain.']);
  const dups = diagnostics.filter((d) => d.code === 'POPDNS_W_DUPLICATE' && d.message.includes(' MX '));
  tt.same(
    dups.map((d) => `${d.pos.line}:${d.pos.col}`),
    ['6:1', '7:1', '8:1', '9:1', '10:1', '11:1'],
    'a warning at each copy',
  );
  for (const d of dups) {
    tt.equal(d.severity, 'warning');
    tt.match(
      d.message,
      /the same record as the one at dup\.zone:5 \(RFC 2181 §5\)/,
      'names the first position',
    );
  }
  tt.end();
});

t.test('where case is significant the records differ; where it is not they are one', (tt) => {
  const { zone, diagnostics } = build(TEXT);
  tt.same(served(zone, 'svc.example.com.', TYPE.HTTPS).sort(), [
    '1 Svc.Example.net. alpn="h2"',
    '1 svc.example.net. alpn="h2"',
  ]);
  tt.same(served(zone, 'c.example.com.', TYPE.CNAME), ['Target.example.net.'], 'one CNAME, no error');
  tt.notOk(
    diagnostics.some((d) => d.code === 'POPDNS_E_CNAME_MULTIPLE'),
    'a CNAME twice in another case is not "more than one CNAME"',
  );
  tt.same(served(zone, 't.example.com.', TYPE.TXT).sort(), ['"ABC"', '"abc"']);
  tt.same(served(zone, 'n.example.com.', TYPE.NSEC).sort(), ['NEXT.example.com. A', 'next.example.com. A']);
  tt.same(served(zone, 'a.example.com.', TYPE.A), ['192.0.2.1', '192.0.2.2']);
  const aDups = diagnostics.filter((d) => d.code === 'POPDNS_W_DUPLICATE' && d.message.includes(' A '));
  tt.same(
    aDups.map((d) => [d.pos.line, /dup\.zone:([0-9]+)/.exec(d.message)?.[1]]),
    [
      [21, '20'],
      [23, '20'],
    ],
    'A duplicates name the first A too',
  );
  tt.end();
});

t.test('an identical second SOA is a duplicate, a different one an error', (tt) => {
  const same = buildZone(
    parseMasterFile([...HEADER, HEADER[2]!, ''].join('\n'), { file: 'soa.zone', origin: O }),
  );
  tt.ok(same.zone);
  tt.match(
    same.diagnostics.map((d) => `${d.code} ${d.message}`),
    [/POPDNS_W_DUPLICATE duplicate SOA .*soa\.zone:3/],
  );
  const other = buildZone(
    parseMasterFile(
      [...HEADER, '@ SOA ns1.example.net. hostmaster.example.net. 2 3600 600 86400 300', ''].join('\n'),
      {
        file: 'soa.zone',
        origin: O,
      },
    ),
  );
  tt.equal(other.zone, null);
  tt.ok(other.diagnostics.some((d) => d.code === 'POPDNS_E_SOA_MULTIPLE'));
  tt.end();
});

t.test('YAML zones follow the same rule', (tt) => {
  const yaml = [
    'soa:',
    '  mname: ns1.example.net.',
    '  rname: hostmaster.example.net.',
    'records:',
    '  "@":',
    '    NS: ns1.example.net.',
    '  dupl:',
    '    MX:',
    '      - 10 some.domain.',
    '      - 10 SOME.Domain.',
    '      - \\# 15 000a04534f4d4506444f4d41494e00',
    '  DUPL:',
    '    MX: 10 some.DOMAIN.',
    '',
  ].join('\n');
  const r = buildZone(parseYamlZone(yaml, { file: 'dup.yaml', origin: O }));
  tt.ok(r.zone, JSON.stringify(r.diagnostics));
  tt.same(served(r.zone!, 'dupl.example.com.', TYPE.MX), ['10 some.domain.']);
  tt.same(
    r.diagnostics.filter((d) => d.code === 'POPDNS_W_DUPLICATE').map((d) => d.pos.line),
    [10, 11, 13],
  );
  tt.end();
});

t.test('knotd agrees on which records are one', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const knot = await startKnotText(tt, [{ origin: 'example.com.', text: TEXT }]);
  const { zone } = build(TEXT);
  for (const [name, type, tname] of [
    ['dupl.example.com.', TYPE.MX, 'MX'],
    ['svc.example.com.', TYPE.HTTPS, 'HTTPS'],
    ['c.example.com.', TYPE.CNAME, 'CNAME'],
    ['t.example.com.', TYPE.TXT, 'TXT'],
    ['n.example.com.', TYPE.NSEC, 'NSEC'],
    ['a.example.com.', TYPE.A, 'A'],
  ] as const) {
    const r = await queryTcp(knot.port, name, tname);
    const knotCount = (r.answers ?? []).filter(
      (a) => a.type === tname || a.type === `UNKNOWN_${type}`,
    ).length;
    tt.equal(served(zone, name, type).length, knotCount, `${name} ${tname}: as many records as Knot serves`);
  }
});
