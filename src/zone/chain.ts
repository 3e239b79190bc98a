/**
 * A sorted sequence that zone versions share: the NSEC chain (RFC 4034 §4, canonical name order)
 * and the NSEC3 chain (RFC 5155 §7.1, hash order) of a signed zone (zone/dnssec.ts).
 *
 * The entries sit in chunks of about √n entries each (never empty). A version is never written:
 * insertAt / removeAt / setAt return a new version that shares every chunk but the one it changed,
 * so a change costs O(√n) (the list of chunks and their start indices are copied, plus one chunk)
 * instead of the O(n) of copying a flat array, and the old version stays intact for its readers (an
 * AXFR streaming it, queries still on it). Lookups by key are two binary searches (chunk by its
 * first entry, then inside the chunk) and allocate nothing, so the answer path can use them.
 *
 * This module imports nothing: the entry type and the key comparison come from the user.
 */

/** Chunk size aimed at for `n` entries (at least 64, about √n). */
function target(n: number): number {
  return Math.max(64, Math.ceil(Math.sqrt(n)));
}

/**
 * An immutable sorted sequence of T, searched by keys of type K with `cmp(entry, key)` (< 0: the
 * entry sorts before the key; 0: the entry has that key). Iterable in order.
 */
export class SortedChain<T, K> implements Iterable<T> {
  /** Number of entries. */
  readonly length: number;
  private readonly chunks: readonly (readonly T[])[];
  /** starts[c]: index of chunks[c][0]; starts[chunks.length] === length. */
  private readonly starts: Int32Array;
  private readonly cmp: (entry: T, key: K) => number;

  private constructor(chunks: readonly (readonly T[])[], cmp: (entry: T, key: K) => number) {
    this.chunks = chunks;
    this.cmp = cmp;
    const starts = new Int32Array(chunks.length + 1);
    let n = 0;
    for (let c = 0; c < chunks.length; c++) {
      starts[c] = n;
      n += chunks[c]!.length;
    }
    starts[chunks.length] = n;
    this.starts = starts;
    this.length = n;
  }

  /**
   * A chain of `sorted` (already in the order `cmp` defines, keys unique; not checked). The array
   * is not kept: later changes to it do not show.
   */
  static from<T, K>(sorted: readonly T[], cmp: (entry: T, key: K) => number): SortedChain<T, K> {
    const size = target(sorted.length);
    const chunks: T[][] = [];
    for (let i = 0; i < sorted.length; i += size) chunks.push(sorted.slice(i, i + size));
    return new SortedChain(chunks, cmp);
  }

