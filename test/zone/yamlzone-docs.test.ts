/**
 * Every ```yaml example in the docs loads without a problem, so the docs never rot. A block whose first
 * comment names a zone file (`# zones/example.org.yaml`) is a zone; any other block is a piece of the
 * server's config file and must parse as one (unknown keys are errors there too).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { defaultConfig, parseConfig } from '../../src/server/config.js';
import { VERSION } from '../../src/version.js';
import { nameFromText } from '../../src/wire/name.js';
import { formatDiagnostic } from '../../src/zone/types.js';
import { parseYamlZone } from '../../src/zone/yamlzone.js';
import { buildZone } from '../../src/zone/zone.js';

for (const doc of ['docs/zone-format.md', 'README.md']) {
  const text = readFileSync(doc, 'utf8');
  const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  t.test(`${doc}: ${blocks.length} YAML examples load`, (tt) => {
    tt.ok(blocks.length > 0);
    for (const [i, block] of blocks.entries()) {
      const name = /^# (?:\S*\/)?(\S+)\.ya?ml\b/.exec(block)?.[1];
      if (name === undefined || name === 'popdns') {
        tt.doesNotThrow(
          () => parseConfig(block, `${doc}#${i + 1}`, defaultConfig(VERSION, 1)),
          `example ${i + 1} parses as server config`,
        );
        continue;
      }
      const built = buildZone(
        parseYamlZone(block, { file: `${doc}#${i + 1}`, origin: nameFromText(`${name}.`) }),
      );
      tt.same(built.diagnostics.map(formatDiagnostic), [], `example ${i + 1} (${name}) has no problems`);
      tt.ok(built.zone && built.zone.recordCount > 2, `example ${i + 1} builds a zone`);
    }
    tt.end();
  });
}
