/**
 * `popdns check` on deliberately broken zones: one positioned line per problem. Each expected position
 * was read off the fixture by hand (line, then the column of the offending token or record).
 */
import t from 'tap';
import { checkZones } from '../../src/cli/check.js';
import '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const B = 'test/fixtures/broken';

t.test('every problem in the broken fixtures, with file:line:col and a stable code', (tt) => {
  const s = checkZones([B]);
  const problems = s.lines
    .filter((l) => /: (error|warning): /.test(l))
    .map((l) => l.replace(/: (error|warning): .* \[/, ': $1 ['));
  tt.same(problems, [
    `${B}/apex.example.zone:5:1: error [POPDNS_E_CNAME_AT_APEX]`,
    `${B}/bad.example.yaml:9:12: error [POPDNS_E_CNAME_AND_OTHER]`,
    `${B}/bad.example.yaml:12:8: error [POPDNS_E_RDATA]`,
    `${B}/bad.example.yaml:13:5: error [POPDNS_E_YAML_UNKNOWN_KEY]`,
    `${B}/bad.example.yaml:15:9: warning [POPDNS_W_TARGET_IS_CNAME]`,
    `${B}/nosoa.example.zone:1:1: error [POPDNS_E_NO_SOA]`,
    `${B}/nosoa.example.zone:1:1: error [POPDNS_E_NO_APEX_NS]`,
    `${B}/semantic.example.zone:4:1: error [POPDNS_E_SOA_MULTIPLE]`,
    `${B}/semantic.example.zone:7:1: error [POPDNS_E_CNAME_AND_OTHER]`,
    `${B}/semantic.example.zone:10:1: error [POPDNS_E_CNAME_MULTIPLE]`,
    `${B}/semantic.example.zone:11:1: error [POPDNS_E_OUT_OF_ZONE]`,
    `${B}/semantic.example.zone:13:1: warning [POPDNS_W_DUPLICATE]`,
    `${B}/semantic.example.zone:14:1: warning [POPDNS_W_TARGET_IS_CNAME]`,
    `${B}/semantic.example.zone:15:1: error [POPDNS_E_MISSING_GLUE]`,
    `${B}/semantic.example.zone:16:1: warning [POPDNS_W_OCCLUDED]`,
    `${B}/syntax.example.zone:5:5: error [POPDNS_E_RDATA]`,
    `${B}/syntax.example.zone:6:3: error [POPDNS_E_BAD_TTL]`,
    `${B}/syntax.example.zone:7:8: error [POPDNS_E_RDATA]`,
    `${B}/syntax.example.zone:8:1: error [POPDNS_E_NAME]`,
    `${B}/syntax.example.zone:9:3: error [POPDNS_E_UNKNOWN_TYPE]`,
    `${B}/syntax.example.zone:10:6: error [POPDNS_E_RDATA]`,
  ]);
  const line = s.lines.find((l) => l.includes('semantic.example.zone:7:1'));
  tt.equal(
    line,
    `${B}/semantic.example.zone:7:1: error: www has a CNAME and other data (A) [POPDNS_E_CNAME_AND_OTHER]`,
  );
  tt.equal(s.errors, 17);
  tt.equal(s.warnings, 4);
  tt.end();
});

t.test('the example zones are clean, even with --strict', (tt) => {
  const s = checkZones(['zones']);
  tt.equal(s.files, 2);
  tt.equal(s.errors, 0);
  tt.equal(s.warnings, 0, s.lines.join('\n'));
  tt.end();
});

t.test('the CLI exits 1 on errors, 0 on clean zones, 1 on warnings only with --strict', (tt) => {
  const cli = 'dist/cli.js';
  const bad = spawnSync(process.execPath, [cli, 'check', B], { encoding: 'utf8' });
  tt.equal(bad.status, 1);
  tt.match(
    bad.stdout,
    /semantic\.example\.zone:4:1: error: more than one SOA record \[POPDNS_E_SOA_MULTIPLE\]/,
  );
  tt.match(bad.stderr, /checked 5 zone files: 17 errors, 4 warnings/);
  const good = spawnSync(process.execPath, [cli, 'check', 'zones'], { encoding: 'utf8' });
  tt.equal(good.status, 0, good.stdout + good.stderr);
  const warnOnly = spawnSync(process.execPath, [cli, 'check', '--strict', `${B}/../warn-only.example.zone`], {
    encoding: 'utf8',
  });
  tt.equal(warnOnly.status, 1, 'a warning fails --strict');
  const warnLax = spawnSync(process.execPath, [cli, 'check', `${B}/../warn-only.example.zone`], {
    encoding: 'utf8',
  });
  tt.equal(warnLax.status, 0, 'but not a plain check');
  tt.end();
});
