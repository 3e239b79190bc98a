/**
 * The incremental zone version (src/zone/edit.ts, used by applyUpdate and applyChangesets) against a
 * full rebuild, differentially: random sequences of updates (A, TXT, CNAME, DNAME, NS delegations
 * with and without glue, wildcards, names removed entirely, out-of-range TTLs) on a zone that is
 * unsigned, NSEC-signed and NSEC3-signed, with an apex wide enough for its children to be overlays. After each step the incremental version must give the same
 * rcode as a full rebuild (zoneBuilder, the zone-file checks), hold the same records (NSEC/NSEC3
 * chain included, re-signed incrementally by src/update/resign.ts versus signZone on the rebuild),
 * every signature must verify, and the answer engine must give the same answers (NXDOMAIN/NODATA
 * proofs included) for a set of names. The version the update started from (what a reader such as an
 * AXFR in progress holds) must be exactly as it was, whether the update was accepted or rejected.
 * Journal replay (applyChangesets) is checked the same way. No timing assertions.
 *
 * An unsigned zone with stray RRSIGs (no DNSKEY at the apex: the zone builder keeps them in the
 * tree as data, POPDNS_W_RRSIG_NO_DNSKEY) keeps them on both paths, untouched by updates (RFC 2136
 * §3.4.2 changes only what the update section names; RRSIG itself is not updatable); the journal
 * replay, a file-edit merge (update/merge.ts) and the IXFR apply (src/xfr/versions.ts applyIxfr)
 * keep them as a zone file load does.
 */
import t, { type Test } from 'tap';
import { generateKey, verifyRRset, type DnssecKey } from '../../src/dnssec/keys.js';
import { makePolicy, type DnssecPolicy, SignatureCache, signZone } from '../../src/dnssec/signzone.js';
import { resolve } from '../../src/query/engine.js';
import { applyChangesets, applyUpdate, type ParsedUpdate, UPDATE_RCODE } from '../../src/update/engine.js';
import { mergeFileEdit } from '../../src/update/merge.js';
import { resignUpdate } from '../../src/update/resign.js';
import { CLASS, TYPE, typeFromText, typeToText } from '../../src/wire/constants.js';
import { type Name, nameFromText, nameToText } from '../../src/wire/name.js';
import { rdataFromText, rdataToText, tokenize } from '../../src/wire/rdata.js';
import type { WireRecord } from '../../src/wire/records.js';
import type { XfrDiff } from '../../src/xfr/transfer.js';
import { applyDiffs, applyIxfr, buildTransferred, zoneRecords } from '../../src/xfr/versions.js';
import { diffZones, type XfrRecord, type ZoneDiff } from '../../src/xfr/zonedata.js';
import { canonicalSortKey, nsec3Hash } from '../../src/zone/dnssec.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, findNode, type RRset, type Zone, type ZoneNode } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';
import { rng } from '../helpers/rng.js';

const ORIGIN = nameFromText('example.com.');
const ZONE = `$TTL 300
@ IN SOA ns1 hostmaster 2026113001 3600 600 86400 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.10
a.b.c IN A 192.0.2.2
*.w IN TXT "wild"
d1 IN NS ns.d1
ns.d1 IN A 192.0.2.53
h1 IN TXT "one"
h2 IN CNAME www
${Array.from({ length: 90 }, (_, i) => `f${i} IN A 192.0.2.${i}`).join('\n')}
`;
/** An RRSIG by the zone's name with no DNSKEY to check it (a dummy signature). */
const STRAY = (covered: string): string =>
  `IN RRSIG ${covered} 13 3 300 20301231000000 20200101000000 12345 example.com. AAAA`;
/** ZONE with stray RRSIGs: at the apex, over data, alone at a name, below a delegation. */
const ZONE_STRAY = `${ZONE}
@ ${STRAY('SOA')}
www ${STRAY('A')}
h1 ${STRAY('TXT')}
f3 ${STRAY('A')}
sigonly ${STRAY('A')}
x.d1 ${STRAY('A')}
`;
const NOW = Math.floor(Date.now() / 1000);
const RULES = [{ key: 'k', names: null, types: null }];

