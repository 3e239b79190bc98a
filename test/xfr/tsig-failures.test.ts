/**
 * popdns_tsig_failures_total{error,kind} counts a failed TSIG (RFC 8945 §5.2) on every kind of request
 * a server receives: a query, a NOTIFY (both when the server follows secondary zones, whose NOTIFYs the
 * secondary side checks, and when it does not), a zone transfer over TCP and over UDP, and a dynamic
 * update. Each request gets NOTAUTH (RFC 8945 §5.2: BADKEY, BADSIG, BADTIME), and the counter moves
 * under exactly its error and kind.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { tsigKindOf } from '../../src/xfr/counters.js';
import { tsigSign, type TsigKey } from '../../src/wire/tsig.js';
import { buildQuery, tcpExchange, udpExchange } from '../helpers/dns.js';
import { freePort, startProcess, tmpDir } from '../helpers/peers.js';

const SECRET = Buffer.from('tsig-failure-test-key-32-bytes!!').toString('base64');
const KEY: TsigKey = { name: 'k.test.', algorithm: 'hmac-sha256', secret: Buffer.from(SECRET, 'base64') };
const WRONG: TsigKey = { ...KEY, secret: Buffer.from('not-the-secret-the-server-holds!') };
const UNKNOWN: TsigKey = { ...KEY, name: 'nobody.test.' };
const ZONE = `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
`;

/** A message with `opcode` and one question (NOTIFY: SOA; UPDATE: the zone section, RFC 2136 §2.3). */
function request(opcode: number, name: string, type: string): Buffer {
  const m = buildQuery(name, type, { edns: false });
  m.writeUInt16BE(opcode << 11, 2);
  return m;
}

const rcodeOf = (m: Buffer | null | undefined): number => (m ? m.readUInt16BE(2) & 0xf : -1);

async function serve(
  t: Test,
  extra: string[],
): Promise<{ port: number; failures: () => Promise<Map<string, number>> }> {
  const dir = tmpDir(t, 'popdns-tsigfail-');
  mkdirSync(join(dir, 'zones'));
  writeFileSync(join(dir, 'zones', 'example.com.zone'), ZONE);
  const port = await freePort();
  const metrics = await freePort();
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    [
      `zones: ${join(dir, 'zones')}`,
      `listen: ["127.0.0.1:${port}"]`,
      `metrics: 127.0.0.1:${metrics}`,
      `data-dir: ${join(dir, 'data')}`,
      'workers: 1',
      'drain: 0s',
      'tsig-keys:',
      `  k.test: { algorithm: hmac-sha256, secret: "${SECRET}" }`,
      'transfer:',
      '  allow: [{ from: 127.0.0.1/32, key: k.test }]',
      ...extra,
      '',
    ].join('\n'),
  );
  await startProcess(t, process.execPath, ['dist/cli.js', 'serve', '--config', config], (o) =>
    o.includes('ready:'),
  );
  return {
    port,
    failures: async () => {
      const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
      const m = new Map<string, number>();
      for (const x of text.matchAll(/^popdns_tsig_failures_total\{error="(\w+)",kind="(\w+)"\} (\d+)/gm))
        if (Number(x[3]) > 0) m.set(`${x[2]}/${x[1]}`, Number(x[3]));
      return m;
    },
  };
}

t.test('tsigKindOf: opcode and qtype to the kind label', async (t) => {
  t.equal(tsigKindOf(0, 1), 'query');
  t.equal(tsigKindOf(0, 6), 'query');
  t.equal(tsigKindOf(0, 252), 'xfr', 'AXFR');
  t.equal(tsigKindOf(0, 251), 'xfr', 'IXFR');
  t.equal(tsigKindOf(4, 6), 'notify', 'opcode 4 (RFC 1996)');
  t.equal(tsigKindOf(5, 6), 'update', 'opcode 5 (RFC 2136)');
});

t.test('every request kind counts its TSIG failure (server with a secondary zone)', async (t) => {
  const s = await serve(t, [
    'updates:',
    '  example.com:',
    '    - { key: k.test }',
    'secondaries:',
    // A primary nobody answers on: the zone is never loaded; only its NOTIFY handling matters here.
    `  - { zone: sec.test, primaries: ["127.0.0.1:${await freePort()}"], key: k.test }`,
  ]);
  t.same(await s.failures(), new Map(), 'no failures yet');

  // A query signed with a key the server does not have: NOTAUTH, BADKEY.
  const q = tsigSign(buildQuery('example.com', 'SOA', { edns: false }), UNKNOWN).message;
  t.equal(rcodeOf(await udpExchange(s.port, q)), 9, 'query: NOTAUTH');

  // A NOTIFY for the secondary zone with a wrong MAC: NOTAUTH, BADSIG (checked by the secondary side).
  const n = tsigSign(request(4, 'sec.test', 'SOA'), WRONG).message;
  t.equal(rcodeOf(await udpExchange(s.port, n)), 9, 'NOTIFY (secondary zone): NOTAUTH');
  // A NOTIFY for a zone this server does not follow, signed with an unknown key: still BADKEY first.
  const n2 = tsigSign(request(4, 'example.com', 'SOA'), UNKNOWN).message;
  t.equal(rcodeOf(await udpExchange(s.port, n2)), 9, 'NOTIFY (other zone): NOTAUTH');

  // AXFR over TCP signed 20 minutes ago (fudge 300 s): NOTAUTH, BADTIME.
  const old = Math.floor(Date.now() / 1000) - 1200;
  const axfr = tsigSign(buildQuery('example.com', 'AXFR', { edns: false }), KEY, { now: old }).message;
  t.equal(rcodeOf((await tcpExchange(s.port, [axfr]))[0]), 9, 'AXFR: NOTAUTH');
  // IXFR over UDP with a wrong MAC: NOTAUTH, BADSIG.
  const ixfr = tsigSign(buildQuery('example.com', 'IXFR', { edns: false }), WRONG).message;
  t.equal(rcodeOf(await udpExchange(s.port, ixfr)), 9, 'IXFR over UDP: NOTAUTH');

  // An UPDATE signed with a wrong MAC, over TCP: NOTAUTH, BADSIG.
  const u = tsigSign(request(5, 'example.com', 'SOA'), WRONG).message;
  t.equal(rcodeOf((await tcpExchange(s.port, [u]))[0]), 9, 'UPDATE: NOTAUTH');

  t.same(
    await s.failures(),
    new Map([
      ['query/badkey', 1],
      ['notify/badsig', 1],
      ['notify/badkey', 1],
      ['xfr/badtime', 1],
      ['xfr/badsig', 1],
      ['update/badsig', 1],
    ]),
    'one failure per request, under its kind and error',
  );
});

t.test('a NOTIFY to a server that follows no zones counts too', async (t) => {
  const s = await serve(t, []);
  const n = tsigSign(request(4, 'example.com', 'SOA'), WRONG).message;
  t.equal(rcodeOf(await udpExchange(s.port, n)), 9, 'NOTIFY: NOTAUTH');
  const old = Math.floor(Date.now() / 1000) - 1200;
  const u = tsigSign(request(5, 'example.com', 'SOA'), KEY, { now: old }).message;
  t.equal(rcodeOf(await udpExchange(s.port, u)), 9, 'UPDATE (no updates: configured): NOTAUTH');
  t.same(
    await s.failures(),
    new Map([
      ['notify/badsig', 1],
      ['update/badtime', 1],
    ]),
  );
});
