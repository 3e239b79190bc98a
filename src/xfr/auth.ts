/**
 * TSIG for the secondary's requests (RFC 8945): sign a request with the zone's key and check every
 * message of the response. Without a key, requests go unsigned and responses are taken as they come.
 */

/** A TSIG key as the secondary uses it (the shape of src/wire/tsig.ts's TsigKey). */
export interface XfrKey {
  /** Lower-case absolute name with the trailing dot. */
  name: string;
  algorithm: string;
  secret: Buffer;
}

export interface SignedExchange {
  /** The request to send (signed when there is a key). */
  message: Buffer;
  /**
   * Checks one response message. `ok` false = the message must not be used (`error` says why, with a
   * POPDNS_E_TSIG code); `stripped` is the message without its TSIG record.
   */
  check(msg: Buffer): { ok: boolean; error?: string; stripped: Buffer };
  /** At the end of a multi-message response: true when the last message was signed (RFC 8945 §5.3.1). */
  finish(): boolean;
}

/** Prepares a request for sending with `key` (or unsigned with null). */
export function signedExchange(request: Buffer, key: XfrKey | null): SignedExchange {
  if (key) throw new Error(`TSIG key ${key.name}: signing is not available in this build [POPDNS_E_TSIG]`);
  return {
    message: request,
    check: (msg) => ({ ok: true, stripped: msg }),
    finish: () => true,
  };
}

/**
 * Checks a NOTIFY signed with `key` (RFC 8945 §5.2): ok when the MAC verifies; `response` signs the
 * answer as §5.3 says. Without TSIG support every signed-zone NOTIFY is refused.
 */
export function verifyNotifyTsig(_msg: Buffer, _key: XfrKey): { ok: boolean; response: (m: Buffer) => Buffer } {
  return { ok: false, response: (m) => m };
}