function build(text: string): Zone {
  const b = buildZone(parseMasterFile(text, { file: 'z.zone', origin: ORIGIN }));
  if (!b.zone) throw new Error(b.diagnostics.map((d) => d.message).join('; '));
  return b.zone;
}

type Op = [
  cls: 'add' | 'delset' | 'delname' | 'delrr',
  name: string,
  type?: string,
  rdata?: string,
  ttl?: number,
];

function update(ops: Op[]): ParsedUpdate {
  const updates: WireRecord[] = ops.map(([op, name, type, rdata, ttl]) => {
    const t = type ? typeFromText(type)! : TYPE.ANY;
    const rd = rdata ? rdataFromText(t, tokenize(rdata), ORIGIN) : new Uint8Array(0);
    const cls = op === 'add' ? CLASS.IN : op === 'delrr' ? CLASS.NONE : CLASS.ANY;
    return {
      owner: nameFromText(name, ORIGIN),
      type: t,
      class: cls,
      ttl: op === 'add' ? (ttl ?? 300) : 0,
      rdata: rd,
    };
  });
  return {
    id: 1,
    zone: { name: ORIGIN, type: TYPE.SOA, class: CLASS.IN },
    zoneCount: 1,
    prereqs: [],
    updates,
  };
}

// f0…f89 make the apex wide: its copies are overlays on the shared children (zone/children.ts clone).
const NAMES = [
  'f3',
  'f17',
  'f42',
  'f88',
  'x.f5',
  'www',
  'h1',
  'h2',
  'h3',
  'x.h3',
  'a.b.c',
  'b.c',
  'n1',
  'n2.deep',
  '*.w',
  'q.w',
  '*.h1',
  'd1',
  'ns.d1',
  'x.d1',
  'd2',
  'ns.d2',
  'dn',
  'x.dn',
  'ns1',
];

/** One random step: a few operations, some of which make the zone invalid (REFUSED). */
function randomOps(r: () => number, names: readonly string[] = NAMES): Op[] {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const ops: Op[] = [];
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const name = pick(names);
    const k = r();
    if (k < 0.2) ops.push(['add', name, 'A', `192.0.2.${Math.floor(r() * 250)}`]);
    else if (k < 0.32)
      ops.push(['add', name, 'TXT', `"t${Math.floor(r() * 5)}"`, r() < 0.05 ? 0x80000000 : 300]);
    else if (k < 0.4) ops.push(['add', name, 'CNAME', pick(['www', 'elsewhere.example.'])]);
    else if (k < 0.47) {
      // A delegation, with glue, without glue (in-bailiwick: REFUSED), or out of bailiwick.
      const d = pick(['d1', 'd2', 'h3', 'x.h3']);
      const g = r();
      ops.push(['add', d, 'NS', g < 0.7 ? `ns.${d}` : 'ns.elsewhere.example.']);
      if (g < 0.5) ops.push(['add', `ns.${d}`, 'A', '192.0.2.77']);
    } else if (k < 0.5) ops.push(['add', pick(['dn', 'b.c']), 'DNAME', 'target.example.']);
    else if (k < 0.55) ops.push(['add', '@', 'NS', pick(['ns1', 'ns.d2', 'nsx'])]);
    else if (k < 0.68) ops.push(['delname', name]);
    else if (k < 0.8) ops.push(['delset', name, pick(['A', 'TXT', 'NS', 'CNAME', 'DNAME'])]);
    else if (k < 0.88)
      ops.push(['delrr', name, 'A', pick(['192.0.2.1', '192.0.2.53', '192.0.2.77', '192.0.2.10'])]);
    else if (k < 0.92) ops.push(['delrr', '@', 'NS', 'ns1']);
    else ops.push(['add', name, 'AAAA', '2001:db8::1']);
  }
  return ops;
}

function rrsetText(s: { owner: Name; type: number; ttl: number; rdatas: Uint8Array[] }): string[] {
  return s.rdatas.map(
    (rd) => `${nameToText(s.owner).toLowerCase()} ${s.ttl} ${typeToText(s.type)} ${rdataToText(s.type, rd)}`,
  );
}

/**
 * Every record as text (signatures kept beside their RRsets left out; RRSIG RRsets in the tree,
 * which only an unsigned zone's stray RRSIGs are, included), the NSEC3 chain and the node flags.
 */
