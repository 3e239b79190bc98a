/**
 * Cookies and RRL through the packet handler (in process, client addresses given): the COOKIE option
 * in responses (RFC 7873 §5.2), FORMERR and BADCOOKIE, and which responses share an RRL bucket.
 */
import packet from 'dns-packet';
import t from 'tap';
import { COOKIE, Cookies } from '../../src/cookies/cookies.js';
import { RateLimiter, RRL_DEFAULTS } from '../../src/rrl/rrl.js';
import { Counters } from '../../src/server/counters.js';
import { Handler } from '../../src/server/handler.js';
import { nameFromText } from '../../src/wire/name.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';
import { cookieOf, withCookie } from '../helpers/cookies.js';
import { buildQuery } from '../helpers/dns.js';

const ZONE = `$ORIGIN example.test.
$TTL 300
@     SOA ns1 hostmaster 1 3600 900 604800 60
@     NS  ns1
ns1   A   192.0.2.1
www   A   192.0.2.80
big   TXT "${'x'.repeat(200)}" "${'y'.repeat(200)}"
*.wild A  192.0.2.99
deleg NS  ns.deleg
ns.deleg A 192.0.2.53
`;
const SECRET = Uint8Array.from(Buffer.from('e5e973e5a6b2a43f48e7dc849e37bfcf', 'hex'));

function handler(o: { rrl?: boolean; cookies?: boolean; require?: boolean } = {}): {
  h: Handler;
  counters: Counters;
} {
  const built = buildZone(parseMasterFile(ZONE, { file: 'z', origin: nameFromText('example.test.') }));
  const counters = new Counters();
  const h = new Handler(
    {
      identity: 'pop',
      nsid: null,
      version: null,
      ednsUdpSize: 1232,
      cookies: o.cookies
        ? new Cookies({ secret: SECRET, stagingSecret: null, require: o.require ?? false })
        : null,
      rrl: o.rrl
        ? new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 5, errorsPerSecond: 5, slip: 2 })
        : null,
    },
    new ZoneSet([built.zone!]),
    counters,
  );
  return { h, counters };
}

type Decoded = packet.Packet & { rcode?: string };
const decode = (b: Buffer | null): Decoded => {
  if (!b) throw new Error('no response');
  return packet.decode(b) as Decoded;
};

t.test('cookies in responses: minted, echoed, refused when malformed, required', (tt) => {
  const { h, counters } = handler({ cookies: true });
  const cc = '0102030405060708';
  const r1 = h.handle(withCookie('www.example.test.', 'A', cc), false, '192.0.2.7')!;
  tt.equal(decode(r1).answers?.length, 1);
  const sc = cookieOf(r1).cookie!;
  tt.equal(sc.length, 48, 'client cookie + 16-byte server cookie');
  tt.equal(sc.slice(0, 16), cc, 'the client cookie echoed');
  tt.equal(sc.slice(16, 24), '01000000', 'version 1, reserved zero (RFC 9018 §4.2)');
  const r2 = h.handle(withCookie('big.example.test.', 'TXT', sc), false, '192.0.2.7')!;
  tt.equal(cookieOf(r2).cookie, sc, 'a fresh valid server cookie comes back unchanged');
  const r3 = h.handle(withCookie('www.example.test.', 'A', sc), false, '192.0.2.8')!;
  tt.not(cookieOf(r3).cookie, sc, 'from another address it is invalid: a new one');
  tt.same(Array.from(counters.cookies), [0, 1, 1, 1, 0]);
  const bad = h.handle(withCookie('www.example.test.', 'A', '01020304'), false, '192.0.2.7')!;
  tt.equal(decode(bad).rcode, 'FORMERR', 'a 4-byte cookie: FORMERR (RFC 7873 §5.2.2)');
  tt.equal(cookieOf(bad).cookie, null);
  const plain = h.handle(buildQuery('www.example.test.', 'A', { edns: true }), false, '192.0.2.7')!;
  tt.equal(cookieOf(plain).cookie, null, 'no cookie asked, none sent');
  tt.equal(counters.cookies[COOKIE.NONE], 1);
  const tcp = h.handle(withCookie('www.example.test.', 'A', cc), true, '192.0.2.7')!;
  tt.equal(cookieOf(tcp).cookie?.slice(0, 16), cc, 'over TCP too');
  tt.end();
});

