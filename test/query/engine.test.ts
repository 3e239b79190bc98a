/**
 * The answer engine, case by case. Expected records are written by hand from the RFCs (RFC 1034
 * §4.3.2, RFC 2308, RFC 4592 §2.2.1, RFC 6672, RFC 8482), not copied from popdns output.
 */
import t, { type Test } from 'tap';
import { resolve } from '../../src/query/engine.js';
import type { Answer } from '../../src/query/types.js';
import { RCODE, TYPE, typeFromText, typeToText } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { rdataToText } from '../../src/wire/rdata.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, type RRset, type Zone } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';

function zoneFrom(origin: string, text: string): Zone {
  const built = buildZone(parseMasterFile(text, { file: `${origin}zone`, origin: nameFromText(origin) }));
  const errors = built.diagnostics.filter((d) => d.severity === 'error');
  if (!built.zone) throw new Error(`zone ${origin} failed: ${errors.map((d) => d.message).join('; ')}`);
  return built.zone;
}

/** Each RR of a section as `owner ttl TYPE rdata`, owner lower-cased, sorted. */
function section(sets: RRset[]): string[] {
  const out: string[] = [];
  for (const s of sets) {
    for (const rd of s.rdatas) {
      out.push(
        `${nameToText(s.owner).toLowerCase()} ${s.ttl} ${typeToText(s.type)} ${rdataToText(s.type, rd)}`,
      );
    }
  }
  return out.map((l) => l.toLowerCase()).sort();
}

function lower(lines: string[] | undefined): string[] {
  return (lines ?? []).map((l) => l.toLowerCase()).sort();
}

interface Expect {
  rcode: number;
  aa: boolean;
  answer?: string[];
  authority?: string[];
  additional?: string[];
}

function check(tt: Test, zones: ZoneSet, qname: string, qtype: string, want: Expect): Answer {
  const a = resolve(zones, nameFromText(qname), typeFromText(qtype)!);
  tt.same(
    {
      rcode: a.rcode,
      aa: a.aa,
      answer: section(a.answer),
      authority: section(a.authority),
      additional: section(a.additional),
    },
    {
      rcode: want.rcode,
      aa: want.aa,
      answer: lower(want.answer),
      authority: lower(want.authority),
      additional: lower(want.additional),
    },
    `${qname} ${qtype}`,
  );
  return a;
}

// RFC 4592 §2.2.1, with concrete SOA and SRV RDATA.
const RFC4592 = `$ORIGIN example.
example.                 3600 IN  SOA   ns.example.com. hostmaster.example. 1 7200 3600 1209600 300
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     SRV   0 0 22 host1.example.
_ssh._tcp.host2.example. 3600     SRV   0 0 22 host2.example.
subdel.example.          3600     NS    ns.example.com.
subdel.example.          3600     NS    ns.example.net.
`;
const SOA4592 = 'example. 300 SOA ns.example.com. hostmaster.example. 1 7200 3600 1209600 300';

