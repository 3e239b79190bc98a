/**
 * Dynamic updates of zones popdns signs, end to end: one `popdns serve` signs example.com. (NSEC)
 * and example.net. (NSEC3) with keys of their own; nsupdate (TSIG) adds a TXT at a new name,
 * changes an existing RRset and deletes a name in each. After each, delv (one static trust anchor: the zone's DNSKEY, `+root`) must
 * validate the new record and the denial (NXDOMAIN) of the removed name; dnssec-verify must pass on
 * an AXFR of the updated zone; IXFR from the first serial must carry RRSIG and NSEC/NSEC3 changes;
 * after a restart (journal replayed, zone signed again) the answers are the same and validate.
 */
import { createSocket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type DnssecKey, generateKey, writeKeyFiles } from '../../src/dnssec/keys.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { rdataToText } from '../../src/wire/rdata.js';
import { freePort, needTool, type Proc, startProcess, stopProcess, tmpDir } from '../helpers/peers.js';
import { delvWith } from '../helpers/validators.js';
import { spawnSync } from '../helpers/spawn.js';

const OPS = Buffer.from('ops-key-for-popdns-signed-updates').toString('base64');
/** The zone, for origin `z` (example.com. signed with NSEC, example.net. with NSEC3). */
const zoneText = (z: string): string => `$ORIGIN ${z}
$TTL 300
@ SOA ns1 hostmaster 2026113001 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
gone A 192.0.2.99
a.b TXT "below an empty non-terminal"
`;

