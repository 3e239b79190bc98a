/** `popdns ds ZONE`: the DS (SHA-256) and DNSKEY records of the zone's SEP keys, for the parent. */
import { DNSKEY_FLAG, dsFromDnskey, loadKeys } from '../dnssec/keys.js';
import { TYPE } from '../wire/constants.js';
import { type Name, nameFromText, NameError, nameToLower, nameToText, ROOT } from '../wire/name.js';
import { rdataToText } from '../wire/rdata.js';
import * as log from '../log/log.js';

export interface DsOptions {
  /** Keys directory; default ./keys. */
  keys?: string;
}

/** The DS and DNSKEY lines for every SEP key of `zone` in `dir`; throws nothing, returns problems. */
export function dsLines(zoneText: string, dir: string): { lines: string[]; errors: string[] } {
  let zone: Name;
  try {
    zone = nameToLower(nameFromText(zoneText, ROOT));
  } catch (e) {
    if (e instanceof NameError)
      return { lines: [], errors: [`bad zone name "${zoneText}": ${e.message} [POPDNS_E_USAGE]`] };
    throw e;
  }
  const { keys, errors } = loadKeys(dir, zone);
  if (errors.length > 0) return { lines: [], errors: errors.map((e) => e.message) };
  const sep = keys.filter((k) => k.flags & DNSKEY_FLAG.SEP && !(k.flags & DNSKEY_FLAG.REVOKE));
  if (sep.length === 0) {
    return {
      lines: [],
      errors: [`no key-signing (SEP) key for ${nameToText(zone)} in ${dir} [POPDNS_E_NO_KEYS]`],
    };
  }
  const owner = nameToText(zone);
  const lines: string[] = [];
  for (const k of sep) {
    lines.push(`${owner} 3600 IN DS ${rdataToText(TYPE.DS, dsFromDnskey(zone, k.dnskey, 2))}`);
    lines.push(`${owner} 3600 IN DNSKEY ${rdataToText(TYPE.DNSKEY, k.dnskey)}`);
  }
  return { lines, errors: [] };
}

/** Prints the lines; exit 1 when a key file is unusable or there is no SEP key. */
export function runDs(zoneText: string, opts: DsOptions): number {
  const { lines, errors } = dsLines(zoneText, opts.keys ?? 'keys');
  for (const e of errors) log.error('ds', e);
  if (errors.length > 0) return errors.some((e) => e.endsWith('[POPDNS_E_USAGE]')) ? 2 : 1;
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
  return 0;
}
