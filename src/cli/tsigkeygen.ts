/**
 * `popdns tsig-keygen NAME [--algorithm hmac-sha256]`: a fresh TSIG key (RFC 8945), printed as the
 * popdns `tsig-keys:` entry and in BIND's `key "NAME" { … };` form — what `tsig-keygen` and `keymgr -t`
 * print — so the same key pastes into Knot, BIND, NSD and PowerDNS.
 */
import { randomBytes } from 'node:crypto';
import { TSIG_ALGORITHMS, tsigAlgorithmFromText, tsigKeyName, tsigMacSize } from '../wire/tsig.js';
import * as log from '../log/log.js';

export interface TsigKeygenOptions {
  algorithm?: string;
}

/** The two forms of a new key, or an error message. The secret is as long as the hash (RFC 2104 §3). */
export function tsigKeygen(name: string, o: TsigKeygenOptions = {}): { text: string } | { error: string } {
  const algorithm = tsigAlgorithmFromText(o.algorithm ?? 'hmac-sha256');
  if (!algorithm) {
    return {
      error: `unknown TSIG algorithm "${o.algorithm}" (known: ${TSIG_ALGORITHMS.join(', ')}) [POPDNS_E_USAGE]`,
    };
  }
  try {
    tsigKeyName(name);
  } catch (e) {
    return { error: `bad key name "${name}": ${(e as Error).message} [POPDNS_E_USAGE]` };
  }
  const shown = name.replace(/\.$/, '');
  const secret = randomBytes(tsigMacSize(algorithm)).toString('base64');
  const text = [
    '# popdns.yaml',
    'tsig-keys:',
    `  ${shown}: { algorithm: ${algorithm}, secret: "${secret}" }`,
    '',
    '# BIND (include it in named.conf); the same secret for Knot (keymgr -t), NSD and PowerDNS',
    `key "${shown}" {`,
    `\talgorithm ${algorithm};`,
    `\tsecret "${secret}";`,
    '};',
    '',
  ].join('\n');
  return { text };
}

export function runTsigKeygen(name: string, o: TsigKeygenOptions): number {
  const r = tsigKeygen(name, o);
  if ('error' in r) {
    log.error('tsig-keygen', r.error);
    return 2;
  }
  process.stdout.write(r.text);
  return 0;
}
