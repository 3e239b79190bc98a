/**
 * The RFC 2136 engine, case by case: updates built by hand from RFC 2136 §2 (class ANY/NONE forms,
 * TTL 0, empty RDATA), expected rcodes and zone contents from §3.2 and §3.4.
 */
import t from 'tap';
import { parseUpdatesSection, matchPattern } from '../../src/update/config.js';
import { applyUpdate, parseUpdate, UPDATE_RCODE, type ParsedUpdate } from '../../src/update/engine.js';
import { nextSerial } from '../../src/update/serial.js';
import { CLASS, TYPE, typeFromText } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import { rdataFromText, rdataToText, tokenize } from '../../src/wire/rdata.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, findNode, type Zone } from '../../src/zone/zone.js';
import { parseDocument } from 'yaml';

const ORIGIN = nameFromText('example.com.');
const ZONE = `$TTL 300
@ IN SOA ns1 hostmaster 2026113001 3600 600 86400 300
@ IN NS ns1
@ IN NS ns2
ns1 IN A 192.0.2.1
ns2 IN A 192.0.2.2
www IN A 192.0.2.10
www IN A 192.0.2.11
alias IN CNAME www
`;
/** 2026-11-30 12:00 UTC: a date serial 2026113001 counts up to ...02. */
const NOW = Date.UTC(2026, 10, 30, 12) / 1000;

function zone(): Zone {
  const b = buildZone(parseMasterFile(ZONE, { file: 'example.com.zone', origin: ORIGIN }));
  if (!b.zone) throw new Error('test zone does not build');
  return b.zone;
}

interface RR {
  name: string;
  type: string;
  cls?: number;
  ttl?: number;
  rdata?: string;
}

function wireRR(r: RR): Buffer {
  const type = typeFromText(r.type)!;
  const rdata = r.rdata === undefined ? new Uint8Array(0) : rdataFromText(type, tokenize(r.rdata), ORIGIN);
  const head = Buffer.alloc(10);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(r.cls ?? CLASS.IN, 2);
  head.writeUInt32BE(r.ttl ?? 0, 4);
  head.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([nameFromText(r.name, ORIGIN), head, rdata]);
}

/** An UPDATE message: zone section (SOA, IN), prerequisites, updates (RFC 2136 §2). */
function msg(prereqs: RR[], updates: RR[], zoneName = 'example.com.'): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x1234, 0);
  h.writeUInt16BE(5 << 11, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(prereqs.length, 6);
  h.writeUInt16BE(updates.length, 8);
  const z = Buffer.concat([nameFromText(zoneName), Buffer.from([0, 6, 0, 1])]);
  return Buffer.concat([h, z, ...prereqs.map(wireRR), ...updates.map(wireRR)]);
}

const rules = parseUpdatesSection(
  parseDocument(`
example.com:
  - { key: acme, names: ["_acme-challenge", "_acme-challenge.*"], types: [TXT] }
  - { key: ops }
`).contents!,
  (_n, m) => {
    throw new Error(m);
  },
).get('example.com.')!;

function run(prereqs: RR[], updates: RR[], key: string | null = 'ops.', z = zone()) {
  const u = parseUpdate(msg(prereqs, updates)) as ParsedUpdate;
  return applyUpdate(z, u, { key, rules, now: NOW });
}

/** The RDATAs at name/type of a zone, as text, sorted. */
function at(z: Zone, name: string, type: string): string[] {
  const n = findNode(z, nameFromText(name, ORIGIN));
  const set = n?.rrsets.get(typeFromText(type)!);
  return set ? set.rdatas.map((r) => rdataToText(set.type, r, ORIGIN)).sort() : [];
}
function ttl(z: Zone, name: string, type: string): number | undefined {
  return findNode(z, nameFromText(name, ORIGIN))?.rrsets.get(typeFromText(type)!)?.ttl;
}

t.test('policy config: names relative, * = one or more labels', (tt) => {
  tt.equal(rules[0]!.key, 'acme.');
  tt.ok(matchPattern(['_acme-challenge'], ['_acme-challenge']));
  tt.ok(matchPattern(['_acme-challenge', 'www'], ['_acme-challenge', '*']));
  tt.ok(matchPattern(['_acme-challenge', 'a', 'b'], ['_acme-challenge', '*']));
  tt.notOk(matchPattern(['_acme-challenge'], ['_acme-challenge', '*']), '* is at least one label');
  tt.notOk(matchPattern(['www'], ['_acme-challenge']));
  tt.end();
});

