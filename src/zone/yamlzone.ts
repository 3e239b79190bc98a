/**
 * The popdns YAML zone format (docs/zone-format.md): what operators edit. Parsed with the `yaml`
 * package so every problem has the line and column of the key or value at fault; never throws.
 */
import {
  type Document,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  type Scalar,
  stringify,
  visit,
  type YAMLError,
  type YAMLMap,
} from 'yaml';
import { CLASS, MAX_TTL, TYPE, typeFromText, typeToText } from '../wire/constants.js';
import {
  canonicalCompare,
  type Name,
  NameError,
  nameEquals,
  nameFromText,
  nameKey,
  nameToRelativeText,
  nameToText,
  ROOT,
} from '../wire/name.js';
import {
  isTextType,
  parsePeriod,
  RdataError,
  rdataFromFields,
  rdataFromText,
  rdataTarget,
  rdataToText,
  tokenize,
  txtFromText,
} from '../wire/rdata.js';
import {
  type Diagnostic,
  diag,
  type ParsedZone,
  type Position,
  type ZoneDnssecSettings,
  type ZoneRecord,
} from './types.js';
import {
  findRecordsBlock,
  headOf,
  type RecordsBlock,
  RecordsReader,
  shiftRanges,
  YamlFallback,
} from './yamlstream.js';

export interface YamlZoneOptions {
  file: string;
  /**
   * The zone's name as the caller knows it: from the file name (an `origin:` key wins over it, with a
   * warning when they differ), or given explicitly (`originExplicit`: it wins over `origin:`).
   */
  origin?: Name;
  originExplicit?: boolean;
  /** Where `origin` came from, for messages. */
  originSource?: string;
  /**
   * Takes each record as it is read instead of collecting them in `records` (which then stays
   * empty); the SOA comes last. Only a streamed reading calls it (see parseYamlZoneSteps).
   */
  onRecord?: (rec: ZoneRecord, zoneOrigin: Name) => void;
  /**
   * A streamed reading was given up for the document-model one (see parseYamlZoneSteps): forget the
   * records handed to onRecord so far; the result's `records` then holds them all.
   */
  onRestart?: () => void;
}

/** Owner entries read between two yields of parseYamlZoneSteps. */
const STEP_OWNERS = 2000;

/** SOA timer defaults (RIPE-203 style): refresh 2h, retry 1h, expire 2w, minimum 1h. */
export const SOA_DEFAULTS = {
  serial: 1,
  refresh: 7200,
  retry: 3600,
  expire: 1209600,
  minimum: 3600,
} as const;
export const DEFAULT_TTL = 3600;

const TOP_KEYS = new Set(['origin', 'ttl', 'soa', 'records', 'dnssec']);
const DNSSEC_KEYS = ['denial', 'opt-out', 'validity', 'cds'];
const SOA_KEYS = new Set(['mname', 'rname', 'serial', 'refresh', 'retry', 'expire', 'minimum', 'ttl']);

/**
 * `dnssec: nsec | nsec3 | true | false` or `{ denial, opt-out, validity, cds }`: in YAML zones and in
 * the config file's `dnssec:` section. Problems go to `err`; the result is undefined then.
 */
export function parseDnssecSettings(
  node: Node,
  err: (code: string, msg: string, node: Node) => void,
): ZoneDnssecSettings | false | undefined {
  if (isScalar(node)) {
    const v = node.value;
    if (v === false) return false;
    if (v === true) return {};
    if (v === 'nsec' || v === 'nsec3') return { denial: v };
    err('POPDNS_E_DNSSEC', 'dnssec is nsec, nsec3, true, false, or a mapping of settings', node);
    return undefined;
  }
  if (!isMap(node)) {
    err('POPDNS_E_DNSSEC', `dnssec settings are a mapping with ${DNSSEC_KEYS.join(', ')}`, node);
    return undefined;
  }
  const out: ZoneDnssecSettings = {};
  let ok = true;
  for (const p of node.items) {
    const k = isScalar(p.key) ? String(p.key.value) : '';
    const v = p.value as Node;
    const val = isScalar(v) ? v.value : undefined;
    if (k === 'denial' && (val === 'nsec' || val === 'nsec3')) out.denial = val;
    else if (k === 'opt-out' && typeof val === 'boolean') out.optOut = val;
    else if (k === 'cds' && typeof val === 'boolean') out.cds = val;
    else if (k === 'validity') {
      const secs = val === undefined || val === null ? undefined : parsePeriod(String(val));
      if (secs === undefined || secs < 3600 * 2) {
        err('POPDNS_E_DNSSEC', 'dnssec validity is a duration of at least 2h, like 14d', v);
        ok = false;
      } else out.validity = secs;
    } else {
      ok = false;
      if (DNSSEC_KEYS.includes(k)) {
        err('POPDNS_E_DNSSEC', `dnssec ${k}: ${k === 'denial' ? 'nsec or nsec3' : 'true or false'}`, v);
      } else {
        err(
          'POPDNS_E_YAML_UNKNOWN_KEY',
          `unknown dnssec setting "${k}" (known: ${DNSSEC_KEYS.join(', ')})`,
          p.key as Node,
        );
      }
    }
  }
  return ok ? out : undefined;
}

