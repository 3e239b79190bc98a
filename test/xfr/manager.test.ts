/**
 * The secondary side against a scripted primary (a TCP server in this process): AXFR, multi-message
 * IXFR with two difference sequences, IXFR refused → AXFR, a transfer cut off half-way, a version that
 * fails the zone checks, IXFR differences that do not apply → AXFR; then a restart with the primary
 * gone serves the saved version at once, and a saved version older than `expire` is not served.
 * Expected zone contents follow RFC 1995 §4 and RFC 5936, written out here, not taken from our output.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Test } from 'tap';
import t from 'tap';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import {
  buildMessage,
  readMessage,
  soaSerial,
  type WireMessage,
  type WireRecord,
} from '../../src/wire/records.js';
import { parseZoneFile } from '../../src/zone/load.js';
import type { Zone } from '../../src/zone/zone.js';
import { type Publish, SecondaryManager } from '../../src/xfr/secondary.js';
import { addressesAt, tcpDnsServer, zoneRecords } from '../helpers/fakeprimary.js';
import { tmpDir } from '../helpers/peers.js';

const ORIGIN = 'x.test.';

const recs = (text: string): WireRecord[] => zoneRecords(ORIGIN, text);

const soa = (serial: number): WireRecord => recs(`@ SOA ns1 host ${serial} 3600 600 86400 300`)[0]!;
const base = (): WireRecord[] => recs('@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1');

type Script = (req: WireMessage) => { messages: WireRecord[][]; rcode?: number; cut?: boolean };

/** A primary that answers each request by the current script: framed messages, maybe cut short. */
async function fakePrimary(t0: Test): Promise<{ port: number; script: { fn: Script }; requests: string[] }> {
  const state = { fn: (() => ({ messages: [] })) as Script };
  const requests: string[] = [];
  const { port } = await tcpDnsServer(t0, ({ raw, send, sock }) => {
    const req = readMessage(raw);
    const q = req.question[0]!;
    requests.push(
      q.type === TYPE.IXFR
        ? `IXFR ${soaSerial(req.authority[0]!.rdata)}`
        : q.type === TYPE.AXFR
          ? 'AXFR'
          : 'SOA',
    );
    const r = state.fn(req);
    const msgs = r.messages.length ? r.messages : [[]];
    msgs.forEach((answer, i) => {
      if (r.cut && i === msgs.length - 1) return;
      send(buildMessage({ id: req.id, flags: 0x8400 | (r.rcode ?? 0), question: q, answer }));
    });
    if (r.cut) sock.end();
  });
  return { port, script: state, requests };
}

const aOf = (zone: Zone | undefined, owner: string): string[] => addressesAt(zone, owner, ORIGIN);

