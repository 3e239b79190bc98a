/**
 * Answers the field found wrong (issue 10), with the expected records written from the RFCs and
 * checked against Knot 3.2 (test/diff/ replays them against knotd): the same DNAME twice in one chain
 * (RFC 6672 §3.4: a DNAME already in the answer is no loop), SVCB/HTTPS additional-section
 * processing (RFC 9460 §4.1), and RRTYPE 0 (RFC 6895 §3.1).
 */
import t from 'tap';
import { resolve } from '../../src/query/engine.js';
import { RCODE, TYPE, typeFromText, typeToText } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { rdataToText } from '../../src/wire/rdata.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, type RRset, type Zone } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';

const HEAD = `$ORIGIN example.com.
$TTL 600
@ SOA ns1.example.net. hostmaster.example.com. 1 900 180 1209600 180
@ NS ns1.example.net.
`;

function zones(body: string): ZoneSet {
  const built = buildZone(
    parseMasterFile(HEAD + body, { file: 'example.com.zone', origin: nameFromText('example.com.') }),
  );
  if (!built.zone) throw new Error(built.diagnostics.map((d) => d.message).join('; '));
  return new ZoneSet([built.zone as Zone]);
}

/** A section as `owner TYPE rdata` lines, in order. */
const lines = (sets: RRset[]): string[] =>
  sets.flatMap((s) =>
    s.rdatas.map((rd) => `${nameToText(s.owner)} ${typeToText(s.type)} ${rdataToText(s.type, rd)}`),
  );

const ask = (z: ZoneSet, name: string, type: string) => resolve(z, nameFromText(name), typeFromText(type)!);

t.test('the same DNAME twice in one chain (RFC 6672)', async (t) => {
  const z = zones(`a DNAME b.example.com.
x.b CNAME y.a.example.com.
y.b A 192.0.2.1
`);
  const r = ask(z, 'x.a.example.com.', 'A');
  t.equal(r.rcode, RCODE.NOERROR);
  t.same(lines(r.answer), [
    'a.example.com. DNAME b.example.com.',
    'x.a.example.com. CNAME x.b.example.com.',
    'x.b.example.com. CNAME y.a.example.com.',
    'y.a.example.com. CNAME y.b.example.com.',
    'y.b.example.com. A 192.0.2.1',
  ]);
  // A real loop still ends: a DNAME pointing into itself via a CNAME back to the first name.
  const loop = zones(`a DNAME b.example.com.
x.b CNAME x.a.example.com.
`);
  const l = ask(loop, 'x.a.example.com.', 'A');
  t.equal(l.rcode, RCODE.NOERROR);
  t.same(lines(l.answer), [
    'a.example.com. DNAME b.example.com.',
    'x.a.example.com. CNAME x.b.example.com.',
    'x.b.example.com. CNAME x.a.example.com.',
  ]);
});

t.test('SVCB/HTTPS additional section (RFC 9460 §4.1, like Knot)', async (t) => {
  const z = zones(`www A 192.0.2.80
www AAAA 2001:db8::80
www HTTPS 1 . alpn=h3
svc HTTPS 1 www alpn=h2
alias HTTPS 0 svc
self HTTPS 1 . alpn=h2
self A 192.0.2.81
_dns.ns1 SVCB 1 www alpn=dot
out HTTPS 1 host.example.net.
`);
  // ServiceMode: the target's A, AAAA and HTTPS.
  t.same(lines(ask(z, 'svc.example.com.', 'HTTPS').additional), [
    'www.example.com. A 192.0.2.80',
    'www.example.com. AAAA 2001:db8::80',
    'www.example.com. HTTPS 1 . alpn="h3"',
  ]);
  // AliasMode: the ServiceMode record it points to (one level, like Knot).
  t.same(lines(ask(z, 'alias.example.com.', 'HTTPS').additional), [
    'svc.example.com. HTTPS 1 www.example.com. alpn="h2"',
  ]);
  t.same(lines(ask(z, '_dns.ns1.example.com.', 'SVCB').additional), [
    'www.example.com. A 192.0.2.80',
    'www.example.com. AAAA 2001:db8::80',
  ]);
  t.same(lines(ask(z, 'self.example.com.', 'HTTPS').additional), [], 'target "." (the owner): nothing');
  t.same(lines(ask(z, 'out.example.com.', 'HTTPS').additional), [], 'target outside the zone: nothing');
});

t.test('RRTYPE 0 is NOTIMP for any name (RFC 6895 §3.1, like Knot)', async (t) => {
  const z = zones('www A 192.0.2.1\n');
  t.match(resolve(z, nameFromText('www.example.com.'), 0), { rcode: RCODE.NOTIMP, aa: false, answer: [] });
  t.match(resolve(z, nameFromText('example.org.'), 0), { rcode: RCODE.NOTIMP });
  t.equal(ask(z, 'www.example.com.', 'OPT').authority[0]?.type, TYPE.SOA, 'qtype OPT: no data');
});
