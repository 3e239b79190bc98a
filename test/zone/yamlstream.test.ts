/**
 * The streamed YAML reading (yamlstream.ts) against the document-model one: same records (with their
 * positions), same diagnostics, on the docs' examples and on every way a zone file can be written;
 * errors deep in a big file keep their exact line and column; duplicate keys are found while
 * streaming; a big file is read in steps and never collected as a record list.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { typeToText } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { loadZone, loadZoneSteps } from '../../src/zone/load.js';
import { formatDiagnostic, type ParsedZone, type ZoneRecord } from '../../src/zone/types.js';
import { CHUNK, findRecordsBlock, RecordsReader, YamlFallback } from '../../src/zone/yamlstream.js';
import {
  parseYamlZone,
  parseYamlZoneDocument,
  parseYamlZoneSteps,
  writeYamlZone,
} from '../../src/zone/yamlzone.js';
import { buildZone } from '../../src/zone/zone.js';
import { tmpDir } from '../helpers/peers.js';
import { parseDocument } from 'yaml';

const O = nameFromText('example.com.');
const rec = (r: ZoneRecord): string =>
  `${nameToText(r.owner)} ${r.ttl} ${typeToText(r.type)} ${Buffer.from(r.rdata).toString('hex')} @${r.pos.line}:${r.pos.col}`;
const summary = (z: ParsedZone): unknown => ({
  origin: nameToText(z.origin),
  records: z.records.map(rec),
  diagnostics: z.diagnostics.map(formatDiagnostic),
  defaultTtl: z.defaultTtl,
  dnssec: z.dnssec,
  incomplete: z.incomplete,
  failedTypes: z.failedTypes ? [...z.failedTypes].sort() : undefined,
});

/** Reads a text's records block with RecordsReader: how many owner entries, or the fallback's reason. */
function streamed_(text: string): { entries: number; fallback?: string } {
  const b = findRecordsBlock(text);
  if (!b) return { entries: 0, fallback: 'no records block' };
  const r = new RecordsReader(text, b, parseDocument('a: 1').options);
  try {
    while (r.next());
  } catch (e) {
    if (e instanceof YamlFallback) return { entries: r.entries, fallback: e.why };
    throw e;
  }
  return { entries: r.entries };
}

