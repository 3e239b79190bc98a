/** The `rrl:` section of the server config (see README, "Abuse and amplification"). */
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { parsePeriod } from '../wire/rdata.js';
import { checkExempt, RRL_DEFAULTS, type RrlConfig } from './rrl.js';

export const RRL_KEYS = [
  'responses-per-second',
  'errors-per-second',
  'slip',
  'ipv4-prefix',
  'ipv6-prefix',
  'window',
  'exempt',
] as const;

/** Reads `rrl:`; `fail(node, message)` throws the config error (file:line:col). */
export function parseRrlSection(node: Node, fail: (n: Node, msg: string) => never): RrlConfig {
  const cfg: RrlConfig = { ...RRL_DEFAULTS, exempt: [] };
  if (isScalar(node) && (node.value === null || node.value === true)) return cfg;
  if (!isMap(node)) return fail(node, 'rrl must be a mapping of settings (or left empty for the defaults)');
  const num = (n: Node, what: string, min: number, max: number): number => {
    // A YAML number, or a quoted one; Number() would read an empty value (`slip:`) as 0.
    const v =
      isScalar(n) &&
      (typeof n.value === 'number' || (typeof n.value === 'string' && /^\s*\d+\s*$/.test(n.value)))
        ? Number(n.value)
        : Number.NaN;
    if (!Number.isInteger(v) || v < min || v > max)
      fail(n, `rrl.${what} must be a whole number ${min}..${max}`);
    return v;
  };
  for (const pair of node.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    const v = pair.value as Node;
    switch (k as (typeof RRL_KEYS)[number]) {
      case 'responses-per-second':
        cfg.responsesPerSecond = num(v, k, 1, 1_000_000);
        break;
      case 'errors-per-second':
        cfg.errorsPerSecond = num(v, k, 1, 1_000_000);
        break;
      case 'slip':
        cfg.slip = num(v, k, 0, 10);
        break;
      case 'ipv4-prefix':
        cfg.ipv4Prefix = num(v, k, 0, 32);
        break;
      case 'ipv6-prefix':
        cfg.ipv6Prefix = num(v, k, 0, 128);
        break;
      case 'window': {
        const s = isScalar(v) ? parsePeriod(String(v.value)) : undefined;
        if (s === undefined || s < 1 || s > 3600)
          fail(v, 'rrl.window must be a duration from 1s to 1h, like 15s');
        cfg.window = s as number;
        break;
      }
      case 'exempt': {
        const items = isSeq(v) ? (v.items as Node[]) : [v];
        for (const i of items) {
          const text = isScalar(i) ? String(i.value) : '';
          const bad = checkExempt([text]);
          if (bad !== null) fail(i, `rrl.exempt: ${bad}`);
          cfg.exempt.push(text);
        }
        break;
      }
      default:
        fail(pair.key as Node, `unknown rrl setting "${k}" (known: ${RRL_KEYS.join(', ')})`);
    }
  }
  return cfg;
}
