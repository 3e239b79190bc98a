/**
 * `popdns check --config FILE`: the zone transfer part of the config (issue 12), checked as a whole
 * so every problem is reported at once (the server's loader stops at the first), each at its
 * file:line:col with the key path (`transfer.allow[0].from`) and its own code:
 *
 * - POPDNS_E_TSIG_KEY_NAME, POPDNS_E_TSIG_ALGORITHM, POPDNS_E_TSIG_SECRET: a `tsig-keys` entry whose
 *   name is not a domain name (or is defined twice), whose algorithm is unknown, or whose secret is
 *   missing, not base64 or empty (RFC 8945 §6);
 * - POPDNS_E_TSIG_KEY: a `key:` under transfer.allow, transfer.notify, secondaries, catalogs or
 *   updates that is not in tsig-keys;
 * - POPDNS_E_CONFIG_ADDRESS: an address or CIDR prefix (transfer.allow) or ADDR:PORT (transfer.notify,
 *   primaries) that does not parse, IPv4 or IPv6;
 * - POPDNS_E_ZONE_TWICE: a zone named twice among secondaries and catalogs, or both a zone file in the
 *   zones directory and a secondary or catalog;
 * - POPDNS_E_CONFIG: a secondaries/catalogs entry without zone or primaries, or with a bad zone name;
 * - POPDNS_W_CONFIG_UNKNOWN_ZONE, POPDNS_W_UPDATE_SECONDARY: an `updates:` zone that is neither a zone
 *   file nor a secondary, or that is a secondary (updates go to its primary).
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { nameFromText } from '../wire/name.js';
import { TSIG_ALGORITHMS, tsigAlgorithmFromText, tsigKeyName } from '../wire/tsig.js';
import { parseCidr, parseHostPort } from '../xfr/config.js';
import type { Diagnostic } from '../zone/types.js';

/** A primary's address as the server reads it: ADDR:PORT, [IPv6]:PORT, or a bare address (port 53). */
function primaryOk(text: string): boolean {
  if (/^[0-9a-fA-F:]+$/.test(text) && text.includes(':') && !/^[0-9.]+:\d+$/.test(text))
    return parseCidr(text) !== null && !text.includes('/');
  return parseHostPort(text) !== null;
}

/** Lower case with the trailing dot; null when it is not a domain name. */
function zoneName(text: string): string | null {
  const z = text.endsWith('.') ? text.toLowerCase() : `${text.toLowerCase()}.`;
  try {
    nameFromText(z);
    return z;
  } catch {
    return null;
  }
}

/** The `zones:` setting of a config file's text (default `zones`); null when the YAML does not parse. */
export function zonesSetting(text: string): string | null {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) return null;
  const v: unknown = isMap(doc.contents) ? doc.get('zones') : undefined;
  return typeof v === 'string' ? v : 'zones';
}

/**
 * Checks the transfer settings of a config file's text. `fileZones` maps each zone in the zones
 * directory (lower case, trailing dot) to its file, for the zones-named-once rule. Returns the
 * problems in file order; a YAML syntax error returns nothing (the config loader reports it).
 */
