/**
 * The children of one trie node, found by the label's bytes: no string is built to look a label up.
 *
 * A few children (most interior nodes) sit in a list searched in order. Past SMALL, an open-addressing
 * table (linear probing over Int32Arrays of list positions and label hashes) indexes the list, so the
 * apex of a zone with a million names costs three flat arrays rather than a million Map entries, and
 * building it needs no rehash of JS objects. Iteration follows insertion order.
 */

/** What a child must offer: its label in the zone's case, as latin1 characters. */
export interface Labelled {
  readonly label: string;
}

const SMALL = 8;
/** A clone of a set this big is an overlay on it (see clone) instead of a copy. */
const OVERLAY_MIN = 64;

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/** FNV-1a over the label's bytes, ASCII letters lower-cased (DNS names compare case-insensitively). */
function hashBytes(name: Uint8Array, off: number): number {
  const end = off + name[off]!;
  let h = 0x811c9dc5;
  for (let i = off + 1; i <= end; i++) h = Math.imul(h ^ lower(name[i]!), 0x01000193);
  return h | 0;
}

function hashText(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ lower(label.charCodeAt(i)), 0x01000193);
  return h | 0;
}

function sameBytes(label: string, name: Uint8Array, off: number): boolean {
  const len = name[off]!;
  if (label.length !== len) return false;
  for (let i = 0; i < len; i++) if (lower(label.charCodeAt(i)) !== lower(name[off + 1 + i]!)) return false;
  return true;
}

/** Scratch: a label as a length byte and its bytes (find's form). */
const LABEL = new Uint8Array(64);
function labelBytes(label: string): Uint8Array {
  LABEL[0] = label.length;
  for (let i = 0; i < label.length; i++) LABEL[i + 1] = label.charCodeAt(i);
  return LABEL;
}

/** The wildcard label as a length byte and the label: what engine lookups ask `get` for most. */
const STAR = Uint8Array.of(1, 0x2a);

export class Children<T extends Labelled> {
  /** Children in insertion order; a deleted one leaves a hole until the next compaction. */
  private list: (T | undefined)[] = [];
  private holes = 0;
  /** Open-addressing index over `list` (position + 1; 0 = empty), and each slot's label hash. */
  private index: Int32Array | null = null;
  private hashes: Int32Array | null = null;
  /**
   * An overlay (see clone): the shared set of an older version, never written, and which of its
   * children this one no longer has (deleted or replaced); the own list above holds the rest.
   */
  private base: Children<T> | null = null;
  private removed: Set<T> | null = null;

  get size(): number {
    const own = this.list.length - this.holes;
    return this.base === null ? own : own + this.base.size - this.removed!.size;
  }

  /** The child whose label is the one at `off` in `name` (a length byte, then the label). */
  find(name: Uint8Array, off: number): T | undefined {
    const c = this.findOwn(name, off);
    if (c !== undefined || this.base === null) return c;
    const b = this.base.findOwn(name, off);
    return b !== undefined && !this.removed!.has(b) ? b : undefined;
  }

