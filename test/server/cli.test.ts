/** `popdns serve` as operators run it: config file, dig, SIGHUP reload, SIGTERM drain, startup errors. */
import { writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig, loadConfigFile, parseConfig } from '../../src/server/config.js';
import { needTool, startPopdns, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const ZONE =
  '$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hm 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n';

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', () => resolve(0));
  });
}

t.test('deploy/popdns.yaml is a valid, complete example', (tt) => {
  const cfg = loadConfigFile('deploy/popdns.yaml', defaultConfig('test', 2));
  tt.equal(cfg.identity, 'ams1.pop.example.net');
  tt.equal(cfg.listen.length, 3);
  tt.equal(cfg.listen[1]?.host, '2001:db8:53::53');
  tt.equal(cfg.version, null);
  tt.equal(cfg.nsid, 'ams1.pop.example.net', 'nsid follows the identity');
  tt.equal(cfg.drainSeconds, 5);
  tt.equal(cfg.tcp.idleTimeout, 10000);
  tt.equal(cfg.health.intervalMs, 1000);
  tt.equal(cfg.health.timeoutMs, 800);
  tt.equal(cfg.health.maxSerialLagMs, 300000);
  tt.same(cfg.health.prefixes, [
    { prefix: '198.51.100.0/24', protocol: 'anycast4' },
    { prefix: '2001:db8:53::/48', protocol: 'anycast6' },
  ]);
  tt.equal(cfg.health.stateFile, '/run/popdns/anycast.conf');
  tt.equal(cfg.keys, '/etc/popdns/keys');
  tt.same(cfg.dnssec.get('example.net.'), { denial: 'nsec3', validity: 14 * 86400 });
  tt.same(cfg.secondaries, [
    {
      zone: 'example.org.',
      primaries: [
        { host: '192.0.2.1', port: 53 },
        { host: '2001:db8::1', port: 53 },
      ],
      key: 'xfr.example.net.',
    },
  ]);
  tt.same(cfg.catalogs, [
    { zone: 'catalog.example.net.', primaries: [{ host: '192.0.2.1', port: 53 }], key: 'xfr.example.net.' },
  ]);
  tt.throws(
    () =>
      parseConfig(
        'secondaries:\n  - { zone: a.test, primaries: ["192.0.2.1:53"], key: nokey }\n',
        'x.yaml',
        defaultConfig('t', 1),
      ),
    { message: /x\.yaml:2:5: error: key nokey\. of a\.test\. is not in tsig-keys/ },
  );
  tt.throws(
    () =>
      parseConfig(
        'secondaries:\n  - { zone: a.test, primaries: [192.0.2.1:53] }\ncatalogs:\n  - { zone: a.test, primaries: [192.0.2.1:53] }\n',
        'x.yaml',
        defaultConfig('t', 1),
      ),
    { message: /named more than once/ },
  );
  tt.throws(
    () =>
      parseConfig(
        'secondaries:\n  - { zone: a.test, primaries: ["nowhere:53"] }\n',
        'x.yaml',
        defaultConfig('t', 1),
      ),
    { message: /x\.yaml:2:\d+: error: secondaries\.primaries: address "nowhere:53"/ },
  );
  tt.throws(() => parseConfig('zones: z\nlisen: 1.2.3.4:53\n', 'x.yaml', defaultConfig('t', 1)), {
    message: /x\.yaml:2:1: error: unknown setting "lisen"/,
  });
  // An empty value is not 0 (signing-threads: 0 would sign on the serving thread).
  for (const v of ['', '""', '~', 'false', '"0x2"', '" "'])
    tt.throws(
      () => parseConfig(`signing-threads: ${v}\n`, 'x.yaml', defaultConfig('t', 1)),
      { message: /x\.yaml:1:\d+: error: signing-threads must be a whole number 0\.\.256/ },
      `signing-threads: ${v}`,
    );
  tt.equal(parseConfig('signing-threads: "3"\n', 'x.yaml', defaultConfig('t', 1)).signingThreads, 3);
  tt.throws(() => parseConfig('listen: [localhost:53]\n', 'x.yaml', defaultConfig('t', 1)), {
    message: /x\.yaml:1:10: error: listen address "localhost:53"/,
  });
  tt.end();
});