function records(z: Zone): string[] {
  const out: string[] = [];
  const visit = (n: ZoneNode): void => {
    for (const s of n.rrsets.values()) out.push(...rrsetText(s));
    if (n.cut || n.occluded)
      out.push(`${nameToText(n.name).toLowerCase()} flags cut=${n.cut} occluded=${n.occluded}`);
    for (const c of n.children.values()) visit(c);
  };
  visit(z.apex);
  for (const e of z.dnssec?.nsec3?.chain ?? []) out.push(...rrsetText(e.nsec3));
  for (const e of z.dnssec?.nsecChain ?? []) out.push(`chain ${nameToText(e.owner).toLowerCase()}`);
  // (A signed zone's count differs by the DNSKEYs the signer adds, before as after this change.)
  out.push(`serial ${z.serial} neg ${z.negativeSoa.ttl}${z.dnssec ? '' : ` count ${z.recordCount}`}`);
  return out.sort();
}

/** Everything reachable from a version, signatures included, to see that nothing changed it. */
function snapshot(z: Zone): string {
  const out: string[] = [];
  const sigs = (s: RRset): string => (s.sigs ?? []).map((x) => Buffer.from(x).toString('hex')).join(',');
  const visit = (n: ZoneNode): void => {
    out.push(`node ${nameToText(n.name)} ${n.cut} ${n.occluded} ${n.children.size}`);
    for (const s of n.rrsets.values()) out.push(`${rrsetText(s).join('|')} sigs=${sigs(s)}`);
    for (const c of n.children.values()) visit(c);
  };
  visit(z.apex);
  for (const e of z.dnssec?.nsec3?.chain ?? [])
    out.push(`${rrsetText(e.nsec3).join('|')} sigs=${sigs(e.nsec3)}`);
  for (const e of z.dnssec?.nsecChain ?? [])
    out.push(`chain ${nameToText(e.owner)} ${rrsetText(e.nsec).join('|')}`);
  out.push(`${z.serial} ${z.recordCount} ${rrsetText(z.soa).join()} ${sigs(z.negativeSoa)}`);
  return out.join('\n');
}

const QUESTIONS: [string, string][] = [
  ['www', 'A'],
  ['www', 'TXT'],
  ['h1', 'TXT'],
  ['h2', 'A'],
  ['x.h3', 'A'],
  ['h3', 'NS'],
  ['nothere', 'A'],
  ['zz.nothere', 'TXT'],
  ['b.c', 'A'],
  ['q.w', 'TXT'],
  ['new.w', 'TXT'],
  ['x.h1', 'A'],
  ['ns.d1', 'A'],
  ['x.d1', 'TXT'],
  ['d2', 'DS'],
  ['x.dn', 'A'],
  ['y.dn', 'A'],
  ['n2.deep', 'A'],
  ['deep', 'A'],
  ['@', 'NS'],
  ['@', 'SOA'],
  ['sigonly', 'A'],
  ['www', 'RRSIG'],
];

/** The engine's answers to QUESTIONS, with DO, as text (signature bytes left out: ECDSA varies). */
function answers(z: Zone): string[] {
  const zs = new ZoneSet([z]);
  return QUESTIONS.map(([name, type]) => {
    const a = resolve(zs, nameFromText(name, ORIGIN), typeFromText(type)!, true);
    const sec = (l: RRset[]): string =>
      l.map((s) => `${rrsetText(s).sort().join(';')}${s.sigs?.length ? ' +sig' : ''}`).join(' / ');
    return `${name} ${type}: rcode=${a.rcode} aa=${a.aa} an=[${sec(a.answer)}] ns=[${sec(a.authority)}] ad=[${sec(a.additional)}]`;
  });
}

