/** Data shared by the zone parsers, the checker and the zone builder. */
import type { Name } from '../wire/name.js';

/** Where something stands in a zone file; line and col are 1-based. */
export interface Position {
  file: string;
  line: number;
  col: number;
}

export type Severity = 'error' | 'warning';

/**
 * One problem found in a zone. `code` is stable (operators grep it), e.g. POPDNS_E_CNAME_AND_OTHER.
 * Formatted by formatDiagnostic as `file:line:col: error: message [CODE]`.
 */
export interface Diagnostic {
  severity: Severity;
  code: string;
  message: string;
  pos: Position;
}

/** One resource record as read from a zone file, RDATA already in (uncompressed) wire format. */
export interface ZoneRecord {
  owner: Name;
  type: number;
  class: number;
  ttl: number;
  rdata: Uint8Array;
  pos: Position;
}

/**
 * A zone's own DNSSEC settings (YAML `dnssec:`; the config file's `dnssec:` for RFC 1035 zones).
 * `false` = never sign, even with keys; absent fields take the server's defaults.
 */
export interface ZoneDnssecSettings {
  denial?: 'nsec' | 'nsec3';
  optOut?: boolean;
  /** Signature validity in seconds. */
  validity?: number;
  /** Publish CDS/CDNSKEY (RFC 7344, RFC 8078). */
  cds?: boolean;
}

/** What a zone-file parser produces: records in file order plus every problem it found. */
export interface ParsedZone {
  /** The zone's origin (apex) name. */
  origin: Name;
  file: string;
  /** The zone's default TTL ($TTL or YAML `ttl`), if one was given. */
  defaultTtl?: number;
  records: ZoneRecord[];
  diagnostics: Diagnostic[];
  /** YAML `dnssec:`; undefined when the file says nothing. */
  dnssec?: ZoneDnssecSettings | false;
  /**
   * The file could not be read to its end (unreadable, a YAML syntax error, no zone name): checks
   * about what is missing from the zone would only repeat that error, so they are skipped.
   */
  incomplete?: boolean;
  /** Types of records that failed to parse: "missing SOA/NS/address" checks for them are skipped. */
  failedTypes?: Set<number>;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.pos.file}:${d.pos.line}:${d.pos.col}: ${d.severity}: ${d.message} [${d.code}]`;
}

export function diag(severity: Severity, code: string, message: string, pos: Position): Diagnostic {
  return { severity, code, message, pos };
}
