/**
 * Streaming the `records:` block of a YAML zone file (docs/zone-format.md) one owner at a time, so a
 * big zone is never held as a YAML document model: a 200,000-name file used to cost five times the
 * memory of the same zone as an RFC 1035 file, and the `yaml` package's lexer alone takes as long
 * as the whole master-file parser.
 *
 * The block is cut into owner entries by indentation (an entry is a line at the owners' indentation
 * and the deeper lines after it); the YAML itself is read by the `yaml` package only (the developers'
 * guide: a well-kept library beats our own code outside answering DNS), a chunk of entries at a time,
 * each chunk parsed as its own small document with the options of the rest of the file, its ranges
 * shifted to offsets into the whole text, so yamlzone.ts checks the nodes with the same code.
 * Whatever might read differently in a whole document than chunk by chunk (a syntax error, a
 * duplicate key, an odd layout, a chunk with a different count of entries than the cut found)
 * throws YamlFallback: the caller then reads the whole file as one document, which gives the exact
 * diagnostics of that path.
 */
import {
  type DocumentOptions,
  isMap,
  isScalar,
  type Node,
  type Pair,
  parseDocument,
  type ParseOptions,
  type SchemaOptions,
  type ToJSOptions,
  visit,
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

/**
 * One pass over a chunk's nodes: adds `delta` to every range offset, and tells whether the scalar
 * keys of every mapping are unique (compared as strings, like yamlzone.ts).
 */
function shiftAndCheckKeys(root: unknown, delta: number): boolean {
  let ok = true;
  visit(root as Node, {
    Node(_k, n) {
      const r = n.range;
      if (r) {
        r[0] += delta;
        r[1] += delta;
        r[2] += delta;
      }
      if (ok && isMap(n)) {
        const seen = new Set<string>();
        for (const p of n.items) {
          if (!isScalar(p.key)) continue;
          const k = String(p.key.value);
          if (seen.has(k)) ok = false;
          seen.add(k);
        }
      }
    },
  });
  return ok;
}

/**
 * Owner entries parsed as one `yaml` document at a time: big enough that the per-document cost
 * (parser, composer, Document) is spread thin, small enough that a chunk's nodes are short-lived.
 */
export const CHUNK = 64;

type YamlDocOptions = DocumentOptions & ParseOptions & SchemaOptions & ToJSOptions;

/**
 * Reads the owner entries of a records block one at a time, as `yaml` Pairs (key: the owner name,
 * value: its mapping of types), with ranges as offsets into the whole text. The block is cut into
 * entries here (by indentation); the YAML itself is read by the `yaml` package, CHUNK entries at a
 * time.
 */
export class RecordsReader {
  private next_ = 0;
  private readonly owners = new Set<string>();
  private readonly queue: Pair[] = [];
  private qi = 0;
  /** Owner entries read so far, and the `yaml` documents (chunks) they were read in. */
  entries = 0;
  chunks = 0;

  /**
   * `options`: those of the document the rest of the file was read with, so scalars resolve the
   * same way (null, booleans, numbers).
   */
  constructor(
    private readonly t: string,
    private readonly b: RecordsBlock,
    private readonly options: YamlDocOptions,
  ) {
    this.next_ = b.start;
  }

  /** The next owner entry, or null after the last. Throws YamlFallback. */
  next(): Pair | null {
    if (this.qi < this.queue.length) return this.queue[this.qi++]!;
    this.queue.length = 0;
    this.qi = 0;
    let first = -1;
    let last = -1;
    let n = 0;
    while (n < CHUNK) {
      const r = this.scan();
      if (!r) break;
      if (first < 0) first = r[0];
      last = r[1];
      n++;
    }
    if (n === 0) return null;
    const doc = parseDocument(this.t.slice(first, last), { ...this.options, prettyErrors: false });
    if (doc.errors.length > 0) throw new YamlFallback('syntax');
    const top = doc.contents;
    if (!isMap(top) || top.items.length !== n) throw new YamlFallback('entry');
    if (!shiftAndCheckKeys(doc, first)) throw new YamlFallback('duplicate key');
    for (const pair of top.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : null;
      if (k !== null) {
        if (this.owners.has(k)) throw new YamlFallback('duplicate key');
        this.owners.add(k);
      }
      this.queue.push(pair as Pair);
    }
    this.entries += n;
    this.chunks++;
    return this.queue[this.qi++]!;
  }

  /** The next owner entry's [start, end) in the text, or null after the last. Throws YamlFallback. */
  private scan(): [number, number] | null {
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
    return [cs, ce];
  }

  private isSpaceOrEnd(i: number, end: number): boolean {
    if (i >= end) return true;
    const c = this.t.charCodeAt(i);
    return c === SP || c === LF || c === CR || c === TAB;
  }
}