/** Every authoritative RRset signed, every signature verifying with the zone's keys. */
function badSignatures(z: Zone, keys: DnssecKey[]): string[] {
  const bad: string[] = [];
  const check = (s: RRset): void => {
    const sigs = s.sigs ?? [];
    if (sigs.length === 0) bad.push(`${nameToText(s.owner)} ${typeToText(s.type)} unsigned`);
    for (const sig of sigs)
      if (!keys.some((k) => verifyRRset(s, sig, k.dnskey, { now: NOW })))
        bad.push(`${nameToText(s.owner)} ${typeToText(s.type)} bad signature`);
  };
  const visit = (n: ZoneNode): void => {
    if (!n.occluded)
      for (const s of n.rrsets.values()) if (!n.cut || s.type === TYPE.DS || s.type === TYPE.NSEC) check(s);
    for (const c of n.children.values()) visit(c);
  };
  visit(z.apex);
  for (const e of z.dnssec?.nsec3?.chain ?? []) check(e.nsec3);
  return bad;
}

/** A diffZones result run to its end, as sorted text (removed, then added). */
function diffText(g: Generator<null, ZoneDiff | null, void>): { removed: string[]; added: string[] } {
  let r = g.next();
  while (!r.done) r = g.next();
  const text = (x: XfrRecord): string =>
    `${nameToText(x.owner)} ${x.ttl} ${typeToText(x.type)} ${Buffer.from(x.rdata).toString('hex')}`;
  return { removed: r.value!.removed.map(text).sort(), added: r.value!.added.map(text).sort() };
}

const MODES: [string, Partial<DnssecPolicy> | null, string][] = [
  ['unsigned', null, ZONE],
  ['NSEC', { denial: 'nsec' }, ZONE],
  ['NSEC3', { denial: 'nsec3' }, ZONE],
  ['unsigned with stray RRSIGs (no DNSKEY)', null, ZONE_STRAY],
];
const STEPS = 70;
const NAMES_STRAY = [...NAMES, 'sigonly'];

for (const [label, settings, text] of MODES) {
  const stray = text === ZONE_STRAY;
  // (Signed modes and the stray-RRSIG zone: one seed; each signed step signs the reference whole.)
  for (const seed of settings || stray ? [1] : [1, 2]) {
    t.test(
      `${label}, seed ${seed}: ${settings ? 45 : STEPS} random updates, incremental equals a full rebuild`,
      async (t) => {
        const r = rng(seed * 7919 + label.length);
        const keys = settings ? [generateKey(ORIGIN, 13, 'ksk'), generateKey(ORIGIN, 13, 'zsk')] : [];
        const policy = settings ? makePolicy(settings) : null;
        const cache = new SignatureCache();
        let inc = build(text);
        if (policy) signZone(inc, keys, policy, { now: NOW, cache });
        let ref = inc;
        let accepted = 0;
        let refused = 0;
        let mismatches = 0;
        const steps = settings ? 45 : STEPS;
        for (let step = 0; step < steps && mismatches === 0; step++) {
          // First, RRsets deleted and added back with the same content in one update (an empty
          // changeset for them): they must stay signed.
          const ops: Op[] =
            step === 0
              ? [
                  ['delset', 'www', 'A'],
                  ['add', 'www', 'A', '192.0.2.10'],
                ]
              : step === 1
                ? [
                    ['delrr', 'f3', 'A', '192.0.2.3'],
                    ['add', 'f3', 'A', '192.0.2.3'],
                    ['add', 'h1', 'TXT', '"extra"'],
                  ]
                : randomOps(r, stray ? NAMES_STRAY : NAMES);
          const what = `step ${step} ${JSON.stringify(ops)}`;
          const u = update(ops);
          const before = snapshot(inc);
          const a = applyUpdate(inc, u, { key: 'k', rules: RULES, now: NOW });
          const b = applyUpdate(ref, u, { key: 'k', rules: RULES, now: NOW, full: true });
          if (a.rcode !== b.rcode || !!a.zone !== !!b.zone) {
            mismatches++;
            t.fail(`${what}: rcode ${a.rcode} (${a.reason}) vs full rebuild ${b.rcode} (${b.reason})`);
            break;
          }
          let next = a.zone;
          if (next && policy) {
            const owners = [...a.removed, ...a.added].map((x) => x.owner);
            next = resignUpdate(inc, next, owners, { keys, policy, cache }, NOW).zone;
            signZone(b.zone!, keys, policy, { now: NOW, cache });
          }
          if (snapshot(inc) !== before) {
            mismatches++;
            t.fail(`${what}: the version the update started from was changed`);
          }
          if (!next) {
            if (a.rcode !== UPDATE_RCODE.NOERROR) refused++;
            continue;
          }
          accepted++;
          // The IXFR history's diff (xfr/zonedata.ts diffZones) skips what two copy-on-write
          // versions share; between the full rebuilds (nothing shared) it walks everything.
          const da = diffText(diffZones(inc, next, Number.MAX_SAFE_INTEGER));
          const db = diffText(diffZones(ref, b.zone!, Number.MAX_SAFE_INTEGER));
          if (JSON.stringify(da) !== JSON.stringify(db)) {
            mismatches++;
            t.strictSame(da, db, `${what}: the same diff between shared versions as between rebuilds`);
          }
          const ra = records(next);
          const rb = records(b.zone!);
          if (JSON.stringify(ra) !== JSON.stringify(rb)) {
            mismatches++;
            t.strictSame(ra, rb, `${what}: same records as a full rebuild`);
          }
          const qa = answers(next);
          const qb = answers(b.zone!);
          if (JSON.stringify(qa) !== JSON.stringify(qb)) {
            mismatches++;
            t.strictSame(qa, qb, `${what}: same answers as a full rebuild`);
          }
          if (policy) {
            const bad = badSignatures(next, keys);
            if (bad.length > 0) {
              mismatches++;
              t.strictSame(bad, [], `${what}: every RRset signed, every signature verifies`);
            }
          }
          inc = next;
          ref = b.zone!;
        }
        t.equal(mismatches, 0, `no difference to a full rebuild (${accepted} accepted, ${refused} refused)`);
        if (stray)
          t.equal(
            records(inc).filter((l) => l.includes(' RRSIG ')).length,
            6,
            'every stray RRSIG is still there, as the updates never named one',
          );
        t.ok(accepted > 10 && refused > 0, 'the sequence has both accepted and refused updates');
      },
    );
  }
}

