/** Every ```yaml example in the docs loads without a problem, so the docs never rot. */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { nameFromText } from '../../src/wire/name.js';
import { formatDiagnostic } from '../../src/zone/types.js';
import { parseYamlZone } from '../../src/zone/yamlzone.js';
import { buildZone } from '../../src/zone/zone.js';

for (const doc of ['docs/zone-format.md', 'README.md']) {
  const text = readFileSync(doc, 'utf8');
  const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  t.test(`${doc}: ${blocks.length} YAML zone examples load`, (tt) => {
    tt.ok(blocks.length > 0);
    for (const [i, block] of blocks.entries()) {
      const name = /^# (?:\S*\/)?(\S+)\.yaml/m.exec(block)?.[1];
      tt.ok(name, `example ${i + 1} names its file in a first-line comment`);
      const built = buildZone(
        parseYamlZone(block, { file: `${doc}#${i + 1}`, origin: nameFromText(`${name}.`) }),
      );
      tt.same(built.diagnostics.map(formatDiagnostic), [], `example ${i + 1} (${name}) has no problems`);
      tt.ok(built.zone && built.zone.recordCount > 2, `example ${i + 1} builds a zone`);
    }
    tt.end();
  });
}
