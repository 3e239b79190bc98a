/**
 * What the server does about DNSSEC for one freshly built zone: leave it unsigned, refuse it, or sign
 * it with these keys and this policy. One function for `popdns serve` and `popdns check --config`, so
 * the check refuses exactly what the server refuses (POPDNS_E_KEYS_MISSING, POPDNS_E_KEY, bad policy).
 */
import { type DnssecKey, loadKeys } from '../dnssec/keys.js';
import { presignedProblem } from '../dnssec/presigned.js';
import { type DnssecPolicy, makePolicy } from '../dnssec/signzone.js';
import type { ParsedZone, ZoneDnssecSettings } from '../zone/types.js';
import type { Zone } from '../zone/zone.js';

export type SigningPlan =
  /** `disabled`: the zone says `dnssec: false` (unsigned on purpose). */
  | { kind: 'unsigned'; disabled: boolean }
  /** The zone must not be served in this version; `message` ends with its [POPDNS_E_*] code. */
  | { kind: 'refuse'; message: string }
  | { kind: 'sign'; keys: DnssecKey[]; policy: DnssecPolicy };

/**
 * Decides how `zone` is served. Settings: the zone file's own `dnssec:` (YAML), else the config's
 * `dnssec:` entry for its origin. Keys: BIND key files in `keysDir`. `wasSigned`: the previous version
 * was signed by popdns (`'signed'`) or arrived signed (`'presigned'`); keys or signatures that vanished
 * then keep the old version instead of unsigning the zone by accident.
 */
export function signingPlan(
  zone: Zone,
  parsed: ParsedZone,
  cfg: { keys: string; dnssec: Map<string, ZoneDnssecSettings | false> },
  wasSigned: 'signed' | 'presigned' | false,
): SigningPlan {
  const origin = zone.originText.toLowerCase();
  const settings = parsed.dnssec !== undefined ? parsed.dnssec : cfg.dnssec.get(origin);
  if (settings === false) return { kind: 'unsigned', disabled: true };
  const { keys, errors } = loadKeys(cfg.keys, zone.origin);
  // A zone that arrived signed (RRSIGs and DNSKEYs in the file or transfer) is served as it is.
  const presigned = presignedProblem(zone, keys.length + errors.length, cfg.keys);
  if (presigned === null) return { kind: 'unsigned', disabled: false };
  if (presigned !== undefined) return { kind: 'refuse', message: presigned };
  if (errors.length > 0) {
    return {
      kind: 'refuse',
      message: `${errors.map((e) => e.message).join('; ')}; not serving ${zone.originText} with broken keys [POPDNS_E_KEY]`,
    };
  }
  if (keys.length === 0) {
    if (wasSigned === 'presigned') {
      return {
        kind: 'refuse',
        message: `${zone.originText} was served pre-signed, and this version of the file has no signatures: keeping the signed version (set dnssec: false to unsign on purpose) [POPDNS_E_KEYS_MISSING]`,
      };
    }
    if (wasSigned) {
      return {
        kind: 'refuse',
        message: `no keys for ${zone.originText} in ${cfg.keys} any more, but the zone was signed: keeping the signed version (set dnssec: false to unsign on purpose) [POPDNS_E_KEYS_MISSING]`,
      };
    }
    if (settings !== undefined) {
      return {
        kind: 'refuse',
        message: `${zone.originText} asks for DNSSEC but ${cfg.keys} has no keys for it (popdns keygen ${zone.originText} --keys ${cfg.keys}) [POPDNS_E_KEYS_MISSING]`,
      };
    }
    return { kind: 'unsigned', disabled: false };
  }
  try {
    const policy = makePolicy({
      ...(settings?.denial !== undefined ? { denial: settings.denial } : {}),
      ...(settings?.optOut !== undefined ? { nsec3OptOut: settings.optOut } : {}),
      ...(settings?.cds !== undefined ? { cds: settings.cds } : {}),
      ...(settings?.validity !== undefined ? { validity: settings.validity } : {}),
    });
    return { kind: 'sign', keys, policy };
  } catch (e) {
    return {
      kind: 'refuse',
      message: `signing ${zone.originText} failed: ${(e as Error).message} [POPDNS_E_SIGN]`,
    };
  }
}