t.test('require: true — UDP without a valid server cookie gets BADCOOKIE and a fresh one', (tt) => {
  const { h, counters } = handler({ cookies: true, require: true });
  const cc = 'a1a2a3a4a5a6a7a8';
  const r1 = h.handle(withCookie('www.example.test.', 'A', cc), false, '192.0.2.7')!;
  const d1 = decode(r1);
  tt.equal(r1[3]! & 0xf, 7, 'header rcode: the low bits of 23');
  tt.equal(cookieOf(r1).extRcode, 1, 'OPT extended rcode: the high bits (BADCOOKIE = 23)');
  tt.equal(d1.answers?.length ?? 0, 0);
  tt.equal(d1.questions?.[0]?.name, 'www.example.test', 'the question is echoed');
  const sc = cookieOf(r1).cookie!;
  tt.equal(sc.length, 48);
  const r2 = h.handle(withCookie('www.example.test.', 'A', sc), false, '192.0.2.7')!;
  tt.equal(decode(r2).rcode, 'NOERROR', 'with the server cookie: answered');
  tt.equal(decode(r2).answers?.length, 1);
  const r3 = h.handle(withCookie('www.example.test.', 'A', cc), true, '192.0.2.7')!;
  tt.equal(decode(r3).answers?.length, 1, 'TCP is never asked for a cookie');
  const r4 = h.handle(buildQuery('www.example.test.', 'A', { edns: true }), false, '192.0.2.7')!;
  tt.equal(decode(r4).answers?.length, 1, 'a query with no cookie at all is answered (as BIND does)');
  tt.equal(counters.cookies[COOKIE.BADCOOKIE], 1);
  tt.end();
});

t.test('RRL through the handler: kinds, slip, TCP, exemptions, valid cookies', (tt) => {
  const { h, counters } = handler({ rrl: true, cookies: true });
  const ask = (name: string, type: string, client: string, n: number, tcp = false): (Buffer | null)[] =>
    Array.from({ length: n }, () => h.handle(buildQuery(name, type, { edns: true }), tcp, client));
  const passed = (rs: (Buffer | null)[]): number => rs.filter((r) => r && (r[2]! & 0x02) === 0).length;
  const slipped = (rs: (Buffer | null)[]): Buffer[] =>
    rs.filter((r): r is Buffer => !!r && (r[2]! & 0x02) !== 0);

  const big = ask('big.example.test.', 'TXT', '192.0.2.7', 15);
  tt.equal(passed(big), 5, 'five big answers, then limited');
  const tc = slipped(big);
  tt.equal(tc.length, 5, 'every 2nd limited one slips');
  const d = decode(tc[0]!);
  tt.ok(d.flags! & packet.TRUNCATED_RESPONSE, 'TC=1');
  tt.equal(d.answers?.length ?? 0, 0);
  tt.equal(d.additionals?.length ?? 0, 0, 'empty: header and question only');
  tt.equal(tc[0]!.length, 12 + 'big.example.test.'.length + 1 + 4);
  tt.equal(passed(ask('www.example.test.', 'A', '192.0.2.7', 5)), 5, 'another name: its own bucket');
  tt.equal(passed(ask('big.example.test.', 'TXT', '192.0.2.7', 5, true)), 5, 'TCP is never limited');
  tt.equal(passed(ask('big.example.test.', 'TXT', '127.0.0.1', 20)), 20, '127.0.0.1 is never limited');
  // Random names under a wildcard share one bucket; so do NXDOMAINs of one zone.
  const wild = Array.from({ length: 10 }, (_, i) =>
    h.handle(buildQuery(`r${i}.wild.example.test.`, 'A'), false, '198.51.100.1'),
  );
  tt.equal(passed(wild), 5, 'wildcard answers: one bucket per zone and type');
  const nx = Array.from({ length: 10 }, (_, i) =>
    h.handle(buildQuery(`nx${i}.example.test.`, 'A'), false, '198.51.100.1'),
  );
  tt.equal(passed(nx), 5, 'NXDOMAIN: one bucket per zone');
  const refs = Array.from({ length: 10 }, (_, i) =>
    h.handle(buildQuery(`h${i}.deleg.example.test.`, 'A'), false, '198.51.100.1'),
  );
  tt.equal(passed(refs), 5, 'referrals: one bucket per delegation');
  tt.equal(passed(ask('nowhere.invalid.', 'A', '198.51.100.1', 10)), 5, 'REFUSED: the error bucket');
  // A client with a valid server cookie is never limited.
  const first = h.handle(withCookie('big.example.test.', 'TXT', 'b1b2b3b4b5b6b7b8'), true, '192.0.2.7')!;
  const sc = cookieOf(first).cookie!;
  const withSc = Array.from({ length: 20 }, () =>
    h.handle(withCookie('big.example.test.', 'TXT', sc), false, '192.0.2.7'),
  );
  tt.equal(passed(withSc), 20, 'valid server cookie: never limited');
  const bogus = `${sc.slice(0, 40)}00000000`;
  const withBad = Array.from({ length: 4 }, () =>
    h.handle(withCookie('big.example.test.', 'TXT', bogus), false, '192.0.2.7'),
  );
  tt.equal(passed(withBad), 0, 'an invalid one is limited like no cookie');
  tt.ok(
    counters.rrl[0]! > 0 && counters.rrl[1]! > 0 && counters.rrl[2]! > 0,
    'passed, dropped, slipped counted',
  );
  tt.end();
});