  private findOwn(name: Uint8Array, off: number): T | undefined {
    const index = this.index;
    if (index === null) {
      const list = this.list;
      for (let i = 0; i < list.length; i++) {
        const c = list[i];
        if (c !== undefined && sameBytes(c.label, name, off)) return c;
      }
      return undefined;
    }
    const mask = index.length - 1;
    const h = hashBytes(name, off);
    const hashes = this.hashes!;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const at = index[s]!;
      if (at === 0) return undefined;
      if (hashes[s] === h) {
        const c = this.list[at - 1]!;
        if (sameBytes(c.label, name, off)) return c;
      }
    }
  }

  /** The child with this label (any letter case). */
  get(label: string): T | undefined {
    const bytes = label === '*' ? STAR : Uint8Array.from([label.length, ...Buffer.from(label, 'latin1')]);
    return this.find(bytes, 0);
  }

  /** Adds a child; the caller has made sure no child has its label yet. */
  add(child: T): void {
    this.list.push(child);
    if (this.index === null) {
      if (this.list.length > SMALL) this.rebuild();
      return;
    }
    if ((this.list.length - this.holes) * 2 > this.index.length) this.rebuild();
    else this.insert(hashText(child.label), this.list.length);
  }

  /** Removes a child (found by identity). */
  delete(child: T): boolean {
    if (this.deleteOwn(child)) return true;
    if (this.base === null || !this.inBase(child)) return false;
    this.removed!.add(child);
    return true;
  }

  /** Is `child` one of the base's children that this overlay still has? */
  private inBase(child: T): boolean {
    const b = this.base!;
    return !this.removed!.has(child) && b.findOwn(labelBytes(child.label), 0) === child;
  }

  private deleteOwn(child: T): boolean {
    const index = this.index;
    if (index === null) {
      const i = this.list.indexOf(child);
      if (i < 0) return false;
      this.list.splice(i, 1);
      return true;
    }
    const mask = index.length - 1;
    const h = hashText(child.label);
    let s = h & mask;
    for (; ; s = (s + 1) & mask) {
      const at = index[s]!;
      if (at === 0) return false;
      if (this.list[at - 1] === child) break;
    }
    this.list[index[s]! - 1] = undefined;
    this.holes++;
    this.unindex(s);
    if (this.holes * 2 > this.list.length) this.compact();
    return true;
  }

  /**
   * A copy for a new zone version (zone/edit.ts path copying): the same children, but adding to,
   * deleting from or replacing in the copy leaves this one as it is — so this one must not change
   * afterwards (it belongs to a published version). A small set is copied flat. A big one (the apex
   * of a million-name zone) becomes the base of an overlay: the copy holds only what changed (its
   * own list of added/replacing children, and the set of base children gone), so a copy costs the
   * changes made since the base, not the width; when those grow past a few times √width the copy is
   * flattened into a plain set (O(width), amortized over as many updates).
   */
  clone(): Children<T> {
    const c = new Children<T>();
    const base = this.base;
    const own = this.list.length - this.holes;
    if (base !== null && own + this.removed!.size <= Math.max(OVERLAY_MIN, 4 * Math.sqrt(base.size))) {
      c.base = base;
      c.removed = new Set(this.removed);
    } else if (base !== null) {
      for (const x of this.values()) c.add(x);
      return c;
    } else if (own > OVERLAY_MIN) {
      c.base = this;
      c.removed = new Set();
      return c;
    }
    c.list = this.holes === 0 ? this.list.slice() : this.list.filter((x) => x !== undefined);
    if (this.holes === 0 && this.index !== null) {
      c.index = this.index.slice();
      c.hashes = this.hashes!.slice();
    } else if (c.list.length > SMALL) c.rebuild();
    return c;
  }

  /** Puts `next` where `prev` is (same label; found by identity); false when `prev` is not a child. */
  replace(prev: T, next: T): boolean {
    if (this.replaceOwn(prev, next)) return true;
    if (this.base === null || !this.inBase(prev)) return false;
    this.removed!.add(prev);
    this.add(next);
    return true;
  }

  private replaceOwn(prev: T, next: T): boolean {
    const index = this.index;
    if (index === null) {
      const i = this.list.indexOf(prev);
      if (i < 0) return false;
      this.list[i] = next;
      return true;
    }
    const mask = index.length - 1;
    for (let s = hashText(prev.label) & mask; ; s = (s + 1) & mask) {
      const at = index[s]!;
      if (at === 0) return false;
      if (this.list[at - 1] === prev) {
        this.list[at - 1] = next;
        return true;
      }
    }
  }

  /**
   * Where this set and `other` (the same node's children in another version) can differ, when the
   * two share structure: one an overlay on the other, or both overlays on one base. Returns the
   * children of either side whose label may be bound differently (each such label at least once;
   * a child can appear twice); a label not among them has the same child in both. Null when the two
   * share nothing: then only a walk of both tells. Costs the overlays' changes, not the width.
   */
  maybeChangedVersus(other: Children<T>): T[] | null {
    const own = (c: Children<T>): T[] =>
      c.holes === 0 ? (c.list as T[]) : (c.list.filter((x) => x !== undefined) as T[]);
    if (this.base !== null && this.base === other) return [...own(this), ...this.removed!];
    if (other.base !== null && other.base === this) return [...own(other), ...other.removed!];
    if (this.base !== null && this.base === other.base)
      return [...own(this), ...this.removed!, ...own(other), ...other.removed!];
    return null;
  }

  /** The children in insertion order. Do not add or delete while iterating: take a copy first. */
  values(): readonly T[] {
    const own = this.holes === 0 ? (this.list as T[]) : (this.list.filter((c) => c !== undefined) as T[]);
    if (this.base === null) return own;
    const removed = this.removed!;
    const out =
      removed.size === 0 ? this.base.values().slice() : this.base.values().filter((c) => !removed.has(c));
    for (const c of own) out.push(c);
    return out;
  }

  private insert(h: number, at: number): void {
    const index = this.index!;
    const mask = index.length - 1;
    let s = h & mask;
    while (index[s] !== 0) s = (s + 1) & mask;
    index[s] = at;
    this.hashes![s] = h;
  }

  /** Empties index slot `i`, shifting later slots of its probe run back (no tombstones). */
  private unindex(slot: number): void {
    const index = this.index!;
    const hashes = this.hashes!;
    const mask = index.length - 1;
    let i = slot;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (index[j] === 0) break;
      const home = hashes[j]! & mask;
      // Move j back to the gap at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        index[i] = index[j]!;
        hashes[i] = hashes[j]!;
        i = j;
      }
    }
    index[i] = 0;
  }

  private compact(): void {
    this.list = this.list.filter((c) => c !== undefined);
    this.holes = 0;
    this.index = null;
    this.hashes = null;
    if (this.list.length > SMALL) this.rebuild();
  }

  private rebuild(): void {
    // Growing without holes: every child but the newest is in the old table with its hash.
    const known = this.holes === 0 && this.index !== null ? new Int32Array(this.list.length) : null;
    if (known !== null) {
      const oldIndex = this.index!;
      const oldHashes = this.hashes!;
      for (let s = 0; s < oldIndex.length; s++) {
        const at = oldIndex[s]!;
        if (at !== 0) known[at - 1] = oldHashes[s]!;
      }
    } else if (this.holes > 0) {
      this.list = this.list.filter((c) => c !== undefined);
      this.holes = 0;
    }
    // At most half full: a table of 2^k slots holds up to 2^(k-1) children before the next rebuild.
    let cap = 16;
    while (cap < this.list.length * 2) cap *= 2;
    this.index = new Int32Array(cap);
    this.hashes = new Int32Array(cap);
    const last = this.list.length - 1;
    for (let i = 0; i <= last; i++) {
      const h = known !== null && i < last ? known[i]! : hashText(this.list[i]!.label);
      this.insert(h, i + 1);
    }
  }
}
