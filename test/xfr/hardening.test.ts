/**
 * Found by trying to break the secondary side (issue #12): an IXFR that does not end at the serial the
 * primary announced falls back to AXFR (RFC 1995 §4 leaves the client free to; Knot and BIND do), network
 * failures carry their code in the log, a flood of NOTIFYs from a stranger is answered and counted but
 * logged once, and config addresses that are not IP addresses are config errors.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import t from 'tap';
import { OPCODE, TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { buildMessage, readMessage, type WireMessage, type WireRecord } from '../../src/wire/records.js';
import type { Zone } from '../../src/zone/zone.js';
import { type Publish, SecondaryManager } from '../../src/xfr/secondary.js';
import { defaultConfig, parseConfig } from '../../src/server/config.js';
import { parseListen } from '../../src/server/listen.js';
import { runCheck } from '../../src/cli/check.js';
import { LogThrottle } from '../../src/xfr/throttle.js';
import { addressesAt, tcpDnsServer, zoneRecords } from '../helpers/fakeprimary.js';
import { tmpDir } from '../helpers/peers.js';

const ORIGIN = 'h.test.';

const recs = (text: string): WireRecord[] => zoneRecords(ORIGIN, text);
const soa = (serial: number): WireRecord => recs(`@ SOA ns1 host ${serial} 3600 600 86400 300`)[0]!;
const base = (): WireRecord[] => recs('@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1');

/** A primary in this process answering each request with one message from `answer`. */
async function scripted(
  t0: Test,
  answer: (req: WireMessage) => WireRecord[],
): Promise<{ port: number; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const srv = await tcpDnsServer(t0, ({ raw, send }) => {
    const req = readMessage(raw);
    const q = req.question[0]!;
    requests.push(q.type === TYPE.IXFR ? 'IXFR' : q.type === TYPE.AXFR ? 'AXFR' : 'SOA');
    send(buildMessage({ id: req.id, flags: 0x8400, question: q, answer: answer(req) }));
  });
  return { ...srv, requests };
}

const aOf = (zone: Zone | undefined, owner: string): string[] => addressesAt(zone, owner, ORIGIN);

t.test('an IXFR ending at the wrong serial falls back to AXFR; network errors carry a code', async (tt) => {
  let serial = 1;
  let full = [soa(1), ...base(), soa(1)];
  const [www9] = recs('www A 192.0.2.9');
  const primary = await scripted(tt, (req) => {
    const qt = req.question[0]!.type;
    if (qt === TYPE.SOA) return [soa(serial)];
    // RFC 1995 §4: announces 3, but its only difference sequence ends at 2 (a broken history).
    if (qt === TYPE.IXFR) return [soa(3), soa(1), soa(2), www9!, soa(3)];
    return full;
  });
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
  const zoneNow = (): Zone | undefined => {
    const p = served.get(ORIGIN);
    return p?.kind === 'zone' ? p.zone : undefined;
  };
  await m.start([{ zone: ORIGIN, primaries: [{ host: '127.0.0.1', port: primary.port }], key: null }], []);
  await m.refreshNow(ORIGIN);
  tt.equal(zoneNow()?.serial, 1, 'AXFR: serial 1');

  serial = 3;
  full = [soa(3), ...recs('@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.3'), soa(3)];
  await m.refreshNow(ORIGIN);
  tt.match(logs.join('\n'), 'POPDNS_E_XFR_MALFORMED', 'the bad IXFR is logged');
  tt.same(primary.requests.slice(-3), ['SOA', 'IXFR', 'AXFR'], 'then AXFR at once');
  tt.equal(zoneNow()?.serial, 3, 'AXFR brought serial 3');
  tt.same(aOf(zoneNow(), 'www'), ['192.0.2.3'], 'the whole zone, not the bad difference');

  await primary.close();
  logs.length = 0;
  await m.refreshNow(ORIGIN);
  tt.match(
    logs.join('\n'),
    /SOA query to 127\.0\.0\.1:\d+ failed: .*\[POPDNS_E_XFR_NET\]/,
    'code on a refused connection',
  );
  tt.equal(zoneNow()?.serial, 3, 'still serving serial 3');
  m.stop();
  await new Promise((r) => setTimeout(r, 200)); // state writes in flight finish before the dir goes
});