t.test('journal replay: applyChangesets incrementally equals a full rebuild', async (t) => {
  const r = rng(4242);
  let inc = build(ZONE);
  const start = inc;
  const changesets: { removed: XfrRecord[]; added: XfrRecord[] }[] = [];
  for (let step = 0; step < 60; step++) {
    const a = applyUpdate(inc, update(randomOps(r)), { key: 'k', rules: RULES, now: NOW });
    if (!a.zone) continue;
    changesets.push({ removed: a.removed, added: a.added });
    inc = a.zone;
  }
  t.ok(changesets.length > 10, `${changesets.length} changesets`);
  const soa = { ttl: inc.soa.ttl, rdata: inc.soa.rdatas[0]! };
  const before = snapshot(start);
  const x = applyChangesets(start, changesets, soa, NOW);
  const y = applyChangesets(start, changesets, soa, NOW, true);
  if (typeof x === 'string' || typeof y === 'string') throw new Error(`${String(x)} / ${String(y)}`);
  t.strictSame(records(x), records(y), 'same records as a full rebuild');
  t.strictSame(records(x), records(inc), 'same records as the updates made one by one');
  t.strictSame(answers(x), answers(y), 'same answers as a full rebuild');
  t.equal(snapshot(start), before, 'the version replayed onto is unchanged');
  // One changeset at a time (a worker catching up update by update).
  let z = start;
  for (const cs of changesets) {
    const soaOf = cs.added.find((a) => a.type === TYPE.SOA)!;
    const n = applyChangesets(z, [cs], { ttl: soaOf.ttl, rdata: soaOf.rdata }, NOW);
    if (typeof n === 'string') throw new Error(n);
    z = n;
  }
  t.strictSame(records(z), records(y), 'changesets one at a time: the same version');
  // A changeset that would break the zone is rejected the same way by both paths.
  const bad = [
    {
      removed: [],
      added: [
        {
          owner: nameFromText('www', ORIGIN),
          type: TYPE.CNAME,
          class: CLASS.IN,
          ttl: 300,
          rdata: rdataFromText(TYPE.CNAME, tokenize('h1'), ORIGIN),
        },
      ],
    },
  ];
  const bx = applyChangesets(inc, bad, soa, NOW);
  const by = applyChangesets(inc, bad, soa, NOW, true);
  t.type(bx, 'string', `rejected incrementally: ${String(bx)}`);
  t.type(by, 'string', 'rejected by the full rebuild');
});

