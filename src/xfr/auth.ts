/**
 * TSIG for the secondary (RFC 8945): sign a request with the zone's key and check every message of
 * the response (§5.3.1: the first and the last must be signed, at most 99 unsigned in between); check
 * a signed NOTIFY and sign its answer (§5.2, §5.3). Without a key, requests go unsigned.
 */
import {
  TSIG_ERR,
  type TsigKey,
  type TsigKeyring,
  tsigSign,
  tsigSignResponse,
  TsigStreamVerifier,
  tsigVerify,
} from '../wire/tsig.js';

/** A TSIG key as the secondary uses it. */
export type XfrKey = TsigKey;

/** The TSIG verdict on a NOTIFY: its status, the key that signed it, and how to sign the answer. */
export interface NotifyTsig {
  status: 'unsigned' | 'ok' | 'formerr' | 'badkey' | 'badsig' | 'badtime';
  /** Keyring name of the key that signed it (lower case, trailing dot); null when unsigned or unknown. */
  keyName: string | null;
  /** Signs the answer (status ok), or adds the TSIG error as RFC 8945 §5.3.2 says. */
  response: (m: Buffer) => Buffer;
}

export interface SignedExchange {
  /** The request to send (signed when there is a key). */
  message: Buffer;
  /**
   * Checks one response message. `ok` false = the message must not be used (`error` says why);
   * `stripped` is the message without its TSIG record.
   */
  check(msg: Buffer): { ok: boolean; error?: string; stripped: Buffer };
  /** At the end of the response: true when it ended on a valid signed message (always, unsigned). */
  finish(): boolean;
}

/** What the primary's own TSIG error says, when it sent one (BADKEY/BADSIG/BADTIME). */
function peerTsigError(msg: Buffer): string {
  const rcode = msg.length >= 4 ? msg[3]! & 0xf : 0;
  const v = tsigVerify(msg, new Map());
  const err = v.record?.error ?? 0;
  const name = Object.entries(TSIG_ERR).find(([, n]) => n === err)?.[0];
  if (rcode === 9 || name)
    return ` (the primary answered ${rcode === 9 ? 'NOTAUTH' : `rcode ${rcode}`}${name ? ` with TSIG error ${name}` : ''})`;
  return '';
}

/** Prepares a request for sending with `key` (or unsigned with null). */
export function signedExchange(request: Buffer, key: XfrKey | null): SignedExchange {
  if (!key) return { message: request, check: (msg) => ({ ok: true, stripped: msg }), finish: () => true };
  const { message, mac } = tsigSign(request, key);
  const v = new TsigStreamVerifier(key, mac);
  return {
    message,
    check: (msg) => {
      const r = v.next(msg);
      if (r.status === 'ok' || r.status === 'pending') return { ok: true, stripped: r.stripped };
      return {
        ok: false,
        stripped: r.stripped,
        error: `response fails TSIG with key ${key.name}: ${r.status}${peerTsigError(msg)}`,
      };
    },
    finish: () => v.finish(),
  };
}

/**
 * Checks a signed NOTIFY against the keyring (RFC 8945 §5.2): its status (ok when the key is known and
 * MAC and time are good), the key's name, and `response`, which signs (ok) or marks (a TSIG error)
 * the answer as §5.3 and §5.3.2 say.
 */
export function verifyNotifyTsig(msg: Buffer, keys: TsigKeyring): NotifyTsig {
  const r = tsigVerify(msg, keys);
  return {
    status: r.status,
    keyName: r.key?.name ?? null,
    response: (m) => tsigSignResponse(m, r).message,
  };
}
