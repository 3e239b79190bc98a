/** The set of zones a server answers for, keyed by apex; the deepest enclosing zone answers a name. */
import { labelOffsets, type Name, nameKey } from '../wire/name.js';
import type { Zone } from './zone.js';

export class ZoneSet {
  readonly zones: readonly Zone[];
  private readonly byOrigin: Map<string, Zone>;

  constructor(zones: Iterable<Zone>) {
    this.zones = [...zones];
    this.byOrigin = new Map(this.zones.map((z) => [nameKey(z.origin), z]));
  }

  /** The zone with the longest origin that `qname` is at or below, or null. */
  find(qname: Name): Zone | null {
    if (this.byOrigin.size === 0) return null;
    const offs = labelOffsets(qname);
    for (const off of offs) {
      const z = this.byOrigin.get(nameKey(qname.subarray(off)));
      if (z) return z;
    }
    return this.byOrigin.get(nameKey(qname.subarray(qname.length - 1))) ?? null;
  }

  /** The zone whose apex is exactly `origin`. */
  get(origin: Name): Zone | null {
    return this.byOrigin.get(nameKey(origin)) ?? null;
  }
}