t.test('transfers against a scripted primary', async (tt) => {
  const primary = await fakePrimary(tt);
  const dataDir = tmpDir(tt);
  const served = new Map<string, Publish>();
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(m), error: (m: string) => logs.push(m) };
  const make = (): SecondaryManager =>
    new SecondaryManager({ dataDir, keys: new Map(), log, publish: (z, p) => served.set(z, p) });
  const zoneNow = (): Zone | undefined => {
    const p = served.get(ORIGIN);
    return p?.kind === 'zone' ? p.zone : undefined;
  };
  let serial = 1;
  let v1 = [soa(1), ...base()];
  const soaAnswer = (req: WireMessage): WireRecord[][] | null =>
    req.question[0]!.type === TYPE.SOA ? [[soa(serial)]] : null;

  // 1. AXFR in two messages.
  primary.script.fn = (req) => ({ messages: soaAnswer(req) ?? [v1.slice(0, 2), [...v1.slice(2), soa(1)]] });
  const m = make();
  tt.teardown(() => m.stop());
  await m.start([{ zone: ORIGIN, primaries: [{ host: '127.0.0.1', port: primary.port }], key: null }], []);
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow()?.serial, 1, 'AXFR: serial 1 served');
  tt.same(aOf(zoneNow(), 'www'), ['192.0.2.1']);

  // 2. IXFR 1 → 3 as two difference sequences across two messages (RFC 1995 §4).
  serial = 3;
  const [www1] = recs('www A 192.0.2.1');
  const [www2] = recs('www A 192.0.2.2');
  const [mail3] = recs('mail A 192.0.2.25');
  primary.script.fn = (req) => ({
    messages: soaAnswer(req) ?? [
      [soa(3), soa(1), www1!, soa(2), www2!],
      [soa(2), soa(3), mail3!, soa(3)],
    ],
  });
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow()?.serial, 3, 'IXFR: serial 3 served');
  tt.same(aOf(zoneNow(), 'www'), ['192.0.2.2'], 'www changed by the first sequence');
  tt.same(aOf(zoneNow(), 'mail'), ['192.0.2.25'], 'mail added by the second');
  tt.same(primary.requests.slice(-2), ['SOA', 'IXFR 1'], 'asked for IXFR from serial 1');
  tt.match(logs.join('\n'), 'IXFR serial 1 -> 3');

  // 3. IXFR refused, AXFR cut off half-way: serial 3 stays.
  serial = 4;
  const v4 = [soa(4), ...base()];
  primary.script.fn = (req) =>
    soaAnswer(req)
      ? { messages: soaAnswer(req)! }
      : req.question[0]!.type === TYPE.IXFR
        ? { messages: [[]], rcode: 5 }
        : { messages: [v4.slice(0, 2), [...v4.slice(2), soa(4)]], cut: true };
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow()?.serial, 3, 'a truncated AXFR never replaces the good version');
  tt.same(primary.requests.slice(-3), ['SOA', 'IXFR 3', 'AXFR'], 'IXFR refused → AXFR');
  tt.match(logs.join('\n'), /AXFR serial 3 failed.*closed before the answer was complete/);

  // 4. A version that fails the zone checks (CNAME beside other data): serial 3 stays.
  serial = 5;
  const bad = [soa(5), ...base(), ...recs('www CNAME ns1')];
  primary.script.fn = (req) =>
    soaAnswer(req)
      ? { messages: soaAnswer(req)! }
      : req.question[0]!.type === TYPE.IXFR
        ? { messages: [[]], rcode: 4 }
        : { messages: [[...bad, soa(5)]] };
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow()?.serial, 3, 'a broken version is not served');
  tt.match(logs.join('\n'), 'POPDNS_E_CNAME_AND_OTHER');

  // 5. IXFR that deletes a record we do not hold → AXFR.
  serial = 6;
  v1 = [soa(6), ...base(), ...recs('mail A 192.0.2.26')];
  const [ghost] = recs('ghost A 192.0.2.99');
  primary.script.fn = (req) =>
    soaAnswer(req)
      ? { messages: soaAnswer(req)! }
      : req.question[0]!.type === TYPE.IXFR
        ? { messages: [[soa(6), soa(3), ghost!, soa(6), soa(6)]] }
        : { messages: [[...v1, soa(6)]] };
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow()?.serial, 6, 'IXFR that does not apply → AXFR: serial 6');
  tt.same(aOf(zoneNow(), 'mail'), ['192.0.2.26']);
  tt.match(logs.join('\n'), 'POPDNS_E_IXFR_MISMATCH');
  m.stop();

  // 6. Restart with the primary gone: the saved version is served at once.
  served.clear();
  const m2 = new SecondaryManager({ dataDir, keys: new Map(), log, publish: (z, p) => served.set(z, p) });
  tt.teardown(() => m2.stop());
  await m2.start([{ zone: ORIGIN, primaries: [{ host: '127.0.0.1', port: 1 }], key: null }], []);
  tt.equal(zoneNow()?.serial, 6, 'restart: saved serial 6 served before any contact');
  m2.stop();

  // 7. A saved version whose last contact is older than the SOA expire (86400 s) is not served.
  const statePath = m2.store.statePath(ORIGIN);
  const st = JSON.parse(readFileSync(statePath, 'utf8')) as { lastContact: number };
  st.lastContact -= 90_000;
  writeFileSync(statePath, JSON.stringify(st));
  served.clear();
  const m3 = new SecondaryManager({ dataDir, keys: new Map(), log, publish: (z, p) => served.set(z, p) });
  tt.teardown(() => m3.stop());
  await m3.start([{ zone: ORIGIN, primaries: [{ host: '127.0.0.1', port: 1 }], key: null }], []);
  tt.equal(served.get(ORIGIN)?.kind, 'unavailable', 'expired: SERVFAIL, not the stale data');
  tt.match(
    served.get(ORIGIN),
    { reason: /^expired: .*POPDNS_E_ZONE_EXPIRED/ },
    'with the reason, for /zones',
  );
  tt.match(m3.unready(), [`${ORIGIN} (expired)`], '/readyz names it');
  tt.match(logs.join('\n'), 'POPDNS_E_ZONE_EXPIRED');
  m3.stop();
  await new Promise((r) => setTimeout(r, 200)); // state writes in flight finish before the dir goes
});