t.test('RFC 4592 §2.2.1 example zone and queries', (tt) => {
  const zones = new ZoneSet([zoneFrom('example.', RFC4592)]);
  // "host3.example. MX" is synthesized from *.example.
  check(tt, zones, 'host3.example.', 'MX', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['host3.example. 3600 MX 10 host1.example.'],
    additional: ['host1.example. 3600 A 192.0.2.1'],
  });
  // "host3.example. A": the wildcard matches but has no A → NODATA.
  check(tt, zones, 'host3.example.', 'A', { rcode: RCODE.NOERROR, aa: true, authority: [SOA4592] });
  // "foo.bar.example. TXT": synthesized from *.example. with the query name as owner.
  check(tt, zones, 'foo.bar.example.', 'TXT', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['foo.bar.example. 3600 TXT "this is a wildcard"'],
  });
  // "host1.example. MX": host1 exists, so no synthesis → NODATA.
  check(tt, zones, 'host1.example.', 'MX', { rcode: RCODE.NOERROR, aa: true, authority: [SOA4592] });
  // "sub.*.example. MX": exists (not a wildcard match) → NODATA.
  check(tt, zones, 'sub.*.example.', 'MX', { rcode: RCODE.NOERROR, aa: true, authority: [SOA4592] });
  // "_telnet._tcp.host1.example. SRV": closest encloser _tcp.host1.example. (empty non-terminal), no
  // *._tcp.host1.example. → NXDOMAIN.
  check(tt, zones, '_telnet._tcp.host1.example.', 'SRV', {
    rcode: RCODE.NXDOMAIN,
    aa: true,
    authority: [SOA4592],
  });
  // "host.subdel.example. A": below a delegation → referral, not authoritative.
  check(tt, zones, 'host.subdel.example.', 'A', {
    rcode: RCODE.NOERROR,
    aa: false,
    authority: ['subdel.example. 3600 NS ns.example.com.', 'subdel.example. 3600 NS ns.example.net.'],
  });
  // "ghost.*.example. MX": closest encloser *.example.; no *.*.example. → NXDOMAIN.
  check(tt, zones, 'ghost.*.example.', 'MX', { rcode: RCODE.NXDOMAIN, aa: true, authority: [SOA4592] });
  // The empty non-terminal _tcp.host1.example. exists: NODATA, not NXDOMAIN (RFC 4592 §2.2.2).
  check(tt, zones, '_tcp.host1.example.', 'A', { rcode: RCODE.NOERROR, aa: true, authority: [SOA4592] });
  // An empty non-terminal blocks the wildcard: host2.example. exists (ENT) → NODATA, not the wildcard MX.
  check(tt, zones, 'host2.example.', 'MX', { rcode: RCODE.NOERROR, aa: true, authority: [SOA4592] });
  tt.end();
});

const TRICKY = `$ORIGIN example.org.
$TTL 3600
@        SOA ns1 hostmaster 7 3600 900 604800 120
@        NS  ns1
@        NS  ns2.example.com.
@        MX  10 mail
ns1      A   192.0.2.1
mail     A   192.0.2.2
mail     AAAA 2001:db8::2
www      CNAME web
web      CNAME host
host     A   192.0.2.3
ext      CNAME www.example.com.
dangling CNAME nothing
loop1    CNAME loop2
loop2    CNAME loop1
srv      SRV 0 0 443 host
d        DNAME example.net.
long     DNAME ${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.
*.w      CNAME host
sec      NS  ns.sec
sec      NS  ns.other.example.com.
sec      DS  12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sec   A   192.0.2.53
ins      NS  ns1
`;
const SOA_ORG = 'example.org. 120 SOA ns1.example.org. hostmaster.example.org. 7 3600 900 604800 120';

