/** The answer engine's interface: a question in, the response sections out. */
import type { RRset, Zone } from '../zone/zone.js';

/**
 * What the engine decided for one IN-class question. RRsets are shared with the zone (never mutate
 * them); synthesized ones (wildcard owner = qname, DNAME-made CNAME) are fresh objects.
 */
export interface Answer {
  rcode: number;
  /** Authoritative answer: false for referrals and REFUSED. */
  aa: boolean;
  answer: RRset[];
  authority: RRset[];
  additional: RRset[];
  /**
   * How many RRsets at the start of `additional` are required glue (RFC 9471): if they do not fit a UDP
   * response, the response must be truncated (TC=1) rather than sent without them.
   */
  requiredAdditional: number;
  /** The zone that answered; null when no zone encloses the name (REFUSED). */
  zone: Zone | null;
  /** DO=1 and the zone is signed: RRSIGs and denial proofs belong in the response. */
  dnssec: boolean;
}
