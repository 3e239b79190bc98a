/** The `cookies:` section of the server config (see README, "Abuse and amplification"). */
import { isMap, isScalar, type Node } from 'yaml';
import { type CookieConfig, parseSecret } from './cookies.js';

export const COOKIE_KEYS = ['secret', 'staging-secret', 'require'] as const;

/** Reads `cookies:`; `fail(node, message)` throws the config error (file:line:col). */
export function parseCookiesSection(node: Node, fail: (n: Node, msg: string) => never): CookieConfig {
  if (!isMap(node)) return fail(node, 'cookies must be a mapping: { secret: "32 hex digits" }');
  let secret: Uint8Array | null = null;
  let staging: Uint8Array | null = null;
  let require = false;
  const hex = (n: Node, what: string): Uint8Array => {
    const s = isScalar(n) ? parseSecret(String(n.value)) : null;
    return s ?? fail(n, `cookies.${what} must be 32 hex digits (a 128-bit SipHash key, RFC 9018)`);
  };
  for (const pair of node.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    const v = pair.value as Node;
    switch (k as (typeof COOKIE_KEYS)[number]) {
      case 'secret':
        secret = hex(v, k);
        break;
      case 'staging-secret':
        staging = isScalar(v) && (v.value === null || v.value === false) ? null : hex(v, k);
        break;
      case 'require':
        if (!isScalar(v) || typeof v.value !== 'boolean') fail(v, 'cookies.require must be true or false');
        require = (v as { value: boolean }).value;
        break;
      default:
        fail(pair.key as Node, `unknown cookies setting "${k}" (known: ${COOKIE_KEYS.join(', ')})`);
    }
  }
  if (secret === null) return fail(node, 'cookies needs a secret: 32 hex digits, the same on every PoP');
  return { secret, stagingSecret: staging, require };
}
