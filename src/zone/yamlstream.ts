/**
 * Streaming the `records:` block of a YAML zone file (docs/zone-format.md) one owner at a time, so a
 * big zone is never held as a YAML document model: a 200,000-name file used to cost five times the
 * memory of the same zone as an RFC 1035 file, and the `yaml` package's lexer alone takes as long
 * as the whole master-file parser.
 *
 * The block is cut into owner entries by indentation (an entry is a line at the owners' indentation
 * and the deeper lines after it). Each entry is read by a small reader for the YAML that zone files
 * are written in: block mappings and sequences, one-line flow mappings and sequences, plain and
 * one-line quoted scalars, comments. It builds the same `yaml` nodes (Scalar, YAMLMap, YAMLSeq, Pair,
 * with the same ranges and the core schema's scalar resolution) that the `yaml` package would, so
 * yamlzone.ts checks them with the same code. An entry written in any other way (anchors, tags,
 * block scalars, multi-line scalars, escapes, tabs, an empty value) is handed to the `yaml` package
 * on its own. Whatever might read differently in a whole document than entry by entry (a syntax
 * error, a duplicate key, an alias, an odd layout) throws YamlFallback: the caller then reads the
 * whole file as one document, which gives the exact diagnostics of that path.
 */
import {
  type DocumentOptions,
  isMap,
  isScalar,
  type Node,
  Pair,
  parseDocument,
  type ParseOptions,
  Scalar,
  type SchemaOptions,
  type ToJSOptions,
  visit,
  YAMLMap,
  YAMLSeq,
} from 'yaml';

/** The file must be read as one YAML document (the streamed reading could differ from it). */
export class YamlFallback extends Error {
  constructor(readonly why: string) {
    super(`YAML zone read as one document: ${why}`);
  }
}

/** Where the top-level `records:` block is in a file (offsets into its text). */
export interface RecordsBlock {
  /** Offset of the `records` key, at column 1. */
  keyOffset: number;
  /** First line after `records:`. */
  start: number;
  /** Start of the first line at column 1 that is not a comment (or the end of the text). */
  end: number;
  /** Columns of indentation of the owner names (≥ 1). */
  ownerIndent: number;
}