/** A free port: in POPDNS_TEST_PORT_BASE..+999 when set (shared machines), else any. */
async function port(): Promise<number> {
  const base = Number(process.env.POPDNS_TEST_PORT_BASE ?? 0);
  if (!base) return freePort();
  for (let i = 0; i < 200; i++) {
    const p = base + Math.floor(Math.random() * 1000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(p, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return p;
  }
  throw new Error('no free port');
}

function run(cmd: string, args: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20000, ...(input ? { input } : {}) });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

const ZONES: readonly { zone: string; denial: string; chainType: string }[] = [
  { zone: 'example.com', denial: 'nsec', chainType: 'NSEC' },
  { zone: 'example.net', denial: 'nsec3', chainType: 'NSEC3' },
];

t.test('updates of signed zones (NSEC, NSEC3): delv, dnssec-verify, IXFR, restart', async (t: Test) => {
  if (
    !needTool(t, 'nsupdate', 'bind9-dnsutils') ||
    !needTool(t, 'delv', 'bind9-dnsutils') ||
    !needTool(t, 'dnssec-verify', 'bind9-dnssec-utils')
  )
    return;
  const dir = tmpDir(t, 'popdns-signed-update-');
  mkdirSync(join(dir, 'zones'));
  mkdirSync(join(dir, 'keys'));
  const keys = new Map<string, DnssecKey>();
  for (const { zone } of ZONES) {
    writeFileSync(join(dir, 'zones', `${zone}.zone`), zoneText(`${zone}.`));
    const key = generateKey(nameFromText(`${zone}.`), 13, 'csk');
    writeKeyFiles(join(dir, 'keys'), key);
    keys.set(zone, key);
  }
  const p53 = await port();
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    `zones: ${join(dir, 'zones')}
keys: ${join(dir, 'keys')}
dnssec:
${ZONES.map((z) => `  ${z.zone}: { denial: ${z.denial} }`).join('\n')}
listen: ["127.0.0.1:${p53}"]
metrics: false
control: ${join(dir, 'ctl.sock')}
data-dir: ${join(dir, 'data')}
tsig-keys:
  ops.example.com: { algorithm: hmac-sha256, secret: "${OPS}" }
transfer:
  allow:
    - { from: 127.0.0.1/32 }
updates:
${ZONES.map((z) => `  ${z.zone}:\n    - { key: ops.example.com }`).join('\n')}
`,
  );
  const start = (): Promise<Proc> =>
    startProcess(
      t,
      process.execPath,
      ['dist/cli.js', 'serve', '--config', config, '--workers', '1'],
      (o) => o.includes('ready:'),
      40000, // a loaded machine starts node slowly
    );
  let p = await start();
  const nsupdate = (zone: string, lines: string[]): { code: number; out: string } =>
    run(
      'nsupdate',
      ['-y', `hmac-sha256:ops.example.com:${OPS}`],
      [`server 127.0.0.1 ${p53}`, `zone ${zone}`, ...lines, 'send', ''].join('\n'),
    );
  const dig = (...args: string[]): string =>
    run('dig', ['@127.0.0.1', '-p', String(p53), '+tries=2', '+time=3', ...args]).out;
  const delvs = new Map(
    ZONES.map(({ zone }) => {
      mkdirSync(join(dir, zone));
      return [
        zone,
        delvWith(join(dir, zone), p53, `${zone}.`, rdataToText(TYPE.DNSKEY, keys.get(zone)!.dnskey)),
      ];
    }),
  );
  const validated = async (
    zone: string,
    name: string,
    type: string,
    want: RegExp,
    what: string,
  ): Promise<void> => {
    const out = await delvs.get(zone)!(`${name}.${zone}`, type);
    t.match(out, /; fully validated/, `${zone} ${what}: delv validates\n${out}`);
    t.match(out, want, `${zone} ${what}: the answer`);
  };
  const denied = async (zone: string, name: string, what: string): Promise<void> => {
    const out = await delvs.get(zone)!(`${name}.${zone}`, 'A');
    t.match(
      out,
      /; negative response, fully validated/,
      `${zone} ${what}: delv validates the denial\n${out}`,
    );
    t.match(out, /NXDOMAIN|ncache nxdomain/i, `${zone} ${what}: NXDOMAIN`);
  };
  const verified = (zone: string, file: string, what: string): void => {
    writeFileSync(join(dir, file), dig(zone, 'AXFR', '+noall', '+answer'));
    const v = run('dnssec-verify', ['-z', '-o', zone, join(dir, file)]);
    t.equal(v.code, 0, `${zone}: dnssec-verify on the AXFR ${what}:\n${v.out}`);
  };
  const answers = (zone: string): string =>
    [
      dig(`_acme-challenge.shop.${zone}`, 'TXT', '+short'),
      dig(`www.${zone}`, 'A', '+short'),
      /status: (\w+)/.exec(dig(`gone.${zone}`, 'A'))?.[1] ?? '',
      dig(zone, 'SOA', '+short'),
    ].join('\n');

  const before = new Map<string, string>();
  for (const { zone, chainType } of ZONES) {
    // 1. A TXT at a new name (a new name in the chain, below a new empty non-terminal).
    let r = nsupdate(zone, [`update add _acme-challenge.shop.${zone}. 60 TXT "token-1"`]);
    t.equal(r.code, 0, `${zone} add: ${r.out}`);
    await validated(zone, '_acme-challenge.shop', 'TXT', /"token-1"/, 'new TXT');
    // 2. An existing RRset changed.
    r = nsupdate(zone, [`update delete www.${zone}. A`, `update add www.${zone}. 300 A 192.0.2.20`]);
    t.equal(r.code, 0, `${zone} change: ${r.out}`);
    await validated(zone, 'www', 'A', /192\.0\.2\.20/, 'changed A');
    // 3. A name deleted.
    r = nsupdate(zone, [`update delete gone.${zone}.`]);
    t.equal(r.code, 0, `${zone} delete: ${r.out}`);
    await denied(zone, 'gone', 'deleted name');
    // The whole zone as served passes dnssec-verify.
    verified(zone, `${zone}.axfr`, 'after the updates');
    // IXFR from the first serial carries the signature and chain changes.
    const ixfr = dig(zone, 'IXFR=2026113001', '+noall', '+answer');
    const types = new Set(
      ixfr
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith(';'))
        .map((l) => l.split(/\s+/)[3]),
    );
    t.ok(types.has('RRSIG') && types.has(chainType), `${zone}: IXFR carries RRSIG and ${chainType}`);
    t.match(
      ixfr,
      /_acme-challenge\.shop\.example\.\w+\.\s+60\s+IN\s+RRSIG\s+TXT/,
      `${zone}: the new TXT signature`,
    );
    before.set(zone, answers(zone));
  }
  // DNSSEC records of the signer: REFUSED, nothing applied.
  const key = keys.get('example.com')!;
  const r = nsupdate('example.com', [
    `update add example.com. 300 DNSKEY ${rdataToText(TYPE.DNSKEY, key.dnskey)}`,
  ]);
  t.match(r.out, /REFUSED/, 'DNSKEY in the update section: REFUSED');
  // The server's log arrives through a pipe: wait (bounded) until the refusal's line is in.
  for (let i = 0; i < 100 && !p.output().includes('POPDNS_E_UPDATE_DNSSEC'); i++)
    await new Promise((res) => setTimeout(res, 50));
  t.match(p.output(), /POPDNS_E_UPDATE_DNSSEC/, 'the refusal logged with its code');
  t.match(p.output(), /result=NOERROR added=1 removed=0 serial=2026113002 signatures=\d+ sign_ms=/);
  t.notMatch(p.output(), /whole_zone_signed/, 'every update re-signed incrementally');

  // Restart: the journal is replayed on the file and the zone signed again; same answers.
  await stopProcess(p.child);
  p = await start();
  t.match(p.output(), /3 journalled update\(s\) replayed/, 'the unsigned journal replayed, then signed');
  for (const { zone } of ZONES) {
    t.equal(answers(zone), before.get(zone), `${zone}: the same answers after the restart`);
    await validated(zone, '_acme-challenge.shop', 'TXT', /"token-1"/, 'after the restart: new TXT');
    await denied(zone, 'gone', 'after the restart: deleted name');
    verified(zone, `${zone}.axfr2`, 'after the restart');
  }
});
