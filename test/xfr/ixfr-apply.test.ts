/**
 * The secondary's IXFR apply (src/xfr/versions.ts applyIxfr, path copying) against the reference it
 * replaced: the differences applied to the full record list and the zone rebuilt with the zone
 * checks (RFC 1995 §4: deletions then additions per difference, in order; the last SOA ends it).
 * Random difference sequences; after each, both versions hold the same records and the old version
 * is unchanged. Deleting a record that is not there is POPDNS_E_IXFR_MISMATCH (a full transfer fixes
 * it); a result that fails the zone checks is POPDNS_E_XFR_ZONE; either way nothing is served.
 */
import t from 'tap';
import { CLASS, TYPE } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { rdataFromText, tokenize } from '../../src/wire/rdata.js';
import type { WireRecord } from '../../src/wire/records.js';
import type { XfrDiff } from '../../src/xfr/transfer.js';
import {
  applyDiffs,
  applyIxfr,
  buildTransferred,
  ZoneDataError,
  zoneRecords,
} from '../../src/xfr/versions.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, type Zone } from '../../src/zone/zone.js';

const ORIGIN = 'ixfr.test.';
const origin = nameFromText(ORIGIN);

function zoneFrom(text: string): Zone {
  const b = buildZone(parseMasterFile(text, { file: 'z.zone', origin }));
  if (!b.zone) throw new Error(b.diagnostics.map((d) => d.code).join(' '));
  return b.zone;
}

function rr(owner: string, type: number, rdata: string, ttl = 300): WireRecord {
  const o = nameFromText(owner.endsWith('.') ? owner : `${owner}.${ORIGIN}`);
  return { owner: o, type, class: CLASS.IN, ttl, rdata: rdataFromText(type, tokenize(rdata), origin) };
}

function soa(serial: number): WireRecord {
  return rr(ORIGIN, TYPE.SOA, `ns1 host ${serial} 3600 600 86400 300`, 3600);
}

/** The zone's records as sorted text lines (owner in lower case, TTL, type, RDATA hex). */
function lines(z: Zone): string[] {
  return zoneRecords(z)
    .map(
      (r: WireRecord) =>
        `${nameToText(r.owner).toLowerCase()} ${r.ttl} ${r.type} ${Buffer.from(r.rdata).toString('hex')}`,
    )
    .sort();
}

const BASE = `$ORIGIN ${ORIGIN}
$TTL 300
@ 3600 IN SOA ns1 host 1 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
www A 192.0.2.2
mail MX 10 www
sub NS ns.sub
ns.sub A 192.0.2.77
*.wild TXT "w"
${Array.from({ length: 40 }, (_, i) => `h${i} A 198.51.100.${i}`).join('\n')}
`;

/** A small deterministic PRNG, so a failure reproduces. */
function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

t.test('random IXFR sequences: the copy-on-write version equals the full rebuild', async (t) => {
  const rnd = prng(12345);
  let zone = zoneFrom(BASE);
  let serial = 1;
  for (let step = 0; step < 60; step++) {
    const before = lines(zone);
    const held = zoneRecords(zone).filter((r: WireRecord) => r.type !== TYPE.SOA && r.type !== TYPE.NS);
    const deleted: WireRecord[] = [];
    const added: WireRecord[] = [];
    const nDel = Math.floor(rnd() * 3);
    for (let i = 0; i < nDel && held.length > 0; i++) {
      const k = Math.floor(rnd() * held.length);
      deleted.push(held.splice(k, 1)[0]!);
    }
    const nAdd = 1 + Math.floor(rnd() * 3);
    for (let i = 0; i < nAdd; i++) {
      const n = Math.floor(rnd() * 60);
      const kind = rnd();
      if (kind < 0.5) added.push(rr(`h${n}`, TYPE.A, `203.0.113.${n}`));
      else if (kind < 0.8) added.push(rr(`t${n}.deep`, TYPE.TXT, `"v${step}"`, 600));
      else added.push(rr(`h${n}`, TYPE.AAAA, `2001:db8::${n}`));
    }
    const diff: XfrDiff = { fromSoa: soa(serial), toSoa: soa(serial + 1), deleted, added };
    const label = `IXFR step ${step}`;
    const outcome = (f: () => Zone | null): Zone | string => {
      try {
        return f()!;
      } catch (e) {
        return e instanceof ZoneDataError ? e.code : String(e);
      }
    };
    const incremental = outcome(() => applyIxfr(zone, [diff], label));
    const reference = outcome(() => buildTransferred(origin, applyDiffs(zoneRecords(zone), [diff]), label));
    t.same(lines(zone), before, `step ${step}: the old version is unchanged`);
    if (typeof reference === 'string') {
      t.equal(incremental, reference, `step ${step}: refused as the full rebuild refuses it (${reference})`);
      continue;
    }
    if (typeof incremental === 'string') {
      t.fail(`step ${step}: refused (${incremental}) where the full rebuild accepts`);
      continue;
    }
    t.same(lines(incremental), lines(reference), `step ${step}: same records as the full rebuild`);
    t.equal(incremental.serial, serial + 1, `step ${step}: serial from the last SOA`);
    zone = incremental;
    serial++;
  }
});