t.test('stray RRSIGs (no DNSKEY): updates, journal replay, file-edit merge and IXFR keep them', async (t) => {
  const start = build(ZONE_STRAY);
  const rrsigLines = (z: Zone): string[] => records(z).filter((l) => l.includes(' RRSIG '));
  t.equal(rrsigLines(start).length, 6, 'the zone builder keeps the 6 stray RRSIGs in the tree');
  // Updates at names holding stray RRSIGs, the whole name deleted included.
  const ops: Op[][] = [
    [['add', 'www', 'A', '192.0.2.99']],
    [['delname', 'www']],
    [['delname', 'sigonly']],
    [['add', 'sigonly', 'TXT', '"now with data"']],
    [['delset', 'h1', 'TXT']],
    [['add', 'newname', 'A', '192.0.2.7']],
  ];
  let inc = start;
  const changesets: { removed: XfrRecord[]; added: XfrRecord[] }[] = [];
  for (const o of ops) {
    const a = applyUpdate(inc, update(o), { key: 'k', rules: RULES, now: NOW });
    const b = applyUpdate(inc, update(o), { key: 'k', rules: RULES, now: NOW, full: true });
    t.equal(a.rcode, UPDATE_RCODE.NOERROR, `${JSON.stringify(o)} accepted`);
    if (!a.zone) {
      // Only a stray RRSIG at the name: the update sees no RRset there to delete.
      t.equal(a.reason, 'no change', `${JSON.stringify(o)}: no change, as on the full path`);
      t.equal(b.reason, 'no change');
      continue;
    }
    t.strictSame(records(a.zone!), records(b.zone!), `${JSON.stringify(o)}: incremental = full rebuild`);
    t.strictSame(answers(a.zone!), answers(b.zone!), `${JSON.stringify(o)}: same answers`);
    t.notOk(
      [...a.removed, ...a.added].some((r) => r.type === TYPE.RRSIG),
      'the changeset holds no RRSIG (the update changed none)',
    );
    changesets.push({ removed: a.removed, added: a.added });
    inc = a.zone!;
  }
  t.strictSame(rrsigLines(inc), rrsigLines(start), 'the stray RRSIGs are as loaded');
  const www = findNode(inc, nameFromText('www', ORIGIN));
  t.strictSame([...(www?.rrsets.keys() ?? [])], [TYPE.RRSIG], 'www deleted whole keeps its stray RRSIG');
  const soa = { ttl: inc.soa.ttl, rdata: inc.soa.rdatas[0]! };
  const x = applyChangesets(start, changesets, soa, NOW);
  const y = applyChangesets(start, changesets, soa, NOW, true);
  if (typeof x === 'string' || typeof y === 'string') throw new Error(`${String(x)} / ${String(y)}`);
  t.strictSame(records(x), records(inc), 'journal replay (incremental) = the updates');
  t.strictSame(records(y), records(inc), 'journal replay (full rebuild) = the updates');

  // A changeset listing a stray RRSIG (what a file-edit merge may journal) takes the full path and
  // removes it there: the result is what the zone file without that record gives.
  const wwwSig = rdataFromText(TYPE.RRSIG, tokenize(STRAY('A').replace('IN RRSIG ', '')), ORIGIN);
  const soa2 = Uint8Array.from(start.soa.rdatas[0]!);
  new DataView(soa2.buffer).setUint32(soa2.length - 20, start.serial + 1);
  const cs = {
    removed: [
      { owner: nameFromText('www', ORIGIN), type: TYPE.RRSIG, class: CLASS.IN, ttl: 300, rdata: wwwSig },
    ],
    added: [],
  };
  const z = applyChangesets(start, [cs], { ttl: start.soa.ttl, rdata: soa2 }, NOW);
  if (typeof z === 'string') throw new Error(z);
  const expected = build(
    ZONE_STRAY.replace(`www ${STRAY('A')}\n`, '').replace(' 2026113001 ', ` ${start.serial + 1} `),
  );
  t.strictSame(records(z), records(expected), 'a stray RRSIG removed by a changeset is gone');

  // An update adding a DNSKEY takes the full path on both sides: with the stray RRSIGs kept, the
  // zone becomes pre-signed exactly as the zone file with that DNSKEY would (zone.ts isPresigned).
  const dnskey = `256 3 13 ${Buffer.alloc(64, 1).toString('base64')}`;
  const k = applyUpdate(start, update([['add', '@', 'DNSKEY', dnskey]]), {
    key: 'k',
    rules: RULES,
    now: NOW,
  });
  t.equal(k.rcode, UPDATE_RCODE.NOERROR, 'DNSKEY added');
  const kFile = build(`${ZONE_STRAY.replace(' 2026113001 ', ` ${k.zone!.serial} `)}@ IN DNSKEY ${dnskey}\n`);
  t.equal(kFile.dnssec?.presigned, true, 'the zone file with a DNSKEY is pre-signed');
  t.equal(k.zone!.dnssec?.presigned, true, 'so is the updated zone');
  t.strictSame(records(k.zone!), records(kFile), 'the same records as the zone file with the DNSKEY');
  const kReplay = applyChangesets(
    start,
    [{ removed: k.removed, added: k.added }],
    {
      ttl: k.zone!.soa.ttl,
      rdata: k.zone!.soa.rdatas[0]!,
    },
    NOW,
  );
  if (typeof kReplay === 'string') throw new Error(kReplay);
  t.strictSame(records(kReplay), records(kFile), 'and its journal replay');

  // A file edit merged with the updates (update/merge.ts, also a rebuild): the stray RRSIGs are file
  // data like the rest. The file drops the one at h1 and adds a record; the update's record stays.
  const withNew = applyUpdate(start, update([['add', 'newname', 'A', '192.0.2.7']]), {
    key: 'k',
    rules: RULES,
    now: NOW,
  }).zone!;
  const edited = (serial: number, extra: string): string =>
    `${ZONE_STRAY.replace(`h1 ${STRAY('TXT')}\n`, '').replace(' 2026113001 ', ` ${serial} `)}filed IN A 192.0.2.200\n${extra}`;
  const merged = mergeFileEdit(withNew, start, build(edited(2026113005, '')), NOW);
  if (typeof merged === 'string') throw new Error(merged);
  t.strictSame(
    records(merged.zone),
    records(build(edited(merged.zone.serial, 'newname IN A 192.0.2.7\n'))),
    'file edit merged: the new file plus the update, its stray RRSIGs as in the file',
  );

  // IXFR (src/xfr/versions.ts): the copy-on-write apply and its full rebuild agree on them too.
  const diffs: XfrDiff[] = [
    {
      fromSoa: {
        owner: ORIGIN,
        type: TYPE.SOA,
        class: CLASS.IN,
        ttl: start.soa.ttl,
        rdata: start.soa.rdatas[0]!,
      },
      toSoa: { owner: ORIGIN, type: TYPE.SOA, class: CLASS.IN, ttl: start.soa.ttl, rdata: soa2 },
      deleted: [
        {
          owner: nameFromText('www', ORIGIN),
          type: TYPE.A,
          class: CLASS.IN,
          ttl: 300,
          rdata: rdataFromText(TYPE.A, tokenize('192.0.2.10'), ORIGIN),
        },
      ],
      added: [
        {
          owner: nameFromText('sigonly', ORIGIN),
          type: TYPE.A,
          class: CLASS.IN,
          ttl: 300,
          rdata: rdataFromText(TYPE.A, tokenize('192.0.2.8'), ORIGIN),
        },
      ],
    },
  ];
  const ix = applyIxfr(start, diffs, 'test');
  t.ok(ix, 'applied incrementally (no DNSSEC records in the differences)');
  const full = buildTransferred(ORIGIN, applyDiffs(zoneRecords(start), diffs), 'test');
  t.strictSame(records(ix!), records(full), 'IXFR: copy-on-write = full rebuild');
  t.strictSame(answers(ix!), answers(full), 'IXFR: same answers');
  t.strictSame(rrsigLines(ix!), rrsigLines(start), 'IXFR: the stray RRSIGs are as loaded');
});
/**
 * One update applied incrementally (and re-signed by resignUpdate) and by a full rebuild (signed
 * whole): the same records, answers and valid signatures, the old version unchanged.
 */
