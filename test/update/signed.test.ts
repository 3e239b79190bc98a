/**
 * Dynamic updates of a zone popdns signs, end to end: `popdns serve` signs example.com. (NSEC, then
 * NSEC3) with a key of its own; nsupdate (TSIG) adds a TXT at a new name, changes an existing RRset
 * and deletes a name. After each, delv (one static trust anchor: the zone's DNSKEY, `+root`) must
 * validate the new record and the denial (NXDOMAIN) of the removed name; dnssec-verify must pass on
 * an AXFR of the updated zone; IXFR from the first serial must carry RRSIG and NSEC/NSEC3 changes;
 * after a restart (journal replayed, zone signed again) the answers are the same and validate.
 */
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { generateKey, writeKeyFiles } from '../../src/dnssec/keys.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { rdataToText } from '../../src/wire/rdata.js';
import { freePort, needTool, type Proc, startProcess, stopProcess, tmpDir } from '../helpers/peers.js';
import { delvWith } from '../helpers/validators.js';

const OPS = Buffer.from('ops-key-for-popdns-signed-updates').toString('base64');
const ZONE = `$ORIGIN example.com.
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

for (const denial of ['nsec', 'nsec3'] as const) {
  t.test(
    `${denial.toUpperCase()}: updates re-signed; delv, dnssec-verify, IXFR, restart`,
    async (t: Test) => {
      if (
        !needTool(t, 'nsupdate', 'bind9-dnsutils') ||
        !needTool(t, 'delv', 'bind9-dnsutils') ||
        !needTool(t, 'dnssec-verify', 'bind9-dnssec-utils')
      )
        return;
      const dir = tmpDir(t, 'popdns-signed-update-');
      mkdirSync(join(dir, 'zones'));
      mkdirSync(join(dir, 'keys'));
      writeFileSync(join(dir, 'zones', 'example.com.zone'), ZONE);
      const key = generateKey(nameFromText('example.com.'), 13, 'csk');
      writeKeyFiles(join(dir, 'keys'), key);
      const p53 = await port();
      const config = join(dir, 'popdns.yaml');
      writeFileSync(
        config,
        `zones: ${join(dir, 'zones')}
keys: ${join(dir, 'keys')}
dnssec:
  example.com: { denial: ${denial} }
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
  example.com:
    - { key: ops.example.com }
`,
      );
      const start = (): Promise<Proc> =>
        startProcess(
          t,
          process.execPath,
          ['dist/cli.js', 'serve', '--config', config, '--workers', '1'],
          (o) => o.includes('ready:'),
        );
      let p = await start();
      const delv = delvWith(dir, p53, 'example.com.', rdataToText(TYPE.DNSKEY, key.dnskey));
      const nsupdate = (lines: string[]): { code: number; out: string } =>
        run(
          'nsupdate',
          ['-y', `hmac-sha256:ops.example.com:${OPS}`],
          [`server 127.0.0.1 ${p53}`, 'zone example.com', ...lines, 'send', ''].join('\n'),
        );
      const dig = (...args: string[]): string =>
        run('dig', ['@127.0.0.1', '-p', String(p53), '+tries=2', '+time=3', ...args]).out;
      const validated = async (name: string, type: string, want: RegExp, what: string): Promise<void> => {
        const out = await delv(name, type);
        t.match(out, /; fully validated/, `${what}: delv validates\n${out}`);
        t.match(out, want, `${what}: the answer`);
      };
      const denied = async (name: string, what: string): Promise<void> => {
        const out = await delv(name, 'A');
        t.match(out, /; negative response, fully validated/, `${what}: delv validates the denial\n${out}`);
        t.match(out, /NXDOMAIN|ncache nxdomain/i, `${what}: NXDOMAIN`);
      };

      // 1. A TXT at a new name (a new name in the chain).
      let r = nsupdate(['update add _acme-challenge.shop.example.com. 60 TXT "token-1"']);
      t.equal(r.code, 0, `add: ${r.out}`);
      await validated('_acme-challenge.shop.example.com', 'TXT', /"token-1"/, 'new TXT');
      // 2. An existing RRset changed.
      r = nsupdate(['update delete www.example.com. A', 'update add www.example.com. 300 A 192.0.2.20']);
      t.equal(r.code, 0, `change: ${r.out}`);
      await validated('www.example.com', 'A', /192\.0\.2\.20/, 'changed A');
      // 3. A name deleted.
      r = nsupdate(['update delete gone.example.com.']);
      t.equal(r.code, 0, `delete: ${r.out}`);
      await denied('gone.example.com', 'deleted name');
      // DNSSEC records of the signer: REFUSED, nothing applied.
      r = nsupdate([`update add example.com. 300 DNSKEY ${rdataToText(TYPE.DNSKEY, key.dnskey)}`]);
      t.match(r.out, /REFUSED/, 'DNSKEY in the update section: REFUSED');
      // The server's log arrives through a pipe: wait (bounded) until the refusal's line is in.
      for (let i = 0; i < 100 && !p.output().includes('POPDNS_E_UPDATE_DNSSEC'); i++)
        await new Promise((res) => setTimeout(res, 50));
      t.match(p.output(), /POPDNS_E_UPDATE_DNSSEC/, `the refusal logged with its code:\n${p.output()}`);
      t.match(p.output(), /result=NOERROR added=1 removed=0 serial=2026113002 signatures=\d+ sign_ms=/);
      t.notMatch(p.output(), /whole_zone_signed/, 'every update re-signed incrementally');

      // The whole zone as served (AXFR) passes dnssec-verify.
      const axfr = dig('example.com', 'AXFR', '+noall', '+answer');
      writeFileSync(join(dir, 'axfr.zone'), axfr);
      const v = run('dnssec-verify', ['-z', '-o', 'example.com', join(dir, 'axfr.zone')]);
      t.equal(v.code, 0, `dnssec-verify on the AXFR:\n${v.out}`);
      // IXFR from the first serial carries the signature and chain changes.
      const ixfr = dig('example.com', 'IXFR=2026113001', '+noall', '+answer');
      const chainType = denial === 'nsec' ? 'NSEC' : 'NSEC3';
      const types = new Set(
        ixfr
          .split('\n')
          .filter((l) => l.trim() && !l.startsWith(';'))
          .map((l) => l.split(/\s+/)[3]),
      );
      t.ok(types.has('RRSIG') && types.has(chainType), `IXFR carries RRSIG and ${chainType}`);
      t.match(ixfr, /_acme-challenge\.shop\.example\.com\.\s+60\s+IN\s+RRSIG\s+TXT/, 'the new TXT signature');
      const soa = dig('example.com', 'SOA', '+short');

      // Restart: the journal is replayed on the file and the zone signed again; same answers.
      await stopProcess(p.child);
      p = await start();
      t.match(p.output(), /3 journalled update\(s\) replayed/, 'the unsigned journal replayed, then signed');
      t.equal(dig('example.com', 'SOA', '+short'), soa, 'same serial after the restart');
      await validated('_acme-challenge.shop.example.com', 'TXT', /"token-1"/, 'after restart: new TXT');
      await validated('www.example.com', 'A', /192\.0\.2\.20/, 'after restart: changed A');
      await denied('gone.example.com', 'after restart: deleted name');
      writeFileSync(join(dir, 'axfr2.zone'), dig('example.com', 'AXFR', '+noall', '+answer'));
      const v2 = run('dnssec-verify', ['-z', '-o', 'example.com', join(dir, 'axfr2.zone')]);
      t.equal(v2.code, 0, `dnssec-verify after the restart:\n${v2.out}`);
    },
  );
}