t.test('RFC 1034 §4.3.2 cases', (tt) => {
  const zones = new ZoneSet([zoneFrom('example.org.', TRICKY)]);
  // Exact match with additional-section addresses for MX (step 6).
  check(tt, zones, 'example.org.', 'MX', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['example.org. 3600 MX 10 mail.example.org.'],
    additional: ['mail.example.org. 3600 A 192.0.2.2', 'mail.example.org. 3600 AAAA 2001:db8::2'],
  });
  // Apex NS: in-zone target addresses in additional; out-of-zone target has none.
  check(tt, zones, 'example.org.', 'NS', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['example.org. 3600 NS ns1.example.org.', 'example.org. 3600 NS ns2.example.com.'],
    additional: ['ns1.example.org. 3600 A 192.0.2.1'],
  });
  // A CNAME chain inside the zone is followed (step 3.a).
  check(tt, zones, 'www.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: [
      'www.example.org. 3600 CNAME web.example.org.',
      'web.example.org. 3600 CNAME host.example.org.',
      'host.example.org. 3600 A 192.0.2.3',
    ],
  });
  // Asking for the CNAME itself does not follow it.
  check(tt, zones, 'www.example.org.', 'CNAME', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['www.example.org. 3600 CNAME web.example.org.'],
  });
  // A CNAME leaving the zone ends the answer there.
  check(tt, zones, 'ext.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['ext.example.org. 3600 CNAME www.example.com.'],
  });
  // A CNAME to a name that does not exist: the rcode is that of the last name (RFC 6604).
  check(tt, zones, 'dangling.example.org.', 'A', {
    rcode: RCODE.NXDOMAIN,
    aa: true,
    answer: ['dangling.example.org. 3600 CNAME nothing.example.org.'],
    authority: [SOA_ORG],
  });
  // A CNAME loop ends without repeating records; NOERROR.
  check(tt, zones, 'loop1.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: [
      'loop1.example.org. 3600 CNAME loop2.example.org.',
      'loop2.example.org. 3600 CNAME loop1.example.org.',
    ],
  });
  // SRV target addresses go to additional.
  check(tt, zones, 'srv.example.org.', 'SRV', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['srv.example.org. 3600 SRV 0 0 443 host.example.org.'],
    additional: ['host.example.org. 3600 A 192.0.2.3'],
  });
  // NODATA and NXDOMAIN: SOA in authority with TTL min(SOA TTL, MINIMUM) = 120 (RFC 2308 §3).
  check(tt, zones, 'host.example.org.', 'AAAA', { rcode: RCODE.NOERROR, aa: true, authority: [SOA_ORG] });
  check(tt, zones, 'nope.example.org.', 'A', { rcode: RCODE.NXDOMAIN, aa: true, authority: [SOA_ORG] });
  // Wildcard CNAME: synthesized with the query name as owner, then followed.
  check(tt, zones, 'x.w.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['x.w.example.org. 3600 CNAME host.example.org.', 'host.example.org. 3600 A 192.0.2.3'],
  });
  tt.end();
});

t.test('delegations and DS (RFC 1034 §4.3.2 step 3.b, RFC 4035 §3.1.4.1)', (tt) => {
  const zones = new ZoneSet([zoneFrom('example.org.', TRICKY)]);
  const secNs = [
    'sec.example.org. 3600 NS ns.other.example.com.',
    'sec.example.org. 3600 NS ns.sec.example.org.',
  ];
  const glue = ['ns.sec.example.org. 3600 A 192.0.2.53'];
  const ref = check(tt, zones, 'www.sec.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: false,
    authority: secNs,
    additional: glue,
  });
  tt.equal(ref.requiredAdditional, 1, 'in-domain glue is required (RFC 9471)');
  // At the cut itself, NS and A are referrals too.
  check(tt, zones, 'sec.example.org.', 'NS', {
    rcode: RCODE.NOERROR,
    aa: false,
    authority: secNs,
    additional: glue,
  });
  check(tt, zones, 'sec.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: false,
    authority: secNs,
    additional: glue,
  });
  // DS at the cut is the parent's data: authoritative answer.
  check(tt, zones, 'sec.example.org.', 'DS', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: [
      'sec.example.org. 3600 DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF',
    ],
  });
  // The glue itself is not authoritative data: a query for it gets the referral.
  check(tt, zones, 'ns.sec.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: false,
    authority: secNs,
    additional: glue,
  });
  // A delegation whose NS is elsewhere in the parent: that address is sibling glue, not required.
  const ins = check(tt, zones, 'a.ins.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: false,
    authority: ['ins.example.org. 3600 NS ns1.example.org.'],
    additional: ['ns1.example.org. 3600 A 192.0.2.1'],
  });
  tt.equal(ins.requiredAdditional, 0);
  tt.end();
});

t.test('DNAME (RFC 6672)', (tt) => {
  const zones = new ZoneSet([zoneFrom('example.org.', TRICKY)]);
  // Below the DNAME owner: the DNAME plus a synthesized CNAME with the DNAME's TTL.
  check(tt, zones, 'a.b.d.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['d.example.org. 3600 DNAME example.net.', 'a.b.d.example.org. 3600 CNAME a.b.example.net.'],
  });
  // At the owner itself the DNAME does not apply.
  check(tt, zones, 'd.example.org.', 'DNAME', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['d.example.org. 3600 DNAME example.net.'],
  });
  check(tt, zones, 'd.example.org.', 'A', { rcode: RCODE.NOERROR, aa: true, authority: [SOA_ORG] });
  // A substitution longer than 255 octets is YXDOMAIN (RFC 6672 §2.2).
  const longLabel = 'x'.repeat(63);
  const a = resolve(zones, nameFromText(`${longLabel}.${longLabel}.long.example.org.`), TYPE.A);
  tt.equal(a.rcode, RCODE.YXDOMAIN);
  tt.equal(a.answer.length, 1, 'only the DNAME is returned');
  tt.equal(a.answer[0]?.type, TYPE.DNAME);
  tt.end();
});

