/** Loading zone files from disk: picks the parser by file extension, then builds and checks the zone. */
import { isAscii } from 'node:buffer';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { originFromFileName, parseMasterFileSteps } from './masterfile.js';
import { type Name, nameFromText } from '../wire/name.js';
import type { Diagnostic, ParsedZone, ZoneRecord } from './types.js';
import { parseYamlZoneSteps, type YamlZoneOptions } from './yamlzone.js';
import { type BuildResult, buildZone, type ZoneBuilder, zoneBuilder } from './zone.js';

const YAML_EXT = /\.ya?ml$/i;
const ZONE_EXT = /\.(zone|db)$/i;

/**
 * A zone file as text. Pure ASCII (nearly every zone file) is read as one byte per character, which
 * skips UTF-8 decoding and gives the same string; anything else is decoded as UTF-8.
 */
/** A zone file that is not UTF-8, with the position of its first byte that is not. */
export class NotUtf8Error extends Error {
  constructor(
    readonly line: number,
    readonly col: number,
    byte: number,
  ) {
    super(
      `byte 0x${byte.toString(16).padStart(2, '0')} is not UTF-8: zone files are UTF-8 (write other bytes in text as \\DDD, e.g. \\${String(byte).padStart(3, '0')})`,
    );
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Offset of the first byte of `b` that does not start or continue a UTF-8 sequence (0 when unsure). */
function invalidUtf8At(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n =
      c < 0x80
        ? 0
        : c >= 0xc2 && c <= 0xdf
          ? 1
          : c >= 0xe0 && c <= 0xef
            ? 2
            : c >= 0xf0 && c <= 0xf4
              ? 3
              : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) if (i + k >= b.length || (b[i + k]! & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return 0; // overlong forms and surrogates: TextDecoder refused them, report the file's start
}

/**
 * A zone file's text. Files are UTF-8 (RFC 1035 text and YAML alike): a byte sequence that is not
 * UTF-8 throws NotUtf8Error at its line and column instead of turning into U+FFFD unnoticed.
 */
function readText(path: string): string {
  const b = readFileSync(path);
  if (isAscii(b)) return b.toString('latin1');
  try {
    return UTF8.decode(b);
  } catch {
    const off = invalidUtf8At(b);
    let line = 1;
    let start = 0;
    for (let i = 0; i < off; i++) {
      if (b[i] === 0x0a) {
        line++;
        start = i + 1;
      }
    }
    let col = 1;
    for (let i = start; i < off; i++) if ((b[i]! & 0xc0) !== 0x80) col++;
    throw new NotUtf8Error(line, col, b[off]!);
  }
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

/**
 * The zone name the server gives a file, from its name and the head of its text only (the health
 * probe must not load a million-record zone to learn its name), by the rule of ZoneFileOptions.origin:
 * a YAML `origin:` key, else the file name (`ORIGIN.zone`, `.db`, `.yaml`, `.yml`), else (a file
 * named otherwise) the first `$ORIGIN` before any record. Null when none of them gives a name.
 */
export function zoneNameFromHead(path: string, head: string): Name | null {
  let text: string | null = null;
  if (YAML_EXT.test(path)) {
    text = /^origin:[ \t]*["']?([^"'\s#]+)/m.exec(head)?.[1] ?? null;
  } else if (!originFromFileName(path)) {
    for (const line of head.split('\n')) {
      const l = line.replace(/;.*/, '').trim();
      if (l === '' || /^\$TTL\b/i.test(l)) continue;
      const m = /^\$ORIGIN\s+(\S+)/i.exec(l);
      if (m) text = m[1]!;
      break; // the first record or other directive: no $ORIGIN names the zone
    }
  }
  if (text) {
    try {
      return nameFromText(text.endsWith('.') ? text : `${text}.`);
    } catch {
      // not a name: the file name, if any, and the check says what is wrong
    }
  }
  return originFromFileName(path);
}

/** Runs a stepwise job (a generator that yields between chunks of work) to its end, at once. */
export function runSteps<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** How to read one zone file. */
export interface ZoneFileOptions {
  /** The file's text, when the caller has it already (otherwise it is read from `path`). */
  text?: string;
  /** Collects the paths of the `$INCLUDE`d files read, so a reload can tell whether any changed. */
  included?: string[];
  /**
   * The zone's name, given explicitly (`check --origin`, `convert --origin`). Without it the file
   * name names the zone (`ORIGIN.zone`, `.db`, `.yaml`, `.yml`; a YAML `origin:` key wins over the
   * file name), and a file named otherwise (`db.example.com`) falls back to its first `$ORIGIN`.
   */
  origin?: Name;
  /**
   * Takes each record as it is parsed instead of collecting them (a master file, and the streamed
   * reading of a YAML file; the parsed zone's `records` then stays empty).
   */
  onRecord?: (rec: ZoneRecord, zoneOrigin: Name | undefined) => void;
  /**
   * A YAML file's streamed reading was given up for the document-model one: forget the records
   * handed to onRecord so far (the parsed zone's `records` then holds them all).
   */
  onRestart?: () => void;
}

/** Parses a zone file without building it (for `convert`). */
export function parseZoneFile(path: string, opts: ZoneFileOptions = {}): ParsedZone {
  return runSteps(parseZoneFileSteps(path, opts));
}

/** parseZoneFile in steps: yields every few thousand entries (RFC 1035) or owner names (YAML). */
function* parseZoneFileSteps(path: string, o: ZoneFileOptions): Generator<void, ParsedZone, void> {
  const fromName = originFromFileName(path) ?? undefined;
  const origin = o.origin ?? fromName;
  let body: string;
  try {
    body = o.text ?? readText(path);
  } catch (e) {
    if (e instanceof NotUtf8Error) {
      const d: Diagnostic = {
        severity: 'error',
        code: 'POPDNS_E_ENCODING',
        message: e.message,
        pos: { file: path, line: e.line, col: e.col },
      };
      return { origin: new Uint8Array([0]), file: path, records: [], diagnostics: [d], incomplete: true };
    }
    const code = (e as NodeJS.ErrnoException).code;
    const d: Diagnostic = {
      severity: 'error',
      code: 'POPDNS_E_READ',
      message:
        code === 'ENOENT' ? `${path} does not exist` : `cannot read zone file: ${(e as Error).message}`,
      pos: { file: path, line: 1, col: 1 },
    };
    return { origin: new Uint8Array([0]), file: path, records: [], diagnostics: [d], incomplete: true };
  }
  const originSource = o.origin ? 'given by --origin' : 'from the file name';
  const opts = origin ? { file: path, origin, originSource } : { file: path };
  if (YAML_EXT.test(path)) {
    const y: YamlZoneOptions = o.origin ? { ...opts, originExplicit: true } : { ...opts };
    if (o.onRecord) y.onRecord = o.onRecord;
    if (o.onRestart) y.onRestart = o.onRestart;
    return yield* parseYamlZoneSteps(body, y);
  }
  const included = o.included;
  const readFile = (p: string): string => {
    included?.push(p);
    return readText(p);
  };
  const onRecord = o.onRecord;
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
export function loadZone(
  path: string,
  included?: string[],
  origin?: Name,
): { parsed: ParsedZone; result: BuildResult } {
  return runSteps(loadZoneSteps(path, included, origin));
}

/**
 * loadZone in steps, for a server that keeps answering while it reloads: yields between chunks of
 * an RFC 1035 file or of a YAML file's owner names. (The zone-wide checks at the end, and a YAML
 * file that cannot be streamed — see parseYamlZoneSteps — each run in one go.)
 */
export function* loadZoneSteps(
  path: string,
  included?: string[],
  origin?: Name,
): Generator<void, { parsed: ParsedZone; result: BuildResult }, void> {
  let builder: ZoneBuilder | null = null;
  const o: ZoneFileOptions = {
    onRecord: (rec, zoneOrigin) => {
      builder ??= zoneBuilder(zoneOrigin ?? Uint8Array.of(0), path);
      builder.add(rec);
    },
  };
  o.onRestart = () => {
    builder = null;
  };
  if (included) o.included = included;
  if (origin) o.origin = origin;
  const parsed = yield* parseZoneFileSteps(path, o);
  if (parsed.records.length > 0 || builder === null) {
    return { parsed, result: buildZone(parsed, { consume: true }) };
  }
  return { parsed, result: (builder as ZoneBuilder).finish(parsed.diagnostics, parsed) };
}

/** Reads, parses, builds and checks one zone file, exactly as the server does. */
export function loadZoneFile(path: string, origin?: Name): BuildResult {
  return loadZone(path, undefined, origin).result;
}