const HEAD = 'ttl: 600\nsoa: { mname: ns1, serial: 5 }\nrecords:\n';
const cases: [string, string][] = [
  [
    'flow and block forms, lists, TTLs, comments',
    `${HEAD}  "@":
    NS: ns1   # the primary
    MX: [10 mail, { preference: 20, exchange: mx2 }]
  # a comment at the owners' indentation
  www:
    ttl: 60
    A: [192.0.2.1, { address: 192.0.2.2 }, { value: 192.0.2.3, ttl: 5 }]
    TXT: "v=spf1 -all"
    AAAA:
      - 2001:db8::1
      - value: 2001:db8::2
        ttl: 30
      - '2001:db8::3'
  mx: { MX: { preference: 10, exchange: mail.example.net. } }
  'it''s': { TXT: 'it''s' }
  x1: { A: 192.0.2.9 }   # trailing comment
  x2:
    A:
    - 192.0.2.10
    - 192.0.2.11
  num: { TXT: 010, A: 1.2.3.4 }
  1: { A: 192.0.2.12 }
`,
  ],
  [
    'mistakes with positions (the yamlzone test file)',
    `ttl: forever
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
`,
  ],
  ['duplicate owner', 'records:\n  www: { A: 192.0.2.1 }\n  www: { A: 192.0.2.2 }\n'],
  ['duplicate type', 'records:\n  "@": { NS: ns1 }\n  www:\n    A: 192.0.2.1\n    A: 192.0.2.2\n'],
  ['duplicate in a flow map', 'records:\n  www: { A: 192.0.2.1, A: 192.0.2.2 }\n'],
  ['duplicate, 1 and 01', 'records:\n  1: { A: 192.0.2.1 }\n  01: { A: 192.0.2.2 }\n'],
  ['duplicate top key', 'ttl: 1\nttl: 2\nrecords:\n  www: { A: 192.0.2.1 }\n'],
  ['syntax error in records', `${HEAD}  "@": { NS: ns1 }\n  www: { A: 192.0.2.1\n  ok: { A: 192.0.2.2 }\n`],
  ['IPv6 ending in ::', `${HEAD}  "@": { NS: ns1 }\n  v6:\n    AAAA: 2001:db8::\n`],
  ['IPv6 ending in :: in a list', `${HEAD}  "@": { NS: ns1 }\n  v6: { AAAA: [2001:db8::] }\n`],
  ['tab indentation', `${HEAD}  "@": { NS: ns1 }\n  www:\n\tA: 192.0.2.1\n`],
  ['YAML 1.1', `%YAML 1.1\n---\n${HEAD}  "@": { NS: ns1 }\n  t: { TXT: [yes, on, y, 0b1], A: 192.0.2.1 }\n`],
  [
    'numbers and specials',
    `${HEAD}  "@": { NS: ns1 }\n  t: { TXT: [.inf, -.5, 1e3, 0o17, 0x1F, +12, ~, Null, tRUE, nope, False] }\n`,
  ],
  ['a lone CR', `${HEAD}  "@": { NS: ns1 }\n  www: { TXT: a\rb }\n  x: { A: 192.0.2.1 }\n`],
  ['tab in a value', `${HEAD}  "@": { NS: ns1 }\n  www: { TXT: "a\tb" }\n`],
  ['CRLF line ends', `${HEAD}  "@": { NS: ns1 }\n  www:\n    A: 192.0.2.1\n`.replace(/\n/g, '\r\n')],
  [
    'anchors and aliases',
    `${HEAD}  "@": { NS: ns1 }\n  a: &web { A: 192.0.2.1 }\n  b: *web\n  c: { A: &ip 192.0.2.3, TXT: *ip }\n`,
  ],
  ['block scalar', `${HEAD}  "@": { NS: ns1 }\n  t:\n    TXT: |\n      line one\n`],
  ['escapes in double quotes', `${HEAD}  "@": { NS: ns1 }\n  t: { TXT: "a\\"b\\u00e9" }\n`],
  ['multi-line plain scalar', `${HEAD}  "@": { NS: ns1 }\n  t:\n    TXT: one\n      two\n`],
  ['null values', `${HEAD}  "@": { NS: ns1 }\n  t:\n    A:\n    TXT: ~\n  u: null\n`],
  ['empty collections', `${HEAD}  "@": { NS: ns1 }\n  t: {}\n  u: { A: [] }\n`],
  [
    'booleans and numbers',
    `${HEAD}  "@": { NS: ns1 }\n  t: { TXT: yes, A: true }\n  u: { TXT: 1.50, HINFO: 0x10 x }\n`,
  ],
  ['a sequence as owner body', `${HEAD}  "@": { NS: ns1 }\n  t:\n  - A\n`],
  ['records as a flow map', 'soa: { mname: ns1 }\nrecords: { "@": { NS: ns1 } }\n'],
  ['records empty', 'soa: { mname: ns1 }\nrecords:\n# nothing\nttl: 5\n'],
  [
    'soa after records, mname from apex NS',
    'records:\n  "@": { NS: [ns9.example.net.] }\nsoa: { rname: host.master@example.com }\n',
  ],
  ['origin key', `origin: example.com\n${HEAD}  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n`],
  ['bad owner indentation', `${HEAD}    "@": { NS: ns1 }\n  www: { A: 192.0.2.1 }\n`],
  ['deeper owner line', `${HEAD}  "@": { NS: ns1 }\n   www: { A: 192.0.2.1 }\n`],
  ['second document', `${HEAD}  "@": { NS: ns1 }\n---\nttl: 5\n`],
  [
    'unknown types and keys',
    `${HEAD}  "@": { NS: ns1, a: 1, FOO: x, SOA: y }\n  www: { A: { value: 1.2.3.4, x: 1 } }\n`,
  ],
  [
    'TXT quotes and strings',
    `${HEAD}  "@": { NS: ns1 }\n  t: { TXT: ['"quoted"', { strings: [a, '"b"'] }] }\n`,
  ],
  ['CAA structured', `${HEAD}  "@": { NS: ns1, CAA: { flags: 0, tag: issue, value: letsencrypt.org } }\n`],
  ['key with spaces before colon', `${HEAD}  "@" : { NS: ns1 }\n  www :\n    A : 192.0.2.1\n`],
  ['comment right after a value', `${HEAD}  "@": { NS: ns1 }\n  www: { A: 192.0.2.1 }# x\n`],
  [
    'wildcard and quoted owners',
    `${HEAD}  "@": { NS: ns1 }\n  "*.apps": { A: 192.0.2.80 }\n  '*': { A: 192.0.2.81 }\n`,
  ],
  [
    'bad names and rdata',
    `${HEAD}  "@": { NS: ns1 }\n  a..b: { A: 192.0.2.1 }\n  c: { MX: 10 x..y, A: 300.1.1.1 }\n`,
  ],
  ['no origin', 'records:\n  www: { A: 192.0.2.1 }\n'],
  ['owner with a scalar body', `${HEAD}  "@": { NS: ns1 }\n  www: 192.0.2.1\n  -x: { TXT: a#b }\n`],
  [
    'seq items with compact mappings',
    `${HEAD}  "@":\n    NS:\n      - "value": ns1\n        ttl: 9\n      - { value: ns2 }\n`,
  ],
];

