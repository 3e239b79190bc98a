/** The in-memory zone: a trie of labels from the apex down, with RRsets per node. (Being written.) */
import type { Name } from '../wire/name.js';
import type { Diagnostic, ParsedZone } from './types.js';

/** All records of one owner and type, with one TTL. */
export interface RRset {
  /** Owner name in the case the zone wrote it (or the query's, for wildcard-synthesized sets). */
  owner: Name;
  type: number;
  class: number;
  ttl: number;
  /** Uncompressed wire RDATA, in zone order, duplicates removed. */
  rdatas: Uint8Array[];
}

export interface ZoneNode {
  name: Name;
  parent: ZoneNode | null;
  /** Children keyed by lower-cased label bytes as a latin1 string. */
  children: Map<string, ZoneNode>;
  rrsets: Map<number, RRset>;
}

export interface Zone {
  origin: Name;
  /** Origin as presentation text, with trailing dot. */
  originText: string;
  file: string;
  serial: number;
  recordCount: number;
  apex: ZoneNode;
  soa: RRset;
}

export interface BuildResult {
  /** Null when the zone has errors. */
  zone: Zone | null;
  diagnostics: Diagnostic[];
}

export declare function buildZone(parsed: ParsedZone): BuildResult;