t.test('dig against popdns serve; SIGHUP reloads; SIGTERM drains', async (tt) => {
  if (!needTool(tt, 'dig', 'bind9-dnsutils')) return;
  const dir = tmpDir(tt);
  writeFileSync(join(dir, 'example.test.zone'), ZONE);
  const p = await startPopdns(tt, dir);
  tt.match(
    p.output(),
    /info server: zone example\.test\. loaded serial=1 records=4 seconds=[0-9.]+ source=\S+example\.test\.zone/,
  );
  tt.match(p.output(), new RegExp(`listening udp 127\\.0\\.0\\.1:${p.port}`));
  tt.match(p.output(), new RegExp(`listening tcp 127\\.0\\.0\\.1:${p.port}`));
  const dig = (...args: string[]): string =>
    spawnSync('dig', [`@127.0.0.1`, '-p', String(p.port), '+short', '+tries=2', '+time=2', ...args], {
      encoding: 'utf8',
    }).stdout.trim();
  tt.equal(dig('www.example.test', 'A'), '192.0.2.80');
  tt.equal(dig('+tcp', 'www.example.test', 'A'), '192.0.2.80');
  tt.equal(dig('CHAOS', 'TXT', 'id.server'), '"test-pop"');
  writeFileSync(join(dir, 'example.test.zone'), ZONE.replace('192.0.2.80', '192.0.2.81'));
  p.child.kill('SIGHUP');
  let after = '';
  for (let i = 0; i < 40 && after !== '192.0.2.81'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = dig('www.example.test', 'A');
  }
  tt.equal(after, '192.0.2.81', 'SIGHUP reloaded the zone');
  tt.equal(await httpStatus(p.metricsPort, '/readyz'), 200);
  p.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  tt.equal(await httpStatus(p.metricsPort, '/readyz'), 503, 'draining: readyz 503');
  tt.equal(dig('www.example.test', 'A'), '192.0.2.81', 'still answering while draining');
  const code = await new Promise<number | null>((resolve) => p.child.once('exit', resolve));
  tt.equal(code, 0, 'exits after the drain period');
});

t.test('startup fails clearly when a listener cannot bind or no zone loads', (tt) => {
  const dir = tmpDir(tt);
  const noZones = spawnSync(
    process.execPath,
    ['dist/cli.js', 'serve', '--zones', dir, '--listen', '127.0.0.1:0', '--metrics', 'off'],
    {
      encoding: 'utf8',
      timeout: 10000,
    },
  );
  tt.equal(noZones.status, 1);
  tt.match(noZones.stderr, /no zone loaded from .* \[POPDNS_E_NO_ZONES\]/);
  writeFileSync(join(dir, 'example.test.zone'), ZONE);
  const badAddr = spawnSync(
    process.execPath,
    ['dist/cli.js', 'serve', '--zones', dir, '--listen', '192.0.2.1:5353', '--metrics', 'off'],
    { encoding: 'utf8', timeout: 10000 },
  );
  tt.equal(badAddr.status, 1);
  tt.match(badAddr.stderr, /cannot listen on 192\.0\.2\.1:5353: .* \[POPDNS_E_LISTEN\]/);
  const badFlag = spawnSync(
    process.execPath,
    ['dist/cli.js', 'serve', '--zones', dir, '--listen', 'nonsense'],
    {
      encoding: 'utf8',
      timeout: 10000,
    },
  );
  tt.not(badFlag.status, 0);
  tt.match(badFlag.stderr, /listen address "nonsense"/);
  tt.end();
});

t.test('--workers 2: both answer on one address; one scrape sums their counters', async (tt) => {
  const dir = tmpDir(tt);
  writeFileSync(join(dir, 'example.test.zone'), ZONE);
  const p = await startPopdns(tt, dir, ['--workers', '2']);
  tt.match(p.output(), /2 workers on (SO_REUSEPORT sockets|shared sockets \(node:cluster\))/);
  const { udpExchange, buildQuery } = await import('../helpers/dns.js');
  for (let i = 0; i < 40; i++) {
    const r = await udpExchange(p.port, buildQuery('www.example.test.', 'A'));
    tt.ok(r, `answer ${i}`);
  }
  const body = await new Promise<string>((resolve) => {
    get({ host: '127.0.0.1', port: p.metricsPort, path: '/metrics' }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => {
        s += d.toString();
      });
      res.on('end', () => resolve(s));
    });
  });
  const m =
    /popdns_queries_total\{transport="udp",qtype="A",rcode="NOERROR",zone="example\.test\."\} (\d+)/.exec(
      body,
    );
  tt.equal(Number(m?.[1]), 40, 'the sum over both workers');
});
