/**
 * SipHash-2-4 against the reference vectors of the SipHash paper (Appendix A: key 00..0f, message
 * 00..n-1), and RFC 9018 server cookies against the worked examples of RFC 9018 Appendix A.
 */
import t from 'tap';
import { COOKIE, Cookies, parseSecret } from '../../src/cookies/cookies.js';
import { SipKey, siphash24 } from '../../src/cookies/siphash.js';
import { parseIp } from '../../src/wire/ipaddr.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

t.test('SipHash-2-4 reference vectors', (tt) => {
  const key = new SipKey(Uint8Array.from({ length: 16 }, (_, i) => i));
  const msg = Uint8Array.from({ length: 64 }, (_, i) => i);
  const out = new Uint8Array(8);
  // The paper's vectors, as the 64-bit result (the bytes are its little-endian form).
  const vectors: [number, string][] = [
    [0, '726fdb47dd0e0e31'],
    [1, '74f839c593dc67fd'],
    [7, 'ab0200f58b01d137'],
    [8, '93f5f5799a932462'],
    [15, 'a129ca6149be45e5'],
    [63, '958a324ceb064572'],
  ];
  for (const [n, want] of vectors) {
    siphash24(key, msg, 0, n, out, 0);
    tt.equal(toHex(Uint8Array.from(out).reverse()), want, `${n} bytes`);
  }
  // Unaligned input, written at an offset.
  const shifted = new Uint8Array(70);
  shifted.set(msg.subarray(0, 63), 3);
  const out2 = new Uint8Array(12);
  siphash24(key, shifted, 3, 63, out2, 4);
  tt.equal(toHex(out2.subarray(4).reverse()), '958a324ceb064572', 'offsets');
  tt.throws(() => new SipKey(new Uint8Array(15)));
  tt.end();
});

/** Runs one query's COOKIE option data through Cookies.check; returns the verdict and our option. */
function check(c: Cookies, option: string, client: string, now: number): { verdict: number; reply: string } {
  const ip = new Uint8Array(16);
  const ipLen = parseIp(client, ip);
  const data = hex(option);
  const msg = new Uint8Array(5 + data.length);
  msg.set(data, 5);
  const verdict = c.check(msg, 5, data.length, ip, ipLen, now);
  return { verdict, reply: toHex(c.out) };
}

t.test('RFC 9018 Appendix A', (tt) => {
  const c = new Cookies({
    secret: hex('e5e973e5a6b2a43f48e7dc849e37bfcf'),
    stagingSecret: null,
    require: false,
  });
  // A.1: a client cookie only; the server cookie minted at 1559731985.
  tt.same(check(c, '2464c4abcf10c957', '198.51.100.100', 1559731985), {
    verdict: COOKIE.CLIENT_ONLY,
    reply: '2464c4abcf10c957010000005cf79f111f8130c3eee29480',
  });
  // A.2: the same cookie 40 minutes later is valid, and older than half an hour: renewed.
  tt.same(check(c, '2464c4abcf10c957010000005cf79f111f8130c3eee29480', '198.51.100.100', 1559734385), {
    verdict: COOKIE.VALID,
    reply: '2464c4abcf10c957010000005cf7a871d4a564a1442aca77',
  });
  // … and younger than half an hour it is sent back as it came.
  tt.same(check(c, '2464c4abcf10c957010000005cf79f111f8130c3eee29480', '198.51.100.100', 1559731985 + 600), {
    verdict: COOKIE.VALID,
    reply: '2464c4abcf10c957010000005cf79f111f8130c3eee29480',
  });
  // A.3: reserved bytes set (they are hashed as received): valid at its own time …
  const a3 = 'fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5';
  tt.equal(check(c, a3, '203.0.113.203', 1559727985).verdict, COOKIE.VALID);
  // … and at 1559734700, 1 h 52 min later, past the hour (RFC 9018 §4.3): a fresh one, reserved zero.
  tt.same(check(c, a3, '203.0.113.203', 1559734700), {
    verdict: COOKIE.INVALID,
    reply: 'fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e',
  });
  // A.4: IPv6, a secret rolled over: the old one still validates (staging), the new one mints.
  const rolled = new Cookies({
    secret: hex('445536bcd2513298075a5d379663c962'),
    stagingSecret: hex('dd3bdf9344b678b185a6f5cb60fca715'),
    require: false,
  });
  tt.same(
    check(
      rolled,
      '22681ab97d52c298010000005cf7c57926556bd0934c72f8',
      '2001:db8:220:1:59de:d0f4:8769:82b8',
      1559741961,
    ),
    { verdict: COOKIE.VALID, reply: '22681ab97d52c298010000005cf7c609a6bb79d16625507a' },
  );
  // Without the staging secret that cookie is not ours.
  const newOnly = new Cookies({
    secret: hex('445536bcd2513298075a5d379663c962'),
    stagingSecret: null,
    require: false,
  });
  tt.equal(
    check(
      newOnly,
      '22681ab97d52c298010000005cf7c57926556bd0934c72f8',
      '2001:db8:220:1:59de:d0f4:8769:82b8',
      1559741961,
    ).verdict,
    COOKIE.INVALID,
  );
  tt.end();
});

