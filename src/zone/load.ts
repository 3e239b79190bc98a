/** Loading zone files from disk: picks the parser by file extension, then builds and checks the zone. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { originFromFileName, parseMasterFile } from './masterfile.js';
import type { Name } from '../wire/name.js';
import type { Diagnostic, ParsedZone, ZoneRecord } from './types.js';
import { parseYamlZone } from './yamlzone.js';
import { type BuildResult, buildZone, ZoneBuilder } from './zone.js';

const YAML_EXT = /\.ya?ml$/i;
const ZONE_EXT = /\.(zone|db)$/i;

/** True for file names popdns loads as zones: `*.yaml`, `*.yml`, `*.zone`, `*.db`. */
export function isZoneFileName(path: string): boolean {
  const b = basename(path);
  return !b.startsWith('.') && (YAML_EXT.test(b) || ZONE_EXT.test(b));
}

/** Zone files directly inside `dir`, sorted by name. */
export function listZoneFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => isZoneFileName(f))
    .sort()
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile());
}

/**
 * Parses a zone file without building it (for `convert`). `included` collects the paths of the
 * `$INCLUDE`d files it read, so a reload can tell whether anything the zone came from changed.
 */
export function parseZoneFile(
  path: string,
  text?: string,
  included?: string[],
  onRecord?: (rec: ZoneRecord, zoneOrigin: Name | undefined) => void,
): ParsedZone {
  const origin = originFromFileName(path) ?? undefined;
  let body: string;
  try {
    body = text ?? readFileSync(path, 'utf8');
  } catch (e) {
    const d: Diagnostic = {
      severity: 'error',
      code: 'POPDNS_E_READ',
      message: `cannot read zone file: ${(e as Error).message}`,
      pos: { file: path, line: 1, col: 1 },
    };
    return { origin: new Uint8Array([0]), file: path, records: [], diagnostics: [d] };
  }
  const opts = origin ? { file: path, origin } : { file: path };
  if (YAML_EXT.test(path)) return parseYamlZone(body, opts);
  const readFile = (p: string): string => {
    included?.push(p);
    return readFileSync(p, 'utf8');
  };
  return parseMasterFile(body, onRecord ? { ...opts, readFile, onRecord } : { ...opts, readFile });
}

/**
 * Reads, parses, builds and checks one zone file, exactly as the server does; `parsed` is what the
 * parser found besides the records (origin, settings, diagnostics). A master file streams: each record
 * goes into the trie as soon as it is parsed, so a big zone is never held as a list of records too.
 */
export function loadZone(path: string, included?: string[]): { parsed: ParsedZone; result: BuildResult } {
  let builder: ZoneBuilder | null = null;
  const parsed = parseZoneFile(path, undefined, included, (rec, origin) => {
    builder ??= new ZoneBuilder(origin ?? Uint8Array.of(0), path);
    builder.add(rec);
  });
  if (parsed.records.length > 0 || builder === null) {
    return { parsed, result: buildZone(parsed, { consume: true }) };
  }
  return { parsed, result: (builder as ZoneBuilder).finish(parsed.diagnostics) };
}

/** Reads, parses, builds and checks one zone file, exactly as the server does. */
export function loadZoneFile(path: string): BuildResult {
  return loadZone(path).result;
}
