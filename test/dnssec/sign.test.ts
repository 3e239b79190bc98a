/**
 * The zone signer. The judges are BIND's dnssec-verify and ldns-verify-zone on the exported zone (for
 * ECDSAP256SHA256 and ED25519, NSEC, NSEC3 and NSEC3 opt-out, a CSK and a KSK+ZSK pair), with negative
 * controls so the check can fail; NSEC3 hashes are the RFC 5155 Appendix A values; the incremental
 * test counts the signatures made when one record of a 100,000-record zone changes.
 */
import { linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runSign, type SignOptions } from '../../src/cli/sign.js';
import {
  ALGORITHM,
  type Algorithm,
  type DnssecKey,
  dsFromDnskey,
  generateKey,
  parseRrsig,
  verifyRRset,
  writeKeyFiles,
} from '../../src/dnssec/keys.js';
import {
  DEFAULT_POLICY,
  type DnssecPolicy,
  makePolicy,
  SignatureCache,
  signedZoneText,
  signZone,
} from '../../src/dnssec/signzone.js';
import { CLASS, TYPE, typeToText } from '../../src/wire/constants.js';
import { canonicalCompare, type Name, nameFromText, nameToText } from '../../src/wire/name.js';
import { base32hexEncode, rdataFromText, tokenize, typesFromBitmap } from '../../src/wire/rdata.js';
import { denialNsec, denialNsec3, nsec3Hash } from '../../src/zone/dnssec.js';
import { loadZoneFile } from '../../src/zone/load.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import type { ZoneRecord } from '../../src/zone/types.js';
import { buildZone, findNode, type RRset, walk, type Zone, type ZoneNode } from '../../src/zone/zone.js';
import { needTool, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const N = (s: string): Name => nameFromText(s);
const FIXTURE = 'test/fixtures/dnssec/example.org.zone';
const EXAMPLE_COM = 'zones/example.com.yaml';
const NOW = Math.floor(Date.now() / 1000);

function load(path: string): Zone {
  const res = loadZoneFile(path);
  if (!res.zone)
    throw new Error(`${path} does not load: ${res.diagnostics.map((d) => d.message).join('; ')}`);
  return res.zone;
}

/** One CSK, or a KSK + ZSK pair. */
function makeKeys(zone: Name, alg: Algorithm, split: boolean): DnssecKey[] {
  return split
    ? [generateKey(zone, alg, 'ksk'), generateKey(zone, alg, 'zsk')]
    : [generateKey(zone, alg, 'csk')];
}

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** dnssec-verify (with -z when there is no ZSK: see keys.test.ts) and ldns-verify-zone. */
function verifyBoth(
  file: string,
  origin: string,
  csk: boolean,
): { bind: number | null; ldns: number | null; out: string } {
  const b = run('dnssec-verify', [...(csk ? ['-z'] : []), '-o', origin, file]);
  const l = run('ldns-verify-zone', [file]);
  return { bind: b.status, ldns: l.status, out: `dnssec-verify: ${b.out}\nldns-verify-zone: ${l.out}` };
}

function allSets(zone: Zone): { set: RRset; node: ZoneNode | null }[] {
  const out: { set: RRset; node: ZoneNode | null }[] = [];
  walk(zone.apex, (node) => {
    for (const set of node.rrsets.values()) out.push({ set, node });
  });
  for (const e of zone.dnssec?.nsec3?.chain ?? []) out.push({ set: e.nsec3, node: null });
  return out;
}

function countSigs(zone: Zone): number {
  return allSets(zone).reduce((n, { set }) => n + (set.sigs?.length ?? 0), 0);
}

t.test('RFC 5155 Appendix A: NSEC3 hashes (SHA-1, salt aabbccdd, 12 iterations)', (tt) => {
  // The "H(name) = ..." comments of the example zone in RFC 5155 Appendix A.
  const vectors: [string, string][] = [
    ['example', '0p9mhaveqvm6t7vbl5lop2u3t2rp3tom'],
    ['a.example', '35mthgpgcu1qg68fab165klnsnk3dpvl'],
    ['ai.example', 'gjeqe526plbf1g8mklp59enfd789njgi'],
    ['ns1.example', '2t7b4g4vsa5smi47k61mv5bv1a22bojr'],
    ['ns2.example', 'q04jkcevqvmu85r014c7dkba38o0ji5r'],
    ['w.example', 'k8udemvp1j2f7eg6jebps17vp3n8i58h'],
    ['*.w.example', 'r53bq7cc2uvmubfu5ocmm6pers9tk9en'],
    ['x.w.example', 'b4um86eghhds6nea196smvmlo4ors995'],
    ['y.w.example', 'ji6neoaepv8b5o6k4ev33abha8ht9fgc'],
    ['x.y.w.example', '2vptu5timamqttgl4luu9kg21e0aor3s'],
    ['xx.example', 't644ebqk9bibcna874givr6joj62mlhv'],
    ['2t7b4g4vsa5smi47k61mv5bv1a22bojr.example', 'kohar7mbb8dc2ce8a9qvl8hon4k53uhi'],
    ['c.x.w.example', '0va5bpr2ou0vk0lbqeeljri88laipsfh'],
    ['*.x.w.example', '92pqneegtaue7pjatc3l3qnk738c6v5m'],
  ];
  const salt = Uint8Array.from(Buffer.from('aabbccdd', 'hex'));
  for (const [name, hash] of vectors) {
    tt.equal(base32hexEncode(nsec3Hash(N(`${name}.`), salt, 12)).toLowerCase(), hash, `H(${name})`);
  }
  tt.equal(
    base32hexEncode(nsec3Hash(N('X.W.Example.'), salt, 12)).toLowerCase(),
    'b4um86eghhds6nea196smvmlo4ors995',
    'the name is lower-cased before hashing',
  );
  tt.end();
});

t.test('signed zones pass dnssec-verify and ldns-verify-zone; broken ones fail them', (tt) => {
  if (!needTool(tt, 'dnssec-verify', 'bind9-utils')) return tt.end();
  if (!needTool(tt, 'ldns-verify-zone', 'ldnsutils')) return tt.end();
  const dir = tmpDir(tt);
  const algs: [Algorithm, string, boolean][] = [
    [ALGORITHM.ECDSAP256SHA256, 'ECDSAP256SHA256 CSK', false],
    [ALGORITHM.ED25519, 'ED25519 KSK+ZSK', true],
    [ALGORITHM.RSASHA256, 'RSASHA256 CSK', false],
  ];
  const modes: [string, Partial<DnssecPolicy>][] = [
    ['NSEC', {}],
    ['NSEC3', { denial: 'nsec3' }],
    ['NSEC3 opt-out', { denial: 'nsec3', nsec3OptOut: true }],
    ['NSEC + CDS', { cds: true }],
  ];
  let n = 0;
  for (const path of [EXAMPLE_COM, FIXTURE]) {
    for (const [alg, algLabel, split] of algs) {
      for (const [mode, settings] of modes) {
        const zone = load(path);
        const origin = zone.originText;
        const label = `${origin} ${algLabel} ${mode}`;
        const keys = makeKeys(zone.origin, alg, split);
        const res = signZone(zone, keys, makePolicy(settings), { now: NOW });
        tt.equal(res.reused, 0, `${label}: nothing to reuse without a cache`);
        tt.equal(res.signatures, countSigs(zone), `${label}: every signature counted`);
        const text = signedZoneText(zone);
        const file = join(dir, `signed-${n++}.zone`);
        writeFileSync(file, text);
        const v = verifyBoth(file, origin, !split);
        tt.equal(v.bind, 0, `${label}: dnssec-verify passes\n${v.out}`);
        tt.equal(v.ldns, 0, `${label}: ldns-verify-zone passes\n${v.out}`);
        if (mode !== 'NSEC' && mode !== 'NSEC3') continue;

        // Negative control 1: one signature with a flipped byte.
        const lines = text.split('\n');
        const i = lines.findIndex((l) => / IN RRSIG MX /.test(l));
        tt.ok(i > 0, `${label}: the MX RRSIG is in the file`);
        const words = lines[i]!.split(' ');
        const sig = Buffer.from(words[words.length - 1]!, 'base64');
        sig[10] = sig[10]! ^ 0x01;
        words[words.length - 1] = sig.toString('base64');
        const broken = [...lines];
        broken[i] = words.join(' ');
        const bad = join(dir, `broken-${n}.zone`);
        writeFileSync(bad, broken.join('\n'));
        const vb = verifyBoth(bad, origin, !split);
        tt.not(vb.bind, 0, `${label}: a flipped signature byte fails dnssec-verify`);
        tt.not(vb.ldns, 0, `${label}: a flipped signature byte fails ldns-verify-zone`);

        // Negative control 2: a hole in the denial chain (one NSEC/NSEC3 and its RRSIG left out).
        const denialType = mode === 'NSEC' ? 'NSEC' : 'NSEC3';
        const victim = lines.find((l) => l.includes(` IN ${denialType} `) && !l.startsWith(origin))!;
        const owner = victim.split(' ')[0]!;
        const holed = lines.filter(
          (l) =>
            !(
              l.startsWith(`${owner} `) &&
              (l.includes(` IN ${denialType} `) || l.includes(` RRSIG ${denialType} `))
            ),
        );
        tt.equal(
          holed.length,
          lines.length - 1 - keysSigning(keys, false),
          `${label}: ${owner} ${denialType} removed`,
        );
        const hole = join(dir, `hole-${n}.zone`);
        writeFileSync(hole, holed.join('\n'));
        const vh = verifyBoth(hole, origin, !split);
        tt.not(vh.bind, 0, `${label}: a missing ${denialType} fails dnssec-verify`);
        tt.not(vh.ldns, 0, `${label}: a missing ${denialType} fails ldns-verify-zone`);
      }
    }
  }
  tt.end();
});

/** How many keys sign a non-DNSKEY RRset (false) or the DNSKEY RRset (true). */
function keysSigning(keys: DnssecKey[], dnskey: boolean): number {
  const zsk = keys.filter((k) => k.role !== 'ksk').length;
  const sep = keys.filter((k) => k.role !== 'zsk').length;
  return dnskey ? sep : zsk;
}

t.test('what is signed, by which key, with which times; NSEC bitmaps and TTLs', (tt) => {
  const zone = load(FIXTURE);
  const [ksk, zsk] = makeKeys(zone.origin, ALGORITHM.ED25519, true) as [DnssecKey, DnssecKey];
  const policy = makePolicy({ cds: true });
  signZone(zone, [ksk, zsk], policy, { now: NOW });
  const at = (name: string): ZoneNode => findNode(zone, N(name))!;
  const sepTypes = new Set<number>([TYPE.DNSKEY, TYPE.CDS, TYPE.CDNSKEY]);
  const signed = (name: string, type: number): boolean => at(name).rrsets.get(type)?.sigs !== undefined;

  // DNSKEY, CDS, CDNSKEY at the apex.
  const dnskey = at('example.org.').rrsets.get(TYPE.DNSKEY)!;
  tt.equal(dnskey.ttl, zone.soa.ttl, 'DNSKEY TTL = SOA TTL');
  tt.same(
    dnskey.rdatas.map((r) => Buffer.from(r).toString('hex')).sort(),
    [ksk, zsk].map((k) => Buffer.from(k.dnskey).toString('hex')).sort(),
  );
  const cds = at('example.org.').rrsets.get(TYPE.CDS)!;
  tt.same(cds.rdatas, [dsFromDnskey(zone.origin, ksk.dnskey, 2)], 'CDS: SHA-256 DS of the KSK only');
  tt.same(at('example.org.').rrsets.get(TYPE.CDNSKEY)!.rdatas, [ksk.dnskey], 'CDNSKEY: the KSK only');

  // Which RRsets carry signatures.
  tt.ok(signed('example.org.', TYPE.SOA));
  tt.ok(signed('example.org.', TYPE.NS), 'apex NS is signed');
  tt.notOk(signed('secure.example.org.', TYPE.NS), 'delegation NS is not signed');
  tt.ok(signed('secure.example.org.', TYPE.DS), 'DS at the cut is signed');
  tt.ok(signed('secure.example.org.', TYPE.NSEC), 'NSEC at the cut is signed');
  tt.notOk(signed('ns1.secure.example.org.', TYPE.A), 'glue is not signed');
  tt.notOk(signed('ns.insecure.example.org.', TYPE.AAAA), 'glue is not signed');
  tt.notOk(at('ns.insecure.example.org.').rrsets.has(TYPE.NSEC), 'glue has no NSEC');
  tt.ok(signed('*.wild.example.org.', TYPE.TXT), 'wildcard data is signed');
  tt.ok(signed('redirect.example.org.', TYPE.DNAME), 'DNAME is signed');
  tt.notOk(at('c.ent.example.org.').rrsets.has(TYPE.NSEC), 'an empty non-terminal has no NSEC');

  // Keys, times, labels: every signature verifies with exactly the right key.
  let checked = 0;
  for (const { set, node } of allSets(zone)) {
    if (!set.sigs) continue;
    const sep = node === zone.apex && sepTypes.has(set.type);
    const key = sep ? ksk : zsk;
    tt.equal(set.sigs.length, 1, `${nameToText(set.owner)} ${typeToText(set.type)}: one signature`);
    const f = parseRrsig(set.sigs[0]!);
    tt.equal(
      f.keyTag,
      key.tag,
      `${nameToText(set.owner)} ${typeToText(set.type)}: signed by the ${sep ? 'KSK' : 'ZSK'}`,
    );
    tt.equal(f.inception, NOW - 3600, 'inception an hour ago');
    tt.ok(
      f.expiration <= NOW + policy.validity && f.expiration >= NOW + policy.validity - policy.jitter,
      'expiration = now + validity - jitter',
    );
    tt.equal(f.originalTtl, set.ttl, 'original TTL = RRset TTL');
    tt.ok(verifyRRset(set, set.sigs[0]!, key.dnskey, { now: NOW, signer: zone.origin }), 'verifies');
    checked++;
  }
  tt.ok(checked >= 25, `${checked} signatures checked`);
  tt.equal(
    parseRrsig(at('*.wild.example.org.').rrsets.get(TYPE.A)!.sigs![0]!).labels,
    3,
    'wildcard RRSIG labels',
  );
  tt.same(zone.negativeSoa.sigs, zone.soa.sigs, 'the negative-answer SOA carries the SOA signatures');

  // The NSEC chain: canonical order (RFC 4034 §6.1), TTL, bitmaps, wrap-around.
  const chain = zone.dnssec!.nsecChain!.toArray();
  tt.same(
    chain.map((e) => nameToText(e.owner).toLowerCase()),
    [
      'example.org.',
      '*.example.org.',
      '_sip._tcp.example.org.',
      'alias.example.org.',
      'a.b.c.ent.example.org.',
      'x.ent.example.org.',
      'insecure.example.org.',
      'mail.example.org.',
      'ns1.example.org.',
      'redirect.example.org.',
      'secure.example.org.',
      'deleg.deep.sub.example.org.',
      '*.wild.example.org.',
      'www.example.org.',
    ],
    'owners in canonical order; no glue, no empty non-terminals',
  );
  const types = (name: string): string[] =>
    typesFromBitmap(nsecOf(at(name).rrsets.get(TYPE.NSEC)!).bitmap).map(typeToText);
  tt.same(types('example.org.'), ['NS', 'SOA', 'MX', 'TXT', 'RRSIG', 'NSEC', 'DNSKEY', 'CDS', 'CDNSKEY']);
  tt.same(types('insecure.example.org.'), ['NS', 'RRSIG', 'NSEC'], 'insecure delegation: NS RRSIG NSEC');
  tt.same(types('secure.example.org.'), ['NS', 'DS', 'RRSIG', 'NSEC'], 'secure delegation: NS DS RRSIG NSEC');
  tt.same(types('www.example.org.'), ['CNAME', 'RRSIG', 'NSEC']);
  tt.equal(
    nameToText(nsecOf(chain[chain.length - 1]!.nsec).next),
    'example.org.',
    'the last NSEC points at the apex',
  );
  tt.equal(nameToText(nsecOf(chain[3]!.nsec).next), 'a.b.c.ent.example.org.');
  for (const e of chain) {
    tt.equal(e.nsec.ttl, 300, 'NSEC TTL = min(SOA MINIMUM 300, SOA TTL 3600) (RFC 9077)');
    tt.equal(findNode(zone, e.owner)!.rrsets.get(TYPE.NSEC), e.nsec, 'the chain holds the trie RRsets');
  }
  tt.equal(zone.dnssec!.nsec3, null);
  tt.end();
});

function nsecOf(set: RRset): { next: Name; bitmap: Uint8Array } {
  const rd = set.rdatas[0]!;
  let p = 0;
  while (rd[p] !== 0) p += rd[p]! + 1;
  return { next: rd.subarray(0, p + 1), bitmap: rd.subarray(p + 1) };
}

function nsec3Of(set: RRset): { flags: number; next: Uint8Array; types: number[] } {
  const rd = set.rdatas[0]!;
  const saltLen = rd[4]!;
  const hashLen = rd[5 + saltLen]!;
  const next = rd.subarray(6 + saltLen, 6 + saltLen + hashLen);
  return { flags: rd[1]!, next, types: typesFromBitmap(rd.subarray(6 + saltLen + hashLen)) };
}

t.test('NSEC3: empty non-terminals, opt-out, parameters', (tt) => {
  const hashOf = (name: string): string =>
    Buffer.from(nsec3Hash(N(name), new Uint8Array(0), 0)).toString('hex');
  for (const optOut of [false, true]) {
    const zone = load(FIXTURE);
    signZone(
      zone,
      makeKeys(zone.origin, ALGORITHM.ECDSAP256SHA256, false),
      makePolicy({ denial: 'nsec3', nsec3OptOut: optOut }),
      {
        now: NOW,
      },
    );
    const n3 = zone.dnssec!.nsec3!;
    tt.equal(zone.dnssec!.nsecChain, null);
    tt.same([...n3.params.rdatas[0]!], [1, 0, 0, 0, 0], 'NSEC3PARAM 1 0 0 - (RFC 9276)');
    tt.equal(zone.apex.rrsets.get(TYPE.NSEC3PARAM), n3.params, 'NSEC3PARAM is at the apex');
    tt.ok(n3.params.sigs?.length, 'NSEC3PARAM is signed');
    const byHash = new Map(n3.chain.toArray().map((e) => [Buffer.from(e.hash).toString('hex'), e.nsec3]));
    const typesAt = (name: string): string[] | undefined => {
      const set = byHash.get(hashOf(name));
      return set && nsec3Of(set).types.map(typeToText);
    };
    const label = optOut ? 'opt-out' : 'no opt-out';
    for (const ent of ['c.ent.example.org.', 'b.c.ent.example.org.', 'ent.example.org.']) {
      tt.same(typesAt(ent), [], `${label}: empty non-terminal ${ent} has an NSEC3 with an empty bitmap`);
    }
    tt.same(typesAt('secure.example.org.'), ['NS', 'DS', 'RRSIG'], `${label}: secure delegation`);
    tt.same(typesAt('insecure.example.org.'), optOut ? undefined : ['NS'], `${label}: insecure delegation`);
    tt.same(typesAt('deleg.deep.sub.example.org.'), optOut ? undefined : ['NS']);
    tt.same(typesAt('example.org.'), ['NS', 'SOA', 'MX', 'TXT', 'RRSIG', 'DNSKEY', 'NSEC3PARAM']);
    tt.equal(typesAt('ns1.secure.example.org.'), undefined, 'glue has no NSEC3');
    tt.equal(n3.chain.length, optOut ? 19 : 21, `${label}: chain length`);
    for (let i = 0; i < n3.chain.length; i++) {
      const e = n3.chain.at(i)!;
      const next = n3.chain.at((i + 1) % n3.chain.length)!;
      const f = nsec3Of(e.nsec3);
      tt.equal(f.flags, optOut ? 1 : 0);
      tt.same(f.next, next.hash, 'next hashed owner, wrapping');
      if (i > 0) tt.ok(Buffer.compare(n3.chain.at(i - 1)!.hash, e.hash) < 0, 'sorted by hash');
      tt.equal(nameToText(e.nsec3.owner), `${base32hexEncode(e.hash).toLowerCase()}.example.org.`);
      tt.equal(e.nsec3.ttl, 300);
      tt.ok(e.nsec3.sigs?.length === 1, 'signed');
      tt.notOk(findNode(zone, e.nsec3.owner), 'not in the trie');
    }
  }
  tt.end();
});

t.test('denialNsec: match and covering, before the first owner, between, after the last, exact', (tt) => {
  const zone = load(FIXTURE);
  tt.same(denialNsec(zone, N('www.example.org.')), { match: null, covering: null }, 'unsigned zone: nothing');
  signZone(zone, makeKeys(zone.origin, ALGORITHM.ED25519, false), DEFAULT_POLICY, { now: NOW });
  const nsecAt = (name: string): RRset => findNode(zone, N(name))!.rrsets.get(TYPE.NSEC)!;
  const chain = zone.dnssec!.nsecChain!.toArray();
  const last = chain[chain.length - 1]!.nsec;
  const cases: [string, RRset | null, RRset | null][] = [
    ['example.org.', nsecAt('example.org.'), null],
    ['MAIL.Example.ORG.', nsecAt('mail.example.org.'), null],
    ['www.example.org.', last, null],
    ['secure.example.org.', nsecAt('secure.example.org.'), null],
    ['*.wild.example.org.', nsecAt('*.wild.example.org.'), null],
    ['org.', null, last], // before the first owner: the last NSEC wraps around to the apex
    ['a.example.org.', null, nsecAt('_sip._tcp.example.org.')], // '_' (0x5f) < 'a' (0x61); a < alias
    ['b.example.org.', null, nsecAt('alias.example.org.')],
    ['c.ent.example.org.', null, nsecAt('alias.example.org.')], // empty non-terminal
    ['y.ent.example.org.', null, nsecAt('x.ent.example.org.')],
    ['ns.insecure.example.org.', null, nsecAt('insecure.example.org.')], // below a cut
    ['nx.wild.example.org.', null, nsecAt('*.wild.example.org.')],
    ['zzz.example.org.', null, last], // after the last owner
    ['a.www.example.org.', null, last],
  ];
  for (const [name, match, covering] of cases) {
    const d = denialNsec(zone, N(name));
    tt.equal(d.match, match, `${name}: match`);
    tt.equal(d.covering, covering, `${name}: covering`);
    if (d.covering) {
      const owner = d.covering.owner;
      const next = nsecOf(d.covering).next;
      const wraps = canonicalCompare(next, owner) <= 0;
      const n = N(name);
      tt.ok(
        wraps
          ? canonicalCompare(owner, n) < 0 || canonicalCompare(n, next) < 0
          : canonicalCompare(owner, n) < 0 && canonicalCompare(n, next) < 0,
        `${name}: owner < name < next`,
      );
    }
  }
  tt.same(denialNsec3(zone, N('www.example.org.')), { match: null, covering: null }, 'NSEC zone: no NSEC3');
  tt.end();
});

t.test('denialNsec3: match and covering, before the first hash, between, after the last, exact', (tt) => {
  const zone = load(FIXTURE);
  signZone(zone, makeKeys(zone.origin, ALGORITHM.ED25519, false), makePolicy({ denial: 'nsec3' }), {
    now: NOW,
  });
  const chain = zone.dnssec!.nsec3!.chain.toArray();
  const first = chain[0]!.hash;
  const last = chain[chain.length - 1]!;
  const h = (name: string): Uint8Array => nsec3Hash(N(name), new Uint8Array(0), 0);
  // Existing names (with data, or empty non-terminals): exact matches, case-insensitive.
  for (const name of [
    'example.org.',
    'WWW.example.org.',
    'c.ent.example.org.',
    'secure.example.org.',
    '*.wild.example.org.',
  ]) {
    const d = denialNsec3(zone, N(name));
    tt.ok(d.match, `${name}: match`);
    tt.equal(d.covering, null);
    tt.equal(
      nameToText(d.match!.owner),
      `${base32hexEncode(h(name)).toLowerCase()}.example.org.`,
      `${name}: owner`,
    );
  }
  // Names that don't exist: find some whose hash falls before the first and after the last.
  let before: string | null = null;
  let after: string | null = null;
  const between: string[] = [];
  for (let i = 0; i < 20000 && (before === null || after === null || between.length < 20); i++) {
    const name = `nx${i}.example.org.`;
    const x = h(name);
    if (Buffer.compare(x, first) < 0) before ??= name;
    else if (Buffer.compare(x, last.hash) > 0) after ??= name;
    else if (between.length < 20) between.push(name);
  }
  tt.ok(before && after, `found ${before} before the first hash and ${after} after the last`);
  tt.equal(
    denialNsec3(zone, N(before!)).covering,
    last.nsec3,
    'before the first hash: the last NSEC3 covers (wrap)',
  );
  tt.equal(denialNsec3(zone, N(after!)).covering, last.nsec3, 'after the last hash: the last NSEC3 covers');
  for (const name of between) {
    const x = h(name);
    const d = denialNsec3(zone, N(name));
    tt.equal(d.match, null);
    // Independently: the entry with the greatest hash below x, by a linear scan.
    let expect = chain[0]!;
    for (const e of chain) if (Buffer.compare(e.hash, x) < 0) expect = e;
    tt.equal(d.covering, expect.nsec3, `${name}: covered by its predecessor`);
    const f = nsec3Of(d.covering!);
    tt.ok(Buffer.compare(expect.hash, x) < 0 && Buffer.compare(x, f.next) < 0, `${name}: hash < H < next`);
  }
  tt.same(denialNsec(zone, N('www.example.org.')), { match: null, covering: null }, 'NSEC3 zone: no NSEC');
  tt.end();
});

// ---------------------------------------------------------------------------------------------
// Incremental signing and refresh

const POS = { file: 'generated', line: 1, col: 1 };

/** A zone of `count` records: SOA, NS, the name server's A, and A records h0, h1, ... */
function generated(
  origin: Name,
  count: number,
  serial: number,
  edit: (i: number) => Uint8Array | null,
): Zone {
  const rd = (type: number, text: string): Uint8Array => rdataFromText(type, tokenize(text), origin);
  const rec = (owner: Name, type: number, rdata: Uint8Array): ZoneRecord => ({
    owner,
    type,
    class: CLASS.IN,
    ttl: 3600,
    rdata,
    pos: POS,
  });
  const records: ZoneRecord[] = [
    rec(origin, TYPE.SOA, rd(TYPE.SOA, `ns1 hostmaster ${serial} 7200 3600 1209600 300`)),
    rec(origin, TYPE.NS, rd(TYPE.NS, 'ns1')),
    rec(nameFromText('ns1', origin), TYPE.A, Uint8Array.of(192, 0, 2, 53)),
  ];
  for (let i = 0; records.length < count; i++) {
    const a = edit(i);
    if (a) records.push(rec(nameFromText(`h${i}`, origin), TYPE.A, a));
  }
  const res = buildZone({ origin, file: 'generated', records, diagnostics: [] });
  if (!res.zone) throw new Error(res.diagnostics.map((d) => d.message).join('; '));
  return res.zone;
}

const addr = (i: number): Uint8Array => Uint8Array.of(10, (i >> 16) & 255, (i >> 8) & 255, i & 255);

t.test('incremental: one changed record in a 100,000-record zone re-signs only what changed', (tt) => {
  const origin = N('big.example.');
  const key = generateKey(origin, ALGORITHM.ED25519, 'csk');
  const cache = new SignatureCache();
  const v1 = generated(origin, 100_000, 1, addr);
  let t0 = performance.now();
  const first = signZone(v1, [key], DEFAULT_POLICY, { now: NOW, cache });
  const ms = performance.now() - t0;
  tt.comment(
    `first signing: ${first.signatures} signatures in ${ms.toFixed(0)} ms = ${Math.round((first.signatures / ms) * 1000)} signatures/s (Ed25519)`,
  );
  tt.equal(first.reused, 0);
  tt.equal(first.signatures, 2 * 99_998 + 4, 'A + NSEC per name; apex SOA, NS, DNSKEY, NSEC');
  tt.equal(cache.size, first.signatures);

  const changed = 54_321;
  const v2 = generated(origin, 100_000, 2, (i) => (i === changed ? Uint8Array.of(192, 0, 2, 99) : addr(i)));
  t0 = performance.now();
  const second = signZone(v2, [key], DEFAULT_POLICY, { now: NOW + 300, cache });
  tt.comment(`re-signing after one change: ${(performance.now() - t0).toFixed(0)} ms`);
  tt.ok(second.signatures < 10, `${second.signatures} new signatures (< 10)`);
  tt.equal(second.signatures, 2, 'exactly the changed A RRset and the SOA');
  tt.equal(second.reused, countSigs(v2) - second.signatures, 'every other signature reused');
  const a = findNode(v2, nameFromText(`h${changed}`, origin))!.rrsets.get(TYPE.A)!;
  tt.ok(verifyRRset(a, a.sigs![0]!, key.dnskey, { now: NOW + 300 }), 'the new A signature verifies');
  tt.notSame(a.sigs, findNode(v1, nameFromText(`h${changed}`, origin))!.rrsets.get(TYPE.A)!.sigs);
  tt.ok(verifyRRset(v2.soa, v2.soa.sigs![0]!, key.dnskey), 'the new SOA signature verifies');
  tt.equal(cache.size, countSigs(v2), 'the cache holds exactly the current version');
  tt.end();
});

t.test('incremental: adding and removing names re-signs their NSEC/NSEC3 neighbours', (tt) => {
  const origin = N('small.example.');
  for (const denial of ['nsec', 'nsec3'] as const) {
    const key = generateKey(origin, ALGORITHM.ECDSAP256SHA256, 'csk');
    const policy = makePolicy({ denial });
    const cache = new SignatureCache();
    const v1 = generated(origin, 1000, 1, addr);
    signZone(v1, [key], policy, { now: NOW, cache });
    // h700 goes away and h997 (a new name) takes its place in the count: SOA, A(h997), NSEC(3)(h997),
    // the NSEC(3) before h997 (its next changed), the NSEC(3) before h700 (likewise).
    const v2 = generated(origin, 1000, 2, (i) => (i === 700 ? null : addr(i)));
    tt.notOk(findNode(v2, nameFromText('h700', origin)), 'h700 is gone');
    tt.ok(findNode(v2, nameFromText('h997', origin)), 'h997 is new');
    const r = signZone(v2, [key], policy, { now: NOW + 60, cache });
    tt.equal(
      r.signatures,
      5,
      `${denial}: SOA, the new A and its ${denial.toUpperCase()}, and two neighbours`,
    );
    tt.equal(r.reused, countSigs(v2) - r.signatures, `${denial}: the rest reused`);
  }
  tt.end();
});

t.test('refresh: signatures are reused until less than `refresh` remains, then all re-made', (tt) => {
  const keys = makeKeys(N('example.org.'), ALGORITHM.ED25519, true);
  const policy = makePolicy({ denial: 'nsec3' });
  tt.same(
    { validity: policy.validity, refresh: policy.refresh, jitter: policy.jitter },
    { validity: 14 * 86400, refresh: 7 * 86400, jitter: 120960 },
    'defaults: 14 days, refresh at half, jitter a tenth',
  );
  tt.same(makePolicy({ validity: 3600 * 10 }), {
    ...DEFAULT_POLICY,
    validity: 36000,
    refresh: 18000,
    jitter: 3600,
  });
  const cache = new SignatureCache();
  const z1 = load(FIXTURE);
  const first = signZone(z1, keys, policy, { now: NOW, cache });
  const total = countSigs(z1);
  tt.equal(first.signatures, total);
  const exps = allSets(z1).flatMap(({ set }) => (set.sigs ?? []).map((s) => parseRrsig(s).expiration));
  tt.ok(new Set(exps).size > exps.length / 2, 'expirations are spread by the jitter');
  const next = z1.dnssec!.signer!.nextRefresh;
  tt.equal(next, Math.min(...exps) - policy.refresh + 1, 'nextRefresh = earliest expiration - refresh + 1');

  const again = (now: number): { signatures: number; reused: number } =>
    signZone(load(FIXTURE), keys, policy, { now, cache });
  tt.same(again(NOW + 3600), { signatures: 0, reused: total }, 'an hour later, nothing is re-signed');
  tt.same(again(next - 1), { signatures: 0, reused: total }, 'a second before nextRefresh, still nothing');
  const late = again(next);
  tt.ok(late.signatures >= 1 && late.signatures < total, `at nextRefresh: ${late.signatures} re-made`);
  const fresh = new SignatureCache();
  signZone(load(FIXTURE), keys, policy, { now: NOW, cache: fresh });
  const now2 = NOW + policy.validity - policy.refresh + 1;
  const z2 = load(FIXTURE);
  tt.same(
    signZone(z2, keys, policy, { now: now2, cache: fresh }),
    { signatures: total, reused: 0 },
    'past validity - refresh: all re-signed',
  );
  for (const { set } of allSets(z2)) {
    for (const s of set.sigs ?? []) tt.ok(parseRrsig(s).inception === now2 - 3600, 'new inception');
  }
  tt.ok(z2.dnssec!.signer!.nextRefresh > now2, 'the next refresh is in the future');
  tt.end();
});

t.test('re-signing a signed zone: the old DNSSEC records are replaced, not kept', (tt) => {
  if (!needTool(tt, 'dnssec-verify', 'bind9-utils')) return tt.end();
  const dir = tmpDir(tt);
  const zone = load(FIXTURE);
  const keys = makeKeys(zone.origin, ALGORITHM.ECDSAP256SHA256, false);
  signZone(zone, keys, makePolicy({ denial: 'nsec3' }), { now: NOW });
  const text = signedZoneText(zone);
  tt.match(text.split('\n')[1], /^example\.org\. 3600 IN SOA /, 'the SOA first');
  const parsed = parseMasterFile(text, { file: 'signed.zone', origin: zone.origin });
  tt.same(
    parsed.diagnostics.filter((d) => d.severity === 'error'),
    [],
    'our own parser reads the export',
  );
  const again = buildZone(parsed).zone!;
  signZone(again, keys, makePolicy({ denial: 'nsec' }), { now: NOW });
  tt.equal(
    again.dnssec!.nsecChain!.length,
    zone.dnssec!.nsecChain?.length ?? 14,
    'no NSEC3 owner names left over',
  );
  tt.equal(again.apex.rrsets.get(TYPE.DNSKEY)!.rdatas.length, 1, 'the DNSKEY is not doubled');
  tt.notOk(again.apex.rrsets.has(TYPE.NSEC3PARAM), 'the old NSEC3PARAM is gone');
  const file = join(dir, 'resigned.zone');
  writeFileSync(file, signedZoneText(again));
  const v = run('dnssec-verify', ['-z', '-o', 'example.org', file]);
  tt.equal(v.status, 0, v.out);
  tt.end();
});

t.test('signZone refuses keys of another zone, no keys, and unworkable policies', (tt) => {
  const zone = load(FIXTURE);
  const other = generateKey(N('example.net.'), ALGORITHM.ED25519, 'csk');
  tt.throws(
    () => signZone(zone, [other], DEFAULT_POLICY, { now: NOW }),
    /belongs to example\.net\..*\[POPDNS_E_SIGN\]/,
  );
  tt.throws(() => signZone(zone, [], DEFAULT_POLICY, { now: NOW }), /no keys.*\[POPDNS_E_SIGN\]/);
  tt.throws(() => makePolicy({ validity: 86400, refresh: 86400 }), /\[POPDNS_E_SIGN\]/);
  tt.throws(() => makePolicy({ validity: 60 }), /\[POPDNS_E_SIGN\]/);
  tt.equal(zone.dnssec, undefined, 'the zone is left unsigned');
  tt.end();
});

t.test('popdns sign command line', async (tt) => {
  const dir = tmpDir(tt);
  const keys = join(dir, 'keys');
  const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8' });
  const out = join(dir, 'example.org.signed');
  const none = cli('sign', FIXTURE, '--keys', keys, '--out', out);
  tt.equal(none.status, 1, 'no keys: exit 1');
  tt.match(none.stderr, /no keys for example\.org\. .*\[POPDNS_E_NO_KEYS\]/);
  // Usage errors, in-process (each popdns process takes most of a second to start).
  const usage = async (opts: SignOptions): Promise<{ code: number; stderr: string }> => {
    let stderr = '';
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk: string | Uint8Array): boolean => {
      stderr += String(chunk);
      return true;
    };
    try {
      const code = await runSign(FIXTURE, opts);
      return { code, stderr };
    } finally {
      process.stderr.write = write;
    }
  };
  const optOut = await usage({ keys, out, optOut: true });
  tt.equal(optOut.code, 2);
  tt.match(optOut.stderr, /^\S+Z error sign: --opt-out needs --nsec3 \[POPDNS_E_USAGE\]\n$/);
  tt.equal((await usage({ keys, out, validity: 'soon' })).code, 2, 'bad --validity');
  tt.equal((await usage({ keys })).code, 2, 'no --out');
  tt.equal((await usage({ keys, out, threads: 'x' })).code, 2, 'bad --threads');
  for (const threads of ['', ' 2', '0x2', '1e1', '-1', '257', '1.5'])
    tt.equal((await usage({ keys, out, threads })).code, 2, `bad --threads "${threads}"`);
  mkdirSync(keys);
  for (const k of makeKeys(N('example.org.'), ALGORITHM.ED25519, true)) writeKeyFiles(keys, k);
  const r = cli('sign', FIXTURE, '--keys', keys, '--out', out, '--nsec3', '--opt-out', '--validity', '3d');
  tt.equal(r.status, 0, r.stderr);
  tt.match(r.stderr, /example\.org\. serial 2026010101: \d+ signatures .* NSEC3 opt-out/);
  // A small zone is signed on the main thread whatever --threads says, and the log says so.
  tt.match(r.stderr, /\(main thread: under 2000 RRsets\)/);
  const text = readFileSync(out, 'utf8');
  tt.match(text, / IN NSEC3PARAM 1 0 0 -\n/);
  tt.match(text, / IN NSEC3 1 1 0 - /);
  const exp = /RRSIG SOA 15 2 3600 (\d{14}) (\d{14}) /.exec(text)!;
  const secs = (s: string): number =>
    Date.UTC(
      +s.slice(0, 4),
      +s.slice(4, 6) - 1,
      +s.slice(6, 8),
      +s.slice(8, 10),
      +s.slice(10, 12),
      +s.slice(12),
    ) / 1000;
  const span = secs(exp[1]!) - secs(exp[2]!);
  tt.ok(span <= 3 * 86400 + 3600 && span >= 3 * 86400 + 3600 - 0.3 * 86400, `--validity 3d: ${span} s`);
  if (needTool(tt, 'dnssec-verify', 'bind9-utils') && needTool(tt, 'ldns-verify-zone', 'ldnsutils')) {
    const v = verifyBoth(out, 'example.org', false);
    tt.equal(v.bind, 0, v.out);
    tt.equal(v.ldns, 0, v.out);
  }
  // A YAML zone's own dnssec: settings apply, as in the server; flags win.
  const yamlZone = join(dir, 'example.org.yaml');
  writeFileSync(
    yamlZone,
    'dnssec: { denial: nsec3, cds: true }\nsoa: { serial: 7 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n',
  );
  const own = cli('sign', yamlZone, '--keys', keys, '--out', '-');
  tt.equal(own.status, 0, own.stderr);
  tt.match(own.stdout, / IN NSEC3PARAM 1 0 0 -\n/, 'dnssec: { denial: nsec3 } from the file');
  tt.match(own.stdout, / IN CDS /, 'cds: true from the file');
  writeFileSync(
    yamlZone,
    'dnssec: false\nsoa: { serial: 7 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n',
  );
  const off = cli('sign', yamlZone, '--keys', keys, '--out', '-');
  tt.equal(off.status, 1, 'dnssec: false is not signed');
  tt.match(off.stderr, /says dnssec: false/);
  // A key file that cannot be used: refuse rather than sign with fewer keys.
  const k = generateKey(N('example.org.'), ALGORITHM.ED25519, 'zsk');
  const base = writeKeyFiles(keys, k);
  writeFileSync(join(keys, `${base}.private`), 'garbage\n');
  const bad = cli('sign', FIXTURE, '--keys', keys, '--out', out);
  tt.equal(bad.status, 1);
  tt.match(bad.stderr, /\[POPDNS_E_KEY\]/);
  const zoneErr = cli('sign', 'test/fixtures/broken/nosoa.example.zone', '--keys', keys, '--out', out);
  tt.equal(zoneErr.status, 1, 'a zone with errors is not signed');
  tt.end();
});