t.test('a TTL change (delete then add) takes the new TTL; an add to a set keeps its TTL', async (t) => {
  const zone = zoneFrom(BASE);
  const a = rr('www', TYPE.A, '192.0.2.1');
  const b = rr('www', TYPE.A, '192.0.2.2');
  const next = applyIxfr(
    zone,
    [
      {
        fromSoa: soa(1),
        toSoa: soa(2),
        deleted: [a, b],
        added: [rr('www', TYPE.A, '192.0.2.1', 60), rr('www', TYPE.A, '192.0.2.2', 60)],
      },
      { fromSoa: soa(2), toSoa: soa(3), deleted: [], added: [rr('www', TYPE.A, '192.0.2.3', 900)] },
    ],
    'x',
  )!;
  const www = lines(next).filter((l) => l.startsWith(`www.${ORIGIN}`));
  t.same(
    www.map((l) => l.split(' ')[1]),
    ['60', '60', '60'],
    'TTL 60 from the re-added set; the later add joins it',
  );
  t.equal(next.serial, 3);
});

t.test('a deletion of a record the version does not hold is POPDNS_E_IXFR_MISMATCH', async (t) => {
  const zone = zoneFrom(BASE);
  const before = lines(zone);
  t.throws(
    () =>
      applyIxfr(
        zone,
        [{ fromSoa: soa(1), toSoa: soa(2), deleted: [rr('www', TYPE.A, '192.0.2.9')], added: [] }],
        'x',
      ),
    { code: 'POPDNS_E_IXFR_MISMATCH' },
  );
  t.same(lines(zone), before, 'the old version is unchanged');
});

t.test('a result that fails the zone checks is POPDNS_E_XFR_ZONE', async (t) => {
  const zone = zoneFrom(BASE);
  // RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME and other data at one name.
  t.throws(
    () =>
      applyIxfr(
        zone,
        [{ fromSoa: soa(1), toSoa: soa(2), deleted: [], added: [rr('www', TYPE.CNAME, 'mail')] }],
        'x',
      ),
    { code: 'POPDNS_E_XFR_ZONE' },
  );
  // The apex NS removed: a zone without NS at its apex is not served.
  t.throws(
    () =>
      applyIxfr(
        zone,
        [{ fromSoa: soa(1), toSoa: soa(2), deleted: [rr(ORIGIN, TYPE.NS, 'ns1')], added: [] }],
        'x',
      ),
    { code: 'POPDNS_E_XFR_ZONE' },
  );
});

t.test('DNSSEC records in the differences go through the full rebuild (null)', async (t) => {
  const zone = zoneFrom(BASE);
  const nsec = rr('www', TYPE.NSEC, `mail.${ORIGIN} A RRSIG NSEC`);
  t.equal(applyIxfr(zone, [{ fromSoa: soa(1), toSoa: soa(2), deleted: [], added: [nsec] }], 'x'), null);
  t.equal(applyIxfr(zone, [], 'x'), null, 'no differences: nothing to apply');
});

t.test('a signed zone: the SOA RRSIG is listed, so an IXFR can delete it (RFC 1995 §4)', async (t) => {
  // Signatures are not checked here, only carried: a secondary keeps DNSSEC records as received.
  const sig = (covered: string, labels: number, tag: number): string =>
    `${covered} 13 ${labels} 3600 20261214000000 20261130000000 ${tag} ${ORIGIN} ${Buffer.alloc(64, tag % 256).toString('base64')}`;
  const key = `257 3 13 ${Buffer.alloc(64, 7).toString('base64')}`;
  const v1 = [
    soa(1),
    rr(ORIGIN, TYPE.RRSIG, sig('SOA', 2, 1), 3600),
    rr(ORIGIN, TYPE.NS, 'ns1'),
    rr(ORIGIN, TYPE.RRSIG, sig('NS', 2, 1)),
    rr(ORIGIN, TYPE.DNSKEY, key),
    rr(ORIGIN, TYPE.RRSIG, sig('DNSKEY', 2, 1)),
    rr(ORIGIN, TYPE.NSEC, `ns1.${ORIGIN} NS SOA RRSIG NSEC DNSKEY`),
    rr(ORIGIN, TYPE.RRSIG, sig('NSEC', 2, 1)),
    rr('ns1', TYPE.A, '192.0.2.53'),
    rr('ns1', TYPE.RRSIG, sig('A', 3, 1)),
    rr('ns1', TYPE.NSEC, `${ORIGIN} A RRSIG NSEC`),
    rr('ns1', TYPE.RRSIG, sig('NSEC', 3, 1)),
  ];
  const zone = buildTransferred(origin, v1, 'AXFR');
  const listed = zoneRecords(zone);
  const soaSigs = listed.filter((r) => r.type === TYPE.RRSIG && r.rdata[0] === 0 && r.rdata[1] === TYPE.SOA);
  t.equal(soaSigs.length, 1, 'the RRSIG covering the SOA is among the records');
  t.equal(listed.length, v1.length, 'every record, once');
  // The primary re-signed the SOA for serial 2: the IXFR deletes the old SOA RRSIG and adds the new.
  const diff: XfrDiff = {
    fromSoa: soa(1),
    toSoa: soa(2),
    deleted: [rr(ORIGIN, TYPE.RRSIG, sig('SOA', 2, 1), 3600)],
    added: [rr(ORIGIN, TYPE.RRSIG, sig('SOA', 2, 2), 3600)],
  };
  const next = buildTransferred(origin, applyDiffs(listed, [diff]), 'IXFR');
  t.equal(next.serial, 2);
  const after = zoneRecords(next).filter(
    (r) => r.type === TYPE.RRSIG && r.rdata[0] === 0 && r.rdata[1] === TYPE.SOA,
  );
  t.same(
    after.map((r) => Buffer.from(r.rdata).toString('hex')),
    [Buffer.from(diff.added[0]!.rdata).toString('hex')],
    'the new SOA RRSIG replaces the old',
  );
});