t.test('catalog members: add, reset (§5.6), change of ownership (§5.4), removal', async (tt) => {
  const primary = await fakePrimary(tt);
  const zones = new Map<string, { serial: number; body: string }>();
  const zoneRecs = (name: string): WireRecord[] => {
    const z = zones.get(name)!;
    return parseZoneFile(`${name}zone`, {
      text: `$ORIGIN ${name}\n$TTL 300\n@ SOA ns1.invalid. host.invalid. ${z.serial} 3600 600 86400 300\n@ NS ns1.invalid.\n${z.body}`,
    }).records.map((r) => ({ owner: r.owner, type: r.type, class: r.class, ttl: r.ttl, rdata: r.rdata }));
  };
  let memberAxfrs = 0;
  primary.script.fn = (req) => {
    const q = req.question[0]!;
    const name = Buffer.from(q.name).toString('latin1');
    const key = [...zones.keys()].find((k) => Buffer.from(nameFromText(k)).toString('latin1') === name);
    if (!key) return { messages: [[]], rcode: 9 };
    const all = zoneRecs(key);
    if (q.type === TYPE.SOA) return { messages: [[all[0]!]] };
    if (key === 'm.test.') memberAxfrs++;
    return { messages: [[...all, all[0]!]] };
  };
  const setZone = (name: string, body: string): void => {
    zones.set(name, { serial: (zones.get(name)?.serial ?? 0) + 1, body });
  };
  setZone('cat-a.test.', 'version TXT "2"\nid1.zones PTR m.test.');
  setZone('cat-b.test.', 'version TXT "2"');
  setZone('m.test.', 'www A 192.0.2.7');
  const served = new Map<string, Publish>();
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(m), error: (m: string) => logs.push(m) };
  const m = new SecondaryManager({
    dataDir: tmpDir(tt),
    keys: new Map(),
    log,
    publish: (z, p) => served.set(z, p),
  });
  tt.teardown(() => m.stop());
  const peer = [{ host: '127.0.0.1', port: primary.port }];
  await m.start(
    [],
    [
      { zone: 'cat-a.test.', primaries: peer, key: null },
      { zone: 'cat-b.test.', primaries: peer, key: null },
    ],
  );
  const catalogs = async (): Promise<void> => {
    await m.refreshNow('cat-a.test.');
    await m.refreshNow('cat-b.test.');
    await m.refreshNow('m.test.');
  };
  await catalogs();
  tt.equal(served.get('m.test.')?.kind, 'zone', 'member of catalog A served');
  tt.equal(served.has('cat-a.test.'), false, 'the catalog itself is not served');
  const catalogOf = (): string | null => m.status().find((s) => s.zone === 'm.test.')?.catalog ?? null;
  tt.equal(catalogOf(), 'cat-a.test.');
  tt.equal(memberAxfrs, 1);

  // §5.6: a new unique ID resets the member: its data goes and it is transferred again.
  setZone('cat-a.test.', 'version TXT "2"\nid2.zones PTR m.test.');
  await catalogs();
  tt.match(logs.join('\n'), 'member m.test. reset (id id1 -> id2)');
  tt.equal(served.get('m.test.')?.kind, 'zone', 'served again after the reset');
  tt.equal(memberAxfrs, 2, 'transferred afresh');

  // Listed by catalog B too, without coo in A: stays with A.
  setZone('cat-b.test.', 'version TXT "2"\nid2.zones PTR m.test.');
  await catalogs();
  tt.equal(catalogOf(), 'cat-a.test.', 'no coo: ownership stays');
  tt.match(logs.join('\n'), 'POPDNS_W_CATALOG_CONFLICT');

  // §5.4: A's coo names B: the member moves, keeping its data (same unique ID).
  setZone('cat-a.test.', 'version TXT "2"\nid2.zones PTR m.test.\ncoo.id2.zones PTR cat-b.test.');
  await catalogs();
  tt.equal(catalogOf(), 'cat-b.test.', 'moved to catalog B');
  tt.equal(memberAxfrs, 2, 'data kept: no new transfer');

  // A drops it: B owns it, nothing changes. B drops it: removed.
  setZone('cat-a.test.', 'version TXT "2"');
  await catalogs();
  tt.equal(served.get('m.test.')?.kind, 'zone', 'still served (owned by B)');
  setZone('cat-b.test.', 'version TXT "2"');
  await catalogs();
  tt.equal(served.get('m.test.')?.kind, 'removed', 'removed from its catalog: no longer served');

  // A catalog with another version is ignored as a whole.
  setZone('cat-a.test.', 'version TXT "1"\nid9.zones PTR n.test.');
  await catalogs();
  tt.equal(served.has('n.test.'), false, 'version 1 catalog ignored');
  tt.match(logs.join('\n'), 'POPDNS_E_CATALOG_VERSION');
  m.stop();
  await new Promise((r) => setTimeout(r, 200)); // state writes in flight finish before the dir goes
});
