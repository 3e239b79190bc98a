/** The `dnstap:` section of the server config (see README, "dnstap"). */
import { isMap, isScalar, isSeq, type Node } from 'yaml';

/** Which dnstap messages are written: the two an authoritative server produces. */
export const DNSTAP_MESSAGES = ['auth-query', 'auth-response'] as const;
export type DnstapMessageKind = (typeof DNSTAP_MESSAGES)[number];

export interface DnstapConfig {
  /** Path of the collector's Frame Streams Unix socket (fstrm_capture -u, dnstap-receiver, vector…). */
  socket: string;
  /** Log AUTH_QUERY messages (the query as received). */
  queries: boolean;
  /** Log AUTH_RESPONSE messages (the query and the response sent). */
  responses: boolean;
  /** 1 in `sample` queries is logged (1 = every query). */
  sample: number;
}

/** Result labels of popdns_dnstap_messages_total, in the order of Counters.dnstap. */
export const DNSTAP_RESULT_LABELS = ['sent', 'dropped'] as const;

export const DNSTAP_KEYS = ['socket', 'messages', 'sample'] as const;

/** Reads `dnstap:`; `fail(node, message)` throws the config error (file:line:col). */
export function parseDnstapSection(node: Node, fail: (n: Node, msg: string) => never): DnstapConfig {
  if (!isMap(node))
    return fail(
      node,
      'dnstap must be a mapping: { socket: /run/dnstap.sock, messages: [auth-query, auth-response], sample: 1 }',
    );
  let socket: string | null = null;
  let queries = true;
  let responses = true;
  let sample = 1;
  for (const pair of node.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    const v = pair.value as Node;
    switch (k as (typeof DNSTAP_KEYS)[number]) {
      case 'socket':
        if (!isScalar(v) || typeof v.value !== 'string' || v.value === '')
          fail(v, 'dnstap.socket must be the path of a Unix socket');
        socket = (v as { value: string }).value;
        break;
      case 'messages': {
        if (!isSeq(v) || v.items.length === 0)
          return fail(v, `dnstap.messages must be a non-empty list of: ${DNSTAP_MESSAGES.join(', ')}`);
        queries = false;
        responses = false;
        for (const it of v.items as Node[]) {
          const m = isScalar(it) ? String(it.value) : '';
          if (m === 'auth-query') queries = true;
          else if (m === 'auth-response') responses = true;
          else fail(it, `unknown dnstap message "${m}" (known: ${DNSTAP_MESSAGES.join(', ')})`);
        }
        break;
      }
      case 'sample':
        if (
          !isScalar(v) ||
          typeof v.value !== 'number' ||
          !Number.isInteger(v.value) ||
          v.value < 1 ||
          v.value > 1e9
        )
          fail(v, 'dnstap.sample must be a whole number ≥ 1 (1 = every query, 100 = one query in 100)');
        sample = (v as { value: number }).value;
        break;
      default:
        fail(pair.key as Node, `unknown dnstap setting "${k}" (known: ${DNSTAP_KEYS.join(', ')})`);
    }
  }
  if (socket === null) return fail(node, "dnstap needs a socket: the path of the collector's Unix socket");
  return { socket, queries, responses, sample };
}