export function checkTransferConfig(
  text: string,
  file: string,
  fileZones: ReadonlyMap<string, string> = new Map(),
): Diagnostic[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0 || !isMap(doc.contents)) return [];
  const out: Diagnostic[] = [];
  const report = (
    severity: 'error' | 'warning',
    code: string,
    node: Node | null | undefined,
    path: string,
    msg: string,
  ): void => {
    const p = lc.linePos(node?.range?.[0] ?? 0);
    out.push({ severity, code, message: `${path}: ${msg}`, pos: { file, line: p.line, col: p.col } });
  };
  const top = new Map<string, Node>();
  for (const pair of doc.contents.items) {
    if (isScalar(pair.key)) top.set(String(pair.key.value), pair.value as Node);
  }
  const text1 = (n: Node | undefined): string | null =>
    n && isScalar(n) && (typeof n.value === 'string' || typeof n.value === 'number') ? String(n.value) : null;
  const fields = (n: Node): Map<string, Node> => {
    const m = new Map<string, Node>();
    if (isMap(n)) for (const p of n.items) if (isScalar(p.key)) m.set(String(p.key.value), p.value as Node);
    return m;
  };
  const items = (n: Node | undefined): Node[] => (n && isSeq(n) ? (n.items as Node[]) : []);

  // tsig-keys: names, algorithms, secrets.
  const keys = new Set<string>();
  const ring = top.get('tsig-keys');
  if (ring && isMap(ring)) {
    for (const pair of ring.items) {
      const kn = pair.key as Node;
      const raw = text1(kn) ?? '';
      const path = `tsig-keys.${raw}`;
      let name: string;
      try {
        name = tsigKeyName(raw);
      } catch (e) {
        report('error', 'POPDNS_E_TSIG_KEY_NAME', kn, path, `not a key name: ${(e as Error).message}`);
        continue;
      }
      if (keys.has(name)) report('error', 'POPDNS_E_TSIG_KEY_NAME', kn, path, `key ${name} is defined twice`);
      keys.add(name);
      const f = fields(pair.value as Node);
      const alg = f.get('algorithm');
      const algText = alg ? text1(alg) : 'hmac-sha256';
      if (!algText || !tsigAlgorithmFromText(algText)) {
        report(
          'error',
          'POPDNS_E_TSIG_ALGORITHM',
          alg,
          `${path}.algorithm`,
          `unknown TSIG algorithm "${algText ?? ''}" (known: ${TSIG_ALGORITHMS.join(', ')})`,
        );
      }
      const sec = f.get('secret');
      const secText = sec ? text1(sec)?.replace(/\s+/g, '') : undefined;
      if (!sec) {
        report('error', 'POPDNS_E_TSIG_SECRET', pair.value as Node, `${path}.secret`, 'missing');
      } else if (
        secText === undefined ||
        !/^[A-Za-z0-9+/]+={0,2}$/.test(secText) ||
        secText.length % 4 !== 0
      ) {
        report(
          'error',
          'POPDNS_E_TSIG_SECRET',
          sec,
          `${path}.secret`,
          'not base64 (popdns tsig-keygen makes one)',
        );
      } else if (Buffer.from(secText, 'base64').length === 0) {
        report('error', 'POPDNS_E_TSIG_SECRET', sec, `${path}.secret`, 'empty');
      }
    }
  }
  const keyRef = (n: Node | undefined, path: string): void => {
    if (!n || (isScalar(n) && n.value === null)) return;
    const raw = text1(n);
    let name: string | null;
    try {
      name = raw === null ? null : tsigKeyName(raw);
    } catch {
      name = null;
    }
    if (name === null || !keys.has(name)) {
      report(
        'error',
        'POPDNS_E_TSIG_KEY',
        n,
        path,
        `key ${raw ?? '?'} is not in tsig-keys (known: ${[...keys].join(', ') || 'none'})`,
      );
    }
  };

  // transfer.allow (CIDR prefixes) and transfer.notify (ADDR:PORT).
  const transfer = fields(top.get('transfer') ?? doc.createNode(null));
  items(transfer.get('allow')).forEach((n, i) => {
    const f = fields(n);
    const path = `transfer.allow[${i}]`;
    const from = f.get('from');
    const t = text1(from);
    if (from && (t === null || parseCidr(t) === null))
      report(
        'error',
        'POPDNS_E_CONFIG_ADDRESS',
        from,
        `${path}.from`,
        `"${t ?? ''}" is not an address or CIDR prefix like 192.0.2.0/24 or 2001:db8::/32`,
      );
    keyRef(f.get('key'), `${path}.key`);
  });
  items(transfer.get('notify')).forEach((n, i) => {
    const f = fields(n);
    const path = `transfer.notify[${i}]`;
    const to = f.get('to');
    const t = text1(to);
    if (to && (t === null || parseHostPort(t) === null))
      report(
        'error',
        'POPDNS_E_CONFIG_ADDRESS',
        to,
        `${path}.to`,
        `"${t ?? ''}" is not ADDR:PORT ("192.0.2.10:53", IPv6 as "[2001:db8::1]:53")`,
      );
    keyRef(f.get('key'), `${path}.key`);
  });

  // secondaries and catalogs: zone names, primaries, keys; every zone named once.
  const named = new Map<string, string>();
  for (const section of ['secondaries', 'catalogs'] as const) {
    items(top.get(section)).forEach((n, i) => {
      const f = fields(n);
      const path = `${section}[${i}]`;
      const zn = f.get('zone');
      const zt = text1(zn);
      const zone = zt === null ? null : zoneName(zt);
      if (!zn) report('error', 'POPDNS_E_CONFIG', n, path, 'needs zone:');
      else if (zone === null)
        report('error', 'POPDNS_E_CONFIG', zn, `${path}.zone`, `"${zt ?? ''}" is not a zone name`);
      else {
        const other = named.get(zone);
        if (other) {
          report('error', 'POPDNS_E_ZONE_TWICE', zn, `${path}.zone`, `${zone} is also ${other}`);
        } else {
          named.set(zone, `${path}.zone`);
          const f2 = fileZones.get(zone);
          if (f2)
            report(
              'error',
              'POPDNS_E_ZONE_TWICE',
              zn,
              `${path}.zone`,
              `${zone} is also a zone file (${f2}); a zone comes from a file or from a primary, not both`,
            );
        }
      }
      const prim = f.get('primaries');
      const list = prim ? (isSeq(prim) ? (prim.items as Node[]) : [prim]) : [];
      if (list.length === 0)
        report('error', 'POPDNS_E_CONFIG', prim ?? n, `${path}.primaries`, 'needs at least one primary');
      list.forEach((p, j) => {
        const t = text1(p);
        if (t === null || !primaryOk(t))
          report(
            'error',
            'POPDNS_E_CONFIG_ADDRESS',
            p,
            `${path}.primaries[${j}]`,
            `"${t ?? ''}" is not ADDR:PORT ("192.0.2.1:53", IPv6 as "[2001:db8::1]:53")`,
          );
      });
      keyRef(f.get('key'), `${path}.key`);
    });
  }

  // updates: keys exist; the zone is one this server serves from a file.
  const updates = top.get('updates');
  if (updates && isMap(updates)) {
    for (const pair of updates.items) {
      const zt = text1(pair.key as Node);
      const zone = zt === null ? null : zoneName(zt);
      const path = `updates.${zt ?? '?'}`;
      if (zone !== null && named.has(zone)) {
        report(
          'warning',
          'POPDNS_W_UPDATE_SECONDARY',
          pair.key as Node,
          path,
          `${zone} is a secondary zone here (${named.get(zone)!}): updates are refused; send them to its primary`,
        );
      } else if (zone !== null && fileZones.size > 0 && !fileZones.has(zone)) {
        report(
          'warning',
          'POPDNS_W_CONFIG_UNKNOWN_ZONE',
          pair.key as Node,
          path,
          `${zone} is not a zone file in the zones directory (a typo? these rules apply to nothing)`,
        );
      }
      items(pair.value as Node).forEach((n, i) => keyRef(fields(n).get('key'), `${path}[${i}].key`));
    }
  }
  return out.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
}
