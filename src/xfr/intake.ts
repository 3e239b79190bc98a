/**
 * A whole zone as it arrives by AXFR (RFC 5936) or an AXFR-style IXFR answer (RFC 1995 §4): each
 * record goes into the zone builder as its message is read, so no list of the zone's records is ever
 * built. The owner is not kept (the trie keeps labels), the RDATA is copied once into a shared slab
 * (wire/bytes.ts). `finish` runs the zone-wide checks `popdns check` runs on a file and returns the
 * version; a transfer that fails before that simply drops the intake and its half-built trie.
 */
import { slabCopy } from '../wire/bytes.js';
import { type Name, nameToText } from '../wire/name.js';
import { formatDiagnostic } from '../zone/types.js';
import { type Zone, type ZoneBuilder, zoneBuilder } from '../zone/zone.js';
import type { FullZoneSink } from './transfer.js';
import { ZoneDataError } from './versions.js';

export class ZoneIntake implements FullZoneSink {
  private readonly builder: ZoneBuilder;
  /** Records handed over so far (the `line` of a diagnostic's position is the record's number). */
  records = 0;
  private done = false;

  /** `label` names the source in diagnostics, e.g. `AXFR from 192.0.2.1:53`. */
  constructor(
    readonly origin: Name,
    readonly label: string,
  ) {
    this.builder = zoneBuilder(origin, label);
  }

  add(owner: Name, type: number, klass: number, ttl: number, rdata: Uint8Array): void {
    if (this.done) throw new Error('internal: record after ZoneIntake.finish');
    this.records++;
    this.builder.add({
      owner,
      type,
      class: klass,
      ttl,
      rdata: slabCopy(rdata),
      pos: { file: this.label, line: this.records, col: 1 },
    });
  }

  /**
   * Runs the zone-wide checks (SOA, apex NS, CNAME rules, glue, a signed zone's chains, …) and
   * returns the version. Throws ZoneDataError (POPDNS_E_XFR_ZONE) with the first errors when it
   * must not be served. Call once, after the transfer's closing SOA.
   */
  finish(): Zone {
    this.done = true;
    const res = this.builder.finish([]);
    if (!res.zone) {
      const errors = res.diagnostics.filter((d) => d.severity === 'error').slice(0, 5);
      throw new ZoneDataError(
        `${nameToText(this.origin)} from ${this.label} fails the zone checks: ${errors.map(formatDiagnostic).join('; ')}`,
        'POPDNS_E_XFR_ZONE',
      );
    }
    return res.zone;
  }
}