  /** The chunk holding index i (0 ≤ i < length). */
  private chunkAt(i: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (s[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The last chunk whose first entry is not above `key`, or 0 (chain not empty). */
  private chunkFor(key: K): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.cmp(chunks[mid]![0]!, key) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The entry at index i (0 ≤ i < length), else undefined. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.length) return undefined;
    const c = this.chunkAt(i);
    return this.chunks[c]![i - this.starts[c]!];
  }

  /** Index of the first entry not below `key` (its own index when an entry has that key); length when none. */
  lowerBound(key: K): number {
    if (this.length === 0) return 0;
    const c = this.chunkFor(key);
    const chunk = this.chunks[c]!;
    let lo = 0;
    let hi = chunk.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cmp(chunk[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return this.starts[c]! + lo;
  }

  /**
   * The last entry not above `key` (the one with that key, or the one before where it would go),
   * or the last entry of the chain when every entry is above `key` (the chain wraps: RFC 4034 §4.1.1,
   * RFC 5155 §7.1); undefined when the chain is empty. Allocates nothing (answer path).
   */
  floorWrap(key: K): T | undefined {
    const chunks = this.chunks;
    if (chunks.length === 0) return undefined;
    const chunk = chunks[this.chunkFor(key)]!;
    let lo = 0;
    let hi = chunk.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.cmp(chunk[mid]!, key);
      if (c === 0) return chunk[mid];
      if (c < 0) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (at >= 0) return chunk[at];
    const last = chunks[chunks.length - 1]!;
    return last[last.length - 1];
  }

  /** A new version with `entry` at index i (0 ≤ i ≤ length), the entries from i on moved up by one. */
  insertAt(i: number, entry: T): SortedChain<T, K> {
    if (i < 0 || i > this.length) throw new RangeError(`insertAt ${i} of ${this.length}`);
    if (this.chunks.length === 0) return new SortedChain([[entry]], this.cmp);
    const c = i === this.length ? this.chunks.length - 1 : this.chunkAt(i);
    const chunk = this.chunks[c]!.slice();
    chunk.splice(i - this.starts[c]!, 0, entry);
    const chunks = this.chunks.slice();
    const size = target(this.length + 1);
    if (chunk.length > 2 * size) {
      const half = chunk.length >>> 1;
      chunks.splice(c, 1, chunk.slice(0, half), chunk.slice(half));
    } else chunks[c] = chunk;
    return new SortedChain(chunks, this.cmp);
  }

  /** A new version without the entry at index i (0 ≤ i < length). */
  removeAt(i: number): SortedChain<T, K> {
    if (i < 0 || i >= this.length) throw new RangeError(`removeAt ${i} of ${this.length}`);
    const c = this.chunkAt(i);
    const chunk = this.chunks[c]!.slice();
    chunk.splice(i - this.starts[c]!, 1);
    const chunks = this.chunks.slice();
    const size = target(this.length - 1);
    if (chunk.length === 0) chunks.splice(c, 1);
    else if (chunk.length < size >>> 2 && chunks.length > 1) {
      // Small: joined with a neighbour (split again when that makes it too big).
      const left = c > 0;
      const merged = left ? [...chunks[c - 1]!, ...chunk] : [...chunk, ...chunks[c + 1]!];
      const at = left ? c - 1 : c;
      if (merged.length > 2 * size) {
        const half = merged.length >>> 1;
        chunks.splice(at, 2, merged.slice(0, half), merged.slice(half));
      } else chunks.splice(at, 2, merged);
    } else chunks[c] = chunk;
    return new SortedChain(chunks, this.cmp);
  }

  /** A new version with the entry at index i (0 ≤ i < length) replaced (its key must sort the same). */
  setAt(i: number, entry: T): SortedChain<T, K> {
    if (i < 0 || i >= this.length) throw new RangeError(`setAt ${i} of ${this.length}`);
    const c = this.chunkAt(i);
    const chunk = this.chunks[c]!.slice();
    chunk[i - this.starts[c]!] = entry;
    const chunks = this.chunks.slice();
    chunks[c] = chunk;
    return new SortedChain(chunks, this.cmp);
  }

  *[Symbol.iterator](): Iterator<T> {
    for (const chunk of this.chunks) yield* chunk;
  }

  /** The entries in order, as a new array (O(n)). */
  toArray(): T[] {
    const out: T[] = [];
    for (const chunk of this.chunks) for (const e of chunk) out.push(e);
    return out;
  }

  /**
   * What differs between two versions of one chain, without looking at the chunks both share: the
   * entries of `a`'s other chunks (`onlyA`) and of `b`'s other chunks (`onlyB`), each in order. An
   * entry in a shared chunk is in both at the same place, so every difference is between onlyA and
   * onlyB. O(chunks + the entries of the chunks not shared); two unrelated chains give everything.
   */
  static unshared<T, K>(a: SortedChain<T, K>, b: SortedChain<T, K>): { onlyA: T[]; onlyB: T[] } {
    const inB = new Set<readonly T[]>(b.chunks);
    const inA = new Set<readonly T[]>(a.chunks);
    const onlyA: T[] = [];
    const onlyB: T[] = [];
    for (const chunk of a.chunks) if (!inB.has(chunk)) for (const e of chunk) onlyA.push(e);
    for (const chunk of b.chunks) if (!inA.has(chunk)) for (const e of chunk) onlyB.push(e);
    return { onlyA, onlyB };
  }
}