t.test('popdns sign --out: the new file replaces the old one whole, never written in place', async (tt) => {
  const dir = tmpDir(tt);
  const keys = join(dir, 'keys');
  mkdirSync(keys);
  for (const k of makeKeys(N('example.org.'), ALGORITHM.ED25519, true)) writeKeyFiles(keys, k);
  const out = join(dir, 'example.org.signed');
  writeFileSync(out, 'previous signed version\n');
  // A second name for the old file: writing in place (truncate, then write) would change it too.
  linkSync(out, join(dir, 'old-link'));
  const quiet = async (opts: SignOptions): Promise<number> => {
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (): boolean => true;
    try {
      return await runSign(FIXTURE, opts);
    } finally {
      process.stderr.write = write;
    }
  };
  tt.equal(await quiet({ keys, out, threads: 0 }), 0);
  tt.match(readFileSync(out, 'utf8'), / IN RRSIG SOA /, 'the new file is the signed zone');
  tt.equal(
    readFileSync(join(dir, 'old-link'), 'utf8'),
    'previous signed version\n',
    'the old file was not rewritten',
  );
  tt.same(readdirSync(dir).sort(), ['example.org.signed', 'keys', 'old-link'], 'no temporary file left');
  // A failure leaves the previous output as it was.
  const signed = readFileSync(out, 'utf8');
  tt.equal(
    await quiet({ keys, out: join(dir, 'missing', 'x.signed'), threads: 0 }),
    1,
    'unwritable --out: exit 1',
  );
  const k = generateKey(N('example.org.'), ALGORITHM.ED25519, 'zsk');
  writeFileSync(join(keys, `${writeKeyFiles(keys, k)}.private`), 'garbage\n');
  tt.equal(await quiet({ keys, out, threads: 0 }), 1, 'a bad key: exit 1');
  tt.equal(readFileSync(out, 'utf8'), signed, 'the previous output is untouched');
  tt.same(readdirSync(dir).sort(), ['example.org.signed', 'keys', 'old-link']);
  tt.end();
});
