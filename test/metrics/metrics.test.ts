/**
 * The metrics endpoint as Prometheus sees it: a real scrape after real traffic passes
 * `promtool check metrics`, every popdns metric follows the naming rules (popdns_ prefix, counters
 * end in _total, base units), and the README lists every metric of the server and of the probe.
 */
import { createSocket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { HealthChecker } from '../../src/health/checker.js';
import { HEALTH_DEFAULTS } from '../../src/health/config.js';
import { HealthMetrics } from '../../src/health/metrics.js';
import { buildQuery, tcpExchange, udpExchange } from '../helpers/dns.js';
import { needTool, startPopdns, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const ZONE = `$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.10
big IN TXT ${Array.from({ length: 8 }, () => `"${'x'.repeat(200)}"`).join(' ')}
`;

/** Families (name → type) from a Prometheus text exposition. */
function families(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const r = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (r) m.set(r[1]!, r[2]!);
  }
  return m;
}

function lintNames(t: Test, fams: Map<string, string>, prefix: string): void {
  for (const [name, type] of fams) {
    if (!name.startsWith(prefix)) continue;
    t.match(name, /^[a-z_][a-z0-9_]*$/, `${name}: snake case`);
    if (type === 'counter') t.match(name, /_total$/, `${name}: counters end in _total`);
    else t.notMatch(name, /_total$/, `${name}: only counters end in _total`);
    if (type === 'histogram') t.match(name, /_(seconds|bytes)$/, `${name}: histograms in base units`);
    t.notMatch(name, /_(ms|milliseconds|kb|mb)(_|$)/, `${name}: base units`);
  }
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

t.test('a real scrape passes promtool and the naming rules; the README lists every metric', async (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'example.test.zone'), ZONE);
  const p = await startPopdns(t, dir, ['--workers', '1']);
  // Traffic of every kind the counters distinguish.
  await udpExchange(p.port, buildQuery('www.example.test.', 'A'));
  await udpExchange(p.port, buildQuery('nope.example.test.', 'A'));
  await udpExchange(p.port, buildQuery('www.elsewhere.', 'A'));
  await udpExchange(p.port, buildQuery('big.example.test.', 'TXT'));
  await udpExchange(p.port, buildQuery('id.server.', 'TXT', { klass: 'CH' }));
  await tcpExchange(p.port, [buildQuery('www.example.test.', 'AAAA')]);
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.send(Buffer.from([1, 2, 3]), p.port, '127.0.0.1', () => resolve()));
  s.close();
  const text = await scrape(p.metricsPort);
  t.match(
    text,
    /popdns_queries_total\{transport="udp",qtype="A",rcode="NXDOMAIN",zone="example\.test\."\} 1/,
  );
  t.match(text, /popdns_queries_total\{transport="udp",qtype="A",rcode="REFUSED",zone="\.none"\} 1/);
  t.match(text, /popdns_responses_truncated_total\{transport="udp"\} 1/);
  t.match(text, /popdns_packets_dropped_total\{reason="short"\} 1/);
  t.match(text, /popdns_queries_total\{transport="tcp",qtype="AAAA"/);
  const fams = families(text);
  lintNames(t, fams, 'popdns_');

  // The probe's own metrics, from a checker that has not run yet.
  const checker = new HealthChecker(
    { ...HEALTH_DEFAULTS, prefixes: [{ prefix: '198.51.100.0/24', protocol: 'anycast4' }] },
    [],
    ['example.test.'],
    {
      probe: async () => ({ ok: true, detail: 'ok', serial: 1, ms: 1 }),
      readyz: null,
      bird: { apply: async () => [] },
      log: () => {},
      now: () => 0,
      maintenance: () => false,
      zoneStatus: null,
      zoneFiles: () => new Map(),
    },
  );
  const hm = new HealthMetrics(checker, 'test');
  hm.record(await checker.check());
  const healthText = await hm.registry.metrics();
  const healthFams = families(healthText);
  lintNames(t, healthFams, 'popdns_health_');

  if (needTool(t, 'promtool', 'prometheus')) {
    for (const [what, body] of [
      ['server', text],
      ['health probe', healthText],
    ] as const) {
      const r = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
      t.equal(r.status, 0, `promtool check metrics (${what}): ${r.stdout}${r.stderr}`);
    }
  }

  const readme = readFileSync('README.md', 'utf8');
  const own = [...fams.keys(), ...healthFams.keys()].filter(
    (n) => n.startsWith('popdns_') && !/^popdns_health_(process|nodejs)_/.test(n),
  );
  t.ok(own.length > 15, `${own.length} popdns metrics`);
  for (const name of own) t.ok(readme.includes(`\`${name}`), `README lists ${name}`);
});
