/**
 * RFC 2136 corner cases from an independent client: dnspython (Debian's python3-dnspython) builds the
 * well-formed updates and asks the queries; corner-cases.py hand-builds (and TSIG-signs, RFC 8945
 * §4.3) the malformed ones dnspython will not build. Every expected value below is the RFC's, with
 * its section; none is copied from popdns' output.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort, REQUIRE_PEERS, startProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

// Debian's interpreter, where python3-dnspython lives (a python3 earlier on PATH may lack it).
const PYTHON = '/usr/bin/python3';
const SECRET = Buffer.from('ops-key-for-popdns-dnspython-test').toString('base64');

interface Case {
  case: string;
  rcode: string;
  after: Record<string, unknown>;
}

/** [rcode, what the zone shows afterwards (a subset of `after`)], by case, from RFC 2136. */
const EXPECTED: Record<string, [string, Record<string, unknown>?]> = {
  // §3.1.1: ZOCOUNT must be 1 and ZTYPE SOA, else FORMERR; a zone not served → NOTAUTH.
  'zone section with no zone (ZOCOUNT 0)': ['FORMERR'],
  'zone section with two zones (ZOCOUNT 2)': ['FORMERR'],
  'zone section type A, not SOA': ['FORMERR'],
  'a zone the server does not serve': ['NOTAUTH'],
  // §3.2.1: TTL must be 0, names inside the zone, class ANY without RDATA; §3.2.2 class NONE
  // without RDATA; §3.2.4 any other class FORMERR.
  'prerequisite with TTL 300': ['FORMERR'],
  'prerequisite name outside the zone': ['NOTZONE'],
  'class ANY prerequisite with RDATA': ['FORMERR'],
  'class NONE prerequisite with RDATA': ['FORMERR'],
  'class CH prerequisite': ['FORMERR'],
  // §3.2.1 read to the letter: class ANY, TYPE not ANY, and no such RRset → NXRRSET.
  'prerequisite of meta type AXFR': ['NXRRSET'],
  // §2.4.1 / §3.2.1 RRset exists (value-independent): NXRRSET when absent.
  'RRset exists (value-independent), present': ['NOERROR', { pre1: ['"rrset exists"'] }],
  'RRset exists (value-independent), absent': ['NXRRSET', { pre2: [] }],
  // §2.4.2 / §3.2.3 value-dependent: the whole RRset must be equal, else NXRRSET.
  'RRset exists (value-dependent), equal': ['NOERROR', { pre3: ['"value matched"'] }],
  'RRset exists (value-dependent), different RDATA': ['NXRRSET'],
  'RRset exists (value-dependent), more RRs than the RRset': ['NXRRSET'],
  // §2.4.3 RRset does not exist → YXRRSET; §2.4.4 name in use → NXDOMAIN; §2.4.5 not in use → YXDOMAIN.
  'RRset does not exist, but it does': ['YXRRSET'],
  'name is in use, but it is not': ['NXDOMAIN'],
  'name is not in use, but it is': ['YXDOMAIN'],
  'name not in use and RRset does not exist, both hold': ['NOERROR', { pre4: ['"all prerequisites hold"'] }],
  // §3.4.1.3 names outside the zone → NOTZONE; §3.4.1.2 meta types, class ANY with TTL or RDATA,
  // class NONE with TTL, other classes → FORMERR; §3.4 all or nothing.
  'update name outside the zone': ['NOTZONE'],
  'add of meta type ANY': ['FORMERR'],
  'add of meta type AXFR': ['FORMERR'],
  'class ANY delete with TTL 300': ['FORMERR'],
  'class ANY delete with RDATA': ['FORMERR'],
  'class NONE delete with TTL 300': ['FORMERR'],
  'update of class CH': ['FORMERR'],
  'an update with one bad record applies nothing': ['NOTZONE', { allornothing: [], serial_unchanged: true }],
  // §3.4.2.2: CNAME beside other data and other data beside a CNAME are ignored; a CNAME replaces
  // a CNAME; an SOA with a serial not higher is ignored.
  'CNAME added where other data exists is ignored': ['NOERROR', { www_cname: [], www_a: ['192.0.2.10'] }],
  'A added at a CNAME owner is ignored': ['NOERROR', { alias_cname: ['www.example.com.'] }],
  'CNAME added at a CNAME owner replaces it': ['NOERROR', { alias_cname: ['ns1.example.com.'] }],
  'SOA with a lower serial is ignored': ['NOERROR', { serial_unchanged: true }],
  // §3.4.2.3: the apex SOA and NS RRsets survive class ANY deletes; §3.4.2.4 the last apex NS stays.
  'deleting the apex NS RRset is ignored': ['NOERROR', { ns: ['ns1.example.com.'] }],
  'deleting every RRset at the apex keeps SOA and NS': ['NOERROR', { ns: ['ns1.example.com.'], soa: 1 }],
  'deleting the last apex NS record is ignored': ['NOERROR', { ns: ['ns1.example.com.'] }],
  // §3.4.2.2 duplicates are ignored; nothing changed → no new serial (§3.6: the serial moves with a change).
  'a duplicate add changes nothing (no serial bump)': ['NOERROR', { serial_unchanged: true }],
  'deleting a record that is not there changes nothing': ['NOERROR', { serial_unchanged: true }],
  // RFC 2181 §5.2: one TTL per RRset; the record added brings its TTL to the RRset (BIND, Knot).
  'an add with another TTL: the RRset takes it (RFC 2181 §5.2)': [
    'NOERROR',
    { www_a: ['192.0.2.10', '192.0.2.11'], ttl: 60, serial_step: 1 },
  ],
  'replace over TCP': ['NOERROR', { pre1: ['"replaced"'], www_a: ['192.0.2.10'] }],
};