t.test('add: serial bumped in date style, record served, changeset', (tt) => {
  const r = run([], [{ name: '_acme-challenge', type: 'TXT', ttl: 60, rdata: '"tok"' }], 'acme.');
  tt.equal(r.rcode, UPDATE_RCODE.NOERROR);
  tt.same(at(r.zone!, '_acme-challenge', 'TXT'), ['"tok"']);
  tt.equal(r.zone!.serial, 2026113002);
  tt.equal(r.removed.length, 1, 'only the old SOA removed');
  tt.equal(r.added.length, 2, 'new SOA + the TXT');
  tt.equal(r.added[0]!.type, TYPE.SOA);
  tt.end();
});

t.test('prerequisites (RFC 2136 §2.4, §3.2)', (tt) => {
  const add = [{ name: 'new', type: 'A', ttl: 60, rdata: '192.0.2.99' }];
  tt.equal(
    run([{ name: 'www', type: 'A', cls: CLASS.ANY }], add).rcode,
    UPDATE_RCODE.NOERROR,
    'RRset exists',
  );
  tt.equal(
    run([{ name: 'www', type: 'MX', cls: CLASS.ANY }], add).rcode,
    UPDATE_RCODE.NXRRSET,
    'RRset missing',
  );
  tt.equal(run([{ name: 'www', type: 'A', cls: CLASS.NONE }], add).rcode, UPDATE_RCODE.YXRRSET);
  tt.equal(run([{ name: 'www', type: 'MX', cls: CLASS.NONE }], add).rcode, UPDATE_RCODE.NOERROR);
  tt.equal(run([{ name: 'nope', type: 'ANY', cls: CLASS.ANY }], add).rcode, UPDATE_RCODE.NXDOMAIN);
  tt.equal(run([{ name: 'www', type: 'ANY', cls: CLASS.ANY }], add).rcode, UPDATE_RCODE.NOERROR);
  tt.equal(run([{ name: 'www', type: 'ANY', cls: CLASS.NONE }], add).rcode, UPDATE_RCODE.YXDOMAIN);
  tt.equal(run([{ name: 'nope', type: 'ANY', cls: CLASS.NONE }], add).rcode, UPDATE_RCODE.NOERROR);
  // Value-dependent: the whole RRset, in any order.
  const both = [
    { name: 'www', type: 'A', rdata: '192.0.2.11' },
    { name: 'www', type: 'A', rdata: '192.0.2.10' },
  ];
  tt.equal(run(both, add).rcode, UPDATE_RCODE.NOERROR, 'value-dependent, exact set');
  tt.equal(run(both.slice(0, 1), add).rcode, UPDATE_RCODE.NXRRSET, 'a subset is not the RRset');
  tt.equal(
    run([{ name: 'www', type: 'A', ttl: 5, cls: CLASS.ANY }], add).rcode,
    UPDATE_RCODE.FORMERR,
    'TTL not 0',
  );
  tt.equal(
    run([{ name: 'www', type: 'A', cls: CLASS.ANY, rdata: '192.0.2.1' }], add).rcode,
    UPDATE_RCODE.FORMERR,
    'class ANY with RDATA',
  );
  tt.equal(run([{ name: 'www.example.org.', type: 'A', cls: CLASS.ANY }], add).rcode, UPDATE_RCODE.NOTZONE);
  const failed = run([{ name: 'www', type: 'MX', cls: CLASS.ANY }], add);
  tt.notOk(failed.zone, 'nothing applied on a failed prerequisite');
  tt.end();
});