t.test('a NOTIFY flood from a stranger is refused and counted, and logged once', async (tt) => {
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(m), error: (m: string) => logs.push(m) };
  const m = new SecondaryManager({ dataDir: tmpDir(tt), keys: new Map(), log, publish: () => {} });
  tt.teardown(() => m.stop());
  // port 1: nothing listens; the zone stays pending, which does not matter to NOTIFY handling
  await m.start([{ zone: ORIGIN, primaries: [{ host: '192.0.2.1', port: 1 }], key: null }], []);
  const notify = buildMessage({
    id: 7,
    flags: (OPCODE.NOTIFY << 11) | 0x0400,
    question: { name: nameFromText(ORIGIN), type: TYPE.SOA, class: 1 },
  });
  let refused = 0;
  for (let i = 0; i < 500; i++) {
    const r = m.notify(notify, '198.51.100.7');
    if (r && (r[3]! & 0x0f) === 5) refused++;
  }
  tt.equal(refused, 500, 'every one answered REFUSED (RFC 1996 §3.10: not from a primary)');
  tt.equal(m.counters.snapshot().notifies.refused, 500, 'every one counted');
  tt.equal(logs.filter((l) => l.includes('POPDNS_E_NOTIFY_REFUSED')).length, 1, 'logged once');
  m.notify(notify, '198.51.100.8');
  tt.equal(
    logs.filter((l) => l.includes('POPDNS_E_NOTIFY_REFUSED')).length,
    1,
    'spoofable: keyed by zone and reason, not by source, so random sources cannot flood the log',
  );
  m.stop();
  await new Promise((r) => setTimeout(r, 100));
});

t.test('LogThrottle: one line per key per interval, then the count of those held back', async (tt) => {
  const th = new LogThrottle(60_000);
  tt.equal(th.line('a', 'x', 0), 'x');
  tt.equal(th.line('a', 'x', 1000), null);
  tt.equal(th.line('b', 'y', 1000), 'y', 'keys are separate');
  tt.equal(th.line('a', 'x', 2000), null);
  tt.equal(th.line('a', 'x', 61_000), 'x (2 more like it since the last such line)');
  tt.equal(th.line('a', 'x', 122_000), 'x', 'nothing held back: the plain line');
});

t.test('addresses that are not IP addresses are config errors', async (tt) => {
  tt.throws(() => parseListen('300.1.1.1:53'), /POPDNS_E_CONFIG/);
  tt.throws(() => parseListen('1.2.3:53'), /POPDNS_E_CONFIG/);
  tt.same(parseListen('192.0.2.1:53'), { host: '192.0.2.1', port: 53, family: 4 });
  const base0 = defaultConfig('test', 1);
  tt.throws(
    () => parseConfig('secondaries:\n  - { zone: a.test, primaries: ["300.1.1.1:53"] }\n', 'c.yaml', base0),
    /c\.yaml:2:.*300\.1\.1\.1:53/,
  );
  const c = parseConfig(
    'secondaries:\n  - { zone: a.test, primaries: ["[2001:db8::1]"] }\n',
    'c.yaml',
    base0,
  );
  tt.same(c.secondaries[0]!.primaries, [{ host: '2001:db8::1', port: 53 }], '[IPv6] without a port: 53');
});

t.test(
  'popdns check --config: a PoP with only secondary zones and no zones directory is fine',
  async (tt) => {
    const dir = tmpDir(tt);
    const cfg = join(dir, 'popdns.yaml');
    writeFileSync(
      cfg,
      `zones: ${join(dir, 'zones')}\nsecondaries:\n  - { zone: a.test, primaries: ["192.0.2.1:53"] }\n`,
    );
    tt.equal(await runCheck([], { config: cfg }), 0, 'missing zones directory: exit 0');
    writeFileSync(cfg, `zones: ${join(dir, 'zones')}\n`);
    tt.equal(await runCheck([], { config: cfg }), 1, 'no zones and nothing followed: still an error');
  },
);