t.test('RFC 2136 corner cases, from dnspython', async (t) => {
  const probe = spawnSync(PYTHON, ['-c', 'import dns.update, dns.tsigkeyring'], { stdio: 'ignore' });
  if (!existsSync(PYTHON) || probe.status !== 0) {
    if (REQUIRE_PEERS) t.fail('python3-dnspython missing and POPDNS_REQUIRE_PEERS=1');
    else t.skip('dnspython not installed — apt-get install python3-dnspython', () => {});
    return;
  }
  const dir = tmpDir(t, 'popdns-dnspython-');
  mkdirSync(join(dir, 'zones'));
  writeFileSync(
    join(dir, 'zones', 'example.com.zone'),
    `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
`,
  );
  const port = await freePort();
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    `zones: ${join(dir, 'zones')}
listen: ["127.0.0.1:${port}"]
data-dir: ${join(dir, 'data')}
tsig-keys:
  ops.example.com: { algorithm: hmac-sha256, secret: "${SECRET}" }
updates:
  example.com:
    - { key: ops.example.com }
    - { key: ops.example.com, names: ["@"], types: [SOA] }
`,
  );
  await startProcess(
    t,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', config, '--workers', '1'],
    (o) => o.includes('ready:'),
  );
  const run = spawnSync(
    PYTHON,
    [join('test', 'update', 'corner-cases.py'), '127.0.0.1', String(port), 'ops.example.com', SECRET],
    { encoding: 'utf8', timeout: 90000 },
  );
  t.equal(run.status, 0, `corner-cases.py ran: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const results = run.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Case);
  const seen = new Set<string>();
  for (const r of results) {
    seen.add(r.case);
    const want = EXPECTED[r.case];
    if (!want) {
      t.fail(`no expected value for case "${r.case}"`);
      continue;
    }
    t.equal(r.rcode, want[0], `${r.case}: ${want[0]} (got ${r.rcode})`);
    for (const [k, v] of Object.entries(want[1] ?? {})) t.same(r.after[k], v, `${r.case}: ${k}`);
  }
  for (const c of Object.keys(EXPECTED)) t.ok(seen.has(c), `case ran: ${c}`);
});