t.test('validity window, wrong client, malformed lengths (RFC 7873 §5.2.2, RFC 9018 §4.3)', (tt) => {
  const c = new Cookies({
    secret: hex('e5e973e5a6b2a43f48e7dc849e37bfcf'),
    stagingSecret: null,
    require: false,
  });
  const cookie = '2464c4abcf10c957010000005cf79f111f8130c3eee29480';
  const ts = 1559731985;
  tt.equal(check(c, cookie, '198.51.100.100', ts + 3600).verdict, COOKIE.VALID, 'an hour old: still valid');
  tt.equal(check(c, cookie, '198.51.100.100', ts + 3601).verdict, COOKIE.INVALID, 'older: invalid');
  tt.equal(check(c, cookie, '198.51.100.100', ts - 300).verdict, COOKIE.VALID, '5 min in the future: valid');
  tt.equal(check(c, cookie, '198.51.100.100', ts - 301).verdict, COOKIE.INVALID, 'further: invalid');
  const fresh = check(c, cookie, '198.51.100.100', ts - 301).reply;
  tt.equal(fresh.slice(16, 32), `01000000${(ts - 301).toString(16)}`, 'an invalid cookie gets a fresh one');
  tt.equal(check(c, cookie, '198.51.100.101', ts).verdict, COOKIE.INVALID, 'another client address');
  tt.equal(check(c, `2464c4abcf10c958${cookie.slice(16)}`, '198.51.100.100', ts).verdict, COOKIE.INVALID);
  tt.equal(
    check(c, `${cookie.slice(0, 16)}02${cookie.slice(18)}`, '198.51.100.100', ts).verdict,
    COOKIE.INVALID,
  );
  // Well-formed server cookies of other lengths (8..32 bytes) are someone else's: invalid, not FORMERR.
  tt.equal(
    check(c, `${cookie.slice(0, 16)}${'ab'.repeat(32)}`, '198.51.100.100', ts).verdict,
    COOKIE.INVALID,
  );
  tt.equal(check(c, `${cookie}00`, '198.51.100.100', ts).verdict, COOKIE.INVALID);
  for (const n of [0, 1, 7, 9, 15, 41, 64]) {
    tt.equal(
      check(c, 'ab'.repeat(n), '198.51.100.100', ts).verdict,
      COOKIE.MALFORMED,
      `${n} bytes: malformed`,
    );
  }
  tt.same(parseSecret('E5E973E5A6B2A43F48E7DC849E37BFCF'), hex('e5e973e5a6b2a43f48e7dc849e37bfcf'));
  tt.equal(parseSecret('e5e973'), null);
  tt.end();
});
