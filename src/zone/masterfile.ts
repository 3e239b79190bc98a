/**
 * RFC 1035 §5 master files: a one-pass scanner over the text (charCodeAt, no regex per character)
 * that cuts entries into tokens with their line and column, then turns each entry into a ZoneRecord.
 * Never throws: every problem becomes a Diagnostic with the position of the offending token, and
 * parsing goes on with the next entry.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { CLASS, classFromText, MAX_TTL, TYPE, typeFromText, typeToText } from '../wire/constants.js';
import {
  canonicalCompare,
  type Name,
  NameError,
  nameEquals,
  nameFromText,
  nameToRelativeText,
  nameToText,
} from '../wire/name.js';
import type { Token } from '../wire/presentation.js';
import { parsePeriod, RdataError, rdataFromText, rdataToText } from '../wire/rdata.js';
import { type Diagnostic, diag, type ParsedZone, type Position, type ZoneRecord } from './types.js';

export interface MasterFileOptions {
  /** Path used in diagnostics and for resolving $INCLUDE. */
  file: string;
  /**
   * The zone's name (from `--origin`, or from the file name: see zoneNameFromFileName). It is also
   * the base for relative names until the first `$ORIGIN`, which only moves that base (RFC 1035
   * §5.1). Without it, the file's first `$ORIGIN` before any record names the zone.
   */
  origin?: Name;
  /** Where `origin` came from, for the warning when `$ORIGIN` differs: "--origin", "the file name". */
  originSource?: string;
  readFile?: (path: string) => string;
  /** Deepest $INCLUDE nesting allowed (default 8). */
  maxIncludeDepth?: number;
  /**
   * Takes each record as it is parsed, with the zone's origin as known at that point, instead of
   * collecting them in `records` (which stays empty): a big zone is never held as a record list.
   */
  onRecord?: (rec: ZoneRecord, zoneOrigin: Name | undefined) => void;
}

/**
 * The zone name a file name gives: `zones/example.net.zone` → example.net. (also `.db`, `.yaml`,
 * `.yml`). Null for any other name: a BIND-style `db.example.com` names no zone (its first `$ORIGIN`
 * does), and must never become a zone `db.example.com.`.
 */
export function originFromFileName(path: string): Name | null {
  const full = basename(path);
  if (!/\.(zone|db|ya?ml)$/i.test(full)) return null;
  const b = full.replace(/\.(zone|db|ya?ml)$/i, '');
  if (b === '' || b.startsWith('.')) return null;
  try {
    return nameFromText(b.endsWith('.') ? b : `${b}.`);
  } catch {
    return null;
  }
}

/** One entry: the tokens of a logical line (parentheses joined), and whether it began with blank. */
interface Entry {
  tokens: Token[];
  blankOwner: boolean;
  line: number;
  /** A token had a malformed escape (already reported): the entry is skipped, not parsed. */
  bad?: boolean;
}

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const QUOTE = 0x22;
const SEMI = 0x3b;
const LPAREN = 0x28;
const RPAREN = 0x29;
const BACKSLASH = 0x5c;
const BOM = 0xfeff;

/**
 * Checks the escape at `text[i]` (a backslash), RFC 1035 §5.1: `\X` quotes one character, `\DDD` is
 * a decimal octet 000-255. Returns the escape's length, or a problem: a backslash at the end of a
 * line or of the file (it would swallow the line break), or a digit not followed by three in all.
 */
function escapeAt(text: string, i: number): number | string {
  const c = i + 1 < text.length ? text.charCodeAt(i + 1) : -1;
  if (c === -1 || c === LF || c === CR)
    return 'a backslash at the end of a line escapes nothing (RFC 1035 §5.1: \\X or \\DDD); write \\\\ for a backslash';
  if (c >= 0x30 && c <= 0x39) {
    const d = text.slice(i + 1, i + 4);
    if (!/^[0-9]{3}$/.test(d))
      return `escape "\\${d.replace(/[^0-9].*$/s, '')}" needs three digits (\\DDD, RFC 1035 §5.1)`;
    if (Number(d) > 255) return `escape "\\${d}" is over 255 (\\DDD is one octet, RFC 1035 §5.1)`;
    return 4;
  }
  // A character outside the BMP is two UTF-16 units: the escape quotes both.
  return c >= 0xd800 && c <= 0xdbff ? 3 : 2;
}

/**
 * Cuts the text into entries and yields each as soon as it is complete, so a big file is never held as
 * tokens all at once. Problems with parentheses and quotes are reported as diagnostics.
 */
