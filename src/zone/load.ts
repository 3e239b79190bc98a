/** Loading zone files from disk: picks the parser by file extension, then builds and checks the zone. */
import { isAscii } from 'node:buffer';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { originFromFileName, parseMasterFileSteps } from './masterfile.js';
import type { Name } from '../wire/name.js';
import type { Diagnostic, ParsedZone, ZoneRecord } from './types.js';
import { parseYamlZone } from './yamlzone.js';
import { type BuildResult, buildZone, type ZoneBuilder, zoneBuilder } from './zone.js';

const YAML_EXT = /\.ya?ml$/i;
const ZONE_EXT = /\.(zone|db)$/i;

/**
 * A zone file as text. Pure ASCII (nearly every zone file) is read as one byte per character, which
 * skips UTF-8 decoding and gives the same string; anything else is decoded as UTF-8.
 */
function readText(path: string): string {
  const b = readFileSync(path);
  return isAscii(b) ? b.toString('latin1') : b.toString('utf8');
}

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

/** Runs a stepwise job (a generator that yields between chunks of work) to its end, at once. */
export function runSteps<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
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
  return runSteps(parseZoneFileSteps(path, text, included, onRecord));
}

/** parseZoneFile in steps: an RFC 1035 file yields every few thousand entries; YAML in one go. */
function* parseZoneFileSteps(
  path: string,
  text: string | undefined,
  included: string[] | undefined,
  onRecord: ((rec: ZoneRecord, zoneOrigin: Name | undefined) => void) | undefined,
): Generator<void, ParsedZone, void> {
  const origin = originFromFileName(path) ?? undefined;
  let body: string;
  try {
    body = text ?? readText(path);
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
    return readText(p);
  };
  return yield* parseMasterFileSteps(
    body,
    onRecord ? { ...opts, readFile, onRecord } : { ...opts, readFile },
  );
}

/**
 * Reads, parses, builds and checks one zone file, exactly as the server does; `parsed` is what the
 * parser found besides the records (origin, settings, diagnostics). A master file streams: each record
 * goes into the trie as soon as it is parsed, so a big zone is never held as a list of records too.
 */
export function loadZone(path: string, included?: string[]): { parsed: ParsedZone; result: BuildResult } {
  return runSteps(loadZoneSteps(path, included));
}

/**
 * loadZone in steps, for a server that keeps answering while it reloads: yields between chunks of
 * an RFC 1035 file. (A YAML file and the zone-wide checks at the end each run in one go.)
 */
export function* loadZoneSteps(
  path: string,
  included?: string[],
): Generator<void, { parsed: ParsedZone; result: BuildResult }, void> {
  let builder: ZoneBuilder | null = null;
  const parsed = yield* parseZoneFileSteps(path, undefined, included, (rec, origin) => {
    builder ??= zoneBuilder(origin ?? Uint8Array.of(0), path);
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
