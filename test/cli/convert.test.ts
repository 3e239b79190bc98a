/** `popdns convert` is lossless both ways: every record (owner, type, TTL, RDATA bytes) survives. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { convertZone } from '../../src/cli/convert.js';
import { typeToText } from '../../src/wire/constants.js';
import { nameKey } from '../../src/wire/name.js';
import { parseZoneFile } from '../../src/zone/load.js';

function recordSet(path: string): string[] {
  const parsed = parseZoneFile(path);
  const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`${path}: ${errors.map((e) => e.message).join('; ')}`);
  return parsed.records
    .map(
      (r) =>
        `${Buffer.from(nameKey(r.owner), 'latin1').toString('hex')} ${typeToText(r.type)} ${r.ttl} ${Buffer.from(r.rdata).toString('hex')}`,
    )
    .sort();
}

const dir = mkdtempSync(join(tmpdir(), 'popdns-convert-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

for (const [src, name] of [
  ['zones/example.com.yaml', 'example.com'],
  ['zones/example.net.zone', 'example.net'],
] as const) {
  t.test(`${src}: YAML → zone → YAML and zone → YAML → zone keep every record`, (tt) => {
    const original = recordSet(src);
    tt.ok(original.length > 10, 'the example zone has records');
    const asZone = convertZone(src, 'zone');
    tt.same(asZone.errors, []);
    const zonePath = join(dir, `${name}.zone`);
    writeFileSync(zonePath, asZone.text ?? '');
    tt.same(recordSet(zonePath), original, 'as RFC 1035');
    const asYaml = convertZone(zonePath, 'yaml');
    tt.same(asYaml.errors, []);
    const yamlPath = join(dir, `${name}.yaml`);
    writeFileSync(yamlPath, asYaml.text ?? '');
    tt.same(recordSet(yamlPath), original, 'back as YAML');
    const again = convertZone(yamlPath, 'zone');
    tt.equal(again.text, asZone.text, 'the second conversion is byte-identical (stable output)');
    tt.end();
  });
}

t.test('a file that does not parse is not converted', (tt) => {
  const res = convertZone('test/fixtures/broken/syntax.example.zone', 'yaml');
  tt.equal(res.text, null);
  tt.ok(res.errors.length > 0);
  tt.match(res.errors[0], /^test\/fixtures\/broken\/syntax\.example\.zone:\d+:\d+: error: /);
  tt.end();
});