function stepBoth(
  t: Test,
  what: string,
  inc: Zone,
  ref: Zone,
  ops: Op[],
  s: { keys: DnssecKey[]; policy: DnssecPolicy; cache: SignatureCache },
): [Zone, Zone] {
  const u = update(ops);
  const before = snapshot(inc);
  const a = applyUpdate(inc, u, { key: 'k', rules: RULES, now: NOW });
  const b = applyUpdate(ref, u, { key: 'k', rules: RULES, now: NOW, full: true });
  if (!a.zone || !b.zone) throw new Error(`${what}: refused (${a.reason} / ${b.reason})`);
  const owners = [...a.removed, ...a.added].map((x) => x.owner);
  const st = resignUpdate(inc, a.zone, owners, s, NOW);
  signZone(b.zone, s.keys, s.policy, { now: NOW, cache: s.cache });
  t.ok(st.incremental, `${what}: re-signed incrementally`);
  t.strictSame(records(st.zone), records(b.zone), `${what}: same records and chain as a full rebuild`);
  t.strictSame(answers(st.zone), answers(b.zone), `${what}: same answers as a full rebuild`);
  t.strictSame(badSignatures(st.zone, s.keys), [], `${what}: every signature verifies`);
  t.equal(snapshot(inc), before, `${what}: the old version is unchanged`);
  return [st.zone, b.zone];
}