const SP = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const HASH = 0x23;
const DASH = 0x2d;
const COLON = 0x3a;
const COMMA = 0x2c;
const SQUOTE = 0x27;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/** The `records:` line: the key at column 1, nothing after it but a comment. */
const RECORDS_LINE = /^records:(?:[ \t]+(?:#.*)?)?\r?$/m;
const ANOTHER_RECORDS = /^["']?records/gm;

/**
 * Finds the top-level `records:` block of a zone file written as a block mapping, or null when the
 * file has none that can be streamed (a flow mapping, no records, no owner in it, tabs at the left
 * margin, or a second `records` key): the file is then read as one document.
 */
export function findRecordsBlock(text: string): RecordsBlock | null {
  const m = RECORDS_LINE.exec(text);
  if (!m) return null;
  const keyOffset = m.index;
  const nl = text.indexOf('\n', keyOffset);
  if (nl < 0) return null;
  const start = nl + 1;
  let ownerIndent = -1;
  let end = text.length;
  let q = start;
  while (q < text.length) {
    const c = text.charCodeAt(q);
    if (c !== SP && c !== HASH && c !== LF && c !== CR) {
      if (c === TAB) return null;
      end = q;
      break;
    }
    const e = text.indexOf('\n', q);
    const le = e < 0 ? text.length : e;
    let i = q;
    while (i < le && text.charCodeAt(i) === SP) i++;
    const d = i < le ? text.charCodeAt(i) : LF;
    if (d === TAB) return null;
    if (d !== HASH && d !== CR && d !== LF) {
      if (ownerIndent < 0) ownerIndent = i - q;
      else if (i - q < ownerIndent) return null;
    }
    q = le + 1;
  }
  if (ownerIndent < 1) return null;
  ANOTHER_RECORDS.lastIndex = end;
  if (ANOTHER_RECORDS.exec(text)) return null;
  return { keyOffset, start, end, ownerIndent };
}

/**
 * The file's text without the records block (the rest is a small YAML document), and how far offsets
 * after the block moved: add `delta` to those at or after `start` (see shiftRanges).
 */
export function headOf(text: string, b: RecordsBlock): { head: string; start: number; delta: number } {
  return { head: text.slice(0, b.start) + text.slice(b.end), start: b.start, delta: b.end - b.start };
}

/** Adds `delta` to every range offset at or after `from` (or to all, from 0) in a node tree. */
export function shiftRanges(root: unknown, from: number, delta: number): void {
  if (delta === 0) return;
  visit(root as Node, {
    Node(_k, n) {
      const r = n.range;
      if (r) {
        for (let i = 0; i < 3; i++) if (r[i]! >= from) r[i] = r[i]! + delta;
      }
    },
  });
}

/** Scalar keys of every mapping in `root` are unique (compared as strings, like yamlzone.ts). */
function uniqueKeys(root: unknown): boolean {
  let ok = true;
  visit(root as Node, {
    Map(_k, map) {
      const seen = new Set<string>();
      for (const p of map.items) {
        if (!isScalar(p.key)) continue;
        const k = String(p.key.value);
        if (seen.has(k)) ok = false;
        seen.add(k);
      }
    },
  });
  return ok;
}

/** The first character of a plain scalar that a core-schema tag other than str could match. */
const MAYBE_NOT_STRING = /^[-+.~0-9nNtTfF]/;

/** Thrown inside the small reader: this entry goes to the `yaml` package. */
const UNSUPPORTED: unique symbol = Symbol('unsupported');

interface ScalarTag {
  default?: boolean | 'key';
  test?: RegExp;
  resolve: (str: string, onError: (msg: string) => void, opt: unknown) => unknown;
}

type YamlDocOptions = DocumentOptions & ParseOptions & SchemaOptions & ToJSOptions;

/**
 * Reads the owner entries of a records block one at a time, as `yaml` Pairs (key: the owner name,
 * value: its mapping of types), with ranges as offsets into the whole text.
 */
export class RecordsReader {
  private p = 0;
  private end = 0;
  private next_ = 0;
  private nextTab: number;
  /** The next "\r" not followed by "\n" (a CRLF line end is read; a lone CR goes to `yaml`). */
  private nextCr: number;
  private readonly owners = new Set<string>();
  private readonly tags: ScalarTag[];
  /** Entries the small reader took, and those handed to the `yaml` package. */
  fast = 0;
  slow = 0;

  /**
   * `tags` and `options`: the schema's scalar tags and the options of the document the rest of the
   * file was read with, so plain scalars resolve the same way (null, booleans, numbers).
   */
  constructor(
    private readonly t: string,
    private readonly b: RecordsBlock,
    tags: readonly unknown[],
    private readonly options: YamlDocOptions,
  ) {
    this.tags = (tags as ScalarTag[]).filter((tag) => tag.default === true && tag.test);
    this.next_ = b.start;
    this.nextTab = t.indexOf('\t', b.start);
    this.nextCr = this.loneCr(b.start);
  }

  /** The next owner entry, or null after the last. Throws YamlFallback. */
  next(): Pair | null {
    const { t, b } = this;
    const ind = b.ownerIndent;
    // Find the entry's first line: skip blank and comment lines.
    let cs = -1;
    let q = this.next_;
    while (q < b.end) {
      let i = q;
      while (i < b.end && t.charCodeAt(i) === SP) i++;
      const c = i < b.end ? t.charCodeAt(i) : LF;
      if (c !== HASH && c !== LF && c !== CR) {
        if (i - q !== ind) throw new YamlFallback('indentation');
        cs = q;
        break;
      }
      const e = t.indexOf('\n', i);
      q = e < 0 || e >= b.end ? b.end : e + 1;
    }
    if (cs < 0) {
      this.next_ = b.end;
      return null;
    }
    const kc = t.charCodeAt(cs + ind);
    // A key line that is not a plain or quoted scalar key: complex keys, flow keys, anchors, tags.
    if ('?:-[{&*!|>%@`'.includes(t[cs + ind]!) && !(kc === DASH && !this.isSpaceOrEnd(cs + ind + 1, b.end)))
      throw new YamlFallback('owner key');
    // The entry ends at the next line with content at the owners' indentation (not a "- " item).
    let ce = b.end;
    q = t.indexOf('\n', cs);
    while (q >= 0 && q + 1 < b.end) {
      const ls = q + 1;
      let i = ls;
      while (i < b.end && t.charCodeAt(i) === SP) i++;
      const c = i < b.end ? t.charCodeAt(i) : LF;
      if (c !== HASH && c !== LF && c !== CR && i - ls <= ind) {
        if (i - ls < ind) throw new YamlFallback('indentation');
        if (!(c === DASH && this.isSpaceOrEnd(i + 1, b.end))) {
          ce = ls;
          break;
        }
      }
      q = t.indexOf('\n', i);
    }
    this.next_ = ce;
    let pair: Pair | null = null;
    while (this.nextTab >= 0 && this.nextTab < cs) this.nextTab = t.indexOf('\t', cs);
    if (this.nextCr >= 0 && this.nextCr < cs) this.nextCr = this.loneCr(cs);
    const plainChars = (this.nextTab < 0 || this.nextTab >= ce) && (this.nextCr < 0 || this.nextCr >= ce);
    if (plainChars) {
      try {
        pair = this.owner(cs, ce);
        this.fast++;
      } catch (e) {
        if (e !== UNSUPPORTED) throw e;
      }
    }
    if (pair === null) {
      pair = this.slowEntry(cs, ce);
      this.slow++;
    }
    const k = isScalar(pair.key) ? String(pair.key.value) : null;
    if (k !== null) {
      if (this.owners.has(k)) throw new YamlFallback('duplicate key');
      this.owners.add(k);
    }
    return pair;
  }

  /** An entry the small reader does not take, read by the `yaml` package on its own. */
  private slowEntry(cs: number, ce: number): Pair {
    const doc = parseDocument(this.t.slice(cs, ce), { ...this.options, prettyErrors: false });
    if (doc.errors.length > 0) throw new YamlFallback('syntax');
    if (!uniqueKeys(doc)) throw new YamlFallback('duplicate key');
    const top = doc.contents;
    if (!isMap(top) || top.items.length !== 1) throw new YamlFallback('entry');
    shiftRanges(doc, 0, cs);
    return top.items[0] as Pair;
  }

  private loneCr(from: number): number {
    let i = this.t.indexOf('\r', from);
    while (i >= 0 && this.t.charCodeAt(i + 1) === LF) i = this.t.indexOf('\r', i + 2);
    return i;
  }

  private isSpaceOrEnd(i: number, end: number): boolean {
    if (i >= end) return true;
    const c = this.t.charCodeAt(i);
    return c === SP || c === LF || c === CR || c === TAB;
  }

  // --- the small reader: this.p walks the text, this.end is the entry's end ---------------------

  /** At a line end: "\n", "\r\n" (a lone "\r" never reaches the small reader), or the entry's end. */
  private eol(i: number): boolean {
    if (i >= this.end) return true;
    const c = this.t.charCodeAt(i);
    return c === LF || c === CR;
  }

  /** Steps over the line break at this.p (eol is true there). */
  private newline(): void {
    if (this.p < this.end && this.t.charCodeAt(this.p) === CR) this.p++;
    if (this.p < this.end) this.p++;
  }

  private skipSpaces(): void {
    while (this.p < this.end && this.t.charCodeAt(this.p) === SP) this.p++;
  }

  /** After a value: spaces, an optional comment, the line break. */
  private endOfLine(): void {
    const start = this.p;
    this.skipSpaces();
    if (this.p < this.end && this.t.charCodeAt(this.p) === HASH) {
      if (this.p === start) throw UNSUPPORTED;
      const e = this.t.indexOf('\n', this.p);
      this.p = e < 0 || e >= this.end ? this.end : e;
    }
    if (!this.eol(this.p)) throw UNSUPPORTED;
    this.newline();
  }

  /**
   * From the start of a line: the offset of the next line with content (blank and comment lines
   * skipped) and its indentation, or -1 at the entry's end. Does not move this.p.
   */
  private peekIndent = 0;
  private peek(): number {
    let q = this.p;
    while (q < this.end) {
      let i = q;
      while (i < this.end && this.t.charCodeAt(i) === SP) i++;
      if (i < this.end) {
        const c = this.t.charCodeAt(i);
        if (c !== HASH && c !== LF && c !== CR) {
          this.peekIndent = i - q;
          return i;
        }
      }
      const e = this.t.indexOf('\n', i);
      q = e < 0 || e >= this.end ? this.end : e + 1;
    }
    return -1;
  }

  private owner(cs: number, ce: number): Pair {
    this.end = ce;
    this.p = cs + this.b.ownerIndent;
    const key = this.key(false);
    const value = this.afterColon(this.b.ownerIndent);
    if (this.peek() >= 0) throw UNSUPPORTED;
    return new Pair(key, value);
  }

  private resolvePlain(s: string): Scalar {
    // Every core-schema tag but the string's (null, bool, int, float) starts with one of these.
    if (s.length > 0 && !MAYBE_NOT_STRING.test(s)) return new Scalar(s);
    for (const tag of this.tags) {
      if (tag.test!.test(s)) {
        const v = tag.resolve(s, () => {}, this.options);
        return isScalar(v) ? v : new Scalar(v);
      }
    }
    return new Scalar(s);
  }

  private isFlowIndicator(c: number): boolean {
    return c === COMMA || c === LBRACKET || c === RBRACKET || c === LBRACE || c === RBRACE;
  }

  /** A plain scalar (block or flow context), one line. */
  private plain(flow: boolean, isKey: boolean): Scalar {
    const t = this.t;
    const start = this.p;
    const c0 = t.charCodeAt(start);
    if (this.eol(start) || c0 === SP) throw UNSUPPORTED;
    if ('-?:'.includes(t[start]!)) {
      const n = start + 1 < this.end ? t.charCodeAt(start + 1) : LF;
      if (n === SP || n === LF || n === CR || (flow && this.isFlowIndicator(n))) throw UNSUPPORTED;
    } else if (',[]{}#&*!|>\'"%@`'.includes(t[start]!)) throw UNSUPPORTED;
    let i = start;
    while (i < this.end) {
      const c = t.charCodeAt(i);
      if (c === LF || c === CR) break;
      if (c === COLON) {
        const n = i + 1 < this.end ? t.charCodeAt(i + 1) : LF;
        if (n === SP || n === LF || n === CR || (flow && this.isFlowIndicator(n))) break;
      } else if (c === HASH) {
        if (t.charCodeAt(i - 1) === SP) break;
      } else if (flow && this.isFlowIndicator(c)) break;
      i++;
    }
    let e = i;
    while (e > start && t.charCodeAt(e - 1) === SP) e--;
    if (isKey && e - start > 1024) throw UNSUPPORTED;
    const s = this.resolvePlain(t.slice(start, e));
    s.range = [start, e, e];
    s.type = Scalar.PLAIN;
    this.p = e;
    return s;
  }

  /** A quoted scalar on one line, without escapes in double quotes. */
  private quoted(): Scalar {
    const t = this.t;
    const start = this.p;
    const q = t.charCodeAt(start);
    let i = start + 1;
    let doubled = false;
    for (;;) {
      if (this.eol(i)) throw UNSUPPORTED;
      const c = t.charCodeAt(i);
      if (q === DQUOTE) {
        if (c === BACKSLASH) throw UNSUPPORTED;
        if (c === DQUOTE) break;
      } else if (c === SQUOTE) {
        if (i + 1 < this.end && t.charCodeAt(i + 1) === SQUOTE) {
          doubled = true;
          i += 2;
          continue;
        }
        break;
      }
      i++;
    }
    let v = t.slice(start + 1, i);
    if (doubled) v = v.replace(/''/g, "'");
    const s = new Scalar(v);
    s.range = [start, i + 1, i + 1];
    s.type = q === DQUOTE ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE;
    this.p = i + 1;
    return s;
  }

  /** A key and its colon (followed by a space or the line's end). */
  private key(flow: boolean): Scalar {
    const c = this.t.charCodeAt(this.p);
    const k = c === DQUOTE || c === SQUOTE ? this.quoted() : this.plain(flow, true);
    this.skipSpaces();
    if (this.t.charCodeAt(this.p) !== COLON) throw UNSUPPORTED;
    this.p++;
    const n = this.p < this.end ? this.t.charCodeAt(this.p) : LF;
    if (n !== SP && n !== LF && n !== CR) throw UNSUPPORTED;
    return k;
  }

  /** The value after `key:` in block context, through the end of its last line. */
  private afterColon(indent: number): Node {
    this.skipSpaces();
    if (this.p < this.end && this.t.charCodeAt(this.p) === HASH) {
      this.endOfLine();
      return this.block(indent);
    }
    if (this.eol(this.p)) {
      this.newline();
      return this.block(indent);
    }
    const v = this.inline(false);
    this.endOfLine();
    return v;
  }

  private inline(flow: boolean): Node {
    const c = this.t.charCodeAt(this.p);
    if (c === LBRACKET) return this.flowSeq();
    if (c === LBRACE) return this.flowMap();
    if (c === DQUOTE || c === SQUOTE) return this.quoted();
    return this.plain(flow, false);
  }

  /** A block collection on the lines after `key:` (a mapping deeper than the key, or a sequence). */
  private block(indent: number): Node {
    const at = this.peek();
    if (at < 0) throw UNSUPPORTED; // an empty value: the `yaml` package places it
    const ind = this.peekIndent;
    if (this.t.charCodeAt(at) === DASH && this.isSpaceOrEnd(at + 1, this.end)) {
      if (ind < indent) throw UNSUPPORTED;
      return this.blockSeq(ind, at);
    }
    if (ind <= indent) throw UNSUPPORTED;
    return this.blockMap(ind, at);
  }

  private blockMap(indent: number, first: number): YAMLMap {
    const m = new YAMLMap();
    this.p = first;
    const keys: string[] = [];
    for (;;) {
      const k = this.key(false);
      const v = this.afterColon(indent);
      const ks = String(k.value);
      if (keys.includes(ks)) throw new YamlFallback('duplicate key');
      keys.push(ks);
      m.items.push(new Pair(k, v));
      const at = this.peek();
      if (at < 0 || this.peekIndent < indent) break;
      if (this.peekIndent > indent) throw UNSUPPORTED;
      if (this.t.charCodeAt(at) === DASH && this.isSpaceOrEnd(at + 1, this.end)) throw UNSUPPORTED;
      this.p = at;
    }
    m.range = [first, this.p, this.p];
    return m;
  }

  private blockSeq(indent: number, first: number): YAMLSeq {
    const s = new YAMLSeq();
    const t = this.t;
    let at = first;
    for (;;) {
      this.p = at + 1;
      this.skipSpaces();
      if (this.eol(this.p) || t.charCodeAt(this.p) === HASH) throw UNSUPPORTED;
      const c = t.charCodeAt(this.p);
      const p0 = this.p;
      if (c === LBRACKET || c === LBRACE) {
        s.items.push(this.inline(false));
        this.endOfLine();
      } else {
        const v = c === DQUOTE || c === SQUOTE ? this.quoted() : this.plain(false, false);
        this.skipSpaces();
        if (this.p < this.end && t.charCodeAt(this.p) === COLON) {
          // "- key: value": a mapping whose keys line up with this first one
          const lineStart = t.lastIndexOf('\n', p0) + 1;
          s.items.push(this.blockMap(p0 - lineStart, p0));
        } else {
          s.items.push(v);
          this.endOfLine();
        }
      }
      at = this.peek();
      if (at < 0 || this.peekIndent < indent) break;
      if (this.peekIndent > indent) throw UNSUPPORTED;
      if (!(t.charCodeAt(at) === DASH && this.isSpaceOrEnd(at + 1, this.end))) break;
    }
    s.range = [first, this.p, this.p];
    return s;
  }

  private flowSeq(): YAMLSeq {
    const s = new YAMLSeq();
    const start = this.p;
    this.p++;
    for (;;) {
      this.skipSpaces();
      if (this.eol(this.p)) throw UNSUPPORTED;
      if (this.t.charCodeAt(this.p) === RBRACKET) break;
      s.items.push(this.flowValue());
      this.skipSpaces();
      const c = this.p < this.end ? this.t.charCodeAt(this.p) : LF;
      if (c === COMMA) this.p++;
      else if (c !== RBRACKET) throw UNSUPPORTED;
    }
    this.p++;
    s.range = [start, this.p, this.p];
    return s;
  }

  private flowMap(): YAMLMap {
    const m = new YAMLMap();
    const start = this.p;
    const keys: string[] = [];
    this.p++;
    for (;;) {
      this.skipSpaces();
      if (this.eol(this.p)) throw UNSUPPORTED;
      if (this.t.charCodeAt(this.p) === RBRACE) break;
      const k = this.key(true);
      this.skipSpaces();
      const c0 = this.p < this.end ? this.t.charCodeAt(this.p) : LF;
      if (c0 === COMMA || c0 === RBRACE || this.eol(this.p)) throw UNSUPPORTED;
      const v = this.flowValue();
      const ks = String(k.value);
      if (keys.includes(ks)) throw new YamlFallback('duplicate key');
      keys.push(ks);
      m.items.push(new Pair(k, v));
      this.skipSpaces();
      const c = this.p < this.end ? this.t.charCodeAt(this.p) : LF;
      if (c === COMMA) this.p++;
      else if (c !== RBRACE) throw UNSUPPORTED;
    }
    this.p++;
    m.range = [start, this.p, this.p];
    return m;
  }

  private flowValue(): Node {
    return this.inline(true);
  }
}
