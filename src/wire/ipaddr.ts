/**
 * IP address literals (as Node reports a peer: `rinfo.address`, `socket.remoteAddress`) into bytes,
 * without allocating: the query path turns every client address into 4 or 16 bytes for cookies
 * (RFC 9018 §4.4 hashes the client IP) and response rate limiting (the client's prefix).
 */

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Dotted-quad IPv4 from s[from..to) into out[at..at+4); false if malformed. */
function parseV4(s: string, from: number, to: number, out: Uint8Array, at: number): boolean {
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part === 3) return false;
      out[at + part++] = val;
      val = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      val = val * 10 + (c - 0x30);
      if (++digits > 3 || val > 255) return false;
    } else return false;
  }
  if (digits === 0 || part !== 3) return false;
  out[at + 3] = val;
  return true;
}

/**
 * Parses an IPv4 or IPv6 literal into `out` (at least 16 bytes). Returns 4 (IPv4, out[0..4)), 16
 * (IPv6, out[0..16)) or 0 when `s` is not an address. IPv4-mapped IPv6 (`::ffff:192.0.2.1`) comes
 * back as IPv4, the address the client really has; a zone index (`fe80::1%eth0`) is ignored.
 */
export function parseIp(s: string, out: Uint8Array): number {
  let end = s.length;
  const pct = s.indexOf('%');
  if (pct >= 0) end = pct;
  let colon = false;
  for (let i = 0; i < end; i++) {
    if (s.charCodeAt(i) === 0x3a) {
      colon = true;
      break;
    }
  }
  if (!colon) return parseV4(s, 0, end, out, 0) ? 4 : 0;
  // IPv6: up to 8 groups, one "::" gap, optionally a dotted quad as the last 32 bits.
  let n = 0; // bytes written before the gap is placed
  let gapAt = -1;
  let i = 0;
  if (end >= 2 && s.charCodeAt(0) === 0x3a) {
    if (s.charCodeAt(1) !== 0x3a) return 0;
    gapAt = 0;
    i = 2;
  }
  while (i < end) {
    // One group: hex digits up to ':' or the end, or a dotted quad at the end.
    let j = i;
    let val = 0;
    let dot = false;
    while (j < end) {
      const c = s.charCodeAt(j);
      if (c === 0x3a) break;
      if (c === 0x2e) dot = true;
      j++;
    }
    if (dot) {
      if (j !== end || n > 12) return 0;
      if (!parseV4(s, i, j, out, n)) return 0;
      n += 4;
      break;
    }
    if (j === i || j - i > 4) return 0;
    for (let k = i; k < j; k++) {
      const d = hexDigit(s.charCodeAt(k));
      if (d < 0) return 0;
      val = (val << 4) | d;
    }
    if (n >= 16) return 0;
    out[n++] = val >> 8;
    out[n++] = val & 0xff;
    i = j;
    if (i < end) {
      // at ':'
      i++;
      if (i < end && s.charCodeAt(i) === 0x3a) {
        if (gapAt >= 0) return 0;
        gapAt = n;
        i++;
      } else if (i === end) return 0; // trailing single ':'
    }
  }
  if (gapAt >= 0) {
    if (n >= 16) return 0;
    const tail = n - gapAt;
    for (let k = 0; k < tail; k++) out[15 - k] = out[n - 1 - k]!;
    for (let k = gapAt; k < 16 - tail; k++) out[k] = 0;
  } else if (n !== 16) return 0;
  // IPv4-mapped (::ffff:a.b.c.d): the IPv4 address.
  let mapped = out[10] === 0xff && out[11] === 0xff;
  for (let k = 0; mapped && k < 10; k++) if (out[k] !== 0) mapped = false;
  if (mapped) {
    out[0] = out[12]!;
    out[1] = out[13]!;
    out[2] = out[14]!;
    out[3] = out[15]!;
    return 4;
  }
  return 16;
}
