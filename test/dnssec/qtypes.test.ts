/**
 * The DNSSEC question types (RRSIG, NSEC, NSEC3, DNSKEY, DS, NSEC3PARAM, CDS) at the apex, a leaf, a
 * delegation and an NSEC3 owner name of a signed zone, with DO=0 and DO=1, as a validator sees them:
 * Unbound (trust anchor from `popdns ds`) must never SERVFAIL and must validate every answer it can,
 * for NSEC and NSEC3. A question for RRSIG returns the signatures of one RRset (the lowest type
 * number, like ANY and like Knot; RFC 4035 §3.1.5 leaves the choice), never an empty NOERROR whose own
 * NSEC bitmap says RRSIG exists.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ALGORITHM, generateKey, writeKeyFiles } from '../../src/dnssec/keys.js';
import { defaultConfig } from '../../src/server/config.js';
import { PopdnsServer } from '../../src/server/server.js';
import { nameFromText } from '../../src/wire/name.js';
import { freePort, needTool, startProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';
import { dig as resolverDig } from '../helpers/validators.js';

const quiet = { info: () => {}, error: (m: string) => process.stderr.write(`${m}\n`) };

const PARENT = `$ORIGIN popdns.test.
$TTL 300
@ IN SOA ns1 hostmaster 2026113001 3600 900 604800 300
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 192.0.2.1
www IN TXT "leaf"
deleg IN NS ns.deleg
ns.deleg IN A 127.0.0.1
`;

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 15000 }, (_e, stdout) => resolve(stdout));
  });
}

interface Dig {
  status: string;
  ad: boolean;
  answer: string[];
  out: string;
}

async function dig(port: number, name: string, type: string, dnssec: boolean): Promise<Dig> {
  const out = await run('dig', [
    '@127.0.0.1',
    '-p',
    String(port),
    name,
    type,
    dnssec ? '+dnssec' : '+nodnssec',
    '+time=5',
    '+tries=1',
    '+norecurse',
  ]);
  const status = /status: (\w+)/.exec(out)?.[1] ?? 'NO ANSWER';
  const flags = /;; flags: ([a-z ]+);/.exec(out)?.[1] ?? '';
  const sec = /;; ANSWER SECTION:\n([^]*?)\n\n/.exec(out)?.[1] ?? '';
  const answer = sec
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(/\s+/).slice(3, 5).join(' '));
  return { status, ad: flags.split(' ').includes('ad'), answer, out };
}

for (const denial of ['nsec', 'nsec3'] as const) {
  t.test(`DNSSEC qtypes with ${denial.toUpperCase()}: popdns answers, Unbound validates`, async (t) => {
    if (!needTool(t, 'unbound', 'unbound') || !needTool(t, 'dig', 'bind9-dnsutils')) return;
    const dir = tmpDir(t);
    const zones = join(dir, 'zones');
    const keys = join(dir, 'keys');
    spawnSync('mkdir', ['-p', zones, keys]);
    writeKeyFiles(keys, generateKey(nameFromText('popdns.test.'), ALGORITHM.ECDSAP256SHA256, 'csk'));
    writeFileSync(join(zones, 'popdns.test.zone'), PARENT);
    const port = await freePort();
    const cfg = defaultConfig('test', 1);
    cfg.zones = zones;
    cfg.keys = keys;
    cfg.listen = [{ host: '127.0.0.1', port, family: 4 }];
    cfg.metrics = null;
    cfg.dnssec.set('popdns.test.', { denial, cds: true });
    const server = new PopdnsServer(cfg, quiet);
    t.equal(server.loadZones().failed, 0, 'the zone loads and signs');
    await server.listen();
    t.teardown(() => server.close());

    // popdns itself, DO=0 and DO=1: RRSIG returns the signatures of the lowest signed type.
    for (const dnssec of [false, true]) {
      const www = await dig(port, 'www.popdns.test.', 'RRSIG', dnssec);
      t.equal(www.status, 'NOERROR');
      t.ok(
        www.answer.length > 0 && www.answer.every((a) => a === 'RRSIG A'),
        `www RRSIG DO=${+dnssec}: RRSIG A`,
      );
      const apex = await dig(port, 'popdns.test.', 'RRSIG', dnssec);
      t.ok(
        apex.answer.length > 0 && apex.answer.every((a) => a === 'RRSIG NS'),
        `apex RRSIG DO=${+dnssec}: RRSIG NS`,
      );
      const cut = await dig(port, 'deleg.popdns.test.', 'RRSIG', dnssec);
      t.match(
        cut.out,
        /flags: qr;[^]*AUTHORITY SECTION:\ndeleg\.popdns\.test\.\s+\d+\s+IN\s+NS/,
        'delegation: a referral',
      );
    }

    const ds = spawnSync(process.execPath, ['dist/cli.js', 'ds', 'popdns.test', '--keys', keys], {
      encoding: 'utf8',
    });
    const dsLine = ds.stdout.split('\n').find((l) => /\sDS\s/.test(l));
    t.ok(dsLine, 'popdns ds prints a DS record');
    if (!dsLine) return;
    const uport = await freePort();
    const conf = join(dir, 'unbound.conf');
    writeFileSync(
      conf,
      `server:
  interface: 127.0.0.1
  port: ${uport}
  do-ip6: no
  chroot: ""
  username: ""
  directory: "${dir}"
  pidfile: "${dir}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  local-zone: "test." nodefault
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor: "${dsLine.trim()}"
  qname-minimisation: no
  aggressive-nsec: no
  target-fetch-policy: "0 0 0 0 0"
stub-zone:
  name: "popdns.test"
  stub-addr: 127.0.0.1@${port}
remote-control:
  control-enable: no
`,
    );
    await startProcess(t, 'unbound', ['-d', '-c', conf], async () => {
      const out = await run('dig', [
        '@127.0.0.1',
        '-p',
        String(uport),
        'popdns.test.',
        'SOA',
        '+time=1',
        '+tries=1',
      ]);
      return /status: NOERROR/.test(out);
    });
    // The helper's dig: a message that is dig's own query come back is never read as Unbound's answer.
    const udig = async (name: string, type: string, dnssec: boolean): Promise<Dig> => ({
      ...(await resolverDig(uport, name, type, dnssec ? [] : ['+nodnssec'])),
      answer: [],
    });

    // An NSEC3 owner name, from a denial popdns gives.
    const names = ['popdns.test.', 'www.popdns.test.', 'deleg.popdns.test.'];
    if (denial === 'nsec3') {
      const nx = await dig(port, 'nx.popdns.test.', 'A', true);
      const owner = /^([0-9a-v]{32}\.popdns\.test\.)\s.*NSEC3\s/im.exec(nx.out)?.[1];
      t.ok(owner, 'an NSEC3 owner name');
      if (owner) names.push(owner);
    }
    for (const name of names) {
      for (const type of ['RRSIG', 'NSEC', 'NSEC3', 'DNSKEY', 'DS', 'NSEC3PARAM', 'CDS']) {
        if (name === 'popdns.test.' && type === 'DS') continue; // the trust anchor's DS lives above it
        // At the delegation only DS is the parent's (a validator follows the referral for the rest,
        // to a child server that does not exist here).
        if (name === 'deleg.popdns.test.' && type !== 'DS') continue;
        for (const dnssec of [false, true]) {
          const d = await udig(name, type, dnssec);
          const what = `${name} ${type} DO=${+dnssec}`;
          t.not(d.status, 'SERVFAIL', `unbound: ${what} is not bogus`);
          // A question for RRSIG is answered but cannot be validated as an RRset: no AD expected.
          if (type !== 'RRSIG') {
            t.ok(d.ad, `unbound: ${what} validated (AD)`);
          }
          if (d.status === 'SERVFAIL' || (!d.ad && type !== 'RRSIG')) t.comment(d.out);
        }
      }
    }
  });
}
