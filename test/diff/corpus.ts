/**
 * The differential corpus: generated from the zones (every owner × the types that matter there, plus
 * names that do not exist beside and below each owner), and a hand list of cases that found bugs or
 * that the RFCs single out. It grows with every bug found.
 */
import { typeToText } from '../../src/wire/constants.js';
import { nameToText } from '../../src/wire/name.js';
import type { ParsedZone } from '../../src/zone/types.js';

export interface Case {
  name: string;
  type: string;
}

const COMMON = ['A', 'AAAA', 'MX', 'TXT', 'NS', 'CNAME', 'SOA', 'DS', 'ANY'];

export const HAND_CASES: Case[] = [
  { name: 'x.wild.tricky.test.', type: 'A' },
  { name: 'x.y.wild.tricky.test.', type: 'TXT' },
  { name: 'sub.wild.tricky.test.', type: 'TXT' },
  { name: 'q.sub.wild.tricky.test.', type: 'A' },
  { name: 'z.cn.tricky.test.', type: 'A' },
  { name: 'z.cn.tricky.test.', type: 'CNAME' },
  { name: 'z.cn.tricky.test.', type: 'ANY' },
  { name: 'q.a.tricky.test.', type: 'A' },
  { name: 'deep.a.tricky.test.', type: 'A' },
  { name: 'q.deep.a.tricky.test.', type: 'A' },
  { name: 'a.b.dn.tricky.test.', type: 'A' },
  { name: 'a.b.dn.tricky.test.', type: 'CNAME' },
  { name: 'x.dnin.tricky.test.', type: 'A' },
  { name: 'y.dnin.tricky.test.', type: 'A' },
  { name: 'a.deleg.tricky.test.', type: 'A' },
  { name: 'deleg.tricky.test.', type: 'DS' },
  { name: 'deleg.tricky.test.', type: 'NS' },
  { name: 'ns.deleg.tricky.test.', type: 'A' },
  { name: 'x.nog.tricky.test.', type: 'A' },
  { name: 'x.sib.tricky.test.', type: 'A' },
  { name: 'child.tricky.test.', type: 'DS' },
  { name: 'child.tricky.test.', type: 'NS' },
  { name: 'child.tricky.test.', type: 'SOA' },
  { name: 'www.child.tricky.test.', type: 'A' },
  { name: 'nope.child.tricky.test.', type: 'A' },
  { name: 'toref.tricky.test.', type: 'A' },
  { name: 'c1.tricky.test.', type: 'A' },
  { name: 'c2.tricky.test.', type: 'A' },
  { name: 'loop1.tricky.test.', type: 'A' },
  { name: 'towild.tricky.test.', type: 'TXT' },
  { name: 'mxwild.tricky.test.', type: 'MX' },
  { name: 'srv._tcp.tricky.test.', type: 'SRV' },
  { name: 'srv2._tcp.tricky.test.', type: 'SRV' },
  { name: '_tcp.tricky.test.', type: 'A' },
  { name: 'WwW.TrIcKy.TeSt.', type: 'A' },
  { name: 'mixed.tricky.test.', type: 'A' },
  { name: 'esc\\.aped.tricky.test.', type: 'A' },
  { name: 'unk.tricky.test.', type: 'TYPE65280' },
  { name: 'svc.tricky.test.', type: 'HTTPS' },
  { name: 'host3.example.', type: 'MX' },
  { name: 'host3.example.', type: 'A' },
  { name: 'foo.bar.example.', type: 'TXT' },
  { name: 'host1.example.', type: 'MX' },
  { name: 'sub.*.example.', type: 'MX' },
  { name: '_telnet._tcp.host1.example.', type: 'SRV' },
  { name: 'host.subdel.example.', type: 'A' },
  { name: 'ghost.*.example.', type: 'MX' },
  { name: 'www.example.com.', type: 'A' },
  { name: 'shop.example.com.', type: 'AAAA' },
  { name: 'x.apps.example.com.', type: 'A' },
  { name: 'x.y.apps.example.com.', type: 'TXT' },
  { name: 'host.child.example.com.', type: 'A' },
  { name: 'x.cdn.example.net.', type: 'A' },
  { name: 'example.org.', type: 'A' },
  { name: 'com.', type: 'NS' },
  { name: '.', type: 'NS' },
  // issue 10: the same DNAME twice in a chain; SVCB/HTTPS additionals; meta and reserved qtypes;
  // the DNSSEC qtypes at the apex, a leaf and a delegation of an unsigned zone
  { name: 'x.dd.tricky.test.', type: 'A' },
  { name: 'x.dd.tricky.test.', type: 'CNAME' },
  { name: 'svc2.tricky.test.', type: 'HTTPS' },
  { name: 'svcalias.tricky.test.', type: 'HTTPS' },
  { name: '_dns.ns1.tricky.test.', type: 'SVCB' },
  ...['TYPE0', 'OPT', 'TYPE249', 'TYPE250', 'TYPE128', 'TYPE253', 'TYPE254', 'TYPE65535'].map((type) => ({
    name: 'www.tricky.test.',
    type,
  })),
  { name: 'nope.tricky.test.', type: 'TYPE0' },
  { name: 'example.org.', type: 'TYPE0' },
  ...['tricky.test.', 'host.tricky.test.', 'deleg.tricky.test.', 'child.tricky.test.'].flatMap((name) =>
    ['RRSIG', 'NSEC', 'NSEC3', 'DNSKEY', 'DS', 'NSEC3PARAM', 'CDS'].map((type) => ({ name, type })),
  ),
];

/** Every owner × common types and its own type, plus a missing name below and beside each owner. */
export function generateCases(zones: ParsedZone[]): Case[] {
  const out: Case[] = [];
  const seen = new Set<string>();
  const add = (c: Case): void => {
    const k = `${c.name.toLowerCase()} ${c.type}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(c);
    }
  };
  for (const z of zones) {
    for (const r of z.records) {
      const name = nameToText(r.owner);
      add({ name, type: typeToText(r.type) });
      for (const t of COMMON) add({ name, type: t });
      if (!name.startsWith('*')) add({ name: `nx-below.${name}`, type: 'A' });
    }
  }
  for (const c of HAND_CASES) add(c);
  return out;
}
