/**
 * Name heuristics behind the operator checks of `popdns check` (named-checkzone's check-names,
 * check-mx, and the "relative name that was meant to be absolute" trap). Pure functions over
 * wire-format names; nothing here fails a zone on its own.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { isSubdomainOf, labelOffsets, type Name } from '../wire/name.js';

/**
 * Top-level domains that flag a relative name as meant to be absolute (`www.cdn.example.net` with no
 * final dot becomes `www.cdn.example.net.example.com.`). A small built-in list, not the registry:
 * generic TLDs count as the second label above the origin already (`cdn.example.net`); country codes
 * only from the third (`www.example.de`), since `de.example.com` is a common regional sub-name.
 */
export const GENERIC_TLDS: ReadonlySet<string> = new Set([
  'com',
  'net',
  'org',
  'edu',
  'gov',
  'mil',
  'int',
  'info',
  'biz',
  'name',
  'pro',
  'aero',
  'coop',
  'museum',
  'mobi',
  'asia',
  'tel',
  'jobs',
  'travel',
  'xyz',
  'online',
  'site',
  'top',
  'app',
  'dev',
  'cloud',
  'shop',
  'store',
  'tech',
  'blog',
]);
export const COUNTRY_TLDS: ReadonlySet<string> = new Set([
  'ac',
  'ar',
  'at',
  'au',
  'be',
  'bg',
  'br',
  'by',
  'ca',
  'cc',
  'ch',
  'cl',
  'cn',
  'co',
  'cz',
  'de',
  'dk',
  'ee',
  'es',
  'eu',
  'fi',
  'fr',
  'gr',
  'hk',
  'hr',
  'hu',
  'ie',
  'il',
  'in',
  'io',
  'ir',
  'is',
  'it',
  'jp',
  'kr',
  'kz',
  'li',
  'lt',
  'lu',
  'lv',
  'me',
  'mx',
  'my',
  'nl',
  'no',
  'nu',
  'nz',
  'pl',
  'pt',
  'ro',
  'rs',
  'ru',
  'se',
  'sg',
  'si',
  'sk',
  'th',
  'tr',
  'tv',
  'tw',
  'ua',
  'uk',
  'us',
  'vn',
  'za',
]);

function label(name: Name, off: number): string {
  return Buffer.from(name.subarray(off + 1, off + 1 + name[off]!)).toString('latin1');
}

/**
 * When `name` (at or below `origin`) looks like an absolute name written without its final dot,
 * the part that gives it away (`example.net`, or the origin repeated); else null. `originLabels`:
 * labels in the origin (the root zone has none: nothing is flagged there).
 */
export function looksAbsolute(name: Name, origin: Name, originLabels: number): string | null {
  if (originLabels === 0 || !isSubdomainOf(name, origin)) return null;
  const offs = labelOffsets(name);
  const above = offs.length - originLabels;
  if (above < 2) return null;
  const tld = label(name, offs[above - 1]!).toLowerCase();
  if (GENERIC_TLDS.has(tld) || (above >= 3 && COUNTRY_TLDS.has(tld))) {
    return `${label(name, offs[above - 2]!)}.${tld}`;
  }
  if (above > originLabels) {
    const oOffs = labelOffsets(origin);
    let same = true;
    for (let i = 0; i < originLabels && same; i++) {
      same =
        label(name, offs[above - originLabels + i]!).toLowerCase() === label(origin, oOffs[i]!).toLowerCase();
    }
    if (same) return oOffs.map((o) => label(origin, o)).join('.');
  }
  return null;
}

function isLdh(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x2d;
}

/**
 * True when `name` is a host name (RFC 952 as relaxed by RFC 1123 §2.1): letters, digits and hyphens,
 * no label starting or ending with a hyphen; a leftmost `*` label is allowed (a wildcard stands for
 * host names). What BIND's check-names applies to the owners of A, AAAA and MX records.
 */
export function isHostName(name: Name): boolean {
  let i = 0;
  let first = true;
  while (i < name.length && name[i] !== 0) {
    const len = name[i]!;
    if (!(first && len === 1 && name[i + 1] === 0x2a)) {
      if (name[i + 1] === 0x2d || name[i + len] === 0x2d) return false;
      for (let j = i + 1; j <= i + len; j++) if (!isLdh(name[j]!)) return false;
    }
    first = false;
    i += len + 1;
  }
  return true;
}

/**
 * The IP address a target name spells when one was written where a host name belongs (`MX 10
 * 192.0.2.1`, absolute or relative to the origin), else null.
 */
export function addressLike(name: Name, originLabels: number): string | null {
  const offs = labelOffsets(name);
  const labels = offs.map((o) => label(name, o));
  if (labels.length === 1 && isIPv6(labels[0]!)) return labels[0]!;
  for (const n of [labels.length, labels.length - originLabels]) {
    if (n === 4) {
      const ip = labels.slice(0, 4).join('.');
      if (isIPv4(ip)) return ip;
    }
  }
  if (labels.length >= 1 && labels[0]!.includes(':') && isIPv6(labels[0]!)) return labels[0]!;
  return null;
}
