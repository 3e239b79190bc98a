/**
 * CHAOS class (RFC 4892): `id.server.` and `hostname.bind.` give the server's identity, so an operator
 * sees which anycast PoP answered; `version.server.` and `version.bind.` give the version unless hidden.
 * Like Knot and NSD, answers are not authoritative (AA=0) and carry TTL 0.
 */
import { CLASS, RCODE, TYPE } from '../wire/constants.js';
import { type Name, nameFromText, nameKey } from '../wire/name.js';
import { txtFromText } from '../wire/rdata.js';
import type { RRset } from '../zone/zone.js';

export interface ChaosConfig {
  identity: string;
  /** The version string, or null when hidden (REFUSED). */
  version: string | null;
}

export interface ChaosAnswer {
  rcode: number;
  answer: RRset[];
}

const ID = new Set([nameKey(nameFromText('id.server.')), nameKey(nameFromText('hostname.bind.'))]);
const VERSION = new Set([nameKey(nameFromText('version.server.')), nameKey(nameFromText('version.bind.'))]);

/** Answers a CH-class question; REFUSED for anything but TXT (or ANY) at the four names. */
export function chaosAnswer(cfg: ChaosConfig, qname: Name, qtype: number): ChaosAnswer {
  const key = nameKey(qname);
  let text: string | null = null;
  if (ID.has(key)) text = cfg.identity;
  else if (VERSION.has(key)) text = cfg.version;
  if (text === null || (qtype !== TYPE.TXT && qtype !== TYPE.ANY))
    return { rcode: RCODE.REFUSED, answer: [] };
  return {
    rcode: RCODE.NOERROR,
    answer: [{ owner: qname, type: TYPE.TXT, class: CLASS.CH, ttl: 0, rdatas: [txtFromText(text)] }],
  };
}