/**
 * Parses a YAML zone file (docs/zone-format.md) into records and diagnostics (file:line:col); never
 * throws. The same as parseYamlZoneSteps run to its end.
 */
export function parseYamlZone(text: string, opts: YamlZoneOptions): ParsedZone {
  const steps = parseYamlZoneSteps(text, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * parseYamlZone in steps, yielding after every few thousand owner names so a server keeps answering
 * while it reloads a big zone. The `records:` block is streamed owner by owner (yamlstream.ts), each
 * record handed to `opts.onRecord` as soon as it is read; the rest of the file (origin, ttl, soa,
 * dnssec) is read as a small YAML document first. A file that cannot be streamed, or whose streamed
 * reading meets something that might read differently in one document (a YAML syntax error, a
 * duplicate key, an alias), is read by parseYamlZoneDocument instead, after `opts.onRestart`: both
 * readings give the same records and the same diagnostics.
 */
export function* parseYamlZoneSteps(text: string, opts: YamlZoneOptions): Generator<void, ParsedZone, void> {
  const block = findRecordsBlock(text);
  if (block) {
    try {
      return yield* readYamlZone(text, opts, block);
    } catch (e) {
      if (!(e instanceof YamlFallback)) throw e;
      opts.onRestart?.();
    }
  }
  return parseYamlZoneDocument(text, opts);
}

/**
 * The document-model reading: the whole file as one `yaml` Document (every record collected in
 * `records`, the SOA first). The fallback of parseYamlZoneSteps, and the reference its tests compare
 * the streamed reading with.
 */
export function parseYamlZoneDocument(text: string, opts: YamlZoneOptions): ParsedZone {
  const steps = readYamlZone(text, opts, null);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Both readings: `block` null reads the file as one document. Throws YamlFallback when streaming. */
function* readYamlZone(
  text: string,
  opts: YamlZoneOptions,
  block: RecordsBlock | null,
): Generator<void, ParsedZone, void> {
  const diagnostics: Diagnostic[] = [];
  const records: ZoneRecord[] = [];
  const onRecord = block ? opts.onRecord : undefined;
  const emit = (rec: ZoneRecord): void => {
    if (onRecord) onRecord(rec, zoneOrigin);
    else records.push(rec);
  };
  let soaRead = false;
  const lc = new LineCounter();
  // uniqueKeys is checked below, in one pass: the yaml library's own check compares every key with
  // every earlier one, which is quadratic in the names of a zone (minutes for 100k names).
  let doc: Document.Parsed;
  if (block) {
    // Everything but the records block, its offsets moved back to the whole text's; lines are
    // counted in the whole text.
    const { head, start, delta } = headOf(text, block);
    doc = parseDocument(head, { uniqueKeys: false, prettyErrors: false });
    if (doc.errors.length > 0) throw new YamlFallback('syntax');
    // Chunks of the records block carry no directives of their own: a %YAML 1.1 (or other schema)
    // file is read as one document, so its scalars resolve by that schema everywhere.
    if (doc.schema.name !== 'core') throw new YamlFallback('schema');
    shiftRanges(doc, start, delta);
    const lineStarts = lc.lineStarts;
    lineStarts.push(0);
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  } else {
    doc = parseDocument(text, { lineCounter: lc, uniqueKeys: false, prettyErrors: false });
  }
  const posAt = (offset: number): Position => {
    const p = lc.linePos(offset);
    return { file: opts.file, line: p.line, col: p.col };
  };
  const posOf = (node: Node | null | undefined): Position => posAt(node?.range?.[0] ?? 0);
  const err = (code: string, msg: string, node: Node | null | undefined): void => {
    diagnostics.push(diag('error', code, msg, posOf(node)));
  };
  const result = (origin: Name, defaultTtl?: number): ParsedZone => {
    const out: ParsedZone = { origin, file: opts.file, records, diagnostics };
    if (defaultTtl !== undefined) out.defaultTtl = defaultTtl;
    return out;
  };

  if (doc.errors.length > 0) {
    yamlSyntaxErrors(doc.errors, text, posAt, diagnostics);
    const r = result(opts.origin ?? ROOT);
    r.incomplete = true;
    return r;
  }
  let duplicates = 0;
  visit(doc, {
    Map(_key, map) {
      const seen = new Map<string, Node>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const k = String(pair.key.value);
        const first = seen.get(k);
        if (first) {
          duplicates++;
          err(
            'POPDNS_E_YAML_DUPLICATE_KEY',
            `duplicate key "${k}" (first at line ${posOf(first).line})`,
            pair.key,
          );
        } else seen.set(k, pair.key);
      }
    },
  });
  if (duplicates > 0) {
    if (block) throw new YamlFallback('duplicate key');
    const r = result(opts.origin ?? ROOT);
    r.incomplete = true;
    return r;
  }
  const top = doc.contents;
  if (!isMap(top)) {
    err('POPDNS_E_YAML_TYPE', 'a zone file is a mapping with origin, ttl, soa and records', top);
    const r = result(opts.origin ?? ROOT);
    r.incomplete = true;
    return r;
  }
  const failedTypes = new Set<number>();

  /** The scalar's text as written (so `A: 1.0` or `TXT: 010` keep their digits). */
  const scalarText = (node: Scalar): string => {
    if (typeof node.value === 'string') return node.value;
    const r = node.range;
    return r ? text.slice(r[0], r[1]).trim() : String(node.value);
  };
  const ttlOf = (node: Node | null | undefined, what: string): number | undefined => {
    if (!isScalar(node) || node.value === null) {
      err('POPDNS_E_BAD_TTL', `${what} must be a number of seconds or a duration like 1h`, node);
      return undefined;
    }
    const s = scalarText(node);
    const v = parsePeriod(s);
    if (v === undefined || v > MAX_TTL) {
      err(
        'POPDNS_E_BAD_TTL',
        `${what} "${s}" is not a TTL 0..2147483647 (seconds, or units like 1h30m)`,
        node,
      );
      return undefined;
    }
    return v;
  };

  let origin = opts.origin;
  let dnssec: ZoneDnssecSettings | false | undefined;
  let zoneTtl: number | undefined;
  let soaPair: Pair | undefined;
  let recordsPair: Pair | undefined;
  for (const pair of top.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const keyNode = pair.key as Node;
    if (key === 'origin') {
      const v = pair.value as Node;
      if (!isScalar(v) || typeof v.value !== 'string')
        err('POPDNS_E_YAML_TYPE', 'origin must be a domain name', v);
      else {
        try {
          const named = nameFromText(v.value.endsWith('.') ? v.value : `${v.value}.`);
          if (opts.origin && !nameEquals(named, opts.origin)) {
            const zone = opts.originExplicit ? opts.origin : named;
            diagnostics.push(
              diag(
                'warning',
                'POPDNS_W_ORIGIN_MISMATCH',
                `origin: ${nameToText(named)} is not ${nameToText(opts.origin)} (${opts.originSource ?? 'from the file name'}); the zone is ${nameToText(zone)}`,
                posOf(v),
              ),
            );
          }
          if (!opts.originExplicit) origin = named;
        } catch (x) {
          err('POPDNS_E_NAME', (x as Error).message, v);
        }
      }
    } else if (key === 'ttl') zoneTtl = ttlOf(pair.value as Node, 'ttl');
    else if (key === 'soa') soaPair = pair;
    else if (key === 'records') {
      if (block && (pair.key as Node).range?.[0] !== block.keyOffset) throw new YamlFallback('records');
      recordsPair = pair;
    } else if (key === 'dnssec') dnssec = parseDnssecSettings(pair.value as Node, err);
    else {
      err(
        'POPDNS_E_YAML_UNKNOWN_KEY',
        `unknown key "${key}" (a zone has ${[...TOP_KEYS].join(', ')})`,
        keyNode,
      );
    }
  }
  if (!origin) {
    diagnostics.push(
      diag('error', 'POPDNS_E_NO_ORIGIN', 'no origin: key and no origin from the file name', posAt(0)),
    );
    const r = result(ROOT);
    r.incomplete = true;
    return r;
  }
  const zoneOrigin = origin;
  const defaultTtl = zoneTtl ?? DEFAULT_TTL;

  // records:
  const apexNsTargets: Name[] = [];
  if (recordsPair && block) {
    const reader = new RecordsReader(text, block, doc.options);
    let n = 0;
    for (let pair = reader.next(); pair; pair = reader.next()) {
      parseOwner(pair);
      if (++n % STEP_OWNERS === 0) yield;
    }
  } else if (recordsPair) {
    const recs = recordsPair.value as Node;
    if (!isMap(recs))
      err(
        'POPDNS_E_YAML_TYPE',
        'records must map owner names to their records',
        recs ?? (recordsPair.key as Node),
      );
    else {
      for (const ownerPair of (recs as YAMLMap).items) {
        parseOwner(ownerPair);
      }
    }
  }

  function parseOwner(ownerPair: Pair): void {
    const keyNode = ownerPair.key as Node;
    if (!isScalar(keyNode)) {
      err('POPDNS_E_YAML_TYPE', 'an owner name must be a plain string', keyNode);
      return;
    }
    const ownerText = scalarText(keyNode);
    let owner: Name;
    try {
      owner = nameFromText(ownerText, zoneOrigin);
    } catch (x) {
      err('POPDNS_E_NAME', (x as Error).message, keyNode);
      return;
    }
    const body = ownerPair.value as Node | null;
    if (!isMap(body)) {
      err(
        'POPDNS_E_YAML_TYPE',
        `${ownerText} needs a mapping of record types (e.g. A: 192.0.2.1)`,
        body === null || (isScalar(body) && body.value === null) ? keyNode : body,
      );
      return;
    }
    let nameTtl: number | undefined;
    for (const p of (body as YAMLMap).items) {
      if (isScalar(p.key) && p.key.value === 'ttl') nameTtl = ttlOf(p.value as Node, `ttl of ${ownerText}`);
    }
    for (const p of (body as YAMLMap).items) {
      const tk = p.key as Node;
      const tkey = isScalar(tk) ? String(tk.value) : '';
      if (tkey === 'ttl') continue;
      const type = tkey === tkey.toUpperCase() ? typeFromText(tkey) : undefined;
      if (type === undefined) {
        const hint =
          typeFromText(tkey) !== undefined ? ` (record types are upper case: ${tkey.toUpperCase()})` : '';
        err(
          tkey === tkey.toUpperCase() && /^[A-Z]/.test(tkey)
            ? 'POPDNS_E_UNKNOWN_TYPE'
            : 'POPDNS_E_YAML_UNKNOWN_KEY',
          `unknown ${tkey === tkey.toUpperCase() ? 'record type' : 'key'} "${tkey}" at ${ownerText}${hint}`,
          tk,
        );
        continue;
      }
      if (type === TYPE.SOA) {
        err('POPDNS_E_YAML_UNKNOWN_KEY', 'write the SOA in the top-level soa: block, not under records', tk);
        continue;
      }
      const v = p.value as Node | null;
      if (v === null || (isScalar(v) && v.value === null)) {
        err('POPDNS_E_YAML_TYPE', `${tkey} at ${ownerText} has no value`, v ?? tk);
        continue;
      }
      const items: Node[] = isSeq(v) ? (v.items as Node[]) : [v];
      if (isSeq(v) && items.length === 0)
        err('POPDNS_E_YAML_TYPE', `${tkey} at ${ownerText} is an empty list`, v);
      for (const item of items) {
        const rec = parseValue(owner, type, item, nameTtl ?? defaultTtl);
        if (rec) {
          emit(rec);
          if (type === TYPE.NS && nameEquals(owner, zoneOrigin)) {
            const target = rdataTarget(TYPE.NS, rec.rdata);
            if (target) apexNsTargets.push(target);
          }
        }
      }
    }
  }

  function parseValue(owner: Name, type: number, node: Node, ttl: number): ZoneRecord | null {
    const rec = parseValueOnce(owner, type, node, ttl);
    if (!rec) failedTypes.add(type);
    return rec;
  }

  function parseValueOnce(owner: Name, type: number, node: Node, ttl: number): ZoneRecord | null {
    const pos = posOf(node);
    const tname = typeToText(type);
    const fail = (e: unknown, at: Node, tokens?: { line: number; col: number }[]): null => {
      if (e instanceof RdataError) {
        const tok = tokens && e.token >= 0 ? tokens[Math.min(e.token, tokens.length - 1)] : undefined;
        diagnostics.push(
          diag(
            'error',
            'POPDNS_E_RDATA',
            e.message.startsWith(tname) ? e.message : `${tname}: ${e.message}`,
            tok ? { file: opts.file, line: tok.line, col: tok.col } : posOf(at),
          ),
        );
        return null;
      }
      if (e instanceof NameError) {
        err('POPDNS_E_NAME', `${tname}: ${e.message}`, at);
        return null;
      }
      throw e;
    };
    const fromPresentation = (s: string, at: Node): Uint8Array | null => {
      const p = posOf(at);
      // Token columns point into the YAML line for plain and quoted-on-one-line scalars.
      const quoted = isScalar(at) && (at.type === 'QUOTE_DOUBLE' || at.type === 'QUOTE_SINGLE');
      const tokens = tokenize(s, p.line, p.col + (quoted ? 1 : 0));
      try {
        return rdataFromText(type, tokens, zoneOrigin);
      } catch (e) {
        return fail(e, at, tokens);
      }
    };
    let rdata: Uint8Array | null;
    let recTtl = ttl;
    if (isScalar(node)) {
      if (typeof node.value === 'boolean') {
        err('POPDNS_E_YAML_TYPE', `${tname} value ${String(node.value)} is a YAML boolean; quote it`, node);
        return null;
      }
      const s = scalarText(node);
      if (type === TYPE.TXT) txtQuotes(s, node);
      rdata = isTextType(type) ? txtFromText(s) : fromPresentation(s, node);
    } else if (isMap(node)) {
      const m = node as YAMLMap;
      const misread = misreadMapping(m);
      if (misread) {
        err('POPDNS_E_YAML_TYPE', `${tname} value ${misread}`, m);
        return null;
      }
      const fields: Record<string, unknown> = {};
      let valueNode: Node | undefined;
      let stringsNode: Node | undefined;
      for (const p of m.items) {
        const k = isScalar(p.key) ? String(p.key.value) : '';
        if (k === 'ttl') {
          const t = ttlOf(p.value as Node, `ttl of this ${tname}`);
          if (t === undefined) return null;
          recTtl = t;
        } else if (k === 'value') valueNode = p.value as Node;
        else if (k === 'strings' && isTextType(type)) stringsNode = p.value as Node;
        else fields[k] = (p.value as Node | null)?.toJSON?.() ?? null;
      }
      // CAA has a field called value: with other fields present, it is the structured form.
      if (valueNode && type === TYPE.CAA && Object.keys(fields).length > 0) {
        fields.value = valueNode.toJSON();
        valueNode = undefined;
      }
      if (valueNode) {
        if (Object.keys(fields).length > 0 || stringsNode) {
          err('POPDNS_E_YAML_UNKNOWN_KEY', `a ${tname} with value: takes only ttl besides it`, m);
          return null;
        }
        if (!isScalar(valueNode)) {
          err('POPDNS_E_YAML_TYPE', 'value: must be a presentation-format string', valueNode);
          return null;
        }
        rdata = fromPresentation(scalarText(valueNode), valueNode);
      } else if (stringsNode) {
        if (Object.keys(fields).length > 0) {
          err('POPDNS_E_YAML_UNKNOWN_KEY', `a ${tname} with strings: takes only ttl besides it`, m);
          return null;
        }
        const list = isSeq(stringsNode) ? (stringsNode.items as Node[]) : [stringsNode];
        const parts: number[] = [];
        for (const s of list) {
          if (!isScalar(s)) {
            err('POPDNS_E_YAML_TYPE', 'strings: must be a list of strings', s);
            return null;
          }
          txtQuotes(scalarText(s), s);
          parts.push(...txtFromText(scalarText(s)));
        }
        rdata = Uint8Array.from(parts);
      } else {
        try {
          rdata = rdataFromFields(type, fields, zoneOrigin);
        } catch (e) {
          return fail(e, m);
        }
      }
    } else {
      err('POPDNS_E_YAML_TYPE', `${tname} must be a string, a mapping, or a list of them`, node);
      return null;
    }
    if (!rdata) return null;
    return { owner, type, class: CLASS.IN, ttl: recTtl, rdata, pos };
  }

  /** A YAML TXT value in literal double quotes: the quotes become part of the text (BIND habit). */
  function txtQuotes(s: string, at: Node): void {
    if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) {
      diagnostics.push(
        diag(
          'warning',
          'POPDNS_W_TXT_QUOTES',
          `TXT value starts and ends with a literal " (the quotes become part of the text, which breaks SPF and DKIM); in YAML write the text itself: ${s.slice(1, -1).includes("'") ? s.slice(1, -1) : `'${s.slice(1, -1)}'`}`,
          posOf(at),
        ),
      );
    }
  }

  // soa: (after records, so the first apex NS can be the default MNAME)
  const soaNode = soaPair?.value as Node | undefined;
  const soaPos = soaPair ? posOf(soaPair.key as Node) : posAt(0);
  if (soaPair) {
    const soa: Record<string, number | Name> = {};
    let soaTtl = defaultTtl;
    if (soaNode !== null && soaNode !== undefined && !isMap(soaNode)) {
      err(
        'POPDNS_E_YAML_TYPE',
        'soa must be a mapping (mname, rname, serial, refresh, retry, expire, minimum, ttl)',
        soaNode,
      );
    } else {
      for (const p of (soaNode as YAMLMap | undefined)?.items ?? []) {
        const k = isScalar(p.key) ? String(p.key.value) : '';
        const v = p.value as Node;
        if (!SOA_KEYS.has(k)) {
          err(
            'POPDNS_E_YAML_UNKNOWN_KEY',
            `unknown soa key "${k}" (${[...SOA_KEYS].join(', ')})`,
            p.key as Node,
          );
          continue;
        }
        if (k === 'mname' || k === 'rname') {
          if (!isScalar(v) || typeof v.value !== 'string') {
            err('POPDNS_E_YAML_TYPE', `soa ${k} must be a domain name`, v);
            continue;
          }
          try {
            soa[k] =
              k === 'rname' && v.value.includes('@')
                ? mailToName(v.value)
                : nameFromText(v.value, zoneOrigin);
          } catch (x) {
            err('POPDNS_E_NAME', `soa ${k}: ${(x as Error).message}`, v);
          }
        } else if (k === 'ttl') {
          soaTtl = ttlOf(v, 'soa ttl') ?? soaTtl;
        } else if (k === 'serial') {
          const s = isScalar(v) ? scalarText(v) : '';
          if (!/^[0-9]+$/.test(s) || Number(s) > 0xffffffff)
            err('POPDNS_E_RDATA', `soa serial "${s}" is not 0..4294967295`, v);
          else soa[k] = Number(s);
        } else {
          const t = ttlOf(v, `soa ${k}`);
          if (t !== undefined) soa[k] = t;
        }
      }
    }
    const mname = (soa.mname as Name | undefined) ?? apexNsTargets[0];
    if (!mname) {
      err('POPDNS_E_RDATA', 'soa has no mname and the apex has no NS to take it from', soaPair.key as Node);
    } else {
      const rname = (soa.rname as Name | undefined) ?? nameFromText('hostmaster', zoneOrigin);
      const num = (k: keyof typeof SOA_DEFAULTS): number => (soa[k] as number | undefined) ?? SOA_DEFAULTS[k];
      const rd = new Uint8Array(mname.length + rname.length + 20);
      rd.set(mname, 0);
      rd.set(rname, mname.length);
      const dv = new DataView(rd.buffer, mname.length + rname.length);
      dv.setUint32(0, num('serial'));
      dv.setUint32(4, num('refresh'));
      dv.setUint32(8, num('retry'));
      dv.setUint32(12, num('expire'));
      dv.setUint32(16, num('minimum'));
      const soaRec: ZoneRecord = {
        owner: zoneOrigin,
        type: TYPE.SOA,
        class: CLASS.IN,
        ttl: soaTtl,
        rdata: rd,
        pos: soaPos,
      };
      soaRead = true;
      if (onRecord) onRecord(soaRec, zoneOrigin);
      else records.unshift(soaRec);
    }
  }
  const parsed = result(zoneOrigin, zoneTtl);
  if (dnssec !== undefined) parsed.dnssec = dnssec;
  if (soaPair && !soaRead) failedTypes.add(TYPE.SOA);
  if (failedTypes.size > 0) parsed.failedTypes = failedTypes;
  return parsed;
}

/**
 * When a record value that YAML read as a mapping was meant as a plain string, the hint to quote it:
 * a single key with no value, as an unquoted IPv6 address ending in `::` reads (`AAAA: [2001:db8::]`).
 */
function misreadMapping(m: YAMLMap): string | null {
  const pairs = m.items;
  if (pairs.length === 0) return null;
  const keys = pairs.map((p) => (isScalar(p.key) ? String(p.key.value) : ''));
  const v = pairs[0]!.value;
  if (pairs.length === 1 && (v === null || (isScalar(v) && v.value === null))) {
    return `reads as a YAML mapping (the key "${keys[0]}" with no value), not a string: quote it: '${keys[0]}:'`;
  }
  return null;
}

/**
 * Reports the YAML syntax errors of a file, one cause one message: tabs in the indentation are one
 * error naming every line that has one, errors on a line that already has one are dropped, and so
 * are indentation errors that follow from an earlier error. A value with ": " in it gets the hint to
 * quote it (an unquoted IPv6 address ending in "::" is one).
 */
function yamlSyntaxErrors(
  errors: readonly YAMLError[],
  text: string,
  posAt: (offset: number) => Position,
  out: Diagnostic[],
): void {
  const tabs = errors.filter((e) => e.code === 'TAB_AS_INDENT');
  const tabLines = new Set(tabs.map((e) => posAt(e.pos[0]).line));
  const lines = new Set<number>(tabLines);
  if (tabs.length > 0) {
    const list = [...tabLines];
    out.push(
      diag(
        'error',
        'POPDNS_E_YAML_SYNTAX',
        `a tab in the indentation (YAML indents with spaces only)${list.length > 1 ? `; tabs also on line${list.length > 2 ? 's' : ''} ${list.slice(1).join(', ')}` : ''}`,
        posAt(tabs[0]!.pos[0]),
      ),
    );
  }
  let seen = tabs.length > 0;
  for (const e of errors) {
    if (e.code === 'TAB_AS_INDENT') continue;
    const pos = posAt(e.pos[0]);
    if (lines.has(pos.line)) continue;
    if (seen && (e.code === 'BAD_INDENT' || e.code === 'MULTILINE_IMPLICIT_KEY')) continue;
    lines.add(pos.line);
    seen = true;
    let msg = e.message.split('\n')[0]!;
    if (e.code === 'BLOCK_AS_IMPLICIT_KEY') {
      const lineText = text.split('\n')[pos.line - 1] ?? '';
      const value = /^\s*[^:#]+:\s+(.*?)\s*(#.*)?$/.exec(lineText)?.[1];
      const why = value?.endsWith(':') ? 'it ends in ":" (an IPv6 address?)' : 'of the ": " in it';
      msg = value
        ? `YAML reads the value ${value} as a mapping because ${why}; quote it: '${value.replace(/'/g, "''")}'`
        : `${msg}: a value with ": " in it, or ending in ":", reads as a mapping; quote it`;
    }
    if (e.code === 'BLOCK_IN_FLOW') {
      // `{ AAAA: 2001:db8:: }`, `{ TXT: a: b }`: in a flow mapping the value's ": " or final ":"
      // starts a block mapping. The value runs to the next `,`, `}`, `]` or the end of the line.
      const value = /^([^,}\]\n#]*?)\s*(?:[,}\]\n#]|$)/.exec(text.slice(e.pos[0]))?.[1];
      if (value && value.includes(':')) {
        const why = value.endsWith(':') ? 'it ends in ":" (an IPv6 address?)' : 'of the ": " in it';
        msg = `YAML reads the value ${value} as a mapping because ${why}; quote it: '${value.replace(/'/g, "''")}'`;
      }
    }
    out.push(diag('error', 'POPDNS_E_YAML_SYNTAX', msg, pos));
  }
}

/** `hostmaster@example.com` → `hostmaster.example.com.`, dots in the local part escaped (RFC 1035 §8). */
export function mailToName(mail: string): Name {
  const at = mail.lastIndexOf('@');
  const local = mail.slice(0, at).replace(/\\/g, '\\\\').replace(/\./g, '\\.');
  const domain = mail.slice(at + 1);
  return nameFromText(`${local}.${domain.endsWith('.') ? domain : `${domain}.`}`);
}

// ---------------------------------------------------------------------------------------------
// Writer

/** The literal text of a TXT record when writing it as a plain YAML string round-trips exactly. */
function plainTxt(rdata: Uint8Array): string | null {
  let s = '';
  let i = 0;
  while (i < rdata.length) {
    const len = rdata[i]!;
    for (const b of rdata.subarray(i + 1, i + 1 + len)) {
      if (b < 0x20 || b > 0x7e) return null;
      s += String.fromCharCode(b);
    }
    i += 1 + len;
  }
  return Buffer.from(txtFromText(s)).equals(Buffer.from(rdata)) ? s : null;
}

export function writeYamlZone(
  origin: Name,
  records: ZoneRecord[],
  opts: { defaultTtl?: number; dnssec?: ZoneDnssecSettings | false | undefined } = {},
): string {
  const soaRec = records.find((r) => r.type === TYPE.SOA && nameEquals(r.owner, origin));
  const ttlCounts = new Map<number, number>();
  for (const r of records) if (r !== soaRec) ttlCounts.set(r.ttl, (ttlCounts.get(r.ttl) ?? 0) + 1);
  const zoneTtl =
    opts.defaultTtl ??
    [...ttlCounts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ??
    DEFAULT_TTL;
  const doc: Record<string, unknown> = { origin: nameToText(origin), ttl: zoneTtl };
  if (soaRec) {
    const rd = soaRec.rdata;
    const { name: mname, next } = readPlainName(rd, 0);
    const { name: rname, next: end } = readPlainName(rd, next);
    const dv = new DataView(rd.buffer, rd.byteOffset + end);
    const soa: Record<string, unknown> = {
      mname: nameToRelativeText(mname, origin),
      rname: nameToRelativeText(rname, origin),
      serial: dv.getUint32(0),
      refresh: dv.getUint32(4),
      retry: dv.getUint32(8),
      expire: dv.getUint32(12),
      minimum: dv.getUint32(16),
    };
    if (soaRec.ttl !== zoneTtl) soa.ttl = soaRec.ttl;
    doc.soa = soa;
  }
  if (opts.dnssec === false) doc.dnssec = false;
  else if (opts.dnssec) {
    const d = opts.dnssec;
    const out: Record<string, unknown> = {};
    if (d.denial) out.denial = d.denial;
    if (d.optOut !== undefined) out['opt-out'] = d.optOut;
    if (d.validity !== undefined) out.validity = d.validity;
    if (d.cds !== undefined) out.cds = d.cds;
    doc.dnssec = Object.keys(out).length === 0 ? true : out;
  }
  const owners = new Map<string, { owner: Name; byType: Map<number, ZoneRecord[]> }>();
  for (const r of records) {
    if (r === soaRec) continue;
    const k = nameKey(r.owner);
    let o = owners.get(k);
    if (!o) {
      o = { owner: r.owner, byType: new Map() };
      owners.set(k, o);
    }
    const list = o.byType.get(r.type) ?? [];
    list.push(r);
    o.byType.set(r.type, list);
  }
  const out: Record<string, Record<string, unknown>> = {};
  for (const o of [...owners.values()].sort((a, b) => canonicalCompare(a.owner, b.owner))) {
    const body: Record<string, unknown> = {};
    for (const [type, list] of [...o.byType.entries()].sort((a, b) => a[0] - b[0])) {
      const values = list.map((r) => {
        let v: unknown;
        if (isTextType(type)) {
          const lit = plainTxt(r.rdata);
          v = lit !== null ? lit : { value: rdataToText(type, r.rdata, origin) };
        } else {
          v = rdataToText(type, r.rdata, origin);
        }
        if (r.ttl === zoneTtl) return v;
        return { value: rdataToText(type, r.rdata, origin), ttl: r.ttl };
      });
      body[typeToText(type)] = values.length === 1 ? values[0] : values;
    }
    out[nameToRelativeText(o.owner, origin)] = body;
  }
  doc.records = out;
  return stringify(doc, { lineWidth: 0, defaultKeyType: 'PLAIN', defaultStringType: 'PLAIN' });
}

function readPlainName(b: Uint8Array, off: number): { name: Name; next: number } {
  let i = off;
  while (b[i] !== 0) i += b[i]! + 1;
  return { name: b.subarray(off, i + 1), next: i + 1 };
}
