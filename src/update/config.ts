/**
 * The `updates:` config (RFC 2136 dynamic updates): per zone, the TSIG keys that may change it and
 * what each may change. A zone not listed refuses every update (REFUSED).
 *
 * ```yaml
 * updates:
 *   example.com:
 *     - { key: acme.example.com, names: ["_acme-challenge", "_acme-challenge.*"], types: [TXT] }
 *     - { key: ops.example.com }   # no names/types: any record except the apex SOA
 * ```
 * `names` are relative to the zone (`@` = the apex); a `*` label stands for one or more labels.
 */
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { typeFromText } from '../wire/constants.js';
import { nameFromText, nameToText } from '../wire/name.js';
import { tsigKeyName } from '../wire/tsig.js';

/** One rule of a zone's update policy. */
export interface UpdateRule {
  /** Keyring name of the TSIG key (lower-case, trailing dot). */
  key: string;
  /**
   * Name patterns relative to the zone, lower-case, as label arrays ([] = the apex); a `*` label
   * matches one or more labels. Null: any name in the zone.
   */
  names: string[][] | null;
  /** RR types (numbers) the key may touch; null: any type except the apex SOA. */
  types: Set<number> | null;
}

/** Update policies: lower-case zone origin with trailing dot → its rules. */
export type UpdatePolicies = Map<string, UpdateRule[]>;

type Fail = (node: Node | null | undefined, msg: string) => never;

/** Where each rule was written (for errors found after the whole file is read). */
const ruleNodes = new WeakMap<UpdateRule, Node>();

/** Splits a relative name pattern into lower-case labels; `@` or "" is the apex. */
function patternLabels(text: string, zone: string): string[] {
  const t = text.trim().toLowerCase();
  if (t === '@' || t === '') return [];
  if (t.endsWith('.')) throw new Error(`"${text}" must be relative to ${zone} (no trailing dot)`);
  // Checked as a name (label lengths, escapes) with `*` labels allowed anywhere.
  nameFromText(`${t}.${zone}`);
  return t.split('.');
}

/**
 * Parses the `updates:` section (RFC 2136 policies). Errors go through `fail` with the node's
 * line:col. Key names are checked against `tsig-keys` by checkUpdatePolicies once the file is read.
 */
export function parseUpdatesSection(node: Node, fail: Fail): UpdatePolicies {
  const out: UpdatePolicies = new Map();
  if (isScalar(node) && node.value === null) return out;
  if (!isMap(node))
    fail(
      node,
      'updates is a mapping of zone names to lists of { key, names, types } [POPDNS_E_UPDATE_CONFIG]',
    );
  for (const pair of (node as { items: { key: unknown; value: unknown }[] }).items) {
    const zk = pair.key as Node;
    if (!isScalar(zk) || zk.value === null) fail(zk, 'updates: a zone name is expected');
    const zt = String((zk as { value: unknown }).value).toLowerCase();
    let zone: string;
    try {
      zone = nameToText(nameFromText(zt.endsWith('.') ? zt : `${zt}.`)).toLowerCase();
    } catch (e) {
      return fail(zk, `updates: zone "${zt}": ${(e as Error).message}`);
    }
    if (out.has(zone)) fail(zk, `updates: zone ${zone} is listed twice`);
    const list = pair.value as Node;
    if (!isSeq(list)) fail(list, `updates.${zone.slice(0, -1)} is a list of { key, names, types }`);
    const rules: UpdateRule[] = [];
    for (const item of (list as { items: Node[] }).items) {
      if (!isMap(item))
        fail(item, `each entry of updates.${zone.slice(0, -1)} is { key: NAME, names: [...], types: [...] }`);
      let key: string | null = null;
      let names: string[][] | null = null;
      let types: Set<number> | null = null;
      for (const p of (item as { items: { key: unknown; value: unknown }[] }).items) {
        const k = isScalar(p.key) ? String(p.key.value) : '';
        const v = p.value as Node;
        const strings = (what: string): { text: string; node: Node }[] => {
          const items = isSeq(v) ? (v.items as Node[]) : [v];
          return items.map((i) => {
            if (!isScalar(i) || (typeof i.value !== 'string' && typeof i.value !== 'number'))
              fail(i, `updates.${zone.slice(0, -1)}.${what} is a list of strings`);
            return { text: String((i as { value: unknown }).value), node: i };
          });
        };
        if (k === 'key') {
          const s = strings('key');
          if (s.length !== 1) fail(v, `updates.${zone.slice(0, -1)}.key is one key name`);
          try {
            key = tsigKeyName(s[0]!.text);
          } catch (e) {
            fail(v, `updates.${zone.slice(0, -1)}.key "${s[0]!.text}": ${(e as Error).message}`);
          }
        } else if (k === 'names') {
          names = strings('names').map(({ text, node: n }) => {
            try {
              return patternLabels(text, zone);
            } catch (e) {
              return fail(n, `updates.${zone.slice(0, -1)}.names: ${(e as Error).message}`);
            }
          });
        } else if (k === 'types') {
          types = new Set(
            strings('types').map(({ text, node: n }) => {
              const t = typeFromText(text.toUpperCase());
              if (t === undefined || t === null)
                fail(n, `updates.${zone.slice(0, -1)}.types: unknown type "${text}"`);
              return t as number;
            }),
          );
        } else fail(p.key as Node, `unknown updates setting "${k}" (known: key, names, types)`);
      }
      if (key === null)
        fail(item, `an entry of updates.${zone.slice(0, -1)} needs key (a name from tsig-keys)`);
      const rule: UpdateRule = { key: key!, names, types };
      ruleNodes.set(rule, item);
      rules.push(rule);
    }
    out.set(zone, rules);
  }
  return out;
}

/** Every key an update rule names must be in `tsig-keys` (call after the whole file is read). */
export function checkUpdatePolicies(
  policies: UpdatePolicies,
  keys: ReadonlyMap<string, unknown>,
  fail: Fail,
  top: Node,
): void {
  for (const [zone, rules] of policies) {
    for (const r of rules) {
      if (!keys.has(r.key))
        fail(ruleNodes.get(r) ?? top, `key ${r.key} of updates.${zone.slice(0, -1)} is not in tsig-keys`);
    }
  }
}

/** Does the relative name (lower-case labels, leftmost first) match the pattern? `*` = one or more labels. */
export function matchPattern(labels: readonly string[], pattern: readonly string[]): boolean {
  const m = (i: number, j: number): boolean => {
    if (j === pattern.length) return i === labels.length;
    if (pattern[j] === '*') {
      for (let n = 1; i + n <= labels.length; n++) if (m(i + n, j + 1)) return true;
      return false;
    }
    return i < labels.length && labels[i] === pattern[j] && m(i + 1, j + 1);
  };
  return m(0, 0);
}