t.test('update section prescan (§3.4.1)', (tt) => {
  tt.equal(
    run([], [{ name: 'x.example.org.', type: 'A', ttl: 1, rdata: '192.0.2.1' }]).rcode,
    UPDATE_RCODE.NOTZONE,
  );
  tt.equal(
    run([], [{ name: 'www', type: 'A', cls: CLASS.ANY, rdata: '192.0.2.1' }]).rcode,
    UPDATE_RCODE.FORMERR,
  );
  tt.equal(
    run([], [{ name: 'www', type: 'A', cls: CLASS.NONE, ttl: 5, rdata: '192.0.2.1' }]).rcode,
    UPDATE_RCODE.FORMERR,
  );
  tt.equal(
    run([], [{ name: 'www', type: 'A', cls: 3, ttl: 5, rdata: '192.0.2.1' }]).rcode,
    UPDATE_RCODE.FORMERR,
  );
  const bad = msg([], []);
  bad.writeUInt16BE(2, 4);
  tt.type(parseUpdate(bad), 'string', 'a zone count the message does not hold');
  tt.end();
});

t.test('§3.4.2 rules', (tt) => {
  // SOA: replaced only by a newer serial.
  const soa = (serial: number) => ({
    name: '@',
    type: 'SOA',
    ttl: 300,
    rdata: `ns1 hostmaster ${serial} 3600 600 86400 300`,
  });
  // ops may not touch the apex SOA: a rule that names the type may.
  const z = zone();
  const withSoa = [{ key: 'ops.', names: null, types: new Set([TYPE.SOA]) }];
  const lower = applyUpdate(z, parseUpdate(msg([], [soa(2026113000)])) as ParsedUpdate, {
    key: 'ops.',
    rules: withSoa,
    now: NOW,
  });
  tt.equal(lower.rcode, UPDATE_RCODE.NOERROR);
  tt.notOk(lower.zone, 'a lower serial is ignored (no change)');
  const higher = applyUpdate(z, parseUpdate(msg([], [soa(2026113050)])) as ParsedUpdate, {
    key: 'ops.',
    rules: withSoa,
    now: NOW,
  });
  tt.equal(higher.zone?.serial, 2026113050, 'a higher serial replaces the SOA (and is not bumped again)');
  tt.equal(
    run([], [soa(2026113050)]).rcode,
    UPDATE_RCODE.REFUSED,
    'a key without types may not change the apex SOA',
  );

  // Apex NS: delete RRset ignored; the last NS is never removed.
  const delNs = run([], [{ name: '@', type: 'NS', cls: CLASS.ANY }]);
  tt.notOk(delNs.zone, 'deleting the apex NS RRset is ignored');
  const delOne = run(
    [],
    [
      { name: '@', type: 'NS', cls: CLASS.NONE, rdata: 'ns1' },
      { name: '@', type: 'NS', cls: CLASS.NONE, rdata: 'ns2' },
    ],
  );
  tt.same(at(delOne.zone!, '@', 'NS'), ['ns2'], 'one NS goes, the last stays');

  // CNAME and other data.
  tt.notOk(
    run([], [{ name: 'alias', type: 'A', ttl: 60, rdata: '192.0.2.5' }]).zone,
    'A at a CNAME owner ignored',
  );
  tt.notOk(
    run([], [{ name: 'www', type: 'CNAME', ttl: 60, rdata: 'alias' }]).zone,
    'CNAME at an A owner ignored',
  );
  const cname = run([], [{ name: 'alias', type: 'CNAME', ttl: 60, rdata: 'ns1' }]);
  tt.same(at(cname.zone!, 'alias', 'CNAME'), ['ns1'], 'a CNAME replaces the CNAME');

  // Duplicates ignored; TTL unified.
  tt.notOk(
    run([], [{ name: 'www', type: 'A', ttl: 300, rdata: '192.0.2.10' }]).zone,
    'duplicate add: no change',
  );
  const t2 = run([], [{ name: 'www', type: 'A', ttl: 60, rdata: '192.0.2.12' }]);
  tt.equal(ttl(t2.zone!, 'www', 'A'), 60, 'the RRset takes the new TTL');
  tt.same(at(t2.zone!, 'www', 'A'), ['192.0.2.10', '192.0.2.11', '192.0.2.12']);

  // Delete all RRsets at a name; at the apex SOA and NS stay.
  const all = run([], [{ name: 'www', type: 'ANY', cls: CLASS.ANY }]);
  tt.same(at(all.zone!, 'www', 'A'), []);
  tt.equal(all.removed.length, 3, 'old SOA + two A');
  const apex = run([], [{ name: '@', type: 'TXT', ttl: 60, rdata: '"x"' }]);
  const apexAll = applyUpdate(
    apex.zone!,
    parseUpdate(msg([], [{ name: '@', type: 'ANY', cls: CLASS.ANY }])) as ParsedUpdate,
    {
      key: 'ops.',
      rules,
      now: NOW,
    },
  );
  tt.same(at(apexAll.zone!, '@', 'TXT'), []);
  tt.same(at(apexAll.zone!, '@', 'NS'), ['ns1', 'ns2']);
  tt.equal(apexAll.zone!.serial, 2026113003);
  tt.end();
});