t.test('streamed reading = document reading: records, positions, diagnostics', (tt) => {
  const docs = ['docs/zone-format.md', 'README.md'].flatMap((f) =>
    [...readFileSync(f, 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1]!)
      .filter((b) => /^# (?:\S*\/)?(\S+)\.ya?ml\b/.test(b) && !/^# (?:\S*\/)?popdns\.ya?ml\b/.test(b))
      .map((b, i): [string, string] => [`${f} example ${i + 1}`, b]),
  );
  tt.ok(docs.length >= 3, 'the docs have zone examples');
  for (const [what, text] of [...cases, ...docs]) {
    const opts = what === 'no origin' ? { file: 'z.yaml' } : { file: 'z.yaml', origin: O };
    tt.same(summary(parseYamlZone(text, opts)), summary(parseYamlZoneDocument(text, opts)), what);
  }
  // The writer's own output streams (no whole-file fallback).
  const z = parseYamlZone(cases[0]![1], { file: 'z.yaml', origin: O });
  const written = writeYamlZone(O, z.records, { defaultTtl: 600 });
  tt.same(
    summary(parseYamlZone(written, { file: 'w.yaml', origin: O })),
    summary(parseYamlZoneDocument(written, { file: 'w.yaml', origin: O })),
    'the writer output',
  );
  tt.same(streamed_(written).fallback, undefined, 'the writer output needs no fallback');
  const crlf = cases[0]![1].replace(/\n/g, '\r\n');
  tt.same(
    summary(parseYamlZone(crlf, { file: 'z.yaml', origin: O })),
    summary(parseYamlZoneDocument(crlf, { file: 'z.yaml', origin: O })),
    'CRLF line ends, every form',
  );
  tt.same(streamed_(crlf), { entries: 8 }, 'CRLF files need no fallback');
  tt.same(streamed_(cases[0]![1]), { entries: 8 }, 'every entry of the common forms streams');
  tt.end();
});

t.test('loading a file streams into the zone builder: same zone and diagnostics', (tt) => {
  const dir = tmpDir(tt, 'popdns-h5-');
  for (const [what, text] of cases) {
    const file = join(dir, 'example.com.yaml');
    writeFileSync(file, text);
    const viaLoad = loadZone(file).result;
    const viaDoc = buildZone(parseYamlZoneDocument(text, { file, origin: O }));
    tt.same(viaLoad.diagnostics.map(formatDiagnostic), viaDoc.diagnostics.map(formatDiagnostic), what);
    tt.equal(viaLoad.zone?.recordCount, viaDoc.zone?.recordCount, `${what}: record count`);
    tt.equal(viaLoad.zone?.serial, viaDoc.zone?.serial, `${what}: serial`);
  }
  tt.end();
});

/** A zone of `n` names in the bench's flow form; owner i is on line 5 + i. */
function bigYaml(n: number, line: (i: number) => string): string {
  const out = ['ttl: 3600', 'soa: { mname: ns1, serial: 1 }', 'records:', '  "@": { NS: ns1 }'];
  for (let i = 0; i < n; i++) out.push(line(i));
  return `${out.join('\n')}\n`;
}

t.test('errors deep in a big file keep their line and column', (tt) => {
  const n = 30000;
  const bad = 27182;
  // Entry 0 is "@", h(i) is entry i + 1: this owner is the first of a chunk, its value at the
  // chunk's first line (offsets shifted by the most).
  const atChunk = 100 * CHUNK - 1;
  tt.ok(atChunk < bad, 'the chunk boundary case is before the other errors');
  const text = bigYaml(n, (i) =>
    i === bad
      ? `  h${i}: { A: 10.0.0.999 }`
      : i === bad + 1
        ? `  h${i}:\n    MX: 10 a..b`
        : i === atChunk
          ? `  h${i}: { AAAA: 10.0.0.1 }`
          : `  h${i}: { A: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} }`,
  );
  let streamed = 0;
  let restarted = false;
  const z = parseYamlZone(text, {
    file: 'big.yaml',
    origin: O,
    onRecord: () => void streamed++,
    onRestart: () => void (restarted = true),
  });
  tt.notOk(restarted, 'read as a stream');
  tt.equal(z.records.length, 0, 'records went to onRecord, not into a list');
  tt.equal(streamed, n - 3 + 2, 'every good record and the SOA');
  // Owner i is on line 5 + i; the bad A value starts after "  h27182: { A: ", the bad MX
  // target (a..b, an empty label) after "    MX: 10 " on the line after the next owner.
  const aLine = 5 + bad;
  const aCol = 3 + `h${bad}: { A: `.length;
  tt.same(
    z.diagnostics.map((d) => `${d.pos.line}:${d.pos.col} ${d.code}`),
    [
      `${5 + atChunk}:${3 + `h${atChunk}: { AAAA: `.length} POPDNS_E_RDATA`,
      `${aLine}:${aCol} POPDNS_E_RDATA`,
      `${aLine + 2}:${5 + 'MX: 10 '.length} POPDNS_E_RDATA`,
    ],
  );
  tt.end();
});

t.test('duplicate keys are found while streaming, across chunks, with both lines', (tt) => {
  const n = 8000; // the fallback then reads the whole file as a document: kept small
  // h123 is in the first chunk, its duplicate in chunk 31: only the owners set sees both.
  tt.ok(n - 10 >= 2 * CHUNK, 'the duplicate is chunks away from the first');
  const text = bigYaml(n, (i) => (i === n - 10 ? '  h123: { A: 10.9.9.9 }' : `  h${i}: { A: 10.0.0.1 }`));
  let streamed = 0;
  let restarted = false;
  const z = parseYamlZone(text, {
    file: 'big.yaml',
    origin: O,
    onRecord: () => void streamed++,
    onRestart: () => void (restarted = true),
  });
  tt.ok(streamed > 7000 && restarted, 'found by the streamed reading, after it had streamed records');
  tt.same(
    z.diagnostics.map((d) => `${d.pos.line}:${d.pos.col} ${d.code} ${d.message}`),
    [`${5 + n - 10}:3 POPDNS_E_YAML_DUPLICATE_KEY duplicate key "h123" (first at line ${5 + 123})`],
  );
  tt.ok(z.incomplete);
  // The last owner of one chunk and the first of the next.
  const last = CHUNK - 2; // entry CHUNK - 1 ("@" is entry 0)
  const edge = bigYaml(2 * CHUNK, (i) =>
    i === last + 1 ? `  h${last}: { A: 10.9.9.9 }` : `  h${i}: { A: 10.0.0.1 }`,
  );
  tt.same(streamed_(edge), { entries: CHUNK, fallback: 'duplicate key' }, 'seen at the start of chunk 2');
  const ze = parseYamlZone(edge, { file: 'big.yaml', origin: O });
  tt.same(
    ze.diagnostics.map((d) => `${d.pos.line}:${d.pos.col} ${d.code}`),
    [`${5 + last + 1}:3 POPDNS_E_YAML_DUPLICATE_KEY`],
  );
  tt.end();
});

t.test('a big file is read in steps', (tt) => {
  const text = bigYaml(10000, (i) => `  h${i}: { A: 10.0.0.1 }`);
  const steps = parseYamlZoneSteps(text, { file: 'big.yaml', origin: O, onRecord: () => {} });
  let yields = 0;
  for (let r = steps.next(); !r.done; r = steps.next()) yields++;
  tt.ok(yields >= 4, `yielded ${yields} times for 10,000 names`);
  // loadZoneSteps (what a reload runs in slices) yields while it reads a YAML file too.
  const file = join(tmpDir(tt, 'popdns-h5-'), 'example.com.yaml');
  writeFileSync(file, `${text}  ns1: { A: 192.0.2.53 }\n`);
  const load = loadZoneSteps(file);
  let loadYields = 0;
  let r = load.next();
  for (; !r.done; r = load.next()) loadYields++;
  tt.ok(loadYields >= 4, `loadZoneSteps yielded ${loadYields} times`);
  tt.same(r.value.result.diagnostics, []);
  tt.equal(r.value.result.zone?.recordCount, 10003, 'every record, the SOA, the apex NS and its A');
  tt.end();
});
