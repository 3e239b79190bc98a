/** `popdns check PATH...`: loads zone files exactly as the server does and prints every problem. */
import { statSync } from 'node:fs';
import { nameKey, nameToText } from '../wire/name.js';
import { isZoneFileName, listZoneFiles, loadZoneFile } from '../zone/load.js';
import { type Diagnostic, formatDiagnostic } from '../zone/types.js';

export interface CheckOptions {
  strict?: boolean;
  quiet?: boolean;
}

export interface CheckSummary {
  files: number;
  errors: number;
  warnings: number;
  lines: string[];
}

/** Expands directories to the zone files inside them; files are taken as given. */
export function expandZonePaths(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      out.push(p); // loadZoneFile reports the read error with the path
      continue;
    }
    if (isDir) out.push(...listZoneFiles(p));
    else out.push(p);
  }
  return out;
}

function byPosition(a: Diagnostic, b: Diagnostic): number {
  return a.pos.file.localeCompare(b.pos.file) || a.pos.line - b.pos.line || a.pos.col - b.pos.col;
}

export function checkZones(paths: string[]): CheckSummary {
  const files = expandZonePaths(paths);
  const diags: Diagnostic[] = [];
  const seen = new Map<string, string>();
  const ok: string[] = [];
  for (const file of files) {
    if (!isZoneFileName(file)) {
      diags.push({
        severity: 'warning',
        code: 'POPDNS_W_NOT_A_ZONE_FILE',
        message: 'not a zone file name (*.yaml, *.yml, *.zone, *.db); the server would not load it',
        pos: { file, line: 1, col: 1 },
      });
    }
    const res = loadZoneFile(file);
    diags.push(...[...res.diagnostics].sort(byPosition));
    if (res.zone) {
      const key = nameKey(res.zone.origin);
      const other = seen.get(key);
      if (other) {
        diags.push({
          severity: 'error',
          code: 'POPDNS_E_DUPLICATE_ZONE',
          message: `zone ${res.zone.originText} is also defined in ${other}`,
          pos: { file, line: 1, col: 1 },
        });
      } else {
        seen.set(key, file);
        ok.push(
          `${file}: ${nameToText(res.zone.origin)} serial ${res.zone.serial}, ${res.zone.recordCount} records`,
        );
      }
    }
  }
  const errors = diags.filter((d) => d.severity === 'error').length;
  return {
    files: files.length,
    errors,
    warnings: diags.length - errors,
    lines: [...diags.map(formatDiagnostic), ...ok],
  };
}

/** Runs the check, prints the result, returns the exit code. */
export function runCheck(paths: string[], opts: CheckOptions): number {
  const s = checkZones(paths.length > 0 ? paths : ['zones']);
  for (const l of s.lines) {
    if (opts.quiet && !/: (error|warning): /.test(l)) continue;
    process.stdout.write(`${l}\n`);
  }
  const failed = s.errors > 0 || (opts.strict === true && s.warnings > 0) || s.files === 0;
  if (opts.quiet && s.files > 0) return failed ? 1 : 0;
  process.stderr.write(
    `checked ${s.files} zone file${s.files === 1 ? '' : 's'}: ${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}${s.files === 0 ? ' (no zone files found)' : ''}\n`,
  );
  return failed ? 1 : 0;
}
