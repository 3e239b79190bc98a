/** `popdns keygen ZONE`: a DNSSEC key for a zone, written as BIND key files into the keys directory. */
import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import {
  type Algorithm,
  algorithmFromText,
  DnssecError,
  generateKey,
  type KeyRole,
  keyFileBase,
  writeKeyFiles,
} from '../dnssec/keys.js';
import { type Name, nameFromText, NameError, ROOT } from '../wire/name.js';
import * as log from '../log/log.js';

export interface KeygenOptions {
  /** Keys directory; default ./keys (created with mode 0700). */
  keys?: string;
  /** ecdsap256sha256 (default), ed25519 or rsasha256. */
  algorithm?: string;
  /** csk (default), ksk or zsk. */
  role?: string;
}

const ROLES: readonly string[] = ['csk', 'ksk', 'zsk'];

function usage(message: string): number {
  log.error('keygen', `${message} [POPDNS_E_USAGE]`);
  return 2;
}

/** Generates one key; prints its file base name (`Kexample.com.+013+12345`). Returns the exit code. */
export function runKeygen(zoneText: string, opts: KeygenOptions): number {
  // Key file names carry the zone name: one with spaces or odd characters would become
  // `Kbad\032zone.+…` files no tool expects. Zone names are host-name-like (RFC 1123, plus `_`).
  if (zoneText !== '.' && !/^([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?$/.test(zoneText)) {
    return usage(`"${zoneText}" is not a zone name (letters, digits, "-" and "_" in dot-separated labels)`);
  }
  let zone: Name;
  try {
    zone = nameFromText(zoneText, ROOT);
  } catch (e) {
    if (e instanceof NameError) return usage(`bad zone name "${zoneText}": ${e.message}`);
    throw e;
  }
  const alg: Algorithm | undefined = algorithmFromText(opts.algorithm ?? 'ecdsap256sha256');
  if (alg === undefined) {
    return usage(`unknown algorithm "${opts.algorithm}" (ecdsap256sha256, ed25519 or rsasha256)`);
  }
  const role = opts.role ?? 'csk';
  if (!ROLES.includes(role)) return usage(`unknown role "${role}" (csk, ksk or zsk)`);
  const dir = opts.keys ?? 'keys';
  try {
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
    }
    // K<zone>+ : the file-name prefix of every key of this zone.
    const prefix = keyFileBase(zone, alg, 0).slice(0, -9).toLowerCase();
    const usedTags = new Set<string>();
    for (const f of readdirSync(dir)) {
      if (!f.toLowerCase().startsWith(prefix)) continue;
      const m = /^\d{3}\+(\d{5})\.(key|private)$/.exec(f.slice(prefix.length));
      if (m) usedTags.add(m[1]!);
    }
    // A key tag already used by a key of this zone (any algorithm) would confuse validators: retry.
    for (let attempt = 0; attempt < 20; attempt++) {
      const key = generateKey(zone, alg, role as KeyRole);
      if (usedTags.has(String(key.tag).padStart(5, '0'))) continue;
      process.stdout.write(`${writeKeyFiles(dir, key)}\n`);
      return 0;
    }
    log.error('keygen', `no free key tag after 20 attempts in ${dir} [POPDNS_E_KEY]`);
    return 1;
  } catch (e) {
    const msg = e instanceof DnssecError ? e.message : `${(e as Error).message} [POPDNS_E_KEY]`;
    log.error('keygen', msg);
    return 1;
  }
}