function* scan(text: string, file: string, diags: Diagnostic[]): Generator<Entry, void, void> {
  const n = text.length;
  // A UTF-8 byte order mark at the start of the file is not part of the zone: skipped.
  let i = n > 0 && text.charCodeAt(0) === BOM ? 1 : 0;
  let line = 1;
  let lineStart = i;
  let depth = 0;
  let parenPos: Position | null = null;
  let cur: Entry | null = null;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === LF) {
      line++;
      lineStart = i + 1;
      i++;
      if (depth === 0) {
        const done: Entry | null = cur;
        cur = null;
        if (done && done.tokens.length > 0) yield done;
      }
      continue;
    }
    if (c === SP || c === TAB || c === CR) {
      if (i === lineStart && depth === 0) {
        const done: Entry | null = cur;
        cur = { tokens: [], blankOwner: true, line };
        if (done && done.tokens.length > 0) yield done;
      }
      i++;
      continue;
    }
    if (c === SEMI) {
      while (i < n && text.charCodeAt(i) !== LF) i++;
      continue;
    }
    if (!cur) cur = { tokens: [], blankOwner: false, line };
    const col = i - lineStart + 1;
    if (c === LPAREN) {
      if (depth === 0) parenPos = { file, line, col };
      depth++;
      i++;
      continue;
    }
    if (c === RPAREN) {
      if (depth === 0)
        diags.push(diag('error', 'POPDNS_E_UNBALANCED_PAREN', 'unexpected ")"', { file, line, col }));
      else depth--;
      i++;
      continue;
    }
    if (c === QUOTE) {
      const startLine = line;
      let j = i + 1;
      let closed = false;
      let cutShort = false;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === BACKSLASH) {
          const e = escapeAt(text, j);
          if (typeof e === 'string') {
            diags.push(diag('error', 'POPDNS_E_ESCAPE', e, { file, line, col: j - lineStart + 1 }));
            cur.bad = true;
            j++;
            const next = j < n ? text.charCodeAt(j) : LF;
            if (next === LF || next === CR) {
              // A backslash ending the line inside quotes: the string (and entry) end here, so the
              // next line is read on its own instead of as the rest of an unterminated string.
              cutShort = true;
              break;
            }
            continue;
          }
          j += e;
          continue;
        }
        if (d === QUOTE) {
          closed = true;
          break;
        }
        if (d === LF) {
          line++;
          lineStart = j + 1;
        }
        j++;
      }
      if (cutShort) {
        i = j;
        continue;
      }
      if (!closed) {
        diags.push(
          diag('error', 'POPDNS_E_SYNTAX', 'unterminated quoted string', { file, line: startLine, col }),
        );
        cur = null; // the entry is incomplete: report the quote only, not what follows from it
        break;
      }
      cur.tokens.push({ text: text.slice(i + 1, j), quoted: true, line: startLine, col });
      i = j + 1;
      continue;
    }
    let j = i;
    while (j < n) {
      const d = text.charCodeAt(j);
      if (d === BACKSLASH) {
        const e = escapeAt(text, j);
        if (typeof e === 'string') {
          diags.push(diag('error', 'POPDNS_E_ESCAPE', e, { file, line, col: j - lineStart + 1 }));
          cur.bad = true;
          j++;
          break;
        }
        j += e;
        continue;
      }
      if (
        d === SP ||
        d === TAB ||
        d === CR ||
        d === LF ||
        d === SEMI ||
        d === LPAREN ||
        d === RPAREN ||
        d === QUOTE
      )
        break;
      j++;
    }
    cur.tokens.push({ text: text.slice(i, Math.min(j, n)), quoted: false, line, col });
    i = j;
  }
  if (depth > 0 && parenPos) diags.push(diag('error', 'POPDNS_E_UNBALANCED_PAREN', 'unclosed "("', parenPos));
  const done: Entry | null = cur;
  if (done && done.tokens.length > 0) yield done;
}

interface State {
  origin: Name | undefined;
  defaultTtl: number | undefined;
  lastTtl: number | undefined;
  lastOwner: Name | undefined;
}

function ttlValue(text: string): number | undefined {
  const v = parsePeriod(text);
  return v !== undefined && v <= MAX_TTL ? v : undefined;
}

function looksLikeTtl(text: string): boolean {
  return /^[0-9]/.test(text) && parsePeriod(text) !== undefined;
}

