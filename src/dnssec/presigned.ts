/**
 * What the server does with a zone that arrived signed (zone/dnssec.ts attachPresigned): it serves
 * the zone's own signatures and NSEC/NSEC3 chain as they are, and never signs it again — not without
 * keys (it has none of the other signer's), and not with keys of its own either.
 */
import type { Zone } from '../zone/zone.js';

/**
 * For a pre-signed zone: null (serve it as it is) when popdns has no keys for it, or the reason it
 * must not be served [POPDNS_E_PRESIGNED_KEYS] when the keys directory holds keys for it (`keyFiles`
 * = how many key files, readable or not). Re-signing would replace the other signer's signatures with
 * popdns' own while the parent's DS still names the other signer's key, and serving it unsigned or
 * half re-signed is worse; the operator picks one signer. Undefined for a zone that did not arrive
 * signed (the signer decides). `dnssec: false` for the zone (popdns never signs it) is handled by the
 * caller before this: it serves a pre-signed zone as it is, keys or not.
 */
export function presignedProblem(zone: Zone, keyFiles: number, keysDir: string): string | null | undefined {
  if (!zone.dnssec?.presigned) return undefined;
  if (keyFiles === 0) return null;
  return `${zone.originText} is already signed (DNSKEY and RRSIG records in the zone) and ${keysDir} has keys for it: popdns will not sign it again. Serve it as it is (remove its keys from ${keysDir}, or set dnssec: false for the zone), or let popdns sign it (remove the RRSIG, NSEC, NSEC3 and NSEC3PARAM records, and the other signer's DNSKEYs, from the zone) [POPDNS_E_PRESIGNED_KEYS]`;
}