t.test('ANY (RFC 8482): one RRset, the lowest type number', (tt) => {
  const zones = new ZoneSet([zoneFrom('example.org.', TRICKY)]);
  check(tt, zones, 'mail.example.org.', 'ANY', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['mail.example.org. 3600 A 192.0.2.2'],
  });
  // At a CNAME, ANY returns the CNAME and does not follow it.
  check(tt, zones, 'www.example.org.', 'ANY', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['www.example.org. 3600 CNAME web.example.org.'],
  });
  check(tt, zones, 'nope.example.org.', 'ANY', { rcode: RCODE.NXDOMAIN, aa: true, authority: [SOA_ORG] });
  tt.end();
});

t.test('several zones: the deepest enclosing zone answers; outside all zones → REFUSED', (tt) => {
  const parent = zoneFrom('example.org.', TRICKY);
  const child = zoneFrom(
    'sec.example.org.',
    `$ORIGIN sec.example.org.
$TTL 300
@ SOA ns hostmaster 1 3600 900 604800 60
@ NS ns
ns A 192.0.2.53
www A 192.0.2.54
`,
  );
  const zones = new ZoneSet([parent, child]);
  check(tt, zones, 'www.sec.example.org.', 'A', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['www.sec.example.org. 300 A 192.0.2.54'],
  });
  // DS at the child apex is answered by the parent, authoritatively.
  const ds = check(tt, zones, 'sec.example.org.', 'DS', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: [
      'sec.example.org. 3600 DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF',
    ],
  });
  tt.equal(ds.zone, parent);
  // Other types at the child apex come from the child.
  check(tt, zones, 'SEC.example.org.', 'NS', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['sec.example.org. 300 NS ns.sec.example.org.'],
    additional: ['ns.sec.example.org. 300 A 192.0.2.53'],
  });
  const refused = check(tt, zones, 'example.com.', 'A', { rcode: RCODE.REFUSED, aa: false });
  tt.equal(refused.zone, null);
  // Names are matched case-insensitively (RFC 4343).
  check(tt, zones, 'HoSt.ExAmPlE.oRg.', 'A', {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: ['host.example.org. 3600 A 192.0.2.3'],
  });
  tt.end();
});

t.test('CNAME chains stop at 5 CNAME records; data after the 5th is still given (like Knot)', (tt) => {
  const lines = ['$ORIGIN chain.example.', '$TTL 60', '@ SOA ns hm 1 2 3 4 5', '@ NS ns', 'ns A 192.0.2.1'];
  for (let i = 1; i <= 7; i++) lines.push(`c${i} CNAME c${i + 1}`);
  lines.push('c8 A 192.0.2.8');
  const zones = new ZoneSet([zoneFrom('chain.example.', `${lines.join('\n')}\n`)]);
  const a = resolve(zones, nameFromText('c1.chain.example.'), TYPE.A);
  tt.equal(a.rcode, RCODE.NOERROR);
  tt.same(
    a.answer.map((s) => nameToText(s.owner)),
    ['c1.chain.example.', 'c2.chain.example.', 'c3.chain.example.', 'c4.chain.example.', 'c5.chain.example.'],
  );
  tt.ok(
    a.answer.every((s) => s.type === TYPE.CNAME),
    'no A: the chain was cut before c8',
  );
  const five = resolve(zones, nameFromText('c3.chain.example.'), TYPE.A);
  tt.equal(five.answer.length, 6, 'c3..c7: five CNAMEs, then the A at c8');
  tt.equal(five.answer[5]?.type, TYPE.A);
  tt.end();
});