/** Parses an RFC 1035 master file. */
export function parseMasterFile(text: string, opts: MasterFileOptions): ParsedZone {
  const steps = parseMasterFileSteps(text, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Entries parsed between two yields of parseMasterFileSteps. */
const STEP_ENTRIES = 256;

/**
 * parseMasterFile in steps: yields after every STEP_ENTRIES entries, so a caller can let other work
 * run while a big file loads (the server answers queries between steps of a reload).
 */
export function* parseMasterFileSteps(
  text: string,
  opts: MasterFileOptions,
): Generator<void, ParsedZone, void> {
  const diagnostics: Diagnostic[] = [];
  const records: ZoneRecord[] = [];
  const state: State = {
    origin: opts.origin,
    defaultTtl: undefined,
    lastTtl: undefined,
    lastOwner: undefined,
  };
  const read = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const maxDepth = opts.maxIncludeDepth ?? 8;
  // The zone's name: the one given (--origin, or the file name), else the first $ORIGIN before any record.
  let zoneOrigin: Name | undefined = opts.origin;
  let firstOriginSeen = false;
  let incomplete = false;
  /** Types of records that failed to parse (their absence is then no news). */
  const failedTypes = new Set<number>();
  let recordCount = 0;
  const onRecord = opts.onRecord;

  let steps = 0;
  /** What a $INCLUDE asks for: the file to read next, and what to restore after it. */
  interface Include {
    body: string;
    path: string;
    saved: { origin: Name | undefined; lastOwner: Name | undefined };
  }
  const parseText = function* (
    body: string,
    file: string,
    depth: number,
    stack: string[],
  ): Generator<void, void, void> {
    for (const e of scan(body, file, diagnostics)) {
      if (++steps % STEP_ENTRIES === 0) yield;
      const inc = parseEntry(e, file, depth, stack);
      if (inc) {
        yield* parseText(inc.body, inc.path, depth + 1, [...stack, inc.path]);
        // RFC 1035 §5.1: the origin returns to what it was before the $INCLUDE.
        state.origin = inc.saved.origin;
        state.lastOwner = inc.saved.lastOwner;
      }
    }
  };

  /** One entry: a directive or a record. A readable $INCLUDE is returned for parseText to follow. */
  const parseEntry = (e: Entry, file: string, depth: number, stack: string[]): Include | null => {
    const pos = (t: Token): Position => ({ file, line: t.line, col: t.col });
    const err = (code: string, msg: string, t: Token): void => {
      diagnostics.push(diag('error', code, msg, pos(t)));
    };
    if (e.bad) {
      // Its escape problem is reported; its meaning is unknown. A type it names is not "missing".
      for (const t of e.tokens.slice(0, 4)) {
        const ty = typeFromText(t.text);
        if (ty !== undefined) failedTypes.add(ty);
      }
      return null;
    }
    const first = e.tokens[0]!;
    if (!e.blankOwner && !first.quoted && first.text.startsWith('$')) {
      const dir = first.text.toUpperCase();
      const arg = e.tokens[1];
      if (dir === '$ORIGIN') {
        if (!arg) {
          err('POPDNS_E_SYNTAX', '$ORIGIN needs a name', first);
          return null;
        }
        try {
          state.origin = nameFromText(arg.text, state.origin);
          // The first $ORIGIN before any record is the one that looks like the zone's name.
          if (depth === 0 && !firstOriginSeen && recordCount === 0) {
            firstOriginSeen = true;
            if (!opts.origin) {
              // A file whose name names no zone (db.example.com): its first $ORIGIN does.
              zoneOrigin = state.origin;
            } else if (!nameEquals(state.origin, opts.origin)) {
              diagnostics.push(
                diag(
                  'warning',
                  'POPDNS_W_ORIGIN_MISMATCH',
                  `$ORIGIN ${nameToText(state.origin)} is not the zone's name ${nameToText(opts.origin)} (${opts.originSource ?? 'from the file name'}); the zone stays ${nameToText(opts.origin)}, $ORIGIN only sets the base for relative names (RFC 1035 §5.1)`,
                  pos(arg),
                ),
              );
            }
          }
        } catch (x) {
          err('POPDNS_E_NAME', (x as Error).message, arg);
        }
        if (e.tokens.length > 2)
          err('POPDNS_E_SYNTAX', `unexpected "${e.tokens[2]!.text}" after $ORIGIN`, e.tokens[2]!);
      } else if (dir === '$TTL') {
        const v = arg ? ttlValue(arg.text) : undefined;
        if (!arg) err('POPDNS_E_SYNTAX', '$TTL needs a value', first);
        else if (v === undefined)
          err('POPDNS_E_BAD_TTL', `TTL "${arg.text}" is not a number 0..2147483647`, arg);
        else state.defaultTtl = v;
      } else if (dir === '$INCLUDE') {
        if (!arg) {
          err('POPDNS_E_INCLUDE', '$INCLUDE needs a file name', first);
          return null;
        }
        const path = resolve(dirname(file), arg.text);
        if (depth + 1 > maxDepth) {
          err('POPDNS_E_INCLUDE', `$INCLUDE nested deeper than ${maxDepth}`, arg);
          return null;
        }
        if (stack.includes(path)) {
          err('POPDNS_E_INCLUDE', `$INCLUDE cycle: ${arg.text} is already being read`, arg);
          return null;
        }
        let sub: string;
        try {
          sub = read(path);
        } catch (x) {
          err('POPDNS_E_INCLUDE', `cannot read ${arg.text}: ${(x as Error).message}`, arg);
          return null;
        }
        const saved = { origin: state.origin, lastOwner: state.lastOwner };
        const incOrigin = e.tokens[2];
        if (incOrigin) {
          try {
            state.origin = nameFromText(incOrigin.text, state.origin);
          } catch (x) {
            err('POPDNS_E_NAME', (x as Error).message, incOrigin);
            return null;
          }
        }
        return { body: sub, path, saved };
      } else if (dir === '$GENERATE') {
        err('POPDNS_E_SYNTAX', '$GENERATE is not supported; expand it with your tooling first', first);
      } else {
        err('POPDNS_E_SYNTAX', `unknown directive ${first.text}`, first);
      }
      return null;
    }
    parseRecord(e, file);
    return null;
  };

  const parseRecord = (e: Entry, file: string): void => {
    const toks = e.tokens;
    const pos = (t: Token): Position => ({ file, line: t.line, col: t.col });
    const err = (code: string, msg: string, t: Token): void => {
      diagnostics.push(diag('error', code, msg, pos(t)));
    };
    let k = 0;
    let owner: Name | undefined;
    const start = toks[0]!;
    if (e.blankOwner) {
      owner = state.lastOwner;
      if (!owner) {
        err('POPDNS_E_SYNTAX', 'record without an owner name and no previous owner', start);
        return;
      }
    } else {
      try {
        owner = nameFromText(start.text, state.origin, true);
      } catch (x) {
        err(x instanceof NameError ? 'POPDNS_E_NAME' : 'POPDNS_E_SYNTAX', (x as Error).message, start);
        return;
      }
      k = 1;
    }
    state.lastOwner = owner;
    let ttl: number | undefined;
    let klass: number | undefined;
    // [TTL] [class] type, or [class] [TTL] type (RFC 1035 §5.1).
    for (let step = 0; step < 3 && k < toks.length; step++) {
      const t = toks[k]!;
      if (t.quoted) break;
      if (ttl === undefined && looksLikeTtl(t.text)) {
        const v = ttlValue(t.text);
        if (v === undefined) {
          err('POPDNS_E_BAD_TTL', `TTL "${t.text}" is over 2147483647 (RFC 2181 §8)`, t);
          return;
        }
        ttl = v;
        k++;
        continue;
      }
      if (klass === undefined) {
        const c = classFromText(t.text);
        if (c !== undefined && typeFromText(t.text) === undefined) {
          klass = c;
          k++;
          continue;
        }
      }
      break;
    }
    const typeTok = toks[k];
    if (!typeTok) {
      err('POPDNS_E_SYNTAX', 'record has no type', toks[toks.length - 1]!);
      return;
    }
    const type = typeFromText(typeTok.text);
    if (type === undefined) {
      if (/^[0-9]/.test(typeTok.text) && ttl !== undefined) {
        err('POPDNS_E_BAD_TTL', `"${typeTok.text}" is not a TTL or a type`, typeTok);
      } else {
        err(
          'POPDNS_E_UNKNOWN_TYPE',
          `unknown type "${typeTok.text}" (use TYPEnnn for unknown types)`,
          typeTok,
        );
      }
      return;
    }
    k++;
    if (klass !== undefined && klass !== CLASS.IN) {
      err(
        'POPDNS_E_BAD_CLASS',
        `class ${toks.find((x) => classFromText(x.text) === klass)?.text} is not served; only IN`,
        start,
      );
      return;
    }
    if (ttl === undefined) {
      if (state.defaultTtl !== undefined) ttl = state.defaultTtl;
      else if (type === TYPE.SOA) ttl = undefined;
      else if (state.lastTtl !== undefined) {
        ttl = state.lastTtl;
        diagnostics.push(
          diag(
            'warning',
            'POPDNS_W_NO_TTL',
            `no TTL and no $TTL: using the previous record's TTL ${ttl} (add $TTL)`,
            pos(typeTok),
          ),
        );
      } else {
        err('POPDNS_E_NO_TTL', 'record has no TTL and there is no $TTL before it', typeTok);
        return;
      }
    }
    if (!state.origin && !e.blankOwner && !start.text.endsWith('.')) {
      err('POPDNS_E_NAME', 'relative owner name but no $ORIGIN', start);
      return;
    }
    const rtoks = toks.slice(k);
    let rdata: Uint8Array;
    try {
      rdata = rdataFromText(type, rtoks, state.origin ?? Uint8Array.of(0));
    } catch (x) {
      failedTypes.add(type);
      if (x instanceof RdataError) {
        const at =
          x.token >= 0 && x.token < rtoks.length ? rtoks[x.token]! : (rtoks[rtoks.length - 1] ?? typeTok);
        const tn = typeToText(type);
        err('POPDNS_E_RDATA', x.message.startsWith(tn) ? x.message : `${tn}: ${x.message}`, at);
        return;
      }
      throw x;
    }
    if (ttl === undefined) {
      // An SOA without TTL and without $TTL: its MINIMUM field (RFC 1035 §5.1 practice; BIND warns too).
      ttl = new DataView(rdata.buffer, rdata.byteOffset + rdata.length - 4).getUint32(0);
      diagnostics.push(
        diag(
          'warning',
          'POPDNS_W_NO_TTL',
          `SOA has no TTL and there is no $TTL: using MINIMUM ${ttl}`,
          pos(typeTok),
        ),
      );
    }
    state.lastTtl = ttl;
    const rec: ZoneRecord = { owner, type, class: CLASS.IN, ttl, rdata, pos: pos(start) };
    recordCount++;
    if (onRecord) onRecord(rec, zoneOrigin);
    else records.push(rec);
  };

  yield* parseText(text, opts.file, 0, [resolve(opts.file)]);
  const origin = zoneOrigin ?? Uint8Array.of(0);
  if (!zoneOrigin) {
    incomplete = true;
    diagnostics.push(
      diag(
        'error',
        'POPDNS_E_NO_ORIGIN',
        'no zone name: the file name gives none (ZONE.zone, .db) and no $ORIGIN comes before the first record; name the file after the zone or pass --origin ZONE',
        {
          file: opts.file,
          line: 1,
          col: 1,
        },
      ),
    );
  }
  const out: ParsedZone = { origin, file: opts.file, records, diagnostics };
  if (state.defaultTtl !== undefined) out.defaultTtl = state.defaultTtl;
  if (incomplete) out.incomplete = true;
  if (failedTypes.size > 0) out.failedTypes = failedTypes;
  return out;
}

/** Writes records as an RFC 1035 master file: SOA first, then owners in canonical order. */
export function writeMasterFile(
  origin: Name,
  records: ZoneRecord[],
  opts: { defaultTtl?: number } = {},
): string {
  const lines: string[] = [`$ORIGIN ${nameToText(origin)}`];
  if (opts.defaultTtl !== undefined) lines.push(`$TTL ${opts.defaultTtl}`);
  const sorted = records
    .map((r, i) => ({ r, i }))
    .sort((a, b) => {
      const aSoa = a.r.type === TYPE.SOA && nameEquals(a.r.owner, origin) ? 0 : 1;
      const bSoa = b.r.type === TYPE.SOA && nameEquals(b.r.owner, origin) ? 0 : 1;
      return aSoa - bSoa || canonicalCompare(a.r.owner, b.r.owner) || a.r.type - b.r.type || a.i - b.i;
    });
  let prev: Name | null = null;
  for (const { r } of sorted) {
    const owner =
      prev && nameEquals(prev, r.owner) && sameCase(prev, r.owner) ? '' : nameToRelativeText(r.owner, origin);
    prev = r.owner;
    lines.push(
      `${owner.padEnd(23)} ${String(r.ttl).padStart(6)} IN ${typeToText(r.type).padEnd(6)} ${rdataToText(r.type, r.rdata, origin)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function sameCase(a: Name, b: Name): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}