for (const denial of ['nsec', 'nsec3'] as const) {
  t.test(`${denial}: the ends of the chain, and many names at once (chain chunks split and joined)`, (t) => {
    const s = {
      keys: [generateKey(ORIGIN, 13, 'csk')],
      policy: makePolicy({ denial }),
      cache: new SignatureCache(),
    };
    let inc = build(ZONE);
    signZone(inc, s.keys, s.policy, { now: NOW, cache: s.cache });
    let ref = inc;
    const step = (what: string, ops: Op[]): void => {
      [inc, ref] = stepBoth(t, what, inc, ref, ops, s);
    };
    // The names at the ends of the chain: canonical order (NSEC, the apex always first) or hash order.
    const n3 = inc.dnssec?.nsec3;
    const order = (name: string): string =>
      n3
        ? Buffer.from(nsec3Hash(nameFromText(name, ORIGIN), n3.salt, n3.iterations)).toString('hex')
        : canonicalSortKey(nameFromText(name, ORIGIN));
    const chainNames = ['www', 'ns1', 'h1', 'h2', ...Array.from({ length: 90 }, (_, i) => `f${i}`)];
    const sorted = [...chainNames].sort((x, y) => (order(x) < order(y) ? -1 : 1));
    const lastName = sorted[sorted.length - 1]!;
    const firstName = sorted[0]!;
    const candidates = Array.from({ length: 400 }, (_, i) => `p${i}`);
    const cs = [...candidates].sort((x, y) => (order(x) < order(y) ? -1 : 1));
    const after = n3 ? cs[cs.length - 1]! : 'zzz';
    t.ok(order(after) > order(lastName), `${after} sorts after every name`);
    step(`${after} added after the last name`, [['add', after, 'A', '192.0.2.99']]);
    step(`${after} (the last name) deleted`, [['delname', after]]);
    step(`${lastName} (the last name) deleted`, [['delname', lastName]]);
    if (n3) {
      const before = cs[0]!;
      t.ok(order(before) < order(firstName), `${before} sorts before every name`);
      step(`${before} added before the first`, [['add', before, 'A', '192.0.2.98']]);
      step(`${before} (the first) deleted`, [['delname', before]]);
      step(`${firstName} (the first) deleted`, [['delname', firstName]]);
    } else {
      step('a name right after the apex added', [['add', '0', 'A', '192.0.2.98']]);
      step('the name right after the apex deleted', [['delname', '0']]);
    }
    const many = Array.from({ length: 300 }, (_, i) => `b${i}.f5`);
    step(
      '300 names in one place added at once',
      many.map((n) => ['add', n, 'TXT', '"x"']),
    );
    step(
      '250 of them deleted at once',
      many.slice(0, 250).map((n) => ['delname', n]),
    );
    step(
      'the rest deleted',
      many.slice(250).map((n) => ['delname', n]),
    );
    t.end();
  });
}
