/**
 * popdns serve signing a zone above the pool's threshold on `signing-threads` (in process): the
 * start signs it on the threads, DO=1 answers carry RRSIGs that verify against the DNSKEY, a reload
 * with one changed record re-signs only it (the signature cache works through the threads), and a
 * config of `signing-threads: 0` signs the same zone on the serving thread.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ALGORITHM, generateKey, verifyRRset, writeKeyFiles } from '../../src/dnssec/keys.js';
import { POOL_MIN_RRSETS } from '../../src/dnssec/signzone.js';
import { defaultConfig } from '../../src/server/config.js';
import { PopdnsServer } from '../../src/server/server.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { buildQuery, udpExchange } from '../helpers/dns.js';
import { freePort, tmpDir } from '../helpers/peers.js';

const NAMES = POOL_MIN_RRSETS + 100;
const ORIGIN = 'threads.test.';

const zoneText = (serial: number, last: string): string =>
  [
    `$ORIGIN ${ORIGIN}`,
    '$TTL 300',
    `@ SOA ns1 hostmaster ${serial} 3600 900 604800 300`,
    '@ NS ns1',
    'ns1 A 192.0.2.53',
    ...Array.from({ length: NAMES }, (_, i) => `h${i} A 10.0.${(i >> 8) & 255}.${i & 255}`),
    `last A ${last}`,
    '',
  ].join('\n');

async function setup(tt: Test, threads: number) {
  const dir = tmpDir(tt);
  const zones = join(dir, 'zones');
  const keys = join(dir, 'keys');
  mkdirSync(zones);
  mkdirSync(keys);
  const file = join(zones, `${ORIGIN}zone`);
  writeFileSync(file, zoneText(1, '192.0.2.1'));
  const key = generateKey(nameFromText(ORIGIN), ALGORITHM.ECDSAP256SHA256, 'csk');
  writeKeyFiles(keys, key);
  const cfg = defaultConfig('test', 1);
  cfg.zones = zones;
  cfg.keys = keys;
  cfg.dataDir = join(dir, 'data');
  cfg.signingThreads = threads;
  cfg.listen = [{ host: '127.0.0.1', port: await freePort(), family: 4 }];
  cfg.metrics = null;
  cfg.control = null;
  const errors: string[] = [];
  const server = new PopdnsServer(cfg, { info: () => {}, error: (m) => errors.push(m) });
  tt.teardown(() => server.close());
  return { file, key, server, errors, port: cfg.listen[0]!.port };
}

/** The A RRset of `name` and its RRSIGs from a DO=1 answer, as wire RDATA. */
async function signedA(port: number, name: string): Promise<{ a: Uint8Array[]; sigs: Uint8Array[] }> {
  const msg = await udpExchange(port, buildQuery(name, 'A', { edns: true, dnssecOk: true }));
  const { default: dnsPacket } = await import('dns-packet');
  const p = dnsPacket.decode(msg!);
  const a: Uint8Array[] = [];
  const sigs: Uint8Array[] = [];
  for (const rr of p.answers ?? []) {
    if (rr.type === 'A') a.push(Uint8Array.from((rr.data as string).split('.').map(Number)));
    if (rr.type === 'RRSIG') {
      const d = rr.data as {
        algorithm: number;
        labels: number;
        originalTTL: number;
        expiration: number;
        inception: number;
        keyTag: number;
        signersName: string;
        signature: Buffer;
      };
      const head = Buffer.alloc(18);
      head.writeUInt16BE(TYPE.A, 0);
      head[2] = d.algorithm;
      head[3] = d.labels;
      head.writeUInt32BE(d.originalTTL, 4);
      head.writeUInt32BE(d.expiration, 8);
      head.writeUInt32BE(d.inception, 12);
      head.writeUInt16BE(d.keyTag, 16);
      sigs.push(Buffer.concat([head, nameFromText(`${d.signersName}.`), d.signature]));
    }
  }
  return { a, sigs };
}

for (const threads of [2, 0]) {
  t.test(`signing-threads ${threads}: a big zone is signed at start and re-signed on reload`, async (tt) => {
    const s = await setup(tt, threads);
    await s.server.start();
    tt.same(s.errors, [], 'no errors');
    const first = s.server.signStats.get(ORIGIN);
    tt.ok(first && first.signatures > NAMES, `${first?.signatures} signatures at start`);
    for (const name of [`h${NAMES - 1}.${ORIGIN}`, `last.${ORIGIN}`]) {
      const { a, sigs } = await signedA(s.port, name);
      tt.equal(sigs.length, 1, `${name}: one RRSIG`);
      const set = { owner: nameFromText(name), type: TYPE.A, ttl: 300, rdatas: a };
      tt.ok(verifyRRset(set, sigs[0]!, s.key.dnskey), `${name}: the RRSIG verifies`);
    }
    writeFileSync(s.file, zoneText(2, '192.0.2.2'));
    const r = await s.server.reloadStepwise();
    tt.ok(r.ok, 'reloaded');
    const again = s.server.signStats.get(ORIGIN)!;
    // The changed A and the new SOA; last's NSEC is unchanged (same next name, same types).
    tt.same(again.signatures, 2, 'only the changed A and the SOA are signed anew');
    tt.equal(again.reused, first!.signatures - 2, 'every other signature reused');
    const { a, sigs } = await signedA(s.port, `last.${ORIGIN}`);
    tt.same([...a[0]!], [192, 0, 2, 2]);
    tt.ok(
      verifyRRset(
        { owner: nameFromText(`last.${ORIGIN}`), type: TYPE.A, ttl: 300, rdatas: a },
        sigs[0]!,
        s.key.dnskey,
      ),
      'the new RRSIG verifies',
    );
  });
}