t.test('policy: a key changes only what it may; all or nothing', (tt) => {
  const ok = { name: '_acme-challenge.www', type: 'TXT', ttl: 60, rdata: '"t"' };
  tt.equal(run([], [ok], 'acme.').rcode, UPDATE_RCODE.NOERROR);
  tt.equal(
    run([], [{ name: 'www', type: 'A', ttl: 60, rdata: '192.0.2.1' }], 'acme.').rcode,
    UPDATE_RCODE.REFUSED,
  );
  tt.equal(
    run([], [{ name: '_acme-challenge', type: 'A', ttl: 60, rdata: '192.0.2.1' }], 'acme.').rcode,
    UPDATE_RCODE.REFUSED,
  );
  tt.equal(
    run([], [{ name: '_acme-challenge', type: 'ANY', cls: CLASS.ANY }], 'acme.').rcode,
    UPDATE_RCODE.REFUSED,
    'delete-all needs an any-type rule',
  );
  const mixed = run([], [ok, { name: 'www', type: 'TXT', ttl: 60, rdata: '"t"' }], 'acme.');
  tt.equal(mixed.rcode, UPDATE_RCODE.REFUSED);
  tt.notOk(mixed.zone, 'nothing applied');
  tt.equal(run([], [ok], null).rcode, UPDATE_RCODE.REFUSED, 'unsigned');
  tt.equal(run([], [ok], 'other.').rcode, UPDATE_RCODE.REFUSED, 'a key with no rule for the zone');
  tt.end();
});

t.test('an update that would make the zone invalid is refused whole', (tt) => {
  // A delegation to an in-bailiwick name server without its address (glue) fails the zone-file checks.
  const r = run([], [{ name: 'sub', type: 'NS', ttl: 60, rdata: 'ns.sub' }]);
  tt.equal(r.rcode, UPDATE_RCODE.REFUSED);
  tt.match(r.reason, /POPDNS_E_/, 'the code of the zone check is in the reason');
  tt.notOk(r.zone);
  const glued = run(
    [],
    [
      { name: 'sub', type: 'NS', ttl: 60, rdata: 'ns.sub' },
      { name: 'ns.sub', type: 'A', ttl: 60, rdata: '192.0.2.53' },
      { name: 'sub', type: 'CNAME', ttl: 60, rdata: 'www' },
    ],
  );
  tt.equal(glued.rcode, UPDATE_RCODE.NOERROR, glued.reason ?? 'applied');
  tt.same(at(glued.zone!, 'sub', 'CNAME'), [], 'CNAME beside NS ignored (§3.4.2.2)');
  tt.end();
});

t.test('nextSerial (RFC 1982, style kept)', (tt) => {
  tt.equal(nextSerial(5, NOW), 6);
  tt.equal(nextSerial(0xffffffff, NOW), 0, 'wraps');
  tt.equal(nextSerial(2026112901, NOW), 2026113000, 'date style moves to today nn=00');
  tt.equal(nextSerial(2026113099, NOW), 2026113100, 'date style counts up past today');
  tt.equal(nextSerial(NOW - 100, NOW), NOW, 'unixtime moves to now');
  tt.equal(nextSerial(NOW + 100, NOW), NOW + 101, 'unixtime ahead counts up');
  tt.end();
});

t.test('parseUpdate: compressed names expanded, empty RDATA of deletes kept', (tt) => {
  const m = msg([], [{ name: 'www', type: 'NS', cls: CLASS.ANY }]);
  const u = parseUpdate(m) as ParsedUpdate;
  tt.equal(u.updates[0]!.rdata.length, 0);
  tt.equal(nameToText(u.zone!.name), 'example.com.');
  tt.end();
});
