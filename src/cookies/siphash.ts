/**
 * SipHash-2-4 (Aumasson and Bernstein, 2012), the MAC of RFC 9018 interoperable DNS server cookies.
 * JavaScript has no fast 64-bit integers (BigInt allocates), so each 64-bit word is two 32-bit
 * halves in local variables: one call allocates nothing.
 */

/** A SipHash-2-4 key, split into its two little-endian 64-bit words once. */
export class SipKey {
  readonly k0h: number;
  readonly k0l: number;
  readonly k1h: number;
  readonly k1l: number;

  /** `key` is 16 bytes (throws otherwise). */
  constructor(key: Uint8Array) {
    if (key.length !== 16) throw new Error('a SipHash key is 16 bytes');
    this.k0l = le32(key, 0);
    this.k0h = le32(key, 4);
    this.k1l = le32(key, 8);
    this.k1h = le32(key, 12);
  }
}

function le32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/**
 * SipHash-2-4 of data[off..off+len) under `key`; the 8-byte result is written to out[at..at+8) in
 * little-endian order (the byte order of the reference implementation's output).
 */
export function siphash24(
  key: SipKey,
  data: Uint8Array,
  off: number,
  len: number,
  out: Uint8Array,
  at: number,
): void {
  // v0 = k0 ^ "somepseu", v1 = k1 ^ "dorandom", v2 = k0 ^ "lygenera", v3 = k1 ^ "tedbytes"
  let v0h = (key.k0h ^ 0x736f6d65) >>> 0;
  let v0l = (key.k0l ^ 0x70736575) >>> 0;
  let v1h = (key.k1h ^ 0x646f7261) >>> 0;
  let v1l = (key.k1l ^ 0x6e646f6d) >>> 0;
  let v2h = (key.k0h ^ 0x6c796765) >>> 0;
  let v2l = (key.k0l ^ 0x6e657261) >>> 0;
  let v3h = (key.k1h ^ 0x74656462) >>> 0;
  let v3l = (key.k1l ^ 0x79746573) >>> 0;
  const blocks = len >>> 3;
  let mh: number;
  let ml: number;
  let t: number;
  let th: number;
  for (let b = 0; b <= blocks; b++) {
    if (b < blocks) {
      const p = off + b * 8;
      ml = le32(data, p);
      mh = le32(data, p + 4);
    } else {
      // The last block: the remaining bytes, and the length's low byte on top.
      const p = off + blocks * 8;
      const rest = len & 7;
      ml = 0;
      mh = (len & 0xff) << 24;
      for (let i = 0; i < rest; i++) {
        if (i < 4) ml |= data[p + i]! << (8 * i);
        else mh |= data[p + i]! << (8 * (i - 4));
      }
      ml >>>= 0;
      mh >>>= 0;
    }
    v3h = (v3h ^ mh) >>> 0;
    v3l = (v3l ^ ml) >>> 0;
    for (let r = 0; r < 2; r++) {
      // SipRound, with 64-bit adds as carry-propagating pairs and rotations as half swaps.
      t = (v0l + v1l) >>> 0;
      v0h = (v0h + v1h + (t < v0l ? 1 : 0)) >>> 0;
      v0l = t;
      th = ((v1h << 13) | (v1l >>> 19)) >>> 0;
      v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0;
      v1h = (th ^ v0h) >>> 0;
      v1l = (v1l ^ v0l) >>> 0;
      t = v0h;
      v0h = v0l;
      v0l = t;
      t = (v2l + v3l) >>> 0;
      v2h = (v2h + v3h + (t < v2l ? 1 : 0)) >>> 0;
      v2l = t;
      th = ((v3h << 16) | (v3l >>> 16)) >>> 0;
      v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0;
      v3h = (th ^ v2h) >>> 0;
      v3l = (v3l ^ v2l) >>> 0;
      t = (v0l + v3l) >>> 0;
      v0h = (v0h + v3h + (t < v0l ? 1 : 0)) >>> 0;
      v0l = t;
      th = ((v3h << 21) | (v3l >>> 11)) >>> 0;
      v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0;
      v3h = (th ^ v0h) >>> 0;
      v3l = (v3l ^ v0l) >>> 0;
      t = (v2l + v1l) >>> 0;
      v2h = (v2h + v1h + (t < v2l ? 1 : 0)) >>> 0;
      v2l = t;
      th = ((v1h << 17) | (v1l >>> 15)) >>> 0;
      v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0;
      v1h = (th ^ v2h) >>> 0;
      v1l = (v1l ^ v2l) >>> 0;
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    v0h = (v0h ^ mh) >>> 0;
    v0l = (v0l ^ ml) >>> 0;
  }
  v2l = (v2l ^ 0xff) >>> 0;
  for (let r = 0; r < 4; r++) {
    t = (v0l + v1l) >>> 0;
    v0h = (v0h + v1h + (t < v0l ? 1 : 0)) >>> 0;
    v0l = t;
    th = ((v1h << 13) | (v1l >>> 19)) >>> 0;
    v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0;
    v1h = (th ^ v0h) >>> 0;
    v1l = (v1l ^ v0l) >>> 0;
    t = v0h;
    v0h = v0l;
    v0l = t;
    t = (v2l + v3l) >>> 0;
    v2h = (v2h + v3h + (t < v2l ? 1 : 0)) >>> 0;
    v2l = t;
    th = ((v3h << 16) | (v3l >>> 16)) >>> 0;
    v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0;
    v3h = (th ^ v2h) >>> 0;
    v3l = (v3l ^ v2l) >>> 0;
    t = (v0l + v3l) >>> 0;
    v0h = (v0h + v3h + (t < v0l ? 1 : 0)) >>> 0;
    v0l = t;
    th = ((v3h << 21) | (v3l >>> 11)) >>> 0;
    v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0;
    v3h = (th ^ v0h) >>> 0;
    v3l = (v3l ^ v0l) >>> 0;
    t = (v2l + v1l) >>> 0;
    v2h = (v2h + v1h + (t < v2l ? 1 : 0)) >>> 0;
    v2l = t;
    th = ((v1h << 17) | (v1l >>> 15)) >>> 0;
    v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0;
    v1h = (th ^ v2h) >>> 0;
    v1l = (v1l ^ v2l) >>> 0;
    t = v2h;
    v2h = v2l;
    v2l = t;
  }
  const rh = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  const rl = (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
  out[at] = rl & 0xff;
  out[at + 1] = (rl >>> 8) & 0xff;
  out[at + 2] = (rl >>> 16) & 0xff;
  out[at + 3] = rl >>> 24;
  out[at + 4] = rh & 0xff;
  out[at + 5] = (rh >>> 8) & 0xff;
  out[at + 6] = (rh >>> 16) & 0xff;
  out[at + 7] = rh >>> 24;
}
